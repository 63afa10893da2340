//! Fault injection over another [`Vfs`]: fail the n-th sync or write
//! (appending and positional writes count alike).

use std::io;
use std::path::Path;

use super::{FileLock, Vfs, VfsFile};
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

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

#[derive(Debug)]
struct FaultFile {
    inner: Box<dyn VfsFile>,
    config: Arc<FaultConfig>,
}

impl FaultFile {
    /// Counts a write and says whether it must fail.
    fn write_fails(&self) -> bool {
        let n = self.config.writes.fetch_add(1, Ordering::SeqCst);
        n >= self.config.writes_before_failure.load(Ordering::SeqCst)
    }
}

impl VfsFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.write_fails() {
            return Err(injected("write"));
        }
        self.inner.write_all(buf)
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.write_fails() {
            return Err(injected("write"));
        }
        self.inner.write_all_at(offset, buf)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let n = self.config.syncs.fetch_add(1, Ordering::SeqCst);
        if n >= self.config.syncs_before_failure.load(Ordering::SeqCst) {
            return Err(injected("sync"));
        }
        self.inner.sync_data()
    }
}

impl Vfs for FaultVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.inner.open_append(path)?;
        Ok(Box::new(FaultFile {
            inner,
            config: self.config.clone(),
        }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.inner.open_write(path)?;
        Ok(Box::new(FaultFile {
            inner,
            config: self.config.clone(),
        }))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read_all(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.truncate(path, len)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        self.inner.lock(path)
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
}
