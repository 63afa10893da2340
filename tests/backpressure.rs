//! Write backpressure (decision 0020) with the flusher held still: the
//! table files it creates block on a gate the test opens. Writers must be
//! stopped once the memtables fill the memory budget (decision 0024), and
//! go on, losing nothing, when the flusher resumes.
//! The test waits for events (the flusher blocked, a writer stopped),
//! never for a time; the deadline below only turns a hang into a failure.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(
    clippy::disallowed_types,
    reason = "test scaffolding outside the crate, not under its loom seam"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{HookedVfs, MEM_DB_PATH, VfsHooks};
use strata::vfs::{MemVfs, Vfs, VfsFile};
use strata::{Db, Durability};

/// A budget whose memtable share (a quarter) is 16 KiB.
const SMALL_BUDGET: u64 = 64 * 1024;
const MEMTABLE_LIMIT: u64 = SMALL_BUDGET / 4;
/// Frozen memtables the engine lets wait for the flusher (db.rs).
const MAX_FROZEN: u64 = 4;
/// Turns a hang into a failure; never decides an outcome.
const HANG: Duration = Duration::from_secs(120);

/// The hooks of a file system on which creating a `.sst` file blocks
/// while the gate is shut.
#[derive(Debug, Clone)]
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    held: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Self {
            open: Arc::new((Mutex::new(true), Condvar::new())),
            held: Arc::default(),
        }
    }

    fn set_open(&self, open: bool) {
        *self.open.0.lock().unwrap() = open;
        self.open.1.notify_all();
    }
}

impl VfsHooks for Gate {
    fn open_write(&self, inner: &dyn Vfs, path: &Path) -> std::io::Result<Box<dyn VfsFile>> {
        if path.extension().is_some_and(|e| e == "sst") {
            let (lock, cond) = &*self.open;
            let mut open = lock.lock().unwrap();
            if !*open {
                self.held.fetch_add(1, Ordering::SeqCst);
                while !*open {
                    open = cond.wait(open).unwrap();
                }
                self.held.fetch_sub(1, Ordering::SeqCst);
            }
        }
        inner.open_write(path)
    }
}

/// Opens the gate when dropped.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_open(true);
    }
}

/// Spins (yielding) until `event` holds.
fn wait_for(what: &str, event: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !event() {
        assert!(Instant::now() < deadline, "hung waiting for: {what}");
        std::thread::yield_now();
    }
}

#[test]
fn writers_stop_when_the_flusher_is_held_and_go_on_when_it_resumes() {
    let gate = Gate::new();
    let vfs = HookedVfs::new(Arc::new(MemVfs::new()), gate.clone());
    let options = common::options(Durability::Buffered).memory_budget(SMALL_BUDGET);
    let db = Db::open_with_vfs(MEM_DB_PATH, options, Arc::new(vfs)).unwrap();
    // Dropped before `db`: a failing assertion opens the gate, so the
    // flusher can finish and the close that follows does not hang.
    let _reopen = OpenOnDrop(gate.clone());
    gate.set_open(false);
    let value = vec![b'v'; 1000];
    let writes = 400u32;
    let stats = std::thread::scope(|s| {
        // Opens the gate if an assertion below fails, before the scope
        // joins the (stopped) writer.
        let _open = OpenOnDrop(gate.clone());
        let writer = s.spawn(|| {
            for i in 0..writes {
                let mut t = db.begin();
                t.put(format!("key{i:05}").as_bytes(), &value).unwrap();
                t.commit().unwrap();
            }
        });
        wait_for("the flusher to block", || {
            gate.held.load(Ordering::SeqCst) > 0
        });
        wait_for("the writer to stop", || db.stats().write_stops > 0);
        let stats = db.stats();
        // Stopped at the memory budget (decision 0024): the memtables and
        // the stopped commit's write set (with its WAL record) within it,
        // plus that one commit. Frozen memtables fill the budget before
        // the frozen-count limit is reached.
        let one_commit = 4096;
        assert!(
            stats.memtable_bytes <= SMALL_BUDGET && stats.memory_bytes <= SMALL_BUDGET + one_commit,
            "{} memtable bytes, {} counted in all, while writers are stopped \
             (budget {SMALL_BUDGET}): {stats:?}",
            stats.memtable_bytes,
            stats.memory_bytes
        );
        assert!(
            stats.memory_bytes >= SMALL_BUDGET - MEMTABLE_LIMIT,
            "{stats:?}"
        );
        assert!(
            (1..=MAX_FROZEN).contains(&stats.frozen_memtables),
            "{stats:?}"
        );
        assert_eq!(stats.stalled_writers, 1);
        assert!(stats.commits < u64::from(writes), "the writer is stopped");
        gate.set_open(true);
        writer.join().unwrap();
        stats
    });
    let after = db.stats();
    assert_eq!(after.commits, u64::from(writes));
    assert_eq!(after.stalled_writers, 0);
    assert!(after.write_stops >= stats.write_stops);
    assert!(after.longest_write_stall > Duration::ZERO);
    assert!(after.write_stall_time >= after.longest_write_stall);
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..writes)
        .map(|i| (format!("key{i:05}").into_bytes(), value.clone()))
        .collect();
    db.flush().unwrap();
    common::assert_reads_model(&db, &model, model.keys().take(20).cloned(), "after");
    db.close().unwrap();
}
