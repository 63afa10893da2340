//! Transactions: [`Txn`] (read-write) and [`ReadTxn`] (read-only snapshot).
//!
//! A transaction registers its snapshot (`read_ts`) with the oracle when it
//! begins and releases it when dropped, so the GC watermark never passes it.
//! A `Txn` buffers its writes in a sorted map; reads and scans see them
//! (read-your-writes). `commit` hands the sorted write set to
//! `commit::Engine::commit` (the commit path, `commit.rs`).
//!
//! Memory (decision 0024): a `Txn` refuses a write that would take its
//! write set past `Options::txn_limit`, counted as the memtable will hold
//! it (key, value and `memtable::ENTRY_OVERHEAD_BYTES` per key), so one
//! transaction at its limit fills one memtable. It counts what the write
//! set holds in memory ([`TXN_ENTRY_OVERHEAD_BYTES`] per key instead).
//! It reports them to the engine's transaction account through a
//! [`Charge`] raised in steps of [`CHARGE_STEP_BYTES`] (so a put costs no
//! shared atomic in between), raised to the exact size plus the WAL
//! record's two copies when it commits, and returned when the commit
//! returns or the transaction drops, on every path.

use std::sync::Arc;

use crate::budget::Charge;
use crate::commit::Engine;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::mvcc::SnapshotHandle;
use crate::scan::{Scan, ScanRange, ScanSource, prefix_bounds};
use crate::sync::RwLockReadGuard;
use crate::types::{MAX_KEY_BYTES, MAX_TXN_BYTES, MAX_VALUE_BYTES, Ts};
use crate::view::{SnapshotView, View};
use crate::wal::format::op_encoded_len;
use crate::write_set::WriteBuf;

/// A registered snapshot and the view it reads (re-taken at each operation
/// once a newer one is installed: decision 0032).
#[derive(Debug)]
struct Snapshot<'db> {
    reg: Registration<'db>,
    /// Taken after the read ts registered, so it holds every commit the
    /// snapshot sees (`view` invariant 3), and so does every view it takes
    /// later.
    view: SnapshotView,
}

/// A snapshot's registration; released when dropped.
#[derive(Debug)]
struct Registration<'db> {
    db: &'db Engine,
    read_ts: Ts,
    /// Its registration (released on drop; its age governs expiry).
    handle: SnapshotHandle,
}

impl<'db> Snapshot<'db> {
    fn new(db: &'db Engine) -> Self {
        Self::registered(db, db.core.oracle.begin_snapshot())
    }

    /// A snapshot at `handle` (registered first, so the view taken now
    /// holds every commit it sees).
    fn registered(db: &'db Engine, handle: SnapshotHandle) -> Self {
        Snapshot {
            reg: Registration {
                db,
                read_ts: handle.ts,
                handle,
            },
            view: SnapshotView::take(&db.core.views),
        }
    }

    fn db(&self) -> &'db Engine {
        self.reg.db
    }

    fn read_ts(&self) -> Ts {
        self.reg.read_ts
    }

    /// The view for one operation (the current one if a newer view was
    /// installed since this snapshot took its own), or `SnapshotTooOld`.
    ///
    /// The age is checked after the view is taken: a compaction that
    /// collected versions this snapshot reads did so because it had
    /// expired when the compaction took its watermark, before the view
    /// listing its output was installed, so before this view was taken;
    /// the check, later still on the same monotonic clock, fails too.
    fn view(&self) -> Result<RwLockReadGuard<'_, Arc<View>>> {
        let view = self.view.read(&self.reg.db.core.views);
        self.reg.check_age()?;
        Ok(view)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.view()?.get(key, self.read_ts())
    }

    /// A scan's source: its own handle on the view, so this snapshot may
    /// move on to a newer one while the scan reads (the scan keeps its
    /// view until it is dropped).
    fn source(&self) -> Result<ScanSource> {
        Ok(ScanSource {
            view: Arc::clone(&*self.view()?),
            read_ts: self.read_ts(),
        })
    }
}

impl Registration<'_> {
    /// `SnapshotTooOld` once the snapshot is past `Options::max_snapshot_age`
    /// (the GC watermark no longer counts it).
    fn check_age(&self) -> Result<()> {
        let oracle = &self.db.core.oracle;
        if oracle.is_expired(&self.handle) {
            return Err(Error::SnapshotTooOld {
                read_ts: self.read_ts,
                oldest: oracle.oldest_readable(),
            });
        }
        Ok(())
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.db.core.oracle.end_snapshot(&self.handle);
    }
}

