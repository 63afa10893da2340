//! Transaction benchmarks: commit with and without contention (Buffered, so
//! the commit path's CPU cost is measured, not the disk), and snapshot reads.
#![expect(clippy::unwrap_used, reason = "benchmarks")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strata::{Db, Durability, Options};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options::default().durability(Durability::Buffered),
    )
    .unwrap();
    (dir, db)
}

/// Each element: one read-2-write-2 transaction; `key_space` keys shared by
/// all threads (small = contention). Conflicts are retried by `update`.
fn run(db: &Db, threads: u64, key_space: u64, iters: u64, conflicts: &AtomicU64) -> Duration {
    let per = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..per {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (a, b) = (x % key_space, (x >> 20) % key_space);
                    let (ka, kb) = (format!("k{a:08}"), format!("k{b:08}"));
                    db.update(|txn| {
                        let va = txn.get(ka.as_bytes())?.unwrap_or_default();
                        let vb = txn.get(kb.as_bytes())?.unwrap_or_default();
                        txn.put(ka.as_bytes(), &vb)?;
                        txn.put(kb.as_bytes(), &va)
                    })
                    .unwrap();
                }
            });
        }
    });
    let _ = conflicts.fetch_add(db.stats().conflicts, Ordering::Relaxed);
    start.elapsed()
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("txn/commit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (name, key_space) in [("no_contention", 1_000_000), ("contention_16_keys", 16)] {
        for threads in [1u64, 4] {
            let (_dir, db) = open();
            let conflicts = AtomicU64::new(0);
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &n| {
                b.iter_custom(|iters| run(&db, n, key_space, iters, &conflicts));
            });
        }
    }
    group.finish();

    let (_dir, db) = open();
    db.update(|txn| {
        for i in 0..10_000u32 {
            txn.put(format!("k{i:08}").as_bytes(), &[0; 100])?;
        }
        Ok(())
    })
    .unwrap();
    let mut group = c.benchmark_group("txn/read");
    group.throughput(Throughput::Elements(1));
    let snap = db.begin_read();
    let mut i = 0u32;
    group.bench_function("get/memtable_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            snap.get(format!("k{i:08}").as_bytes()).unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
