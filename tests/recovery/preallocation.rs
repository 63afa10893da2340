use super::*;

/// `(length, end of frames)` of each segment in `vfs`, oldest first.
fn lengths(vfs: &MemVfs) -> Vec<(usize, usize)> {
    mem_segments(vfs)
        .iter()
        .map(|p| {
            let data = vfs.read_all(p).unwrap();
            (data.len(), frames_end(&data))
        })
        .collect()
}

/// A process crash and a power cut of an open database whose segment is
/// preallocated: everything comes back, and recovery cuts the segment
/// to the end of its last record (the same length a log written without
/// preallocation has).
#[test]
fn reopen_after_a_crash_recovers_everything_and_cuts_the_zero_tail() {
    let mut ends = Vec::new();
    for preallocate in [0, 1 << 20] {
        let mem = MemVfs::new();
        let options = opts().wal_preallocate_bytes(preallocate);
        let db = open_mem(&mem, options.clone()).unwrap();
        commit_range(&db, 0..20);
        let images = [("kill", mem.process_crash()), ("power cut", mem.crash())];
        drop(db);
        for (how, vfs) in images {
            let what = format!("preallocate {preallocate}, {how}");
            let [(len, end)] = lengths(&vfs)[..] else {
                panic!("{what}: expected one segment")
            };
            if preallocate == 0 {
                assert_eq!(len, end, "{what}: plain appends leave no zero tail");
            } else {
                assert_eq!(len, HEADER_BYTES + (1 << 20), "{what}: one chunk ahead");
            }
            let db = open_mem(&vfs, options.clone()).unwrap();
            assert_eq!(db.stats().recovered_records, 20, "{what}");
            assert_exactly(&db, 20);
            let after = lengths(&vfs);
            assert_eq!(after[0], (end, end), "{what}: zero tail not cut");
            // ... and durably so.
            assert_eq!(lengths(&vfs.crash())[0], (end, end), "{what}");
            ends.push(end);
            drop(db);
        }
    }
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{ends:?}");
}

/// On the real file system: a copy of the log of a database that is
/// still open (as a crash leaves it) has a zero tail; reopening the copy
/// recovers every commit and cuts the tail.
#[test]
fn reopen_of_a_live_copy_on_disk_cuts_the_zero_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    commit_range(&db, 0..30);
    let copy = copy_db(dir.path());
    db.close().unwrap();
    let seg = segments(copy.path())[0].clone();
    let data = fs::read(&seg).unwrap();
    let end = frames_end(&data);
    assert!(data.len() > end, "no zero tail while open");
    let db = open(copy.path());
    assert_exactly(&db, 30);
    assert_eq!(fs::metadata(&seg).unwrap().len() as usize, end);
    commit_range(&db, 30..35);
    db.close().unwrap();
    // A clean close leaves no zero tail behind.
    for seg in segments(copy.path()) {
        let data = fs::read(&seg).unwrap();
        assert_eq!(data.len(), frames_end(&data), "{seg:?}");
    }
    assert_exactly(&open(copy.path()), 35);
}

/// Small segments with preallocation: segments never grow past their
/// maximum size by preallocating (only the rolling group may pass it,
/// as before), older segments are cut to their frames at the roll, and
/// a clean close leaves no zero tail.
#[test]
fn segments_are_preallocated_within_their_size_and_cut_at_roll_and_close() {
    let mem = MemVfs::new();
    let options = small_segments().wal_preallocate_bytes(1024);
    let db = open_mem(&mem, options.clone()).unwrap();
    for i in 0..120 {
        commit_one(&db, i).unwrap();
        let all = lengths(&mem);
        let (last, older) = all.split_last().unwrap();
        for (len, end) in older {
            assert_eq!(len, end, "after commit {i}: an older segment keeps zeros");
        }
        let (len, end) = *last;
        assert!(
            len >= end && len <= 4096.max(end),
            "after commit {i}: {last:?}"
        );
        assert!(
            len - end <= 1024,
            "after commit {i}: more than a chunk ahead"
        );
    }
    assert!(lengths(&mem).len() >= 4);
    db.close().unwrap();
    assert!(lengths(&mem).iter().all(|(len, end)| len == end));
    let db = open_mem(&mem, options).unwrap();
    assert_exactly(&db, 120);
}

