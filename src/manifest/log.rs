//! Manifest files: the header and frames (pure), replay of a file's bytes
//! into a state (pure: torn tail vs corruption), recovery through
//! `CURRENT`, and the writer ([`Log`]: create, append, rotate).
//!
//! ```text
//! header (28) := "STRATMAN" version:u16 flags:u16 header_len:u32 file_number:u64 header_crc:u32
//! record      := crc:u32 len:u32 len_crc:u32 payload[len]
//!                len_crc = CRC32(len), crc = CRC32(len|len_crc|payload)
//! ```
//!
//! Replay (`docs/format/manifest.md`, "What readers do"): the header and
//! the first record (a snapshot) must be valid. At the first offset `X`
//! after that which holds no valid record, with `E` the file's end, it is a
//! torn tail if fewer than 12 bytes remain, or the length is intact
//! (`len_crc`) and the frame runs to or past `E`, or the length is damaged
//! and only zeros follow the frame header; anything else is corruption at
//! `X` (bytes follow a damaged record, so it had been synced). A record whose
//! CRCs match but that does not decode or apply is corruption anywhere.
//!
//! The writer is single-threaded (`&mut self`): the engine serializes the
//! edits it installs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::current::{self, CURRENT};
use super::edit::Edit;
use super::state::{FIRST_FILE_NUMBER, ManifestState};
use super::{TABLES_DIR, manifest_name, parse_manifest_name, parse_table_name};
use crate::codec::Cursor;
use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsFile};

/// Manifest file magic.
pub(crate) const MAGIC: [u8; 8] = *b"STRATMAN";
/// The format version this build writes and the highest it reads.
pub(crate) const VERSION: u16 = 1;
/// Size of the file header.
pub(crate) const HEADER_BYTES: usize = 28;
/// Size of a frame header (crc, len, len_crc).
pub(crate) const FRAME_HEADER_BYTES: usize = 12;
/// Largest record payload.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;
/// Default size past which the writer rotates to a new manifest file.
pub(crate) const DEFAULT_ROTATE_BYTES: u64 = 4 << 20;
/// What creating a database's first manifest writes: the header and the
/// snapshot of the empty state (four counters of 14 bytes each).
pub(crate) const CREATION_BYTES: usize = HEADER_BYTES + FRAME_HEADER_BYTES + 4 * 14;

/// The header of manifest `number`.
pub(crate) fn encode_header(number: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends the frame of `payload` to `out`.
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= MAX_RECORD_BYTES)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "manifest record of {} bytes exceeds {MAX_RECORD_BYTES}",
                payload.len()
            ))
        })?
        .to_le_bytes();
    let len_crc = crc32fast::hash(&len).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&len_crc);
    crc.update(payload);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&len_crc);
    out.extend_from_slice(payload);
    Ok(())
}

/// Why a manifest file's bytes give no state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// Damage no torn write explains, at `offset`.
    Corrupt { offset: u64, what: String },
    /// Written by a newer format version.
    Version(u16),
}

fn corrupt(offset: usize, what: impl Into<String>) -> ReplayError {
    ReplayError::Corrupt {
        offset: offset as u64,
        what: what.into(),
    }
}

/// What a manifest file's bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// The state after every valid record.
    pub(crate) state: ManifestState,
    /// Valid records, the snapshot included.
    pub(crate) records: u64,
    /// The end of the snapshot record.
    pub(crate) snapshot_end: u64,
    /// The end of the last valid record: where the next one goes.
    pub(crate) valid_len: u64,
    /// The file's length; above `valid_len` when a torn record follows.
    pub(crate) file_len: u64,
    /// Where a torn last record starts (it is not part of the state).
    pub(crate) torn_at: Option<u64>,
}

/// Checks the header of a file that must be manifest `number`.
fn check_header(data: &[u8], number: u64) -> std::result::Result<(), ReplayError> {
    let Some(head) = data.get(..HEADER_BYTES) else {
        return Err(corrupt(0, "manifest header cut short"));
    };
    let (covered, stored) = head.split_at(HEADER_BYTES - 4);
    if stored != crc32fast::hash(covered).to_le_bytes() {
        return Err(corrupt(0, "manifest header checksum mismatch"));
    }
    let mut c = Cursor::new(covered);
    if c.array::<8>() != Some(MAGIC) {
        return Err(corrupt(0, "bad manifest magic"));
    }
    let (Some(version), Some(flags), Some(header_len), Some(file_number)) =
        (c.u16(), c.u16(), c.u32(), c.u64())
    else {
        return Err(corrupt(0, "manifest header cut short"));
    };
    if version > VERSION {
        return Err(ReplayError::Version(version));
    }
    if version == 0 || flags != 0 || header_len as usize != HEADER_BYTES {
        return Err(corrupt(0, "bad manifest header fields"));
    }
    if file_number != number {
        return Err(corrupt(
            0,
            format!("the header says manifest {file_number}, not {number}"),
        ));
    }
    Ok(())
}

