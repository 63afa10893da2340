//! `strata verify DIR`: prints every problem `strata::inspect::verify`
//! finds (file, offset, what), then a summary. Exit status 0 when there
//! is no damage (warnings allowed), 1 when there is.

use std::fmt::Write as _;
use std::process::ExitCode;

use strata::inspect;

use super::{CliResult, VerifyArgs, count, print_out};

pub(crate) fn run(args: &VerifyArgs) -> CliResult<ExitCode> {
    let report = inspect::verify(&args.dir)?;
    let mut out = String::new();
    for problem in &report.problems {
        let _ = writeln!(out, "{problem}");
    }
    let damage = report.damage().count() as u64;
    let warnings = report.warnings().count() as u64;
    let _ = writeln!(
        out,
        "checked {} ({}: {}, {}) in {}: {}",
        count(report.files, "file"),
        count(report.bytes, "byte"),
        count(report.tables, "table"),
        count(report.wal_segments, "WAL segment"),
        report.dir.display(),
        match (damage, warnings) {
            (0, 0) => "intact".to_string(),
            (0, w) => format!("intact, {}", count(w, "warning")),
            (d, w) => format!("DAMAGED: {}, {}", count(d, "problem"), count(w, "warning")),
        }
    );
    print_out(&out)?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
