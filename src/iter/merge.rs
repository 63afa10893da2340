//! [`MergeIter`]: k sources merged into one version order, both directions
//! (the LevelDB merging iterator's scheme: on a change of direction every
//! other source is re-positioned around the current version).
//!
//! Invariant: in forward mode every valid non-current source is at a
//! version `>=` the current one (equal ones are stepped together); in
//! backward mode, `<=`. So the current source holds the smallest (forward)
//! or largest (backward) version of all. The merge also remembers the
//! runner-up, the best of the other sources: a step moves only the current
//! source, so while it stays ahead of the runner-up no other source needs
//! a comparison (one comparison per step, not one per source: in a leveled
//! tree most consecutive versions come from the same source).

use std::cmp::Ordering;

use super::Source;
use crate::error::Result;
use crate::sst::cmp_version;
use crate::types::Ts;

/// See the module docs. Sources earlier in the list win ties (there are
/// none between distinct versions; equal versions are the same version).
/// `S` is a scan's `AnySource` (direct calls) or a `Box<dyn Source>`.
pub(crate) struct MergeIter<S> {
    children: Vec<S>,
    current: Option<usize>,
    /// The best valid source other than `current` (see the module docs).
    second: Option<usize>,
    /// Whether `second` is at the current version (the same version in
    /// two sources): set wherever current and runner-up were compared, so
    /// a step need not compare them again before moving.
    tied: bool,
    forward: bool,
    failed: bool,
    /// The current version's key while the sources step off it (reused:
    /// no allocation per step).
    scratch: Vec<u8>,
}

impl<S: Source> MergeIter<S> {
    pub(crate) fn new(children: Vec<S>) -> Self {
        Self {
            children,
            current: None,
            second: None,
            tied: false,
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

    /// Whether child `a` comes before child `b` in the current direction.
    fn ahead(&self, a: usize, b: usize) -> bool {
        let ord = self.cmp_children(a, b);
        if self.forward {
            ord == Ordering::Less
        } else {
            ord == Ordering::Greater
        }
    }

    /// Picks the smallest (`forward`) or largest valid child as current,
    /// and the runner-up, unless a child stopped on damage. Ties go to the
    /// earlier child.
    fn settle(&mut self) {
        if self.children.iter().any(|c| c.status().is_err()) {
            self.failed = true;
            self.current = None;
            self.second = None;
            self.tied = false;
            return;
        }
        let (mut best, mut second): (Option<usize>, Option<usize>) = (None, None);
        for i in 0..self.children.len() {
            if !self.children.get(i).is_some_and(Source::valid) {
                continue;
            }
            match best {
                None => best = Some(i),
                Some(b) if self.ahead(i, b) => {
                    second = best;
                    best = Some(i);
                }
                Some(_) => {
                    if second.is_none_or(|s| self.ahead(i, s)) {
                        second = Some(i);
                    }
                }
            }
        }
        self.current = best;
        self.second = second;
        self.tied = match (best, second) {
            (Some(b), Some(s)) => self.cmp_children(b, s) == Ordering::Equal,
            _ => false,
        };
    }

    /// One step of the current source when no other source is at its
    /// version (the common case): `false` if that does not hold and the
    /// caller must take the general path. Only the stepped source is
    /// compared, with the runner-up; the others did not move.
    fn step_current(&mut self) -> bool {
        let Some(cur) = self.current else {
            return false;
        };
        if self.tied {
            return false;
        }
        let forward = self.forward;
        let Some(c) = self.children.get_mut(cur) else {
            return false;
        };
        if forward {
            c.next();
        } else {
            c.prev();
        }
        if !c.valid() {
            // Exhausted or damaged: a full pick (which also looks at the
            // stepped source's status).
            self.settle();
            return true;
        }
        let Some(s) = self.second else {
            return true;
        };
        match self.cmp_children(cur, s) {
            Ordering::Equal => self.tied = true,
            Ordering::Less if forward => {}
            Ordering::Greater if !forward => {}
            // Overtaken by the runner-up.
            _ => self.settle(),
        }
        true
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

    fn at(c: &S, key: &[u8], ts: Ts) -> bool {
        c.valid() && c.ts() == ts && c.key() == key
    }
}

impl<S: Source> Source for MergeIter<S> {
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
        if self.forward && self.step_current() {
            return;
        }
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
            if Self::at(c, &key, ts) {
                c.next();
            }
        }
        self.scratch = key;
        self.settle();
    }

    fn prev(&mut self) {
        if !self.forward && self.step_current() {
            return;
        }
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
            if Self::at(c, &key, ts) {
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
            .map_or(Ts::ZERO, Source::ts)
    }

    fn value(&self) -> Option<&[u8]> {
        self.current
            .and_then(|i| self.children.get(i))
            .and_then(|c| c.value())
    }

    fn status(&self) -> Result<()> {
        self.children.iter().try_for_each(Source::status)
    }
}
