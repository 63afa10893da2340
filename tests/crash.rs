//! Crash-point enumeration: a scripted workload runs on `MemVfs` with
//! `Durability::Sync` behind a probing file system that counts `sync_data`
//! and `sync_dir` calls. For sync number `n` it keeps crash images right
//! before and right after that sync is applied; the workload is rerun for
//! every `n` until a run has fewer syncs. Durable state changes only at
//! `sync_data` and `sync_dir`, so these images are every state a power cut
//! can leave. (Cutting at `sync_data` alone is not enough: two directory
//! syncs in a row, as installing `CURRENT` and then creating `tables/`,
//! have a durable state between them that no `sync_data` precedes.)
//!
//! Each image is taken twice: as a power cut leaves it (`MemVfs::crash`,
//! synced bytes only) and as a SIGKILL leaves it (`MemVfs::process_crash`,
//! every written byte, nothing more durable than before).
//!
//! Each image must recover to: every commit acknowledged before the image
//! was taken, no transaction partly visible, a prefix of each thread's
//! commits (commit order = log order), at most one in-flight commit per
//! thread beyond the acknowledged ones, and a database that takes new
//! commits, flushes them and recovers them again. A second power cut right
//! after that recovery, another after a new commit and another after its
//! flush must recover too (recovery must not build on replayed bytes, or
//! directories, that are not durable).
//!
//! The single-threaded workload runs with WAL preallocation off, with chunks
//! smaller than a segment, and with the default chunk. Two more write
//! tables between commits: one flushes, one also compacts (background
//! merges of level 0, waited for after each flush, and `Db::compact`), so
//! every sync of a flush and of a compaction is a crash point too; after
//! each recovery (once the background work due is done) the tables
//! directory must hold exactly the tables the database lists, no orphan.
//!
//! One more takes checkpoints (`Db::checkpoint` every 5 commits, two of
//! them right after `Db::compact`), so every sync of a checkpoint is a
//! crash point as well. In each image, before the database is recovered,
//! every checkpoint whose call had returned must open with exactly the
//! commits before it and the ts it returned (its files, names and
//! directories all durable), and the one cut short must be refused
//! (`Corruption`, or a missing file) or open as a prefix of those commits,
//! never panic; then the database must recover as if there were no
//! checkpoints. What the cut-short ones did is counted and printed: a
//! power cut or a kill before the copy's first table is durable leaves a
//! directory that opens as an empty database; once a table is there and
//! until `CURRENT` is installed, the open is refused (`CURRENT is missing,
//! but table ... exists`); after that it opens with everything.
//!
//! Every run starts from an empty file system, so the images also cover a
//! brand-new database: `MemVfs` keeps a new directory's name only once its
//! parent is synced, so an open that did not make `/db` and `/db/wal`
//! durable loses the first acknowledged commits (this test failed so before
//! `vfs::create_dir_durable`).
//!
//! With several threads the schedule is explicit, so that group commit
//! batches (a `MemVfs` sync is instant: without this, no run shares one):
//! each `sync_data` of the workload is held until every committer with work
//! left is inside `commit` with its commit enqueued (`Stats::last_lsn` counts
//! the enqueued commits). At the first held sync nothing is published yet, so
//! the commits that are not in the batch being synced all wait in the pending
//! batch, which the next leader takes whole: every run has a batch of several
//! commits, deterministically, and `run` asserts it. Which later batches form
//! still varies from run to run (one batch may be applied while the next is
//! synced), as do the interleavings the enumeration sees. No timing decides
//! any of this; a timeout only turns a hang into a failure.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::{FileHooks, HookedFile, HookedVfs, VfsHooks};
use strata::vfs::{MemVfs, Vfs, VfsFile};
use strata::{Db, Durability, Error, Options, Stats};

const DB: &str = "/db";
/// Only turns a hang into a failure; never decides what a test checks.
const HANG_GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The probing file system.
// ---------------------------------------------------------------------------

/// Crash images and the transactions acknowledged before they were taken.
#[derive(Debug)]
struct Image {
    power_cut: MemVfs,
    killed: MemVfs,
    acked: Vec<bool>,
    /// Transactions acknowledged once both images were taken. A sync of a
    /// background thread (flusher, compactor) is not held, so the workload
    /// goes on while the images are taken: each commit acknowledged
    /// meanwhile may be in them too.
    acked_by_then: usize,
    /// Which sync it was taken at: `<thread>/<file kind>` (see [`ProbeFile`]).
    sync: String,
    /// The ts each checkpoint that had returned by then returned, in order
    /// (checkpoint `n` is [`checkpoint_dir`]`(n)`).
    checkpoints: Vec<u64>,
    /// The checkpoint under way (called, not returned), if any.
    checkpoint_cut: Option<usize>,
}

#[derive(Debug)]
struct Probe {
    /// The sync (1-based) at which to take the images.
    target: u64,
    syncs: AtomicU64,
    /// `acked[id]` is set once transaction `id`'s commit has returned `Ok`.
    acked: Vec<AtomicBool>,
    /// `commit_ts[id]`: the ts transaction `id`'s commit returned.
    commit_ts: Vec<AtomicU64>,
    /// Checkpoints called so far.
    checkpoints_started: AtomicUsize,
    /// `checkpoint_ts[n]`: the ts checkpoint `n` returned (0: not yet).
    checkpoint_ts: Vec<AtomicU64>,
    /// Set while the workload's thread is inside `Db::checkpoint`.
    in_checkpoint: AtomicBool,
    /// `MANIFEST-*` files created in [`DB`] (see [`Run::manifests_created`]).
    manifests_created: AtomicU64,
    before: OnceLock<Image>,
    after: OnceLock<Image>,
    /// Where a `sync_data` asks to be released (see [`Event`]). Unset: syncs
    /// are not held (one thread, or still opening); once the receiver is
    /// dropped (the workload is over) they are not held either.
    gate: OnceLock<mpsc::Sender<Event>>,
}

