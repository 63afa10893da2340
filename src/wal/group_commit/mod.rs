//! Group commit: concurrent committers share one write and one `fdatasync`,
//! a leader applies the whole batch, and one batch is applied while the next
//! is written and synced.
//!
//! Protocol (checked by `loom_tests.rs`; see `docs/concurrency.md`):
//! 1. `enqueue` is called with the commit-order lock held (in `mvcc::Oracle`),
//!    so frames enter `pending` in commit-ts order and get consecutive LSNs:
//!    **WAL order = LSN order = commit-ts order.** Each frame comes with a
//!    job (what to apply once the record is durable).
//! 2. A waiter whose record is still pending (or not covered by a sync, if it
//!    needs one) becomes the leader of the next batch when nobody holds the
//!    *write stage* (`syncing`) and fewer than [`MAX_IN_FLIGHT`] batches are
//!    taken but unpublished. It takes *all* of `pending` and its jobs,
//!    releases the state lock, writes the batch (prefixed by a SyncMark
//!    saying what was durable before it) and, in `Sync` mode, syncs once.
//! 3. **One write stage at a time:** `syncing` is held from taking a batch
//!    until its write (and sync) returned, so batches reach the file in the
//!    order they were taken, and batch `b + 1` is written only after batch
//!    `b`'s sync returned (the SyncMark rule of the format needs no change).
//! 4. A written (and synced) batch goes to the `ready` queue, in batch
//!    order. The *apply stage* (`applying`) is held by at most one waiter at
//!    a time; it applies queued batches in order (memtable, applied
//!    watermark) and only then publishes each (`written`/`synced`):
//!    **batches are applied and published in LSN order, and a waiter that
//!    returns `Ok` finds its commit applied.** Every queued batch gets an
//!    applier: the active one drains the queue before letting go, else the
//!    leader applies what it queued before it returns.
//! 5. While commits are pending, a leader keeps the write stage for up to
//!    [`MAX_CHAIN`] more batches (the disk does not idle while a new leader
//!    wakes up) and wakes one waiter of the batch it just queued to apply it.
//!    Otherwise it releases the write stage and wakes one pending waiter to
//!    lead. Applying batch `b` thus overlaps writing and syncing `b + 1`;
//!    that overlap is the point of the pipeline.
//! 6. Each waiter returns exactly once. **Exact failure ranges:** a waiter
//!    gets `Io` only if its outcome is really unknown, `Poisoned` only if
//!    its record was never taken (so never written), and `Ok` whenever what
//!    it asked for happened and its batch is applied and published, even if
//!    a later batch or a `sync_all` failed meanwhile. What a waiter asks for:
//!    a Buffered commit, its record written (the Buffered contract
//!    acknowledges on write); a Sync commit or a `sync_all`, its record
//!    synced. When batch `b` (records `first..=last`, taken when everything
//!    up to `durable_before` was synced) fails, the failure records: waiters
//!    above `last` get `Poisoned`; a waiter asking for a sync gets `Io` from
//!    `durable_before + 1`; a Buffered waiter gets `Io` from `first` if the
//!    write failed, and from nowhere if only the sync failed (in Buffered
//!    mode a batch whose write returned is applied and published as written
//!    although its sync failed; in Sync mode it is abandoned). Below those
//!    bounds a waiter's record is written (synced) in a batch that will
//!    still be published, and it waits for that. A `seal` failure fails no
//!    waiter (everything was synced before it). After a failure nothing
//!    more is written (sticky), every enqueue is refused, and the applier
//!    of the failed batch hands every job not applied (its own, unless
//!    published as written, and all pending ones) to `Apply` as abandoned,
//!    exactly once.
//! 7. Wake-ups are per batch: waiters sleep on the condvar of the batch that
//!    will cover them (slot `batch % SLOTS`; at most `MAX_IN_FLIGHT + 1`
//!    batch numbers are live, fewer than `SLOTS`). Publishing batch `b`
//!    wakes `b`'s waiters; releasing the write stage or publishing wakes one
//!    pending waiter, to lead; nobody else wakes for nothing.
//! 8. Before it sleeps, a waiter spins for a bounded time, yielding the CPU
//!    each round (a sleeping thread on an idle vCPU takes tens of
//!    microseconds to wake; decision 0009). It watches two things outside
//!    the lock: the published LSNs (mirrored in `written_at`/`synced_at`,
//!    stored under the lock after the batch is applied, so `Acquire` loads
//!    see the apply) and `wakes`, bumped under the lock with every wake-up
//!    that is not a publication. It reads `wakes` while holding the lock
//!    after finding it must wait, so any later state change it must react to
//!    bumps `wakes` after that read: **a spinning waiter misses no wake-up**.
//!    When it is settled, it returns; when `wakes` moved, it re-evaluates
//!    under the lock; when its budget is spent, it sleeps as in 7.
//! 9. **A panic never hangs the queue.** Both stages (and `seal`'s write)
//!    run inside `guard_stage`, which catches a panic (in the sink, the
//!    `Apply` impl, or the bookkeeping: an allocation failure turned into a
//!    panic), poisons the queue with a failure as in 6 and wakes everybody,
//!    then resumes the panic on the thread that hit it (its caller sees the
//!    panic, not an error). The stage's flag stays set: nothing more is
//!    written or, after an apply panic, applied. Write-stage panic: the
//!    batch being written is unknown (`Io`), batches queued before it are
//!    still applied and published (their waiters get `Ok`). Apply-stage
//!    panic: every taken, unpublished record is unknown (`Io`); the jobs of
//!    the batch being applied may be half in the memtable, so they are
//!    never marked done and `done_until` stays below them: reads keep
//!    working at the last published snapshot. Pending records get
//!    `Poisoned` either way. The poisoning runs after the unwind, with no
//!    lock held by the panicking frame; a drop guard would run it during
//!    the unwind, which loom cannot model (its locks poison across model
//!    threads then).
//! 10. **Background sync** (Buffered queues, `background.rs`): beside the
//!     write stage, `sync_written` syncs what was written through the
//!     sink's second handle; `durable` only ever names records a returned
//!     sync covered, so later SyncMarks stay true. It takes `sink` only to
//!     read the target with the handle, and `state` before and after the
//!     sync, never both at once, and holds no lock during the sync.
//!
//! Lock order: the commit-order lock (`mvcc`) before `state`; `sink` is only
//! taken by the leader holding the write stage, never while holding `state`;
//! `Apply` is called without `state`, except for abandoned jobs after a
//! failure.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{CommitHeader, SYNC_MARK_FRAME_BYTES, UnsealedCommit, seal_commit};
use crate::error::{Error, Result};
use crate::options::DEFAULT_COMMIT_SPIN;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard, thread};
use crate::types::{Lsn, Ts};

