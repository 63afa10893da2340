//! [`Table`]: an open, mapped, verified table, and [`TableIter`], a cursor
//! over its versions in both directions (`docs/format/sst.md`, "What
//! readers do").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{BlockCursor, EntryKind, cmp_version, validate};
use super::bloom::{Bloom, hash64};
use super::fence::Fences;
use super::format::{
    BlockKind, FORMAT_VERSION, Footer, FooterError, Handle, Properties, verify_block,
};
use crate::budget::{Account, OwnedCharge};
use crate::codec::Cursor;
use crate::error::{Error, Result};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::types::Ts;
use crate::vfs::{Mapped, Vfs};

/// What a table says about a key at a read ts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The newest version at or below the read ts is this value.
    Value(Vec<u8>),
    /// ... is a delete.
    Tombstone,
}

/// What [`Table::get`]'s direct path found.
enum Direct {
    Found(Found),
    Absent,
    /// The general path must answer.
    General,
}

/// A key a point read looks up, hashed once for the filters of every
/// table it probes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'k> {
    pub(crate) key: &'k [u8],
    hash: u64,
}

impl<'k> Probe<'k> {
    pub(crate) fn new(key: &'k [u8]) -> Self {
        Probe {
            key,
            hash: hash64(key),
        }
    }

    /// The key's filter hash (memtables use the same).
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

/// An open table. Immutable; shared by every view that lists it.
#[derive(Debug)]
pub(crate) struct Table {
    path: PathBuf,
    bytes: Mapped,
    /// Contents ranges of the index and filter blocks.
    index: (usize, usize),
    filter: (usize, usize),
    /// The filter's probes per key and hash version, decoded at open.
    filter_shape: (u8, u8),
    /// Where the data blocks end (the filter block's offset).
    data_end: usize,
    props: Properties,
    /// The index block's summary the seeks search first.
    fences: Fences,
    /// One bit per data block offset slot: set once the block at that
    /// index ordinal passed its checksum and structure checks.
    verified: Box<[AtomicU64]>,
    /// Set once a durable manifest edit removed the table: its file is
    /// deleted when the last reference (the last view listing it) drops.
    obsolete: Mutex<Option<Obsolete>>,
    /// What the table holds in memory, in the engine's table account
    /// (decision 0024); returned when the table drops. `None` for tables
    /// the engine does not count (tools, tests).
    charge: Option<OwnedCharge>,
}

/// Heap allocations a table makes besides its struct (path, two keys,
/// the fences' three arrays, the bitmap, the `Arc`), each charged an
/// allocator header.
const TABLE_ALLOCATIONS: u64 = 8;
/// Bytes of allocator header (and rounding) charged per allocation.
pub(crate) const ALLOCATION_OVERHEAD_BYTES: u64 = 16;

/// How an obsolete table's file goes: see [`Table::mark_obsolete`].
#[derive(Debug)]
pub(crate) struct Obsolete {
    pub(crate) vfs: Arc<dyn Vfs>,
    /// Obsolete tables whose file is not deleted yet (decremented here).
    pub(crate) pending: Arc<AtomicU64>,
}

impl Drop for Table {
    /// Deletes the file of an obsolete table. No view lists it any more
    /// (every view holds an `Arc<Table>`), so no reader can reach its bytes;
    /// on POSIX the mapping itself stays valid until it is unmapped right
    /// after. A failed delete leaves an orphan, which the next writable
    /// open removes (it is in no manifest).
    fn drop(&mut self) {
        if let Some(o) = self.obsolete.lock().take() {
            let _ = o.vfs.remove(&self.path);
            o.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Table {
    /// Maps and checks the table at `path`: footer, index, filter and
    /// properties (data blocks are checked at first use).
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path) -> Result<Table> {
        let bytes = vfs.map(path)?;
        let corrupt = |offset: usize, what: &str| Error::corruption(path, offset as u64, what);
        let file = bytes.bytes();
        let footer_at = file.len().saturating_sub(super::format::FOOTER_BYTES);
        let footer = Footer::decode(file).map_err(|e| match e {
            FooterError::NotATable => corrupt(footer_at, "not a table (no footer magic)"),
            FooterError::Checksum => corrupt(footer_at, "footer checksum mismatch"),
            FooterError::BadVersion => corrupt(footer_at, "footer names format version 0"),
            FooterError::Unsupported(found) => Error::UnsupportedFormat {
                file: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            },
        })?;
        let block = |h: Handle, kind: BlockKind, name: &str| -> Result<(usize, usize)> {
            let (start, end) = h.span(footer_at).ok_or_else(|| {
                corrupt(footer_at, &format!("{name} block handle past the footer"))
            })?;
            let raw = file.get(start..end).unwrap_or_default();
            let contents = verify_block(raw, kind)
                .map_err(|w| corrupt(start, &format!("{name} block: {w}")))?;
            Ok((start, start + contents.len()))
        };
        let index = block(footer.index, BlockKind::Index, "index")?;
        let filter = block(footer.filter, BlockKind::Filter, "filter")?;
        let props_range = block(footer.properties, BlockKind::Properties, "properties")?;
        let slice = |r: (usize, usize)| file.get(r.0..r.1).unwrap_or_default();
        let props = Properties::decode(slice(props_range))
            .map_err(|w| corrupt(props_range.0, &format!("properties: {w}")))?;
        let filter_shape = Bloom::decode(slice(filter))
            .map_err(|w| corrupt(filter.0, &format!("filter: {w}")))?
            .shape();
        let summary = validate(slice(index), &[EntryKind::Handle])
            .map_err(|w| corrupt(index.0, &format!("index block: {w}")))?;
        if summary.restarts != summary.entries {
            return Err(corrupt(
                index.0,
                "index block with an entry that is not a restart",
            ));
        }
        if summary.entries as u64 != props.data_blocks {
            return Err(corrupt(
                index.0,
                "index entries differ from the data block count",
            ));
        }
        if summary.first.0 < props.smallest_key || summary.last.0 != props.largest_key {
            return Err(corrupt(
                index.0,
                "index keys differ from the properties' key range",
            ));
        }
        let fences = Fences::build(slice(index), &props.smallest_key, &props.largest_key)
            .ok_or_else(|| corrupt(index.0, "index block does not decode"))?;
        let data_end = usize::try_from(footer.filter.offset).unwrap_or(usize::MAX);
        let words = summary.entries.div_ceil(64);
        Ok(Table {
            path: path.to_path_buf(),
            bytes,
            index,
            filter,
            filter_shape,
            data_end,
            props,
            fences,
            verified: (0..words).map(|_| AtomicU64::new(0)).collect(),
            obsolete: Mutex::new(None),
            charge: None,
        })
    }

    /// The anonymous memory this table holds: its struct (in an `Arc`),
    /// path, key range, fences (24 bytes a data block) and verified-block
    /// bitmap. The mapped file is page cache and not counted; nor is the
    /// filter, read from the mapping.
    pub(crate) fn resident_bytes(&self) -> u64 {
        let heap = self.path.as_os_str().len()
            + self.props.smallest_key.len()
            + self.props.largest_key.len()
            + self.fences.heap_bytes()
            + self.verified.len() * size_of::<AtomicU64>();
        (size_of::<Self>() + 2 * size_of::<usize>() + heap) as u64
            + TABLE_ALLOCATIONS * ALLOCATION_OVERHEAD_BYTES
    }

    /// Charges `bytes` to `account` for as long as the table is open.
    pub(crate) fn charged(mut self, account: &Arc<Account>, bytes: u64) -> Table {
        self.charge = Some(OwnedCharge::new(account, bytes));
        self
    }

    /// Marks the table obsolete (a durable manifest edit removed it): its
    /// file is deleted when the last `Arc<Table>` drops (module docs of
    /// `view.rs`, invariant 2). Only a writable open marks tables.
    pub(crate) fn mark_obsolete(&self, vfs: Arc<dyn Vfs>, pending: Arc<AtomicU64>) {
        pending.fetch_add(1, Ordering::Relaxed);
        *self.obsolete.lock() = Some(Obsolete { vfs, pending });
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn properties(&self) -> &Properties {
        &self.props
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.bytes.bytes().len() as u64
    }

    fn slice(&self, r: (usize, usize)) -> &[u8] {
        self.bytes.bytes().get(r.0..r.1).unwrap_or_default()
    }

    fn index_contents(&self) -> &[u8] {
        self.slice(self.index)
    }

    fn bloom(&self) -> Bloom<'_> {
        Bloom::from_shape(self.slice(self.filter), self.filter_shape)
    }

    /// False only if the table certainly holds no version of `key`.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.bloom().may_contain(key)
    }

    /// Whether `key` lies in the table's key range.
    pub(crate) fn covers(&self, key: &[u8]) -> bool {
        let p = &self.props;
        p.smallest_key.as_slice() <= key && key <= p.largest_key.as_slice()
    }

    /// Starts loading what a get of `probe` reads first, the filter's
    /// bits for it ([`super::touch`]).
    pub(crate) fn touch(&self, probe: &Probe<'_>) {
        self.bloom().touch(probe.hash);
    }

    /// The data block an index entry names, checked at its first use.
    /// `ordinal` is the index entry's position; `last` its version.
    fn data_block(
        &self,
        handle: Handle,
        ordinal: usize,
        last: (&[u8], Ts),
    ) -> Result<(usize, usize)> {
        let corrupt = |offset: u64, what: &str| Error::corruption(&self.path, offset, what);
        let (start, end) = handle
            .span(self.data_end)
            .ok_or_else(|| corrupt(handle.offset, "data block handle past the data"))?;
        let contents_end = end - super::format::BLOCK_TRAILER_BYTES;
        let (word, bit) = (ordinal / 64, 1u64 << (ordinal % 64));
        let seen = self
            .verified
            .get(word)
            .map_or(0, |w| w.load(Ordering::Relaxed));
        if seen & bit == 0 {
            let raw = self.bytes.bytes().get(start..end).unwrap_or_default();
            let contents = verify_block(raw, BlockKind::Data)
                .map_err(|w| corrupt(handle.offset, &format!("data block: {w}")))?;
            let summary = validate(contents, &[EntryKind::Value, EntryKind::Tombstone])
                .map_err(|w| corrupt(handle.offset, &format!("data block: {w}")))?;
            if (summary.last.0.as_slice(), summary.last.1) != last {
                return Err(corrupt(
                    handle.offset,
                    "data block ends elsewhere than its index entry says",
                ));
            }
            if let Some(w) = self.verified.get(word) {
                w.fetch_or(bit, Ordering::Relaxed);
            }
        }
        Ok((start, contents_end))
    }

    /// The version of `key` visible at `read_ts`, if this table holds one.
    pub(crate) fn get(&self, key: &[u8], read_ts: Ts) -> Result<Option<Found>> {
        self.get_probe(&Probe::new(key), read_ts)
    }

    /// [`Table::get`] of a key hashed once for every table it probes.
    pub(crate) fn get_probe(&self, probe: &Probe<'_>, read_ts: Ts) -> Result<Option<Found>> {
        // The key range first: it is in memory, the filter is a mapped
        // page (and level 0's tables are probed whatever their range).
        let key = probe.key;
        if !self.covers(key) || !self.bloom().may_contain_hash(probe.hash) {
            return Ok(None);
        }
        match self.get_in_block(key, read_ts) {
            Direct::Found(found) => return Ok(Some(found)),
            Direct::Absent => return Ok(None),
            Direct::General => {}
        }
        let mut it = TableIter::borrowed(self);
        it.seek(key, read_ts);
        it.status()?;
        if !it.valid() || it.key() != key {
            return Ok(None);
        }
        Ok(Some(match it.kind() {
            Some(EntryKind::Value) => Found::Value(it.value().to_vec()),
            _ => Found::Tombstone,
        }))
    }

    /// [`Table::get`]'s direct path: when the fences name the one block
    /// that can hold `key` (no tie) and that block is already verified,
    /// search it without touching the index. `None` where that does not
    /// hold (a tie, a first use of the block, a block that does not
    /// decode): the general path answers, and reports any damage.
    fn get_in_block(&self, key: &[u8], read_ts: Ts) -> Direct {
        let Some((lo, hi)) = self.fences.bounds(&self.props.smallest_key, key) else {
            return Direct::General;
        };
        if lo != hi || !self.is_verified(lo) {
            return Direct::General;
        }
        let span = self.fences.handle(lo).and_then(|h| h.span(self.data_end));
        let Some((start, end)) = span else {
            return Direct::General;
        };
        let contents = self.slice((start, end - super::format::BLOCK_TRAILER_BYTES));
        let mut cur = BlockCursor::new(contents);
        cur.touch_restarts(contents);
        cur.seek(contents, key, read_ts);
        if cur.is_corrupt() {
            return Direct::General;
        }
        if !cur.is_valid() || cur.key() != key {
            return Direct::Absent;
        }
        Direct::Found(match cur.kind() {
            Some(EntryKind::Value) => Found::Value(cur.value(contents).to_vec()),
            _ => Found::Tombstone,
        })
    }

    /// Data block `ordinal`'s contents range, if the block passed its
    /// checks already (`data_block`): its handle is the fences' copy of
    /// its index entry's.
    fn verified_block(&self, ordinal: usize) -> Option<(usize, usize)> {
        if !self.is_verified(ordinal) {
            return None;
        }
        let (start, end) = self.fences.handle(ordinal)?.span(self.data_end)?;
        Some((start, end - super::format::BLOCK_TRAILER_BYTES))
    }

    /// Whether data block `ordinal` passed its checks (`data_block`).
    fn is_verified(&self, ordinal: usize) -> bool {
        let (word, bit) = (ordinal / 64, 1u64 << (ordinal % 64));
        self.verified
            .get(word)
            .is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0)
    }