/// A closed database of 60 commits in at least 3 small segments.
fn sixty_commits_in_small_segments() -> (MemVfs, Vec<PathBuf>) {
    let mem = MemVfs::new();
    let db = open_mem(&mem, small_segments()).expect("open");
    commit_range(&db, 0..60);
    db.close().expect("close");
    let segs = mem_segments(&mem);
    assert!(segs.len() >= 3);
    (mem, segs)
}

/// Opening `vfs` fails with `Error::Corruption` at `file`, `offset`.
fn expect_mem_corruption(vfs: &MemVfs, file: &Path, offset: usize) {
    match open_mem(vfs, small_segments()) {
        Err(Error::Corruption {
            file: found,
            offset: at,
            ..
        }) => assert_eq!((found.as_path(), at), (file, offset as u64)),
        other => panic!("expected Corruption, got {:?}", other.map(|_| ())),
    }
}

/// A copy of `mem`'s segments, with segment `i` replaced by `data`.
fn with_segment(mem: &MemVfs, segs: &[PathBuf], i: usize, data: Vec<u8>) -> MemVfs {
    let copy = MemVfs::new();
    for seg in segs {
        copy.write_file(seg, mem.read_all(seg).expect("read segment"));
    }
    copy.write_file(&segs[i], data);
    copy
}

/// A segment that is not the last has no zero tail (the roll cut it and
/// synced before creating the next file), so zeros after its frames are
/// damage: corruption at the first zero, whether they follow its last
/// record or stand where its last record was.
#[test]
fn zeros_after_the_frames_of_an_older_segment_are_corruption() {
    let (mem, segs) = sixty_commits_in_small_segments();
    let first = mem.read_all(&segs[0]).unwrap();
    let untouched = with_segment(&mem, &segs, 0, first.clone());
    assert_exactly(&open_mem(&untouched, small_segments()).unwrap(), 60);

    let mut longer = first.clone();
    longer.resize(first.len() + 777, 0);
    let with_tail = with_segment(&mem, &segs, 0, longer);
    expect_mem_corruption(&with_tail, &segs[0], first.len());

    let last = *commit_frames(&first).last().unwrap();
    let mut lost = first.clone();
    lost[last.offset..].fill(0);
    let damaged = with_segment(&mem, &segs, 0, lost);
    expect_mem_corruption(&damaged, &segs[0], last.offset);
}

/// The newest segment's creation was torn (its header is zeros, so
/// recovery removes it) and media damage zeroed the last records of the
/// segment before it, which were synced and acknowledged: corruption,
/// not a silent loss. Without the damage, the torn file is removed and
/// every commit comes back.
#[test]
fn zeroed_records_before_a_torn_newest_segment_are_corruption() {
    let (mem, segs) = sixty_commits_in_small_segments();
    let (prev, newest) = (segs.len() - 2, segs.len() - 1);
    let prev_data = mem.read_all(&segs[prev]).unwrap();
    let torn_header = vec![0; mem.read_all(&segs[newest]).unwrap().len()];
    let records_in_newest = commit_frames(&mem.read_all(&segs[newest]).unwrap()).len();

    let torn = with_segment(&mem, &segs, newest, torn_header.clone());
    let db = open_mem(&torn, small_segments()).unwrap();
    assert_exactly(&db, 60 - records_in_newest);
    drop(db);

    let last = *commit_frames(&prev_data).last().unwrap();
    let mut zeroed = prev_data.clone();
    zeroed[last.offset..].fill(0);
    let damaged = with_segment(&mem, &segs, prev, zeroed);
    damaged.write_file(&segs[newest], torn_header);
    expect_mem_corruption(&damaged, &segs[prev], last.offset);
}

/// A power cut at any point of a `Sync` workload whose groups keep
/// passing the preallocated end (a small chunk in a large segment):
/// exactly the acknowledged commits come back.
#[test]
fn power_cut_keeps_exactly_the_acknowledged_commits() {
    for preallocate in [0, 512, 4096] {
        let mem = MemVfs::new();
        let options = opts().wal_preallocate_bytes(preallocate);
        let db = open_mem(&mem, options.clone()).unwrap();
        let mut cuts = Vec::new();
        for i in 0..60 {
            commit_one(&db, i).unwrap();
            cuts.push(mem.crash());
        }
        drop(db);
        for (i, cut) in cuts.iter().enumerate() {
            let db = open_mem(cut, options.clone())
                .unwrap_or_else(|e| panic!("preallocate {preallocate}, cut after commit {i}: {e}"));
            assert_exactly(&db, i + 1);
        }
    }
}
