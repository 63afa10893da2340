//! A read-write transaction's buffered writes ([`WriteBuf`]) and what its
//! commit hands to the commit path ([`WriteSet`]); decision 0027.
//!
//! The buffer is the commit's WAL frame in the making: each `put` or
//! `delete` appends its operation, encoded as the WAL encodes it
//! (`wal::format::CommitFrameBuilder`), to one growing byte buffer, and an
//! ordered index maps each key (inline when short: `memtable::KeyBuf`) to
//! where its latest operation sits ([`OpAt`]). So a write costs no
//! allocation of its own (the buffer and the index's nodes grow in
//! amortized steps), and a commit whose keys were written in ascending
//! order, none twice (a bulk load), commits the buffer as its frame
//! without encoding anything again. Otherwise the commit re-encodes the
//! live operations in key order into a fresh frame.
//!
//! Invariants:
//! 1. The index holds one entry per key written, pointing at the key's
//!    latest operation in the buffer: reads, scans and the commit see
//!    last-write-wins, deletes included.
//! 2. `dead` is the encoded size of the buffer's operations no entry points
//!    at (overwritten). When it passes both the live bytes and
//!    [`COMPACT_AT_DEAD_BYTES`] the buffer is rewritten with the live
//!    operations only, so the buffer is at most about twice what it holds
//!    (a transaction that rewrites one key forever does not grow).
//! 3. While the index is `Sorted` (every key written was above all
//!    before it, the bulk-load case), the buffer's operations are exactly
//!    the live ones in strictly ascending key order, so the buffer is a
//!    valid commit frame as it is, and the index is a plain vector (a
//!    write costs one key comparison). The first key out of order turns
//!    it into a tree, for good.
//!
//! The commit's frame is shared ([`WriteSet`] holds it): the WAL batch
//! copies it, the conflict check reads its keys, and the memtable keeps
//! its values in place (`memtable::Value`).

use std::collections::{BTreeMap, btree_map};
use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::memtable::{InFrame, KeyBuf};
use crate::mvcc::WriteKeys;
use crate::wal::CommitFrameBuilder;
use crate::wal::format::{OpAt, UnsealedCommit};

/// The buffer is rewritten once its overwritten operations pass this many
/// bytes and the live ones (invariant 2).
pub(crate) const COMPACT_AT_DEAD_BYTES: usize = 64 * 1024;

/// Where each key's latest operation sits.
#[derive(Debug)]
enum Index {
    /// Every key written so far was above the one before (invariant 3):
    /// the buffer's operations are these, in order, and nothing else.
    Sorted(Vec<OpAt>),
    /// Keys came out of order, or twice.
    Tree(BTreeMap<KeyBuf, OpAt>),
}

/// A transaction's writes; see the module docs.
#[derive(Debug)]
pub(crate) struct WriteBuf {
    log: CommitFrameBuilder,
    index: Index,
    /// Encoded bytes of the operations no index entry points at.
    dead: usize,
}

impl Default for WriteBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteBuf {
    pub(crate) fn new() -> Self {
        WriteBuf {
            log: CommitFrameBuilder::with_capacity(0),
            index: Index::Sorted(Vec::new()),
            dead: 0,
        }
    }

