//! The commit path: what a transaction hands over when it commits, the one
//! "apply a committed batch" function, and [`Engine`], the shared state
//! that transactions and the `Db` handle both use.
//!
//! Dependency rule (`docs/design.md`): `db` and `txn` use this module; it
//! uses `mvcc`, `wal` and `memtable`, and neither `db` nor `txn`.
//!
//! Commit protocol ([`Engine::commit`]; details in `docs/design.md`, "The
//! commit path"):
//! 1. the write set is encoded into an unsealed WAL frame outside any lock;
//! 2. `mvcc::Oracle::commit`, under the commit-order lock: conflict check,
//!    commit ts, watermark registration, and `wal::GroupCommit::enqueue`
//!    (so WAL order = LSN order = commit-ts order);
//! 3. `wal::GroupCommit::wait`: a leader makes the batch durable (the local
//!    durable point; waiting for replicas will go right after it) and the
//!    apply stage hands it to [`Applier`]: [`apply_commit`] for each commit
//!    (also used by recovery), then `Oracle::applied_all` publishes the
//!    batch to readers through the applied watermark.

use std::path::PathBuf;
use std::sync::Arc;

use crate::backpressure::{Load, Pressure, Stalls, pressure};
use crate::budget::{Account, Charge};
use crate::error::{Error, Result};
use crate::memtable::{Memtable, Value};
use crate::mvcc::{Oracle, RecentWrites, WriteKeys};
use crate::store::Store;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, thread};
use crate::types::{Lsn, Ts};
use crate::view::{View, Views};
use crate::wal::{Apply, GroupCommit, Writer};
use crate::worker::Signal;
use crate::write_set::{WriteBuf, WriteSet};

/// What readers and the commit path share: time, visibility and the views
/// of the versions.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) oracle: Oracle,
    pub(crate) views: Views,
    /// Newest commit ts of keys flushed while above the GC watermark.
    pub(crate) recent: RecentWrites,
    /// The active memtable is frozen once it holds this many bytes.
    pub(crate) memtable_limit: u64,
    /// At most this many frozen memtables wait for flush; past it the
    /// active one keeps growing (the flusher is behind).
    pub(crate) max_frozen: usize,
    pub(crate) flush_signal: Arc<Signal>,
    /// Held by the apply stage while it applies a batch, and by `Db::flush`
    /// to freeze: a memtable is frozen only between whole commits.
    pub(crate) apply_lock: Mutex<()>,
}

impl Core {
    /// Freezes the active memtable if it is full (and the flusher keeps
    /// up), and wakes the flusher. Only the apply stage (or an open,
    /// before any commit) calls it: the only inserter, between batches.
    pub(crate) fn freeze_if_full(&self) {
        let view = self.views.current();
        if view.mem.approximate_bytes() >= self.memtable_limit && view.imm.len() < self.max_frozen {
            drop(view);
            self.views.freeze();
            self.flush_signal.notify();
        }
    }

    /// Freezes the active memtable if it holds anything, between batches,
    /// and wakes the flusher (`Db::flush`, and an open that found many WAL
    /// segments).
    pub(crate) fn freeze_now(&self) {
        {
            let _between_batches = self.apply_lock.lock();
            if self.views.current().mem.len() > 0 {
                self.views.freeze();
            }
        }
        self.flush_signal.notify();
    }
}

/// The conflict check's lookup, the newest commit ts of `key` it must
/// know: the memtables of `view`, then the recent-writes index (in that
/// order: see [`hand_off_flushed`]). `view` is taken under the
/// commit-order lock, once per commit: a view taken before a flush's
/// hand-off still lists the flushed memtable, and the index already holds
/// what the hand-off noted before installing any later view.
pub(crate) fn newest_ts(view: &View, recent: &RecentWrites, key: &[u8]) -> Option<Ts> {
    view.newest_in_memory(key).or_else(|| recent.newest(key))
}

/// A flush's hand-off (decision 0017, step 4): notes frozen memtable `m`'s
/// keys whose newest version is above `watermark` in `recent` *before* it
/// installs the view without `m` (and with its table), so a conflict
/// lookup ([`newest_ts`]) finds such a key in the view or in `recent` at
/// every instant. Loom model: `view::loom_tests`.
pub(crate) fn hand_off_flushed(
    views: &Views,
    recent: &RecentWrites,
    watermark: Ts,
    m: &Arc<Memtable>,
    newest: impl IntoIterator<Item = (Vec<u8>, Ts)>,
    table: Option<Arc<crate::sst::Table>>,
) {
    recent.prune(watermark);
    recent.note_all(newest);
    views.replace_flushed(m, table);
}