    /// A cursor over every version, not yet positioned.
    pub(crate) fn iter(self: &Arc<Self>) -> TableIter<Arc<Table>> {
        TableIter::new(Arc::clone(self))
    }
}

/// A cursor over a table's versions, in version order, both directions.
/// `T` is how it holds the table: `Arc<Table>` to outlive the caller's
/// borrow, `&Table` for a lookup.
#[derive(Debug)]
pub(crate) struct TableIter<T: AsRef<Table>> {
    table: T,
    index: BlockCursor,
    /// The index ordinal and contents range of the current data block.
    block: Option<(usize, (usize, usize))>,
    /// The current data block's number: its index entry's and fence's
    /// position (every index entry is a restart, which `Table::open`
    /// checks, so seeks can count it).
    ordinal: usize,
    cur: BlockCursor,
    err: Option<Error>,
}

impl AsRef<Table> for Table {
    fn as_ref(&self) -> &Table {
        self
    }
}

impl<'a> TableIter<&'a Table> {
    /// A cursor that borrows the table (a view holds it alive).
    pub(crate) fn borrowed(table: &'a Table) -> Self {
        TableIter::new(table)
    }
}

impl<T: AsRef<Table>> TableIter<T> {
    fn new(table: T) -> Self {
        let index = BlockCursor::new(table.as_ref().index_contents());
        TableIter {
            table,
            index,
            block: None,
            ordinal: 0,
            cur: BlockCursor::default(),
            err: None,
        }
    }

