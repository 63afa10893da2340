//! A snapshot re-takes the current view at the start of an operation once a
//! newer one is installed (decision 0032): it reads exactly its snapshot
//! across flushes and compactions, holds no flushed memtable once it has
//! read again (`Stats::pinned_memtable_bytes`), a scan or cursor keeps the
//! view it began on until it is dropped, and a `Txn` that re-took its view
//! still reads its own writes and still loses to an earlier committer.
//!
//! Nothing here waits for a time. Once `Db::flush` and
//! `Db::wait_for_compactions` have returned, the background workers hold
//! no view from before (they let go inside the steps those wait for), so
//! every pinned byte is a snapshot's or a scan's.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{MEM_DB_PATH, collect};
use rand::Rng;
use strata::vfs::MemVfs;
use strata::{Cursor, Db, Durability, Error, ReadTxn, Scan, Txn};

/// Memtables of 64 KiB: a round of writes fills about one.
const BUDGET: u64 = 256 * 1024;
const KEYS: u32 = 400;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// No history kept beyond what live snapshots need, so compaction drops
/// every version it may: a snapshot that re-took its view reads versions
/// only because the GC kept them for it.
fn open() -> Db {
    let options = common::options(Durability::Buffered)
        .memory_budget(BUDGET)
        .history_retention(Duration::ZERO);
    Db::open_with_vfs(MEM_DB_PATH, options, Arc::new(MemVfs::new())).unwrap()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("v{i}-{round}|").into_bytes();
    v.resize(120, b'.');
    v
}

/// Every key written (one in `delete_every` deleted) in transactions of 50.
fn write_round(db: &Db, model: &mut Model, round: u32, delete_every: u32) {
    common::write_round(db, model, KEYS, 50, key, |i| {
        (!(i + round).is_multiple_of(delete_every)).then(|| value(i, round))
    });
}

/// The latest snapshot reads `model`; then the database closes.
fn assert_latest_and_close(db: Db, model: Model) {
    let latest = collect(db.begin_read().scan(..).unwrap());
    assert_eq!(latest, model.into_iter().collect::<Vec<_>>());
    db.close().unwrap();
}

/// Waits until no flush or compaction runs or is due: from here on only
/// snapshots and scans hold older views.
fn settle(db: &Db) {
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
}

/// Reads `snap` as three kinds of operation and compares with `model`:
/// point reads (present and absent keys), a whole scan, and a cursor from
/// the back.
fn assert_reads(snap: &ReadTxn<'_>, model: &Model, rng: &mut impl Rng, what: &str) {
    for _ in 0..20 {
        let k = key(rng.random_range(0..KEYS + 10));
        assert_eq!(snap.get(&k).unwrap().as_ref(), model.get(&k), "{what}: get");
    }
    let rows = collect(snap.scan(..).unwrap());
    assert!(rows.iter().cloned().eq(model.clone()), "{what}: scan");
    let mut cursor = snap.cursor(..).unwrap();
    for (k, v) in model.iter().rev().take(30) {
        let (ck, cv) = cursor.next_back().unwrap().unwrap();
        assert_eq!((ck, cv), (k.as_slice(), v.as_slice()), "{what}: cursor");
    }
}

