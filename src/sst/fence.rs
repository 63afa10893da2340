//! [`Fences`]: an in-memory summary of a table's index block, built at
//! open, so a seek's search over the data blocks runs over a dense array
//! of 8 bytes a block (in the CPU cache after a few reads) instead of a
//! binary search over the mapped index entries, where each probe decodes
//! an entry at a random offset (a cache miss each: 35% of a point read's
//! time before, decision 0025).
//!
//! Every key of a table starts with the common prefix of its smallest and
//! largest keys (the keys are sorted). A block's fence is the 8 bytes of
//! its last key after that prefix, zero-padded, read big-endian. For two
//! keys that both start with the prefix, `fence(a) < fence(b)` implies
//! `a < b` and `a <= b` implies `fence(a) <= fence(b)`: the first 8 bytes
//! past the prefix compare as the keys do, and padding with zeros only
//! makes a shorter key compare equal to, never above, a longer one that
//! extends it. So the blocks whose fence is below the target's lie
//! entirely below it, those whose fence is above lie entirely above, and
//! only blocks with an equal fence need the full comparison.

use super::block::BlockCursor;
use super::format::Handle;
use super::touch::touch;
use crate::codec::Cursor;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    /// Length of the prefix every key of the table shares.
    skip: usize,
    /// One fence per data block, in index order (non-decreasing).
    prefixes: Box<[u64]>,
    /// The last fence of every run of [`RUN`] fences: searched first, it
    /// is an eighth of the fences' size and stays in the CPU cache, and the
    /// run it names is one or two cache lines.
    tops: Box<[u64]>,
    /// Each data block's handle (the index entry's value), so a point get
    /// whose fence does not tie reads no index entry at all.
    handles: Box<[Handle]>,
}

/// Fences per run of [`Fences::tops`] (64 bytes of fences).
const RUN: usize = 8;