/// Counts a read-write transaction that has written, so will enqueue a
/// commit record, for the group commit (a leader briefly waits for such
/// writers to join its batch); uncounts it on drop. A transaction that only
/// reads is never counted, so it never delays anybody's batch.
#[derive(Debug)]
struct OpenWriter<'db>(&'db Engine);

impl<'db> OpenWriter<'db> {
    fn new(db: &'db Engine) -> Self {
        db.wal.writer_opened();
        OpenWriter(db)
    }
}

impl Drop for OpenWriter<'_> {
    fn drop(&mut self) {
        self.0.wal.writer_closed();
    }
}

/// A read-only transaction: a consistent snapshot of every commit up to its
/// read ts. Never blocks writers and is never blocked by them.
#[derive(Debug)]
pub struct ReadTxn<'db> {
    snap: Snapshot<'db>,
}

impl<'db> ReadTxn<'db> {
    pub(crate) fn new(db: &'db Engine) -> Self {
        ReadTxn {
            snap: Snapshot::new(db),
        }
    }

    /// A snapshot as of `ts` (`Db::begin_read_at`).
    pub(crate) fn at(db: &'db Engine, ts: Ts) -> Result<Self> {
        let handle = db.core.oracle.begin_snapshot_at(ts)?;
        Ok(ReadTxn {
            snap: Snapshot::registered(db, handle),
        })
    }

    /// The snapshot's timestamp: every commit with ts `<=` it is visible.
    pub fn read_ts(&self) -> Ts {
        self.snap.read_ts()
    }

    /// The value of `key` in the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snap.get(key)
    }

    /// Rows of the snapshot whose keys fall in `range`, ascending (or
    /// descending, from the back: the [`Scan`] is double-ended). `..` scans
    /// everything.
    pub fn scan<K, R: ScanRange<K>>(&self, range: R) -> Result<Scan<'_>> {
        Ok(Scan::new(self.snap.source()?, range.into_bounds(), None))
    }

    /// Rows of the snapshot whose keys start with `prefix`, ascending.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Scan<'_>> {
        Ok(Scan::new(self.snap.source()?, prefix_bounds(prefix), None))
    }

    /// [`ReadTxn::scan`]'s rows lent instead of copied: a [`Cursor`] over
    /// the snapshot's rows in `range`, from either end.
    pub fn cursor<K, R: ScanRange<K>>(&self, range: R) -> Result<Cursor<'_>> {
        Ok(Cursor::new(self.snap.source()?, range.into_bounds(), None))
    }

    /// [`ReadTxn::cursor`] over the keys that start with `prefix`.
    pub fn cursor_prefix(&self, prefix: &[u8]) -> Result<Cursor<'_>> {
        Ok(Cursor::new(
            self.snap.source()?,
            prefix_bounds(prefix),
            None,
        ))
    }
}

/// Bytes a write set is charged per key beyond its encoded operation
/// (`write_set.rs`): the index's slot (an inline key and a position) and
/// node share. At least the memtable's per-entry charge
/// ([`MEMTABLE_ENTRY_OVERHEAD`]), so applying a commit never grows the
/// accounted total by more than the write set it frees.
pub(crate) const TXN_ENTRY_OVERHEAD_BYTES: usize = 96;

/// The memtable's charge per entry beyond key and value.
const MEMTABLE_ENTRY_OVERHEAD: usize = crate::memtable::ENTRY_OVERHEAD_BYTES as usize;

/// A transaction's charge is raised each time its write set has grown by
/// this much since: between steps, what a live transaction buffered is up
/// to this much more than its account says.
pub(crate) const CHARGE_STEP_BYTES: u64 = 16 * 1024;

/// A read-write transaction with snapshot isolation.
///
/// Reads see the snapshot at [`Txn::read_ts`] plus this transaction's own
/// writes. [`Txn::commit`] succeeds unless another transaction committed a
/// write to one of this transaction's keys after its read ts (first committer
/// wins), in which case it returns the retryable [`Error::Conflict`].
/// Dropping a `Txn` without committing rolls it back.
#[derive(Debug)]
pub struct Txn<'db> {
    snap: Snapshot<'db>,
    /// Set by the first put or delete.
    writer: Option<OpenWriter<'db>>,
    writes: WriteBuf,
    /// Encoded size of the live operations (what the commit's frame holds).
    encoded_bytes: usize,
    /// Keys and values of `writes`, summed.
    kv_bytes: usize,
    /// `buffered()`, as reported to the engine's transaction account (up to
    /// [`CHARGE_STEP_BYTES`] behind).
    charge: Charge<'db>,
}

