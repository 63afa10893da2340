//! The background sync of a Buffered WAL (issue 14, item 11): a thread
//! syncs the log every `Options::buffered_sync_interval`, so that a power
//! cut cannot take a commit that a finished background sync covered;
//! committers never sync (`Stats::wal_syncs` stays 0), and a failed
//! background sync poisons the database without failing any commit that
//! was acknowledged.
//!
//! No test depends on timing: each waits for the event it needs (a
//! background sync covering its commits, seen in `Stats`), with a limit
//! that only turns a hang into a failure.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(
    clippy::disallowed_types,
    reason = "test scaffolding outside the crate, not under its loom seam"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::vfs::{FaultVfs, MemVfs};
use strata::{Db, Durability, Error, Options};

const HANG: Duration = Duration::from_secs(60);

fn options(interval: Duration) -> Options {
    Options::default()
        .durability(Durability::Buffered)
        .wal_preallocate_bytes(64 * 1024)
        .buffered_sync_interval(interval)
}

fn commit(db: &Db, i: usize) -> strata::Result<()> {
    let mut t = db.begin();
    t.put(format!("k{i:04}").as_bytes(), format!("v{i}").as_bytes())?;
    t.commit().map(|_| ())
}

/// Opens `/db` on `mem` with the given background sync interval.
fn open(mem: &MemVfs, interval: Duration) -> Db {
    Db::open_with_vfs("/db", options(interval), Arc::new(mem.clone())).unwrap()
}

fn count(db: &Db) -> usize {
    db.begin_read()
        .scan(b"k".as_slice()..b"l".as_slice())
        .unwrap()
        .count()
}

/// Waits until a background sync covers every record written so far.
fn wait_until_synced(db: &Db) {
    let target = db.stats().last_lsn;
    let started = Instant::now();
    while db.stats().wal_synced_lsn < target {
        assert!(
            started.elapsed() < HANG,
            "no background sync: {:?}",
            db.stats()
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_power_cut_keeps_what_a_background_sync_covered() {
    let mem = MemVfs::new();
    let db = open(&mem, Duration::from_millis(1));
    for i in 0..50 {
        commit(&db, i).unwrap();
    }
    wait_until_synced(&db);
    let stats = db.stats();
    assert_eq!(stats.wal_syncs, 0, "no committer synced: {stats:?}");
    assert!(stats.wal_background_syncs >= 1);
    let after_cut = mem.crash();
    drop(db);
    let db = open(&after_cut, Duration::ZERO);
    assert_eq!(
        count(&db),
        50,
        "every commit a background sync covered survives"
    );
}

/// What the background sync is for: without it (interval zero), nothing
/// syncs a Buffered log but a roll, `Db::sync` or `close`, and a power cut
/// takes every commit since.
#[test]
fn without_the_background_sync_a_power_cut_takes_the_unsynced_commits() {
    let mem = MemVfs::new();
    let db = open(&mem, Duration::ZERO);
    for i in 0..50 {
        commit(&db, i).unwrap();
    }
    assert_eq!(db.stats().wal_background_syncs, 0);
    assert_eq!(db.stats().wal_synced_lsn, 0);
    let after_cut = mem.crash();
    drop(db);
    let db = open(&after_cut, Duration::ZERO);
    assert_eq!(count(&db), 0);
}

#[test]
fn a_failed_background_sync_poisons_without_failing_an_acknowledged_commit() {
    let mem = MemVfs::new();
    let (vfs, faults) = FaultVfs::new(Arc::new(mem.clone()));
    let db = Db::open_with_vfs("/db", options(Duration::from_millis(1)), Arc::new(vfs)).unwrap();
    commit(&db, 0).unwrap();
    wait_until_synced(&db);
    faults.fail_syncs_now();
    let started = Instant::now();
    let mut acked = 1;
    let err = loop {
        assert!(started.elapsed() < HANG, "the failed sync never poisoned");
        match commit(&db, acked) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
    };
    // A commit whose write returned is acknowledged (Buffered); the first
    // refused one was never written.
    assert!(matches!(err, Error::Poisoned), "{err:?}");
    assert_eq!(count(&db), acked, "reads see every acknowledged commit");
    assert!(matches!(db.sync(), Err(Error::Poisoned)));
    let killed = mem.process_crash();
    drop(db);
    let db = open(&killed, Duration::ZERO);
    assert_eq!(
        count(&db),
        acked,
        "a process crash loses nothing acknowledged"
    );
    db.close().unwrap();
}

#[test]
fn close_stops_the_background_sync_and_syncs_everything() {
    let mem = MemVfs::new();
    let db = open(&mem, Duration::from_millis(1));
    let clone = db.clone();
    for i in 0..20 {
        commit(&db, i).unwrap();
    }
    db.close().unwrap();
    assert!(matches!(commit(&clone, 99), Err(Error::Closed)));
    drop(clone);
    let db = open(&mem.crash(), Duration::ZERO);
    assert_eq!(count(&db), 20);
}

/// Found in review: a panic in the background sync (in the VFS's sync, say)
/// killed its thread silently, and the database went on acknowledging
/// Buffered commits with no bound on what a power cut takes. It poisons
/// the database now, as a failed sync does.
#[test]
fn a_panic_in_the_background_sync_poisons() {
    let vfs = common::slow_sync_vfs(MemVfs::new(), Duration::ZERO);
    let panics = vfs.hooks.panic_syncs.clone();
    let db = Db::open_with_vfs("/db", options(Duration::from_millis(1)), Arc::new(vfs)).unwrap();
    commit(&db, 0).unwrap();
    wait_until_synced(&db);
    panics.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let mut acked = 1;
    let err = loop {
        assert!(started.elapsed() < HANG, "the panic never poisoned");
        match commit(&db, acked) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Poisoned), "{err:?}");
    assert_eq!(count(&db), acked, "reads keep working");
    panics.store(false, std::sync::atomic::Ordering::SeqCst);
    db.close().unwrap_err();
}

/// Hooks under which every `sync_data` of a WAL segment (through either
/// handle) blocks while the gate is shut.
#[derive(Debug, Clone, Default)]
struct WalSyncGate {
    /// Shut, and the syncs held at it.
    state: Arc<(std::sync::Mutex<(bool, usize)>, std::sync::Condvar)>,
}

impl WalSyncGate {
    fn set_shut(&self, shut: bool) {
        self.state.0.lock().unwrap().0 = shut;
        self.state.1.notify_all();
    }

    /// Blocks until a sync is held at the shut gate (or `HANG` passes).
    fn wait_for_a_held_sync(&self) {
        let deadline = Instant::now() + HANG;
        let mut st = self.state.0.lock().unwrap();
        while st.1 == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "hung waiting for the flusher's WAL sync");
            st = self.state.1.wait_timeout(st, left).unwrap().0;
        }
    }
}

