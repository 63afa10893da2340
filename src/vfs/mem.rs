//! An in-memory file system that models power loss.
//!
//! Each file keeps its *live* bytes (what reads see) and the length that is
//! *durable* (reached by `sync_data`). A name is durable once its parent
//! directory was synced after the file was created. [`MemVfs::crash`] returns
//! the file system a machine would find after a power cut at this instant:
//! durable names only, each cut to its durable length.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::{FileLock, Vfs, VfsFile, parent_dir};
use std::sync::Arc;

use crate::sync::Mutex;

#[derive(Debug, Default, Clone)]
struct MemFile {
    data: Vec<u8>,
    durable_len: usize,
    name_durable: bool,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, MemFile>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
}

/// In-memory [`Vfs`]; clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemVfs {
    state: Arc<Mutex<State>>,
}

impl MemVfs {
    /// An empty file system.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The file system as a power cut now would leave it: only synced bytes of
    /// files whose names were made durable. Locks are not carried over.
    #[must_use]
    pub fn crash(&self) -> MemVfs {
        let state = self.state.lock();
        let files = state
            .files
            .iter()
            .filter(|(_, f)| f.name_durable)
            .map(|(p, f)| {
                let mut data = f.data.clone();
                data.truncate(f.durable_len);
                (
                    p.clone(),
                    MemFile {
                        durable_len: data.len(),
                        data,
                        name_durable: true,
                    },
                )
            })
            .collect();
        let fresh = State {
            files,
            dirs: state.dirs.clone(),
            locks: BTreeSet::new(),
        };
        MemVfs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// A copy with every live byte kept, as a process crash (not a power cut)
    /// would leave it. Locks are not carried over.
    #[must_use]
    pub fn process_crash(&self) -> MemVfs {
        let state = self.state.lock();
        let fresh = State {
            files: state.files.clone(),
            dirs: state.dirs.clone(),
            locks: BTreeSet::new(),
        };
        MemVfs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// Replaces the live bytes of `path` (for corruption tests).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut state = self.state.lock();
        let len = data.len();
        state.files.insert(
            path.to_path_buf(),
            MemFile {
                data,
                durable_len: len,
                name_durable: true,
            },
        );
    }
}

#[derive(Debug)]
struct MemHandle {
    vfs: MemVfs,
    path: PathBuf,
}

impl VfsFile for MemHandle {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.vfs.state.lock();
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        file.data.extend_from_slice(buf);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.vfs.state.lock();
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        file.durable_len = file.data.len();
        Ok(())
    }
}

#[derive(Debug)]
struct MemLock {
    vfs: MemVfs,
    path: PathBuf,
}

impl FileLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.vfs.state.lock().locks.remove(&self.path);
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl Vfs for MemVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        for dir in path.ancestors() {
            state.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let mut state = self.state.lock();
        if !state.dirs.contains(&parent_dir(path)) {
            return Err(not_found(&parent_dir(path)));
        }
        state.files.entry(path.to_path_buf()).or_default();
        Ok(Box::new(MemHandle {
            vfs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        state
            .files
            .get(path)
            .map(|f| f.data.clone())
            .ok_or_else(|| not_found(path))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let file = state.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        file.data.truncate(len);
        file.durable_len = file.data.len();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        for (p, f) in &mut state.files {
            if p.parent() == Some(path) {
                f.name_durable = true;
            }
        }
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let mut state = self.state.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(MemLock {
            vfs: self.clone(),
            path: path.to_path_buf(),
        })))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_only_synced_bytes_of_durable_names() {
        let vfs = MemVfs::new();
        let dir = Path::new("/db");
        vfs.create_dir_all(dir).unwrap();
        let mut a = vfs.open_append(&dir.join("a")).unwrap();
        a.write_all(b"hello").unwrap();
        a.sync_data().unwrap();
        a.write_all(b" world").unwrap();
        vfs.sync_dir(dir).unwrap();
        let mut b = vfs.open_append(&dir.join("b")).unwrap();
        b.write_all(b"lost").unwrap();
        b.sync_data().unwrap();

        let after = vfs.crash();
        assert_eq!(after.read_all(&dir.join("a")).unwrap(), b"hello");
        assert!(
            after.read_all(&dir.join("b")).is_err(),
            "name was never dir-synced"
        );
        assert_eq!(
            vfs.process_crash().read_all(&dir.join("a")).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let vfs = MemVfs::new();
        let first = vfs.lock(Path::new("/LOCK")).unwrap();
        assert!(first.is_some());
        assert!(vfs.lock(Path::new("/LOCK")).unwrap().is_none());
        drop(first);
        assert!(vfs.lock(Path::new("/LOCK")).unwrap().is_some());
    }
}
