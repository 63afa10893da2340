//! Read-only views of finished files: [`Mapped`].
//!
//! The OS implementation maps the file (memmap2); the in-memory file system
//! hands out a shared copy of the bytes (and the fault-injecting one
//! whatever the file system it wraps returns). Either way a `Mapped` is a
//! `&[u8]` of fixed length that lives as long as the value, readable only
//! inside the crate, and every reader indexes it through checked slices.
//!
//! This file holds the only `unsafe` block of `vfs/`; its argument is in
//! `docs/unsafe.md` and beside the block.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The bytes of a finished, immutable file.
///
/// Outside Strata a `Mapped` is opaque: its bytes cannot be read, so no code
/// but the table reader, which keeps the rules of `docs/unsafe.md`, ever
/// holds a `&[u8]` into a mapping (a caller of the public [`super::Vfs::map`]
/// could otherwise map any file and then change it under that slice):
///
/// ```compile_fail,E0608
/// use strata::vfs::{OsVfs, Vfs};
/// let m = OsVfs.map(std::path::Path::new("Cargo.toml")).unwrap();
/// let _first: u8 = m[0];
/// ```
///
/// A [`super::Vfs`] that does not map returns a copy
/// (`Mapped::from(bytes)`), as the trait's default does.
pub struct Mapped(Repr);

enum Repr {
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
    /// (unlinked, which leaves the mapped pages intact) only when no reader
    /// holds them.
    pub(crate) fn map_finished_file(file: &File) -> io::Result<Mapped> {
        if file.metadata()?.len() == 0 {
            // A zero-length mapping is an error on Linux; nothing to map.
            return Ok(Mapped(Repr::Shared(Arc::from(Vec::new()))));
        }
        // SAFETY: memmap2's `Mmap::map` is unsafe because the mapped bytes
        // change (or the process gets SIGBUS) if the file is modified or
        // truncated while mapped. Strata maps only finished sorted tables
        // (`Table::open`, through `Vfs::map`): a table is written once and
        // synced by its builder before it is opened; no code path writes
        // to, truncates or renames over a table file after that (the
        // builder refuses a file that has bytes); and the map lives as long
        // as the `Table` that owns it, while unlinking the file leaves a
        // mapping valid. The bytes are readable only inside the crate
        // (`Mapped` is opaque outside it), so no other code holds a slice
        // of a mapping. A change by another process is outside what any
        // file API can rule out (`docs/unsafe.md`, rule 4).
        let map = unsafe { memmap2::Mmap::map(file)? };
        // Point reads touch one block of a table in no order: without this
        // the kernel reads ahead ~128 KiB around every fault, which under
        // memory pressure evicts the pages the next reads need (decision
        // 0023). Advisory: a kernel that refuses it only reads more.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Ok(Mapped(Repr::Map(map)))
    }

    /// Opens `path` read-only and maps it (see [`Mapped::map_finished_file`]).
    pub(crate) fn map_path(path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        Self::map_finished_file(&file)
    }

    /// The bytes, for the table reader.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Map(m) => m,
            Repr::Shared(b) => b,
        }
    }
}

impl From<Vec<u8>> for Mapped {
    /// A copy of a file's bytes.
    fn from(bytes: Vec<u8>) -> Mapped {
        Mapped(Repr::Shared(bytes.into()))
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Repr::Map(_) => "map",
            Repr::Shared(_) => "shared",
        };
        write!(f, "Mapped({kind}, {} bytes)", self.bytes().len())
    }
}
