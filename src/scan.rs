//! [`Scan`]: the rows of a snapshot between two bounds, overlaid with a
//! transaction's own writes, in either direction ([`DoubleEndedIterator`]),
//! and [`ScanRange`], what `scan` accepts.
//!
//! A [`Scan`] is a [`Cursor`] (`cursor.rs`: the merge with the
//! transaction's writes, the two ends) whose rows are copied out, so one
//! implementation serves both.

use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};
use std::sync::Arc;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::types::Ts;
use crate::view::View;
use crate::write_set::WriteBuf;

/// A key range `scan` accepts: every standard range of keys (`a..b`, `a..`,
/// `..=b`, `(Bound, Bound)`, ...) and `..` for everything, which needs no
/// type annotation (its key type is fixed to `&[u8]`, so
/// `scan::<&[u8], _>(..)` also still compiles).
pub trait ScanRange<K: ?Sized> {
    /// The range as owned byte-string bounds.
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>);
}

fn own<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl ScanRange<&[u8]> for RangeFull {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (Bound::Unbounded, Bound::Unbounded)
    }
}

macro_rules! scan_range {
    ($($t:ident),*) => {$(
        impl<K: AsRef<[u8]>> ScanRange<K> for $t<K> {
            fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
                use std::ops::RangeBounds;
                (own(self.start_bound()), own(self.end_bound()))
            }
        }
    )*};
}
scan_range!(Range, RangeFrom, RangeInclusive, RangeTo, RangeToInclusive);

impl<K: AsRef<[u8]>> ScanRange<K> for (Bound<K>, Bound<K>) {
    fn into_bounds(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (own(self.0.as_ref()), own(self.1.as_ref()))
    }
}

/// The range of keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.to_vec();
    // The smallest key above every key with the prefix: drop trailing 0xff
    // bytes, then add one to the last byte; none if the prefix is all 0xff.
    while end.last() == Some(&0xff) {
        end.pop();
    }
    let end = match end.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(end)
        }
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), end)
}

/// Whether no key lies between the bounds (`BTreeMap::range` panics on
/// such a range; a scan just yields nothing).
pub(crate) fn is_empty(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
        _ => false,
    }
}

/// Where a scan reads its snapshot from: its own handle on a view that
/// holds every commit of the snapshot, which the scan keeps until it is
/// dropped (the snapshot itself may move on meanwhile: decision 0032).
#[derive(Debug, Clone)]
pub(crate) struct ScanSource {
    pub(crate) view: Arc<View>,
    pub(crate) read_ts: Ts,
}

/// Iterator returned by [`crate::Txn::scan`] and [`crate::ReadTxn::scan`]
/// (and their `scan_prefix`): `(key, value)` rows in ascending key order,
/// or descending from the back ([`DoubleEndedIterator`]).
///
/// It merges the snapshot's rows with a transaction's own writes (which win
/// on equal keys; an own delete hides the key), stops at the range's end
/// without reading past it, and streams: rows are read as it advances. It
/// borrows the transaction, and reads the view its transaction read
/// through when it was made: while it lives it keeps that view's memtables
/// and tables, even once they are flushed or compacted away. Each row is a
/// copy; [`Cursor`] lends the same rows without copying them.
pub struct Scan<'a> {
    cursor: Cursor<'a>,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Scan").field(&self.cursor).finish()
    }
}

impl<'a> Scan<'a> {
    pub(crate) fn new(
        source: ScanSource,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        writes: Option<&'a WriteBuf>,
    ) -> Self {
        Scan {
            cursor: Cursor::new(source, bounds, writes),
        }
    }
}

fn owned(row: Result<(&[u8], &[u8])>) -> Result<(Vec<u8>, Vec<u8>)> {
    row.map(|(k, v)| (k.to_vec(), v.to_vec()))
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next().map(owned)
    }
}

impl DoubleEndedIterator for Scan<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.cursor.next_back().map(owned)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_keys_with_the_prefix() {
        assert_eq!(
            prefix_bounds(b"ab"),
            (
                Bound::Included(b"ab".to_vec()),
                Bound::Excluded(b"ac".to_vec())
            )
        );
        assert_eq!(
            prefix_bounds(b"a\xff\xff"),
            (
                Bound::Included(b"a\xff\xff".to_vec()),
                Bound::Excluded(b"b".to_vec())
            )
        );
        assert_eq!(
            prefix_bounds(b"\xff"),
            (Bound::Included(b"\xff".to_vec()), Bound::Unbounded)
        );
        assert_eq!(
            prefix_bounds(b""),
            (Bound::Included(Vec::new()), Bound::Unbounded)
        );
    }
}
