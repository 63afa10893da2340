//! `strata stat DIR [--json]`: what `strata::inspect::stat` finds, as a
//! table (levels with tables only) or as JSON (every level, every table).

use std::fmt::Write as _;

use serde_json::{Value, json};
use strata::inspect::{self, DbStat, LevelStat, ManifestStat, TableStat, WalStat};

use super::keys::escape;
use super::{CliResult, StatArgs, count, print_out};

pub(crate) fn run(args: &StatArgs) -> CliResult<()> {
    let stat = inspect::stat(&args.dir)?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&to_json(&stat))?;
        text.push('\n');
        print_out(&text)
    } else {
        print_out(&render(&stat))
    }
}

fn render(s: &DbStat) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database  {}", s.dir.display());
    match &s.manifest {
        Some(m) => {
            let _ = writeln!(
                out,
                "manifest  {} ({}, {}{})",
                m.path.display(),
                count(m.bytes, "byte"),
                count(m.records, "record"),
                m.torn_at
                    .map(|at| format!(", a torn last record at offset {at}"))
                    .unwrap_or_default()
            );
            let closed = m
                .clean_close
                .map_or_else(|| "no".to_string(), |lsn| format!("yes, at lsn {lsn}"));
            let _ = writeln!(
                out,
                "          flushed lsn {}, max ts {}, history floor {}, next file number {}, epoch {}, clean close: {closed}",
                m.flushed_lsn, m.max_ts, m.history_floor, m.next_file_number, m.epoch
            );
        }
        None => {
            let _ = writeln!(
                out,
                "manifest  none (nothing flushed yet: every version is in the WAL)"
            );
        }
    }
    render_wal(&mut out, &s.wal);
    let _ = writeln!(
        out,
        "\n{:>5} {:>6} {:>12} {:>10} {:>10}  {:<41}  key range",
        "level", "tables", "bytes", "entries", "tombstones", "ts range"
    );
    for l in s.levels.iter().filter(|l| !l.tables.is_empty()) {
        let ts = l
            .ts_range
            .map(|(lo, hi)| format!("{lo}..={hi}"))
            .unwrap_or_default();
        let keys = l
            .key_range
            .as_ref()
            .map(|(lo, hi)| format!("{} ..= {}", escape(lo), escape(hi)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>5} {:>6} {:>12} {:>10} {:>10}  {ts:<41}  {keys}",
            l.level,
            l.tables.len(),
            l.bytes,
            l.entries,
            l.tombstones
        );
    }
    let _ = writeln!(
        out,
        "{:>5} {:>6} {:>12} {:>10} {:>10}",
        "total", s.tables, s.table_bytes, s.table_entries, s.table_tombstones
    );
    let _ = writeln!(
        out,
        "\nversions  {} ({} in tables, {} in the WAL above the flushed lsn)",
        s.versions, s.table_entries, s.wal.unflushed_versions
    );
    out
}

fn render_wal(out: &mut String, w: &WalStat) {
    let segments = w
        .segment_range
        .map(|(a, b)| format!(" (numbers {a}..={b})"))
        .unwrap_or_default();
    let lsns = match (w.oldest_lsn, w.newest_lsn) {
        (Some(a), Some(b)) => format!("lsn {a}..={b}, {}", count(w.records, "record")),
        _ => "no record".to_string(),
    };
    let _ = writeln!(
        out,
        "wal       {}{segments}, {}, {lsns}; {} ({}) above the flushed lsn{}",
        count(w.segments, "segment"),
        count(w.bytes, "byte"),
        count(w.unflushed_records, "record"),
        count(w.unflushed_versions, "version"),
        if w.torn_bytes > 0 {
            format!("; a torn tail of {}", count(w.torn_bytes, "byte"))
        } else {
            String::new()
        }
    );
}

fn to_json(s: &DbStat) -> Value {
    json!({
        "dir": s.dir.display().to_string(),
        "levels": s.levels.iter().map(level_json).collect::<Vec<_>>(),
        "tables": s.tables,
        "table_bytes": s.table_bytes,
        "table_entries": s.table_entries,
        "table_tombstones": s.table_tombstones,
        "versions": s.versions,
        "manifest": s.manifest.as_ref().map(manifest_json),
        "wal": wal_json(&s.wal),
    })
}

fn level_json(l: &LevelStat) -> Value {
    json!({
        "level": l.level,
        "table_count": l.tables.len(),
        "bytes": l.bytes,
        "entries": l.entries,
        "tombstones": l.tombstones,
        "smallest_key": l.key_range.as_ref().map(|r| escape(&r.0)),
        "largest_key": l.key_range.as_ref().map(|r| escape(&r.1)),
        "min_ts": l.ts_range.map(|r| r.0.get()),
        "max_ts": l.ts_range.map(|r| r.1.get()),
        "tables": l.tables.iter().map(table_json).collect::<Vec<_>>(),
    })
}

fn table_json(t: &TableStat) -> Value {
    json!({
        "number": t.number,
        "bytes": t.bytes,
        "entries": t.entries,
        "tombstones": t.tombstones,
        "smallest_key": escape(&t.key_range.0),
        "largest_key": escape(&t.key_range.1),
        "min_ts": t.ts_range.0.get(),
        "max_ts": t.ts_range.1.get(),
        "max_lsn": t.max_lsn.0,
    })
}

fn manifest_json(m: &ManifestStat) -> Value {
    json!({
        "number": m.number,
        "path": m.path.display().to_string(),
        "bytes": m.bytes,
        "records": m.records,
        "torn_at": m.torn_at,
        "flushed_lsn": m.flushed_lsn.0,
        "max_ts": m.max_ts.get(),
        "next_file_number": m.next_file_number,
        "epoch": m.epoch,
        "history_floor": m.history_floor.get(),
        "clean_close_lsn": m.clean_close.map(|l| l.0),
    })
}

fn wal_json(w: &WalStat) -> Value {
    json!({
        "segments": w.segments,
        "bytes": w.bytes,
        "first_segment": w.segment_range.map(|r| r.0),
        "last_segment": w.segment_range.map(|r| r.1),
        "oldest_lsn": w.oldest_lsn.map(|l| l.0),
        "newest_lsn": w.newest_lsn.map(|l| l.0),
        "records": w.records,
        "unflushed_records": w.unflushed_records,
        "unflushed_versions": w.unflushed_versions,
        "torn_bytes": w.torn_bytes,
    })
}
