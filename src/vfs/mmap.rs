//! Read-only views of finished files: [`Mapped`].
//!
//! The OS implementation maps the file (memmap2); the in-memory and
//! fault-injecting file systems hand out a shared copy of the bytes. Either
//! way a `Mapped` is a `&[u8]` of fixed length that lives as long as the
//! value, and every reader indexes it through checked slices.
//!
//! This file holds the only `unsafe` block of `vfs/`; its argument is in
//! `docs/unsafe.md` and beside the block.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// The bytes of a finished, immutable file.
pub enum Mapped {
    /// A read-only memory map of a file on the OS file system.
    Map(memmap2::Mmap),
    /// A copy of the file's bytes (in-memory file systems, empty files).
    Shared(Arc<[u8]>),
}

impl Mapped {
    /// Maps `file`, which the caller has opened read-only.
    ///
    /// The caller promises what `docs/unsafe.md` ("Mapped tables") requires:
    /// the file was completely written and synced before this call, and no
    /// one writes, truncates or replaces its contents while the map lives.
    /// Strata maps only sorted tables, which are written once and deleted
    /// (unlinked, which leaves the mapped pages intact) only when no view
    /// references them.
    pub(crate) fn map_finished_file(file: &File) -> io::Result<Mapped> {
        if file.metadata()?.len() == 0 {
            // A zero-length mapping is an error on Linux; nothing to map.
            return Ok(Mapped::Shared(Arc::from(Vec::new())));
        }
        // SAFETY: memmap2's `Mmap::map` is unsafe because the mapped bytes
        // change (or the process gets SIGBUS) if the file is modified or
        // truncated while mapped. Strata maps only finished sorted tables:
        // a table is written once, synced, and renamed into no other use; no
        // code path opens a table for writing after its builder finished,
        // nor truncates one; it is unlinked only after the last view
        // listing it is dropped, and unlinking leaves a mapping valid. Every
        // read through the map is a bounds-checked slice of `len` bytes, and
        // its contents are checksum-verified before use, so a byte changed
        // behind our back (another process) gives `Corruption`, not
        // undefined behaviour in safe code.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Mapped::Map(map))
    }

    /// Opens `path` read-only and maps it (see [`Mapped::map_finished_file`]).
    pub(crate) fn map_path(path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        Self::map_finished_file(&file)
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Mapped::Map(m) => m,
            Mapped::Shared(b) => b,
        }
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Mapped::Map(_) => "map",
            Mapped::Shared(_) => "shared",
        };
        write!(f, "Mapped({kind}, {} bytes)", self.len())
    }
}