    /// Number of keys written.
    pub(crate) fn len(&self) -> usize {
        match &self.index {
            Index::Sorted(ops) => ops.len(),
            Index::Tree(tree) => tree.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the buffer holds (the operations, overwritten ones included,
    /// and the frame's header); the index is not counted here.
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.log.bytes().len()
    }

    /// Whether `key` is above every key written (one comparison).
    fn is_above_all(&self, key: &[u8]) -> bool {
        let bytes = self.log.bytes();
        match &self.index {
            Index::Sorted(ops) => ops.last().is_none_or(|last| last.key(bytes) < key),
            Index::Tree(tree) => tree
                .last_key_value()
                .is_none_or(|(last, _)| last.as_slice() < key),
        }
    }

    /// The latest write of `key`: `None` if not written, `Some(None)` if
    /// deleted.
    #[expect(
        clippy::option_option,
        reason = "not written vs written as a delete: a read must not look past an own delete"
    )]
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        if self.is_above_all(key) {
            return None;
        }
        let bytes = self.log.bytes();
        let at = match &self.index {
            Index::Sorted(ops) => ops
                .binary_search_by(|at| at.key(bytes).cmp(key))
                .ok()
                .and_then(|i| ops.get(i))?,
            Index::Tree(tree) => tree.get(key)?,
        };
        Some(at.value(bytes))
    }

    /// Writes `value` under `key` (`None`: a delete). Fails only past the
    /// WAL's own limits, which `Txn::put` checks first; then nothing changed.
    pub(crate) fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let above_all = self.is_above_all(key);
        let at = match self.log.push(key, value) {
            Ok(at) => at,
            // Past the frame's limit with overwritten operations in the
            // way: the live ones may still fit (`Txn::put` checked them).
            Err(_) if self.dead > 0 => {
                self.compact()?;
                self.log.push(key, value)?
            }
            Err(e) => return Err(e),
        };
        if above_all {
            match &mut self.index {
                Index::Sorted(ops) => ops.push(at),
                Index::Tree(tree) => {
                    tree.insert(KeyBuf::new(key), at);
                }
            }
            return Ok(());
        }
        let old = self.put_in_tree(key, at);
        self.dead += old.map_or(0, |old| old.encoded_len());
        if self.dead > COMPACT_AT_DEAD_BYTES && self.dead > self.log.ops_bytes() - self.dead {
            self.compact()?;
        }
        Ok(())
    }

    /// Points `key` at `at` in the index, as a tree (converting a sorted
    /// one: a key came out of order); returns what it pointed at before.
    fn put_in_tree(&mut self, key: &[u8], at: OpAt) -> Option<OpAt> {
        let bytes = self.log.bytes();
        let mut tree = match std::mem::replace(&mut self.index, Index::Sorted(Vec::new())) {
            Index::Sorted(ops) => ops
                .iter()
                .map(|at| (KeyBuf::new(at.key(bytes)), *at))
                .collect(),
            Index::Tree(tree) => tree,
        };
        let old = match tree.get_mut(key) {
            Some(old) => Some(std::mem::replace(old, at)),
            None => tree.insert(KeyBuf::new(key), at),
        };
        self.index = Index::Tree(tree);
        old
    }

    /// Rewrites the buffer with the live operations, in key order.
    fn compact(&mut self) -> Result<()> {
        let mut log = CommitFrameBuilder::with_capacity(self.log.ops_bytes() - self.dead);
        let old = self.log.bytes();
        match &mut self.index {
            Index::Sorted(ops) => {
                for at in ops {
                    *at = log.push(at.key(old), at.value(old))?;
                }
            }
            Index::Tree(tree) => {
                for (key, at) in tree {
                    *at = log.push(key.as_slice(), at.value(old))?;
                }
            }
        }
        self.log = log;
        self.dead = 0;
        Ok(())
    }

    /// The writes whose keys fall within the bounds, ascending (and from
    /// the back, descending). The bounds must not cross (`BTreeMap::range`).
    pub(crate) fn range<'a>(&'a self, bounds: (Bound<&[u8]>, Bound<&[u8]>)) -> OwnRange<'a> {
        let bytes = self.log.bytes();
        let ops = match &self.index {
            Index::Sorted(ops) => {
                let below = |bound: Bound<&[u8]>, key: &[u8]| match bound {
                    Bound::Included(b) => key < b,
                    Bound::Excluded(b) => key <= b,
                    Bound::Unbounded => false,
                };
                let from = ops.partition_point(|at| below(bounds.0, at.key(bytes)));
                let to = ops.partition_point(|at| match bounds.1 {
                    Bound::Included(b) => at.key(bytes) <= b,
                    Bound::Excluded(b) => at.key(bytes) < b,
                    Bound::Unbounded => true,
                });
                Ops::Sorted(ops.get(from..to.max(from)).unwrap_or_default().iter())
            }
            Index::Tree(tree) => Ops::Tree(tree.range::<[u8], _>(bounds)),
        };
        OwnRange { ops, bytes }
    }

    /// The commit's frame and write set: the buffer itself when its index
    /// is sorted (invariant 3), else the live operations re-encoded in key
    /// order.
    pub(crate) fn into_commit(mut self) -> Result<(UnsealedCommit, WriteSet)> {
        if self.dead > 0 || matches!(self.index, Index::Tree(_)) {
            self.compact()?;
        }
        let ops = match self.index {
            Index::Sorted(ops) => ops,
            Index::Tree(tree) => tree.into_values().collect(),
        };
        let frame = self.log.finish();
        let set = WriteSet {
            frame: Arc::clone(frame.shared()),
            ops,
        };
        Ok((frame, set))
    }
}

