//! Tests across the manifest's files: the spec's example, damage to every
//! byte of a manifest and of `CURRENT`, every cut, the torn-tail shapes,
//! recovery without `CURRENT`, the writer, and a power cut (and a process
//! crash) after every file-system call of creation, appends and rotations.
//! Also the helpers the files' own tests share.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::edit::IGNORABLE_TAG_BIT;
use super::log::{CREATION_BYTES, HEADER_BYTES, encode_frame, encode_manifest};
use super::*;
use crate::sync::Mutex;
use crate::types::Ts;
use crate::vfs::{FaultVfs, FileLock, MemVfs, VfsFile, create_dir_durable};

const DIR: &str = "/db";

/// A table of 5 versions (1 tombstone) at ts 10..=20.
pub(super) fn table(number: u64, lo: &[u8], hi: &[u8]) -> TableRecord {
    TableRecord {
        number,
        file_size: 4096,
        smallest_key: lo.to_vec(),
        largest_key: hi.to_vec(),
        min_ts: Ts::from(10),
        max_ts: Ts::from(20),
        entries: 5,
        tombstones: 1,
        max_lsn: Lsn(7),
    }
}

/// xorshift64: deterministic test data.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn key(&mut self) -> Vec<u8> {
        vec![b'a' + self.below(26) as u8]
    }
}

/// A random edit that `state` accepts, taking new table numbers from
/// `number`: a flush to level 0, a table moved down a level, a removal, a
/// table added straight to a level >= 1, or counters only (some with a
/// clean close).
pub(super) fn next_edit(
    rng: &mut Rng,
    state: &ManifestState,
    number: &mut dyn FnMut() -> u64,
) -> Edit {
    loop {
        let tables: Vec<(u8, TableRecord)> = state.tables().map(|(l, t)| (l, t.clone())).collect();
        let pick = |rng: &mut Rng| tables[rng.below(tables.len() as u64) as usize].clone();
        let mut edit = Edit::default();
        match rng.below(6) {
            0 | 1 => {
                let (a, b) = (rng.key(), rng.key());
                let n = number();
                edit.added
                    .push((0, table(n, &a.clone().min(b.clone()), &a.max(b))));
                edit.next_file_number = Some(n + 1);
                edit.flushed_lsn = Some(Lsn(state.flushed_lsn().0 + 1 + rng.below(5)));
                edit.max_ts = Some(Ts::from(state.max_ts().get() + rng.below(100)));
            }
            2 if !tables.is_empty() => {
                let (level, t) = pick(rng);
                edit.removed.push((level, t.number));
                edit.added.push(((level + 1).min(NUM_LEVELS as u8 - 1), t));
            }
            3 if !tables.is_empty() => edit.removed.push({
                let (level, t) = pick(rng);
                (level, t.number)
            }),
            4 => {
                let (a, b) = (rng.key(), rng.key());
                let n = number();
                let level = 1 + rng.below(NUM_LEVELS as u64 - 1) as u8;
                edit.added
                    .push((level, table(n, &a.clone().min(b.clone()), &a.max(b))));
                edit.next_file_number = Some(n + 1);
            }
            _ => {
                edit.epoch = Some(state.epoch() + rng.below(2));
                if rng.below(2) == 0 {
                    edit.clean_close = Some(Lsn(rng.below(100)));
                }
            }
        }
        if state.check(&edit).is_ok() {
            return edit;
        }
    }
}

/// `n` edits, each valid after the ones before it, from the state a new
/// manifest starts with (table numbers from 2 up).
pub(super) fn history(seed: u64, n: usize) -> Vec<Edit> {
    let mut rng = Rng(seed | 1);
    let mut state = ManifestState::new();
    let mut next = 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let edit = next_edit(&mut rng, &state, &mut || {
            next += 1;
            next - 1
        });
        state
            .apply(&edit)
            .expect("next_edit returns an edit the state accepts");
        out.push(edit);
    }
    out
}

pub(super) fn arb_history(n: usize) -> impl Strategy<Value = Vec<Edit>> {
    any::<u64>().prop_map(move |seed| history(seed, n))
}

/// A [`MemVfs`] that, after every call that may change the file system
/// (and once before the first), records what a power cut and what a
/// process crash would leave at that instant.
#[derive(Debug, Clone)]
pub(super) struct StepVfs {
    mem: MemVfs,
    cuts: Arc<Mutex<Vec<MemVfs>>>,
}

impl StepVfs {
    pub(super) fn new(mem: MemVfs) -> Self {
        let steps = Self {
            mem,
            cuts: Arc::default(),
        };
        steps.record();
        steps
    }

