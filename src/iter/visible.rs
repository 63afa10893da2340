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

/// See the module docs.
pub(crate) struct VisibleIter<S> {
    src: S,
    read_ts: Ts,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    direction: Direction,
    positioned: bool,
    done: bool,
}

/// One row: a key and its value.
pub(crate) type Row = (Vec<u8>, Vec<u8>);

impl<S: Source> VisibleIter<S> {
    pub(crate) fn new(
        src: S,
        read_ts: Ts,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
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
        }
    }

    fn past_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
            Bound::Unbounded => false,
        }
    }

    fn before_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(s) => key < s.as_slice(),
            Bound::Excluded(s) => key <= s.as_slice(),
            Bound::Unbounded => false,
        }
    }

    fn position(&mut self) {
        self.positioned = true;
        match (self.direction, &self.start, &self.end) {
            (Direction::Forward, Bound::Included(k), _) => self.src.seek(k, self.read_ts),
            (Direction::Forward, Bound::Excluded(k), _) => {
                let k = k.clone();
                self.src.seek(&k, Ts::ZERO);
                if self.src.valid() && self.src.key() == k.as_slice() {
                    self.src.next();
                }
            }
            (Direction::Forward, Bound::Unbounded, _) => self.src.seek_to_first(),
            (Direction::Backward, _, Bound::Included(k)) => self.src.seek_for_prev(k, Ts::ZERO),
            (Direction::Backward, _, Bound::Excluded(k)) => {
                let k = k.clone();
                self.src.seek_for_prev(&k, Ts::MAX);
                if self.src.valid() && self.src.key() == k.as_slice() {
                    self.src.prev();
                }
            }
            (Direction::Backward, _, Bound::Unbounded) => self.src.seek_to_last(),
        }
    }

    /// Ends the iteration: `Some(Err)` if the source stopped on damage.
    fn finish(&mut self) -> Option<Result<Row>> {
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

    fn next_forward(&mut self) -> Option<Result<Row>> {
        loop {
            if !self.src.valid() {
                return self.finish();
            }
            if self.past_end(self.src.key()) {
                self.done = true;
                return None;
            }
            if self.src.ts() > self.read_ts {
                let key = self.src.key().to_vec();
                self.skip_to_visible(&key);
                continue;
            }
            let key = self.src.key().to_vec();
            let value = self.src.value().map(<[u8]>::to_vec);
            // The source is on `key`: step off it before comparing.
            self.src.next();
            self.skip_forward(&key);
            if let Some(value) = value {
                return Some(Ok((key, value)));
            }
        }
    }

    fn next_backward(&mut self) -> Option<Result<Row>> {
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
            let key = self.src.key().to_vec();
            let mut row: Option<Option<Vec<u8>>> = None;
            while self.src.valid() && self.src.key() == key.as_slice() {
                if self.src.ts() > self.read_ts {
                    self.skip_backward(&key);
                    break;
                }
                row = Some(self.src.value().map(<[u8]>::to_vec));
                self.src.prev();
            }
            // Stopped on damage: the key's newer versions, the one the row
            // should come from among them, may be in what did not decode.
            if !self.src.valid() && self.src.status().is_err() {
                return self.finish();
            }
            if let Some(Some(value)) = row {
                return Some(Ok((key, value)));
            }
        }
    }
}

impl<S: Source> Iterator for VisibleIter<S> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
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
}
