//! Database options.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::types::MAX_TXN_BYTES;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Durability {
    /// The commit's WAL record is on stable storage (`fdatasync`) before
    /// `commit` returns. Concurrent commits share one write and one sync.
    #[default]
    Sync,
    /// The commit's WAL record has been written to the operating system
    /// before `commit` returns, but not synced: a process crash loses
    /// nothing, a power loss or kernel crash may lose the newest commits.
    /// Recovery always yields a prefix of the commit order.
    Buffered,
}

/// Default size at which the WAL rolls to a new segment.
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Default size of the zero-filled chunk the WAL writes ahead of its append
/// position (see [`Options::wal_preallocate_bytes`]).
pub const DEFAULT_WAL_PREALLOCATE_BYTES: u64 = 1024 * 1024;

/// Default of [`Options::commit_spin`]: the longest a waiting committer
/// spins before it sleeps.
pub const DEFAULT_COMMIT_SPIN: Duration = Duration::from_millis(1);

/// Largest accepted [`Options::commit_spin`].
pub const MAX_COMMIT_SPIN: Duration = Duration::from_secs(1);

/// Default of [`Options::buffered_sync_interval`]: how often a background
/// thread syncs the WAL of a [`Durability::Buffered`] database.
pub const DEFAULT_BUFFERED_SYNC_INTERVAL: Duration = Duration::from_millis(200);

/// Default of [`Options::update_timeout`]: how long `Db::update` keeps
/// retrying a transaction that conflicts.
pub const DEFAULT_UPDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for [`Options::memory_budget`]: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// Smallest [`Options::memory_budget`] accepted: 64 KiB (tests use tiny
/// budgets to make flushes frequent).
pub const MIN_MEMORY_BUDGET: u64 = 64 * 1024;

/// Default of [`Options::history_retention`]: versions from the last 5
/// minutes are kept for [`crate::Db::begin_read_at`].
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(5 * 60);

/// Default of [`Options::max_snapshot_age`]: a snapshot may pin old
/// versions for at most an hour.
pub const DEFAULT_MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(60 * 60);

/// The active memtable is frozen and flushed once it holds this fraction
/// (1/4) of the memory budget; one transaction's write set may hold as
/// much (so that it fits in one memtable).
const MEMTABLE_SHARE_DIVISOR: u64 = 4;

/// Commits stop this fraction (1/32) of the memory budget short of it:
/// the reserve holds what background work adds after a commit was let
/// through (a flush's or compaction's table builder growing, its tables
/// opened before the memtable or tables they replace are released).
const BACKGROUND_RESERVE_DIVISOR: u64 = 32;

/// The anonymous memory an open database may use beyond its
/// [`Options::memory_budget`]: 8 MiB, whatever the budget. The budget
/// counts what grows with the data and the load (memtables, transaction
/// write sets, per-table state); this is what does not (decision 0024
/// has the measurements: 1.3 to 2.5 MiB above a 12 MiB budget while a
/// data set ten times the budget is loaded, read and scanned, 6.4 MiB
/// with 32 committing threads besides):
/// - the allocator: its headers and the free memory it keeps in its
///   per-thread heaps (with glibc, the flusher hands the pages of each
///   flushed memtable back to the system: `malloc_trim`);
/// - the stacks of the engine's threads (flusher, compactor, WAL syncer);
/// - the WAL: the group-commit batch buffer (it keeps the capacity of the
///   largest batch) and the writer's zero chunk for preallocation;
/// - a flush's and a compaction's table builders' fixed buffers (a 256 KiB
///   write chunk each, the block being built) and a compaction's merge
///   cursors;
/// - the recent-writes index of the conflict check (keys flushed while a
///   snapshot older than them was live, pruned at each flush), and the
///   write sets of small commits it still references (one per committing
///   thread at most);
/// - reads: values copied out, scan cursors, one per live `Scan`.
///
/// What it does not cover: pages of mapped tables (the OS's page cache,
/// not anonymous memory); memtables flushed since a snapshot last read, or
/// since a live scan or cursor began, which its view still holds (counted
/// as `Stats::pinned_memtable_bytes`, and let go at the snapshot's next
/// operation or the scan's drop: decision 0032);
/// write sets of commits stopped by backpressure (each at most a quarter of
/// the budget); and, while a database opens, the one WAL segment recovery
/// reads at a time (at most a quarter of the budget) beside the memtable it
/// rebuilds.
pub const MEMORY_OVERHEAD_BYTES: u64 = 8 * 1024 * 1024;

