//! The MVCC garbage-collection stream: from versions in version order (key
//! ascending, ts descending), keep what some snapshot can still read.
//!
//! With GC watermark `w` (no live or future snapshot reads below it), for
//! each key:
//! 1. every version with ts `> w` is kept (snapshots between `w` and now
//!    may read any of them);
//! 2. of the versions with ts `<= w`, only the newest is kept (a snapshot
//!    at or above `w` reads it, or something newer; nothing reads the older
//!    ones);
//! 3. that newest one is dropped too if it is a tombstone **and** the
//!    output is the bottom of the tree (`bottom`): no older version of the
//!    key can lie beneath, so "deleted" and "absent" read the same. Above
//!    the bottom, the tombstone must stay to hide what lies below.
//!
//! Invariant (tested against a model): every snapshot at or above `w` reads
//! the same through the output (merged with whatever lies beneath, when not
//! the bottom) as through the input.

use crate::error::Result;
use crate::iter::Source;
use crate::types::Ts;

/// One version: key, commit ts, value (`None`: a tombstone).
pub(crate) type Version = (Vec<u8>, Ts, Option<Vec<u8>>);

/// See the module docs. Reads its source from the first version on.
pub(crate) struct GcStream<S> {
    src: S,
    watermark: Ts,
    bottom: bool,
    started: bool,
    /// The key of the last version read, and whether a version of it at
    /// or below the watermark was already seen (kept or dropped).
    key: Vec<u8>,
    settled: bool,
    /// Versions read and dropped, for compaction statistics.
    pub(crate) dropped: u64,
}

impl<S: Source> GcStream<S> {
    pub(crate) fn new(src: S, watermark: Ts, bottom: bool) -> Self {
        Self {
            src,
            watermark,
            bottom,
            started: false,
            key: Vec::new(),
            settled: false,
            dropped: 0,
        }
    }
}

