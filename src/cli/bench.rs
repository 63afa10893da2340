//! `strata bench`: runs the phases in order and prints the report.
//!
//! Phases (see `docs/benchmarks.md` for what each one is for):
//! 1. fdatasync probe: the disk's limit for durable commits from one thread;
//! 2. load of the durable (`Durability::Sync`) database;
//! 3. durable read-modify-write at each `--threads` count;
//! 4. load of a second, `Durability::Buffered` database, then the same
//!    read-modify-write: the CPU's limit (that database is closed after it);
//! 5. point reads through a `ReadTxn` on the durable database, and the same
//!    reads from a bare `SkipMap`;
//! 6. 100-entry scans through a `ReadTxn` on the durable database.
//!
//! Everything lives in a fresh temporary directory (in `--dir` if given),
//! removed at the end, so runs never see each other's data. Commits per
//! fdatasync come from `Db::stats` taken before and after each phase.

use std::path::Path;
use std::time::Duration;

use strata::{Db, Durability, MAX_COMMIT_SPIN, MAX_VALUE_BYTES, Options};

use super::compare::{self, PeersFile};
use super::report::{Kind, Report, Row};
use super::runner::{Measured, as_f64};
use super::workload::{
    self, KEY_BYTES, Keys, LOAD_KEYS_PER_TXN, MAX_KEYS, PROBE_WRITE_BYTES, READS_PER_TXN,
    SCAN_ITEMS,
};
use super::{BenchArgs, CliResult};

/// Length of the fdatasync probe (phase 1).
const PROBE_DURATION: Duration = Duration::from_secs(2);

/// Most threads a phase may use.
const MAX_THREADS: usize = 1024;

/// Validated settings of one run.
#[derive(Debug)]
struct Settings {
    keys: u64,
    value_bytes: usize,
    duration: Duration,
    threads: Vec<usize>,
    commit_spin: Duration,
    memory_budget: u64,
}

impl Settings {
    fn new(args: &BenchArgs) -> CliResult<Self> {
        if args.keys == 0 || args.keys > MAX_KEYS {
            return Err(format!("--keys must be between 1 and {MAX_KEYS}").into());
        }
        if args.value_bytes > MAX_VALUE_BYTES {
            return Err(format!("--value-bytes must be at most {MAX_VALUE_BYTES}").into());
        }
        if args.duration_secs == 0 {
            return Err("--duration-secs must be at least 1".into());
        }
        let commit_spin = Duration::from_micros(args.commit_spin_us);
        if commit_spin > MAX_COMMIT_SPIN {
            return Err(format!(
                "--commit-spin-us must be at most {}",
                MAX_COMMIT_SPIN.as_micros()
            )
            .into());
        }
        if args.threads.is_empty() || args.threads.iter().any(|&t| t == 0 || t > MAX_THREADS) {
            return Err(format!("--threads must list counts between 1 and {MAX_THREADS}").into());
        }
        Ok(Settings {
            keys: args.keys,
            value_bytes: args.value_bytes,
            duration: Duration::from_secs(args.duration_secs),
            threads: args.threads.clone(),
            commit_spin,
            memory_budget: args
                .memory_budget_mb
                .checked_mul(1 << 20)
                .ok_or("--memory-budget-mb is too large")?,
        })
    }

    /// A rough duration of the whole run, for the log (loads not included).
    fn expected_secs(&self) -> u64 {
        let timed = 2 * self.threads.len() as u64 + 3;
        PROBE_DURATION.as_secs() + timed * self.duration.as_secs()
    }
}

