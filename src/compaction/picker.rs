//! The leveled policy: which tables to compact next (LevelDB's and
//! RocksDB's leveled scheme). Pure: it reads a summary of the levels and
//! returns a [`Choice`]; it knows nothing of files, views or threads.
//!
//! Shape it keeps:
//! - level 0 holds whole flushed memtables (key ranges overlap); once it
//!   holds [`Leveled::l0_trigger`] tables they all go to level 1, with every
//!   level-1 table their key range touches, or are all *moved* down
//!   unchanged when their ranges meet neither each other nor level 1 (a
//!   load in key order: nothing there to merge, decision 0033);
//! - level `n >= 1` (disjoint, sorted ranges) may hold
//!   `base_bytes * multiplier^(n-1)` bytes; past that, one of its tables
//!   (round robin by key, so every range gets its turn) goes down with
//!   the tables of level `n + 1` it overlaps, or is *moved* down unchanged
//!   when it overlaps none;
//! - the most urgent level goes first (score = size / target, level 0:
//!   tables / trigger); nothing runs below a score of 1.
//!
//! Invariants a choice keeps (the job and the manifest depend on them):
//! 1. the inputs of level `n + 1` are all of that level's tables whose
//!    range meets the key range of the inputs from above, so the outputs
//!    never overlap a table left in the output level;
//! 2. level-0 inputs are *all* of level 0 as the picker saw it: what stays
//!    in level 0 (flushed later) is newer than everything below it.

use super::Choice;

/// What the picker knows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableSummary {
    pub(crate) number: u64,
    pub(crate) bytes: u64,
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
}

impl TableSummary {
    fn meets(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest.as_slice() <= hi && self.largest.as_slice() >= lo
    }
}

/// The leveled policy's settings; [`Leveled::for_memtable`] derives them.
#[derive(Debug, Clone)]
pub(crate) struct Leveled {
    /// Level 0 is compacted once it holds this many tables.
    pub(crate) l0_trigger: usize,
    /// Level 1's target size.
    pub(crate) base_bytes: u64,
    /// Each deeper level may hold this many times its parent.
    pub(crate) multiplier: u64,
    /// Outputs are cut (between keys) once they reach this size.
    pub(crate) table_bytes: u64,
    /// Levels `0..levels`; the last is the bottom.
    pub(crate) levels: usize,
    /// Level 0 moves down unchanged only if each of its tables holds at
    /// least this much; smaller ones (a close's flush of a few keys) are
    /// merged, or level 1 would fill with them.
    pub(crate) min_move_bytes: u64,
}

impl Leveled {
    /// Settings for memtables of `memtable_bytes`: level 1 holds about four
    /// memtables, tables are about one memtable (clamped to 64 KiB..64 MiB);
    /// level 0 moves only tables of at least a quarter of that size (a
    /// full memtable's is a quarter to a half of the memtable: its
    /// accounting counts per-entry overheads a table does not have), so
    /// that moves never fill a level with tables far smaller than merges
    /// make.
    pub(crate) fn for_memtable(memtable_bytes: u64, levels: usize) -> Self {
        let table_bytes = memtable_bytes.clamp(64 << 10, 64 << 20);
        Self {
            l0_trigger: 4,
            base_bytes: table_bytes.saturating_mul(4),
            multiplier: 10,
            table_bytes,
            levels,
            min_move_bytes: table_bytes / 4,
        }
    }

    /// Target size of level `n >= 1`.
    pub(crate) fn target_bytes(&self, level: usize) -> u64 {
        let mut t = self.base_bytes;
        for _ in 1..level {
            t = t.saturating_mul(self.multiplier);
        }
        t
    }

    /// How urgent level `level` is (>= 1.0: due). The bottom level is
    /// never due: it has nowhere to go.
    #[expect(clippy::cast_precision_loss, reason = "a ratio")]
    pub(crate) fn score(&self, levels: &[Vec<TableSummary>], level: usize) -> f64 {
        let tables = levels.get(level).map_or(&[][..], Vec::as_slice);
        if level + 1 >= self.levels {
            return 0.0;
        }
        if level == 0 {
            return tables.len() as f64 / self.l0_trigger.max(1) as f64;
        }
        let bytes: u64 = tables.iter().map(|t| t.bytes).sum();
        bytes as f64 / self.target_bytes(level).max(1) as f64
    }

    /// Whether some level is due (what [`Leveled::pick`] would act on).
    pub(crate) fn due(&self, levels: &[Vec<TableSummary>]) -> bool {
        (0..self.levels).any(|l| self.score(levels, l) >= 1.0)
    }

