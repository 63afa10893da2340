//! Compaction through the public API (decision 0019): under a small memory
//! budget tables pile into level 0 and the background compactor merges
//! them down; `Db::compact` merges everything and drops every version no
//! snapshot can read. A model (`BTreeMap`) is the oracle for every read.
//! Waiting is on `Db::wait_for_compactions` / `Db::compact`, never on time.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{MEM_DB_PATH, collect};
use strata::vfs::{FaultConfig, FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options};

/// A budget whose memtable share (a quarter) is 16 KiB; tables of 64 KiB.
const SMALL_BUDGET: u64 = 64 * 1024;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// No history kept beyond what live snapshots need, so compaction drops
/// every version it may.
fn options() -> Options {
    common::options(Durability::Buffered)
        .memory_budget(SMALL_BUDGET)
        .history_retention(Duration::ZERO)
}

fn open(vfs: &MemVfs) -> Db {
    Db::open_with_vfs(MEM_DB_PATH, options(), Arc::new(vfs.clone())).unwrap()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("v{i}-{round}|").into_bytes();
    v.resize(100, b'.');
    v
}

/// One round: every key of `0..keys` written (or, for one in `delete_every`
/// of them, deleted) in transactions of 50.
fn write_round(db: &Db, model: &mut Model, keys: u32, round: u32, delete_every: u32) {
    common::write_round(db, model, keys, 50, key, |i| {
        let deleted = delete_every > 0 && (i + round).is_multiple_of(delete_every);
        (!deleted).then(|| value(i, round))
    });
}

fn assert_matches(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, label: &str) {
    common::assert_reads_model(db, model, (0..4000).step_by(7).map(key), label);
}

fn table_files(vfs: &MemVfs) -> usize {
    vfs.list(&Path::new(MEM_DB_PATH).join("tables"))
        .map_or(0, |names| {
            names
                .iter()
                .filter(|n| Path::new(n).extension().is_some_and(|e| e == "sst"))
                .count()
        })
}

fn levels(db: &Db) -> Vec<u64> {
    db.stats().tables_per_level
}

#[test]
fn the_background_compactor_keeps_level_0_short_and_every_read_right_at_10x_the_budget() {
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut model = Model::new();
    // 7000 keys of ~110 B: the live data is over 10x the 64 KiB budget.
    for round in 0..6 {
        write_round(&db, &mut model, 7000, round, 11);
        db.wait_for_compactions().unwrap();
        let stats = db.stats();
        assert!(
            stats.tables_per_level.first().copied().unwrap_or(0) < 4,
            "round {round}: level 0 holds {:?} after the compactor settled",
            stats.tables_per_level
        );
        assert_matches(&db, &model, &format!("round {round}"));
    }
    let stats = db.stats();
    let table_bytes: u64 = stats.bytes_per_level.iter().sum();
    assert!(
        table_bytes >= 10 * SMALL_BUDGET,
        "{table_bytes} bytes of tables"
    );
    // Bounded after six rounds of overwrites (~5.5 MB written, ~340
    // flushes): files and bytes near the live data's (~0.8 MB).
    assert!(stats.tables <= 40, "{stats:?}");
    assert!(table_bytes <= 2 << 20, "{table_bytes} bytes of tables");
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(stats.tables_per_level.len() >= 2, "{stats:?}");
    assert!(
        stats.compaction_versions_dropped > 0,
        "overwrites were dropped"
    );
    assert_eq!(
        table_files(&vfs) as u64,
        stats.tables,
        "every compacted-away file is deleted once no view lists it"
    );
    db.close().unwrap();
    let db = open(&vfs);
    assert_eq!(
        levels(&db),
        stats.tables_per_level,
        "the manifest kept the levels"
    );
    assert_matches(&db, &model, "reopened");
    db.close().unwrap();
}

