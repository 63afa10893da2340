//! The group commit's state machine: what `state` protects, and its pure
//! transitions (no I/O, no waiting, no condvars). `mod.rs` runs the stages
//! and the waiting around it; see its module docs for the protocol.

use std::collections::VecDeque;
use std::io;

use super::Counters;
use crate::error::Error;
use crate::types::Lsn;
use crate::wal::format::SYNC_MARK_FRAME_BYTES;

/// The sticky failure (protocol step 6): which waiters get `Io` (their
/// outcome is unknown) and which get `Poisoned` (their record was never
/// taken); a waiter below both ranges is settled by a batch that will still
/// be published, and waits for it.
#[derive(Debug)]
pub(super) struct Failure {
    /// A waiter that needs its record written (a Buffered commit) fails from
    /// here: below, its record's write returned.
    pub(super) written_from: Lsn,
    /// A waiter that needs its record synced fails from here: below, a sync
    /// covering its record returned.
    pub(super) synced_from: Lsn,
    /// The last record taken before the failure; later ones get `Poisoned`.
    pub(super) last: Lsn,
    pub(super) kind: io::ErrorKind,
    pub(super) message: String,
}

impl Failure {
    /// The error for a waiter of record `lsn`, or `None` if its batch will
    /// still be published (it waits for that).
    pub(super) fn error_for(&self, lsn: Lsn, need_sync: bool) -> Option<Error> {
        if lsn > self.last {
            return Some(Error::Poisoned);
        }
        let from = if need_sync {
            self.synced_from
        } else {
            self.written_from
        };
        (lsn >= from).then(|| Error::Io(io::Error::new(self.kind, self.message.clone())))
    }
}

/// Batches taken but not yet published, at most: one being applied while the
/// next is written and synced.
pub(super) const MAX_IN_FLIGHT: u64 = 2;

/// Wake slots; live batch numbers (in flight, plus the pending one) span at
/// most `MAX_IN_FLIGHT + 1 < SLOTS`.
pub(super) const SLOTS: usize = 4;

/// Batches a leader may write in a row while more commits are pending,
/// beyond its own; bounds how long its own caller waits.
pub(super) const MAX_CHAIN: u32 = 4;

/// A batch out of the write stage, waiting for the apply stage.
#[derive(Debug)]
pub(super) struct Ready<J> {
    pub(super) no: u64,
    pub(super) jobs: Vec<J>,
    pub(super) last: Lsn,
    /// Its records are acknowledged as written: its jobs are applied and
    /// `written` is published (else its jobs are abandoned).
    pub(super) written: bool,
    /// A sync was asked for and returned: `synced` is published.
    pub(super) synced: bool,
    pub(super) bytes: u64,
    pub(super) commits: usize,
    /// Its write or sync failed: nothing more will be written, and the
    /// pending jobs are abandoned after it.
    pub(super) failed: bool,
}

/// A batch taken by a leader, on its way through the write stage.
#[derive(Debug)]
pub(super) struct Taken<J> {
    pub(super) no: u64,
    pub(super) batch: Vec<u8>,
    pub(super) jobs: Vec<J>,
    pub(super) first: Lsn,
    pub(super) prev_crc: u32,
    pub(super) last: Lsn,
    /// What was durable when it was taken (the SyncMark it carries).
    pub(super) durable_before: Lsn,
    pub(super) need_sync: bool,
}

/// A batch taken but not yet published.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    pub(super) no: u64,
    pub(super) last: Lsn,
    pub(super) synced: bool,
}

