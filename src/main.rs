//! The `strata` command-line tool.
//!
//! Subcommands live in `cli/` (bin-only modules; the library knows nothing of
//! them): `bench` (see `docs/benchmarks.md` for what it measures and for
//! recorded results), and `stat`, `verify` and `dump`, which print what
//! `strata::inspect` finds in a database directory (decision 0018).
//!
//! Exit status: 0 on success (a benchmark that misses a target still exits
//! 0; `verify` found no damage), 1 when a subcommand fails (or `verify`
//! found damage), 2 for command-line usage errors (clap).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
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
