//! Loom models of group commit, over a fake in-memory sink.

use std::io;

use super::format::{CommitFrameBuilder, SYNC_MARK_FRAME_BYTES, sync_mark};
use super::group_commit::{GroupCommit, LogSink};
use super::reader::{Chain, Outcome, scan_segment};
use crate::error::Error;
use crate::sync::{Arc, Mutex, thread};
use crate::types::{Lsn, Ts};

#[derive(Debug, Default)]
struct FakeSink {
    data: Vec<u8>,
    synced_len: usize,
    fail_syncs: bool,
}

impl LogSink for FakeSink {
    fn write_batch(&mut self, batch: &mut [u8], synced: Lsn, _: Lsn, _: u32) -> io::Result<()> {
        batch[..SYNC_MARK_FRAME_BYTES].copy_from_slice(&sync_mark(0, synced));
        self.data.extend_from_slice(batch);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.fail_syncs {
            return Err(io::Error::other("injected"));
        }
        self.synced_len = self.data.len();
        Ok(())
    }
}

/// The commit-order lock and clock, as the oracle keeps them.
type Order = Mutex<u64>;

fn commit(gc: &GroupCommit<FakeSink>, order: &Order) -> Result<Lsn, Error> {
    let mut frame = CommitFrameBuilder::with_capacity(8);
    frame.push(b"k", Some(b"v"))?;
    let mut frame = frame.finish();
    let lsn = {
        let mut clock = order.lock();
        *clock += 1;
        gc.enqueue(&mut frame, Ts::from(*clock))?
    };
    gc.wait(lsn, false).map(|()| lsn)
}

/// Each waiter returns once with success after its record is synced; the WAL
/// holds the records in LSN order with rising commit timestamps.
#[test]
fn loom_group_commit_wakes_each_waiter_with_its_result_in_order() {
    loom::model(|| {
        let gc = Arc::new(GroupCommit::new(FakeSink::default(), 0, Lsn::ZERO, 0, true));
        let order = Arc::new(Order::default());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (gc, order) = (gc.clone(), order.clone());
                thread::spawn(move || commit(&gc, &order))
            })
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
        let gc = Arc::new(GroupCommit::new(sink, 0, Lsn::ZERO, 0, true));
        let order = Arc::new(Order::default());
        let (gc2, order2) = (gc.clone(), order.clone());
        let other = thread::spawn(move || commit(&gc2, &order2));
        let mine = commit(&gc, &order);
        let theirs = other.join().unwrap();
        for r in [&mine, &theirs] {
            assert!(matches!(r, Err(Error::Io(_) | Error::Poisoned)), "{r:?}");
        }
        assert!(gc.is_poisoned());
        assert!(matches!(commit(&gc, &order), Err(Error::Poisoned)));
    });
}
