//! Group commit: concurrent committers share one write and one `fdatasync`.
//!
//! Protocol (checked by `loom_tests.rs`; see `docs/concurrency.md`):
//! 1. `enqueue` is called with the commit-order lock held (in `mvcc::Oracle`),
//!    so frames enter `pending` in commit-ts order and get consecutive LSNs:
//!    **WAL order = LSN order = commit-ts order.**
//! 2. A waiter whose record is not yet written (or synced, if it needs that)
//!    and who sees no active leader becomes the leader: it takes *all* of
//!    `pending`, releases the state lock, writes the batch (prefixed by a
//!    SyncMark saying what was synced before it) and, in `Sync` mode, syncs
//!    once; then it publishes `written`/`synced` and wakes everybody.
//! 3. At most one leader exists at a time (`leader` flag under the state
//!    lock), so batches reach the file in the order they were taken.
//! 4. Each waiter returns exactly once: `Ok` when its LSN is covered, or the
//!    batch's I/O error if its own batch failed, or `Poisoned` if an earlier
//!    batch failed. After a failure nothing more is written (sticky).
//!
//! Lock order: the commit-order lock (`mvcc`) before `state`; `sink` is only
//! taken by the leader, never while holding `state`.

use std::io;

use super::format::{CommitHeader, SYNC_MARK_FRAME_BYTES, UnsealedCommit, seal_commit};
use crate::error::{Error, Result};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::types::{Lsn, Ts};

/// Where the leader writes batches: the segment writer, or a fake in models.
pub(crate) trait LogSink: Send {
    /// Appends one batch. Its first `SYNC_MARK_FRAME_BYTES` are a slot the
    /// sink fills with a SyncMark for `synced` (sealed with the salt of the
    /// segment the batch lands in); `first_lsn`/`prev_crc` describe the
    /// batch's first commit record (used when the batch opens a new segment).
    fn write_batch(
        &mut self,
        batch: &mut [u8],
        synced: Lsn,
        first_lsn: Lsn,
        prev_crc: u32,
    ) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> io::Result<()>;
}

/// Counters published by the group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) bytes: u64,
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
    pub(crate) synced_commits: u64,
}

#[derive(Debug)]
struct Failure {
    first: Lsn,
    last: Lsn,
    kind: io::ErrorKind,
    message: String,
}

#[derive(Debug)]
struct State {
    pending: Vec<u8>,
    pending_first: Lsn,
    pending_prev_crc: u32,
    pending_commits: u64,
    last_lsn: Lsn,
    last_crc: u32,
    written: Lsn,
    synced: Lsn,
    leader: bool,
    /// Set by `seal`: later enqueues are refused with `Error::Closed`.
    closed: bool,
    failure: Option<Failure>,
    counters: Counters,
}

fn fresh_pending() -> Vec<u8> {
    vec![0; SYNC_MARK_FRAME_BYTES]
}

/// The commit queue in front of a [`LogSink`].
#[derive(Debug)]
pub(crate) struct GroupCommit<S> {
    state: Mutex<State>,
    cond: Condvar,
    sink: Mutex<S>,
    epoch: u64,
    always_sync: bool,
}

impl<S: LogSink> GroupCommit<S> {
    /// A queue continuing after `last_lsn` (whose frame CRC is `last_crc`).
    /// With `always_sync`, every batch is synced (`Durability::Sync`).
    pub(crate) fn new(
        sink: S,
        epoch: u64,
        last_lsn: Lsn,
        last_crc: u32,
        always_sync: bool,
    ) -> Self {
        let state = State {
            pending: fresh_pending(),
            pending_first: Lsn::ZERO,
            pending_prev_crc: 0,
            pending_commits: 0,
            last_lsn,
            last_crc,
            written: last_lsn,
            synced: last_lsn,
            leader: false,
            closed: false,
            failure: None,
            counters: Counters::default(),
        };
        Self {
            state: Mutex::new(state),
            cond: Condvar::new(),
            sink: Mutex::new(sink),
            epoch,
            always_sync,
        }
    }

