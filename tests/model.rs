//! Random operation sequences checked against a reference model.
//!
//! The model keeps every committed version, `key -> (commit ts -> value or
//! delete)`, plus each open transaction's read ts and write buffer. Every
//! read (transaction get and scan, snapshot get and scan) is compared with
//! what the model says is visible, every commit's outcome is predicted
//! (conflict iff a written key has a version newer than the read ts), and
//! after a clean reopen, a process crash or a power cut the recovered state
//! must be the model's state at the recovered read ts, which must cover
//! every durable commit (with `Durability::Sync`, every acknowledged one).
//!
//! Flushes (`Db::flush`) move versions to tables between operations, and
//! compactions (`Db::compact`) merge the tables into the bottom level through
//! the MVCC GC, with snapshots held across both, so reads, conflicts and
//! recovery are checked over memtables and tables alike. After each
//! compaction the tables hold exactly the versions the GC contract keeps
//! (per key, those above the watermark and the newest at or below it unless
//! it is a delete), and the tables directory exactly the live tables plus
//! those a held view still pins; after each reopen, exactly the live ones.
//!
//! The `small_budget` variants run with `MIN_MEMORY_BUDGET` and large values,
//! so that the background flusher and compactor run on their own while the
//! operations go on: every check holds at any moment (reads are snapshot
//! reads), and the test waits only for `Db::wait_for_compactions` before
//! counting files. What fails there may depend on when the background
//! threads ran, so proptest's "minimal failing input" may not fail on its
//! own (it has printed an empty one): the message and the seed are what to
//! go on, and reruns (with the seed) are how to reproduce it.
//!
//! Runs on `MemVfs`. Proptest prints the minimal failing op sequence.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};
use strata::vfs::{FaultVfs, MemVfs, Vfs};
use strata::{Db, Durability, Error, Options, Txn};

/// Concurrently open transactions.
const SLOTS: usize = 3;

/// The key space: 1-2 byte keys whose order is not their insertion order.
const KEYS: [&[u8]; 8] = [
    b"a",
    b"ab",
    b"b",
    b"b\x00",
    b"ba",
    b"c",
    b"\x00",
    b"\xff\xff",
];

/// Scan bounds: the keys plus a few that are never written.
const BOUND_KEYS: [&[u8]; 11] = [
    b"a",
    b"ab",
    b"b",
    b"b\x00",
    b"ba",
    b"c",
    b"\x00",
    b"\xff\xff",
    b"",
    b"aa",
    b"\xff",
];

#[derive(Debug, Clone)]
enum Op {
    Begin {
        slot: usize,
    },
    Put {
        slot: usize,
        key: usize,
        value: Vec<u8>,
    },
    Delete {
        slot: usize,
        key: usize,
    },
    Get {
        slot: usize,
        key: usize,
    },
    Scan {
        slot: usize,
        lo: Bound<usize>,
        hi: Bound<usize>,
    },
    Commit {
        slot: usize,
    },
    Rollback {
        slot: usize,
    },
    /// `begin_read`, then compare a full scan and every key with the model.
    ReadSnapshot,
    /// `Db::sync` (makes `Buffered` commits durable).
    Sync,
    /// `Db::flush`: every memtable to a table (and, in `Buffered` mode, the
    /// WAL synced first), with the open transactions' snapshots held across.
    Flush,
    /// `Db::compact`: a flush, then every table merged into the bottom level
    /// through the GC, with the open transactions' snapshots held across.
    Compact,
    /// Close everything and reopen.
    Reopen,
    /// Drop everything as a power cut (`power`) or a killed process would.
    Crash {
        power: bool,
    },
}

fn bound() -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..BOUND_KEYS.len()).prop_map(Bound::Included),
        (0..BOUND_KEYS.len()).prop_map(Bound::Excluded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    ops_weighted(1)
}