mod background;

/// Longest a leader waits for more commits before taking a synced batch.
const GATHER_MAX_NANOS: u64 = 1_000_000;
/// A spinning gather ends early when no commit arrived for this long
/// (decision 0009: 10 and 20 us measured alike).
const GATHER_STALL: Duration = Duration::from_micros(15);

/// Where the leader writes batches: the segment writer, or a fake in models.
pub(crate) trait LogSink: Send {
    /// Appends one batch. Its first `SYNC_MARK_FRAME_BYTES` are a slot the
    /// sink fills with a SyncMark for `synced` (sealed with the salt of the
    /// segment the batch lands in); `first_lsn`/`prev_crc` describe the
    /// batch's first commit record (used when the batch opens a new segment).
    fn write_batch(
        &mut self,
        batch: &mut [u8],
        synced: Lsn,
        first_lsn: Lsn,
        prev_crc: u32,
    ) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Gives back space reserved after the last batch (the segment writer's
    /// preallocated zeros), before a final sync; nothing more will be written.
    fn trim(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// A second handle on the file being written, which syncs it without the
    /// sink lock (the background sync of a Buffered queue); `None` if nothing
    /// was written yet, or the sink has no such handle.
    fn sync_handle(&mut self) -> Option<Arc<dyn SyncHandle>> {
        None
    }
}

/// Syncs a sink's current file from another thread (see
/// [`LogSink::sync_handle`]): everything written to it before the call is
/// durable when it returns `Ok`.
pub(crate) trait SyncHandle: Send + Sync + std::fmt::Debug {
    /// `fdatasync` through this handle.
    fn sync(&self) -> io::Result<()>;
}

/// What the leader does with a batch's jobs once the batch is durable (or
/// failed): the database applies commits to the memtable and publishes them.
pub(crate) trait Apply<J>: Send + Sync {
    /// `jobs` in LSN order; `durable` is false when they will never be
    /// acknowledged (their batch failed, or an earlier one did).
    fn apply(&self, jobs: Vec<J>, durable: bool);
}

/// Counters published by the group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) bytes: u64,
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
    pub(crate) synced_commits: u64,
    /// Time spent in successful syncs of batches, in nanoseconds.
    pub(crate) sync_nanos: u64,
    /// Background syncs that returned (`sync_written`).
    pub(crate) background_syncs: u64,
    /// Every record up to here is known durable (a sync returned).
    pub(crate) durable: Lsn,
}

/// The sticky failure (protocol step 6): which waiters get `Io` (their
/// outcome is unknown) and which get `Poisoned` (their record was never
/// taken); a waiter below both ranges is settled by a batch that will still
/// be published, and waits for it.
#[derive(Debug)]
struct Failure {
    /// A waiter that needs its record written (a Buffered commit) fails from
    /// here: below, its record's write returned.
    written_from: Lsn,
    /// A waiter that needs its record synced fails from here: below, a sync
    /// covering its record returned.
    synced_from: Lsn,
    /// The last record taken before the failure; later ones get `Poisoned`.
    last: Lsn,
    kind: io::ErrorKind,
    message: String,
}

/// What the waiters of a batch whose write or apply stage panicked get.
const PANIC_MESSAGE: &str =
    "the commit path panicked; the outcome is unknown until the database is reopened";

impl Failure {
    /// The error for a waiter of record `lsn`, or `None` if its batch will
    /// still be published (it waits for that).
    fn error_for(&self, lsn: Lsn, need_sync: bool) -> Option<Error> {
        if lsn > self.last {
            return Some(Error::Poisoned);
        }
        let from = if need_sync {
            self.synced_from
        } else {
            self.written_from
        };
        (lsn >= from).then(|| Error::Io(io::Error::new(self.kind, self.message.clone())))
    }
}

/// Batches taken but not yet published, at most: one being applied while the
/// next is written and synced.
const MAX_IN_FLIGHT: u64 = 2;
/// Wake slots; live batch numbers (in flight, plus the pending one) span at
/// most `MAX_IN_FLIGHT + 1 < SLOTS`.
const SLOTS: usize = 4;

/// Batches a leader may write in a row while more commits are pending,
/// beyond its own; bounds how long its own caller waits.
const MAX_CHAIN: u32 = 4;

/// A waiter spins for this many average syncs (within the limit): long
/// enough to see the batch after its own published.
const SPIN_SYNCS: u64 = 4;
/// Spin at least this long when the limit allows it (a buffered wait, or
/// before any sync was timed).
const SPIN_MIN: Duration = Duration::from_micros(100);
/// Under loom (no time), a spin phase is this many rounds.
const LOOM_SPIN_ROUNDS: u32 = 1;

/// How a spin phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spin {
    /// The waiter's record is published.
    Settled,
    /// Something else changed: re-evaluate under the lock.
    Woken,
    /// The budget is spent: sleep.
    Expired,
}

