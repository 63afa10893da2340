//! `Db`: open and recover, begin transactions, stats, close.
//!
//! A `Db` is a cheap handle (`Arc<Inner>`); clones share one database. The
//! directory holds `LOCK` (held for as long as any handle lives) and `wal/`.
//! The state transactions use is `commit::Engine`; the commit path itself
//! (conflicts, WAL enqueue, group commit, apply, publish) is described and
//! implemented in `commit.rs`. Recovery replays the WAL through
//! `commit::apply_commit`, the same function the commit path applies with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backpressure::Stalls;
use crate::budget::Account;
use crate::commit::{Applier, Core, Engine, apply_commit};
use crate::compaction::{self, Leveled};
use crate::error::{Error, Result};
use crate::flush;
use crate::manifest::{NUM_LEVELS, WalExtent};
use crate::memtable::Memtable;
use crate::mvcc::RecentWrites;
use crate::mvcc::{Governance, Oracle, system_millis};
use crate::options::{Durability, Options};
use crate::store::{Opened, Store, WAL_DIR};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::syncer::Syncer;
use crate::txn::{ReadTxn, Txn};
use crate::types::{Lsn, Ts};
use crate::vfs::{FileLock, OsVfs, Vfs, create_dir_durable};
use crate::view::{View, Views};
use crate::wal::{self, GroupCommit, SegmentSize, Writer};
use crate::worker::{Signal, Worker};

/// How often `Db::update` used to run a conflicting transaction before it
/// gave up. `update` is now bounded by time ([`Options::update_timeout`]),
/// since the attempts a hot key needs grow with the sync time; the constant
/// is kept for code that names it.
pub const UPDATE_MAX_ATTEMPTS: u32 = 64;

/// How often `Db::update`, waiting for the commit it lost to, looks whether
/// the database was poisoned meanwhile.
const WINNER_WAIT_SLICE: Duration = Duration::from_millis(50);

/// Frozen memtables waiting for flush before the active one is left to
/// grow instead (the flusher is behind; smooth write slowdown comes next).
const MAX_FROZEN_MEMTABLES: usize = 4;

/// An open that finds more WAL segments than this flushes what it
/// recovered, so that they can be deleted.
const FLUSH_AT_OPEN_SEGMENTS: usize = 8;

/// A handle to an open database. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

/// The shared state behind every handle.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) options: Options,
    /// What transactions use (`commit.rs`).
    pub(crate) engine: Arc<Engine>,
    /// The background sync of a Buffered WAL (`syncer.rs`), if running.
    syncer: Option<Syncer>,
    /// The memtable flusher (`flush.rs`) and the compactor
    /// (`compaction/`), in writable opens.
    flusher: Option<Worker>,
    compactor: Option<Worker>,
    recovered_records: u64,
    recovered_truncated_bytes: u64,
    _lock: Box<dyn FileLock>,
}

