//! The merge and the visibility filter against a model: versions spread
//! over memtables and tables, read at every ts, between random bounds, in
//! both directions.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::memtable::Memtable;
use crate::sst::{TableBuilder, TableOptions};
use crate::vfs::{MemVfs, Vfs};

/// `(key, ts) -> value | tombstone`, one entry per version.
type Model = BTreeMap<(Vec<u8>, u64), Option<Vec<u8>>>;

fn rows_at(model: &Model, read_ts: u64, start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> Vec<Row> {
    let mut newest: BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> = BTreeMap::new();
    for ((k, t), v) in model {
        if *t <= read_ts && newest.get(k).is_none_or(|(nt, _)| nt < t) {
            newest.insert(k.clone(), (*t, v.clone()));
        }
    }
    newest
        .into_iter()
        .filter(|(k, _)| (start.as_ref(), end.as_ref()).contains(k))
        .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
        .collect()
}

trait RangeContains {
    fn contains(&self, k: &[u8]) -> bool;
}

impl RangeContains for (Bound<&Vec<u8>>, Bound<&Vec<u8>>) {
    fn contains(&self, k: &[u8]) -> bool {
        std::ops::RangeBounds::contains(self, &k.to_vec())
    }
}

struct Sources {
    mems: Vec<Memtable>,
    tables: Vec<Arc<Table>>,
    _vfs: MemVfs,
}

/// A version of the model, borrowed.
type Placed<'a> = (&'a (Vec<u8>, u64), &'a Option<Vec<u8>>);

/// Puts each version in source `placement % sources` (memtables first),
/// and when the placement byte's top bit is set, in source
/// `placement / 2 % sources` too: the same version in two sources, as a
/// memtable and the table it was flushed to are during a hand-off.
fn spread(model: &Model, placement: &[u8], mems: usize, tables: usize) -> Sources {
    let n = mems + tables;
    let mut parts: Vec<Vec<Placed<'_>>> = vec![Vec::new(); n];
    for (i, (kt, v)) in model.iter().enumerate() {
        let byte = usize::from(
            placement
                .get(i % placement.len().max(1))
                .copied()
                .unwrap_or(0),
        );
        let p = byte % n;
        parts[p].push((kt, v));
        let twin = byte / 2 % n;
        if byte & 0x80 != 0 && twin != p {
            parts[twin].push((kt, v));
        }
    }
    let vfs = MemVfs::new();
    vfs.create_dir_all(Path::new("/t")).unwrap();
    let mems_out: Vec<Memtable> = parts[..mems]
        .iter()
        .map(|part| {
            let m = Memtable::new();
            for ((k, t), v) in part {
                m.insert(k, Ts::from(*t), v.as_deref());
            }
            m
        })
        .collect();
    let mut tables_out = Vec::new();
    for (i, part) in parts[mems..].iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let mut sorted: Vec<_> = part.clone();
        sorted.sort_by(|a, b| {
            crate::sst::cmp_version(&a.0.0, Ts::from(a.0.1), &b.0.0, Ts::from(b.0.1))
        });
        let path = PathBuf::from(format!("/t/{i}.sst"));
        let opts = TableOptions {
            block_bytes: 64,
            ..TableOptions::default()
        };
        let mut b = TableBuilder::create(&vfs, &path, opts).unwrap();
        for ((k, t), v) in sorted {
            b.add(k, Ts::from(*t), v.as_deref()).unwrap();
        }
        b.finish(0).unwrap();
        tables_out.push(Arc::new(Table::open(&vfs, &path).unwrap()));
    }
    Sources {
        mems: mems_out,
        tables: tables_out,
        _vfs: vfs,
    }
}

fn merged(s: &Sources) -> MergeIter<Box<dyn Source + '_>> {
    let mut children: Vec<Box<dyn Source + '_>> = Vec::new();
    for m in &s.mems {
        children.push(Box::new(MemCursor::new(m)));
    }
    for t in &s.tables {
        children.push(Box::new(t.iter()));
    }
    MergeIter::new(children)
}

