//! Regression (2026-11-23): `close` writes a final sync mark after syncing the
//! WAL. When that 17-byte write was the one that crossed the segment size
//! limit, the writer rolled over to a new segment whose header carried a zero
//! checksum chain instead of the last record's CRC, and the next open refused
//! the whole log with "segment does not continue the previous one". Fixed by
//! passing the chain value (`last_crc`) in `GroupCommit::seal`.
//!
//! The test counts the segment files before and after `close`, so it fails
//! if no case makes `close` roll (the scenario it exists for).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::sync::Arc;

use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Options};

const SEGMENT_BYTES: u64 = 4096;

fn segment_count(vfs: &dyn Vfs) -> usize {
    vfs.list(Path::new("/db/wal"))
        .unwrap()
        .iter()
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "wal"))
        .count()
}

/// Each group here is 71 + value bytes, so some (value size, commit count) pair makes the
/// 17-byte final mark the write that crosses the 4 KiB segment limit.
#[test]
fn close_that_rolls_the_wal_over_reopens() {
    let mut rolled_at_close = Vec::new();
    for value_len in 120..=140usize {
        for commits in 15..=25u32 {
            let vfs: Arc<dyn Vfs> = Arc::new(MemVfs::new());
            let opts = Options::default().wal_segment_bytes(SEGMENT_BYTES);
            let db = Db::open_with_vfs("/db", opts.clone(), vfs.clone()).unwrap();
            for i in 0..commits {
                let mut t = db.begin();
                t.put(&i.to_le_bytes(), &vec![7; value_len]).unwrap();
                t.commit().unwrap();
            }
            let before = segment_count(vfs.as_ref());
            db.close().unwrap();
            let after = segment_count(vfs.as_ref());
            assert!(after >= before, "close removed a segment");
            if after > before {
                rolled_at_close.push((value_len, commits));
            }
            let db = Db::open_with_vfs("/db", opts, vfs).unwrap();
            assert_eq!(db.stats().recovered_records, u64::from(commits));
        }
    }
    assert!(
        !rolled_at_close.is_empty(),
        "no (value size, commit count) pair made close roll the WAL over"
    );
    println!("close rolled the WAL for {rolled_at_close:?}");
}
