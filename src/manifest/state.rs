//! The state a manifest describes, and the rules an edit must keep to be
//! applied to it (`docs/format/manifest.md`, "Applying a record").
//!
//! Invariants, kept by [`ManifestState::apply`] (the only way to change a
//! state), which checks a whole edit before it changes anything:
//! 1. A table number is in at most one level, once, and is below
//!    `next_file_number`.
//! 2. Level 0 is ordered by table number; every other level by smallest key,
//!    with key ranges that do not overlap (each largest key below the next
//!    table's smallest key).
//! 3. The counters (`next_file_number`, `flushed_lsn`, `max_ts`, `epoch`)
//!    never go back.
//! 4. `clean_close` is the last applied edit's (`None` if it had none).
//!
//! Pure: no files, no locks. The caller (`log.rs`) decides what a refused
//! edit means: corruption when replayed, a bug when about to be appended.

use std::collections::{BTreeMap, BTreeSet};

use super::edit::{Edit, NUM_LEVELS, TableRecord};
use crate::types::{Lsn, Ts};

/// The number the first file of a database (its first manifest) gets.
pub(crate) const FIRST_FILE_NUMBER: u64 = 1;

/// Tables per level and the counters recovery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestState {
    levels: [Vec<TableRecord>; NUM_LEVELS],
    /// Table number -> its level: the index behind invariant 1.
    level_of: BTreeMap<u64, u8>,
    next_file_number: u64,
    flushed_lsn: Lsn,
    max_ts: Ts,
    epoch: u64,
    clean_close: Option<Lsn>,
    /// Compaction may have collected versions below this ts.
    history_floor: Ts,
}

impl Default for ManifestState {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestState {
    /// The empty state a snapshot record is applied to: no table,
    /// `next_file_number` = [`FIRST_FILE_NUMBER`], every other counter 0.
    pub(crate) fn new() -> Self {
        Self {
            levels: std::array::from_fn(|_| Vec::new()),
            level_of: BTreeMap::new(),
            next_file_number: FIRST_FILE_NUMBER,
            flushed_lsn: Lsn::ZERO,
            max_ts: Ts::ZERO,
            epoch: 0,
            clean_close: None,
            history_floor: Ts::ZERO,
        }
    }

    /// The number the next new file (table or manifest) may take.
    pub(crate) fn next_file_number(&self) -> u64 {
        self.next_file_number
    }

    /// Every WAL record with an lsn at or below this is in tables.
    pub(crate) fn flushed_lsn(&self) -> Lsn {
        self.flushed_lsn
    }

    /// The highest commit ts ever issued that is durable (in a table or
    /// the WAL) as far as the manifest knows.
    pub(crate) fn max_ts(&self) -> Ts {
        self.max_ts
    }

    /// The replication epoch (0 until replication).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Compaction may have collected versions below this ts: no snapshot
    /// older than it reads exactly (the oracle's history floor starts here).
    pub(crate) fn history_floor(&self) -> Ts {
        self.history_floor
    }

    /// `Some(last_lsn)` if the last edit was a clean close's.
    pub(crate) fn clean_close(&self) -> Option<Lsn> {
        self.clean_close
    }

