//! [`VisibleIter`]: a snapshot's rows `(key, value)` between two bounds,
//! from merged versions, in one direction.
//!
//! For each user key the row is its newest version with `ts <= read_ts`;
//! a key whose row is a tombstone, or which has no version that old, has no
//! row. The scan stops at its far bound: it never reads past the first key
//! outside the range (tombstones beyond the end cost nothing). Within a key,
//! versions the snapshot does not need are skipped by stepping a few times,
//! then by one seek (RocksDB's `max_sequential_skip_in_iterations` idea), so
//! a key with one version costs one step and a key with thousands one seek.

use std::ops::Bound;

use super::Source;
use crate::error::Result;
use crate::types::Ts;

/// Steps tried before a seek when skipping a key's other versions.
const SKIP_STEPS: usize = 8;

/// Which way a [`VisibleIter`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Ascending keys, from the start bound.
    Forward,
    /// Descending keys, from the end bound.
    Backward,
}

/// See the module docs. A lending cursor ([`VisibleIter::advance`], then
/// [`VisibleIter::key`] and [`VisibleIter::value`] until the next advance),
/// and an [`Iterator`] of owned rows on top of it.
pub(crate) struct VisibleIter<S, K = Vec<u8>> {
    src: S,
    read_ts: Ts,
    /// The bounds, owned (`Vec<u8>`) or borrowed from whoever keeps them
    /// (a cursor's, `cursor.rs`).
    start: Bound<K>,
    end: Bound<K>,
    direction: Direction,
    positioned: bool,
    done: bool,
    /// Forward: the source is on the current row's version, and the next
    /// advance steps off it (and past the key's older versions) first.
    on_row: bool,
    /// The current row's key (a copy: going forward it is what the next
    /// advance skips past; going backward the source has already left it).
    key: Vec<u8>,
    /// Backward: the current row's value (the source has left it too).
    value: Vec<u8>,
}

/// One row: a key and its value.
pub(crate) type Row = (Vec<u8>, Vec<u8>);

/// Copies `from` into `buf`, reusing its allocation.
fn copy_into(buf: &mut Vec<u8>, from: &[u8]) {
    buf.clear();
    buf.extend_from_slice(from);
}

