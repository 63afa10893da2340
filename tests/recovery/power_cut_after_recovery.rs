use super::*;

/// Opens `vfs`, expecting transactions `0..m` for some `m` in `range`;
/// returns `m`.
fn open_prefix(vfs: &MemVfs, range: std::ops::RangeInclusive<usize>, what: &str) -> Db {
    let db = open_mem(vfs, opts()).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let seen = visible_txns(&db);
    let m = seen.len();
    assert_eq!(seen, (0..m).collect::<Vec<_>>(), "{what}: not a prefix");
    assert!(
        range.contains(&m),
        "{what}: {m} transactions, expected {range:?}"
    );
    db
}

/// `Buffered`: a process crash keeps every commit; recovery replays
/// them and starts a new segment. A power cut after that may lose the
/// unsynced commits, but must still leave a prefix, not corruption.
#[test]
fn buffered_process_crash_then_power_cut() {
    let mem = MemVfs::new();
    let db = open_mem(&mem, opts().durability(Durability::Buffered)).unwrap();
    commit_range(&db, 0..10);
    let killed = mem.process_crash();
    drop(db);

    let db = open_prefix(&killed, 10..=10, "after the process crash");
    // Power cut right after recovery, before anything else happens.
    let cut_now = killed.crash();
    // ... and after some new (synced) commits.
    commit_range(&db, 10..12);
    let cut_later = killed.crash();
    drop(db);

    drop(open_prefix(
        &cut_now,
        0..=10,
        "power cut right after recovery",
    ));
    // The two commits made after recovery were acknowledged in Sync mode.
    drop(open_prefix(
        &cut_later,
        12..=12,
        "power cut after new commits",
    ));
}

/// `Sync`: a commit whose sync failed left unsynced bytes; a process
/// crash keeps them, recovery replays them. A power cut after that may
/// lose that commit, but must not make the log unreadable.
#[test]
fn sync_failure_then_recovery_then_power_cut() {
    let mem = MemVfs::new();
    let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
    let db = Db::open_with_vfs(MEM_DB, opts(), Arc::new(fault)).unwrap();
    commit_range(&db, 0..5);
    config.fail_syncs_now();
    assert!(matches!(commit_one(&db, 5), Err(Error::Io(_))));
    let killed = mem.process_crash();
    drop(db);

    let db = open_prefix(&killed, 5..=6, "after the process crash");
    let m = visible_txns(&db).len();
    let cut_now = killed.crash();
    commit_range(&db, m..m + 2);
    let cut_later = killed.crash();
    drop(db);

    drop(open_prefix(
        &cut_now,
        5..=m,
        "power cut right after recovery",
    ));
    drop(open_prefix(
        &cut_later,
        m + 2..=m + 2,
        "power cut after new commits",
    ));
}
