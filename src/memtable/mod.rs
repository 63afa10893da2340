//! The memtable: a concurrent ordered map of versions `(key, commit ts)`,
//! newest first per key, over our own single-writer skiplist
//! (`skiplist/`, decision 0030).
//!
//! Invariants:
//! 1. Keys sort by user key ascending, then commit ts **descending**, so the
//!    version a reader at `read_ts` sees is the first entry at or after
//!    `(key, read_ts)`, one seek (and reading "as of" any ts is the same seek).
//! 2. A version is inserted once and never changed; `(key, ts)` is unique
//!    because commit timestamps are.
//! 3. `approximate_bytes` counts key + value + per-entry overhead of every
//!    insert (and, for a value kept in its commit's shared WAL frame, the
//!    frame's copy of the key and the operation header), for the flush
//!    trigger and the memory budget. The per-entry overhead
//!    ([`ENTRY_OVERHEAD_BYTES`]) covers the entry's skiplist node and links
//!    (72 bytes and 4 per upper level, 1.3 on average, with an inline key
//!    inside the node); while the skiplist's arena holds more than that per
//!    entry (its newest chunks not yet filled), the difference is counted
//!    too, so the count is never below what the arena holds.
//!    Once a flush has replaced it by its table, the memtable charges its
//!    count to an account of memtables that only older views still hold
//!    ([`Memtable::retire`]); the charge is returned when it is freed.
//! 4. `last_lsn` is the WAL record of the last commit inserted whole: the
//!    commit path and recovery apply commits in lsn order, one at a time
//!    per memtable, and note it after the commit's last insert, so a frozen
//!    memtable holds exactly the records after its predecessor's `last_lsn`
//!    up to its own (what its flush covers).
//!
//! Concurrency: readers are lock-free, any number of them, and borrow
//! versions for the memtable's lifetime (no reference counts, no epochs:
//! versions are never removed, invariant 2). One inserter at a time
//! (invariant 4): the skiplist's writer lock, held across a commit's filter
//! and skiplist inserts, makes a second one wait (it is uncontended, taken
//! once per commit); the key filter's plain stores rely on it (`filter.rs`). Visibility of a whole commit is not this module's
//! business: readers only ask for `read_ts <= applied watermark` (see
//! `mvcc`); a version is whole before any link leads to it (skiplist
//! invariant 2, loom model `loom_a_skiplist_reader_sees_every_published_version`).

mod cursor;
mod filter;
mod skiplist;

pub(crate) use cursor::MemCursor;

use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;

use crate::budget::{Account, OwnedCharge};
use crate::sst::hash64;
use crate::sync::OnceLock;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::types::{Lsn, Ts};
use filter::MemFilter;
use skiplist::{Pos, SkipList};
use std::sync::Arc;

/// Bytes charged per entry beyond key and value: its skiplist node and
/// links (invariant 3).
pub(crate) const ENTRY_OVERHEAD_BYTES: u64 = 80;

/// Keys up to this length are stored inside the skiplist node.
pub(crate) const INLINE_KEY_BYTES: usize = 22;

/// A user key: inline when short, so that a search compares bytes in the node
/// it already loaded instead of chasing a pointer per comparison (measured:
/// skiplist search was ~40% of CPU on the commit path, mostly key compares).
/// Also a transaction's write-set key (`write_set.rs`): no allocation per
/// short key there either. Compares as its bytes.
#[derive(Debug, Clone)]
pub(crate) enum KeyBuf {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Heap(Box<[u8]>),
}

impl KeyBuf {
    pub(crate) fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY_BYTES => {
                let mut bytes = [0; INLINE_KEY_BYTES];
                if let Some(dst) = bytes.get_mut(..key.len()) {
                    dst.copy_from_slice(key);
                }
                KeyBuf::Inline { len, bytes }
            }
            _ => KeyBuf::Heap(key.into()),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            KeyBuf::Heap(b) => b,
        }
    }
}

// Equality and order are the bytes' (whichever way they are stored), so a
// `BTreeMap<KeyBuf, _>` can be searched with a `&[u8]`.
impl PartialEq for KeyBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for KeyBuf {}
impl PartialOrd for KeyBuf {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyBuf {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.as_slice().cmp(other.as_slice())
    }
}
impl Borrow<[u8]> for KeyBuf {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A stored value: a range of a shared buffer. The commit path inserts
/// values in place in their commit's WAL frame (one buffer per commit, kept
/// alive by its versions' references; no allocation per value); other
/// inserts (recovery, compaction's GC) copy the value into a buffer of its
/// own. Derefs to the value's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    buf: Arc<[u8]>,
    at: u32,
    len: u32,
}