fn scan(
    s: &Sources,
    read_ts: u64,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    d: Direction,
) -> Vec<Row> {
    let it = VisibleIter::new(merged(s), Ts::from(read_ts), start.clone(), end.clone(), d);
    let mut rows: Vec<Row> = it.map(|r| r.unwrap()).collect();
    if d == Direction::Backward {
        rows.reverse();
    }
    rows
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..4)
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn merged_sources_read_like_the_model_in_both_directions(
        model in prop::collection::btree_map((key(), 1u64..30), prop::option::weighted(0.7, prop::collection::vec(any::<u8>(), 0..4)), 0..120),
        placement in prop::collection::vec(any::<u8>(), 1..16),
        mems in 0usize..3,
        tables in 0usize..4,
        read_ts in 0u64..32,
        start in bound(),
        end in bound(),
    ) {
        let (mems, tables) = if mems + tables == 0 { (1, 0) } else { (mems, tables) };
        let s = spread(&model, &placement, mems, tables);
        let expect = rows_at(&model, read_ts, &start, &end);
        prop_assert_eq!(scan(&s, read_ts, &start, &end, Direction::Forward), expect.clone());
        prop_assert_eq!(scan(&s, read_ts, &start, &end, Direction::Backward), expect);
    }

    #[test]
    fn the_merge_yields_every_version_once_in_order_and_turns_around(
        model in prop::collection::btree_map((key(), 1u64..30), prop::option::of(prop::collection::vec(any::<u8>(), 0..3)), 1..80),
        placement in prop::collection::vec(any::<u8>(), 1..16),
        from in any::<prop::sample::Index>(),
        turns in prop::collection::vec(any::<bool>(), 0..40),
    ) {
        let s = spread(&model, &placement, 2, 2);
        let all: Vec<(Vec<u8>, u64)> = {
            let mut v: Vec<_> = model.keys().cloned().collect();
            v.sort_by(|a, b| crate::sst::cmp_version(&a.0, Ts::from(a.1), &b.0, Ts::from(b.1)));
            v
        };
        let mut m = merged(&s);
        m.seek_to_first();
        let mut got = Vec::new();
        while m.valid() {
            got.push((m.key().to_vec(), m.ts().get()));
            m.next();
        }
        prop_assert_eq!(&got, &all);
        // A walk that changes direction at random, from a random version
        // (so that it does not stop at once before the first), stays on
        // the model's order.
        let from = from.index(all.len());
        m.seek(&all[from].0, Ts::from(all[from].1));
        let mut pos = isize::try_from(from).unwrap();
        for forward in turns {
            if forward { m.next(); pos += 1; } else { m.prev(); pos -= 1; }
            let Some(expect) = usize::try_from(pos).ok().and_then(|p| all.get(p)) else {
                prop_assert!(!m.valid());
                break;
            };
            prop_assert_eq!((m.key().to_vec(), m.ts().get()), expect.clone());
        }
    }
}

#[test]
fn a_scan_stops_at_its_end_bound_without_walking_the_tombstones_beyond() {
    // 10,000 deleted keys after the range: a scan that walked them would
    // step 10,000 times; counting steps through a wrapper source proves it
    // does not.
    struct Counting<'a> {
        inner: MemCursor<'a>,
        steps: &'a std::cell::Cell<usize>,
    }
    impl Source for Counting<'_> {
        fn seek(&mut self, k: &[u8], t: Ts) {
            self.inner.seek(k, t);
        }
        fn seek_for_prev(&mut self, k: &[u8], t: Ts) {
            self.inner.seek_for_prev(k, t);
        }
        fn seek_to_first(&mut self) {
            self.inner.seek_to_first();
        }
        fn seek_to_last(&mut self) {
            self.inner.seek_to_last();
        }
        fn next(&mut self) {
            self.steps.set(self.steps.get() + 1);
            self.inner.next();
        }
        fn prev(&mut self) {
            self.steps.set(self.steps.get() + 1);
            self.inner.prev();
        }
        fn valid(&self) -> bool {
            self.inner.valid()
        }
        fn key(&self) -> &[u8] {
            self.inner.key()
        }
        fn ts(&self) -> Ts {
            self.inner.ts()
        }
        fn value(&self) -> Option<&[u8]> {
            self.inner.value()
        }
        fn status(&self) -> crate::error::Result<()> {
            Ok(())
        }
    }
    let m = Memtable::new();
    m.insert(b"a", Ts::from(1), Some(b"1"));
    for i in 0..10_000u32 {
        m.insert(format!("b{i:05}").as_bytes(), Ts::from(2), None);
    }
    let steps = std::cell::Cell::new(0);
    let src = Counting {
        inner: MemCursor::new(&m),
        steps: &steps,
    };
    let rows: Vec<Row> = VisibleIter::new(
        src,
        Ts::from(5),
        Bound::Unbounded,
        Bound::Excluded(b"b".to_vec()),
        Direction::Forward,
    )
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(rows, vec![(b"a".to_vec(), b"1".to_vec())]);
    assert!(steps.get() <= 2, "{} steps", steps.get());
}

#[test]
fn a_damaged_block_mid_key_is_an_error_not_an_older_version() {
    // "k"@9 and "k"@5, each in a data block of its own, and the first
    // block damaged. Backwards, "k"@5 comes first and "k"@9, the version a
    // reader at ts 10 must see, is in the damaged block: the scan must
    // report the damage, not yield "k" = "old".
    let vfs = MemVfs::new();
    vfs.create_dir_all(Path::new("/t")).unwrap();
    let path = PathBuf::from("/t/1.sst");
    let opts = TableOptions {
        block_bytes: 1,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::create(&vfs, &path, opts).unwrap();
    b.add(b"k", Ts::from(9), Some(b"new")).unwrap();
    b.add(b"k", Ts::from(5), Some(b"old")).unwrap();
    assert_eq!(b.finish(0).unwrap().properties.data_blocks, 2);
    let mut bytes = vfs.read_all(&path).unwrap();
    bytes[0] ^= 0x40; // the first data block starts the file
    vfs.remove(&path).unwrap();
    vfs.open_write(&path).unwrap().write_all(&bytes).unwrap();
    let table = Arc::new(Table::open(&vfs, &path).unwrap());
    for d in [Direction::Forward, Direction::Backward] {
        let children: Vec<Box<dyn Source + '_>> = vec![Box::new(table.iter())];
        let mut it = VisibleIter::new(
            MergeIter::new(children),
            Ts::from(10),
            Bound::Unbounded,
            Bound::Unbounded,
            d,
        );
        match it.next() {
            Some(Err(crate::error::Error::Corruption { .. })) => {}
            other => panic!("{d:?}: {other:?}"),
        }
        assert!(it.next().is_none(), "{d:?}: the scan ends at the damage");
    }
}
