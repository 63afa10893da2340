//! The background sync of a [`Durability::Buffered`](crate::Durability)
//! database: a thread that every `Options::buffered_sync_interval` makes
//! the WAL written so far durable (`wal::GroupCommit::sync_written`), so
//! that a power cut loses at most about one interval plus one sync of
//! acknowledged commits. It syncs through a second file handle, beside the
//! commit path: no committer performs the sync or waits for it.
//!
//! Lifecycle: started by `Db::open` (Buffered, writable, interval > 0);
//! stopped and joined by `close` (or the last handle's drop) before the WAL
//! is sealed. The thread holds only a `Weak` reference to the engine, so it
//! never keeps a database alive and is never the one to drop it. It ends
//! by itself once the WAL is poisoned (a failed sync poisons it too).

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::commit::Engine;
use crate::sync::{Condvar, Mutex, thread};

/// Tells the thread to stop.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    cond: Condvar,
}

/// A running background sync thread; [`Syncer::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Syncer {
    stop: Arc<Stop>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Syncer {
    /// Starts syncing `engine`'s WAL every `interval`.
    pub(crate) fn start(engine: Weak<Engine>, interval: Duration) -> std::io::Result<Syncer> {
        let stop = Arc::new(Stop::default());
        let signal = stop.clone();
        let handle = thread::Builder::new()
            .name("strata-wal-sync".into())
            .spawn(move || run(&engine, &signal, interval))?;
        Ok(Syncer {
            stop,
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Stops the thread and waits for it (a sync in progress finishes
    /// first). Idempotent.
    pub(crate) fn stop(&self) {
        *self.stop.stopped.lock() = true;
        self.stop.cond.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            // A panic in the thread was already contained: nothing to report.
            let _ = handle.join();
        }
    }
}

/// Syncs every `interval`, counted from the start of one sync to the start
/// of the next: a commit acknowledged after a sync read its target is
/// covered by the next sync, which starts at most `interval` after that one
/// did and returns one `fdatasync` later (or, when a sync takes longer than
/// the interval, right after it: two syncs).
fn run(engine: &Weak<Engine>, stop: &Stop, interval: Duration) {
    // `None`: an interval past the end of time, which never comes.
    let mut next = Instant::now().checked_add(interval);
    loop {
        {
            let mut stopped = stop.stopped.lock();
            loop {
                if *stopped {
                    return;
                }
                let Some(at) = next else {
                    stopped = stop.cond.wait(stopped);
                    continue;
                };
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                stopped = stop.cond.wait_timeout(stopped, left);
            }
        }
        next = Instant::now().checked_add(interval);
        let Some(engine) = engine.upgrade() else {
            return;
        };
        // A panic here (in the VFS's sync, say) must not leave a Buffered
        // database without its bound and without anybody knowing: it
        // poisons the database, as a failed sync does.
        match panic::catch_unwind(AssertUnwindSafe(|| engine.wal.sync_written())) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return, // poisoned: nothing more will be written
            Err(_) => {
                engine.wal.poison_after_background_panic();
                return;
            }
        }
    }
}
