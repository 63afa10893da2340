//! How recovery classifies damage to whole segments (issue 14, item 6): a
//! missing segment (the oldest, or one in the middle) is corruption naming
//! the file after the gap; every shape a torn creation can leave in the
//! newest segment's header is a torn tail (the file is removed, nothing
//! acknowledged is lost, and the bytes are reported in
//! `Stats::recovered_truncated_bytes`); the same shapes in an older segment,
//! or a checksummed header with wrong fields, stay corruption.
//!
//! Layout facts used here (`docs/format/wal.md`): the segment header is 56
//! bytes, its CRC (IEEE) covers the 52 bytes before it, segment files are
//! `wal/<number:020>.wal`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Durability, Error, Options};

const HEADER_BYTES: usize = 56;
const HEADER_CRC_AT: usize = 52;
const COMMITS: usize = 60;

fn options() -> Options {
    Options::default()
        .durability(Durability::Sync)
        .wal_segment_bytes(4096)
}

fn wal_dir() -> PathBuf {
    Path::new("/db").join("wal")
}

fn open(vfs: &MemVfs) -> strata::Result<Db> {
    Db::open_with_vfs("/db", options(), Arc::new(vfs.clone()))
}

fn commit(db: &Db, i: usize) {
    let mut t = db.begin();
    // 200-byte values: 60 commits fill about five 4 KiB segments.
    t.put(format!("k{i:04}").as_bytes(), &[i as u8; 200])
        .unwrap();
    t.commit().unwrap();
}

/// Asserts that exactly commits `0..n` are visible.
fn assert_exactly(db: &Db, n: usize) {
    let r = db.begin_read();
    let keys: Vec<Vec<u8>> = r
        .scan(b"k".as_slice()..b"l".as_slice())
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect();
    let expected: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i:04}").into_bytes()).collect();
    assert_eq!(keys.len(), n, "expected exactly {n} commits");
    assert_eq!(keys, expected);
}

fn segments(vfs: &MemVfs) -> Vec<PathBuf> {
    let mut names = vfs.list(&wal_dir()).unwrap();
    names.sort();
    names.into_iter().map(|n| wal_dir().join(n)).collect()
}

fn segment_path(no: u64) -> PathBuf {
    wal_dir().join(format!("{no:020}.wal"))
}

/// A closed database of `COMMITS` commits in at least 4 small segments.
fn closed_db() -> (MemVfs, Vec<PathBuf>) {
    let mem = MemVfs::new();
    let db = open(&mem).unwrap();
    for i in 0..COMMITS {
        commit(&db, i);
    }
    db.close().unwrap();
    let segs = segments(&mem);
    assert!(segs.len() >= 4, "only {} segments", segs.len());
    (mem, segs)
}

/// A copy of `mem`'s segments, without `remove`.
fn copy_without(mem: &MemVfs, remove: Option<&Path>) -> MemVfs {
    let copy = MemVfs::new();
    for seg in segments(mem) {
        if Some(seg.as_path()) != remove {
            copy.write_file(&seg, mem.read_all(&seg).unwrap());
        }
    }
    copy
}

fn expect_corruption(vfs: &MemVfs, file: &Path, offset: u64, what_has: &str) {
    match open(vfs) {
        Err(Error::Corruption {
            file: f,
            offset: o,
            what,
        }) => {
            assert_eq!((f.as_path(), o), (file, offset), "{what}");
            assert!(what.contains(what_has), "{what}");
        }
        other => panic!(
            "expected Corruption in {}, got {:?}",
            file.display(),
            other.map(|_| ())
        ),
    }
}

/// Deleting the oldest segment used to open without error, with the oldest
/// commits gone: the new oldest segment seeded the chain. The first segment
/// must start at lsn 1.
#[test]
fn a_deleted_oldest_segment_is_corruption_naming_the_new_oldest() {
    let (mem, segs) = closed_db();
    let damaged = copy_without(&mem, Some(&segs[0]));
    expect_corruption(&damaged, &segs[1], 0, "oldest segment");
    // Deleting the two oldest: the same, naming the third.
    let damaged = copy_without(&damaged, Some(&segs[1]));
    expect_corruption(&damaged, &segs[2], 0, "oldest segment");
    // Nothing was changed by the failed opens.
    assert_eq!(segments(&damaged), segs[2..].to_vec());
}

