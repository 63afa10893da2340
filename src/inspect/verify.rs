//! [`super::verify`]: every checksum of every file, and the files against
//! each other. In order:
//! 1. `CURRENT` and every record of the live manifest (manifest recovery);
//!    a torn last record is a warning.
//! 2. Every table the manifest lists: it exists, opens (footer, index,
//!    filter, properties), every byte checks (`Table::verify_all`), and it
//!    is what the manifest's record says (size, key range, ts range,
//!    entries, tombstones, max lsn), within the manifest's counters. When
//!    the manifest does not read, every table file found is checked on
//!    its own instead.
//! 3. The files in the directory, `tables/` and `wal/`: obsolete ones (an
//!    orphan table, an old manifest, `CURRENT.tmp`: what a crash leaves and
//!    a writable open removes) and ones Strata does not write are warnings.
//! 4. The WAL, as a read-only open reads it: every segment header, every
//!    frame's CRC, the chain across records and segments (WAL recovery),
//!    then that it continues the manifest (`manifest::check_wal`). A torn
//!    tail is a warning. WAL recovery stops at the first damage, so
//!    segments after a damaged one are not looked at.

use std::io;
use std::path::{Path, PathBuf};

use super::{Problem, Severity, VerifyReport};
use crate::error::Error;
use crate::manifest::{self, ManifestState, TableRecord, WalExtent};
use crate::sst::Table;
use crate::types::Lsn;
use crate::vfs::Vfs;
use crate::wal::{self, Repair};

/// The flushed lsn WAL recovery is given when the manifest does not read:
/// as if every record were in tables, so that only the log's own
/// integrity (headers, frames, chain) is checked.
const UNKNOWN_FLUSHED: Lsn = Lsn(u64::MAX - 1);

pub(super) fn verify(vfs: &dyn Vfs, dir: &Path) -> crate::Result<VerifyReport> {
    let _lock = super::lock(vfs, dir)?;
    let mut v = Verify {
        vfs,
        dir,
        report: VerifyReport {
            dir: dir.to_path_buf(),
            problems: Vec::new(),
            files: 0,
            bytes: 0,
            tables: 0,
            wal_segments: 0,
        },
    };
    let manifest = v.manifest();
    if let Some((recovered, state)) = &manifest {
        for (level, record) in state.tables() {
            v.listed_table(level, record, state);
        }
        let live = recovered.as_ref().map(|r| (r.number, state));
        v.files(live);
    } else {
        v.every_table_file();
        v.unexpected_files();
    }
    v.wal(manifest.as_ref().map(|(r, s)| (r.as_ref(), s)));
    Ok(v.report)
}

struct Verify<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    report: VerifyReport,
}

