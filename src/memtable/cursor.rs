//! [`MemCursor`]: a position among a memtable's versions that seeks and
//! steps in both directions, for the merging iterator (`crate::iter`).

use super::{Memtable, Version, VersionRef};
use crate::types::Ts;

/// See the module docs. Not positioned until a seek. Holds a borrowed
/// position: stepping forward is one link, backward a search.
pub(crate) struct MemCursor<'a> {
    mem: &'a Memtable,
    cur: Option<Version<'a>>,
}

impl<'a> MemCursor<'a> {
    pub(crate) fn new(mem: &'a Memtable) -> Self {
        Self { mem, cur: None }
    }

    pub(crate) fn valid(&self) -> bool {
        self.cur.is_some()
    }

    /// The current user key (empty when not valid).
    pub(crate) fn key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |e| e.key().user_key())
    }

    pub(crate) fn ts(&self) -> Ts {
        self.cur.as_ref().map_or(Ts::ZERO, |e| e.key().ts)
    }

    /// The current value; `None` for a tombstone (or when not valid).
    pub(crate) fn value(&self) -> Option<&[u8]> {
        self.cur.as_ref().and_then(|e| e.value().as_deref())
    }

    /// The first version `>= (key, ts)`.
    pub(crate) fn seek(&mut self, key: &[u8], ts: Ts) {
        self.cur = self.mem.seek(key, ts);
    }

    /// The last version `<= (key, ts)`.
    pub(crate) fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        let probe: &dyn VersionRef = &(key, ts);
        self.cur = self.mem.map.upper_bound(probe);
    }

    pub(crate) fn seek_to_first(&mut self) {
        self.cur = self.mem.map.first();
    }

    pub(crate) fn seek_to_last(&mut self) {
        self.cur = self.mem.map.last();
    }

    pub(crate) fn next(&mut self) {
        self.cur = self.cur.and_then(|e| e.next());
    }

    pub(crate) fn prev(&mut self) {
        self.cur = self.cur.and_then(|e| e.prev());
    }
}
