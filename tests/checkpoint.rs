//! Online checkpoints (`Db::checkpoint`, decision 0022): the copy opens as a
//! database holding exactly the commits at or below the returned ts,
//! including while a writer keeps committing, and it stays intact while
//! the source compacts and deletes its own files.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{MEM_DB_PATH, collect};
use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Durability, Error, Options, Ts};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const CHECKPOINT: &str = "/checkpoint";

fn options() -> Options {
    common::options(Durability::Buffered)
        .memory_budget(64 * 1024)
        .history_retention(Duration::ZERO)
}

fn open_at(vfs: &MemVfs, path: &str) -> Db {
    Db::open_with_vfs(path, options(), Arc::new(vfs.clone())).unwrap()
}

fn write_round(db: &Db, model: &mut Model, round: u32) {
    for chunk in (0..600u32).collect::<Vec<_>>().chunks(30) {
        let mut t = db.begin();
        for &i in chunk {
            let k = format!("key{i:05}").into_bytes();
            if (i + round).is_multiple_of(7) {
                t.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let mut v = format!("v{i}-{round}").into_bytes();
                v.resize(90, b'.');
                t.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        t.commit().unwrap();
    }
}

fn rows(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    collect(db.begin_read().scan(..).unwrap())
}

#[test]
fn a_checkpoint_with_tables_and_a_wal_tail_opens_with_exactly_its_commits() {
    let vfs = MemVfs::new();
    let db = open_at(&vfs, MEM_DB_PATH);
    let mut model = Model::new();
    for round in 0..4 {
        write_round(&db, &mut model, round);
    }
    db.compact().unwrap();
    write_round(&db, &mut model, 4); // some of it only in the WAL
    // ... unless the round's last commit filled the memtable and its flush
    // already ran (where memtables freeze depends on their accounting and
    // on whether the flusher kept up): one small commit more then lands in
    // a fresh memtable, far below its limit, so this ends at once.
    while db.stats().memtable_versions == 0 {
        let k = b"key99999".to_vec();
        let v = format!("tail-{}", model.len()).into_bytes();
        db.update(|t| t.put(&k, &v)).unwrap();
        model.insert(k, v);
    }
    let stats = db.stats();
    assert!(stats.tables > 0 && stats.memtable_versions > 0, "{stats:?}");
    let ts = db.checkpoint(CHECKPOINT).unwrap();
    assert_eq!(ts, stats.read_ts, "an idle database: the latest commit");
    // The source goes on; the copy does not see it.
    let at_checkpoint = model.clone();
    write_round(&db, &mut model, 5);
    db.compact().unwrap();
    db.close().unwrap();
    let copy = open_at(&vfs, CHECKPOINT);
    assert!(rows(&copy).into_iter().eq(at_checkpoint.clone()));
    assert_eq!(copy.stats().read_ts, ts);
    // The copy is a database of its own: writable, reopenable.
    let mut mine = at_checkpoint.clone();
    write_round(&copy, &mut mine, 9);
    copy.close().unwrap();
    let copy = open_at(&vfs, CHECKPOINT);
    assert!(rows(&copy).into_iter().eq(mine));
    copy.close().unwrap();
    let db = open_at(&vfs, MEM_DB_PATH);
    assert!(rows(&db).into_iter().eq(model));
    db.close().unwrap();
}

#[test]
fn a_checkpoint_taken_while_a_writer_commits_holds_exactly_the_commits_up_to_its_ts() {
    let vfs = MemVfs::new();
    let db = open_at(&vfs, MEM_DB_PATH);
    let stop = AtomicBool::new(false);
    let (ts, log) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut log: Vec<(Ts, u32)> = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) || log.len() < 200 {
                let mut t = db.begin();
                let mut v = format!("{i}").into_bytes();
                v.resize(200, b'.');
                t.put(format!("n{i:06}").as_bytes(), &v).unwrap();
                log.push((t.commit().unwrap(), i));
                i += 1;
            }
            log
        });
        // Some commits first, so the checkpoint races real work.
        while db.stats().commits < 100 {
            std::thread::yield_now();
        }
        let ts = db.checkpoint(CHECKPOINT).unwrap();
        stop.store(true, Ordering::SeqCst);
        (ts, writer.join().unwrap())
    });
    db.close().unwrap();
    let expect: Vec<Vec<u8>> = log
        .iter()
        .filter(|(t, _)| *t <= ts)
        .map(|(_, i)| format!("n{i:06}").into_bytes())
        .collect();
    assert!(expect.len() >= 100, "every commit before the call is in");
    let copy = open_at(&vfs, CHECKPOINT);
    let keys: Vec<Vec<u8>> = rows(&copy).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, expect, "exactly the commits at or below {ts:?}");
    copy.close().unwrap();
}

