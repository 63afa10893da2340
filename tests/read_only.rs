//! `Options::read_only(true)` (issue 14, item 5): a read-only open reads
//! every committed key, writes nothing (not even the cut of a torn tail),
//! refuses writes with `Error::ReadOnly`, shares the directory lock with
//! other read-only openers but never with a writer, and works on a full
//! disk.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata::vfs::{FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options};

const COMMITS: usize = 30;

fn writable() -> Options {
    Options::default()
        .durability(Durability::Sync)
        .wal_segment_bytes(8192)
        .wal_preallocate_bytes(4096)
}

fn read_only() -> Options {
    writable().read_only(true)
}

/// Every file below `/db` with its bytes (what "writes nothing" compares).
fn files(vfs: &MemVfs) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in ["/db", "/db/wal"] {
        for name in vfs.list(Path::new(dir)).unwrap() {
            let path = Path::new(dir).join(name);
            out.insert(path.clone(), vfs.read_all(&path).unwrap());
        }
    }
    out
}

/// A database of `COMMITS` commits, as a SIGKILL leaves it (the last
/// segment keeps its preallocated zero tail), plus garbage after the last
/// record: a torn tail a writable open would cut.
fn killed_database_with_a_torn_tail() -> MemVfs {
    let mem = MemVfs::new();
    let db = Db::open_with_vfs("/db", writable(), Arc::new(mem.clone())).unwrap();
    for i in 0..COMMITS {
        let mut t = db.begin();
        t.put(format!("k{i:03}").as_bytes(), &[i as u8; 50])
            .unwrap();
        t.commit().unwrap();
    }
    let killed = mem.process_crash();
    drop(db);
    let mut names = killed.list(Path::new("/db/wal")).unwrap();
    names.sort();
    let last = Path::new("/db/wal").join(names.last().unwrap());
    let mut bytes = killed.read_all(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end);
    bytes.extend_from_slice(&[0xA5; 300]);
    killed.write_file(&last, bytes);
    killed
}

fn assert_all_commits(db: &Db) {
    let r = db.begin_read();
    for i in 0..COMMITS {
        assert_eq!(
            r.get(format!("k{i:03}").as_bytes()).unwrap(),
            Some(vec![i as u8; 50]),
            "commit {i}"
        );
    }
}

#[test]
fn a_read_only_open_reads_everything_and_writes_nothing() {
    let vfs = killed_database_with_a_torn_tail();
    let before = files(&vfs);
    let db = Db::open_with_vfs("/db", read_only(), Arc::new(vfs.clone())).unwrap();
    assert_all_commits(&db);
    assert!(
        db.stats().recovered_truncated_bytes >= 300,
        "the torn tail it would cut is reported: {:?}",
        db.stats()
    );
    let mut t = db.begin();
    let err = t.put(b"x", b"y").unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
    assert!(matches!(t.delete(b"k000"), Err(Error::ReadOnly { .. })));
    drop(t);
    let err = db.update(|t| t.put(b"x", b"y")).unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
    assert!(!err.is_retryable());
    db.sync().unwrap();
    db.close().unwrap();
    assert_eq!(files(&vfs), before, "not a byte written, cut or created");
    // The power-cut view is unchanged too: nothing was made durable or lost.
    assert_eq!(files(&vfs.crash()), before);

    // A writable open then cuts the tail and keeps every commit.
    let db = Db::open_with_vfs("/db", writable(), Arc::new(vfs.clone())).unwrap();
    assert_all_commits(&db);
    assert!(db.stats().recovered_truncated_bytes >= 300);
}

#[test]
fn read_only_openers_share_the_lock_but_never_with_a_writer() {
    let vfs = killed_database_with_a_torn_tail();
    let open = |o: Options| Db::open_with_vfs("/db", o, Arc::new(vfs.clone()));
    let a = open(read_only()).unwrap();
    let b = open(read_only()).unwrap();
    assert!(matches!(open(writable()), Err(Error::Locked { .. })));
    drop(a);
    assert!(matches!(open(writable()), Err(Error::Locked { .. })));
    drop(b);
    let w = open(writable()).unwrap();
    assert!(matches!(open(read_only()), Err(Error::Locked { .. })));
    drop(w);
    assert_all_commits(&open(read_only()).unwrap());
}

#[test]
fn read_only_openers_share_the_lock_on_the_real_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), writable()).unwrap();
    let mut t = db.begin();
    t.put(b"k", b"v").unwrap();
    t.commit().unwrap();
    assert!(matches!(
        Db::open(dir.path(), read_only()),
        Err(Error::Locked { .. })
    ));
    db.close().unwrap();
    let a = Db::open(dir.path(), read_only()).unwrap();
    let b = Db::open(dir.path(), read_only()).unwrap();
    assert_eq!(
        b.begin_read().get(b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(matches!(
        Db::open(dir.path(), writable()),
        Err(Error::Locked { .. })
    ));
    drop((a, b));
    Db::open(dir.path(), writable()).unwrap();
}

#[test]
fn a_read_only_open_of_a_missing_database_creates_nothing() {
    let vfs = MemVfs::new();
    let err = Db::open_with_vfs("/nothing/db", read_only(), Arc::new(vfs.clone())).unwrap_err();
    let Error::Io(e) = &err else {
        panic!("expected NotFound, got {err:?}")
    };
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    assert!(!vfs.dir_exists(Path::new("/nothing")).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("db");
    let err = Db::open(&missing, read_only()).unwrap_err();
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
    assert!(!missing.exists());
}

#[test]
fn a_full_disk_opens_read_only() {
    let vfs = killed_database_with_a_torn_tail();
    let (faulty, faults) = FaultVfs::new(Arc::new(vfs.clone()));
    faults.fail_as_full_disk_now();
    faults.fail_syncs_now();
    let db = Db::open_with_vfs("/db", read_only(), Arc::new(faulty)).unwrap();
    assert_all_commits(&db);
    db.close().unwrap();
}
