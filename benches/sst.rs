//! Sorted-table benchmarks: build, point get (hit and miss), 100-version
//! scan and bloom probe, beside a `BTreeMap` of the same versions measured
//! in the same run (compare ratios, not times: `docs/benchmarks.md`).
#![expect(clippy::unwrap_used, reason = "benchmarks")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::collections::BTreeMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata::__internals::{TableBench, TableVersion};

const KEYS: u64 = 100_000;

/// Key number `n` (16 bytes, as `strata bench` uses).
fn key(n: u64) -> Vec<u8> {
    format!("key{n:013}").into_bytes()
}

/// The `i`-th probe in a scrambled order over `0..KEYS`.
fn scrambled(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS
}

fn versions() -> impl Iterator<Item = TableVersion> {
    (0..KEYS).map(|n| (key(n), 1 + n % 7, Some(vec![(n % 251) as u8; 100])))
}

fn sst(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sst");

    group.throughput(Throughput::Elements(KEYS));
    group.sample_size(10);
    let mut n = 0;
    group.bench_function("build/100k", |b| {
        b.iter_batched(
            || {
                n += 1;
                dir.path().join(format!("build-{n}.sst"))
            },
            |path| TableBench::build(&path, versions()).unwrap(),
            BatchSize::PerIteration,
        );
    });

    let (table, _size) = TableBench::build(&dir.path().join("read.sst"), versions()).unwrap();
    let map: BTreeMap<Vec<u8>, Vec<u8>> = versions().map(|(k, _, v)| (k, v.unwrap())).collect();
    group.sample_size(50);
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("get/hit", |b| {
        b.iter(|| {
            i += 1;
            table.get(&key(scrambled(i)), u64::MAX).unwrap().unwrap()
        });
    });
    group.bench_function("get/miss", |b| {
        b.iter(|| {
            i += 1;
            let mut k = key(scrambled(i));
            k.push(b'x');
            table.get(&k, u64::MAX).unwrap()
        });
    });
    group.bench_function("get/btreemap", |b| {
        b.iter(|| {
            i += 1;
            map.get(&key(scrambled(i))).unwrap().clone()
        });
    });
    group.bench_function("bloom/probe", |b| {
        b.iter(|| {
            i += 1;
            table.may_contain(&key(scrambled(i)))
        });
    });
    group.bench_function("scan100", |b| {
        b.iter(|| {
            i += 1;
            table.scan(&key(scrambled(i) % (KEYS - 100)), 100).unwrap()
        });
    });
    group.bench_function("scan100/btreemap", |b| {
        b.iter(|| {
            i += 1;
            let start = key(scrambled(i) % (KEYS - 100));
            map.range(start..)
                .take(100)
                .map(|(_, v)| v.len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, sst);
criterion_main!(benches);
