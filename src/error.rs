//! The one public error type. See `docs/design.md` for when each variant occurs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::types::Ts;

/// Result alias used throughout Strata.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in Strata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Write-write conflict: `key` was committed at `committed_ts` by another
    /// transaction after this transaction's snapshot (`read_ts`). Retryable:
    /// run the transaction again on a fresh snapshot.
    ///
    /// The message shows at most [`CONFLICT_KEY_DISPLAY_BYTES`] of the key,
    /// escaped; the field holds all of it.
    #[error(
        "write-write conflict on key {}: committed at {committed_ts:?} after read_ts {read_ts:?}",
        DisplayKey(key)
    )]
    Conflict {
        /// The first conflicting key found.
        key: Vec<u8>,
        /// The snapshot the losing transaction read from.
        read_ts: Ts,
        /// The commit timestamp of the write that won.
        committed_ts: Ts,
    },
    /// An operating-system I/O error. If it came from a WAL write or sync the
    /// commit's outcome is unknown and the database is now poisoned.
    ///
    /// Errors from Strata's own file operations name the operation and the
    /// file (`"sync_data /db/wal/00000000000000000001.wal: ..."`); the
    /// operating system's error is the `source()` of the wrapped
    /// [`std::io::Error`], whose `kind()` is the original one.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A file's contents fail their checksum or structure checks at a place
    /// where a torn write cannot explain it.
    #[error("corruption in {file:?} at offset {offset}: {what}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged record or header.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A previous WAL or manifest write or fsync failed; the database
    /// refuses writes until it is reopened (recovery then decides what
    /// reached the disk).
    #[error("database is poisoned by an earlier write or sync failure; reopen it")]
    Poisoned,
    /// A write (`put`, `delete`, or a commit that writes) on a database
    /// opened with `Options::read_only(true)`.
    #[error("database {path:?} is open read-only")]
    ReadOnly {
        /// The database directory.
        path: PathBuf,
    },
    /// The database handle was closed.
    #[error("database is closed")]
    Closed,
    /// Another process (or another open handle in this process) holds the
    /// directory's lock file.
    #[error("database directory {path:?} is locked by another open instance")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A key longer than [`crate::MAX_KEY_BYTES`].
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the refused key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`crate::MAX_VALUE_BYTES`].
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `put` or `delete` that would take its transaction's write set
    /// past a quarter of `Options::memory_budget` (counted as a memtable
    /// holds it: keys, values and 80 bytes per key, so a transaction at the
    /// limit fills one memtable), or its WAL record past
    /// [`crate::MAX_TXN_BYTES`]. The refused write changes nothing.
    #[error(
        "transaction write set of {len} bytes exceeds the limit of {max} bytes \
         (a quarter of the memory budget, at most MAX_TXN_BYTES)"
    )]
    TxnTooLarge {
        /// Size the write set would reach.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A file written by an unknown (newer) format version.
    #[error("unsupported format version {found} in {file:?} (this build reads up to {supported})")]
    UnsupportedFormat {
        /// The file.
        file: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Highest version this build understands.
        supported: u32,
    },
    /// A read older than the history the database keeps: `Db::begin_read_at`
    /// below the retained history (`Options::history_retention`, and what
    /// compaction has already collected), or a snapshot past
    /// `Options::max_snapshot_age` (its pin on old versions was released, so
    /// it reads or commits nothing more). Not retryable as it is: begin a
    /// newer snapshot.
    #[error("snapshot at {read_ts:?} is too old: the oldest readable ts is now {oldest:?}")]
    SnapshotTooOld {
        /// The snapshot's (or the requested) read ts.
        read_ts: Ts,
        /// The oldest read ts the database can serve now.
        oldest: Ts,
    },
    /// An argument or option is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// True when running the transaction again may succeed (a conflict).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        what: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            what: what.into(),
        }
    }
}

/// Longest prefix of a key that an [`Error::Conflict`] message shows.
pub const CONFLICT_KEY_DISPLAY_BYTES: usize = 64;

/// A key for a message: its first [`CONFLICT_KEY_DISPLAY_BYTES`] bytes,
/// ASCII-escaped, then how long it is if it was cut.
struct DisplayKey<'a>(&'a [u8]);

impl fmt::Display for DisplayKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..CONFLICT_KEY_DISPLAY_BYTES).unwrap_or(self.0);
        f.write_str("\"")?;
        for &b in shown {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\"")?;
        if shown.len() < self.0.len() {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// An I/O error with the operation and the file it happened on; the
/// original error is its `source()`.
#[derive(Debug)]
struct IoContext {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for IoContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for IoContext {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `source` so that it names `op` and `path`, keeping its kind.
pub(crate) fn io_context(op: &'static str, path: &Path, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        IoContext {
            op,
            path: path.to_path_buf(),
            source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conflicts_are_retryable() {
        let c = Error::Conflict {
            key: b"k".to_vec(),
            read_ts: Ts::ZERO,
            committed_ts: Ts::MAX,
        };
        assert!(c.is_retryable());
        assert!(!Error::Poisoned.is_retryable());
        assert!(!Error::Io(std::io::Error::other("x")).is_retryable());
        assert!(c.to_string().contains("conflict"));
    }

    #[test]
    fn a_conflict_message_shows_a_short_escaped_key_prefix() {
        let conflict = |key: Vec<u8>| Error::Conflict {
            key,
            read_ts: Ts::ZERO,
            committed_ts: Ts::MAX,
        };
        let short = conflict(b"a\n\xff".to_vec()).to_string();
        assert!(short.contains(r#"key "a\n\xff":"#), "{short}");
        let long = conflict(vec![b'k'; 64 * 1024]).to_string();
        assert!(long.len() < 300, "{} bytes", long.len());
        assert!(long.contains(&format!("\"{}\"... (65536 bytes)", "k".repeat(64))));
    }

    #[test]
    fn io_context_names_the_operation_and_file_and_keeps_the_source() {
        let e = io_context(
            "sync_data",
            Path::new("/db/wal/1.wal"),
            io::Error::new(io::ErrorKind::StorageFull, "no space"),
        );
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        let err = Error::Io(e);
        assert_eq!(
            err.to_string(),
            "i/o error: sync_data /db/wal/1.wal: no space"
        );
        let inner = std::error::Error::source(&err).expect("the io::Error");
        let original = inner.source().expect("the operating system's error");
        assert_eq!(original.to_string(), "no space");
    }
}