#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags (stages held, closed, gathering) under one lock"
)]
pub(super) struct State<J> {
    pub(super) pending: Vec<u8>,
    pub(super) pending_jobs: Vec<J>,
    pub(super) pending_first: Lsn,
    pub(super) pending_prev_crc: u32,
    pub(super) last_lsn: Lsn,
    pub(super) last_crc: u32,
    /// Published: every record up to here is written and applied.
    pub(super) written: Lsn,
    /// Published: every record up to here is synced and applied.
    pub(super) synced: Lsn,
    /// Known on stable storage (a sync returned), maybe not yet published.
    pub(super) durable: Lsn,
    /// A leader holds the write stage (taking, writing and syncing a batch).
    pub(super) syncing: bool,
    /// Batches taken so far (numbered from 1).
    pub(super) batches: u64,
    /// Batches published so far; always a prefix of the taken ones.
    pub(super) published: u64,
    /// The last LSN of any taken batch.
    pub(super) taken: Lsn,
    /// The last LSN a taken synced batch covers.
    pub(super) sync_covered: Lsn,
    /// Taken, unpublished batches, oldest first (at most `MAX_IN_FLIGHT`).
    pub(super) inflight: Vec<InFlight>,
    /// Commits in taken, unpublished batches.
    pub(super) inflight_commits: usize,
    /// Written (and synced, if asked) batches waiting to be applied, in order.
    pub(super) ready: VecDeque<Ready<J>>,
    /// A waiter holds the apply stage (applying `ready` batches).
    pub(super) applying: bool,
    /// Set by `seal`: later enqueues are refused with `Error::Closed`.
    pub(super) closed: bool,
    pub(super) failure: Option<Failure>,
    pub(super) counters: Counters,
    /// A leader is waiting for more commits before it takes the batch.
    pub(super) gathering: bool,
    /// Moving average of a sync's duration, in nanoseconds.
    pub(super) sync_nanos: u64,
}

impl<J> State<J> {
    /// Whether a waiter may take the next batch now.
    pub(super) fn can_lead(&self) -> bool {
        !self.syncing && self.failure.is_none() && self.batches - self.published < MAX_IN_FLIGHT
    }

    /// The batch whose publication will settle a waiter for `lsn`: the first
    /// in-flight batch that covers it, else the pending one.
    pub(super) fn covering_batch(&self, lsn: Lsn, need_sync: bool) -> u64 {
        self.inflight
            .iter()
            .find(|b| b.last >= lsn && (b.synced || !need_sync))
            .map_or(self.batches + 1, |b| b.no)
    }
}

pub(super) fn fresh_pending() -> Vec<u8> {
    vec![0; SYNC_MARK_FRAME_BYTES]
}

pub(super) fn slot(batch: u64) -> usize {
    // Lossless: the remainder is below SLOTS.
    (batch % SLOTS as u64) as usize
}

impl<J> State<J> {
    /// The state of a queue continuing after `last_lsn` (CRC `last_crc`).
    pub(super) fn new(last_lsn: Lsn, last_crc: u32) -> Self {
        State {
            pending: fresh_pending(),
            pending_jobs: Vec::new(),
            pending_first: Lsn::ZERO,
            pending_prev_crc: 0,
            last_lsn,
            last_crc,
            written: last_lsn,
            synced: last_lsn,
            durable: last_lsn,
            syncing: false,
            batches: 0,
            published: 0,
            taken: last_lsn,
            sync_covered: last_lsn,
            inflight: Vec::with_capacity(MAX_IN_FLIGHT as usize),
            inflight_commits: 0,
            ready: VecDeque::new(),
            applying: false,
            closed: false,
            failure: None,
            counters: Counters::default(),
            gathering: false,
            sync_nanos: 0,
        }
    }

    /// Takes the whole pending batch (protocol step 2).
    /// # Preconditions
    /// Requires: the write stage held (`self` is under `state`).
    pub(super) fn take(&mut self, need_sync: bool) -> Taken<J> {
        let st = self;
        // Allocates before any bookkeeping, so that a panic (an allocation
        // failure) leaves the state as it was.
        let batch = std::mem::replace(&mut st.pending, fresh_pending());
        let jobs = std::mem::take(&mut st.pending_jobs);
        st.batches += 1;
        st.taken = st.last_lsn;
        if need_sync {
            st.sync_covered = st.last_lsn;
        }
        st.inflight.push(InFlight {
            no: st.batches,
            last: st.last_lsn,
            synced: need_sync,
        });
        st.inflight_commits += jobs.len();
        Taken {
            no: st.batches,
            batch,
            jobs,
            first: st.pending_first,
            prev_crc: st.pending_prev_crc,
            last: st.last_lsn,
            durable_before: st.durable,
            need_sync,
        }
    }
}