/// The op mix, with the transactional ops `n` times as frequent against
/// flushes, compactions and restarts as in [`op`] (the small-budget
/// variants use longer sessions, so that the background work gets going).
fn ops_weighted(n: u32) -> impl Strategy<Value = Op> {
    let slot = || 0..SLOTS;
    let key = || 0..KEYS.len();
    prop_oneof![
        3 * n => slot().prop_map(|slot| Op::Begin { slot }),
        8 * n => (slot(), key(), vec(0_u8..4, 0..3))
            .prop_map(|(slot, key, value)| Op::Put { slot, key, value }),
        3 * n => (slot(), key()).prop_map(|(slot, key)| Op::Delete { slot, key }),
        3 * n => (slot(), key()).prop_map(|(slot, key)| Op::Get { slot, key }),
        3 * n => (slot(), bound(), bound()).prop_map(|(slot, lo, hi)| Op::Scan { slot, lo, hi }),
        5 * n => slot().prop_map(|slot| Op::Commit { slot }),
        n => slot().prop_map(|slot| Op::Rollback { slot }),
        2 * n => Just(Op::ReadSnapshot),
        n => Just(Op::Sync),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => any::<bool>().prop_map(|power| Op::Crash { power }),
    ]
}

type Versions = BTreeMap<u64, Option<Vec<u8>>>;
type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Committed history.
#[derive(Debug, Default)]
struct Model {
    versions: BTreeMap<Vec<u8>, Versions>,
    /// Commit timestamps, in commit order.
    commits: Vec<u64>,
    /// Every commit up to this ts must survive any crash.
    durable_ts: u64,
}

impl Model {
    fn last_ts(&self) -> u64 {
        self.commits.last().copied().unwrap_or(0)
    }

    fn at(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        self.versions
            .get(key)?
            .range(..=ts)
            .next_back()
            .and_then(|(_, v)| v.clone())
    }

    fn newest_ts(&self, key: &[u8]) -> Option<u64> {
        self.versions.get(key)?.keys().next_back().copied()
    }

    fn snapshot(&self, ts: u64) -> State {
        self.versions
            .keys()
            .filter_map(|k| Some((k.clone(), self.at(k, ts)?)))
            .collect()
    }

    fn record(&mut self, ts: u64, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (k, v) in writes {
            self.versions
                .entry(k.clone())
                .or_default()
                .insert(ts, v.clone());
        }
        self.commits.push(ts);
    }

    /// How many versions a full compaction with GC watermark `w` keeps:
    /// per key, every version above `w`, and the newest at or below `w`
    /// unless it is a delete (`Db::compact`'s contract; at the bottom level
    /// nothing lies beneath a dropped delete).
    fn kept_by_full_compaction(&self, w: u64) -> u64 {
        self.versions
            .values()
            .map(|vs| {
                let above = vs.range(w + 1..).count() as u64;
                let newest_at_or_below = vs.range(..=w).next_back();
                above + u64::from(newest_at_or_below.is_some_and(|(_, v)| v.is_some()))
            })
            .sum()
    }

    /// Forgets the commits after `ts` (lost by a power cut).
    fn truncate_after(&mut self, ts: u64) {
        for versions in self.versions.values_mut() {
            versions.retain(|&t, _| t <= ts);
        }
        self.versions.retain(|_, v| !v.is_empty());
        self.commits.retain(|&t| t <= ts);
    }
}

/// An open transaction's model: its snapshot and its buffered writes.
#[derive(Debug)]
struct ModelTxn {
    read_ts: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl ModelTxn {
    fn get(&self, model: &Model, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(own) => own.clone(),
            None => model.at(key, self.read_ts),
        }
    }

    fn view(&self, model: &Model) -> State {
        let mut state = model.snapshot(self.read_ts);
        for (k, v) in &self.writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        state
    }
}

fn in_range(key: &[u8], lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    let above = match lo {
        Bound::Included(b) => key >= b,
        Bound::Excluded(b) => key > b,
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(b) => key <= b,
        Bound::Excluded(b) => key < b,
        Bound::Unbounded => true,
    };
    above && below
}

fn bound_key(b: Bound<usize>) -> Bound<&'static [u8]> {
    b.map(|i| BOUND_KEYS[i])
}

type Slots<'db> = Vec<Option<(Txn<'db>, ModelTxn)>>;

