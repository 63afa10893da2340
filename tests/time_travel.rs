//! Time travel (`Db::begin_read_at`) and governed long readers
//! (`Options::max_snapshot_age`), through the public API: reads as of a
//! past ts are exact across flushes, compactions and reopens while the
//! history is retained; older reads are `SnapshotTooOld`; a snapshot past
//! its age stops pinning versions and fails its next read or commit.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{MEM_DB_PATH, collect};
use strata::vfs::MemVfs;
use strata::{Db, Durability, Error, Options, Ts};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(retention: Duration) -> Options {
    common::options(Durability::Buffered)
        .memory_budget(64 * 1024)
        .history_retention(retention)
}

fn open(vfs: &MemVfs, options: Options) -> Db {
    Db::open_with_vfs(MEM_DB_PATH, options, Arc::new(vfs.clone())).unwrap()
}

/// Round `round` of writes to keys `0..200` (one in five deleted); the
/// commit ts of its last transaction.
fn write_round(db: &Db, model: &mut Model, round: u32) -> Ts {
    write_round_spans(db, model, round).1
}

/// As [`write_round`]: the commit ts of its first and last transactions.
fn write_round_spans(db: &Db, model: &mut Model, round: u32) -> (Ts, Ts) {
    let mut first = None;
    let mut last = Ts::ZERO;
    for chunk in (0..200u32).collect::<Vec<_>>().chunks(25) {
        let mut t = db.begin();
        for &i in chunk {
            let k = format!("k{i:04}").into_bytes();
            if (i + round).is_multiple_of(5) {
                t.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("v{i}-{round}").into_bytes();
                t.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        last = t.commit().unwrap();
        first.get_or_insert(last);
    }
    (first.unwrap_or(last), last)
}

fn read_at(db: &Db, ts: Ts) -> Vec<(Vec<u8>, Vec<u8>)> {
    let r = db.begin_read_at(ts).unwrap();
    assert_eq!(r.read_ts(), ts);
    collect(r.scan(..).unwrap())
}

#[test]
fn reads_as_of_a_past_ts_are_exact_across_flushes_compactions_and_reopens() {
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::from_secs(3600)));
    let mut model = Model::new();
    let mut history: Vec<(Ts, Model)> = Vec::new();
    let mut firsts = Vec::new();
    for round in 0..6 {
        let (first, ts) = write_round_spans(&db, &mut model, round);
        firsts.push(first);
        history.push((ts, model.clone()));
        if round % 2 == 1 {
            db.compact().unwrap();
        }
    }
    let check = |db: &Db, label: &str| {
        for (i, (ts, expect)) in history.iter().enumerate() {
            let rows = read_at(db, *ts);
            assert!(
                rows.iter().cloned().eq(expect.clone()),
                "{label}: as of {ts:?}"
            );
            // A ts between two commits reads the earlier one's state.
            let between = Ts::from(ts.get() + 1);
            if firsts.get(i + 1).is_some_and(|&next| between < next) {
                assert!(read_at(db, between).iter().cloned().eq(expect.clone()));
            }
            let r = db.begin_read_at(*ts).unwrap();
            for (k, v) in expect.iter().take(10) {
                assert_eq!(r.get(k).unwrap().as_ref(), Some(v), "{label}: get");
            }
        }
    };
    check(&db, "open");
    db.close().unwrap();
    let db = open(&vfs, options(Duration::from_secs(3600)));
    check(&db, "reopened");
    db.compact().unwrap();
    check(&db, "compacted after reopening");
    db.close().unwrap();
}

#[test]
fn a_ts_older_than_the_retained_history_is_snapshot_too_old() {
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::ZERO));
    let mut model = Model::new();
    let first = write_round(&db, &mut model, 0);
    // A live snapshot at `first` keeps its history readable.
    let held = db.begin_read();
    assert_eq!(held.read_ts(), first);
    // Retention zero keeps back to the current millisecond: let the wall
    // clock pass `first`'s (an event, not a duration).
    while Ts::from_time(SystemTime::now()).unix_millis() <= first.unix_millis() {
        std::hint::spin_loop();
    }
    let second = write_round(&db, &mut model, 1);
    assert_eq!(db.begin_read_at(first).unwrap().read_ts(), first);
    drop(held);
    // Nothing retained but the latest state now.
    match db.begin_read_at(first) {
        Err(Error::SnapshotTooOld { read_ts, oldest }) => {
            assert_eq!(read_ts, first);
            assert!(oldest > first && oldest <= second, "{oldest:?}");
        }
        other => panic!("expected SnapshotTooOld, got {other:?}"),
    }
    let oldest = db.stats().oldest_readable_ts;
    assert!(oldest > first && oldest <= second);
    assert_eq!(db.begin_read_at(second).unwrap().read_ts(), second);
    db.compact().unwrap();
    assert!(matches!(
        db.begin_read_at(Ts::from(second.get() - 1)),
        Err(Error::SnapshotTooOld { .. })
    ));
    db.close().unwrap();
}

