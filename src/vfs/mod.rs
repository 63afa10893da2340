//! The one file-system seam. Every file operation in Strata goes through a
//! [`Vfs`], so tests can run the engine on [`MemVfs`] (which models power
//! loss: only synced bytes and dir-synced names survive a crash) or on
//! [`FaultVfs`] (which injects write, sync, `set_len`, creation and rename failures).
//!
//! Contract every implementation keeps:
//! 1. `VfsFile::write_all` appends (writes at the current end of the file);
//!    `VfsFile::write_all_at` writes at an offset, zero-filling any gap past
//!    the end; `VfsFile::set_len` cuts or zero-extends. None of them is
//!    durable by itself: written bytes and the file's length are durable
//!    only after a successful `sync_data` on that file (a power cut before
//!    it leaves the file as it was at the previous sync).
//!    Positional calls (`write_all_at`, `set_len`) are for handles from
//!    `Vfs::open_write`; on a handle from `Vfs::open_append` an OS may ignore
//!    the offset (Linux `pwrite` on an `O_APPEND` file appends).
//! 2. A newly created file's or directory's *name*, and the removal of a
//!    file's name, are durable only after `sync_dir` on the parent
//!    directory: a power cut before it may lose a new name or bring a
//!    removed one back. `create_dir_all` makes nothing durable by itself;
//!    [`create_dir_durable`] syncs the parent of every directory it creates.
//!    `rename(from, to)` replaces `to` atomically (a reader sees the old
//!    file or the new one under `to`, never neither, never a mix): the new
//!    name, and the removal of `from`, are durable only after `sync_dir` on
//!    their parents. A power cut before that leaves the old state or the new
//!    one; [`MemVfs`] leaves the old state, the stricter case for callers.
//!    An open handle on `from` is not guaranteed to follow the rename
//!    (`MemVfs` handles name their path): close it first.
//! 3. `lock` returns `Ok(None)` when another holder (process or handle) has
//!    the lock, `lock_shared` when another holder has it exclusively; the
//!    lock is released when the returned guard is dropped.

mod fault;
mod mem;
mod mmap;
mod os;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use fault::{FaultConfig, FaultVfs};
pub use mem::MemVfs;
pub use mmap::Mapped;
pub use os::OsVfs;

/// A file system, as Strata uses it.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `path` and its parents if missing. The new names are not
    /// durable until their parents are synced (contract 2).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists and is a directory. Strata asks it to find the
    /// directories an open is about to create, so that it can make each new
    /// name durable. The default answers `false` for every path, which is
    /// safe and only costs directory syncs that were not needed.
    fn dir_exists(&self, _path: &Path) -> io::Result<bool> {
        Ok(false)
    }
    /// Names of the entries (files) directly inside `dir`, unsorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens `path` for positional writing, creating it if missing and
    /// keeping its contents (no truncation).
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Reads the whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Cuts the file to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames the file `from` to `to`, atomically replacing `to` if it
    /// exists (POSIX `rename`). Not durable until the parent directories
    /// are synced (contract 2).
    ///
    /// The default (for file systems written before this method existed)
    /// copies `from` over `to`, syncs it and removes `from`: **not atomic**,
    /// so a crash in between can leave a partial `to`. Strata renames only
    /// `CURRENT.tmp` over `CURRENT`, which carries a checksum, so a partial
    /// one is reported as `Error::Corruption`, never misread; implementations
    /// should still override it with a real rename.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        copy_file(self, from, to)?;
        self.remove(from)
    }
    /// Makes `to` a second name of the finished file `from` (a checkpoint's
    /// tables). The default copies the bytes and syncs the copy, which is
    /// correct for a file nobody writes again, only slower; `to` must not
    /// exist.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        copy_file(self, from, to)
    }
    /// Makes the directory's entries (created or removed names) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by `path` (creating the file if needed);
    /// `Ok(None)` if somebody else holds it, shared or exclusive.
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>>;
    /// Takes a shared lock named by `path`, writing nothing (the file must
    /// exist); `Ok(None)` if somebody holds it exclusively. Any number of
    /// shared holders may hold it at once. The default takes the exclusive
    /// lock, which is safe but lets only one reader in at a time.
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.lock(path)
    }
    /// A read-only view of a finished file that nobody writes again (a
    /// sorted table): the OS maps it, other file systems may copy it. The
    /// default reads the whole file into a shared buffer. The view is
    /// opaque outside Strata ([`Mapped`]).
    fn map(&self, path: &Path) -> io::Result<Mapped> {
        Ok(Mapped::from(self.read_all(path)?))
    }
}