/// What the controlling test thread hears from the workload.
#[derive(Debug)]
enum Event {
    /// A `sync_data` is held until the test sends on this channel.
    Sync(mpsc::Sender<()>),
    /// A committer thread is done (or panicked).
    Done,
}

/// Sends [`Event::Done`] when dropped, also when the thread panics.
#[derive(Debug)]
struct DoneOnDrop(mpsc::Sender<Event>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Event::Done);
    }
}

impl Probe {
    /// Holds the calling sync until the controlling thread releases it.
    fn hold(&self) -> io::Result<()> {
        let Some(gate) = self.gate.get() else {
            return Ok(());
        };
        let (release, released) = mpsc::channel();
        if gate.send(Event::Sync(release)).is_err() {
            return Ok(()); // the workload is over
        }
        match released.recv_timeout(HANG_GUARD) {
            // Disconnected: the controller is gone (done, or it panicked).
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(io::Error::other("test: sync never released"))
            }
        }
    }

    /// Runs sync `n` (`sync`), keeping the images right before and right
    /// after it if it is the target.
    fn at_sync(
        &self,
        n: u64,
        mem: &MemVfs,
        what: String,
        sync: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        if n != self.target {
            return sync();
        }
        let before = self.image(mem, what.clone());
        assert!(self.before.set(before).is_ok(), "sync {n} seen twice");
        sync()?;
        let after = self.image(mem, what);
        assert!(self.after.set(after).is_ok(), "sync {n} seen twice");
        Ok(())
    }

    fn image(&self, mem: &MemVfs, sync: String) -> Image {
        // Read the acknowledgements first: whatever was acknowledged before
        // this point was durable before the image is taken.
        let acked = self
            .acked
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .collect();
        // A checkpoint's ts is stored right after it returned, before the
        // workload goes on: one without a ts was called and is under way.
        let started = self.checkpoints_started.load(Ordering::SeqCst);
        let checkpoints: Vec<u64> = self.checkpoint_ts[..started]
            .iter()
            .map(|t| t.load(Ordering::SeqCst))
            .take_while(|&t| t != 0)
            .collect();
        let checkpoint_cut = (checkpoints.len() < started).then_some(checkpoints.len());
        let power_cut = mem.crash();
        let killed = mem.process_crash();
        let acked_by_then = self
            .acked
            .iter()
            .filter(|a| a.load(Ordering::SeqCst))
            .count();
        Image {
            power_cut,
            killed,
            acked,
            acked_by_then,
            sync,
            checkpoints,
            checkpoint_cut,
        }
    }

    /// Whose sync it is: the flusher's, the compactor's, a checkpoint's
    /// (`Db::checkpoint` on the workload's thread), or the caller's (a
    /// committer, `Db::open`, or `Db::compact`'s merge).
    fn owner(&self) -> &'static str {
        match std::thread::current().name() {
            Some("strata-flush") => "flusher",
            Some("strata-compact") => "compactor",
            _ if self.in_checkpoint.load(Ordering::SeqCst) => "checkpoint",
            _ => "caller",
        }
    }
}

/// The probing file system's hooks: every sync (of a file or a directory)
/// goes through [`Probe::at_sync`].
#[derive(Debug)]
struct ProbeVfs {
    mem: MemVfs,
    probe: Arc<Probe>,
}

#[derive(Debug)]
struct ProbeFile {
    mem: MemVfs,
    probe: Arc<Probe>,
    /// `wal`, `table`, `manifest`, `current` or `other`, from its name.
    kind: &'static str,
}

impl ProbeFile {
    fn new(vfs: &ProbeVfs, path: &Path) -> ProbeFile {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ext = path.extension().and_then(|e| e.to_str());
        let kind = if ext == Some("wal") {
            "wal"
        } else if ext == Some("sst") {
            "table"
        } else if name.starts_with("MANIFEST") {
            "manifest"
        } else if name.starts_with("CURRENT") {
            "current"
        } else {
            "other"
        };
        ProbeFile {
            mem: vfs.mem.clone(),
            probe: vfs.probe.clone(),
            kind,
        }
    }

    /// `<owner>/<kind>` (see [`Probe::owner`]).
    fn describe(&self) -> String {
        format!("{}/{}", self.probe.owner(), self.kind)
    }
}

impl FileHooks for ProbeFile {
    fn sync_data(&mut self, inner: &mut dyn VfsFile) -> io::Result<()> {
        let n = self.probe.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        self.probe.hold()?;
        let what = self.describe();
        self.probe.at_sync(n, &self.mem, what, || inner.sync_data())
    }
}

impl VfsHooks for ProbeVfs {
    fn open_write(&self, inner: &dyn Vfs, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("MANIFEST-")
            && path.parent() == Some(Path::new(DB))
            && !inner.list(Path::new(DB))?.iter().any(|n| n == name)
        {
            self.probe.manifests_created.fetch_add(1, Ordering::SeqCst);
        }
        inner.open_write(path)
    }

    /// No directory exists, as far as the engine can tell (the trait's
    /// default): `vfs::create_dir_durable` then syncs the parent of every
    /// directory on the path, each sync one more crash point.
    fn dir_exists(&self, _: &dyn Vfs, _: &Path) -> io::Result<bool> {
        Ok(false)
    }

    fn file(&self, path: &Path, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        HookedFile::boxed(file, ProbeFile::new(self, path))
    }

    fn sync_dir(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        // Not held (with several threads only the commit path's syncs are).
        let n = self.probe.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let what = format!("{}/dir", self.probe.owner());
        self.probe
            .at_sync(n, &self.mem, what, || inner.sync_dir(path))
    }
}

