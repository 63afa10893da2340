//! Regression (2026-12-01), found by the model test's small-budget variant
//! (`tests/model.rs`): after `Db::wait_for_compactions` returned with no
//! snapshot open, `Stats::obsolete_tables` was 3 and the tables directory
//! held the files of three tables a compaction had removed.
//!
//! The flusher's loop was `while let Some(m) = views.current().imm.last()
//! .cloned() { flush_one(m) ... }`. A temporary in a `while let` scrutinee
//! lives until the end of the loop body, so the flusher held the view it
//! took *before* each flush for the whole flush and past it (the WAL
//! segment deletions, the wake-ups). A compaction that finished meanwhile
//! marked its inputs obsolete, but that stale view still listed them: their
//! files stayed until the flusher's next iteration, and
//! `wait_for_compactions` (a finished job has dropped its inputs and deleted
//! their files) could return before. A background thread is no snapshot:
//! it must not pin tables past the moment it reads the view.
//!
//! The test makes the window explicit: two frozen memtables are flushed one
//! after the other, and the second flush is held in the WAL segment
//! deletion that ends it (with the manifest released, so the compaction the
//! first flush woke can finish meanwhile); while it is held, the tables the
//! compaction removed must be gone.
//!
//! Fixed in `flush::step` by taking the oldest frozen memtable in a `let`
//! statement, so that the view is dropped at once.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::{HookedVfs, VfsHooks};
use strata::vfs::{MemVfs, Vfs, VfsFile};
use strata::{Db, Durability};

/// Only turns a hang into a failure; never decides what the test checks.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Over a `MemVfs`: holds the flusher thread's removal of the paths in
/// `held_removes` (WAL segment deletions at the end of a flush), each until
/// the test counts one more release, and, while `hold_compactor` is set,
/// the compactor thread's creation of a table.
#[derive(Debug)]
struct HoldPoints {
    held_removes: OnceLock<Vec<PathBuf>>,
    /// Told each time a removal is held.
    holding: mpsc::Sender<()>,
    holds: AtomicU64,
    releases: AtomicU64,
    hold_compactor: AtomicBool,
    /// Set when the test ends (also by a failing assertion): nothing is
    /// held any more.
    done: AtomicBool,
}

type HoldVfs = HookedVfs<HoldPoints>;

impl HoldPoints {
    fn wait_until(&self, released: impl Fn() -> bool) -> io::Result<()> {
        let deadline = Instant::now() + HANG_GUARD;
        while !released() && !self.done.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return Err(io::Error::other("test: never released"));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// Ends every hold when dropped.
struct Done(Arc<HoldVfs>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.hooks.done.store(true, Ordering::SeqCst);
    }
}

fn on_thread(name: &str) -> bool {
    std::thread::current().name() == Some(name)
}

impl VfsHooks for HoldPoints {
    fn open_write(&self, inner: &dyn Vfs, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        if on_thread("strata-compact") {
            self.wait_until(|| !self.hold_compactor.load(Ordering::SeqCst))?;
        }
        inner.open_write(path)
    }
    fn remove(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        let held = self
            .held_removes
            .get()
            .is_some_and(|p| p.iter().any(|p| p == path));
        if held && on_thread("strata-flush") {
            let n = self.holds.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = self.holding.send(());
            self.wait_until(|| self.releases.load(Ordering::SeqCst) >= n)?;
        }
        inner.remove(path)
    }
}

fn table_files(vfs: &MemVfs) -> u64 {
    vfs.list(&Path::new(common::MEM_DB_PATH).join("tables"))
        .unwrap()
        .iter()
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "sst"))
        .count() as u64
}

fn segment(no: u64) -> PathBuf {
    Path::new(common::MEM_DB_PATH)
        .join("wal")
        .join(format!("{no:020}.wal"))
}

