//! The operating system's file system (`std::fs`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{FileLock, Mapped, Vfs, VfsFile};
use crate::error::io_context;

/// Adds the operation and the path to an error (the closure runs only on
/// the error path, so success costs nothing).
fn ctx<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io_context(op, path, e)
}

/// [`Vfs`] over the real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

#[derive(Debug)]
struct OsFile {
    file: File,
    /// For error messages.
    path: PathBuf,
    /// Opened with `O_APPEND` (`open_append`), so writes land at the end.
    append: bool,
}

impl VfsFile for OsFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if !self.append {
            self.file
                .seek(SeekFrom::End(0))
                .map_err(ctx("seek", &self.path))?;
        }
        self.file.write_all(buf).map_err(ctx("write", &self.path))
    }

    #[cfg(unix)]
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
            .map_err(ctx("write", &self.path))
    }

    #[cfg(not(unix))]
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(buf))
            .map_err(ctx("write", &self.path))
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len).map_err(ctx("set_len", &self.path))
    }

    fn file_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata().map_err(ctx("stat", &self.path))?.len())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(ctx("sync_data", &self.path))
    }
}

#[derive(Debug)]
struct OsLock(#[expect(dead_code, reason = "held for its Drop, which unlocks")] File);

impl FileLock for OsLock {}

impl Vfs for OsVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path).map_err(ctx("create_dir_all", path))
    }

    fn dir_exists(&self, path: &Path) -> io::Result<bool> {
        match fs::metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_context("stat", path, e)),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(ctx("read_dir", dir))? {
            let entry = entry.map_err(ctx("read_dir", dir))?;
            if entry.file_type().map_err(ctx("read_dir", dir))?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(ctx("open", path))?;
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
            append: true,
        }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(ctx("open", path))?;
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
            append: false,
        }))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path).map_err(ctx("read", path))
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        Mapped::map_path(path).map_err(ctx("map", path))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(ctx("open", path))?;
        file.set_len(len).map_err(ctx("set_len", path))?;
        file.sync_all().map_err(ctx("sync", path))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path).map_err(ctx("remove", path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to).map_err(ctx("rename", from))
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to).map_err(ctx("hard_link", from))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(ctx("sync_dir", path))
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(ctx("open", path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(OsLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_context("lock", path, e)),
        }
    }

    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let file = File::open(path).map_err(ctx("open", path))?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Box::new(OsLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_context("lock_shared", path, e)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn positional_writes_set_len_and_appends_on_a_write_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let vfs = OsVfs;
        let mut f = vfs.open_write(&path).unwrap();
        f.write_all_at(0, b"head").unwrap();
        f.write_all_at(8, b"tail").unwrap();
        assert_eq!(f.file_len().unwrap(), 12);
        assert_eq!(vfs.read_all(&path).unwrap(), b"head\0\0\0\0tail");
        f.set_len(6).unwrap();
        f.write_all(b"!").unwrap();
        f.sync_data().unwrap();
        assert_eq!(vfs.read_all(&path).unwrap(), b"head\0\0!");
        // Reopening keeps the contents.
        let mut g = vfs.open_write(&path).unwrap();
        assert_eq!(g.file_len().unwrap(), 7);
        g.write_all_at(1, b"E").unwrap();
        assert_eq!(vfs.read_all(&path).unwrap(), b"hEad\0\0!");
    }

    #[test]
    fn shared_locks_exclude_only_an_exclusive_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("LOCK");
        assert!(
            OsVfs.lock_shared(&lock).is_err(),
            "a shared lock creates nothing"
        );
        let x = OsVfs.lock(&lock).unwrap().unwrap();
        assert!(OsVfs.lock_shared(&lock).unwrap().is_none());
        drop(x);
        let a = OsVfs.lock_shared(&lock).unwrap().unwrap();
        let b = OsVfs.lock_shared(&lock).unwrap().unwrap();
        assert!(OsVfs.lock(&lock).unwrap().is_none());
        drop((a, b));
        assert!(OsVfs.lock(&lock).unwrap().is_some());
    }

    #[test]
    fn rename_replaces_the_target_and_names_the_source_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut f = OsVfs.open_write(&a).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        OsVfs.open_write(&b).unwrap().write_all(b"old").unwrap();
        OsVfs.rename(&a, &b).unwrap();
        OsVfs.sync_dir(dir.path()).unwrap();
        assert_eq!(OsVfs.read_all(&b).unwrap(), b"new");
        assert_eq!(OsVfs.list(dir.path()).unwrap(), ["b"]);
        let e = OsVfs.rename(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("rename "), "{e}");
    }

    #[test]
    fn errors_name_the_operation_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = OsVfs.read_all(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("read "), "{e}");
        assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the OS error is kept"
        );
        assert!(!OsVfs.dir_exists(&missing).unwrap());
        assert!(OsVfs.dir_exists(dir.path()).unwrap());
    }
}