/// Options for [`crate::Db::open`]; `Options::default()` then builder-style setters.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) wal_segment_bytes: u64,
    pub(crate) wal_preallocate_bytes: u64,
    pub(crate) commit_spin: Duration,
    pub(crate) update_timeout: Duration,
    pub(crate) read_only: bool,
    pub(crate) buffered_sync_interval: Duration,
    pub(crate) memory_budget: u64,
    pub(crate) history_retention: Duration,
    pub(crate) max_snapshot_age: Duration,
    pub(crate) manifest_rotate_bytes: u64,
    /// Test knob: overrides [`Options::txn_limit`]'s quarter of the budget.
    pub(crate) txn_limit_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            wal_segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
            wal_preallocate_bytes: DEFAULT_WAL_PREALLOCATE_BYTES,
            commit_spin: DEFAULT_COMMIT_SPIN,
            update_timeout: DEFAULT_UPDATE_TIMEOUT,
            read_only: false,
            buffered_sync_interval: DEFAULT_BUFFERED_SYNC_INTERVAL,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            history_retention: DEFAULT_HISTORY_RETENTION,
            max_snapshot_age: DEFAULT_MAX_SNAPSHOT_AGE,
            manifest_rotate_bytes: crate::manifest::DEFAULT_ROTATE_BYTES,
            txn_limit_bytes: None,
        }
    }
}

impl Options {
    /// Same as `Options::default()`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability of every commit (default [`Durability::Sync`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the WAL segment size in bytes (at least 4 KiB; default 64 MiB).
    /// Segments are never larger than a quarter of
    /// [`Options::memory_budget`] (the memtable's share) whatever this says:
    /// recovery reads a segment whole into memory, and a flush lets go of
    /// whole segments only, so one segment per memtable is what the budget
    /// can hold and what a flush frees.
    #[must_use]
    pub fn wal_segment_bytes(mut self, bytes: u64) -> Self {
        self.wal_segment_bytes = bytes;
        self
    }

    /// Sets how far ahead of its append position the WAL writes zeros into
    /// the current segment, in bytes (default 1 MiB; never past
    /// `wal_segment_bytes`). Group writes then overwrite space the file
    /// system has already allocated, so their `fdatasync` commits no block
    /// allocation or file-size change; each chunk costs one extra write,
    /// synced with the group that needed it. 0 turns preallocation off:
    /// segments grow by plain appends. The format is the same either way
    /// (`docs/format/wal.md`, "Preallocated segments and the zero tail").
    #[must_use]
    pub fn wal_preallocate_bytes(mut self, bytes: u64) -> Self {
        self.wal_preallocate_bytes = bytes;
        self
    }

    /// Sets the longest a committer (or `Db::sync`) waiting for another
    /// thread's group write spins before it sleeps (default 1 ms).
    ///
    /// A waiter spins for about four average `fdatasync`s, at least 100 us,
    /// never longer than this limit, yielding the CPU each round, so a
    /// thread with work to do runs first. Waking a sleeping thread costs
    /// tens of microseconds on a virtual machine whose idle vCPUs halt,
    /// and that latency would sit between every group sync and the next
    /// (decision 0009 has the figures). At most [`MAX_COMMIT_SPIN`] (`Db::open`
    /// refuses more with `Error::InvalidArgument`). `Duration::ZERO` never spins: every
    /// waiter sleeps at once, which saves CPU time on a busy shared machine
    /// at the cost of commit latency and throughput under concurrency.
    #[must_use]
    pub fn commit_spin(mut self, limit: Duration) -> Self {
        self.commit_spin = limit;
        self
    }

    /// Sets how long [`crate::Db::update`] keeps running a transaction
    /// again after a retryable conflict (default [`DEFAULT_UPDATE_TIMEOUT`],
    /// 10 s). The bound is time, not a number of attempts: how many attempts
    /// a hot key needs depends on how long each commit's sync takes.
    /// `Duration::ZERO` runs the transaction once; the last conflict is
    /// returned when the time is up.
    #[must_use]
    pub fn update_timeout(mut self, timeout: Duration) -> Self {
        self.update_timeout = timeout;
        self
    }