/// Commits one version of `key` large enough to fill the memtable of the
/// smallest budget: it is frozen at once, and the flusher woken. Larger
/// than a WAL segment too: commit `n` (from 1) is alone in segment `n`,
/// which the flush of commit `n + 1` deletes.
///
/// A transaction may write one memtable's worth and no more (decision
/// 0024), counted as the memtable counts: the value is cut by what the
/// refusal of a 16 KiB one says is too much, so the commit fills the
/// memtable exactly.
///
/// Every commit also writes key `0`, so that the level-0 tables' ranges
/// overlap and a compaction merges them: disjoint ones would be moved
/// (decision 0033), which removes no table.
fn commit_big(db: &Db, key: &[u8]) {
    let mut t = db.begin();
    t.put(b"0", key).unwrap();
    let over = match t.put(key, &[b'.'; 16 * 1024]) {
        Err(strata::Error::TxnTooLarge { len, max }) => len - max,
        other => panic!("a 16 KiB value fits in no memtable of this budget: {other:?}"),
    };
    t.put(key, &vec![b'.'; 16 * 1024 - over]).unwrap();
    t.commit().unwrap();
}

#[test]
fn a_flush_does_not_pin_the_tables_a_compaction_removes_meanwhile() {
    let mem = MemVfs::new();
    let (holding, held) = mpsc::channel();
    let hooks = HoldPoints {
        held_removes: OnceLock::new(),
        holding,
        holds: AtomicU64::new(0),
        releases: AtomicU64::new(0),
        hold_compactor: AtomicBool::new(false),
        done: AtomicBool::new(false),
    };
    let vfs = Arc::new(HookedVfs::new(Arc::new(mem.clone()), hooks));
    let options = common::options(Durability::Sync)
        .memory_budget(strata::MIN_MEMORY_BUDGET)
        .wal_segment_bytes(4096);
    let db = Db::open_with_vfs(common::MEM_DB_PATH, options, vfs.clone()).unwrap();
    // Bound after `db`, so that a failing assertion drops it first: a held
    // thread is let go instead of waiting for `HANG_GUARD` while `db`
    // closes.
    let _done = Done(vfs.clone());
    let release = || vfs.hooks.releases.fetch_add(1, Ordering::SeqCst);
    // Three tables in level 0 (a, b, c): one short of the trigger.
    for key in [b"a", b"b", b"c"] {
        commit_big(&db, key);
        db.flush().unwrap();
    }
    assert_eq!(db.stats().tables_per_level, vec![3]);

    // From here the compactor waits before writing its output, and the
    // flushes of d and e are held at their ends (deleting segments 3, 4).
    vfs.hooks.hold_compactor.store(true, Ordering::SeqCst);
    vfs.hooks
        .held_removes
        .set(vec![segment(3), segment(4)])
        .unwrap();
    let wait_held = || {
        held.recv_timeout(HANG_GUARD)
            .expect("the flusher never deleted the WAL segment");
    };
    commit_big(&db, b"d");
    wait_held();
    // While the flush of d is held, e's memtable is frozen; released, the
    // flush of d wakes the compactor (level 0 is due), and the flusher
    // reads the view for e: level 0 holds a to d, no compaction installed.
    commit_big(&db, b"e");
    release();
    wait_held();
    // The flush of e is installed and held at its end, with the manifest
    // released: the compaction (a to d, and e if it picked after e's
    // install) runs to its end now.
    vfs.hooks.hold_compactor.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + HANG_GUARD;
    while db.stats().compactions == 0 {
        assert!(Instant::now() < deadline, "test: the compaction never ran");
        std::thread::yield_now();
    }
    let stats = db.stats();
    assert_eq!(
        stats.obsolete_tables, 0,
        "no snapshot is open, but the compacted-away tables are pinned: {stats:?}"
    );
    assert_eq!(table_files(&mem), stats.tables, "{stats:?}");

    release();
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    assert_eq!(stats.obsolete_tables, 0, "{stats:?}");
    assert_eq!(table_files(&mem), stats.tables, "{stats:?}");
    let keys: Vec<Vec<u8>> = common::dump(&db).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [b"0", b"a", b"b", b"c", b"d", b"e"].map(|k| k.to_vec())
    );
    assert_eq!(db.get(b"0").unwrap().as_deref(), Some(&b"e"[..]));
    db.close().unwrap();
}