/// A batch out of the write stage, waiting for the apply stage.
#[derive(Debug)]
struct Ready<J> {
    no: u64,
    jobs: Vec<J>,
    last: Lsn,
    /// Its records are acknowledged as written: its jobs are applied and
    /// `written` is published (else its jobs are abandoned).
    written: bool,
    /// A sync was asked for and returned: `synced` is published.
    synced: bool,
    bytes: u64,
    commits: usize,
    /// Its write or sync failed: nothing more will be written, and the
    /// pending jobs are abandoned after it.
    failed: bool,
}

/// A batch taken by a leader, on its way through the write stage.
#[derive(Debug)]
struct Taken<J> {
    no: u64,
    batch: Vec<u8>,
    jobs: Vec<J>,
    first: Lsn,
    prev_crc: u32,
    last: Lsn,
    /// What was durable when it was taken (the SyncMark it carries).
    durable_before: Lsn,
    need_sync: bool,
}

/// Which stage [`GroupCommit::guard_stage`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Write,
    Apply,
}

/// A batch taken but not yet published.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    no: u64,
    last: Lsn,
    synced: bool,
}

#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags (stages held, closed, gathering) under one lock"
)]
struct State<J> {
    pending: Vec<u8>,
    pending_jobs: Vec<J>,
    pending_first: Lsn,
    pending_prev_crc: u32,
    last_lsn: Lsn,
    last_crc: u32,
    /// Published: every record up to here is written and applied.
    written: Lsn,
    /// Published: every record up to here is synced and applied.
    synced: Lsn,
    /// Known on stable storage (a sync returned), maybe not yet published.
    durable: Lsn,
    /// A leader holds the write stage (taking, writing and syncing a batch).
    syncing: bool,
    /// Batches taken so far (numbered from 1).
    batches: u64,
    /// Batches published so far; always a prefix of the taken ones.
    published: u64,
    /// The last LSN of any taken batch.
    taken: Lsn,
    /// The last LSN a taken synced batch covers.
    sync_covered: Lsn,
    /// Taken, unpublished batches, oldest first (at most `MAX_IN_FLIGHT`).
    inflight: Vec<InFlight>,
    /// Commits in taken, unpublished batches.
    inflight_commits: usize,
    /// Written (and synced, if asked) batches waiting to be applied, in order.
    ready: VecDeque<Ready<J>>,
    /// A waiter holds the apply stage (applying `ready` batches).
    applying: bool,
    /// Set by `seal`: later enqueues are refused with `Error::Closed`.
    closed: bool,
    failure: Option<Failure>,
    counters: Counters,
    /// A leader is waiting for more commits before it takes the batch.
    gathering: bool,
    /// Moving average of a sync's duration, in nanoseconds.
    sync_nanos: u64,
}

impl<J> State<J> {
    /// Whether a waiter may take the next batch now.
    fn can_lead(&self) -> bool {
        !self.syncing && self.failure.is_none() && self.batches - self.published < MAX_IN_FLIGHT
    }

    /// The batch whose publication will settle a waiter for `lsn`: the first
    /// in-flight batch that covers it, else the pending one.
    fn covering_batch(&self, lsn: Lsn, need_sync: bool) -> u64 {
        self.inflight
            .iter()
            .find(|b| b.last >= lsn && (b.synced || !need_sync))
            .map_or(self.batches + 1, |b| b.no)
    }
}