/// A committed transaction waiting in the WAL queue to be applied.
#[derive(Debug)]
pub(crate) struct CommitJob {
    pub(crate) ts: Ts,
    /// Its WAL record's position, so a memtable knows exactly which
    /// records it holds (what a flush covers).
    pub(crate) lsn: Lsn,
    pub(crate) writes: Arc<WriteSet>,
}

/// Applies the jobs of a durable WAL batch (run by the group commit's apply
/// stage), or abandons those of a failed one, and publishes them to readers.
#[derive(Debug)]
pub(crate) struct Applier(pub(crate) Arc<Core>);

impl Apply<CommitJob> for Applier {
    fn apply(&self, jobs: Vec<CommitJob>, durable: bool) {
        if durable {
            // The apply stage is the only writer of the active memtable, and
            // a view's memtable is replaced only between batches (flush
            // freezes it here), so one view serves the whole batch.
            let _between_batches = self.0.apply_lock.lock();
            let view = self.0.views.current();
            for job in &jobs {
                apply_commit(&view.mem, job.ts, job.lsn, job.writes.ops());
            }
            drop(view);
            self.0.freeze_if_full();
        }
        // Published together: the watermark lock is taken once per batch.
        self.0.oracle.applied_all(jobs.iter().map(|job| job.ts));
    }
}

/// The WAL queue as the database uses it.
pub(crate) type Wal = GroupCommit<Writer, CommitJob, Applier>;

/// Applies one committed transaction to the memtable. The single "apply a
/// commit" path: the commit path and WAL recovery (and, later, followers)
/// all use it. Values are `Value`s (the commit path's, kept in place in
/// their frame) or byte slices (recovery's, copied).
pub(crate) fn apply_commit<'a, V: Into<Value>>(
    memtable: &Memtable,
    commit_ts: Ts,
    lsn: Lsn,
    ops: impl Iterator<Item = (&'a [u8], Option<V>)> + Clone,
) {
    memtable.insert_commit(commit_ts, ops);
    memtable.applied_through(lsn);
}

/// An open database as transactions see it.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) core: Arc<Core>,
    pub(crate) wal: Wal,
    /// Files beside the WAL: the manifest and the tables.
    pub(crate) store: Store,
    pub(crate) closed: AtomicBool,
    /// Read-write transactions committed through this instance.
    pub(crate) commits: AtomicU64,
    /// The database directory, when it was opened read-only.
    pub(crate) read_only: Option<PathBuf>,
    /// What write backpressure cost committers.
    pub(crate) stalls: Stalls,
    /// `Options::memory_budget`.
    pub(crate) budget: u64,
    /// The counted memory at which commits stop (`Options::commit_budget`).
    pub(crate) commit_budget: u64,
    /// Bytes held by the write sets of live transactions (and, while they
    /// commit, their WAL records): `txn.rs` charges it.
    pub(crate) txn_memory: Account,
    /// The most one transaction's write set may hold (`Options::txn_limit`).
    pub(crate) txn_limit: usize,
}

/// A commit whose charge is at least this releases the conflict check's
/// reference to its write set before it returns (`Oracle::release_applied`),
/// so the memory goes when the account says it does. Smaller write sets
/// stay referenced until the next commit's check drops them, at most one
/// per thread that committed since: part of `MEMORY_OVERHEAD_BYTES`.
const RELEASE_AT_RETURN_BYTES: u64 = 64 * 1024;

/// What the memory budget counts now (`Db::stats`, backpressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryUse {
    /// The current view's memtables (active and frozen).
    pub(crate) memtables: u64,
    /// Memtables flushed to tables that only older views still hold
    /// (decision 0032).
    pub(crate) pinned_memtables: u64,
    pub(crate) txn_buffers: u64,
    pub(crate) table_metadata: u64,
}

impl MemoryUse {
    /// Everything counted (`Stats::memory_bytes`).
    pub(crate) fn total(&self) -> u64 {
        self.governed() + self.pinned_memtables
    }

    /// What backpressure weighs: all but the pinned memtables, which no
    /// flush or compaction frees (their holders' next operation or end
    /// does), so a commit waiting for them could wait for a snapshot its
    /// own thread holds (decision 0024, "Rejected").
    pub(crate) fn governed(&self) -> u64 {
        self.memtables + self.txn_buffers + self.table_metadata
    }
}