// ---------------------------------------------------------------------------
// The workload.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Workload {
    threads: usize,
    per_thread: usize,
    /// `Options::wal_preallocate_bytes`.
    preallocate: u64,
    /// `Db::flush` after every this many transactions of a thread (its
    /// syncs then happen at fixed points of the workload).
    flush_every: Option<usize>,
    /// `Db::compact` after every this many transactions of a thread.
    compact_every: Option<usize>,
    /// `Db::wait_for_compactions` after each flush: a background
    /// compaction a flush made due then runs at a fixed point too.
    settle_after_flush: bool,
    /// `Db::checkpoint` into [`checkpoint_dir`]`(n)` after every this many
    /// transactions (after the flush and compaction due there, if any);
    /// one thread only.
    checkpoint_every: Option<usize>,
    /// The size of every value the transactions write.
    value_bytes: usize,
    /// `Options::memory_budget`, if not the default.
    memory_budget: Option<u64>,
    /// `Options::manifest_rotate_bytes`, if not the default (4 MiB, which
    /// no workload here reaches).
    manifest_rotate_bytes: Option<u64>,
    /// `Options::txn_limit_bytes`, if not the default.
    txn_limit_bytes: Option<u64>,
    /// The first this many transactions run once, before the enumeration,
    /// and the database is closed: every run starts from a copy of that
    /// file system ([`start`]), and only the syncs after it are crash
    /// points. One thread, no checkpoints.
    prefix: usize,
}

impl Workload {
    const PLAIN: Workload = Workload {
        threads: 1,
        per_thread: 30,
        preallocate: 0,
        flush_every: None,
        compact_every: None,
        settle_after_flush: false,
        checkpoint_every: None,
        value_bytes: 160,
        memory_budget: None,
        manifest_rotate_bytes: None,
        txn_limit_bytes: None,
        prefix: 0,
    };

    /// Whether the workload writes tables (so that recovery reads some
    /// commits from them instead of replaying their WAL records).
    fn writes_tables(self) -> bool {
        self.flush_every.is_some() || self.compact_every.is_some()
    }

    fn total(self) -> usize {
        self.threads * self.per_thread
    }

    fn id(self, thread: usize, i: usize) -> usize {
        thread * self.per_thread + i
    }

    /// How many transactions checkpoint `n` must hold: all those before it.
    fn checkpoint_commits(self, n: usize) -> usize {
        self.checkpoint_every.map_or(0, |k| (n + 1) * k)
    }
}

/// Where the workload's checkpoint `n` goes (beside the database).
fn checkpoint_dir(n: usize) -> String {
    format!("/ckpt-{n}")
}

/// Small segments, so that the runs cross several segment rolls.
fn options(w: Workload) -> Options {
    let mut options = Options::default()
        .durability(Durability::Sync)
        .wal_segment_bytes(4096)
        .wal_preallocate_bytes(w.preallocate);
    if let Some(bytes) = w.memory_budget {
        options = options.memory_budget(bytes);
    }
    if let Some(bytes) = w.manifest_rotate_bytes {
        options = options.manifest_rotate_bytes(bytes);
    }
    if let Some(bytes) = w.txn_limit_bytes {
        options = options.txn_limit_bytes(bytes);
    }
    options
}

/// Transaction `i` of `thread` writes `t{thread}-{i}-a`, on even `i` also
/// `-b`, and `last-t{thread}`, all with a value naming the transaction.
fn txn_keys(thread: usize, i: usize) -> Vec<String> {
    let mut keys = vec![format!("t{thread}-{i:03}-a")];
    if i.is_multiple_of(2) {
        keys.push(format!("t{thread}-{i:03}-b"));
    }
    keys.push(format!("last-t{thread}"));
    keys
}

fn txn_value(w: Workload, thread: usize, i: usize) -> Vec<u8> {
    let mut v = format!("txn t{thread}-{i:03}|").into_bytes();
    v.resize(w.value_bytes, b'.');
    v
}

fn parse_value(v: &[u8]) -> (usize, usize) {
    let s = std::str::from_utf8(v).unwrap();
    let name = s
        .strip_prefix("txn t")
        .and_then(|s| s.split('|').next())
        .unwrap();
    let (t, i) = name.split_once('-').unwrap();
    (t.parse().unwrap(), i.parse().unwrap())
}

/// Where a committer thread is (see [`hold_until_all_enqueued`]).
const RUNNING: u8 = 0;
const IN_COMMIT: u8 = 1;
const DONE: u8 = 2;

/// The controlling thread of a multi-threaded run: releases each held sync
/// once every committer with work left is inside `commit` and every commit
/// begun so far is enqueued (the enqueued ones are pending behind the held
/// sync, so they share the next one). Returns after every committer is done.
fn hold_until_all_enqueued(
    db: &Db,
    events: &mpsc::Receiver<Event>,
    phases: &[AtomicU8],
    begun: &AtomicU64,
    first_lsn: u64,
) {
    let mut done = 0;
    while done < phases.len() {
        let event = events
            .recv_timeout(HANG_GUARD)
            .expect("test: the workload made no progress");
        let release = match event {
            Event::Done => {
                done += 1;
                continue;
            }
            Event::Sync(release) => release,
        };
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            // In this order: a commit is counted in `begun` before its thread
            // is `IN_COMMIT` and before it is enqueued, so `enqueued == begun`
            // read after the phases means that every commit begun by then is
            // enqueued.
            let waiting = phases.iter().all(|p| p.load(Ordering::SeqCst) != RUNNING);
            let enqueued = db.stats().last_lsn - first_lsn;
            if waiting && enqueued == begun.load(Ordering::SeqCst) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "test: committers never all enqueued"
            );
            std::thread::yield_now();
        }
        let _ = release.send(());
    }
}

