//! WAL benchmarks: append and group commit at 1/4/16 writers, per durability.
//!
//! `wal/append/<mode>/<writers>`: each element is one record (16-byte key,
//! 100-byte value) enqueued and waited for; in `sync` mode concurrent writers
//! share fdatasyncs, so throughput should grow with writers.
#![expect(clippy::unwrap_used, reason = "benchmarks")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strata::__internals::WalBench;

fn run(wal: &WalBench, writers: u64, iters: u64) -> Duration {
    let per = iters.div_ceil(writers);
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            s.spawn(move || {
                let value = [7u8; 100];
                for i in 0..per {
                    wal.append(format!("key{w:04}{i:09}").as_bytes(), &value)
                        .unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn wal_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal/append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (mode, sync) in [("buffered", false), ("sync", true)] {
        for writers in [1u64, 4, 16] {
            let dir = tempfile::tempdir().unwrap();
            let wal = WalBench::create(dir.path(), sync).unwrap();
            group.bench_with_input(BenchmarkId::new(mode, writers), &writers, |b, &n| {
                b.iter_custom(|iters| run(&wal, n, iters));
            });
            let (commits, syncs) = wal.syncs();
            if syncs > 0 {
                #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
                let per_sync = commits as f64 / syncs as f64;
                println!("wal/append/{mode}/{writers}: {per_sync:.1} records per fdatasync");
            }
        }
    }
    group.finish();
}

criterion_group!(benches, wal_append);
criterion_main!(benches);