/// The 8 bytes of `key` after `skip`, zero-padded, big-endian.
#[allow(
    clippy::big_endian_bytes,
    reason = "in memory only: big-endian is what makes integer order the byte order"
)]
fn fence_of(key: &[u8], skip: usize) -> u64 {
    let mut bytes = [0u8; 8];
    let rest = key.get(skip..).unwrap_or_default();
    let n = rest.len().min(8);
    if let (Some(dst), Some(src)) = (bytes.get_mut(..n), rest.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(bytes)
}

/// Length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Fences {
    /// The fences of a validated index block (`contents`) whose keys lie
    /// between `smallest` and `largest`. `None` if the block does not
    /// decode (the caller validated it, so only on a broken invariant).
    pub(crate) fn build(contents: &[u8], smallest: &[u8], largest: &[u8]) -> Option<Fences> {
        let skip = common_prefix(smallest, largest);
        let mut fences = Vec::new();
        let mut handles = Vec::new();
        let mut c = BlockCursor::new(contents);
        c.seek_to_first(contents);
        while c.is_valid() {
            fences.push(fence_of(c.key(), skip));
            handles.push(Handle::decode(&mut Cursor::new(c.value(contents)))?);
            c.next(contents);
        }
        if c.is_corrupt() {
            return None;
        }
        Some(Fences::from_parts(skip, fences, handles))
    }

    fn from_parts(skip: usize, prefixes: Vec<u64>, handles: Vec<Handle>) -> Fences {
        Fences {
            skip,
            tops: prefixes
                .chunks(RUN)
                .filter_map(|run| run.last().copied())
                .collect(),
            prefixes: prefixes.into_boxed_slice(),
            handles: handles.into_boxed_slice(),
        }
    }

    /// Bytes of memory the fences hold.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.prefixes)
            + std::mem::size_of_val(&*self.tops)
            + std::mem::size_of_val(&*self.handles)
    }

    /// The first fence `>= target` (the count if none): every fence of
    /// the runs whose last fence is below `target` is below it (fences do
    /// not decrease), so the answer lies in the first run whose last fence
    /// is not, or past every run.
    fn lower_bound(&self, target: u64) -> usize {
        let run = self.tops.partition_point(|&f| f < target);
        let base = run.saturating_mul(RUN).min(self.prefixes.len());
        // The run's handles (two or three cache lines) load while its
        // fences are searched: the handle read next is among them.
        for i in [base, base + RUN / 2, base + RUN - 1] {
            touch(&self.handles, i);
        }
        let rest = self.prefixes.get(base..).unwrap_or_default();
        let within = rest.get(..RUN.min(rest.len())).unwrap_or_default();
        base + within.partition_point(|&f| f < target)
    }

    /// The handle of data block `ordinal`.
    /// Data blocks (one fence each).
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn handle(&self, ordinal: usize) -> Option<Handle> {
        self.handles.get(ordinal).copied()
    }

    /// The index entries a seek for `key` must still compare in full:
    /// `(lo, hi)` such that every block before `lo` ends below `key` (at
    /// any ts) and every block from `hi` on ends above it. `None` when
    /// `key` does not start with the table's common prefix (`smallest` is
    /// the table's smallest key), where fences say nothing.
    pub(crate) fn bounds(&self, smallest: &[u8], key: &[u8]) -> Option<(usize, usize)> {
        let prefix = smallest.get(..self.skip)?;
        if !key.starts_with(prefix) {
            return None;
        }
        let target = fence_of(key, self.skip);
        let lo = self.lower_bound(target);
        // Ties are rare and few (keys that agree on 8 bytes past the
        // prefix): gallop from `lo` rather than search the whole rest.
        let rest = self.prefixes.get(lo..).unwrap_or_default();
        let mut end = 0;
        let mut step = 1;
        while rest.get(end).is_some_and(|&f| f <= target) {
            let probe = end + step;
            if rest.get(probe).is_some_and(|&f| f <= target) {
                end = probe + 1;
                step *= 2;
            } else {
                let upto = rest.get(end..probe.min(rest.len())).unwrap_or_default();
                end += upto.partition_point(|&f| f <= target);
                break;
            }
        }
        Some((lo, lo + end))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fences_order_keys_as_the_keys_compare() {
        // Padding: a key and its extension by zero bytes tie, never invert.
        assert_eq!(fence_of(b"ab", 0), fence_of(b"ab\0", 0));
        assert!(fence_of(b"ab", 0) < fence_of(b"ab\x01", 0));
        assert!(fence_of(b"key09", 3) < fence_of(b"key10", 3));
        // Past 8 bytes only ties remain.
        assert_eq!(fence_of(b"123456789", 0), fence_of(b"123456780", 0));
        assert_eq!(common_prefix(b"key0001", b"key0099"), 5);
        assert_eq!(fence_of(b"ab", 5), 0, "a key shorter than the prefix");
    }

    proptest! {
        #[test]
        fn the_fence_order_never_contradicts_the_key_order(
            a in proptest::collection::vec(0u8..4, 0..12),
            b in proptest::collection::vec(0u8..4, 0..12),
            skip in 0usize..4,
        ) {
            let prefix = vec![7u8; skip];
            let ka = [prefix.as_slice(), &a].concat();
            let kb = [prefix.as_slice(), &b].concat();
            let (fa, fb) = (fence_of(&ka, skip), fence_of(&kb, skip));
            if fa < fb {
                prop_assert!(ka < kb);
            }
            if ka <= kb {
                prop_assert!(fa <= fb);
            }
        }

        #[test]
        #[allow(clippy::big_endian_bytes, reason = "the fence of a key is its big-endian value")]
        fn bounds_are_the_equal_range_of_the_target_fence(
            mut raw in proptest::collection::vec(0u64..40, 0..90),
            target in 0u64..45,
        ) {
            raw.sort_unstable();
            let f = Fences::from_parts(0, raw.clone(), Vec::new());
            let (lo, hi) = f.bounds(b"", &target.to_be_bytes()).unwrap();
            let want_lo = raw.iter().filter(|&&x| x < target).count();
            let want_hi = raw.iter().filter(|&&x| x <= target).count();
            prop_assert_eq!((lo, hi), (want_lo, want_hi));
        }
    }
}
