//! [`Cursor`]: the rows of a snapshot between two bounds, overlaid with a
//! transaction's own writes, in either direction, lent rather than owned
//! (decision 0026). [`crate::Scan`] is this cursor with each row copied out.
//!
//! Each end has its own storage cursor (a [`VisibleIter`] over the merged
//! sources), created at that end's first use, so a cursor that is only read
//! forwards costs one seek per source. The two ends never yield the same
//! key: a row is yielded from the front only while its key is below every
//! key the back has yielded, and the reverse.
//!
//! What a row borrows, and so why it lives only until the next call: going
//! forward the value is the storage cursor's current version (a memtable
//! entry, or a slice of a mapped, verified table block) and the key a copy
//! the cursor keeps; going backward both are copies in buffers the cursor
//! reuses (the storage cursor has already stepped past the row's version
//! when it knows it is the row); an own write is the transaction's buffer.
//! No row allocates once the buffers have grown to the longest key and
//! value.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::iter::{AnySource, Direction, MergeIter, VisibleIter};
use crate::scan::{ScanSource, is_empty};
use crate::types::Ts;
use crate::view::View;
use crate::write_set::{OwnRange, WriteBuf};

type Rows<'v> = VisibleIter<MergeIter<AnySource<'v>>, &'v [u8]>;
type OwnWrite<'a> = (&'a [u8], Option<&'a [u8]>);

/// Both ends' storage cursors, made at each end's first use, borrowing
/// from the view the cursor holds.
#[derive(Default)]
struct Ends<'v> {
    front: Option<End<'v>>,
    back: Option<End<'v>>,
}

/// What the storage cursors borrow: the cursor's own handle on the view it
/// reads (decision 0032: the snapshot may take a newer view meanwhile,
/// while this one lives as long as the cursor), and the range's bounds
/// (so each end's filter compares with them in place instead of a copy).
struct Held {
    view: Arc<View>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
}

self_cell::self_cell!(
    /// [`Held`] and the storage cursors that borrow from it.
    struct Storage {
        owner: Held,
        #[covariant]
        dependent: Ends,
    }
);

/// One end's storage rows, with a peek: the merge with the transaction's
/// own writes looks at a row before it decides to take it.
struct End<'v> {
    rows: Rows<'v>,
    /// The storage cursor is on a row that is not taken yet.
    peeked: bool,
}

impl End<'_> {
    /// The key of the row not taken yet, after moving to it if needed.
    fn peek(&mut self) -> Result<Option<&[u8]>> {
        if !self.peeked {
            match self.rows.advance() {
                Some(Ok(())) => self.peeked = true,
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            }
        }
        Ok(Some(self.rows.key()))
    }
}

/// A transaction's own writes in the range, with a peek at both ends.
struct OwnWrites<'a> {
    range: OwnRange<'a>,
    front: Option<OwnWrite<'a>>,
    back: Option<OwnWrite<'a>>,
}

impl<'a> OwnWrites<'a> {
    fn peek(&mut self, forward: bool) -> Option<OwnWrite<'a>> {
        if forward {
            if self.front.is_none() {
                self.front = self.range.next().or_else(|| self.back.take());
            }
            self.front
        } else {
            if self.back.is_none() {
                self.back = self.range.next_back().or_else(|| self.front.take());
            }
            self.back
        }
    }

    fn take(&mut self, forward: bool) {
        if forward {
            self.front = None;
        } else {
            self.back = None;
        }
    }
}

/// What one end's next row is.
enum Pick<'a> {
    /// The transaction's own write.
    Own(&'a [u8], &'a [u8]),
    /// The row the end's storage cursor is on.
    Stored,
    /// None: the end is exhausted.
    End,
}