    /// Sets how often a background thread makes the WAL of a
    /// [`Durability::Buffered`] database durable (default
    /// [`DEFAULT_BUFFERED_SYNC_INTERVAL`], 200 ms; `Duration::ZERO` turns it
    /// off, leaving only segment roll-over, [`crate::Db::sync`] and `close`).
    ///
    /// This bounds what a power cut can take: a commit acknowledged more
    /// than one interval plus one `fdatasync` before the cut survives it
    /// (intervals run from the start of one sync to the start of the next;
    /// should a sync take longer than the interval, the next starts as soon
    /// as it returns, and the bound is two syncs)
    /// (PostgreSQL's `synchronous_commit = off` does the same every
    /// `wal_writer_delay`). The sync runs beside the commit path, on its own
    /// file handle: no committer performs it or waits for it. Ignored with
    /// [`Durability::Sync`], where every commit is synced.
    #[must_use]
    pub fn buffered_sync_interval(mut self, interval: Duration) -> Self {
        self.buffered_sync_interval = interval;
        self
    }

    /// Opens the database for reads only (default `false`).
    ///
    /// A read-only open writes nothing: it creates no directory or file,
    /// cuts no torn tail (it replays the valid prefix and ignores what
    /// follows, as a writable open would cut it) and takes the directory's
    /// lock shared, so any number of read-only openers (in this process or
    /// others) may read at once while no writer has it open. It reads the
    /// database as it is at open: commits made later by a writer are not
    /// seen. Writes fail with [`crate::Error::ReadOnly`]. A database that
    /// does not exist is an `Error::Io` of kind `NotFound`.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Whether the database is opened for reads only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The configured durability.
    #[must_use]
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// The anonymous memory the engine may use (default
    /// [`DEFAULT_MEMORY_BUDGET`], at least [`MIN_MEMORY_BUDGET`]), beside a
    /// fixed [`MEMORY_OVERHEAD_BYTES`] (allocator, thread stacks, WAL and
    /// table-builder buffers; listed there). Pages of mapped tables are
    /// the OS's page cache and do not count: there is no block cache, and
    /// index and filter blocks are read from the mapping too.
    ///
    /// The budget covers, as `Db::stats` shows them (`memory_bytes` is
    /// their sum, `memory_budget` this value):
    /// - **memtables** (`memtable_bytes`): the active one is frozen and
    ///   flushed to a sorted table once it holds a quarter of the budget;
    ///   and (`pinned_memtable_bytes`) flushed ones that an older view
    ///   still holds: a snapshot that has not read since the flush (each
    ///   snapshot operation moves it to the current view) or a scan or
    ///   cursor opened before it (until dropped). Backpressure does not
    ///   wait for those (no flush frees them);
    /// - **transaction buffers** (`txn_buffer_bytes`): the write sets of
    ///   live transactions (keys, values and 96 bytes per key), and while a
    ///   transaction commits, its WAL record twice (encoded, and copied into
    ///   the group-commit batch). One transaction may write at most one
    ///   memtable's worth, a quarter of the budget (counted as the memtable
    ///   holds it: keys, values and 80 bytes per key): a `put` or `delete`
    ///   past it returns
    ///   [`crate::Error::TxnTooLarge`] naming the size and the limit, and
    ///   changes nothing (the transaction may go on, commit what it holds,
    ///   or be dropped);
    /// - **table metadata** (`table_metadata_bytes`): what each open table
    ///   holds in memory (its properties and key range, its manifest record,
    ///   the bitmap of verified blocks), and what a table being built by a
    ///   flush or a compaction holds that grows with it (the filter's
    ///   hashes, the index block).
    ///
    /// Commits are slowed as the sum nears the budget and stopped when it
    /// reaches the budget less a reserve of 1/32 (what background work
    /// adds after a commit went through: a builder growing, a new table
    /// opened before what it replaces is released) until a flush frees a
    /// memtable (`Stats::write_stops`). So the sum stays within the budget
    /// whenever no commit is stopped and no snapshot or scan holds a view
    /// from before the last flush; transaction buffers and table
    /// metadata leave the memtables less room, not more memory.
    #[must_use]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// How far back [`crate::Db::begin_read_at`] can read (default
    /// [`DEFAULT_HISTORY_RETENTION`], 5 minutes): compaction keeps every
    /// version newer than `now - retention` (and, for each key, the newest
    /// one older), so a read as of any ts in that window is exact. Longer
    /// keeps more versions on disk; `Duration::ZERO` keeps only what live
    /// snapshots need (then `begin_read_at` accepts only the latest commit
    /// and later).
    #[must_use]
    pub fn history_retention(mut self, retention: Duration) -> Self {
        self.history_retention = retention;
        self
    }

