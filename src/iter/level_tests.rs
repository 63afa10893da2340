//! [`LevelIter`] against a model: a sorted vector of every version of the
//! level, walked by the same random seeks and steps, turning around and
//! crossing table boundaries both ways; damage in a middle table; a level
//! that breaks the invariant; and a view's source count.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::memtable::Memtable;
use crate::sst::{TableBuilder, TableOptions, cmp_version};
use crate::vfs::{MemVfs, Vfs};
use crate::view::View;

/// A version: `(key, ts, value or tombstone)`.
type Version = (Vec<u8>, u64, Option<Vec<u8>>);

/// A level's tables and the file system that holds them.
struct Level {
    tables: Vec<Arc<Table>>,
    vfs: MemVfs,
}

fn cmp(a: &Version, key: &[u8], ts: u64) -> std::cmp::Ordering {
    cmp_version(&a.0, Ts::from(a.1), key, Ts::from(ts))
}

/// Writes one table per part (each part non-empty and in version order).
fn build(parts: &[Vec<Version>], block_bytes: usize) -> Level {
    let vfs = MemVfs::new();
    vfs.create_dir_all(Path::new("/t")).unwrap();
    let opts = TableOptions {
        block_bytes,
        ..TableOptions::default()
    };
    let tables = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let path = PathBuf::from(format!("/t/{i}.sst"));
            let mut b = TableBuilder::create(&vfs, &path, opts).unwrap();
            for (k, t, v) in part {
                b.add(k, Ts::from(*t), v.as_deref()).unwrap();
            }
            b.finish(0).unwrap();
            Arc::new(Table::open(&vfs, &path).unwrap())
        })
        .collect();
    Level { tables, vfs }
}

/// Splits versions (in version order) into tables at key boundaries: the
/// `n`th boundary between two keys is a cut when `cuts[n % len]` is set.
fn split(all: &[Version], cuts: &[bool]) -> Vec<Vec<Version>> {
    let mut parts: Vec<Vec<Version>> = Vec::new();
    let mut boundary = 0;
    for v in all {
        let new_key = parts
            .last()
            .and_then(|p| p.last())
            .is_some_and(|last| last.0 != v.0);
        let cut = new_key && !cuts.is_empty() && cuts[boundary % cuts.len()];
        boundary += usize::from(new_key);
        match parts.last_mut() {
            Some(p) if !cut => p.push(v.clone()),
            _ => parts.push(vec![v.clone()]),
        }
    }
    parts
}

#[derive(Debug, Clone)]
enum Op {
    Seek(Vec<u8>, u64),
    SeekForPrev(Vec<u8>, u64),
    First,
    Last,
    Next,
    Prev,
}

/// The model cursor: a position in every version of the level.
fn apply(all: &[Version], pos: Option<usize>, op: &Op) -> Option<usize> {
    let found = |p: usize| (p < all.len()).then_some(p);
    match op {
        Op::Seek(k, t) => found(all.partition_point(|v| cmp(v, k, *t).is_lt())),
        Op::SeekForPrev(k, t) => all
            .partition_point(|v| cmp(v, k, *t).is_le())
            .checked_sub(1),
        Op::First => found(0),
        Op::Last => all.len().checked_sub(1),
        Op::Next => pos.and_then(|p| found(p + 1)),
        Op::Prev => pos.and_then(|p| p.checked_sub(1)),
    }
}

fn run(it: &mut dyn Source, op: &Op) {
    match op {
        Op::Seek(k, t) => it.seek(k, Ts::from(*t)),
        Op::SeekForPrev(k, t) => it.seek_for_prev(k, Ts::from(*t)),
        Op::First => it.seek_to_first(),
        Op::Last => it.seek_to_last(),
        Op::Next => it.next(),
        Op::Prev => it.prev(),
    }
}

/// Runs `ops` on a level built from `parts` and on the model of all their
/// versions, checking position and contents after every op.
fn check(
    parts: &[Vec<Version>],
    block_bytes: usize,
    ops: &[Op],
) -> std::result::Result<(), TestCaseError> {
    let all: Vec<Version> = parts.concat();
    let level = build(parts, block_bytes);
    let mut it = LevelIter::new(&level.tables);
    let mut pos = None;
    prop_assert!(!it.valid());
    for (n, op) in ops.iter().enumerate() {
        run(&mut it, op);
        pos = apply(&all, pos, op);
        prop_assert!(it.status().is_ok());
        let got = it.valid().then(|| {
            (
                it.key().to_vec(),
                it.ts().get(),
                it.value().map(<[u8]>::to_vec),
            )
        });
        let expect = pos.map(|p| all[p].clone());
        prop_assert_eq!(got, expect, "after op {} ({:?})", n, op);
    }
    Ok(())
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'd']), 0..3)
}

fn ts() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..12, 1 => Just(u64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (key(), ts()).prop_map(|(k, t)| Op::Seek(k, t)),
        2 => (key(), ts()).prop_map(|(k, t)| Op::SeekForPrev(k, t)),
        1 => Just(Op::First),
        1 => Just(Op::Last),
        6 => Just(Op::Next),
        6 => Just(Op::Prev),
    ]
}

