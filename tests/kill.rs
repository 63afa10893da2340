//! SIGKILL test with a real child process.
//!
//! The parent test re-executes this test binary filtered to [`kill_child`]
//! with `STRATA_KILL_DIR` set. The child opens the database (`Durability::Sync`)
//! and commits from 4 threads, printing `ACK <name>` on its stdout pipe after
//! each commit has returned. The parent reads the pipe and kills the child
//! with SIGKILL as soon as it has read the 300th acknowledgement (no fixed
//! wait decides when), reopens the database and checks that every
//! acknowledged transaction is there in full, and that no transaction is
//! partly visible. Three rounds run on the same directory, each child
//! recovering what the last one left.
//!
//! The database runs with the smallest memory budget, so the child flushes
//! a memtable every few dozen commits and the background compactor merges
//! level 0 every few flushes, and one committer calls `Db::compact` every
//! [`COMPACT_EVERY`] commits: the kill may land anywhere in those too.
//! After each reopen (once the background work due is done) the tables
//! directory holds exactly the tables the database lists, no orphan.
//!
//! The child has no deadline of its own: it stops when a write to its stdout
//! fails, which happens once the parent is gone (the pipe is closed). A long
//! timeout in the parent only turns a child that stops acknowledging into a
//! failure.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata::{Db, Durability, Options, Stats};

const DIR_ENV: &str = "STRATA_KILL_DIR";
const ROUND_ENV: &str = "STRATA_KILL_ROUND";
const CHILD_TEST: &str = "kill_child";
const THREADS: usize = 4;
const ROUNDS: usize = 3;
const ACKS_BEFORE_KILL: usize = 300;
/// Thread 0 of the child runs a full compaction after every this many of
/// its commits.
const COMPACT_EVERY: u64 = 25;
/// Only turns a hang into a failure: the longest the parent waits for the
/// next acknowledgement.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options::default()
        .durability(Durability::Sync)
        .memory_budget(strata::MIN_MEMORY_BUDGET)
}

/// The value both keys of transaction `name` hold.
fn value_of(name: &str) -> Vec<u8> {
    let mut v = format!("value of {name}:").into_bytes();
    v.resize(64, b'#');
    v
}

/// The child: commits until killed. Without `STRATA_KILL_DIR` it returns at once.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let round: usize = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, options()).unwrap();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let db = &db;
            s.spawn(move || {
                let mut n = 0u64;
                loop {
                    let name = format!("r{round}-t{thread}-{n}");
                    let value = value_of(&name);
                    let mut txn = db.begin();
                    txn.put(format!("{name}-a").as_bytes(), &value).unwrap();
                    txn.put(format!("{name}-b").as_bytes(), &value).unwrap();
                    txn.commit().unwrap();
                    if thread == 0 && (n + 1).is_multiple_of(COMPACT_EVERY) {
                        db.compact().unwrap();
                    }
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "ACK {name}")
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        // The parent is gone (it is not reading any more).
                        return;
                    }
                    n += 1;
                }
            });
        }
    });
}

/// The name in an `ACK <name>` line. The harness prints `test kill_child ... `
/// without a newline before the test runs, so the first one shares its line.
fn ack_name(line: &str) -> Option<&str> {
    line.find("ACK ").map(|at| &line[at + 4..])
}

