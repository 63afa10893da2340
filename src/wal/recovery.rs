//! Replays the WAL's segments in order, handing each decoded commit record to
//! a caller-supplied sink (the database applies it to the memtable; a
//! follower will apply shipped records through the same sink later).
//!
//! What recovery does (`docs/format/wal.md`, "What readers do"):
//! - The oldest segment must start the log (`first_lsn` 1, `prev_crc` 0),
//!   and every later one must have the next number and continue the chain:
//!   a missing segment is `Error::Corruption` naming the file after the gap.
//! - A torn tail of the last segment is cut (and synced); every other kind
//!   of damage is `Error::Corruption` naming the file and offset.
//! - A zero tail (preallocated space after the last frame) of the last
//!   segment is not damage: it is cut (and synced) so that disk space is
//!   not leaked, without counting it as lost. A segment with a successor
//!   file has none (the writer cut it and synced before it created the
//!   successor), so zeros there are damage, even when the successor's
//!   creation was torn and it is removed.
//! - A last segment whose creation was torn (shorter than its header, or a
//!   header that does not decode followed by nothing but zeros) held no
//!   acknowledged record, since the writer syncs a new segment before it
//!   writes a group into it: it is removed and its number used again.
//!
//! Recovery needs no new space: it only cuts, removes and syncs. The writer
//! creates the next segment later, at its first group write
//! (decision 0010). In [`RecoveryMode::ReadOnly`] it changes nothing at all and
//! reports in [`Recovered::repairs`] what [`RecoveryMode::Repair`] would have done.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{CommitRecord, HeaderError, SEGMENT_HEADER_BYTES, SegmentHeader, VERSION};
use super::reader::{Chain, Outcome, ReadError, SegmentFrames, scan_frames};
use super::writer::{parse_segment_name, segment_name};
use crate::error::{Error, Result};
use crate::types::Lsn;
use crate::vfs::Vfs;

/// Whether recovery may change the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecoveryMode {
    /// Cut torn and zero tails, remove a newest segment whose creation was
    /// torn, and sync the last segment (replayed records must be durable
    /// before anything depends on them). Creates the `wal/` directory.
    Repair,
    /// Writes, truncates, removes, creates and syncs nothing (a missing
    /// `wal/` directory is an empty log); [`Recovered::repairs`] lists what
    /// `Repair` would have done.
    ReadOnly,
}

/// A change recovery made to the log (in [`RecoveryMode::ReadOnly`]: would have made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repair {
    /// A torn tail cut off at `offset`: `bytes` bytes of unacknowledged data.
    CutTornTail {
        file: PathBuf,
        offset: u64,
        bytes: u64,
    },
    /// A zero tail (preallocated space, no data) cut off at `offset`.
    CutZeroTail { file: PathBuf, offset: u64 },
    /// The newest segment, whose creation was torn, removed; `bytes` counts
    /// its bytes up to the last non-zero one (zeros are not data).
    RemoveTornSegment { file: PathBuf, bytes: u64 },
}

/// Where the log stands after recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The last valid record (lsn, crc, commit_ts).
    pub(crate) chain: Chain,
    /// The lsn the oldest segment starts at: its first record's, or, in a
    /// segment whose records a crash took, the next record's (the log
    /// still reaches `oldest - 1` through its chain). `None`: no segment.
    pub(crate) oldest_lsn: Option<Lsn>,
    /// `(segment_no, first lsn)` of every segment left, oldest first.
    pub(crate) segments: Vec<(u64, Lsn)>,
    /// The number the next segment must have.
    pub(crate) next_segment_no: u64,
    /// The epoch of the last segment (0 if none).
    pub(crate) epoch: u64,
    /// Commit records replayed.
    pub(crate) records: u64,
    /// Bytes of every segment read (as found, before any cut).
    pub(crate) bytes: u64,
    /// Bytes cut off as a torn tail or a torn segment (a zero tail is not
    /// counted); read-only: the bytes that would have been.
    pub(crate) truncated_bytes: u64,
    /// What recovery changed (read-only: would have changed), in order.
    pub(crate) repairs: Vec<Repair>,
}

