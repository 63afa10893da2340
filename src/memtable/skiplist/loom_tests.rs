use super::*;
use crate::sync::atomic::AtomicU64;
use crate::sync::{Arc, thread};

/// The writer inserts 20, then 30 (the finger: an append, with a tower of
/// two under seed 7), then 10 (a search, a new first node), and publishes
/// (a Release store, like the applied watermark). A reader that loads the
/// publication (Acquire) and then seeks from the start sees each version
/// absent or whole, in order, and all three once it saw the publication;
/// every node a link leads to is whole (`SkipList::linked`'s debug
/// assertion, on under loom's `-C debug_assertions`). Chunks hold one or two
/// nodes under loom, so the inserts also cross arena chunks. Mutation
/// checks: a Relaxed link store, or setting the entry after linking, fails.
#[test]
fn loom_a_skiplist_reader_sees_every_published_version() {
    loom::model(|| {
        let list = Arc::new(SkipList::<u32, u32>::with_seed(7));
        let published = Arc::new(AtomicU64::new(0));
        let (l, p) = (Arc::clone(&list), Arc::clone(&published));
        let writer = thread::spawn(move || {
            let mut w = l.writer();
            for k in [20, 30, 10] {
                assert!(w.insert(k, k * 10));
            }
            assert_eq!(w.finger_hits(), 1, "30 took the finger");
            drop(w);
            p.store(1, Ordering::Release);
        });
        let seen_published = published.load(Ordering::Acquire) == 1;
        let seen: Vec<(u32, u32)> = std::iter::successors(list.lower_bound(&0), Pos::next)
            .map(|p| (*p.key(), *p.value()))
            .collect();
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        assert!(seen.iter().all(|&(k, v)| v == k * 10), "{seen:?}");
        if seen_published {
            assert_eq!(seen, [(10, 100), (20, 200), (30, 300)]);
        }
        writer.join().unwrap();
        assert_eq!(list.upper_bound(&25).map(|p| *p.key()), Some(20));
        assert_eq!(list.len(), 3);
    });
}

/// A seek beside an insert just below its probe: the list holds 10 and 30,
/// the writer links 20 between them while a reader asks for the first key
/// `>= 25`. The answer is 30 whatever the interleaving. In the memtable,
/// 20 is a newer version of the sought key (versions sort newest first),
/// so handing it out would read above the snapshot. Mutation check: taking
/// the successor by loading `pred`'s link again after the walk (as the
/// first version did) fails it; the bank test caught that one. The reader
/// is the spawned thread: with the roles the other way round loom ran one
/// schedule only (the model thread's seek whole, then the writer) and the
/// mutation passed.
#[test]
fn loom_a_seek_never_lands_below_its_probe() {
    loom::model(|| {
        let list = Arc::new(SkipList::<u32, u32>::with_seed(7));
        {
            let mut w = list.writer();
            assert!(w.insert(10, 100));
            assert!(w.insert(30, 300));
        }
        let l = Arc::clone(&list);
        let reader = thread::spawn(move || l.lower_bound(&25).map(|p| *p.key()));
        assert!(list.writer().insert(20, 200));
        assert_eq!(reader.join().unwrap(), Some(30));
        assert_eq!(list.lower_bound(&15).map(|p| *p.key()), Some(20));
    });
}
