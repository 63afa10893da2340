//! Faults on the commit path: which commits a failed sync fails (exactly
//! those whose outcome is unknown), and panics in the VFS, which poison the
//! database and wake every committer instead of hanging it.
//!
//! Schedules are explicit: [`GatedVfs`] holds chosen `sync_data` calls until
//! the test releases them, and the test waits for commits to be enqueued by
//! watching `Stats::last_lsn`. Timeouts only turn a hang into a failure.

mod common;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{FileHooks, HookedFile, HookedVfs, VfsHooks};
use strata::vfs::{FaultVfs, MemVfs, Vfs, VfsFile};
use strata::{Db, Durability, Error, Options};

/// Buffered options without the background sync: its timer would take a
/// sync the test's gate meant for another caller.
fn buffered() -> Options {
    Options::default()
        .durability(Durability::Buffered)
        .buffered_sync_interval(Duration::ZERO)
}

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// What [`GatedVfs`] does to `sync_data` and `write_all_at` calls.
#[derive(Debug)]
struct Gate {
    /// The next this many `sync_data` calls block until released.
    block_syncs: AtomicU32,
    /// Blocked syncs so far.
    blocked: AtomicU32,
    /// The blocked sync (counted from 1) that panics once released; 0: none.
    panic_blocked: AtomicU32,
    /// Every `write_all_at` panics.
    panic_writes: AtomicBool,
    /// A blocked sync and the test meet here when it blocks...
    entered: Barrier,
    /// ...and here when the test releases it.
    released: Barrier,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            block_syncs: AtomicU32::new(0),
            blocked: AtomicU32::new(0),
            panic_blocked: AtomicU32::new(0),
            panic_writes: AtomicBool::new(false),
            entered: Barrier::new(2),
            released: Barrier::new(2),
        })
    }

    /// Returns once a blocked sync is waiting for [`Gate::release`].
    fn wait_blocked(&self) {
        self.entered.wait();
    }

    fn release(&self) {
        self.released.wait();
    }

    fn sync(&self) {
        let block = self
            .block_syncs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if block {
            let no = self.blocked.fetch_add(1, Ordering::SeqCst) + 1;
            self.entered.wait();
            self.released.wait();
            assert_ne!(
                no,
                self.panic_blocked.load(Ordering::SeqCst),
                "injected panic in sync_data"
            );
        }
    }
}

/// The hooks of a file system over another that runs every file's syncs
/// and positional writes through a [`Gate`].
#[derive(Debug)]
struct GatedVfs(Arc<Gate>);

#[derive(Debug)]
struct GatedFile(Arc<Gate>);

impl FileHooks for GatedFile {
    fn write_all_at(&mut self, inner: &mut dyn VfsFile, offset: u64, buf: &[u8]) -> io::Result<()> {
        assert!(
            !self.0.panic_writes.load(Ordering::SeqCst),
            "injected panic in write_all_at"
        );
        inner.write_all_at(offset, buf)
    }

    fn sync_data(&mut self, inner: &mut dyn VfsFile) -> io::Result<()> {
        self.0.sync();
        inner.sync_data()
    }
}

impl VfsHooks for GatedVfs {
    fn file(&self, _: &Path, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        HookedFile::boxed(file, GatedFile(self.0.clone()))
    }
}

fn gated(mem: &MemVfs, gate: &Arc<Gate>) -> Arc<dyn Vfs> {
    let hooks = GatedVfs(gate.clone());
    Arc::new(HookedVfs::new(Arc::new(mem.clone()), hooks))
}

fn put(db: &Db, key: &str) -> strata::Result<()> {
    let mut txn = db.begin();
    txn.put(key.as_bytes(), key.as_bytes())?;
    txn.commit().map(|_| ())
}

fn get(db: &Db, key: &str) -> Option<Vec<u8>> {
    db.begin_read()
        .get(key.as_bytes())
        .expect("reads never fail here")
}

/// Waits until `lsn` was handed out: the commits the test started are enqueued.
fn wait_for_lsn(db: &Db, lsn: u64) {
    let deadline = Instant::now() + HANG;
    while db.stats().last_lsn < lsn {
        assert!(Instant::now() < deadline, "commits never enqueued");
        thread::yield_now();
    }
}

/// The outcome of one committing thread: `None` if it panicked.
type Outcome = (String, Option<strata::Result<()>>);

