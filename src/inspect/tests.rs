//! The inspection API on `MemVfs`: what a crash leaves is a warning and is
//! left as it is, files that contradict each other are damage, and no
//! flipped byte of any file makes `stat`, `verify` or `dump` panic.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::vfs::MemVfs;
use crate::{Db, Options};

const DIR: &str = "/db";

/// A closed database on `vfs`: three commits, a flush, two more commits.
fn build(vfs: &MemVfs, tag: &str) {
    let db = Db::open_with_vfs(DIR, Options::default(), Arc::new(vfs.clone())).unwrap();
    for i in 0..5u32 {
        if i == 3 {
            db.flush().unwrap();
        }
        let mut t = db.begin();
        t.put(format!("key{i}").as_bytes(), tag.as_bytes()).unwrap();
        if i % 2 == 1 {
            t.delete(format!("key{}", i - 1).as_bytes()).unwrap();
        }
        t.commit().unwrap();
    }
    db.close().unwrap();
}

/// Every file of the database with its bytes, live then as synced.
fn image(vfs: &MemVfs) -> [Vec<(PathBuf, Vec<u8>)>; 2] {
    let files = |v: &MemVfs| {
        let mut out = Vec::new();
        for sub in ["", "wal", "tables"] {
            let dir = Path::new(DIR).join(sub);
            let mut names = v.list(&dir).unwrap_or_default();
            names.sort();
            for n in names {
                let path = dir.join(n);
                let data = v.read_all(&path).unwrap();
                out.push((path, data));
            }
        }
        out
    };
    [files(vfs), files(&vfs.crash())]
}

fn verify(vfs: &MemVfs) -> VerifyReport {
    verify_with_vfs(vfs, Path::new(DIR)).unwrap()
}

fn segment() -> PathBuf {
    Path::new(DIR).join("wal").join(crate::wal::segment_name(1))
}

/// A torn WAL tail (what a crash during a write leaves) is a warning with
/// its file and offset, counted by `stat`, and left in place: inspection
/// cuts nothing and makes nothing more durable.
#[test]
fn a_torn_wal_tail_is_a_warning_and_is_left_as_it_is() {
    let vfs = MemVfs::new();
    build(&vfs, "v");
    let path = segment();
    let mut data = vfs.read_all(&path).unwrap();
    let end = data.len() as u64;
    data.extend_from_slice(&[0xab; 333]);
    vfs.write_file(&path, data);
    let before = image(&vfs);
    let r = verify(&vfs);
    assert!(r.is_clean(), "{:?}", r.problems);
    let [w] = r.problems.as_slice() else {
        panic!("{:?}", r.problems)
    };
    assert_eq!(
        (w.severity, &w.file, w.offset),
        (Severity::Warning, &path, Some(end))
    );
    let s = stat_with_vfs(&vfs, Path::new(DIR)).unwrap();
    assert_eq!(s.wal.torn_bytes, 333);
    assert_eq!(s.wal.unflushed_records, 2);
    let dumped = dump_with_vfs(&vfs, Path::new(DIR), &DumpOptions::default()).unwrap();
    assert_eq!(dumped.count(), 3, "key1, key3 and key4");
    assert!(image(&vfs) == before, "inspection changed the files");
}

/// A table that is intact but not the one the manifest recorded (another
/// database's table 2) is damage: its record disagrees, and it holds
/// timestamps above the manifest's max ts.
#[test]
fn a_table_that_is_not_the_one_the_manifest_recorded_is_damage() {
    let (a, b) = (MemVfs::new(), MemVfs::new());
    build(&a, "v");
    build(&b, "a longer value");
    let table = Path::new(DIR)
        .join("tables")
        .join(crate::manifest::table_name(2));
    a.write_file(&table, b.read_all(&table).unwrap());
    let r = verify(&a);
    let damage: Vec<_> = r.damage().collect();
    assert!(
        !damage.is_empty() && damage.iter().all(|p| p.file == table),
        "{damage:?}"
    );
    assert!(damage[0].what.contains("file size"), "{}", damage[0]);
    // Its versions are newer than any the manifest knows were issued.
    assert!(
        damage.iter().any(|p| p.what.contains("max ts")),
        "{damage:?}"
    );
}

