//! Compaction (issue 16, item 6): merging tables into fewer, with the MVCC
//! garbage-collection stream dropping versions no snapshot can read.
//! Policy (which tables, leveled by default) stays separate from the
//! mechanism (merge, GC, write); this step has the GC stream, `gc.rs`.

mod gc;

#[allow(
    unused_imports,
    reason = "the compaction job uses it next (issue 16, item 6)"
)]
pub(crate) use gc::GcStream;
