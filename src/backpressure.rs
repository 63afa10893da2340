//! Write backpressure: commits slowed smoothly, and stopped only at a hard
//! limit, when flushing or compaction falls behind (issue 16, item 2;
//! decision 0020).
//!
//! The state it reads is the current view (the frozen memtables waiting
//! for the flusher, the active memtable's bytes, the level-0 tables
//! waiting for the compactor) and what the memory budget counts (the
//! view's memtables, transaction buffers, table metadata; decision 0024).
//! [`pressure`] is a pure function of it:
//! - **stop** when the counted memory has reached the budget (less its
//!   reserve for background work: `Options::commit_budget`) and a frozen
//!   memtable waits (its flush frees memory); or the active memtable is
//!   full and there is no room to freeze it (`max_frozen` frozen
//!   already); or level 0 holds [`L0_STOP`] tables: every read would
//!   probe them all. A stopped commit waits for the flusher's (or the
//!   compactor's) next step, not for a time;
//! - **freeze** the active memtable, then stop as above, when the budget
//!   is reached with nothing frozen but the active memtable holds at least
//!   [`FREEZE_FLOOR_DIVISOR`]th of its limit (transaction buffers and
//!   table metadata took its room); below that a flush would free too
//!   little to matter, and the commit goes on;
//! - **slow** in proportion as a limit nears: from 0 when the counted
//!   memory is one memtable limit below the budget, or the last frozen
//!   slot is taken (or level 0 reaches [`L0_SLOWDOWN`]), to [`MAX_DELAY`]
//!   per commit at the limit, so writers meet the background rate
//!   gradually instead of hitting a wall;
//! - otherwise nothing.
//!
//! A commit is looked at with its own write set (and WAL record) already
//! in the transaction account, and applying it moves those bytes into the
//! memtable (never more: `txn::TXN_ENTRY_OVERHEAD_BYTES`), so a commit let
//! through below the budget leaves the counted memory below it.
//!
//! What it costs writers is counted ([`Stalls`]): commits slowed, commits
//! stopped, total and longest wait. A read-only transaction never waits.

use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicU64, Ordering};

/// Level-0 tables at which commits start to slow down.
pub(crate) const L0_SLOWDOWN: usize = 8;
/// Level-0 tables at which commits stop until the compactor catches up.
pub(crate) const L0_STOP: usize = 20;
/// The delay of one commit at the edge of a limit.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(1);
/// Over the budget with nothing frozen, the active memtable is frozen
/// early only if it holds at least this fraction (1/4) of its limit.
pub(crate) const FREEZE_FLOOR_DIVISOR: u64 = 4;

/// What a commit must do before it enters the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pressure {
    None,
    Slow(Duration),
    /// Freeze the active memtable (then wait for its flush).
    Freeze,
    /// Wait for a flush to finish.
    StopForFlush,
    /// Wait for a compaction to finish.
    StopForCompaction,
}

/// The part of a view backpressure looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) frozen: usize,
    pub(crate) max_frozen: usize,
    pub(crate) mem_bytes: u64,
    pub(crate) memtable_limit: u64,
    pub(crate) l0_tables: usize,
    /// What the memory budget counts now, and where commits stop (the
    /// budget less its background reserve: `Options::commit_budget`).
    pub(crate) memory: u64,
    pub(crate) budget: u64,
}

/// See the module docs.
#[expect(clippy::cast_precision_loss, reason = "a ratio")]
pub(crate) fn pressure(load: Load) -> Pressure {
    let no_room = load.frozen >= load.max_frozen;
    if load.memory >= load.budget {
        if load.frozen > 0 {
            return Pressure::StopForFlush;
        }
        if load.mem_bytes >= (load.memtable_limit / FREEZE_FLOOR_DIVISOR).max(1) {
            return Pressure::Freeze;
        }
    }
    if no_room && load.mem_bytes >= load.memtable_limit {
        return Pressure::StopForFlush;
    }
    if load.l0_tables >= L0_STOP {
        return Pressure::StopForCompaction;
    }
    // 0..1 towards each limit.
    let slots = if load.frozen + 1 >= load.max_frozen {
        let fill = load.mem_bytes as f64 / load.memtable_limit.max(1) as f64;
        // The last free slot taken: half way; no slot left: the fill.
        if no_room {
            0.5 + fill / 2.0
        } else {
            fill / 2.0
        }
    } else {
        0.0
    };
    // The last memtable limit below the budget.
    let budget = load.memory.saturating_add(load.memtable_limit) as f64 - load.budget as f64;
    let mem = slots.max(budget / load.memtable_limit.max(1) as f64);
    let l0 = if load.l0_tables >= L0_SLOWDOWN {
        (load.l0_tables - L0_SLOWDOWN + 1) as f64 / (L0_STOP - L0_SLOWDOWN) as f64
    } else {
        0.0
    };
    let severity = mem.max(l0).min(1.0);
    if severity <= 0.0 {
        Pressure::None
    } else {
        Pressure::Slow(MAX_DELAY.mul_f64(severity))
    }
}

