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
use strata::vfs::MemVfs;
use strata::{Db, Durability, Options};

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

/// Every entry of the latest snapshot, ascending.
pub fn dump(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    collect(db.begin_read().scan::<&[u8], _>(..).unwrap())
}

/// Asserts that the latest snapshot of `db` reads exactly `model`: a full
/// scan both ways, and a point get of every key in `probes`.
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
    }
}

/// `(key, value)` pair from string literals.
pub fn kv(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

/// A [`MemVfs`] whose `sync_data` takes `delay` (a slow disk): commits
/// queue up behind each sync as they do on real hardware. The delay only
/// shapes the load; no test may decide its outcome by it. While
/// `panic_syncs` is set, every `sync_data` panics instead.
#[derive(Debug, Clone)]
pub struct SlowSyncVfs {
    pub mem: MemVfs,
    pub delay: std::time::Duration,
    pub panic_syncs: Arc<std::sync::atomic::AtomicBool>,
}

impl SlowSyncVfs {
    /// Over `mem`, with syncs taking `delay`, not panicking.
    pub fn new(mem: MemVfs, delay: std::time::Duration) -> Self {
        Self {
            mem,
            delay,
            panic_syncs: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Box<dyn strata::vfs::VfsFile>,
    delay: std::time::Duration,
    panic_syncs: Arc<std::sync::atomic::AtomicBool>,
}

impl strata::vfs::VfsFile for SlowSyncFile {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)
    }
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all_at(offset, buf)
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn file_len(&self) -> std::io::Result<u64> {
        self.inner.file_len()
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        let panic = self.panic_syncs.load(std::sync::atomic::Ordering::SeqCst);
        assert!(!panic, "injected panic in sync_data");
        std::thread::sleep(self.delay);
        self.inner.sync_data()
    }
}

impl strata::vfs::Vfs for SlowSyncVfs {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.mem.create_dir_all(path)
    }
    fn dir_exists(&self, path: &Path) -> std::io::Result<bool> {
        self.mem.dir_exists(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.mem.list(dir)
    }
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn strata::vfs::VfsFile>> {
        let inner = self.mem.open_append(path)?;
        Ok(Box::new(SlowSyncFile {
            inner,
            delay: self.delay,
            panic_syncs: self.panic_syncs.clone(),
        }))
    }
    fn open_write(&self, path: &Path) -> std::io::Result<Box<dyn strata::vfs::VfsFile>> {
        let inner = self.mem.open_write(path)?;
        Ok(Box::new(SlowSyncFile {
            inner,
            delay: self.delay,
            panic_syncs: self.panic_syncs.clone(),
        }))
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.mem.read_all(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.mem.truncate(path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.mem.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.mem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.mem.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Option<Box<dyn strata::vfs::FileLock>>> {
        self.mem.lock(path)
    }
}
