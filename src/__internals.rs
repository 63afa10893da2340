//! Internals exposed to fuzz targets (`fuzzing`) and benchmarks
//! (`bench-internals`). Not a stable API; never enabled by default.

use std::path::Path;
use std::sync::Arc;

use crate::sync::Mutex;
use crate::vfs::{OsVfs, Vfs};
use crate::wal::format::{
    CommitFrameBuilder, CommitHeader, HeaderError, SEGMENT_HEADER_BYTES, SegmentHeader,
    seal_commit, sync_mark,
};
use crate::wal::reader::{Chain, Outcome, ReadError, SegmentFrames, scan_frames};
use crate::wal::{GroupCommit, SegmentSize, Writer};

/// The salt of segments built here.
const FUZZ_SALT: u64 = 0x5a17;

/// A transaction's operations: `(key, Some(value))` puts, `(key, None)` deletes.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One decoded commit: `(lsn, commit ts, ops)`.
pub type Record = (u64, u64, Ops);

/// How scanning one segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalScan {
    /// The header could not be used (torn, damaged or a newer version).
    BadHeader,
    /// Every frame was valid.
    Clean(Vec<Record>),
    /// A torn tail starts at `offset`; `records` precede it.
    TornTail {
        /// Where the tail starts.
        offset: u64,
        /// Records before it.
        records: Vec<Record>,
    },
    /// The frames end cleanly at `offset`, followed only by zeros
    /// (preallocated space).
    ZeroTail {
        /// Where the zeros start.
        offset: u64,
        /// Records before them.
        records: Vec<Record>,
    },
    /// Damage a torn write cannot explain.
    Corrupt {
        /// Where.
        offset: u64,
    },
}

/// Reads `data` as a whole segment file (header and frames) the way
/// recovery does, as the newest segment (`is_last`) or an older one.
pub fn scan_wal_segment(data: &[u8], is_last: bool) -> WalScan {
    match SegmentHeader::decode(data) {
        Ok(h) => {
            let mut chain = Chain {
                last_lsn: crate::Lsn(h.first_lsn.0.saturating_sub(1)),
                last_crc: h.prev_crc,
                last_ts: crate::Ts::ZERO,
            };
            let mut records = Vec::new();
            let frames = SegmentFrames {
                start: SEGMENT_HEADER_BYTES,
                salt: h.salt,
                epoch: h.epoch,
            };
            let out = scan_frames(data, frames, &mut chain, is_last, &mut |r| {
                let ops = r
                    .ops()
                    .map(|o| (o.key.to_vec(), o.value.map(<[u8]>::to_vec)));
                records.push((r.header.lsn.0, r.header.commit_ts.get(), ops.collect()));
                Ok(())
            });
            match out {
                Ok(Outcome::Clean) => WalScan::Clean(records),
                Ok(Outcome::TornTail { offset }) => WalScan::TornTail { offset, records },
                Ok(Outcome::ZeroTail { offset }) => WalScan::ZeroTail { offset, records },
                Err(ReadError::Corrupt { offset, .. }) => WalScan::Corrupt { offset },
                Err(ReadError::Sink(_)) => WalScan::BadHeader,
            }
        }
        Err(
            HeaderError::Torn
            | HeaderError::Checksum
            | HeaderError::Version(_)
            | HeaderError::Corrupt(_),
        ) => WalScan::BadHeader,
    }
}

/// Encodes a valid segment holding `txns` (each sorted by key and
/// deduplicated here), one group per transaction, each group opened by a
/// SyncMark covering the group before it (as `Durability::Sync` writes).
pub fn build_wal_segment(txns: &[Ops]) -> Vec<u8> {
    let header = SegmentHeader {
        segment_no: 1,
        epoch: 0,
        first_lsn: crate::Lsn(1),
        prev_crc: 0,
        salt: FUZZ_SALT,
    };
    let mut out = header.encode().to_vec();
    let mut prev_crc = 0;
    for (i, ops) in txns.iter().enumerate() {
        let lsn = i as u64 + 1;
        let mut sorted = std::collections::BTreeMap::<&[u8], Option<&[u8]>>::new();
        for (k, v) in ops {
            sorted.insert(k, v.as_deref());
        }
        let mut frame = CommitFrameBuilder::with_capacity(64);
        for (k, v) in sorted {
            if frame.push(k, v).is_err() {
                break;
            }
        }
        out.extend_from_slice(&sync_mark(FUZZ_SALT, crate::Lsn(lsn - 1)));
        let h = CommitHeader {
            lsn: crate::Lsn(lsn),
            commit_ts: crate::Ts::from(lsn * 7),
            epoch: 0,
            prev_crc,
        };
        prev_crc = seal_commit(&frame.finish(), &h, &mut out);
    }
    out
}

