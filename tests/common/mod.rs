//! Helpers shared by the integration test binaries (`mod common;` in each).
//!
//! Each test binary uses a different subset, so unused-item lints are allowed
//! here rather than expected.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::Path;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use strata::vfs::{MemVfs, VfsFile};
use strata::{Db, Durability, Options};

mod hooked;

pub use hooked::{FileHooks, HookedFile, HookedVfs, VfsHooks};

/// Environment variable that fixes the seed of [`seeded_rng`].
pub const SEED_ENV: &str = "STRATA_TEST_SEED";

/// The directory every [`MemVfs`] database lives in.
pub const MEM_DB_PATH: &str = "/db";

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Options with the given durability.
///
/// Preallocation stays on, with a 64 KiB chunk instead of 1 MiB: the model
/// tests reopen (and clone crash images of) `MemVfs` hundreds of times, and
/// copying 1 MiB zero chunks dominated their time in debug builds. The
/// Buffered background sync is off: what a power cut keeps must not depend
/// on when its timer fired (`tests/buffered_sync.rs` tests it).
pub fn options(durability: Durability) -> Options {
    Options::default()
        .durability(durability)
        .wal_preallocate_bytes(64 * 1024)
        .buffered_sync_interval(std::time::Duration::ZERO)
}

/// Opens the database in `path` on the real file system.
pub fn open(path: &Path, durability: Durability) -> Db {
    Db::open(path, options(durability)).unwrap()
}

/// Opens (or reopens) the database at [`MEM_DB_PATH`] on `vfs`.
pub fn open_mem(vfs: &MemVfs, durability: Durability) -> Db {
    Db::open_with_vfs(MEM_DB_PATH, options(durability), Arc::new(vfs.clone())).unwrap()
}

/// A fresh in-memory file system and a database on it.
pub fn mem_db(durability: Durability) -> (MemVfs, Db) {
    let vfs = MemVfs::new();
    let db = open_mem(&vfs, durability);
    (vfs, db)
}

/// A seed taken from `STRATA_TEST_SEED` if set, else random. It is printed
/// (the test harness shows it when the test fails) so a failure can be rerun.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{test}: seed {seed} (rerun with {SEED_ENV}={seed})");
    seed
}

/// A small fast RNG seeded by [`seed`].
pub fn seeded_rng(test: &str) -> SmallRng {
    SmallRng::seed_from_u64(seed(test))
}

/// Collects a scan, panicking on the first error.
pub fn collect<I>(scan: I) -> Vec<(Vec<u8>, Vec<u8>)>
where
    I: IntoIterator<Item = strata::Result<(Vec<u8>, Vec<u8>)>>,
{
    scan.into_iter().map(Result::unwrap).collect()
}

/// One round of writes to keys `0..keys`, `per_txn` of them per
/// transaction: key `i` is deleted where `value(i)` is `None`, else set to
/// it; `model` is kept in step.
pub fn write_round(
    db: &Db,
    model: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    keys: u32,
    per_txn: usize,
    key: impl Fn(u32) -> Vec<u8>,
    value: impl Fn(u32) -> Option<Vec<u8>>,
) {
    for chunk in (0..keys).collect::<Vec<_>>().chunks(per_txn) {
        let mut t = db.begin();
        for &i in chunk {
            if let Some(v) = value(i) {
                t.put(&key(i), &v).unwrap();
                model.insert(key(i), v);
            } else {
                t.delete(&key(i)).unwrap();
                model.remove(&key(i));
            }
        }
        t.commit().unwrap();
    }
}

/// Every entry of the latest snapshot, ascending.
pub fn dump(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    collect(db.begin_read().scan::<&[u8], _>(..).unwrap())
}

/// Asserts that the latest snapshot of `db` reads exactly `model`: a full
/// scan both ways, and a point get of every key in `probes`, through the
/// snapshot and through `Db::get`.
pub fn assert_reads_model(
    db: &Db,
    model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    probes: impl IntoIterator<Item = Vec<u8>>,
    label: &str,
) {
    let r = db.begin_read();
    let rows = collect(r.scan(..).unwrap());
    let expect: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(rows.len(), expect.len(), "{label}: row count");
    assert!(rows == expect, "{label}: scan differs from the model");
    let back: Vec<_> = r.scan(..).unwrap().rev().map(Result::unwrap).collect();
    assert!(
        back.into_iter().rev().eq(expect.iter().cloned()),
        "{label}: backward scan"
    );
    for k in probes {
        assert_eq!(
            r.get(&k).unwrap(),
            model.get(&k).cloned(),
            "{label}: get {k:?}"
        );
        assert_eq!(
            db.get(&k).unwrap(),
            model.get(&k).cloned(),
            "{label}: Db::get {k:?}"
        );
    }
}

/// `(key, value)` pair from string literals.
pub fn kv(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

/// A [`MemVfs`] whose `sync_data` takes `delay` (a slow disk): commits
/// queue up behind each sync as they do on real hardware. The delay only
/// shapes the load; no test may decide its outcome by it. While
/// `hooks.panic_syncs` is set, every `sync_data` panics instead.
pub type SlowSyncVfs = HookedVfs<SlowSync>;

/// Over `mem`, with syncs taking `delay`, not panicking.
pub fn slow_sync_vfs(mem: MemVfs, delay: std::time::Duration) -> SlowSyncVfs {
    HookedVfs::new(
        Arc::new(mem),
        SlowSync {
            delay,
            panic_syncs: Arc::default(),
        },
    )
}

/// The hooks of a [`SlowSyncVfs`], for the file system and for each file.
#[derive(Debug, Clone)]
pub struct SlowSync {
    pub delay: std::time::Duration,
    pub panic_syncs: Arc<std::sync::atomic::AtomicBool>,
}

impl VfsHooks for SlowSync {
    fn file(&self, _: &Path, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        HookedFile::boxed(file, self.clone())
    }
}

impl FileHooks for SlowSync {
    fn sync_data(&mut self, inner: &mut dyn VfsFile) -> std::io::Result<()> {
        let panic = self.panic_syncs.load(std::sync::atomic::Ordering::SeqCst);
        assert!(!panic, "injected panic in sync_data");
        std::thread::sleep(self.delay);
        inner.sync_data()
    }
}