    /// Seals `frame` with the next LSN and appends it to the pending batch.
    ///
    /// # Preconditions
    /// Requires the commit-order lock held, and `commit_ts` above every
    /// earlier enqueued commit's.
    pub(crate) fn enqueue(&self, frame: &mut UnsealedCommit, commit_ts: Ts) -> Result<Lsn> {
        let mut st = self.state.lock();
        if st.failure.is_some() {
            return Err(Error::Poisoned);
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let lsn = st.last_lsn.next();
        if st.pending_commits == 0 {
            st.pending_first = lsn;
            st.pending_prev_crc = st.last_crc;
        }
        let header = CommitHeader {
            lsn,
            commit_ts,
            epoch: self.epoch,
            prev_crc: st.last_crc,
        };
        let st = &mut *st;
        st.last_crc = seal_commit(frame, &header, &mut st.pending);
        st.last_lsn = lsn;
        st.pending_commits += 1;
        Ok(lsn)
    }

    /// Blocks until record `lsn` is written (and synced, if `need_sync` or
    /// the queue always syncs), leading a batch if nobody else is.
    pub(crate) fn wait(&self, lsn: Lsn, need_sync: bool) -> Result<()> {
        let need_sync = need_sync || self.always_sync;
        let mut st = self.state.lock();
        loop {
            if st.written >= lsn && (!need_sync || st.synced >= lsn) {
                return Ok(());
            }
            if let Some(f) = &st.failure {
                return Err(if lsn >= f.first && lsn <= f.last {
                    Error::Io(io::Error::new(f.kind, f.message.clone()))
                } else {
                    Error::Poisoned
                });
            }
            if st.leader {
                st = self.cond.wait(st);
            } else {
                st = self.lead(st, need_sync);
            }
        }
    }

    /// Writes and syncs everything enqueued so far.
    pub(crate) fn sync_all(&self) -> Result<()> {
        let last = self.state.lock().last_lsn;
        self.wait(last, true)
    }

    /// Syncs everything, then writes and syncs a final SyncMark covering it,
    /// so that recovery can tell damage anywhere in this log from a torn tail.
    pub(crate) fn seal(&self) -> Result<()> {
        self.state.lock().closed = true;
        self.sync_all()?;
        let mut st = self.state.lock();
        while st.leader {
            st = self.cond.wait(st);
        }
        if st.failure.is_some() {
            return Err(Error::Poisoned);
        }
        // Closed and fully synced: nothing is pending, so `last_crc` is the
        // chain value a new segment needs if this write rolls over.
        let (synced, prev_crc) = (st.synced, st.last_crc);
        st.leader = true;
        drop(st);
        let result = {
            let mut sink = self.sink.lock();
            sink.write_batch(
                &mut [0; SYNC_MARK_FRAME_BYTES],
                synced,
                synced.next(),
                prev_crc,
            )
            .and_then(|()| sink.sync())
        };
        let mut st = self.state.lock();
        st.leader = false;
        let out = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                st.failure = Some(Failure {
                    first: synced.next(),
                    last: synced,
                    kind: e.kind(),
                    message: e.to_string(),
                });
                Err(Error::Io(e))
            }
        };
        self.cond.notify_all();
        out
    }

    /// Whether an earlier write or sync failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.state.lock().failure.is_some()
    }

    /// The counters so far.
    pub(crate) fn counters(&self) -> Counters {
        self.state.lock().counters
    }

    /// The last LSN handed out.
    pub(crate) fn last_lsn(&self) -> Lsn {
        self.state.lock().last_lsn
    }

    /// Runs one batch as the leader. Takes and returns the state guard.
    fn lead<'a>(&'a self, mut st: MutexGuard<'a, State>, need_sync: bool) -> MutexGuard<'a, State> {
        st.leader = true;
        let mut batch = std::mem::replace(&mut st.pending, fresh_pending());
        let commits = std::mem::take(&mut st.pending_commits);
        let (first, prev_crc, last) = (st.pending_first, st.pending_prev_crc, st.last_lsn);
        let synced_before = st.synced;
        drop(st);

        let result = {
            let mut sink = self.sink.lock();
            let written = if commits > 0 {
                sink.write_batch(&mut batch, synced_before, first, prev_crc)
            } else {
                Ok(())
            };
            written.and_then(|()| if need_sync { sink.sync() } else { Ok(()) })
        };

        let mut st = self.state.lock();
        st.leader = false;
        match result {
            Ok(()) => {
                if commits > 0 {
                    st.written = last;
                    st.counters.bytes += batch.len() as u64;
                    st.counters.writes += 1;
                }
                if need_sync {
                    st.counters.synced_commits += last.0 - st.synced.0;
                    st.counters.syncs += 1;
                    st.synced = last;
                }
            }
            Err(e) => {
                let first = if commits > 0 {
                    first.min(synced_before.next())
                } else {
                    synced_before.next()
                };
                let first = if need_sync {
                    first
                } else {
                    first.max(st.written.next())
                };
                st.failure = Some(Failure {
                    first,
                    last,
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
        self.cond.notify_all();
        st
    }
}

impl<S> GroupCommit<S> {
    /// Runs `f` on the sink (models inspect fakes through it).
    #[cfg(all(test, loom))]
    pub(crate) fn with_sink<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.sink.lock())
    }
}
