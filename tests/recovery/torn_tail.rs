use super::*;

const N: usize = 8;

/// Reopens a copy of the log cut to `len` bytes and checks the result.
fn check_cut_on_disk(original: &Path, seg: &Path, intact: &[FrameAt], len: usize) {
    let dir = copy_db(original);
    let path = same_file_in(dir.path(), seg);
    let data = fs::read(&path).unwrap();
    fs::write(&path, &data[..len]).unwrap();
    let (commits, end) = expected_after_cut(intact, len);

    let db = Db::open(dir.path(), opts())
        .unwrap_or_else(|e| panic!("cut to {len} bytes: reopen failed: {e}"));
    assert_eq!(db.stats().recovered_records, commits as u64, "cut to {len}");
    assert_exactly(&db, commits);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        end as u64,
        "cut to {len}: torn tail not truncated to the last whole frame"
    );
    commit_one(&db, commits).unwrap();
    db.close().unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().recovered_records, commits as u64 + 1);
    assert_exactly(&db, commits + 1);
    commit_one(&db, commits + 1).unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_exactly(&db, commits + 2);
}

#[test]
fn cuts_in_the_last_records_on_disk_keep_exactly_the_whole_commits() {
    let original = closed_db(N);
    let seg = segments(original.path())[0].clone();
    let data = fs::read(&seg).unwrap();
    let intact = frames(&data);
    // The layout is what the format promises for a closed 1-thread Sync log.
    assert_eq!(intact.len(), 2 * N + 1);
    for (j, f) in intact.iter().enumerate() {
        let kind = if j % 2 == 0 {
            KIND_SYNC_MARK
        } else {
            KIND_COMMIT
        };
        assert_eq!(f.kind, kind, "frame {j}");
    }

    // Cut points inside each of the last five frames: final SyncMark,
    // last commit, its SyncMark, the commit before, its SyncMark.
    let mut lens = Vec::new();
    for f in intact.iter().rev().take(5) {
        for into in [0, 1, 4, 8, 9, 10, f.size / 2, f.size - 1] {
            lens.push(f.offset + into);
        }
    }
    lens.push(HEADER_BYTES + 3); // inside the first SyncMark: nothing left
    lens.sort_unstable();
    lens.dedup();
    for len in lens {
        check_cut_on_disk(original.path(), &seg, &intact, len);
    }
}

#[test]
fn cut_by_k_bytes_drops_exactly_the_incomplete_commits() {
    let original = closed_db(N);
    let seg = segments(original.path())[0].clone();
    let data = fs::read(&seg).unwrap();
    let intact = frames(&data);
    let last_commit = intact[intact.len() - 2];
    // k = 17: exactly the final SyncMark goes, all N survive.
    // k = 18: one byte of the last commit goes, N-1 survive.
    // k = last commit + 17 + 5: inside the last group's SyncMark.
    for (k, survivors) in [
        (1, N),
        (SYNC_MARK_BYTES, N),
        (SYNC_MARK_BYTES + 1, N - 1),
        (SYNC_MARK_BYTES + last_commit.size - 3, N - 1), // inside its frame header
        (SYNC_MARK_BYTES + last_commit.size, N - 1),
        (SYNC_MARK_BYTES + last_commit.size + 5, N - 1),
        (
            SYNC_MARK_BYTES + last_commit.size + SYNC_MARK_BYTES + 1,
            N - 2,
        ),
    ] {
        let len = data.len() - k;
        assert_eq!(expected_after_cut(&intact, len).0, survivors, "k = {k}");
        check_cut_on_disk(original.path(), &seg, &intact, len);
    }
}