/// A valid segment header for segment 1 starting at lsn 1.
pub fn segment_header() -> Vec<u8> {
    SegmentHeader {
        segment_no: 1,
        epoch: 0,
        first_lsn: crate::Lsn(1),
        prev_crc: 0,
        salt: FUZZ_SALT,
    }
    .encode()
    .to_vec()
}

/// Jobs of the bare WAL benchmark need no applying.
#[derive(Debug)]
pub struct NoApply;

impl crate::wal::Apply<()> for NoApply {
    fn apply(&self, _: Vec<()>, _: bool) {}
}

/// The WAL's group commit on its own, for benchmarks: each `append` encodes a
/// one-operation record, enqueues it under a commit-order lock and waits.
#[derive(Debug)]
pub struct WalBench {
    gc: GroupCommit<Writer, (), NoApply>,
    clock: Mutex<u64>,
}

impl WalBench {
    /// A fresh log in `dir` (which must be empty); `sync`: fdatasync each group.
    pub fn create(dir: &Path, sync: bool) -> crate::Result<WalBench> {
        // The first append creates segment 1.
        let writer = Writer::new(
            Arc::new(OsVfs),
            dir,
            1,
            0,
            SegmentSize {
                max_bytes: crate::DEFAULT_WAL_SEGMENT_BYTES,
                preallocate_bytes: crate::DEFAULT_WAL_PREALLOCATE_BYTES,
            },
        );
        Ok(WalBench {
            gc: GroupCommit::new(writer, NoApply, 0, crate::Lsn::ZERO, 0, sync)
                .with_spin_limit(crate::DEFAULT_COMMIT_SPIN),
            clock: Mutex::new(0),
        })
    }

    /// Appends one record and waits until it is written (and synced).
    pub fn append(&self, key: &[u8], value: &[u8]) -> crate::Result<()> {
        let mut frame = CommitFrameBuilder::with_capacity(key.len() + value.len() + 16);
        frame.push(key, Some(value))?;
        let frame = frame.finish();
        let lsn = {
            let mut clock = self.clock.lock();
            *clock += 1;
            self.gc.enqueue(&frame, crate::Ts::from(*clock), |_| ())?
        };
        self.gc.wait(lsn, false)
    }

    /// `(commits synced, syncs)` so far.
    pub fn syncs(&self) -> (u64, u64) {
        let c = self.gc.counters();
        (c.synced_commits, c.syncs)
    }
}

/// The memtable on its own, for benchmarks.
#[derive(Debug, Default)]
pub struct MemtableBench(crate::memtable::Memtable);

impl MemtableBench {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts a version.
    pub fn insert(&self, key: &[u8], ts: u64, value: &[u8]) {
        self.0.insert(key, crate::Ts::from(ts), Some(value));
    }

    /// The value visible at `ts`.
    pub fn get(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        self.0
            .get_hashed(key, crate::sst::hash64(key), crate::Ts::from(ts))
            .flatten()
    }
}

/// A version for the table helpers: `(key, ts, Some(value) | None = tombstone)`.
pub type TableVersion = (Vec<u8>, u64, Option<Vec<u8>>);

/// What reading a table file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SstRead {
    /// The file opened and every version read back, forwards.
    Versions(Vec<TableVersion>),
    /// Open or a read said `Corruption` (or `UnsupportedFormat`).
    Damaged,
}

fn sst_versions_forward(
    t: &Arc<crate::sst::Table>,
    limit: usize,
) -> crate::Result<Vec<TableVersion>> {
    let mut it = t.iter();
    it.seek_to_first();
    let mut out = Vec::new();
    while it.valid() && out.len() < limit {
        let value = (it.kind() == Some(crate::sst::EntryKind::Value)).then(|| it.value().to_vec());
        out.push((it.key().to_vec(), it.ts().get(), value));
        it.next();
    }
    it.status()?;
    Ok(out)
}

