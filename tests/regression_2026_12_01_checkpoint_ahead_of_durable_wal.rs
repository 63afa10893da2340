//! Regression (2026-12-01): a checkpoint could hold a commit its source
//! never made durable.
//!
//! `Db::checkpoint` copies the WAL tail from the live segment file and cuts
//! the copy after its last whole record. A group-commit leader writes a
//! batch and then syncs it; a checkpoint copying in between copied records
//! that were written but not yet synced, synced its own copy, and returned
//! a ts covering them. If the source's sync then failed, the commit got
//! `Io` (the database poisoned, the record never durable) while the
//! returned checkpoint held it; a power cut without any failure did the
//! same to a commit still in flight. Either way the source recovered
//! without a commit the checkpoint has: the checkpoint was not a state the
//! source ever durably reached, so the two diverge from that ts on (a
//! copy taken to seed a replica or a backup would disagree with its
//! source).
//!
//! Fixed in `src/checkpoint.rs`: after the copy is cut, the checkpoint
//! syncs the source's WAL (`sync_all`, which waits for a sync already in
//! flight) before it writes the copy's manifest, and fails if that sync
//! fails. A returned checkpoint therefore holds only records durable in the
//! source, which every later recovery of the source has.
//!
//! The schedule is explicit: the test VFS holds the source's WAL sync of
//! the commit until the checkpoint has synced its own copy of that segment,
//! and only then lets the held sync fail (or succeed); no timing decides
//! anything.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use common::{FileHooks, HookedFile, HookedVfs, MEM_DB_PATH, VfsHooks};
use strata::vfs::{MemVfs, VfsFile};
use strata::{Db, Durability, Error, Options};

const CHECKPOINT: &str = "/ckpt";
/// Only turns a hang into a failure.
const HANG: Duration = Duration::from_secs(60);

/// Holds the source's next WAL sync (once armed) until the checkpoint
/// syncs its copy of that segment; the held sync then fails if `fail`.
#[derive(Debug)]
struct Gate {
    armed: AtomicBool,
    fail: bool,
    /// Told when the held sync arrives (its batch is written by then).
    arrived: mpsc::Sender<()>,
    /// The held segment's file name, and what releases the held sync; set
    /// by it.
    release: OnceLock<(String, mpsc::Sender<()>)>,
}

/// The hooks of the test's file system: every file it opens gets a
/// [`HoldFile`].
#[derive(Debug, Clone)]
struct Hold {
    gate: Arc<Gate>,
}

/// Holds the source's armed WAL sync, and releases it at the sync of the
/// checkpoint's copy of that segment.
#[derive(Debug)]
struct HoldFile {
    gate: Arc<Gate>,
    name: String,
    /// Under the source's `wal/`, or under the checkpoint's.
    source_wal: bool,
    checkpoint_wal: bool,
}

impl FileHooks for HoldFile {
    fn sync_data(&mut self, inner: &mut dyn VfsFile) -> io::Result<()> {
        let gate = &self.gate;
        if self.source_wal && gate.armed.swap(false, Ordering::SeqCst) {
            let (release, released) = mpsc::channel();
            gate.release.set((self.name.clone(), release)).unwrap();
            gate.arrived.send(()).unwrap();
            released.recv_timeout(HANG).unwrap();
            if gate.fail {
                return Err(io::Error::other("injected WAL sync failure"));
            }
        } else if self.checkpoint_wal
            && let Some((held, release)) = gate.release.get()
            && *held == self.name
        {
            // The copy of the held batch's segment is durable: let it go.
            let _ = release.send(());
        }
        inner.sync_data()
    }
}

impl VfsHooks for Hold {
    fn file(&self, path: &Path, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        let hooks = HoldFile {
            gate: self.gate.clone(),
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            source_wal: path.starts_with(Path::new(MEM_DB_PATH).join("wal")),
            checkpoint_wal: path.starts_with(Path::new(CHECKPOINT).join("wal")),
        };
        HookedFile::boxed(file, hooks)
    }
}

fn options() -> Options {
    common::options(Durability::Sync)
}

