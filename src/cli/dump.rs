//! `strata dump DIR [--from KEY] [--to KEY] [--versions] [--limit N] [--hex]`:
//! what `strata::inspect::dump` yields, one line per key (or per version),
//! tab-separated (a tab is never printed inside a key or value: it is
//! escaped):
//! - `key value` (each key's newest version; deleted keys are left out);
//! - with `--versions`: `key ts source put value` or `key ts source delete`,
//!   where source is `wal lsn=N` or `L<level> table=N`.

use std::io::{self, BufWriter, Write as _};

use strata::inspect::{self, DumpOptions};

use super::keys::{parse, show};
use super::{CliResult, DumpArgs};

pub(crate) fn run(args: &DumpArgs) -> CliResult<()> {
    let options = DumpOptions {
        from: args
            .from
            .as_deref()
            .map(|k| parse(k, args.hex))
            .transpose()?,
        to: args.to.as_deref().map(|k| parse(k, args.hex)).transpose()?,
        all_versions: args.versions,
    };
    let dump = inspect::dump(&args.dir, &options)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for version in dump.take(
        args.limit
            .unwrap_or(u64::MAX)
            .try_into()
            .unwrap_or(usize::MAX),
    ) {
        let v = version?;
        let key = show(&v.key, args.hex);
        let written = match (args.versions, &v.value) {
            (false, value) => {
                let value = value
                    .as_deref()
                    .map(|b| show(b, args.hex))
                    .unwrap_or_default();
                writeln!(out, "{key}\t{value}")
            }
            (true, Some(value)) => {
                writeln!(
                    out,
                    "{key}\t{}\t{}\tput\t{}",
                    v.ts,
                    v.source,
                    show(value, args.hex)
                )
            }
            (true, None) => writeln!(out, "{key}\t{}\t{}\tdelete", v.ts, v.source),
        };
        match written {
            // `strata dump | head` closes the pipe: not an error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
