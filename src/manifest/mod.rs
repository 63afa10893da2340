//! The manifest: which sorted tables make up the database, at which level,
//! and the counters recovery needs, kept as a log of CRC-checked records
//! in `MANIFEST-<number:020>` files, the live one named by a checked
//! `CURRENT`. Specification: `docs/format/manifest.md`.
//!
//! ```text
//! CURRENT      := "MANIFEST-" digit{20} "\n" hex{8} "\n"          (CRC32 of line 1)
//! manifest     := header record+         header = "STRATMAN" version:u16 flags:u16
//!                                        header_len:u32 file_number:u64 header_crc:u32
//! record       := crc:u32 len:u32 len_crc:u32 payload[len]     crc over len|len_crc|payload
//! payload      := (tag:u16 len:u32 value)*  first record: a snapshot; later ones: edits
//! ```
//!
//! Contract:
//! 1. **One writer, records synced before they take effect.** [`Log`] is
//!    single-threaded (the engine serializes edits); `Log::append` returns
//!    once the record is on stable storage, and only then may the caller
//!    act on it (delete a file it removes, a WAL segment at or below its
//!    flushed LSN, read a table it adds). So only the last record of a
//!    manifest can be torn.
//! 2. **Recovery never guesses.** [`recover`] gives the state the valid
//!    records hold, dropping only a torn last record (rule 1 of "What
//!    readers do"); every other damage, a missing manifest, a damaged
//!    `CURRENT` or a lost one is `Error::Corruption` naming the file and
//!    offset, and a newer version is `Error::UnsupportedFormat`. It changes
//!    nothing; `Log::resume` cuts the torn tail before the first append.
//! 3. **Failures are sticky.** After a failed write, sync, create, rename or
//!    directory sync, `Log::append` returns `Error::Poisoned` until the
//!    database is reopened; the failed edit may or may not be durable.
//! 4. **Rotation is atomic.** A new manifest is complete and durable before
//!    `CURRENT` is renamed to it; a crash at any step leaves the old or the
//!    new manifest live, each complete.
//! 5. **One file-number counter** for manifests and tables; a file the
//!    state does not name is obsolete ([`obsolete_files`]) and is removed at
//!    open, before any number is handed out again.
//!
//! Layers: uses `codec`, `vfs`, `types`, `error`; knows nothing of `sst`
//! ([`TableRecord`] is the manifest's own), `wal` or `mvcc`. Not yet used by
//! `Db` (issue 16 wires it in).

mod current;
mod edit;
mod log;
mod state;

#[cfg(all(test, not(loom)))]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::types::Lsn;
use crate::vfs::Vfs;

pub(crate) use current::{
    CURRENT, CURRENT_BYTES, CURRENT_TMP, decode as decode_current, encode as encode_current,
};
pub(crate) use edit::{Edit, NUM_LEVELS, TableRecord};
pub(crate) use log::{
    DEFAULT_ROTATE_BYTES, Log, Recovered, ReplayError, Replayed, encode_manifest, recover, replay,
    write_copy,
};
pub(crate) use state::{FIRST_FILE_NUMBER, ManifestState};

/// The directory, inside the database directory, that holds the tables.
pub(crate) const TABLES_DIR: &str = "tables";

/// File name of manifest `number`.
pub(crate) fn manifest_name(number: u64) -> String {
    format!("{}{number:020}", current::MANIFEST_PREFIX)
}

/// The number a manifest file name denotes, if it is one.
pub(crate) fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(current::MANIFEST_PREFIX)?;
    current::parse_number(digits.as_bytes()).ok()
}

/// File name (inside [`TABLES_DIR`]) of table `number`.
pub(crate) fn table_name(number: u64) -> String {
    format!("{number:020}.sst")
}

/// The number a table file name denotes, if it is one.
pub(crate) fn parse_table_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    current::parse_number(digits.as_bytes()).ok()
}

/// The files in `dir` that the manifest does not name, for removal at open
/// (`docs/format/manifest.md`, writer rule 7): every `MANIFEST-*` but the
/// live one, `CURRENT.tmp`, and every table not in `live`'s state. `live`
/// is `(number, state)` of the live manifest, `None` when there is none.
/// Call it only when no writer is running in `dir` (a running writer's
/// next table or `CURRENT.tmp` is not obsolete).
pub(crate) fn obsolete_files(
    vfs: &dyn Vfs,
    dir: &Path,
    live: Option<(u64, &ManifestState)>,
) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for name in list_or_empty(vfs, dir)? {
        let stale = match parse_manifest_name(&name) {
            Some(n) => live.is_none_or(|(live, _)| n != live),
            None => name == CURRENT_TMP,
        };
        if stale {
            out.push(dir.join(name));
        }
    }
    let tables = dir.join(TABLES_DIR);
    for name in list_or_empty(vfs, &tables)? {
        if let Some(n) = parse_table_name(&name)
            && live.is_none_or(|(_, state)| !state.contains(n))
        {
            out.push(tables.join(name));
        }
    }
    out.sort();
    Ok(out)
}

/// The names in `dir`; none if it does not exist.
fn list_or_empty(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<String>> {
    match vfs.list(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io(e)),
    }
}

/// Removes `files`, then syncs each directory they were in, so that a
/// removed orphan cannot come back after a power cut and be taken for a
/// file whose number is handed out again.
pub(crate) fn remove_files(vfs: &dyn Vfs, files: &[PathBuf]) -> Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in files {
        vfs.remove(file)?;
        let dir = crate::vfs::parent_dir(file);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        vfs.sync_dir(&dir)?;
    }
    Ok(())
}

/// What WAL recovery found, for [`check_wal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalExtent {
    /// The lsn of the oldest record in the WAL (`None`: it holds none).
    pub(crate) oldest_lsn: Option<Lsn>,
    /// The lsn of the newest record (0 if none).
    pub(crate) last_lsn: Lsn,
}

/// Checks that the WAL continues the manifest (`docs/format/manifest.md`,
/// "Recovery with the WAL"): it reaches back to `flushed_lsn + 1`, reaches
/// at least `flushed_lsn`, and, after a clean close, holds every record the
/// close knew durable. Otherwise `Error::Corruption` naming `manifest`
/// (offset 0): a segment is missing or the log was cut below what was
/// durable, and replaying what is left would silently lose commits.
pub(crate) fn check_wal(state: &ManifestState, wal: WalExtent, manifest: &Path) -> Result<()> {
    let flushed = state.flushed_lsn();
    let fail = |what: String| Err(Error::corruption(manifest, 0, what));
    match wal.oldest_lsn {
        Some(oldest) if oldest.0 > flushed.0.saturating_add(1) => {
            return fail(format!(
                "the WAL starts at lsn {oldest}, but only records up to {flushed} are in tables: \
                 segments are missing"
            ));
        }
        None if flushed > Lsn::ZERO => {
            return fail(format!(
                "the WAL is empty, but records up to {flushed} were written: it is missing"
            ));
        }
        _ => {}
    }
    if wal.oldest_lsn.is_some() && wal.last_lsn < flushed {
        return fail(format!(
            "the WAL ends at lsn {}, below the flushed lsn {flushed}",
            wal.last_lsn
        ));
    }
    if let Some(closed) = state.clean_close()
        && flushed.max(wal.last_lsn) < closed
    {
        return fail(format!(
            "the WAL ends at lsn {}, but lsn {closed} was durable at the last clean close",
            wal.last_lsn
        ));
    }
    Ok(())
}