/// How the bytes at some offset read as a frame.
enum FrameRead<'a> {
    Valid {
        payload: &'a [u8],
        used: usize,
    },
    /// The last append, cut short (rule 1).
    Torn,
    /// Damage with bytes after it (rule 2).
    Damaged(&'static str),
}

/// Reads the frame at the start of `rest` (which runs to the end of the file).
fn read_frame(rest: &[u8]) -> FrameRead<'_> {
    let mut c = Cursor::new(rest);
    let (Some(crc), Some(len), Some(len_crc)) = (c.u32(), c.u32(), c.u32()) else {
        return FrameRead::Torn; // 1a: the frame header is cut short
    };
    if crc32fast::hash(&len.to_le_bytes()) != len_crc {
        let after = rest.get(FRAME_HEADER_BYTES..).unwrap_or_default();
        return if after.iter().all(|&b| b == 0) {
            FrameRead::Torn // 1c: a header that did not fully reach the disk, nothing after
        } else {
            FrameRead::Damaged("record length check mismatch")
        };
    }
    let len = len as usize;
    if len > MAX_RECORD_BYTES {
        return FrameRead::Damaged("record longer than MAX_RECORD_BYTES");
    }
    let end = FRAME_HEADER_BYTES + len;
    let Some(covered) = rest.get(4..end) else {
        return FrameRead::Torn; // 1b: the payload runs past the end
    };
    if crc32fast::hash(covered) != crc {
        return if end == rest.len() {
            FrameRead::Torn // 1b: ends at the end, with bytes that did not reach the disk
        } else {
            FrameRead::Damaged("record checksum mismatch")
        };
    }
    FrameRead::Valid {
        payload: rest.get(FRAME_HEADER_BYTES..end).unwrap_or_default(),
        used: end,
    }
}

/// Replays the bytes of manifest file `number` into the state they hold.
pub(crate) fn replay(data: &[u8], number: u64) -> std::result::Result<Replayed, ReplayError> {
    check_header(data, number)?;
    let mut state = ManifestState::new();
    let mut offset = HEADER_BYTES;
    let mut records = 0u64;
    let mut snapshot_end = 0;
    let mut torn_at = None;
    while offset < data.len() {
        let first = records == 0;
        let (payload, used) = match read_frame(data.get(offset..).unwrap_or_default()) {
            FrameRead::Valid { payload, used } => (payload, used),
            FrameRead::Torn if !first => {
                torn_at = Some(offset as u64);
                break;
            }
            // The snapshot was synced before CURRENT named the file.
            FrameRead::Torn => return Err(corrupt(offset, "the snapshot record is cut short")),
            FrameRead::Damaged(what) => return Err(corrupt(offset, what)),
        };
        let edit = Edit::decode(payload).map_err(|what| corrupt(offset, what))?;
        if first && !edit.is_snapshot() {
            return Err(corrupt(offset, "the first record is not a snapshot"));
        }
        state.apply(&edit).map_err(|what| corrupt(offset, what))?;
        records += 1;
        offset += used;
        if first {
            snapshot_end = offset;
        }
    }
    if records == 0 {
        return Err(corrupt(HEADER_BYTES, "no snapshot record"));
    }
    if number >= state.next_file_number() {
        return Err(corrupt(
            0,
            format!(
                "manifest {number} is not below the next file number {}",
                state.next_file_number()
            ),
        ));
    }
    Ok(Replayed {
        state,
        records,
        snapshot_end: snapshot_end as u64,
        valid_len: offset as u64,
        file_len: data.len() as u64,
        torn_at,
    })
}

/// The live manifest, as recovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Its number (named by `CURRENT`).
    pub(crate) number: u64,
    /// Its path.
    pub(crate) path: PathBuf,
    /// What its records hold.
    pub(crate) replayed: Replayed,
}

/// Reads the live manifest of the database in `dir`, changing nothing.
/// `Ok(None)`: there is no manifest (no `CURRENT`, and no manifest file but
/// a cut-short creation of the first one; `docs/format/manifest.md`,
/// "Finding the manifest").
pub(crate) fn recover(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Recovered>> {
    let Some(number) = current::read(vfs, dir)? else {
        check_without_current(vfs, dir)?;
        return Ok(None);
    };
    let path = dir.join(manifest_name(number));
    let data = match vfs.read_all(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::corruption(
                path,
                0,
                "the manifest CURRENT names is missing",
            ));
        }
        Err(e) => return Err(Error::Io(e)),
    };
    let replayed = replay(&data, number).map_err(|e| match e {
        ReplayError::Corrupt { offset, what } => Error::corruption(&path, offset, what),
        ReplayError::Version(found) => Error::UnsupportedFormat {
            file: path.clone(),
            found: u32::from(found),
            supported: u32::from(VERSION),
        },
    })?;
    Ok(Some(Recovered {
        number,
        path,
        replayed,
    }))
}