/// How a sequence runs.
#[derive(Debug, Clone, Copy)]
struct Config {
    durability: Durability,
    /// `MIN_MEMORY_BUDGET` and values padded to [`TXN_LIMIT`]: the
    /// background flusher and compactor run on their own.
    small_budget: bool,
}

/// The most one transaction may write at `MIN_MEMORY_BUDGET`: one
/// memtable's worth, a quarter of the budget, counted as the memtable
/// counts (key, value and 80 bytes per key; decision 0024).
const TXN_LIMIT: usize = (strata::MIN_MEMORY_BUDGET / 4) as usize;
const ENTRY_OVERHEAD: usize = 80;

/// What `writes` counts against [`TXN_LIMIT`].
fn txn_bytes(writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> usize {
    writes
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD)
        .sum()
}

impl Config {
    fn options(self) -> Options {
        // No retained history: compaction keeps exactly what the open
        // transactions need, which the model predicts.
        let o = common::options(self.durability).history_retention(std::time::Duration::ZERO);
        if self.small_budget {
            o.memory_budget(strata::MIN_MEMORY_BUDGET)
        } else {
            o
        }
    }

    /// The most one transaction may write.
    fn txn_limit(self) -> usize {
        if self.small_budget {
            TXN_LIMIT
        } else {
            (strata::DEFAULT_MEMORY_BUDGET / 4) as usize
        }
    }

    /// The value a put of `generated` under `key` writes. In the
    /// `small_budget` variants it is padded to the whole transaction limit:
    /// every commit that puts fills the 16 KiB memtable and freezes it, so
    /// the background flusher runs after most commits and the compactor
    /// (four level-0 tables) every few. A second write in the same
    /// transaction (to another key) is then refused with `TxnTooLarge`,
    /// which the model predicts and which must change nothing.
    fn value(self, key: &[u8], generated: &[u8]) -> Vec<u8> {
        let mut v = generated.to_vec();
        if self.small_budget {
            v.resize(TXN_LIMIT - ENTRY_OVERHEAD - key.len(), b'.');
        }
        v
    }
}

/// Table files in the database's tables directory.
fn table_files(vfs: &MemVfs) -> u64 {
    let dir = Path::new(common::MEM_DB_PATH).join("tables");
    vfs.list(&dir).map_or(0, |names| {
        names
            .iter()
            .filter(|n| Path::new(n).extension().is_some_and(|e| e == "sst"))
            .count() as u64
    })
}

/// After `Db::compact` returned (single-threaded: nothing committed since):
/// every version is in one level below level 0, the tables hold exactly
/// the versions the GC contract keeps at the watermark the open
/// transactions hold, and the files are the live tables plus the ones a
/// held view (an open transaction's) still pins.
fn check_compacted(
    db: &Db,
    vfs: &MemVfs,
    model: &Model,
    slots: &Slots<'_>,
) -> Result<(), TestCaseError> {
    let stats = db.stats();
    let oldest_open = slots.iter().flatten().map(|(_, mt)| mt.read_ts).min();
    let watermark = oldest_open.unwrap_or(stats.read_ts.get());
    prop_assert_eq!(stats.gc_watermark.get(), watermark, "{:?}", stats);
    prop_assert_eq!(stats.memtable_versions, 0, "{:?}", stats);
    prop_assert_eq!(stats.frozen_memtables, 0, "{:?}", stats);
    prop_assert_eq!(
        stats.tables_per_level.first().copied().unwrap_or(0),
        0,
        "level 0 after a full compaction: {:?}",
        stats
    );
    prop_assert!(
        stats.tables_per_level.iter().filter(|&&n| n > 0).count() <= 1,
        "more than one level after a full compaction: {:?}",
        stats
    );
    prop_assert_eq!(
        stats.table_versions,
        model.kept_by_full_compaction(watermark),
        "versions kept at watermark {}: {:?}",
        watermark,
        stats
    );
    prop_assert_eq!(
        table_files(vfs),
        stats.tables + stats.obsolete_tables,
        "table files after a compaction: {:?}",
        stats
    );
    Ok(())
}