/// A WAL that no longer reaches back to the flushed lsn is damage naming
/// the manifest (records are in no table and in no segment).
#[test]
fn a_wal_that_lost_unflushed_records_is_damage_naming_the_manifest() {
    let vfs = MemVfs::new();
    build(&vfs, "v");
    vfs.remove(&segment()).unwrap();
    let r = verify(&vfs);
    let damage: Vec<_> = r.damage().collect();
    assert_eq!(damage.len(), 1, "{damage:?}");
    let manifest = Path::new(DIR).join(crate::manifest::manifest_name(1));
    assert_eq!((&damage[0].file, damage[0].offset), (&manifest, Some(0)));
}

/// A data block that does not read ends a dump with its error, naming the
/// table, and the iteration then stops.
#[test]
fn a_damaged_data_block_ends_a_dump_with_its_error() {
    let vfs = MemVfs::new();
    build(&vfs, "v");
    let table = Path::new(DIR)
        .join("tables")
        .join(crate::manifest::table_name(2));
    let mut data = vfs.read_all(&table).unwrap();
    data[3] ^= 1;
    vfs.write_file(&table, data);
    let options = DumpOptions {
        all_versions: true,
        ..DumpOptions::default()
    };
    let mut dumped = dump_with_vfs(&vfs, Path::new(DIR), &options).unwrap();
    let err = dumped.find_map(Result::err).expect("an error");
    assert!(
        matches!(&err, Error::Corruption { file, offset: 0, .. } if *file == table),
        "{err}"
    );
    assert!(dumped.next().is_none());
}

/// Every byte of every file flipped in turn: `verify` reports a problem
/// for each (a damaged last record of the manifest or the WAL reads as a
/// torn tail: a warning), and nothing panics.
#[test]
fn every_flipped_byte_of_every_file_is_reported_and_nothing_panics() {
    let golden = MemVfs::new();
    build(&golden, "v");
    let [files, _] = image(&golden);
    let options = DumpOptions {
        all_versions: true,
        ..DumpOptions::default()
    };
    for (path, data) in &files {
        for at in 0..data.len() {
            let vfs = golden.crash();
            let mut bad = data.clone();
            bad[at] ^= 0x04;
            vfs.write_file(path, bad);
            let r = verify(&vfs);
            assert!(!r.problems.is_empty(), "{} byte {at}", path.display());
            let _ = stat_with_vfs(&vfs, Path::new(DIR));
            if let Ok(d) = dump_with_vfs(&vfs, Path::new(DIR), &options) {
                d.for_each(drop);
            }
        }
    }
}

/// Tables of any level (compaction moves them to 1..=6) are counted in
/// their level, verified, and dumped with it.
#[test]
fn a_table_in_a_deeper_level_is_counted_verified_and_dumped_there() {
    use crate::manifest::{DEFAULT_ROTATE_BYTES, Edit, Log};
    let vfs = MemVfs::new();
    build(&vfs, "v");
    let dir = Path::new(DIR);
    let recovered = crate::manifest::recover(&vfs, dir).unwrap().unwrap();
    let record = recovered.replayed.state.level(0)[0].clone();
    let mut log = Log::resume(Arc::new(vfs.clone()), dir, recovered, DEFAULT_ROTATE_BYTES).unwrap();
    log.append(&Edit {
        removed: vec![(0, record.number)],
        added: vec![(3, record.clone())],
        ..Edit::default()
    })
    .unwrap();
    drop(log);
    let s = stat_with_vfs(&vfs, dir).unwrap();
    let counts: Vec<usize> = s.levels.iter().map(|l| l.tables.len()).collect();
    assert_eq!(counts, [0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(s.levels[3].entries, record.entries);
    let r = verify(&vfs);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let options = DumpOptions {
        all_versions: true,
        ..DumpOptions::default()
    };
    let from_tables = dump_with_vfs(&vfs, dir, &options)
        .unwrap()
        .map(Result::unwrap)
        .filter(|v| !matches!(v.source, VersionSource::Wal { .. }))
        .map(|v| v.source)
        .collect::<Vec<_>>();
    let expect = VersionSource::Table {
        level: 3,
        number: record.number,
    };
    assert_eq!(
        from_tables,
        vec![expect; usize::try_from(record.entries).unwrap()]
    );
}