/// Runs `f` on a detached thread (so that a hung one cannot hang the test
/// past its `recv_timeout`), sending its result to `tx`.
fn detach<T: Send + 'static>(tx: &mpsc::Sender<T>, f: impl FnOnce() -> T + Send + 'static) {
    let tx = tx.clone();
    thread::Builder::new()
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn a thread");
}

/// Commits `key` on a detached thread, sending its outcome to `tx`.
fn spawn_put(db: &Db, key: &str, tx: &mpsc::Sender<Outcome>) {
    let (db, key) = (db.clone(), key.to_owned());
    detach(tx, move || {
        let result = panic::catch_unwind(AssertUnwindSafe(|| put(&db, &key))).ok();
        (key, result)
    });
}

/// The outcomes of `n` threads, sorted by key; fails if one hangs.
fn outcomes(rx: &mpsc::Receiver<Outcome>, n: usize) -> Vec<Outcome> {
    let mut all: Vec<Outcome> = (0..n)
        .map(|_| rx.recv_timeout(HANG).expect("a committer hung"))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Closes `db` on another thread; fails if `close` hangs.
fn close_without_hanging(db: Db) -> strata::Result<()> {
    let (tx, rx) = mpsc::channel();
    detach(&tx, move || db.close());
    rx.recv_timeout(HANG).expect("close hung")
}

mod exact_failure_ranges {
    use super::*;

    /// Buffered: `Db::sync` leads a sync of what was written before it, and
    /// while that sync runs two commits are enqueued; the leader chains them
    /// into a second synced batch, whose write returns but whose sync fails.
    /// Those two commits were written, which is what Buffered acknowledges,
    /// so they return `Ok`, are visible, and after a process crash are
    /// recovered exactly once; the database is poisoned. Before failures had
    /// exact ranges they got `Io` (although recovered, so a retry would have
    /// applied them twice).
    #[test]
    fn buffered_commits_written_by_a_failing_sync_return_ok_and_recover_once() {
        let mem = MemVfs::new();
        let gate = Gate::new();
        let (vfs, faults) = FaultVfs::new(gated(&mem, &gate));
        let opts = buffered();
        let db = Db::open_with_vfs("/db", opts.clone(), Arc::new(vfs)).unwrap();
        put(&db, "a0").unwrap();

        gate.block_syncs.store(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let (sync_tx, sync_rx) = mpsc::channel();
        let syncer = db.clone();
        detach(&sync_tx, move || syncer.sync());
        {
            gate.wait_blocked();
            spawn_put(&db, "c1", &tx);
            spawn_put(&db, "c2", &tx);
            wait_for_lsn(&db, 3);
            // The blocked sync has passed the fault check; the next one fails.
            faults.fail_syncs_now();
            gate.release();
            let all = outcomes(&rx, 2);
            for (key, result) in &all {
                assert!(matches!(result, Some(Ok(()))), "{key}: {result:?}");
            }
        }
        let synced = sync_rx.recv_timeout(HANG).expect("Db::sync hung");
        // Its own records (up to `a0`) were synced by the sync that returned.
        assert!(synced.is_ok(), "{synced:?}");
        for key in ["a0", "c1", "c2"] {
            assert_eq!(get(&db, key).as_deref(), Some(key.as_bytes()), "{key}");
        }
        assert!(matches!(db.sync(), Err(Error::Poisoned)));
        assert!(matches!(put(&db, "later"), Err(Error::Poisoned)));

        let after = mem.process_crash();
        drop(db);
        let db = Db::open_with_vfs("/db", opts, Arc::new(after)).unwrap();
        assert_eq!(
            db.stats().recovered_records,
            3,
            "each commit recovered once"
        );
        for key in ["a0", "c1", "c2"] {
            assert_eq!(get(&db, key).as_deref(), Some(key.as_bytes()), "{key}");
        }
        assert_eq!(get(&db, "later"), None);
    }

    /// Buffered: a `Db::sync` whose own sync fails gets `Io`; the commits
    /// written before it keep their `Ok` and stay visible and recoverable.
    #[test]
    fn a_failing_db_sync_gets_io_and_spares_what_was_written_before() {
        let mem = MemVfs::new();
        let (vfs, faults) = FaultVfs::new(Arc::new(mem.clone()));
        let opts = buffered();
        let db = Db::open_with_vfs("/db", opts.clone(), Arc::new(vfs)).unwrap();
        put(&db, "a").unwrap();
        put(&db, "b").unwrap();
        faults.fail_syncs_now();
        assert!(matches!(db.sync(), Err(Error::Io(_))));
        assert!(matches!(put(&db, "c"), Err(Error::Poisoned)));
        assert_eq!(get(&db, "a").as_deref(), Some(&b"a"[..]));
        assert_eq!(get(&db, "b").as_deref(), Some(&b"b"[..]));

        let after = mem.process_crash();
        assert!(matches!(close_without_hanging(db), Err(Error::Poisoned)));
        let db = Db::open_with_vfs("/db", opts, Arc::new(after)).unwrap();
        assert_eq!(db.stats().recovered_records, 2);
    }
}

mod panics {
    use super::*;

    /// Sync mode. A leader syncs `l` (held at the gate) while `c1` and `c2`
    /// are enqueued; it chains them into a second batch and panics in that
    /// batch's sync, while `c3` waits behind it. The leader's thread unwinds;
    /// `c1` and `c2` (outcome unknown) get `Io`, `c3` (never written) gets
    /// `Poisoned`; the batch synced before the panic is still applied, so
    /// reads see `l`; later commits get `Poisoned` and `close` returns.
    #[test]
    fn a_panic_in_sync_data_poisons_and_wakes_every_committer() {
        let mem = MemVfs::new();
        let gate = Gate::new();
        let db = Db::open_with_vfs("/db", Options::default(), gated(&mem, &gate)).unwrap();
        put(&db, "before").unwrap();

        gate.block_syncs.store(2, Ordering::SeqCst);
        gate.panic_blocked.store(2, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let all = {
            spawn_put(&db, "l", &tx);
            gate.wait_blocked();
            spawn_put(&db, "c1", &tx);
            spawn_put(&db, "c2", &tx);
            wait_for_lsn(&db, 4);
            gate.release();
            gate.wait_blocked();
            spawn_put(&db, "c3", &tx);
            wait_for_lsn(&db, 5);
            gate.release();
            outcomes(&rx, 4)
        };
        let get_result = |key: &str| &all.iter().find(|(k, _)| k == key).unwrap().1;
        assert!(get_result("l").is_none(), "the leader's thread unwinds");
        for key in ["c1", "c2"] {
            match get_result(key) {
                Some(Err(Error::Io(e))) => assert!(e.to_string().contains("panicked"), "{e}"),
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(matches!(get_result("c3"), Some(Err(Error::Poisoned))));

        assert_eq!(get(&db, "before").as_deref(), Some(&b"before"[..]));
        assert_eq!(
            get(&db, "l").as_deref(),
            Some(&b"l"[..]),
            "synced before the panic"
        );
        assert!(matches!(put(&db, "after"), Err(Error::Poisoned)));
        assert!(matches!(db.sync(), Err(Error::Poisoned)));
        assert!(matches!(close_without_hanging(db), Err(Error::Poisoned)));

        let db = Db::open_with_vfs("/db", Options::default(), Arc::new(mem.process_crash()));
        let db = db.unwrap();
        assert_eq!(get(&db, "before").as_deref(), Some(&b"before"[..]));
        assert_eq!(get(&db, "l").as_deref(), Some(&b"l"[..]));
        assert_eq!(get(&db, "after"), None);
    }

    /// Buffered, several committers: the WAL write panics. Every committer
    /// returns (the ones whose thread led the write unwind), none of the
    /// commits is visible, earlier commits are, later commits get
    /// `Poisoned`, and `close` (then dropping the handle) returns.
    #[test]
    fn a_panic_in_write_all_at_poisons_and_never_hangs() {
        let mem = MemVfs::new();
        let gate = Gate::new();
        let opts = buffered();
        let db = Db::open_with_vfs("/db", opts, gated(&mem, &gate)).unwrap();
        put(&db, "before").unwrap();

        gate.panic_writes.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        for key in ["p1", "p2", "p3", "p4"] {
            spawn_put(&db, key, &tx);
        }
        let all = outcomes(&rx, 4);
        assert!(
            all.iter().any(|(_, r)| r.is_none()),
            "some leader panicked: {all:?}"
        );
        for (key, result) in &all {
            assert!(
                matches!(result, None | Some(Err(Error::Io(_) | Error::Poisoned))),
                "{key}: {result:?}"
            );
            assert_eq!(get(&db, key), None, "{key} was never written");
        }
        assert_eq!(get(&db, "before").as_deref(), Some(&b"before"[..]));
        assert!(matches!(put(&db, "after"), Err(Error::Poisoned)));
        assert!(matches!(
            close_without_hanging(db.clone()),
            Err(Error::Poisoned)
        ));
        drop(db);
    }
}