/// An open file, written by appending or at offsets.
pub trait VfsFile: Send + fmt::Debug {
    /// Writes all of `buf` at the current end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file (with zeros
    /// between its old end and `offset`) if needed. Not durable until
    /// `sync_data`.
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes, or extends it with zeros. Not durable
    /// until `sync_data`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's current length (what reads see, synced or not).
    fn file_len(&self) -> io::Result<u64>;
    /// Makes every byte written so far, and the file's length, durable
    /// (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// A held lock; dropping it releases the lock.
pub trait FileLock: Send + Sync + fmt::Debug {}

/// The parent directory of `path` (`.` for a relative name without one).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        Some(_) | None => PathBuf::from("."),
    }
}

/// Copies `from` to a new file `to` and syncs it (not the directory).
pub fn copy_file<V: Vfs + ?Sized>(vfs: &V, from: &Path, to: &Path) -> io::Result<()> {
    let data = vfs.read_all(from)?;
    let mut file = vfs.open_write(to)?;
    file.set_len(0)?;
    file.write_all_at(0, &data)?;
    file.sync_data()
}

/// Creates `path` and any missing parents, then makes every new name
/// durable: it syncs the parent of each directory it created, outermost
/// first, so that nothing later written inside can outlive a power cut
/// while the directory holding it does not. The parent of `path` is synced
/// even if `path` existed: a process killed between creating it and that
/// sync leaves a directory whose name a power cut can still take.
pub(crate) fn create_dir_durable(vfs: &dyn Vfs, path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    for dir in path.ancestors() {
        if dir.as_os_str().is_empty() || dir.parent().is_none() || vfs.dir_exists(dir)? {
            break;
        }
        missing.push(dir);
    }
    vfs.create_dir_all(path)?;
    for dir in missing.iter().rev() {
        vfs.sync_dir(&parent_dir(dir))?;
    }
    if missing.is_empty() && path.parent().is_some() {
        vfs.sync_dir(&parent_dir(path))?;
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A file system written before `rename` existed: everything but
    /// `rename` forwarded to a `MemVfs`.
    #[derive(Debug)]
    struct Old(MemVfs);

    impl Vfs for Old {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            self.0.create_dir_all(path)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            self.0.list(dir)
        }
        fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
            self.0.open_append(path)
        }
        fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
            self.0.open_write(path)
        }
        fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.0.read_all(path)
        }
        fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
            self.0.truncate(path, len)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            self.0.remove(path)
        }
        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            self.0.sync_dir(path)
        }
        fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
            self.0.lock(path)
        }
    }

    #[test]
    fn the_default_rename_replaces_the_target_and_removes_the_source() {
        let vfs = Old(MemVfs::new());
        vfs.create_dir_all(Path::new("/d")).unwrap();
        let write = |p: &str, b: &[u8]| vfs.open_write(Path::new(p)).unwrap().write_all(b).unwrap();
        write("/d/new", b"short");
        write("/d/old", b"a longer old content");
        vfs.rename(Path::new("/d/new"), Path::new("/d/old"))
            .unwrap();
        assert_eq!(vfs.read_all(Path::new("/d/old")).unwrap(), b"short");
        assert_eq!(vfs.list(Path::new("/d")).unwrap(), vec!["old".to_owned()]);
    }
}