fn fresh_pending() -> Vec<u8> {
    vec![0; SYNC_MARK_FRAME_BYTES]
}

fn slot(batch: u64) -> usize {
    // Lossless: the remainder is below SLOTS.
    (batch % SLOTS as u64) as usize
}

/// The commit queue in front of a [`LogSink`].
#[derive(Debug)]
pub(crate) struct GroupCommit<S, J, A> {
    state: Mutex<State<J>>,
    /// Waiters settled by batch `n` sleep on `batch_done[slot(n)]`.
    batch_done: [Condvar; SLOTS],
    /// Wakes a gathering leader once every open writer has enqueued.
    arrivals: Condvar,
    /// Open read-write transactions that have written: the commits a leader
    /// may wait for.
    open_writers: AtomicUsize,
    sink: Mutex<S>,
    applier: A,
    epoch: u64,
    always_sync: bool,
    /// Mirror of `State::written` for spinning waiters.
    written_at: AtomicU64,
    /// Mirror of `State::synced` for spinning waiters.
    synced_at: AtomicU64,
    /// Bumped under the lock with every wake-up that is not a publication.
    wakes: AtomicU64,
    /// Bumped with every `arrivals` notification, for a spinning gather.
    arrived: AtomicU64,
    /// Bumped by every `enqueue`, for a spinning gather's stall rule.
    enqueues: AtomicU64,
    /// The last record written through the sink (stored with the sink lock
    /// held, after the write returned), for the background sync's target.
    sink_written: AtomicU64,
    /// Longest spin before sleeping; zero never spins.
    spin_limit: Duration,
}

impl<S: LogSink, J, A: Apply<J>> GroupCommit<S, J, A> {
    /// A queue continuing after `last_lsn` (whose frame CRC is `last_crc`).
    /// With `always_sync`, every batch is synced (`Durability::Sync`).
    pub(crate) fn new(
        sink: S,
        applier: A,
        epoch: u64,
        last_lsn: Lsn,
        last_crc: u32,
        always_sync: bool,
    ) -> Self {
        let state = State {
            pending: fresh_pending(),
            pending_jobs: Vec::new(),
            pending_first: Lsn::ZERO,
            pending_prev_crc: 0,
            last_lsn,
            last_crc,
            written: last_lsn,
            synced: last_lsn,
            durable: last_lsn,
            syncing: false,
            batches: 0,
            published: 0,
            taken: last_lsn,
            sync_covered: last_lsn,
            inflight: Vec::with_capacity(MAX_IN_FLIGHT as usize),
            inflight_commits: 0,
            ready: VecDeque::new(),
            applying: false,
            closed: false,
            failure: None,
            counters: Counters::default(),
            gathering: false,
            sync_nanos: 0,
        };
        Self {
            state: Mutex::new(state),
            batch_done: std::array::from_fn(|_| Condvar::new()),
            arrivals: Condvar::new(),
            open_writers: AtomicUsize::new(0),
            sink: Mutex::new(sink),
            applier,
            epoch,
            always_sync,
            written_at: AtomicU64::new(last_lsn.0),
            synced_at: AtomicU64::new(last_lsn.0),
            wakes: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            enqueues: AtomicU64::new(0),
            sink_written: AtomicU64::new(last_lsn.0),
            spin_limit: DEFAULT_COMMIT_SPIN,
        }
    }

    /// Sets the longest a waiter spins before it sleeps (zero: never spins).
    #[must_use]
    pub(crate) fn with_spin_limit(mut self, limit: Duration) -> Self {
        self.spin_limit = limit;
        self
    }

    /// Seals `frame` with the next LSN and appends it, with `job`, to the
    /// pending batch.
    ///
    /// # Preconditions
    /// Requires the commit-order lock held, and `commit_ts` above every
    /// earlier enqueued commit's.
    pub(crate) fn enqueue(&self, frame: &mut UnsealedCommit, commit_ts: Ts, job: J) -> Result<Lsn> {
        let mut st = self.state.lock();
        if st.failure.is_some() {
            return Err(Error::Poisoned);
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let lsn = st.last_lsn.next();
        if st.pending_jobs.is_empty() {
            st.pending_first = lsn;
            st.pending_prev_crc = st.last_crc;
        }
        let header = CommitHeader {
            lsn,
            commit_ts,
            epoch: self.epoch,
            prev_crc: st.last_crc,
        };
        let st = &mut *st;
        st.last_crc = seal_commit(frame, &header, &mut st.pending);
        st.last_lsn = lsn;
        st.pending_jobs.push(job);
        self.enqueues.fetch_add(1, Ordering::Relaxed);
        if st.gathering
            && st.pending_jobs.len() + st.inflight_commits
                >= self.open_writers.load(Ordering::Relaxed)
        {
            self.arrived.fetch_add(1, Ordering::Release);
            self.arrivals.notify_all();
        }
        Ok(lsn)
    }

    /// A read-write transaction made its first write: a commit the next
    /// leader may wait for.
    pub(crate) fn writer_opened(&self) {
        self.open_writers.fetch_add(1, Ordering::Relaxed);
    }

    /// A counted transaction committed, failed or was dropped.
    pub(crate) fn writer_closed(&self) {
        self.open_writers.fetch_sub(1, Ordering::Relaxed);
    }

    /// The transactions counted by `writer_opened` and not yet closed.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn open_writers(&self) -> usize {
        self.open_writers.load(Ordering::Relaxed)
    }

