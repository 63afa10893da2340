//! The files beside the WAL: the manifest and the sorted tables. Opening
//! them (decision 0017, "Open"), and the manifest writer the flusher and
//! `close` share.
//!
//! Open order: the manifest (`CURRENT` then `MANIFEST-<n>`; none is a
//! database that never flushed), then, for a writable open, every file the
//! manifest does not name is removed (orphans of a crash: tables written
//! before their edit, old manifests, `CURRENT.tmp`) before any file number
//! is handed out again, then every listed table is mapped. The WAL is
//! recovered above the manifest's flushed lsn by the caller, who then asks
//! [`Store::check_wal`] whether the log continues the manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::budget::Account;
use crate::compaction::{Compactor, Leveled};
use crate::error::{Error, Result};
use crate::manifest::{self, Edit, Log, ManifestState, NUM_LEVELS, TableRecord, WalExtent};
use crate::sst::{ALLOCATION_OVERHEAD_BYTES, BuiltTable, Table};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::types::{Lsn, Ts};
use crate::vfs::{Vfs, create_dir_durable};
use crate::wal::{Retention, segment_name};

/// The WAL's directory inside the database directory.
pub(crate) const WAL_DIR: &str = "wal";

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    /// The manifest writer; `None` until the first flush creates it (an
    /// open creates no file, as for the WAL: decision 0010), and always in
    /// a read-only open.
    pub(crate) manifest: Mutex<Option<Log>>,
    /// The live manifest's path at open, for error messages.
    manifest_path: Option<PathBuf>,
    /// The size past which the manifest writer rotates
    /// (`Options::manifest_rotate_bytes`).
    pub(crate) manifest_rotate_bytes: u64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flushed_bytes: AtomicU64,
    /// Which WAL segments a flush lets go.
    pub(crate) retention: Arc<Retention>,
    pub(crate) wal_segments_deleted: AtomicU64,
    /// Compaction's policy, lock, signal and counters.
    pub(crate) compaction: Compactor,
    /// What open tables hold in memory (their part of the memory budget):
    /// each table opened through [`Store::open_table`] charges it.
    pub(crate) table_memory: Arc<Account>,
}

/// What [`Store::open`] found.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) store: Store,
    pub(crate) state: ManifestState,
    /// Tables per level, level 0 newest first.
    pub(crate) levels: Vec<Vec<Arc<Table>>>,
}

