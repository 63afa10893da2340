//! The inspection API (`strata::inspect`, decision 0018) and the `strata
//! stat`, `verify` and `dump` commands, on real directories: what `stat`
//! counts, that `verify` finds a flipped byte in every kind of file (naming
//! the file and offset) and tells orphans from damage, that `dump` yields
//! exactly the versions written, and that none of them changes a byte.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::disallowed_types, reason = "a test-file lock, not engine code")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use strata::inspect::{self, DumpOptions, Severity, VersionSource};
use strata::{Db, Error, Lsn, Options, Ts};

const TABLE: &str = "tables/00000000000000000002.sst";

/// Tests of this file run in parallel threads of one process, and a
/// spawned `strata` process briefly holds a copy of every descriptor open
/// in it (between fork and exec), a directory's `LOCK` among them: a test
/// whose database just closed then finds its directory locked. So the
/// tests that spawn take this exclusively, the others shared.
static SPAWNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn no_spawns() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWNS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
const SEGMENT: &str = "wal/00000000000000000001.wal";
const MANIFEST: &str = "MANIFEST-00000000000000000001";

/// What [`build`] wrote: the commit ts of its five transactions.
struct Built {
    ts: [Ts; 5],
}

/// Five transactions, a flush after the third, then a clean close:
/// - lsn 1: apple = red, banana = yellow, cherry = dark
/// - lsn 2: apple = green
/// - lsn 3: delete banana
/// - (flush: table 2 in level 0 holds lsn 1-3)
/// - lsn 4: apple = gold, date = brown
/// - lsn 5: delete cherry
fn build(dir: &Path) -> Built {
    let db = Db::open(dir, Options::default()).unwrap();
    let commit = |ops: &[(&str, Option<&str>)]| {
        let mut t = db.begin();
        for (k, v) in ops {
            match v {
                Some(v) => t.put(k.as_bytes(), v.as_bytes()).unwrap(),
                None => t.delete(k.as_bytes()).unwrap(),
            }
        }
        t.commit().unwrap()
    };
    let t1 = commit(&[
        ("apple", Some("red")),
        ("banana", Some("yellow")),
        ("cherry", Some("dark")),
    ]);
    let t2 = commit(&[("apple", Some("green"))]);
    let t3 = commit(&[("banana", None)]);
    db.flush().unwrap();
    let t4 = commit(&[("apple", Some("gold")), ("date", Some("brown"))]);
    let t5 = commit(&[("cherry", None)]);
    db.close().unwrap();
    Built {
        ts: [t1, t2, t3, t4, t5],
    }
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// A copy of the database `from` in a fresh directory.
fn copy(from: &Path) -> tempfile::TempDir {
    let to = common::temp_dir();
    for (name, bytes) in files(from) {
        let path = to.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    to
}

fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[usize::try_from(at).unwrap()] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

/// The offset of the index block, from the table's footer (its first 8
/// bytes: `docs/format/sst.md`).
fn index_offset(table: &Path) -> u64 {
    let bytes = fs::read(table).unwrap();
    let footer = &bytes[bytes.len() - 52..];
    u64::from_le_bytes(footer[..8].try_into().unwrap())
}

#[test]
fn stat_of_a_database_that_never_wrote_is_empty() {
    let _spawns = no_spawns();
    let dir = common::temp_dir();
    Db::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
    let s = inspect::stat(dir.path()).unwrap();
    assert_eq!(s.levels.len(), 7);
    assert!(s.levels.iter().all(|l| l.tables.is_empty()));
    assert!(s.levels.iter().all(|l| l.key_range.is_none()));
    assert_eq!(
        (s.tables, s.table_bytes, s.table_entries, s.versions),
        (0, 0, 0, 0)
    );
    assert_eq!(s.manifest, None);
    assert_eq!((s.wal.segments, s.wal.records), (0, 0));
    assert_eq!((s.wal.oldest_lsn, s.wal.newest_lsn), (None, None));
}

#[test]
fn stat_counts_the_tables_the_manifest_and_the_wal_tail_exactly() {
    let _spawns = no_spawns();
    let dir = common::temp_dir();
    let Built { ts } = build(dir.path());
    let s = inspect::stat(dir.path()).unwrap();
    let table_bytes = fs::metadata(dir.path().join(TABLE)).unwrap().len();
    let l0 = &s.levels[0];
    assert_eq!(l0.level, 0);
    assert_eq!(l0.tables.len(), 1);
    assert_eq!((l0.bytes, l0.entries, l0.tombstones), (table_bytes, 5, 1));
    assert_eq!(l0.key_range, Some((b"apple".to_vec(), b"cherry".to_vec())));
    assert_eq!(l0.ts_range, Some((ts[0], ts[2])));
    let t = &l0.tables[0];
    assert_eq!((t.number, t.bytes, t.max_lsn), (2, table_bytes, Lsn(3)));
    assert!(s.levels[1..].iter().all(|l| l.tables.is_empty()));
    assert_eq!(
        (s.tables, s.table_bytes, s.table_entries, s.table_tombstones),
        (1, table_bytes, 5, 1)
    );
    assert_eq!(s.versions, 5 + 3);
    let m = s.manifest.unwrap();
    assert_eq!((m.number, m.records, m.torn_at), (1, 3, None));
    assert_eq!(
        m.bytes,
        fs::metadata(dir.path().join(MANIFEST)).unwrap().len()
    );
    assert_eq!(
        (m.flushed_lsn, m.max_ts, m.next_file_number),
        (Lsn(3), ts[4], 3)
    );
    assert_eq!((m.epoch, m.clean_close), (0, Some(Lsn(5))));
    let w = &s.wal;
    assert_eq!((w.segments, w.segment_range), (1, Some((1, 1))));
    assert_eq!(
        w.bytes,
        fs::metadata(dir.path().join(SEGMENT)).unwrap().len()
    );
    assert_eq!((w.oldest_lsn, w.newest_lsn), (Some(Lsn(1)), Some(Lsn(5))));
    assert_eq!(
        (w.records, w.unflushed_records, w.unflushed_versions),
        (5, 2, 3)
    );
    assert_eq!(w.torn_bytes, 0);
}

#[test]
fn verify_of_an_intact_database_finds_nothing() {
    let _spawns = no_spawns();
    let dir = common::temp_dir();
    build(dir.path());
    let r = inspect::verify(dir.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.is_clean());
    // CURRENT, the manifest, the table, the segment.
    assert_eq!((r.files, r.tables, r.wal_segments), (4, 1, 1));
    let on_disk: u64 = files(dir.path()).values().map(|b| b.len() as u64).sum();
    assert_eq!(r.bytes, on_disk, "LOCK is empty: every byte was read");
}

/// One flipped byte in each kind of file is damage naming that file and
/// the offset of the part that holds it.
#[test]
fn verify_names_the_file_and_offset_of_a_flipped_byte_in_every_kind_of_file() {
    let _spawns = no_spawns();
    let golden = common::temp_dir();
    build(golden.path());
    let table_len = fs::metadata(golden.path().join(TABLE)).unwrap().len();
    let index_at = index_offset(&golden.path().join(TABLE));
    // (file, byte flipped, offset reported)
    let cases = [
        ("CURRENT", 3, 3),
        // The CRC of the first record, the snapshot, at 28.
        (MANIFEST, 29, 28),
        // The first commit record, after the 56-byte header and a 17-byte
        // sync mark; later sync marks prove it was synced.
        (SEGMENT, 73 + 12, 73),
        (TABLE, 5, 0),
        (TABLE, index_at + 1, index_at),
        (TABLE, table_len - 20, table_len - 52),
    ];
    for (file, at, offset) in cases {
        let dir = copy(golden.path());
        flip(&dir.path().join(file), at);
        let r = inspect::verify(dir.path()).unwrap();
        assert!(!r.is_clean(), "{file} byte {at}: no damage found");
        let found = r
            .damage()
            .find(|p| p.file.ends_with(file))
            .unwrap_or_else(|| panic!("{file} byte {at}: {:?}", r.problems));
        assert_eq!(found.offset, Some(offset), "{file} byte {at}: {found}");
    }
}

#[test]
fn a_missing_table_is_damage_and_an_orphan_is_only_a_warning() {
    let _spawns = no_spawns();
    let golden = common::temp_dir();
    build(golden.path());
    let missing = copy(golden.path());
    fs::remove_file(missing.path().join(TABLE)).unwrap();
    let r = inspect::verify(missing.path()).unwrap();
    let damage: Vec<_> = r.damage().collect();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert!(damage[0].file.ends_with(TABLE));
    assert!(damage[0].what.contains("missing"), "{}", damage[0]);

    let orphan = copy(golden.path());
    let name = "tables/00000000000000000009.sst";
    fs::copy(orphan.path().join(TABLE), orphan.path().join(name)).unwrap();
    let r = inspect::verify(orphan.path()).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    let warnings: Vec<_> = r.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].file.ends_with(name));
    assert_eq!(warnings[0].severity, Severity::Warning);
}