/// Opens `data` as a table file (in memory) and reads it forwards, then
/// backwards, then with a point get per version found; the backward read
/// and the gets must agree with the forward read. Panics only if the
/// reader contradicts itself (which the fuzz target reports).
pub fn read_sst(data: &[u8]) -> SstRead {
    let vfs = crate::vfs::MemVfs::new();
    let path = Path::new("fuzz.sst");
    let written = vfs.open_write(path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return SstRead::Damaged;
    }
    let Ok(table) = crate::sst::Table::open(&vfs, path).map(Arc::new) else {
        return SstRead::Damaged;
    };
    let Ok(forward) = sst_versions_forward(&table, 100_000) else {
        return SstRead::Damaged;
    };
    let mut it = table.iter();
    it.seek_to_last();
    let mut backward = Vec::new();
    while it.valid() && backward.len() < forward.len() + 1 {
        let value = (it.kind() == Some(crate::sst::EntryKind::Value)).then(|| it.value().to_vec());
        backward.push((it.key().to_vec(), it.ts().get(), value));
        it.prev();
    }
    assert!(
        it.status().is_ok(),
        "a table that read forwards fails backwards"
    );
    backward.reverse();
    assert_eq!(backward, forward, "backward and forward reads differ");
    for (k, ts, v) in &forward {
        let found = table.get(k, crate::Ts::from(*ts));
        let expect = Some(match v {
            Some(v) => crate::sst::Found::Value(v.clone()),
            None => crate::sst::Found::Tombstone,
        });
        assert_eq!(found.ok(), Some(expect), "a get disagrees with the scan");
    }
    SstRead::Versions(forward)
}

/// Builds a table file in memory from `versions` (sorted and deduplicated
/// here) with data blocks of about `block_bytes`; `None` if there is none.
pub fn build_sst(versions: &[TableVersion], block_bytes: usize) -> Option<Vec<u8>> {
    let mut sorted = std::collections::BTreeMap::new();
    for (k, ts, v) in versions {
        sorted.insert((k.clone(), std::cmp::Reverse(*ts)), v.clone());
    }
    let vfs = crate::vfs::MemVfs::new();
    let path = Path::new("build.sst");
    let opts = crate::sst::TableOptions {
        block_bytes,
        ..crate::sst::TableOptions::default()
    };
    let mut b = crate::sst::TableBuilder::create(&vfs, path, opts).ok()?;
    for ((k, ts), v) in &sorted {
        b.add(k, crate::Ts::from(ts.0), v.as_deref()).ok()?;
    }
    b.finish(0).ok()?;
    vfs.read_all(path).ok()
}

/// Runs the block validator and a cursor (seeks, both directions) over
/// arbitrary block contents; returns whether the validator accepted it.
/// Panics if a validated block's cursor reports damage or disorder.
pub fn decode_block(contents: &[u8], probe: &[u8]) -> bool {
    crate::sst::fuzz_block(contents, probe)
}

/// A table on the OS file system, for benchmarks.
#[derive(Debug)]
pub struct TableBench(Arc<crate::sst::Table>);

impl TableBench {
    /// Builds `path` from versions already in table order (key ascending,
    /// ts descending) and opens it; returns the table and its file size.
    pub fn build(
        path: &Path,
        versions: impl IntoIterator<Item = TableVersion>,
    ) -> crate::Result<(TableBench, u64)> {
        let mut b =
            crate::sst::TableBuilder::create(&OsVfs, path, crate::sst::TableOptions::default())?;
        for (k, ts, v) in versions {
            b.add(&k, crate::Ts::from(ts), v.as_deref())?;
        }
        let built = b.finish(0)?;
        let t = crate::sst::Table::open(&OsVfs, path)?;
        Ok((TableBench(Arc::new(t)), built.file_size))
    }

    /// The value of `key` visible at `ts` (`None`: absent or deleted).
    pub fn get(&self, key: &[u8], ts: u64) -> crate::Result<Option<Vec<u8>>> {
        Ok(match self.0.get(key, crate::Ts::from(ts))? {
            Some(crate::sst::Found::Value(v)) => Some(v),
            Some(crate::sst::Found::Tombstone) | None => None,
        })
    }

    /// Whether the bloom filter admits `key`.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.0.may_contain(key)
    }

    /// Reads `n` versions from the first at or after `key`; returns the
    /// value bytes read.
    pub fn scan(&self, key: &[u8], n: usize) -> crate::Result<usize> {
        let mut it = self.0.iter();
        it.seek(key, crate::Ts::MAX);
        let mut bytes = 0;
        for _ in 0..n {
            if !it.valid() {
                break;
            }
            bytes += it.value().len();
            it.next();
        }
        it.status()?;
        Ok(bytes)
    }
}

