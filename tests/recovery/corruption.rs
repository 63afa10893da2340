use super::*;

#[test]
fn damage_to_an_early_record_is_reported_with_file_and_offset() {
    const N: usize = 10;
    let original = closed_db(N);
    let seg = segments(original.path())[0].clone();
    let intact = frames(&fs::read(&seg).unwrap());
    let commits: Vec<FrameAt> = intact
        .iter()
        .copied()
        .filter(|f| f.kind == KIND_COMMIT)
        .collect();
    let marks: Vec<FrameAt> = intact
        .iter()
        .copied()
        .filter(|f| f.kind == KIND_SYNC_MARK)
        .collect();
    assert_eq!(commits.len(), N);
    // (frame, byte within it to damage)
    let cases = [
        (commits[0], FRAME_HEADER_BYTES + 3),  // lsn of the first record
        (commits[2], FRAME_HEADER_BYTES + 40), // inside an op
        (commits[2], 0),                       // the CRC itself
        (commits[3], 5),                       // the length field
        (commits[3], 8),                       // the kind
        (commits[5], commits[5].size - 1),     // last byte of the value
        (marks[4], FRAME_HEADER_BYTES + 2),    // an early group's SyncMark
        (commits[N - 2], FRAME_HEADER_BYTES + 12), // the group before the last
        // The last record is covered by the SyncMark `close` writes.
        (commits[N - 1], FRAME_HEADER_BYTES + 20),
    ];
    for (frame, byte) in cases {
        let dir = copy_db(original.path());
        let path = same_file_in(dir.path(), &seg);
        flip(&path, frame.offset + byte);
        expect_corruption(dir.path(), &path, frame.offset);
    }
}

#[test]
fn any_damage_in_an_older_segment_is_corruption() {
    let original = closed_multi_segment_db(100);
    let segs = segments(original.path());
    for (seg_index, which) in [(0, "first"), (0, "last"), (1, "middle"), (0, "cut")] {
        let seg = &segs[seg_index];
        let data = fs::read(seg).unwrap();
        let commits = commit_frames(&data);
        let dir = copy_db(original.path());
        let path = same_file_in(dir.path(), seg);
        let offset = match which {
            "first" => {
                flip(&path, commits[0].offset + 20);
                commits[0].offset
            }
            "last" => {
                // In the newest segment this would be a torn tail; in an
                // older one it cannot be.
                let f = commits[commits.len() - 1];
                flip(&path, f.offset + f.size - 2);
                f.offset
            }
            "middle" => {
                let f = commits[commits.len() / 2];
                flip(&path, f.offset + FRAME_HEADER_BYTES + 1);
                f.offset
            }
            _ => {
                let f = *frames(&data).last().unwrap();
                fs::write(&path, &data[..data.len() - 5]).unwrap();
                f.offset
            }
        };
        expect_corruption(dir.path(), &path, offset);
    }
}

#[test]
fn a_damaged_segment_header_is_corruption() {
    let multi = closed_multi_segment_db(100);
    let segs = segments(multi.path());
    let single = closed_db(5);
    let only = segments(single.path())[0].clone();
    for (db, seg, at) in [
        (multi.path(), &segs[0], 0),              // magic of the oldest segment
        (multi.path(), &segs[1], 24),             // epoch of a middle one
        (multi.path(), segs.last().unwrap(), 52), // header CRC of the newest
        (single.path(), &only, 16),               // segment_no of the only one
        (single.path(), &only, 3),                // magic of the only one
    ] {
        let dir = copy_db(db);
        let path = same_file_in(dir.path(), seg);
        flip(&path, at);
        expect_corruption(dir.path(), &path, 0);
    }
}

#[test]
fn a_renamed_segment_is_corruption() {
    let original = closed_multi_segment_db(100);
    let dir = copy_db(original.path());
    let segs = segments(dir.path());
    let renamed = dir.path().join("wal").join(format!("{:020}.wal", 999_999));
    fs::rename(&segs[0], &renamed).unwrap();
    // Segment 2 is now the oldest; `999999` claims to be segment 1.
    match Db::open(dir.path(), opts()) {
        Err(Error::Corruption { .. }) => {}
        other => panic!("expected Corruption, got {:?}", other.map(|_| ())),
    }
}

/// Without a clean close there is no final SyncMark: damage in the last
/// group cannot be told from a torn write and is dropped (the window
/// the format documents), while damage in the group before it is
/// covered by the last group's SyncMark and is corruption.
#[test]
fn unclean_shutdown_damage_in_the_last_group_is_dropped_earlier_is_corruption() {
    const N: usize = 10;
    let mem = MemVfs::new();
    let db = open_mem(&mem, opts()).unwrap();
    commit_range(&db, 0..N);
    let killed = mem.process_crash();
    drop(db);
    let seg = mem_segments(&killed)[0].clone();
    let data = killed.read_all(&seg).unwrap();
    let commits = commit_frames(&data);
    assert_eq!(commits.len(), N);
    assert_eq!(
        *frames(&data).last().unwrap(),
        commits[N - 1],
        "no final mark"
    );

    let damaged = |frame: FrameAt| {
        let mut bytes = data.clone();
        bytes[frame.offset + FRAME_HEADER_BYTES + 4] ^= 0x01;
        let vfs = MemVfs::new();
        vfs.write_file(&seg, bytes);
        vfs
    };
    let vfs = damaged(commits[N - 1]);
    let db = open_mem(&vfs, opts()).unwrap();
    assert_exactly(&db, N - 1);
    drop(db);

    match open_mem(&damaged(commits[N - 2]), opts()) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, commits[N - 2].offset as u64);
        }
        other => panic!("expected Corruption, got {:?}", other.map(|_| ())),
    }
}

fn set_version(path: &Path, version: u16) {
    let mut data = fs::read(path).unwrap();
    assert_eq!(crc32(&data[..HEADER_CRC_AT]), u32_at(&data, HEADER_CRC_AT));
    data[8..10].copy_from_slice(&version.to_le_bytes());
    let crc = crc32(&data[..HEADER_CRC_AT]);
    data[HEADER_CRC_AT..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    fs::write(path, data).unwrap();
}

#[test]
fn a_newer_format_version_is_unsupported() {
    let single = closed_db(5);
    let multi = closed_multi_segment_db(100);
    let multi_segs = segments(multi.path());
    for (db, seg) in [
        (single.path(), segments(single.path())[0].clone()),
        (multi.path(), multi_segs[0].clone()),
        (multi.path(), multi_segs.last().unwrap().clone()),
    ] {
        let dir = copy_db(db);
        let path = same_file_in(dir.path(), &seg);
        set_version(&path, 2);
        match Db::open(dir.path(), opts()) {
            Err(Error::UnsupportedFormat {
                file,
                found,
                supported,
            }) => {
                assert_eq!(file, path);
                assert_eq!(found, 2);
                assert_eq!(supported, 1);
            }
            other => panic!("expected UnsupportedFormat, got {:?}", other.map(|_| ())),
        }
        // Version 1 with a fixed CRC opens again: the check is the version.
        set_version(&path, 1);
        Db::open(dir.path(), opts()).unwrap();
    }
}
