//! Fault injection over another [`Vfs`]: fail the n-th sync, write,
//! `set_len`, file creation or rename (appending and positional writes
//! count alike; a creation is `open_write`/`open_append` of a name that
//! does not exist yet; a failed rename changes nothing). Injected errors are `ErrorKind::Other` unless
//! [`FaultConfig::set_error_kind`] says otherwise;
//! [`FaultConfig::fail_as_full_disk_now`] makes them `StorageFull` (ENOSPC).
//!
//! Counts are shared by every caller, including the background sync of a
//! `Durability::Buffered` database (`Options::buffered_sync_interval`),
//! which syncs on a timer: a test that counts syncs, or that expects a
//! particular caller to meet the first failure, sets the interval to zero.

use std::io;
use std::path::{Path, PathBuf};

use super::{FileLock, Mapped, Vfs, VfsFile, parent_dir};
use crate::error::io_context;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// When [`FaultVfs`] fails operations. Counters are shared by all files.
#[derive(Debug, Default)]
pub struct FaultConfig {
    /// `sync_data` calls that succeed before every later one fails (`u64::MAX`: never fail).
    pub syncs_before_failure: AtomicU64,
    /// Writes (`write_all` and `write_all_at` calls) that succeed before
    /// every later one fails (`u64::MAX`: never fail).
    pub writes_before_failure: AtomicU64,
    /// Number of `sync_data` calls seen so far.
    pub syncs: AtomicU64,
    /// Number of writes (`write_all` and `write_all_at` calls) seen so far.
    pub writes: AtomicU64,
    /// File creations (`open_write`/`open_append` of a missing file) that
    /// succeed before every later one fails (`u64::MAX`: never fail). A
    /// failed creation creates nothing.
    pub creates_before_failure: AtomicU64,
    /// `set_len` calls that succeed before every later one fails
    /// (`u64::MAX`: never fail). `Vfs::truncate` is not counted.
    pub set_lens_before_failure: AtomicU64,
    /// Number of file creations seen so far.
    pub creates: AtomicU64,
    /// Number of `set_len` calls seen so far.
    pub set_lens: AtomicU64,
    /// `Vfs::rename` calls that succeed before every later one fails
    /// (`u64::MAX`: never fail). A failed rename renames nothing.
    pub renames_before_failure: AtomicU64,
    /// Number of renames seen so far.
    pub renames: AtomicU64,
    /// The kind of every injected error (`None`: `ErrorKind::Other`); see
    /// [`FaultConfig::set_error_kind`].
    error_kind: Mutex<Option<io::ErrorKind>>,
}

impl FaultConfig {
    /// A configuration that injects nothing until told to.
    #[must_use]
    pub fn new() -> Self {
        Self {
            syncs_before_failure: AtomicU64::new(u64::MAX),
            writes_before_failure: AtomicU64::new(u64::MAX),
            syncs: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            creates_before_failure: AtomicU64::new(u64::MAX),
            set_lens_before_failure: AtomicU64::new(u64::MAX),
            creates: AtomicU64::new(0),
            set_lens: AtomicU64::new(0),
            renames_before_failure: AtomicU64::new(u64::MAX),
            renames: AtomicU64::new(0),
            error_kind: Mutex::new(None),
        }
    }

