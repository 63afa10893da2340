//! Command-line parsing and dispatch for the `strata` binary.
//!
//! One clap-derived [`Cli`] with one variant of [`Command`] per subcommand;
//! each subcommand's code sits in its own module (`bench`, and later `stat`,
//! `verify`, `dump`, `serve`, `follow`). Everything here is single-threaded
//! except what a subcommand starts itself (with `std::thread::scope`, so no
//! thread outlives its subcommand).

mod bench;
mod compare;
mod report;
mod runner;
mod workload;

use std::path::PathBuf;

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

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Bench(args) => bench::run(&args),
    }
}
