//! Segment files: creation (header, file sync, directory sync), appends,
//! preallocation, and rolling to a new segment. Single-threaded: only the
//! group-commit leader calls it (`group_commit` holds its sink lock).
//!
//! Lazy creation (decision 0010): [`Writer::new`] touches no file. The
//! writer creates its first segment at its first group write that holds a
//! commit record, so opening a database needs no new disk space, and an
//! open (or a session) that writes nothing leaves no new file behind. A
//! batch without commit records (the final SyncMark of `close`) on a
//! writer with no segment yet is not written: there is nothing of this
//! session for it to cover, and recovery already synced the log before it.
//! A creation that fails removes what it created (best effort) and leaves
//! the writer without a segment; group commit poisons the database.
//!
//! Preallocation (`docs/format/wal.md`, "Preallocated segments and the zero
//! tail"): the writer keeps zeros written ahead of its append position, so
//! that a group write overwrites allocated blocks and its `fdatasync` needs
//! no metadata commit. Invariants:
//! 1. `written <= allocated`, where `written` is the end of the last frame
//!    and `allocated` the file's length; the bytes between are zeros.
//! 2. `allocated <= max(written, max_segment_bytes)`: zeros never go past the
//!    segment's maximum size (the group that rolls may, as before).
//! 3. Zeros are written without a sync of their own: the sync that makes the
//!    group before them durable makes them durable too.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{SEGMENT_HEADER_BYTES, SYNC_MARK_FRAME_BYTES, SegmentHeader, sync_mark};
use super::group_commit::{LogSink, SyncHandle};
use super::retention::Retention;
use crate::sync::Mutex;
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

/// How large segments grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSize {
    /// A segment rolls before a group write would pass this size (unless the
    /// segment holds no group yet).
    pub(crate) max_bytes: u64,
    /// Zeros kept ahead of the append position (0: plain appends).
    pub(crate) preallocate_bytes: u64,
}

/// Appends group writes to the current segment, rolling to a new one when it is full.
#[derive(Debug)]
pub(crate) struct Writer {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    /// The current segment; `None` until the first group write creates it.
    file: Option<Box<dyn VfsFile>>,
    /// A second handle on the current segment, opened right after it was
    /// created (so that it sees every later write-back error), through which
    /// a background sync syncs it without the sink lock.
    sync_file: Option<Arc<dyn SyncHandle>>,
    /// Whether segments get that second handle (a background sync will use it).
    second_handle: bool,
    /// The current segment's number, or (no file yet) the next one's.
    segment_no: u64,
    /// The current segment's salt (for its SyncMarks).
    salt: u64,
    /// End of the last frame written: where the next group goes.
    written: u64,
    /// The file's length: `written` plus the zeros preallocated after it.
    allocated: u64,
    size: SegmentSize,
    epoch: u64,
    /// Told of every segment once it is durably created.
    retention: Option<Arc<Retention>>,
}

impl Writer {
    /// A writer whose first group write creates segment `segment_no` (of
    /// `epoch`) in `dir`. Touches no file: see "Lazy creation" above.
    pub(crate) fn new(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        segment_no: u64,
        epoch: u64,
        size: SegmentSize,
    ) -> Writer {
        Writer {
            vfs,
            dir: dir.to_path_buf(),
            file: None,
            sync_file: None,
            second_handle: false,
            segment_no,
            salt: 0,
            written: 0,
            allocated: 0,
            size,
            epoch,
            retention: None,
        }
    }

    /// Records every segment it creates in `retention`.
    #[must_use]
    pub(crate) fn with_retention(mut self, retention: Arc<Retention>) -> Writer {
        self.retention = Some(retention);
        self
    }

    /// Opens a second handle on every segment it creates, for a background
    /// sync ([`LogSink::sync_handle`]); without it the sink offers none.
    #[must_use]
    pub(crate) fn with_background_sync(mut self) -> Writer {
        self.second_handle = true;
        self
    }

    /// Creates segment `self.segment_no`, whose first record will be
    /// `first_lsn`, and makes the file (header and first preallocated chunk)
    /// and its name durable. On failure nothing of it is left (best effort).
    fn create_segment(&mut self, first_lsn: Lsn, prev_crc: u32) -> io::Result<()> {
        let header = SegmentHeader {
            segment_no: self.segment_no,
            epoch: self.epoch,
            first_lsn,
            prev_crc,
            salt: new_salt(self.segment_no),
        };
        let (file, allocated, second) = open_segment(
            self.vfs.as_ref(),
            &self.dir,
            &header,
            self.size,
            self.second_handle,
        )?;
        self.sync_file =
            second.map(|f| Arc::new(SegmentSync(Mutex::new(f))) as Arc<dyn SyncHandle>);
        self.file = Some(file);
        self.salt = header.salt;
        self.written = SEGMENT_HEADER_BYTES as u64;
        self.allocated = allocated;
        if let Some(r) = &self.retention {
            r.note_segment(self.segment_no, first_lsn);
        }
        Ok(())
    }

