//! Replays the WAL's segments in order, handing each decoded commit record to
//! a caller-supplied sink (the database applies it to the memtable; a
//! follower will apply shipped records through the same sink later).
//!
//! Torn tails of the last segment are truncated (and synced); every other
//! kind of damage is `Error::Corruption` naming the file and offset. A zero
//! tail (preallocated space after the last frame) of the last segment is not
//! damage: it is cut (and synced) so that disk space is not leaked, without
//! counting it as lost. A segment with a successor file has none (the writer
//! cut it and synced before it created the successor), so zeros there are
//! damage, even when the successor's creation was torn and it is removed.

use std::path::Path;

use super::format::{CommitRecord, HeaderError, SEGMENT_HEADER_BYTES, SegmentHeader, VERSION};
use super::reader::{Chain, Outcome, ReadError, SegmentFrames, scan_frames};
use super::writer::{parse_segment_name, segment_name};
use crate::error::{Error, Result};
use crate::types::Lsn;
use crate::vfs::Vfs;

/// Where the log stands after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The last valid record (lsn, crc, commit_ts).
    pub(crate) chain: Chain,
    /// The number the next segment must have.
    pub(crate) next_segment_no: u64,
    /// The epoch of the last segment (0 if none).
    pub(crate) epoch: u64,
    /// Commit records replayed.
    pub(crate) records: u64,
    /// Bytes cut off as a torn tail (a zero tail is not counted).
    pub(crate) truncated_bytes: u64,
}

/// Replays every segment in `dir`.
pub(crate) fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    sink: &mut dyn FnMut(&CommitRecord<'_>) -> Result<()>,
) -> Result<Recovered> {
    vfs.create_dir_all(dir)?;
    let mut numbers: Vec<u64> = vfs
        .list(dir)?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    numbers.sort_unstable();
    let mut out = Recovered {
        chain: Chain::default(),
        next_segment_no: 1,
        epoch: 0,
        records: 0,
        truncated_bytes: 0,
    };
    for (i, &no) in numbers.iter().enumerate() {
        let path = dir.join(segment_name(no));
        let is_last = i + 1 == numbers.len();
        let data = vfs.read_all(&path)?;
        let header = match SegmentHeader::decode(&data) {
            Ok(h) => h,
            Err(HeaderError::Torn) if is_last => {
                // Creation of the newest segment was torn: nothing in it was
                // ever acknowledged, since the header is synced before use.
                vfs.remove(&path)?;
                vfs.sync_dir(dir)?;
                out.truncated_bytes += data.len() as u64;
                out.next_segment_no = no;
                break;
            }
            Err(HeaderError::Torn) => {
                return Err(Error::corruption(path, 0, "torn segment header"));
            }
            Err(HeaderError::Version(found)) => {
                return Err(Error::UnsupportedFormat {
                    file: path,
                    found: u32::from(found),
                    supported: u32::from(VERSION),
                });
            }
            Err(HeaderError::Corrupt(what)) => return Err(Error::corruption(path, 0, what)),
        };
        if header.segment_no != no {
            return Err(Error::corruption(
                path,
                0,
                "segment number does not match file name",
            ));
        }
        if i == 0 {
            // The oldest retained segment seeds the chain (older ones may have
            // been deleted once their records were flushed).
            out.chain.last_lsn = Lsn(header.first_lsn.0.saturating_sub(1));
            out.chain.last_crc = header.prev_crc;
        } else if header.first_lsn != out.chain.last_lsn.next()
            || header.prev_crc != out.chain.last_crc
        {
            return Err(Error::corruption(
                path,
                0,
                "segment does not continue the previous one",
            ));
        }
        out.epoch = header.epoch;
        let before = out.chain.last_lsn;
        let frames = SegmentFrames {
            start: SEGMENT_HEADER_BYTES,
            salt: header.salt,
            epoch: header.epoch,
        };
        let scanned = scan_frames(&data, frames, &mut out.chain, is_last, sink);
        out.records += out.chain.last_lsn.0 - before.0;
        match scanned {
            Ok(Outcome::Clean) if is_last => {
                // A killed process may have left written but unsynced records
                // here. They are replayed, so they must be durable before
                // anything (a new segment chained to them, or a reader) can
                // depend on them.
                vfs.open_append(&path)?.sync_data()?;
            }
            Ok(Outcome::ZeroTail { offset }) if is_last => {
                // The cut is synced, which also makes the replayed records
                // durable (see `Clean` above).
                vfs.truncate(&path, offset)?;
            }
            // The writer cut this segment to its last frame and synced it
            // before it created the next file (`docs/format/wal.md`, writer
            // rule 3), so zeros here stand where synced records were. The
            // next header's chain check would catch that too, but not when
            // the next file's creation was torn and it is removed below.
            Ok(Outcome::ZeroTail { offset }) => {
                return Err(Error::corruption(
                    path,
                    offset,
                    "zeros after the last frame of a segment that has a successor",
                ));
            }
            Ok(Outcome::Clean) => {}
            Ok(Outcome::TornTail { offset }) => {
                vfs.truncate(&path, offset)?;
                out.truncated_bytes += data.len() as u64 - offset;
            }
            Err(ReadError::Corrupt { offset, what }) => {
                return Err(Error::corruption(path, offset, what));
            }
            Err(ReadError::Sink(e)) => return Err(e),
        }
        out.next_segment_no = no + 1;
    }
    Ok(out)
}
