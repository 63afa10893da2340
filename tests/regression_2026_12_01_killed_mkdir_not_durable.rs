//! Regression (2026-12-01), found by the crash-point enumeration once it
//! cut at directory syncs too (`tests/crash.rs`): a process killed right
//! after creating one of the database's directories, before syncing it
//! into its parent, leaves a directory that exists but whose name a power
//! cut can still take (the kernel has not written it back yet; `MemVfs`
//! models this). The next open found the directory, took it for durable
//! and built on it: for the database directory, or `wal/` (before the
//! first flush; later the manifest's recovery syncs the database
//! directory), the reopened database acknowledged commits
//! (`Durability::Sync`) that a power cut then took, all of them.
//!
//! Recovery must not build on what a killed process left undurable (as
//! for WAL bytes and manifest records, `Log::make_durable`). Fixed in
//! `vfs::create_dir_durable`: it syncs the parent of the directory it is
//! asked for even when that directory exists, as well as the parent of
//! every directory it creates.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use common::{HookedVfs, VfsHooks};
use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Durability};

/// Over a `MemVfs`: keeps the image a SIGKILL leaves right after directory
/// `dir` is created (before anything syncs it into its parent).
#[derive(Debug)]
struct KillAfterMkdir {
    mem: MemVfs,
    dir: PathBuf,
    image: OnceLock<MemVfs>,
}

impl VfsHooks for KillAfterMkdir {
    fn create_dir_all(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        inner.create_dir_all(path)?;
        if path == self.dir {
            self.image.get_or_init(|| self.mem.process_crash());
        }
        Ok(())
    }
}

/// Runs `workload` on a fresh database whose file system keeps the kill
/// image of the moment `dir` was created; returns that image.
fn killed_right_after_creating(dir: &str, workload: impl FnOnce(&Db)) -> MemVfs {
    let mem = MemVfs::new();
    let hooks = KillAfterMkdir {
        mem: mem.clone(),
        dir: PathBuf::from(dir),
        image: OnceLock::new(),
    };
    let vfs = Arc::new(HookedVfs::new(Arc::new(mem), hooks));
    let options = common::options(Durability::Sync);
    let db = Db::open_with_vfs(common::MEM_DB_PATH, options, vfs.clone()).unwrap();
    workload(&db);
    db.close().unwrap();
    let image = vfs.hooks.image.get().cloned();
    image.unwrap_or_else(|| panic!("{dir} was never created"))
}

fn commit(db: &Db, key: &str) {
    let mut t = db.begin();
    t.put(key.as_bytes(), b"v").unwrap();
    t.commit().unwrap();
}

fn keys(db: &Db) -> Vec<String> {
    common::dump(db)
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn a_reopen_makes_the_database_directory_a_killed_open_created_durable() {
    let killed = killed_right_after_creating("/db", |_| {});
    let db = common::open_mem(&killed, Durability::Sync);
    commit(&db, "acknowledged");
    let cut = killed.crash();
    drop(db);
    let db = common::open_mem(&cut, Durability::Sync);
    assert_eq!(
        keys(&db),
        ["acknowledged"],
        "an acknowledged commit survives the power cut"
    );
}

#[test]
fn a_reopen_makes_the_wal_directory_a_killed_open_created_durable() {
    let killed = killed_right_after_creating("/db/wal", |_| {});
    let db = common::open_mem(&killed, Durability::Sync);
    commit(&db, "acknowledged");
    let cut = killed.crash();
    drop(db);
    let db = common::open_mem(&cut, Durability::Sync);
    assert_eq!(
        keys(&db),
        ["acknowledged"],
        "an acknowledged commit survives the power cut"
    );
}