    /// Blocks until record `lsn` is written (and synced, if `need_sync` or
    /// the queue always syncs) and its job applied, leading a batch when it
    /// is its turn.
    pub(crate) fn wait(&self, lsn: Lsn, need_sync: bool) -> Result<()> {
        let need_sync = need_sync || self.always_sync;
        let mut st = self.state.lock();
        // Set when the first spin starts; `None` again never: one budget per wait.
        let mut spin_until: Option<Instant> = None;
        let mut may_spin = !self.spin_limit.is_zero();
        loop {
            if st.written >= lsn && (!need_sync || st.synced >= lsn) {
                return Ok(());
            }
            if !st.applying && !st.ready.is_empty() {
                st = self.apply_ready(st);
                continue;
            }
            if let Some(e) = st
                .failure
                .as_ref()
                .and_then(|f| f.error_for(lsn, need_sync))
            {
                return Err(e);
            }
            let must_lead = lsn > st.taken || (need_sync && lsn > st.sync_covered);
            if must_lead && st.can_lead() {
                st = self.lead(st, need_sync);
            } else if may_spin {
                let deadline = *spin_until.get_or_insert_with(|| {
                    let now = Instant::now();
                    now.checked_add(self.spin_budget(&st)).unwrap_or(now)
                });
                let seen = self.wakes.load(Ordering::Acquire);
                drop(st);
                match self.spin(lsn, need_sync, seen, deadline) {
                    Spin::Settled => return Ok(()),
                    Spin::Woken => {}
                    Spin::Expired => may_spin = false,
                }
                st = self.state.lock();
            } else {
                let batch = st.covering_batch(lsn, need_sync);
                st = self.batch_done[slot(batch)].wait(st);
            }
        }
    }

    /// How long a waiter spins before sleeping: a few average syncs, within
    /// `[SPIN_MIN, spin_limit]` (the limit wins).
    fn spin_budget(&self, st: &State<J>) -> Duration {
        let syncs = Duration::from_nanos(st.sync_nanos.saturating_mul(SPIN_SYNCS));
        syncs.max(SPIN_MIN).min(self.spin_limit)
    }

    /// Spins, yielding the CPU each round, until the record `lsn` is
    /// published, `wakes` differs from `seen`, or `deadline` (see protocol
    /// step 8). Called without the state lock.
    fn spin(&self, lsn: Lsn, need_sync: bool, seen: u64, deadline: Instant) -> Spin {
        let mut rounds = 0;
        loop {
            if self.written_at.load(Ordering::Acquire) >= lsn.0
                && (!need_sync || self.synced_at.load(Ordering::Acquire) >= lsn.0)
            {
                return Spin::Settled;
            }
            if self.wakes.load(Ordering::Acquire) != seen {
                return Spin::Woken;
            }
            let expired = if cfg!(loom) {
                rounds >= LOOM_SPIN_ROUNDS
            } else {
                Instant::now() >= deadline
            };
            if expired {
                return Spin::Expired;
            }
            rounds += 1;
            thread::yield_now();
        }
    }

    /// Writes and syncs everything enqueued so far.
    pub(crate) fn sync_all(&self) -> Result<()> {
        let last = self.state.lock().last_lsn;
        self.wait(last, true)
    }

    /// Refuses further enqueues, syncs everything, then writes and syncs a
    /// final SyncMark covering it, so that recovery can tell damage anywhere
    /// in this log from a torn tail.
    pub(crate) fn seal(&self) -> Result<()> {
        self.state.lock().closed = true;
        self.sync_all()?;
        let (synced, prev_crc) = {
            let mut st = self.settle()?;
            // Closed and fully synced: nothing is pending, so `last_crc` is
            // the chain value a new segment needs if this write rolls over.
            st.syncing = true;
            (st.synced, st.last_crc)
        };
        let result = self.guard_stage(Stage::Write, &Cell::new(None), || {
            let mut sink = self.sink.lock();
            sink.write_batch(
                &mut [0; SYNC_MARK_FRAME_BYTES],
                synced,
                synced.next(),
                prev_crc,
            )
            // After the mark (which may roll to a new, preallocated segment)
            // and before the sync that makes the cut durable.
            .and_then(|()| sink.trim())
            .and_then(|()| sink.sync())
        });
        let mut st = self.state.lock();
        st.syncing = false;
        match result {
            Ok(()) => {
                self.wake_all();
                Ok(())
            }
            Err(e) => {
                let f = Failure {
                    written_from: synced.next(),
                    synced_from: synced.next(),
                    last: synced,
                    kind: e.kind(),
                    message: e.to_string(),
                };
                self.fail(&mut st, f);
                Err(Error::Io(e))
            }
        }
    }

