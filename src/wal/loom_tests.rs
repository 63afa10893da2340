//! Loom models of group commit, over a fake in-memory sink.

use std::io;

use super::format::{CommitFrameBuilder, SYNC_MARK_FRAME_BYTES, sync_mark};
use super::group_commit::{Apply, GroupCommit, LogSink, SyncHandle};
use super::reader::{Chain, Outcome, scan_segment};
use crate::error::Error;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex, thread};
use crate::types::{Lsn, Ts};

#[derive(Debug, Default)]
struct FakeSink {
    data: Vec<u8>,
    synced_len: usize,
    /// Bytes written, and bytes a sync through the second handle
    /// (`sync_handle`) covered: shared with that handle, as a second file
    /// descriptor shares the file.
    written: std::sync::Arc<AtomicUsize>,
    handle_synced: std::sync::Arc<AtomicUsize>,
    /// With `fail_syncs`: syncs that succeed before every later one fails.
    ok_syncs: usize,
    fail_syncs: bool,
    panic_in_sync: bool,
}

impl LogSink for FakeSink {
    fn write_batch(&mut self, batch: &mut [u8], synced: Lsn, _: Lsn, _: u32) -> io::Result<()> {
        batch[..SYNC_MARK_FRAME_BYTES].copy_from_slice(&sync_mark(0, synced));
        self.data.extend_from_slice(batch);
        self.written.store(self.data.len(), Ordering::SeqCst);
        Ok(())
    }
    fn sync_handle(&mut self) -> Option<std::sync::Arc<dyn SyncHandle>> {
        Some(std::sync::Arc::new(FakeHandle {
            written: self.written.clone(),
            synced: self.handle_synced.clone(),
        }))
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.panic_in_sync {
            panic!("{INJECTED_PANIC}");
        }
        if self.fail_syncs {
            if self.ok_syncs == 0 {
                return Err(io::Error::other("injected"));
            }
            self.ok_syncs -= 1;
        }
        self.synced_len = self.data.len();
        Ok(())
    }
}

/// The fake's second handle: a sync covers what was written when it runs.
#[derive(Debug)]
struct FakeHandle {
    written: std::sync::Arc<AtomicUsize>,
    synced: std::sync::Arc<AtomicUsize>,
}

impl SyncHandle for FakeHandle {
    fn sync(&self) -> io::Result<()> {
        self.synced
            .store(self.written.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    }
}

/// The payload of the panics the models inject.
const INJECTED_PANIC: &str = "injected panic";

/// Keeps injected panics quiet (loom runs a model thousands of times);
/// every other panic still reports through the default hook.
fn quiet_injected_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let injected = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|s| s == INJECTED_PANIC);
            if !injected {
                default(info);
            }
        }));
    });
}

/// Records applied jobs (commit ts, durable) in the order the leader applies
/// them; with `panic_at`, applying that job panics (the jobs of its batch
/// before it are recorded: a half-applied batch).
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(u64, bool)>>, Option<u64>);

impl Apply<u64> for Arc<Recorder> {
    fn apply(&self, jobs: Vec<u64>, durable: bool) {
        let cut = jobs.iter().position(|&ts| durable && self.1 == Some(ts));
        let applied = jobs.iter().take(cut.unwrap_or(jobs.len()));
        self.0.lock().extend(applied.map(|&ts| (ts, durable)));
        if cut.is_some() {
            panic!("{INJECTED_PANIC}");
        }
    }
}

type Queue = GroupCommit<FakeSink, u64, Arc<Recorder>>;

/// A queue over `sink` that records applied jobs in `applied`.
fn queue(sink: FakeSink, applied: &Arc<Recorder>, always_sync: bool) -> Arc<Queue> {
    // Any spin limit: under loom a spin phase is one round (no time).
    let spin = std::time::Duration::from_millis(1);
    Arc::new(Queue::new(sink, applied.clone(), 0, Lsn::ZERO, 0, always_sync).with_spin_limit(spin))
}

