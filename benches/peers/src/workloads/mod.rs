//! The workloads, the same for every engine, and the timed-phase runner they share.
//!
//! - `basic`: bulk load, reopen, point reads, scans;
//! - `txn`: durable read-2-write-2 and hot-key contention;
//! - `ycsb`: YCSB A, B, C, E and F with zipfian keys.

pub mod basic;
pub mod txn;
pub mod ycsb;

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use hdrhistogram::Histogram;

use crate::as_f64;
use crate::model::Metric;

/// What one thread of a timed phase counted.
pub struct Tally {
    /// Operations that succeeded.
    pub ops: u64,
    /// Transactions that lost a conflict, or retries taken.
    pub conflicts: u64,
    /// Latency of each successful operation, in nanoseconds.
    latency: Histogram<u64>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Result<Self> {
        let latency = Histogram::new_with_bounds(1, 600_000_000_000, 3)
            .map_err(|e| anyhow!("histogram: {e}"))?;
        Ok(Tally {
            ops: 0,
            conflicts: 0,
            latency,
        })
    }

    /// Counts one successful operation that took `elapsed`.
    pub fn record(&mut self, elapsed: Duration) {
        self.ops += 1;
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(nanos);
    }

    /// Adds another thread's tally.
    fn merge(&mut self, other: &Tally) -> Result<()> {
        self.ops += other.ops;
        self.conflicts += other.conflicts;
        self.latency
            .add(&other.latency)
            .map_err(|e| anyhow!("histogram: {e}"))
    }

    /// The phase's figure: operations per second over `elapsed`, with latencies.
    pub fn metric(&self, elapsed: Duration, unit: &str) -> Metric {
        let mut metric = Metric::rate(as_f64(self.ops) / elapsed.as_secs_f64(), unit);
        if self.ops > 0 {
            metric.p50_us = Some(as_f64(self.latency.value_at_quantile(0.50)) / 1000.0);
            metric.p99_us = Some(as_f64(self.latency.value_at_quantile(0.99)) / 1000.0);
        }
        metric.conflicts = Some(self.conflicts);
        metric
    }
}

/// Runs `body(thread, deadline)` on `threads` threads until `deadline`
/// (`secs` from now) and returns the merged tally and the time taken (from
/// the start to the last thread's end).
pub fn run_timed<F>(threads: usize, secs: f64, body: F) -> Result<(Tally, Duration)>
where
    F: Fn(usize, Instant) -> Result<Tally> + Sync,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let results: Vec<Result<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let body = &body;
                scope.spawn(move || body(thread, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut total = Tally::new()?;
    for result in results {
        total.merge(&result?)?;
    }
    Ok((total, elapsed))
}
