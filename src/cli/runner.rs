//! Measuring machinery shared by the `bench` phases: a per-thread [`Tally`]
//! of operations and latencies, and [`run_timed`], which runs a loop on N
//! threads for a fixed time behind a progress bar.
//!
//! Invariants:
//! 1. Every latency is recorded in nanoseconds in a [`Tally`] owned by one
//!    thread; tallies are merged only after the threads are joined, so the
//!    measured loops share nothing but the workload's data and one relaxed
//!    progress counter.
//! 2. A worker stops at the first iteration that starts after the deadline
//!    ([`Control::expired`]), and a phase's elapsed time runs to the last
//!    thread's stop, so ops/s never counts work outside the measured window.
//!
//! Concurrency: worker threads come from `std::thread::scope` (the library's
//! `std::thread::spawn` ban is for loom; scoped threads cannot outlive the
//! phase). The calling thread only sleeps and redraws the progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::CliResult;

/// Highest latency a histogram records without saturating (60 s, in ns).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// How often the progress bar is redrawn during a timed phase.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

/// What one thread (or, merged, one phase) measured.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Completed operations (commits, keys, reads, scans, syncs).
    pub(crate) ops: u64,
    /// Commits refused with a retryable conflict (not counted in `ops`).
    pub(crate) conflicts: u64,
    /// Latency per operation, in nanoseconds.
    pub(crate) latency: Histogram<u64>,
}

impl Tally {
    /// An empty tally.
    pub(crate) fn new() -> CliResult<Self> {
        Ok(Tally {
            ops: 0,
            conflicts: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)?,
        })
    }

    /// Records `count` operations that took `per_op` each.
    pub(crate) fn record(&mut self, per_op: Duration, count: u64) {
        let ns = u64::try_from(per_op.as_nanos()).unwrap_or(u64::MAX);
        self.latency.saturating_record_n(ns.max(1), count);
        self.ops += count;
    }

    /// Adds another tally into this one.
    fn merge(&mut self, other: &Tally) -> CliResult<()> {
        self.ops += other.ops;
        self.conflicts += other.conflicts;
        self.latency.add(&other.latency)?;
        Ok(())
    }
}

/// A phase's merged tally and how long it ran.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// All threads' operations and latencies.
    pub(crate) tally: Tally,
    /// From the start of the phase to the last thread's stop.
    pub(crate) elapsed: Duration,
}

impl Measured {
    /// Operations per second.
    pub(crate) fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            as_f64(self.tally.ops) / secs
        } else {
            0.0
        }
    }
}

/// `x` as a float, for rates and ratios (exact below 2^53).
#[expect(clippy::cast_precision_loss, reason = "rates and ratios for display")]
pub(crate) fn as_f64(x: u64) -> f64 {
    x as f64
}

/// A progress bar on stderr (drawn only when stderr is a terminal); `tail`
/// is the indicatif template after the bar, e.g. `{pos}/{len} keys`.
pub(crate) fn progress_bar(label: &str, len: u64, tail: &str) -> ProgressBar {
    let template = format!("{{prefix:<26}} [{{bar:20}}] {tail}");
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// Per-phase state the workers read: when to stop, and a progress counter.
#[derive(Debug)]
pub(crate) struct Control {
    deadline: Instant,
    progress: AtomicU64,
}

impl Control {
    /// Whether a loop iteration starting at `now` is past the measured window.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// Reports `ops` more completed operations to the progress bar.
    pub(crate) fn advance(&self, ops: u64) {
        self.progress.fetch_add(ops, Ordering::Relaxed);
    }
}

/// Runs `worker(thread_index, control)` on `threads` scoped threads for
/// `duration`, with a progress bar, and merges what they measured.
pub(crate) fn run_timed<W>(
    label: &str,
    threads: usize,
    duration: Duration,
    worker: W,
) -> CliResult<Measured>
where
    W: Fn(usize, &Control) -> CliResult<Tally> + Sync,
{
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let bar = progress_bar(label, millis(duration), "{elapsed:>3} {msg}");
    let start = Instant::now();
    let control = Control {
        deadline: start + duration,
        progress: AtomicU64::new(0),
    };
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (worker, control) = (&worker, &control);
                s.spawn(move || (worker(t, control), Instant::now()))
            })
            .collect();
        while !handles
            .iter()
            .all(std::thread::ScopedJoinHandle::is_finished)
        {
            std::thread::sleep(PROGRESS_TICK);
            let elapsed = start.elapsed();
            bar.set_position(millis(elapsed.min(duration)));
            let ops = control.progress.load(Ordering::Relaxed);
            let rate = as_f64(ops) / elapsed.as_secs_f64().max(1e-3);
            bar.set_message(format!("{ops} ops, {rate:.0}/s"));
        }
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| WorkerPanicked.into()))
            .collect::<Vec<CliResult<_>>>()
    });
    bar.finish_and_clear();
    let mut total = Tally::new()?;
    let mut last_stop = start;
    for result in results {
        let (tally, stopped) = result?;
        total.merge(&tally?)?;
        last_stop = last_stop.max(stopped);
    }
    Ok(Measured {
        tally: total,
        elapsed: last_stop - start,
    })
}

/// A worker thread panicked (its message was already printed by the panic hook).
#[derive(Debug)]
struct WorkerPanicked;

impl std::fmt::Display for WorkerPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a benchmark thread panicked")
    }
}

impl std::error::Error for WorkerPanicked {}
