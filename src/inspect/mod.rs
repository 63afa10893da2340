//! Inspection of a database directory without opening it: what it holds
//! ([`stat`]), whether every byte of it is intact ([`verify`]), and every
//! stored version in key order ([`dump`]). The `strata stat`, `strata
//! verify` and `strata dump` commands print what these return (decision
//! 0018).
//!
//! Contract:
//! 1. **Read-only, and never beside a writer.** Each call takes the
//!    directory's `LOCK` shared, as `Options::read_only` does (decision
//!    0013): it runs beside read-only opens and other inspections, and a
//!    database open for writing is refused with [`crate::Error::Locked`]
//!    (a writer's files change under a reader: segments deleted, the
//!    manifest rotated, a table written before its edit). A [`Dump`]
//!    holds the lock until it is dropped. Nothing is created, written,
//!    cut, removed or synced, not even a torn tail a writable open would
//!    cut; a directory without `LOCK` is read without a lock.
//! 2. **The engine's own decoders.** Manifest recovery
//!    (`manifest::recover`), WAL recovery in read-only mode
//!    (`wal::recover`), and the table reader (`Table::open`, its
//!    iterator, and `Table::verify_all` for the blocks reads check lazily).
//!    No format is decoded twice, so what these report is what an open
//!    would find.
//! 3. **Damage is reported, never a panic.** `stat` and `dump` fail with
//!    the error an open would give (`Error::Corruption { file, offset, .. }`);
//!    `verify` lists every problem it finds ([`Problem`]: file, offset,
//!    what) and fails only when the directory cannot be read at all.
//!
//! Layers: uses `manifest`, `wal`, `sst`, `vfs`, `types`, `error`; nothing
//! uses it but the `strata` binary.

mod dump;
mod stat;
mod verify;

#[cfg(all(test, not(loom)))]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{self, ManifestState};
use crate::types::{Lsn, Ts};
use crate::vfs::{FileLock, OsVfs, Vfs};
use crate::wal::format::CommitRecord;
use crate::wal::{self, RecoveryMode};

pub use dump::Dump;

/// The lock file every open takes (`Db::open`: exclusive, read-only: shared).
const LOCK_FILE: &str = "LOCK";

/// What [`stat`] finds: tables per level, the manifest's counters and the
/// WAL. Read from the manifest's records and the WAL; no table is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStat {
    /// The database directory.
    pub dir: PathBuf,
    /// Every level, `0..7` (empty ones included), in order.
    pub levels: Vec<LevelStat>,
    /// Tables in all levels.
    pub tables: u64,
    /// Bytes of all tables.
    pub table_bytes: u64,
    /// Versions (values and tombstones) in all tables.
    pub table_entries: u64,
    /// Tombstones among them.
    pub table_tombstones: u64,
    /// Every stored version: those in tables plus those in the WAL records
    /// above the flushed lsn. (The count of live keys is not given: it
    /// needs a merge of every source, which is what [`dump`] does.)
    pub versions: u64,
    /// The live manifest; `None` when the database never flushed (it has
    /// no manifest, and everything is in the WAL).
    pub manifest: Option<ManifestStat>,
    /// The write-ahead log.
    pub wal: WalStat,
}

/// One level of the LSM tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStat {
    /// The level number (0: flushed memtables, which may overlap; 1 and
    /// up: disjoint, ordered by key).
    pub level: u8,
    /// Its tables, in the manifest's order (level 0 by number, oldest
    /// first; other levels by smallest key).
    pub tables: Vec<TableStat>,
    /// Bytes of its tables.
    pub bytes: u64,
    /// Versions in its tables.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// The smallest and largest user key of its tables (`None`: no table).
    pub key_range: Option<(Vec<u8>, Vec<u8>)>,
    /// The lowest and highest commit ts of its tables (`None`: no table).
    pub ts_range: Option<(Ts, Ts)>,
}

/// One table, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStat {
    /// Its file number: the file is `tables/<number:020>.sst`.
    pub number: u64,
    /// Its file size.
    pub bytes: u64,
    /// Versions in it.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// Its first and last user key.
    pub key_range: (Vec<u8>, Vec<u8>),
    /// Its lowest and highest commit ts.
    pub ts_range: (Ts, Ts),
    /// The highest WAL lsn whose writes it holds (0 after a compaction).
    pub max_lsn: Lsn,
}

