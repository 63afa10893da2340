//! The snapshot registry: which read timestamps are in use, and from that
//! the GC watermark (the oldest snapshot any reader may still ask for) and
//! the history floor (the oldest ts compaction keeps exactly).
//!
//! Invariants (loom model `loom_snapshot_watermark_never_passes_a_live_snapshot`):
//! 1. `gc_watermark() <= ts` for every registered, not yet released and not
//!    expired snapshot `ts`.
//! 2. `history_watermark()` never decreases, never passes such a snapshot,
//!    and a snapshot is registered at an old ts (`register_at`) only at or
//!    above every history watermark handed out: both are decided under the
//!    one registry lock, so compaction (which drops what lies below the
//!    history watermark) never drops a version a registered snapshot reads.
//! 3. A snapshot past the maximum age expires: the watermarks stop
//!    counting it (its pin is released), and a commit through it is
//!    refused ([`Registry::pin`]). Its own reads check its age against the
//!    same monotonic clock, so once it has expired every later read fails.
//!    A snapshot that is committing is pinned and never expires.
//!
//! Registration reads the current read ts (monotonic, from the applied
//! watermark) under the lock, so a snapshot taken now is never below a
//! watermark already handed out.
//!
//! **Unregistered reads** ([`Registry::read_latest`], for `Db::get`): a
//! one-shot read takes the current read ts `r`, then its view, then loads
//! the history floor `f`, and reads only if `f <= r`. A compaction raises
//! the floor to its watermark `w` (here, under the lock, then into
//! `floor_seen`) before it writes a table, and installs the table into the
//! views after; a view that lists the table was taken after that install,
//! so the load of `floor_seen` after taking it sees `w` or more. So
//! `f <= r` means every compaction whose output the view holds kept every
//! version newer than `w <= r` and the newest at or below it: the newest
//! version at or below `r` of every key. Versions the view holds in
//! memtables and older tables are never dropped (they are immutable), and
//! the view holds every commit up to `r` (`view` invariant 3, which does not
//! depend on registration). Otherwise (`f > r`) the caller registers as
//! usual. Loom model: `loom_an_unregistered_read_never_misses_its_version`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::types::Ts;

/// A registered snapshot, for [`Registry::release`] and [`Registry::pin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle {
    pub(crate) ts: Ts,
    id: u64,
    /// When it registered (its age is measured from here).
    pub(crate) began: Instant,
}

#[derive(Debug)]
struct Entry {
    /// Pinned by a commit in progress: never expires.
    pinned: bool,
    expired: bool,
}

#[derive(Debug, Default)]
struct State {
    live: BTreeMap<(Ts, u64), (Instant, Entry)>,
    next_id: u64,
    /// The highest history watermark handed out.
    floor: Ts,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    state: Mutex<State>,
    /// `State::floor`, stored after every raise, for unregistered reads
    /// (module docs).
    floor_seen: AtomicU64,
    /// Snapshots older than this expire (`None`: never).
    max_age: Option<Duration>,
}

impl Registry {
    /// A registry whose snapshots expire at `max_age`.
    #[cfg(test)]
    pub(crate) fn new(max_age: Option<Duration>) -> Self {
        Self::with_floor(max_age, Ts::ZERO)
    }

    /// [`Registry::new`] whose history floor starts at `floor` (what
    /// compaction collected below before a reopen, from the manifest).
    pub(crate) fn with_floor(max_age: Option<Duration>, floor: Ts) -> Self {
        Self {
            state: Mutex::new(State {
                floor,
                ..State::default()
            }),
            floor_seen: AtomicU64::new(floor.get()),
            max_age,
        }
    }

    /// A read at `current()` through `take_view()`, taken in that order,
    /// without registering: `None` if a compaction may have dropped a
    /// version it needs (then register instead). See the module docs.
    pub(crate) fn read_latest<V>(
        &self,
        current: impl FnOnce() -> Ts,
        take_view: impl FnOnce() -> V,
    ) -> Option<(Ts, V)> {
        let ts = current();
        let view = take_view();
        let floor = Ts::from(self.floor_seen.load(Ordering::Acquire));
        (floor <= ts).then_some((ts, view))
    }

