//! Whole-table tests: build, open, read back in both directions, point gets
//! against a model, and damage to every byte.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::error::Error;
use crate::types::Ts;
use crate::vfs::{MemVfs, OsVfs, Vfs};

/// A version: `(key, ts, value or tombstone)`.
type Version = (Vec<u8>, u64, Option<Vec<u8>>);

/// Versions keyed so that the map's order is table order.
type Ordered = BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), Option<Vec<u8>>>;

/// Versions in table order (key ascending, ts descending).
fn in_order(map: &Ordered) -> Vec<Version> {
    map.iter()
        .map(|((k, t), v)| (k.clone(), t.0, v.clone()))
        .collect()
}

fn build(vfs: &dyn Vfs, path: &Path, all: &[Version], opts: TableOptions) -> BuiltTable {
    let mut b = TableBuilder::create(vfs, path, opts).unwrap();
    for (k, t, v) in all {
        b.add(k, Ts::from(*t), v.as_deref()).unwrap();
    }
    b.finish(77).unwrap()
}

fn read_all_forward(t: &Arc<Table>) -> Result<Vec<Version>, Error> {
    let mut it = t.iter();
    it.seek_to_first();
    let mut out = Vec::new();
    while it.valid() {
        out.push(current(&it));
        it.next();
    }
    it.status()?;
    Ok(out)
}

fn current(it: &TableIter<Arc<Table>>) -> Version {
    let v = (it.kind() == Some(EntryKind::Value)).then(|| it.value().to_vec());
    (it.key().to_vec(), it.ts().get(), v)
}

fn sample(n: u64) -> Vec<Version> {
    let mut map = BTreeMap::new();
    for i in 0..n {
        let key = format!("key{:06}", i / 3).into_bytes();
        let value = (i % 7 != 0).then(|| vec![(i % 251) as u8; (i % 40) as usize]);
        map.insert((key, std::cmp::Reverse(10_000 - i)), value);
    }
    in_order(&map)
}

fn mem_table(all: &[Version], opts: TableOptions) -> (MemVfs, PathBuf, Arc<Table>) {
    let vfs = MemVfs::new();
    let path = PathBuf::from("/t/00000000000000000001.sst");
    vfs.create_dir_all(Path::new("/t")).unwrap();
    build(&vfs, &path, all, opts);
    let table = Arc::new(Table::open(&vfs, &path).unwrap());
    (vfs, path, table)
}

#[test]
fn a_table_reads_back_every_version_in_both_directions_with_its_properties() {
    let all = sample(3000);
    let (_vfs, _path, t) = mem_table(&all, TableOptions::default());
    assert_eq!(read_all_forward(&t).unwrap(), all);
    let mut it = t.iter();
    it.seek_to_last();
    let mut back = Vec::new();
    while it.valid() {
        back.push(current(&it));
        it.prev();
    }
    it.status().unwrap();
    back.reverse();
    assert_eq!(back, all);
    let p = t.properties();
    assert_eq!(p.entries, 3000);
    assert_eq!(p.keys, 1000);
    assert_eq!(
        p.tombstones,
        all.iter().filter(|v| v.2.is_none()).count() as u64
    );
    assert_eq!(p.min_ts, Ts::from(7001));
    assert_eq!(p.max_ts, Ts::from(10_000));
    assert_eq!(p.smallest_key, b"key000000");
    assert_eq!(p.largest_key, b"key000999");
    assert_eq!(p.max_lsn, 77);
    assert!(p.data_blocks > 10, "several blocks: {}", p.data_blocks);
}

#[test]
fn point_gets_see_the_newest_version_at_the_read_ts_and_the_filter_skips_absent_keys() {
    let all = vec![
        (b"a".to_vec(), 30, None),
        (b"a".to_vec(), 20, Some(b"a20".to_vec())),
        (b"a".to_vec(), 10, Some(b"a10".to_vec())),
        (b"b".to_vec(), 15, Some(b"b15".to_vec())),
    ];
    let (_vfs, _path, t) = mem_table(&all, TableOptions::default());
    let get = |k: &[u8], ts: u64| t.get(k, Ts::from(ts)).unwrap();
    assert_eq!(get(b"a", 5), None);
    assert_eq!(get(b"a", 10), Some(Found::Value(b"a10".to_vec())));
    assert_eq!(get(b"a", 29), Some(Found::Value(b"a20".to_vec())));
    assert_eq!(get(b"a", 30), Some(Found::Tombstone));
    assert_eq!(get(b"b", 99), Some(Found::Value(b"b15".to_vec())));
    assert_eq!(get(b"ab", 99), None);
    assert_eq!(get(b"c", 99), None);
    assert!(t.may_contain(b"a") && t.may_contain(b"b"));
}

