//! peers.json (every repetition, medians, machine, versions, command) and
//! peers.md (a table per workload, engines as rows, Strata ÷ best peer).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::as_f64;
use crate::model::{ChildReport, Metric, Settings};
use crate::sysinfo::Machine;

/// Everything a suite run measured, as written to peers.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteReport {
    /// The command line.
    pub command: String,
    /// Start of the run (seconds since the Unix epoch).
    pub started_unix: u64,
    /// `git describe --always --dirty` of the Strata checkout.
    pub git_commit: String,
    /// The machine.
    pub machine: Machine,
    /// Settings.
    pub settings: Settings,
    /// Crate versions of the engines (from Cargo.lock).
    pub versions: BTreeMap<String, String>,
    /// Every child's report, in run order, with its repetition.
    pub runs: Vec<(usize, ChildReport)>,
    /// Per engine (and `limits`), the median of each figure over the repetitions.
    pub medians: BTreeMap<String, BTreeMap<String, Metric>>,
}

/// The median of each metric over `reports` (latencies and conflicts
/// too; `lost` is the largest seen, so one loss anywhere shows).
pub fn medians(reports: &[&ChildReport]) -> BTreeMap<String, Metric> {
    let mut ids: Vec<&String> = reports.iter().flat_map(|r| r.metrics.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut out = BTreeMap::new();
    for id in ids {
        let all: Vec<&Metric> = reports.iter().filter_map(|r| r.metrics.get(id)).collect();
        let Some(first) = all.first() else { continue };
        let median_of =
            |f: &dyn Fn(&Metric) -> Option<f64>| median(all.iter().filter_map(|m| f(m)));
        let metric = Metric {
            value: median_of(&|m| Some(m.value)).unwrap_or(0.0),
            unit: first.unit.clone(),
            higher_is_better: first.higher_is_better,
            p50_us: median_of(&|m| m.p50_us),
            p99_us: median_of(&|m| m.p99_us),
            conflicts: median_u64(all.iter().filter_map(|m| m.conflicts)),
            lost: all.iter().filter_map(|m| m.lost).max(),
        };
        out.insert(id.clone(), metric);
    }
    out
}

/// The median of integers (the lower middle one for an even count).
fn median_u64(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// The median (mean of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[mid - 1], v[mid])
    } else {
        v[mid]
    })
}

/// Workload ids in report order, with a title.
const WORKLOADS: &[(&str, &str)] = &[
    (
        "load",
        "Bulk load, 1,000-key transactions, no per-commit sync",
    ),
    ("reopen", "Reopen after the load"),
    ("read/1t", "Random point reads, 1 thread"),
    ("read/2t", "Random point reads, 2 threads"),
    ("scan", "100-key scans, 1 thread"),
    (
        "slot-fdatasync",
        "fdatasync after 4 KiB in each engine's slot, before its durable phases",
    ),
    ("r2w2/1t", "Durable read-2-write-2, 1 thread"),
    ("r2w2/2t", "Durable read-2-write-2, 2 threads"),
    ("r2w2/8t", "Durable read-2-write-2, 8 threads"),
    ("r2w2/32t", "Durable read-2-write-2, 32 threads"),
    (
        "contention/2t",
        "Hot-key increments (16 keys, durable), 2 threads",
    ),
    (
        "contention/8t",
        "Hot-key increments (16 keys, durable), 8 threads",
    ),
    ("ycsb-a", "YCSB A (50% read, 50% update), zipfian"),
    ("ycsb-b", "YCSB B (95% read, 5% update), zipfian"),
    ("ycsb-c", "YCSB C (100% read), zipfian"),
    ("ycsb-e", "YCSB E (95% scan, 5% insert), zipfian"),
    (
        "ycsb-f",
        "YCSB F (50% read, 50% read-modify-write), zipfian",
    ),
    ("disk/after-load", "On-disk size after load and close"),
    (
        "space-amp",
        "Space amplification after load (on-disk / logical bytes)",
    ),
    ("disk/final", "On-disk size at the end"),
    ("peak-rss", "Peak RSS of the engine's process (VmHWM)"),
    (
        "peak-anon",
        "Peak anonymous memory of the engine's process (RssAnon, sampled every 5 ms; \
         mapped file pages excluded)",
    ),
    (
        "peak-anon/load",
        "Peak anonymous memory up to the end of the load (RssAnon, sampled every 5 ms)",
    ),
    (
        "peak-anon/reads",
        "Peak anonymous memory up to the end of the reads, scans and YCSB (RssAnon, sampled \
         every 5 ms)",
    ),
    (
        "anon-at-start",
        "Anonymous memory of the engine's process before it opened (the harness)",
    ),
];

/// The best peer (any engine but Strata) for workload `id`: name and metric.
pub fn best_peer<'a>(
    medians: &'a BTreeMap<String, BTreeMap<String, Metric>>,
    id: &str,
) -> Option<(&'a str, &'a Metric)> {
    medians
        .iter()
        .filter(|(engine, _)| *engine != "strata" && *engine != "limits")
        .filter_map(|(engine, m)| m.get(id).map(|m| (engine.as_str(), m)))
        .max_by(|(_, a), (_, b)| {
            let order = a.value.total_cmp(&b.value);
            if a.higher_is_better {
                order
            } else {
                order.reverse()
            }
        })
}