/// The live manifest and its counters (`docs/format/manifest.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestStat {
    /// The manifest's number (`MANIFEST-<number:020>`, named by `CURRENT`).
    pub number: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Valid records in it, the snapshot included.
    pub records: u64,
    /// Where a torn last record starts, if one does (a crash cut an
    /// append short; the next writable open cuts it off).
    pub torn_at: Option<u64>,
    /// Every WAL record with an lsn at or below it is in tables.
    pub flushed_lsn: Lsn,
    /// The highest commit ts the manifest knows was issued.
    pub max_ts: Ts,
    /// The number the next new file (table or manifest) gets.
    pub next_file_number: u64,
    /// The replication epoch (0 until replication).
    pub epoch: u64,
    /// Compaction may have collected versions below this ts: no snapshot
    /// older than it can be taken.
    pub history_floor: Ts,
    /// `Some(last_lsn)` if the last session closed cleanly, with every WAL
    /// record up to `last_lsn` durable.
    pub clean_close: Option<Lsn>,
}

/// The write-ahead log (`docs/format/wal.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStat {
    /// Segment files.
    pub segments: u64,
    /// Their bytes (preallocated zeros included).
    pub bytes: u64,
    /// The numbers of the oldest and newest segment (`None`: no segment).
    pub segment_range: Option<(u64, u64)>,
    /// The lsn of the oldest record (`None`: the WAL holds no record).
    pub oldest_lsn: Option<Lsn>,
    /// The lsn of the newest record (`None`: the WAL holds no record).
    pub newest_lsn: Option<Lsn>,
    /// Records in the WAL.
    pub records: u64,
    /// Records above the manifest's flushed lsn (in no table yet): what an
    /// open replays.
    pub unflushed_records: u64,
    /// Versions (puts and deletes) in those records.
    pub unflushed_versions: u64,
    /// Bytes of a torn tail (or a segment whose creation was torn) that
    /// the next writable open cuts off; 0 after a clean close.
    pub torn_bytes: u64,
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// What a crash leaves and the next writable open cleans up (an
    /// orphan table, an obsolete manifest, a torn tail), or a file Strata
    /// does not write: not damage.
    Warning,
    /// Damage (bytes that fail their checksum or structure, a missing
    /// file, files that contradict each other), or a file this build
    /// cannot read (a newer format, an I/O error).
    Damage,
}

/// One problem [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Damage or warning.
    pub severity: Severity,
    /// The file (or directory) it is in.
    pub file: PathBuf,
    /// The byte offset of the damaged part, where one applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Damage => "damage",
        };
        write!(f, "{severity}: {}", self.file.display())?;
        if let Some(offset) = self.offset {
            write!(f, " at offset {offset}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The database directory.
    pub dir: PathBuf,
    /// Every problem, in the order found: `CURRENT` and the manifest, the
    /// tables, the files in the directories, the WAL.
    pub problems: Vec<Problem>,
    /// Files read and checked.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Tables checked, every byte.
    pub tables: u64,
    /// WAL segments checked.
    pub wal_segments: u64,
}

impl VerifyReport {
    /// No damage (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.damage().next().is_none()
    }

    /// The problems that are damage.
    pub fn damage(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Damage)
    }

    /// The problems that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
}

/// Which versions [`dump`] yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// The first key (inclusive); `None`: from the first key.
    pub from: Option<Vec<u8>>,
    /// The key to stop before (exclusive); `None`: to the last key.
    pub to: Option<Vec<u8>>,
    /// Every stored version, tombstones included, as many as the sources
    /// hold. Otherwise one per key: its newest version, and nothing for a
    /// key whose newest version is a tombstone (what a read at the newest
    /// ts sees).
    pub all_versions: bool,
}

/// One stored version, as [`dump`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpedVersion {
    /// The user key.
    pub key: Vec<u8>,
    /// Its commit ts.
    pub ts: Ts,
    /// The value; `None` for a tombstone (a delete).
    pub value: Option<Vec<u8>>,
    /// Where it is stored.
    pub source: VersionSource,
}