fn begin<'db>(db: &'db Db, model: &Model) -> Result<(Txn<'db>, ModelTxn), TestCaseError> {
    let txn = db.begin();
    let read_ts = txn.read_ts().get();
    prop_assert!(
        read_ts >= model.last_ts(),
        "begin: read ts {read_ts} misses the last commit {}",
        model.last_ts()
    );
    Ok((
        txn,
        ModelTxn {
            read_ts,
            writes: BTreeMap::new(),
        },
    ))
}

/// The open transaction in `slot`, begun now if the slot is empty.
fn slot_txn<'s, 'db>(
    slots: &'s mut Slots<'db>,
    slot: usize,
    db: &'db Db,
    model: &Model,
) -> Result<&'s mut (Txn<'db>, ModelTxn), TestCaseError> {
    let entry = &mut slots[slot];
    if entry.is_none() {
        *entry = Some(begin(db, model)?);
    }
    Ok(entry.as_mut().unwrap())
}

fn check_snapshot(db: &Db, model: &Model) -> Result<(), TestCaseError> {
    let snap = db.begin_read();
    let ts = snap.read_ts().get();
    prop_assert!(
        ts >= model.last_ts(),
        "snapshot at {ts} misses {}",
        model.last_ts()
    );
    let all: State = common::collect(snap.scan::<&[u8], _>(..).unwrap())
        .into_iter()
        .collect();
    prop_assert_eq!(&all, &model.snapshot(ts), "full scan at {}", ts);
    for key in KEYS {
        prop_assert_eq!(
            snap.get(key).unwrap(),
            model.at(key, ts),
            "get {:?} at {}",
            key,
            ts
        );
    }
    Ok(())
}

fn commit(
    slots: &mut Slots<'_>,
    slot: usize,
    model: &mut Model,
    durability: Durability,
) -> Result<(), TestCaseError> {
    let Some((txn, mt)) = slots[slot].take() else {
        return Ok(());
    };
    let conflicting: Vec<&Vec<u8>> = mt
        .writes
        .keys()
        .filter(|k| model.newest_ts(k).is_some_and(|t| t > mt.read_ts))
        .collect();
    match txn.commit() {
        Ok(ts) => {
            let ts = ts.get();
            prop_assert!(
                conflicting.is_empty(),
                "commit succeeded but {conflicting:?} were committed after read ts {}",
                mt.read_ts
            );
            if mt.writes.is_empty() {
                prop_assert_eq!(ts, mt.read_ts, "read-only commit returns its read ts");
            } else {
                prop_assert!(
                    ts > model.last_ts(),
                    "commit ts {ts} not above {}",
                    model.last_ts()
                );
                prop_assert!(ts > mt.read_ts);
                model.record(ts, &mt.writes);
                if durability == Durability::Sync {
                    model.durable_ts = ts;
                }
            }
        }
        Err(Error::Conflict {
            key,
            read_ts,
            committed_ts,
        }) => {
            prop_assert!(
                conflicting.contains(&&key),
                "conflict on {key:?}, expected one of {conflicting:?}"
            );
            prop_assert_eq!(read_ts.get(), mt.read_ts);
            prop_assert_eq!(Some(committed_ts.get()), model.newest_ts(&key));
        }
        Err(e) => prop_assert!(false, "commit failed: {e:?}"),
    }
    Ok(())
}

/// Runs ops on the open `db` until a restart (returned) or the end.
/// Puts (or deletes) `key` in `txn` and its model, unless the write would
/// take the transaction past `limit`: then it must be refused with
/// `TxnTooLarge` and change nothing.
fn write(
    txn: &mut Txn<'_>,
    mt: &mut ModelTxn,
    key: &[u8],
    value: Option<Vec<u8>>,
    limit: usize,
) -> Result<(), TestCaseError> {
    let entry = |v: Option<&Vec<u8>>| key.len() + v.map_or(0, Vec::len) + ENTRY_OVERHEAD;
    let old = mt.writes.get(key).map_or(0, |v| entry(v.as_ref()));
    let bytes = txn_bytes(&mt.writes) - old + entry(value.as_ref());
    let result = match &value {
        Some(v) => txn.put(key, v),
        None => txn.delete(key),
    };
    match result {
        Ok(()) if bytes <= limit => {
            mt.writes.insert(key.to_vec(), value);
        }
        Err(Error::TxnTooLarge { len, max }) if bytes > limit => {
            prop_assert_eq!((len, max), (bytes, limit));
        }
        other => {
            return Err(TestCaseError::fail(format!(
                "write of {key:?} ({bytes} bytes in the transaction after it): {other:?}"
            )));
        }
    }
    Ok(())
}

