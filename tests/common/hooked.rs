//! One forwarding file system for the tests that inject faults or hold a
//! thread at a file operation: [`HookedVfs`] forwards every [`Vfs`] call
//! to an inner file system, except the ones its [`VfsHooks`] take over, and
//! [`HookedFile`] does the same for a file with [`FileHooks`]. A test writes
//! only what it changes; a hook that does its own thing and then forwards
//! calls `inner` itself.
//!
//! `hard_link` is the one call not forwarded: it keeps the trait's default,
//! a copy made through the hooked file system, so that the copy's file (a
//! checkpoint's table) goes through the hooks like every other file.
//! Add a hook here when a test needs to take over another call.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use strata::vfs::{FileLock, Mapped, Vfs, VfsFile};

/// What a [`HookedVfs`] does instead of forwarding; every method defaults
/// to forwarding to `inner`.
pub trait VfsHooks: fmt::Debug + Send + Sync + 'static {
    /// `Vfs::create_dir_all`.
    fn create_dir_all(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        inner.create_dir_all(path)
    }
    /// `Vfs::dir_exists`.
    fn dir_exists(&self, inner: &dyn Vfs, path: &Path) -> io::Result<bool> {
        inner.dir_exists(path)
    }
    /// `Vfs::open_write` (the file is then passed to [`VfsHooks::file`]).
    fn open_write(&self, inner: &dyn Vfs, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        inner.open_write(path)
    }
    /// `Vfs::read_all`.
    fn read_all(&self, inner: &dyn Vfs, path: &Path) -> io::Result<Vec<u8>> {
        inner.read_all(path)
    }
    /// `Vfs::map`.
    fn map(&self, inner: &dyn Vfs, path: &Path) -> io::Result<Mapped> {
        inner.map(path)
    }
    /// `Vfs::remove`.
    fn remove(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        inner.remove(path)
    }
    /// `Vfs::sync_dir`.
    fn sync_dir(&self, inner: &dyn Vfs, path: &Path) -> io::Result<()> {
        inner.sync_dir(path)
    }
    /// Wraps each file `open_append` and `open_write` return (usually in a
    /// [`HookedFile`]); the default hands it out as it is.
    fn file(&self, _path: &Path, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        file
    }
}

/// A file system that forwards to `inner` what `hooks` does not take over.
#[derive(Debug, Clone)]
pub struct HookedVfs<H> {
    pub inner: Arc<dyn Vfs>,
    pub hooks: H,
}

impl<H: VfsHooks> HookedVfs<H> {
    pub fn new(inner: Arc<dyn Vfs>, hooks: H) -> Self {
        Self { inner, hooks }
    }
}

impl<H: VfsHooks> Vfs for HookedVfs<H> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.hooks.create_dir_all(self.inner.as_ref(), path)
    }
    fn dir_exists(&self, path: &Path) -> io::Result<bool> {
        self.hooks.dir_exists(self.inner.as_ref(), path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = self.inner.open_append(path)?;
        Ok(self.hooks.file(path, file))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = self.hooks.open_write(self.inner.as_ref(), path)?;
        Ok(self.hooks.file(path, file))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.hooks.read_all(self.inner.as_ref(), path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.truncate(path, len)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.hooks.remove(self.inner.as_ref(), path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.hooks.sync_dir(self.inner.as_ref(), path)
    }
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.inner.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.inner.lock_shared(path)
    }
    fn map(&self, path: &Path) -> io::Result<Mapped> {
        self.hooks.map(self.inner.as_ref(), path)
    }
}

/// What a [`HookedFile`] does instead of forwarding; every method defaults
/// to forwarding to `inner`.
pub trait FileHooks: fmt::Debug + Send + 'static {
    /// `VfsFile::write_all_at`.
    fn write_all_at(&mut self, inner: &mut dyn VfsFile, offset: u64, buf: &[u8]) -> io::Result<()> {
        inner.write_all_at(offset, buf)
    }
    /// `VfsFile::sync_data`.
    fn sync_data(&mut self, inner: &mut dyn VfsFile) -> io::Result<()> {
        inner.sync_data()
    }
}

/// A file that forwards to `inner` what `hooks` does not take over.
#[derive(Debug)]
pub struct HookedFile<F> {
    inner: Box<dyn VfsFile>,
    hooks: F,
}

impl<F: FileHooks> HookedFile<F> {
    /// `inner` with `hooks`, boxed (what [`VfsHooks::file`] returns).
    pub fn boxed(inner: Box<dyn VfsFile>, hooks: F) -> Box<dyn VfsFile> {
        Box::new(Self { inner, hooks })
    }
}

impl<F: FileHooks> VfsFile for HookedFile<F> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.hooks.write_all_at(self.inner.as_mut(), offset, buf)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.hooks.sync_data(self.inner.as_mut())
    }
}