/// Counters and gauges from [`Db::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Read-write transactions committed by this instance.
    pub commits: u64,
    /// Commits refused with `Error::Conflict`.
    pub conflicts: u64,
    /// Bytes written to the WAL by this instance (frames, not headers).
    pub wal_bytes: u64,
    /// Group writes to the WAL.
    pub wal_writes: u64,
    /// WAL `fdatasync` calls on the commit path.
    pub wal_syncs: u64,
    /// Time spent in those calls: over a phase, divided by its length, how
    /// busy the commit path kept the disk.
    pub wal_sync_time: Duration,
    /// Commits made durable per WAL sync (0 if none synced yet).
    pub commits_per_sync: f64,
    /// Bytes held by the memtable (keys, values, per-entry overhead).
    pub memtable_bytes: u64,
    /// Versions held by the memtable.
    pub memtable_versions: u64,
    /// Commit records replayed from the WAL when this instance opened.
    pub recovered_records: u64,
    /// Bytes recovery cut off the WAL when this instance opened: torn tails
    /// and torn segment creations, never acknowledged data (preallocated
    /// zeros are not counted).
    pub recovered_truncated_bytes: u64,
    /// The read ts a snapshot taken now would get.
    pub read_ts: Ts,
    /// The oldest read ts any live snapshot uses.
    pub gc_watermark: Ts,
    /// Live snapshots (open transactions of either kind, not expired).
    pub live_snapshots: u64,
    /// How long the oldest live snapshot has been open (zero if none):
    /// what `Options::max_snapshot_age` limits.
    pub oldest_snapshot_age: Duration,
    /// The history the oldest live snapshot pins: the time between its read
    /// ts and the latest commit (zero if none). Versions that recent stay
    /// on disk while it lives.
    pub oldest_snapshot_pins: Duration,
    /// The oldest ts `Db::begin_read_at` accepts now.
    pub oldest_readable_ts: Ts,
    /// The last WAL log sequence number handed out.
    pub last_lsn: u64,
    /// Every WAL record up to this LSN is known to be on stable storage (a
    /// sync covering it returned): with `Durability::Buffered`, what a
    /// power cut now could not take.
    pub wal_synced_lsn: u64,
    /// Background syncs of a Buffered WAL that returned
    /// (`Options::buffered_sync_interval`); they are not in `wal_syncs`.
    pub wal_background_syncs: u64,
    /// Sorted tables in the current view.
    pub tables: u64,
    /// Frozen memtables waiting for their flush.
    pub frozen_memtables: u64,
    /// Memtables flushed to tables since open.
    pub flushes: u64,
    /// Bytes of the tables those flushes wrote.
    pub flushed_bytes: u64,
    /// Keys in the recent-writes index (flushed while above the GC
    /// watermark; the conflict check asks it).
    pub recent_writes: u64,
    /// WAL segment files on disk (a flush deletes those wholly in tables).
    pub wal_segments: u64,
    /// WAL segments deleted since open.
    pub wal_segments_deleted: u64,
    /// Tables per level in the current view (level 0 first; trailing
    /// empty levels omitted).
    pub tables_per_level: Vec<u64>,
    /// Bytes of the tables per level, as `tables_per_level`.
    pub bytes_per_level: Vec<u64>,
    /// Compactions (merges) run since open.
    pub compactions: u64,
    /// Tables moved a level down unchanged since open.
    pub compaction_moves: u64,
    /// Bytes compactions read since open.
    pub compaction_bytes_read: u64,
    /// Bytes compactions wrote since open (write amplification:
    /// `(flushed_bytes + compaction_bytes_written) / wal_bytes`).
    pub compaction_bytes_written: u64,
    /// Versions compactions dropped (shadowed below the GC watermark, or
    /// tombstones at the bottom).
    pub compaction_versions_dropped: u64,
    /// Versions (entries, tombstones included) held in tables.
    pub table_versions: u64,
    /// Commits slowed down (a short sleep) because flushing or compaction
    /// fell behind, since open.
    pub write_slowdowns: u64,
    /// Commits stopped until a flush or compaction step finished (the
    /// active memtable full with no room to freeze it, or 20 tables in
    /// level 0), since open.
    pub write_stops: u64,
    /// Total time commits spent slowed or stopped, since open.
    pub write_stall_time: Duration,
    /// The longest a single commit waited for background work.
    pub longest_write_stall: Duration,
    /// Commits slowed or stopped right now.
    pub stalled_writers: u64,
    /// Tables compacted away whose file is kept until no snapshot's view
    /// lists them.
    pub obsolete_tables: u64,
    /// `Options::memory_budget`: what `memory_bytes` stays within.
    pub memory_budget: u64,
    /// What the memory budget counts now: `memtable_bytes +
    /// pinned_memtable_bytes + txn_buffer_bytes + table_metadata_bytes`
    /// (decisions 0024, 0032). At most `memory_budget` while no commit is
    /// stopped by backpressure and no snapshot or scan holds a view from
    /// before the last flush (`pinned_memtable_bytes` is zero).
    pub memory_bytes: u64,
    /// Bytes of memtables already flushed to tables that an older view
    /// still holds: a snapshot that has not read since the flush (each
    /// snapshot operation moves it to the current view), a scan or cursor
    /// opened before it (until it is dropped), or a background task for
    /// the length of one step (decision 0032). Backpressure does not wait
    /// for them (no flush frees them).
    pub pinned_memtable_bytes: u64,
    /// Bytes buffered by live transactions' write sets (keys, values, 96
    /// bytes per key), and the WAL records of those committing. A
    /// transaction reports its growth in steps of 16 KiB, exactly at
    /// commit.
    pub txn_buffer_bytes: u64,
    /// Bytes open tables hold in memory (properties, key range, manifest
    /// record, verified-block bitmap; not their mapped pages), including
    /// tables compacted away that a snapshot's view still lists, and what
    /// the tables being built hold (filter hashes, index block).
    pub table_metadata_bytes: u64,
}

