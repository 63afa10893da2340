//! A background worker thread and the [`Signal`] that wakes it: the
//! memtable flusher (`flush.rs`) and the compactor (`compaction/worker.rs`)
//! are both one of these.
//!
//! Protocol ([`Signal`]): `notify` says "there may be work", `stop` ends
//! the thread, and whoever waits for work to finish (`Db::flush`,
//! `Db::compact`) waits on `done`. No missed wake-up: the worker calls
//! [`Signal::finished`] while holding `state`, after it published the
//! result of its step (installed a view, or poisoned the database), and a
//! waiter checks its condition while holding `state` before it waits.
//!
//! Lifecycle as `syncer.rs`: started by a writable open, stopped and
//! joined by `close` before the WAL is sealed; the thread holds only a
//! `Weak` reference to the engine, so it never keeps a database alive.

use std::sync::{Arc, Weak};

use crate::commit::Engine;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex, thread};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    work: Condvar,
    done: Condvar,
    /// Steps in progress ([`Signal::busy`]).
    busy: AtomicU64,
}

#[derive(Debug, Default)]
struct SignalState {
    pending: bool,
    stopped: bool,
}

impl Signal {
    /// There may be work (a memtable was frozen, a table was flushed).
    pub(crate) fn notify(&self) {
        self.state.lock().pending = true;
        self.work.notify_all();
    }

    fn stop(&self) {
        self.state.lock().stopped = true;
        self.work.notify_all();
        self.done.notify_all();
    }

    /// Waits for work; `false` once stopped.
    fn wait(&self) -> bool {
        let mut st = self.state.lock();
        loop {
            if st.stopped {
                return false;
            }
            if st.pending {
                st.pending = false;
                return true;
            }
            st = self.work.wait(st);
        }
    }

    /// Runs one step of work, counted as in progress until it returns (a
    /// waiter's condition may ask [`Signal::is_busy`]); call
    /// [`Signal::finished`] after it.
    pub(crate) fn busy<R>(&self, step: impl FnOnce() -> R) -> R {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let out = step();
        self.busy.fetch_sub(1, Ordering::AcqRel);
        out
    }

    /// Whether a step is in progress.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// A step finished (or failed and poisoned the database).
    pub(crate) fn finished(&self) {
        let _st = self.state.lock();
        self.done.notify_all();
    }

    /// Waits until `finished()` holds; `false` if the worker stopped first.
    pub(crate) fn wait_until(&self, finished: impl Fn() -> bool) -> bool {
        let mut st = self.state.lock();
        loop {
            if finished() {
                return true;
            }
            if st.stopped {
                return false;
            }
            st = self.done.wait(st);
        }
    }
}

/// A running worker thread; [`Worker::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Worker {
    signal: Arc<Signal>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Worker {
    /// Starts thread `name`, which runs `step` (with the engine, if it is
    /// still alive) each time `signal` is notified, until `step` returns
    /// `false` or the worker is stopped.
    pub(crate) fn start(
        name: &str,
        engine: Weak<Engine>,
        signal: Arc<Signal>,
        step: fn(&Engine, &Signal) -> bool,
    ) -> std::io::Result<Worker> {
        let s = signal.clone();
        let handle = thread::Builder::new().name(name.into()).spawn(move || {
            while s.wait() {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if !step(&engine, &s) {
                    return;
                }
            }
        })?;
        Ok(Worker {
            signal,
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Stops the thread and waits for it (a step in progress finishes
    /// first). Idempotent.
    pub(crate) fn stop(&self) {
        self.signal.stop();
        if let Some(handle) = self.thread.lock().take() {
            // A panic in the thread was contained and poisoned the database.
            let _ = handle.join();
        }
    }
}