/// Runs one child round; returns the names it acknowledged.
fn run_child(dir: &Path, round: usize) -> BTreeSet<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let mut acked = BTreeSet::new();
    let mut early_exit = false;
    std::thread::scope(|s| {
        s.spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut hung = false;
        let mut twice = Vec::new();
        while acked.len() < ACKS_BEFORE_KILL {
            match rx.recv_timeout(HANG_GUARD) {
                Ok(line) => {
                    // No assertion before the kill: a panic here would leave
                    // the child running and this scope waiting for its pipe.
                    if let Some(name) = ack_name(&line)
                        && !acked.insert(name.to_owned())
                    {
                        twice.push(name.to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    early_exit = true;
                    break;
                }
            }
        }
        let before_kill = acked.len();
        child.kill().unwrap(); // SIGKILL on Unix
        // Lines printed before the kill are acknowledgements too.
        for line in &rx {
            if let Some(name) = ack_name(&line) {
                acked.insert(name.to_owned());
            }
        }
        assert!(
            !hung,
            "round {round}: no acknowledgement for {HANG_GUARD:?} after {before_kill}"
        );
        assert!(
            twice.is_empty(),
            "round {round}: acknowledged twice: {twice:?}"
        );
    });
    let status = child.wait().unwrap();
    assert!(
        !early_exit,
        "round {round}: child exited on its own: {status}"
    );
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "round {round}: only {} acknowledgements",
        acked.len()
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: child ended with {status}"
        );
    }
    assert!(!status.success(), "round {round}: child exited cleanly");
    acked
}

/// Table files in the database's tables directory.
fn table_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("tables")).map_or(0, |entries| {
        entries
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sst"))
            })
            .count() as u64
    })
}

/// Reopens the database and checks it against every acknowledged name;
/// returns the number of transactions found and the database's stats.
fn verify(dir: &Path, acked: &BTreeSet<String>, round: usize) -> (usize, Stats) {
    let db =
        Db::open(dir, options()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    // What the child's flushes and compactions left: the open removed the
    // orphans (outputs whose edit the kill cut, inputs not yet deleted).
    let recovered = db.stats().recovered_records;
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    assert_eq!(
        table_files(dir),
        stats.tables,
        "round {round}: table files: {stats:?}"
    );
    let r = db.begin_read();
    let mut found: BTreeMap<String, Vec<char>> = BTreeMap::new();
    for item in r.scan::<&[u8], _>(..).unwrap() {
        let (k, v) = item.unwrap();
        let k = String::from_utf8(k).unwrap();
        let (name, part) = k.rsplit_once('-').unwrap();
        assert_eq!(v, value_of(name), "round {round}: wrong value under {k}");
        found
            .entry(name.to_owned())
            .or_default()
            .push(part.chars().next().unwrap());
    }
    for (name, parts) in &found {
        assert_eq!(
            parts,
            &['a', 'b'],
            "round {round}: {name} is partly visible"
        );
    }
    let lost: Vec<&String> = acked.iter().filter(|n| !found.contains_key(*n)).collect();
    assert!(
        lost.is_empty(),
        "round {round}: {} acknowledged transactions lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // Per thread and round, what survived is a prefix of what was committed.
    let mut per_thread: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for name in found.keys() {
        let (prefix, n) = name.rsplit_once('-').unwrap();
        per_thread
            .entry(prefix)
            .or_default()
            .push(n.parse().unwrap());
    }
    for (prefix, mut ns) in per_thread {
        ns.sort_unstable();
        let expected: Vec<u64> = (0..ns.len() as u64).collect();
        assert_eq!(ns, expected, "round {round}: {prefix} has gaps");
    }
    // The flushed transactions are read from tables, the rest replayed.
    assert!(recovered <= found.len() as u64, "round {round}");
    (found.len(), stats)
}

#[test]
fn sigkill_during_commits_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeSet::new();
    let mut last = None;
    for round in 0..ROUNDS {
        let started = Instant::now();
        let this_round = run_child(dir.path(), round);
        let n = this_round.len();
        acked.extend(this_round);
        let (found, stats) = verify(dir.path(), &acked, round);
        println!(
            "round {round}: {n} acks, {found} transactions recovered in total ({} acked), \
             tables per level {:?}, {:?}",
            acked.len(),
            stats.tables_per_level,
            started.elapsed()
        );
        last = Some(stats);
    }
    // The children compacted (thread 0 alone runs `Db::compact` after its
    // 25th commit, of some 900 acknowledged): tables are below level 0.
    let stats = last.unwrap();
    assert!(
        stats.tables_per_level.iter().skip(1).any(|&n| n > 0),
        "no compacted table: {stats:?}"
    );
}