fn run_session<'a>(
    db: &Db,
    vfs: &MemVfs,
    ops: &mut impl Iterator<Item = &'a Op>,
    model: &mut Model,
    config: Config,
    tally: &Tally,
) -> Result<Option<Op>, TestCaseError> {
    let durability = config.durability;
    let mut slots: Slots<'_> = (0..SLOTS).map(|_| None).collect();
    let mut session_compacts = 0;
    for op in ops {
        match op {
            Op::Begin { slot } => {
                if slots[*slot].is_none() {
                    slots[*slot] = Some(begin(db, model)?);
                }
            }
            Op::Put { slot, key, value } => {
                let (txn, mt) = slot_txn(&mut slots, *slot, db, model)?;
                let value = config.value(KEYS[*key], value);
                write(txn, mt, KEYS[*key], Some(value), config.txn_limit())?;
            }
            Op::Delete { slot, key } => {
                let (txn, mt) = slot_txn(&mut slots, *slot, db, model)?;
                write(txn, mt, KEYS[*key], None, config.txn_limit())?;
            }
            Op::Get { slot, key } => {
                let (txn, mt) = slot_txn(&mut slots, *slot, db, model)?;
                let key = KEYS[*key];
                prop_assert_eq!(
                    txn.get(key).unwrap(),
                    mt.get(model, key),
                    "txn get {:?} at read ts {}",
                    key,
                    mt.read_ts
                );
            }
            Op::Scan { slot, lo, hi } => {
                let (txn, mt) = slot_txn(&mut slots, *slot, db, model)?;
                let (lo, hi) = (bound_key(*lo), bound_key(*hi));
                let got = common::collect(txn.scan::<&[u8], _>((lo, hi)).unwrap());
                let want: Vec<(Vec<u8>, Vec<u8>)> = mt
                    .view(model)
                    .into_iter()
                    .filter(|(k, _)| in_range(k, lo, hi))
                    .collect();
                prop_assert_eq!(
                    got,
                    want,
                    "txn scan {:?}..{:?} at read ts {}",
                    lo,
                    hi,
                    mt.read_ts
                );
            }
            Op::Commit { slot } => commit(&mut slots, *slot, model, durability)?,
            Op::Rollback { slot } => {
                if let Some((txn, _)) = slots[*slot].take() {
                    txn.rollback();
                }
            }
            Op::ReadSnapshot => check_snapshot(db, model)?,
            Op::Sync => {
                db.sync().unwrap();
                model.durable_ts = model.last_ts();
            }
            Op::Flush => {
                db.flush().unwrap();
                model.durable_ts = model.last_ts();
            }
            Op::Compact => {
                db.compact().unwrap();
                model.durable_ts = model.last_ts();
                tally.compact_ops.fetch_add(1, Ordering::Relaxed);
                session_compacts += 1;
                check_compacted(db, vfs, model, &slots)?;
            }
            Op::Reopen | Op::Crash { .. } => {
                tally.session_ended(db, session_compacts);
                return Ok(Some(op.clone()));
            }
        }
    }
    tally.session_ended(db, session_compacts);
    Ok(None)
}

/// What the sequences of one test did, to check that they did what they
/// are for.
#[derive(Debug, Default)]
struct Tally {
    /// `Op::Compact`s run.
    compact_ops: AtomicU64,
    /// Sessions in which the background compactor ran a merge of its own.
    background_sessions: AtomicU64,
}