#[test]
fn snapshots_held_across_flushes_and_compactions_read_exactly_their_snapshot() {
    let mut rng = common::seeded_rng("snapshots_held_across_flushes_and_compactions");
    let db = open();
    let mut model = Model::new();
    let mut snaps: Vec<(ReadTxn<'_>, Model)> = Vec::new();
    for round in 0..10 {
        write_round(&db, &mut model, round, 7);
        if round % 3 == 0 {
            snaps.push((db.begin_read(), model.clone()));
        }
        if round % 4 == 3 {
            db.compact().unwrap();
        }
        settle(&db);
        let before = db.stats();
        if round > 0 {
            // Each snapshot's view lists the memtable this round wrote into
            // (it took the view after the last round's flush), now flushed.
            assert!(
                before.pinned_memtable_bytes > 0,
                "round {round}: {before:?}"
            );
        }
        for (i, (snap, at)) in snaps.iter().enumerate() {
            assert_reads(snap, at, &mut rng, &format!("round {round}, snapshot {i}"));
        }
        // Having read, each holds the current view, and nothing else.
        let after = db.stats();
        assert_eq!(after.pinned_memtable_bytes, 0, "round {round}: {after:?}");
        assert_eq!(after.obsolete_tables, 0, "round {round}: {after:?}");
        if round > 0 {
            assert!(after.memory_bytes < before.memory_bytes, "round {round}");
        }
    }
    assert!(db.stats().compactions > 0, "{:?}", db.stats());
    drop(snaps);
    assert_latest_and_close(db, model);
}

#[test]
fn a_scan_and_a_cursor_opened_before_a_flush_read_on_after_their_snapshot_moved_on() {
    let db = open();
    let mut old = Model::new();
    write_round(&db, &mut old, 0, 5);
    // All in tables, which the compaction below replaces.
    settle(&db);
    let rows: Vec<_> = old.clone().into_iter().collect();
    let snap = db.begin_read();
    let mut scan = snap.scan(..).unwrap();
    let mut cursor = snap.cursor(..).unwrap();
    let front: Vec<_> = scan.by_ref().take(50).map(Result::unwrap).collect();
    assert_eq!(front, rows[..50]);
    let mut back = Vec::new();
    for _ in 0..50 {
        let (k, v) = cursor.next_back().unwrap().unwrap();
        back.push((k.to_vec(), v.to_vec()));
    }
    let mut new = old.clone();
    for round in 1..4 {
        write_round(&db, &mut new, round, 5);
    }
    db.compact().unwrap();
    settle(&db);
    // The snapshot reads through the current view from here on...
    let k = key(3);
    assert_eq!(snap.get(&k).unwrap().as_ref(), old.get(&k));
    // ...while the scan and the cursor keep theirs, with its memtable and
    // the tables compaction replaced.
    let held = db.stats();
    assert!(held.pinned_memtable_bytes > 0, "{held:?}");
    assert!(held.obsolete_tables > 0, "{held:?}");
    // Both read on exactly the snapshot: the scan to its end, the cursor
    // from its front until it meets its back.
    let rest: Vec<_> = scan.map(Result::unwrap).collect();
    assert_eq!(rest, rows[50..]);
    let mut forward = Vec::new();
    while let Some(row) = cursor.next() {
        let (k, v) = row.unwrap();
        forward.push((k.to_vec(), v.to_vec()));
    }
    forward.extend(back.into_iter().rev());
    assert_eq!(forward, rows);
    drop(cursor);
    let released = db.stats();
    assert_eq!(released.pinned_memtable_bytes, 0, "{released:?}");
    assert_eq!(released.obsolete_tables, 0, "{released:?}");
    // A scan opened now reads the same snapshot through the new view.
    assert_eq!(collect(snap.scan(..).unwrap()), rows);
    drop(snap);
    assert_latest_and_close(db, new);
}

#[test]
fn a_txn_that_re_took_its_view_reads_its_own_writes_and_still_conflicts() {
    let db = open();
    let put = |pairs: &[(&[u8], &[u8])]| {
        let mut t = db.begin();
        for (k, v) in pairs {
            t.put(k, v).unwrap();
        }
        t.commit().unwrap()
    };
    put(&[(b"a", b"1"), (b"b", b"1"), (b"c", b"1")]);
    let mut t = db.begin();
    t.put(b"a", b"2").unwrap();
    t.delete(b"b").unwrap();
    assert_eq!(t.get(b"c").unwrap(), Some(b"1".to_vec()));
    // Meanwhile another transaction writes `c` and `d`, and everything is
    // flushed and compacted into tables.
    put(&[(b"c", b"9"), (b"d", b"9")]);
    db.compact().unwrap();
    settle(&db);
    assert!(db.stats().pinned_memtable_bytes > 0, "t's view holds them");
    // A read its own writes answer does not read the view (nor take it).
    assert_eq!(t.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert!(db.stats().pinned_memtable_bytes > 0);
    // Its next read of the snapshot takes the current view: still its
    // snapshot under its own writes.
    assert_eq!(t.get(b"c").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.stats().pinned_memtable_bytes, 0);
    assert_eq!(t.get(b"b").unwrap(), None);
    assert_eq!(t.get(b"d").unwrap(), None);
    let rows = collect(t.scan(..).unwrap());
    assert_eq!(
        rows,
        [
            (b"a".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"1".to_vec())
        ]
    );
    // First committer wins: `c` was committed after t's read ts.
    t.put(b"c", b"3").unwrap();
    let err = t.commit().unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { key, .. } if key == b"c"),
        "{err:?}"
    );
    assert_eq!(db.begin_read().get(b"a").unwrap(), Some(b"1".to_vec()));

    // One that re-took its view and wrote only its own keys commits.
    let mut u = db.begin();
    u.put(b"e", b"5").unwrap();
    put(&[(b"f", b"6")]);
    settle(&db);
    assert_eq!(u.get(b"f").unwrap(), None);
    assert_eq!(u.get(b"e").unwrap(), Some(b"5".to_vec()));
    u.commit().unwrap();
    let r = db.begin_read();
    assert_eq!(r.get(b"e").unwrap(), Some(b"5".to_vec()));
    assert_eq!(r.get(b"f").unwrap(), Some(b"6".to_vec()));
    drop(r);
    db.close().unwrap();
}

/// The re-take keeps transactions, scans and cursors `Send` and `Sync`, as
/// they were (a compile-time check: the test compiles only if they are).
#[test]
fn transactions_scans_and_cursors_stay_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ReadTxn<'static>>();
    send_sync::<Txn<'static>>();
    send_sync::<Scan<'static>>();
    send_sync::<Cursor<'static>>();
}