fn versions() -> impl Strategy<Value = Vec<Version>> {
    let value = prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..4));
    prop::collection::btree_map((key(), 1u64..11), value, 0..60).prop_map(|m| {
        let mut all: Vec<Version> = m.into_iter().map(|((k, t), v)| (k, t, v)).collect();
        all.sort_by(|a, b| cmp(a, &b.0, b.1));
        all
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_level_walks_like_one_sorted_table_under_any_seeks_and_steps(
        all in versions(),
        cuts in prop::collection::vec(any::<bool>(), 0..8),
        block_bytes in prop::sample::select(vec![1usize, 48, 4096]),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        check(&split(&all, &cuts), block_bytes, &ops)?;
    }

    /// Tables that overlap or are out of order break the invariant: the
    /// documented outcome is each table's versions in list order, and no
    /// call panics or fails to end.
    #[test]
    fn a_level_that_breaks_the_invariant_never_panics_and_walks_in_table_order(
        parts in prop::collection::vec(versions().prop_filter("a table is never empty", |v| !v.is_empty()), 0..5),
        ops in prop::collection::vec(op(), 0..40),
    ) {
        let level = build(&parts, 48);
        let mut it = LevelIter::new(&level.tables);
        for op in &ops {
            run(&mut it, op);
        }
        let concat: Vec<(Vec<u8>, u64)> = parts.concat().into_iter().map(|(k, t, _)| (k, t)).collect();
        let mut forward = Vec::new();
        it.seek_to_first();
        while it.valid() && forward.len() <= concat.len() {
            forward.push((it.key().to_vec(), it.ts().get()));
            it.next();
        }
        prop_assert_eq!(&forward, &concat);
        let mut backward = Vec::new();
        it.seek_to_last();
        while it.valid() && backward.len() <= concat.len() {
            backward.push((it.key().to_vec(), it.ts().get()));
            it.prev();
        }
        backward.reverse();
        prop_assert_eq!(&backward, &concat);
    }
}

/// Every seek target of the small alphabet, each followed by steps both
/// ways, then full walks: on the edge shapes a random split may not reach.
fn exhaustive_ops(n: usize) -> Vec<Op> {
    let mut ops = vec![Op::First];
    ops.extend(std::iter::repeat_n(Op::Next, n + 1));
    ops.push(Op::Last);
    ops.extend(std::iter::repeat_n(Op::Prev, n + 1));
    for k in ["", "a", "aa", "b", "ba", "c", "d", "e"] {
        for t in [0, 1, 2, 3, 5, u64::MAX] {
            let k = k.as_bytes().to_vec();
            ops.extend([Op::Seek(k.clone(), t), Op::Prev, Op::Next, Op::Next]);
            ops.extend([Op::SeekForPrev(k, t), Op::Next, Op::Prev, Op::Prev]);
        }
    }
    ops
}

#[test]
fn empty_single_table_and_one_entry_table_levels_walk_like_the_model() {
    let v = |k: &str, t: u64| (k.as_bytes().to_vec(), t, Some(vec![b'x'; k.len()]));
    let tomb = |k: &str, t: u64| (k.as_bytes().to_vec(), t, None);
    let shapes: Vec<Vec<Vec<Version>>> = vec![
        // No tables.
        vec![],
        // One table of one version; one table of many.
        vec![vec![v("b", 2)]],
        vec![vec![
            v("a", 3),
            v("a", 1),
            tomb("b", 2),
            v("c", 5),
            v("c", 2),
        ]],
        // Every table one version, at both ends and in the middle.
        vec![
            vec![v("a", 2)],
            vec![tomb("b", 3)],
            vec![v("c", 1)],
            vec![v("d", 2)],
        ],
        vec![
            vec![v("", 1)],
            vec![v("a", 5), v("a", 2), v("aa", 1)],
            vec![v("b", 3)],
            vec![v("ba", 2), tomb("c", 5), v("c", 1)],
            vec![v("d", 1)],
        ],
    ];
    for parts in &shapes {
        for block_bytes in [1, 4096] {
            let n = parts.iter().map(Vec::len).sum();
            check(parts, block_bytes, &exhaustive_ops(n)).unwrap();
        }
    }
}

#[test]
fn walking_into_a_damaged_middle_table_is_an_error_and_not_valid() {
    let part = |keys: &[&str]| -> Vec<Version> {
        keys.iter()
            .map(|k| (k.as_bytes().to_vec(), 1, Some(b"v".to_vec())))
            .collect()
    };
    let parts = [part(&["a", "b"]), part(&["c", "d"]), part(&["e", "f"])];
    // One version per data block, so the middle table's first block is
    // damaged and its second ("d") is not.
    let level = build(&parts, 1);
    let path = PathBuf::from("/t/1.sst");
    let mut bytes = level.vfs.read_all(&path).unwrap();
    bytes[0] ^= 0x40; // the first data block starts the file
    level.vfs.remove(&path).unwrap();
    level
        .vfs
        .open_write(&path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let mut tables = level.tables.clone();
    tables[1] = Arc::new(Table::open(&level.vfs, &path).unwrap());

    let walk = |it: &mut LevelIter<'_>, forward: bool| {
        let mut seen = Vec::new();
        while it.valid() {
            seen.push(String::from_utf8(it.key().to_vec()).unwrap());
            if forward { it.next() } else { it.prev() }
        }
        seen
    };
    let damaged = |it: &LevelIter<'_>| {
        !it.valid() && matches!(it.status(), Err(crate::error::Error::Corruption { .. }))
    };
    let mut it = LevelIter::new(&tables);
    it.seek_to_first();
    assert_eq!(walk(&mut it, true), ["a", "b"]);
    assert!(damaged(&it), "forward into the damage");
    // Damage is sticky, as in one table: no seek steps over it.
    it.seek(b"e", Ts::MAX);
    assert!(damaged(&it), "a seek after the damage");

    let mut it = LevelIter::new(&tables);
    it.seek_to_last();
    assert_eq!(walk(&mut it, false), ["f", "e", "d"]);
    assert!(damaged(&it), "backward into the damage");

    // Positioned away from it, the damaged table is never read.
    let mut it = LevelIter::new(&tables);
    it.seek(b"e", Ts::MAX);
    assert_eq!(walk(&mut it, true), ["e", "f"]);
    assert!(it.status().is_ok());
    it.seek_for_prev(b"b", Ts::ZERO);
    assert_eq!(walk(&mut it, false), ["b", "a"]);
    assert!(it.status().is_ok());

    // Through the merge and the visibility filter, a scan reports it.
    let children: Vec<Box<dyn Source + '_>> = vec![Box::new(LevelIter::new(&tables))];
    let rows: Vec<_> = VisibleIter::new(
        MergeIter::new(children),
        Ts::from(5),
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
    )
    .collect();
    assert_eq!(rows.len(), 3, "a, b, then the error: {rows:?}");
    assert!(matches!(
        rows[2],
        Err(crate::error::Error::Corruption { .. })
    ));
}

