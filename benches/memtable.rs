//! Memtable benchmarks: insert and point get, against bare crossbeam-skiplist.
#![expect(clippy::unwrap_used, reason = "benchmarks")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_skiplist::SkipMap;
use strata::__internals::MemtableBench;

const KEYS: u64 = 100_000;

/// The `i`-th key in a scrambled order (every key is in `0..KEYS`).
fn key(i: u64) -> Vec<u8> {
    format!("key{:013}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS).into_bytes()
}

/// Key number `n` (16 bytes, as `strata bench` uses).
fn plain_key(n: u64) -> Vec<u8> {
    format!("key{n:013}").into_bytes()
}

fn memtable(c: &mut Criterion) {
    let mut group = c.benchmark_group("memtable");
    group.throughput(Throughput::Elements(1));
    let value = [1u8; 100];

    let mem = MemtableBench::new();
    let mut ts = 0;
    group.bench_function("insert/random", |b| {
        b.iter(|| {
            ts += 1;
            mem.insert(&key(ts), ts, &value);
        });
    });

    let mem = MemtableBench::new();
    let bare = SkipMap::new();
    for i in 0..KEYS {
        mem.insert(&plain_key(i), i + 1, &value);
        bare.insert(plain_key(i), value.to_vec());
    }
    let mut i = 0;
    group.bench_function("get/hit", |b| {
        b.iter(|| {
            i += 1;
            mem.get(&key(i), u64::MAX).unwrap()
        });
    });
    group.bench_function("get/bare_skiplist", |b| {
        b.iter(|| {
            i += 1;
            bare.get(&key(i)).unwrap().value().clone()
        });
    });
    group.finish();
}

criterion_group!(benches, memtable);
criterion_main!(benches);