#[test]
fn a_checkpoint_needs_an_empty_directory_and_a_writable_database() {
    let vfs = MemVfs::new();
    let db = open_at(&vfs, MEM_DB_PATH);
    let mut model = Model::new();
    write_round(&db, &mut model, 0);
    vfs.create_dir_all(Path::new("/full")).unwrap();
    vfs.open_write(Path::new("/full/x")).unwrap();
    assert!(matches!(
        db.checkpoint("/full"),
        Err(Error::InvalidArgument(_))
    ));
    db.close().unwrap();
    let ro = Db::open_with_vfs(
        MEM_DB_PATH,
        options().read_only(true),
        Arc::new(vfs.clone()),
    )
    .unwrap();
    assert!(matches!(
        ro.checkpoint(CHECKPOINT),
        Err(Error::ReadOnly { .. })
    ));
    drop(ro);
    // An empty database checkpoints to an empty database.
    let empty = open_at(&vfs, "/empty");
    empty.checkpoint("/empty-copy").unwrap();
    empty.close().unwrap();
    let copy = open_at(&vfs, "/empty-copy");
    assert!(rows(&copy).is_empty());
    copy.close().unwrap();
}

#[cfg(unix)]
#[test]
fn on_disk_tables_are_hard_links_and_outlive_the_sources_compaction() {
    use std::os::unix::fs::MetadataExt;
    let dir = common::temp_dir();
    let (src, dest) = (dir.path().join("db"), dir.path().join("copy"));
    let db = Db::open(&src, options()).unwrap();
    let mut model = Model::new();
    for round in 0..3 {
        write_round(&db, &mut model, round);
    }
    db.compact().unwrap();
    db.checkpoint(&dest).unwrap();
    let tables: Vec<_> = std::fs::read_dir(dest.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!tables.is_empty());
    for t in &tables {
        assert_eq!(std::fs::metadata(t).unwrap().nlink(), 2, "{t:?} is a link");
    }
    // The source rewrites and deletes its tables; the copy keeps its own.
    let at_checkpoint = model.clone();
    write_round(&db, &mut model, 3);
    db.compact().unwrap();
    db.close().unwrap();
    for t in &tables {
        assert_eq!(std::fs::metadata(t).unwrap().nlink(), 1);
    }
    let copy = Db::open(&dest, options()).unwrap();
    assert!(rows(&copy).into_iter().eq(at_checkpoint));
    copy.close().unwrap();
}

/// The failure paths: a checkpoint whose destination cannot be written.
mod failures {
    use super::*;
    use std::io;
    use strata::vfs::{FaultConfig, FaultVfs};

    /// Small segments, so that the WAL rolls and a leaked pin would show in
    /// `Stats::wal_segments`; `Sync`, so that no commit waits for a later
    /// sync (a failed checkpoint sync must not be the WAL's); no background
    /// flush (a large budget), so that every sync here is a checkpoint's
    /// until the faults are lifted.
    fn options() -> Options {
        common::options(Durability::Sync)
            .wal_segment_bytes(4096)
            .history_retention(Duration::ZERO)
    }

    fn lift(faults: &FaultConfig) {
        for budget in [
            &faults.syncs_before_failure,
            &faults.writes_before_failure,
            &faults.creates_before_failure,
            &faults.set_lens_before_failure,
            &faults.renames_before_failure,
        ] {
            budget.store(u64::MAX, Ordering::SeqCst);
        }
    }

