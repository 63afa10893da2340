//! Scans through the public API: `..` without annotations, prefixes, both
//! directions (and both at once), own writes overlaid, empty and inverted
//! ranges, and the end bound that stops a scan before the tombstones
//! behind it; the lending `Cursor` against `Scan` over memtables and
//! tables, and on a damaged table. A model (`BTreeMap`) is the oracle for
//! the random cases.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{collect, kv, mem_db};
use proptest::prelude::*;
use strata::{Db, Durability};

fn fill(db: &Db, rows: &[(&str, &str)]) {
    let mut t = db.begin();
    for (k, v) in rows {
        t.put(k.as_bytes(), v.as_bytes()).unwrap();
    }
    t.commit().unwrap();
}

#[test]
fn a_full_scan_needs_no_type_annotation_and_the_old_spelling_still_compiles() {
    let (_vfs, db) = mem_db(Durability::Sync);
    fill(&db, &[("a", "1"), ("b", "2")]);
    let r = db.begin_read();
    let all = collect(r.scan(..).unwrap());
    assert_eq!(all, vec![kv("a", "1"), kv("b", "2")]);
    assert_eq!(collect(r.scan::<&[u8], _>(..).unwrap()), all);
    let t = db.begin();
    assert_eq!(collect(t.scan(..).unwrap()), all);
}

#[test]
fn scans_run_backwards_and_from_both_ends_without_repeating_a_row() {
    let (_vfs, db) = mem_db(Durability::Sync);
    fill(
        &db,
        &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")],
    );
    let r = db.begin_read();
    let back: Vec<_> = r.scan(..).unwrap().rev().map(Result::unwrap).collect();
    assert_eq!(
        back,
        vec![
            kv("e", "5"),
            kv("d", "4"),
            kv("c", "3"),
            kv("b", "2"),
            kv("a", "1")
        ]
    );
    let mut s = r.scan(b"b".as_slice()..=b"d".as_slice()).unwrap();
    assert_eq!(s.next().unwrap().unwrap(), kv("b", "2"));
    assert_eq!(s.next_back().unwrap().unwrap(), kv("d", "4"));
    assert_eq!(s.next_back().unwrap().unwrap(), kv("c", "3"));
    assert!(s.next().is_none(), "the ends met");
    assert!(s.next_back().is_none());
}

#[test]
fn a_prefix_scan_yields_exactly_the_keys_with_the_prefix_in_both_directions() {
    let (_vfs, db) = mem_db(Durability::Sync);
    fill(
        &db,
        &[
            ("ab", "1"),
            ("ab\u{7f}", "2"),
            ("abc", "3"),
            ("ac", "4"),
            ("a", "5"),
        ],
    );
    let mut t = db.begin();
    t.put(b"ab\xff", b"6").unwrap();
    t.put(b"ab\xff\xff", b"7").unwrap();
    t.delete(b"abc").unwrap();
    let got = collect(t.scan_prefix(b"ab").unwrap());
    let keys: Vec<Vec<u8>> = got.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![
            b"ab".to_vec(),
            b"ab\x7f".to_vec(),
            b"ab\xff".to_vec(),
            b"ab\xff\xff".to_vec()
        ]
    );
    let back: Vec<_> = t
        .scan_prefix(b"ab")
        .unwrap()
        .rev()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back, got.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(db.begin_read().scan_prefix(b"zz").unwrap().count(), 0);
}

#[test]
fn empty_and_inverted_ranges_yield_nothing_and_never_panic() {
    let (_vfs, db) = mem_db(Durability::Sync);
    fill(&db, &[("a", "1"), ("m", "2"), ("z", "3")]);
    let mut t = db.begin();
    t.put(b"n", b"own").unwrap();
    let ranges: Vec<KeyRange<'_>> = vec![
        (Bound::Included(b"z"), Bound::Included(b"a")),
        (Bound::Excluded(b"m"), Bound::Excluded(b"m")),
        (Bound::Included(b"m"), Bound::Excluded(b"m")),
        (Bound::Excluded(b"m"), Bound::Included(b"m")),
    ];
    for r in ranges {
        assert_eq!(t.scan(r).unwrap().count(), 0, "{r:?}");
        assert_eq!(t.scan(r).unwrap().rev().count(), 0, "{r:?}");
        assert_eq!(db.begin_read().scan(r).unwrap().count(), 0, "{r:?}");
    }
}