impl Store {
    /// Opens the manifest and tables of the database in `dir`; the manifest
    /// writer rotates past `rotate_bytes`.
    pub(crate) fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        read_only: bool,
        policy: Leveled,
        rotate_bytes: u64,
    ) -> Result<Opened> {
        let recovered = manifest::recover(vfs.as_ref(), dir)?;
        let state = recovered
            .as_ref()
            .map_or_else(ManifestState::new, |r| r.replayed.state.clone());
        let manifest_path = recovered.as_ref().map(|r| r.path.clone());
        let live = recovered.as_ref().map(|r| r.number);
        let log = match recovered {
            Some(r) if !read_only => {
                let mut log = Log::resume(vfs.clone(), dir, r, rotate_bytes)?;
                // Recovery may have read records a killed process never
                // synced: durable first, then acted on.
                log.make_durable()?;
                Some(log)
            }
            _ => None,
        };
        if !read_only {
            let obsolete = manifest::obsolete_files(vfs.as_ref(), dir, live.map(|n| (n, &state)))?;
            manifest::remove_files(vfs.as_ref(), &obsolete)?;
            if live.is_some() {
                // The first flush installs `CURRENT`, then creates the
                // directory: a power cut between them leaves a manifest
                // without it, and flushes only create it with a manifest.
                create_dir_durable(vfs.as_ref(), &dir.join(manifest::TABLES_DIR))?;
            }
        }
        let table_memory = Arc::new(Account::default());
        let levels = open_tables(vfs.as_ref(), dir, &state, &table_memory)?;
        Ok(Opened {
            store: Store {
                vfs,
                dir: dir.to_path_buf(),
                manifest: Mutex::new(log),
                manifest_path,
                manifest_rotate_bytes: rotate_bytes,
                flushes: AtomicU64::new(0),
                flushed_bytes: AtomicU64::new(0),
                retention: Arc::new(Retention::default()),
                wal_segments_deleted: AtomicU64::new(0),
                compaction: Compactor::new(policy),
                table_memory,
            },
            state,
            levels,
        })
    }

    /// `Corruption` unless the recovered WAL continues the manifest: it
    /// reaches back to the flushed lsn + 1, and after a clean close up to
    /// the lsn recorded then (`manifest::check_wal`).
    pub(crate) fn check_wal(&self, state: &ManifestState, wal: WalExtent) -> Result<()> {
        match &self.manifest_path {
            Some(path) => manifest::check_wal(state, wal, path),
            None => Ok(()),
        }
    }

    /// Deletes the WAL segments every record of which is at or below
    /// `flushed` (in tables), except the newest and any a pin holds, then
    /// makes the removals durable. Only after the manifest edit recording
    /// `flushed` is durable (so recovery never looks for them).
    pub(crate) fn delete_flushed_segments(&self, flushed: Lsn) -> Result<()> {
        if flushed == Lsn::ZERO {
            // Nothing is in tables, and recovery then requires the log to
            // start with segment 1 (even one whose records a power cut
            // took: its successor starts at the same lsn).
            return Ok(());
        }
        let wal_dir = self.dir.join(WAL_DIR);
        let gone = self.retention.take_deletable(flushed);
        for &no in &gone {
            self.vfs.remove(&wal_dir.join(segment_name(no)))?;
        }
        if !gone.is_empty() {
            self.vfs.sync_dir(&wal_dir)?;
            self.wal_segments_deleted
                .fetch_add(gone.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Opens (maps) the table at `path`, charged to the table account.
    pub(crate) fn open_table(&self, path: &Path) -> Result<Arc<Table>> {
        open_charged(self.vfs.as_ref(), path, &self.table_memory).map(Arc::new)
    }

    /// Records a clean close: the WAL's last durable lsn and the highest
    /// commit ts, so the next open detects a log cut below them. Nothing to
    /// record if the database never flushed (no manifest).
    pub(crate) fn clean_close(&self, last_lsn: Lsn, max_ts: Ts) -> Result<()> {
        let mut guard = self.manifest.lock();
        let Some(log) = guard.as_mut() else {
            return Ok(());
        };
        let max_ts = max_ts.max(log.state().max_ts());
        log.append(&Edit {
            clean_close: Some(last_lsn.max(log.state().flushed_lsn())),
            max_ts: Some(max_ts),
            ..Edit::default()
        })
    }
}

/// The manifest's record of a table just built as file `number`, holding
/// WAL records up to `max_lsn`.
pub(crate) fn table_record(number: u64, built: &BuiltTable, max_lsn: Lsn) -> TableRecord {
    let p = &built.properties;
    TableRecord {
        number,
        file_size: built.file_size,
        smallest_key: p.smallest_key.clone(),
        largest_key: p.largest_key.clone(),
        min_ts: p.min_ts,
        max_ts: p.max_ts,
        entries: p.entries,
        tombstones: p.tombstones,
        max_lsn,
    }
}

/// Bytes a table's manifest record holds besides its two keys (the
/// manifest state keeps one per live table).
const RECORD_BYTES: u64 = size_of::<TableRecord>() as u64 + 3 * ALLOCATION_OVERHEAD_BYTES;

/// Opens the table at `path`, charging `account` with what it holds in
/// memory and what its manifest record does.
fn open_charged(vfs: &dyn Vfs, path: &Path, account: &Arc<Account>) -> Result<Table> {
    let table = Table::open(vfs, path)?;
    let p = table.properties();
    let record = RECORD_BYTES + (p.smallest_key.len() + p.largest_key.len()) as u64;
    let bytes = table.resident_bytes() + record;
    Ok(table.charged(account, bytes))
}

/// Maps every table `state` lists; level 0 newest (highest number) first.
fn open_tables(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &ManifestState,
    account: &Arc<Account>,
) -> Result<Vec<Vec<Arc<Table>>>> {
    let tables_dir = dir.join(manifest::TABLES_DIR);
    let mut levels = Vec::new();
    for level in 0..NUM_LEVELS {
        let mut tables = Vec::new();
        for rec in state.level(level) {
            let path = tables_dir.join(manifest::table_name(rec.number));
            let table = open_charged(vfs, &path, account).map_err(|e| match e {
                Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Error::corruption(
                    &path,
                    0,
                    format!("table {} is in the manifest but missing", rec.number),
                ),
                other => other,
            })?;
            if table.file_size() != rec.file_size {
                return Err(Error::corruption(
                    &path,
                    0,
                    format!(
                        "table {} has {} bytes, the manifest says {}",
                        rec.number,
                        table.file_size(),
                        rec.file_size
                    ),
                ));
            }
            tables.push(Arc::new(table));
        }
        if level == 0 {
            tables.reverse();
        }
        levels.push(tables);
    }
    while levels.last().is_some_and(Vec::is_empty) {
        levels.pop();
    }
    Ok(levels)
}
