//! [`MergeIter`]: k sources merged into one version order, both directions
//! (the LevelDB merging iterator's scheme: on a change of direction every
//! other source is re-positioned around the current version).
//!
//! Invariant: in forward mode every valid non-current source is at a
//! version `>=` the current one (and not equal: equal versions are stepped
//! together); in backward mode, `<=` and not equal. So the current source
//! holds the smallest (forward) or largest (backward) version of all.

use std::cmp::Ordering;

use super::Source;
use crate::error::Result;
use crate::sst::cmp_version;
use crate::types::Ts;

/// See the module docs. Sources earlier in the list win ties (there are
/// none between distinct versions; equal versions are the same version).
pub(crate) struct MergeIter<'a> {
    children: Vec<Box<dyn Source + 'a>>,
    current: Option<usize>,
    forward: bool,
    failed: bool,
    /// The current version's key while the sources step off it (reused:
    /// no allocation per step).
    scratch: Vec<u8>,
}

impl<'a> MergeIter<'a> {
    pub(crate) fn new(children: Vec<Box<dyn Source + 'a>>) -> Self {
        Self {
            children,
            current: None,
            forward: true,
            failed: false,
            scratch: Vec::new(),
        }
    }

    fn cmp_children(&self, a: usize, b: usize) -> Ordering {
        match (self.children.get(a), self.children.get(b)) {
            (Some(x), Some(y)) => cmp_version(x.key(), x.ts(), y.key(), y.ts()),
            _ => Ordering::Equal,
        }
    }

    /// Picks the smallest (`forward`) or largest valid child as current,
    /// unless a child stopped on damage.
    fn settle(&mut self) {
        if self.children.iter().any(|c| c.status().is_err()) {
            self.failed = true;
            self.current = None;
            return;
        }
        let mut best: Option<usize> = None;
        for i in 0..self.children.len() {
            if !self.children.get(i).is_some_and(|c| c.valid()) {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let ord = self.cmp_children(i, b);
                    let better = if self.forward {
                        ord == Ordering::Less
                    } else {
                        ord == Ordering::Greater
                    };
                    Some(if better { i } else { b })
                }
            };
        }
        self.current = best;
    }

    /// The current version, its key copied into a buffer the caller
    /// hands back (`self.scratch`, taken out so the sources can move).
    fn current_version(&mut self) -> Option<(Vec<u8>, Ts)> {
        let c = self.children.get(self.current?)?;
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        key.extend_from_slice(c.key());
        Some((key, c.ts()))
    }

    fn at(c: &dyn Source, key: &[u8], ts: Ts) -> bool {
        c.valid() && c.ts() == ts && c.key() == key
    }
}

impl Source for MergeIter<'_> {
    fn seek(&mut self, key: &[u8], ts: Ts) {
        for c in &mut self.children {
            c.seek(key, ts);
        }
        self.forward = true;
        self.settle();
    }

    fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        for c in &mut self.children {
            c.seek_for_prev(key, ts);
        }
        self.forward = false;
        self.settle();
    }

    fn seek_to_first(&mut self) {
        for c in &mut self.children {
            c.seek_to_first();
        }
        self.forward = true;
        self.settle();
    }

    fn seek_to_last(&mut self) {
        for c in &mut self.children {
            c.seek_to_last();
        }
        self.forward = false;
        self.settle();
    }

    fn next(&mut self) {
        let Some((key, ts)) = self.current_version() else {
            return;
        };
        if !self.forward {
            // Every other source is at or before the current version: move
            // each to the first version at or after it.
            let cur = self.current;
            for (i, c) in self.children.iter_mut().enumerate() {
                if Some(i) != cur {
                    c.seek(&key, ts);
                }
            }
            self.forward = true;
        }
        for c in &mut self.children {
            if Self::at(c.as_ref(), &key, ts) {
                c.next();
            }
        }
        self.scratch = key;
        self.settle();
    }

    fn prev(&mut self) {
        let Some((key, ts)) = self.current_version() else {
            return;
        };
        if self.forward {
            let cur = self.current;
            for (i, c) in self.children.iter_mut().enumerate() {
                if Some(i) != cur {
                    c.seek_for_prev(&key, ts);
                }
            }
            self.forward = false;
        }
        for c in &mut self.children {
            if Self::at(c.as_ref(), &key, ts) {
                c.prev();
            }
        }
        self.scratch = key;
        self.settle();
    }

    fn valid(&self) -> bool {
        !self.failed && self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current
            .and_then(|i| self.children.get(i))
            .map_or(&[], |c| c.key())
    }

    fn ts(&self) -> Ts {
        self.current
            .and_then(|i| self.children.get(i))
            .map_or(Ts::ZERO, |c| c.ts())
    }

    fn value(&self) -> Option<&[u8]> {
        self.current
            .and_then(|i| self.children.get(i))
            .and_then(|c| c.value())
    }

    fn status(&self) -> Result<()> {
        self.children.iter().try_for_each(|c| c.status())
    }
}
