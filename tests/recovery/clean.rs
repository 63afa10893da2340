use super::*;

/// `close` on one handle while others commit and call `sync`: every call
/// returns (`Ok` or `Closed`), and every acknowledged commit is there,
/// whole, after reopening. (Once a `close` racing a gathering `sync`
/// leader could sleep on the wrong wake slot.)
///
/// The race is scheduled by events, not by a pause: committers and the
/// syncer loop until they get `Closed`, so they are all still running when
/// `close` is called, and `close` waits until each committer has had
/// `WARM_UP` commits acknowledged and the syncer one `sync`.
#[test]
fn close_while_other_handles_commit_and_sync_keeps_every_acknowledged_commit() {
    const COMMITTERS: usize = 4;
    const WARM_UP: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (acked, syncs): (Vec<usize>, u64) = std::thread::scope(|s| {
        let committers: Vec<_> = (0..COMMITTERS)
            .map(|t| {
                let (db, ready) = (db.clone(), ready_tx.clone());
                s.spawn(move || {
                    let mut acked = Vec::new();
                    for i in (t..).step_by(COMMITTERS) {
                        match commit_one(&db, i) {
                            Ok(_) => acked.push(i),
                            Err(Error::Closed) => return acked,
                            Err(e) => panic!("commit {i}: {e}"),
                        }
                        if acked.len() == WARM_UP {
                            ready.send(()).unwrap();
                        }
                    }
                    unreachable!("committer {t} ran out of keys");
                })
            })
            .collect();
        let syncer = {
            let (db, ready) = (db.clone(), ready_tx.clone());
            s.spawn(move || {
                let mut syncs = 0u64;
                loop {
                    match db.sync() {
                        Ok(()) => syncs += 1,
                        Err(Error::Closed) => return syncs,
                        Err(e) => panic!("sync: {e}"),
                    }
                    if syncs == 1 {
                        ready.send(()).unwrap();
                    }
                    std::thread::yield_now();
                }
            })
        };
        drop(ready_tx);
        // The timeout only turns a stalled committer into a failure; close
        // either way, so that the threads stop and the scope ends.
        let warmed_up = (0..=COMMITTERS).all(|_| {
            ready_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .is_ok()
        });
        db.clone().close().unwrap();
        let syncs = syncer.join().unwrap();
        let acked = committers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert!(warmed_up, "a committer or the syncer made no progress");
        (acked, syncs)
    });
    assert!(syncs >= 1);
    assert!(acked.len() >= COMMITTERS * WARM_UP, "{} acked", acked.len());
    drop(db);
    let db = open(dir.path());
    let seen = visible_txns(&db);
    for i in &acked {
        assert!(seen.contains(i), "acknowledged commit {i} lost");
    }
    assert_eq!(seen.len(), acked.len(), "only acknowledged commits survive");
}

#[test]
fn reopen_recovers_every_commit_and_timestamps_keep_rising() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    assert_eq!(db.stats().recovered_records, 0);
    let last = commit_range(&db, 0..20);
    let stats = db.stats();
    assert_eq!(stats.commits, 20);
    assert!(stats.wal_syncs >= 20, "Sync mode: one sync per lone commit");
    assert!(
        stats.wal_sync_time > std::time::Duration::ZERO,
        "the time in those syncs is counted"
    );
    assert_eq!(stats.last_lsn, 20);
    db.close().unwrap();

    let db = open(dir.path());
    let stats = db.stats();
    assert_eq!(stats.recovered_records, 20);
    assert_eq!(stats.last_lsn, 20);
    assert_eq!(stats.commits, 0);
    assert_exactly(&db, 20);
    assert!(db.begin_read().read_ts() >= last);
    let next = commit_one(&db, 20).unwrap();
    assert!(next > last, "ts after reopen {next:?} <= before {last:?}");
    assert_eq!(db.stats().last_lsn, 21);
    db.close().unwrap();

    let db = open(dir.path());
    assert_eq!(db.stats().recovered_records, 21);
    assert_exactly(&db, 21);
}