type Row = (String, Ts, Option<String>, VersionSource);

fn rows(dir: &Path, options: &DumpOptions) -> Vec<Row> {
    inspect::dump(dir, options)
        .unwrap()
        .map(|v| {
            let v = v.unwrap();
            let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
            (text(v.key), v.ts, v.value.map(text), v.source)
        })
        .collect()
}

#[test]
fn dump_yields_every_version_written_with_its_source_in_key_order() {
    let _spawns = no_spawns();
    let dir = common::temp_dir();
    let Built { ts } = build(dir.path());
    let wal = |lsn| VersionSource::Wal { lsn: Lsn(lsn) };
    let table = VersionSource::Table {
        level: 0,
        number: 2,
    };
    let row = |k: &str, ts: Ts, v: Option<&str>, s| (k.to_string(), ts, v.map(String::from), s);
    let all = vec![
        row("apple", ts[3], Some("gold"), wal(4)),
        row("apple", ts[1], Some("green"), table),
        row("apple", ts[0], Some("red"), table),
        row("banana", ts[2], None, table),
        row("banana", ts[0], Some("yellow"), table),
        row("cherry", ts[4], None, wal(5)),
        row("cherry", ts[0], Some("dark"), table),
        row("date", ts[3], Some("brown"), wal(4)),
    ];
    let versions = DumpOptions {
        all_versions: true,
        ..DumpOptions::default()
    };
    assert_eq!(rows(dir.path(), &versions), all);
    // A range: from inclusive, to exclusive.
    let range = DumpOptions {
        from: Some(b"b".to_vec()),
        to: Some(b"date".to_vec()),
        all_versions: true,
    };
    assert_eq!(rows(dir.path(), &range), all[3..7].to_vec());
    let from_a_key = DumpOptions {
        from: Some(b"cherry".to_vec()),
        ..versions
    };
    assert_eq!(rows(dir.path(), &from_a_key), all[5..].to_vec());
    // Without versions: each key's newest, deleted keys left out.
    let latest = vec![all[0].clone(), all[7].clone()];
    assert_eq!(rows(dir.path(), &DumpOptions::default()), latest);
}

