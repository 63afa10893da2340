//! `strata-peers`: Strata against its peers (redb, sled, fjall, SurrealKV,
//! LMDB via heed and, behind the `rocksdb` feature, RocksDB), the same
//! workloads on every engine, each engine in its own process, plus the
//! machine's limits measured in the same run. See this package's README.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- suite --n 100000 --secs 2
//! ```

mod cgroup;
mod child;
mod engines;
mod keys;
mod limits;
mod model;
mod report;
mod suite;
mod sysinfo;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::model::Settings;

/// Strata against its peers.
#[derive(Debug, Parser)]
#[command(name = "strata-peers", about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the suite and write peers.md and peers.json.
    Suite(SuiteArgs),
    /// (internal) Run one engine in this process; JSON report on stdout.
    #[command(hide = true)]
    Child(ChildArgs),
}

/// Options of `suite`.
#[derive(Debug, clap::Args)]
struct SuiteArgs {
    /// Engines, comma separated (default: all built in).
    #[arg(long, value_delimiter = ',')]
    engines: Option<Vec<String>>,
    /// Workload groups, comma separated: read, scan, r2w2, contention,
    /// ycsb (or ycsb-a, ycsb-b, ycsb-c, ycsb-e, ycsb-f), limits. Load,
    /// reopen and sizes always run.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Keys loaded.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Seconds per timed phase.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// Output directory for peers.md and peers.json.
    #[arg(long, default_value = "target/peers")]
    out: PathBuf,
    /// Parent directory of the databases (a fresh temporary directory in it).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Cache budget for engines that have one, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,
    /// Client threads of durable read-2-write-2.
    #[arg(long, value_delimiter = ',', default_value = "1,2,8,32")]
    r2w2_threads: Vec<usize>,
    /// Client threads of hot-key contention.
    #[arg(long, value_delimiter = ',', default_value = "2,8")]
    contention_threads: Vec<usize>,
    /// Client threads of the YCSB workloads.
    #[arg(long, default_value_t = 2)]
    ycsb_threads: usize,
    /// Run each engine in a memory cgroup of this many MiB, page cache
    /// included (root only), so that a data set larger than memory is one:
    /// an engine that needs more is killed, and reported so.
    #[arg(long)]
    memory_limit_mb: Option<u64>,
}

/// Options of the hidden `child` subcommand.
#[derive(Debug, clap::Args)]
struct ChildArgs {
    /// Engine name, or `limits`.
    #[arg(long)]
    engine: String,
    /// The database directory (fresh).
    #[arg(long)]
    dir: PathBuf,
    /// Settings, as JSON.
    #[arg(long)]
    settings: String,
}

/// `x` as a float. Counts, bytes and nanoseconds here stay far below 2^52,
/// where the conversion is exact.
#[expect(clippy::cast_precision_loss, reason = "figures stay below 2^52")]
pub fn as_f64(x: u64) -> f64 {
    x as f64
}

/// Most threads any phase may use.
const MAX_THREADS: usize = 1024;

/// Validates `suite`'s options into a plan.
fn plan(args: SuiteArgs) -> Result<suite::Plan> {
    if args.n < 1000 {
        bail!("--n must be at least 1000");
    }
    if !(args.secs > 0.0 && args.secs.is_finite()) || args.reps == 0 {
        bail!("--secs must be positive and --reps at least 1");
    }
    let threads = args
        .r2w2_threads
        .iter()
        .chain(&args.contention_threads)
        .chain([&args.ycsb_threads]);
    if threads.into_iter().any(|&t| t == 0 || t > MAX_THREADS) {
        bail!("thread counts must be between 1 and {MAX_THREADS}");
    }
    let available = engines::default_engines();
    let engines = args.engines.unwrap_or_else(|| available.clone());
    for engine in &engines {
        if !available.contains(engine) {
            engines::unknown::<()>(engine)?;
        }
    }
    let settings = Settings {
        n: args.n,
        secs: args.secs,
        cache_bytes: args.cache_mb << 20,
        only: args.only.unwrap_or_default(),
        r2w2_threads: args.r2w2_threads,
        contention_threads: args.contention_threads,
        ycsb_threads: args.ycsb_threads,
        memory_limit_bytes: args.memory_limit_mb.map(|mb| mb << 20),
    };
    let dir = args.dir.unwrap_or_else(std::env::temp_dir);
    Ok(suite::Plan {
        engines,
        settings,
        reps: args.reps,
        out: args.out,
        dir,
    })
}

/// The child: one engine (or the limits), JSON on stdout.
fn child(args: &ChildArgs) -> Result<()> {
    let settings: Settings = serde_json::from_str(&args.settings).context("--settings")?;
    let report = if args.engine == "limits" {
        limits::run(&args.dir, &settings)?
    } else {
        with_engine!(args.engine.as_str(), E => child::run::<E>(&args.engine, &args.dir, &settings))?
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Suite(args) => plan(args).and_then(|p| suite::run(&p)),
        Cmd::Child(args) => child(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata-peers: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
