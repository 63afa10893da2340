use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::sync::atomic::AtomicBool;
use crate::sync::{Arc, thread};

/// Keys in order, walking forwards from the first.
fn forward(list: &SkipList<u32, u32>) -> Vec<(u32, u32)> {
    std::iter::successors(list.first(), Pos::next)
        .map(|p| (*p.key(), *p.value()))
        .collect()
}

/// Keys in reverse order, walking backwards from the last.
fn backward(list: &SkipList<u32, u32>) -> Vec<(u32, u32)> {
    std::iter::successors(list.last(), Pos::prev)
        .map(|p| (*p.key(), *p.value()))
        .collect()
}

/// Everything a reader can ask agrees with the model.
fn check(list: &SkipList<u32, u32>, model: &BTreeMap<u32, u32>, probes: &[u32]) {
    let want: Vec<(u32, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(list.len(), model.len());
    assert_eq!(forward(list), want);
    let mut back = backward(list);
    back.reverse();
    assert_eq!(back, want);
    for p in probes {
        let at = |pos: Option<Pos<'_, u32, u32>>| pos.map(|p| (*p.key(), *p.value()));
        let lower = model.range(p..).next().map(|(k, v)| (*k, *v));
        let upper = model.range(..=p).next_back().map(|(k, v)| (*k, *v));
        assert_eq!(at(list.lower_bound(p)), lower, "lower_bound({p})");
        assert_eq!(at(list.upper_bound(p)), upper, "upper_bound({p})");
    }
}

#[test]
fn an_empty_list_has_no_entries() {
    let list = SkipList::<u32, u32>::new();
    assert!(list.first().is_none() && list.last().is_none());
    assert!(list.lower_bound(&0).is_none() && list.upper_bound(&u32::MAX).is_none());
    assert_eq!((list.len(), list.heap_bytes()), (0, 0));
}

#[test]
fn ascending_commits_append_through_the_finger() {
    let list = SkipList::new();
    let mut model = BTreeMap::new();
    // Ten "commits" of ascending keys, each above the last: every insert
    // but the very first takes the finger, across writer guards too.
    for c in 0..10u32 {
        let mut w = list.writer();
        for k in c * 1000..(c + 1) * 1000 {
            assert!(w.insert(k * 2, k));
            model.insert(k * 2, k);
        }
        assert_eq!(w.finger_hits(), u64::from((c + 1) * 1000 - 1));
    }
    check(
        &list,
        &model,
        &[0, 1, 2, 999, 10_000, 19_998, 19_999, 20_000],
    );
}

#[test]
fn a_key_out_of_order_searches_and_the_next_one_fits_again() {
    let list = SkipList::new();
    let mut w = list.writer();
    for k in [10, 20, 30] {
        w.insert(k, k);
    }
    assert_eq!(w.finger_hits(), 2);
    w.insert(15, 15); // below the last: a search
    assert_eq!(w.finger_hits(), 2);
    w.insert(16, 16); // above 15, below its successor 20: the finger
    assert_eq!(w.finger_hits(), 3);
    w.insert(25, 25); // above 16 but past its successor 20: a search
    assert_eq!(w.finger_hits(), 3);
    w.insert(5, 5);
    drop(w);
    let model = [5, 10, 15, 16, 20, 25, 30].map(|k| (k, k)).into();
    check(&list, &model, &[0, 5, 15, 17, 26, 31]);
}

#[test]
fn a_repeated_key_is_refused_and_changes_nothing() {
    let list = SkipList::new();
    let mut w = list.writer();
    assert!(w.insert(1, 10));
    assert!(w.insert(2, 20));
    assert!(!w.insert(2, 99), "the last key again");
    assert!(!w.insert(1, 99), "an earlier key again");
    assert!(w.insert(3, 30));
    drop(w);
    check(&list, &[(1, 10), (2, 20), (3, 30)].into(), &[0, 1, 2, 3, 4]);
}

#[test]
fn towers_are_a_quarter_taller_per_level() {
    let mut rng = 1;
    let mut counts = [0u32; MAX_HEIGHT + 1];
    for _ in 0..100_000 {
        counts[random_height(&mut rng)] += 1;
    }
    // About 75,000 of height 1, 18,750 of height 2, 4,700 of height 3.
    assert!((73_000..77_000).contains(&counts[1]), "{counts:?}");
    assert!((17_500..20_000).contains(&counts[2]), "{counts:?}");
    assert!((4_000..5_400).contains(&counts[3]), "{counts:?}");
}

#[test]
fn arena_bytes_stay_below_the_memtables_per_entry_charge() {
    // The memtable charges `ENTRY_OVERHEAD_BYTES` per entry for its node and
    // links (its invariant 3); past the first chunks, the arenas cost less.
    use crate::memtable::{ENTRY_OVERHEAD_BYTES, KeyBuf, Stored, VersionKey};
    let list = SkipList::<VersionKey, Stored>::new();
    let mut w = list.writer();
    for i in 0..100_000u64 {
        let key = KeyBuf::new(&i.to_le_bytes());
        w.insert(
            VersionKey {
                key,
                ts: crate::types::Ts::from(1),
            },
            None,
        );
    }
    drop(w);
    #[cfg(target_pointer_width = "64")]
    assert_eq!(size_of::<Node<VersionKey, Stored>>(), 72, "decision 0030");
    let (bytes, charged) = (list.heap_bytes(), list.len() as u64 * ENTRY_OVERHEAD_BYTES);
    assert!(bytes < charged, "{bytes} bytes for {} entries", list.len());
}

#[test]
fn readers_beside_the_writer_see_sorted_whole_entries() {
    let list = Arc::new(SkipList::<u32, u32>::new());
    let done = Arc::new(AtomicBool::new(false));
    let (l, d) = (Arc::clone(&list), Arc::clone(&done));
    let writer = thread::Builder::new().spawn(move || {
        let mut w = l.writer();
        for i in 0..20_000u32 {
            // Ascending runs of 100 interleaved with scattered keys.
            let k = if i % 100 == 99 {
                i.wrapping_mul(2_654_435_761)
            } else {
                i * 3
            };
            w.insert(k, k ^ 0x5555);
        }
        d.store(true, Ordering::Release);
    });
    let writer = writer.unwrap();
    loop {
        let finished = done.load(Ordering::Acquire);
        let seen = forward(&list);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert!(seen.iter().all(|(k, v)| *v == k ^ 0x5555), "whole");
        if finished {
            assert_eq!(seen.len(), 20_000, "after the writer: everything");
            break;
        }
    }
    writer.join().unwrap();
}

/// A batch of inserts: an ascending run or scattered keys.
#[derive(Debug, Clone)]
enum Run {
    Ascending { start: u32, step: u32, n: u32 },
    Scattered(Vec<u32>),
}

fn run() -> impl Strategy<Value = Run> {
    prop_oneof![
        (0..4000u32, 1..4u32, 1..80u32).prop_map(|(start, step, n)| Run::Ascending {
            start,
            step,
            n
        }),
        prop::collection::vec(0..4000u32, 1..20).prop_map(Run::Scattered),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Commits (one writer guard each) of ascending runs and scattered keys,
    /// repeats included, against a `BTreeMap`: after each commit, iteration
    /// both ways and bounds at random probes agree.
    #[test]
    fn matches_a_btreemap(
        commits in prop::collection::vec(prop::collection::vec(run(), 1..5), 1..8),
        probes in prop::collection::vec(0..4100u32, 20),
        seed in any::<u64>(),
    ) {
        let list = SkipList::with_seed(seed);
        let mut model = BTreeMap::new();
        for (c, runs) in commits.iter().enumerate() {
            let mut w = list.writer();
            for r in runs {
                let keys: Vec<u32> = match r {
                    Run::Ascending { start, step, n } => (0..*n).map(|i| start + i * step).collect(),
                    Run::Scattered(keys) => keys.clone(),
                };
                for k in keys {
                    let fresh = !model.contains_key(&k);
                    prop_assert_eq!(w.insert(k, c as u32), fresh, "insert {}", k);
                    model.entry(k).or_insert(c as u32);
                }
            }
            drop(w);
            check(&list, &model, &probes);
        }
    }
}
