//! The one public error type. See `docs/design.md` for when each variant occurs.

use std::path::PathBuf;

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
    #[error(
        "write-write conflict on key {key:?}: committed at {committed_ts:?} after read_ts {read_ts:?}"
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
    /// A previous WAL write or fsync failed; the database refuses writes until
    /// it is reopened (recovery then decides what reached the disk).
    #[error("database is poisoned by an earlier write or sync failure; reopen it")]
    Poisoned,
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
    /// A transaction whose write set would exceed [`crate::MAX_TXN_BYTES`].
    #[error("transaction write set of {len} bytes exceeds the limit of {max} bytes")]
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
}
