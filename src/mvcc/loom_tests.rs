//! Loom models of the mvcc protocols. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom_`.
//!
//! Storage is a fake (`Mutex<BTreeMap>`): loom cannot see into crossbeam-skiplist.

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

fn commit(oracle: &Oracle, store: &Store, id: u8) -> bool {
    let read_ts = oracle.begin_snapshot();
    let keys: StdArc<dyn WriteKeys> = StdArc::new(Keys(vec![b"a".to_vec(), b"b".to_vec()]));
    let newest = |k: &[u8]| {
        store
            .lock()
            .get(k)
            .and_then(|v| v.iter().map(|(t, _)| *t).max())
    };
    let result = oracle.commit(read_ts, &keys, &newest, |_| Ok(()));
    let ok = match result {
        Ok((ts, ())) => {
            for k in [b"a", b"b"] {
                store.lock().entry(k.to_vec()).or_default().push((ts, id));
                thread::yield_now();
            }
            oracle.applied_all([ts]);
            oracle.wait_visible(ts);
            assert!(oracle.read_ts() >= ts, "a returned commit is visible");
            true
        }
        Err(e) => {
            assert!(e.is_retryable());
            false
        }
    };
    oracle.end_snapshot(read_ts);
    ok
}

/// A reader whose read ts is T sees every commit <= T in full and nothing of
/// any later or still-applying commit; first committer wins on a shared key.
#[test]
fn loom_oracle_readers_see_whole_commits() {
    loom::model(|| {
        let oracle = Arc::new(Oracle::new(Ts::ZERO, || 0));
        let store = Arc::new(Store::default());
        let writers: Vec<_> = (1..=2u8)
            .map(|id| {
                let (o, s) = (oracle.clone(), store.clone());
                thread::spawn(move || commit(&o, &s, id))
            })
            .collect();
        let rts = oracle.begin_snapshot();
        let (a, b) = (read(&store, b"a", rts), read(&store, b"b", rts));
        assert_eq!(a, b, "snapshot at {rts:?} saw a partial commit");
        oracle.end_snapshot(rts);
        let committed = writers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&c| c)
            .count();
        assert!(committed >= 1, "someone must win");
        let last = oracle.read_ts();
        assert_eq!(read(&store, b"a", last), read(&store, b"b", last));
    });
}

/// The GC watermark never passes a live snapshot and never moves backwards.
#[test]
fn loom_snapshot_watermark_never_passes_a_live_snapshot() {
    loom::model(|| {
        let oracle = Arc::new(Oracle::new(Ts::from(5), || 0));
        let store = Arc::new(Store::default());
        let o = oracle.clone();
        let writer = thread::spawn(move || commit(&o, &store, 1));
        let o = oracle.clone();
        let reader = thread::spawn(move || {
            let ts = o.begin_snapshot();
            assert!(o.gc_watermark() <= ts, "watermark passed a live snapshot");
            o.end_snapshot(ts);
        });
        let first = oracle.gc_watermark();
        let second = oracle.gc_watermark();
        assert!(second >= first, "watermark moved back");
        writer.join().unwrap();
        reader.join().unwrap();
        assert!(oracle.gc_watermark() >= second);
    });
}