/// Runs `strata bench`.
pub(crate) fn run(args: &BenchArgs) -> CliResult<()> {
    let settings = Settings::new(args)?;
    // Read the saved peers first, so a bad file fails before the run.
    let peers = args.compare.as_deref().map(PeersFile::load).transpose()?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("strata-bench-");
    let workdir = match &args.dir {
        Some(dir) => builder.tempdir_in(dir)?,
        None => builder.tempdir()?,
    };
    let dir = workdir.path();
    eprintln!(
        "strata bench: working in {}; about {} s plus loads",
        dir.display(),
        settings.expected_secs()
    );
    let mut report = Report {
        settings: describe(&settings, dir),
        rows: Vec::new(),
        notes: Vec::new(),
    };

    let probe = workload::fdatasync_probe(&dir.join("fsync-probe"), PROBE_DURATION)?;
    report.push(row(
        Kind::Fsync,
        "fdatasync 4 KiB append",
        1,
        "fsyncs/s",
        probe,
        None,
    ));

    let keys = Keys::new(settings.keys);
    let options = Options::default()
        .commit_spin(settings.commit_spin)
        .memory_budget(settings.memory_budget);
    let durable = Db::open(
        dir.join("sync"),
        options.clone().durability(Durability::Sync),
    )?;
    rmw_phases(&mut report, &durable, &keys, &settings, Durability::Sync)?;

    let buffered = Db::open(
        dir.join("buffered"),
        options.durability(Durability::Buffered),
    )?;
    load_phase(&mut report, &buffered, &keys, &settings, "load (buffered)")?;
    // Reads first, while the memtable holds exactly the loaded keys, one
    // version each: the same content as the bare skiplist they are held to.
    read_phases(&mut report, &buffered, &keys, &settings)?;
    rmw_phases(
        &mut report,
        &buffered,
        &keys,
        &settings,
        Durability::Buffered,
    )?;
    report
        .notes
        .push(background_note("buffered", &buffered.stats()));
    buffered.close()?;

    // Read again where read-modify-write left several versions per key
    // (until compaction drops the old ones), and say how many.
    let st = durable.stats();
    report.notes.push(format!(
        "'point reads after r-m-w' ran on the durable database after its read-modify-write \
         phases: {} versions of {} keys, {} in memtables and {} in tables",
        st.memtable_versions + st.table_versions,
        keys.len(),
        st.memtable_versions,
        st.table_versions,
    ));
    let churned = workload::point_reads(&durable, &keys, settings.duration)?;
    let name = "point reads after r-m-w";
    report.push(row(
        Kind::PointReadsChurned,
        name,
        1,
        "reads/s",
        churned,
        None,
    ));
    report.notes.push(background_note("sync", &durable.stats()));
    durable.close()?;

    print!("{}", report.render());
    if let Some(peers) = &peers {
        print!("{}", compare::render(&report, peers));
    }
    workdir.close()?;
    Ok(())
}

/// The settings and the machine, as printed above the table.
fn describe(settings: &Settings, dir: &Path) -> Vec<(String, String)> {
    let threads: Vec<String> = settings.threads.iter().map(ToString::to_string).collect();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    vec![
        ("version".into(), env!("CARGO_PKG_VERSION").into()),
        ("directory".into(), dir.display().to_string()),
        ("cpus".into(), cpus.to_string()),
        (
            "commit spin".into(),
            format!("{} us at most", settings.commit_spin.as_micros()),
        ),
        (
            "memory budget".into(),
            format!(
                "{} MiB (memtables, transaction buffers, table metadata; memtables flush at \
                 a quarter)",
                settings.memory_budget >> 20
            ),
        ),
        (
            "data".into(),
            format!(
                "{} keys of {KEY_BYTES} bytes, values of {} bytes",
                settings.keys, settings.value_bytes
            ),
        ),
        (
            "phases".into(),
            format!(
                "fdatasync probe {} s ({PROBE_WRITE_BYTES}-byte appends); load {} keys/txn; \
                 timed phases {} s each",
                PROBE_DURATION.as_secs(),
                LOAD_KEYS_PER_TXN,
                settings.duration.as_secs()
            ),
        ),
        (
            "workload".into(),
            format!(
                "read-modify-write: read 2 random keys, write 2 random keys, commit \
                 (no retry) at {} threads; point reads {READS_PER_TXN} per ReadTxn; \
                 scans of {SCAN_ITEMS} entries",
                threads.join(",")
            ),
        ),
    ]
}

/// Phases 2 and 3 (or 4): load `db`, then read-modify-write at each thread count.
fn rmw_phases(
    report: &mut Report,
    db: &Db,
    keys: &Keys,
    settings: &Settings,
    durability: Durability,
) -> CliResult<()> {
    let (mode, kind) = match durability {
        Durability::Buffered => ("buffered", Kind::Buffered),
        Durability::Sync => ("sync", Kind::Durable),
    };
    if durability == Durability::Sync {
        load_phase(report, db, keys, settings, &format!("load ({mode})"))?;
    }
    for &threads in &settings.threads {
        let label = format!("read-2-write-2 ({mode})");
        let (measured, sync) = with_sync_stats(db, || {
            let value_bytes = settings.value_bytes;
            workload::read_modify_write(db, keys, value_bytes, &label, threads, settings.duration)
        })?;
        let mut rmw = row(kind, &label, threads, "commits/s", measured, sync.per_sync);
        rmw.conflicts = Some(rmw.measured.tally.conflicts);
        rmw.sync_busy = sync.busy;
        report.push(rmw);
    }
    Ok(())
}

/// Phase 2: load `db` in large transactions.
fn load_phase(
    report: &mut Report,
    db: &Db,
    keys: &Keys,
    settings: &Settings,
    label: &str,
) -> CliResult<()> {
    let (load, sync) =
        with_sync_stats(db, || workload::load(db, keys, settings.value_bytes, label))?;
    let mut loaded = row(Kind::Load, label, 1, "keys/s", load, sync.per_sync);
    loaded.sync_busy = sync.busy;
    report.push(loaded);
    Ok(())
}