impl Value {
    /// `len` bytes of `buf` from `at` (a range of a commit's frame; the
    /// caller's range is in bounds: an out-of-range one reads as empty).
    pub(crate) fn shared(buf: &Arc<[u8]>, (at, len): (u32, u32)) -> Self {
        Value {
            buf: Arc::clone(buf),
            at,
            len,
        }
    }

    /// Bytes the memtable charges for this value beyond its own length: a
    /// value in a shared frame keeps that frame's copy of its key and the
    /// operation's header alive with it; a copied value keeps nothing else.
    fn frame_share(&self, key: &[u8]) -> u64 {
        if self.len as usize == self.buf.len() {
            0
        } else {
            (key.len() + crate::wal::format::op_encoded_len(&[], Some(&[]))) as u64
        }
    }
}

/// A value in a commit's shared frame, borrowed: it becomes a [`Value`] (a
/// reference to the frame) only when the memtable keeps it, so a commit's
/// operations can be walked twice (filter, then versions) at no cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFrame<'a> {
    buf: &'a Arc<[u8]>,
    range: (u32, u32),
}

impl<'a> InFrame<'a> {
    /// `len` bytes of `buf` from `at` (see [`Value::shared`]).
    pub(crate) fn new(buf: &'a Arc<[u8]>, range: (u32, u32)) -> Self {
        InFrame { buf, range }
    }
}

impl From<InFrame<'_>> for Value {
    fn from(v: InFrame<'_>) -> Self {
        Value::shared(v.buf, v.range)
    }
}

impl std::ops::Deref for InFrame<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let (at, len) = (self.range.0 as usize, self.range.1 as usize);
        self.buf.get(at..at + len).unwrap_or_default()
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        Value {
            buf: bytes.into(),
            at: 0,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }
}

impl std::ops::Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let at = self.at as usize;
        self.buf.get(at..at + self.len as usize).unwrap_or_default()
    }
}

/// A version's position: user key, then commit ts descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionKey {
    key: KeyBuf,
    ts: Ts,
}

/// Borrowed view of a version position, so lookups need no allocation.
pub(crate) trait VersionRef {
    fn user_key(&self) -> &[u8];
    fn ts(&self) -> Ts;
}

impl VersionRef for VersionKey {
    fn user_key(&self) -> &[u8] {
        self.key.as_slice()
    }
    fn ts(&self) -> Ts {
        self.ts
    }
}

impl VersionRef for (&[u8], Ts) {
    fn user_key(&self) -> &[u8] {
        self.0
    }
    fn ts(&self) -> Ts {
        self.1
    }
}

impl<'a> Borrow<dyn VersionRef + 'a> for VersionKey {
    fn borrow(&self) -> &(dyn VersionRef + 'a) {
        self
    }
}

fn cmp_versions(a: &dyn VersionRef, b: &dyn VersionRef) -> CmpOrdering {
    a.user_key()
        .cmp(b.user_key())
        .then_with(|| b.ts().cmp(&a.ts()))
}

impl PartialEq for dyn VersionRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        cmp_versions(self, other) == CmpOrdering::Equal
    }
}
impl Eq for dyn VersionRef + '_ {}
impl PartialOrd for dyn VersionRef + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn VersionRef + '_ {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        cmp_versions(self, other)
    }
}
impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        cmp_versions(self, other)
    }
}

/// A stored value; `None` is a tombstone.
type Stored = Option<Value>;

/// A position at a version, borrowed from the memtable.
type Version<'a> = Pos<'a, VersionKey, Stored>;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    /// Set when a flush replaced it by its table while an older view still
    /// held it ([`Memtable::retire`]). The first field, so dropped first:
    /// the charge goes as the memtable's freeing begins.
    retired: OnceLock<OwnedCharge>,
    map: SkipList<VersionKey, Stored>,
    bytes: AtomicU64,
    /// The highest WAL lsn whose commit has been inserted whole (commits are
    /// applied in lsn order, so every record up to it is in).
    last_lsn: AtomicU64,
    /// The user keys inserted, for point reads (`filter.rs`); `None` for
    /// scratch memtables (tests, compaction's), which nobody reads by key.
    filter: Option<MemFilter>,
}

impl Memtable {
    /// A memtable without a key filter.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A memtable whose key filter is sized for a flush at `share` bytes;
    /// the filter's bytes count from the start ([`Memtable::approximate_bytes`]).
    pub(crate) fn with_share(share: u64) -> Self {
        Self::with_filter(MemFilter::for_share(share))
    }

