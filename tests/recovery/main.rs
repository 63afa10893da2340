//! Durability and recovery of the WAL through the public API: clean reopens,
//! segment rolls, torn tails, garbage after the log, corruption (mid-log, in
//! an older segment, in a header), newer format versions, write and sync
//! failures, power cut vs process crash in `Buffered` mode, and the zero
//! tail of preallocated segments.
//!
//! Expected offsets are computed by parsing the segment files here, from the
//! format in `docs/format/wal.md` (56-byte header, then frames of `9 + len`
//! bytes), independently of the engine's own decoder.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::too_many_lines, reason = "scenario tests read top to bottom")]

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata::vfs::{FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options, Ts};

const HEADER_BYTES: usize = 56;
/// Offset of the header CRC (it covers the bytes before it).
const HEADER_CRC_AT: usize = 52;
/// Offset of the segment's salt, which SyncMark CRCs start with.
const SALT_AT: usize = 44;
const FRAME_HEADER_BYTES: usize = 9;
const SYNC_MARK_BYTES: usize = 17;
const KIND_COMMIT: u8 = 1;
const KIND_SYNC_MARK: u8 = 2;
const MEM_DB: &str = "/db";

// ---------------------------------------------------------------------------
// Workload: transaction `i` writes `k{i}-a` and `k{i}-b`, both with value(i).
// ---------------------------------------------------------------------------

fn key(i: usize, part: char) -> Vec<u8> {
    format!("k{i:05}-{part}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value of transaction {i}").into_bytes()
}

fn commit_one(db: &Db, i: usize) -> strata::Result<Ts> {
    let mut t = db.begin();
    t.put(&key(i, 'a'), &value(i))?;
    t.put(&key(i, 'b'), &value(i))?;
    t.commit()
}

/// Commits transactions `range` in order; returns the last commit ts.
fn commit_range(db: &Db, range: Range<usize>) -> Ts {
    let mut last = Ts::ZERO;
    for i in range {
        let ts = commit_one(db, i).unwrap();
        assert!(ts > last, "commit ts must rise: {ts:?} after {last:?}");
        last = ts;
    }
    last
}

/// The workload transactions visible now, ascending. Panics if one is only
/// partly visible or has a wrong value.
fn visible_txns(db: &Db) -> Vec<usize> {
    let r = db.begin_read();
    let mut parts: std::collections::BTreeMap<usize, Vec<char>> = std::collections::BTreeMap::new();
    for item in r.scan(b"k".as_slice()..b"l".as_slice()).unwrap() {
        let (k, v) = item.unwrap();
        let k = String::from_utf8(k).unwrap();
        let (num, part) = k[1..].split_once('-').unwrap();
        let i: usize = num.parse().unwrap();
        assert_eq!(v, value(i), "wrong value under {k}");
        parts
            .entry(i)
            .or_default()
            .push(part.chars().next().unwrap());
    }
    for (i, p) in &parts {
        assert_eq!(p, &['a', 'b'], "transaction {i} is partially visible");
    }
    parts.into_keys().collect()
}

/// Asserts that exactly transactions `0..n` are visible, each in full.
fn assert_exactly(db: &Db, n: usize) {
    let seen = visible_txns(db);
    let expected: Vec<usize> = (0..n).collect();
    if seen != expected {
        let first_diff = seen
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(seen.len().min(n));
        panic!(
            "expected transactions 0..{n}, found {} of them (first difference at index {first_diff}: {:?})",
            seen.len(),
            seen.get(first_diff)
        );
    }
}

/// Asserts that transactions `0..n` are visible, and `n` (the one whose
/// commit failed) is visible in full or not at all; returns whether it is.
fn assert_prefix_and_maybe(db: &Db, n: usize) -> bool {
    let seen = visible_txns(db);
    let base: Vec<usize> = (0..n).collect();
    let with: Vec<usize> = (0..=n).collect();
    assert!(
        seen == base || seen == with,
        "expected transactions 0..{n} (and maybe {n}), found {seen:?}"
    );
    seen == with
}

// ---------------------------------------------------------------------------
// Opening.
// ---------------------------------------------------------------------------

/// No Buffered background sync (the tests that switch to Buffered decide
/// what is synced; a timer must not).
fn opts() -> Options {
    Options::default()
        .durability(Durability::Sync)
        .buffered_sync_interval(std::time::Duration::ZERO)
}

fn small_segments() -> Options {
    opts().wal_segment_bytes(4096)
}

fn open(dir: &Path) -> Db {
    Db::open(dir, opts()).unwrap()
}

fn open_mem(vfs: &MemVfs, options: Options) -> strata::Result<Db> {
    Db::open_with_vfs(MEM_DB, options, Arc::new(vfs.clone()))
}

fn mem_wal_dir() -> PathBuf {
    Path::new(MEM_DB).join("wal")
}

// ---------------------------------------------------------------------------
// Independent parsing of the on-disk format.
// ---------------------------------------------------------------------------

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameAt {
    offset: usize,
    kind: u8,
    size: usize,
}

impl FrameAt {
    fn end(self) -> usize {
        self.offset + self.size
    }
}