/// Phases 5 and 6: point reads (Strata and bare skiplist) and scans, on a
/// freshly loaded database (one version per key).
fn read_phases(report: &mut Report, db: &Db, keys: &Keys, settings: &Settings) -> CliResult<()> {
    let reads = workload::point_reads(db, keys, settings.duration)?;
    report.push(row(
        Kind::PointReads,
        "point reads (ReadTxn)",
        1,
        "reads/s",
        reads,
        None,
    ));

    let map = workload::loaded_skiplist(keys, settings.value_bytes);
    let bare = workload::skiplist_reads(&map, keys, settings.duration)?;
    drop(map);
    let name = "point reads (bare SkipMap)";
    report.push(row(Kind::SkiplistReads, name, 1, "reads/s", bare, None));

    let scans = workload::scans(db, keys, settings.duration)?;
    report.push(row(
        Kind::Scans,
        "scan 100 (ReadTxn)",
        1,
        "scans/s",
        scans,
        None,
    ));
    Ok(())
}

/// The background work of one database over the run, and what it cost
/// committers (write backpressure).
fn background_note(name: &str, s: &strata::Stats) -> String {
    let written = s.flushed_bytes + s.compaction_bytes_written;
    let amp = if s.wal_bytes == 0 {
        0.0
    } else {
        as_f64(written) / as_f64(s.wal_bytes)
    };
    format!(
        "background ({name} database): {} flushes, {} compactions + {} moves, tables per level \
         {:?}; table bytes written / WAL bytes = {amp:.2}; commits slowed {} times, stopped {} \
         times, {:.1} ms stalled in all, longest commit stall {:.2} ms; memory counted at the \
         end {:.1} of {:.1} MiB (memtables {:.1}, transaction buffers {:.1}, table metadata \
         {:.1})",
        s.flushes,
        s.compactions,
        s.compaction_moves,
        s.tables_per_level,
        s.write_slowdowns,
        s.write_stops,
        s.write_stall_time.as_secs_f64() * 1e3,
        s.longest_write_stall.as_secs_f64() * 1e3,
        mib(s.memory_bytes),
        mib(s.memory_budget),
        mib(s.memtable_bytes),
        mib(s.txn_buffer_bytes),
        mib(s.table_metadata_bytes),
    )
}

/// Bytes in MiB, for display.
fn mib(bytes: u64) -> f64 {
    as_f64(bytes) / f64::from(1 << 20)
}

/// What a phase's WAL syncs were (both `None` if it caused no sync).
struct SyncStats {
    /// Commits per WAL fdatasync.
    per_sync: Option<f64>,
    /// Time in WAL fdatasync over the phase's length.
    busy: Option<f64>,
}

/// Runs `phase` and returns its result with what its WAL syncs were.
fn with_sync_stats(
    db: &Db,
    phase: impl FnOnce() -> CliResult<Measured>,
) -> CliResult<(Measured, SyncStats)> {
    let before = db.stats();
    let measured = phase()?;
    let after = db.stats();
    let commits = after.commits.saturating_sub(before.commits);
    let syncs = after.wal_syncs.saturating_sub(before.wal_syncs);
    let sync_time = after.wal_sync_time.saturating_sub(before.wal_sync_time);
    let secs = measured.elapsed.as_secs_f64();
    let sync = SyncStats {
        per_sync: (syncs > 0).then(|| as_f64(commits) / as_f64(syncs)),
        busy: (syncs > 0 && secs > 0.0).then(|| sync_time.as_secs_f64() / secs),
    };
    Ok((measured, sync))
}

/// A row without conflicts (callers set them for transactional phases).
fn row(
    kind: Kind,
    name: &str,
    threads: usize,
    unit: &'static str,
    measured: Measured,
    commits_per_sync: Option<f64>,
) -> Row {
    Row {
        kind,
        name: name.to_owned(),
        threads,
        unit,
        measured,
        conflicts: None,
        commits_per_sync,
        sync_busy: None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn settings(args: &[&str]) -> CliResult<Settings> {
        let cli = Cli::try_parse_from(["strata", "bench"].iter().chain(args))?;
        let Command::Bench(bench) = cli.command else {
            return Err("not the bench command".into());
        };
        Settings::new(&bench)
    }

    #[test]
    fn defaults_are_valid_and_spin_like_the_library() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.threads, vec![1, 4, 16]);
        assert_eq!(s.commit_spin, strata::DEFAULT_COMMIT_SPIN);
        let s = settings(&["--commit-spin-us", "0", "--threads", "2,3"]).unwrap();
        assert_eq!(s.commit_spin, Duration::ZERO);
        assert_eq!(s.threads, vec![2, 3]);
    }

    #[test]
    fn out_of_range_settings_are_refused_before_anything_runs() {
        for (args, flag) in [
            (&["--keys", "0"][..], "--keys"),
            (&["--duration-secs", "0"], "--duration-secs"),
            (&["--threads", "0"], "--threads"),
            (&["--commit-spin-us", "1000001"], "--commit-spin-us"),
        ] {
            let err = settings(args).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(flag)),
                "{args:?}: {err:?}"
            );
        }
    }
}
