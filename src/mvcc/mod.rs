//! Time and visibility: the isolation contract lives here, and nothing here
//! touches storage or files (so loom can check all of it).
//!
//! **Snapshot isolation.** A transaction reads from the snapshot at its
//! read ts: every commit with ts `<=` read ts in full, nothing of any later
//! or still-applying commit. Read ts = the applied watermark.
//!
//! **First committer wins.** A read-write transaction commits only if no key
//! it writes was committed by anyone after its read ts; otherwise it gets the
//! retryable `Error::Conflict`. Conflicts compare exact keys (a hash is only a
//! filter), and conflict history is never trimmed in a way that forces an
//! abort (see `oracle`).
//!
//! **Write skew is allowed**: two transactions that read overlapping data and
//! write disjoint keys both commit. That is the documented difference between
//! SI and serializability; a serializable mode would be a separate option.
//!
//! Pieces: `clock` (hybrid logical clock), `watermark` (applied watermark),
//! `snapshot` (registry -> GC watermark), `oracle` (commit order, conflicts),
//! `conflict` (the recent-writes index the conflict check asks after the
//! memtables, once versions are flushed).

mod clock;
mod conflict;
mod oracle;
mod snapshot;
mod watermark;

#[cfg(all(test, loom))]
mod loom_tests;

pub(crate) use clock::system_millis;
pub(crate) use conflict::RecentWrites;
pub(crate) use oracle::{Governance, Oracle, WriteKeys};
pub(crate) use snapshot::Handle as SnapshotHandle;
