//! Regression (2026-12-01), found by the model test's small-budget variant
//! (`tests/model.rs`): after a power cut and a reopen, the first flush
//! failed with "i/o error: /db/tables not found" and poisoned the
//! database, and so did the first flush after every later reopen: the
//! database could never flush again.
//!
//! The first flush of a database creates the manifest (`CURRENT` first),
//! then the `tables` directory, then the table. A power cut between the
//! two left a durable manifest and no directory. The next open recovered
//! the (empty) manifest, so the flusher, which created the directory only
//! together with a new manifest, went straight to writing a table into a
//! directory that did not exist. The crash-point enumeration missed it:
//! it cut only at `sync_data`, and no `sync_data` lies between the
//! directory sync installing `CURRENT` and the one creating `tables` (it
//! now cuts at every directory sync too, and the recovered database
//! flushes). The model's power cuts, taken while the background flusher
//! runs, landed in between.
//!
//! Fixed in `Store::open`: a writable open that finds a manifest creates
//! the directory (durably) if it is missing.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use common::{HookedVfs, VfsHooks};
use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Durability};

/// Over a `MemVfs`: keeps the power-cut image of the moment the `tables`
/// directory is about to be created.
#[derive(Debug)]
struct CutBeforeTablesDir {
    mem: MemVfs,
    image: OnceLock<MemVfs>,
}

impl VfsHooks for CutBeforeTablesDir {
    fn create_dir_all(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        if path.ends_with("tables") {
            self.image.get_or_init(|| self.mem.crash());
        }
        inner.create_dir_all(path)
    }
}

fn commit(db: &Db, key: &[u8], value: &[u8]) {
    let mut t = db.begin();
    t.put(key, value).unwrap();
    t.commit().unwrap();
}

#[test]
fn a_power_cut_between_the_first_manifest_and_the_tables_directory_still_flushes() {
    let mem = MemVfs::new();
    let hooks = CutBeforeTablesDir {
        mem: mem.clone(),
        image: OnceLock::new(),
    };
    let vfs = Arc::new(HookedVfs::new(Arc::new(mem), hooks));
    let db = Db::open_with_vfs(
        common::MEM_DB_PATH,
        common::options(Durability::Sync),
        vfs.clone(),
    )
    .unwrap();
    commit(&db, b"a", b"1");
    db.flush().unwrap();
    db.close().unwrap();
    let cut = vfs
        .hooks
        .image
        .get()
        .cloned()
        .expect("the first flush made tables/");
    assert!(
        cut.list(Path::new(common::MEM_DB_PATH))
            .unwrap()
            .contains(&"CURRENT".to_owned()),
        "the image holds the first manifest"
    );
    assert!(!cut.dir_exists(Path::new("/db/tables")).unwrap());

    let mut expect = vec![common::kv("a", "1")];
    for (round, key) in ["b", "c"].into_iter().enumerate() {
        let db = common::open_mem(&cut, Durability::Sync);
        assert_eq!(common::dump(&db), expect, "round {round}");
        commit(&db, key.as_bytes(), b"2");
        expect.push(common::kv(key, "2"));
        db.flush()
            .unwrap_or_else(|e| panic!("round {round}: the flush failed: {e}"));
        assert_eq!(db.stats().tables, 1 + round as u64);
        db.close().unwrap();
    }
    // What the flushes wrote survives a power cut (the directory is durable).
    let db = common::open_mem(&cut.crash(), Durability::Sync);
    assert_eq!(common::dump(&db), expect);
    assert_eq!(db.stats().tables, 2);
}
