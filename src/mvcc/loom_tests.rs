//! Loom models of the mvcc protocols. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom_`.
//!
//! Storage is a fake (`Mutex<BTreeMap>`): these models are about the oracle's
//! protocol; the memtable's own skiplist has its model in
//! `memtable::skiplist::loom_tests`.

use std::collections::BTreeMap;
use std::sync::Arc as StdArc;

use super::oracle::{Oracle, WriteKeys};
use crate::sync::{Arc, Mutex, thread};
use crate::types::Ts;

#[derive(Debug)]
struct Keys(Vec<Vec<u8>>);

impl WriteKeys for Keys {
    fn key_count(&self) -> usize {
        self.0.len()
    }
    fn key(&self, i: usize) -> &[u8] {
        &self.0[i]
    }
}

/// key -> [(commit ts, writer id)]
type Store = Mutex<BTreeMap<Vec<u8>, Vec<(Ts, u8)>>>;

fn read(store: &Store, key: &[u8], read_ts: Ts) -> Option<u8> {
    let s = store.lock();
    s.get(key)?
        .iter()
        .filter(|(ts, _)| *ts <= read_ts)
        .max()
        .map(|(_, v)| *v)
}

/// What one writer's attempt did: the read ts it committed against, and its
/// commit ts if it committed (`None`: refused with a conflict).
#[derive(Debug, Clone, Copy)]
struct Attempt {
    read_ts: Ts,
    commit_ts: Option<Ts>,
}

/// Writer `id` writes both `a` and `b` on a snapshot it takes now.
fn commit(oracle: &Oracle, store: &Store, id: u8) -> Attempt {
    let snap = oracle.begin_snapshot();
    let read_ts = snap.ts;
    let keys: StdArc<dyn WriteKeys> = StdArc::new(Keys(vec![b"a".to_vec(), b"b".to_vec()]));
    let newest = |k: &[u8]| {
        store
            .lock()
            .get(k)
            .and_then(|v| v.iter().map(|(t, _)| *t).max())
    };
    let result = oracle.commit(read_ts, &keys, &newest, |_| Ok(()));
    let commit_ts = match result {
        Ok((ts, ())) => {
            for k in [b"a", b"b"] {
                store.lock().entry(k.to_vec()).or_default().push((ts, id));
                thread::yield_now();
            }
            oracle.applied_all([ts]);
            oracle.wait_visible(ts);
            assert!(oracle.read_ts() >= ts, "a returned commit is visible");
            Some(ts)
        }
        Err(e) => {
            assert!(e.is_retryable());
            None
        }
    };
    oracle.end_snapshot(&snap);
    Attempt { read_ts, commit_ts }
}

/// Two writers write the same keys `a` and `b` while a reader reads both.
///
/// Checks (1) first committer wins: at least one writer commits, and if both
/// do, the later one's snapshot already held the earlier one (its read ts is
/// at or above the earlier commit ts), so two writers on the same snapshot
/// never both commit; (2) a reader whose read ts is T sees every commit <= T
/// in full and nothing of any later or still-applying commit: its `a` and `b`
/// come from the same commit, during the run and at the end.
///
/// (2) alone does not depend on the conflict check: both writers write both
/// keys, and the watermark makes a reader see, for each key, the newest commit
/// at or below its read ts, which wrote both. A model checking only (2) passed
/// with the check removed. Mutation check: deleting the loop over written keys
/// in `Oracle::commit` (so no conflict is ever reported) makes (1) fail, on
/// the schedule where both writers take their snapshot before either commits.
#[test]
fn loom_oracle_readers_see_whole_commits() {
    loom::model(|| {
        let oracle = Arc::new(Oracle::new(Ts::ZERO, || 0, super::Governance::default()));
        let store = Arc::new(Store::default());
        let writers: Vec<_> = (1..=2u8)
            .map(|id| {
                let (o, s) = (oracle.clone(), store.clone());
                thread::spawn(move || commit(&o, &s, id))
            })
            .collect();
        let snap = oracle.begin_snapshot();
        let rts = snap.ts;
        let (a, b) = (read(&store, b"a", rts), read(&store, b"b", rts));
        assert_eq!(a, b, "snapshot at {rts:?} saw a partial commit");
        oracle.end_snapshot(&snap);
        let attempts: Vec<Attempt> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        // (commit ts, read ts) of the writers that committed, in commit order.
        let mut won: Vec<(Ts, Ts)> = attempts
            .iter()
            .filter_map(|at| at.commit_ts.map(|c| (c, at.read_ts)))
            .collect();
        assert!(!won.is_empty(), "someone must win: {attempts:?}");
        won.sort_unstable();
        if let [(first_commit, _), (_, second_read)] = won[..] {
            assert!(
                second_read >= first_commit,
                "both committed, the second on a snapshot without the first: {attempts:?}"
            );
        }
        let last = oracle.read_ts();
        assert_eq!(read(&store, b"a", last), read(&store, b"b", last));
    });
}