#[test]
fn scans_around_many_tombstones_yield_exactly_the_live_rows() {
    // 50,000 deleted keys right after the range. The scan's end bound is
    // passed down, so the one-row scan stops at the first tombstone's key
    // (that it takes no steps past it is counted by the unit test
    // `iter::tests::a_scan_stops_at_its_end_bound_without_walking_the_tombstones_beyond`);
    // here, the rows are exact in both directions.
    let (_vfs, db) = mem_db(Durability::Buffered);
    fill(&db, &[("a", "1")]);
    let mut t = db.begin();
    for i in 0..50_000u32 {
        t.put(format!("b{i:06}").as_bytes(), b"x").unwrap();
    }
    t.commit().unwrap();
    let mut t = db.begin();
    for i in 0..50_000u32 {
        t.delete(format!("b{i:06}").as_bytes()).unwrap();
    }
    t.commit().unwrap();
    let r = db.begin_read();
    assert_eq!(
        collect(r.scan(..b"b".as_slice()).unwrap()),
        vec![kv("a", "1")]
    );
    assert_eq!(collect(r.scan(..).unwrap()), vec![kv("a", "1")]);
    assert_eq!(r.scan(..).unwrap().rev().count(), 1);
}

#[test]
fn the_two_ends_meet_on_own_writes_deletes_and_shadowed_keys() {
    let (_vfs, db) = mem_db(Durability::Sync);
    fill(&db, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    let mut t = db.begin();
    t.put(b"b", b"own b").unwrap(); // shadows a stored key
    t.delete(b"c").unwrap(); // hides one
    t.put(b"e", b"own e").unwrap(); // only in the transaction
    // Each order of fronts and backs yields every row exactly once.
    let expect = vec![
        kv("a", "1"),
        kv("b", "own b"),
        kv("d", "4"),
        kv("e", "own e"),
    ];
    for order in 0..16u32 {
        let mut s = t.scan(..).unwrap();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for step in 0..4 {
            if order & (1 << step) == 0 {
                front.extend(s.next().map(Result::unwrap));
            } else {
                back.extend(s.next_back().map(Result::unwrap));
            }
        }
        assert!(s.next().is_none() && s.next_back().is_none(), "{order:04b}");
        back.reverse();
        front.extend(back);
        assert_eq!(front, expect, "{order:04b}");
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Writes `k` (a put of `v`, or a delete) in `t` and in the model.
fn write(t: &mut strata::Txn<'_>, model: &mut Model, k: &[u8], v: Option<&Vec<u8>>) {
    if let Some(v) = v {
        t.put(k, v).unwrap();
        model.insert(k.to_vec(), v.clone());
    } else {
        t.delete(k).unwrap();
        model.remove(k);
    }
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

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// The model's rows between the bounds.
fn in_range(model: &Model, start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> Rows {
    model
        .iter()
        .filter(|(k, _)| std::ops::RangeBounds::contains(&(start.as_ref(), end.as_ref()), *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scans_from_either_end_match_the_model(
        committed in prop::collection::vec((key(), prop::option::weighted(0.7, key())), 0..40),
        own in prop::collection::vec((key(), prop::option::weighted(0.7, key())), 0..10),
        start in bound(),
        end in bound(),
        ends in prop::collection::vec(any::<bool>(), 0..60),
    ) {
        let (_vfs, db) = mem_db(Durability::Buffered);
        let mut model = Model::new();
        for chunk in committed.chunks(7) {
            let mut t = db.begin();
            for (k, v) in chunk {
                write(&mut t, &mut model, k, v.as_ref());
            }
            t.commit().unwrap();
        }
        let mut t = db.begin();
        for (k, v) in &own {
            write(&mut t, &mut model, k, v.as_ref());
        }
        let range = (start.clone(), end.clone());
        let expect = in_range(&model, &start, &end);
        prop_assert_eq!(collect(t.scan(range.clone()).unwrap()), expect.clone());
        // Interleaved ends: fronts ascending, backs descending, together
        // every row exactly once.
        let mut s = t.scan(range).unwrap();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for from_front in ends {
            let row = if from_front { s.next() } else { s.next_back() };
            match row {
                Some(r) => if from_front { front.push(r.unwrap()) } else { back.push(r.unwrap()) },
                None => break,
            }
        }
        front.extend(s.by_ref().map(Result::unwrap));
        back.reverse();
        front.extend(back);
        prop_assert_eq!(front, expect);
    }
}

/// The lending cursor (`ReadTxn::cursor`, `Txn::cursor`, decision 0026)
/// against `Scan` and the model, over every kind of source a view has.
mod cursor {
    use std::path::Path;
    use std::sync::Arc;

    use strata::vfs::{MemVfs, Vfs};
    use strata::{Cursor, Error};

    use super::*;
    use crate::common::{MEM_DB_PATH, options};

    /// What happens after a batch is committed.
    #[derive(Debug, Clone, Copy)]
    enum After {
        /// Nothing: the batch stays in the memtable.
        Stay,
        /// A flush: a new level-0 table, whose keys overlap the others'.
        Flush,
        /// A full compaction: every table into one deeper level.
        Compact,
    }

    fn after() -> impl Strategy<Value = After> {
        prop_oneof![Just(After::Stay), Just(After::Flush), Just(After::Compact)]
    }

    /// Drains `c` from the front, copying each lent row.
    fn forward(c: &mut Cursor<'_>) -> Rows {
        let mut out = Vec::new();
        while let Some(row) = c.next() {
            let (k, v) = row.unwrap();
            out.push((k.to_vec(), v.to_vec()));
        }
        out
    }

    /// Drains `c` from the back, copying each lent row (descending).
    fn backward(c: &mut Cursor<'_>) -> Rows {
        let mut out = Vec::new();
        while let Some(row) = c.next_back() {
            let (k, v) = row.unwrap();
            out.push((k.to_vec(), v.to_vec()));
        }
        out
    }

    /// Takes rows from the two ends of `c` and of `s` in the order `ends`
    /// says (then the rest from the front): both must give the same rows
    /// at every step, and together the model's rows exactly once.
    fn interleaved(mut c: Cursor<'_>, mut s: strata::Scan<'_>, ends: &[bool]) -> (Rows, Rows) {
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for &from_front in ends {
            let (row, owned) = if from_front {
                (c.next(), s.next())
            } else {
                (c.next_back(), s.next_back())
            };
            let row = row.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap());
            assert_eq!(row, owned.map(Result::unwrap), "cursor and scan differ");
            match row {
                Some(r) if from_front => front.push(r),
                Some(r) => back.push(r),
                None => break,
            }
        }
        let rest = forward(&mut c);
        assert_eq!(rest, collect(s), "cursor and scan differ after the mix");
        front.extend(rest);
        back.reverse();
        (front, back)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Batches land in the memtable, in overlapping level-0 tables and
        /// in a compacted level, with deletes. A transaction that began
        /// before the later batches (which add versions above its read ts,
        /// deletes included) scans its own snapshot plus its writes; a
        /// read-only snapshot taken last reads every commit. The cursor
        /// yields exactly `Scan`'s rows and the model's, from either end
        /// and from both at once.
        #[test]
        fn the_cursor_and_scan_read_what_the_model_reads(
            batches in prop::collection::vec(
                (prop::collection::vec((key(), prop::option::weighted(0.7, key())), 0..10), after()),
                1..8,
            ),
            began_at in prop::sample::Index::arbitrary(),
            own in prop::collection::vec((key(), prop::option::weighted(0.6, key())), 0..10),
            start in bound(),
            end in bound(),
            ends in prop::collection::vec(any::<bool>(), 0..40),
        ) {
            let (_vfs, db) = mem_db(Durability::Buffered);
            let began_at = began_at.index(batches.len() + 1);
            let mut model = Model::new();
            let mut older = None;
            for (i, (batch, then)) in batches.iter().enumerate() {
                if i == began_at {
                    older = Some((db.begin(), model.clone()));
                }
                let mut t = db.begin();
                for (k, v) in batch {
                    write(&mut t, &mut model, k, v.as_ref());
                }
                t.commit().unwrap();
                match then {
                    After::Stay => {}
                    After::Flush => db.flush().unwrap(),
                    After::Compact => db.compact().unwrap(),
                }
            }
            let range = (start.clone(), end.clone());
            let snap = db.begin_read();
            let expect = in_range(&model, &start, &end);
            prop_assert_eq!(forward(&mut snap.cursor(range.clone()).unwrap()), expect.clone());
            let mut back = backward(&mut snap.cursor(range.clone()).unwrap());
            back.reverse();
            prop_assert_eq!(back, expect);
            let (mut t, mut model) = older.unwrap_or_else(|| (db.begin(), model));
            for (k, v) in &own {
                write(&mut t, &mut model, k, v.as_ref());
            }
            let expect = in_range(&model, &start, &end);
            prop_assert_eq!(forward(&mut t.cursor(range.clone()).unwrap()), expect.clone());
            prop_assert_eq!(collect(t.scan(range.clone()).unwrap()), expect.clone());
            let mut back = backward(&mut t.cursor(range.clone()).unwrap());
            back.reverse();
            prop_assert_eq!(&back, &expect);
            let mut back: Vec<_> = t.scan(range.clone()).unwrap().rev().map(Result::unwrap).collect();
            back.reverse();
            prop_assert_eq!(&back, &expect);
            let (mut front, back) = interleaved(
                t.cursor(range.clone()).unwrap(),
                t.scan(range).unwrap(),
                &ends,
            );
            front.extend(back);
            prop_assert_eq!(front, expect);
        }
    }

    #[test]
    fn a_prefix_cursor_yields_the_keys_with_the_prefix_both_ways() {
        let (_vfs, db) = mem_db(Durability::Buffered);
        fill(&db, &[("a", "0"), ("ab", "1"), ("abc", "2"), ("b", "3")]);
        db.flush().unwrap();
        let mut t = db.begin();
        t.put(b"abd", b"own").unwrap();
        t.delete(b"ab").unwrap();
        let expect = vec![kv("abc", "2"), kv("abd", "own")];
        assert_eq!(forward(&mut t.cursor_prefix(b"ab").unwrap()), expect);
        let mut back = backward(&mut t.cursor_prefix(b"ab").unwrap());
        back.reverse();
        assert_eq!(back, expect);
        let snap = db.begin_read();
        assert_eq!(
            forward(&mut snap.cursor_prefix(b"ab").unwrap()),
            vec![kv("ab", "1"), kv("abc", "2")]
        );
    }

    /// A data block in the middle of the only table is damaged after the
    /// table was written: the cursor yields the rows before it, then
    /// `Error::Corruption` once, then nothing, from either end, and never
    /// panics; `Scan` reports the same.
    #[test]
    fn a_damaged_table_block_is_a_corruption_error_from_either_end() {
        let vfs = MemVfs::new();
        let db = Db::open_with_vfs(
            MEM_DB_PATH,
            options(Durability::Sync),
            Arc::new(vfs.clone()),
        )
        .unwrap();
        let value = vec![b'v'; 100];
        let mut t = db.begin();
        for i in 0..2000u32 {
            t.put(format!("key{i:05}").as_bytes(), &value).unwrap();
        }
        t.commit().unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        let tables = Path::new(MEM_DB_PATH).join("tables");
        let names = vfs.list(&tables).unwrap();
        assert_eq!(names.len(), 1, "one table: {names:?}");
        let path = tables.join(&names[0]);
        let mut bytes = vfs.read_all(&path).unwrap();
        // The data blocks fill all but the last few KiB of the file.
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        vfs.write_file(&path, bytes);
        let db = Db::open_with_vfs(
            MEM_DB_PATH,
            options(Durability::Sync),
            Arc::new(vfs.clone()),
        )
        .unwrap();
        let snap = db.begin_read();
        for from_front in [true, false] {
            let mut c = snap.cursor::<&[u8], _>(..).unwrap();
            let mut rows = 0;
            let err = loop {
                let row = if from_front { c.next() } else { c.next_back() };
                match row {
                    Some(Ok(_)) => rows += 1,
                    Some(Err(e)) => break e,
                    None => panic!("the damage went unnoticed ({rows} rows)"),
                }
            };
            assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
            assert!(rows > 0 && rows < 2000, "{rows} rows before the damage");
            assert!(
                c.next().is_none() && c.next_back().is_none(),
                "nothing after the error"
            );
            let owned: Vec<_> = if from_front {
                snap.scan::<&[u8], _>(..).unwrap().collect()
            } else {
                snap.scan::<&[u8], _>(..).unwrap().rev().collect()
            };
            assert_eq!(owned.len(), rows + 1);
            assert!(matches!(owned.last(), Some(Err(Error::Corruption { .. }))));
        }
        drop(snap);
        db.close().unwrap();
    }
}