/// Parses an intact segment: checks the header CRC and every frame's CRC,
/// and that the frames cover the file exactly, up to a zero tail (zeros the
/// writer preallocated after the last frame).
fn frames(data: &[u8]) -> Vec<FrameAt> {
    assert!(
        data.len() >= HEADER_BYTES,
        "segment shorter than its header"
    );
    assert_eq!(&data[..8], b"STRATWAL");
    assert_eq!(
        crc32(&data[..HEADER_CRC_AT]),
        u32_at(data, HEADER_CRC_AT),
        "test CRC32 disagrees with the header CRC"
    );
    let mut out = Vec::new();
    let mut at = HEADER_BYTES;
    while at < data.len() && data[at..].iter().any(|&b| b != 0) {
        let len = u32_at(data, at + 4) as usize;
        let size = FRAME_HEADER_BYTES + len;
        assert!(at + size <= data.len(), "frame at {at} runs past the end");
        let kind = data[at + 8];
        // A SyncMark's CRC starts with the segment's salt (so user data cannot
        // forge one); a commit record's CRC covers only the frame.
        let covered = if kind == KIND_SYNC_MARK {
            [&data[SALT_AT..SALT_AT + 8], &data[at + 4..at + size]].concat()
        } else {
            data[at + 4..at + size].to_vec()
        };
        assert_eq!(crc32(&covered), u32_at(data, at), "frame at {at}: CRC");
        assert!(kind == KIND_COMMIT || kind == KIND_SYNC_MARK, "kind {kind}");
        if kind == KIND_SYNC_MARK {
            assert_eq!(size, SYNC_MARK_BYTES);
        }
        out.push(FrameAt {
            offset: at,
            kind,
            size,
        });
        at += size;
    }
    out
}

/// Where the frames of an intact segment end (the file may go on with a
/// zero tail).
fn frames_end(data: &[u8]) -> usize {
    frames(data).last().map_or(HEADER_BYTES, |f| f.end())
}

fn commit_frames(data: &[u8]) -> Vec<FrameAt> {
    frames(data)
        .into_iter()
        .filter(|f| f.kind == KIND_COMMIT)
        .collect()
}

/// What recovery must keep of a closed single-thread `Sync` log cut to
/// `len` bytes: (complete commit records, length after truncation).
fn expected_after_cut(intact: &[FrameAt], len: usize) -> (usize, usize) {
    let complete: Vec<&FrameAt> = intact.iter().filter(|f| f.end() <= len).collect();
    let commits = complete.iter().filter(|f| f.kind == KIND_COMMIT).count();
    let end = complete.last().map_or(HEADER_BYTES, |f| f.end());
    (commits, end)
}

/// The bytes of a SyncMark claiming `synced_lsn`, checksummed as a user who
/// does not know the segment's salt would have to (salt-free).
fn sync_mark_bytes(synced_lsn: u64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&8u32.to_le_bytes());
    body.push(KIND_SYNC_MARK);
    body.extend_from_slice(&synced_lsn.to_le_bytes());
    let mut out = crc32(&body).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Segment files of the database in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    out.sort();
    for p in &out {
        let stem = p.file_stem().unwrap().to_str().unwrap();
        assert_eq!(stem.len(), 20, "segment name {}", p.display());
    }
    out
}

fn mem_segments(vfs: &MemVfs) -> Vec<PathBuf> {
    let dir = mem_wal_dir();
    let mut names = vfs.list(&dir).unwrap();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// Copies the `wal/` directory of `from` into a fresh temporary directory.
fn copy_db(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    fs::create_dir_all(to.path().join("wal")).unwrap();
    for seg in segments(from) {
        fs::copy(&seg, to.path().join("wal").join(seg.file_name().unwrap())).unwrap();
    }
    to
}

/// The copy of `seg` (a path under `from`) inside `to`.
fn same_file_in(to: &Path, seg: &Path) -> PathBuf {
    to.join("wal").join(seg.file_name().unwrap())
}

fn flip(path: &Path, at: usize) {
    let mut data = fs::read(path).unwrap();
    data[at] ^= 0x10;
    fs::write(path, data).unwrap();
}

/// Opens `dir`, expecting `Error::Corruption` in `file` at `offset`; checks
/// that the failed open changed nothing and can be repeated.
fn expect_corruption(dir: &Path, file: &Path, offset: usize) {
    let before: Vec<Vec<u8>> = segments(dir).iter().map(|p| fs::read(p).unwrap()).collect();
    for attempt in 0..2 {
        match Db::open(dir, opts()) {
            Err(Error::Corruption {
                file: f,
                offset: o,
                what,
            }) => {
                assert_eq!(
                    f, file,
                    "attempt {attempt}: corruption reported in the wrong file ({what})"
                );
                assert_eq!(o, offset as u64, "attempt {attempt}: wrong offset ({what})");
            }
            Err(e) => {
                panic!(
                    "attempt {attempt}: expected Corruption in {} at {offset}, got {e:?}",
                    file.display()
                )
            }
            Ok(_) => panic!(
                "attempt {attempt}: expected Corruption in {} at {offset}, open succeeded",
                file.display()
            ),
        }
    }
    let after: Vec<Vec<u8>> = segments(dir).iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(before == after, "a failed open modified the log");
}

/// A closed database of `n` transactions (one segment, default options).
fn closed_db(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    commit_range(&db, 0..n);
    db.close().unwrap();
    dir
}

/// A closed database of `n` transactions over several 4 KiB segments.
fn closed_multi_segment_db(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_segments()).unwrap();
    commit_range(&db, 0..n);
    db.close().unwrap();
    assert!(segments(dir.path()).len() >= 3, "expected several segments");
    dir
}

// ===========================================================================
// Clean reopen
// ===========================================================================

mod clean;

// ===========================================================================
// Torn tails and trailing garbage
// ===========================================================================

mod torn_tail;

// ===========================================================================
// Corruption
// ===========================================================================

mod corruption;

// ===========================================================================
// Write and sync failures (FaultVfs over MemVfs)
// ===========================================================================

mod io_failure;

// ===========================================================================
// Buffered durability: power cut vs process crash
// ===========================================================================

mod buffered;

// ===========================================================================
// A power cut after recovery replayed bytes that were never synced
// ===========================================================================

mod power_cut_after_recovery;

// ===========================================================================
// Preallocated segments: the zero tail
// ===========================================================================

mod preallocation;