/// The commit-order lock and clock, as the oracle keeps them.
type Order = Mutex<u64>;

fn commit(gc: &Queue, order: &Order, applied: &Recorder) -> Result<Lsn, Error> {
    let mut frame = CommitFrameBuilder::with_capacity(8);
    frame.push(b"k", Some(b"v"))?;
    let frame = frame.finish();
    let (lsn, ts) = {
        // The clock counts successful enqueues.
        let mut clock = order.lock();
        let ts = *clock + 1;
        let lsn = gc.enqueue(&frame, Ts::from(ts), |_| ts)?;
        *clock = ts;
        (lsn, ts)
    };
    gc.wait(lsn, false)?;
    assert!(
        applied.0.lock().contains(&(ts, true)),
        "returned before its commit was applied"
    );
    Ok(lsn)
}

/// Runs [`commit`] on a new thread.
fn spawn_commit(
    gc: &Arc<Queue>,
    order: &Arc<Order>,
    applied: &Arc<Recorder>,
) -> thread::JoinHandle<Result<Lsn, Error>> {
    let (gc, order, applied) = (gc.clone(), order.clone(), applied.clone());
    thread::spawn(move || commit(&gc, &order, &applied))
}

/// Commits running on spawned threads.
type Committers = Vec<thread::JoinHandle<Result<Lsn, Error>>>;

/// A queue over a fresh fake sink, its clock and recorder, and two commits
/// already running on it.
fn two_spawned_commits(always_sync: bool) -> (Arc<Queue>, Arc<Order>, Arc<Recorder>, Committers) {
    let applied = Arc::new(Recorder::default());
    let gc = queue(FakeSink::default(), &applied, always_sync);
    let order = Arc::new(Order::default());
    let handles = (0..2)
        .map(|_| spawn_commit(&gc, &order, &applied))
        .collect();
    (gc, order, applied, handles)
}

/// Runs a model with a preemption bound of 3 (some hazards need three).
fn check_with_three_preemptions(f: impl Fn() + Sync + Send + 'static) {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(f);
}

/// Each waiter returns once with success after its record is synced; the WAL
/// holds the records in LSN order with rising commit timestamps.
#[test]
fn loom_group_commit_wakes_each_waiter_with_its_result_in_order() {
    loom::model(|| {
        let applied = Arc::new(Recorder::default());
        let gc = queue(FakeSink::default(), &applied, true);
        let order = Arc::new(Order::default());
        let handles: Vec<_> = (0..2)
            .map(|_| spawn_commit(&gc, &order, &applied))
            .collect();
        let mut lsns: Vec<Lsn> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        lsns.sort();
        assert_eq!(lsns, vec![Lsn(1), Lsn(2)]);
        gc.with_sink(|sink| {
            assert_eq!(
                sink.synced_len,
                sink.data.len(),
                "every acknowledged byte synced"
            );
            let mut seen = Vec::new();
            let mut chain = Chain::default();
            let end = scan_segment(&sink.data, 0, 0, &mut chain, false, &mut |rec| {
                seen.push((rec.header.lsn, rec.header.commit_ts));
                Ok(())
            });
            assert_eq!(end.ok(), Some(Outcome::Clean));
            assert_eq!(seen, vec![(Lsn(1), Ts::from(1)), (Lsn(2), Ts::from(2))]);
        });
        assert!(gc.counters().syncs <= 2);
        assert_eq!(
            *applied.0.lock(),
            vec![(1, true), (2, true)],
            "applied once each, in order"
        );
    });
}