/// Where a [`DumpedVersion`] is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionSource {
    /// In the WAL record with this lsn, above the flushed lsn (an open
    /// replays it into the memtable).
    Wal {
        /// The record's lsn.
        lsn: Lsn,
    },
    /// In a table.
    Table {
        /// The table's level.
        level: u8,
        /// The table's file number.
        number: u64,
    },
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSource::Wal { lsn } => write!(f, "wal lsn={lsn}"),
            VersionSource::Table { level, number } => write!(f, "L{level} table={number}"),
        }
    }
}

/// What the database in `dir` holds (see [`DbStat`]).
///
/// Errors: the directory does not exist or cannot be read (`Error::Io`);
/// it is open for writing (`Error::Locked`); the manifest or the WAL does
/// not read (`Error::Corruption` naming the file and offset, or
/// `Error::UnsupportedFormat`): [`verify`] lists every problem.
pub fn stat(dir: impl AsRef<Path>) -> Result<DbStat> {
    stat_with_vfs(&OsVfs, dir.as_ref())
}

/// [`stat`] on a given file system.
pub fn stat_with_vfs(vfs: &dyn Vfs, dir: &Path) -> Result<DbStat> {
    stat::stat(vfs, dir)
}

/// Checks every checksum of every file of the database in `dir`, and that
/// the files agree with each other (decision 0018 lists every check).
///
/// Errors only when the directory cannot be read at all (`Error::Io`) or
/// is open for writing (`Error::Locked`); everything else found is a
/// [`Problem`] in the report.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with_vfs(&OsVfs, dir.as_ref())
}

/// [`verify`] on a given file system.
pub fn verify_with_vfs(vfs: &dyn Vfs, dir: &Path) -> Result<VerifyReport> {
    verify::verify(vfs, dir)
}

/// Every stored version of the database in `dir` that `options` selects,
/// in version order (key ascending, then commit ts descending; a version
/// two sources hold is yielded from each). The WAL records above the
/// flushed lsn are read into memory first (only the versions in range);
/// tables are read as the iterator advances.
///
/// Errors: as [`stat`], and a listed table that is missing or whose
/// footer, index, filter or properties do not read. A data block that
/// does not read ends the iteration with its `Error::Corruption`.
pub fn dump(dir: impl AsRef<Path>, options: &DumpOptions) -> Result<Dump> {
    dump_with_vfs(&OsVfs, dir.as_ref(), options)
}

/// [`dump`] on a given file system.
pub fn dump_with_vfs(vfs: &dyn Vfs, dir: &Path, options: &DumpOptions) -> Result<Dump> {
    dump::dump(vfs, dir, options)
}

/// Takes `dir`'s lock shared (contract 1); `None` when there is no lock
/// file. A missing directory is `Error::Io` `NotFound` naming it.
fn lock(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Box<dyn FileLock>>> {
    vfs.list(dir)?;
    let path = dir.join(LOCK_FILE);
    match vfs.lock_shared(&path) {
        Ok(Some(lock)) => Ok(Some(lock)),
        Ok(None) => Err(Error::Locked { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(e)),
    }
}

/// The live manifest, if there is one, and the state it holds (the empty
/// state when there is none).
fn read_manifest(
    vfs: &dyn Vfs,
    dir: &Path,
) -> Result<(Option<manifest::Recovered>, ManifestState)> {
    let recovered = manifest::recover(vfs, dir)?;
    let state = recovered
        .as_ref()
        .map_or_else(ManifestState::new, |r| r.replayed.state.clone());
    Ok((recovered, state))
}

/// Reads the WAL the way a read-only open does, handing `sink` every
/// record above `flushed`; changes nothing.
fn read_wal(
    vfs: &dyn Vfs,
    dir: &Path,
    flushed: Lsn,
    sink: &mut dyn FnMut(&CommitRecord<'_>) -> Result<()>,
) -> Result<wal::Recovered> {
    let wal_dir = dir.join(crate::store::WAL_DIR);
    wal::recover(vfs, &wal_dir, RecoveryMode::ReadOnly, flushed, sink)
}
