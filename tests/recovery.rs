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

mod clean {
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
            assert_eq!(db.stats().recovered_records, total as u64, "round {round}");
            assert_exactly(&db, total);
            commit_range(&db, total..total + 40);
            total += 40;
            db.close().unwrap();
        }
        // Reopening with a different segment size reads the same log.
        let db = open(dir.path());
        assert_exactly(&db, total);
        // Every segment still parses, and the chain of first LSNs is gapless.
        let mut next_lsn = 1;
        for seg in segments(dir.path()) {
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
}

// ===========================================================================
// Torn tails and trailing garbage
// ===========================================================================

mod torn_tail {
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
        let db =
            Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("torn tail reported as {e:?}"));
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

            let db = Db::open(dir.path(), opts())
                .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
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
}

// ===========================================================================
// Corruption
// ===========================================================================

mod corruption {
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
}

// ===========================================================================
// Write and sync failures (FaultVfs over MemVfs)
// ===========================================================================

mod io_failure {
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
            let end =
                |data: std::io::Result<Vec<u8>>| data.map_or(HEADER_BYTES, |d| frames_end(&d));
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
                let db = open_mem(&vfs, small_segments())
                    .unwrap_or_else(|e| panic!("{what}, {how}: {e}"));
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
}

// ===========================================================================
// Buffered durability: power cut vs process crash
// ===========================================================================

mod buffered {
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
}

// ===========================================================================
// A power cut after recovery replayed bytes that were never synced
// ===========================================================================

mod power_cut_after_recovery {
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
}

// ===========================================================================
// Preallocated segments: the zero tail
// ===========================================================================

mod preallocation {
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
                let db = open_mem(cut, options.clone()).unwrap_or_else(|e| {
                    panic!("preallocate {preallocate}, cut after commit {i}: {e}")
                });
                assert_exactly(&db, i + 1);
            }
        }
    }
}