    /// Whether a snapshot that began at `began` has expired.
    pub(crate) fn is_expired(&self, began: Instant) -> bool {
        self.max_age.is_some_and(|max| began.elapsed() >= max)
    }

    /// Registers a snapshot at `current()`.
    pub(crate) fn register(&self, current: impl FnOnce() -> Ts) -> Handle {
        let mut st = self.state.lock();
        let ts = current();
        Self::insert(&mut st, ts)
    }

    /// Registers a snapshot at `ts` if it is at or above
    /// [`Registry::oldest_readable`]; otherwise `Err(that ts)`.
    pub(crate) fn register_at(&self, ts: Ts, retained: Ts) -> Result<Handle, Ts> {
        let mut st = self.state.lock();
        let start = self.start(&mut st, retained);
        if ts < start {
            return Err(start);
        }
        Ok(Self::insert(&mut st, ts))
    }

    /// The oldest ts readable now: what is `retained` (the caller's rule:
    /// retention, capped at the current read ts) or held by a live
    /// snapshot, whichever is older, but never below the history floor.
    pub(crate) fn oldest_readable(&self, retained: Ts) -> Ts {
        let mut st = self.state.lock();
        self.start(&mut st, retained)
    }

    fn start(&self, st: &mut State, retained: Ts) -> Ts {
        let live = self.oldest_live(st).unwrap_or(retained);
        st.floor.max(retained.min(live))
    }

    fn insert(st: &mut State, ts: Ts) -> Handle {
        let id = st.next_id;
        st.next_id += 1;
        let began = Instant::now();
        let entry = Entry {
            pinned: false,
            expired: false,
        };
        st.live.insert((ts, id), (began, entry));
        Handle { ts, id, began }
    }

    /// Releases a registration.
    pub(crate) fn release(&self, h: &Handle) {
        self.state.lock().live.remove(&(h.ts, h.id));
    }

    /// Pins a snapshot for its commit: `false` (refuse the commit) if it has
    /// expired, else it never expires from now on (invariant 3).
    pub(crate) fn pin(&self, h: &Handle) -> bool {
        let mut st = self.state.lock();
        let max_age = self.max_age;
        match st.live.get_mut(&(h.ts, h.id)) {
            Some((began, e)) => {
                if e.expired || (!e.pinned && max_age.is_some_and(|m| began.elapsed() >= m)) {
                    e.expired = true;
                    return false;
                }
                e.pinned = true;
                true
            }
            None => false,
        }
    }

    /// Expires what is past the maximum age, then the oldest snapshot left.
    fn oldest_live(&self, st: &mut State) -> Option<Ts> {
        let max_age = self.max_age;
        for (&(ts, _), (began, e)) in &mut st.live {
            if !e.expired && !e.pinned && max_age.is_some_and(|m| began.elapsed() >= m) {
                e.expired = true;
            }
            if !e.expired {
                return Some(ts);
            }
        }
        None
    }

    /// The oldest live snapshot, or `current()` if there is none.
    pub(crate) fn gc_watermark(&self, current: impl FnOnce() -> Ts) -> Ts {
        let mut st = self.state.lock();
        self.oldest_live(&mut st).unwrap_or_else(current)
    }

    /// What compaction may GC below: `min(oldest live snapshot, current(),
    /// retained)`, never below an earlier one (invariant 2).
    pub(crate) fn history_watermark(&self, current: impl FnOnce() -> Ts, retained: Ts) -> Ts {
        let mut st = self.state.lock();
        let live = self.oldest_live(&mut st);
        let now = current();
        let w = live.map_or(now, |t| t.min(now)).min(retained);
        st.floor = st.floor.max(w);
        self.floor_seen.store(st.floor.get(), Ordering::Release);
        st.floor
    }