    /// The longest a snapshot (a [`crate::ReadTxn`] or a [`crate::Txn`]'s)
    /// may pin old versions (default [`DEFAULT_MAX_SNAPSHOT_AGE`], 1 hour).
    /// Past it the snapshot stops holding back garbage collection, and its
    /// next read, scan or commit returns [`crate::Error::SnapshotTooOld`]; a
    /// commit already under way is not cut short. `Duration::MAX` never
    /// expires a snapshot. `Db::stats` names the oldest snapshot's age.
    #[must_use]
    pub fn max_snapshot_age(mut self, age: Duration) -> Self {
        self.max_snapshot_age = age;
        self
    }

    /// Test knob, hidden from the docs: the manifest file's size past which
    /// its writer rotates to a new file (default 4 MiB;
    /// `docs/format/manifest.md`, writer rule 5). Tests set it to a few
    /// KiB so that a short workload rotates, and its crash points can be
    /// enumerated. Not a tuning setting.
    #[doc(hidden)]
    #[must_use]
    pub fn manifest_rotate_bytes(mut self, bytes: u64) -> Self {
        self.manifest_rotate_bytes = bytes;
        self
    }

    /// Test knob, hidden from the docs: the most one transaction may write
    /// (default a quarter of the memory budget, decision 0024). A crash
    /// workload that needs big transactions under the smallest budget (for
    /// its level layout) sets it. Not a tuning setting: above the memtable
    /// share, a transaction can take memory past the budget.
    #[doc(hidden)]
    #[must_use]
    pub fn txn_limit_bytes(mut self, bytes: u64) -> Self {
        self.txn_limit_bytes = Some(bytes);
        self
    }

    /// The bytes at which the active memtable is frozen for flushing.
    pub(crate) fn memtable_limit(&self) -> u64 {
        self.memory_budget / MEMTABLE_SHARE_DIVISOR
    }

    /// The WAL segment size the writer uses: `wal_segment_bytes`, at most
    /// the memtable limit (and at least the smallest segment, 4 KiB).
    pub(crate) fn wal_segment_limit(&self) -> u64 {
        self.wal_segment_bytes.min(self.memtable_limit().max(4096))
    }

    /// The most one transaction may write, counted as a memtable holds it
    /// (key, value and per-entry overhead): a quarter of the budget, one
    /// memtable's worth, and never more than a WAL record can carry.
    pub(crate) fn txn_limit(&self) -> usize {
        let share = self
            .txn_limit_bytes
            .unwrap_or(self.memory_budget / MEMTABLE_SHARE_DIVISOR);
        usize::try_from(share).map_or(MAX_TXN_BYTES, |s| s.min(MAX_TXN_BYTES))
    }

    /// The memory budget, in bytes.
    pub(crate) fn budget(&self) -> u64 {
        self.memory_budget
    }

    /// The counted memory at which commits stop: the budget less the
    /// background reserve.
    pub(crate) fn commit_budget(&self) -> u64 {
        self.memory_budget - self.memory_budget / BACKGROUND_RESERVE_DIVISOR
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.commit_spin > MAX_COMMIT_SPIN {
            return Err(Error::InvalidArgument(format!(
                "commit_spin must be at most {MAX_COMMIT_SPIN:?}, got {:?}",
                self.commit_spin
            )));
        }
        if self.memory_budget < MIN_MEMORY_BUDGET {
            return Err(Error::InvalidArgument(format!(
                "memory_budget must be at least {MIN_MEMORY_BUDGET}, got {}",
                self.memory_budget
            )));
        }
        if self.wal_segment_bytes < 4096 {
            return Err(Error::InvalidArgument(format!(
                "wal_segment_bytes must be at least 4096, got {}",
                self.wal_segment_bytes
            )));
        }
        Ok(())
    }
}