/// What one run of a workload did.
#[derive(Debug)]
struct Run {
    /// The images taken at the target sync, `None` if the run had fewer
    /// syncs; the third item says whether group commit batched: fewer
    /// commit-path syncs than commits (with several threads the held syncs
    /// make every run batch, which [`run`] asserts).
    images: Option<(Image, Image, bool)>,
    /// The database's stats at the end of the workload (before its close).
    stats: Stats,
    /// `MANIFEST-*` files created in the database's directory: its first
    /// manifest and one per rotation.
    manifests_created: u64,
    /// The file system after the database's close.
    fs: MemVfs,
}

/// The file system every run of `w` starts from: an empty one, or one
/// holding `w.prefix` transactions of the workload, closed cleanly.
fn start(w: Workload) -> MemVfs {
    if w.prefix == 0 {
        return MemVfs::new();
    }
    assert!(w.threads == 1 && w.checkpoint_every.is_none(), "{w:?}");
    let prefix = Workload {
        per_thread: w.prefix,
        prefix: 0,
        ..w
    };
    run(prefix, &MemVfs::new(), u64::MAX).fs
}

/// Runs the workload from (a copy of) `start` with images taken at sync
/// `target`.
fn run(w: Workload, start: &MemVfs, target: u64) -> Run {
    // A copy of every file and directory: `start` is cleanly closed.
    let mem = start.crash();
    let (events_tx, events) = mpsc::channel();
    let probe = Arc::new(Probe {
        target,
        syncs: AtomicU64::new(0),
        acked: (0..w.total())
            .map(|id| AtomicBool::new(id < w.prefix))
            .collect(),
        commit_ts: (0..w.total()).map(|_| AtomicU64::new(0)).collect(),
        checkpoints_started: AtomicUsize::new(0),
        checkpoint_ts: (0..w.total()).map(|_| AtomicU64::new(0)).collect(),
        in_checkpoint: AtomicBool::new(false),
        manifests_created: AtomicU64::new(0),
        before: OnceLock::new(),
        after: OnceLock::new(),
        gate: OnceLock::new(),
    });
    let hooks = ProbeVfs {
        mem: mem.clone(),
        probe: probe.clone(),
    };
    let vfs = HookedVfs::new(Arc::new(mem.clone()), hooks);
    let db = Db::open_with_vfs(DB, options(w), Arc::new(vfs)).unwrap();
    let first_lsn = db.stats().last_lsn;
    let held = w.threads > 1;
    if held {
        // Only the workload's syncs are held, not those of open or close.
        probe.gate.set(events_tx.clone()).unwrap();
    }
    let phases: Vec<AtomicU8> = (0..w.threads).map(|_| AtomicU8::new(RUNNING)).collect();
    let begun = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (thread, phase) in phases.iter().enumerate() {
            let (db, probe, begun) = (&db, &probe, &begun);
            let done = DoneOnDrop(events_tx.clone());
            s.spawn(move || {
                let _done = done;
                for i in w.prefix..w.per_thread {
                    let mut txn = db.begin();
                    let value = txn_value(w, thread, i);
                    for k in txn_keys(thread, i) {
                        txn.put(k.as_bytes(), &value).unwrap();
                    }
                    begun.fetch_add(1, Ordering::SeqCst);
                    phase.store(IN_COMMIT, Ordering::SeqCst);
                    let ts = txn.commit().unwrap();
                    probe.commit_ts[w.id(thread, i)].store(ts.get(), Ordering::SeqCst);
                    probe.acked[w.id(thread, i)].store(true, Ordering::SeqCst);
                    let every = |k: Option<usize>| k.is_some_and(|k| (i + 1).is_multiple_of(k));
                    if every(w.flush_every) {
                        db.flush().unwrap();
                        if w.settle_after_flush {
                            db.wait_for_compactions().unwrap();
                        }
                    }
                    if every(w.compact_every) {
                        db.compact().unwrap();
                    }
                    if every(w.checkpoint_every) {
                        let n = probe.checkpoints_started.fetch_add(1, Ordering::SeqCst);
                        probe.in_checkpoint.store(true, Ordering::SeqCst);
                        let ts = db.checkpoint(checkpoint_dir(n)).unwrap();
                        probe.in_checkpoint.store(false, Ordering::SeqCst);
                        // One thread, nothing in flight: exactly every commit so far.
                        let latest = probe.commit_ts[w.id(thread, i)].load(Ordering::SeqCst);
                        assert_eq!(ts.get(), latest, "checkpoint {n}: not the latest commit");
                        probe.checkpoint_ts[n].store(ts.get(), Ordering::SeqCst);
                    }
                    let next = if i + 1 == w.per_thread { DONE } else { RUNNING };
                    phase.store(next, Ordering::SeqCst);
                }
            });
        }
        if held {
            hold_until_all_enqueued(&db, &events, &phases, &begun, first_lsn);
        }
    });
    drop(events); // close's syncs are not held
    let stats = db.stats();
    let batched = stats.wal_syncs < stats.commits;
    if held {
        assert!(
            batched,
            "sync {target}: {} syncs for {} commits, none shared",
            stats.wal_syncs, stats.commits
        );
    }
    db.close().unwrap();
    let probe = Arc::try_unwrap(probe).unwrap();
    let manifests_created = probe.manifests_created.into_inner();
    let images = match (probe.before.into_inner(), probe.after.into_inner()) {
        (Some(before), Some(after)) => Some((before, after, batched)),
        (None, None) => None,
        _ => panic!("sync {target}: only one image"),
    };
    Run {
        images,
        stats,
        manifests_created,
        fs: mem,
    }
}

