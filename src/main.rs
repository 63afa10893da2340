//! The `strata` command-line tool.
//!
//! Subcommands live in `cli/` (bin-only modules; the library knows nothing of
//! them). Today there is `bench`; see `docs/benchmarks.md` for what it
//! measures and for recorded results.
//!
//! Exit status: 0 on success (a benchmark that misses a target still exits
//! 0), 1 when a subcommand fails, 2 for command-line usage errors (clap).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("strata: error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
