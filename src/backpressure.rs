//! Write backpressure: commits slowed smoothly, and stopped only at a hard
//! limit, when flushing or compaction falls behind (issue 16, item 2;
//! decision 0020).
//!
//! The state it reads is the current view: the frozen memtables waiting
//! for the flusher, the active memtable's bytes, and the level-0 tables
//! waiting for the compactor. [`pressure`] is a pure function of it:
//! - **stop** when the active memtable is full and there is no room to
//!   freeze it (`max_frozen` frozen already): memory would grow past the
//!   budget; or when level 0 holds [`L0_STOP`] tables: every read would
//!   probe them all. A stopped commit waits for the flusher's (or the
//!   compactor's) next step, not for a time;
//! - **slow** in proportion as either limit nears: from 0 when the last
//!   frozen slot is taken (or level 0 reaches [`L0_SLOWDOWN`]) to
//!   [`MAX_DELAY`] per commit at the limit, so writers meet the background
//!   rate gradually instead of hitting a wall;
//! - otherwise nothing.
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

/// What a commit must do before it enters the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pressure {
    None,
    Slow(Duration),
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
}

/// See the module docs.
#[expect(clippy::cast_precision_loss, reason = "a ratio")]
pub(crate) fn pressure(load: Load) -> Pressure {
    let no_room = load.frozen >= load.max_frozen;
    if no_room && load.mem_bytes >= load.memtable_limit {
        return Pressure::StopForFlush;
    }
    if load.l0_tables >= L0_STOP {
        return Pressure::StopForCompaction;
    }
    // 0..1 towards each limit.
    let mem = if load.frozen + 1 >= load.max_frozen {
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

    fn load(frozen: usize, mem_bytes: u64, l0_tables: usize) -> Load {
        Load {
            frozen,
            max_frozen: 4,
            mem_bytes,
            memtable_limit: 100,
            l0_tables,
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
}
