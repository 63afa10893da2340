//! The recent-writes index: for keys whose newest version has left memory
//! (flushed to a table) while it was still above the GC watermark, that
//! version's commit ts. The exact conflict check asks it after the
//! memtables, so it never reads a table under the commit-order lock
//! (decision 0017).
//!
//! Invariant (what keeps "first committer wins" exact): for every key whose
//! newest commit ts is above the GC watermark, the newest ts is in a
//! memtable of the current view or in this index. A flush notes a
//! memtable's keys here before it installs the view without that memtable,
//! and `prune` only drops entries at or below the watermark, which no live
//! transaction's read ts is below. A key found nowhere was last written at
//! or below the watermark, so at or below every live read ts: no conflict.

use std::collections::HashMap;

use crate::sync::Mutex;
use crate::types::Ts;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct RecentWrites {
    newest: Mutex<HashMap<Box<[u8]>, Ts>>,
}

impl RecentWrites {
    /// Notes that `key` was committed at `ts` (keeping the newer of two).
    #[cfg(test)]
    pub(crate) fn note(&self, key: &[u8], ts: Ts) {
        let mut map = self.newest.lock();
        match map.get_mut(key) {
            Some(t) => *t = (*t).max(ts),
            None => {
                map.insert(key.into(), ts);
            }
        }
    }

    /// Notes many keys under one lock (a flushed memtable's).
    pub(crate) fn note_all<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = (K, Ts)>) {
        let mut map = self.newest.lock();
        for (key, ts) in keys {
            let slot = map.entry(key.as_ref().into()).or_insert(ts);
            *slot = (*slot).max(ts);
        }
    }

    /// The newest commit ts noted for `key`.
    pub(crate) fn newest(&self, key: &[u8]) -> Option<Ts> {
        self.newest.lock().get(key).copied()
    }

    /// Forgets every entry at or below `watermark` (the GC watermark: no
    /// live transaction reads below it).
    pub(crate) fn prune(&self, watermark: Ts) {
        self.newest.lock().retain(|_, ts| *ts > watermark);
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.newest.lock().len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_newest_ts_wins_and_pruning_keeps_only_what_is_above_the_watermark() {
        let r = RecentWrites::default();
        r.note(b"a", Ts::from(5));
        r.note(b"a", Ts::from(3));
        r.note_all([(&b"b"[..], Ts::from(9)), (&b"a"[..], Ts::from(7))]);
        assert_eq!(r.newest(b"a"), Some(Ts::from(7)));
        assert_eq!(r.newest(b"b"), Some(Ts::from(9)));
        assert_eq!(r.newest(b"c"), None);
        r.prune(Ts::from(7));
        assert_eq!(r.newest(b"a"), None, "at the watermark: gone");
        assert_eq!(r.newest(b"b"), Some(Ts::from(9)));
        assert_eq!(r.len(), 1);
    }

    proptest! {
        #[test]
        fn it_answers_like_a_model_of_newest_ts_above_the_watermark(
            ops in prop::collection::vec((0u8..6, 1u64..50, any::<bool>()), 0..200),
        ) {
            let r = RecentWrites::default();
            let mut model: BTreeMap<u8, u64> = BTreeMap::new();
            let mut watermark = 0;
            for (key, ts, prune) in ops {
                if prune {
                    watermark = watermark.max(ts);
                    r.prune(Ts::from(watermark));
                    model.retain(|_, t| *t > watermark);
                } else {
                    r.note(&[key], Ts::from(ts));
                    let t = model.entry(key).or_insert(ts);
                    *t = (*t).max(ts);
                }
                for k in 0..6u8 {
                    prop_assert_eq!(r.newest(&[k]), model.get(&k).map(|&t| Ts::from(t)));
                }
            }
        }
    }
}