/// A failed sync fails every waiter of that batch and poisons the queue.
#[test]
fn loom_group_commit_failure_is_sticky() {
    loom::model(|| {
        let sink = FakeSink {
            fail_syncs: true,
            ..FakeSink::default()
        };
        let applied = Arc::new(Recorder::default());
        let gc = queue(sink, &applied, true);
        let order = Arc::new(Order::default());
        let other = spawn_commit(&gc, &order, &applied);
        let mine = commit(&gc, &order, &applied);
        let theirs = other.join().unwrap();
        for r in [&mine, &theirs] {
            assert!(matches!(r, Err(Error::Io(_) | Error::Poisoned)), "{r:?}");
        }
        assert!(gc.is_poisoned());
        assert!(matches!(
            commit(&gc, &order, &applied),
            Err(Error::Poisoned)
        ));
        let jobs = applied.0.lock().clone();
        assert!(
            jobs.iter().all(|&(_, durable)| !durable),
            "nothing failed may be applied"
        );
        let enqueued = *order.lock();
        let expected: Vec<_> = (1..=enqueued).map(|ts| (ts, false)).collect();
        assert_eq!(
            jobs, expected,
            "every enqueued job is abandoned exactly once, in order"
        );
    });
}

/// Three commits from two threads, so that one batch can be applied while
/// the next is written and synced: batches are applied in LSN order, each
/// commit returns only after it was applied, and everything is synced.
#[test]
fn loom_group_commit_pipeline_applies_in_order() {
    loom::model(|| {
        let applied = Arc::new(Recorder::default());
        let gc = queue(FakeSink::default(), &applied, true);
        let order = Arc::new(Order::default());
        let (gc2, order2, applied2) = (gc.clone(), order.clone(), applied.clone());
        let other = thread::spawn(move || {
            let a = commit(&gc2, &order2, &applied2).unwrap();
            let b = commit(&gc2, &order2, &applied2).unwrap();
            assert!(a < b);
        });
        commit(&gc, &order, &applied).unwrap();
        other.join().unwrap();
        assert_eq!(
            *applied.0.lock(),
            vec![(1, true), (2, true), (3, true)],
            "applied once each, in order"
        );
        gc.with_sink(|sink| assert_eq!(sink.synced_len, sink.data.len()));
        let c = gc.counters();
        assert_eq!(c.synced_commits, 3);
        assert!(c.syncs <= 3);
    });
}

/// Buffered queue: a commit returns once written and applied, without a
/// sync; `sync_all` from another thread returns only once everything
/// enqueued before it is synced.
#[test]
fn loom_group_commit_sync_all_covers_buffered_commits() {
    loom::model(|| {
        let applied = Arc::new(Recorder::default());
        let gc = queue(FakeSink::default(), &applied, false);
        let order = Arc::new(Order::default());
        let other = spawn_commit(&gc, &order, &applied);
        commit(&gc, &order, &applied).unwrap();
        let before = gc.with_sink(|sink| sink.data.len());
        gc.sync_all().unwrap();
        gc.with_sink(|sink| {
            assert!(sink.synced_len >= before, "sync_all returned before a sync");
        });
        other.join().unwrap().unwrap();
        assert_eq!(*applied.0.lock(), vec![(1, true), (2, true)]);
    });
}

/// Three committers, so that a leader can keep the write stage for a second
/// batch while another waiter of its first batch applies it: every commit
/// returns (no batch is left without an applier), applied in order.
#[test]
fn loom_group_commit_three_committers_chained_batches_all_return() {
    // The lost-wakeup this model found needed three preemptions.
    check_with_three_preemptions(|| {
        let (gc, order, applied, handles) = two_spawned_commits(true);
        commit(&gc, &order, &applied).unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(
            *applied.0.lock(),
            vec![(1, true), (2, true), (3, true)],
            "applied once each, in order"
        );
        gc.with_sink(|sink| assert_eq!(sink.synced_len, sink.data.len()));
    });
}

