//! Database options.

use crate::error::{Error, Result};

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Durability {
    /// The commit's WAL record is on stable storage (`fdatasync`) before
    /// `commit` returns. Concurrent commits share one write and one sync.
    #[default]
    Sync,
    /// The commit's WAL record has been written to the operating system
    /// before `commit` returns, but not synced: a process crash loses
    /// nothing, a power loss or kernel crash may lose the newest commits.
    /// Recovery always yields a prefix of the commit order.
    Buffered,
}

/// Default size at which the WAL rolls to a new segment.
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Options for [`crate::Db::open`]; `Options::default()` then builder-style setters.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) wal_segment_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            wal_segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
        }
    }
}

impl Options {
    /// Same as `Options::default()`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability of every commit (default [`Durability::Sync`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the WAL segment size in bytes (at least 4 KiB; default 64 MiB).
    #[must_use]
    pub fn wal_segment_bytes(mut self, bytes: u64) -> Self {
        self.wal_segment_bytes = bytes;
        self
    }

    /// The configured durability.
    #[must_use]
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.wal_segment_bytes < 4096 {
            return Err(Error::InvalidArgument(format!(
                "wal_segment_bytes must be at least 4096, got {}",
                self.wal_segment_bytes
            )));
        }
        Ok(())
    }
}
