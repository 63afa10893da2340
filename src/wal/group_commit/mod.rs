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
//! Files: `state.rs` holds what `state` protects and its pure transitions
//! (taking a batch, the failure ranges, which batch settles a waiter);
//! `spin.rs` the waiting outside the lock (protocol step 8, the gather);
//! `poison.rs` the sticky failure and the panic guard (steps 6 and 9);
//! `background.rs` the background sync (step 10); this file the stages
//! (enqueue, lead, write, apply, publish) and the waiter's loop.
//!
//! Lock order: the commit-order lock (`mvcc`) before `state`; `sink` is only
//! taken by the leader holding the write stage, never while holding `state`;
//! `Apply` is called without `state`, except for abandoned jobs after a
//! failure.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{CommitHeader, SYNC_MARK_FRAME_BYTES, UnsealedCommit, seal_commit};
use crate::error::{Error, Result};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::types::{Lsn, Ts};

mod background;
mod poison;
mod spin;
mod state;

use poison::Stage;
use spin::Spin;
use state::{Failure, MAX_CHAIN, MAX_IN_FLIGHT, Ready, SLOTS, State, Taken, slot};

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
        let state = State::new(last_lsn, last_crc);
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
            spin_limit: Duration::ZERO,
        }
    }

    /// Sets the longest a waiter spins before it sleeps (zero, the default:
    /// never spins). The database passes `Options::commit_spin`: the WAL
    /// does not read options itself.
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
    pub(crate) fn enqueue(
        &self,
        frame: &UnsealedCommit,
        commit_ts: Ts,
        job: impl FnOnce(Lsn) -> J,
    ) -> Result<Lsn> {
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
        st.pending_jobs.push(job(lsn));
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
    /// Whether every batch is synced before it is acknowledged (`Sync`
    /// durability), so everything applied is already durable.
    pub(crate) fn syncs_every_batch(&self) -> bool {
        self.always_sync
    }

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
            // A failure set meanwhile (by the background sync or a panic in
            // the apply stage, while `gather` let go of the lock) ends the
            // write stage: after a failed sync nothing more is written or
            // synced, and the pending jobs are already abandoned.
            if st.failure.is_some() {
                st.syncing = false;
                return st;
            }
            let mut taken = st.take(need_sync);
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
                    st.durable = st.durable.max(t.last);
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

    /// Runs `f` on the sink (models inspect fakes through it).
    #[cfg(all(test, loom))]
    pub(crate) fn with_sink<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.sink.lock())
    }
}