impl Engine {
    /// `ReadOnly` if the database was opened for reads only.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match &self.read_only {
            Some(path) => Err(Error::ReadOnly { path: path.clone() }),
            None => Ok(()),
        }
    }

    /// `Closed` after `close`, `Poisoned` after a failed write or sync.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.wal.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// No frozen memtable waits and no flush is in progress (its WAL
    /// segment deletions included), or the database is poisoned: what
    /// `Db::flush` waits for.
    pub(crate) fn flushes_done(&self) -> bool {
        self.wal.is_poisoned()
            || (self.core.views.current().imm.is_empty() && !self.core.flush_signal.is_busy())
    }

    /// What the memory budget counts now, with `view` the current view
    /// and `pinned_memtables` read with it (`Views::current_and_pinned`).
    pub(crate) fn memory_use(&self, view: &View, pinned_memtables: u64) -> MemoryUse {
        MemoryUse {
            memtables: view.memtable_usage().0,
            pinned_memtables,
            txn_buffers: self.txn_memory.bytes(),
            table_metadata: self.store.table_memory.bytes(),
        }
    }

    /// The load backpressure looks at, from the current view.
    fn load(&self) -> Load {
        let view = self.core.views.current();
        Load {
            frozen: view.imm.len(),
            max_frozen: self.core.max_frozen,
            mem_bytes: view.mem.approximate_bytes(),
            memtable_limit: self.core.memtable_limit,
            l0_tables: view.levels.first().map_or(0, Vec::len),
            memory: self.memory_use(&view, 0).governed(),
            budget: self.commit_budget,
        }
    }

    /// Write backpressure (`backpressure.rs`): sleeps a little when the
    /// background work falls behind, and waits for a flush or compaction
    /// step at a hard limit. `Poisoned` if the background work failed
    /// meanwhile, `Closed` if the database closed.
    fn throttle(&self) -> Result<()> {
        match pressure(self.load()) {
            Pressure::None => return Ok(()),
            Pressure::Slow(delay) => {
                let _stall = self.stalls.begin(false);
                thread::sleep(delay);
                return Ok(());
            }
            Pressure::Freeze | Pressure::StopForFlush | Pressure::StopForCompaction => {}
        }
        let _stall = self.stalls.begin(true);
        loop {
            // Which worker's step can clear it (it may change while waiting).
            let now = pressure(self.load());
            let signal = match now {
                Pressure::Freeze => {
                    // Over the budget with nothing frozen: freeze the
                    // active memtable so the flusher can free it, then
                    // wait for that flush like any other.
                    self.core.freeze_now();
                    continue;
                }
                Pressure::StopForFlush => &self.core.flush_signal,
                Pressure::StopForCompaction => &self.store.compaction.signal,
                _ => return Ok(()),
            };
            let cleared = || self.wal.is_poisoned() || pressure(self.load()) != now;
            if !signal.wait_until(cleared) {
                return Err(Error::Closed);
            }
            self.check_open()?;
        }
    }

    /// Commits `writes` read at `read_ts`; returns once the commit is
    /// durable and visible. See the module docs for the steps. `charge`
    /// holds the transaction account's bytes for the write set and its WAL
    /// record until the commit returns (whatever it returns).
    pub(crate) fn commit(&self, read_ts: Ts, writes: WriteBuf, charge: Charge<'_>) -> Result<Ts> {
        // Poisoning is checked by the WAL enqueue under its own lock; only the
        // cheap closed flag is checked here, before any encoding work.
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.check_writable()?;
        self.throttle()?;
        let (frame, set) = writes.into_commit()?;
        let set = Arc::new(set);
        let keys: Arc<dyn WriteKeys> = set.clone();
        // One view per commit, taken at its first lookup (under the
        // commit-order lock), not one per written key.
        let view = std::cell::OnceCell::new();
        let newest = |key: &[u8]| {
            let view = view.get_or_init(|| self.core.views.current());
            newest_ts(view, &self.core.recent, key)
        };
        let (ts, lsn) = self
            .core
            .oracle
            .commit(read_ts, &keys, &newest, |ts| {
                self.wal.enqueue(&frame, ts, |lsn| CommitJob {
                    ts,
                    lsn,
                    writes: set.clone(),
                })
            })
            // The conflict check runs before the enqueue that would refuse a
            // poisoned database; retrying could never succeed there, so a
            // conflict found on a poisoned database is reported as poison.
            .map_err(|e| {
                if e.is_retryable() && self.wal.is_poisoned() {
                    Error::Poisoned
                } else {
                    e
                }
            })?;
        // Not held while the commit waits for its sync: a held view keeps
        // compacted-away tables' files.
        drop(view);
        drop(frame);
        // The batch is durable, applied and published before `wait` returns
        // `Ok`; an error means its outcome is unknown (see `wal::group_commit`).
        self.wal.wait(lsn, false)?;
        self.core.oracle.wait_visible(ts);
        self.commits.fetch_add(1, Ordering::Relaxed);
        if charge.bytes() >= RELEASE_AT_RETURN_BYTES {
            // The apply stage dropped its reference; the conflict check's
            // goes now, so the write set is freed with the charge.
            drop((keys, set));
            self.core.oracle.release_applied();
        }
        drop(charge);
        Ok(ts)
    }
}
