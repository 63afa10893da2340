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

use std::sync::{Arc, Weak};
use std::time::Duration;

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

fn run(engine: &Weak<Engine>, stop: &Stop, interval: Duration) {
    loop {
        {
            let mut stopped = stop.stopped.lock();
            if !*stopped {
                // A spurious or early wake-up only syncs a little sooner.
                stopped = stop.cond.wait_timeout(stopped, interval);
            }
            if *stopped {
                return;
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if engine.wal.sync_written().is_err() {
            return; // poisoned: nothing more will be written
        }
    }
}