/// Checks the recovered state of `db`, with at most `max_unacked`
/// transactions found that were not acknowledged (those in flight when a
/// crash image was taken); returns the number of workload transactions
/// found.
fn verify_with(w: Workload, db: &Db, acked: &[bool], max_unacked: usize, label: &str) -> usize {
    let r = db.begin_read();
    // thread -> i -> keys seen
    let mut seen: BTreeMap<usize, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    let mut last: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for item in r.scan::<&[u8], _>(..).unwrap() {
        let (key, value) = item.unwrap();
        if key.starts_with(b"after-crash") {
            continue;
        }
        let key = String::from_utf8(key).unwrap();
        let (thread, i) = parse_value(&value);
        if let Some(owner) = key.strip_prefix("last-t") {
            assert_eq!(owner.parse::<usize>().unwrap(), thread, "{label}: {key}");
            last.insert(thread, (thread, i));
        } else {
            let holds = format!("t{thread}-{i:03}-");
            assert!(key.starts_with(&holds), "{label}: {key} holds txn {holds}");
            seen.entry(thread)
                .or_default()
                .entry(i)
                .or_default()
                .push(key);
        }
    }
    drop(r);

    let mut found = 0;
    let mut unacked_found = 0;
    for thread in 0..w.threads {
        let txns = seen.remove(&thread).unwrap_or_default();
        let m = txns.len();
        // A prefix of the thread's commits, each in full.
        for (pos, (i, keys)) in txns.iter().enumerate() {
            assert_eq!(*i, pos, "{label}: thread {thread} has a gap before txn {i}");
            let mut expected = txn_keys(thread, *i);
            expected.pop(); // the shared `last-t` key is checked below
            assert_eq!(keys, &expected, "{label}: txn t{thread}-{i} partly visible");
        }
        let expected_last = m.checked_sub(1).map(|i| (thread, i));
        assert_eq!(
            last.get(&thread).copied(),
            expected_last,
            "{label}: last-t{thread}"
        );
        // Every acknowledged commit survived.
        for i in 0..w.per_thread {
            if acked[w.id(thread, i)] {
                assert!(i < m, "{label}: acknowledged txn t{thread}-{i} lost");
            } else if i < m {
                unacked_found += 1;
            }
        }
        found += m;
    }
    assert!(seen.is_empty(), "{label}: unknown threads {seen:?}");
    assert!(
        unacked_found <= max_unacked,
        "{label}: {unacked_found} unacknowledged commits but only {max_unacked} in flight at most",
    );
    found
}

fn open(w: Workload, fs: &MemVfs, label: &str) -> Db {
    Db::open_with_vfs(DB, options(w), Arc::new(fs.clone()))
        .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"))
}

/// Once the background work due at open is done, the tables directory
/// holds exactly the tables the database lists: the open removed every
/// orphan a crash left (a flush's or compaction's output whose edit was
/// lost, an input whose deletion was), and nothing it lists is missing.
fn assert_no_orphans(db: &Db, fs: &MemVfs, label: &str) {
    assert_no_orphans_in(db, fs, DB, label);
}

/// [`assert_no_orphans`] for the database in `dir`; also, that the open
/// removed every manifest but the live one (a rotation cut short leaves
/// two) and `CURRENT.tmp`.
fn assert_no_orphans_in(db: &Db, fs: &MemVfs, dir: &str, label: &str) {
    db.wait_for_compactions().unwrap();
    let names = fs.list(Path::new(dir)).unwrap();
    let leftovers: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("MANIFEST-") || *n == "CURRENT.tmp")
        .collect();
    assert!(leftovers.len() <= 1, "{label}: {leftovers:?}");
    let files = fs.list(&Path::new(dir).join("tables")).map_or(0, |names| {
        names
            .iter()
            .filter(|n| Path::new(n).extension().is_some_and(|e| e == "sst"))
            .count()
    });
    let stats = db.stats();
    assert_eq!(
        files as u64, stats.tables,
        "{label}: table files: {stats:?}"
    );
    assert_eq!(stats.obsolete_tables, 0, "{label}");
}

/// Recovers `fs` (a crash image) and checks it, then checks power cuts
/// after that recovery; returns the number of transactions first found.
fn check(w: Workload, fs: &MemVfs, acked: &[bool], in_flight: usize, label: &str) -> usize {
    let verify =
        |w, db: &Db, acked: &[bool], label: &str| verify_with(w, db, acked, in_flight, label);
    let db = open(w, fs, label);
    let found = verify(w, &db, acked, label);
    // Without flushes every transaction found was replayed from the WAL;
    // with them, the flushed ones are read from tables instead.
    let replayed = |db: &Db| db.stats().recovered_records;
    if w.writes_tables() {
        assert!(replayed(&db) <= found as u64, "{label}");
    } else {
        assert_eq!(replayed(&db), found as u64, "{label}");
    }
    let cut_after_recovery = fs.crash();
    assert_no_orphans(&db, fs, label);

    // The recovered database takes new commits, flushes them, and recovers
    // them again.
    let mut txn = db.begin();
    txn.put(b"after-crash", label.as_bytes()).unwrap();
    txn.commit().unwrap();
    let cut_after_commit = fs.crash();
    db.flush()
        .unwrap_or_else(|e| panic!("{label}: the recovered database cannot flush: {e}"));
    let cut_after_flush = fs.crash();
    db.close().unwrap();
    let what = format!("{label}, reopened");
    let db = open(w, fs, &what);
    assert_eq!(replayed(&db), 0, "{what}: everything is in tables");
    assert_eq!(verify(w, &db, acked, &what), found, "{what}");
    assert_no_orphans(&db, fs, &what);
    assert_eq!(
        db.begin_read().get(b"after-crash").unwrap(),
        Some(label.as_bytes().to_vec()),
        "{what}"
    );
    drop(db);

    let what = format!("{label}, power cut right after recovery");
    let db = open(w, &cut_after_recovery, &what);
    let again = verify(w, &db, acked, &what);
    assert!(again <= found, "{what}: {again} > {found}");
    assert_no_orphans(&db, &cut_after_recovery, &what);
    drop(db);

    // The new commit was acknowledged (Sync) and chained after everything
    // recovery replayed: all of it must survive, before and after the flush.
    for (cut, when) in [
        (&cut_after_commit, ""),
        (&cut_after_flush, " and its flush"),
    ] {
        let what = format!("{label}, power cut after a new commit{when}");
        let db = open(w, cut, &what);
        assert_eq!(verify(w, &db, acked, &what), found, "{what}");
        assert_no_orphans(&db, cut, &what);
        assert_eq!(
            db.begin_read().get(b"after-crash").unwrap(),
            Some(label.as_bytes().to_vec()),
            "{what}"
        );
    }
    found
}