impl Verify<'_> {
    fn push(&mut self, severity: Severity, file: &Path, offset: Option<u64>, what: String) {
        self.report.problems.push(Problem {
            severity,
            file: file.to_path_buf(),
            offset,
            what,
        });
    }

    /// Records `e` as damage; `file` names it when the error does not.
    fn error(&mut self, e: Error, file: &Path) {
        match e {
            Error::Corruption { file, offset, what } => {
                self.push(Severity::Damage, &file, Some(offset), what);
            }
            Error::UnsupportedFormat {
                file,
                found,
                supported,
            } => {
                let what =
                    format!("format version {found}; this build reads up to version {supported}");
                self.push(Severity::Damage, &file, None, what);
            }
            other => self.push(Severity::Damage, file, None, other.to_string()),
        }
    }

    fn counted(&mut self, bytes: u64) {
        self.report.files += 1;
        self.report.bytes += bytes;
    }

    /// Step 1. `None`: the manifest does not read (the problem is in the
    /// report); `Some((None, empty))`: the database has no manifest.
    fn manifest(&mut self) -> Option<(Option<manifest::Recovered>, ManifestState)> {
        match super::read_manifest(self.vfs, self.dir) {
            Ok((recovered, state)) => {
                if let Some(r) = &recovered {
                    self.counted(manifest::CURRENT_BYTES as u64);
                    self.counted(r.replayed.file_len);
                    if let Some(at) = r.replayed.torn_at {
                        let what = format!(
                            "a torn last record ({} bytes): a crash cut an append short; \
                             the next writable open cuts it off",
                            r.replayed.file_len - at
                        );
                        self.push(Severity::Warning, &r.path, Some(at), what);
                    }
                }
                Some((recovered, state))
            }
            Err(e) => {
                self.error(e, &self.dir.join(manifest::CURRENT));
                None
            }
        }
    }

    /// Step 2 for one table of the manifest.
    fn listed_table(&mut self, level: u8, record: &TableRecord, state: &ManifestState) {
        let path = self
            .dir
            .join(manifest::TABLES_DIR)
            .join(manifest::table_name(record.number));
        let table = match Table::open(self.vfs, &path) {
            Ok(t) => t,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                let what = format!(
                    "table {} (level {level}) is in the manifest but missing",
                    record.number
                );
                self.push(Severity::Damage, &path, None, what);
                return;
            }
            Err(e) => return self.error(e, &path),
        };
        self.table(&table);
        let p = table.properties();
        let mut wrong = Vec::new();
        let mut differs = |name: &str, said: String, found: String| {
            if said != found {
                wrong.push(format!("{name} {said} (the table: {found})"));
            }
        };
        differs(
            "file size",
            record.file_size.to_string(),
            table.file_size().to_string(),
        );
        differs("entries", record.entries.to_string(), p.entries.to_string());
        differs(
            "tombstones",
            record.tombstones.to_string(),
            p.tombstones.to_string(),
        );
        differs("min ts", record.min_ts.to_string(), p.min_ts.to_string());
        differs("max ts", record.max_ts.to_string(), p.max_ts.to_string());
        differs("max lsn", record.max_lsn.to_string(), p.max_lsn.to_string());
        if record.smallest_key != p.smallest_key || record.largest_key != p.largest_key {
            wrong.push("key range differs from the table's".into());
        }
        if !wrong.is_empty() {
            let what = format!(
                "the manifest's record of table {} says {}",
                record.number,
                wrong.join(", ")
            );
            self.push(Severity::Damage, &path, None, what);
        }
        let mut beyond = Vec::new();
        if p.max_ts > state.max_ts() {
            beyond.push(format!(
                "holds ts {} above the manifest's max ts {}",
                p.max_ts,
                state.max_ts()
            ));
        }
        if p.max_lsn > state.flushed_lsn().0 {
            beyond.push(format!(
                "holds lsn {} above the manifest's flushed lsn {}",
                p.max_lsn,
                state.flushed_lsn()
            ));
        }
        if !beyond.is_empty() {
            let what = format!("table {} {}", record.number, beyond.join(" and "));
            self.push(Severity::Damage, &path, None, what);
        }
    }

    /// Every byte of an open table.
    fn table(&mut self, table: &Table) {
        self.counted(table.file_size());
        self.report.tables += 1;
        for e in table.verify_all(self.vfs) {
            self.error(e, table.path());
        }
    }

    /// Step 2 without a manifest that reads: every table file on its own.
    fn every_table_file(&mut self) {
        let tables = self.dir.join(manifest::TABLES_DIR);
        for name in self.names(&tables) {
            if manifest::parse_table_name(&name).is_none() {
                continue;
            }
            let path = tables.join(&name);
            match Table::open(self.vfs, &path) {
                Ok(t) => self.table(&t),
                Err(e) => self.error(e, &path),
            }
        }
    }

    /// The names in `dir`, sorted; none (and a problem if it exists but
    /// does not list) otherwise.
    fn names(&mut self, dir: &Path) -> Vec<String> {
        match self.vfs.list(dir) {
            Ok(mut names) => {
                names.sort();
                names
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                self.error(Error::Io(e), dir);
                Vec::new()
            }
        }
    }

    /// Step 3 with the live manifest `live` (`None`: there is none).
    fn files(&mut self, live: Option<(u64, &ManifestState)>) {
        match manifest::obsolete_files(self.vfs, self.dir, live) {
            Ok(obsolete) => {
                for file in obsolete {
                    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                    let what = match name.as_deref() {
                        Some(manifest::CURRENT_TMP) => "a CURRENT whose install a crash cut short",
                        Some(n) if manifest::parse_manifest_name(n).is_some() => {
                            "a manifest CURRENT no longer names (replaced by a newer one)"
                        }
                        _ => "an orphan table (written by a flush or compaction a crash cut short)",
                    };
                    let what = format!("{what}: the next writable open removes it");
                    self.push(Severity::Warning, &file, None, what);
                }
            }
            Err(e) => self.error(e, self.dir),
        }
        self.unexpected_files();
    }

    /// Files Strata does not write, in the directory, `tables/` and `wal/`.
    fn unexpected_files(&mut self) {
        let ours: fn(&str) -> bool = |name| {
            name == LOCK_NAME
                || name == manifest::CURRENT
                || name == manifest::CURRENT_TMP
                || manifest::parse_manifest_name(name).is_some()
        };
        let places: [(PathBuf, NameCheck); 3] = [
            (self.dir.to_path_buf(), ours),
            (self.dir.join(manifest::TABLES_DIR), |n| {
                manifest::parse_table_name(n).is_some()
            }),
            (self.dir.join(crate::store::WAL_DIR), |n| {
                wal::parse_segment_name(n).is_some()
            }),
        ];
        for (dir, known) in places {
            for name in self.names(&dir) {
                if !known(&name) {
                    let what = "not a file Strata writes (left alone)".to_string();
                    self.push(Severity::Warning, &dir.join(name), None, what);
                }
            }
        }
    }

    /// Step 4, with the live manifest and its state (`None`: the manifest
    /// does not read).
    fn wal(&mut self, manifest: Option<(Option<&manifest::Recovered>, &ManifestState)>) {
        let flushed = manifest.map_or(UNKNOWN_FLUSHED, |(_, s)| s.flushed_lsn());
        let wal_dir = self.dir.join(crate::store::WAL_DIR);
        let recovered = match super::read_wal(self.vfs, self.dir, flushed, &mut |_| Ok(())) {
            Ok(r) => r,
            Err(e) => return self.error(e, &wal_dir),
        };
        self.report.files += recovered.segments.len() as u64;
        self.report.bytes += recovered.bytes;
        self.report.wal_segments += recovered.segments.len() as u64;
        for repair in &recovered.repairs {
            match repair {
                Repair::CutTornTail {
                    file,
                    offset,
                    bytes,
                } => {
                    let what = format!(
                        "a torn tail ({bytes} bytes): a crash cut a write short; \
                         the next writable open cuts it off"
                    );
                    self.push(Severity::Warning, file, Some(*offset), what);
                }
                Repair::RemoveTornSegment { file, bytes } => {
                    let what = format!(
                        "a segment whose creation a crash cut short ({bytes} bytes of data): \
                         the next writable open removes it"
                    );
                    self.push(Severity::Warning, file, Some(0), what);
                }
                // Preallocated space after the last frame: no data.
                Repair::CutZeroTail { .. } => {}
            }
        }
        if let Some((Some(live), state)) = manifest {
            let extent = WalExtent {
                oldest_lsn: recovered.oldest_lsn,
                last_lsn: recovered.chain.last_lsn,
            };
            if let Err(e) = manifest::check_wal(state, extent, &live.path) {
                self.error(e, &live.path);
            }
        }
    }
}

/// Whether a file name is one Strata writes in some directory.
type NameCheck = fn(&str) -> bool;

/// The lock file's name (`super::LOCK_FILE`).
const LOCK_NAME: &str = super::LOCK_FILE;
