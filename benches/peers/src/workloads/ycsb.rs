//! YCSB core workloads A, B, C, E and F over the loaded keys, with
//! scrambled zipfian key choice (theta 0.99), on `--ycsb-threads` clients.
//!
//! | workload | mix |
//! |---|---|
//! | A | 50% read, 50% update |
//! | B | 95% read, 5% update |
//! | C | 100% read |
//! | E | 95% scan (1..=100 entries, uniform), 5% insert of a new key |
//! | F | 50% read, 50% read-modify-write (one transaction) |
//!
//! Each operation is its own transaction; updates and inserts are not
//! synced per commit (the engine is open non-durable). E's inserts take
//! fresh keys after the loaded ones; its scans and the zipfian draw stay
//! over the loaded keys (YCSB's "latest" shift is not modelled).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use rand::Rng;
use rand::rngs::SmallRng;

use super::{Tally, run_timed};
use crate::engines::{Engine, Outcome};
use crate::keys::{self, Zipfian, key, thread_rng};
use crate::model::Metric;

/// The zipfian constant YCSB uses.
pub const THETA: f64 = 0.99;

/// The workloads, by the letter YCSB gives them.
pub const WORKLOADS: &[char] = &['a', 'b', 'c', 'e', 'f'];

/// One YCSB operation.
#[derive(Clone, Copy)]
enum Op {
    Read,
    Update,
    Scan,
    Insert,
    ReadModifyWrite,
}

/// The operation workload `letter` does next.
fn choose(letter: char, rng: &mut SmallRng) -> Op {
    let p: f64 = rng.random();
    match letter {
        'a' if p < 0.5 => Op::Update,
        'b' if p < 0.05 => Op::Update,
        'e' if p < 0.05 => Op::Insert,
        'e' => Op::Scan,
        'f' if p < 0.5 => Op::ReadModifyWrite,
        _ => Op::Read,
    }
}

/// Shared state of one workload run.
struct Ycsb<'a, E> {
    engine: &'a E,
    zipf: Zipfian,
    next_insert: AtomicU64,
}

impl<E: Engine> Ycsb<'_, E> {
    /// Runs one operation; `Ok(false)` if it lost a conflict.
    fn op(&self, op: Op, rng: &mut SmallRng, salt: u64) -> Result<bool> {
        let k = key(self.zipf.next(rng));
        match op {
            Op::Read => {
                if self.engine.get(&k)?.is_none() {
                    bail!("loaded key {} not found", String::from_utf8_lossy(&k));
                }
            }
            Op::Update => self.engine.put(&k, &keys::value(salt))?,
            Op::Scan => {
                let len = rng.random_range(1..=100);
                std::hint::black_box(self.engine.scan(&k, len)?);
            }
            Op::Insert => {
                let i = self.next_insert.fetch_add(1, Ordering::Relaxed);
                self.engine.put(&key(i), &keys::value(i))?;
            }
            Op::ReadModifyWrite => {
                let outcome = self.engine.read2_write2([&k, &k], [&k, &k], salt)?;
                return Ok(outcome == Outcome::Committed);
            }
        }
        Ok(true)
    }
}

/// Runs YCSB workload `letter` for `secs` on `threads` clients.
pub fn run<E: Engine>(
    engine: &E,
    letter: char,
    n: u64,
    threads: usize,
    secs: f64,
) -> Result<Metric> {
    let ycsb = Ycsb {
        engine,
        zipf: Zipfian::new(n, THETA),
        next_insert: AtomicU64::new(n),
    };
    let (tally, elapsed) = run_timed(threads, secs, |thread, deadline| {
        let mut rng = thread_rng(30 + u64::from(letter), thread);
        let mut tally = Tally::new()?;
        let mut attempt = 0_u64;
        loop {
            let t0 = Instant::now();
            if t0 >= deadline {
                return Ok(tally);
            }
            attempt += 1;
            let op = choose(letter, &mut rng);
            if ycsb.op(op, &mut rng, ((thread as u64) << 40) | attempt)? {
                tally.record(t0.elapsed());
            } else {
                tally.conflicts += 1;
            }
        }
    })?;
    Ok(tally.metric(elapsed, "ops/s"))
}