impl<'db> Txn<'db> {
    pub(crate) fn new(db: &'db Engine) -> Self {
        Txn {
            snap: Snapshot::new(db),
            writer: None,
            writes: WriteBuf::new(),
            encoded_bytes: 0,
            kv_bytes: 0,
            charge: db.txn_memory.charge(),
        }
    }

    /// The snapshot's timestamp.
    pub fn read_ts(&self) -> Ts {
        self.snap.read_ts()
    }

    /// The value of `key`: this transaction's own write if any, else the snapshot's.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(own) => Ok(own.map(<[u8]>::to_vec)),
            None => self.snap.get(key),
        }
    }

    /// Writes `value` under `key` (visible to this transaction at once, to
    /// others after commit). Refuses keys over [`crate::MAX_KEY_BYTES`],
    /// values over [`crate::MAX_VALUE_BYTES`], a write that would take the
    /// write set past a quarter of `Options::memory_budget` (one
    /// memtable's worth) or [`MAX_TXN_BYTES`] ([`Error::TxnTooLarge`]; the
    /// refused write changes nothing), and every write on a read-only
    /// database ([`Error::ReadOnly`]).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(key, Some(value))
    }

    /// Deletes `key`. Refused like [`Txn::put`].
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.write(key, None)
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let db = self.snap.db();
        db.check_writable()?;
        check_op(key, value)?;
        let (old_encoded, old_kv, old_entries) = self.writes.get(key).map_or((0, 0, 0), |v| {
            let kv = key.len() + v.map_or(0, <[u8]>::len);
            (op_encoded_len(key, v), kv, 1)
        });
        let total = self.encoded_bytes - old_encoded + op_encoded_len(key, value);
        if total > MAX_TXN_BYTES {
            return Err(Error::TxnTooLarge {
                len: total,
                max: MAX_TXN_BYTES,
            });
        }
        let kv_bytes = self.kv_bytes - old_kv + key.len() + value.map_or(0, <[u8]>::len);
        let entries = self.writes.len() - old_entries + 1;
        let applied = kv_bytes + entries * MEMTABLE_ENTRY_OVERHEAD;
        if applied > db.txn_limit {
            return Err(Error::TxnTooLarge {
                len: applied,
                max: db.txn_limit,
            });
        }
        self.writes.put(key, value)?;
        self.encoded_bytes = total;
        self.kv_bytes = kv_bytes;
        let buffered = self.buffered() as u64;
        if buffered >= self.charge.bytes() + CHARGE_STEP_BYTES {
            self.charge.raise_to(buffered);
        }
        if self.writer.is_none() {
            self.writer = Some(OpenWriter::new(db));
        }
        Ok(())
    }

    /// Rows whose keys fall in `range`, ascending (or descending, from the
    /// back), as this transaction sees them: the snapshot overlaid with its
    /// own puts and deletes. `..` scans everything.
    pub fn scan<K, R: ScanRange<K>>(&self, range: R) -> Result<Scan<'_>> {
        Ok(Scan::new(
            self.snap.source()?,
            range.into_bounds(),
            Some(&self.writes),
        ))
    }

    /// Rows whose keys start with `prefix`, ascending, as this transaction
    /// sees them.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Scan<'_>> {
        Ok(Scan::new(
            self.snap.source()?,
            prefix_bounds(prefix),
            Some(&self.writes),
        ))
    }

    /// [`Txn::scan`]'s rows lent instead of copied: a [`Cursor`] over the
    /// rows in `range` as this transaction sees them (its own writes
    /// merged in), from either end.
    pub fn cursor<K, R: ScanRange<K>>(&self, range: R) -> Result<Cursor<'_>> {
        Ok(Cursor::new(
            self.snap.source()?,
            range.into_bounds(),
            Some(&self.writes),
        ))
    }

    /// [`Txn::cursor`] over the keys that start with `prefix`.
    pub fn cursor_prefix(&self, prefix: &[u8]) -> Result<Cursor<'_>> {
        Ok(Cursor::new(
            self.snap.source()?,
            prefix_bounds(prefix),
            Some(&self.writes),
        ))
    }

    /// Commits and returns the commit timestamp. A transaction that wrote
    /// nothing returns its read ts without touching the WAL.
    ///
    /// Errors: [`Error::Conflict`] (retryable), [`Error::SnapshotTooOld`]
    /// (the snapshot is past `Options::max_snapshot_age`), [`Error::Closed`],
    /// [`Error::Poisoned`], or [`Error::Io`] when the WAL write or sync failed
    /// (then the outcome is unknown until the database is reopened, and the
    /// database is poisoned).
    pub fn commit(mut self) -> Result<Ts> {
        if self.writes.is_empty() {
            return Ok(self.snap.read_ts());
        }
        // Pinned from here: the GC watermark stays at or below its read ts
        // while the conflict check needs the history above it.
        if !self.snap.reg.db.core.oracle.pin(&self.snap.reg.handle) {
            return Err(Error::SnapshotTooOld {
                read_ts: self.snap.read_ts(),
                oldest: self.snap.reg.db.core.oracle.oldest_readable(),
            });
        }
        let db = self.snap.db();
        // Exact from here on, with the WAL record's two copies (the frame,
        // and the group-commit batch it is copied into), before the commit
        // path's backpressure looks at the account.
        let mut charge = std::mem::replace(&mut self.charge, db.txn_memory.charge());
        charge.raise_to((self.buffered() + 2 * self.encoded_bytes) as u64);
        let writes = std::mem::take(&mut self.writes);
        let Txn {
            snap: Snapshot { reg, view },
            writer,
            ..
        } = self;
        // The commit path reads the current view (its conflict check), never
        // this one: let it go before the commit may wait (backpressure, the
        // WAL sync), so it holds no flushed memtable meanwhile. The
        // registration stays (pinned above) until the commit returns.
        drop(view);
        let committed = db.commit(reg.read_ts, writes, charge);
        drop((reg, writer));
        committed
    }

    /// What the write set holds in memory: its buffer (overwritten
    /// operations included, at most about as much again as the live ones)
    /// and its index.
    fn buffered(&self) -> usize {
        self.writes.buffer_bytes() + self.writes.len() * TXN_ENTRY_OVERHEAD_BYTES
    }

    /// Discards the transaction's writes (dropping it does the same).
    pub fn rollback(self) {}
}

