//! Durable read-2-write-2 transactions and hot-key contention.

use std::time::Instant;

use anyhow::Result;
use rand::Rng;

use super::{Tally, run_timed};
use crate::engines::{Engine, Outcome, counter_value};
use crate::keys::{counter_key, key, random_pair, thread_rng};
use crate::model::Metric;

/// Number of hot counters in the contention workload.
pub const HOT_KEYS: u64 = 16;

/// Each transaction reads two different random loaded keys, writes two
/// other random keys (a value computed from both reads) and commits once
/// (synced: the engine is open durable). A conflict is counted and the
/// thread moves on. Latency runs from begin to the end of the commit.
pub fn read2_write2<E: Engine>(engine: &E, n: u64, threads: usize, secs: f64) -> Result<Metric> {
    let (tally, elapsed) = run_timed(threads, secs, |thread, deadline| {
        let mut rng = thread_rng(21, thread);
        let mut tally = Tally::new()?;
        let mut attempt: u64 = 0;
        loop {
            let t0 = Instant::now();
            if t0 >= deadline {
                return Ok(tally);
            }
            let (r1, r2) = random_pair(&mut rng, n);
            let (w1, w2) = random_pair(&mut rng, n);
            attempt += 1;
            let salt = ((thread as u64) << 40) | attempt;
            let (r1, r2, w1, w2) = (key(r1), key(r2), key(w1), key(w2));
            match engine.read2_write2([&r1, &r2], [&w1, &w2], salt)? {
                Outcome::Committed => tally.record(t0.elapsed()),
                Outcome::Conflict => tally.conflicts += 1,
            }
        }
    })?;
    Ok(tally.metric(elapsed, "txn/s"))
}

/// Sets every hot counter to zero (once, before the first contention phase).
pub fn reset_counters<E: Engine>(engine: &E) -> Result<()> {
    for i in 0..HOT_KEYS {
        engine.put(&counter_key(i), &0_u64.to_le_bytes())?;
    }
    Ok(())
}

/// The sum of the hot counters.
fn counter_sum<E: Engine>(engine: &E) -> Result<u64> {
    let mut sum = 0;
    for i in 0..HOT_KEYS {
        sum += counter_value(engine.get(&counter_key(i))?.as_deref())?;
    }
    Ok(sum)
}

/// `threads` clients increment random hot counters (out of [`HOT_KEYS`])
/// through the engine's own retry, synced. Afterwards the counters must
/// have grown by exactly the number of increments acknowledged: `lost` is
/// the difference (any non-zero value is a failure).
pub fn contention<E: Engine>(engine: &E, threads: usize, secs: f64) -> Result<Metric> {
    let before = counter_sum(engine)?;
    let (tally, elapsed) = run_timed(threads, secs, |thread, deadline| {
        let mut rng = thread_rng(22, thread);
        let mut tally = Tally::new()?;
        loop {
            let t0 = Instant::now();
            if t0 >= deadline {
                return Ok(tally);
            }
            let k = counter_key(rng.random_range(0..HOT_KEYS));
            tally.conflicts += engine.increment(&k)?;
            tally.record(t0.elapsed());
        }
    })?;
    let after = counter_sum(engine)?;
    let mut metric = tally.metric(elapsed, "incr/s");
    metric.lost = Some((before + tally.ops).abs_diff(after));
    Ok(metric)
}