/// Replays every segment in `dir`, handing `sink` each commit record above
/// `flushed` (those at or below it are already in tables: they are read and
/// chain-checked, not replayed).
///
/// With `flushed` at 0 the log must start at the first record ever (lsn 1,
/// segment 1). Above 0, older segments may have been deleted after their
/// flush, so the oldest segment may have any number and must start at or
/// below `flushed + 1`: a log that does not reach back that far lost
/// records that are in no table, which is `Corruption`, never skipped.
pub(crate) fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    mode: RecoveryMode,
    flushed: Lsn,
    sink: &mut dyn FnMut(&CommitRecord<'_>) -> Result<()>,
) -> Result<Recovered> {
    let numbers = segment_numbers(vfs, dir, mode)?;
    let mut out = Recovered {
        chain: Chain::default(),
        oldest_lsn: None,
        segments: Vec::new(),
        next_segment_no: 1,
        epoch: 0,
        records: 0,
        bytes: 0,
        truncated_bytes: 0,
        repairs: Vec::new(),
    };
    let mut log = Log { vfs, dir, mode };
    for (i, &no) in numbers.iter().enumerate() {
        let path = dir.join(segment_name(no));
        let is_last = i + 1 == numbers.len();
        let previous = i.checked_sub(1).and_then(|p| numbers.get(p)).copied();
        // Before anything else: a torn newest segment is removed below, and
        // a gap before it must not go with it unnoticed.
        check_number(no, previous, flushed, &path)?;
        let data = vfs.read_all(&path)?;
        out.bytes += data.len() as u64;
        let Some(header) = read_header(&data, &path, is_last)? else {
            log.remove_torn_segment(path, &data, &mut out)?;
            out.next_segment_no = no;
            break;
        };
        check_place(&header, (no, previous), flushed, &out.chain, &path)?;
        if previous.is_none() {
            // The chain continues from the last record before this segment
            // (deleted after its flush, or none).
            out.chain.last_lsn = Lsn(header.first_lsn.0.saturating_sub(1));
            out.chain.last_crc = header.prev_crc;
        }
        let first_here = header.first_lsn;
        out.segments.push((no, first_here));
        out.epoch = header.epoch;
        let frames = SegmentFrames {
            start: SEGMENT_HEADER_BYTES,
            salt: header.salt,
            epoch: header.epoch,
        };
        let mut replayed = 0;
        let mut above_floor = |rec: &CommitRecord<'_>| {
            if rec.header.lsn <= flushed {
                return Ok(());
            }
            replayed += 1;
            sink(rec)
        };
        let scanned = scan_frames(&data, frames, &mut out.chain, is_last, &mut above_floor);
        out.records += replayed;
        if out.oldest_lsn.is_none() {
            out.oldest_lsn = Some(first_here);
        }
        log.finish_segment(path, &data, scanned, is_last, &mut out)?;
        out.next_segment_no = no + 1;
    }
    Ok(out)
}