    /// The next compaction, if any level is due. `cursors[n]` is the
    /// largest key of the last table taken from level `n` (round robin);
    /// it is advanced for the choice returned.
    pub(crate) fn pick(&self, levels: &[Vec<TableSummary>], cursors: &mut [Vec<u8>]) -> Choice {
        let mut best: Option<(usize, f64)> = None;
        for level in 0..self.levels {
            let s = self.score(levels, level);
            if s >= 1.0 && best.is_none_or(|(_, b)| s > b) {
                best = Some((level, s));
            }
        }
        let Some((level, _)) = best else {
            return Choice::Nothing;
        };
        if level == 0 {
            let upper = all(levels, 0);
            let whole = upper.iter().all(|t| t.bytes >= self.min_move_bytes);
            return merge_down(levels, 0, upper, whole);
        }
        let tables = levels.get(level).map_or(&[][..], Vec::as_slice);
        let cursor = cursors.get(level).cloned().unwrap_or_default();
        let i = tables.iter().position(|t| t.smallest > cursor).unwrap_or(0);
        let Some(t) = tables.get(i) else {
            return Choice::Nothing;
        };
        if let Some(c) = cursors.get_mut(level) {
            c.clone_from(&t.largest);
        }
        merge_down(levels, level, vec![t.clone()], true)
    }

    /// Everything into the bottom level: `Db::compact`. (Into the bottom,
    /// not the deepest level in use: a level over its target afterwards
    /// would be compacted again at once.)
    pub(crate) fn full(&self, levels: &[Vec<TableSummary>]) -> Choice {
        let inputs: Vec<(usize, TableSummary)> = levels
            .iter()
            .enumerate()
            .flat_map(|(l, ts)| ts.iter().map(move |t| (l, t.clone())))
            .collect();
        if inputs.is_empty() {
            return Choice::Nothing;
        }
        Choice::Merge {
            inputs,
            output_level: self.levels.saturating_sub(1).max(1),
        }
    }
}

fn all(levels: &[Vec<TableSummary>], level: usize) -> Vec<TableSummary> {
    levels.get(level).cloned().unwrap_or_default()
}

/// Whether no two of `tables` have key ranges that meet.
fn disjoint(tables: &[TableSummary]) -> bool {
    let mut ranges: Vec<(&[u8], &[u8])> = tables
        .iter()
        .map(|t| (t.smallest.as_slice(), t.largest.as_slice()))
        .collect();
    ranges.sort_unstable();
    ranges.windows(2).all(|w| match w {
        [(_, hi), (lo, _)] => hi < lo,
        _ => true,
    })
}