    /// Waits until no batch is taken or being written (for `seal`, after its
    /// `sync_all`); `Poisoned` once a failure is set, since a stage left by
    /// a panic is never released.
    fn settle(&self) -> Result<MutexGuard<'_, State<J>>> {
        let mut st = self.state.lock();
        while st.syncing || st.published < st.batches {
            if st.failure.is_some() {
                return Err(Error::Poisoned);
            }
            // Only a batch taken for someone else's sync request can remain.
            if !st.applying && !st.ready.is_empty() {
                st = self.apply_ready(st);
                continue;
            }
            // The newest taken batch, or, if a leader is still gathering
            // (nothing taken yet), the one it is about to take.
            let batch = if st.published < st.batches {
                st.batches
            } else {
                st.batches + 1
            };
            st = self.batch_done[slot(batch)].wait(st);
        }
        if st.failure.is_some() {
            return Err(Error::Poisoned);
        }
        Ok(st)
    }

    /// Whether an earlier write or sync failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.state.lock().failure.is_some()
    }

    /// The counters so far.
    pub(crate) fn counters(&self) -> Counters {
        let st = self.state.lock();
        Counters {
            durable: st.durable,
            ..st.counters
        }
    }

    /// The last LSN handed out.
    pub(crate) fn last_lsn(&self) -> Lsn {
        self.state.lock().last_lsn
    }

    /// Wakes one pending waiter to lead the next batch, if one may.
    fn wake_next_leader(&self, st: &State<J>) {
        if st.can_lead() {
            self.bump_wakes();
            self.batch_done[slot(st.batches + 1)].notify_one();
        }
    }

    /// Before a synced batch is taken, waits briefly for the other open
    /// read-write transactions to enqueue, so they share this sync instead of
    /// the next one. The wait ends when every open writer is pending or in
    /// flight, and after half a typical sync at most, so a lone committer
    /// never waits and an idle open transaction costs a bounded delay. It
    /// spins like a waiter (protocol step 8) unless spinning is off, and a
    /// spinning gather also ends after [`GATHER_STALL`] without an arrival.
    fn gather<'a>(&'a self, mut st: MutexGuard<'a, State<J>>) -> MutexGuard<'a, State<J>> {
        if cfg!(loom) {
            return st;
        }
        let budget = Duration::from_nanos((st.sync_nanos / 2).min(GATHER_MAX_NANOS));
        let deadline = Instant::now() + budget;
        while st.pending_jobs.len() + st.inflight_commits
            < self.open_writers.load(Ordering::Relaxed)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st.gathering = true;
            if self.spin_limit.is_zero() {
                st = self.arrivals.wait_timeout(st, left);
            } else {
                let seen = self.arrived.load(Ordering::Acquire);
                drop(st);
                let stalled = self.spin_gather(seen, deadline);
                st = self.state.lock();
                if stalled {
                    st.gathering = false;
                    break;
                }
            }
            st.gathering = false;
        }
        st
    }

    /// A gathering leader's spin (as waiters spin, protocol step 8): until
    /// `arrived` moves past `seen` (`enqueue` bumps it under the lock where
    /// it notifies `arrivals`) or `deadline`, both `false`; or until no
    /// commit was enqueued for [`GATHER_STALL`], `true`: the committers
    /// still missing are not about to come.
    fn spin_gather(&self, seen: u64, deadline: Instant) -> bool {
        let mut enqueues = self.enqueues.load(Ordering::Relaxed);
        let mut last_arrival = Instant::now();
        while self.arrived.load(Ordering::Acquire) == seen {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let seen_enqueues = self.enqueues.load(Ordering::Relaxed);
            if seen_enqueues != enqueues {
                enqueues = seen_enqueues;
                last_arrival = now;
            } else if now.duration_since(last_arrival) >= GATHER_STALL {
                return true;
            }
            thread::yield_now();
        }
        false
    }

    /// Holds the write stage: takes the pending batch, writes (and syncs) it,
    /// and queues it for the apply stage. While more commits are pending it
    /// keeps the write stage for up to [`MAX_CHAIN`] more batches, waking a
    /// waiter of the batch just synced to apply it, so the disk does not idle
    /// while the next leader wakes up. Takes and returns the state guard.
    fn lead<'a>(
        &'a self,
        st: MutexGuard<'a, State<J>>,
        need_sync: bool,
    ) -> MutexGuard<'a, State<J>> {
        let batch = Cell::new(None);
        let mut st = self.guard_stage(Stage::Write, &batch, || {
            self.write_batches(st, need_sync, &batch)
        });
        // Every queued batch needs an applier: an active one takes what
        // was queued before it lets go of the apply stage; otherwise the
        // leader applies. (Its own commit may already be published by a
        // delegate, so its caller would not come back for the rest.)
        if !st.applying {
            st = self.apply_ready(st);
        }
        st
    }

    /// The write stage of [`Self::lead`], until it releases it. `batch`
    /// holds the first and the durable LSN of the batch being written
    /// (`None` between batches), for [`Self::poison_after_panic`].
    fn write_batches<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<J>>,
        need_sync: bool,
        batch: &Cell<Option<(Lsn, Lsn)>>,
    ) -> MutexGuard<'a, State<J>> {
        let mut chained = 0;
        loop {
            st.syncing = true;
            // Gather into a busy pipeline too: while this leader waits, the
            // batch it just synced is applied and its committers come back
            // with their next commits, which join this batch instead of
            // waiting a whole sync for the next one (decision 0009: 9.6 vs
            // 6.5 commits per sync at 16 threads, same throughput).
            if need_sync {
                st = self.gather(st);
            }
            let mut taken = Self::take(&mut st, need_sync);
            batch.set(Some((taken.first, taken.durable_before)));
            drop(st);
            let outcome = self.write_taken(&mut taken);
            st = self.state.lock();
            let no = taken.no;
            let ok = self.queue_written(&mut st, taken, outcome);
            batch.set(None);
            if ok
                && chained < MAX_CHAIN
                && !st.pending_jobs.is_empty()
                && st.batches - st.published < MAX_IN_FLIGHT
            {
                if !st.applying {
                    self.bump_wakes();
                    self.batch_done[slot(no)].notify_one();
                }
                chained += 1;
                continue;
            }
            st.syncing = false;
            if ok {
                self.wake_next_leader(&st);
            }
            return st;
        }
    }

    /// Takes the whole pending batch (protocol step 2).
    /// # Preconditions
    /// Requires: `state` held, the write stage held.
    fn take(st: &mut State<J>, need_sync: bool) -> Taken<J> {
        // Allocates before any bookkeeping, so that a panic (an allocation
        // failure) leaves the state as it was.
        let batch = std::mem::replace(&mut st.pending, fresh_pending());
        let jobs = std::mem::take(&mut st.pending_jobs);
        st.batches += 1;
        st.taken = st.last_lsn;
        if need_sync {
            st.sync_covered = st.last_lsn;
        }
        st.inflight.push(InFlight {
            no: st.batches,
            last: st.last_lsn,
            synced: need_sync,
        });
        st.inflight_commits += jobs.len();
        Taken {
            no: st.batches,
            batch,
            jobs,
            first: st.pending_first,
            prev_crc: st.pending_prev_crc,
            last: st.last_lsn,
            durable_before: st.durable,
            need_sync,
        }
    }

    /// Writes (and syncs) a taken batch with the sink lock, without `state`.
    /// `Ok` holds the sync's duration if one was asked for; `Err` says
    /// whether the write had returned before the error.
    fn write_taken(
        &self,
        t: &mut Taken<J>,
    ) -> std::result::Result<Option<Duration>, (bool, io::Error)> {
        let mut sink = self.sink.lock();
        if !t.jobs.is_empty() {
            sink.write_batch(&mut t.batch, t.durable_before, t.first, t.prev_crc)
                .map_err(|e| (false, e))?;
            self.sink_written.store(t.last.0, Ordering::Release);
        }
        if !t.need_sync {
            return Ok(None);
        }
        let started = Instant::now();
        sink.sync()
            .map(|()| Some(started.elapsed()))
            .map_err(|e| (true, e))
    }

    /// Records how a taken batch's write (and sync) ended and queues it for
    /// the apply stage; on failure, sets the sticky failure (protocol step 6).
    /// Returns whether the queue is still healthy (the leader may chain).
    /// # Preconditions
    /// Requires: `state` held, the write stage held.
    fn queue_written(
        &self,
        st: &mut State<J>,
        t: Taken<J>,
        outcome: std::result::Result<Option<Duration>, (bool, io::Error)>,
    ) -> bool {
        let (written, failed) = match outcome {
            Ok(took) => {
                if let Some(took) = took {
                    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                    st.sync_nanos = (st.sync_nanos.saturating_mul(7).saturating_add(nanos)) / 8;
                    st.counters.sync_nanos = st.counters.sync_nanos.saturating_add(nanos);
                    st.durable = t.last;
                }
                (true, false)
            }
            Err((write_returned, e)) => {
                // Buffered: a record whose write returned is acknowledged
                // (the Buffered contract), even if a sync asked for by
                // `sync_all` then failed; in Sync mode only a sync acknowledges.
                let written = write_returned && !self.always_sync;
                let f = Failure {
                    written_from: if written { t.last.next() } else { t.first },
                    synced_from: t.durable_before.next(),
                    last: t.last,
                    kind: e.kind(),
                    message: e.to_string(),
                };
                self.fail(st, f);
                (written, true)
            }
        };
        st.ready.push_back(Ready {
            no: t.no,
            commits: t.jobs.len(),
            jobs: t.jobs,
            last: t.last,
            written,
            synced: t.need_sync && !failed,
            bytes: t.batch.len() as u64,
            failed,
        });
        // A panic in the apply stage may have poisoned the queue meanwhile.
        st.failure.is_none()
    }

    /// Holds the apply stage: applies and publishes queued batches in order
    /// until none is left. Takes and returns the state guard.
    fn apply_ready<'a>(&'a self, st: MutexGuard<'a, State<J>>) -> MutexGuard<'a, State<J>> {
        self.guard_stage(Stage::Apply, &Cell::new(None), || {
            let mut st = st;
            st.applying = true;
            while let Some(mut done) = st.ready.pop_front() {
                drop(st);
                // Applied before anyone can see the batch as done.
                self.applier
                    .apply(std::mem::take(&mut done.jobs), done.written);
                st = self.state.lock();
                self.publish(&mut st, &done);
            }
            st.applying = false;
            self.wake_next_leader(&st);
            st
        })
    }

    /// Publishes an applied batch and wakes its waiters; after a failed
    /// batch, abandons every pending job and wakes everybody.
    /// # Preconditions
    /// Requires: `state` held, the apply stage held.
    fn publish(&self, st: &mut State<J>, done: &Ready<J>) {
        st.inflight.retain(|b| b.no != done.no);
        st.inflight_commits -= done.commits;
        st.published = done.no;
        if done.written && done.commits > 0 {
            st.written = done.last;
            self.written_at.store(done.last.0, Ordering::Release);
            st.counters.bytes += done.bytes;
            st.counters.writes += 1;
        }
        if done.synced {
            st.counters.synced_commits += done.last.0 - st.synced.0;
            st.counters.syncs += 1;
            st.synced = done.last;
            self.synced_at.store(done.last.0, Ordering::Release);
        }
        if done.failed {
            // Nothing more will be written: abandon what is still pending.
            let abandoned = std::mem::take(&mut st.pending_jobs);
            self.applier.apply(abandoned, false);
            self.wake_all();
        } else {
            self.batch_done[slot(done.no)].notify_all();
        }
    }
}