impl<S: Source> Iterator for GcStream<S> {
    type Item = Result<Version>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            self.src.seek_to_first();
        }
        loop {
            if !self.src.valid() {
                return self.src.status().err().map(Err);
            }
            let same_key = self.key.as_slice() == self.src.key();
            if !same_key {
                self.key.clear();
                self.key.extend_from_slice(self.src.key());
                self.settled = false;
            }
            let ts = self.src.ts();
            let keep = if ts > self.watermark {
                true // rule 1
            } else if self.settled {
                false // rule 2: an older one at or below the watermark
            } else {
                self.settled = true;
                // rule 2 keeps it; rule 3 drops a bottom tombstone
                !(self.bottom && self.src.value().is_none())
            };
            let version =
                keep.then(|| (self.key.clone(), ts, self.src.value().map(<[u8]>::to_vec)));
            self.src.next();
            match version {
                Some(v) => return Some(Ok(v)),
                None => self.dropped += 1,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
#[allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::iter::MergeIter;
    use crate::memtable::{MemCursor, Memtable};

    /// `(key, ts) -> value | tombstone`.
    type Model = BTreeMap<(Vec<u8>, u64), Option<Vec<u8>>>;

    fn memtable(versions: impl IntoIterator<Item = ((Vec<u8>, u64), Option<Vec<u8>>)>) -> Memtable {
        let m = Memtable::new();
        for ((k, t), v) in versions {
            m.insert(&k, Ts::from(t), v.as_deref());
        }
        m
    }

    /// What a snapshot at `read_ts` reads for every key, through `sources`.
    fn read_all(sources: &[&Memtable], read_ts: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let children: Vec<Box<dyn Source + '_>> = sources
            .iter()
            .map(|m| Box::new(MemCursor::new(m)) as Box<dyn Source + '_>)
            .collect();
        let rows = crate::iter::VisibleIter::new(
            MergeIter::new(children),
            Ts::from(read_ts),
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            crate::iter::Direction::Forward,
        );
        rows.map(|r| r.unwrap()).collect()
    }

    fn gc(input: &Memtable, watermark: u64, bottom: bool) -> (Memtable, u64) {
        let mut stream = GcStream::new(MemCursor::new(input), Ts::from(watermark), bottom);
        let out = Memtable::new();
        for v in stream.by_ref() {
            let (k, t, v) = v.unwrap();
            out.insert(&k, t, v.as_deref());
        }
        (out, stream.dropped)
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 1..3)
    }

    fn versions() -> impl Strategy<Value = Model> {
        let value = prop::option::weighted(0.7, prop::collection::vec(any::<u8>(), 0..3));
        prop::collection::btree_map((key(), 10u64..40), value, 0..60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The property: after GC, every snapshot at or above the
        /// watermark reads the same as before, at the bottom and above it
        /// (where older data lies beneath and must stay hidden).
        #[test]
        fn after_gc_every_snapshot_at_or_above_the_watermark_reads_the_same(
            upper in versions(),
            beneath in prop::collection::btree_map((key(), 1u64..10), prop::collection::vec(any::<u8>(), 0..3).prop_map(Some), 0..10),
            watermark in 5u64..45,
        ) {
            let input = memtable(upper.clone());
            let (bottom_out, _) = gc(&input, watermark, true);
            for read_ts in watermark..=45 {
                prop_assert_eq!(read_all(&[&bottom_out], read_ts), read_all(&[&input], read_ts));
            }
            // Above the bottom: older versions (ts below every upper one)
            // lie beneath; they must read the same through the output.
            let below = memtable(beneath);
            let (upper_out, _) = gc(&input, watermark, false);
            for read_ts in watermark..=45 {
                prop_assert_eq!(
                    read_all(&[&upper_out, &below], read_ts),
                    read_all(&[&input, &below], read_ts)
                );
            }
        }

        /// And it keeps no more than it must: per key, the versions above
        /// the watermark and at most one at or below it.
        #[test]
        fn gc_keeps_at_most_one_version_at_or_below_the_watermark_per_key(
            upper in versions(),
            watermark in 5u64..45,
            bottom in any::<bool>(),
        ) {
            let input = memtable(upper.clone());
            let (out, dropped) = gc(&input, watermark, bottom);
            let mut c = MemCursor::new(&out);
            c.seek_to_first();
            let mut old_per_key: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            let mut kept = 0;
            while c.valid() {
                kept += 1;
                if c.ts().get() <= watermark {
                    *old_per_key.entry(c.key().to_vec()).or_default() += 1;
                    prop_assert!(!(bottom && c.value().is_none()), "a bottom tombstone kept");
                }
                c.next();
            }
            prop_assert!(old_per_key.values().all(|&n| n == 1));
            prop_assert_eq!(kept + dropped, upper.len() as u64);
            let above = upper.keys().filter(|(_, t)| *t > watermark).count() as u64;
            prop_assert!(kept >= above);
        }
    }

    #[test]
    fn a_worked_example() {
        // a: 30 (value), 20 (tombstone), 10 (value); b: 8 (tombstone).
        let input = memtable([
            ((b"a".to_vec(), 30), Some(b"a30".to_vec())),
            ((b"a".to_vec(), 20), None),
            ((b"a".to_vec(), 10), Some(b"a10".to_vec())),
            ((b"b".to_vec(), 8), None),
        ]);
        let listed = |m: &Memtable| {
            let mut c = MemCursor::new(m);
            c.seek_to_first();
            let mut out = Vec::new();
            while c.valid() {
                out.push((c.key().to_vec(), c.ts().get(), c.value().is_some()));
                c.next();
            }
            out
        };
        // Watermark 25: a@30 kept; a@20 is a's newest at or below: kept
        // (a tombstone, above the bottom) or dropped (bottom); a@10 goes.
        let (above, dropped) = gc(&input, 25, false);
        assert_eq!(
            listed(&above),
            vec![
                (b"a".to_vec(), 30, true),
                (b"a".to_vec(), 20, false),
                (b"b".to_vec(), 8, false)
            ]
        );
        assert_eq!(dropped, 1);
        let (bottom, dropped) = gc(&input, 25, true);
        assert_eq!(listed(&bottom), vec![(b"a".to_vec(), 30, true)]);
        assert_eq!(dropped, 3);
    }
}
