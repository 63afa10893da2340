//! The write-ahead log: one commit record per committed transaction, in
//! commit-ts order, in CRC-framed segment files. Specification:
//! `docs/format/wal.md` (the layout is repeated in `format.rs`).
//!
//! Pieces:
//! - `format`: pure encode/decode of headers, frames and records;
//! - `reader`: frames to records, torn tail vs corruption;
//! - `recovery`: replays every segment into a caller-supplied sink;
//! - `writer`: segment creation, preallocation, appends, roll-over;
//! - `retention`: which segments a flush lets go (and pins that hold them);
//! - `group_commit`: batches concurrent committers into one write + sync.
//!
//! The WAL never imports `mvcc`: commit timestamps arrive as plain [`Ts`]
//! arguments (`crate::types::Ts`).

pub(crate) mod format;
mod group_commit;
pub(crate) mod reader;
mod recovery;
mod retention;
mod writer;

#[cfg(all(test, loom))]
mod loom_tests;

pub(crate) use format::CommitFrameBuilder;
pub(crate) use group_commit::{Apply, GroupCommit};
pub(crate) use recovery::{Recovered, RecoveryMode, Repair, recover};
pub(crate) use retention::Retention;
pub(crate) use writer::{SegmentSize, Writer, parse_segment_name, segment_name};
