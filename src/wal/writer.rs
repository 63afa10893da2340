//! Segment files: creation (header, file sync, directory sync), appends, and
//! rolling to a new segment. Single-threaded: only the group-commit leader
//! calls it (`group_commit` holds its sink lock).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{SYNC_MARK_FRAME_BYTES, SegmentHeader, sync_mark};
use super::group_commit::LogSink;
use crate::types::Lsn;
use crate::vfs::{Vfs, VfsFile};

/// File name of segment `no`.
pub(crate) fn segment_name(no: u64) -> String {
    format!("{no:020}.wal")
}

/// The segment number a file name denotes, if it is a segment file.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Appends group writes to the current segment, rolling to a new one when it is full.
#[derive(Debug)]
pub(crate) struct Writer {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    file: Box<dyn VfsFile>,
    segment_no: u64,
    /// The current segment's salt (for its SyncMarks).
    salt: u64,
    segment_bytes: u64,
    max_segment_bytes: u64,
    epoch: u64,
}

impl Writer {
    /// Creates segment `segment_no` whose first record will be `first_lsn`,
    /// and makes the file and its name durable before returning.
    pub(crate) fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        segment_no: u64,
        epoch: u64,
        first_lsn: Lsn,
        prev_crc: u32,
        max_segment_bytes: u64,
    ) -> io::Result<Writer> {
        let (file, salt) = open_segment(vfs.as_ref(), dir, segment_no, epoch, first_lsn, prev_crc)?;
        Ok(Writer {
            vfs,
            dir: dir.to_path_buf(),
            file,
            segment_no,
            salt,
            segment_bytes: super::format::SEGMENT_HEADER_BYTES as u64,
            max_segment_bytes,
            epoch,
        })
    }

    fn roll(&mut self, first_lsn: Lsn, prev_crc: u32) -> io::Result<()> {
        // The old segment is synced before the new one exists, so recovery may
        // treat damage in any segment but the last as corruption.
        self.file.sync_data()?;
        let no = self.segment_no + 1;
        let (file, salt) = open_segment(
            self.vfs.as_ref(),
            &self.dir,
            no,
            self.epoch,
            first_lsn,
            prev_crc,
        )?;
        self.file = file;
        self.salt = salt;
        self.segment_no = no;
        self.segment_bytes = super::format::SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }
}

fn open_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    segment_no: u64,
    epoch: u64,
    first_lsn: Lsn,
    prev_crc: u32,
) -> io::Result<(Box<dyn VfsFile>, u64)> {
    let path = dir.join(segment_name(segment_no));
    let salt = new_salt(segment_no);
    let header = SegmentHeader {
        segment_no,
        epoch,
        first_lsn,
        prev_crc,
        salt,
    };
    let mut file = vfs.open_append(&path)?;
    file.write_all(&header.encode())?;
    file.sync_data()?;
    vfs.sync_dir(dir)?;
    Ok((file, salt))
}

/// A salt nobody can predict from the data they store: std's randomly keyed
/// SipHash (keys from the OS, fresh per `RandomState`) over the segment number
/// and the time.
fn new_salt(segment_no: u64) -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((segment_no, nanos))
}

impl LogSink for Writer {
    fn write_batch(
        &mut self,
        batch: &mut [u8],
        synced: Lsn,
        first_lsn: Lsn,
        prev_crc: u32,
    ) -> io::Result<()> {
        let len = batch.len() as u64;
        let header = super::format::SEGMENT_HEADER_BYTES as u64;
        if self.segment_bytes > header && self.segment_bytes + len > self.max_segment_bytes {
            self.roll(first_lsn, prev_crc)?;
        }
        // The mark is sealed only now: a roll above changes the salt.
        let mark = sync_mark(self.salt, synced);
        if let Some(slot) = batch.get_mut(..SYNC_MARK_FRAME_BYTES) {
            slot.copy_from_slice(&mark);
        }
        self.file.write_all(batch)?;
        self.segment_bytes += len;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_others_are_ignored() {
        assert_eq!(segment_name(12), "00000000000000000012.wal");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("LOCK"), None);
        assert_eq!(parse_segment_name("0000000000000000001a.wal"), None);
        assert_eq!(parse_segment_name("1.wal"), None);
    }
}