/// Buffered queue with two committers and a concurrent `sync_all`: whatever
/// was enqueued before `sync_all` began is synced when it returns, even if
/// the batch it waited for was written without a sync.
#[test]
fn loom_group_commit_sync_all_is_not_settled_by_an_unsynced_batch() {
    check_with_three_preemptions(|| {
        let (gc, _order, _applied, handles) = two_spawned_commits(false);
        let before = gc.last_lsn();
        gc.sync_all().unwrap();
        let synced = gc.with_sink(|sink| sink.data[..sink.synced_len].to_vec());
        let mut chain = Chain::default();
        let _ = scan_segment(&synced, 0, 0, &mut chain, true, &mut |_| Ok(()));
        assert!(
            chain.last_lsn >= before,
            "sync_all returned with lsn {before} unsynced"
        );
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
}

/// Buffered queue, two committers and a concurrent background sync
/// (`sync_written`, through the sink's second handle): the LSN it reports
/// durable never exceeds the records a returned sync covered. Mutation
/// check: taking the target from the last enqueued LSN instead of the last
/// written one makes this fail (a record enqueued but not yet written is
/// claimed durable).
#[test]
fn loom_group_commit_background_sync_claims_only_synced_records() {
    loom::model(|| {
        let (gc, _order, _applied, handles) = two_spawned_commits(false);
        let durable = gc.sync_written().unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let (data, covered) = gc.with_sink(|sink| {
            let by_handle = sink.handle_synced.load(Ordering::SeqCst);
            (sink.data.clone(), by_handle.max(sink.synced_len))
        });
        let mut chain = Chain::default();
        let _ = scan_segment(&data[..covered], 0, 0, &mut chain, true, &mut |_| Ok(()));
        assert!(
            durable <= chain.last_lsn && gc.counters().durable <= chain.last_lsn,
            "lsn {durable} claimed durable, {} synced",
            chain.last_lsn
        );
    });
}

/// Enqueues one commit (as `commit` does) without waiting for it.
fn enqueue(gc: &Queue, order: &Order) -> Lsn {
    let mut frame = CommitFrameBuilder::with_capacity(8);
    frame.push(b"k", Some(b"v")).unwrap();
    let frame = frame.finish();
    let mut clock = order.lock();
    *clock += 1;
    let ts = *clock;
    gc.enqueue(&frame, Ts::from(ts), |_| ts).unwrap()
}

/// Buffered queue whose syncs fail: two commits (enqueued first, so that
/// they are written in one batch) wait on two threads while `sync_all`
/// fails. Whether their batch was written before the failing sync (and is
/// applied while it runs) or written by the failing sync's own batch, their
/// write returned: both get `Ok` and are applied once, `sync_all` gets `Io`.
/// Before failures had exact ranges, a waiter of the earlier batch that
/// looked between the failure and its batch's publication got `Io`.
#[test]
fn loom_group_commit_failed_sync_spares_written_commits() {
    loom::model(|| {
        let sink = FakeSink {
            fail_syncs: true,
            ..FakeSink::default()
        };
        let applied = Arc::new(Recorder::default());
        let gc = queue(sink, &applied, false);
        let order = Arc::new(Order::default());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let lsn = enqueue(&gc, &order);
                let gc = gc.clone();
                thread::spawn(move || gc.wait(lsn, false))
            })
            .collect();
        let synced = gc.sync_all();
        assert!(matches!(synced, Err(Error::Io(_))), "{synced:?}");
        for w in waiters {
            let r = w.join().unwrap();
            assert!(r.is_ok(), "a written Buffered commit failed: {r:?}");
        }
        assert_eq!(*applied.0.lock(), vec![(1, true), (2, true)]);
        assert!(matches!(
            commit(&gc, &order, &applied),
            Err(Error::Poisoned)
        ));
        assert_eq!(applied.0.lock().len(), 2, "nothing applied twice");
    });
}