    /// The files in `dir`, its `tables/` and its `wal/`.
    fn files_under(vfs: &MemVfs, dir: &str) -> Vec<String> {
        ["", "tables", "wal"]
            .iter()
            .flat_map(|sub| {
                let names = vfs.list(&Path::new(dir).join(sub)).unwrap_or_default();
                names.into_iter().map(move |n| format!("{sub}/{n}"))
            })
            .collect()
    }

    type Inject = fn(&FaultConfig);

    const FAULTS: [(&str, Inject); 5] = [
        ("create", FaultConfig::fail_creates_now),
        ("write", FaultConfig::fail_writes_now),
        ("sync", FaultConfig::fail_syncs_now),
        ("full disk", FaultConfig::fail_as_full_disk_now),
        ("rename", FaultConfig::fail_renames_now),
    ];

    /// Each fault makes `checkpoint` fail with `Io` and nothing else: the
    /// source is not poisoned (a checkpoint writes no WAL or manifest of
    /// its own database), commits and flushes go on, its WAL pin is gone
    /// (the segments it held are deleted by the next flush), it reads and
    /// reopens with every commit, and the next checkpoint works.
    #[test]
    fn a_checkpoint_that_cannot_write_fails_alone_and_the_source_goes_on() {
        for (what, inject) in FAULTS {
            let mem = MemVfs::new();
            let (fault, faults) = FaultVfs::new(Arc::new(mem.clone()));
            let vfs: Arc<dyn Vfs> = Arc::new(fault);
            let open = || Db::open_with_vfs(MEM_DB_PATH, options(), vfs.clone()).unwrap();
            let db = open();
            let mut model = Model::new();
            write_round(&db, &mut model, 0);
            db.flush().unwrap();
            write_round(&db, &mut model, 1); // a WAL tail of several segments
            let before = db.stats();
            assert!(
                before.tables > 0 && before.wal_segments > 2,
                "{what}: {before:?}"
            );

            inject(&faults);
            let err = db.checkpoint("/failed").unwrap_err();
            assert!(matches!(err, Error::Io(_)), "{what}: {err:?}");
            if what == "full disk" {
                let Error::Io(e) = &err else { unreachable!() };
                assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{what}: {e}");
            }
            lift(&faults);

            // Not poisoned: commits, flushes and reads go on.
            assert!(rows(&db).into_iter().eq(model.clone()), "{what}");
            write_round(&db, &mut model, 2);
            db.flush().unwrap();
            let after = db.stats();
            assert!(
                after.wal_segments <= 2 && after.wal_segments_deleted > before.wal_segments_deleted,
                "{what}: the failed checkpoint's pin kept WAL segments: {before:?} -> {after:?}"
            );
            assert!(rows(&db).into_iter().eq(model.clone()), "{what}");
            // What the failed checkpoint left is refused, not written over
            // (also files only in `tables/` or `wal/`); directories alone
            // are empty, and a checkpoint goes into them.
            let left = files_under(&mem, "/failed");
            let retry = db.checkpoint("/failed");
            if left.is_empty() {
                assert_eq!(retry.unwrap(), db.stats().read_ts, "{what}");
            } else {
                assert!(
                    matches!(retry, Err(Error::InvalidArgument(_))),
                    "{what}: a retry over {left:?}: {retry:?}"
                );
            }
            let ts = db.checkpoint("/retried").unwrap();
            assert_eq!(ts, db.stats().read_ts, "{what}");
            db.close().unwrap();

            let db = open();
            assert!(rows(&db).into_iter().eq(model.clone()), "{what}: reopened");
            db.close().unwrap();
            let copy = Db::open_with_vfs("/retried", options(), vfs.clone()).unwrap();
            assert!(
                rows(&copy).into_iter().eq(model),
                "{what}: the retried checkpoint"
            );
            copy.close().unwrap();
        }
    }
}