    fn record(&self) {
        let (power, kill) = (self.mem.crash(), self.mem.process_crash());
        let mut cuts = self.cuts.lock();
        cuts.push(power);
        cuts.push(kill);
    }

    fn step<T>(&self, result: io::Result<T>) -> io::Result<T> {
        self.record();
        result
    }

    /// The file systems recorded so far, in order (a power cut, then a
    /// process crash, per call); clears the record.
    pub(super) fn take_cuts(&self) -> Vec<MemVfs> {
        std::mem::take(&mut *self.cuts.lock())
    }
}

#[derive(Debug)]
struct StepFile {
    inner: Box<dyn VfsFile>,
    steps: StepVfs,
}

impl VfsFile for StepFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.inner.write_all(buf);
        self.steps.step(r)
    }
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let r = self.inner.write_all_at(offset, buf);
        self.steps.step(r)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let r = self.inner.set_len(len);
        self.steps.step(r)
    }
    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let r = self.inner.sync_data();
        self.steps.step(r)
    }
}

impl Vfs for StepVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.step(self.mem.create_dir_all(path))
    }
    fn dir_exists(&self, path: &Path) -> io::Result<bool> {
        self.mem.dir_exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.mem.list(dir)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.open_write(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.step(self.mem.open_write(path))?;
        Ok(Box::new(StepFile {
            inner,
            steps: self.clone(),
        }))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.mem.read_all(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.step(self.mem.truncate(path, len))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.step(self.mem.remove(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(self.mem.rename(from, to))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.step(self.mem.sync_dir(path))
    }
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.mem.lock(path)
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// `docs/format/manifest.md`, "Worked example", byte for byte.
#[test]
fn the_spec_example_is_what_the_code_writes() {
    let mut snapshot = ManifestState::new().snapshot();
    snapshot.next_file_number = Some(2);
    let ts = 0x0191_0000_0000_0000_u64;
    let flush = Edit {
        next_file_number: Some(3),
        flushed_lsn: Some(Lsn(41)),
        max_ts: Some(Ts::from(ts + 41)),
        added: vec![(
            0,
            TableRecord {
                number: 2,
                file_size: 4096,
                smallest_key: b"a".to_vec(),
                largest_key: b"z".to_vec(),
                min_ts: Ts::from(ts + 1),
                max_ts: Ts::from(ts + 41),
                entries: 41,
                tombstones: 0,
                max_lsn: Lsn(41),
            },
        )],
        ..Edit::default()
    };
    let bytes = encode_manifest(1, &[snapshot.clone(), flush.clone()]).unwrap();
    let spec = hex(concat!(
        "53545241544d414e010000001c0000000100000000000000ea40c343d0bf9f6c",
        "38000000520fdb14010008000000020000000000000002000800000000000000",
        "0000000003000800000000000000000000000400080000000000000000000000",
        "f0a2d075730000006ed0ce580100080000000300000000000000020008000000",
        "2900000000000000030008000000290000000000910106004300000000020000",
        "0000000000001000000000000001000000000091012900000000009101290000",
        "0000000000000000000000000029000000000000000100000061010000007a",
    ));
    assert_eq!(bytes, spec);
    assert_eq!(
        encode_manifest(1, &[snapshot]).unwrap().len(),
        CREATION_BYTES
    );
    let replayed = replay(&bytes, 1).unwrap();
    assert_eq!(replayed.records, 2);
    assert_eq!(replayed.snapshot_end, CREATION_BYTES as u64);
    assert_eq!(replayed.state.level(0), [flush.added[0].1.clone()]);
}

/// A small manifest (number 1): a snapshot and three edits; with the
/// offset of each record and the state after each.
fn small() -> (Vec<u8>, Vec<usize>, Vec<ManifestState>) {
    let mut records = vec![Edit {
        next_file_number: Some(2),
        ..ManifestState::new().snapshot()
    }];
    records.extend(history(7, 3));
    let bytes = encode_manifest(1, &records).expect("a valid small manifest");
    let mut starts = vec![HEADER_BYTES];
    let mut states = Vec::new();
    let mut state = ManifestState::new();
    for r in &records {
        let mut frame = Vec::new();
        encode_frame(&r.encode().expect("a valid small manifest"), &mut frame)
            .expect("a valid small manifest");
        starts.push(starts.last().expect("a valid small manifest") + frame.len());
        state.apply(r).expect("a valid small manifest");
        states.push(state.clone());
    }
    assert_eq!(*starts.last().expect("a valid small manifest"), bytes.len());
    starts.pop();
    (bytes, starts, states)
}

/// Every value of every byte: corruption, or the state of all records, or
/// (damage in the last record's payload or crc, rule 1b) of all but the
/// last, with the tail reported where that record starts. Never a panic,
/// never `UnsupportedFormat` (the header CRC is checked first), never an
/// older state.
#[test]
fn every_value_of_every_byte_is_corruption_or_at_most_the_last_record_dropped() {
    let (good, starts, states) = small();
    let last = *starts.last().unwrap();
    let (mut corrupt, mut dropped) = (0, 0);
    for at in 0..good.len() {
        for xor in 1..=255u8 {
            let mut bad = good.clone();
            bad[at] ^= xor;
            match replay(&bad, 1) {
                Err(ReplayError::Corrupt { offset, .. }) => {
                    assert!(
                        offset as usize <= at,
                        "byte {at}: corruption reported after it"
                    );
                    corrupt += 1;
                }
                Err(ReplayError::Version(v)) => panic!("byte {at} ^ {xor}: version {v}"),
                Ok(r) => {
                    assert!(
                        at >= last,
                        "byte {at} ^ {xor}: a record before the last was dropped"
                    );
                    assert_eq!(r.torn_at, Some(last as u64), "byte {at}");
                    assert_eq!(r.state, states[states.len() - 2], "byte {at}");
                    dropped += 1;
                }
            }
        }
    }
    assert!(
        corrupt > 0 && dropped > 0,
        "{corrupt} corrupt, {dropped} dropped"
    );
}

/// Every cut: inside the header or the snapshot, corruption (they were
/// synced before CURRENT named the file); after, the records wholly before
/// the cut, and a torn tail where the cut one starts.
#[test]
fn every_cut_is_corruption_before_the_snapshot_ends_and_a_prefix_after() {
    let (good, starts, states) = small();
    for cut in 0..=good.len() {
        let whole =
            starts.iter().skip(1).filter(|&&s| s <= cut).count() + usize::from(cut == good.len());
        match replay(&good[..cut], 1) {
            Err(ReplayError::Corrupt { .. }) => assert!(cut < starts[1], "cut {cut}"),
            Err(e) => panic!("cut {cut}: {e:?}"),
            Ok(r) => {
                assert!(cut >= starts[1], "cut {cut}");
                assert_eq!(r.records as usize, whole, "cut {cut}");
                assert_eq!(r.state, states[whole - 1], "cut {cut}");
                let torn = starts.get(whole).filter(|&&s| s < cut).map(|&s| s as u64);
                assert_eq!(r.torn_at, torn, "cut {cut}");
                assert_eq!(
                    r.valid_len as usize,
                    starts.get(whole).copied().unwrap_or(cut).min(cut)
                );
            }
        }
    }
}

#[test]
fn the_shapes_a_torn_last_append_leaves() {
    let (good, starts, states) = small();
    let last = *starts.last().unwrap();
    let all = states.last().unwrap();
    let before = &states[states.len() - 2];
    let replayed = |bytes: &[u8]| replay(bytes, 1);
    let zeroed = |from: usize, to: usize| {
        let mut b = good.clone();
        b[from..to].fill(0);
        b
    };
    // The length reached the disk, the payload (or part of it) did not.
    let payload = last + 12;
    let last_non_zero = good.iter().rposition(|&b| b != 0).unwrap();
    for (from, to) in [
        (payload, good.len()),
        (payload, payload + 2),
        (last_non_zero, last_non_zero + 1),
    ] {
        let damaged = zeroed(from, to);
        assert_ne!(damaged, good, "{from}..{to} changes nothing");
        let r = replayed(&damaged).unwrap();
        assert_eq!(
            (&r.state, r.torn_at),
            (before, Some(last as u64)),
            "{from}..{to}"
        );
    }
    // Nothing, or only part of the frame header, reached the disk: zeros after.
    for from in [last, last + 1, last + 6, last + 11] {
        let r = replayed(&zeroed(from, good.len())).unwrap();
        assert_eq!(
            (&r.state, r.torn_at),
            (before, Some(last as u64)),
            "from {from}"
        );
    }
    // Zeros after a clean end, and a file cut inside the frame header.
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 40]);
    let r = replayed(&longer).unwrap();
    assert_eq!((&r.state, r.torn_at), (all, Some(good.len() as u64)));
    let r = replayed(&good[..last + 5]).unwrap();
    assert_eq!(r.torn_at, Some(last as u64));
    // The known limit of rule 1c: the frame header lost but later bytes of
    // the append present cannot be told from damage, so it is corruption.
    let Err(ReplayError::Corrupt { offset, what }) = replayed(&zeroed(last, last + 12)) else {
        panic!("a lost frame header with its payload present must be corruption")
    };
    assert_eq!(offset as usize, last);
    assert!(what.contains("length"), "{what}");
}

#[test]
fn damage_in_a_record_that_is_not_the_last_is_corruption_at_its_offset() {
    let (good, starts, _) = small();
    let middle = starts[2];
    for (at, what) in [
        (middle + 1, "checksum"),     // crc
        (middle + 7, "length"),       // the high byte of len: would run past the end
        (middle + 9, "length"),       // len_crc
        (middle + 20, "checksum"),    // payload
        (starts[1] + 14, "checksum"), // the first edit
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        let Err(ReplayError::Corrupt { offset, what: said }) = replay(&bad, 1) else {
            panic!("byte {at}: not corruption")
        };
        let record = starts.iter().rev().find(|&&s| s <= at).unwrap();
        assert_eq!(offset as usize, *record, "byte {at}");
        assert!(said.contains(what), "byte {at}: {said}");
    }
    // The snapshot record.
    let mut bad = good.clone();
    bad[HEADER_BYTES + 20] ^= 1;
    assert!(matches!(
        replay(&bad, 1),
        Err(ReplayError::Corrupt { offset: 28, .. })
    ));
}

/// Records whose CRCs match but whose payload does not decode or apply:
/// corruption even as the last record (no torn write makes one).
#[test]
fn checksummed_records_that_do_not_decode_or_apply_are_corruption_even_last() {
    let (good, _, states) = small();
    let mut unknown = 8u16.to_le_bytes().to_vec();
    unknown.extend_from_slice(&0u32.to_le_bytes());
    let payloads: Vec<(Vec<u8>, &str)> = vec![
        (unknown, "unknown tag 8"),
        (
            Edit {
                removed: vec![(3, 999)],
                ..Edit::default()
            }
            .encode()
            .unwrap(),
            "where it is not",
        ),
        (
            Edit {
                next_file_number: Some(1),
                ..Edit::default()
            }
            .encode()
            .unwrap(),
            "goes back",
        ),
    ];
    for (payload, want) in payloads {
        let mut bad = good.clone();
        encode_frame(&payload, &mut bad).unwrap();
        let Err(ReplayError::Corrupt { offset, what }) = replay(&bad, 1) else {
            panic!("{want}: not corruption")
        };
        assert_eq!(offset as usize, good.len());
        assert!(what.contains(want), "{what}");
    }
    // An ignorable field is skipped: an empty edit (which clears a clean close).
    let mut hint = (IGNORABLE_TAG_BIT | 3).to_le_bytes().to_vec();
    hint.extend_from_slice(&2u32.to_le_bytes());
    hint.extend_from_slice(b"hi");
    let mut with_hint = good.clone();
    encode_frame(&hint, &mut with_hint).unwrap();
    let mut expected = states.last().unwrap().clone();
    expected.apply(&Edit::default()).unwrap();
    assert_eq!(replay(&with_hint, 1).unwrap().state, expected);
    // A first record that is not a snapshot.
    let edit_first = encode_manifest(1, &[Edit::default()]).unwrap();
    let Err(ReplayError::Corrupt { offset: 28, what }) = replay(&edit_first, 1) else {
        panic!("not corruption")
    };
    assert!(what.contains("not a snapshot"), "{what}");
}

#[test]
fn header_fields_are_checked_after_its_checksum() {
    let (good, _, _) = small();
    let with = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let crc = crc32fast::hash(&b[..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        replay(&b, 1)
    };
    assert_eq!(with(8, &2u16.to_le_bytes()), Err(ReplayError::Version(2)));
    for (at, bytes, what) in [
        (8, &0u16.to_le_bytes()[..], "header fields"),
        (10, &1u16.to_le_bytes()[..], "header fields"),
        (12, &32u32.to_le_bytes()[..], "header fields"),
        (0, &b"STRATWAL"[..], "magic"),
        (16, &2u64.to_le_bytes()[..], "says manifest 2, not 1"),
    ] {
        let Err(ReplayError::Corrupt {
            offset: 0,
            what: said,
        }) = with(at, bytes)
        else {
            panic!("{what}: not corruption at 0")
        };
        assert!(said.contains(what), "{said}");
    }
    assert!(
        replay(&good, 2).is_err(),
        "the number CURRENT gives must match"
    );
    // A manifest whose number is not below the next file number.
    let low = encode_manifest(5, &[ManifestState::new().snapshot()]).unwrap();
    let Err(ReplayError::Corrupt { what, .. }) = replay(&low, 5) else {
        panic!("not corruption")
    };
    assert!(what.contains("not below the next file number"), "{what}");
}

fn db() -> (MemVfs, PathBuf) {
    let mem = MemVfs::new();
    create_dir_durable(&mem, Path::new(DIR)).expect("mkdir on MemVfs");
    (mem, PathBuf::from(DIR))
}

fn corruption_in(err: Error) -> (PathBuf, u64, String) {
    match err {
        Error::Corruption { file, offset, what } => (file, offset, what),
        other => panic!("not corruption: {other}"),
    }
}

#[test]
fn without_current_only_a_cut_short_first_creation_is_no_manifest() {
    let (mem, dir) = db();
    assert_eq!(recover(&mem, Path::new("/nowhere")).unwrap(), None);
    assert_eq!(recover(&mem, &dir).unwrap(), None);
    let creation = encode_manifest(
        1,
        &[Edit {
            next_file_number: Some(2),
            ..ManifestState::new().snapshot()
        }],
    )
    .unwrap();
    let first = dir.join(manifest_name(1));
    for len in 0..=creation.len() {
        mem.write_file(&first, creation[..len].to_vec());
        assert_eq!(recover(&mem, &dir).unwrap(), None, "{len} bytes");
    }
    mem.write_file(&first, vec![0xee; CREATION_BYTES]);
    assert_eq!(
        recover(&mem, &dir).unwrap(),
        None,
        "garbage of a creation's length"
    );
    let lost = |mem: &MemVfs| {
        let (file, offset, what) = corruption_in(recover(mem, &dir).unwrap_err());
        assert_eq!((file, offset), (dir.join(CURRENT), 0));
        what
    };
    mem.write_file(&first, vec![0; CREATION_BYTES + 1]);
    assert!(lost(&mem).contains("CURRENT is missing"));
    mem.remove(&first).unwrap();
    mem.write_file(&dir.join(manifest_name(2)), creation.clone());
    assert!(lost(&mem).contains(&manifest_name(2)));
    mem.remove(&dir.join(manifest_name(2))).unwrap();
    mem.write_file(&dir.join(TABLES_DIR).join(table_name(2)), vec![1]);
    assert!(lost(&mem).contains("table"));
}

#[test]
fn current_naming_a_missing_manifest_or_a_newer_version_is_an_error_naming_it() {
    let (mem, dir) = db();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    Log::create(vfs, &dir, DEFAULT_ROTATE_BYTES).unwrap();
    let path = dir.join(manifest_name(1));
    let bytes = mem.read_all(&path).unwrap();
    mem.remove(&path).unwrap();
    let (file, offset, what) = corruption_in(recover(&mem, &dir).unwrap_err());
    assert_eq!((file, offset), (path.clone(), 0));
    assert!(what.contains("missing"), "{what}");
    let mut newer = bytes;
    newer[8] = 2;
    let crc = crc32fast::hash(&newer[..24]);
    newer[24..28].copy_from_slice(&crc.to_le_bytes());
    mem.write_file(&path, newer);
    let err = recover(&mem, &dir).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedFormat { file, found: 2, supported: 1 } if *file == path),
        "{err}"
    );
}

/// Through the files: every value of every `CURRENT` byte is corruption
/// naming `CURRENT`, never another manifest and never "no manifest".
#[test]
fn every_value_of_every_current_byte_is_corruption_through_recovery() {
    let (mem, dir) = db();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    let mut log = Log::create(vfs, &dir, DEFAULT_ROTATE_BYTES).unwrap();
    log.append(&history(3, 1)[0]).unwrap();
    let good = mem.read_all(&dir.join(CURRENT)).unwrap();
    for at in 0..good.len() {
        for xor in 1..=255u8 {
            let mut bad = good.clone();
            bad[at] ^= xor;
            mem.write_file(&dir.join(CURRENT), bad);
            let (file, _, _) = corruption_in(recover(&mem, &dir).unwrap_err());
            assert_eq!(file, dir.join(CURRENT));
        }
    }
    mem.write_file(&dir.join(CURRENT), good);
    assert_eq!(
        recover(&mem, &dir).unwrap().unwrap().replayed.state,
        *log.state()
    );
}

#[test]
fn the_writer_round_trips_through_recovery_and_records_numbers_it_handed_out() {
    let (mem, dir) = db();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    let mut log = Log::create(vfs.clone(), &dir, DEFAULT_ROTATE_BYTES).unwrap();
    let edits = history(11, 30);
    for e in &edits {
        log.append(e).unwrap();
    }
    let n = log.new_file_number().unwrap();
    assert!(n >= log.state().next_file_number());
    log.append(&Edit::default()).unwrap();
    assert!(
        log.state().next_file_number() > n,
        "the number handed out is recorded"
    );
    let r = recover(&mem, &dir).unwrap().unwrap();
    assert_eq!((r.number, r.replayed.records), (1, 32));
    assert_eq!(r.replayed.state, *log.state());
    assert_eq!(r.replayed.torn_at, None);
    // Recovery of a power cut now gives the same: every append was synced.
    assert_eq!(recover(&mem.crash(), &dir).unwrap().unwrap(), r);
    assert!(
        Log::create(vfs, &dir, DEFAULT_ROTATE_BYTES).is_err(),
        "a manifest exists"
    );
}

#[test]
fn resume_cuts_a_torn_tail_before_it_appends() {
    let (mem, dir) = db();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    let mut log = Log::create(vfs.clone(), &dir, DEFAULT_ROTATE_BYTES).unwrap();
    for e in history(5, 3) {
        log.append(&e).unwrap();
    }
    let path = dir.join(manifest_name(1));
    let mut bytes = mem.read_all(&path).unwrap();
    let clean = bytes.len() as u64;
    bytes.extend_from_slice(&[9, 9, 9, 9, 200, 0, 0]); // a torn frame header
    mem.write_file(&path, bytes);
    let r = recover(&mem, &dir).unwrap().unwrap();
    assert_eq!(r.replayed.torn_at, Some(clean));
    let state = r.replayed.state.clone();
    let mut log = Log::resume(vfs, &dir, r, DEFAULT_ROTATE_BYTES).unwrap();
    assert_eq!(
        mem.crash().read_all(&path).unwrap().len() as u64,
        clean,
        "cut, synced"
    );
    let mut rng = Rng(3);
    let edit = next_edit(&mut rng, &state, &mut || log.new_file_number().unwrap());
    log.append(&edit).unwrap();
    let r = recover(&mem, &dir).unwrap().unwrap();
    assert_eq!((r.replayed.records, r.replayed.torn_at), (5, None));
    assert_eq!(r.replayed.state, *log.state());
}

#[test]
fn a_refused_edit_writes_nothing_and_a_failed_sync_poisons() {
    let (mem, dir) = db();
    let (fault, config) = FaultVfs::new(Arc::new(mem.clone()));
    let mut log = Log::create(Arc::new(fault), &dir, DEFAULT_ROTATE_BYTES).unwrap();
    let path = dir.join(manifest_name(1));
    let before = mem.read_all(&path).unwrap();
    let bad = Edit {
        removed: vec![(0, 99)],
        ..Edit::default()
    };
    let err = log.append(&bad).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(w) if w.contains("table 99")),
        "{err}"
    );
    assert_eq!(mem.read_all(&path).unwrap(), before);
    let edits = history(9, 2);
    log.append(&edits[0]).unwrap();
    let durable = log.state().clone();
    config.fail_syncs_now();
    assert!(matches!(log.append(&edits[1]), Err(Error::Io(_))));
    assert!(matches!(log.append(&edits[1]), Err(Error::Poisoned)));
    assert!(matches!(log.append(&Edit::default()), Err(Error::Poisoned)));
    // The record was written, not synced: a process crash keeps it, a
    // power cut does not; either recovers a whole state.
    let kept = recover(&mem, &dir).unwrap().unwrap().replayed.state;
    let mut after = durable.clone();
    after.apply(&edits[1]).unwrap();
    assert_eq!(kept, after);
    assert_eq!(
        recover(&mem.crash(), &dir).unwrap().unwrap().replayed.state,
        durable
    );
}

