//! Compaction (issue 16, item 6; decision 0019): merging tables into
//! fewer, with the MVCC garbage-collection stream dropping versions no
//! snapshot can read. The policy (`picker.rs`, leveled) chooses; the
//! mechanism (`job.rs`) runs the choice; `gc.rs` is the stream between the
//! merge and the table builder; `worker.rs` is the background thread and
//! `Db::compact`.
//!
//! Invariants (with `view.rs`'s):
//! 1. **One job at a time.** Every job runs holding [`Compactor::state`],
//!    so the tables a choice names are still where the picker saw them
//!    when the job installs (a flush only adds to level 0, and the picker
//!    takes all of level 0 it saw, never a part).
//! 2. **Nothing visible is lost.** Versions at or above the GC watermark
//!    taken when the job starts are all kept, and every snapshot holds the
//!    watermark at or below its read ts (`mvcc::watermark`), so every
//!    snapshot reads the same before and after (gc.rs's property).
//! 3. **The manifest first, then the view, then the files.** Outputs are
//!    synced and their directory too before the edit that swaps them for
//!    the inputs; the view is installed after the edit is durable; an input
//!    file is deleted only when the last view listing it is dropped
//!    (`Table::mark_obsolete`). A crash anywhere leaves either the old or
//!    the new set of tables in the manifest, and orphans for the next open
//!    to remove.

mod gc;
mod job;
mod picker;
mod worker;

pub(crate) use picker::{Leveled, TableSummary};
pub(crate) use worker::{Compactor, compact_all, step, wait_idle};

/// What to do next, as the policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Nothing is due.
    Nothing,
    /// Move tables a level down unchanged: they overlap nothing there
    /// nor each other (several only from level 0, all of it).
    Move {
        tables: Vec<u64>,
        from: usize,
        to: usize,
    },
    /// Merge `inputs` (each with its level) into new tables of
    /// `output_level`, through the GC stream.
    Merge {
        inputs: Vec<(usize, TableSummary)>,
        output_level: usize,
    },
}
