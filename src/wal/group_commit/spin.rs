//! Waiting without the state lock (protocol step 8 and the leader's
//! gather): a waiter spins, yielding the CPU, for a bounded budget before
//! it sleeps, because waking a sleeping thread on an idle vCPU costs tens of
//! microseconds (decision 0009); a leader gathers the open writers' commits
//! into its batch the same way.

use std::time::{Duration, Instant};

use super::state::State;
use super::{Apply, GroupCommit, LogSink};
use crate::sync::atomic::Ordering;
use crate::sync::{MutexGuard, thread};
use crate::types::Lsn;

/// Longest a leader waits for more commits before taking a synced batch.
pub(super) const GATHER_MAX_NANOS: u64 = 1_000_000;

/// A spinning gather ends early when no commit arrived for this long
/// (decision 0009: 10 and 20 us measured alike).
pub(super) const GATHER_STALL: Duration = Duration::from_micros(15);

/// A waiter spins for this many average syncs (within the limit): long
/// enough to see the batch after its own published.
pub(super) const SPIN_SYNCS: u64 = 4;

/// Spin at least this long when the limit allows it (a buffered wait, or
/// before any sync was timed).
pub(super) const SPIN_MIN: Duration = Duration::from_micros(100);

/// Under loom (no time), a spin phase is this many rounds.
pub(super) const LOOM_SPIN_ROUNDS: u32 = 1;

/// How a spin phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spin {
    /// The waiter's record is published.
    Settled,
    /// Something else changed: re-evaluate under the lock.
    Woken,
    /// The budget is spent: sleep.
    Expired,
}

impl<S: LogSink, J, A: Apply<J>> GroupCommit<S, J, A> {
    /// How long a waiter spins before sleeping: a few average syncs, within
    /// `[SPIN_MIN, spin_limit]` (the limit wins).
    pub(super) fn spin_budget(&self, st: &State<J>) -> Duration {
        let syncs = Duration::from_nanos(st.sync_nanos.saturating_mul(SPIN_SYNCS));
        syncs.max(SPIN_MIN).min(self.spin_limit)
    }

    /// Spins, yielding the CPU each round, until the record `lsn` is
    /// published, `wakes` differs from `seen`, or `deadline` (see protocol
    /// step 8). Called without the state lock.
    pub(super) fn spin(&self, lsn: Lsn, need_sync: bool, seen: u64, deadline: Instant) -> Spin {
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

    /// Before a synced batch is taken, waits briefly for the other open
    /// read-write transactions to enqueue, so they share this sync instead of
    /// the next one. The wait ends when every open writer is pending or in
    /// flight, and after half a typical sync at most, so a lone committer
    /// never waits and an idle open transaction costs a bounded delay. It
    /// spins like a waiter (protocol step 8) unless spinning is off, and a
    /// spinning gather also ends after [`GATHER_STALL`] without an arrival.
    pub(super) fn gather<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<J>>,
    ) -> MutexGuard<'a, State<J>> {
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
    pub(super) fn spin_gather(&self, seen: u64, deadline: Instant) -> bool {
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
}
