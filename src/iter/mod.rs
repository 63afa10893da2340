//! The read path over many sources: a [`Source`] is anything that holds
//! versions `(key, ts) -> value | tombstone` in version order (key
//! ascending, ts descending) and can seek and step both ways: a memtable
//! cursor, a table iterator, or a [`LevelIter`] over the tables of one
//! sorted level. [`MergeIter`] merges sources into one version order;
//! [`VisibleIter`] turns that into a snapshot's `(key, value)` rows between
//! two bounds, in either direction.
//!
//! Invariant relied on: a `(key, ts)` pair names one version, so if two
//! sources hold the same pair they hold the same version (a memtable and
//! the table it was flushed to, seen together only across a hand-off);
//! the merge yields it once.

mod level;
mod merge;
mod visible;

#[cfg(all(test, not(loom)))]
mod level_tests;
#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use level::LevelIter;
pub(crate) use merge::MergeIter;
pub(crate) use visible::{Direction, Row, VisibleIter};

use crate::error::Result;
use crate::memtable::MemCursor;
use crate::sst::{EntryKind, Table, TableIter};
use crate::types::Ts;

/// A cursor over versions in version order; see the module docs.
pub(crate) trait Source {
    /// The first version `>= (key, ts)`.
    fn seek(&mut self, key: &[u8], ts: Ts);
    /// The last version `<= (key, ts)`.
    fn seek_for_prev(&mut self, key: &[u8], ts: Ts);
    fn seek_to_first(&mut self);
    fn seek_to_last(&mut self);
    fn next(&mut self);
    fn prev(&mut self);
    fn valid(&self) -> bool;
    fn key(&self) -> &[u8];
    fn ts(&self) -> Ts;
    /// The value; `None` for a tombstone.
    fn value(&self) -> Option<&[u8]>;
    /// `Err` once the source stopped on damage (it is then not valid).
    fn status(&self) -> Result<()>;
}

impl Source for MemCursor<'_> {
    fn seek(&mut self, key: &[u8], ts: Ts) {
        MemCursor::seek(self, key, ts);
    }
    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        MemCursor::seek_for_prev(self, key, ts);
    }
    fn seek_to_first(&mut self) {
        MemCursor::seek_to_first(self);
    }
    fn seek_to_last(&mut self) {
        MemCursor::seek_to_last(self);
    }
    fn next(&mut self) {
        MemCursor::next(self);
    }
    fn prev(&mut self) {
        MemCursor::prev(self);
    }
    fn valid(&self) -> bool {
        MemCursor::valid(self)
    }
    fn key(&self) -> &[u8] {
        MemCursor::key(self)
    }
    fn ts(&self) -> Ts {
        MemCursor::ts(self)
    }
    fn value(&self) -> Option<&[u8]> {
        MemCursor::value(self)
    }
    fn status(&self) -> Result<()> {
        Ok(())
    }
}

impl<T: AsRef<Table>> Source for TableIter<T> {
    fn seek(&mut self, key: &[u8], ts: Ts) {
        TableIter::seek(self, key, ts);
    }
    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        TableIter::seek_for_prev(self, key, ts);
    }
    fn seek_to_first(&mut self) {
        TableIter::seek_to_first(self);
    }
    fn seek_to_last(&mut self) {
        TableIter::seek_to_last(self);
    }
    fn next(&mut self) {
        TableIter::next(self);
    }
    fn prev(&mut self) {
        TableIter::prev(self);
    }
    fn valid(&self) -> bool {
        TableIter::valid(self)
    }
    fn key(&self) -> &[u8] {
        TableIter::key(self)
    }
    fn ts(&self) -> Ts {
        TableIter::ts(self)
    }
    fn value(&self) -> Option<&[u8]> {
        (TableIter::kind(self) == Some(EntryKind::Value)).then(|| TableIter::value(self))
    }
    fn status(&self) -> Result<()> {
        TableIter::status(self)
    }
}
