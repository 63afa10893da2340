//! The bank test (badger's): writer threads move money between accounts in
//! transactions while reader threads check, on snapshots, that no money is
//! created or lost and no account disappears. A torn or partially visible
//! commit, a lost update or a snapshot mixing two points in time breaks the
//! total. The final state must also survive close and reopen.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::time::Duration;

use strata::{Db, Durability, Options, ReadTxn};

const ACCOUNTS: u32 = 20;
const INITIAL: u64 = 1_000;
const TOTAL: u64 = ACCOUNTS as u64 * INITIAL;
const WRITERS: u64 = 4;
const READERS: u64 = 2;
const PREFIX: &[u8] = b"acct/";

fn account(i: u32) -> Vec<u8> {
    format!("acct/{i:02}").into_bytes()
}

fn balance(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("balance is 8 bytes"))
}

/// The accounts of a new snapshot, checked.
fn check_snapshot(db: &Db) -> BTreeMap<Vec<u8>, u64> {
    check(&db.begin_read())
}

/// The accounts of `snap`, checked: all present, total intact.
fn check(snap: &ReadTxn<'_>) -> BTreeMap<Vec<u8>, u64> {
    let accounts: BTreeMap<Vec<u8>, u64> =
        common::collect(snap.scan(PREFIX..b"acct0".as_slice()).unwrap())
            .into_iter()
            .map(|(k, v)| (k, balance(&v)))
            .collect();
    assert_eq!(
        accounts.len(),
        ACCOUNTS as usize,
        "snapshot at {:?} is missing accounts: {accounts:?}",
        snap.read_ts()
    );
    let total: u64 = accounts.values().sum();
    assert_eq!(
        total,
        TOTAL,
        "snapshot at {:?}: {accounts:?}",
        snap.read_ts()
    );
    // Point reads in the same snapshot agree with the scan.
    let i = u32::try_from(snap.read_ts().get() % u64::from(ACCOUNTS)).unwrap();
    let key = account(i);
    assert_eq!(
        snap.get(&key).unwrap().map(|v| balance(&v)),
        accounts.get(&key).copied()
    );
    accounts
}

fn run_bank(path: &Path, options: &Options, iterations: u32, seed: u64) {
    let db = Db::open(path, options.clone()).unwrap();
    db.update(|t| {
        for i in 0..ACCOUNTS {
            t.put(&account(i), &INITIAL.to_le_bytes())?;
        }
        Ok(())
    })
    .unwrap();

    // A snapshot held across every transfer must read the same all along.
    let early = db.begin_read();
    let early_state = check(&early);

    let writers_done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let transfers = AtomicU64::new(0);
    let checks = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (db, writers_done, failed, transfers) = (&db, &writers_done, &failed, &transfers);
            s.spawn(move || {
                // Count this writer as done even if it panics, so readers stop.
                struct Done<'a>(&'a AtomicU64);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let _done = Done(writers_done);
                let mut rng = SmallRng::seed_from_u64(seed ^ w.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for _ in 0..iterations {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                    let amount = rng.random_range(1..=200_u64);
                    let moved = db
                        .update(|t| {
                            let (a, b) = (account(from), account(to));
                            let fa = balance(&t.get(&a)?.expect("account exists"));
                            let tb = balance(&t.get(&b)?.expect("account exists"));
                            if fa < amount {
                                return Ok(false);
                            }
                            t.put(&a, &(fa - amount).to_le_bytes())?;
                            t.put(&b, &(tb + amount).to_le_bytes())?;
                            Ok(true)
                        })
                        .unwrap();
                    if moved {
                        transfers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for _ in 0..READERS {
            let (db, writers_done, failed, checks) = (&db, &writers_done, &failed, &checks);
            s.spawn(move || {
                // If a check panics, tell the writers to stop early.
                struct StopOnPanic<'a>(&'a AtomicBool);
                impl Drop for StopOnPanic<'_> {
                    fn drop(&mut self) {
                        if std::thread::panicking() {
                            self.0.store(true, Ordering::Relaxed);
                        }
                    }
                }
                let _stop = StopOnPanic(failed);
                let mut mine = 0;
                // At least a few checks, then until every writer has finished.
                while mine < 5 || writers_done.load(Ordering::SeqCst) < WRITERS {
                    check_snapshot(db);
                    mine += 1;
                }
                checks.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    eprintln!(
        "{} transfers, {} snapshot checks",
        transfers.load(Ordering::Relaxed),
        checks.load(Ordering::Relaxed)
    );
    assert!(
        transfers.load(Ordering::Relaxed) > 0,
        "no transfer happened"
    );

    assert_eq!(check(&early), early_state, "a held snapshot changed");
    drop(early);
    let before = check_snapshot(&db);
    let commits = db.stats().commits;
    assert_eq!(commits, 1 + transfers.load(Ordering::Relaxed));
    db.close().unwrap();

    let db = Db::open(path, options.clone()).unwrap();
    assert_eq!(check_snapshot(&db), before, "state after reopen");
    assert_eq!(db.stats().recovered_records, commits);
    db.close().unwrap();
}

#[test]
fn bank_buffered() {
    let dir = common::temp_dir();
    run_bank(
        dir.path(),
        &common::options(Durability::Buffered),
        1_500,
        common::seed("bank_buffered"),
    );
}

#[test]
fn bank_sync() {
    let dir = common::temp_dir();
    let options = common::options(Durability::Sync);
    run_bank(dir.path(), &options, 250, common::seed("bank_sync"));
}

/// Waiting committers that never spin (they sleep at once) take the other
/// path through the group commit's wait; the bank must balance the same.
#[test]
fn bank_sync_waiters_sleep_without_spinning() {
    let dir = common::temp_dir();
    let options = common::options(Durability::Sync).commit_spin(Duration::ZERO);
    run_bank(dir.path(), &options, 250, common::seed("bank_sync_no_spin"));
}