#[test]
fn a_table_of_format_1_still_reads_with_its_filter() {
    let all = sample(3000);
    for version in [1, format::FORMAT_VERSION] {
        let opts = TableOptions {
            format_version: version,
            ..TableOptions::default()
        };
        let (vfs, path, t) = mem_table(&all, opts);
        let file = vfs.map(&path).unwrap();
        assert_eq!(
            format::Footer::decode(file.bytes()).unwrap().version,
            version
        );
        assert_eq!(read_all_forward(&t).unwrap(), all, "format {version}");
        for (k, ts, v) in all.iter().step_by(7) {
            let want = v.clone().map_or(Found::Tombstone, Found::Value);
            assert_eq!(
                t.get(k, Ts::from(*ts)).unwrap(),
                Some(want),
                "format {version}"
            );
        }
        // The filter still proves most absent keys absent.
        let skipped = (0..1000u32)
            .filter(|i| !t.may_contain(format!("zz{i}").as_bytes()))
            .count();
        assert!(skipped > 950, "format {version}: {skipped} of 1000");
    }
}

#[test]
fn a_large_value_gets_a_block_of_its_own() {
    let big = vec![7u8; 100_000];
    let all = vec![
        (b"a".to_vec(), 1, Some(b"small".to_vec())),
        (b"b".to_vec(), 1, Some(big.clone())),
        (b"c".to_vec(), 1, Some(b"small".to_vec())),
    ];
    let (_vfs, _path, t) = mem_table(&all, TableOptions::default());
    assert_eq!(t.get(b"b", Ts::from(1)).unwrap(), Some(Found::Value(big)));
    assert_eq!(read_all_forward(&t).unwrap(), all);
    // "a", "b" and "c" each in a block (docs/format/sst.md, constants): a
    // get of "a" must not hash (and page in) the big value's block.
    assert_eq!(t.properties().data_blocks, 3);
}

#[test]
fn the_builder_refuses_disorder_duplicates_and_an_empty_table() {
    let vfs = MemVfs::new();
    vfs.create_dir_all(Path::new("/t")).unwrap();
    let mut b = TableBuilder::create(&vfs, Path::new("/t/1.sst"), TableOptions::default()).unwrap();
    b.add(b"b", Ts::from(5), Some(b"x")).unwrap();
    assert!(matches!(
        b.add(b"a", Ts::from(9), None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.add(b"b", Ts::from(5), None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.add(b"b", Ts::from(6), None),
        Err(Error::InvalidArgument(_))
    ));
    b.add(b"b", Ts::from(4), None).unwrap();
    let empty = TableBuilder::create(&vfs, Path::new("/t/2.sst"), TableOptions::default()).unwrap();
    assert!(matches!(empty.finish(0), Err(Error::InvalidArgument(_))));
    assert!(TableBuilder::create(&vfs, Path::new("/t/2.sst"), TableOptions::default()).is_ok());
    // A finished table is never opened for writing again (docs/unsafe.md,
    // rule 2): the builder refuses a file that has bytes.
    let done = Path::new("/t/3.sst");
    build(&vfs, done, &sample(10), TableOptions::default());
    assert!(matches!(
        TableBuilder::create(&vfs, done, TableOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(Table::open(&vfs, done).is_ok(), "and leaves it intact");
}

#[test]
fn the_os_file_system_maps_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(table_file_name(3));
    let all = sample(500);
    let built = build(&OsVfs, &path, &all, TableOptions::default());
    let t = Arc::new(Table::open(&OsVfs, &path).unwrap());
    assert!(
        format!("{t:?}").contains("Mapped(map,"),
        "mapped, not copied"
    );
    assert_eq!(t.file_size(), built.file_size);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), built.file_size);
    assert_eq!(read_all_forward(&t).unwrap(), all);
    // Unlinking a mapped table leaves the mapping readable (docs/unsafe.md).
    std::fs::remove_file(&path).unwrap();
    assert_eq!(read_all_forward(&t).unwrap(), all);
}

#[test]
fn every_damaged_byte_is_corruption_never_a_panic_or_a_wrong_answer() {
    let all = sample(120);
    let opts = TableOptions {
        block_bytes: 256,
        ..TableOptions::default()
    };
    let (vfs, path, _t) = mem_table(&all, opts);
    let good = vfs.read_all(&path).unwrap();
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            let damaged = MemVfs::new();
            damaged.create_dir_all(Path::new("/t")).unwrap();
            let mut f = damaged.open_write(&path).unwrap();
            f.write_all(&bad).unwrap();
            let outcome = Table::open(&damaged, &path).map(Arc::new).and_then(|t| {
                let rows = read_all_forward(&t)?;
                for (k, ts, _) in &all {
                    t.get(k, Ts::from(*ts))?;
                }
                Ok(rows)
            });
            match outcome {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path, "byte {i}"),
                Err(Error::UnsupportedFormat { .. }) => {}
                Err(e) => panic!("byte {i}: unexpected error {e}"),
                Ok(rows) => panic!(
                    "byte {i} flipped by {flip:#x} went unnoticed ({} rows)",
                    rows.len()
                ),
            }
        }
    }
}

