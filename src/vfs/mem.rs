//! An in-memory file system that models power loss.
//!
//! Each file keeps its *live* bytes (what reads see) and a *durable* copy
//! (what a power cut leaves): `sync_data` copies the live bytes and length
//! into the durable copy. Only the range written (or cut, or zero-extended)
//! since the previous sync is copied, so syncing a file whose preallocated
//! zeros were made durable once costs only the newly written bytes, not the
//! whole file. A name (of a file or a directory) is durable once its parent
//! directory was synced after it was created, and a removal once the parent
//! was synced after it. [`MemVfs::crash`] returns the file system a machine
//! would find after a power cut at this instant: durable names only (inside
//! directories whose own names are durable), each with its durable
//! contents, and removed files whose removal was not yet durable, back.
//! A rename is a removal of the old name plus a creation of the new one
//! that replaces the target: until the directory sync, a power cut leaves
//! the old name (if it was durable) and the old target (if any), whole;
//! after it, the new name with the renamed file's durable contents.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::{FileLock, Vfs, VfsFile, parent_dir};
use std::sync::Arc;

use crate::sync::Mutex;

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What reads see.
    live: Vec<u8>,
    /// What a power cut leaves.
    durable: Vec<u8>,
    /// `(from, to)`: every live byte at `from..to` may differ from the
    /// durable copy, and so may the length. `None`: live equals durable.
    dirty: Option<(usize, usize)>,
    name_durable: bool,
}

/// `v.resize(len, 0)`, without the byte-at-a-time loop `resize` runs in
/// unoptimized builds (where the tests run: appending a 64 KiB value cost
/// more than checksumming it).
fn resize_zeroed(v: &mut Vec<u8>, len: usize) {
    match len.checked_sub(v.len()) {
        Some(grow) => v.extend_from_slice(&vec![0; grow]),
        None => v.truncate(len),
    }
}

impl MemFile {
    /// Notes that `from..to` (and possibly the length) changed.
    fn touch(&mut self, from: usize, to: usize) {
        self.dirty = Some(match self.dirty {
            None => (from, to),
            Some((a, b)) => (a.min(from), b.max(to)),
        });
    }