/// A figure with a unit, made short.
pub fn human(value: f64, unit: &str) -> String {
    match unit {
        "bytes" => format!("{:.1} MiB", value / f64::from(1 << 20)),
        "bytes/s" => format!("{:.0} MiB/s", value / f64::from(1 << 20)),
        "ms" => format!("{value:.1} ms"),
        "x" => format!("{value:.2}x"),
        _ if value >= 1e6 => format!("{:.2}M {unit}", value / 1e6),
        _ if value >= 1e3 => format!("{:.1}k {unit}", value / 1e3),
        _ => format!("{value:.0} {unit}"),
    }
}

/// Strata's figure ÷ the best peer's, formatted.
fn ratio(strata: Option<&Metric>, best: Option<(&str, &Metric)>) -> String {
    match (strata, best) {
        (Some(s), Some((_, b))) if b.value > 0.0 => format!("{:.2}", s.value / b.value),
        _ => "-".to_owned(),
    }
}

/// A latency or "-".
fn us(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

/// The summary table: one row per workload, Strata, best peer, ratio.
pub fn summary(report: &SuiteReport) -> String {
    let mut out =
        String::from("| workload | Strata | best peer | Strata ÷ best peer |\n|---|---|---|---|\n");
    let strata = report.medians.get("strata");
    for (id, _) in WORKLOADS.iter().filter(|(id, _)| *id != "slot-fdatasync") {
        let s = strata.and_then(|m| m.get(*id));
        let best = best_peer(&report.medians, id);
        if s.is_none() && best.is_none() {
            continue;
        }
        let cell =
            |m: Option<&Metric>| m.map_or_else(|| "-".to_owned(), |m| human(m.value, &m.unit));
        let best_cell = best.map_or_else(
            || "-".to_owned(),
            |(e, m)| format!("{} ({e})", human(m.value, &m.unit)),
        );
        let _ = writeln!(
            out,
            "| {id}{} | {} | {best_cell} | {} |",
            lost_mark(s),
            cell(s),
            ratio(s, best)
        );
    }
    out
}

/// " LOST n" when a contention check failed.
fn lost_mark(metric: Option<&Metric>) -> String {
    match metric.and_then(|m| m.lost) {
        Some(lost) if lost > 0 => format!(" **FAILED: {lost} increments lost**"),
        _ => String::new(),
    }
}

/// One workload's table: engines as rows.
fn workload_table(out: &mut String, report: &SuiteReport, id: &str, title: &str) {
    let rows: Vec<(&String, &Metric)> = report
        .medians
        .iter()
        .filter_map(|(engine, m)| m.get(id).map(|m| (engine, m)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let better = if first.higher_is_better {
        "higher is better"
    } else {
        "lower is better"
    };
    let _ = writeln!(out, "\n### {title} (`{id}`, {better})\n");
    out.push_str("| engine | figure | p50 us | p99 us | conflicts | ÷ best peer | check |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let best = best_peer(&report.medians, id);
    for (engine, m) in rows {
        let check = match m.lost {
            Some(0) => "no increment lost".to_owned(),
            Some(lost) => format!("**FAILED: {lost} lost**"),
            None => String::new(),
        };
        let conflicts = m
            .conflicts
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "| {engine} | {} | {} | {} | {conflicts} | {} | {check} |",
            human(m.value, &m.unit),
            us(m.p50_us),
            us(m.p99_us),
            ratio(Some(m), best),
        );
    }
}

/// peers.md: settings, machine, summary, limits, then a table per workload.
pub fn markdown(report: &SuiteReport) -> String {
    let mut out = String::from("# Strata and its peers\n\n");
    let m = &report.machine;
    let s = &report.settings;
    let _ = writeln!(out, "- command: `{}`", report.command);
    let _ = writeln!(out, "- commit: {}", report.git_commit);
    let _ = writeln!(
        out,
        "- machine: {}, {} cores, {:.1} GiB, kernel {}, fs {}",
        m.cpu,
        m.cores,
        as_f64(m.mem_bytes) / f64::from(1 << 30),
        m.kernel,
        m.fs
    );
    let _ = writeln!(
        out,
        "- settings: n = {} keys (16 B keys, 100 B values), {} s per phase, cache {} MiB, YCSB {} threads",
        s.n,
        s.secs,
        s.cache_bytes >> 20,
        s.ycsb_threads
    );
    if let Some(limit) = s.memory_limit_bytes {
        let _ = writeln!(
            out,
            "- memory limit: {} MiB per engine process, page cache included (a memory cgroup)",
            limit >> 20
        );
    }
    let versions: Vec<String> = report
        .versions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(out, "- versions: {}", versions.join(", "));
    out.push_str("\nStrata ÷ best peer: above 1 means Strata is ahead for throughput, behind for times and sizes.\n\n## Summary\n\n");
    out.push_str(&summary(report));
    if let Some(limits) = report.medians.get("limits") {
        out.push_str("\n## Limits of the machine (same run)\n\n| limit | figure |\n|---|---|\n");
        for (id, metric) in limits {
            let _ = writeln!(out, "| {id} | {} |", human(metric.value, &metric.unit));
        }
    }
    out.push_str("\n## Workloads\n");
    for (id, title) in WORKLOADS {
        workload_table(&mut out, report, id, title);
    }
    let errors: Vec<String> = report
        .runs
        .iter()
        .flat_map(|(rep, r)| {
            r.errors
                .iter()
                .map(move |e| format!("- rep {rep}, {}: {e}", r.engine))
        })
        .collect();
    if !errors.is_empty() {
        out.push_str("\n## Failures\n\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out
}
