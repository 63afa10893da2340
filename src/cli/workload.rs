//! The measured loops of `strata bench`: the fdatasync probe, the bulk load,
//! read-modify-write transactions, point reads (through Strata and through a
//! bare skiplist) and scans.
//!
//! Invariants:
//! 1. Keys are `key` plus 13 decimal digits (16 bytes), so key order is index
//!    order and a scan from key `i` meets keys `i, i+1, ..`.
//! 2. Reads of loaded keys must find a value: a miss is an error, not a
//!    faster read.
//! 3. Point reads through Strata and through the bare skiplist run the same
//!    loop (same RNG, same batch of [`READS_PER_TXN`], same copy of the value
//!    into a `Vec`), so their ratio measures only what Strata adds: the
//!    snapshot, the version seek and the result plumbing.
//!
//! Concurrency: the workers are called on `runner::run_timed`'s threads and
//! share only the `Db` (or the skiplist) and the immutable [`Keys`].

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_skiplist::SkipMap;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use strata::Db;

use super::CliResult;
use super::runner::{Measured, Tally, progress_bar, run_timed};

/// Length of every key: `key` and 13 decimal digits.
pub(crate) const KEY_BYTES: usize = 16;

/// Largest key count whose indexes fit the 13 digits of a key.
pub(crate) const MAX_KEYS: u64 = 10_000_000_000_000;

/// Bytes appended before each fdatasync of the disk probe.
pub(crate) const PROBE_WRITE_BYTES: usize = 4096;

/// Point reads per `ReadTxn` (and per timed batch).
pub(crate) const READS_PER_TXN: u64 = 100;

/// Entries taken by each scan.
pub(crate) const SCAN_ITEMS: usize = 100;

/// Keys per load transaction, unless their values would exceed [`LOAD_TXN_MAX_BYTES`].
pub(crate) const LOAD_KEYS_PER_TXN: usize = 1000;

/// Upper bound on a load transaction's keys and values, far below `MAX_TXN_BYTES`.
const LOAD_TXN_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The loaded keys, `key{index:013}`, stored back to back.
#[derive(Debug)]
pub(crate) struct Keys {
    bytes: Vec<u8>,
}

impl Keys {
    /// Keys `0..count`.
    ///
    /// # Preconditions
    /// `1 <= count <= MAX_KEYS`.
    pub(crate) fn new(count: u64) -> Self {
        let mut bytes = Vec::with_capacity(usize::try_from(count).unwrap_or(0) * KEY_BYTES);
        for i in 0..count {
            let mut key = *b"key0000000000000";
            let mut rest = i;
            for digit in key.iter_mut().skip(3).rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            bytes.extend_from_slice(&key);
        }
        Keys { bytes }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / KEY_BYTES
    }

    /// Key `i`. Requires `i < len()`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        &self.bytes[i * KEY_BYTES..(i + 1) * KEY_BYTES]
    }

    /// A uniformly random key index.
    fn random(&self, rng: &mut SmallRng) -> usize {
        rng.random_range(0..self.len())
    }

    /// Two different random key indexes (the same one twice if only one key exists).
    fn random_pair(&self, rng: &mut SmallRng) -> (usize, usize) {
        let a = self.random(rng);
        if self.len() < 2 {
            return (a, a);
        }
        let b = (a + rng.random_range(1..self.len())) % self.len();
        (a, b)
    }
}

/// The value loaded under key `i`: `value_bytes` pseudo-random bytes.
pub(crate) fn loaded_value(i: usize, value_bytes: usize) -> Vec<u8> {
    let mut value = vec![0; value_bytes];
    SmallRng::seed_from_u64(i as u64).fill_bytes(&mut value);
    value
}

/// A per-thread RNG: deterministic for a given phase and thread.
fn thread_rng(phase_salt: u64, thread: usize) -> SmallRng {
    SmallRng::seed_from_u64(phase_salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ thread as u64)
}

