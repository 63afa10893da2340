//! Small newtypes shared by every layer: [`Ts`] (a commit timestamp) and
//! [`Lsn`] (a WAL log sequence number). They never mix silently.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Number of low bits of a [`Ts`] that hold the hybrid logical clock's counter.
pub const TS_LOGICAL_BITS: u32 = 16;

/// A commit timestamp: a hybrid logical clock reading.
///
/// The high 48 bits are milliseconds since the Unix epoch and the low
/// [`TS_LOGICAL_BITS`] bits are a logical counter, so a `Ts` orders commits
/// and also names a time of day ([`Ts::from_unix_millis`], [`Ts::unix_millis`]).
/// Timestamps handed out by one database are strictly increasing, across
/// restarts and across backward steps of the wall clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(u64);

impl Ts {
    /// The smallest timestamp; the read timestamp of an empty database.
    pub const ZERO: Ts = Ts(0);
    /// The largest timestamp.
    pub const MAX: Ts = Ts(u64::MAX);

    /// The first timestamp of the given millisecond since the Unix epoch.
    #[must_use]
    pub const fn from_unix_millis(ms: u64) -> Ts {
        Ts(ms << TS_LOGICAL_BITS)
    }

    /// The first timestamp of the millisecond `time` falls in, for reading
    /// "as of" a time of day: every commit made before `time` (to the
    /// millisecond) has a smaller or equal timestamp. Times before the Unix
    /// epoch give [`Ts::ZERO`]; times beyond the clock's range (year 10889)
    /// give [`Ts::MAX`].
    #[must_use]
    pub fn from_time(time: SystemTime) -> Ts {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if ms > (u64::MAX >> TS_LOGICAL_BITS) {
            return Ts::MAX;
        }
        Ts::from_unix_millis(ms)
    }

    /// The wall-clock time (to the millisecond) this timestamp names.
    #[must_use]
    pub fn time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_millis())
    }

    /// The wall-clock millisecond (since the Unix epoch) this timestamp names.
    #[must_use]
    pub const fn unix_millis(self) -> u64 {
        self.0 >> TS_LOGICAL_BITS
    }

    /// The logical counter within [`Ts::unix_millis`].
    #[must_use]
    pub const fn logical(self) -> u64 {
        self.0 & ((1 << TS_LOGICAL_BITS) - 1)
    }

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next timestamp (saturating).
    #[must_use]
    pub const fn next(self) -> Ts {
        Ts(self.0.saturating_add(1))
    }
}

impl From<u64> for Ts {
    fn from(v: u64) -> Self {
        Ts(v)
    }
}

impl From<Ts> for u64 {
    fn from(ts: Ts) -> Self {
        ts.0
    }
}

impl fmt::Debug for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ts({}.{})", self.unix_millis(), self.logical())
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A log sequence number: the position of a commit record in the WAL.
///
/// Commit records are numbered 1, 2, 3, ... without gaps, in commit-timestamp
/// order, across segments and restarts. `Lsn(0)` means "nothing".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Lsn(pub u64);

impl Lsn {
    /// No record.
    pub const ZERO: Lsn = Lsn(0);

    /// The following sequence number.
    #[must_use]
    pub const fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Largest key accepted by [`crate::Txn::put`] and [`crate::Txn::delete`], in bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Largest value accepted by [`crate::Txn::put`], in bytes.
pub const MAX_VALUE_BYTES: usize = 32 * 1024 * 1024;
/// Largest encoded write set of one transaction (its WAL record payload), in bytes.
pub const MAX_TXN_BYTES: usize = 256 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_round_trips_wall_time_and_counter() {
        let ts = Ts::from(Ts::from_unix_millis(1_700_000_000_123).get() + 7);
        assert_eq!(ts.unix_millis(), 1_700_000_000_123);
        assert_eq!(ts.logical(), 7);
        assert_eq!(u64::from(Ts::from(42_u64)), 42);
        assert!(Ts::from_unix_millis(2) > Ts::from_unix_millis(1).next());
    }

    #[test]
    fn ts_converts_to_and_from_a_time_of_day() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_583_200_123) + Duration::from_micros(456);
        let ts = Ts::from_time(t);
        assert_eq!(ts, Ts::from_unix_millis(1_764_583_200_123));
        assert_eq!(
            ts.time(),
            UNIX_EPOCH + Duration::from_millis(1_764_583_200_123)
        );
        // Any timestamp within the millisecond names the same time.
        assert_eq!(Ts::from(ts.get() + 9).time(), ts.time());
        assert!(Ts::from_time(t + Duration::from_millis(1)) > Ts::from(ts.get() + 9));
        assert_eq!(Ts::from_time(UNIX_EPOCH - Duration::from_secs(1)), Ts::ZERO);
        assert_eq!(
            Ts::from_time(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
            Ts::MAX
        );
        assert!(Ts::MAX.time() > SystemTime::now());
    }
}
