//! The machine's limits, measured in the same run as the engines: the disk
//! (fdatasync after a 4 KiB append; sequential write bandwidth) and the CPU
//! (in-memory `BTreeMap` and `crossbeam_skiplist::SkipMap` insert, get and
//! 100-entry scan, the same keys and values as the engines).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_skiplist::SkipMap;
use rand::Rng;

use crate::as_f64;
use crate::keys::{self, KEY_BYTES, key, thread_rng};
use crate::model::{ChildReport, Metric, Settings};
use crate::workloads::basic::SCAN_ITEMS;

/// Bytes appended before each fdatasync.
const PROBE_BYTES: usize = 4096;
/// Block size of the sequential-write probe.
const SEQ_BLOCK: usize = 1 << 20;
/// Most bytes the sequential-write probe writes.
const SEQ_MAX_BYTES: u64 = 512 << 20;
/// Most keys in the in-memory maps (they hold everything in RAM).
const MAP_MAX_KEYS: u64 = 1_000_000;

type Key = [u8; KEY_BYTES];

/// Measures every limit in `dir`.
pub fn run(dir: &Path, settings: &Settings) -> Result<ChildReport> {
    let mut report = ChildReport {
        engine: "limits".to_owned(),
        ..ChildReport::default()
    };
    let mut put = |id: &str, metric: Metric| {
        eprintln!(
            "  limits     {id:<18} {:>14.1} {}",
            metric.value, metric.unit
        );
        report.metrics.insert(id.to_owned(), metric);
    };
    put(
        "fdatasync-4k",
        fdatasync_probe(&dir.join("probe"), settings.secs)?,
    );
    put("seq-write", seq_write(&dir.join("seq"), settings.secs)?);
    let n = settings.n.min(MAP_MAX_KEYS);
    let pairs: Vec<(Key, Vec<u8>)> = (0..n).map(|i| (key(i), keys::value(i))).collect();

    let t0 = Instant::now();
    let mut btree = BTreeMap::new();
    for (k, v) in &pairs {
        btree.insert(*k, v.clone());
    }
    put("btreemap/insert", rate(n, t0.elapsed(), "keys/s"));
    put(
        "btreemap/get",
        timed_gets(n, settings.secs, |k| btree.get(k).cloned()),
    );
    put(
        "btreemap/scan",
        timed_scans(n, settings.secs, |k| scan_len(btree.range(*k..))),
    );

    let t0 = Instant::now();
    let skip = SkipMap::new();
    for (k, v) in &pairs {
        skip.insert(*k, v.clone());
    }
    put("skiplist/insert", rate(n, t0.elapsed(), "keys/s"));
    put(
        "skiplist/get",
        timed_gets(n, settings.secs, |k| skip.get(k).map(|e| e.value().clone())),
    );
    put(
        "skiplist/scan",
        timed_scans(n, settings.secs, |k| {
            scan_len(skip.range(*k..).map(|e| (*e.key(), e.value().clone())))
        }),
    );
    Ok(report)
}

/// `count` per `elapsed`.
fn rate(count: u64, elapsed: Duration, unit: &str) -> Metric {
    Metric::rate(as_f64(count) / elapsed.as_secs_f64(), unit)
}

/// Copies [`SCAN_ITEMS`] entries out of `iter` (as the engines return owned
/// copies) and returns how many there were.
fn scan_len<K: Clone, V: Clone>(iter: impl Iterator<Item = (K, V)>) -> usize {
    let mut count = 0;
    for (k, v) in iter.take(SCAN_ITEMS) {
        std::hint::black_box((k.clone(), v.clone()));
        count += 1;
    }
    count
}

/// Random gets of loaded keys on one thread for `secs`.
fn timed_gets(n: u64, secs: f64, get: impl Fn(&Key) -> Option<Vec<u8>>) -> Metric {
    let mut rng = thread_rng(41, 0);
    let (start, mut ops) = (Instant::now(), 0_u64);
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        for _ in 0..100 {
            std::hint::black_box(get(&key(rng.random_range(0..n))));
        }
        ops += 100;
    }
    rate(ops, start.elapsed(), "ops/s")
}

/// Scans of [`SCAN_ITEMS`] entries from random keys on one thread for `secs`.
fn timed_scans(n: u64, secs: f64, scan: impl Fn(&Key) -> usize) -> Metric {
    let mut rng = thread_rng(42, 0);
    let starts = n.saturating_sub(SCAN_ITEMS as u64).max(1);
    let (start, mut ops) = (Instant::now(), 0_u64);
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        std::hint::black_box(scan(&key(rng.random_range(0..starts))));
        ops += 1;
    }
    rate(ops, start.elapsed(), "scans/s")
}

/// One thread appends [`PROBE_BYTES`] and calls `fdatasync`, in a loop.
pub fn fdatasync_probe(path: &Path, secs: f64) -> Result<Metric> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    let block = vec![0x5A_u8; PROBE_BYTES];
    let (start, mut syncs) = (Instant::now(), 0_u64);
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        file.write_all(&block)?;
        file.sync_data()?;
        syncs += 1;
    }
    let metric = rate(syncs, start.elapsed(), "syncs/s");
    drop(file);
    std::fs::remove_file(path)?;
    Ok(metric)
}

/// Writes 1 MiB blocks for `secs` (at most [`SEQ_MAX_BYTES`]), then one
/// `fdatasync`; bytes per second including that sync.
fn seq_write(path: &Path, secs: f64) -> Result<Metric> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    let block = vec![0xA5_u8; SEQ_BLOCK];
    let (start, mut bytes) = (Instant::now(), 0_u64);
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline && bytes < SEQ_MAX_BYTES {
        file.write_all(&block)?;
        bytes += SEQ_BLOCK as u64;
    }
    file.sync_data()?;
    let metric = rate(bytes, start.elapsed(), "bytes/s");
    drop(file);
    std::fs::remove_file(path)?;
    Ok(metric)
}