fn get(db: &Db, key: &[u8]) -> Option<Vec<u8>> {
    db.begin_read().get(key).unwrap()
}

/// Commits `in-flight` with its WAL sync held, checkpoints meanwhile, then
/// lets the held sync fail or succeed (see the module docs). Returns the
/// file system, the commit's outcome and the checkpoint's.
fn race(
    fail: bool,
) -> (
    MemVfs,
    strata::Result<strata::Ts>,
    strata::Result<strata::Ts>,
) {
    let mem = MemVfs::new();
    let (arrived, arrival) = mpsc::channel();
    let gate = Arc::new(Gate {
        armed: AtomicBool::new(false),
        fail,
        arrived,
        release: OnceLock::new(),
    });
    let hooks = Hold { gate: gate.clone() };
    let vfs = HookedVfs::new(Arc::new(mem.clone()), hooks);
    let db = Db::open_with_vfs(MEM_DB_PATH, options(), Arc::new(vfs)).unwrap();
    for i in 0..5u32 {
        let mut t = db.begin();
        t.put(format!("k{i}").as_bytes(), b"acknowledged").unwrap();
        t.commit().unwrap();
    }
    db.flush().unwrap();
    let mut t = db.begin();
    t.put(b"tail", b"acknowledged").unwrap();
    t.commit().unwrap();

    gate.armed.store(true, Ordering::SeqCst);
    let (commit, checkpoint) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut t = db.begin();
            t.put(b"in-flight", b"written, not yet synced").unwrap();
            t.commit()
        });
        arrival.recv_timeout(HANG).unwrap();
        let checkpoint = db.checkpoint(CHECKPOINT);
        (writer.join().unwrap(), checkpoint)
    });
    assert!(
        gate.release.get().is_some(),
        "the held sync was never released"
    );
    drop(db);
    (mem, commit, checkpoint)
}

#[test]
fn a_checkpoint_never_holds_a_commit_whose_wal_sync_failed() {
    let (mem, commit, checkpoint) = race(true);
    assert!(matches!(commit, Err(Error::Io(_))), "{commit:?}");
    // The source never made the commit durable: a power cut takes it.
    let cut = mem.crash();
    let db = Db::open_with_vfs(MEM_DB_PATH, options(), Arc::new(cut.clone())).unwrap();
    assert_eq!(get(&db, b"tail").as_deref(), Some(&b"acknowledged"[..]));
    assert_eq!(get(&db, b"in-flight"), None);
    drop(db);
    // So no checkpoint that returned may hold it (before the fix this one
    // returned `Ok` and opened with `in-flight`).
    match checkpoint {
        Err(Error::Io(_) | Error::Poisoned) => {}
        Err(e) => panic!("the checkpoint failed with {e:?}, not the WAL's failure"),
        Ok(ts) => {
            let copy = Db::open_with_vfs(CHECKPOINT, options(), Arc::new(cut)).unwrap();
            assert_eq!(
                get(&copy, b"in-flight"),
                None,
                "the checkpoint (ts {ts:?}) holds a commit that failed and that the source lost"
            );
        }
    }
}

#[test]
fn a_checkpoint_racing_a_sync_that_succeeds_holds_the_commit_once_durable() {
    let (mem, commit, checkpoint) = race(false);
    let ts = commit.unwrap();
    let at = checkpoint.unwrap();
    assert!(
        at >= ts,
        "the checkpoint waited for the sync: {at:?} >= {ts:?}"
    );
    // Both the source and the checkpoint survive a power cut with it.
    let cut = mem.crash();
    for dir in [MEM_DB_PATH, CHECKPOINT] {
        let db = Db::open_with_vfs(dir, options(), Arc::new(cut.clone())).unwrap();
        assert_eq!(
            get(&db, b"tail").as_deref(),
            Some(&b"acknowledged"[..]),
            "{dir}"
        );
        assert!(get(&db, b"in-flight").is_some(), "{dir}");
        assert_eq!(db.stats().read_ts, at, "{dir}");
        db.close().unwrap();
    }
}
