//! The one file-system seam. Every file operation in Strata goes through a
//! [`Vfs`], so tests can run the engine on [`MemVfs`] (which models power
//! loss: only synced bytes and dir-synced names survive a crash) or on
//! [`FaultVfs`] (which injects write and sync failures).
//!
//! Contract every implementation keeps:
//! 1. `VfsFile::write_all` appends; bytes are durable only after a
//!    successful `sync_data` on that file.
//! 2. A newly created file's *name* is durable only after `sync_dir` on its
//!    parent directory.
//! 3. `lock` returns `Ok(None)` when another holder (process or handle) has
//!    the lock; the lock is released when the returned guard is dropped.

mod fault;
mod mem;
mod os;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use fault::{FaultConfig, FaultVfs};
pub use mem::MemVfs;
pub use os::OsVfs;

/// A file system, as Strata uses it.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `path` and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries (files) directly inside `dir`, unsorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Reads the whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Cuts the file to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created or removed names) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by `path` (creating the file if needed);
    /// `Ok(None)` if somebody else holds it.
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>>;
}

/// An open file, written by appending.
pub trait VfsFile: Send + fmt::Debug {
    /// Appends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// A held lock; dropping it releases the lock.
pub trait FileLock: Send + Sync + fmt::Debug {}

/// The parent directory of `path` (or `.`).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