/// Opens the checkpoints in crash image `fs` (taken as `image` says),
/// before the database itself is recovered from it (so that whatever
/// opening them does, the database must not mind):
/// - every checkpoint whose `Db::checkpoint` had returned opens and holds
///   exactly the transactions committed before it was called (all of them
///   acknowledged, none after), has the ts that call returned, and lists
///   exactly the tables in its `tables/`: a power cut must not take any of
///   its files, names or directories;
/// - the checkpoint under way, if any, is refused with `Corruption` or a
///   missing file, or opens as a prefix of the commits before it; how, is
///   counted in `outcomes` under `<how the image was taken>: <outcome>`.
fn check_checkpoints(
    w: Workload,
    (fs, how): (&MemVfs, &str),
    image: &Image,
    label: &str,
    outcomes: &mut BTreeMap<String, usize>,
) {
    let open_at = |dir: &str| Db::open_with_vfs(dir, options(w), Arc::new(fs.clone()));
    for (n, &ts) in image.checkpoints.iter().enumerate() {
        let (dir, label) = (checkpoint_dir(n), format!("{label}, checkpoint {n}"));
        let db = open_at(&dir).unwrap_or_else(|e| panic!("{label}: it does not open: {e}"));
        let k = w.checkpoint_commits(n);
        let acked: Vec<bool> = (0..w.total()).map(|id| id < k).collect();
        let found = verify_with(w, &db, &acked, 0, &label);
        assert_eq!(found, k, "{label}: transactions");
        assert_eq!(db.stats().read_ts.get(), ts, "{label}: its ts");
        assert_no_orphans_in(&db, fs, &dir, &label);
        db.close().unwrap();
    }
    let Some(n) = image.checkpoint_cut else {
        return;
    };
    let (dir, label) = (
        checkpoint_dir(n),
        format!("{label}, checkpoint {n} cut short"),
    );
    let outcome = if fs.dir_exists(Path::new(&dir)).unwrap() {
        match open_at(&dir) {
            Err(Error::Corruption { .. }) => "refused: corruption".to_owned(),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                "refused: a file not found".to_owned()
            }
            Err(e) => panic!("{label}: opening it fails with {e:?}, not a clear error"),
            Ok(db) => {
                let k = w.checkpoint_commits(n);
                let found = verify_with(w, &db, &vec![false; w.total()], k, &label);
                db.close().unwrap();
                let held = match found {
                    0 => "nothing".to_owned(),
                    f if f == k => "everything".to_owned(),
                    f => format!("{f} of {k}"),
                };
                format!("opened, holding {held}")
            }
        }
    } else {
        "no directory".to_owned()
    };
    *outcomes.entry(format!("{how}: {outcome}")).or_default() += 1;
}

/// What enumerating the sync points of a workload saw.
#[derive(Debug, Default)]
struct Enumerated {
    /// Crash images checked (each recovered, then cut again three times).
    images: usize,
    /// Whether any run batched.
    batched: bool,
    /// The kinds of sync the images were taken at ([`ProbeFile::describe`],
    /// `<thread>/dir` for a directory sync).
    syncs: BTreeSet<String>,
    /// How each checkpoint cut short opened ([`check_checkpoints`]).
    cut_short: BTreeMap<String, usize>,
    /// Images by the state of a manifest rotation in them
    /// ([`rotation_step`]), as `<how the image was taken>: <step>`.
    rotation: BTreeMap<String, usize>,
}

/// Enumerates every sync point of `w`. In each image, the checkpoints are
/// opened first (see [`check_checkpoints`]), then the database is
/// recovered from it ([`check`]).
fn enumerate(w: Workload) -> Enumerated {
    let start = start(w);
    let mut seen = Enumerated::default();
    let mut max_found = 0;
    for target in 1.. {
        // With several threads the number of syncs varies from run to run
        // (group commit batches differently): retry before concluding.
        let Some((before, after, batched)) = (0..5).find_map(|_| run(w, &start, target).images)
        else {
            break;
        };
        seen.batched |= batched;
        seen.syncs.insert(before.sync.clone());
        for (image, when) in [(&before, "before"), (&after, "after")] {
            let acked = image.acked.iter().filter(|&&a| a).count();
            // In flight: one per thread, plus every commit acknowledged
            // while the images were taken (an unheld background sync).
            let in_flight = w.threads + image.acked_by_then.saturating_sub(acked);
            for (fs, how) in [(&image.power_cut, "power cut"), (&image.killed, "kill")] {
                let label = format!(
                    "{} thread(s), {how} {when} sync {target} ({})",
                    w.threads, image.sync
                );
                if let Some(step) = rotation_step(fs) {
                    *seen.rotation.entry(format!("{how}: {step}")).or_default() += 1;
                }
                check_checkpoints(w, (fs, how), image, &label, &mut seen.cut_short);
                let found = check(w, fs, &image.acked, in_flight, &label);
                if w.threads == 1 {
                    // One thread: the acknowledged commits, plus those in
                    // flight whose bytes survived.
                    assert!(
                        (acked..=acked + in_flight).contains(&found),
                        "{label}: {found} vs {acked} acked, {in_flight} in flight"
                    );
                }
                max_found = max_found.max(found);
                seen.images += 1;
            }
        }
    }
    assert!(seen.images > 0);
    if w.threads == 1 {
        assert_eq!(
            max_found,
            w.total(),
            "the last images hold the whole workload"
        );
    }
    seen
}