impl Tally {
    /// Counts the session if the compactor merged more often than the
    /// session's `Op::Compact`s did (each of those is one merge at most).
    fn session_ended(&self, db: &Db, compacts: u64) {
        if db.stats().compactions > compacts {
            self.background_sessions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// After a restart: the database must hold the model's state at its read
/// ts, which is a commit boundary at or after `at_least`, and once the
/// background work due at open is done, the tables directory must hold
/// exactly the tables the database lists (the open removed the orphans a
/// crash left: outputs whose edit was lost, inputs whose deletion was).
fn check_recovered(
    db: &Db,
    vfs: &MemVfs,
    model: &mut Model,
    at_least: u64,
) -> Result<(), TestCaseError> {
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    prop_assert_eq!(
        table_files(vfs),
        stats.tables,
        "table files after reopening: {:?}",
        stats
    );
    prop_assert_eq!(stats.obsolete_tables, 0);
    let ts = db.begin_read().read_ts().get();
    prop_assert!(
        ts >= at_least,
        "recovered to ts {ts}, but commits up to {at_least} had to survive"
    );
    prop_assert!(
        ts == 0 || model.commits.contains(&ts),
        "recovered read ts {ts} is no commit's ts: {:?}",
        model.commits
    );
    prop_assert_eq!(
        common::dump(db),
        model.snapshot(ts).into_iter().collect::<Vec<_>>()
    );
    model.truncate_after(ts);
    check_snapshot(db, model)
}

fn run(ops: &[Op], config: Config, tally: &Tally) -> Result<(), TestCaseError> {
    let mut vfs = MemVfs::new();
    let mut model = Model::default();
    let mut ops = ops.iter();
    let mut at_least = 0;
    loop {
        let db = Db::open_with_vfs(common::MEM_DB_PATH, config.options(), Arc::new(vfs.clone()))
            .map_err(|e| TestCaseError::fail(format!("open failed: {e:?}")))?;
        check_recovered(&db, &vfs, &mut model, at_least)?;
        match run_session(&db, &vfs, &mut ops, &mut model, config, tally)? {
            None => {
                check_snapshot(&db, &model)?;
                db.close().unwrap();
                return Ok(());
            }
            Some(Op::Crash { power }) => {
                // The crash happens while the database is open; what it does
                // afterwards (closing on drop) reaches only the old files.
                // A killed process loses nothing; a power cut loses at most
                // the commits that were not durable yet.
                (vfs, at_least) = if power {
                    (vfs.crash(), model.durable_ts)
                } else {
                    (vfs.process_crash(), model.last_ts())
                };
                drop(db);
            }
            Some(_) => {
                db.close().unwrap();
                model.durable_ts = model.last_ts();
                at_least = model.last_ts();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // The seed is printed (shown on failure) and can be fixed with
        // STRATA_TEST_SEED; no regression files are written into tests/.
        rng_seed: RngSeed::Fixed(common::seed("model")),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_sync(ops in vec(op(), 1..60)) {
        run(&ops, Config { durability: Durability::Sync, small_budget: false }, &Tally::default())?;
    }

    #[test]
    fn model_buffered(ops in vec(op(), 1..60)) {
        run(&ops, Config { durability: Durability::Buffered, small_budget: false }, &Tally::default())?;
    }
}

/// The small-budget variant: proptest run by hand so that, after the cases,
/// it can check that they did what they are for (a background compaction
/// in a fair share of them, and `Op::Compact` at all).
fn small_budget(durability: Durability, name: &str) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        rng_seed: RngSeed::Fixed(common::seed(name)),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let tally = Tally::default();
    let config = Config {
        durability,
        small_budget: true,
    };
    if let Err(e) = runner.run(&vec(ops_weighted(3), 1..150), |ops| {
        run(&ops, config, &tally)
    }) {
        panic!("{name}: {e}");
    }
    let compacts = tally.compact_ops.load(Ordering::Relaxed);
    let background = tally.background_sessions.load(Ordering::Relaxed);
    println!("{name}: {compacts} compact ops, {background} sessions with a background merge");
    assert!(compacts > 0, "{name}: no Op::Compact ran");
    assert!(
        background >= 16,
        "{name}: only {background} sessions had a background compaction"
    );
}

#[test]
fn model_small_budget_sync() {
    small_budget(Durability::Sync, "model_small_budget_sync");
}

#[test]
fn model_small_budget_buffered() {
    small_budget(Durability::Buffered, "model_small_budget_buffered");
}

/// Shrunk failures of the model, kept as plain tests.
mod found_by_model {
    use super::*;

    /// A killed process leaves written but unsynced WAL bytes in the page
    /// cache. Reopening replays them and starts a new segment that chains
    /// onto them (`first_lsn`, `prev_crc`) without syncing the old segment
    /// first; a power cut then drops those bytes and the new segment no
    /// longer continues the old one. Recovery must yield a prefix of the
    /// commits, not refuse to open.
    #[test]
    fn buffered_kill_reopen_then_power_cut_recovers_a_prefix() {
        let vfs = MemVfs::new();
        let db = common::open_mem(&vfs, Durability::Buffered);
        let mut t = db.begin();
        t.put(b"a", b"1").unwrap();
        t.commit().unwrap();
        let killed = vfs.process_crash();
        drop(db);

        let db = common::open_mem(&killed, Durability::Buffered);
        assert_eq!(
            common::dump(&db),
            vec![common::kv("a", "1")],
            "a kill loses nothing"
        );
        let power_cut = killed.crash();
        drop(db);

        let db = Db::open_with_vfs(
            common::MEM_DB_PATH,
            common::options(Durability::Buffered),
            Arc::new(power_cut),
        )
        .expect("a power cut may lose unsynced commits but recovery yields a prefix");
        let state = common::dump(&db);
        assert!(
            state.is_empty() || state == vec![common::kv("a", "1")],
            "{state:?}"
        );
    }

    /// The same with `Durability::Sync`: a commit whose sync failed (outcome
    /// unknown) is written but not durable; after a kill and a reopen, a
    /// power cut must still leave every acknowledged commit readable.
    #[test]
    fn sync_failed_commit_kill_reopen_then_power_cut_keeps_acked_commits() {
        let mem = MemVfs::new();
        let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
        let db = Db::open_with_vfs(
            common::MEM_DB_PATH,
            common::options(Durability::Sync),
            Arc::new(fault),
        )
        .unwrap();
        let mut t = db.begin();
        t.put(b"acked", b"1").unwrap();
        t.commit().unwrap();
        config.fail_syncs_now();
        let mut t = db.begin();
        t.put(b"unknown", b"1").unwrap();
        assert!(matches!(t.commit(), Err(Error::Io(_))));
        let killed = mem.process_crash();
        drop(db);

        let db = common::open_mem(&killed, Durability::Sync);
        assert_eq!(db.begin_read().get(b"acked").unwrap(), Some(b"1".to_vec()));
        let power_cut = killed.crash();
        drop(db);

        let db = Db::open_with_vfs(
            common::MEM_DB_PATH,
            common::options(Durability::Sync),
            Arc::new(power_cut),
        )
        .expect("every acknowledged commit survives a power cut");
        assert_eq!(db.begin_read().get(b"acked").unwrap(), Some(b"1".to_vec()));
    }
    /// Shrunk from `model_buffered` (flush): a power cut takes the only
    /// records of segment 2, whose successor then starts at the same lsn.
    /// Deleting "wholly flushed" segments must not take segment 1 while
    /// nothing is in tables (recovery needs the log to start at segment 1),
    /// and after a flush the log whose newest segment holds no record
    /// still reaches the flushed lsn through that segment's chain.
    #[test]
    fn buffered_power_cut_leaves_an_empty_segment_then_reopens_and_flushes() {
        let commit = |db: &Db| {
            let mut t = db.begin();
            t.put(b"a", b"").unwrap();
            t.commit().unwrap();
        };
        for flush in [false, true] {
            let vfs = MemVfs::new();
            let db = common::open_mem(&vfs, Durability::Buffered);
            commit(&db);
            db.close().unwrap();
            let db = common::open_mem(&vfs, Durability::Buffered);
            commit(&db);
            let cut = vfs.crash();
            drop(db);
            let db = common::open_mem(&cut, Durability::Buffered);
            if flush {
                db.flush().unwrap();
            }
            db.close().unwrap();
            for _ in 0..2 {
                let db = common::open_mem(&cut, Durability::Buffered);
                assert_eq!(
                    common::dump(&db),
                    vec![common::kv("a", "")],
                    "flush {flush}"
                );
                db.close().unwrap();
            }
        }
    }
}