impl<S: Source, K: AsRef<[u8]> + Clone> VisibleIter<S, K> {
    pub(crate) fn new(
        src: S,
        read_ts: Ts,
        start: Bound<K>,
        end: Bound<K>,
        direction: Direction,
    ) -> Self {
        Self {
            src,
            read_ts,
            start,
            end,
            direction,
            positioned: false,
            done: false,
            on_row: false,
            key: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Moves to the next row: `Some(Ok(()))` when there is one (read it
    /// with [`VisibleIter::key`] and [`VisibleIter::value`]), `None` at
    /// the end, `Some(Err)` once on damage (then `None`).
    pub(crate) fn advance(&mut self) -> Option<Result<()>> {
        if self.done {
            return None;
        }
        if !self.positioned {
            self.position();
        }
        let row = match self.direction {
            Direction::Forward => self.next_forward(),
            Direction::Backward => self.next_backward(),
        };
        if matches!(row, Some(Err(_))) {
            self.done = true;
        }
        row
    }

    /// The current row's key (after an advance that found one).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current row's value (after an advance that found one).
    pub(crate) fn value(&self) -> &[u8] {
        match self.direction {
            Direction::Forward => self.src.value().unwrap_or_default(),
            Direction::Backward => &self.value,
        }
    }

    fn past_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => key > e.as_ref(),
            Bound::Excluded(e) => key >= e.as_ref(),
            Bound::Unbounded => false,
        }
    }

    fn before_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(s) => key < s.as_ref(),
            Bound::Excluded(s) => key <= s.as_ref(),
            Bound::Unbounded => false,
        }
    }

    fn position(&mut self) {
        self.positioned = true;
        match (self.direction, &self.start, &self.end) {
            (Direction::Forward, Bound::Included(k), _) => self.src.seek(k.as_ref(), self.read_ts),
            (Direction::Forward, Bound::Excluded(k), _) => {
                let k = k.clone();
                self.src.seek(k.as_ref(), Ts::ZERO);
                if self.src.valid() && self.src.key() == k.as_ref() {
                    self.src.next();
                }
            }
            (Direction::Forward, Bound::Unbounded, _) => self.src.seek_to_first(),
            (Direction::Backward, _, Bound::Included(k)) => {
                self.src.seek_for_prev(k.as_ref(), Ts::ZERO);
            }
            (Direction::Backward, _, Bound::Excluded(k)) => {
                let k = k.clone();
                self.src.seek_for_prev(k.as_ref(), Ts::MAX);
                if self.src.valid() && self.src.key() == k.as_ref() {
                    self.src.prev();
                }
            }
            (Direction::Backward, _, Bound::Unbounded) => self.src.seek_to_last(),
        }
    }

    /// Ends the iteration: `Some(Err)` if the source stopped on damage.
    fn finish(&mut self) -> Option<Result<()>> {
        self.done = true;
        match self.src.status() {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Moves forward past every version of `key`.
    fn skip_forward(&mut self, key: &[u8]) {
        for _ in 0..SKIP_STEPS {
            if !(self.src.valid() && self.src.key() == key) {
                return;
            }
            self.src.next();
        }
        if self.src.valid() && self.src.key() == key {
            self.src.seek(key, Ts::ZERO);
            if self.src.valid() && self.src.key() == key {
                self.src.next();
            }
        }
    }

    /// Moves forward to `key`'s newest version at or below the read ts (or
    /// past the key if it has none).
    fn skip_to_visible(&mut self, key: &[u8]) {
        for _ in 0..SKIP_STEPS {
            if !(self.src.valid() && self.src.key() == key && self.src.ts() > self.read_ts) {
                return;
            }
            self.src.next();
        }
        if self.src.valid() && self.src.key() == key && self.src.ts() > self.read_ts {
            self.src.seek(key, self.read_ts);
        }
    }

    /// Moves backward past every version of `key`.
    fn skip_backward(&mut self, key: &[u8]) {
        for _ in 0..SKIP_STEPS {
            if !(self.src.valid() && self.src.key() == key) {
                return;
            }
            self.src.prev();
        }
        if self.src.valid() && self.src.key() == key {
            self.src.seek_for_prev(key, Ts::MAX);
            if self.src.valid() && self.src.key() == key {
                self.src.prev();
            }
        }
    }

    fn next_forward(&mut self) -> Option<Result<()>> {
        if std::mem::take(&mut self.on_row) {
            let key = std::mem::take(&mut self.key);
            self.src.next();
            self.skip_forward(&key);
            self.key = key;
        }
        loop {
            if !self.src.valid() {
                return self.finish();
            }
            if self.past_end(self.src.key()) {
                self.done = true;
                return None;
            }
            copy_into(&mut self.key, self.src.key());
            let key = std::mem::take(&mut self.key);
            if self.src.ts() > self.read_ts {
                self.skip_to_visible(&key);
                self.key = key;
                continue;
            }
            self.key = key;
            if self.src.value().is_some() {
                // The row; the source stays on it until the next advance.
                self.on_row = true;
                return Some(Ok(()));
            }
            // A tombstone: the key has no row. Step off it and past its
            // older versions.
            let key = std::mem::take(&mut self.key);
            self.src.next();
            self.skip_forward(&key);
            self.key = key;
        }
    }

    fn next_backward(&mut self) -> Option<Result<()>> {
        loop {
            if !self.src.valid() {
                return self.finish();
            }
            if self.before_start(self.src.key()) {
                self.done = true;
                return None;
            }
            // Going backwards a key's versions come oldest first: the row is
            // the last one seen at or below the read ts.
            let mut key = std::mem::take(&mut self.key);
            copy_into(&mut key, self.src.key());
            // Whether the last version seen at or below the read ts is a
            // value (then in `self.value`), a tombstone, or not seen yet.
            let mut row: Option<bool> = None;
            while self.src.valid() && self.src.key() == key.as_slice() {
                if self.src.ts() > self.read_ts {
                    self.skip_backward(&key);
                    break;
                }
                row = Some(match self.src.value() {
                    Some(v) => {
                        copy_into(&mut self.value, v);
                        true
                    }
                    None => false,
                });
                self.src.prev();
            }
            self.key = key;
            // Stopped on damage: the key's newer versions, the one the row
            // should come from among them, may be in what did not decode.
            if !self.src.valid() && self.src.status().is_err() {
                return self.finish();
            }
            if row == Some(true) {
                return Some(Ok(()));
            }
        }
    }
}

/// Owned rows (the merge and compaction tests, and whoever wants rows to
/// keep).
impl<S: Source> Iterator for VisibleIter<S> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.advance()?
                .map(|()| (self.key().to_vec(), self.value().to_vec())),
        )
    }
}
