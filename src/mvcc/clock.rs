//! Hybrid logical clock: commit timestamps that follow the wall clock but
//! never repeat or go back.
//!
//! Invariant: every `tick` returns a value greater than every earlier `tick`
//! and every `observe`d timestamp, whatever the wall clock does. A tick is
//! `max(last + 1, wall_ms << TS_LOGICAL_BITS)`: within a millisecond the low
//! bits count; if the wall clock steps back, the counter keeps rising until
//! the wall clock catches up.

use crate::types::{TS_LOGICAL_BITS, Ts};

/// Source of wall-clock milliseconds since the Unix epoch.
pub(crate) type WallClock = fn() -> u64;

/// The system clock in milliseconds (0 if it reads before 1970).
pub(crate) fn system_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The hybrid logical clock. Not synchronized: the commit-order lock owns it.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    last: u64,
    wall: WallClock,
}

impl Clock {
    pub(crate) fn new(wall: WallClock) -> Self {
        Self { last: 0, wall }
    }

    /// Makes every later tick exceed `ts` (recovered or received timestamps).
    pub(crate) fn observe(&mut self, ts: Ts) {
        self.last = self.last.max(ts.get());
    }

    /// The highest timestamp issued or observed.
    pub(crate) fn last(&self) -> Ts {
        Ts::from(self.last)
    }

    /// The wall clock's milliseconds now.
    pub(crate) fn wall_millis(&self) -> u64 {
        (self.wall)()
    }

    /// The next timestamp.
    pub(crate) fn tick(&mut self) -> Ts {
        let physical = (self.wall)().min(u64::MAX >> TS_LOGICAL_BITS) << TS_LOGICAL_BITS;
        self.last = self.last.saturating_add(1).max(physical);
        Ts::from(self.last)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static FAKE_MS: AtomicU64 = AtomicU64::new(1_000);
    fn fake() -> u64 {
        FAKE_MS.load(Ordering::SeqCst)
    }

    #[test]
    #[expect(clippy::many_single_char_names, reason = "a sequence of ticks")]
    fn ticks_rise_through_backward_steps_and_follow_the_wall_clock() {
        let mut c = Clock::new(fake);
        let a = c.tick();
        assert_eq!(a.unix_millis(), 1_000);
        let b = c.tick();
        assert!(b > a);
        assert_eq!(b.unix_millis(), 1_000);
        assert_eq!(b.logical(), 1);
        FAKE_MS.store(500, Ordering::SeqCst); // the clock steps back
        let d = c.tick();
        assert!(d > b);
        FAKE_MS.store(2_000, Ordering::SeqCst);
        let e = c.tick();
        assert_eq!(e, Ts::from_unix_millis(2_000));
        c.observe(Ts::from_unix_millis(9_000));
        assert!(c.tick() > Ts::from_unix_millis(9_000));
    }

    #[test]
    fn system_clock_ticks_name_the_time_of_day() {
        let mut c = Clock::new(system_millis);
        let before = system_millis();
        let ts = c.tick();
        assert!(ts.unix_millis() >= before && ts.unix_millis() <= system_millis());
    }
}