/// The segment numbers in `dir`, ascending.
fn segment_numbers(vfs: &dyn Vfs, dir: &Path, mode: RecoveryMode) -> Result<Vec<u64>> {
    let names = match mode {
        RecoveryMode::Repair => {
            vfs.create_dir_all(dir)?;
            vfs.list(dir)?
        }
        RecoveryMode::ReadOnly => match vfs.list(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            listed => listed?,
        },
    };
    let mut numbers: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Decodes a segment's header; `None` if it is the last segment and its
/// creation was torn.
fn read_header(data: &[u8], path: &Path, is_last: bool) -> Result<Option<SegmentHeader>> {
    match SegmentHeader::decode(data) {
        Ok(h) => Ok(Some(h)),
        Err(HeaderError::Version(found)) => Err(Error::UnsupportedFormat {
            file: path.to_path_buf(),
            found: u32::from(found),
            supported: u32::from(VERSION),
        }),
        // The writer syncs a new segment (header and zeros) before it writes
        // a group into it, so a header that is short, zero or fails its CRC,
        // with nothing but zeros after it, is a creation cut short: nothing
        // in the file was ever acknowledged. (A header whose CRC matches but
        // whose fields are wrong is no torn write: corruption.)
        Err(HeaderError::Torn | HeaderError::Checksum)
            if is_last && is_zero(data.get(SEGMENT_HEADER_BYTES..).unwrap_or_default()) =>
        {
            Ok(None)
        }
        Err(HeaderError::Torn) => Err(Error::corruption(path, 0, "torn segment header")),
        Err(HeaderError::Checksum) => Err(Error::corruption(
            path,
            0,
            "segment header checksum mismatch",
        )),
        Err(HeaderError::Corrupt(what)) => Err(Error::corruption(path, 0, what)),
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Checks that segment number `no` follows `previous` (the segment before
/// it in the directory) without a gap, and, while nothing is flushed, that
/// the oldest is number 1: the writer numbers segments 1, 2, 3, ... and
/// creates each, even one whose creation is then torn, right after the one
/// before it; only a flush lets the oldest ones go.
fn check_number(no: u64, previous: Option<u64>, flushed: Lsn, path: &Path) -> Result<()> {
    let missing = match previous {
        None if no != 1 && flushed == Lsn::ZERO => {
            format!("the oldest segment is number {no}, not 1: older segments are missing")
        }
        Some(prev) if no != prev + 1 => {
            format!("segment {no} follows segment {prev}: segments in between are missing")
        }
        _ => return Ok(()),
    };
    Err(Error::corruption(path, 0, missing))
}

/// Checks that segment `no` (after segment `previous`, if any) is where
/// the chain says it must be.
fn check_place(
    header: &SegmentHeader,
    (no, previous): (u64, Option<u64>),
    flushed: Lsn,
    chain: &Chain,
    path: &Path,
) -> Result<()> {
    let fail = |what: String| Err(Error::corruption(path, 0, what));
    if header.segment_no != no {
        return fail("segment number does not match file name".into());
    }
    match previous {
        // While nothing is flushed the oldest segment is the first ever, so
        // a deleted oldest segment cannot pass unnoticed.
        None if flushed == Lsn::ZERO && (header.first_lsn != Lsn(1) || header.prev_crc != 0) => {
            fail(format!(
                "the oldest segment starts at lsn {} (prev_crc {:#x}), not at lsn 1: older segments are missing",
                header.first_lsn, header.prev_crc
            ))
        }
        // After a flush, the log must still hold every record above it.
        None if header.first_lsn > flushed.next() => fail(format!(
            "the oldest segment starts at lsn {}, but only records up to lsn {flushed} are in tables: records {} to {} are missing",
            header.first_lsn,
            flushed.next(),
            Lsn(header.first_lsn.0 - 1)
        )),
        Some(_)
            if header.first_lsn != chain.last_lsn.next() || header.prev_crc != chain.last_crc =>
        {
            fail("segment does not continue the previous one".into())
        }
        _ => Ok(()),
    }
}

/// The file-system side of recovery: what it changes, per [`RecoveryMode`].
struct Log<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    mode: RecoveryMode,
}

impl Log<'_> {
    fn repairing(&self) -> bool {
        self.mode == RecoveryMode::Repair
    }

    fn remove_torn_segment(
        &mut self,
        file: PathBuf,
        data: &[u8],
        out: &mut Recovered,
    ) -> Result<()> {
        if self.repairing() {
            self.vfs.remove(&file)?;
            self.vfs.sync_dir(self.dir)?;
        }
        let bytes = data
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |at| at as u64 + 1);
        out.truncated_bytes += bytes;
        out.repairs.push(Repair::RemoveTornSegment { file, bytes });
        Ok(())
    }

    /// Acts on how the scan of segment `file` ended.
    fn finish_segment(
        &mut self,
        file: PathBuf,
        data: &[u8],
        scanned: std::result::Result<Outcome, ReadError>,
        is_last: bool,
        out: &mut Recovered,
    ) -> Result<()> {
        match scanned {
            Ok(Outcome::Clean) if is_last && self.repairing() => {
                // A killed process may have left written but unsynced records
                // here. They are replayed, so they must be durable before
                // anything (a new segment chained to them, or a reader) can
                // depend on them.
                self.vfs.open_append(&file)?.sync_data()?;
            }
            Ok(Outcome::Clean) => {}
            Ok(Outcome::ZeroTail { offset }) if is_last => {
                // The cut is synced, which also makes the replayed records
                // durable (see `Clean` above).
                if self.repairing() {
                    self.vfs.truncate(&file, offset)?;
                }
                out.repairs.push(Repair::CutZeroTail { file, offset });
            }
            // The writer cut this segment to its last frame and synced it
            // before it created the next file (`docs/format/wal.md`, writer
            // rule 3), so zeros here stand where synced records were. The
            // next header's chain check would catch that too, but not when
            // the next file's creation was torn and it is removed.
            Ok(Outcome::ZeroTail { offset }) => {
                return Err(Error::corruption(
                    file,
                    offset,
                    "zeros after the last frame of a segment that has a successor",
                ));
            }
            Ok(Outcome::TornTail { offset }) => {
                if self.repairing() {
                    self.vfs.truncate(&file, offset)?;
                }
                let bytes = data.len() as u64 - offset;
                out.truncated_bytes += bytes;
                out.repairs.push(Repair::CutTornTail {
                    file,
                    offset,
                    bytes,
                });
            }
            Err(ReadError::Corrupt { offset, what }) => {
                return Err(Error::corruption(file, offset, what));
            }
            Err(ReadError::Sink(e)) => return Err(e),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;
    use crate::{Db, Durability, Options};
    use std::sync::Arc;

    const DIR: &str = "/db/wal";

    /// Every file under `DIR` with its bytes, live and as a power cut now
    /// would leave it (what was synced).
    fn state(vfs: &MemVfs) -> [Vec<(String, Vec<u8>)>; 2] {
        let files = |v: &MemVfs| {
            let mut names = v.list(Path::new(DIR)).unwrap_or_default();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    let data = v.read_all(&Path::new(DIR).join(&n)).unwrap();
                    (n, data)
                })
                .collect::<Vec<_>>()
        };
        [files(vfs), files(&vfs.crash())]
    }

    fn run(vfs: &MemVfs, mode: RecoveryMode) -> Recovered {
        recover(vfs, Path::new(DIR), mode, Lsn::ZERO, &mut |_| Ok(())).unwrap()
    }

    /// A database of 30 commits in 4 KiB segments, left by a process crash
    /// (a zero tail in `Sync` mode; unsynced records without preallocation
    /// in `Buffered` mode), or closed with `garbage` appended.
    fn log(durability: Durability, preallocate: u64, garbage: Option<&[u8]>) -> MemVfs {
        let mem = MemVfs::new();
        let options = Options::default()
            .durability(durability)
            .wal_segment_bytes(4096)
            .wal_preallocate_bytes(preallocate);
        let db = Db::open_with_vfs("/db", options, Arc::new(mem.clone())).unwrap();
        for i in 0..30_u32 {
            let mut t = db.begin();
            t.put(&i.to_le_bytes(), &[7; 100]).unwrap();
            t.commit().unwrap();
        }
        let Some(garbage) = garbage else {
            let killed = mem.process_crash();
            drop(db);
            return killed;
        };
        db.close().unwrap();
        let mut names = mem.list(Path::new(DIR)).unwrap();
        names.sort();
        let last = Path::new(DIR).join(names.last().unwrap());
        let mut data = mem.read_all(&last).unwrap();
        data.extend_from_slice(garbage);
        mem.write_file(&last, data);
        mem
    }

    /// Read-only recovery replays the same records as repairing recovery
    /// and reports the same repairs, but changes nothing: no byte, no
    /// length, no file, and nothing more becomes durable.
    #[test]
    fn read_only_recovery_changes_nothing_and_reports_what_repair_does() {
        let torn_newest = |vfs: MemVfs| {
            let mut names = vfs.list(Path::new(DIR)).unwrap();
            names.sort();
            let next = parse_segment_name(names.last().unwrap()).unwrap() + 1;
            vfs.write_file(&Path::new(DIR).join(segment_name(next)), vec![0; 300]);
            vfs
        };
        let cases = [
            ("zero tail", log(Durability::Sync, 1 << 20, None)),
            ("unsynced records", log(Durability::Buffered, 0, None)),
            ("torn tail", log(Durability::Sync, 0, Some(&[0xAB; 333]))),
            (
                "torn newest segment",
                torn_newest(log(Durability::Sync, 0, Some(&[]))),
            ),
        ];
        for (what, vfs) in cases {
            let before = state(&vfs);
            let read_only = run(&vfs, RecoveryMode::ReadOnly);
            assert!(
                state(&vfs) == before,
                "{what}: read-only recovery changed the log"
            );
            assert_eq!(read_only.records, 30, "{what}");
            let repaired = run(&vfs, RecoveryMode::Repair);
            assert_eq!(read_only, repaired, "{what}");
            let after = state(&vfs);
            // Repairing makes the live state durable; the log changed.
            assert!(after[0] == after[1], "{what}: not all synced");
            assert!(after != before, "{what}: nothing to repair");
            let again = run(&vfs, RecoveryMode::ReadOnly);
            assert!(again.repairs.is_empty(), "{what}: {:?}", again.repairs);
            assert_eq!((again.records, again.truncated_bytes), (30, 0), "{what}");
        }
    }

    #[test]
    fn read_only_recovery_of_a_missing_directory_is_an_empty_log() {
        let vfs = MemVfs::new();
        let out = run(&vfs, RecoveryMode::ReadOnly);
        assert_eq!((out.records, out.next_segment_no), (0, 1));
        assert!(
            vfs.list(Path::new(DIR)).is_err(),
            "the directory was created"
        );
    }
    /// The segments of a closed 30-commit log, oldest first, with the first
    /// lsn each starts at.
    fn segments(vfs: &MemVfs) -> Vec<(String, Lsn)> {
        let mut names = vfs.list(Path::new(DIR)).unwrap();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let data = vfs.read_all(&Path::new(DIR).join(&n)).unwrap();
                let header = SegmentHeader::decode(&data).unwrap();
                (n, header.first_lsn)
            })
            .collect()
    }

    fn replay(vfs: &MemVfs, flushed: Lsn) -> Result<(Recovered, Vec<Lsn>)> {
        let mut seen = Vec::new();
        let out = recover(
            vfs,
            Path::new(DIR),
            RecoveryMode::ReadOnly,
            flushed,
            &mut |r| {
                seen.push(r.header.lsn);
                Ok(())
            },
        )?;
        Ok((out, seen))
    }

    /// After a flush, the oldest segments may be gone: recovery replays only
    /// the records above the flushed lsn, continues the chain from the
    /// oldest segment left, and refuses a log that does not reach back to
    /// the flushed lsn.
    #[test]
    fn a_log_whose_flushed_segments_are_gone_replays_what_is_above_the_flushed_lsn() {
        let vfs = MemVfs::new();
        let options = Options::default().wal_segment_bytes(4096);
        let db = Db::open_with_vfs("/db", options, Arc::new(vfs.clone())).unwrap();
        for i in 0..30_u32 {
            let mut t = db.begin();
            t.put(&i.to_le_bytes(), &[7; 600]).unwrap();
            t.commit().unwrap();
        }
        db.close().unwrap();
        let segs = segments(&vfs);
        assert!(segs.len() >= 4, "{segs:?}");
        // Everything, from lsn 1, with nothing flushed.
        let (all, seen) = replay(&vfs, Lsn::ZERO).unwrap();
        assert_eq!((all.records, seen.len()), (30, 30));
        // Records at or below the floor are read (the chain is checked) but
        // not replayed.
        let (out, seen) = replay(&vfs, Lsn(12)).unwrap();
        assert_eq!(seen, (13..=30).map(Lsn).collect::<Vec<_>>());
        assert_eq!((out.records, out.chain), (18, all.chain));
        // The two oldest segments deleted, as after a flush of their records.
        for (name, _) in &segs[..2] {
            vfs.remove(&Path::new(DIR).join(name)).unwrap();
        }
        let start = segs[2].1;
        let flushed = Lsn(start.0 - 1);
        let (out, seen) = replay(&vfs, flushed).unwrap();
        assert_eq!(seen, (start.0..=30).map(Lsn).collect::<Vec<_>>());
        assert_eq!(out.chain, all.chain, "the same last record, crc and ts");
        assert_eq!(out.next_segment_no, all.next_segment_no);
        // A floor above the oldest segment's start skips the rest of it.
        let (_, seen) = replay(&vfs, Lsn(start.0 + 1)).unwrap();
        assert_eq!(seen.first(), Some(&Lsn(start.0 + 2)));
        // A floor below it: records in no table and in no segment.
        match replay(&vfs, Lsn(flushed.0 - 1)) {
            Err(Error::Corruption { what, .. }) => {
                assert!(what.contains("are missing"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        // Nothing flushed: the oldest segment must be the first ever.
        assert!(matches!(
            replay(&vfs, Lsn::ZERO),
            Err(Error::Corruption { .. })
        ));
        // A gap between the segments left is corruption whatever the floor.
        vfs.remove(&Path::new(DIR).join(&segs[3].0)).unwrap();
        assert!(matches!(
            replay(&vfs, flushed),
            Err(Error::Corruption { .. })
        ));
    }
}