/// What compaction collected is recorded in the manifest: reopened with a
/// longer retention, a database still refuses a ts below it instead of
/// answering from versions compaction already dropped (before the history
/// floor was persisted, `first` was accepted and read nothing).
#[test]
fn the_history_compaction_collected_stays_refused_after_a_reopen_with_longer_retention() {
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::ZERO));
    let mut model = Model::new();
    let first = write_round(&db, &mut model, 0);
    while Ts::from_time(SystemTime::now()).unix_millis() <= first.unix_millis() {
        std::hint::spin_loop();
    }
    let second = write_round(&db, &mut model, 1);
    db.compact().unwrap();
    let collected_below = db.stats().oldest_readable_ts;
    assert!(collected_below > first, "{collected_below:?}");
    db.close().unwrap();

    let db = open(&vfs, options(Duration::from_secs(3600)));
    match db.begin_read_at(first) {
        Err(Error::SnapshotTooOld { read_ts, oldest }) => {
            assert_eq!(read_ts, first);
            assert!(oldest >= collected_below && oldest <= second, "{oldest:?}");
        }
        Err(e) => panic!("expected SnapshotTooOld, got {e:?}"),
        Ok(r) => panic!(
            "a snapshot at {:?} below the collected history",
            r.read_ts()
        ),
    }
    assert_eq!(db.stats().oldest_readable_ts, collected_below);
    // What is still exact reads exactly.
    let rows = read_at(&db, second);
    assert!(
        rows.iter().cloned().eq(model.clone()),
        "as of the last commit"
    );
    db.close().unwrap();
}

#[test]
fn a_ts_above_the_latest_commit_is_a_stable_snapshot_and_the_future_is_refused() {
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::from_secs(3600)));
    let mut model = Model::new();
    let last = write_round(&db, &mut model, 0);
    // Above every commit, not in the future.
    let now = Ts::from(last.get() + 1);
    let snap = db.begin_read_at(now).unwrap();
    let before = collect(snap.scan(..).unwrap());
    assert!(before.iter().cloned().eq(model.clone()));
    let mut later = model.clone();
    let next = write_round(&db, &mut later, 1);
    assert!(next > now, "every later commit takes a larger ts");
    assert_eq!(
        collect(snap.scan(..).unwrap()),
        before,
        "later commits never change it"
    );
    assert!(db.begin_read_at(now).unwrap().scan(..).unwrap().count() == before.len());
    let future = Ts::from_time(SystemTime::now() + Duration::from_secs(3600));
    assert!(matches!(
        db.begin_read_at(future),
        Err(Error::InvalidArgument(_))
    ));
    drop(snap);
    db.close().unwrap();
}

#[test]
fn a_snapshot_past_its_age_stops_pinning_history_and_fails_its_next_read_and_commit() {
    let vfs = MemVfs::new();
    // Every snapshot is past an age of zero at once.
    let opts = options(Duration::ZERO).max_snapshot_age(Duration::ZERO);
    let db = open(&vfs, opts);
    let mut t = db.begin();
    t.put(b"k", b"v").unwrap();
    assert!(matches!(t.commit(), Err(Error::SnapshotTooOld { .. })));
    assert!(matches!(
        db.begin_read().get(b"k"),
        Err(Error::SnapshotTooOld { .. })
    ));
    assert!(db.begin_read().scan(..).is_err());
    let stats = db.stats();
    assert_eq!(stats.live_snapshots, 0, "expired snapshots pin nothing");
    db.close().unwrap();

    // Under the default (generous) limit, a held snapshot keeps its
    // versions through compaction until it is dropped.
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::ZERO));
    let mut model = Model::new();
    write_round(&db, &mut model, 0);
    let held = db.begin_read();
    for round in 1..4 {
        write_round(&db, &mut model, round);
    }
    db.compact().unwrap();
    let pinned = db.stats().table_versions;
    assert!(
        pinned > model.len() as u64,
        "the live snapshot keeps its versions"
    );
    assert_eq!(db.stats().live_snapshots, 1);
    assert!(!collect(held.scan(..).unwrap()).is_empty());
    drop(held);
    db.compact().unwrap();
    assert_eq!(db.stats().table_versions, model.len() as u64);
    db.close().unwrap();
}

#[test]
fn an_expired_snapshot_does_not_hold_back_compaction() {
    // Loaded with the default age limit (a zero limit refuses every
    // commit), then reopened with a zero one.
    let vfs = MemVfs::new();
    let db = open(&vfs, options(Duration::ZERO));
    let mut model = Model::new();
    for round in 0..3 {
        write_round(&db, &mut model, round);
    }
    db.close().unwrap();
    let db = open(
        &vfs,
        options(Duration::ZERO).max_snapshot_age(Duration::ZERO),
    );
    let held = db.begin_read(); // expired at once
    db.compact().unwrap();
    assert_eq!(
        db.stats().table_versions,
        model.len() as u64,
        "an expired snapshot pins nothing"
    );
    assert!(matches!(
        held.get(b"k0001"),
        Err(Error::SnapshotTooOld { .. })
    ));
    drop(held);
    db.close().unwrap();
    let db = open(&vfs, options(Duration::ZERO));
    let rows = collect(db.begin_read().scan(..).unwrap());
    assert!(rows.into_iter().eq(model));
    db.close().unwrap();
}
