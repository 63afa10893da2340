//! Compaction throughput: `Db::compact` merging three overwritten rounds
//! of 50k keys (150k versions in level 0 and 1, 100 B values) into one
//! version per key, beside building one table of the same 150k versions in
//! the same run (the limit: merge + GC + build cannot beat a bare build).
//! Compare the ratio, not the times (`docs/benchmarks.md`).
#![expect(clippy::unwrap_used, reason = "benchmarks")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata::__internals::{TableBench, TableVersion};
use strata::{Db, Durability, Options};

const KEYS: u64 = 50_000;
const ROUNDS: u64 = 3;

fn key(n: u64) -> Vec<u8> {
    format!("key{n:013}").into_bytes()
}

/// A database holding `ROUNDS` overwrites of every key, all in tables.
fn loaded(dir: &std::path::Path) -> Db {
    let options = Options::default()
        .durability(Durability::Buffered)
        .memory_budget(4 << 20)
        .history_retention(Duration::ZERO);
    let db = Db::open(dir, options).unwrap();
    for round in 0..ROUNDS {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let mut t = db.begin();
            for &n in chunk {
                t.put(&key(n), &[(n + round) as u8; 100]).unwrap();
            }
            t.commit().unwrap();
        }
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    db
}

fn compaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("compaction");
    group.sample_size(10);
    group.throughput(Throughput::Elements(KEYS * ROUNDS));
    group.bench_function("full/150k-versions", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let db = loaded(dir.path());
                (dir, db)
            },
            |(dir, db)| {
                db.compact().unwrap();
                (dir, db)
            },
            BatchSize::PerIteration,
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let versions = || {
        (0..KEYS).flat_map(|n| {
            (0..ROUNDS)
                .rev()
                .map(move |r| -> TableVersion { (key(n), 10 + r, Some(vec![(n + r) as u8; 100])) })
        })
    };
    let mut i = 0;
    group.bench_function("table-build/150k-versions (limit)", |b| {
        b.iter_batched(
            || {
                i += 1;
                dir.path().join(format!("t{i}.sst"))
            },
            |path| TableBench::build(&path, versions()).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, compaction);
criterion_main!(benches);