    /// Makes every sync from now on fail.
    pub fn fail_syncs_now(&self) {
        self.syncs_before_failure
            .store(self.syncs.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Makes every write from now on fail.
    pub fn fail_writes_now(&self) {
        self.writes_before_failure
            .store(self.writes.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Makes every file creation from now on fail.
    pub fn fail_creates_now(&self) {
        self.creates_before_failure
            .store(self.creates.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Makes every `set_len` from now on fail.
    pub fn fail_set_lens_now(&self) {
        self.set_lens_before_failure
            .store(self.set_lens.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Makes every rename from now on fail.
    pub fn fail_renames_now(&self) {
        self.renames_before_failure
            .store(self.renames.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Makes every injected error from now on of kind `kind`.
    pub fn set_error_kind(&self, kind: io::ErrorKind) {
        *self.error_kind.lock() = Some(kind);
    }

    /// A full disk from now on: every write, `set_len` and file creation
    /// fails with `ErrorKind::StorageFull` (ENOSPC). Syncs, reads, removals
    /// and `Vfs::truncate` (which frees space) keep working.
    pub fn fail_as_full_disk_now(&self) {
        self.set_error_kind(io::ErrorKind::StorageFull);
        self.fail_writes_now();
        self.fail_set_lens_now();
        self.fail_creates_now();
    }

    /// Counts one call against `seen` and says whether it must fail.
    fn fails(seen: &AtomicU64, before_failure: &AtomicU64) -> bool {
        seen.fetch_add(1, Ordering::SeqCst) >= before_failure.load(Ordering::SeqCst)
    }

    /// An injected failure of `what` on `path`, named like an OS error.
    fn injected(&self, what: &'static str, path: &Path) -> io::Error {
        let kind = self.error_kind.lock().unwrap_or(io::ErrorKind::Other);
        io_context(
            what,
            path,
            io::Error::new(kind, format!("injected {what} failure")),
        )
    }
}

/// A [`Vfs`] that forwards to `inner` and fails operations as `config` says.
#[derive(Debug, Clone)]
pub struct FaultVfs {
    inner: Arc<dyn Vfs>,
    config: Arc<FaultConfig>,
}

impl FaultVfs {
    /// Wraps `inner`; the returned config controls the faults.
    pub fn new(inner: Arc<dyn Vfs>) -> (Self, Arc<FaultConfig>) {
        let config = Arc::new(FaultConfig::new());
        (
            Self {
                inner,
                config: config.clone(),
            },
            config,
        )
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Box<dyn VfsFile>,
    config: Arc<FaultConfig>,
    /// For error messages (as `OsVfs` names the file that failed).
    path: PathBuf,
}

impl FaultFile {
    /// Counts a write and says whether it must fail.
    fn write_fails(&self) -> bool {
        FaultConfig::fails(&self.config.writes, &self.config.writes_before_failure)
    }
}

impl VfsFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.write_fails() {
            return Err(self.config.injected("write", &self.path));
        }
        self.inner.write_all(buf)
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.write_fails() {
            return Err(self.config.injected("write", &self.path));
        }
        self.inner.write_all_at(offset, buf)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let c = &self.config;
        if FaultConfig::fails(&c.set_lens, &c.set_lens_before_failure) {
            return Err(c.injected("set_len", &self.path));
        }
        self.inner.set_len(len)
    }

    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let c = &self.config;
        if FaultConfig::fails(&c.syncs, &c.syncs_before_failure) {
            return Err(c.injected("sync_data", &self.path));
        }
        self.inner.sync_data()
    }
}

impl FaultVfs {
    fn wrap(&self, inner: Box<dyn VfsFile>, path: &Path) -> Box<dyn VfsFile> {
        Box::new(FaultFile {
            inner,
            config: self.config.clone(),
            path: path.to_path_buf(),
        })
    }

    /// If opening `path` would create it, counts a creation and fails it
    /// as configured (before anything is created).
    fn check_create(&self, path: &Path) -> io::Result<()> {
        let exists = path.file_name().is_some_and(|name| {
            self.inner
                .list(&parent_dir(path))
                .is_ok_and(|names| names.iter().any(|n| std::ffi::OsStr::new(n) == name))
        });
        let c = &self.config;
        if !exists && FaultConfig::fails(&c.creates, &c.creates_before_failure) {
            return Err(c.injected("create", path));
        }
        Ok(())
    }
}

impl Vfs for FaultVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn dir_exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.dir_exists(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.check_create(path)?;
        let inner = self.inner.open_append(path)?;
        Ok(self.wrap(inner, path))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.check_create(path)?;
        let inner = self.inner.open_write(path)?;
        Ok(self.wrap(inner, path))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read_all(path)
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        self.inner.map(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.truncate(path, len)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    /// A new name: fails as a create does.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check_create(to)?;
        self.inner.hard_link(from, to)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let c = &self.config;
        if FaultConfig::fails(&c.renames, &c.renames_before_failure) {
            return Err(c.injected("rename", from));
        }
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.inner.lock(path)
    }

    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.inner.lock_shared(path)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;

    #[test]
    fn positional_writes_count_and_fail_like_appends() {
        let mem = MemVfs::new();
        mem.create_dir_all(Path::new("/d")).unwrap();
        let (vfs, config) = FaultVfs::new(Arc::new(mem.clone()));
        let mut f = vfs.open_write(Path::new("/d/f")).unwrap();
        f.write_all_at(0, b"ab").unwrap();
        f.write_all(b"cd").unwrap();
        assert_eq!(config.writes.load(Ordering::SeqCst), 2);
        config.fail_writes_now();
        assert!(f.write_all_at(0, b"x").is_err());
        assert!(f.write_all(b"x").is_err());
        assert_eq!(config.writes.load(Ordering::SeqCst), 4);
        assert_eq!(mem.read_all(Path::new("/d/f")).unwrap(), b"abcd");
        f.set_len(1).unwrap();
        assert_eq!(f.file_len().unwrap(), 1);
    }

    #[test]
    fn a_full_disk_fails_creates_set_lens_and_writes_with_storage_full() {
        let mem = MemVfs::new();
        mem.create_dir_all(Path::new("/d")).unwrap();
        let (vfs, config) = FaultVfs::new(Arc::new(mem.clone()));
        let mut old = vfs.open_write(Path::new("/d/old")).unwrap();
        old.write_all_at(0, b"abc").unwrap();
        assert_eq!(config.creates.load(Ordering::SeqCst), 1);
        config.fail_as_full_disk_now();
        let full = |e: io::Error| assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        full(vfs.open_write(Path::new("/d/new")).unwrap_err());
        full(vfs.open_append(Path::new("/d/new")).unwrap_err());
        assert!(
            mem.list(Path::new("/d")).unwrap() == ["old"],
            "nothing created"
        );
        // An existing file still opens; growing it fails, syncing does not.
        let mut again = vfs.open_append(Path::new("/d/old")).unwrap();
        full(again.write_all(b"x").unwrap_err());
        full(old.write_all_at(1, b"x").unwrap_err());
        full(old.set_len(1).unwrap_err());
        old.sync_data().unwrap();
        assert_eq!(config.creates.load(Ordering::SeqCst), 3);
        assert_eq!(config.set_lens.load(Ordering::SeqCst), 1);
        assert_eq!(mem.read_all(Path::new("/d/old")).unwrap(), b"abc");
    }

    #[test]
    fn renames_fail_after_their_budget_and_rename_nothing() {
        let mem = MemVfs::new();
        mem.create_dir_all(Path::new("/d")).unwrap();
        let (vfs, config) = FaultVfs::new(Arc::new(mem.clone()));
        vfs.open_write(Path::new("/d/a")).unwrap();
        vfs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        config.fail_renames_now();
        let e = vfs
            .rename(Path::new("/d/b"), Path::new("/d/c"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.to_string().contains("injected rename failure"), "{e}");
        assert_eq!(mem.list(Path::new("/d")).unwrap(), ["b"]);
        assert_eq!(config.renames.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn creates_and_set_lens_fail_after_their_budget_with_kind_other() {
        let mem = MemVfs::new();
        mem.create_dir_all(Path::new("/d")).unwrap();
        let (vfs, config) = FaultVfs::new(Arc::new(mem));
        config.creates_before_failure.store(1, Ordering::SeqCst);
        config.set_lens_before_failure.store(1, Ordering::SeqCst);
        let mut f = vfs.open_write(Path::new("/d/a")).unwrap();
        let e = vfs.open_write(Path::new("/d/b")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        f.set_len(4).unwrap();
        assert_eq!(f.set_len(2).unwrap_err().kind(), io::ErrorKind::Other);
    }
}
