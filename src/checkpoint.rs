//! Online checkpoints (issue 16, item 9; decision 0022): a consistent,
//! openable copy of the database in a new directory while writers go on.
//!
//! Protocol ([`checkpoint`]):
//! 1. `T0` = the read ts now: every commit acknowledged before the call is
//!    at or below it;
//! 2. under `Store::manifest`: the manifest state, the current view (whose
//!    `Arc<Table>`s keep every listed table's file from being deleted) and a
//!    WAL pin from the state's flushed lsn + 1 (so no segment holding a
//!    record the tables lack is deleted while it is copied). State and view
//!    agree: flushes and compactions change both under that lock;
//! 3. every table the state lists hard-linked (copied where the file system
//!    cannot link) into `dest/tables`;
//! 4. the WAL segments holding records from the flushed lsn + 1 on copied
//!    into `dest/wal`. Records of commits at or below `T0` were written
//!    before the call, so they are whole in the copy; the newest segment
//!    may end in a record being written meanwhile, a torn tail;
//! 5. the copy's WAL recovered in place (repair mode: the torn tail cut,
//!    exactly what opening the copy would do), giving its last record's ts;
//! 6. the source's WAL synced (`sync_all`, which also waits for a sync in
//!    flight): the copy may hold records a group-commit leader had written
//!    but not yet synced, and a checkpoint must never hold a commit its
//!    source can still lose (to a power cut, or to that sync failing, when
//!    the commit gets `Io`). A failed sync fails the checkpoint (the source
//!    is poisoned by its own WAL, as any failed WAL sync does);
//! 7. a manifest holding the state written into `dest` (its own `CURRENT`).
//!
//! The checkpoint's ts `T` is the newest commit it holds (the copy's last
//! WAL record, or the tables' newest ts): it has every commit at or below
//! `T` (a prefix of the commit order, as recovery gives) and nothing
//! after, and `T >= T0`; every record it holds is durable in the source
//! (step 6), so every later recovery of the source holds them too.

use std::io;
use std::path::{Path, PathBuf};

use crate::commit::Engine;
use crate::error::{Error, Result};
use crate::manifest::{self, ManifestState};
use crate::store::WAL_DIR;
use crate::types::{Lsn, Ts};
use crate::vfs::{Vfs, copy_file, create_dir_durable};
use crate::wal::{self, RecoveryMode, segment_name};

/// Copies of the newest WAL segment tried before giving up (a copy can
/// only fail to recover when a read raced a write in a way that looks like
/// damage, which the next copy does not repeat).
const WAL_COPY_ATTEMPTS: usize = 3;

/// See the module docs. `dest` must not exist or be empty (no file in it,
/// nor in its `tables/` or `wal/`).
pub(crate) fn checkpoint(engine: &Engine, dest: &Path) -> Result<Ts> {
    let store = &engine.store;
    let vfs = store.vfs.as_ref();
    if let Some(file) = leftover(vfs, dest)? {
        return Err(Error::InvalidArgument(format!(
            "checkpoint directory {} is not empty: {} exists",
            dest.display(),
            file.display()
        )));
    }
    let acknowledged = engine.core.oracle.read_ts();
    let (state, view, _pin) = {
        let guard = store.manifest.lock();
        let state = guard.as_ref().map(|log| log.state().clone());
        let view = engine.core.views.current();
        let flushed = state.as_ref().map_or(Lsn::ZERO, ManifestState::flushed_lsn);
        let pin = store.retention.pin(Lsn(flushed.0 + 1));
        (state, view, pin)
    };
    create_dir_durable(vfs, dest)?;
    let flushed = state.as_ref().map_or(Lsn::ZERO, ManifestState::flushed_lsn);
    if let Some(state) = &state {
        link_tables(vfs, &store.dir, dest, state)?;
    }
    drop(view);
    let last_ts = copy_wal(engine, dest, flushed)?;
    // Step 6, before the copy becomes openable (its `CURRENT`).
    engine.wal.sync_all()?;
    if let Some(state) = &state {
        manifest::write_copy(vfs, dest, state)?;
    }
    vfs.sync_dir(dest)?;
    let ts = last_ts.max(state.as_ref().map_or(Ts::ZERO, ManifestState::max_ts));
    if ts < acknowledged {
        return Err(Error::InvalidArgument(format!(
            "checkpoint holds commits up to {ts:?}, below the acknowledged {acknowledged:?}"
        )));
    }
    Ok(ts)
}

/// A file already in `dest`, `dest/tables` or `dest/wal`, if any. Not
/// `dest` alone: a checkpoint cut short while it links tables or copies
/// the WAL has written files only below it (`MANIFEST` and `CURRENT` come
/// last), and `Vfs::list` lists the files directly in a directory.
fn leftover(vfs: &dyn Vfs, dest: &Path) -> Result<Option<PathBuf>> {
    for dir in [
        dest.to_path_buf(),
        dest.join(manifest::TABLES_DIR),
        dest.join(WAL_DIR),
    ] {
        let names = match vfs.list(&dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if let Some(name) = names.first() {
            return Ok(Some(dir.join(name)));
        }
    }
    Ok(None)
}

/// Step 3: every listed table into `dest/tables`.
fn link_tables(vfs: &dyn Vfs, src: &Path, dest: &Path, state: &ManifestState) -> Result<()> {
    let (from, to) = (
        src.join(manifest::TABLES_DIR),
        dest.join(manifest::TABLES_DIR),
    );
    create_dir_durable(vfs, &to)?;
    for (_, t) in state.tables() {
        let name = manifest::table_name(t.number);
        vfs.hard_link(&from.join(&name), &to.join(&name))?;
    }
    vfs.sync_dir(&to)?;
    Ok(())
}

/// Steps 4 and 5: the WAL from `flushed + 1` on, cut where its copy ends
/// in a whole record; the ts of that record.
fn copy_wal(engine: &Engine, dest: &Path, flushed: Lsn) -> Result<Ts> {
    let vfs = engine.store.vfs.as_ref();
    let (from, to) = (engine.store.dir.join(WAL_DIR), dest.join(WAL_DIR));
    create_dir_durable(vfs, &to)?;
    let segments = engine.store.retention.segments_from(Lsn(flushed.0 + 1));
    let Some((&newest, older)) = segments.split_last() else {
        return Ok(Ts::ZERO); // nothing was ever written
    };
    for &no in older {
        copy_file(
            vfs,
            &from.join(segment_name(no)),
            &to.join(segment_name(no)),
        )?;
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let name = segment_name(newest);
        copy_file(vfs, &from.join(&name), &to.join(&name))?;
        match wal::recover(vfs, &to, RecoveryMode::Repair, flushed, &mut |_| Ok(())) {
            Ok(recovered) => {
                vfs.sync_dir(&to)?;
                return Ok(recovered.chain.last_ts);
            }
            Err(Error::Corruption { .. }) if attempt < WAL_COPY_ATTEMPTS => {
                // A read that raced a write; copy it again.
                let _ = vfs.remove(&to.join(&name));
            }
            Err(e) => return Err(e),
        }
    }
}
