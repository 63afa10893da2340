//! The background sync of a Buffered queue (`Options::buffered_sync_interval`,
//! protocol step 10 in the parent module): makes what was written durable
//! beside the write stage, so that no committer performs it or waits for it.
//!
//! Invariant: **`durable` only ever names records that a returned sync
//! covers.** The target is read with the sink lock held, together with the
//! handle, after the write of every record up to it returned; the sync
//! starts after that, on the same file (a roll syncs the old segment before
//! the new one exists, so a record in an older segment is durable already).
//! `durable` rises after the sync returned, under `state`, so a batch taken
//! afterwards carries it in its SyncMark, which then still says only what
//! was on stable storage before the mark was written.

use std::io;

use super::{Apply, Failure, GroupCommit, LogSink};
use crate::error::{Error, Result};
use crate::sync::atomic::Ordering;
use crate::types::Lsn;

impl<S: LogSink, J, A: Apply<J>> GroupCommit<S, J, A> {
    /// Syncs every record written so far through the sink's second handle
    /// ([`LogSink::sync_handle`]), holding neither the write stage nor any
    /// lock during the sync; returns the LSN known durable afterwards.
    ///
    /// A failed sync poisons the queue (a failed `fdatasync` may have
    /// dropped pages: never retried). The commits it covered were
    /// acknowledged when they were written (the Buffered contract), so no
    /// waiter's result changes: written batches are still published, a
    /// `sync_all` waiting for a record it covered gets `Io` (its outcome is
    /// unknown), and pending commits are abandoned and get `Poisoned`.
    pub(crate) fn sync_written(&self) -> Result<Lsn> {
        let durable = {
            let st = self.state.lock();
            if st.failure.is_some() {
                return Err(Error::Poisoned);
            }
            st.durable
        };
        if Lsn(self.sink_written.load(Ordering::Acquire)) <= durable {
            return Ok(durable);
        }
        let (target, handle) = {
            let mut sink = self.sink.lock();
            let target = Lsn(self.sink_written.load(Ordering::Acquire));
            (target, sink.sync_handle())
        };
        let Some(handle) = handle else {
            return Ok(durable);
        };
        let result = handle.sync();
        let mut st = self.state.lock();
        match result {
            Ok(()) => {
                st.durable = st.durable.max(target);
                st.counters.background_syncs += 1;
                Ok(st.durable)
            }
            Err(e) => {
                self.fail_background_sync(&mut st, &e);
                Err(Error::Io(e))
            }
        }
    }

    /// Makes every record up to `lsn` (already written) durable: through
    /// the second handle when the sink has one ([`Self::sync_written`]), so
    /// that commits go on being written during the `fdatasync`; otherwise,
    /// or should that not reach `lsn`, through the write stage
    /// ([`Self::wait`], which holds it for the sync).
    ///
    /// A flush calls it (`flush.rs`, step 2): leading a sync there held
    /// the write stage for an `fdatasync` of a whole memtable's records,
    /// and every commit waited behind it (about a quarter of a bulk load's
    /// time on the loading thread, decision 0029).
    pub(crate) fn sync_through(&self, lsn: Lsn) -> Result<()> {
        if self.sync_written()? >= lsn {
            return Ok(());
        }
        self.wait(lsn, true)
    }

    /// Poisons the queue after the background sync panicked (the syncer
    /// catches the panic): as a failed sync, since what it synced is unknown.
    pub(crate) fn poison_after_background_panic(&self) {
        self.poison_from_background("the background WAL sync panicked");
    }

    /// Poisons the queue because background work failed (a sync, a flush):
    /// commits acknowledged stay so, pending ones are abandoned, and every
    /// later commit gets `Error::Poisoned` until the database is reopened.
    pub(crate) fn poison_from_background(&self, why: &str) {
        let mut st = self.state.lock();
        if st.failure.is_none() {
            let e = io::Error::other(format!("{why}; reopen the database"));
            self.fail_background_sync(&mut st, &e);
        }
    }

    /// Poisons the queue after a failed background sync (see `sync_written`).
    /// # Preconditions
    /// Requires: `state` held.
    fn fail_background_sync(&self, st: &mut super::State<J>, e: &io::Error) {
        let f = Failure {
            written_from: st.taken.next(),
            synced_from: st.durable.next(),
            last: st.taken,
            kind: e.kind(),
            message: e.to_string(),
        };
        self.fail(st, f);
        // Nothing more will be written: abandon what is still pending (as
        // the applier of a failed batch does), so that its timestamps do
        // not stay registered in the applied watermark.
        let abandoned = std::mem::take(&mut st.pending_jobs);
        st.pending = super::state::fresh_pending();
        self.applier.apply(abandoned, false);
    }
}