#[test]
fn reopen_many_times_with_and_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    let mut last = Ts::ZERO;
    for round in 0..8 {
        let db = open(dir.path());
        assert_eq!(db.stats().recovered_records, total as u64, "round {round}");
        assert_exactly(&db, total);
        // Every third session commits nothing: empty segments must be fine.
        let n = if round % 3 == 2 { 0 } else { 5 };
        if n > 0 {
            let ts = commit_range(&db, total..total + n);
            assert!(ts > last);
            last = ts;
        }
        total += n;
        if round % 2 == 0 {
            db.close().unwrap();
        } else {
            drop(db); // dropping the last handle closes too
        }
    }
    let db = open(dir.path());
    assert_exactly(&db, total);
    drop(db);
    // Six of the eight sessions committed: each of them started a
    // segment at its first commit, the others (and the last open) none.
    assert_eq!(segments(dir.path()).len(), 6);
}

#[test]
fn many_segments_are_all_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_segments()).unwrap();
    commit_range(&db, 0..150);
    let during = segments(dir.path());
    assert!(during.len() >= 4, "only {} segments", during.len());
    for seg in &during {
        let len = fs::metadata(seg).unwrap().len();
        // A segment holds at least one record, so it may exceed the
        // limit only by less than one group.
        assert!(len <= 4096 + 512, "{seg:?} has {len} bytes");
    }
    db.close().unwrap();

    let mut total = 150;
    for round in 0..3 {
        let db = Db::open(dir.path(), small_segments()).unwrap();
        // Until an open finds more than a few segments (it then flushes
        // them to a table and deletes them), every record is replayed;
        // after, only what came later.
        let (replayed, stats) = (db.stats().recovered_records, db.stats());
        if stats.tables == stats.flushes {
            // No table from an earlier open (this open may have made some).
            assert_eq!(replayed, total as u64, "round {round}");
        } else {
            assert!(
                replayed < total as u64,
                "round {round}: {replayed} replayed"
            );
        }
        assert_exactly(&db, total);
        commit_range(&db, total..total + 40);
        total += 40;
        db.close().unwrap();
    }
    // Reopening with a different segment size reads the same log.
    let db = open(dir.path());
    assert_exactly(&db, total);
    // Every segment left parses, and the chain of first LSNs is gapless
    // up to the last commit.
    let left = segments(dir.path());
    let mut next_lsn = left
        .first()
        .map_or(1, |seg| u64_at(&fs::read(seg).unwrap(), 32));
    for seg in left {
        let data = fs::read(&seg).unwrap();
        assert_eq!(u64_at(&data, 32), next_lsn, "{seg:?}: first_lsn");
        next_lsn += commit_frames(&data).len() as u64;
    }
    assert_eq!(next_lsn, total as u64 + 1);
}

/// A clean close appends a final SyncMark (17 bytes). When the segment
/// has fewer than 17 bytes of room left, that write rolls to a new
/// segment; the log must still reopen.
#[test]
fn close_with_a_nearly_full_segment_reopens() {
    for target in [4079, 4080, 4085, 4090, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), small_segments()).unwrap();
        // Created by the first commit; until then the frames "end" at
        // the header that segment will have.
        let seg = dir.path().join("wal").join(format!("{:020}.wal", 1));
        let size = || fs::read(&seg).map_or(HEADER_BYTES, |d| frames_end(&d));
        // A one-key transaction's group: SyncMark 17 + frame header 9 +
        // commit header 32 + op (1 + 4 + key + 4 + value).
        let group = |k: &[u8], v: usize| 17 + 9 + 32 + 1 + 4 + k.len() + 4 + v;
        let mut i = 0_u64;
        while target - size() >= 2 * group(b"x0000", 100) {
            let mut t = db.begin();
            t.put(format!("x{i:04}").as_bytes(), &[7; 100]).unwrap();
            t.commit().unwrap();
            i += 1;
        }
        let v = target - size() - group(b"x0000", 0);
        let mut t = db.begin();
        t.put(format!("x{i:04}").as_bytes(), &vec![7; v]).unwrap();
        t.commit().unwrap();
        assert_eq!(size(), target, "setup: segment 1 should end at {target}");
        assert_eq!(segments(dir.path()).len(), 1);
        db.close().unwrap();

        let reopened = Db::open(dir.path(), small_segments());
        let db = reopened.unwrap_or_else(|e| {
            panic!("segment ending at {target}: reopen after clean close failed: {e}")
        });
        assert_eq!(db.stats().recovered_records, i + 1);
        let mut t = db.begin();
        t.put(b"after", b"1").unwrap();
        t.commit().unwrap();
        db.close().unwrap();
        let db = Db::open(dir.path(), small_segments()).unwrap();
        assert_eq!(db.stats().recovered_records, i + 2);
    }
}