/// Every cut of the newest segment, on `MemVfs`: always exactly the whole
/// commit records before the cut.
#[test]
fn every_cut_on_mem_vfs_yields_the_whole_commits_before_it() {
    // About 1,500 reopens: a small preallocation chunk keeps each cheap.
    let opts = || opts().wal_preallocate_bytes(4096);
    let vfs = MemVfs::new();
    let db = open_mem(&vfs, opts()).unwrap();
    commit_range(&db, 0..5);
    db.close().unwrap();
    let seg = mem_segments(&vfs)[0].clone();
    let data = vfs.read_all(&seg).unwrap();
    let intact = frames(&data);
    for len in 0..=data.len() {
        let cut = MemVfs::new();
        cut.write_file(&seg, data[..len].to_vec());
        let db = open_mem(&cut, opts())
            .unwrap_or_else(|e| panic!("cut to {len} bytes: reopen failed: {e}"));
        if len < HEADER_BYTES {
            // A segment whose header is torn is removed: nothing was in it.
            assert_exactly(&db, 0);
            assert_eq!(mem_segments(&cut), Vec::<PathBuf>::new(), "cut to {len}");
            // Its number is used again by the next segment, created by
            // the first commit.
            commit_one(&db, 0).unwrap();
            assert_eq!(mem_segments(&cut), vec![seg.clone()], "cut to {len}");
            continue;
        }
        let (commits, end) = expected_after_cut(&intact, len);
        assert_eq!(db.stats().recovered_records, commits as u64, "cut to {len}");
        assert_exactly(&db, commits);
        assert_eq!(cut.read_all(&seg).unwrap().len(), end, "cut to {len}");
        commit_one(&db, commits).unwrap();
        db.close().unwrap();
        let db = open_mem(&cut, opts()).unwrap();
        assert_exactly(&db, commits + 1);
    }
}

/// A torn commit whose surviving bytes happen to contain a valid-looking
/// SyncMark (inside the user's value) is still a torn tail: user data
/// must not be mistaken for proof that the record was synced.
#[test]
fn sync_mark_bytes_inside_a_torn_value_do_not_make_it_corruption() {
    let original = closed_db(N);
    let db = open(original.path());
    let mut t = db.begin();
    let mut v = b"payload that embeds a wal frame: ".to_vec();
    v.extend_from_slice(&sync_mark_bytes(1_000_000));
    v.extend_from_slice(&[0xAB; 64]);
    t.put(&key(N, 'a'), &v).unwrap();
    t.put(&key(N, 'b'), &v).unwrap();
    t.commit().unwrap();
    db.close().unwrap();
    let dir = copy_db(original.path());
    let seg = segments(dir.path()).last().unwrap().clone();
    let data = fs::read(&seg).unwrap();
    // Tear off the final SyncMark and the last 10 bytes of the record:
    // the embedded mark survives.
    let len = data.len() - SYNC_MARK_BYTES - 10;
    fs::write(&seg, &data[..len]).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("torn tail reported as {e:?}"));
    assert_exactly(&db, N);
}

#[test]
fn garbage_after_the_last_record_is_dropped() {
    let original = closed_db(N);
    let seg = segments(original.path())[0].clone();
    let len = fs::metadata(&seg).unwrap().len();

    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut random = vec![0u8; 300];
    for b in &mut random {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        *b = (rng >> 24) as u8;
    }
    // A frame header that claims a huge payload, and one claiming a
    // commit frame but ending early.
    let mut huge = vec![0x11, 0x22, 0x33, 0x44];
    huge.extend_from_slice(&0xFFFF_FFF0_u32.to_le_bytes());
    huge.push(KIND_COMMIT);
    let mut short = vec![0x55; 4];
    short.extend_from_slice(&40u32.to_le_bytes());
    short.push(KIND_COMMIT);
    short.extend_from_slice(&[1; 12]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("random bytes", random),
        ("zeros", vec![0; 4096]),
        ("one zero byte", vec![0]),
        ("huge length", huge),
        ("short frame", short),
    ];
    for (what, garbage) in cases {
        let dir = copy_db(original.path());
        let path = same_file_in(dir.path(), &seg);
        let mut data = fs::read(&path).unwrap();
        data.extend_from_slice(&garbage);
        fs::write(&path, &data).unwrap();

        let db =
            Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
        assert_eq!(db.stats().recovered_records, N as u64, "{what}");
        // Zeros are a zero tail (preallocated space), not lost data.
        let lost = if garbage.iter().all(|&b| b == 0) {
            0
        } else {
            garbage.len() as u64
        };
        assert_eq!(db.stats().recovered_truncated_bytes, lost, "{what}");
        assert_exactly(&db, N);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            len,
            "{what}: not truncated"
        );
        commit_one(&db, N).unwrap();
        db.close().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_exactly(&db, N + 1);
    }
}