impl<S, J, A> GroupCommit<S, J, A> {
    /// Tells spinning waiters to re-evaluate; call with the state lock held,
    /// next to the condvar notification that wakes sleeping ones.
    fn bump_wakes(&self) {
        self.wakes.fetch_add(1, Ordering::Release);
    }

    /// Wakes every waiter, sleeping or spinning; call with the state lock held.
    fn wake_all(&self) {
        self.bump_wakes();
        for cv in &self.batch_done {
            cv.notify_all();
        }
    }

    /// Sets the sticky failure, or widens the one already set to cover `f`
    /// too (the first error's message stays), and wakes everybody.
    /// # Preconditions
    /// Requires: `state` held.
    fn fail(&self, st: &mut State<J>, f: Failure) {
        match &mut st.failure {
            Some(old) => {
                old.written_from = old.written_from.min(f.written_from);
                old.synced_from = old.synced_from.min(f.synced_from);
                old.last = old.last.max(f.last);
            }
            None => st.failure = Some(f),
        }
        self.wake_all();
    }

    /// Runs `f`, a stage (protocol step 9); if it panics, poisons the queue
    /// once the panic is caught (so the state guard `f` may have held is
    /// released by then) and resumes the panic. `batch` is the stage's note
    /// of the batch being written. Costs nothing unless `f` panics.
    fn guard_stage<R>(
        &self,
        stage: Stage,
        batch: &Cell<Option<(Lsn, Lsn)>>,
        f: impl FnOnce() -> R,
    ) -> R {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(payload) => {
                self.poison_after_panic(stage, batch.get());
                panic::resume_unwind(payload)
            }
        }
    }

    /// A stage was left by a panic (protocol step 9): poisons the queue and
    /// wakes everybody. The stage's flag stays set, so nobody enters it
    /// again: after a write-stage panic nothing more is written (the batches
    /// queued before it are still applied and published); after an
    /// apply-stage panic nothing more is applied or published, and the jobs
    /// of the batch being applied, maybe half in the memtable, are never
    /// marked done, so readers stay on the snapshot before them.
    fn poison_after_panic(&self, stage: Stage, batch: Option<(Lsn, Lsn)>) {
        let mut st = self.state.lock();
        let (written_from, synced_from) = match (stage, batch) {
            (Stage::Write, Some((first, durable_before))) => (first, durable_before.next()),
            (Stage::Write, None) => (st.taken.next(), st.durable.next()),
            (Stage::Apply, _) => (st.written.next(), st.synced.next()),
        };
        let f = Failure {
            written_from,
            synced_from,
            last: st.taken,
            kind: io::ErrorKind::Other,
            message: PANIC_MESSAGE.to_owned(),
        };
        self.fail(&mut st, f);
    }

    /// Runs `f` on the sink (models inspect fakes through it).
    #[cfg(all(test, loom))]
    pub(crate) fn with_sink<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.sink.lock())
    }
}
