//! Failures and panics (protocol steps 6 and 9): the sticky failure, and
//! the guard that turns a panic in a stage into a poisoned queue instead of
//! a stage flag left set forever.

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};

use super::GroupCommit;
use super::state::{Failure, State};
use crate::types::Lsn;

/// What the waiters of a batch whose write or apply stage panicked get.
const PANIC_MESSAGE: &str =
    "the commit path panicked; the outcome is unknown until the database is reopened";

/// Which stage [`GroupCommit::guard_stage`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Write,
    Apply,
}

impl<S, J, A> GroupCommit<S, J, A> {
    /// Sets the sticky failure, or widens the one already set to cover `f`
    /// too (the first error's message stays), and wakes everybody.
    /// # Preconditions
    /// Requires: `state` held.
    pub(super) fn fail(&self, st: &mut State<J>, f: Failure) {
        match &mut st.failure {
            Some(old) => {
                old.written_from = old.written_from.min(f.written_from);
                old.synced_from = old.synced_from.min(f.synced_from);
                old.last = old.last.max(f.last);
            }
            None => st.failure = Some(f),
        }
        self.wake_all();
    }

    /// Runs `f`, a stage (protocol step 9); if it panics, poisons the queue
    /// once the panic is caught (so the state guard `f` may have held is
    /// released by then) and resumes the panic. `batch` is the stage's note
    /// of the batch being written. Costs nothing unless `f` panics.
    pub(super) fn guard_stage<R>(
        &self,
        stage: Stage,
        batch: &Cell<Option<(Lsn, Lsn)>>,
        f: impl FnOnce() -> R,
    ) -> R {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(payload) => {
                self.poison_after_panic(stage, batch.get());
                panic::resume_unwind(payload)
            }
        }
    }

    /// A stage was left by a panic (protocol step 9): poisons the queue and
    /// wakes everybody. The stage's flag stays set, so nobody enters it
    /// again: after a write-stage panic nothing more is written (the batches
    /// queued before it are still applied and published); after an
    /// apply-stage panic nothing more is applied or published, and the jobs
    /// of the batch being applied, maybe half in the memtable, are never
    /// marked done, so readers stay on the snapshot before them.
    pub(super) fn poison_after_panic(&self, stage: Stage, batch: Option<(Lsn, Lsn)>) {
        let mut st = self.state.lock();
        let (written_from, synced_from) = match (stage, batch) {
            (Stage::Write, Some((first, durable_before))) => (first, durable_before.next()),
            (Stage::Write, None) => (st.taken.next(), st.durable.next()),
            (Stage::Apply, _) => (st.written.next(), st.synced.next()),
        };
        let f = Failure {
            written_from,
            synced_from,
            last: st.taken,
            kind: io::ErrorKind::Other,
            message: PANIC_MESSAGE.to_owned(),
        };
        self.fail(&mut st, f);
    }
}
