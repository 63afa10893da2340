//! Quick end-to-end checks of the public API (the full suites are txn.rs, recovery.rs, ...).

use strata::{Db, Durability, Error, Options};

#[test]
fn put_commit_reopen_get() {
    let dir = tempfile::tempdir().unwrap();
    let ts = {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut t = db.begin();
        t.put(b"a", b"1").unwrap();
        t.put(b"b", b"2").unwrap();
        t.delete(b"c").unwrap();
        let ts = t.commit().unwrap();
        let r = db.begin_read();
        assert_eq!(r.get(b"a").unwrap(), Some(b"1".to_vec()));
        let all: Vec<_> = r
            .scan::<&[u8], _>(..)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        assert!(matches!(
            Db::open(dir.path(), Options::default()),
            Err(Error::Locked { .. })
        ));
        drop(r);
        db.close().unwrap();
        ts
    };
    let db = Db::open(
        dir.path(),
        Options::default().durability(Durability::Buffered),
    )
    .unwrap();
    assert_eq!(db.stats().recovered_records, 1);
    let r = db.begin_read();
    assert!(r.read_ts() >= ts);
    assert_eq!(r.get(b"b").unwrap(), Some(b"2".to_vec()));
    let mut t = db.begin();
    t.put(b"a", b"x").unwrap();
    assert!(t.commit().unwrap() > ts);
}

#[test]
fn conflict_first_committer_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut t1 = db.begin();
    let mut t2 = db.begin();
    t1.put(b"k", b"1").unwrap();
    t2.put(b"k", b"2").unwrap();
    t1.commit().unwrap();
    let err = t2.commit().unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, Error::Conflict { .. }));
}

/// Found in review: directory syncs made `Db::open_with_vfs("db", .., MemVfs)`
/// fail, since the parent of a relative name is `.`, which MemVfs did not
/// know. A relative path works, and its commits survive a power cut.
#[test]
fn a_relative_path_on_memvfs_opens_and_survives_a_power_cut() {
    let mem = strata::vfs::MemVfs::new();
    let db = Db::open_with_vfs("db", Options::default(), std::sync::Arc::new(mem.clone())).unwrap();
    let mut t = db.begin();
    t.put(b"k", b"v").unwrap();
    t.commit().unwrap();
    let db2 =
        Db::open_with_vfs("db", Options::default(), std::sync::Arc::new(mem.crash())).unwrap();
    assert_eq!(db2.begin_read().get(b"k").unwrap(), Some(b"v".to_vec()));
    drop(db);
}