#[test]
fn a_load_in_key_order_moves_its_tables_down_without_rewriting_them() {
    // A budget whose memtables fill tables of at least a quarter of the
    // table size (64 KiB tables, 64 KiB memtables): only those move.
    let options = options().memory_budget(4 * SMALL_BUDGET);
    let open = |vfs: &MemVfs| {
        Db::open_with_vfs(MEM_DB_PATH, options.clone(), Arc::new(vfs.clone())).unwrap()
    };
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut model = Model::new();
    // Ascending keys: each flushed memtable lies above every table before
    // it, so level 0 goes down by moves alone (decision 0033).
    write_round(&db, &mut model, 7000, 0, 0);
    db.wait_for_compactions().unwrap();
    let loaded = db.stats();
    assert!(loaded.compaction_moves > 0, "{loaded:?}");
    assert_eq!(loaded.compaction_bytes_written, 0, "{loaded:?}");
    assert!(
        loaded.tables_per_level.first().copied().unwrap_or(0) < 4,
        "{loaded:?}"
    );
    assert!(
        loaded.tables_per_level.iter().skip(1).sum::<u64>() > 0,
        "{loaded:?}"
    );
    assert_matches(&db, &model, "loaded");
    // Overwrites meet the moved tables: those merge, and still read right.
    write_round(&db, &mut model, 7000, 1, 0);
    db.wait_for_compactions().unwrap();
    let overwritten = db.stats();
    assert!(overwritten.compaction_bytes_written > 0, "{overwritten:?}");
    assert_matches(&db, &model, "overwritten");
    db.close().unwrap();
    let db = open(&vfs);
    assert_eq!(levels(&db), overwritten.tables_per_level);
    assert_matches(&db, &model, "reopened");
    db.close().unwrap();
}

#[test]
fn a_full_compaction_keeps_one_version_per_live_key_and_drops_deleted_keys() {
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut model = Model::new();
    for round in 0..10 {
        write_round(&db, &mut model, 1000, round, 0);
    }
    // Delete one key in ten.
    for i in (0..1000).step_by(10) {
        let mut t = db.begin();
        t.delete(&key(i)).unwrap();
        t.commit().unwrap();
        model.remove(&key(i));
    }
    db.compact().unwrap();
    let stats = db.stats();
    assert_eq!(stats.table_versions, 900, "{stats:?}");
    assert_eq!(stats.memtable_versions, 0);
    assert_eq!(
        stats.tables_per_level.iter().filter(|&&n| n > 0).count(),
        1,
        "everything in one level: {stats:?}"
    );
    assert_eq!(stats.tables_per_level.first().copied().unwrap_or(0), 0);
    assert_matches(&db, &model, "after compact");
    // Space: the tables hold the live data once (keys, values and per-entry
    // overhead), well under 1.5x of what a fresh load of it takes.
    let compacted: u64 = stats.bytes_per_level.iter().sum();
    let fresh_vfs = MemVfs::new();
    let fresh = open(&fresh_vfs);
    for (k, v) in &model {
        let mut t = fresh.begin();
        t.put(k, v).unwrap();
        t.commit().unwrap();
    }
    fresh.compact().unwrap();
    let fresh_bytes: u64 = fresh.stats().bytes_per_level.iter().sum();
    assert!(
        compacted * 2 <= fresh_bytes * 3,
        "space amplification: {compacted} bytes against {fresh_bytes} for the live data"
    );
    fresh.close().unwrap();
    db.close().unwrap();
    let db = open(&vfs);
    assert_matches(&db, &model, "reopened");
    db.close().unwrap();
}