/// Checks the size limits of one operation (at `put`, long before encoding).
fn check_op(key: &[u8], value: Option<&[u8]>) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    if let Some(v) = value
        && v.len() > MAX_VALUE_BYTES
    {
        return Err(Error::ValueTooLarge {
            len: v.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;

    use crate::vfs::MemVfs;
    use crate::{Db, Options};

    /// Only a transaction that has written can join a batch, so only it may
    /// make a gathering leader wait (decision 0009).
    #[test]
    fn oversized_ops_are_refused_before_encoding() {
        use crate::types::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
        assert!(super::check_op(&vec![0; MAX_KEY_BYTES + 1], None).is_err());
        assert!(super::check_op(b"k", Some(&vec![0; MAX_VALUE_BYTES + 1])).is_err());
        assert!(super::check_op(&vec![0; MAX_KEY_BYTES], Some(b"v")).is_ok());
    }

    #[test]
    fn a_txn_counts_as_a_writer_from_its_first_write_until_it_ends() {
        let db = Db::open_with_vfs("/db", Options::default(), Arc::new(MemVfs::new())).unwrap();
        let wal = &db.inner.engine.wal;
        let reader = db.begin();
        assert_eq!(reader.get(b"k").unwrap(), None);
        assert_eq!(wal.open_writers(), 0, "reads alone do not count");

        let mut writer = db.begin();
        writer.put(b"k", b"v").unwrap();
        writer.delete(b"j").unwrap();
        assert_eq!(wal.open_writers(), 1, "counted once, at the first write");
        writer.commit().unwrap();
        assert_eq!(wal.open_writers(), 0, "uncounted when commit returns");

        let mut dropped = db.begin();
        dropped.delete(b"k").unwrap();
        assert_eq!(wal.open_writers(), 1);
        drop(dropped);
        drop(reader);
        assert_eq!(wal.open_writers(), 0, "uncounted on rollback");
        db.close().unwrap();
    }
}