    /// An empty memtable to take over from this one (a filter of the same
    /// size, if it has one).
    pub(crate) fn successor(&self) -> Self {
        self.filter
            .as_ref()
            .map_or_else(Memtable::new, |f| Self::with_filter(f.blank_like()))
    }

    fn with_filter(filter: MemFilter) -> Self {
        Memtable {
            bytes: AtomicU64::new(filter.heap_bytes()),
            filter: Some(filter),
            ..Memtable::default()
        }
    }

    /// Inserts the version of `key` committed at `ts` (`None`: a delete),
    /// copying the value (tests and benchmarks; the engine inserts through
    /// `commit::apply_commit`).
    #[cfg(any(test, feature = "fuzzing", feature = "bench-internals"))]
    pub(crate) fn insert(&self, key: &[u8], ts: Ts, value: Option<&[u8]>) {
        self.insert_commit(ts, std::iter::once((key, value)));
    }

    /// Inserts the versions of one commit at `ts` (`None` values: deletes),
    /// keeping each value's buffer (invariant 3 counts the part of a shared
    /// frame it keeps alive). Every key goes into the filter first, before
    /// any version can be visible (`filter.rs`), in a pass of its own, so
    /// that the filter's cache misses overlap instead of each waiting out a
    /// skiplist insert (decision 0029).
    pub(crate) fn insert_commit<'a, V: Into<Value>>(
        &self,
        ts: Ts,
        ops: impl Iterator<Item = (&'a [u8], Option<V>)> + Clone,
    ) {
        // One writer lock per commit, held for both passes, so a second
        // inserter waits (invariant 4) for the filter's plain stores too.
        let mut writer = self.map.writer();
        if let Some(f) = &self.filter {
            for (key, _) in ops.clone() {
                f.insert(hash64(key));
            }
        }
        // The skiplist half. A commit's keys ascend, so each insert after
        // the first is a finger insert (skiplist invariant 3), and so is a
        // commit's first when the commits ascend too (a bulk load).
        let mut charge = 0;
        for (key, value) in ops {
            let value: Stored = value.map(Into::into);
            let bytes = key.len() as u64
                + value
                    .as_ref()
                    .map_or(0, |v| v.len() as u64 + v.frame_share(key))
                + ENTRY_OVERHEAD_BYTES;
            let key = VersionKey {
                key: KeyBuf::new(key),
                ts,
            };
            // Invariant 2: `(key, ts)` is new; were it not, the first stays.
            if writer.insert(key, value) {
                charge += bytes;
            }
        }
        drop(writer);
        self.bytes.fetch_add(charge, Ordering::Relaxed);
    }