/// Without `CURRENT`, only a cut-short creation of the first manifest may
/// be there; any other manifest file, or a table, means `CURRENT` was lost.
fn check_without_current(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let lost = |what: String| Err(Error::corruption(dir.join(CURRENT), 0, what));
    for name in super::list_or_empty(vfs, dir)? {
        let Some(number) = parse_manifest_name(&name) else {
            continue;
        };
        let len = vfs.read_all(&dir.join(&name))?.len();
        if number != FIRST_FILE_NUMBER || len > CREATION_BYTES {
            return lost(format!(
                "CURRENT is missing, but {name} ({len} bytes) exists"
            ));
        }
    }
    let tables = super::list_or_empty(vfs, &dir.join(TABLES_DIR))?;
    if let Some(name) = tables.iter().find(|n| parse_table_name(n).is_some()) {
        return lost(format!(
            "CURRENT is missing, but table {TABLES_DIR}/{name} exists"
        ));
    }
    Ok(())
}

/// The writer of the live manifest.
///
/// Invariants: `len` is the end of the last durable record of file
/// `number`; `state` is what the file's records hold; `next_file_number
/// >= state.next_file_number()`. Once `poisoned`, nothing more is written.
#[derive(Debug)]
pub(crate) struct Log {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    file: Box<dyn VfsFile>,
    number: u64,
    len: u64,
    /// The end of the snapshot record.
    snapshot_end: u64,
    state: ManifestState,
    /// The next number [`Log::new_file_number`] hands out.
    next_file_number: u64,
    rotate_bytes: u64,
    poisoned: bool,
}

impl Log {
    /// Creates the first manifest of the database in `dir` (which must be
    /// durable and have no `CURRENT`): an empty state, manifest number
    /// [`FIRST_FILE_NUMBER`], then installs `CURRENT` (writer rule 1).
    pub(crate) fn create(vfs: Arc<dyn Vfs>, dir: &Path, rotate_bytes: u64) -> Result<Log> {
        if current::read(vfs.as_ref(), dir)?.is_some() {
            return Err(Error::InvalidArgument(format!(
                "{} already has a manifest",
                dir.display()
            )));
        }
        let number = FIRST_FILE_NUMBER;
        let empty = ManifestState::new();
        let (file, state, len) = start_file(vfs.as_ref(), dir, number, &empty, number + 1)?;
        current::install(vfs.as_ref(), dir, number)?;
        Ok(Log {
            vfs,
            dir: dir.to_path_buf(),
            file,
            number,
            len,
            snapshot_end: len,
            next_file_number: state.next_file_number(),
            state,
            rotate_bytes,
            poisoned: false,
        })
    }

    /// Continues the manifest recovery found, first cutting (synced) a torn
    /// last record off it. Remove obsolete files before: a number handed
    /// out now may be one an orphan carries.
    pub(crate) fn resume(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        recovered: Recovered,
        rotate_bytes: u64,
    ) -> Result<Log> {
        let Recovered {
            number,
            path,
            replayed,
        } = recovered;
        if replayed.file_len > replayed.valid_len {
            vfs.truncate(&path, replayed.valid_len)?;
        }
        let file = vfs.open_write(&path)?;
        Ok(Log {
            vfs,
            dir: dir.to_path_buf(),
            file,
            number,
            len: replayed.valid_len,
            snapshot_end: replayed.snapshot_end,
            next_file_number: replayed.state.next_file_number(),
            state: replayed.state,
            rotate_bytes,
            poisoned: false,
        })
    }

    /// Makes what recovery read durable: the manifest file's bytes and
    /// (by syncing the directory) the `CURRENT` naming it. Recovery reads
    /// bytes a killed process wrote but never synced; an open must not
    /// act on them (delete a WAL segment, say) before they are durable,
    /// or a power cut right after the open would take the record back
    /// and keep the deletion.
    pub(crate) fn make_durable(&mut self) -> Result<()> {
        self.file.sync_data()?;
        self.vfs.sync_dir(&self.dir)?;
        Ok(())
    }

    /// The state the durable records hold.
    pub(crate) fn state(&self) -> &ManifestState {
        &self.state
    }

    /// The live manifest's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// A number no file has had (writer rule 6); the next append records
    /// that it was taken.
    pub(crate) fn new_file_number(&mut self) -> Result<u64> {
        let n = self.next_file_number;
        self.next_file_number = n
            .checked_add(1)
            .ok_or_else(|| Error::InvalidArgument("file numbers are exhausted".into()))?;
        Ok(n)
    }

