//! The process's anonymous memory stays within `Options::memory_budget`
//! plus `MEMORY_OVERHEAD_BYTES` while a data set ten times the budget is
//! loaded and read (issue 16, item 10; decision 0024).
//!
//! A test binary of its own, with one test: `RssAnon` (from
//! `/proc/self/status`) is the whole process's, so nothing else may run in
//! it. The database is on the OS file system, so tables are mapped and
//! their pages are file-backed (`RssFile`), as in production. Memory is
//! sampled after each commit and each read pass, a point the test reaches
//! by itself; the bound is an upper bound whatever the background threads
//! did meanwhile. The peers suite (`benches/peers`, `peak-anon`) measures
//! the same in release builds, sampled every 5 ms.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use strata::{Db, Durability, MEMORY_OVERHEAD_BYTES};

const BUDGET: u64 = 4 << 20;
const VALUE_BYTES: usize = 4096;
const KEYS_PER_TXN: usize = 16;

/// `RssAnon` of this process, in bytes (`None` where `/proc` lacks it).
fn anon_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:013}").into_bytes()
}

#[test]
fn anonymous_memory_stays_within_the_budget_plus_the_constant() {
    let Some(baseline) = anon_bytes() else {
        eprintln!("no RssAnon in /proc/self/status: nothing to measure");
        return;
    };
    let dir = common::temp_dir();
    let options = common::options(Durability::Buffered).memory_budget(BUDGET);
    let db = Db::open(dir.path(), options).unwrap();
    let keys = 10 * BUDGET as usize / VALUE_BYTES;
    let mut peak = 0;
    let mut sample = |what: &str| {
        let now = anon_bytes().unwrap().saturating_sub(baseline);
        peak = peak.max(now);
        assert!(
            now <= BUDGET + MEMORY_OVERHEAD_BYTES,
            "{what}: {now} bytes of anonymous memory above the {baseline} at start \
             (budget {BUDGET} + {MEMORY_OVERHEAD_BYTES}): {:?}",
            db.stats()
        );
    };
    let mut value = vec![0u8; VALUE_BYTES];
    for first in (0..keys).step_by(KEYS_PER_TXN) {
        let mut t = db.begin();
        for i in first..(first + KEYS_PER_TXN).min(keys) {
            value[..8].copy_from_slice(&(i as u64).to_le_bytes());
            t.put(&key(i), &value).unwrap();
        }
        t.commit().unwrap();
        sample("after a commit");
    }
    db.flush().unwrap();
    sample("after the flush");
    for round in 0..2 {
        let r = db.begin_read();
        for i in (round..keys).step_by(7) {
            let v = r.get(&key(i)).unwrap().unwrap();
            assert_eq!(v[..8], (i as u64).to_le_bytes());
        }
        let scanned = r.scan(..).unwrap().count();
        assert_eq!(scanned, keys);
        drop(r);
        sample("after reads and a full scan");
    }
    let stats = db.stats();
    assert!(stats.tables > 1 && stats.flushes > 20, "{stats:?}");
    eprintln!(
        "peak anonymous memory above the start: {peak} bytes (budget {BUDGET}, \
         constant {MEMORY_OVERHEAD_BYTES}); counted at the end {} bytes",
        stats.memory_bytes
    );
    db.close().unwrap();
}
