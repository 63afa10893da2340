//! [`Scan`]: the rows of a snapshot between two bounds, overlaid with a
//! transaction's own writes, in either direction ([`DoubleEndedIterator`]),
//! and [`ScanRange`], what `scan` accepts.
//!
//! Each end has its own storage cursor (a [`VisibleIter`] over the merged
//! sources), created at that end's first use, so a scan that is only read
//! forwards costs one seek. The two ends never yield the same key: a row is
//! yielded from the front only while its key is below every key the back
//! has yielded, and the reverse.

use std::iter::Peekable;
use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use crate::error::Result;
use crate::iter::{Direction, MergeIter, Row, VisibleIter};
use crate::types::Ts;
use crate::view::View;
use crate::write_set::{OwnRange, WriteBuf};

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
fn is_empty(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
        _ => false,
    }
}

/// Where a scan reads its snapshot from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanSource<'a> {
    pub(crate) view: &'a View,
    pub(crate) read_ts: Ts,
}

type Storage<'a> = Peekable<VisibleIter<MergeIter<'a>>>;
type OwnWrite<'a> = (&'a [u8], Option<&'a [u8]>);

/// A transaction's own writes in the range, with a peek at both ends.
struct OwnWrites<'a> {
    range: OwnRange<'a>,
    front: Option<OwnWrite<'a>>,
    back: Option<OwnWrite<'a>>,
}

impl<'a> OwnWrites<'a> {
    fn peek_front(&mut self) -> Option<OwnWrite<'a>> {
        if self.front.is_none() {
            self.front = self.range.next().or_else(|| self.back.take());
        }
        self.front
    }

    fn peek_back(&mut self) -> Option<OwnWrite<'a>> {
        if self.back.is_none() {
            self.back = self.range.next_back().or_else(|| self.front.take());
        }
        self.back
    }
}

/// Iterator returned by [`crate::Txn::scan`] and [`crate::ReadTxn::scan`]
/// (and their `scan_prefix`): `(key, value)` rows in ascending key order,
/// or descending from the back ([`DoubleEndedIterator`]).
///
/// It merges the snapshot's rows with a transaction's own writes (which win
/// on equal keys; an own delete hides the key), stops at the range's end
/// without reading past it, and streams: rows are read as it advances. It
/// borrows the transaction.
pub struct Scan<'a> {
    source: ScanSource<'a>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    front: Option<Storage<'a>>,
    back: Option<Storage<'a>>,
    writes: Option<OwnWrites<'a>>,
    /// The last keys yielded from each end.
    last_front: Option<Vec<u8>>,
    last_back: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("read_ts", &self.source.read_ts)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<'a> Scan<'a> {
    pub(crate) fn new(
        source: ScanSource<'a>,
        (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
        writes: Option<&'a WriteBuf>,
    ) -> Self {
        let writes = writes.map(|w| OwnWrites {
            range: if is_empty(&start, &end) {
                OwnRange::default()
            } else {
                w.range((
                    start.as_ref().map(Vec::as_slice),
                    end.as_ref().map(Vec::as_slice),
                ))
            },
            front: None,
            back: None,
        });
        Scan {
            source,
            start,
            end,
            front: None,
            back: None,
            writes,
            last_front: None,
            last_back: None,
            done: false,
        }
    }

    fn storage(&self, direction: Direction) -> Storage<'a> {
        VisibleIter::new(
            MergeIter::new(self.source.view.sources_in(&self.start, &self.end)),
            self.source.read_ts,
            self.start.clone(),
            self.end.clone(),
            direction,
        )
        .peekable()
    }

    /// The next row from one end, before the crossing check.
    fn step(&mut self, direction: Direction) -> Option<Result<Row>> {
        let forward = direction == Direction::Forward;
        loop {
            let missing = if forward {
                self.front.is_none()
            } else {
                self.back.is_none()
            };
            if missing {
                let storage = Some(self.storage(direction));
                if forward {
                    self.front = storage;
                } else {
                    self.back = storage;
                }
            }
            let storage = if forward {
                self.front.as_mut()?
            } else {
                self.back.as_mut()?
            };
            let stored_key = match storage.peek() {
                Some(Ok((k, _))) => Some(k.as_slice()),
                Some(Err(_)) => return storage.next(),
                None => None,
            };
            let own = match self.writes.as_mut() {
                Some(w) if forward => w.peek_front(),
                Some(w) => w.peek_back(),
                None => None,
            };
            let take_own = match (own, stored_key) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((o, _)), Some(s)) => {
                    if forward {
                        o <= s
                    } else {
                        o >= s
                    }
                }
            };
            if !take_own {
                return storage.next();
            }
            let (key, value) = own?;
            if stored_key == Some(key) {
                storage.next(); // shadowed by the transaction's own write
            }
            if let Some(w) = self.writes.as_mut() {
                if forward {
                    w.front = None;
                } else {
                    w.back = None;
                }
            }
            if let Some(v) = value {
                return Some(Ok((key.to_vec(), v.to_vec())));
            }
            // An own delete: no row for this key; look further.
        }
    }
}

/// Keeps a copy of `key` in `slot`, reusing its buffer (no allocation per
/// row once the first is made).
fn remember(slot: &mut Option<Vec<u8>>, key: &[u8]) {
    match slot {
        Some(buf) => {
            buf.clear();
            buf.extend_from_slice(key);
        }
        None => *slot = Some(key.to_vec()),
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = self.step(Direction::Forward);
        match &row {
            Some(Ok((k, _))) if self.last_back.as_ref().is_some_and(|b| k >= b) => {
                self.done = true;
                None
            }
            Some(Ok((k, _))) => {
                remember(&mut self.last_front, k);
                row
            }
            Some(Err(_)) | None => {
                self.done = true;
                row
            }
        }
    }
}

impl DoubleEndedIterator for Scan<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = self.step(Direction::Backward);
        match &row {
            Some(Ok((k, _))) if self.last_front.as_ref().is_some_and(|f| k <= f) => {
                self.done = true;
                None
            }
            Some(Ok((k, _))) => {
                remember(&mut self.last_back, k);
                row
            }
            Some(Err(_)) | None => {
                self.done = true;
                row
            }
        }
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