#[derive(Debug, Clone)]
enum Ops<'a> {
    Sorted(std::slice::Iter<'a, OpAt>),
    Tree(btree_map::Range<'a, KeyBuf, OpAt>),
}

/// A transaction's own writes in a key range ([`WriteBuf::range`]):
/// `(key, value)` pairs, `None` for a delete, double-ended.
#[derive(Debug, Clone)]
pub(crate) struct OwnRange<'a> {
    ops: Ops<'a>,
    bytes: &'a [u8],
}

impl Default for OwnRange<'_> {
    fn default() -> Self {
        OwnRange {
            ops: Ops::Sorted([].iter()),
            bytes: &[],
        }
    }
}

impl<'a> Iterator for OwnRange<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let at = match &mut self.ops {
            Ops::Sorted(ops) => ops.next()?,
            Ops::Tree(range) => range.next()?.1,
        };
        Some((at.key(self.bytes), at.value(self.bytes)))
    }
}

impl DoubleEndedIterator for OwnRange<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let at = match &mut self.ops {
            Ops::Sorted(ops) => ops.next_back()?,
            Ops::Tree(range) => range.next_back()?.1,
        };
        Some((at.key(self.bytes), at.value(self.bytes)))
    }
}

/// The write set of a committing transaction: its WAL frame (shared) and
/// where each operation sits in it, ascending by key, one per key.
#[derive(Debug)]
pub(crate) struct WriteSet {
    frame: Arc<[u8]>,
    ops: Vec<OpAt>,
}

impl WriteSet {
    /// The operations, ascending by key, each value a range of the shared
    /// frame (the memtable keeps it in place).
    pub(crate) fn ops(&self) -> impl Iterator<Item = (&[u8], Option<InFrame<'_>>)> + Clone {
        self.ops.iter().map(|at| {
            let value = at
                .value_range()
                .map(|range| InFrame::new(&self.frame, range));
            (at.key(&self.frame), value)
        })
    }
}