/// Where a manifest rotation (writer rule 5: the new manifest written and
/// synced, its name synced, `CURRENT.tmp` written and synced, renamed over
/// `CURRENT`, the directory synced, the old manifest removed) stands in
/// crash image `fs`, before recovery; `None` if no rotation has begun.
fn rotation_step(fs: &MemVfs) -> Option<&'static str> {
    let names = fs.list(Path::new(DB)).ok()?;
    let manifests: BTreeSet<u64> = names
        .iter()
        .filter_map(|n| n.strip_prefix("MANIFEST-")?.parse().ok())
        .collect();
    // `CURRENT` is "MANIFEST-<number:020>\n<crc>\n".
    let current = fs.read_all(&Path::new(DB).join("CURRENT")).ok()?;
    let live: u64 = std::str::from_utf8(current.get(9..29)?)
        .ok()?
        .parse()
        .ok()?;
    let tmp = names.iter().any(|n| n == "CURRENT.tmp");
    let (&oldest, &newest) = (manifests.first()?, manifests.last()?);
    Some(match (oldest == newest, live == oldest, tmp) {
        (false, true, false) => "a new manifest beside the live one",
        (false, true, true) => "a new manifest and CURRENT.tmp beside the live one",
        (false, false, _) => "CURRENT names the new manifest, the old one not yet removed",
        (true, _, _) if live > 1 => "a rotated manifest alone",
        (true, _, _) => return None,
    })
}

#[test]
fn every_sync_point_of_a_single_threaded_workload() {
    // Without preallocation; with chunks smaller than a segment (groups
    // keep passing the preallocated end); with the default (the whole
    // 4 KiB segment is zero-filled at creation).
    for preallocate in [0, 512, strata::DEFAULT_WAL_PREALLOCATE_BYTES] {
        let w = Workload {
            preallocate,
            ..Workload::PLAIN
        };
        let Enumerated {
            images, batched, ..
        } = enumerate(w);
        assert!(!batched, "one thread cannot share a sync");
        println!("single thread, preallocate {preallocate}: {images} crash images checked");
        // At least one sync per commit; before and after each; two kinds.
        assert!(images >= 4 * w.total(), "only {images} images");
    }
}

#[test]
fn every_sync_point_of_a_three_threaded_workload() {
    let w = Workload {
        threads: 3,
        per_thread: 10,
        preallocate: strata::DEFAULT_WAL_PREALLOCATE_BYTES,
        ..Workload::PLAIN
    };
    let mut images = 0;
    let mut batched = false;
    // The interleaving differs from run to run: a few passes see more of them.
    for _ in 0..3 {
        let seen = enumerate(w);
        images += seen.images;
        batched |= seen.batched;
    }
    println!("three threads: {images} crash images checked");
    assert!(images > 0);
    assert!(batched, "no run shared a sync between commits");
}

#[test]
fn every_sync_point_of_a_workload_that_flushes() {
    // A flush after every 7th commit: table, its directory, the manifest's
    // creation (CURRENT.tmp, rename, directory) and edits all land between
    // commits, and every image must still hold every acknowledged commit;
    // reopening it reads the tables and replays the WAL above the flushed
    // lsn (and removes the table of a flush cut before its edit).
    let w = Workload {
        flush_every: Some(7),
        ..Workload::PLAIN
    };
    let Enumerated {
        images, batched, ..
    } = enumerate(w);
    assert!(!batched);
    println!("single thread with flushes: {images} crash images checked");
    assert!(images >= 4 * w.total(), "only {images} images");
}

#[test]
fn every_sync_point_of_a_workload_that_compacts() {
    // A flush after every 2nd commit, each followed by waiting for the
    // background compactor: every 4th table makes level 0 due, and the
    // compactor merges it into level 1 (at first as the bottom, later above
    // the table a full compaction left in the bottom level, whose key range
    // it overlaps). A full compaction (`Db::compact`) after every 10th
    // commit. So every sync of a compaction (its output table, the
    // manifest edit swapping outputs for inputs; the directory sync lands
    // between them) is a crash point at a fixed place of the workload, and
    // each image must hold every acknowledged commit and, once reopened,
    // no orphan (an output whose edit was lost, an input whose deletion
    // was). The manifest rotates past 1 KiB, at some of these edits, so
    // that every step of a rotation (the new manifest and its name synced,
    // `CURRENT.tmp` synced, renamed over `CURRENT`, the directory synced,
    // the old manifest removed) lies between crash points; each image must
    // recover, and the open remove the manifest `CURRENT` does not name.
    // (Moves and merges below level 1 are
    // `every_sync_point_of_a_workload_that_moves_and_merges_below_level_1`'s.)
    let w = Workload {
        flush_every: Some(2),
        compact_every: Some(10),
        settle_after_flush: true,
        manifest_rotate_bytes: Some(1024),
        ..Workload::PLAIN
    };
    let reference = run(w, &start(w), u64::MAX);
    // Four rotations: the first manifest and four more.
    assert!(
        reference.manifests_created >= 5,
        "only {} manifests",
        reference.manifests_created
    );
    let stats = reference.stats;
    // Three background merges of level 0 and three full compactions.
    assert_eq!(stats.compactions, 6, "{stats:?}");
    assert_eq!(stats.flushes, 15, "{stats:?}");
    let Enumerated {
        images,
        batched,
        syncs,
        rotation,
        ..
    } = enumerate(w);
    assert!(!batched);
    println!(
        "single thread with flushes, compactions and manifest rotations: {images} crash \
         images checked at {syncs:?}; rotation steps: {rotation:?}"
    );
    // A sync per commit, and two per flush and per compaction at least.
    let at_least = w.total() + 2 * (15 + 6);
    assert!(images >= 4 * at_least, "only {images} images");
    // Crash points inside both kinds of compaction: the background merges'
    // (on the compactor's thread) and `Db::compact`'s (the caller's).
    for sync in [
        "compactor/table",
        "compactor/manifest",
        "caller/table",
        "caller/manifest",
    ] {
        assert!(syncs.contains(sync), "no crash point at {sync}: {syncs:?}");
    }
    // Images inside every step of a rotation. A power cut keeps the old
    // manifest until the directory is synced again (the removal is not
    // synced), a kill only until it is removed.
    for step in [
        "power cut: a new manifest beside the live one",
        "power cut: CURRENT names the new manifest, the old one not yet removed",
        "kill: a new manifest beside the live one",
        "kill: a new manifest and CURRENT.tmp beside the live one",
        "kill: CURRENT names the new manifest, the old one not yet removed",
        "kill: a rotated manifest alone",
    ] {
        assert!(
            rotation.contains_key(step),
            "no image at {step}: {rotation:?}"
        );
    }
}

