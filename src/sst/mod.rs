//! Sorted tables: immutable files of versions `(user key, commit ts) ->
//! value | tombstone`, in version order (key ascending, ts descending), the
//! format of `docs/format/sst.md` (versions 1 and 2).
//!
//! Contract:
//! 1. A table is written once by [`TableBuilder`] from versions added in
//!    strictly ascending order, synced, and never modified afterwards; it is
//!    read through a read-only map ([`crate::vfs::Mapped`]) and deleted only
//!    when no view lists it (`docs/unsafe.md`).
//! 2. Every byte a reader uses is covered by a CRC32 that is verified before
//!    the first use: the footer, index, filter and properties at
//!    [`Table::open`], each data block at its first read (once per open
//!    table). Damage is `Error::Corruption` naming the file, the offset and
//!    the part; nothing in this module panics or answers wrongly on damaged
//!    bytes.
//! 3. The bloom filter holds every user key of the table: a point get skips
//!    a table only when the filter proves the key absent.
//!
//! This module never imports `mvcc`: timestamps are plain [`crate::types::Ts`] arguments.

mod block;
mod bloom;
mod builder;
mod fence;
mod format;
mod reader;
mod touch;
// `Table::verify_all`: every byte of a table, for `strata verify`.
mod verify;

#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use block::{EntryKind, cmp_version};
pub(crate) use bloom::{blocked_probe_bits, hash64};
pub(crate) use builder::{BuiltTable, TableBuilder, TableOptions};
pub(crate) use reader::{ALLOCATION_OVERHEAD_BYTES, Found, Probe, Table, TableIter};

/// The file name of table `number` inside the tables directory.
pub(crate) fn table_file_name(number: u64) -> String {
    format!("{number:020}.sst")
}

/// The `block_decode` fuzz target's body: validates arbitrary contents and
/// runs a cursor over them. A block the validator accepts must read back
/// without damage, every entry the validator counted, strictly ascending,
/// the same in both directions, and a seek must land on the first entry at
/// or after its target (`seek_for_prev`: the last at or before it).
#[cfg(any(feature = "fuzzing", feature = "bench-internals"))]
pub(crate) fn fuzz_block(contents: &[u8], probe: &[u8]) -> bool {
    use block::{BlockCursor, cmp_version, validate};
    use std::cmp::Ordering;

    use crate::types::Ts;

    let kinds = [EntryKind::Value, EntryKind::Tombstone, EntryKind::Handle];
    let summary = validate(contents, &kinds).ok();
    let mut c = BlockCursor::new(contents);
    let mut forward: Vec<(Vec<u8>, Ts)> = Vec::new();
    c.seek_to_first(contents);
    while c.is_valid() && forward.len() <= contents.len() {
        forward.push((c.key().to_vec(), c.ts()));
        c.next(contents);
    }
    let target = (probe, Ts::from(5));
    let Some(summary) = summary else {
        c.seek_to_last(contents);
        for _ in 0..=contents.len() {
            c.prev(contents);
        }
        c.seek_for_prev(contents, target.0, target.1);
        return false;
    };
    assert!(
        !c.is_corrupt(),
        "a validated block failed to decode forwards"
    );
    // Every entry the validator counted is reachable, and it saw the same
    // first and last versions.
    assert_eq!(forward.len(), summary.entries, "entries a cursor misses");
    assert_eq!(forward.first(), Some(&summary.first));
    assert_eq!(forward.last(), Some(&summary.last));
    for w in forward.windows(2) {
        assert_eq!(
            cmp_version(&w[0].0, w[0].1, &w[1].0, w[1].1),
            Ordering::Less
        );
    }
    let mut backward = Vec::new();
    c.seek_to_last(contents);
    while c.is_valid() && backward.len() <= forward.len() {
        backward.push((c.key().to_vec(), c.ts()));
        c.prev(contents);
    }
    assert!(
        !c.is_corrupt(),
        "a validated block failed to decode backwards"
    );
    backward.reverse();
    assert_eq!(backward, forward);
    c.seek(contents, target.0, target.1);
    let expect = forward
        .iter()
        .find(|(k, t)| cmp_version(k, *t, target.0, target.1) != Ordering::Less);
    match expect {
        Some((k, t)) => assert!(c.is_valid() && c.key() == k.as_slice() && c.ts() == *t),
        None => assert!(!c.is_valid()),
    }
    c.seek_for_prev(contents, target.0, target.1);
    let expect = forward
        .iter()
        .rev()
        .find(|(k, t)| cmp_version(k, *t, target.0, target.1) != Ordering::Greater);
    match expect {
        Some((k, t)) => assert!(c.is_valid() && c.key() == k.as_slice() && c.ts() == *t),
        None => assert!(!c.is_valid()),
    }
    true
}
