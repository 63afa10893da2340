//! [`LevelIter`]: one [`Source`] over a whole sorted level (LevelDB's
//! "two-level" / level iterator), so a scan merges one source per level
//! `>= 1` instead of one per table.
//!
//! Invariant relied on (what compaction keeps for every level `>= 1`):
//! 1. the tables are sorted by key and their key ranges
//!    (`smallest_key..=largest_key`) are disjoint, and
//! 2. no user key's versions are split across two tables.
//!
//! Then the level's versions in version order are table 0's, then table
//! 1's, and so on, and the table that can hold `(key, ts)` is found by a
//! binary search on the key alone (as `view::covering` does): a seek
//! positions that one table and moves on to a neighbour only if the target
//! lies past that table's last (first) version.
//!
//! At most one [`TableIter`] is open at a time: leaving a table (stepping
//! past its end, or a seek landing elsewhere) drops its cursor before the
//! next table's is made. Skipping a table that yields nothing is a loop
//! over table indices moving one way, so every call does at most one step
//! per table, never recursion.
//!
//! If the invariant is violated (overlapping or unsorted tables) nothing
//! panics and every call still ends: the output is each table's versions in
//! table order, which is then not version order, and a seek may miss a
//! version held by a table other than the one the search picked. Whoever
//! builds a level is responsible for the invariant; this iterator does not
//! check it (a check would be O(tables) per scan).
//!
//! Damage is as in a single table: once the open table's cursor stops on
//! damage, the level iterator is not valid, `status` reports the error,
//! and it stays there (later seeks and steps do not move to another table),
//! so a reader can never step over damaged versions without seeing `Err`.

use std::sync::Arc;

use super::Source;
use crate::error::Result;
use crate::sst::{Table, TableIter};
use crate::types::Ts;

/// See the module docs.
pub(crate) struct LevelIter<'a> {
    tables: &'a [Arc<Table>],
    /// The open table's position in `tables` and its cursor; `None` before
    /// the first positioning and once a walk ran off either end.
    open: Option<(usize, TableIter<&'a Table>)>,
}

impl<'a> LevelIter<'a> {
    /// A cursor over `tables` (sorted, disjoint; see the module docs), not
    /// yet positioned.
    pub(crate) fn new(tables: &'a [Arc<Table>]) -> Self {
        Self { tables, open: None }
    }

    /// Opens table `i` (dropping the cursor of any other), or closes the
    /// current one if there is no table `i`. Returns the cursor.
    fn open(&mut self, i: usize) -> Option<&mut TableIter<&'a Table>> {
        let tables = self.tables;
        if self.open.as_ref().is_none_or(|(at, _)| *at != i) {
            self.open = tables.get(i).map(|t| (i, TableIter::borrowed(t.as_ref())));
        }
        self.open.as_mut().map(|(_, it)| it)
    }

    /// The open cursor has stopped on damage: nothing may move it on.
    fn damaged(&self) -> bool {
        self.open
            .as_ref()
            .is_some_and(|(_, it)| it.status().is_err())
    }

    /// Whether the open cursor ran off its table's end cleanly (neither
    /// on a version nor on damage), so the walk goes on in a neighbour.
    fn exhausted(&self) -> bool {
        self.open
            .as_ref()
            .is_some_and(|(_, it)| !it.valid() && it.status().is_ok())
    }

    /// From an exhausted table `i`, on to the first version of the next
    /// table that has one.
    fn forward_from(&mut self, mut i: usize) {
        while self.exhausted() {
            i += 1;
            match self.open(i) {
                Some(it) => it.seek_to_first(),
                None => return,
            }
        }
    }

    /// From an exhausted table `i`, back to the last version of the
    /// previous table that has one.
    fn backward_from(&mut self, mut i: usize) {
        while self.exhausted() {
            let Some(before) = i.checked_sub(1) else {
                self.open = None;
                return;
            };
            i = before;
            if let Some(it) = self.open(i) {
                it.seek_to_last();
            }
        }
    }

    fn current(&self) -> Option<&TableIter<&'a Table>> {
        self.open.as_ref().map(|(_, it)| it)
    }
}

impl Source for LevelIter<'_> {
    fn seek(&mut self, key: &[u8], ts: Ts) {
        if self.damaged() {
            return;
        }
        // The first table whose range reaches `key`: every version of `key`
        // is in it, and every version before it is smaller than the target.
        let i = self
            .tables
            .partition_point(|t| t.properties().largest_key.as_slice() < key);
        if let Some(it) = self.open(i) {
            it.seek_to_scan(key, ts);
            self.forward_from(i);
        }
    }

    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        if self.damaged() {
            return;
        }
        // The last table whose range starts at or before `key`: every
        // version of `key` is in it, and every version after it is larger.
        let after = self
            .tables
            .partition_point(|t| t.properties().smallest_key.as_slice() <= key);
        let Some(i) = after.checked_sub(1) else {
            self.open = None;
            return;
        };
        if let Some(it) = self.open(i) {
            it.seek_for_prev(key, ts);
            self.backward_from(i);
        }
    }

    fn seek_to_first(&mut self) {
        if self.damaged() {
            return;
        }
        if let Some(it) = self.open(0) {
            it.seek_to_first();
            self.forward_from(0);
        }
    }

    fn seek_to_last(&mut self) {
        if self.damaged() {
            return;
        }
        let Some(i) = self.tables.len().checked_sub(1) else {
            self.open = None;
            return;
        };
        if let Some(it) = self.open(i) {
            it.seek_to_last();
            self.backward_from(i);
        }
    }

    fn next(&mut self) {
        let Some((i, it)) = self.open.as_mut() else {
            return;
        };
        if !it.valid() {
            return;
        }
        let i = *i;
        it.next();
        self.forward_from(i);
    }

    fn prev(&mut self) {
        let Some((i, it)) = self.open.as_mut() else {
            return;
        };
        if !it.valid() {
            return;
        }
        let i = *i;
        it.prev();
        self.backward_from(i);
    }

    fn valid(&self) -> bool {
        self.current().is_some_and(TableIter::valid)
    }

    fn key(&self) -> &[u8] {
        self.current().map_or(&[], |it| it.key())
    }

    fn ts(&self) -> Ts {
        self.current().map_or(Ts::ZERO, TableIter::ts)
    }

    fn value(&self) -> Option<&[u8]> {
        self.current().and_then(|it| Source::value(it))
    }

    fn status(&self) -> Result<()> {
        self.current().map_or(Ok(()), TableIter::status)
    }
}
