//! The `strata bench` report: one [`Row`] per phase, rendered as a summary
//! table, then the "limits" section that divides each durable figure by what
//! the disk and the CPU allow.
//!
//! The limits (targets from the issue that asked for this benchmark):
//! 1. durable 1-thread commits/s / fdatasync/s `>= 0.8`: a lone committer
//!    should cost little more than its one sync;
//! 2. durable N-thread commits/s / min(8 x fdatasync/s, 0.9 x buffered
//!    N-thread commits/s) `>= 1.0`, N the largest thread count: group commit
//!    should share each sync among many committers until the CPU, not the
//!    disk, is the bound;
//! 3. point reads/s through a `ReadTxn` / bare skiplist lookups/s `>= 0.8`.
//!
//! A missed target prints MISS; it is never an error (a benchmark, not a test).

use std::fmt::Write as _;

use super::runner::{Measured, as_f64};

/// Which phase a row measured; the limits look rows up by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 4 KiB append + fdatasync from one thread.
    Fsync,
    /// Bulk load in large transactions.
    Load,
    /// Read-modify-write with `Durability::Sync`.
    Durable,
    /// Read-modify-write with `Durability::Buffered`.
    Buffered,
    /// Point reads through a `ReadTxn`, one version per key (the target).
    PointReads,
    /// Point reads through a `ReadTxn` after the read-modify-write phases
    /// (several versions per key; informational).
    PointReadsChurned,
    /// Point reads from a bare `SkipMap`.
    SkiplistReads,
    /// Short scans through a `ReadTxn`.
    Scans,
}

/// One phase's figures.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The phase.
    pub(crate) kind: Kind,
    /// Its name in the table.
    pub(crate) name: String,
    /// Threads that ran it.
    pub(crate) threads: usize,
    /// What one operation is, per second (`commits/s`, `keys/s`, ..).
    pub(crate) unit: &'static str,
    /// Operations, latencies and elapsed time.
    pub(crate) measured: Measured,
    /// Retryable conflicts, for transactional phases.
    pub(crate) conflicts: Option<u64>,
    /// Commits per WAL fdatasync (from `Db::stats` deltas), if any sync ran.
    pub(crate) commits_per_sync: Option<f64>,
    /// Fraction of the phase spent in WAL fdatasync, if any sync ran.
    pub(crate) sync_busy: Option<f64>,
}

impl Row {
    /// Operations per second.
    pub(crate) fn rate(&self) -> f64 {
        self.measured.ops_per_sec()
    }

    /// The row as one line for the progress log on stderr.
    pub(crate) fn log_line(&self) -> String {
        let h = &self.measured.tally.latency;
        let mut line = format!(
            "{}, {} thread(s): {:.0} {} (p50 {} us, p99 {} us)",
            self.name,
            self.threads,
            self.rate(),
            self.unit,
            micros(h.value_at_quantile(0.5)),
            micros(h.value_at_quantile(0.99)),
        );
        if let Some(c) = self.conflicts {
            let _ = write!(line, ", {c} conflicts");
        }
        if let Some(c) = self.commits_per_sync {
            let _ = write!(line, ", {c:.1} commits/fdatasync");
        }
        if let Some(b) = self.sync_busy {
            let _ = write!(line, ", in fdatasync {:.0}% of the time", b * 100.0);
        }
        line
    }
}