/// `upper` (from `level`) with the tables of `level + 1` it overlaps
/// (invariant 1); a move, if `may_move`, when there are none and the
/// tables of `upper` meet no other (one table of a level >= 1, or all of
/// level 0 disjoint: level `level + 1` then holds them side by side, as
/// its invariant wants, and what is newer stays above what is older).
fn merge_down(
    levels: &[Vec<TableSummary>],
    level: usize,
    upper: Vec<TableSummary>,
    may_move: bool,
) -> Choice {
    let (Some(lo), Some(hi)) = (
        upper.iter().map(|t| t.smallest.as_slice()).min(),
        upper.iter().map(|t| t.largest.as_slice()).max(),
    ) else {
        return Choice::Nothing;
    };
    let below: Vec<TableSummary> = levels
        .get(level + 1)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|t| t.meets(lo, hi))
        .cloned()
        .collect();
    if may_move && below.is_empty() && disjoint(&upper) {
        return Choice::Move {
            tables: upper.iter().map(|t| t.number).collect(),
            from: level,
            to: level + 1,
        };
    }
    let inputs = upper
        .into_iter()
        .map(|t| (level, t))
        .chain(below.into_iter().map(|t| (level + 1, t)))
        .collect();
    Choice::Merge {
        inputs,
        output_level: level + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(number: u64, bytes: u64, lo: &str, hi: &str) -> TableSummary {
        TableSummary {
            number,
            bytes,
            smallest: lo.as_bytes().to_vec(),
            largest: hi.as_bytes().to_vec(),
        }
    }

    fn policy() -> Leveled {
        Leveled {
            l0_trigger: 2,
            base_bytes: 100,
            multiplier: 10,
            table_bytes: 50,
            levels: 4,
            min_move_bytes: 12,
        }
    }

    fn numbers(choice: &Choice) -> Vec<(usize, u64)> {
        match choice {
            Choice::Merge { inputs, .. } => inputs.iter().map(|(l, t)| (*l, t.number)).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn nothing_is_due_below_every_trigger() {
        let levels = vec![vec![t(9, 10, "a", "z")], vec![t(1, 90, "a", "m")]];
        assert_eq!(
            policy().pick(&levels, &mut vec![Vec::new(); 4]),
            Choice::Nothing
        );
    }

    #[test]
    fn a_full_level_0_goes_down_whole_with_the_level_1_tables_it_touches() {
        let levels = vec![
            vec![t(9, 10, "c", "d"), t(8, 10, "f", "g")],
            vec![
                t(1, 10, "a", "b"),
                t(2, 10, "c", "e"),
                t(3, 10, "g", "h"),
                t(4, 10, "x", "y"),
            ],
        ];
        let c = policy().pick(&levels, &mut vec![Vec::new(); 4]);
        assert_eq!(numbers(&c), vec![(0, 9), (0, 8), (1, 2), (1, 3)]);
        assert!(matches!(
            c,
            Choice::Merge {
                output_level: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_level_0_of_disjoint_tables_touching_nothing_below_moves_down_whole() {
        // A load in key order: each flushed memtable above the last.
        let levels = vec![
            vec![t(9, 20, "g", "h"), t(8, 20, "e", "f")],
            vec![t(1, 10, "a", "b"), t(2, 10, "c", "d")],
        ];
        assert_eq!(
            policy().pick(&levels, &mut vec![Vec::new(); 4]),
            Choice::Move {
                tables: vec![9, 8],
                from: 0,
                to: 1
            }
        );
        // Level 0 tables that meet each other merge, even above level 1.
        let overlapping = vec![
            vec![t(9, 20, "f", "h"), t(8, 20, "e", "f")],
            vec![t(1, 10, "a", "b")],
        ];
        let c = policy().pick(&overlapping, &mut vec![Vec::new(); 4]);
        assert_eq!(numbers(&c), vec![(0, 9), (0, 8)]);
        // And small ones (under the policy's 12 bytes).
        let small = vec![
            vec![t(9, 10, "g", "h"), t(8, 11, "e", "f")],
            vec![t(1, 10, "a", "b")],
        ];
        let c = policy().pick(&small, &mut vec![Vec::new(); 4]);
        assert_eq!(numbers(&c), vec![(0, 9), (0, 8)]);
        // So do disjoint ones when one of them meets level 1.
        let touching = vec![
            vec![t(9, 20, "g", "h"), t(8, 20, "d", "f")],
            vec![t(1, 10, "a", "b"), t(2, 10, "c", "d")],
        ];
        let c = policy().pick(&touching, &mut vec![Vec::new(); 4]);
        assert_eq!(numbers(&c), vec![(0, 9), (0, 8), (1, 2)]);
    }

    #[test]
    fn an_oversized_level_sends_its_tables_down_in_turn_and_moves_a_lone_one() {
        let mut levels = vec![
            vec![],
            vec![t(1, 60, "a", "c"), t(2, 60, "d", "f")],
            vec![t(5, 10, "b", "b")],
        ];
        let mut cursors = vec![Vec::new(); 4];
        let first = policy().pick(&levels, &mut cursors);
        assert_eq!(numbers(&first), vec![(1, 1), (2, 5)]);
        assert_eq!(cursors[1], b"c".to_vec());
        let second = policy().pick(&levels, &mut cursors);
        assert_eq!(
            second,
            Choice::Move {
                tables: vec![2],
                from: 1,
                to: 2
            }
        );
        // The cursor wraps around.
        levels[1].pop();
        levels[1].push(t(3, 60, "d", "f"));
        let third = policy().pick(&levels, &mut cursors);
        assert_eq!(numbers(&third), vec![(1, 1), (2, 5)]);
    }

    #[test]
    fn the_most_urgent_level_goes_first_and_the_bottom_never_goes() {
        let levels = vec![
            vec![t(9, 1, "a", "a"), t(8, 1, "a", "a")], // score 1
            vec![t(1, 300, "a", "c")],                  // score 3
            vec![],
            vec![t(4, 1_000_000, "a", "z")], // the bottom
        ];
        let c = policy().pick(&levels, &mut vec![Vec::new(); 4]);
        assert_eq!(
            c,
            Choice::Move {
                tables: vec![1],
                from: 1,
                to: 2
            }
        );
        let bottom_only = vec![vec![], vec![], vec![], vec![t(4, 1_000_000, "a", "z")]];
        assert_eq!(
            policy().pick(&bottom_only, &mut vec![Vec::new(); 4]),
            Choice::Nothing
        );
    }

    #[test]
    fn a_full_compaction_takes_everything_into_the_bottom_level() {
        let levels = vec![vec![t(9, 1, "a", "a")], vec![], vec![t(2, 1, "b", "b")]];
        let c = policy().full(&levels);
        assert_eq!(numbers(&c), vec![(0, 9), (2, 2)]);
        assert!(matches!(
            c,
            Choice::Merge {
                output_level: 3,
                ..
            }
        ));
        assert_eq!(policy().full(&[]), Choice::Nothing);
    }
}
