//! One engine's run, in its own process: load, reopen, reads, scans and
//! YCSB on a non-durable open; read-2-write-2 and contention on a durable
//! one; then sizes, peak RSS and peak anonymous memory (`RssAnon`, sampled
//! through the whole run). The report goes to stdout as JSON.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::as_f64;
use crate::engines::{Engine, OpenConfig};
use crate::keys::ENTRY_BYTES;
use crate::limits;
use crate::model::{ChildReport, Metric, Settings};
use crate::sysinfo::{AnonSampler, disk_bytes, peak_rss_bytes};
use crate::workloads::{basic, txn, ycsb};

/// Records `result` under `id` (or its error), and logs it to stderr.
fn record(report: &mut ChildReport, id: &str, result: Result<Metric>) {
    match result {
        Ok(metric) => {
            eprintln!(
                "  {:<10} {id:<16} {:>14.1} {}",
                report.engine, metric.value, metric.unit
            );
            report.metrics.insert(id.to_owned(), metric);
        }
        Err(e) => {
            eprintln!("  {:<10} {id:<16} FAILED: {e:#}", report.engine);
            report.errors.push(format!("{id}: {e:#}"));
        }
    }
}

/// Runs every selected workload on engine `E` in `dir` (fresh and empty).
pub fn run<E: Engine>(name: &str, dir: &Path, settings: &Settings) -> Result<ChildReport> {
    let mut report = ChildReport {
        engine: name.to_owned(),
        ..ChildReport::default()
    };
    // Before the engine opens: what the harness itself holds.
    let anon = AnonSampler::start()?;
    record(
        &mut report,
        "anon-at-start",
        Ok(Metric::cost(as_f64(anon.peak()), "bytes")),
    );
    let logical = settings.n * ENTRY_BYTES;
    let config = |durable| OpenConfig {
        cache_bytes: settings.cache_bytes,
        durable,
        logical_bytes: logical * 2,
    };
    let engine = E::open(dir, &config(false))?;
    let load = basic::load(&engine, settings.n);
    record(&mut report, "load", load);
    engine.close()?;
    record(
        &mut report,
        "peak-anon/load",
        Ok(Metric::cost(as_f64(anon.peak()), "bytes")),
    );
    let size = as_f64(disk_bytes(dir)?);
    record(
        &mut report,
        "disk/after-load",
        Ok(Metric::cost(size, "bytes")),
    );
    record(
        &mut report,
        "space-amp",
        Ok(Metric::cost(size / as_f64(logical), "x")),
    );

    let t0 = Instant::now();
    let engine = E::open(dir, &config(false))?;
    let reopen = t0.elapsed().as_secs_f64() * 1000.0;
    record(&mut report, "reopen", Ok(Metric::cost(reopen, "ms")));
    reads_and_ycsb(&engine, settings, &mut report);
    engine.close()?;
    record(
        &mut report,
        "peak-anon/reads",
        Ok(Metric::cost(as_f64(anon.peak()), "bytes")),
    );

    let engine = E::open(dir, &config(true))?;
    durable_phases(&engine, dir, settings, &mut report);
    engine.close()?;
    let size = as_f64(disk_bytes(dir)?);
    record(&mut report, "disk/final", Ok(Metric::cost(size, "bytes")));
    record(
        &mut report,
        "peak-rss",
        peak_rss_bytes().map(|b| Metric::cost(as_f64(b), "bytes")),
    );
    record(
        &mut report,
        "peak-anon",
        Ok(Metric::cost(as_f64(anon.peak()), "bytes")),
    );
    Ok(report)
}

/// Point reads, scans and YCSB, on the non-durable open.
fn reads_and_ycsb<E: Engine>(engine: &E, s: &Settings, report: &mut ChildReport) {
    if s.wants("read") {
        for threads in [1, 2] {
            record(
                report,
                &format!("read/{threads}t"),
                basic::reads(engine, s.n, threads, s.secs),
            );
        }
    }
    if s.wants("scan") {
        record(report, "scan", basic::scans(engine, s.n, s.secs));
    }
    for &letter in ycsb::WORKLOADS {
        let id = format!("ycsb-{letter}");
        if s.wants(&id) || s.wants("ycsb") {
            record(
                report,
                &id,
                ycsb::run(engine, letter, s.n, s.ycsb_threads, s.secs),
            );
        }
    }
}

/// Durable read-2-write-2 and hot-key contention, on the durable open,
/// after a short fdatasync probe in the engine's directory: the disk is
/// shared and its speed drifts, and this says what it was in this slot.
fn durable_phases<E: Engine>(engine: &E, dir: &Path, s: &Settings, report: &mut ChildReport) {
    if s.wants("r2w2") || s.wants("contention") {
        let probe = limits::fdatasync_probe(&dir.join("slot-probe"), s.secs.min(1.0));
        record(report, "slot-fdatasync", probe);
    }
    if s.wants("r2w2") {
        for &threads in &s.r2w2_threads {
            let result = txn::read2_write2(engine, s.n, threads, s.secs);
            record(report, &format!("r2w2/{threads}t"), result);
        }
    }
    if s.wants("contention") {
        if let Err(e) = txn::reset_counters(engine) {
            record(report, "contention", Err(e));
            return;
        }
        for &threads in &s.contention_threads {
            let result = txn::contention(engine, threads, s.secs);
            record(report, &format!("contention/{threads}t"), result);
        }
    }
}