impl WriteKeys for WriteSet {
    fn key_count(&self) -> usize {
        self.ops.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        self.ops.get(i).map_or(&[], |at| at.key(&self.frame))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::Bound;

    use proptest::prelude::*;

    use super::*;
    use crate::types::{Lsn, Ts};
    use crate::wal::format::{CommitHeader, Frame, decode_frame, seal_commit};

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, Vec<u8>),
        Delete(u8),
        Get(u8),
        Scan(u8, u8, bool),
    }

    fn key(k: u8) -> Vec<u8> {
        // Some keys longer than the inline limit, sharing prefixes.
        if k.is_multiple_of(7) {
            let mut long = vec![b'k'; 30];
            long.push(k);
            long
        } else {
            vec![b'k', k]
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0u8..40).prop_map(Op::Delete),
            2 => (0u8..40).prop_map(Op::Get),
            1 => (0u8..40, 0u8..40, any::<bool>()).prop_map(|(a, b, rev)| Op::Scan(a, b, rev)),
        ]
    }

    /// The frame a commit of `buf` hands to the WAL, decoded.
    fn committed(buf: WriteBuf) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let (frame, set) = buf.into_commit().expect("a small write set commits");
        let from_set: Vec<_> = set
            .ops()
            .map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec())))
            .collect();
        let keys: Vec<_> = (0..set.key_count()).map(|i| set.key(i).to_vec()).collect();
        let mut out = Vec::new();
        let header = CommitHeader {
            lsn: Lsn(1),
            commit_ts: Ts::from(5),
            epoch: 1,
            prev_crc: 0,
        };
        seal_commit(&frame, &header, &mut out);
        let (Frame::Commit(rec), used) = decode_frame(&out, 0).expect("a sealed frame decodes")
        else {
            panic!("not a commit frame");
        };
        assert_eq!(used, out.len());
        let from_wal: Vec<_> = rec
            .ops()
            .map(|op| (op.key.to_vec(), op.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(from_set, from_wal, "the set and the WAL record agree");
        assert_eq!(
            keys,
            from_wal.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "the conflict check sees the record's keys"
        );
        from_wal
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against a `BTreeMap` model: gets, scans in both directions and
        /// the committed frame see the last write of every key.
        #[test]
        fn matches_a_btreemap(ops in proptest::collection::vec(op(), 0..200)) {
            let mut buf = WriteBuf::new();
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        buf.put(&key(k), Some(&v)).unwrap();
                        model.insert(key(k), Some(v));
                    }
                    Op::Delete(k) => {
                        buf.put(&key(k), None).unwrap();
                        model.insert(key(k), None);
                    }
                    Op::Get(k) => {
                        let want = model.get(&key(k)).map(|v| v.as_deref());
                        prop_assert_eq!(buf.get(&key(k)), want);
                    }
                    Op::Scan(a, b, rev) => {
                        let (lo, hi) = (key(a.min(b)), key(a.max(b)));
                        if lo > hi { continue; }
                        let bounds = (Bound::Included(lo.as_slice()), Bound::Excluded(hi.as_slice()));
                        let want: Vec<_> = model
                            .range::<[u8], _>(bounds)
                            .map(|(k, v)| (k.as_slice(), v.as_deref()))
                            .collect();
                        let mut got: Vec<_> = if rev {
                            buf.range(bounds).rev().collect()
                        } else {
                            buf.range(bounds).collect()
                        };
                        if rev { got.reverse(); }
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(buf.len(), model.len());
            }
            let want: Vec<_> = model.into_iter().collect();
            prop_assert_eq!(committed(buf), want);
        }
    }

    #[test]
    fn ascending_writes_commit_the_buffer_as_it_is() {
        let mut buf = WriteBuf::new();
        for i in 0..100u32 {
            buf.put(format!("{i:08}").as_bytes(), Some(b"v")).unwrap();
        }
        assert!(matches!(buf.index, Index::Sorted(_)));
        let appended = buf.log.bytes().to_vec();
        let (frame, set) = buf.into_commit().unwrap();
        assert_eq!(set.key_count(), 100);
        assert_eq!(
            &frame.shared()[..],
            &appended[..],
            "the buffer is the frame"
        );
        let mut buf = WriteBuf::new();
        buf.put(b"b", Some(b"1")).unwrap();
        buf.put(b"a", Some(b"2")).unwrap();
        assert!(
            matches!(buf.index, Index::Tree(_)),
            "a key below the last one"
        );
        let mut buf = WriteBuf::new();
        buf.put(b"a", Some(b"1")).unwrap();
        buf.put(b"a", None).unwrap();
        assert!(
            matches!(buf.index, Index::Tree(_)) && buf.dead > 0,
            "an overwrite"
        );
        assert_eq!(committed(buf), vec![(b"a".to_vec(), None)]);
    }

    #[test]
    fn rewriting_one_key_keeps_the_buffer_bounded() {
        let mut buf = WriteBuf::new();
        let value = vec![7u8; 1000];
        for _ in 0..10_000 {
            buf.put(b"hot", Some(&value)).unwrap();
        }
        assert_eq!(buf.len(), 1);
        assert!(
            buf.buffer_bytes() < 2 * COMPACT_AT_DEAD_BYTES + 2 * 1010,
            "{} bytes buffered for one live key",
            buf.buffer_bytes()
        );
        assert_eq!(committed(buf), vec![(b"hot".to_vec(), Some(value))]);
    }
}