#[test]
fn truncated_and_foreign_files_are_not_tables() {
    let (vfs, path, _t) = mem_table(&sample(50), TableOptions::default());
    let good = vfs.read_all(&path).unwrap();
    for len in [0, 1, 51, good.len() - 1] {
        let v = MemVfs::new();
        v.create_dir_all(Path::new("/t")).unwrap();
        v.open_write(&path)
            .unwrap()
            .write_all(&good[..len])
            .unwrap();
        match Table::open(&v, &path) {
            Err(Error::Corruption { what, .. }) => assert!(!what.is_empty()),
            other => panic!("len {len}: {other:?}"),
        }
    }
}

fn versions() -> impl Strategy<Value = Vec<Version>> {
    versions_of(short_key())
}

fn short_key() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0, 0xff]), 0..5)
}

/// Keys with a long shared prefix and lengths around the fences' 8 bytes
/// past it, so blocks often tie on their fence (`fence.rs`).
fn long_key() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0]), 5..12)
        .prop_map(|tail| [b"prefix/".as_slice(), &tail].concat())
}

fn versions_of(key: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<Version>> {
    let value = prop::option::of(prop::collection::vec(any::<u8>(), 0..30));
    prop::collection::btree_map((key, (0u64..8).prop_map(std::cmp::Reverse)), value, 1..300)
        .prop_map(|m| in_order(&m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seeks_and_gets_agree_with_a_model(
        all in versions(),
        block_bytes in 32usize..600,
        probes in prop::collection::vec((short_key(), 0u64..9), 1..30),
    ) {
        seeks_and_gets_agree(&all, block_bytes, probes)?;
    }

    #[test]
    fn seeks_and_gets_agree_with_a_model_when_fences_tie(
        all in versions_of(long_key()),
        block_bytes in 32usize..600,
        probes in prop::collection::vec((prop_oneof![long_key(), short_key()], 0u64..9), 1..30),
    ) {
        seeks_and_gets_agree(&all, block_bytes, probes)?;
    }
}

/// Every seek, seek-for-prev, step after it and point get over `all`,
/// built with `block_bytes`, answers what the sorted model does.
fn seeks_and_gets_agree(
    all: &[Version],
    block_bytes: usize,
    probes: Vec<(Vec<u8>, u64)>,
) -> Result<(), TestCaseError> {
    {
        let opts = TableOptions {
            block_bytes,
            ..TableOptions::default()
        };
        let (_vfs, _path, t) = mem_table(all, opts);
        let cmp = |v: &Version, k: &[u8], ts: u64| {
            block::cmp_version(&v.0, Ts::from(v.1), k, Ts::from(ts))
        };
        for (key, ts) in probes {
            let mut it = t.iter();
            it.seek(&key, Ts::from(ts));
            match all.iter().position(|v| cmp(v, &key, ts).is_ge()) {
                Some(i) => prop_assert_eq!(current(&it), all[i].clone()),
                None => prop_assert!(!it.valid()),
            }
            it.seek_for_prev(&key, Ts::from(ts));
            match all.iter().rposition(|v| cmp(v, &key, ts).is_le()) {
                Some(i) => {
                    prop_assert_eq!(current(&it), all[i].clone());
                    // Stepping forward from there reaches the seek's answer.
                    it.next();
                    match all.get(i + 1) {
                        Some(v) => prop_assert_eq!(current(&it), v.clone()),
                        None => prop_assert!(!it.valid()),
                    }
                }
                None => prop_assert!(!it.valid()),
            }
            let expect = all
                .iter()
                .find(|v| v.0 == key && v.1 <= ts)
                .map(|v| match &v.2 {
                    Some(x) => Found::Value(x.clone()),
                    None => Found::Tombstone,
                });
            prop_assert_eq!(t.get(&key, Ts::from(ts)).unwrap(), expect);
            prop_assert!(it.status().is_ok());
        }
    }
    Ok(())
}
