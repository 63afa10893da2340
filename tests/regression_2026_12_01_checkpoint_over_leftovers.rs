//! Regression (2026-12-01): a checkpoint went into the leftovers of one cut
//! short.
//!
//! `Db::checkpoint(dir)` requires `dir` to be missing or empty, but it
//! asked only `Vfs::list(dir)`, which lists the files directly in `dir`. A
//! checkpoint that fails or is killed while it links tables or copies the
//! WAL has written files only into `dir/tables` and `dir/wal` (`MANIFEST`
//! and `CURRENT` come last), so a retry into the same directory was taken
//! for one into an empty directory: on `MemVfs` it wrote over the old
//! files; on the OS, linking a table whose name was already there failed
//! with a bare `File exists` I/O error; and WAL segments left by the first
//! attempt (ones the source has deleted since) sat below the new copy,
//! where they could make its recovery report corruption. The contract (and
//! the error `InvalidArgument` for a non-empty directory) was not kept.
//!
//! Fixed in `src/checkpoint.rs`: the emptiness check also lists `tables/`
//! and `wal/`, and names the first file it finds. Directories alone are
//! still empty: a checkpoint whose directory creation is all that survived
//! can be retried in place.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata::vfs::{FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options};

fn options() -> Options {
    common::options(Durability::Sync)
}

fn fill(db: &Db) {
    for i in 0..20u32 {
        let mut t = db.begin();
        t.put(format!("k{i:03}").as_bytes(), &[b'v'; 100]).unwrap();
        t.commit().unwrap();
        if i == 9 {
            db.flush().unwrap();
        }
    }
}

#[test]
fn a_checkpoint_refuses_the_tables_a_failed_one_left() {
    let mem = MemVfs::new();
    let (fault, faults) = FaultVfs::new(Arc::new(mem.clone()));
    let db = Db::open_with_vfs(common::MEM_DB_PATH, options(), Arc::new(fault)).unwrap();
    fill(&db);
    // The first table's copy is created, its write fails.
    faults.fail_writes_now();
    assert!(matches!(db.checkpoint("/ckpt"), Err(Error::Io(_))));
    faults
        .writes_before_failure
        .store(u64::MAX, Ordering::SeqCst);
    assert!(mem.list(Path::new("/ckpt")).unwrap().is_empty());
    assert_eq!(mem.list(Path::new("/ckpt/tables")).unwrap().len(), 1);
    match db.checkpoint("/ckpt") {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("tables"), "{why}"),
        other => panic!("a checkpoint over a failed one's tables: {other:?}"),
    }
    db.close().unwrap();
}

#[test]
fn a_checkpoint_cut_short_on_disk_is_refused_not_linked_over() {
    let dir = common::temp_dir();
    let (src, dest) = (dir.path().join("db"), dir.path().join("ckpt"));
    let db = Db::open(&src, options()).unwrap();
    fill(&db);
    db.checkpoint(&dest).unwrap();
    // As a kill before the copy's manifest leaves it: its tables and WAL.
    for name in std::fs::read_dir(&dest).unwrap() {
        let path = name.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    match db.checkpoint(&dest) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("not empty"), "{why}"),
        other => panic!("a checkpoint over a killed one's files: {other:?}"),
    }
    db.close().unwrap();
}