    /// Appends `edit` and syncs it, then rotates if the file is due
    /// (writer rules 2, 3, 5). `Ok` means the edit is durable and applied
    /// to [`Log::state`]. An edit that breaks the state's rules is refused
    /// with `Error::InvalidArgument` before anything is written; any I/O
    /// error poisons the writer, and the edit may or may not be durable.
    pub(crate) fn append(&mut self, edit: &Edit) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut edit = edit.clone();
        if self.next_file_number > self.state.next_file_number() {
            let n = edit
                .next_file_number
                .unwrap_or(0)
                .max(self.next_file_number);
            edit.next_file_number = Some(n);
        }
        let refused =
            |what: String| Error::InvalidArgument(format!("manifest edit refused: {what}"));
        self.state.check(&edit).map_err(refused)?;
        let mut frame = Vec::new();
        encode_frame(&edit.encode().map_err(refused)?, &mut frame)?;
        // Poisoned until the record is durable: every `?` below leaves it so.
        self.poisoned = true;
        self.file.write_all_at(self.len, &frame)?;
        self.file.sync_data()?;
        self.state.apply_checked(&edit);
        self.len += frame.len() as u64;
        self.next_file_number = self.next_file_number.max(self.state.next_file_number());
        if self.due_for_rotation() {
            self.rotate()?;
        }
        self.poisoned = false;
        Ok(())
    }

    /// Writer rule 5: past `rotate_bytes`, and with edits at least as long
    /// as the snapshot, so that rewriting the state costs at most as much
    /// as the edits it replaces.
    fn due_for_rotation(&self) -> bool {
        let snapshot = self.snapshot_end.saturating_sub(HEADER_BYTES as u64);
        self.len >= self.rotate_bytes && self.len - self.snapshot_end >= snapshot
    }

    /// Writes a new manifest holding a snapshot of the state, points
    /// `CURRENT` at it, and removes the old one.
    fn rotate(&mut self) -> Result<()> {
        let number = self.new_file_number()?;
        let next = self.next_file_number;
        let (file, state, len) =
            start_file(self.vfs.as_ref(), &self.dir, number, &self.state, next)?;
        current::install(self.vfs.as_ref(), &self.dir, number)?;
        let old = self.dir.join(manifest_name(self.number));
        self.file = file;
        self.number = number;
        self.len = len;
        self.snapshot_end = len;
        self.state = state;
        // Neither synced nor checked: a manifest CURRENT does not name is
        // obsolete, and the next open removes it if it is still there.
        let _ = self.vfs.remove(&old);
        Ok(())
    }
}

/// The bytes of manifest file `number` holding `records`, the first of
/// which must be a snapshot (pure; what the writer writes, for tests and
/// fuzzing too).
pub(crate) fn encode_manifest(number: u64, records: &[Edit]) -> Result<Vec<u8>> {
    let mut bytes = encode_header(number);
    for record in records {
        encode_frame(
            &record.encode().map_err(Error::InvalidArgument)?,
            &mut bytes,
        )?;
    }
    Ok(bytes)
}

/// Writes a manifest holding `state` (without its clean-close mark) as the
/// whole manifest of a new database in `dir`, a checkpoint: its number is
/// the state's next file number (no file of the copied database had it),
/// then `CURRENT`.
pub(crate) fn write_copy(vfs: &dyn Vfs, dir: &Path, state: &ManifestState) -> Result<()> {
    let number = state.next_file_number();
    let next = number
        .checked_add(1)
        .ok_or_else(|| Error::InvalidArgument("file numbers are exhausted".into()))?;
    let state = state.without_clean_close();
    start_file(vfs, dir, number, &state, next)?;
    current::install(vfs, dir, number)?;
    Ok(())
}

/// Writes manifest `number` holding a snapshot of `state` with
/// `next_file_number` (header and record in one write), syncs it and its
/// name; returns the open file, the state it holds, and its length.
fn start_file(
    vfs: &dyn Vfs,
    dir: &Path,
    number: u64,
    state: &ManifestState,
    next_file_number: u64,
) -> Result<(Box<dyn VfsFile>, ManifestState, u64)> {
    let mut snapshot = state.snapshot();
    snapshot.next_file_number = Some(next_file_number);
    let mut held = ManifestState::new();
    held.apply(&snapshot)
        .map_err(|what| Error::InvalidArgument(format!("manifest snapshot refused: {what}")))?;
    if number >= next_file_number {
        return Err(Error::InvalidArgument(format!(
            "manifest {number} is not below the next file number {next_file_number}"
        )));
    }
    let bytes = encode_manifest(number, &[snapshot])?;
    let mut file = vfs.open_write(&dir.join(manifest_name(number)))?;
    // A creation cut short may have left a longer file.
    file.set_len(0)?;
    file.write_all_at(0, &bytes)?;
    file.sync_data()?;
    vfs.sync_dir(dir)?;
    Ok((file, held, bytes.len() as u64))
}
