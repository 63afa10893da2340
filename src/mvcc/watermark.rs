//! The applied watermark ("done until", as in badger's oracle).
//!
//! Commit timestamps are `begin`-registered in increasing order (under the
//! commit-order lock) and `done` in any order once their writes are applied
//! to the memtable (or abandoned after an I/O failure). `done_until` is the
//! largest `T` such that every registered timestamp `<= T` is done.
//!
//! Invariants:
//! 1. `done_until` never decreases.
//! 2. `done_until >= T` implies every commit with ts `<= T` is fully applied,
//!    so a reader whose read_ts is `done_until` sees each commit whole or not
//!    at all (the memtable inserts happen-before the `Release` store that
//!    publishes the new value; readers load it with `Acquire`).

use std::collections::VecDeque;
use std::time::Instant;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex};
use crate::types::Ts;

#[derive(Debug, Default)]
struct State {
    /// Registered, not yet retired timestamps, ascending, with their done flag.
    pending: VecDeque<(Ts, bool)>,
    waiters: usize,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Watermark {
    state: Mutex<State>,
    cond: Condvar,
    done_until: AtomicU64,
}

impl Watermark {
    pub(crate) fn new(start: Ts) -> Self {
        Self {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            done_until: AtomicU64::new(start.get()),
        }
    }

    /// Everything at or below this is applied.
    pub(crate) fn done_until(&self) -> Ts {
        Ts::from(self.done_until.load(Ordering::Acquire))
    }

    /// Registers `ts`.
    ///
    /// # Preconditions
    /// Requires the commit-order lock held; `ts` exceeds every earlier one.
    pub(crate) fn begin(&self, ts: Ts) {
        let mut st = self.state.lock();
        debug_assert!(st.pending.back().is_none_or(|&(last, _)| last < ts));
        st.pending.push_back((ts, false));
    }

    /// Marks `ts` done and advances `done_until` over the done prefix.
    pub(crate) fn done(&self, ts: Ts) {
        self.done_all([ts]);
    }

    /// Marks every ts in `all` done (one lock acquisition for a whole batch)
    /// and advances `done_until` over the done prefix.
    pub(crate) fn done_all(&self, all: impl IntoIterator<Item = Ts>) {
        let mut st = self.state.lock();
        for ts in all {
            if let Ok(i) = st.pending.binary_search_by(|&(t, _)| t.cmp(&ts))
                && let Some(slot) = st.pending.get_mut(i)
            {
                slot.1 = true;
            }
        }
        let mut advanced = None;
        while let Some(&(t, true)) = st.pending.front() {
            advanced = Some(t);
            st.pending.pop_front();
        }
        if let Some(t) = advanced {
            self.done_until.store(t.get(), Ordering::Release);
            if st.waiters > 0 {
                self.cond.notify_all();
            }
        }
    }

    /// Blocks until `done_until >= ts` or `deadline` passes (`None`: no
    /// deadline); returns whether `done_until >= ts`.
    pub(crate) fn wait_for_until(&self, ts: Ts, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.wait_for(ts);
            return true;
        };
        if self.done_until() >= ts {
            return true;
        }
        let mut st = self.state.lock();
        st.waiters += 1;
        while self.done_until() < ts {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.cond.wait_timeout(st, left);
        }
        st.waiters -= 1;
        self.done_until() >= ts
    }

    /// Blocks until `done_until >= ts`.
    pub(crate) fn wait_for(&self, ts: Ts) {
        if self.done_until() >= ts {
            return;
        }
        let mut st = self.state.lock();
        st.waiters += 1;
        while self.done_until() < ts {
            st = self.cond.wait(st);
        }
        st.waiters -= 1;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn advances_only_over_a_done_prefix() {
        let w = Watermark::new(Ts::from(5));
        w.begin(Ts::from(10));
        w.begin(Ts::from(11));
        w.begin(Ts::from(12));
        w.done(Ts::from(11));
        assert_eq!(w.done_until(), Ts::from(5));
        w.done(Ts::from(10));
        assert_eq!(w.done_until(), Ts::from(11));
        w.done(Ts::from(12));
        assert_eq!(w.done_until(), Ts::from(12));
        w.wait_for(Ts::from(12));
    }

    #[test]
    fn a_bounded_wait_returns_at_its_deadline_if_the_ts_never_comes() {
        let w = Watermark::new(Ts::from(5));
        w.begin(Ts::from(10));
        assert!(w.wait_for_until(Ts::from(5), Some(Instant::now())));
        // The deadline has passed already: the answer comes without waiting.
        assert!(!w.wait_for_until(Ts::from(10), Some(Instant::now())));
        w.done(Ts::from(10));
        assert!(w.wait_for_until(Ts::from(10), None));
    }
}