/// The manifest files in `vfs`'s `DIR`.
fn manifests(vfs: &dyn Vfs) -> Vec<u64> {
    let mut n: Vec<u64> = vfs
        .list(Path::new(DIR))
        .expect("the database directory exists")
        .iter()
        .filter_map(|name| parse_manifest_name(name))
        .collect();
    n.sort_unstable();
    n
}

#[test]
fn rotation_keeps_the_state_takes_fresh_numbers_and_does_not_rewrite_after_every_edit() {
    let (mem, dir) = db();
    let vfs: Arc<dyn Vfs> = Arc::new(mem.clone());
    let mut log = Log::create(vfs, &dir, 1).unwrap();
    let mut rng = Rng(77);
    let (mut rotations, appends) = (0, 200);
    let mut numbers = BTreeSet::from([1]);
    for _ in 0..appends {
        let state = log.state().clone();
        let edit = next_edit(&mut rng, &state, &mut || log.new_file_number().unwrap());
        for (_, t) in &edit.added {
            if !state.contains(t.number) {
                assert!(numbers.insert(t.number), "number {} used twice", t.number);
            }
        }
        let number = log.number();
        log.append(&edit).unwrap();
        if log.number() != number {
            rotations += 1;
            assert!(
                numbers.insert(log.number()),
                "manifest {} reused a number",
                log.number()
            );
            assert!(log.number() < log.state().next_file_number());
        }
        assert_eq!(
            manifests(&mem),
            [log.number()],
            "the old manifest is removed"
        );
        let r = recover(&mem, &dir).unwrap().unwrap();
        assert_eq!((r.number, &r.replayed.state), (log.number(), log.state()));
    }
    assert!(rotations >= 10, "{rotations} rotations");
    assert!(
        rotations < appends / 2,
        "{rotations} rotations in {appends} appends"
    );
}