#[test]
fn a_missing_middle_segment_is_corruption_naming_the_one_after_the_gap() {
    let (mem, segs) = closed_db();
    let damaged = copy_without(&mem, Some(&segs[1]));
    expect_corruption(&damaged, &segs[2], 0, "missing");
    let last = segs.len() - 1;
    let damaged = copy_without(&mem, Some(&segs[last - 1]));
    expect_corruption(&damaged, &segs[last], 0, "missing");
}

/// A valid header of segment `no` (first lsn, prev crc as given).
fn header(no: u64, first_lsn: u64, prev_crc: u32) -> Vec<u8> {
    let mut h = b"STRATWAL".to_vec();
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&56u32.to_le_bytes());
    h.extend_from_slice(&no.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&first_lsn.to_le_bytes());
    h.extend_from_slice(&prev_crc.to_le_bytes());
    h.extend_from_slice(&0x1234_5678_9abc_def0_u64.to_le_bytes());
    let crc = crc32(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(h.len(), HEADER_BYTES);
    h
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Every shape a creation cut short can leave of a segment file: (name,
/// bytes). The writer writes the header and its first chunk of zeros in one
/// write and syncs them before the segment is used.
fn torn_creations(h: &[u8]) -> Vec<(String, Vec<u8>)> {
    let zeros_after = |mut bytes: Vec<u8>, total: usize| {
        bytes.resize(total, 0);
        bytes
    };
    let mut shapes = vec![("empty".to_string(), Vec::new())];
    for k in [1, 8, 20, 55] {
        shapes.push((format!("first {k} header bytes only"), h[..k].to_vec()));
    }
    for total in [HEADER_BYTES, HEADER_BYTES + 4096] {
        shapes.push((format!("{total} zeros"), vec![0; total]));
        for k in [1, 4, 8, 20, 44, 52, 55] {
            let name = format!("first {k} header bytes, then zeros to {total}");
            shapes.push((name, zeros_after(h[..k].to_vec(), total)));
        }
        for at in [0, 9, 30, HEADER_CRC_AT + 1] {
            let mut bad = h.to_vec();
            bad[at] ^= 0x20;
            let name = format!("header with a bad CRC (byte {at}), then zeros to {total}");
            shapes.push((name, zeros_after(bad, total)));
        }
    }
    shapes
}

/// The next segment's creation was torn: whatever the shape, the file is
/// removed, every commit is there, the bytes are reported, and the number
/// is used again by the next segment.
#[test]
fn every_shape_of_a_torn_newest_header_is_a_torn_tail() {
    let (mem, segs) = closed_db();
    let next_no = segs.len() as u64 + 1;
    let torn_path = segment_path(next_no);
    // The header the next segment would have had (chain values do not
    // matter to a torn header: it is never decoded).
    for (shape, bytes) in torn_creations(&header(next_no, 61, 0)) {
        let vfs = copy_without(&mem, None);
        vfs.write_file(&torn_path, bytes.clone());
        let db = open(&vfs).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_exactly(&db, COMMITS);
        let non_zero = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        assert_eq!(
            db.stats().recovered_truncated_bytes,
            non_zero as u64,
            "{shape}"
        );
        assert_eq!(
            segments(&vfs),
            segs,
            "{shape}: the torn file was not removed"
        );
        commit(&db, COMMITS);
        assert_eq!(segments(&vfs).last(), Some(&torn_path), "{shape}");
        db.close().unwrap();
        let db = open(&vfs).unwrap();
        assert_exactly(&db, COMMITS + 1);
        assert_eq!(db.stats().recovered_truncated_bytes, 0);
    }
}

/// The same shapes in a segment that is not the newest, a torn-looking
/// header followed by records in the newest one, and a checksummed header
/// with wrong fields: corruption at offset 0 of that file.
#[test]
fn a_damaged_header_that_no_torn_creation_explains_is_corruption() {
    let (mem, segs) = closed_db();
    let h = header(2, 1, 0);
    for (shape, bytes) in torn_creations(&h) {
        let vfs = copy_without(&mem, None);
        vfs.write_file(&segs[1], bytes);
        match open(&vfs) {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!((file.as_path(), offset), (segs[1].as_path(), 0), "{shape}");
            }
            other => panic!("{shape}: expected Corruption, got {:?}", other.map(|_| ())),
        }
    }
    // The newest segment's header fails its CRC, but records follow it.
    let newest = segs.last().unwrap();
    let vfs = copy_without(&mem, None);
    let mut data = vfs.read_all(newest).unwrap();
    data[20] ^= 0x01;
    vfs.write_file(newest, data);
    expect_corruption(&vfs, newest, 0, "checksum");
    // A newest file whose header has a valid CRC but nonzero flags, and
    // zeros after it: no torn write produces a valid CRC.
    let no = segs.len() as u64 + 1;
    let mut bad_flags = header(no, 61, 0);
    bad_flags[10] = 1;
    let crc = crc32(&bad_flags[..HEADER_CRC_AT]);
    bad_flags[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    bad_flags.resize(HEADER_BYTES + 512, 0);
    let vfs = copy_without(&mem, None);
    vfs.write_file(&segment_path(no), bad_flags);
    expect_corruption(&vfs, &segment_path(no), 0, "fields");
}

/// The only segment's creation was torn: an empty database that takes
/// commits; a valid header whose first lsn is not 1 is corruption.
#[test]
fn the_only_segment_torn_or_not_starting_the_log() {
    let h = header(1, 1, 0);
    for (shape, bytes) in torn_creations(&h) {
        let vfs = MemVfs::new();
        vfs.write_file(&segment_path(1), bytes);
        let db = open(&vfs).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_exactly(&db, 0);
        assert!(segments(&vfs).is_empty(), "{shape}");
        commit(&db, 0);
        drop(db);
        assert_exactly(&open(&vfs).unwrap(), 1);
    }
    for (first_lsn, prev_crc) in [(2, 0), (100, 0x55), (1, 0x55)] {
        let vfs = MemVfs::new();
        vfs.write_file(&segment_path(1), header(1, first_lsn, prev_crc));
        expect_corruption(&vfs, &segment_path(1), 0, "oldest segment");
    }
}

/// Found in review: recovery removed a torn newest segment before it looked
/// at its number, so a gap right before it went unnoticed. With segment 1
/// deleted and a torn segment 2 left, the database opened empty, removed
/// segment 2, and its next commit started a new log at lsn 1: the loss
/// could never be detected again. A torn newest segment must still follow
/// the one before it (the writer creates each right after its
/// predecessor), and the oldest must be number 1.
#[test]
fn a_gap_before_a_torn_newest_segment_is_corruption() {
    let (mem, segs) = closed_db();
    for (shape, bytes) in torn_creations(&header(3, 1, 0)) {
        // Only a torn segment 3 is left: segments 1 and 2 are gone.
        let vfs = MemVfs::new();
        vfs.write_file(&segment_path(3), bytes.clone());
        expect_corruption(&vfs, &segment_path(3), 0, "oldest segment");
        assert_eq!(
            segments(&vfs),
            vec![segment_path(3)],
            "{shape}: nothing removed"
        );

        // Segment 1 kept, 2 and later gone, a torn segment 3 after the gap.
        let vfs = copy_without(&mem, None);
        for seg in &segs[1..] {
            vfs.remove(seg).unwrap();
        }
        vfs.write_file(&segment_path(3), bytes);
        expect_corruption(&vfs, &segment_path(3), 0, "missing");
    }
}
