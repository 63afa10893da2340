//! A full disk does not lock the user out (issue 14, item 5; decision
//! 0010): opening needs no new space, so a database whose disk is full
//! (every file creation, `set_len` and write fails with ENOSPC) still opens
//! and reads every committed key; the first commit then fails with
//! `Error::Io` and poisons the database; and no failed open or failed
//! segment creation leaves a new file in `wal/`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::io;
use std::path::Path;
use std::sync::Arc;

use strata::vfs::{FaultConfig, FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options};

const COMMITS: usize = 40;

/// No Buffered background sync: which sync fails must not depend on a timer.
fn options(durability: Durability) -> Options {
    Options::default()
        .durability(durability)
        .wal_segment_bytes(8192)
        .buffered_sync_interval(std::time::Duration::ZERO)
}

fn wal_files(vfs: &MemVfs) -> Vec<(String, usize)> {
    let dir = Path::new("/db/wal");
    let mut names = vfs.list(dir).unwrap();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let len = vfs.read_all(&dir.join(&n)).unwrap().len();
            (n, len)
        })
        .collect()
}

fn commit(db: &Db, i: usize) -> strata::Result<()> {
    let mut t = db.begin();
    t.put(format!("k{i:04}").as_bytes(), &[i as u8; 100])?;
    t.commit().map(|_| ())
}

fn assert_exactly(db: &Db, n: usize) {
    let r = db.begin_read();
    for i in 0..n {
        let v = r.get(format!("k{i:04}").as_bytes()).unwrap();
        assert_eq!(v, Some(vec![i as u8; 100]), "commit {i}");
    }
    let all = r.scan(b"k".as_slice()..b"l".as_slice()).unwrap().count();
    assert_eq!(all, n);
}

/// A database of `COMMITS` commits over a few segments, left as `how` says:
/// closed cleanly, or killed (a process crash: the last segment keeps its
/// preallocated zero tail and, in `Buffered` mode, unsynced records).
fn database(durability: Durability, how: &str) -> MemVfs {
    let mem = MemVfs::new();
    let db = Db::open_with_vfs("/db", options(durability), Arc::new(mem.clone())).unwrap();
    for i in 0..COMMITS {
        commit(&db, i).unwrap();
    }
    if how == "closed" {
        db.close().unwrap();
        return mem;
    }
    let killed = mem.process_crash();
    drop(db);
    killed
}

fn open_faulty(mem: &MemVfs, durability: Durability) -> (strata::Result<Db>, Arc<FaultConfig>) {
    let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
    config.fail_as_full_disk_now();
    let db = Db::open_with_vfs("/db", options(durability), Arc::new(fault));
    (db, config)
}

#[test]
fn a_full_disk_opens_reads_everything_and_the_first_commit_poisons() {
    for durability in [Durability::Sync, Durability::Buffered] {
        for how in ["closed", "killed"] {
            let what = format!("{durability:?}, {how}");
            let mem = database(durability, how);
            // Recovery may cut the zero tail (a truncation frees space).
            let before: Vec<String> = wal_files(&mem).into_iter().map(|f| f.0).collect();

            let (db, _) = open_faulty(&mem, durability);
            let db = db.unwrap_or_else(|e| panic!("{what}: open on a full disk: {e}"));
            assert_exactly(&db, COMMITS);
            assert_eq!(db.stats().recovered_records, COMMITS as u64, "{what}");
            let after = wal_files(&mem);
            let names: Vec<String> = after.iter().map(|f| f.0.clone()).collect();
            assert_eq!(names, before, "{what}: open created or removed a file");
            // A session that wrote nothing closes without needing space.
            db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
            assert_eq!(wal_files(&mem), after, "{what}: close changed the log");

            let (db, _) = open_faulty(&mem, durability);
            let db = db.unwrap();
            match commit(&db, COMMITS) {
                Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{what}"),
                other => panic!("{what}: first commit on a full disk: {other:?}"),
            }
            assert!(
                matches!(commit(&db, COMMITS + 1), Err(Error::Poisoned)),
                "{what}"
            );
            assert_exactly(&db, COMMITS);
            drop(db);
            assert_eq!(
                wal_files(&mem),
                after,
                "{what}: the failed commit left a file"
            );

            // Space again: everything is there and commits work.
            let db = Db::open_with_vfs("/db", options(durability), Arc::new(mem.clone())).unwrap();
            assert_exactly(&db, COMMITS);
            commit(&db, COMMITS).unwrap();
            db.close().unwrap();
        }
    }
}

/// Each step of creating the first segment of a session failing in turn:
/// the open succeeds (it creates nothing), the commit that creates the
/// segment fails with `Error::Io` and poisons, and the half-created file
/// is removed again. (Before lazy creation, the open itself created the
/// segment: it failed, and an empty or half-written file stayed behind.)
#[test]
fn a_failed_segment_creation_leaves_no_new_file() {
    type Inject = fn(&FaultConfig);
    let steps: [(&str, Inject); 4] = [
        ("create", FaultConfig::fail_creates_now),
        ("write", FaultConfig::fail_writes_now),
        ("set_len", FaultConfig::fail_set_lens_now),
        ("sync", FaultConfig::fail_syncs_now),
    ];
    for (step, fail) in steps {
        let mem = database(Durability::Sync, "closed");
        let before = wal_files(&mem);
        let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
        let vfs: Arc<dyn Vfs> = Arc::new(fault);
        // Recovery of a closed log syncs its last segment: let it.
        let db = Db::open_with_vfs("/db", options(Durability::Sync), vfs).unwrap();
        assert_eq!(wal_files(&mem), before, "{step}: open changed the log");
        fail(&config);
        assert!(matches!(commit(&db, COMMITS), Err(Error::Io(_))), "{step}");
        assert!(
            matches!(commit(&db, COMMITS + 1), Err(Error::Poisoned)),
            "{step}"
        );
        assert_eq!(wal_files(&mem), before, "{step}: a file was left behind");
        drop(db);
        let db = Db::open_with_vfs("/db", options(Durability::Sync), Arc::new(mem)).unwrap();
        assert_exactly(&db, COMMITS);
        commit(&db, COMMITS).unwrap();
    }
}

/// An open that fails (here: recovery cannot sync the replayed segment)
/// leaves `wal/` as it was.
#[test]
fn a_failed_open_leaves_no_new_file() {
    let mem = database(Durability::Buffered, "closed");
    let before = wal_files(&mem);
    let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
    config.fail_syncs_now();
    let err = Db::open_with_vfs("/db", options(Durability::Sync), Arc::new(fault)).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(wal_files(&mem), before);
}