/// `result`'s value; a failure names the crash step.
fn at_step<T>(step: usize, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("step {step}: {e}"))
}

/// After a cut: the recovered state is one of `allowed` (or, with
/// `None` allowed, no manifest); every table it names has its file; and the
/// database goes on: obsolete files removed, the writer resumed (or created)
/// and an edit appended with a fresh number that no file has, recovered.
fn check_cut(cut: &MemVfs, allowed: &[Option<&ManifestState>], step: usize) {
    let dir = Path::new(DIR);
    let recovered = at_step(step, recover(cut, dir));
    let state = recovered.as_ref().map(|r| &r.replayed.state);
    assert!(
        allowed.contains(&state),
        "step {step}: {state:?} is not an allowed state"
    );
    for (_, t) in state.into_iter().flat_map(ManifestState::tables) {
        let file = dir.join(TABLES_DIR).join(table_name(t.number));
        assert!(
            cut.read_all(&file).is_ok(),
            "step {step}: table {} lost",
            t.number
        );
    }
    let live = recovered.as_ref().map(|r| (r.number, &r.replayed.state));
    let obsolete = at_step(step, obsolete_files(cut, dir, live));
    at_step(step, remove_files(cut, &obsolete));
    let vfs: Arc<dyn Vfs> = Arc::new(cut.clone());
    let mut log = at_step(
        step,
        match recovered {
            Some(r) => Log::resume(vfs, dir, r, 300),
            None => Log::create(vfs, dir, 300),
        },
    );
    let n = at_step(step, log.new_file_number());
    let file = dir.join(TABLES_DIR).join(table_name(n));
    assert!(
        cut.read_all(&file).is_err(),
        "step {step}: number {n} handed out again"
    );
    let edit = Edit {
        added: vec![(0, table(n, b"a", b"b"))],
        ..Edit::default()
    };
    at_step(step, log.append(&edit));
    let again = at_step(step, recover(cut, dir)).expect("the manifest just written");
    assert_eq!(again.replayed.state, *log.state(), "step {step}");
}

