//! Bulk load, point reads and scans.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::Rng;

use super::{Tally, run_timed};
use crate::as_f64;
use crate::engines::Engine;
use crate::keys::{self, key, thread_rng};
use crate::model::Metric;

/// Keys per load transaction.
pub const LOAD_BATCH: u64 = 1000;
/// Entries per scan.
pub const SCAN_ITEMS: usize = 100;

/// Loads keys `0..n` in key order, [`LOAD_BATCH`] per transaction, none
/// synced, then syncs once. Only the engine's calls are timed (not the
/// generation of the values). Returns keys/s.
pub fn load<E: Engine>(engine: &E, n: u64) -> Result<Metric> {
    let mut timed = Duration::ZERO;
    let mut batch = Vec::with_capacity(LOAD_BATCH as usize);
    let mut first = 0;
    while first < n {
        let last = (first + LOAD_BATCH).min(n);
        batch.clear();
        batch.extend((first..last).map(|i| (key(i), keys::value(i))));
        let t0 = Instant::now();
        engine.load(&batch)?;
        timed += t0.elapsed();
        first = last;
    }
    let t0 = Instant::now();
    engine.sync()?;
    timed += t0.elapsed();
    Ok(Metric::rate(as_f64(n) / timed.as_secs_f64(), "keys/s"))
}

/// Random point reads of loaded keys (uniform), each in its own read
/// transaction; a missing key is an error.
pub fn reads<E: Engine>(engine: &E, n: u64, threads: usize, secs: f64) -> Result<Metric> {
    let (tally, elapsed) = run_timed(threads, secs, |thread, deadline| {
        let mut rng = thread_rng(11, thread);
        let mut tally = Tally::new()?;
        loop {
            let t0 = Instant::now();
            if t0 >= deadline {
                return Ok(tally);
            }
            let k = key(rng.random_range(0..n));
            if engine.get(&k)?.is_none() {
                bail!("loaded key {} not found", String::from_utf8_lossy(&k));
            }
            tally.record(t0.elapsed());
        }
    })?;
    Ok(tally.metric(elapsed, "ops/s"))
}

/// Scans of [`SCAN_ITEMS`] entries from a uniformly random loaded key, one
/// read transaction each, on one thread.
pub fn scans<E: Engine>(engine: &E, n: u64, secs: f64) -> Result<Metric> {
    let starts = n.saturating_sub(SCAN_ITEMS as u64).max(1);
    let (tally, elapsed) = run_timed(1, secs, |thread, deadline| {
        let mut rng = thread_rng(12, thread);
        let mut tally = Tally::new()?;
        loop {
            let t0 = Instant::now();
            if t0 >= deadline {
                return Ok(tally);
            }
            let got = engine.scan(&key(rng.random_range(0..starts)), SCAN_ITEMS)?;
            if got < SCAN_ITEMS.min(n as usize) {
                bail!("a scan returned {got} entries, not {SCAN_ITEMS}");
            }
            tally.record(t0.elapsed());
        }
    })?;
    Ok(tally.metric(elapsed, "scans/s"))
}
