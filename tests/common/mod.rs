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
/// copying 1 MiB zero chunks dominated their time in debug builds.
pub fn options(durability: Durability) -> Options {
    Options::default()
        .durability(durability)
        .wal_preallocate_bytes(64 * 1024)
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

/// `(key, value)` pair from string literals.
pub fn kv(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}
