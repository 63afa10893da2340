//! Recovery time of a WAL whose last segment ends in random garbage (a
//! damaged `Buffered` tail): `docs/benchmarks.md`, "Recovery of a random tail".
//!
//! `cargo run --release --example recovery_garbage -- [MiB of garbage] [records]`
//! (defaults: 64 MiB after 1000 records). Creates a database in a temporary
//! directory, closes it, appends the garbage to its segment, and times
//! `Db::open` (which reads the log, finds the damage, searches the rest of
//! the segment for a sync mark that would prove it synced, and cuts it).

#![allow(
    clippy::unwrap_used,
    reason = "a measurement tool: any failure ends it"
)]

use std::io::Write;
use std::time::Instant;

use strata::{Db, Durability, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(64, |a| a.parse().unwrap());
    let records: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::default().durability(Durability::Buffered);
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..records {
        let mut t = db.begin();
        t.put(format!("key{i:08}").as_bytes(), &[7; 100]).unwrap();
        t.commit().unwrap();
    }
    db.close().unwrap();

    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let garbage: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut file = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let started = Instant::now();
    let db = Db::open(dir.path(), opts()).unwrap();
    let took = started.elapsed();
    let stats = db.stats();
    assert_eq!(stats.recovered_records, records as u64);
    println!(
        "{mib} MiB of random garbage after {records} records: open took {:.3} s",
        took.as_secs_f64()
    );
}