/// What backpressure cost writers since open.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    pub(crate) slowed: AtomicU64,
    pub(crate) stopped: AtomicU64,
    pub(crate) total_nanos: AtomicU64,
    pub(crate) longest_nanos: AtomicU64,
    /// Commits waiting right now.
    pub(crate) waiting: AtomicU64,
}

impl Stalls {
    /// Counts a wait that began at `start` (on the `Drop` of the guard
    /// [`Stalls::begin`] returns).
    pub(crate) fn begin(&self, stop: bool) -> StallGuard<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let counter = if stop { &self.stopped } else { &self.slowed };
        counter.fetch_add(1, Ordering::Relaxed);
        StallGuard {
            stalls: self,
            start: Instant::now(),
        }
    }
}

/// See [`Stalls::begin`].
pub(crate) struct StallGuard<'a> {
    stalls: &'a Stalls,
    start: Instant,
}

impl Drop for StallGuard<'_> {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let s = self.stalls;
        s.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        s.longest_nanos.fetch_max(nanos, Ordering::Relaxed);
        s.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Frozen memtables of 100 bytes each, under a budget that is far.
    fn load(frozen: usize, mem_bytes: u64, l0_tables: usize) -> Load {
        Load {
            frozen,
            max_frozen: 4,
            mem_bytes,
            memtable_limit: 100,
            l0_tables,
            memory: frozen as u64 * 100 + mem_bytes,
            budget: 10_000,
        }
    }

    /// `memory` counted against a budget of 400 (memtable limit 100).
    fn budgeted(frozen: usize, mem_bytes: u64, memory: u64) -> Load {
        Load {
            memory,
            budget: 400,
            ..load(frozen, mem_bytes, 0)
        }
    }

    fn delay(p: Pressure) -> Duration {
        match p {
            Pressure::Slow(d) => d,
            Pressure::None => Duration::ZERO,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_while_the_background_keeps_up() {
        assert_eq!(pressure(load(0, 99, 0)), Pressure::None);
        assert_eq!(pressure(load(2, 1_000, 7)), Pressure::None);
    }

    #[test]
    fn the_delay_grows_smoothly_towards_each_limit() {
        // Memtables: the last slot taken, then none left.
        let steps = [
            load(3, 0, 0),
            load(3, 50, 0),
            load(3, 99, 0),
            load(4, 0, 0),
            load(4, 50, 0),
            load(4, 99, 0),
        ];
        let delays: Vec<Duration> = steps.iter().map(|&l| delay(pressure(l))).collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert!(delays[5] <= MAX_DELAY && delays[5] > MAX_DELAY / 2);
        // Level 0.
        let delays: Vec<Duration> = (L0_SLOWDOWN..L0_STOP)
            .map(|n| delay(pressure(load(0, 0, n))))
            .collect();
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert!(delays[0] > Duration::ZERO && delays.iter().all(|&d| d <= MAX_DELAY));
    }

    #[test]
    fn commits_stop_only_at_a_hard_limit() {
        assert_eq!(pressure(load(4, 100, 0)), Pressure::StopForFlush);
        assert_eq!(pressure(load(5, 100, 0)), Pressure::StopForFlush);
        assert_eq!(pressure(load(0, 0, L0_STOP)), Pressure::StopForCompaction);
        assert!(matches!(
            pressure(load(4, 99, L0_STOP - 1)),
            Pressure::Slow(_)
        ));
    }

    #[test]
    fn at_the_budget_commits_stop_until_a_flush_frees_memory() {
        // Transaction buffers and table metadata took the room: at the
        // budget with one frozen memtable, wait for its flush.
        assert_eq!(pressure(budgeted(1, 10, 400)), Pressure::StopForFlush);
        assert_eq!(pressure(budgeted(2, 0, 450)), Pressure::StopForFlush);
        // Nothing frozen: freeze the active memtable if that frees enough.
        assert_eq!(pressure(budgeted(0, 25, 400)), Pressure::Freeze);
        assert_eq!(pressure(budgeted(0, 90, 1_000)), Pressure::Freeze);
        // Too little to free: go on (slowed at most), never wait forever
        // for a flush that would not help.
        assert!(matches!(pressure(budgeted(0, 24, 400)), Pressure::Slow(_)));
        assert!(matches!(pressure(budgeted(0, 0, 5_000)), Pressure::Slow(_)));
        // Below the budget, no stop.
        assert!(matches!(pressure(budgeted(2, 50, 399)), Pressure::Slow(_)));
    }

    #[test]
    fn the_delay_grows_as_the_counted_memory_nears_the_budget() {
        let delays: Vec<Duration> = [299, 300, 350, 399]
            .iter()
            .map(|&m| delay(pressure(budgeted(0, 10, m))))
            .collect();
        assert_eq!(delays[0], Duration::ZERO, "{delays:?}");
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert!(delays[3] <= MAX_DELAY && delays[3] > MAX_DELAY * 9 / 10);
    }
}