    /// The first version `>= (key, ts)`.
    fn seek(&self, key: &[u8], ts: Ts) -> Option<Version<'_>> {
        let probe: &dyn VersionRef = &(key, ts);
        self.map.lower_bound(probe)
    }

    /// The version of `key` visible at `read_ts`: `None` if there is none,
    /// `Some(None)` if it is a delete.
    #[expect(
        clippy::option_option,
        reason = "absent vs deleted: a lookup across several tables must stop at a tombstone"
    )]
    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8], read_ts: Ts) -> Option<Option<Vec<u8>>> {
        self.get_hashed(key, hash64(key), read_ts)
    }

    /// [`Memtable::get`] of a key whose `sst::hash64` is `hash`: the
    /// filter answers first.
    #[expect(clippy::option_option, reason = "absent vs deleted, as in `get`")]
    pub(crate) fn get_hashed(&self, key: &[u8], hash: u64, read_ts: Ts) -> Option<Option<Vec<u8>>> {
        if self.filter.as_ref().is_some_and(|f| !f.may_contain(hash)) {
            return None;
        }
        let entry = self.seek(key, read_ts)?;
        (entry.key().user_key() == key).then(|| entry.value().as_deref().map(<[u8]>::to_vec))
    }

    /// The commit ts of the newest version of `key`, deletes included.
    pub(crate) fn newest_ts(&self, key: &[u8]) -> Option<Ts> {
        let entry = self.seek(key, Ts::MAX)?;
        (entry.key().user_key() == key).then_some(entry.key().ts)
    }

    /// Notes that the commit of WAL record `lsn` is inserted whole.
    pub(crate) fn applied_through(&self, lsn: Lsn) {
        self.last_lsn.fetch_max(lsn.0, Ordering::Release);
    }

    /// The highest WAL lsn whose commit this memtable holds (0: none).
    pub(crate) fn last_lsn(&self) -> Lsn {
        Lsn(self.last_lsn.load(Ordering::Acquire))
    }

    /// Bytes inserted so far (keys, values and per-entry overhead), and the
    /// skiplist arena's bytes beyond the per-entry overhead (invariant 3).
    pub(crate) fn approximate_bytes(&self) -> u64 {
        let charged_nodes = self.map.len() as u64 * ENTRY_OVERHEAD_BYTES;
        self.bytes.load(Ordering::Relaxed) + self.map.heap_bytes().saturating_sub(charged_nodes)
    }

    /// Number of versions.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Charges this memtable's bytes to `account` until it is freed: called
    /// once its flush has installed a view without it and an older view
    /// still holds it, so the account counts the flushed memtables that
    /// snapshots and scans keep (decision 0032). A flushed memtable takes
    /// no more inserts, so the count is final.
    pub(crate) fn retire(&self, account: &Arc<Account>) {
        // A second call keeps the first charge (the new one is returned
        // as it drops).
        let _ = self
            .retired
            .set(OwnedCharge::new(account, self.approximate_bytes()));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn ts(v: u64) -> Ts {
        Ts::from(v)
    }

    #[test]
    fn get_resolves_the_newest_visible_version() {
        let m = Memtable::new();
        m.insert(b"a", ts(10), Some(b"a10"));
        m.insert(b"a", ts(20), Some(b"a20"));
        m.insert(b"a", ts(30), None);
        m.insert(b"b", ts(15), Some(b"b15"));
        assert_eq!(m.get(b"a", ts(5)), None);
        assert_eq!(m.get(b"a", ts(10)), Some(Some(b"a10".to_vec())));
        assert_eq!(m.get(b"a", ts(29)), Some(Some(b"a20".to_vec())));
        assert_eq!(m.get(b"a", ts(30)), Some(None));
        assert_eq!(m.get(b"ab", ts(99)), None);
        assert_eq!(m.newest_ts(b"a"), Some(ts(30)));
        assert_eq!(m.newest_ts(b"c"), None);
        assert_eq!(m.len(), 4);
        assert!(m.approximate_bytes() >= 4 * ENTRY_OVERHEAD_BYTES);
    }

    #[test]
    fn a_filtered_memtable_answers_as_an_unfiltered_one() {
        // A share of 8 entries' charge: the filter is overfull by far.
        let filtered = Memtable::with_share(8 * filter::MIN_ENTRY_BYTES);
        let plain = Memtable::new();
        assert!(filtered.approximate_bytes() > 0, "the filter is charged");
        for i in 0..300u64 {
            let key = format!("k{:03}", i * 7 % 300);
            for m in [&filtered, &plain] {
                m.insert(
                    key.as_bytes(),
                    ts(i + 1),
                    (i % 5 != 0).then_some(key.as_bytes()),
                );
            }
        }
        for i in 0..400u64 {
            let key = format!("k{i:03}");
            for at in [0, 150, 301] {
                assert_eq!(
                    filtered.get(key.as_bytes(), ts(at)),
                    plain.get(key.as_bytes(), ts(at)),
                    "{key} at {at}"
                );
            }
        }
        let next = filtered.successor();
        assert_eq!(next.len(), 0);
        assert_eq!(
            next.approximate_bytes(),
            Memtable::with_share(8 * filter::MIN_ENTRY_BYTES).approximate_bytes()
        );
        assert_eq!(next.get(b"k001", ts(999)), None);
    }

    #[test]
    fn inline_and_heap_keys_order_and_resolve_alike() {
        // Lengths around the inline limit, sharing prefixes, so that inline
        // and heap keys are compared with each other.
        let lens = [
            0,
            1,
            INLINE_KEY_BYTES - 1,
            INLINE_KEY_BYTES,
            INLINE_KEY_BYTES + 1,
            100,
        ];
        let keys: Vec<Vec<u8>> = lens.iter().map(|&n| vec![b'k'; n]).collect();
        let m = Memtable::new();
        for (i, k) in keys.iter().enumerate().rev() {
            m.insert(k, ts(10 + i as u64), Some(k));
            m.insert(k, ts(100), None);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                m.get(k, ts(99)),
                Some(Some(k.clone())),
                "key of {} bytes",
                k.len()
            );
            assert_eq!(m.get(k, ts(100)), Some(None));
            assert_eq!(m.newest_ts(k), Some(ts(100)));
            assert_eq!(m.get(k, ts(9 + i as u64)), None);
        }
        let mut c = MemCursor::new(&m);
        c.seek_to_first();
        let mut all: Vec<Vec<u8>> = Vec::new();
        while c.valid() {
            if all.last().map(Vec::as_slice) != Some(c.key()) {
                all.push(c.key().to_vec());
            }
            c.next();
        }
        assert_eq!(all, keys, "ascending by bytes whatever the storage");
    }
}