/// A power cut and a process crash after every file-system call of a
/// database's life: the first manifest's creation, flushes that write a
/// table before the edit naming it, compactions that delete tables after
/// the edit removing them, and rotations (with a tiny rotation size). Each
/// recovers a whole state: the one before the operation or the one after
/// (an append that rotates may also leave the edit in the old manifest),
/// never a torn or mixed one, and the database goes on from it.
#[test]
fn a_crash_after_any_call_recovers_the_state_before_or_after_and_goes_on() {
    let (mem, dir) = db();
    create_dir_durable(&mem, &dir.join(TABLES_DIR)).unwrap();
    let steps = StepVfs::new(mem.clone());
    let vfs: Arc<dyn Vfs> = Arc::new(steps.clone());
    let mut log = Log::create(vfs.clone(), &dir, 300).unwrap();
    let mut step = 0;
    for cut in steps.take_cuts() {
        check_cut(&cut, &[None, Some(log.state())], step);
        step += 1;
    }
    let mut rng = Rng(2026);
    let mut rotations = 0;
    for _ in 0..30 {
        let before = log.state().clone();
        let edit = next_edit(&mut rng, &before, &mut || log.new_file_number().unwrap());
        // A flush or compaction writes its tables (synced, named) first.
        for (_, t) in edit
            .added
            .iter()
            .filter(|(_, t)| !before.contains(t.number))
        {
            let path = dir.join(TABLES_DIR).join(table_name(t.number));
            let mut f = vfs.open_write(&path).unwrap();
            f.write_all(b"table").unwrap();
            f.sync_data().unwrap();
            vfs.sync_dir(&dir.join(TABLES_DIR)).unwrap();
        }
        let number = log.number();
        log.append(&edit).unwrap();
        // And deletes the tables it removed once the edit is durable.
        for &(_, n) in &edit.removed {
            if !log.state().contains(n) {
                vfs.remove(&dir.join(TABLES_DIR).join(table_name(n)))
                    .unwrap();
            }
        }
        let after = log.state().clone();
        // The edit in the old manifest, before a rotation: `after` but for
        // the counter the rotation took a number from.
        let mut in_old = before.clone();
        in_old
            .apply(&Edit {
                next_file_number: Some(
                    after.next_file_number() - u64::from(log.number() != number),
                ),
                ..edit.clone()
            })
            .unwrap();
        rotations += u32::from(log.number() != number);
        for cut in steps.take_cuts() {
            check_cut(&cut, &[Some(&before), Some(&in_old), Some(&after)], step);
            step += 1;
        }
    }
    assert!(rotations >= 2, "{rotations} rotations");
    assert!(step > 300, "{step} cuts");
}

