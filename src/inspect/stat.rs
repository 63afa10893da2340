//! [`super::stat`]: tables per level from the manifest's records, the
//! manifest's counters, and the WAL as a read-only open reads it.

use std::path::Path;

use super::{DbStat, LevelStat, ManifestStat, TableStat, WalStat};
use crate::error::Result;
use crate::manifest::{NUM_LEVELS, TableRecord};
use crate::types::Lsn;
use crate::vfs::Vfs;

pub(super) fn stat(vfs: &dyn Vfs, dir: &Path) -> Result<DbStat> {
    let _lock = super::lock(vfs, dir)?;
    let (recovered, state) = super::read_manifest(vfs, dir)?;
    let mut unflushed_versions = 0u64;
    let wal = super::read_wal(vfs, dir, state.flushed_lsn(), &mut |rec| {
        unflushed_versions += rec.ops().count() as u64;
        Ok(())
    })?;
    let levels: Vec<LevelStat> = (0..NUM_LEVELS)
        .zip(0u8..)
        .map(|(n, level)| level_stat(level, state.level(n)))
        .collect();
    let sum = |f: fn(&LevelStat) -> u64| levels.iter().map(f).sum::<u64>();
    let table_entries = sum(|l| l.entries);
    let manifest = recovered.map(|r| ManifestStat {
        number: r.number,
        path: r.path,
        bytes: r.replayed.file_len,
        records: r.replayed.records,
        torn_at: r.replayed.torn_at,
        flushed_lsn: state.flushed_lsn(),
        max_ts: state.max_ts(),
        next_file_number: state.next_file_number(),
        epoch: state.epoch(),
        history_floor: state.history_floor(),
        clean_close: state.clean_close(),
    });
    // The chain is checked from the oldest segment's first lsn to the
    // newest record, without a gap.
    let newest = wal.chain.last_lsn;
    let oldest = wal
        .oldest_lsn
        .filter(|&o| o <= newest && newest > Lsn::ZERO);
    let wal = WalStat {
        segments: wal.segments.len() as u64,
        bytes: wal.bytes,
        segment_range: wal
            .segments
            .first()
            .zip(wal.segments.last())
            .map(|(a, b)| (a.0, b.0)),
        oldest_lsn: oldest,
        newest_lsn: oldest.map(|_| newest),
        records: oldest.map_or(0, |o| newest.0 - o.0 + 1),
        unflushed_records: wal.records,
        unflushed_versions,
        torn_bytes: wal.truncated_bytes,
    };
    Ok(DbStat {
        dir: dir.to_path_buf(),
        tables: sum(|l| l.tables.len() as u64),
        table_bytes: sum(|l| l.bytes),
        table_entries,
        table_tombstones: sum(|l| l.tombstones),
        versions: table_entries + unflushed_versions,
        levels,
        manifest,
        wal,
    })
}

fn level_stat(level: u8, records: &[TableRecord]) -> LevelStat {
    let tables: Vec<TableStat> = records
        .iter()
        .map(|r| TableStat {
            number: r.number,
            bytes: r.file_size,
            entries: r.entries,
            tombstones: r.tombstones,
            key_range: (r.smallest_key.clone(), r.largest_key.clone()),
            ts_range: (r.min_ts, r.max_ts),
            max_lsn: r.max_lsn,
        })
        .collect();
    let key_range = records.iter().fold(None, |acc, r| {
        let (lo, hi) = acc.unwrap_or((&r.smallest_key, &r.largest_key));
        Some((lo.min(&r.smallest_key), hi.max(&r.largest_key)))
    });
    let ts_range = records.iter().fold(None, |acc, r| {
        let (lo, hi) = acc.unwrap_or((r.min_ts, r.max_ts));
        Some((lo.min(r.min_ts), hi.max(r.max_ts)))
    });
    LevelStat {
        level,
        bytes: tables.iter().map(|t| t.bytes).sum(),
        entries: tables.iter().map(|t| t.entries).sum(),
        tombstones: tables.iter().map(|t| t.tombstones).sum(),
        key_range: key_range.map(|(lo, hi)| (lo.clone(), hi.clone())),
        ts_range,
        tables,
    }
}
