//! Running compactions: the background thread's step (a
//! [`crate::worker::Worker`], woken after each flush) and `Db::compact`'s
//! full compaction, both one job at a time under [`Compactor::state`].
//!
//! Failures: a job that fails (an I/O error, a full disk, damage found in
//! an input) or panics poisons the database, as a failed flush does: the
//! manifest may hold an edit the view does not, so nothing more is
//! written until a reopen, which removes the half-written outputs. A job
//! cut short by `close` is not a failure: its outputs are removed and
//! nothing changes.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use super::job::{self, Outcome, summaries};
use super::picker::Leveled;
use crate::commit::Engine;
use crate::error::{Error, Result};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::worker::Signal;

/// Compaction's shared state (in `Store`).
#[derive(Debug)]
pub(crate) struct Compactor {
    pub(crate) policy: Leveled,
    /// Held for a whole job (module invariant 1); the picker's round-robin
    /// cursors, one per level.
    state: Mutex<Vec<Vec<u8>>>,
    /// Wakes the background thread.
    pub(crate) signal: Arc<Signal>,
    /// Obsolete tables whose file is not deleted yet (a view still lists
    /// them).
    pub(crate) obsolete_pending: Arc<AtomicU64>,
    pub(crate) counters: Counters,
}

/// Totals since open, for `Db::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) jobs: AtomicU64,
    pub(crate) moves: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) versions_dropped: AtomicU64,
}

impl Compactor {
    pub(crate) fn new(policy: Leveled) -> Self {
        let levels = policy.levels;
        Self {
            policy,
            state: Mutex::new(vec![Vec::new(); levels]),
            signal: Arc::new(Signal::default()),
            obsolete_pending: Arc::new(AtomicU64::new(0)),
            counters: Counters::default(),
        }
    }

    fn count(&self, o: &Outcome) {
        let c = &self.counters;
        if o.moved {
            c.moves.fetch_add(1, Ordering::Relaxed);
        } else if o.tables_in > 0 {
            c.jobs.fetch_add(1, Ordering::Relaxed);
        }
        c.bytes_read.fetch_add(o.bytes_read, Ordering::Relaxed);
        c.bytes_written
            .fetch_add(o.bytes_written, Ordering::Relaxed);
        c.versions_dropped
            .fetch_add(o.versions_dropped, Ordering::Relaxed);
    }
}

/// The background step: runs due compactions until none is; `false` (the
/// thread ends) once one failed and poisoned the database, or the
/// database is closing.
pub(crate) fn step(engine: &Engine, signal: &Signal) -> bool {
    loop {
        if engine.closed.load(Ordering::Acquire) || engine.wal.is_poisoned() {
            return false;
        }
        // A busy step until its inputs are dropped (and their files gone,
        // when no other view lists them): `wait_idle` waits for that.
        let ran = signal.busy(|| {
            guarded(engine, "a compaction", || {
                let compactor = &engine.store.compaction;
                let mut cursors = compactor.state.lock();
                let levels = engine.core.views.with_current(summaries);
                let choice = compactor.policy.pick(&levels, &mut cursors);
                let outcome = job::run(engine, &choice, compactor.policy.table_bytes)?;
                compactor.count(&outcome);
                Ok(outcome != Outcome::default())
            })
        });
        signal.finished();
        match ran {
            Ok(true) => {}
            Ok(false) => return true,
            Err(_) => return false,
        }
    }
}

/// `Db::compact`'s job: every table into the deepest level as the bottom,
/// on the caller's thread, after any background job in progress.
pub(crate) fn compact_all(engine: &Engine) -> Result<()> {
    guarded(engine, "a full compaction", || {
        let compactor = &engine.store.compaction;
        let _one_at_a_time = compactor.state.lock();
        let levels = engine.core.views.with_current(summaries);
        let choice = compactor.policy.full(&levels);
        let outcome = job::run(engine, &choice, compactor.policy.table_bytes)?;
        compactor.count(&outcome);
        Ok(())
    })
}

/// Waits until no compaction is due (or the database is poisoned); `false`
/// if the compactor stopped first. The compactor notifies after every job,
/// and is woken after every flush, so it is busy whenever one is due.
pub(crate) fn wait_idle(engine: &Engine) -> bool {
    let compactor = &engine.store.compaction;
    compactor.signal.wait_until(|| {
        engine.wal.is_poisoned()
            || !compactor.signal.is_busy()
                && !compactor
                    .policy
                    .due(&engine.core.views.with_current(summaries))
    })
}

/// Runs `f`, poisoning the database if it fails (but for `Closed`) or
/// panics.
fn guarded<T>(engine: &Engine, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let why = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(Error::Closed)) => return Err(Error::Closed),
        Ok(Err(e)) => {
            let why = format!("{what} failed: {e}");
            engine.wal.poison_from_background(&why);
            return Err(e);
        }
        Err(_) => format!("{what} panicked"),
    };
    engine.wal.poison_from_background(&why);
    Err(Error::Poisoned)
}