/// A lending cursor over rows in a key range, from [`crate::ReadTxn::cursor`]
/// or [`crate::Txn::cursor`]: the rows of [`crate::Scan`], the same ones in
/// the same order from either end, but each row is lent as `(&[u8],
/// &[u8])` until the next call instead of copied into two `Vec`s.
///
/// [`Cursor::next`] yields ascending keys from the range's start,
/// [`Cursor::next_back`] descending keys from its end; mixed, the two ends
/// meet without yielding a key twice. A `Txn`'s cursor sees its own puts
/// and deletes (which win over the snapshot on equal keys). Damage met on
/// the way is an `Err` item, after which the cursor yields nothing.
///
/// It is not an [`Iterator`] (a row borrows the cursor), so loop with
/// `while let`:
///
/// ```
/// # fn main() -> strata::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("strata-cursor-doc-{}", std::process::id()));
/// # let db = strata::Db::open(&dir, strata::Options::default())?;
/// # db.update(|t| { t.put(b"a", b"1")?; t.put(b"b", b"2") })?;
/// let snap = db.begin_read();
/// let mut cursor = snap.cursor(b"a".as_slice()..)?;
/// let mut total = 0;
/// while let Some(row) = cursor.next() {
///     let (key, value) = row?;
///     total += key.len() + value.len();
/// }
/// assert_eq!(total, 4);
/// # drop(cursor); drop(snap); db.close()?; std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
pub struct Cursor<'a> {
    storage: Storage,
    read_ts: Ts,
    writes: Option<OwnWrites<'a>>,
    /// The last keys yielded from each end (buffers reused).
    last_front: Option<Vec<u8>>,
    last_back: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.storage.borrow_owner();
        f.debug_struct("Cursor")
            .field("read_ts", &self.read_ts)
            .field("start", &held.start)
            .field("end", &held.end)
            .finish_non_exhaustive()
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(
        source: ScanSource,
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
        let held = Held {
            view: source.view,
            start,
            end,
        };
        Cursor {
            storage: Storage::new(held, |_| Ends::default()),
            read_ts: source.read_ts,
            writes,
            last_front: None,
            last_back: None,
            done: false,
        }
    }

    /// The next row in ascending key order, lent until the next call;
    /// `None` once the range (or the back end) is reached.
    #[expect(
        clippy::should_implement_trait,
        reason = "a lending cursor: a row borrows the cursor, which `Iterator` cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.yield_row(Direction::Forward)
    }

    /// The next row in descending key order, from the range's end, lent
    /// until the next call; `None` once the range (or the front end) is
    /// reached.
    pub fn next_back(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.yield_row(Direction::Backward)
    }

    fn yield_row(&mut self, direction: Direction) -> Option<Result<(&[u8], &[u8])>> {
        if self.done {
            return None;
        }
        let forward = direction == Direction::Forward;
        let row = match step(&mut self.storage, &mut self.writes, self.read_ts, forward) {
            Ok(Some(row)) => row,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        // The ends meet: every row from here on was yielded by the other.
        let (mine, other) = if forward {
            (&mut self.last_front, &self.last_back)
        } else {
            (&mut self.last_back, &self.last_front)
        };
        let crossed = other
            .as_deref()
            .is_some_and(|o| if forward { row.0 >= o } else { row.0 <= o });
        if crossed {
            self.done = true;
            return None;
        }
        remember(mine, row.0);
        Some(Ok(row))
    }
}

/// One end's next row (`None`: the end is exhausted), before the crossing
/// check: the smaller (forward) or larger of the storage's and the own
/// writes' next keys, an own write on a tie (a storage row it shadows is
/// passed over), an own delete skipped. The end's storage cursor is made
/// here at its first use. One access to the cell per row.
fn step<'o, 'a: 'o>(
    storage: &'o mut Storage,
    writes: &mut Option<OwnWrites<'a>>,
    read_ts: Ts,
    forward: bool,
) -> Result<Option<(&'o [u8], &'o [u8])>> {
    storage.with_dependent_mut(|held, ends| {
        let slot = if forward {
            &mut ends.front
        } else {
            &mut ends.back
        };
        let stored = slot.get_or_insert_with(|| End {
            rows: rows(held, read_ts, forward),
            peeked: false,
        });
        Ok(match merge_step(stored, writes, forward)? {
            Pick::Own(k, v) => Some((k, v)),
            Pick::Stored => Some((stored.rows.key(), stored.rows.value())),
            Pick::End => None,
        })
    })
}

/// [`Cursor::step`] once the end's storage cursor exists.
fn merge_step<'a>(
    end: &mut End<'_>,
    writes: &mut Option<OwnWrites<'a>>,
    forward: bool,
) -> Result<Pick<'a>> {
    loop {
        let stored = end.peek()?;
        let own = writes.as_mut().and_then(|w| w.peek(forward));
        let (key, value) = match (own, stored) {
            (None, None) => return Ok(Pick::End),
            (None, Some(_)) => {
                end.peeked = false;
                return Ok(Pick::Stored);
            }
            (Some((o, _)), Some(s)) if (o < s) != forward && o != s => {
                end.peeked = false;
                return Ok(Pick::Stored);
            }
            (Some((o, v)), s) => {
                if s == Some(o) {
                    end.peeked = false; // shadowed by the own write
                }
                (o, v)
            }
        };
        if let Some(w) = writes.as_mut() {
            w.take(forward);
        }
        if let Some(v) = value {
            return Ok(Pick::Own(key, v));
        }
        // An own delete: no row for this key; look further.
    }
}

/// A storage cursor for one end, borrowing the view and the bounds.
fn rows(held: &Held, read_ts: Ts, forward: bool) -> Rows<'_> {
    let (start, end) = (&held.start, &held.end);
    VisibleIter::new(
        MergeIter::new(held.view.sources_in(start, end)),
        read_ts,
        start.as_ref().map(Vec::as_slice),
        end.as_ref().map(Vec::as_slice),
        if forward {
            Direction::Forward
        } else {
            Direction::Backward
        },
    )
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