#[test]
fn obsolete_files_are_every_file_the_live_manifest_does_not_name() {
    let (mem, dir) = db();
    let mut state = ManifestState::new();
    state
        .apply(&Edit {
            next_file_number: Some(10),
            added: vec![(0, table(2, b"a", b"b"))],
            ..Edit::default()
        })
        .unwrap();
    let tables = dir.join(TABLES_DIR);
    for name in [
        manifest_name(1),
        manifest_name(3),
        CURRENT.into(),
        CURRENT_TMP.into(),
        "LOCK".into(),
    ] {
        mem.write_file(&dir.join(name), vec![1]);
    }
    for name in [table_name(2), table_name(4), "notes.txt".into()] {
        mem.write_file(&tables.join(name), vec![1]);
    }
    let obsolete = obsolete_files(&mem, &dir, Some((3, &state))).unwrap();
    let expected = vec![
        dir.join(CURRENT_TMP),
        dir.join(manifest_name(1)),
        tables.join(table_name(4)),
    ];
    assert_eq!(obsolete, expected);
    remove_files(&mem, &obsolete).unwrap();
    let after = mem.crash();
    for file in &expected {
        assert!(
            after.read_all(file).is_err(),
            "{file:?} is back after a power cut"
        );
    }
    assert!(after.read_all(&tables.join(table_name(2))).is_ok());
    // Without a manifest, every manifest file and table is obsolete (and
    // `recover` refuses a directory with a table but no manifest).
    let none = obsolete_files(&mem, &dir, None).unwrap();
    assert_eq!(
        none,
        [dir.join(manifest_name(3)), tables.join(table_name(2))]
    );
    assert!(
        obsolete_files(&mem, Path::new("/nowhere"), None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn names_round_trip_and_others_are_not_taken_for_manifests_or_tables() {
    assert_eq!(manifest_name(1), "MANIFEST-00000000000000000001");
    assert_eq!(
        parse_manifest_name(&manifest_name(u64::MAX)),
        Some(u64::MAX)
    );
    assert_eq!(parse_table_name(&table_name(42)), Some(42));
    for name in [
        "MANIFEST-1",
        "MANIFEST-00000000000000000000",
        "MANIFEST-0000000000000000000x",
        "CURRENT",
    ] {
        assert_eq!(parse_manifest_name(name), None, "{name}");
    }
    for name in [
        "1.sst",
        "00000000000000000001.wal",
        "0000000000000000000a.sst",
    ] {
        assert_eq!(parse_table_name(name), None, "{name}");
    }
}

#[test]
fn the_wal_must_continue_the_manifest() {
    let mut state = ManifestState::new();
    let at = |oldest: Option<u64>, last: u64| WalExtent {
        oldest_lsn: oldest.map(Lsn),
        last_lsn: Lsn(last),
    };
    let check = |state: &ManifestState, wal| check_wal(state, wal, Path::new("/db/MANIFEST"));
    assert!(check(&state, at(None, 0)).is_ok(), "a new database");
    assert!(check(&state, at(Some(1), 9)).is_ok());
    assert!(check(&state, at(Some(2), 9)).is_err(), "lsn 1 is nowhere");
    state
        .apply(&Edit {
            flushed_lsn: Some(Lsn(10)),
            ..Edit::default()
        })
        .unwrap();
    for ok in [at(Some(11), 20), at(Some(3), 10), at(Some(11), 11)] {
        assert!(check(&state, ok).is_ok(), "{ok:?}");
    }
    for (bad, what) in [
        (at(Some(12), 20), "segments are missing"),
        (at(None, 0), "the WAL is empty"),
        (at(Some(3), 9), "below the flushed lsn"),
    ] {
        let (_, _, said) = corruption_in(check(&state, bad).unwrap_err());
        assert!(said.contains(what), "{said}");
    }
    state
        .apply(&Edit {
            clean_close: Some(Lsn(30)),
            ..Edit::default()
        })
        .unwrap();
    assert!(check(&state, at(Some(5), 30)).is_ok());
    let (_, _, said) = corruption_in(check(&state, at(Some(5), 29)).unwrap_err());
    assert!(said.contains("clean close"), "{said}");
}
