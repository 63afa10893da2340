//! The oracle: commit order, conflict detection and visibility.
//!
//! Commit protocol (`commit`), all under the commit-order lock:
//! 1. forget in-flight write sets whose ts is `<= done_until` (they are in storage);
//! 2. for each written key: if its filter slot says nothing touching that slot
//!    committed after `read_ts`, no conflict; otherwise look it up exactly, first
//!    in the in-flight write sets, then in storage (`newest_in_storage`), and
//!    report `Conflict` if its newest commit ts exceeds `read_ts`;
//! 3. take the next clock tick as commit ts, register it as pending in the
//!    applied watermark, and `publish` it (the WAL enqueue: so WAL order =
//!    commit-ts order; whoever applies the commit marks it done);
//! 4. raise the filter slots, and add the write set to the in-flight list.
//!
//! Exactness: the filter only skips work (a slot's value is the largest
//! commit ts of any key hashing there, so `slot <= read_ts` proves no
//! conflict); every reported conflict names a key that really was committed
//! after `read_ts`. Nothing is ever trimmed in a way that forces an abort:
//! versions newer than any live snapshot are retained by storage (GC keeps
//! everything above the GC watermark, and every transaction's snapshot is
//! registered), so the exact lookup always has the answer.
//!
//! Memory bound: the filter is `CONFLICT_FILTER_SLOTS` x 8 bytes (512 KiB);
//! the in-flight list holds only commits between their WAL enqueue and their
//! memtable apply, at most one per committing thread.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::clock::{Clock, WallClock};
use super::snapshot::Registry;
use super::watermark::Watermark;
use crate::error::{Error, Result};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::types::Ts;

/// Number of slots in the conflict filter (tiny under loom so that slots collide).
pub(crate) const CONFLICT_FILTER_SLOTS: usize = if cfg!(loom) { 2 } else { 1 << 16 };

/// The keys a committing transaction writes.
pub(crate) trait WriteKeys: Send + Sync + fmt::Debug {
    /// Number of keys.
    fn key_count(&self) -> usize;
    /// The `i`-th key; keys are strictly ascending.
    fn key(&self, i: usize) -> &[u8];
    /// Whether `key` is written (binary search over the sorted keys).
    fn contains(&self, key: &[u8]) -> bool {
        let (mut lo, mut hi) = (0, self.key_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

#[derive(Debug)]
struct CommitState {
    clock: Clock,
    inflight: VecDeque<(Ts, Arc<dyn WriteKeys>)>,
    filter: Vec<u64>,
}

fn slot(key: &[u8]) -> usize {
    crc32fast::hash(key) as usize % CONFLICT_FILTER_SLOTS
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Oracle {
    commit: Mutex<CommitState>,
    applied: Watermark,
    snapshots: Registry,
    conflicts: AtomicU64,
}

impl Oracle {
    /// An oracle whose last commit (from recovery) is `last_ts`.
    pub(crate) fn new(last_ts: Ts, wall: WallClock) -> Self {
        let mut clock = Clock::new(wall);
        clock.observe(last_ts);
        Self {
            commit: Mutex::new(CommitState {
                clock,
                inflight: VecDeque::new(),
                filter: vec![0; CONFLICT_FILTER_SLOTS],
            }),
            applied: Watermark::new(last_ts),
            snapshots: Registry::default(),
            conflicts: AtomicU64::new(0),
        }
    }

    /// The newest fully applied commit: what a snapshot taken now reads at.
    pub(crate) fn read_ts(&self) -> Ts {
        self.applied.done_until()
    }

    /// Registers a snapshot at the current read ts; pair with `end_snapshot`.
    pub(crate) fn begin_snapshot(&self) -> Ts {
        self.snapshots.register(|| self.applied.done_until())
    }

    /// Releases a snapshot taken with `begin_snapshot`.
    pub(crate) fn end_snapshot(&self, ts: Ts) {
        self.snapshots.release(ts);
    }

    /// The oldest timestamp any live snapshot reads at (GC may drop versions
    /// that are shadowed at this timestamp).
    pub(crate) fn gc_watermark(&self) -> Ts {
        self.snapshots.gc_watermark(|| self.applied.done_until())
    }

    /// Number of live snapshots.
    pub(crate) fn live_snapshots(&self) -> usize {
        self.snapshots.live()
    }

    /// Conflicts reported so far.
    pub(crate) fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Checks conflicts, assigns the commit ts and publishes it (see module docs).
    pub(crate) fn commit<R>(
        &self,
        read_ts: Ts,
        writes: &Arc<dyn WriteKeys>,
        newest_in_storage: &dyn Fn(&[u8]) -> Option<Ts>,
        publish: impl FnOnce(Ts) -> Result<R>,
    ) -> Result<(Ts, R)> {
        let mut st = self.commit.lock();
        let done_until = self.applied.done_until();
        while st.inflight.front().is_some_and(|(ts, _)| *ts <= done_until) {
            st.inflight.pop_front();
        }
        for i in 0..writes.key_count() {
            let key = writes.key(i);
            if st
                .filter
                .get(slot(key))
                .is_none_or(|&max| max <= read_ts.get())
            {
                continue;
            }
            let newest = st
                .inflight
                .iter()
                .rev()
                .find(|(_, w)| w.contains(key))
                .map(|(ts, _)| *ts)
                .or_else(|| newest_in_storage(key));
            if let Some(committed_ts) = newest
                && committed_ts > read_ts
            {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Conflict {
                    key: key.to_vec(),
                    read_ts,
                    committed_ts,
                });
            }
        }
        let ts = st.clock.tick();
        // Registered before it is published: whoever applies it may mark it
        // done as soon as the WAL has it.
        self.applied.begin(ts);
        let published = match publish(ts) {
            Ok(p) => p,
            Err(e) => {
                self.applied.done(ts);
                return Err(e);
            }
        };
        for i in 0..writes.key_count() {
            if let Some(max) = st.filter.get_mut(slot(writes.key(i))) {
                *max = ts.get();
            }
        }
        st.inflight.push_back((ts, writes.clone()));
        Ok((ts, published))
    }

    /// Marks commit timestamps applied (or abandoned after an I/O failure),
    /// a whole batch at once.
    pub(crate) fn applied_all(&self, all: impl IntoIterator<Item = Ts>) {
        self.applied.done_all(all);
    }

    /// Like [`Oracle::wait_visible`], but gives up at `deadline` (`None`:
    /// never); returns whether every commit up to `ts` is applied.
    pub(crate) fn wait_visible_until(&self, ts: Ts, deadline: Option<Instant>) -> bool {
        self.applied.wait_for_until(ts, deadline)
    }

    /// Blocks until every commit up to `ts` is applied, so that a snapshot
    /// taken after `commit` returns sees the commit.
    pub(crate) fn wait_visible(&self, ts: Ts) {
        self.applied.wait_for(ts);
    }
}