impl Db {
    /// Opens (creating if missing) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_with_vfs(path, options, Arc::new(OsVfs))
    }

    /// Opens the database on a given file system (tests use [`crate::vfs::MemVfs`]).
    pub fn open_with_vfs(
        path: impl AsRef<Path>,
        options: Options,
        vfs: Arc<dyn Vfs>,
    ) -> Result<Db> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let lock = lock_dir(vfs.as_ref(), &path, options.read_only)?;
        let wal_dir = path.join(WAL_DIR);
        let policy = Leveled::for_memtable(options.memtable_limit(), NUM_LEVELS);
        let opened = Store::open(
            vfs.clone(),
            &path,
            options.read_only,
            policy,
            options.manifest_rotate_bytes,
        )?;
        let memtable = Memtable::with_share(options.memtable_limit());
        let flushed = opened.state.flushed_lsn();
        let recovered = recover(
            vfs.as_ref(),
            &wal_dir,
            options.read_only,
            flushed,
            &memtable,
        )?;
        opened.store.check_wal(
            &opened.state,
            WalExtent {
                oldest_lsn: recovered.oldest_lsn,
                last_lsn: recovered.chain.last_lsn,
            },
        )?;
        let background_sync = options.durability == Durability::Buffered
            && !options.read_only
            && !options.buffered_sync_interval.is_zero();
        let mut writer = Writer::new(
            vfs,
            &wal_dir,
            recovered.next_segment_no,
            recovered.epoch,
            SegmentSize {
                max_bytes: options.wal_segment_limit(),
                preallocate_bytes: options.wal_preallocate_bytes,
            },
        );
        if background_sync {
            writer = writer.with_background_sync();
        }
        let retention = opened.store.retention.clone();
        for &(no, first) in &recovered.segments {
            retention.note_segment(no, first);
        }
        writer = writer.with_retention(retention);
        if !options.read_only {
            // A crash between a flush's manifest edit and its deletions
            // left segments that are all in tables.
            opened.store.delete_flushed_segments(flushed)?;
        }
        let read_only = options.read_only.then(|| path.clone());
        let engine = Arc::new(engine(
            writer, &options, &recovered, memtable, opened, read_only,
        ));
        let (flusher, compactor) = if options.read_only {
            (None, None)
        } else {
            let weak = Arc::downgrade(&engine);
            let signal = engine.core.flush_signal.clone();
            let flusher = Worker::start("strata-flush", weak.clone(), signal, flush::step)?;
            let signal = engine.store.compaction.signal.clone();
            let compactor = Worker::start("strata-compact", weak, signal, compaction::step)?;
            // Whatever was due when the last session ended.
            engine.store.compaction.signal.notify();
            // A recovered memtable over its limit is flushed right away, and
            // so is one spread over many segments (every writing session
            // starts a segment: without this, open/close cycles of a small
            // database would pile them up), so the segments can go.
            if recovered.segments.len() > FLUSH_AT_OPEN_SEGMENTS {
                // Waited for, so that the open leaves at most a few.
                engine.core.freeze_now();
                let core = &engine.core;
                core.flush_signal.wait_until(|| engine.flushes_done());
                // A failed flush (a full disk, say) poisons the database but
                // does not fail the open: reads work, commits get Poisoned,
                // as after any failed write.
            } else {
                engine.core.freeze_if_full();
            }
            (Some(flusher), Some(compactor))
        };
        let syncer = if background_sync {
            let interval = options.buffered_sync_interval;
            Some(Syncer::start(Arc::downgrade(&engine), interval)?)
        } else {
            None
        };
        let inner = Inner {
            path,
            options,
            engine,
            syncer,
            flusher,
            compactor,
            recovered_records: recovered.records,
            recovered_truncated_bytes: recovered.truncated_bytes,
            _lock: lock,
        };
        Ok(Db {
            inner: Arc::new(inner),
        })
    }

    /// Starts a read-write transaction on a snapshot of the latest commits.
    pub fn begin(&self) -> Txn<'_> {
        Txn::new(&self.inner.engine)
    }

    /// Starts a read-only transaction on a snapshot of the latest commits.
    pub fn begin_read(&self) -> ReadTxn<'_> {
        ReadTxn::new(&self.inner.engine)
    }

    /// The value of `key` in the latest commits (`None`: absent or
    /// deleted): what `self.begin_read().get(key)` returns, for a single
    /// read. It registers no snapshot when no compaction may have collected
    /// a version it needs, which is what makes it cheaper than a
    /// transaction (`mvcc::snapshot`, "Unregistered reads").
    ///
    /// # Errors
    /// [`Error::Corruption`] if a table it reads is damaged; an I/O error
    /// from reading a table.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let core = &self.inner.engine.core;
        match core.oracle.read_latest(|| core.views.current()) {
            Some((ts, view)) => view.get(key, ts),
            None => self.begin_read().get(key),
        }
    }

    /// Starts a read-only transaction as of `ts` (time travel): it sees
    /// exactly the commits with commit ts `<= ts`, and its
    /// [`ReadTxn::read_ts`] is `ts`. [`Ts::from_time`] makes one from a time
    /// of day ("as of 10:00").
    ///
    /// History is kept back to `now - Options::history_retention` (and as
    /// far back as the oldest live snapshot); a `ts` older than that (or
    /// than what compaction already collected) is
    /// [`Error::SnapshotTooOld`]. A `ts` above the latest commit gives a
    /// stable snapshot: later commits all get a larger ts, and commits at
    /// or below it that are still in flight are waited for. A `ts` beyond
    /// the clock (in the future) is [`Error::InvalidArgument`].
    pub fn begin_read_at(&self, ts: Ts) -> Result<ReadTxn<'_>> {
        let engine = &self.inner.engine;
        engine.check_open()?;
        ReadTxn::at(engine, ts)
    }

    /// Runs `f` in a transaction and commits it, running it again on a fresh
    /// snapshot when the commit or `f` reports a retryable error, for up to
    /// [`Options::update_timeout`] (then the last error is returned).
    ///
    /// A retry after a conflict begins at a snapshot that includes the
    /// commit it lost to (it waits until that commit is visible), so it
    /// never reads the value it already lost on; a short random pause
    /// before it keeps the retrying threads from moving in lockstep.
    pub fn update<T>(&self, mut f: impl FnMut(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let deadline = Instant::now().checked_add(self.inner.options.update_timeout);
        let mut backoff = Backoff::new();
        loop {
            let mut txn = self.begin();
            let result = match f(&mut txn) {
                Ok(value) => txn.commit().map(|_| value),
                Err(e) => Err(e),
            };
            let err = match result {
                Err(e) if e.is_retryable() => e,
                other => return other,
            };
            let winner_visible = match &err {
                Error::Conflict { committed_ts, .. } => {
                    self.wait_for_winner(*committed_ts, deadline)?
                }
                _ => true,
            };
            if !winner_visible || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(err);
            }
            backoff.pause();
        }
    }

    /// Waits until the commit at `ts` (one `update` lost to) is visible, or
    /// `deadline` passes (`Ok(false)`). A winner whose apply panicked never
    /// becomes visible, so the wait also ends, with `Poisoned`, once the
    /// database is poisoned (checked every [`WINNER_WAIT_SLICE`]).
    fn wait_for_winner(&self, ts: Ts, deadline: Option<Instant>) -> Result<bool> {
        let engine = &self.inner.engine;
        loop {
            let slice = Instant::now().checked_add(WINNER_WAIT_SLICE);
            let until = match (deadline, slice) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            if engine.core.oracle.wait_visible_until(ts, until) {
                return Ok(true);
            }
            if engine.wal.is_poisoned() {
                return Err(Error::Poisoned);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Runs `f` on a read-only snapshot.
    pub fn view<T>(&self, f: impl FnOnce(&ReadTxn<'_>) -> Result<T>) -> Result<T> {
        f(&self.begin_read())
    }

    /// Freezes the active memtable and waits until every frozen memtable
    /// is written to a sorted table and recorded in the manifest. Commits
    /// made while it runs may land in either memtable; every commit
    /// acknowledged before the call is in a table when it returns.
    ///
    /// Errors: [`Error::Closed`], [`Error::ReadOnly`], [`Error::Poisoned`]
    /// (also when this flush failed: a failed flush poisons the database).
    pub fn flush(&self) -> Result<()> {
        let engine = &self.inner.engine;
        engine.check_open()?;
        engine.check_writable()?;
        let core = &engine.core;
        core.freeze_now();
        let finished = || engine.flushes_done();
        if !core.flush_signal.wait_until(finished) {
            return Err(Error::Closed);
        }
        engine.check_open()
    }

    /// Flushes the memtables ([`Db::flush`]), then compacts every table into
    /// one level, dropping every version no snapshot can read: each key
    /// keeps its versions above the GC watermark (the oldest live
    /// snapshot's read ts) and the newest at or below it, unless that is a
    /// delete. Waits for a background compaction in progress first. Writes
    /// and reads continue meanwhile.
    ///
    /// Errors: as [`Db::flush`]; a failed compaction poisons the database
    /// and returns its error.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        let engine = &self.inner.engine;
        compaction::compact_all(engine)?;
        engine.check_open()
    }

    /// Waits until the background work due now is done: every frozen
    /// memtable flushed, and no level over its compaction trigger. For
    /// tests and tools that want a settled tree; writes may continue
    /// meanwhile (and may make more work due, which is not waited for
    /// once no level is over its trigger).
    ///
    /// Errors: [`Error::Closed`], [`Error::ReadOnly`], [`Error::Poisoned`]
    /// (also when the background work failed).
    pub fn wait_for_compactions(&self) -> Result<()> {
        let engine = &self.inner.engine;
        engine.check_open()?;
        engine.check_writable()?;
        let core = &engine.core;
        let flushed = || engine.flushes_done();
        if !core.flush_signal.wait_until(flushed) || !compaction::wait_idle(engine) {
            return Err(Error::Closed);
        }
        engine.check_open()
    }

    /// Writes a consistent copy of the database into `dir` (which must not
    /// exist, or be empty) while reads and writes go on, and returns its
    /// ts: the copy holds every commit acknowledged before the call, every
    /// commit at or below the returned ts, and nothing after it. Tables are
    /// hard-linked (copied on a file system that cannot link), the WAL
    /// tail the tables lack is copied. Open the copy with [`Db::open`] like
    /// any database. A checkpoint that fails (or is cut short by a crash)
    /// leaves a partial directory: opening it is refused with
    /// `Error::Corruption`, or gives an empty database if nothing was
    /// durable yet; remove it before trying again (a non-empty directory is
    /// refused). A `Buffered` database's WAL is synced first, so the copy
    /// never holds a commit the source could still lose.
    ///
    /// Errors: [`Error::Closed`], [`Error::ReadOnly`] (a read-only open
    /// does not hold the manifest writer), [`Error::InvalidArgument`] for a
    /// non-empty `dir`, [`Error::Io`].
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<Ts> {
        let engine = &self.inner.engine;
        engine.check_open()?;
        engine.check_writable()?;
        crate::checkpoint::checkpoint(engine, dir.as_ref())
    }

    /// Makes every commit so far durable (useful with [`Durability::Buffered`]).
    pub fn sync(&self) -> Result<()> {
        self.inner.engine.check_open()?;
        self.inner.engine.wal.sync_all()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let engine = &inner.engine;
        let c = engine.wal.counters();
        let (view, pinned) = engine.core.views.current_and_pinned();
        let (memtable_bytes, memtable_versions) = view.memtable_usage();
        let memory = engine.memory_use(&view, pinned);
        let cc = &engine.store.compaction.counters;
        let st = &engine.stalls;
        let oldest = engine.core.oracle.oldest_snapshot();
        Stats {
            commits: engine.commits.load(Ordering::Relaxed),
            conflicts: engine.core.oracle.conflicts(),
            wal_bytes: c.bytes,
            wal_writes: c.writes,
            wal_syncs: c.syncs,
            wal_sync_time: Duration::from_nanos(c.sync_nanos),
            #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
            commits_per_sync: if c.syncs == 0 {
                0.0
            } else {
                c.synced_commits as f64 / c.syncs as f64
            },
            memtable_bytes,
            memtable_versions,
            recovered_records: inner.recovered_records,
            recovered_truncated_bytes: inner.recovered_truncated_bytes,
            read_ts: engine.core.oracle.read_ts(),
            gc_watermark: engine.core.oracle.gc_watermark(),
            live_snapshots: engine.core.oracle.live_snapshots() as u64,
            oldest_snapshot_age: oldest.map_or(Duration::ZERO, |(_, age)| age),
            oldest_snapshot_pins: oldest.map_or(Duration::ZERO, |(ts, _)| {
                let latest = engine.core.oracle.read_ts().unix_millis();
                Duration::from_millis(latest.saturating_sub(ts.unix_millis()))
            }),
            oldest_readable_ts: engine.core.oracle.oldest_readable(),
            last_lsn: engine.wal.last_lsn().0,
            wal_synced_lsn: c.durable.0,
            wal_background_syncs: c.background_syncs,
            tables: view.table_count() as u64,
            frozen_memtables: view.imm.len() as u64,
            flushes: engine.store.flushes.load(Ordering::Relaxed),
            flushed_bytes: engine.store.flushed_bytes.load(Ordering::Relaxed),
            recent_writes: engine.core.recent.len() as u64,
            wal_segments: engine.store.retention.segments() as u64,
            wal_segments_deleted: engine.store.wal_segments_deleted.load(Ordering::Relaxed),
            tables_per_level: view.levels.iter().map(|l| l.len() as u64).collect(),
            bytes_per_level: view
                .levels
                .iter()
                .map(|l| l.iter().map(|t| t.file_size()).sum())
                .collect(),
            compactions: cc.jobs.load(Ordering::Relaxed),
            compaction_moves: cc.moves.load(Ordering::Relaxed),
            compaction_bytes_read: cc.bytes_read.load(Ordering::Relaxed),
            compaction_bytes_written: cc.bytes_written.load(Ordering::Relaxed),
            compaction_versions_dropped: cc.versions_dropped.load(Ordering::Relaxed),
            write_slowdowns: st.slowed.load(Ordering::Relaxed),
            write_stops: st.stopped.load(Ordering::Relaxed),
            write_stall_time: Duration::from_nanos(st.total_nanos.load(Ordering::Relaxed)),
            longest_write_stall: Duration::from_nanos(st.longest_nanos.load(Ordering::Relaxed)),
            stalled_writers: st.waiting.load(Ordering::Relaxed),
            table_versions: view
                .levels
                .iter()
                .flatten()
                .map(|t| t.properties().entries)
                .sum(),
            obsolete_tables: engine
                .store
                .compaction
                .obsolete_pending
                .load(Ordering::Relaxed),
            memory_budget: engine.budget,
            memory_bytes: memory.total(),
            pinned_memtable_bytes: memory.pinned_memtables,
            txn_buffer_bytes: memory.txn_buffers,
            table_metadata_bytes: memory.table_metadata,
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Closes the database: waits for enqueued commits, syncs the WAL and
    /// marks it cleanly closed. Later commits through any clone of this handle
    /// get `Error::Closed`; the directory lock is released when the last
    /// handle is dropped. Dropping the last handle without `close` does the
    /// same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

/// Takes the directory's lock: exclusive for a writer, which first creates
/// the directory (durably) if it is missing; shared for a read-only open,
/// which creates nothing and refuses a directory that does not exist.
fn lock_dir(vfs: &dyn Vfs, path: &Path, read_only: bool) -> Result<Box<dyn FileLock>> {
    let lock_path = path.join("LOCK");
    let lock = if read_only {
        // Listing fails with `NotFound` (naming the path) if there is no
        // database here; nothing may be created to find out.
        vfs.list(path)?;
        vfs.lock_shared(&lock_path)?
    } else {
        // Every directory the engine creates is durable before anything in
        // it is acknowledged (`vfs` contract 2).
        create_dir_durable(vfs, path)?;
        vfs.lock(&lock_path)?
    };
    lock.ok_or(Error::Locked { path: lock_path })
}

/// Replays the WAL in `wal_dir` into `memtable` (creating the directory,
/// durably, unless `read_only`).
fn recover(
    vfs: &dyn Vfs,
    wal_dir: &Path,
    read_only: bool,
    flushed: Lsn,
    memtable: &Memtable,
) -> Result<wal::Recovered> {
    let mode = if read_only {
        wal::RecoveryMode::ReadOnly
    } else {
        create_dir_durable(vfs, wal_dir)?;
        wal::RecoveryMode::Repair
    };
    // Records at or below `flushed` are in tables: read, not replayed.
    wal::recover(vfs, wal_dir, mode, flushed, &mut |rec| {
        apply_commit(
            memtable,
            rec.header.commit_ts,
            rec.header.lsn,
            rec.ops().map(|op| (op.key, op.value)),
        );
        Ok(())
    })
}

/// The engine of a recovered database: its clock resumes after the last
/// recovered commit and its WAL queue after the last record. `writer`
/// creates no file until the first group write (decision 0010).
fn engine(
    writer: Writer,
    options: &Options,
    recovered: &wal::Recovered,
    memtable: Memtable,
    opened: Opened,
    read_only: Option<PathBuf>,
) -> Engine {
    let chain = recovered.chain;
    // Above every ts issued before: the WAL's, and the tables' (whose WAL
    // records may be gone), so a clock stepped back never reissues one.
    let last_ts = chain.last_ts.max(opened.state.max_ts());
    let core = Arc::new(Core {
        oracle: Oracle::new(
            last_ts,
            system_millis,
            Governance {
                retention: options.history_retention,
                max_snapshot_age: (options.max_snapshot_age != Duration::MAX)
                    .then_some(options.max_snapshot_age),
                history_floor: opened.state.history_floor(),
            },
        ),
        views: Views::new(View::new(memtable, opened.levels)),
        recent: RecentWrites::default(),
        memtable_limit: options.memtable_limit(),
        max_frozen: MAX_FROZEN_MEMTABLES,
        flush_signal: Arc::new(Signal::default()),
        apply_lock: Mutex::new(()),
    });
    let wal = GroupCommit::new(
        writer,
        Applier(core.clone()),
        recovered.epoch,
        chain.last_lsn,
        chain.last_crc,
        options.durability == Durability::Sync,
    )
    .with_spin_limit(options.commit_spin);
    Engine {
        core,
        wal,
        store: opened.store,
        closed: AtomicBool::new(false),
        commits: AtomicU64::new(0),
        read_only,
        stalls: Stalls::default(),
        budget: options.budget(),
        commit_budget: options.commit_budget(),
        txn_memory: Account::default(),
        txn_limit: options.txn_limit(),
    }
}

impl Inner {
    fn close(&self) -> Result<()> {
        let engine = &self.engine;
        if engine.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(syncer) = &self.syncer {
            syncer.stop();
        }
        // The compactor first: a job in progress stops at its next check
        // of `closed` (set above), and a flush it waits for finishes.
        if let Some(compactor) = &self.compactor {
            compactor.stop();
        }
        if let Some(flusher) = &self.flusher {
            flusher.stop();
        }
        if engine.read_only.is_some() {
            return Ok(()); // nothing was written, nothing to seal
        }
        if engine.wal.is_poisoned() {
            return Err(Error::Poisoned);
        }
        engine.wal.seal()?;
        engine
            .store
            .clean_close(engine.wal.last_lsn(), engine.core.oracle.read_ts())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ = self.close();
    }
}

/// Randomized, growing pauses (jitter) between `update` retries.
struct Backoff {
    next: Duration,
    seed: u64,
}

impl Backoff {
    /// The pause only breaks lockstep: a retry does not need to wait for the
    /// winner (it already waited until the winner was visible).
    const MAX: Duration = Duration::from_millis(1);

    fn new() -> Self {
        let seed = system_millis() ^ (std::ptr::from_ref(&0u8) as u64).rotate_left(17);
        Self {
            next: Duration::from_micros(10),
            seed: seed | 1,
        }
    }

    fn pause(&mut self) {
        // xorshift64: jitter only, not security.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let max_nanos = u64::try_from(self.next.as_nanos()).unwrap_or(u64::MAX);
        let pause = Duration::from_nanos(max_nanos / 2 + self.seed % (max_nanos / 2 + 1));
        crate::sync::thread::sleep(pause);
        self.next = (self.next * 2).min(Self::MAX);
    }
}
