//! What a child measures and reports, and the settings it runs with
//! (serialised to JSON between the suite and its children, and into peers.json).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Settings of one suite run, handed to every child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Keys loaded.
    pub n: u64,
    /// Length of each timed phase, in seconds.
    pub secs: f64,
    /// Cache budget for engines that have one, in bytes.
    pub cache_bytes: u64,
    /// Workload groups to run (empty: all).
    pub only: Vec<String>,
    /// Client threads of the durable read-2-write-2 workload.
    pub r2w2_threads: Vec<usize>,
    /// Client threads of the hot-key contention workload.
    pub contention_threads: Vec<usize>,
    /// Client threads of the YCSB workloads.
    pub ycsb_threads: usize,
    /// Memory limit of each engine's process, page cache included
    /// (`--memory-limit-mb`; none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

impl Settings {
    /// Whether workload group `group` is selected.
    pub fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

/// One measured figure.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    /// The figure itself.
    pub value: f64,
    /// Its unit (`ops/s`, `keys/s`, `ms`, `bytes`, `x`).
    pub unit: String,
    /// Whether more is better (throughput) or less (time, size).
    pub higher_is_better: bool,
    /// Median latency of one operation, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th-percentile latency, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// Transactions that lost a conflict (not retried) or retries taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<u64>,
    /// Increments lost (contention check); anything but 0 is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
}

impl Metric {
    /// A throughput figure.
    pub fn rate(value: f64, unit: &str) -> Self {
        Metric {
            value,
            unit: unit.to_owned(),
            higher_is_better: true,
            ..Metric::default()
        }
    }

    /// A figure where less is better (time, bytes).
    pub fn cost(value: f64, unit: &str) -> Self {
        Metric {
            value,
            unit: unit.to_owned(),
            higher_is_better: false,
            ..Metric::default()
        }
    }
}

/// What one child (one engine, one repetition) reports on stdout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// Engine name.
    pub engine: String,
    /// Figures by workload id (`load`, `read/1t`, `r2w2/8t`, `ycsb-a`, ...).
    pub metrics: BTreeMap<String, Metric>,
    /// Workloads that failed, with their error.
    pub errors: Vec<String>,
}