/// `stat`, `verify` and `dump` of a closed database change no byte and
/// no name; while a writer has it open they are refused.
#[test]
fn inspection_writes_nothing_and_never_runs_beside_a_writer() {
    let _spawns = no_spawns();
    let dir = common::temp_dir();
    build(dir.path());
    let before = files(dir.path());
    inspect::stat(dir.path()).unwrap();
    assert!(inspect::verify(dir.path()).unwrap().is_clean());
    let options = DumpOptions {
        all_versions: true,
        ..DumpOptions::default()
    };
    assert_eq!(inspect::dump(dir.path(), &options).unwrap().count(), 8);
    assert!(files(dir.path()) == before, "inspection changed the files");

    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        inspect::verify(dir.path()),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        inspect::stat(dir.path()),
        Err(Error::Locked { .. })
    ));
    drop(db);
    // Beside a read-only open, and beside another inspection.
    let reader = Db::open(dir.path(), Options::default().read_only(true)).unwrap();
    let dump = inspect::dump(dir.path(), &options).unwrap();
    assert!(inspect::verify(dir.path()).unwrap().is_clean());
    drop((dump, reader));
    assert!(matches!(
        inspect::verify(dir.path().join("nowhere")),
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
}

/// The `strata` binary: exit statuses, `stat --json`, `dump`'s lines.
#[cfg(feature = "cli")]
mod cli {
    use std::process::{Command, Output};

    use super::*;

    fn strata(args: &[&str], dir: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .arg(dir)
            .output()
            .unwrap()
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8(out.stdout.clone()).unwrap()
    }

    #[test]
    fn verify_exits_0_when_intact_1_on_damage_and_2_on_bad_usage() {
        let _spawns = SPAWNS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = common::temp_dir();
        build(dir.path());
        let intact = strata(&["verify"], dir.path());
        assert_eq!(intact.status.code(), Some(0), "{}", stdout(&intact));
        assert!(stdout(&intact).contains("intact"), "{}", stdout(&intact));
        flip(&dir.path().join(TABLE), 5);
        let damaged = strata(&["verify"], dir.path());
        assert_eq!(damaged.status.code(), Some(1));
        let text = stdout(&damaged);
        assert!(
            text.contains(TABLE) && text.contains("at offset 0"),
            "{text}"
        );
        let missing = strata(&["verify"], &dir.path().join("nowhere"));
        assert_eq!(missing.status.code(), Some(1));
        let usage = strata(&["verify", "--no-such-flag"], dir.path());
        assert_eq!(usage.status.code(), Some(2));
    }

    #[test]
    fn stat_json_parses_and_dump_prints_one_line_per_version() {
        let _spawns = SPAWNS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = common::temp_dir();
        let Built { ts } = build(dir.path());
        let out = strata(&["stat", "--json"], dir.path());
        assert_eq!(out.status.code(), Some(0));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["tables"], 1);
        assert_eq!(json["versions"], 8);
        assert_eq!(json["levels"][0]["smallest_key"], "apple");
        assert_eq!(json["manifest"]["flushed_lsn"], 3);
        assert_eq!(json["wal"]["newest_lsn"], 5);

        let out = strata(
            &["dump", "--versions", "--from", "b", "--limit", "3"],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0));
        let expect = format!(
            "banana\t{}\tL0 table=2\tdelete\nbanana\t{}\tL0 table=2\tput\tyellow\n\
             cherry\t{}\twal lsn=5\tdelete\n",
            ts[2], ts[0], ts[4]
        );
        assert_eq!(stdout(&out), expect);
        let out = strata(&["dump", "--hex", "--to", "62"], dir.path());
        assert_eq!(stdout(&out), format!("{}\t{}\n", "6170706c65", "676f6c64"));
    }
}