#[test]
fn deleting_everything_and_compacting_leaves_no_table() {
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut model = Model::new();
    write_round(&db, &mut model, 2000, 0, 0);
    db.flush().unwrap();
    write_round(&db, &mut model, 2000, 1, 1); // every key deleted
    assert!(model.is_empty());
    db.compact().unwrap();
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    assert_eq!(stats.tables, 0, "{stats:?}");
    assert_eq!(table_files(&vfs), 0);
    assert_matches(&db, &model, "all deleted");
    // A write after that lands and reads back.
    let mut t = db.begin();
    t.put(b"again", b"1").unwrap();
    t.commit().unwrap();
    db.compact().unwrap();
    assert_eq!(db.stats().table_versions, 1);
    assert_eq!(
        db.begin_read().get(b"again").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    db.close().unwrap();
}

#[test]
fn a_snapshot_held_across_compactions_reads_its_versions_and_pins_its_files() {
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut old = Model::new();
    write_round(&db, &mut old, 1000, 0, 0);
    db.compact().unwrap();
    let files_before = table_files(&vfs);
    let snap = db.begin_read();
    let mut new = old.clone();
    for round in 1..4 {
        write_round(&db, &mut new, 1000, round, 5);
    }
    db.compact().unwrap();
    db.wait_for_compactions().unwrap();
    // The snapshot's versions survive GC (it holds the watermark at its
    // read ts), and so does every version written after it: 1000 + 3000.
    let stats = db.stats();
    assert_eq!(stats.table_versions, 4000, "{stats:?}");
    // Until it reads again, its view still lists the tables compacted
    // away: their files stay.
    assert_eq!(stats.obsolete_tables, files_before as u64, "{stats:?}");
    assert_eq!(table_files(&vfs), files_before + stats.tables as usize);
    // Its next read takes the current view (decision 0032), which holds
    // its versions too, and lets the old tables go.
    let rows = collect(snap.scan(..).unwrap());
    assert!(
        rows.iter().cloned().eq(old.clone()),
        "the snapshot reads its own versions"
    );
    assert_matches(&db, &new, "latest");
    db.wait_for_compactions().unwrap();
    assert_eq!(db.stats().obsolete_tables, 0);
    assert_eq!(table_files(&vfs) as u64, db.stats().tables);
    drop(snap);
    db.compact().unwrap();
    assert_eq!(db.stats().table_versions, new.len() as u64);
    assert_matches(&db, &new, "after the snapshot went");
    db.close().unwrap();
}

#[test]
fn a_failed_compaction_poisons_the_database_and_loses_nothing() {
    type Inject = fn(&FaultConfig);
    let cases: [(&str, Inject); 4] = [
        ("create", FaultConfig::fail_creates_now),
        ("write", FaultConfig::fail_writes_now),
        ("sync", FaultConfig::fail_syncs_now),
        ("full disk", FaultConfig::fail_as_full_disk_now),
    ];
    for (what, inject) in cases {
        let mem = MemVfs::new();
        let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
        // The default budget: no flush or compaction but those asked for.
        let opts = common::options(Durability::Sync).history_retention(Duration::ZERO);
        let db = Db::open_with_vfs(MEM_DB_PATH, opts.clone(), Arc::new(fault)).unwrap();
        let mut model = Model::new();
        for round in 0..3 {
            write_round(&db, &mut model, 500, round, 9);
            db.flush().unwrap();
        }
        inject(&config);
        assert!(db.compact().is_err(), "{what}: the compaction failed");
        let mut t = db.begin();
        t.put(b"later", b"x").unwrap();
        assert!(matches!(t.commit(), Err(Error::Poisoned)), "{what}");
        assert_matches(&db, &model, what);
        drop(db);
        let after = mem.crash();
        let db = Db::open_with_vfs(MEM_DB_PATH, opts.clone(), Arc::new(after.clone())).unwrap();
        assert_matches(&db, &model, &format!("{what}, reopened"));
        db.compact().unwrap();
        assert_matches(&db, &model, &format!("{what}, compacted after reopening"));
        let stats = db.stats();
        assert_eq!(
            table_files(&after) as u64,
            stats.tables,
            "{what}: orphans removed"
        );
        db.close().unwrap();
    }
}

#[test]
fn compaction_keeps_conflicts_exact() {
    let vfs = MemVfs::new();
    let db = open(&vfs);
    let mut model = Model::new();
    write_round(&db, &mut model, 1000, 0, 0);
    let mut loser = db.begin();
    assert!(loser.get(&key(5)).unwrap().is_some());
    let mut winner = db.begin();
    winner.put(&key(5), b"winner").unwrap();
    winner.commit().unwrap();
    for round in 1..3 {
        write_round(&db, &mut model, 1000, round, 0);
    }
    db.compact().unwrap();
    loser.put(&key(5), b"loser").unwrap();
    assert!(matches!(loser.commit(), Err(Error::Conflict { .. })));
    // A transaction that began after the last write of its key commits.
    let mut fine = db.begin();
    fine.put(&key(5), b"fine").unwrap();
    fine.commit().unwrap();
    db.close().unwrap();
}