/// The GC watermark never passes a live snapshot and never moves backwards.
#[test]
fn loom_snapshot_watermark_never_passes_a_live_snapshot() {
    loom::model(|| {
        let oracle = Arc::new(Oracle::new(Ts::from(5), || 0, super::Governance::default()));
        let store = Arc::new(Store::default());
        let o = oracle.clone();
        let writer = thread::spawn(move || commit(&o, &store, 1));
        let o = oracle.clone();
        let reader = thread::spawn(move || {
            let snap = o.begin_snapshot();
            assert!(
                o.gc_watermark() <= snap.ts,
                "watermark passed a live snapshot"
            );
            o.end_snapshot(&snap);
        });
        let first = oracle.gc_watermark();
        let second = oracle.gc_watermark();
        assert!(second >= first, "watermark moved back");
        writer.join().unwrap();
        reader.join().unwrap();
        assert!(oracle.gc_watermark() >= second);
    });
}

/// A time-travel registration (`register_at`, ts 6, retained back to 6)
/// races a compaction taking the history watermark with retention at 8:
/// in every interleaving either the registration is refused or the
/// watermark stays at or below 6 while it lives, so compaction never drops
/// a version the snapshot reads. Mutation check: not comparing with the
/// floor in `register_at` fails it.
#[test]
fn loom_history_watermark_never_passes_a_time_travel_snapshot() {
    use super::snapshot::Registry;
    loom::model(|| {
        let registry = Arc::new(Registry::default());
        let r = registry.clone();
        let reader = thread::spawn(move || r.register_at(Ts::from(6), Ts::from(6)).ok());
        let w = registry.history_watermark(|| Ts::from(9), Ts::from(8));
        let registered = reader.join().unwrap();
        if let Some(h) = registered {
            assert!(
                w <= h.ts,
                "the watermark {w:?} passed a registered snapshot"
            );
            let later = registry.history_watermark(|| Ts::from(9), Ts::from(8));
            assert!(later <= h.ts);
            registry.release(&h);
        }
        assert_eq!(
            registry.history_watermark(|| Ts::from(9), Ts::from(8)),
            Ts::from(8)
        );
    });
}

/// [`super::snapshot::Registry::read_latest`] (what `Db::get` does) races
/// a commit and a compaction that collects below the history watermark.
/// One key: version 1 in a table, the commit puts version 2 into the
/// memtable and then moves the applied ts to 2; the compaction takes the
/// history watermark and installs a view whose table keeps, of every
/// version the old view held, those above it and the newest at or below
/// it. Whenever the read goes ahead unregistered, the view it took holds
/// the version at its read ts. Mutation check: loading the floor before
/// taking the view, or not publishing it, fails it.
#[test]
fn loom_an_unregistered_read_never_misses_its_version() {
    use super::snapshot::Registry;
    use crate::sync::RwLock;
    use crate::sync::atomic::{AtomicU64, Ordering};

    struct View {
        mem: Arc<Mutex<Vec<u64>>>,
        table: Vec<u64>,
    }
    fn versions(v: &View) -> Vec<u64> {
        let mem = v.mem.lock().clone();
        v.table.iter().copied().chain(mem).collect()
    }
    fn empty_mem() -> Arc<Mutex<Vec<u64>>> {
        Arc::new(Mutex::new(Vec::new()))
    }

    loom::model(|| {
        let registry = Arc::new(Registry::default());
        let applied = Arc::new(AtomicU64::new(1));
        let views = Arc::new(RwLock::new(Arc::new(View {
            mem: empty_mem(),
            table: vec![1],
        })));

        let (v, a) = (views.clone(), applied.clone());
        let writer = thread::spawn(move || {
            // The apply stage inserts into the current view's memtable.
            let current = v.read();
            current.mem.lock().push(2);
            drop(current);
            a.store(2, Ordering::Release);
        });
        let (v, a, r) = (views.clone(), applied.clone(), registry.clone());
        let compactor = thread::spawn(move || {
            let now = || Ts::from(a.load(Ordering::Acquire));
            let w = r.history_watermark(now, Ts::from(u64::MAX)).get();
            let mut current = v.write();
            let all = versions(&current);
            let newest_below = all.iter().copied().filter(|&t| t <= w).max();
            let kept = all
                .into_iter()
                .filter(|&t| t > w || Some(t) == newest_below)
                .collect();
            *current = Arc::new(View {
                mem: empty_mem(),
                table: kept,
            });
        });

        let read = registry.read_latest(
            || Ts::from(applied.load(Ordering::Acquire)),
            || Arc::clone(&views.read()),
        );
        if let Some((ts, view)) = read {
            let newest = versions(&view).into_iter().filter(|&t| t <= ts.get()).max();
            assert_eq!(
                newest,
                Some(ts.get()),
                "the read at {ts:?} missed its version"
            );
        }
        writer.join().unwrap();
        compactor.join().unwrap();
    });
}
