use super::*;
use strata::vfs::FaultConfig;

fn fault_db(mem: &MemVfs) -> (Db, Arc<FaultConfig>) {
    let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
    let db = Db::open_with_vfs(MEM_DB, opts(), Arc::new(fault)).unwrap();
    (db, config)
}

/// Commits 0..5, injects the failure, checks the failed and later
/// commits, then reopens on the live bytes, a process-crash copy and a
/// power-cut copy.
fn fail_and_recover(inject: fn(&FaultConfig)) {
    let mem = MemVfs::new();
    let (db, config) = fault_db(&mem);
    commit_range(&db, 0..5);
    inject(&config);

    let err = commit_one(&db, 5).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "failed commit: {err:?}");
    for i in 6..8 {
        let err = commit_one(&db, i).unwrap_err();
        assert!(matches!(err, Error::Poisoned), "later commit: {err:?}");
    }
    assert!(matches!(db.sync(), Err(Error::Poisoned)));
    // Reads still work and see every acknowledged commit.
    let seen = visible_txns(&db);
    assert_eq!(&seen[..5], &[0, 1, 2, 3, 4]);
    assert!(!seen.contains(&6) && !seen.contains(&7));
    let t = db.begin();
    assert_eq!(t.get(&key(3, 'b')).unwrap(), Some(value(3)));
    drop(t);
    // A transaction that writes nothing needs no WAL.
    assert!(db.begin().commit().is_ok());

    let power_cut = mem.crash();
    let killed = mem.process_crash();
    assert!(
        db.close().is_err(),
        "closing a poisoned database reports it"
    );

    for (what, vfs) in [
        ("power cut", power_cut),
        ("process kill", killed),
        ("live", mem),
    ] {
        let db = open_mem(&vfs, opts()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let has_failed = assert_prefix_and_maybe(&db, 5);
        let next = if has_failed { 6 } else { 5 };
        assert_eq!(db.stats().recovered_records, next as u64, "{what}");
        commit_one(&db, next).unwrap();
        db.close().unwrap();
        let db = open_mem(&vfs, opts()).unwrap();
        assert_exactly(&db, next + 1);
    }
}

#[test]
fn sync_failure_poisons_and_recovery_keeps_acknowledged_commits() {
    fail_and_recover(FaultConfig::fail_syncs_now);
}

#[test]
fn write_failure_poisons_and_recovery_keeps_acknowledged_commits() {
    fail_and_recover(FaultConfig::fail_writes_now);
}

/// Group size of `commit_one(i)`: SyncMark, frame header, commit header,
/// two puts.
fn group_bytes(i: usize) -> usize {
    17 + 9 + 32 + 2 * (1 + 4 + key(i, 'a').len() + 4 + value(i).len())
}

/// A write or sync failure while the next commit rolls the segment.
/// The roll does: sync the old segment, write the new header, sync it,
/// sync the directory, then write and sync the batch. `extra` picks the
/// failing call: syncs 0 (old segment), 1 (new header), 2 (the batch);
/// writes 0 (new header), 1 (the batch).
#[test]
fn write_or_sync_failure_during_a_segment_roll() {
    let cases = [
        ("sync", 0),
        ("sync", 1),
        ("sync", 2),
        ("write", 0),
        ("write", 1),
    ];
    for (kind, extra) in cases {
        let what = format!("{kind} failure {extra}");
        let mem = MemVfs::new();
        let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
        let db = Db::open_with_vfs(MEM_DB, small_segments(), Arc::new(fault)).unwrap();
        let mut n = 0;
        // Created by the first commit (none exists before it).
        let seg = mem_wal_dir().join(format!("{:020}.wal", 1));
        let end = |data: std::io::Result<Vec<u8>>| data.map_or(HEADER_BYTES, |d| frames_end(&d));
        while end(mem.read_all(&seg)) + group_bytes(n) <= 4096 {
            commit_one(&db, n).unwrap();
            n += 1;
        }
        // The next commit must roll.
        let seq = std::sync::atomic::Ordering::SeqCst;
        if kind == "sync" {
            let syncs = config.syncs.load(seq);
            config.syncs_before_failure.store(syncs + extra, seq);
        } else {
            let writes = config.writes.load(seq);
            config.writes_before_failure.store(writes + extra, seq);
        }
        let err = commit_one(&db, n).unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{what}: {err:?}");
        let err = commit_one(&db, n + 1).unwrap_err();
        assert!(matches!(err, Error::Poisoned), "{what}: {err:?}");
        assert_exactly(&db, n);
        let power_cut = mem.crash();
        let killed = mem.process_crash();
        drop(db);
        for (how, vfs) in [("power cut", power_cut), ("kill", killed), ("live", mem)] {
            let db =
                open_mem(&vfs, small_segments()).unwrap_or_else(|e| panic!("{what}, {how}: {e}"));
            let has = assert_prefix_and_maybe(&db, n);
            let next = if has { n + 1 } else { n };
            commit_one(&db, next).unwrap();
            let cut = vfs.crash();
            db.close().unwrap();
            let db = open_mem(&vfs, small_segments()).unwrap();
            assert_exactly(&db, next + 1);
            drop(db);
            let db = open_mem(&cut, small_segments())
                .unwrap_or_else(|e| panic!("{what}, {how}, then power cut: {e}"));
            assert_exactly(&db, next + 1);
        }
    }
}

/// A sync failure in `close` (its final SyncMark) is reported, and
/// every acknowledged commit survives.
#[test]
fn sync_failure_in_close() {
    let mem = MemVfs::new();
    let (db, config) = fault_db(&mem);
    commit_range(&db, 0..5);
    config.fail_syncs_now();
    assert!(db.close().is_err(), "close must report the failed sync");
    for (how, vfs) in [("power cut", mem.crash()), ("live", mem)] {
        let db = open_mem(&vfs, opts()).unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_exactly(&db, 5);
    }
}
