use super::*;

const TOTAL: usize = 120;
const SYNC_AFTER: usize = 40;

/// Recovered state of a Buffered workload: the `m` in "exactly 0..m".
fn check_prefix(vfs: &MemVfs, what: &str) -> usize {
    let db = open_mem(vfs, small_segments()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let seen = visible_txns(&db);
    let m = seen.len();
    assert_eq!(seen, (0..m).collect::<Vec<_>>(), "{what}: not a prefix");
    let last = db.begin_read().get(b"last").unwrap();
    let expected_last = m.checked_sub(1).map(|i| i.to_string().into_bytes());
    assert_eq!(
        last, expected_last,
        "{what}: `last` disagrees with the prefix"
    );
    assert_eq!(db.stats().recovered_records, m as u64, "{what}");
    // The recovered database takes new commits.
    commit_one(&db, m).unwrap();
    db.close().unwrap();
    let db = open_mem(vfs, small_segments()).unwrap();
    assert_exactly(&db, m + 1);
    m
}

#[test]
fn power_cut_keeps_a_prefix_and_process_crash_keeps_everything() {
    let mem = MemVfs::new();
    let db = open_mem(&mem, small_segments().durability(Durability::Buffered)).unwrap();
    let mut snapshots = Vec::new();
    for i in 0..TOTAL {
        let mut t = db.begin();
        t.put(&key(i, 'a'), &value(i)).unwrap();
        t.put(&key(i, 'b'), &value(i)).unwrap();
        t.put(b"last", i.to_string().as_bytes()).unwrap();
        t.commit().unwrap();
        if i + 1 == SYNC_AFTER {
            db.sync().unwrap();
        }
        if i % 7 == 0 || i + 1 == SYNC_AFTER {
            snapshots.push((i + 1, mem.crash(), mem.process_crash()));
        }
    }
    snapshots.push((TOTAL, mem.crash(), mem.process_crash()));
    assert!(mem_segments(&mem).len() >= 3, "expected segment rolls");

    let mut lost_some = false;
    for (acked, power_cut, killed) in snapshots {
        let m = check_prefix(&power_cut, &format!("power cut after {acked}"));
        assert!(m <= acked, "power cut after {acked}: {m} survived");
        if acked >= SYNC_AFTER {
            assert!(
                m >= SYNC_AFTER,
                "power cut after {acked}: db.sync() lost ({m})"
            );
        }
        lost_some |= m < acked;
        let m = check_prefix(&killed, &format!("process crash after {acked}"));
        assert_eq!(m, acked, "process crash must keep every Buffered commit");
    }
    assert!(
        lost_some,
        "Buffered power cuts should lose unsynced commits"
    );
    drop(db);
}