impl common::VfsHooks for WalSyncGate {
    fn file(
        &self,
        path: &std::path::Path,
        file: Box<dyn strata::vfs::VfsFile>,
    ) -> Box<dyn strata::vfs::VfsFile> {
        if path.extension().is_some_and(|e| e == "wal") {
            common::HookedFile::boxed(file, self.clone())
        } else {
            file
        }
    }
}

impl common::FileHooks for WalSyncGate {
    fn sync_data(&mut self, inner: &mut dyn strata::vfs::VfsFile) -> std::io::Result<()> {
        let (lock, cond) = &*self.state;
        let mut st = lock.lock().unwrap();
        if st.0 {
            st.1 += 1;
            cond.notify_all();
            while st.0 {
                st = cond.wait(st).unwrap();
            }
            st.1 -= 1;
        }
        drop(st);
        inner.sync_data()
    }
}

/// Opens the gate when dropped (a failed assertion must not leave the
/// flusher, and with it the close, blocked).
struct OpenOnDrop(WalSyncGate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_shut(false);
    }
}

/// A flush in Buffered mode makes its memtable's WAL records durable
/// before the manifest names its table, through the WAL's second handle:
/// while that `fdatasync` runs, commits go on. Before decision 0029 the
/// flush led a sync through the write stage, and every commit waited
/// behind it (this test then hangs at the first commit below).
#[test]
fn a_flush_syncs_the_wal_beside_the_commits_not_in_front_of_them() {
    let mem = MemVfs::new();
    let gate = WalSyncGate::default();
    let vfs = common::HookedVfs::new(Arc::new(mem.clone()), gate.clone());
    let options = options(Duration::from_secs(3600)).memory_budget(strata::MIN_MEMORY_BUDGET);
    let db = Db::open_with_vfs("/db", options, Arc::new(vfs)).unwrap();
    let _open = OpenOnDrop(gate.clone());
    // The segment exists (its creation syncs) before the gate shuts.
    commit(&db, 0).unwrap();
    gate.set_shut(true);
    let mut i = 1;
    while db.stats().frozen_memtables == 0 && db.stats().flushes == 0 {
        commit(&db, i).unwrap();
        i += 1;
    }
    gate.wait_for_a_held_sync();
    let (tx, rx) = std::sync::mpsc::channel();
    let more = std::thread::scope(|s| {
        s.spawn(|| {
            for j in 0..10 {
                tx.send(commit(&db, i + j)).unwrap();
            }
        });
        let deadline = Instant::now() + HANG;
        let more: Vec<_> = (0..10)
            .map_while(|_| {
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            })
            .collect();
        gate.set_shut(false);
        more
    });
    assert!(
        more.len() == 10 && more.iter().all(Result::is_ok),
        "commits waited for the flush's WAL sync: {more:?}"
    );
    db.flush().unwrap();
    assert!(db.stats().flushes >= 1);
    assert_eq!(db.stats().wal_syncs, 0, "no committer synced");
    drop(db);
    let db = Db::open_with_vfs("/db", Options::default(), Arc::new(mem.crash())).unwrap();
    let read = db.begin_read();
    for k in 0..i + 10 {
        let key = format!("k{k:04}");
        assert!(read.get(key.as_bytes()).unwrap().is_some(), "{key} lost");
    }
}