/// Sync queue whose second sync fails, three committers: the commits of
/// the first batch get `Ok` once it is published, even though the next
/// batch failed meanwhile; the others get an error; every job is applied
/// or abandoned exactly once, in order.
#[test]
fn loom_group_commit_failure_spares_the_synced_batch_before_it() {
    loom::model(|| {
        let sink = FakeSink {
            fail_syncs: true,
            ok_syncs: 1,
            ..FakeSink::default()
        };
        let applied = Arc::new(Recorder::default());
        let gc = queue(sink, &applied, true);
        let order = Arc::new(Order::default());
        let others: Committers = (0..2)
            .map(|_| spawn_commit(&gc, &order, &applied))
            .collect();
        let mut results = vec![commit(&gc, &order, &applied)];
        results.extend(others.into_iter().map(|h| h.join().unwrap()));
        let jobs = applied.0.lock().clone();
        let acked = jobs.iter().filter(|&&(_, durable)| durable).count();
        // Applied (durable) jobs are a prefix; the first batch has ts 1.
        assert!(acked >= 1, "the first batch synced: {jobs:?}");
        let expected: Vec<_> = (1..=*order.lock())
            .map(|ts| (ts, ts <= acked as u64))
            .collect();
        assert_eq!(jobs, expected, "applied or abandoned once each, in order");
        let oks = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, acked, "{results:?}");
        // `commit` asserts that each `Ok` found its own job applied.
    });
}

/// Runs [`commit`], turning a panic into `None`.
fn commit_catching(gc: &Queue, order: &Order, applied: &Recorder) -> Option<Result<Lsn, Error>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(gc, order, applied))).ok()
}

/// Two committers; the applier panics on the first commit, the one the
/// other depends on. The panicking thread unwinds, the other returns an
/// error (never hangs, never `Ok`), nothing after the half-applied job is
/// applied, and later commits get `Poisoned`.
#[test]
fn loom_group_commit_panic_in_apply_poisons_and_wakes() {
    quiet_injected_panics();
    loom::model(|| {
        let applied = Arc::new(Recorder(Mutex::default(), Some(1)));
        let gc = queue(FakeSink::default(), &applied, true);
        let order = Arc::new(Order::default());
        let (gc2, order2, applied2) = (gc.clone(), order.clone(), applied.clone());
        let other = thread::spawn(move || commit_catching(&gc2, &order2, &applied2));
        let results = [
            commit_catching(&gc, &order, &applied),
            other.join().unwrap(),
        ];
        let panicked = results.iter().filter(|r| r.is_none()).count();
        assert_eq!(panicked, 1, "{results:?}");
        for r in results.iter().flatten() {
            assert!(matches!(r, Err(Error::Io(_) | Error::Poisoned)), "{r:?}");
        }
        assert!(applied.0.lock().iter().all(|&(_, durable)| !durable));
        assert!(gc.is_poisoned());
        assert!(matches!(
            commit(&gc, &order, &applied),
            Err(Error::Poisoned)
        ));
    });
}

/// Two committers; the sink panics in the first sync. The panicking leader
/// unwinds, the other committer returns an error, nothing is applied, and
/// `seal` (what `Db::close` runs) returns instead of waiting for the
/// write stage the panic left held.
#[test]
fn loom_group_commit_panic_in_sync_poisons_and_wakes() {
    quiet_injected_panics();
    loom::model(|| {
        let sink = FakeSink {
            panic_in_sync: true,
            ..FakeSink::default()
        };
        let applied = Arc::new(Recorder::default());
        let gc = queue(sink, &applied, true);
        let order = Arc::new(Order::default());
        let (gc2, order2, applied2) = (gc.clone(), order.clone(), applied.clone());
        let other = thread::spawn(move || commit_catching(&gc2, &order2, &applied2));
        let results = [
            commit_catching(&gc, &order, &applied),
            other.join().unwrap(),
        ];
        assert!(results.iter().any(Option::is_none), "{results:?}");
        for r in results.iter().flatten() {
            assert!(matches!(r, Err(Error::Io(_) | Error::Poisoned)), "{r:?}");
        }
        assert!(applied.0.lock().iter().all(|&(_, durable)| !durable));
        let sealed = gc.seal();
        assert!(
            matches!(sealed, Err(Error::Io(_) | Error::Poisoned)),
            "{sealed:?}"
        );
    });
}