    /// The tables of `level` in their order (empty for a level out of range).
    pub(crate) fn level(&self, level: usize) -> &[TableRecord] {
        self.levels
            .get(level)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every table with its level, level by level.
    pub(crate) fn tables(&self) -> impl Iterator<Item = (u8, &TableRecord)> {
        self.levels
            .iter()
            .zip(0u8..)
            .flat_map(|(tables, level)| tables.iter().map(move |t| (level, t)))
    }

    /// The same state with no clean-close mark (a checkpoint's copy).
    pub(crate) fn without_clean_close(&self) -> ManifestState {
        ManifestState {
            clean_close: None,
            ..self.clone()
        }
    }

    /// Whether table `number` is in some level.
    pub(crate) fn contains(&self, number: u64) -> bool {
        self.level_of.contains_key(&number)
    }

    /// An edit that, applied to [`ManifestState::new`], gives this state
    /// (what a snapshot record holds).
    pub(crate) fn snapshot(&self) -> Edit {
        Edit {
            next_file_number: Some(self.next_file_number),
            flushed_lsn: Some(self.flushed_lsn),
            max_ts: Some(self.max_ts),
            epoch: Some(self.epoch),
            removed: Vec::new(),
            added: self.tables().map(|(l, t)| (l, t.clone())).collect(),
            clean_close: self.clean_close,
            history_floor: (self.history_floor > Ts::ZERO).then_some(self.history_floor),
        }
    }

    /// Applies `edit` if it keeps every rule; otherwise changes nothing and
    /// says which rule it breaks.
    pub(crate) fn apply(&mut self, edit: &Edit) -> Result<(), String> {
        self.check(edit)?;
        self.apply_checked(edit);
        Ok(())
    }

    /// Whether `edit` could be applied (the checks of [`ManifestState::apply`]).
    pub(crate) fn check(&self, edit: &Edit) -> Result<(), String> {
        let next = rises(
            "next file number",
            self.next_file_number,
            edit.next_file_number,
        )?;
        rises(
            "flushed lsn",
            self.flushed_lsn.0,
            edit.flushed_lsn.map(|l| l.0),
        )?;
        rises("max ts", self.max_ts.get(), edit.max_ts.map(Ts::get))?;
        rises("epoch", self.epoch, edit.epoch)?;
        rises(
            "history floor",
            self.history_floor.get(),
            edit.history_floor.map(Ts::get),
        )?;
        let mut gone = BTreeSet::new();
        for &(level, number) in &edit.removed {
            if self.level_of.get(&number) != Some(&level) || !gone.insert(number) {
                return Err(format!(
                    "removes table {number} from level {level}, where it is not"
                ));
            }
        }
        let mut added = BTreeSet::new();
        for (level, t) in &edit.added {
            if usize::from(*level) >= NUM_LEVELS {
                return Err(format!("level {level} is not below {NUM_LEVELS}"));
            }
            t.check()?;
            let present = self.level_of.contains_key(&t.number) && !gone.contains(&t.number);
            if present || !added.insert(t.number) {
                return Err(format!("adds table {}, which is already present", t.number));
            }
            if t.number >= next {
                return Err(format!(
                    "adds table {} at or above the next file number {next}",
                    t.number
                ));
            }
        }
        for level in 1..NUM_LEVELS {
            if edit.added.iter().any(|(l, _)| usize::from(*l) == level) {
                self.check_no_overlap(level, &gone, edit)?;
            }
        }
        Ok(())
    }

    /// Invariant 2 for `level` (>= 1) once `edit` is applied.
    fn check_no_overlap(
        &self,
        level: usize,
        gone: &BTreeSet<u64>,
        edit: &Edit,
    ) -> Result<(), String> {
        let kept = self
            .level(level)
            .iter()
            .filter(|t| !gone.contains(&t.number));
        let new = edit
            .added
            .iter()
            .filter(|(l, _)| usize::from(*l) == level)
            .map(|(_, t)| t);
        let mut tables: Vec<&TableRecord> = kept.chain(new).collect();
        tables.sort_by(|a, b| {
            (a.smallest_key.as_slice(), a.number).cmp(&(b.smallest_key.as_slice(), b.number))
        });
        for pair in tables.windows(2) {
            if let [a, b] = pair
                && a.largest_key >= b.smallest_key
            {
                return Err(format!(
                    "tables {} and {} overlap in level {level}",
                    a.number, b.number
                ));
            }
        }
        Ok(())
    }

    /// Applies an edit [`ManifestState::check`] accepted.
    pub(crate) fn apply_checked(&mut self, edit: &Edit) {
        if let Some(n) = edit.next_file_number {
            self.next_file_number = n;
        }
        if let Some(lsn) = edit.flushed_lsn {
            self.flushed_lsn = lsn;
        }
        if let Some(ts) = edit.max_ts {
            self.max_ts = ts;
        }
        if let Some(epoch) = edit.epoch {
            self.epoch = epoch;
        }
        if let Some(floor) = edit.history_floor {
            self.history_floor = floor;
        }
        for &(level, number) in &edit.removed {
            if let Some(tables) = self.levels.get_mut(usize::from(level)) {
                tables.retain(|t| t.number != number);
            }
            self.level_of.remove(&number);
        }
        for (level, t) in &edit.added {
            let Some(tables) = self.levels.get_mut(usize::from(*level)) else {
                continue;
            };
            let at = if *level == 0 {
                tables.partition_point(|x| x.number < t.number)
            } else {
                tables.partition_point(|x| x.smallest_key < t.smallest_key)
            };
            tables.insert(at, t.clone());
            self.level_of.insert(t.number, *level);
        }
        self.clean_close = edit.clean_close;
    }
}

/// The new value of a counter that may not go back.
fn rises(what: &str, current: u64, new: Option<u64>) -> Result<u64, String> {
    match new {
        Some(n) if n < current => Err(format!("{what} goes back from {current} to {n}")),
        Some(n) => Ok(n),
        None => Ok(current),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::manifest::tests::{arb_history, table};
    use proptest::prelude::*;

    fn state_with(edits: &[Edit]) -> ManifestState {
        let mut s = ManifestState::new();
        for e in edits {
            s.apply(e).expect("the test's edits are valid");
        }
        s
    }

    fn next(n: u64) -> Edit {
        Edit {
            next_file_number: Some(n),
            ..Edit::default()
        }
    }

    fn add(level: u8, t: TableRecord) -> Edit {
        Edit {
            added: vec![(level, t)],
            ..Edit::default()
        }
    }

    fn remove(tables: &[(u8, u64)]) -> Edit {
        Edit {
            removed: tables.to_vec(),
            ..Edit::default()
        }
    }

    #[test]
    fn tables_are_kept_in_level_order() {
        let s = state_with(&[
            next(100),
            add(0, table(9, b"a", b"z")),
            add(0, table(3, b"a", b"z")),
            add(1, table(5, b"m", b"p")),
            add(1, table(4, b"a", b"c")),
            add(1, table(6, b"q", b"z")),
        ]);
        let numbers = |l| s.level(l).iter().map(|t| t.number).collect::<Vec<_>>();
        assert_eq!(numbers(0), [3, 9]);
        assert_eq!(numbers(1), [4, 5, 6]);
        assert!(s.level(99).is_empty());
        assert!(s.contains(5) && !s.contains(7));
        let order: Vec<_> = s.tables().map(|(l, t)| (l, t.number)).collect();
        assert_eq!(order, [(0, 3), (0, 9), (1, 4), (1, 5), (1, 6)]);
    }

    #[test]
    fn edits_that_break_a_rule_are_refused_and_change_nothing() {
        let base = state_with(&[
            Edit {
                next_file_number: Some(10),
                flushed_lsn: Some(Lsn(5)),
                max_ts: Some(Ts::from(50)),
                epoch: Some(2),
                history_floor: Some(Ts::from(40)),
                ..Edit::default()
            },
            add(0, table(2, b"a", b"z")),
            add(1, table(3, b"c", b"f")),
        ]);
        let bad: Vec<(Edit, &str)> = vec![
            (next(9), "next file number goes back from 10 to 9"),
            (
                Edit {
                    flushed_lsn: Some(Lsn(4)),
                    ..Edit::default()
                },
                "flushed lsn goes back",
            ),
            (
                Edit {
                    max_ts: Some(Ts::from(49)),
                    ..Edit::default()
                },
                "max ts goes back",
            ),
            (
                Edit {
                    epoch: Some(1),
                    ..Edit::default()
                },
                "epoch goes back",
            ),
            (
                Edit {
                    history_floor: Some(Ts::from(39)),
                    ..Edit::default()
                },
                "history floor goes back",
            ),
            (
                add(2, table(2, b"a", b"b")),
                "adds table 2, which is already present",
            ),
            (
                add(0, table(10, b"a", b"b")),
                "at or above the next file number 10",
            ),
            (add(7, table(4, b"a", b"b")), "level 7"),
            (add(0, table(0, b"a", b"b")), "number 0"),
            (remove(&[(0, 3)]), "removes table 3 from level 0"),
            (remove(&[(0, 2), (0, 2)]), "removes table 2 from level 0"),
            (
                add(1, table(4, b"a", b"c")),
                "tables 4 and 3 overlap in level 1",
            ),
            (
                add(1, table(4, b"f", b"g")),
                "tables 3 and 4 overlap in level 1",
            ),
            (
                Edit {
                    added: vec![(0, table(4, b"a", b"b")), (0, table(4, b"a", b"b"))],
                    ..Edit::default()
                },
                "adds table 4, which is already present",
            ),
            (
                // A later, valid part does not make up for the bad one.
                Edit {
                    next_file_number: Some(20),
                    removed: vec![(1, 2)],
                    ..Edit::default()
                },
                "removes table 2 from level 1",
            ),
        ];
        for (edit, want) in bad {
            let mut s = base.clone();
            let err = s.apply(&edit).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
            assert_eq!(s, base, "a refused edit changed the state: {want}");
        }
    }

    #[test]
    fn an_edit_applies_counters_then_removals_then_additions() {
        let mut s = state_with(&[next(5), add(0, table(2, b"a", b"z"))]);
        // Move table 2 to level 1 and add table 5, which the same edit's
        // counter makes allowed.
        s.apply(&Edit {
            next_file_number: Some(6),
            removed: vec![(0, 2)],
            added: vec![(1, table(2, b"a", b"k")), (1, table(5, b"l", b"z"))],
            ..Edit::default()
        })
        .unwrap();
        assert!(s.level(0).is_empty());
        assert_eq!(s.level(1).len(), 2);
        // Touching ranges are an overlap; disjoint ones are not.
        assert!(s.check(&add(2, table(3, b"a", b"b"))).is_ok());
        s.apply(&Edit {
            removed: vec![(1, 5)],
            ..Edit::default()
        })
        .unwrap();
        assert!(s.check(&add(1, table(3, b"k", b"m"))).is_err());
        assert!(s.check(&add(1, table(3, b"ka", b"m"))).is_ok());
    }

    #[test]
    fn clean_close_lasts_until_the_next_edit() {
        let mut s = ManifestState::new();
        s.apply(&Edit {
            clean_close: Some(Lsn(9)),
            ..Edit::default()
        })
        .unwrap();
        assert_eq!(s.clean_close(), Some(Lsn(9)));
        s.apply(&Edit::default()).unwrap();
        assert_eq!(s.clean_close(), None);
    }

    proptest! {
        /// A snapshot of any reachable state rebuilds exactly that state.
        #[test]
        fn a_snapshot_rebuilds_the_state(history in arb_history(12)) {
            let mut s = ManifestState::new();
            for e in &history {
                s.apply(e).unwrap();
            }
            let snap = s.snapshot();
            prop_assert!(snap.is_snapshot());
            let mut rebuilt = ManifestState::new();
            rebuilt.apply(&snap).unwrap();
            prop_assert_eq!(rebuilt, s);
        }
    }
}
