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
use std::time::{Duration, Instant};

use super::clock::{Clock, WallClock};
use super::snapshot::{Handle, Registry};
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
    /// The last commit ts registered in the applied watermark (or the
    /// recovered last ts): what `done_until` is sure to reach.
    issued: Ts,
    inflight: VecDeque<(Ts, Arc<dyn WriteKeys>)>,
    filter: Vec<u64>,
}

fn slot(key: &[u8]) -> usize {
    crc32fast::hash(key) as usize % CONFLICT_FILTER_SLOTS
}

/// How much history the oracle lets readers keep (`Options::history_retention`,
/// `Options::max_snapshot_age`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Governance {
    /// Versions this recent are kept for `begin_snapshot_at`.
    pub(crate) retention: Duration,
    /// Snapshots older than this expire (`None`: never).
    pub(crate) max_snapshot_age: Option<Duration>,
    /// Compaction collected versions below this before the database was
    /// opened (the manifest's history floor): no snapshot older is taken.
    pub(crate) history_floor: Ts,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Oracle {
    commit: Mutex<CommitState>,
    applied: Watermark,
    snapshots: Registry,
    conflicts: AtomicU64,
    wall: WallClock,
    retention: Duration,
}

impl Oracle {
    /// An oracle whose last commit (from recovery) is `last_ts`.
    pub(crate) fn new(last_ts: Ts, wall: WallClock, governance: Governance) -> Self {
        let mut clock = Clock::new(wall);
        clock.observe(last_ts);
        Self {
            commit: Mutex::new(CommitState {
                clock,
                issued: last_ts,
                inflight: VecDeque::new(),
                filter: vec![0; CONFLICT_FILTER_SLOTS],
            }),
            applied: Watermark::new(last_ts),
            snapshots: Registry::with_floor(governance.max_snapshot_age, governance.history_floor),
            conflicts: AtomicU64::new(0),
            wall,
            retention: governance.retention,
        }
    }

    /// The newest fully applied commit: what a snapshot taken now reads at.
    pub(crate) fn read_ts(&self) -> Ts {
        self.applied.done_until()
    }

    /// A one-shot read at the current read ts through `take_view()`,
    /// without registering a snapshot; `None` when it must register
    /// (`snapshot` module docs, "Unregistered reads").
    pub(crate) fn read_latest<V>(&self, take_view: impl FnOnce() -> V) -> Option<(Ts, V)> {
        self.snapshots
            .read_latest(|| self.applied.done_until(), take_view)
    }

    /// Registers a snapshot at the current read ts; pair with `end_snapshot`.
    pub(crate) fn begin_snapshot(&self) -> Handle {
        self.snapshots.register(|| self.applied.done_until())
    }

    /// Registers a snapshot as of `ts` (time travel). Below the retained
    /// history: `SnapshotTooOld`. Above the latest commit: every later
    /// commit is made to take a larger ts (the clock observes `ts`) and
    /// every earlier one is waited for, so the snapshot is stable; a `ts`
    /// past the clock (the future) is `InvalidArgument`.
    pub(crate) fn begin_snapshot_at(&self, ts: Ts) -> Result<Handle> {
        if ts > self.read_ts() {
            let issued = {
                let mut st = self.commit.lock();
                let last = st.clock.last();
                let now = st.clock.wall_millis();
                let ceiling = Ts::from_unix_millis(now.saturating_add(1))
                    .get()
                    .saturating_sub(1);
                if ts > last && ts.get() > ceiling {
                    return Err(Error::InvalidArgument(format!(
                        "begin_read_at({ts:?}) is in the future: the clock reads {:?}",
                        Ts::from_unix_millis(now)
                    )));
                }
                st.clock.observe(ts);
                st.issued
            };
            // Every commit at or below `ts` was issued by now: wait for them
            // (`done_until` reaches `issued`, a registered ts, and passes `ts`
            // once a registered ts above it is done).
            self.applied.wait_for(ts.min(issued));
        }
        self.snapshots
            .register_at(ts, self.retained().min(self.read_ts()))
            .map_err(|oldest| Error::SnapshotTooOld {
                read_ts: ts,
                oldest,
            })
    }

    /// Releases a snapshot taken with `begin_snapshot`.
    pub(crate) fn end_snapshot(&self, h: &Handle) {
        self.snapshots.release(h);
    }

    /// Pins a snapshot for its commit; `false` if it has expired.
    pub(crate) fn pin(&self, h: &Handle) -> bool {
        self.snapshots.pin(h)
    }

    /// Whether a snapshot is past the maximum age.
    pub(crate) fn is_expired(&self, h: &Handle) -> bool {
        self.snapshots.is_expired(h.began)
    }

    /// The oldest ts `begin_snapshot_at` accepts now.
    pub(crate) fn oldest_readable(&self) -> Ts {
        self.snapshots
            .oldest_readable(self.retained().min(self.read_ts()))
    }

    /// `now - retention`: versions this recent are kept. Retention zero
    /// keeps nothing beyond live snapshots (no wall-clock rounding).
    fn retained(&self) -> Ts {
        if self.retention.is_zero() {
            return Ts::from(u64::MAX);
        }
        let ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        Ts::from_unix_millis((self.wall)().saturating_sub(ms))
    }

    /// What compaction may collect below (the history watermark): the
    /// oldest live snapshot, the current read ts and `now - retention`,
    /// whichever is oldest, and never lower than before.
    pub(crate) fn history_watermark(&self) -> Ts {
        self.snapshots
            .history_watermark(|| self.applied.done_until(), self.retained())
    }

    /// The oldest live snapshot's read ts and age.
    pub(crate) fn oldest_snapshot(&self) -> Option<(Ts, Duration)> {
        self.snapshots.oldest()
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
        // Hashed once, before the commit-order lock (a bulk load's 1,000
        // keys hashed twice under it were a tenth of its loading thread).
        let slots: Vec<usize> = (0..writes.key_count())
            .map(|i| slot(writes.key(i)))
            .collect();
        let mut st = self.commit.lock();
        self.drop_applied(&mut st);
        for (i, &at) in slots.iter().enumerate() {
            if st.filter.get(at).is_none_or(|&max| max <= read_ts.get()) {
                continue;
            }
            let key = writes.key(i);
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
        st.issued = ts;
        let published = match publish(ts) {
            Ok(p) => p,
            Err(e) => {
                self.applied.done(ts);
                return Err(e);
            }
        };
        for &at in &slots {
            if let Some(max) = st.filter.get_mut(at) {
                *max = ts.get();
            }
        }
        st.inflight.push_back((ts, writes.clone()));
        Ok((ts, published))
    }

    /// Drops the in-flight write sets of commits that are applied: a check
    /// only looks at commits above the applied watermark.
    fn drop_applied(&self, st: &mut CommitState) {
        let done_until = self.applied.done_until();
        while st.inflight.front().is_some_and(|(ts, _)| *ts <= done_until) {
            st.inflight.pop_front();
        }
    }

    /// Lets go of the write sets of applied commits now rather than at the
    /// next commit (a large commit calls it once it is visible, so its
    /// write set is freed before it returns: decision 0024). They are
    /// freed after the commit-order lock is released.
    pub(crate) fn release_applied(&self) {
        let done_until = self.applied.done_until();
        let mut gone = Vec::new();
        {
            let mut st = self.commit.lock();
            while st.inflight.front().is_some_and(|(ts, _)| *ts <= done_until) {
                gone.extend(st.inflight.pop_front());
            }
        }
        drop(gone);
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
