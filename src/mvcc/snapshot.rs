//! The snapshot registry: which read timestamps are in use, and from that the
//! GC watermark (the oldest snapshot any reader may still ask for).
//!
//! Invariants (loom model `loom_snapshot_watermark_never_passes_a_live_snapshot`):
//! 1. `gc_watermark() <= ts` for every registered, not yet released `ts`.
//! 2. `gc_watermark()` never decreases.
//!
//! Both follow from doing two things under the one registry lock: reading the
//! current read timestamp (monotonic, from the applied watermark) when a
//! snapshot registers, and computing the GC watermark as the oldest live
//! snapshot or, with none live, the current read timestamp.

use std::collections::BTreeMap;

use crate::sync::Mutex;
use crate::types::Ts;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    live: Mutex<BTreeMap<Ts, usize>>,
}

impl Registry {
    /// Registers a snapshot at `current()` and returns its timestamp.
    pub(crate) fn register(&self, current: impl FnOnce() -> Ts) -> Ts {
        let mut live = self.live.lock();
        let ts = current();
        *live.entry(ts).or_insert(0) += 1;
        ts
    }

    /// Releases one registration of `ts`.
    pub(crate) fn release(&self, ts: Ts) {
        let mut live = self.live.lock();
        if let Some(n) = live.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                live.remove(&ts);
            }
        }
    }

    /// The oldest live snapshot, or `current()` if there is none.
    pub(crate) fn gc_watermark(&self, current: impl FnOnce() -> Ts) -> Ts {
        let live = self.live.lock();
        live.keys().next().copied().unwrap_or_else(current)
    }

    /// Number of live snapshots.
    pub(crate) fn live(&self) -> usize {
        self.live.lock().values().sum()
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
        r.release(a);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(3));
        r.release(c);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(7));
        r.release(b);
        assert_eq!(r.live(), 0);
        assert_eq!(r.gc_watermark(|| Ts::from(9)), Ts::from(9));
    }
}