#[test]
fn a_view_merges_one_source_per_deeper_level_not_one_per_table() {
    let v = |k: &str, t: u64| (k.as_bytes().to_vec(), t, Some(k.as_bytes().to_vec()));
    // Level 0: two overlapping tables; level 1: three; level 2: none;
    // level 3: two.
    let parts = [
        vec![v("b", 9), v("x", 9)],
        vec![v("a", 8), v("y", 8)],
        vec![v("c", 3)],
        vec![v("d", 3), v("e", 3)],
        vec![v("f", 3)],
        vec![v("g", 1)],
        vec![v("h", 1), v("z", 1)],
    ];
    let level = build(&parts, 4096);
    let t = |i: usize| Arc::clone(&level.tables[i]);
    let mem = Memtable::new();
    mem.insert(b"m", Ts::from(10), Some(b"m"));
    let view = View::new(
        mem,
        vec![
            vec![t(0), t(1)],
            vec![t(2), t(3), t(4)],
            vec![],
            vec![t(5), t(6)],
        ],
    );
    // The memtable, level 0's two tables, one for level 1, one for level 3.
    assert_eq!(view.sources().len(), 5);
    let only_deep = View::new(Memtable::new(), vec![vec![], vec![t(2), t(3), t(4)]]);
    assert_eq!(
        only_deep.sources().len(),
        1,
        "level 1 (the memtable is empty)"
    );
    // A scan from "c" to "f" leaves out level 3 (g..=z), which cannot hold
    // a row of it, and still reads every row in the bounds.
    let (start, end) = (
        Bound::Included(b"c".to_vec()),
        Bound::Included(b"f".to_vec()),
    );
    assert_eq!(view.sources_in(&start, &end).len(), 4);
    let after_x = Bound::Excluded(b"x".to_vec());
    assert_eq!(
        view.sources_in(&after_x, &Bound::Unbounded).len(),
        4,
        "the memtable, level 0's two tables and level 3 (h..=z); not level 1 (c..=f)"
    );
    let rows: Vec<String> = VisibleIter::new(
        MergeIter::new(view.sources_in(&start, &end)),
        Ts::from(20),
        start.clone(),
        end.clone(),
        Direction::Forward,
    )
    .map(|r| String::from_utf8(r.unwrap().0).unwrap())
    .collect();
    assert_eq!(rows, ["c", "d", "e", "f"]);

    let mut keys: Vec<&str> = vec!["a", "b", "c", "d", "e", "f", "g", "h", "m", "x", "y", "z"];
    for d in [Direction::Forward, Direction::Backward] {
        let rows: Vec<String> = VisibleIter::new(
            MergeIter::new(view.sources()),
            Ts::from(20),
            Bound::Unbounded,
            Bound::Unbounded,
            d,
        )
        .map(|r| String::from_utf8(r.unwrap().0).unwrap())
        .collect();
        assert_eq!(rows, keys, "{d:?}");
        keys.reverse();
    }
}