    fn write_at(&mut self, offset: usize, buf: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::other("write past the addressable end"))?;
        // A gap between the old end and `offset` reads as zeros, and must
        // become durable as zeros (the durable copy may hold older bytes
        // there, from before an unsynced cut).
        let from = offset.min(self.live.len());
        if self.live.len() < end {
            resize_zeroed(&mut self.live, end);
        }
        if let Some(slot) = self.live.get_mut(offset..end) {
            slot.copy_from_slice(buf);
        }
        self.touch(from, end);
        Ok(())
    }

    fn set_len(&mut self, len: usize) {
        let old = self.live.len();
        resize_zeroed(&mut self.live, len);
        self.touch(old.min(len), old.max(len));
    }

    fn sync(&mut self) {
        let len = self.live.len();
        resize_zeroed(&mut self.durable, len);
        if let Some((from, to)) = self.dirty.take() {
            let to = to.min(len);
            let from = from.min(to);
            if let (Some(dst), Some(src)) =
                (self.durable.get_mut(from..to), self.live.get(from..to))
            {
                dst.copy_from_slice(src);
            }
        }
    }

    /// The file as a power cut leaves it.
    fn after_power_cut(&self) -> MemFile {
        MemFile {
            live: self.durable.clone(),
            durable: self.durable.clone(),
            dirty: None,
            name_durable: true,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, MemFile>,
    dirs: BTreeSet<PathBuf>,
    /// Directories whose name is durable in their parent (roots always are).
    durable_dirs: BTreeSet<PathBuf>,
    /// Removed files whose removal is not durable yet: a power cut brings
    /// them back with these (durable) contents.
    removed: BTreeMap<PathBuf, MemFile>,
    /// Held locks: `None` exclusive, `Some(n)` shared by `n` holders.
    locks: BTreeMap<PathBuf, Option<usize>>,
}

impl State {
    /// Whether `dir` and every directory above it have durable names.
    fn dir_survives(&self, dir: &Path) -> bool {
        dir.ancestors()
            .all(|d| d.parent().is_none() || self.durable_dirs.contains(d))
    }

    /// The state a power cut leaves.
    fn after_power_cut(&self) -> State {
        let mut files: BTreeMap<PathBuf, MemFile> = self
            .removed
            .iter()
            .map(|(p, f)| (p.clone(), f.after_power_cut()))
            .collect();
        for (p, f) in &self.files {
            if f.name_durable {
                files.insert(p.clone(), f.after_power_cut());
            }
        }
        files.retain(|p, _| self.dir_survives(&parent_dir(p)));
        let dirs: BTreeSet<PathBuf> = self
            .dirs
            .iter()
            .filter(|d| self.dir_survives(d))
            .cloned()
            .collect();
        State {
            files,
            durable_dirs: dirs.clone(),
            dirs,
            removed: BTreeMap::new(),
            locks: BTreeMap::new(),
        }
    }
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

    /// The file system as a power cut now would leave it: only synced bytes
    /// (and synced lengths) of files whose names were made durable. Locks are
    /// not carried over.
    #[must_use]
    pub fn crash(&self) -> MemVfs {
        let fresh = self.state.lock().after_power_cut();
        MemVfs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// A copy with every live byte kept, as a process crash (not a power cut)
    /// would leave it; what was durable stays durable, nothing more. Locks
    /// are not carried over.
    #[must_use]
    pub fn process_crash(&self) -> MemVfs {
        let state = self.state.lock();
        let fresh = State {
            files: state.files.clone(),
            dirs: state.dirs.clone(),
            durable_dirs: state.durable_dirs.clone(),
            removed: state.removed.clone(),
            locks: BTreeMap::new(),
        };
        MemVfs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// Replaces the live bytes of `path` (for corruption tests); they count
    /// as durable, and so does the name (with its directories).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut state = self.state.lock();
        for dir in parent_dir(path).ancestors() {
            state.dirs.insert(dir.to_path_buf());
            state.durable_dirs.insert(dir.to_path_buf());
        }
        state.removed.remove(path);
        state.files.insert(
            path.to_path_buf(),
            MemFile {
                durable: data.clone(),
                live: data,
                dirty: None,
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

impl MemHandle {
    fn with<T>(&self, f: impl FnOnce(&mut MemFile) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.vfs.state.lock();
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        f(file)
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(io::Error::other)
}

impl VfsFile for MemHandle {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with(|f| f.write_at(f.live.len(), buf))
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let offset = to_usize(offset)?;
        self.with(|f| f.write_at(offset, buf))
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        self.with(|f| {
            f.set_len(len);
            Ok(())
        })
    }

    fn file_len(&self) -> io::Result<u64> {
        self.with(|f| Ok(f.live.len() as u64))
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with(|f| {
            f.sync();
            Ok(())
        })
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
        let mut state = self.vfs.state.lock();
        match state.locks.get_mut(&self.path) {
            Some(Some(n)) if *n > 1 => *n -= 1,
            _ => {
                state.locks.remove(&self.path);
            }
        }
    }
}

/// `.` names the root of relative paths (whose parent is `""`), as
/// `vfs::parent_dir` spells it.
fn norm(path: &Path) -> &Path {
    if path == Path::new(".") {
        Path::new("")
    } else {
        path
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
            if state.files.contains_key(dir) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", dir.display()),
                ));
            }
            state.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn dir_exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.state.lock().dirs.contains(norm(path)))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = norm(dir);
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
        self.open_write(path)
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
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
            .map(|f| f.live.clone())
            .ok_or_else(|| not_found(path))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let file = state.files.get_mut(path).ok_or_else(|| not_found(path))?;
        file.set_len(to_usize(len)?);
        file.sync();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let file = state.files.remove(path).ok_or_else(|| not_found(path))?;
        // Until the directory is synced, a power cut brings back the file
        // as it was durably, unless its name was never durable either.
        if file.name_durable && !state.removed.contains_key(path) {
            state.removed.insert(path.to_path_buf(), file);
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.files.contains_key(from) {
            return Err(not_found(from));
        }
        let to_dir = parent_dir(to);
        if !state.dirs.contains(norm(&to_dir)) {
            return Err(not_found(&to_dir));
        }
        if state.dirs.contains(to) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", to.display()),
            ));
        }
        if from == to {
            return Ok(());
        }
        let Some(mut file) = state.files.remove(from) else {
            return Err(not_found(from));
        };
        // Until the directories are synced, a power cut leaves the old
        // state: `from` back (if its name was durable), and `to` as it was
        // (its old file if that name was durable, else absent). A removal
        // that is already pending keeps the older, durable, file.
        if file.name_durable && !state.removed.contains_key(from) {
            state.removed.insert(from.to_path_buf(), file.clone());
        }
        if let Some(old) = state.files.remove(to)
            && old.name_durable
            && !state.removed.contains_key(to)
        {
            state.removed.insert(to.to_path_buf(), old);
        }
        file.name_durable = false;
        state.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut state = self.state.lock();
        if !state.dirs.contains(path) {
            return Err(not_found(path));
        }
        for (p, f) in &mut state.files {
            if p.parent() == Some(path) {
                f.name_durable = true;
            }
        }
        state.removed.retain(|p, _| p.parent() != Some(path));
        let children: Vec<PathBuf> = state
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(path))
            .cloned()
            .collect();
        state.durable_dirs.extend(children);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let mut state = self.state.lock();
        if state.locks.contains_key(path) {
            return Ok(None);
        }
        state.locks.insert(path.to_path_buf(), None);
        Ok(Some(Box::new(MemLock {
            vfs: self.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let mut state = self.state.lock();
        match state.locks.get_mut(path) {
            Some(None) => return Ok(None),
            Some(Some(n)) => *n += 1,
            None => {
                state.locks.insert(path.to_path_buf(), Some(1));
            }
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

    /// A new file `/db/f` opened for positional writes, its name dir-synced.
    fn durable_new_file() -> (MemVfs, PathBuf, Box<dyn VfsFile>) {
        let vfs = MemVfs::new();
        let dir = Path::new("/db");
        crate::vfs::create_dir_durable(&vfs, dir).expect("mkdir on MemVfs");
        let path = dir.join("f");
        let f = vfs.open_write(&path).expect("create on MemVfs");
        vfs.sync_dir(dir).expect("dir sync on MemVfs");
        (vfs, path, f)
    }

    #[test]
    fn crash_keeps_only_synced_bytes_of_durable_names() {
        let vfs = MemVfs::new();
        let dir = Path::new("/db");
        crate::vfs::create_dir_durable(&vfs, dir).unwrap();
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
    fn positional_writes_and_lengths_are_durable_only_after_sync() {
        let (vfs, path, mut f) = durable_new_file();
        f.write_all_at(0, b"head").unwrap();
        f.write_all_at(4, &[0; 8]).unwrap();
        f.sync_data().unwrap();
        // Overwrite inside the synced zeros, and write past the end with a gap.
        f.write_all_at(4, b"ab").unwrap();
        f.write_all_at(14, b"z").unwrap();
        assert_eq!(f.file_len().unwrap(), 15);
        assert_eq!(vfs.read_all(&path).unwrap(), b"headab\0\0\0\0\0\0\0\0z");
        assert_eq!(
            vfs.crash().read_all(&path).unwrap(),
            b"head\0\0\0\0\0\0\0\0"
        );
        assert_eq!(
            vfs.process_crash().read_all(&path).unwrap(),
            vfs.read_all(&path).unwrap()
        );
        f.sync_data().unwrap();
        assert_eq!(
            vfs.crash().read_all(&path).unwrap(),
            b"headab\0\0\0\0\0\0\0\0z"
        );

        // A cut is not durable until synced.
        f.set_len(6).unwrap();
        assert_eq!(vfs.read_all(&path).unwrap(), b"headab");
        assert_eq!(vfs.crash().read_all(&path).unwrap().len(), 15);
        f.sync_data().unwrap();
        assert_eq!(vfs.crash().read_all(&path).unwrap(), b"headab");
    }

    #[test]
    fn a_file_regrown_after_an_unsynced_cut_syncs_zeros_not_stale_bytes() {
        let (vfs, path, mut f) = durable_new_file();
        f.write_all(b"0123456789").unwrap();
        f.sync_data().unwrap();
        // Cut, then regrow by set_len (zeros) and by a write past the end.
        f.set_len(2).unwrap();
        f.set_len(5).unwrap();
        f.write_all_at(7, b"x").unwrap();
        f.sync_data().unwrap();
        let expected = b"01\0\0\0\0\0x";
        assert_eq!(vfs.read_all(&path).unwrap(), expected);
        assert_eq!(vfs.crash().read_all(&path).unwrap(), expected);
        // write_all writes at the end of a file opened for positional writes.
        f.write_all(b"!").unwrap();
        f.sync_data().unwrap();
        assert_eq!(vfs.crash().read_all(&path).unwrap(), b"01\0\0\0\0\0x!");
    }

    #[test]
    fn syncs_after_a_large_preallocation_copy_only_what_changed() {
        // A 1 MiB zero chunk is made durable once; later small overwrites
        // inside it must reach the durable copy exactly (and only them).
        let (vfs, path, mut f) = durable_new_file();
        f.write_all_at(0, &vec![0; 1 << 20]).unwrap();
        f.sync_data().unwrap();
        let mut expected = vec![0u8; 1 << 20];
        for i in 0..100u32 {
            let at = (i as usize * 7919) % ((1 << 20) - 4);
            f.write_all_at(at as u64, &i.to_le_bytes()).unwrap();
            expected[at..at + 4].copy_from_slice(&i.to_le_bytes());
            f.sync_data().unwrap();
            {
                let state = vfs.state.lock();
                let file = &state.files[&path];
                assert!(file.dirty.is_none(), "a sync leaves nothing dirty");
            }
        }
        f.write_all_at(3, b"unsynced").unwrap();
        {
            let state = vfs.state.lock();
            assert_eq!(state.files[&path].dirty, Some((3, 11)));
        }
        assert_eq!(vfs.crash().read_all(&path).unwrap(), expected);
    }

    #[test]
    fn a_directory_name_is_durable_only_after_its_parent_is_synced() {
        let vfs = MemVfs::new();
        let db = Path::new("/a/db");
        vfs.create_dir_all(db).unwrap();
        let mut f = vfs.open_write(&db.join("f")).unwrap();
        f.write_all(b"x").unwrap();
        f.sync_data().unwrap();
        vfs.sync_dir(db).unwrap();
        // The file and its name are durable, but `/a/db` and `/a` are not.
        let after = vfs.crash();
        assert!(!after.dir_exists(Path::new("/a")).unwrap());
        assert!(after.read_all(&db.join("f")).is_err());
        vfs.sync_dir(Path::new("/")).unwrap();
        let after = vfs.crash();
        assert!(after.dir_exists(Path::new("/a")).unwrap());
        assert!(!after.dir_exists(db).unwrap(), "/a was not synced");
        vfs.sync_dir(Path::new("/a")).unwrap();
        assert_eq!(vfs.crash().read_all(&db.join("f")).unwrap(), b"x");
    }

    #[test]
    fn a_removal_is_durable_only_after_the_directory_is_synced() {
        let (vfs, path, mut f) = durable_new_file();
        f.write_all(b"old").unwrap();
        f.sync_data().unwrap();
        f.write_all(b" unsynced").unwrap();
        vfs.remove(&path).unwrap();
        assert!(vfs.read_all(&path).is_err());
        assert_eq!(
            vfs.crash().read_all(&path).unwrap(),
            b"old",
            "back after a cut"
        );
        assert_eq!(vfs.process_crash().crash().read_all(&path).unwrap(), b"old");
        vfs.sync_dir(Path::new("/db")).unwrap();
        assert!(vfs.crash().read_all(&path).is_err(), "gone for good");

        // A name removed before it was ever durable does not come back.
        let g = Path::new("/db/g");
        vfs.open_write(g).unwrap();
        vfs.remove(g).unwrap();
        assert!(vfs.crash().read_all(g).is_err());
    }

    /// A durable file `path` holding `data` (synced, name dir-synced).
    fn durable_file(vfs: &MemVfs, path: &Path, data: &[u8]) {
        let mut f = vfs
            .open_write(path)
            .expect("MemVfs file operations succeed");
        f.write_all(data).expect("MemVfs file operations succeed");
        f.sync_data().expect("MemVfs file operations succeed");
        vfs.sync_dir(&parent_dir(path))
            .expect("MemVfs file operations succeed");
    }

    #[test]
    fn a_rename_over_a_file_is_durable_only_after_the_directory_is_synced() {
        let (vfs, a, _f) = durable_new_file();
        let b = Path::new("/db/b");
        durable_file(&vfs, &a, b"new");
        durable_file(&vfs, b, b"old");
        vfs.rename(&a, b).unwrap();
        assert_eq!(vfs.read_all(b).unwrap(), b"new");
        assert!(vfs.read_all(&a).is_err());
        assert_eq!(vfs.list(Path::new("/db")).unwrap(), ["b"]);
        // A power cut before the directory sync: the old state, whole.
        let before = vfs.crash();
        assert_eq!(before.read_all(b).unwrap(), b"old");
        assert_eq!(before.read_all(&a).unwrap(), b"new");
        assert_eq!(vfs.process_crash().read_all(b).unwrap(), b"new");
        vfs.sync_dir(Path::new("/db")).unwrap();
        let after = vfs.crash();
        assert_eq!(after.read_all(b).unwrap(), b"new");
        assert!(after.read_all(&a).is_err(), "the old name is gone for good");
    }

    /// The `CURRENT` install pattern: a temporary file whose name was never
    /// made durable, synced, renamed over the pointer, directory synced.
    #[test]
    fn a_never_durable_name_renamed_over_a_file_leaves_old_or_new_never_neither() {
        let vfs = MemVfs::new();
        crate::vfs::create_dir_durable(&vfs, Path::new("/db")).unwrap();
        let (tmp, current) = (Path::new("/db/CURRENT.tmp"), Path::new("/db/CURRENT"));
        durable_file(&vfs, current, b"one");
        let mut f = vfs.open_write(tmp).unwrap();
        f.write_all(b"two").unwrap();
        f.sync_data().unwrap();
        f.write_all(b" unsynced").unwrap();
        drop(f);
        vfs.rename(tmp, current).unwrap();
        let before = vfs.crash();
        assert_eq!(before.read_all(current).unwrap(), b"one");
        assert!(before.read_all(tmp).is_err(), "its name was never durable");
        vfs.sync_dir(Path::new("/db")).unwrap();
        let after = vfs.crash();
        assert_eq!(
            after.read_all(current).unwrap(),
            b"two",
            "synced bytes only"
        );
        assert_eq!(after.list(Path::new("/db")).unwrap(), ["CURRENT"]);
    }

    #[test]
    fn a_rename_to_a_new_name_and_bad_renames() {
        let (vfs, a, _f) = durable_new_file();
        durable_file(&vfs, &a, b"x");
        let c = Path::new("/db/c");
        vfs.rename(&a, c).unwrap();
        let before = vfs.crash();
        assert!(before.read_all(c).is_err(), "the new name is not durable");
        assert_eq!(before.read_all(&a).unwrap(), b"x");
        vfs.sync_dir(Path::new("/db")).unwrap();
        assert_eq!(vfs.crash().read_all(c).unwrap(), b"x");
        let kind = |r: io::Result<()>| r.unwrap_err().kind();
        assert_eq!(kind(vfs.rename(&a, c)), io::ErrorKind::NotFound);
        assert_eq!(
            kind(vfs.rename(c, Path::new("/nowhere/c"))),
            io::ErrorKind::NotFound
        );
        vfs.create_dir_all(Path::new("/db/d")).unwrap();
        assert_eq!(
            kind(vfs.rename(c, Path::new("/db/d"))),
            io::ErrorKind::IsADirectory
        );
        vfs.rename(c, c).unwrap();
        assert_eq!(vfs.read_all(c).unwrap(), b"x");
    }

    #[test]
    fn create_dir_durable_syncs_the_parent_of_every_new_directory() {
        let vfs = MemVfs::new();
        vfs.create_dir_all(Path::new("/x")).unwrap();
        vfs.sync_dir(Path::new("/")).unwrap();
        crate::vfs::create_dir_durable(&vfs, Path::new("/x/y/z/db")).unwrap();
        let after = vfs.crash();
        assert!(after.dir_exists(Path::new("/x/y/z/db")).unwrap());
        // An existing directory is only synced into its parent again: it is
        // idempotent.
        crate::vfs::create_dir_durable(&vfs, Path::new("/x/y/z/db")).unwrap();
        assert!(vfs.create_dir_all(Path::new("/x/y/z/db/f/g")).is_ok());
    }

    #[test]
    fn relative_paths_have_a_root_that_can_be_synced() {
        let vfs = MemVfs::new();
        crate::vfs::create_dir_durable(&vfs, Path::new("db/wal")).unwrap();
        assert!(vfs.dir_exists(Path::new(".")).unwrap());
        vfs.sync_dir(Path::new(".")).unwrap();
        assert!(vfs.crash().dir_exists(Path::new("db/wal")).unwrap());
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

    #[test]
    fn shared_locks_exclude_only_an_exclusive_holder() {
        let vfs = MemVfs::new();
        let lock = Path::new("/LOCK");
        let a = vfs.lock_shared(lock).unwrap().unwrap();
        let b = vfs.lock_shared(lock).unwrap().unwrap();
        assert!(vfs.lock(lock).unwrap().is_none(), "readers hold it");
        drop(a);
        assert!(vfs.lock(lock).unwrap().is_none(), "one reader still does");
        drop(b);
        let x = vfs.lock(lock).unwrap().unwrap();
        assert!(
            vfs.lock_shared(lock).unwrap().is_none(),
            "a writer holds it"
        );
        drop(x);
        assert!(vfs.lock_shared(lock).unwrap().is_some());
    }
}