    /// The current segment, or an error if there is none (a write before
    /// the first creation, or after a failed one).
    fn file(&mut self) -> io::Result<&mut Box<dyn VfsFile>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no WAL segment to write to"))
    }

    /// Cuts the current segment's zero tail (sets its length to the end of
    /// the last frame). Not synced: the caller's next [`LogSink::sync`]
    /// makes the new length durable; until then a crash may leave the zero
    /// tail, which readers accept. No-op without a zero tail.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        if self.allocated > self.written {
            let written = self.written;
            self.file()?.set_len(written)?;
            self.allocated = written;
        }
        Ok(())
    }

    fn roll(&mut self, first_lsn: Lsn, prev_crc: u32) -> io::Result<()> {
        // The old segment is synced before the new one exists, so recovery may
        // treat damage in any segment but the last as corruption. Its zero
        // tail is cut first, so that the same sync makes the cut durable.
        self.trim()?;
        self.file()?.sync_data()?;
        // Should the creation fail, no segment is current: nothing can be
        // written into the old one after its final sync.
        self.file = None;
        self.sync_file = None;
        self.segment_no += 1;
        self.create_segment(first_lsn, prev_crc)
    }

    /// After a group write ended at `written`: if it passed the preallocated
    /// end, writes zeros up to one chunk beyond it (never past the maximum
    /// segment size). Not synced here (invariant 3).
    fn preallocate(&mut self) -> io::Result<()> {
        if self.written < self.allocated {
            return Ok(());
        }
        self.allocated = self.written;
        let end = preallocated_end(self.written, self.size);
        if end > self.written {
            let written = self.written;
            write_zeros(self.file()?.as_mut(), written, end)?;
            self.allocated = end;
        }
        Ok(())
    }
}

/// Zeros to preallocate with (one write per chunk up to the default 1 MiB):
/// never written, so its pages are the kernel's shared zero page, and not
/// allocated per chunk (a fresh 1 MiB buffer per chunk, faulted in page by
/// page as the write read it, was most of the load's page faults;
/// decision 0027).
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// Writes zeros into `file` from `from` up to `to`.
fn write_zeros(file: &mut dyn VfsFile, from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
        file.write_all_at(at, ZEROS.get(..n).unwrap_or_default())?;
        at += n as u64;
    }
    Ok(())
}

/// Where zeros preallocated after a write ending at `from` end.
fn preallocated_end(from: u64, size: SegmentSize) -> u64 {
    from.saturating_add(size.preallocate_bytes)
        .min(size.max_bytes)
        .max(from)
}

/// A new segment: its handle, its length, and (if asked for) a second
/// handle opened right after its creation.
type NewSegment = (Box<dyn VfsFile>, u64, Option<Box<dyn VfsFile>>);

/// Creates a segment file: header, then its first chunk of zeros, synced,
/// then its name made durable; then, with `second_handle`, opens the second
/// handle (before anything is written into the segment, so that it sees
/// every later write-back error). Returns the file and its length. If any
/// step fails, the file is removed again (best effort: the error returned
/// is the step's; should the removal fail too, recovery removes a newest
/// segment whose header did not reach the disk).
fn open_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    header: &SegmentHeader,
    size: SegmentSize,
    second_handle: bool,
) -> io::Result<NewSegment> {
    let path = dir.join(segment_name(header.segment_no));
    let file = vfs.open_write(&path)?;
    write_segment_start(vfs, dir, file, header, size)
        .and_then(|(file, end)| {
            let second = second_handle.then(|| vfs.open_write(&path)).transpose()?;
            Ok((file, end, second))
        })
        .inspect_err(|_| {
            if vfs.remove(&path).is_ok() {
                let _ = vfs.sync_dir(dir);
            }
        })
}

/// The steps of [`open_segment`] after the file exists.
fn write_segment_start(
    vfs: &dyn Vfs,
    dir: &Path,
    mut file: Box<dyn VfsFile>,
    header: &SegmentHeader,
    size: SegmentSize,
) -> io::Result<(Box<dyn VfsFile>, u64)> {
    let head = header.encode();
    let header_end = head.len() as u64;
    let end = preallocated_end(header_end, size);
    // Header and first chunk in one write; either may be lost to a crash
    // before the sync below, which recovery handles (torn creation).
    let mut first = vec![0; usize::try_from(end).map_err(io::Error::other)?];
    if let Some(slot) = first.get_mut(..head.len()) {
        slot.copy_from_slice(&head);
    }
    file.write_all_at(0, &first)?;
    // `open_write` does not truncate: should a file of this name exist, no
    // old byte of it may outlive the new header.
    file.set_len(end)?;
    file.sync_data()?;
    vfs.sync_dir(dir)?;
    Ok((file, end))
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
        if self.file.is_none() {
            // A batch holding only its SyncMark slot has no commit record.
            if batch.len() <= SYNC_MARK_FRAME_BYTES {
                return Ok(());
            }
            self.create_segment(first_lsn, prev_crc)?;
        } else if self.written > SEGMENT_HEADER_BYTES as u64
            && self.written + len > self.size.max_bytes
        {
            self.roll(first_lsn, prev_crc)?;
        }
        // The mark is sealed only now: a roll above changes the salt.
        let mark = sync_mark(self.salt, synced);
        if let Some(slot) = batch.get_mut(..SYNC_MARK_FRAME_BYTES) {
            slot.copy_from_slice(&mark);
        }
        // Overwrites preallocated zeros (or extends the file, then
        // preallocates the next chunk behind the batch).
        let written = self.written;
        self.file()?.write_all_at(written, batch)?;
        self.written += len;
        self.preallocate()
    }

    fn trim(&mut self) -> io::Result<()> {
        Writer::trim(self)
    }

    /// Without a segment (nothing written yet) there is nothing to sync.
    fn sync(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.sync_data())
    }

    fn sync_handle(&mut self) -> Option<Arc<dyn SyncHandle>> {
        self.sync_file.clone()
    }
}

/// The second handle of a segment (see `Writer::sync_file`).
#[derive(Debug)]
struct SegmentSync(Mutex<Box<dyn VfsFile>>);

impl SyncHandle for SegmentSync {
    fn sync(&self) -> io::Result<()> {
        self.0.lock().sync_data()
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