    /// Live (registered, not expired) snapshots.
    pub(crate) fn live(&self) -> usize {
        let st = self.state.lock();
        st.live.values().filter(|(_, e)| !e.expired).count()
    }

    /// The oldest live snapshot's read ts and age, if any.
    pub(crate) fn oldest(&self) -> Option<(Ts, Duration)> {
        let mut st = self.state.lock();
        let ts = self.oldest_live(&mut st)?;
        let began = st
            .live
            .range((ts, 0)..=(ts, u64::MAX))
            .map(|(_, (b, _))| *b)
            .min()?;
        Some((ts, began.elapsed()))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_the_oldest_live_snapshot() {
        let r = Registry::default();
        let a = r.register(|| Ts::from(3));
        let b = r.register(|| Ts::from(7));
        let c = r.register(|| Ts::from(3));
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(3));
        r.release(&a);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(3));
        r.release(&c);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(7));
        r.release(&b);
        assert_eq!(r.live(), 0);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(9));
    }

    #[test]
    fn the_history_floor_rises_and_refuses_older_registrations() {
        let r = Registry::default();
        // Retention keeps back to 5; nothing live; current 9.
        assert_eq!(
            r.history_watermark(|| Ts::from(9), Ts::from(5)),
            Ts::from(5)
        );
        assert_eq!(r.register_at(Ts::from(4), Ts::ZERO), Err(Ts::from(5)));
        let old = r.register_at(Ts::from(6), Ts::from(6)).unwrap();
        // A live snapshot keeps its history readable, whatever retention says.
        let again = r.register_at(Ts::from(6), Ts::from(9)).unwrap();
        r.release(&again);
        // A live snapshot at 6 holds it back even though retention moved on.
        assert_eq!(
            r.history_watermark(|| Ts::from(20), Ts::from(15)),
            Ts::from(6)
        );
        r.release(&old);
        assert_eq!(
            r.history_watermark(|| Ts::from(20), Ts::from(15)),
            Ts::from(15)
        );
        // Never back down, whatever retention says.
        assert_eq!(
            r.history_watermark(|| Ts::from(20), Ts::from(1)),
            Ts::from(15)
        );
        // The caller's rule raises the oldest readable ts further.
        assert_eq!(r.register_at(Ts::from(16), Ts::from(18)), Err(Ts::from(18)));
        assert_eq!(r.oldest_readable(Ts::from(18)), Ts::from(18));
    }

    #[test]
    fn an_unregistered_read_goes_ahead_only_at_or_above_the_history_floor() {
        let r = Registry::default();
        assert_eq!(
            r.read_latest(|| Ts::from(5), || "view"),
            Some((Ts::from(5), "view"))
        );
        // A compaction collected below 9: a read at 5 must register.
        assert_eq!(
            r.history_watermark(|| Ts::from(9), Ts::from(u64::MAX)),
            Ts::from(9)
        );
        assert_eq!(r.read_latest(|| Ts::from(5), || "view"), None);
        assert_eq!(
            r.read_latest(|| Ts::from(9), || "view"),
            Some((Ts::from(9), "view"))
        );
        assert_eq!(r.live(), 0, "nothing registered");
    }

    #[test]
    fn an_expired_snapshot_stops_holding_the_watermarks_and_cannot_commit() {
        let r = Registry::new(Some(Duration::ZERO));
        let s = r.register(|| Ts::from(3));
        assert!(r.is_expired(s.began));
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(9));
        assert_eq!(r.live(), 0);
        assert!(!r.pin(&s), "an expired snapshot commits nothing");
        r.release(&s);
        // Pinned first, it never expires.
        let long = Registry::new(Some(Duration::from_secs(3600)));
        let p = long.register(|| Ts::from(3));
        assert!(long.pin(&p));
        assert_eq!(long.gc_watermark(|| Ts::from(9)), Ts::from(3));
        assert_eq!(long.oldest().map(|(t, _)| t), Some(Ts::from(3)));
    }
}