// ---------------------------------------------------------------------------
// Manifest (fuzz target `manifest_decode`).
// ---------------------------------------------------------------------------

/// How replaying a manifest file's bytes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestScan {
    /// Damage a torn write cannot explain, at `offset`.
    Corrupt {
        /// Where.
        offset: u64,
    },
    /// A newer format version (with a valid header checksum).
    Unsupported,
    /// The state the valid records hold.
    Replayed {
        /// Valid records, the snapshot included.
        records: u64,
        /// The end of the last valid record.
        valid_len: u64,
        /// Where a torn last record starts, if one does.
        torn_at: Option<u64>,
        /// The state, as the payload of a snapshot record (equal states
        /// give equal bytes).
        snapshot: Vec<u8>,
    },
}

/// Replays `data` as the bytes of manifest file `number`, the way recovery does.
pub fn scan_manifest(data: &[u8], number: u64) -> ManifestScan {
    match crate::manifest::replay(data, number) {
        Ok(r) => ManifestScan::Replayed {
            records: r.records,
            valid_len: r.valid_len,
            torn_at: r.torn_at,
            snapshot: r.state.snapshot().encode().unwrap_or_default(),
        },
        Err(crate::manifest::ReplayError::Corrupt { offset, .. }) => {
            ManifestScan::Corrupt { offset }
        }
        Err(crate::manifest::ReplayError::Version(_)) => ManifestScan::Unsupported,
    }
}

/// The manifest number `data`, as the contents of `CURRENT`, names.
pub fn decode_current(data: &[u8]) -> Option<u64> {
    crate::manifest::decode_current(data).ok()
}

/// The contents of a `CURRENT` naming manifest `number`.
pub fn encode_current(number: u64) -> Vec<u8> {
    crate::manifest::encode_current(number)
}

/// A valid manifest, number 1: the snapshot a new database's manifest
/// starts with, then one edit per op that the state before it accepts
/// (others are left out). `(kind, a, b)` with `kind < 128` adds a table
/// to level `kind % 7` with keys `[min(a, b)]..=[max(a, b)]` and raises
/// the counters; with `kind >= 128` it removes table `a % tables` (when
/// there is one). Returns the bytes and the number of records.
pub fn build_manifest(ops: &[(u8, u8, u8)]) -> (Vec<u8>, u64) {
    use crate::manifest::{Edit, ManifestState, NUM_LEVELS, TableRecord};
    let mut state = ManifestState::new();
    let snapshot = Edit {
        next_file_number: Some(2),
        ..state.snapshot()
    };
    if state.apply(&snapshot).is_err() {
        return (Vec::new(), 0);
    }
    let mut records = vec![snapshot];
    for &(kind, a, b) in ops {
        let mut edit = Edit::default();
        if kind < 128 {
            let number = state.next_file_number();
            let table = TableRecord {
                number,
                file_size: 1 + u64::from(a),
                smallest_key: vec![a.min(b)],
                largest_key: vec![a.max(b)],
                min_ts: crate::Ts::from(u64::from(b)),
                max_ts: crate::Ts::from(u64::from(b) + u64::from(a)),
                entries: 1 + u64::from(b),
                tombstones: u64::from(b / 2),
                max_lsn: crate::Lsn(u64::from(a)),
            };
            edit.added.push((kind % NUM_LEVELS as u8, table));
            edit.next_file_number = Some(number + 1);
            edit.flushed_lsn = Some(crate::Lsn(state.flushed_lsn().0 + u64::from(a)));
            edit.max_ts = Some(crate::Ts::from(state.max_ts().get() + u64::from(b)));
        } else {
            let tables: Vec<(u8, u64)> = state.tables().map(|(l, t)| (l, t.number)).collect();
            if let Some(&pick) = tables.get(usize::from(a) % tables.len().max(1)) {
                edit.removed.push(pick);
            }
            edit.clean_close = (b % 2 == 0).then_some(crate::Lsn(u64::from(b)));
        }
        if state.apply(&edit).is_ok() {
            records.push(edit);
        }
    }
    let count = records.len() as u64;
    let bytes = crate::manifest::encode_manifest(1, &records).unwrap_or_default();
    (bytes, count)
}