#[test]
fn every_sync_point_of_a_workload_that_takes_checkpoints() {
    // A flush after every 6th commit, a full compaction after every 10th
    // and a checkpoint after every 5th: the one after commit 5 copies a
    // database that never flushed (its WAL only, no manifest), the one
    // after 15 links the flushed tables and copies the WAL tail above them
    // (commits 13 to 15), those after 10 and 20 come right after
    // `Db::compact` (its new tables linked, the WAL copied only up to the
    // flushed lsn).
    // Every sync of a checkpoint (each table's copy, each WAL segment's, the
    // copy's recovery, its manifest, `CURRENT`, and each directory) is a
    // crash point: the database must recover from every image as without
    // checkpoints, every checkpoint that returned before the image must
    // open with exactly its commits, and the one cut short must open as a
    // prefix or be refused clearly (`check_checkpoints`).
    let w = Workload {
        per_thread: 20,
        flush_every: Some(6),
        compact_every: Some(10),
        settle_after_flush: true,
        checkpoint_every: Some(5),
        ..Workload::PLAIN
    };
    let Enumerated {
        images,
        batched,
        syncs,
        cut_short,
        ..
    } = enumerate(w);
    assert!(!batched);
    println!(
        "single thread with checkpoints: {images} crash images checked at {syncs:?}; \
         checkpoints cut short: {cut_short:?}"
    );
    // Crash points inside a checkpoint: each kind of file it writes.
    for sync in [
        "checkpoint/table",
        "checkpoint/wal",
        "checkpoint/manifest",
        "checkpoint/current",
        "checkpoint/dir",
    ] {
        assert!(syncs.contains(sync), "no crash point at {sync}: {syncs:?}");
    }
    // Both a checkpoint refused and one opened (a power cut before its
    // names are durable, or a kill before its tables are copied) were seen.
    assert!(
        cut_short.keys().any(|k| k.ends_with("refused: corruption")),
        "{cut_short:?}"
    );
    assert!(
        cut_short.keys().any(|k| k.contains("opened")),
        "{cut_short:?}"
    );
}

#[test]
fn every_sync_point_of_a_workload_that_moves_and_merges_below_level_1() {
    // Large values (32 KiB) and the smallest memory budget: tables of about
    // 64 KiB, level 1 due past about 256 KiB, every commit flushed (and the
    // compactions it makes due waited for), so that every fourth flush
    // merges level 0 into level 1 and overfills it. The first 7 commits run
    // once: the first level-0 merge moves level 1's first table (the
    // versions of `last-t0`, the smallest key) to level 2, and 3 tables
    // wait in level 0. The enumeration starts by reopening that database,
    // which restarts the compactor's round robin at the first key: the 8th
    // commit's level-0 merge overfills level 1 again, and its first table
    // (the newer versions of `last-t0`) merges into level 2 with the one
    // there; the tables after it overlap nothing in level 2 and move down.
    // So every sync of a move and of a merge from level 1 into level 2 is
    // a crash point (and of a rotation by the compactor: the manifest
    // rotates past 1 KiB).
    let w = Workload {
        per_thread: 8,
        value_bytes: 32 << 10,
        flush_every: Some(1),
        settle_after_flush: true,
        memory_budget: Some(strata::MIN_MEMORY_BUDGET),
        // Three 32 KiB values in one transaction, past the smallest
        // budget's quarter (decision 0024): the layout above needs tables
        // this large against level 1's target.
        txn_limit_bytes: Some(128 << 10),
        manifest_rotate_bytes: Some(1024),
        prefix: 7,
        ..Workload::PLAIN
    };
    let first = run(
        Workload {
            per_thread: w.prefix,
            prefix: 0,
            ..w
        },
        &MemVfs::new(),
        u64::MAX,
    )
    .stats;
    assert!(first.compaction_moves >= 1, "{first:?}");
    assert_eq!(first.tables_per_level.first(), Some(&3), "{first:?}");
    assert!(first.tables_per_level.get(2) >= Some(&1), "{first:?}");
    // The enumerated part (stats count from its open): one flush, which
    // makes level 0 due once; every other merge is from level 1, into
    // level 2 (nothing reaches level 3).
    let rest = run(w, &start(w), u64::MAX).stats;
    assert_eq!(rest.flushes, 1, "{rest:?}");
    assert!(rest.compactions >= 2, "no merge from level 1: {rest:?}");
    assert!(rest.compaction_moves >= 1, "no move: {rest:?}");
    assert_eq!(rest.tables_per_level.len(), 3, "{rest:?}");

    let Enumerated {
        images,
        batched,
        syncs,
        ..
    } = enumerate(w);
    assert!(!batched);
    println!(
        "single thread with moves and merges below level 1: {images} crash images checked \
         at {syncs:?}"
    );
    for sync in ["compactor/table", "compactor/manifest", "compactor/current"] {
        assert!(syncs.contains(sync), "no crash point at {sync}: {syncs:?}");
    }
}
