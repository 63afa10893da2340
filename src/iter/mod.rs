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
#[cfg(test)]
pub(crate) use visible::Row;
pub(crate) use visible::{Direction, VisibleIter};

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
        TableIter::seek_to_scan(self, key, ts);
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

impl<S: Source + ?Sized> Source for Box<S> {
    fn seek(&mut self, key: &[u8], ts: Ts) {
        (**self).seek(key, ts);
    }
    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        (**self).seek_for_prev(key, ts);
    }
    fn seek_to_first(&mut self) {
        (**self).seek_to_first();
    }
    fn seek_to_last(&mut self) {
        (**self).seek_to_last();
    }
    fn next(&mut self) {
        (**self).next();
    }
    fn prev(&mut self) {
        (**self).prev();
    }
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn ts(&self) -> Ts {
        (**self).ts()
    }
    fn value(&self) -> Option<&[u8]> {
        (**self).value()
    }
    fn status(&self) -> Result<()> {
        (**self).status()
    }
}

/// One source of a view (`View::sources_in`): a memtable, a level-0 table
/// or a deeper level. An enum rather than a `Box<dyn Source>`, so a scan
/// makes no allocation per source and the merge's calls are direct (and
/// can be inlined) instead of virtual.
pub(crate) enum AnySource<'a> {
    /// A memtable's cursor.
    Mem(MemCursor<'a>),
    /// One level-0 table.
    Table(TableIter<&'a Table>),
    /// A whole sorted level.
    Level(LevelIter<'a>),
}

/// Calls `$call` on whichever source `$self` is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnySource::Mem($s) => $call,
            AnySource::Table($s) => $call,
            AnySource::Level($s) => $call,
        }
    };
}

impl Source for AnySource<'_> {
    #[inline]
    fn seek(&mut self, key: &[u8], ts: Ts) {
        each!(self, s => Source::seek(s, key, ts));
    }
    #[inline]
    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        each!(self, s => Source::seek_for_prev(s, key, ts));
    }
    #[inline]
    fn seek_to_first(&mut self) {
        each!(self, s => Source::seek_to_first(s));
    }
    #[inline]
    fn seek_to_last(&mut self) {
        each!(self, s => Source::seek_to_last(s));
    }
    #[inline]
    fn next(&mut self) {
        each!(self, s => Source::next(s));
    }
    #[inline]
    fn prev(&mut self) {
        each!(self, s => Source::prev(s));
    }
    #[inline]
    fn valid(&self) -> bool {
        each!(self, s => Source::valid(s))
    }
    #[inline]
    fn key(&self) -> &[u8] {
        each!(self, s => Source::key(s))
    }
    #[inline]
    fn ts(&self) -> Ts {
        each!(self, s => Source::ts(s))
    }
    #[inline]
    fn value(&self) -> Option<&[u8]> {
        each!(self, s => Source::value(s))
    }
    #[inline]
    fn status(&self) -> Result<()> {
        each!(self, s => Source::status(s))
    }
}