/// The error for a loaded key that a read did not find.
fn missing_key(key: &[u8]) -> super::BoxError {
    format!(
        "loaded key {:?} not found",
        String::from_utf8_lossy(key).into_owned()
    )
    .into()
}

/// Phase 1: appends `PROBE_WRITE_BYTES` and calls `fdatasync` in a loop on
/// one thread, on a new file at `path` (removed afterwards).
pub(crate) fn fdatasync_probe(path: &Path, duration: Duration) -> CliResult<Measured> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    let block = vec![0xA5_u8; PROBE_WRITE_BYTES];
    let measured = run_timed("fdatasync 4 KiB append", 1, duration, |_, control| {
        let mut tally = Tally::new()?;
        loop {
            let t0 = Instant::now();
            if control.expired(t0) {
                return Ok(tally);
            }
            (&file).write_all(&block)?;
            file.sync_data()?;
            tally.record(t0.elapsed(), 1);
            control.advance(1);
        }
    });
    drop(file);
    std::fs::remove_file(path)?;
    measured
}

/// Phase 2: puts every key with its [`loaded_value`] from one thread, in
/// transactions of up to [`LOAD_KEYS_PER_TXN`] keys. Latency is per transaction.
pub(crate) fn load(db: &Db, keys: &Keys, value_bytes: usize, label: &str) -> CliResult<Measured> {
    let per_txn = (LOAD_TXN_MAX_BYTES / (KEY_BYTES + value_bytes)).clamp(1, LOAD_KEYS_PER_TXN);
    let bar = progress_bar(label, keys.len() as u64, "{pos}/{len} keys");
    let mut tally = Tally::new()?;
    let start = Instant::now();
    let mut first = 0;
    while first < keys.len() {
        let end = (first + per_txn).min(keys.len());
        let t0 = Instant::now();
        let mut txn = db.begin();
        for i in first..end {
            txn.put(keys.key(i), &loaded_value(i, value_bytes))?;
        }
        txn.commit()?;
        tally.record(t0.elapsed(), 1);
        bar.inc((end - first) as u64);
        first = end;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    // Report keys, not transactions, as the operations of a load.
    tally.ops = keys.len() as u64;
    Ok(Measured { tally, elapsed })
}

/// Phases 3 and 4: read-modify-write transactions on `threads` threads.
///
/// Each transaction reads two different random keys, writes two different
/// random keys (a value built from what it read) and commits with
/// `Txn::commit` (no retry loop). A conflict counts in `conflicts` and the
/// thread moves on to a new random transaction. Latency runs from `begin`
/// to the end of a successful `commit`.
pub(crate) fn read_modify_write(
    db: &Db,
    keys: &Keys,
    value_bytes: usize,
    label: &str,
    threads: usize,
    duration: Duration,
) -> CliResult<Measured> {
    run_timed(label, threads, duration, |thread, control| {
        let mut rng = thread_rng(3, thread);
        let mut tally = Tally::new()?;
        let mut value = vec![0_u8; value_bytes];
        let mut attempt: u64 = 0;
        loop {
            let t0 = Instant::now();
            if control.expired(t0) {
                return Ok(tally);
            }
            let (r1, r2) = keys.random_pair(&mut rng);
            let (w1, w2) = keys.random_pair(&mut rng);
            let mut txn = db.begin();
            let a = txn
                .get(keys.key(r1))?
                .ok_or_else(|| missing_key(keys.key(r1)))?;
            let b = txn
                .get(keys.key(r2))?
                .ok_or_else(|| missing_key(keys.key(r2)))?;
            attempt += 1;
            // The new value depends on both reads: `a` with its head mixed
            // with `b` and a per-thread counter.
            value.clone_from(&a);
            value.resize(value_bytes, 0);
            for (byte, (x, s)) in value.iter_mut().zip(b.iter().zip(attempt.to_le_bytes())) {
                *byte ^= x ^ s;
            }
            txn.put(keys.key(w1), &value)?;
            txn.put(keys.key(w2), &value)?;
            match txn.commit() {
                Ok(_) => {
                    tally.record(t0.elapsed(), 1);
                    control.advance(1);
                }
                Err(e) if e.is_retryable() => tally.conflicts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    })
}

/// Phase 5a: random point reads of loaded keys on one thread, one `ReadTxn`
/// per [`READS_PER_TXN`] reads. Latency is per read, averaged over its batch.
pub(crate) fn point_reads(db: &Db, keys: &Keys, duration: Duration) -> CliResult<Measured> {
    run_timed("point reads (ReadTxn)", 1, duration, |thread, control| {
        let mut rng = thread_rng(5, thread);
        let mut tally = Tally::new()?;
        let mut bytes = 0_usize;
        loop {
            let t0 = Instant::now();
            if control.expired(t0) {
                black_box(bytes);
                return Ok(tally);
            }
            let snap = db.begin_read();
            for _ in 0..READS_PER_TXN {
                let key = keys.key(keys.random(&mut rng));
                let value = snap.get(key)?.ok_or_else(|| missing_key(key))?;
                bytes += black_box(value).len();
            }
            drop(snap);
            tally.record(t0.elapsed() / READS_PER_TXN as u32, READS_PER_TXN);
            control.advance(READS_PER_TXN);
        }
    })
}

/// A bare skiplist holding every key with its [`loaded_value`], for phase 5b.
pub(crate) fn loaded_skiplist(keys: &Keys, value_bytes: usize) -> SkipMap<Vec<u8>, Vec<u8>> {
    let map = SkipMap::new();
    for i in 0..keys.len() {
        map.insert(keys.key(i).to_vec(), loaded_value(i, value_bytes));
    }
    map
}

/// Phase 5b: the loop of [`point_reads`] over a bare `SkipMap` (`get`, then
/// the value copied into a `Vec`, as `ReadTxn::get` returns one).
pub(crate) fn skiplist_reads(
    map: &SkipMap<Vec<u8>, Vec<u8>>,
    keys: &Keys,
    duration: Duration,
) -> CliResult<Measured> {
    run_timed(
        "point reads (bare SkipMap)",
        1,
        duration,
        |thread, control| {
            let mut rng = thread_rng(5, thread);
            let mut tally = Tally::new()?;
            let mut bytes = 0_usize;
            loop {
                let t0 = Instant::now();
                if control.expired(t0) {
                    black_box(bytes);
                    return Ok(tally);
                }
                for _ in 0..READS_PER_TXN {
                    let key = keys.key(keys.random(&mut rng));
                    let value = map
                        .get(key)
                        .map(|entry| entry.value().clone())
                        .ok_or_else(|| missing_key(key))?;
                    bytes += black_box(value).len();
                }
                tally.record(t0.elapsed() / READS_PER_TXN as u32, READS_PER_TXN);
                control.advance(READS_PER_TXN);
            }
        },
    )
}

/// Phase 6: scans of [`SCAN_ITEMS`] entries from random start keys on one
/// thread, one `ReadTxn` per scan. Latency is per scan.
pub(crate) fn scans(db: &Db, keys: &Keys, duration: Duration) -> CliResult<Measured> {
    // Start early enough that every scan can take its full count.
    let starts = keys.len().saturating_sub(SCAN_ITEMS).max(1);
    run_timed("scans (ReadTxn)", 1, duration, |thread, control| {
        let mut rng = thread_rng(6, thread);
        let mut tally = Tally::new()?;
        let mut bytes = 0_usize;
        loop {
            let t0 = Instant::now();
            if control.expired(t0) {
                black_box(bytes);
                return Ok(tally);
            }
            let start = keys.key(rng.random_range(0..starts));
            let snap = db.begin_read();
            for item in snap.scan(start..)?.take(SCAN_ITEMS) {
                let (key, value) = item?;
                bytes += black_box(key).len() + black_box(value).len();
            }
            drop(snap);
            tally.record(t0.elapsed(), 1);
            control.advance(1);
        }
    })
}