/// Everything the run measured, plus the settings to print with it.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// `name: value` lines printed above the table.
    pub(crate) settings: Vec<(String, String)>,
    /// One row per phase, in run order.
    pub(crate) rows: Vec<Row>,
    /// Lines printed under the table (the state a phase ran on, ..).
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// Adds a row and logs it to stderr.
    pub(crate) fn push(&mut self, row: Row) {
        eprintln!("  {}", row.log_line());
        self.rows.push(row);
    }

    /// The first row of `kind` run with `threads` threads.
    fn find(&self, kind: Kind, threads: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.kind == kind && r.threads == threads)
    }

    /// The row of `kind` with the most threads.
    fn most_threads(&self, kind: Kind) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| r.kind == kind)
            .max_by_key(|r| r.threads)
    }

    /// The settings, the summary table and the limits, as printed to stdout.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("strata bench\n");
        for (name, value) in &self.settings {
            let _ = writeln!(out, "  {:<14} {value}", format!("{name}:"));
        }
        out.push('\n');
        self.render_table(&mut out);
        out.push('\n');
        self.render_limits(&mut out);
        out
    }

    fn render_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{:<30} {:>7} {:>12} {:<10} {:>10} {:>10} {:>9} {:>13} {:>9}",
            "phase",
            "threads",
            "ops/s",
            "unit",
            "p50 us",
            "p99 us",
            "conflicts",
            "commits/fsync",
            "in fsync"
        );
        let _ = writeln!(
            out,
            "{}",
            "-".repeat(30 + 7 + 12 + 10 + 10 + 10 + 9 + 13 + 9 + 8)
        );
        for row in &self.rows {
            let h = &row.measured.tally.latency;
            let _ = writeln!(
                out,
                "{:<30} {:>7} {:>12.0} {:<10} {:>10} {:>10} {:>9} {:>13} {:>9}",
                row.name,
                row.threads,
                row.rate(),
                row.unit,
                micros(h.value_at_quantile(0.5)),
                micros(h.value_at_quantile(0.99)),
                row.conflicts
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                row.commits_per_sync
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}")),
                row.sync_busy
                    .map_or_else(|| "-".to_owned(), |b| format!("{:.0}%", b * 100.0)),
            );
        }
        out.push_str(
            "latency: fdatasync per call; load per transaction; read-modify-write from begin\n\
             to commit of committed transactions; point reads per read, averaged over a batch\n\
             of 100 (one ReadTxn per batch); scans per 100-entry scan including its ReadTxn\n",
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }

    fn render_limits(&self, out: &mut String) {
        out.push_str("limits (each durable figure as a fraction of its limit)\n");
        let fsync = self.find(Kind::Fsync, 1).map(Row::rate);

        let one = self.find(Kind::Durable, 1).map(Row::rate);
        let line = match (one, fsync) {
            (Some(c), Some(f)) => limit(c / f, 0.8, &format!("{c:.0} commits/s / {f:.0} fsyncs/s")),
            _ => "n/a (needs 1 in --threads)".to_owned(),
        };
        let _ = writeln!(out, "  durable 1-thread / fdatasync rate:\n    {line}");

        let many = self.most_threads(Kind::Durable);
        let buffered = many.and_then(|m| self.find(Kind::Buffered, m.threads));
        let (name, line) = match (many, buffered, fsync) {
            (Some(m), Some(b), Some(f)) => {
                let (disk, cpu) = (8.0 * f, 0.9 * b.rate());
                let detail = format!(
                    "{:.0} commits/s / min(8 x {f:.0} = {disk:.0}, 0.9 x {:.0} = {cpu:.0})",
                    m.rate(),
                    b.rate()
                );
                let line = limit(m.rate() / disk.min(cpu), 1.0, &detail);
                (format!("durable {}-thread", m.threads), line)
            }
            _ => ("durable N-thread".to_owned(), "n/a".to_owned()),
        };
        let _ = writeln!(
            out,
            "  {name} / min(8 x fdatasync rate, 0.9 x buffered same threads):\n    {line}"
        );

        let reads = self.find(Kind::PointReads, 1).map(Row::rate);
        let bare = self.find(Kind::SkiplistReads, 1).map(Row::rate);
        let line = match (reads, bare) {
            (Some(r), Some(s)) => limit(r / s, 0.8, &format!("{r:.0} reads/s / {s:.0} lookups/s")),
            _ => "n/a".to_owned(),
        };
        let _ = writeln!(out, "  point reads / bare SkipMap lookups:\n    {line}");
    }
}

/// `ratio` against its target, with the figures it came from.
fn limit(ratio: f64, target: f64, detail: &str) -> String {
    let verdict = if ratio >= target { "PASS" } else { "MISS" };
    format!("{ratio:.2}  (target >= {target:.1})  {verdict}   [{detail}]")
}

/// Nanoseconds as microseconds, with more decimals for small values.
pub(crate) fn micros(ns: u64) -> String {
    let us = as_f64(ns) / 1000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}
