//! Flush: a background thread that writes each frozen memtable to a sorted
//! table in level 0 and records it in the manifest (decision 0017).
//!
//! Protocol for the oldest frozen memtable `M` (its records are those up to
//! `F = M.last_lsn()`):
//! 1. a new table `tables/<n>.sst` from every version of `M`, synced, and
//!    the directory synced (creating the manifest first if the database
//!    never had one: no table may exist without a `CURRENT`);
//! 2. in `Buffered` mode, the WAL synced up to `F` (through its second
//!    handle, beside the commits being written: `GroupCommit::sync_through`):
//!    the table must never hold a commit whose WAL record a power cut could
//!    still lose;
//! 3. the manifest edit `{ add table n to level 0, flushed lsn F, max ts }`,
//!    synced: the flush's durable point;
//! 4. `M`'s keys whose newest version is above the GC watermark noted in
//!    the recent-writes index, *then* the view replaced by one with the
//!    table and without `M` (so a conflict check finds a recent key in one
//!    of them);
//! 5. with the manifest released, the WAL segments all of whose records
//!    are now in tables deleted (`wal::Retention`: never the newest, never
//!    one a pin holds), and the compactor woken. The whole flush runs as a
//!    busy step of the flusher's [`Signal`], so `Db::flush` (which waits
//!    for no frozen memtable *and* no step in progress) returns with the
//!    segments gone.
//!
//! Any failure (or a panic) poisons the database, as a failed WAL sync
//! does: commits get `Error::Poisoned` until it is reopened, and reopening
//! removes a table the manifest does not name. The thread is a
//! [`crate::worker::Worker`] running [`step`].

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crate::budget::Account;
use crate::commit::{Engine, hand_off_flushed};
use crate::error::{Error, Result};
use crate::manifest::{self, Edit, Log};
use crate::memtable::{MemCursor, Memtable};
use crate::sst::{BuiltTable, TableBuilder, TableOptions};
use crate::store::table_record;
use crate::sync::atomic::Ordering;
use crate::types::Ts;
use crate::vfs::{Vfs, create_dir_durable};
use crate::worker::Signal;

/// The flusher's step (a [`Worker`] step): flushes the frozen memtables,
/// oldest first, until none is left; `false` (the thread ends) once a
/// flush failed and poisoned the database.
pub(crate) fn step(engine: &Engine, signal: &Signal) -> bool {
    loop {
        // A statement of its own, so the view is dropped here: a `while let`
        // scrutinee's temporaries live to the end of the body, and a view
        // held across the flush pins (and keeps the files of) the tables a
        // compaction removes meanwhile.
        let Some(oldest) = engine.core.views.current().imm.last().cloned() else {
            return true;
        };
        let outcome = signal
            .busy(move || panic::catch_unwind(AssertUnwindSafe(move || flush_one(engine, oldest))));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("a memtable flush failed: {e}")),
            Err(_) => Some("a memtable flush panicked".to_owned()),
        };
        if let Some(why) = &failure {
            engine.wal.poison_from_background(why);
        }
        signal.finished();
        if failure.is_some() {
            return false;
        }
        engine.store.compaction.signal.notify();
        // The flushed memtable was freed in the step, unless an older view
        // still holds it: give its pages back (decision 0024).
        crate::budget::trim_heap();
    }
}

/// Flushes frozen memtable `m` (the oldest); see the module docs. Lets
/// go of it as soon as the view without it is installed, inside the step:
/// once `Db::flush` (which waits for the step) returns, only a snapshot's
/// or a scan's view can still hold it (`Stats::pinned_memtable_bytes`).
fn flush_one(engine: &Engine, m: Arc<Memtable>) -> Result<()> {
    let store = &engine.store;
    let vfs = store.vfs.as_ref();
    let tables_dir = store.dir.join(manifest::TABLES_DIR);
    let mut guard = store.manifest.lock();
    if guard.is_none() {
        // CURRENT first: a table (or its directory) without a manifest is
        // damage to the next open, never a half-done first flush.
        *guard = Some(Log::create(
            store.vfs.clone(),
            &store.dir,
            store.manifest_rotate_bytes,
        )?);
        create_dir_durable(vfs, &tables_dir)?;
    }
    let Some(log) = guard.as_mut() else {
        return Err(Error::InvalidArgument("no manifest".into()));
    };
    let number = log.new_file_number()?;
    let path = tables_dir.join(manifest::table_name(number));
    let flushed = m.last_lsn();
    // Every transaction that will check a conflict reads at or above it,
    // so the keys written after it are all the conflict index must keep.
    let watermark = engine.core.oracle.gc_watermark();
    let (built, newest) = write_table(vfs, &path, &m, flushed.0, &store.table_memory, watermark)?;
    vfs.sync_dir(&tables_dir)?;
    if !engine.wal.syncs_every_batch() {
        engine.wal.sync_through(flushed)?;
    }
    let p = &built.properties;
    let record = table_record(number, &built, flushed);
    let max_ts = log.state().max_ts().max(p.max_ts);
    log.append(&Edit {
        flushed_lsn: Some(flushed.max(log.state().flushed_lsn())),
        max_ts: Some(max_ts),
        added: vec![(0, record)],
        ..Edit::default()
    })?;
    let table = store.open_table(&path)?;
    let core = &engine.core;
    hand_off_flushed(
        &core.views,
        &core.recent,
        watermark,
        &m,
        newest,
        Some(table),
    );
    core.views.release_flushed(m);
    drop(guard);
    store.delete_flushed_segments(flushed)?;
    store.flushes.fetch_add(1, Ordering::Relaxed);
    store
        .flushed_bytes
        .fetch_add(built.file_size, Ordering::Relaxed);
    Ok(())
}

/// Keys with the ts of their newest version.
pub(crate) type NewestKeys = Vec<(Vec<u8>, Ts)>;

/// Writes every version of `m`, in order, to a new table at `path`
/// (charging the builder to `account`), and returns with it the newest
/// version's ts of each key whose newest is above `watermark` (what the
/// conflict index takes over from the memtable), found in the same walk.
pub(crate) fn write_table(
    vfs: &dyn Vfs,
    path: &Path,
    m: &Memtable,
    max_lsn: u64,
    account: &Arc<Account>,
    watermark: Ts,
) -> Result<(BuiltTable, NewestKeys)> {
    let mut b = TableBuilder::create(vfs, path, TableOptions::default())?.charged(account);
    let mut newest = Vec::new();
    // The key of the last version added (a buffer reused, not one
    // allocation per key): versions come newest first within a key.
    let mut last: Option<Vec<u8>> = None;
    let mut c = MemCursor::new(m);
    c.seek_to_first();
    while c.valid() {
        let (key, ts) = (c.key(), c.ts());
        b.add(key, ts, c.value())?;
        if last.as_deref() != Some(key) {
            if ts > watermark {
                newest.push((key.to_vec(), ts));
            }
            let l = last.get_or_insert_with(Vec::new);
            l.clear();
            l.extend_from_slice(key);
        }
        c.next();
    }
    Ok((b.finish(max_lsn)?, newest))
}