    /// `Err` once the cursor stopped on damage (it is then not valid).
    pub(crate) fn status(&self) -> Result<()> {
        match &self.err {
            None => Ok(()),
            Some(Error::Corruption { file, offset, what }) => Err(Error::Corruption {
                file: file.clone(),
                offset: *offset,
                what: what.clone(),
            }),
            Some(e) => Err(Error::corruption(
                &self.table.as_ref().path,
                0,
                e.to_string(),
            )),
        }
    }

    pub(crate) fn valid(&self) -> bool {
        self.err.is_none() && self.block.is_some() && self.cur.is_valid()
    }

    pub(crate) fn key(&self) -> &[u8] {
        self.cur.key()
    }

    pub(crate) fn ts(&self) -> Ts {
        self.cur.ts()
    }

    pub(crate) fn kind(&self) -> Option<EntryKind> {
        self.cur.kind()
    }

    /// The current value (empty for a tombstone).
    pub(crate) fn value(&self) -> &[u8] {
        match self.block {
            Some((_, r)) => self.cur.value(self.table.as_ref().slice(r)),
            None => &[],
        }
    }

    fn fail(&mut self, e: Error) {
        self.err = Some(e);
        self.block = None;
    }

    fn index_damage(&mut self) {
        let t = self.table.as_ref();
        let e = Error::corruption(&t.path, t.index.0 as u64, "index block does not decode");
        self.fail(e);
    }

