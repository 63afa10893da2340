//! Command-line parsing and dispatch for the `strata` binary.
//!
//! One clap-derived [`Cli`] with one variant of [`Command`] per subcommand;
//! each subcommand's code sits in its own module (`bench`; `stat`, `verify`
//! and `dump`, which print what `strata::inspect` returns; later `serve`,
//! `follow`). Everything here is single-threaded
//! except what a subcommand starts itself (with `std::thread::scope`, so no
//! thread outlives its subcommand).

mod bench;
mod compare;
mod dump;
mod keys;
mod report;
mod runner;
mod stat;
mod verify;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// The error type of every subcommand: anything printable, from any thread.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Result alias for subcommands.
pub(crate) type CliResult<T> = Result<T, BoxError>;

/// Strata: an embedded multi-version transactional key-value storage engine.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Measure the disk's fdatasync rate, then load, read-modify-write
    /// (durable and buffered), point-read and scan workloads, and compare
    /// each durable figure with its limit.
    Bench(BenchArgs),
    /// Show what a database holds: tables per level, the manifest, the WAL.
    ///
    /// Per level: tables, bytes, entries, tombstones, key and ts ranges;
    /// the manifest's counters (flushed lsn, max ts, next file number,
    /// clean close); the WAL's segments, bytes and lsn range. Reads only,
    /// and is refused while a writer has the database open.
    Stat(StatArgs),
    /// Check every checksum of every file of a database (exit status 1 on damage).
    ///
    /// Checks CURRENT, every manifest record, every WAL record and the
    /// segment chain, every byte of every table, and that the files agree;
    /// prints each problem with its file and offset. Exit status 0: no
    /// damage (warnings, such as orphan files a crash left, allowed); 1:
    /// damage found, or the database could not be read. Reads only.
    Verify(VerifyArgs),
    /// Print a database's keys and values, or every stored version, in key order.
    ///
    /// Each key with its newest value (deleted keys left out), or with
    /// --versions every stored version with its commit ts, the source
    /// holding it, and its value or `delete`. Keys and values are escaped
    /// (printable ASCII as is, `\\` for a backslash, `\xNN` for any other
    /// byte), or hex with --hex; columns are tab-separated. Reads only.
    Dump(DumpArgs),
}

/// Options of `strata stat`.
#[derive(Debug, Args)]
pub(crate) struct StatArgs {
    /// The database directory.
    pub(crate) dir: PathBuf,

    /// Print JSON (every level and every table) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `strata verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The database directory.
    pub(crate) dir: PathBuf,
}

/// Options of `strata dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// The database directory.
    pub(crate) dir: PathBuf,

    /// The first key (inclusive), escaped as dump prints keys (hex with --hex).
    #[arg(long, value_name = "KEY")]
    pub(crate) from: Option<String>,

    /// The key to stop before (exclusive), escaped as dump prints keys.
    #[arg(long, value_name = "KEY")]
    pub(crate) to: Option<String>,

    /// Every stored version (tombstones included), with its commit ts and
    /// source (`wal lsn=N`, or `L<level> table=N`), not only each key's newest value.
    #[arg(long)]
    pub(crate) versions: bool,

    /// Print at most N lines.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,

    /// Print (and read --from/--to) keys and values as hex.
    #[arg(long)]
    pub(crate) hex: bool,
}

/// Options of `strata bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Number of keys loaded (16-byte keys `key0000000000000`..).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) keys: u64,

    /// Size of every value, in bytes.
    #[arg(long, default_value_t = 100)]
    pub(crate) value_bytes: usize,

    /// Length of each timed phase (per thread count), in seconds.
    #[arg(long, default_value_t = 3)]
    pub(crate) duration_secs: u64,

    /// Thread counts for the read-modify-write phases, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub(crate) threads: Vec<usize>,

    /// Run in a fresh subdirectory of DIR (removed afterwards) instead of
    /// the system temporary directory; it chooses the file system measured.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,

    /// Longest a waiting committer spins before it sleeps, in microseconds
    /// (`Options::commit_spin`; 0 never spins).
    #[arg(long, value_name = "MICROS", default_value_t = DEFAULT_COMMIT_SPIN_MICROS)]
    pub(crate) commit_spin_us: u64,

    /// `Options::memory_budget`, in MiB: a memtable is flushed to a sorted
    /// table at a quarter of it.
    #[arg(long, value_name = "MIB", default_value_t = strata::DEFAULT_MEMORY_BUDGET >> 20)]
    pub(crate) memory_budget_mb: u64,

    /// After the report, print Strata's figures as ratios to the best peer's
    /// in FILE, a peers.json saved by the peers suite (`benches/peers`), for
    /// the workloads both measure.
    #[arg(long, value_name = "FILE")]
    pub(crate) compare: Option<PathBuf>,
}

/// `Options::commit_spin`'s default, in whole microseconds (for `--help`).
const DEFAULT_COMMIT_SPIN_MICROS: u64 = {
    let micros = strata::DEFAULT_COMMIT_SPIN.as_micros();
    assert!(micros <= u64::MAX as u128);
    micros as u64
};

/// Writes `text` to stdout; a closed pipe (`strata dump | head`) is not
/// an error: whoever reads has read enough.
pub(crate) fn print_out(text: &str) -> CliResult<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `n` and the noun, with an `s` unless `n` is 1.
pub(crate) fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Runs the parsed command; the exit status on success (`verify` exits 1
/// when it found damage).
pub(crate) fn run(cli: Cli) -> CliResult<ExitCode> {
    match cli.command {
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Stat(args) => stat::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify::run(&args),
        Command::Dump(args) => dump::run(&args).map(|()| ExitCode::SUCCESS),
    }
}