    /// Loads data block `ordinal`; `false` if there is none (before the
    /// first or past the last) or it is damaged. A block already verified
    /// comes straight from the fences' handle (no index entry is read: a
    /// seek or a step into the next block touches only the data block);
    /// a block's first use goes through its index entry, which the checks
    /// compare the block with.
    fn load_block(&mut self, ordinal: usize) -> bool {
        self.ordinal = ordinal;
        let t = self.table.as_ref();
        if ordinal >= t.fences.len() {
            self.block = None;
            return false;
        }
        if let Some(range) = t.verified_block(ordinal) {
            self.cur.reset(t.slice(range));
            self.block = Some((ordinal, range));
            return true;
        }
        let idx = t.index_contents();
        self.index.seek_to_restart(idx, ordinal);
        if self.index.is_corrupt() || !self.index.is_valid() {
            self.index_damage();
            return false;
        }
        let handle = Handle::decode(&mut Cursor::new(self.index.value(idx)));
        let Some(handle) = handle else {
            self.index_damage();
            return false;
        };
        match t.data_block(handle, ordinal, (self.index.key(), self.index.ts())) {
            Ok(range) => {
                self.cur.reset(t.slice(range));
                self.block = Some((ordinal, range));
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// Runs `op` on the block cursor over the current block's contents,
    /// then notes any damage it met.
    fn in_block(&mut self, op: impl FnOnce(&mut BlockCursor, &[u8])) {
        let contents = self
            .table
            .as_ref()
            .slice(self.block.map_or((0, 0), |b| b.1));
        op(&mut self.cur, contents);
        self.check_cur();
    }

    fn check_cur(&mut self) {
        if self.cur.is_corrupt() {
            let t = self.table.as_ref();
            let offset = self.block.map_or(0, |(_, r)| r.0 as u64);
            let e = Error::corruption(&t.path, offset, "data block does not decode");
            self.fail(e);
        }
    }

    /// The first data block whose last version is `>= (key, ts)` (the
    /// block count if none): from the fences alone when they name one
    /// block, else a search of the index entries they leave open.
    fn index_seek(&mut self, key: &[u8], ts: Ts) -> usize {
        let t = self.table.as_ref();
        let idx = t.index_contents();
        match t.fences.bounds(&t.props.smallest_key, key) {
            Some((lo, hi)) if lo == hi => lo,
            Some((lo, hi)) => self.index.seek_ordinal_between(idx, key, ts, lo, hi),
            None => self.index.seek_ordinal(idx, key, ts),
        }
    }

    pub(crate) fn seek_to_first(&mut self) {
        if self.load_block(0) {
            self.in_block(BlockCursor::seek_to_first);
        }
    }

    pub(crate) fn seek_to_last(&mut self) {
        let last = self.table.as_ref().fences.len().checked_sub(1);
        if last.is_some_and(|i| self.load_block(i)) {
            self.in_block(BlockCursor::seek_to_last);
        }
    }

    /// Moves to the first version `>= (key, ts)`.
    pub(crate) fn seek(&mut self, key: &[u8], ts: Ts) {
        if self.err.is_some() {
            return;
        }
        let ordinal = self.index_seek(key, ts);
        if self.index.is_corrupt() {
            self.index_damage();
            return;
        }
        if self.load_block(ordinal) {
            self.in_block(|cur, c| cur.seek(c, key, ts));
        }
    }

    /// [`TableIter::seek`] for a scan, which reads on from there: the rest
    /// of the block is loaded ahead (a point read's seek does not need it).
    pub(crate) fn seek_to_scan(&mut self, key: &[u8], ts: Ts) {
        self.seek(key, ts);
        if self.valid() {
            self.in_block(|cur, c| cur.touch_entries(c, false));
        }
    }

    /// Moves to the last version `<= (key, ts)`.
    pub(crate) fn seek_for_prev(&mut self, key: &[u8], ts: Ts) {
        self.seek(key, ts);
        if self.err.is_some() {
            return;
        }
        if !self.valid() {
            self.seek_to_last();
        } else if cmp_version(self.key(), self.ts(), key, ts) == std::cmp::Ordering::Greater {
            self.prev();
        }
    }

    pub(crate) fn next(&mut self) {
        if !self.valid() {
            return;
        }
        self.in_block(BlockCursor::next);
        if self.err.is_none() && !self.cur.is_valid() && self.load_block(self.ordinal + 1) {
            self.in_block(|cur, c| {
                cur.touch_entries(c, true);
                cur.seek_to_first(c);
            });
        }
    }

    pub(crate) fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        self.in_block(BlockCursor::prev);
        if self.err.is_none() && !self.cur.is_valid() {
            match self.ordinal.checked_sub(1) {
                Some(before) if self.load_block(before) => {
                    self.in_block(|cur, c| {
                        cur.touch_entries(c, true);
                        cur.seek_to_last(c);
                    });
                }
                Some(_) => {}
                None => self.block = None,
            }
        }
    }
}
