//! [`MemFilter`]: a blocked bloom filter over a memtable's user keys, so a
//! point read of a key the memtable does not hold (most reads, once most
//! data is in tables) costs one cache line instead of a skiplist search
//! (12% of a point read before, decision 0028). The same hash and bit
//! layout as a table's version-2 filter (`sst::bloom`), so a read hashes a
//! key once for every memtable and table it probes.
//!
//! Invariant: a key is in the filter before its version is visible. The
//! apply stage inserts a commit's keys into the filter before its versions
//! into the skiplist (`Memtable::insert_commit`), and a commit
//! is visible only once the applied watermark passes it (a release store
//! after the inserts; readers load it with acquire before they read), so
//! a reader at `read_ts` finds in the filter every key with a version at
//! or below `read_ts`. A version above it may not be in the filter yet,
//! and the reader ignores it anyway. Loom model:
//! `loom_a_memtable_filter_never_hides_a_visible_version`.
//!
//! One inserter at a time: a memtable is written only by the apply stage,
//! which one waiter holds at a time (`wal::group_commit`, invariant of the
//! apply stage), or by recovery before the database is shared. So an
//! insert may set its bits with a plain load and store; readers only load.
//!
//! Sized once, at creation, for the memtable's share of the memory budget
//! (at least [`MIN_ENTRY_BYTES`] charged per entry): a memtable that holds
//! fewer keys has fewer false positives, one that holds more (a large last
//! commit) more, never a false negative.

use crate::sst::blocked_probe_bits;
use crate::sync::atomic::{AtomicU64, Ordering};

/// Bits per expected key (about 1% false positives with [`PROBES`]).
const BITS_PER_KEY: u64 = 10;
/// Probes per key, all in one 64-byte block.
const PROBES: u8 = 6;
/// Words per 512-bit block.
const BLOCK_WORDS: usize = 8;
/// The smallest charge of a memtable entry (the per-entry overhead plus a
/// one-byte key), which bounds the keys a memtable of a given share holds.
pub(crate) const MIN_ENTRY_BYTES: u64 = super::ENTRY_OVERHEAD_BYTES + 1;

/// One 512-bit block, on a cache line of its own, so that a probe costs
/// one line, not two (a block at an 8-byte-aligned offset straddles two
/// lines three times in four).
#[derive(Debug)]
#[repr(align(64))]
struct Block([AtomicU64; BLOCK_WORDS]);

impl Block {
    fn new() -> Self {
        Block(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MemFilter {
    blocks: Box<[Block]>,
}

impl MemFilter {
    /// A filter for a memtable flushed at about `share` bytes.
    pub(crate) fn for_share(share: u64) -> Self {
        let bits = (share / MIN_ENTRY_BYTES).saturating_mul(BITS_PER_KEY);
        let blocks = bits.div_ceil(512).clamp(1, u64::from(u32::MAX / 512));
        Self::with_blocks(usize::try_from(blocks).unwrap_or(1))
    }

    fn with_blocks(blocks: usize) -> Self {
        MemFilter {
            blocks: (0..blocks).map(|_| Block::new()).collect(),
        }
    }

    /// An empty filter of the same size.
    pub(crate) fn blank_like(&self) -> Self {
        Self::with_blocks(self.blocks.len())
    }

    /// Bytes of memory the filter holds.
    pub(crate) fn heap_bytes(&self) -> u64 {
        (self.blocks.len() * size_of::<Block>()) as u64
    }

    fn block_count(&self) -> u32 {
        // At most `u32::MAX / 512` blocks (`for_share`).
        u32::try_from(self.blocks.len()).unwrap_or(u32::MAX)
    }

    /// Adds a key by its hash (`sst::hash64`). Callers insert one at a time
    /// (module docs).
    pub(crate) fn insert(&self, hash: u64) {
        let mut masks = [0u64; BLOCK_WORDS];
        let mut block = 0;
        for bit in blocked_probe_bits(hash, PROBES, self.block_count()) {
            let word = bit as usize / 64;
            block = word / BLOCK_WORDS;
            if let Some(m) = masks.get_mut(word % BLOCK_WORDS) {
                *m |= 1 << (bit % 64);
            }
        }
        let Some(b) = self.blocks.get(block) else {
            return;
        };
        // A load and a store, not a `fetch_or`: there is one inserter at a
        // time (module docs), and a locked read-modify-write per word was
        // most of a bulk load's filter time (decision 0029).
        for (w, &mask) in b.0.iter().zip(masks.iter()) {
            if mask != 0 {
                let old = w.load(Ordering::Relaxed);
                if old & mask != mask {
                    w.store(old | mask, Ordering::Relaxed);
                }
            }
        }
    }

    /// False only if no key with this hash was inserted (before a
    /// happens-before edge the caller has, module docs).
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        blocked_probe_bits(hash, PROBES, self.block_count()).all(|bit| {
            let word = bit as usize / 64;
            self.blocks.get(word / BLOCK_WORDS).is_some_and(|b| {
                b.0.get(word % BLOCK_WORDS)
                    .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
            })
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sst::hash64;

    #[test]
    fn no_inserted_key_is_ever_missed_and_few_others_pass() {
        // Sized for 1000 keys of the smallest charge.
        let f = MemFilter::for_share(1000 * MIN_ENTRY_BYTES);
        assert_eq!(f.heap_bytes(), 1000 * BITS_PER_KEY / 512 * 64 + 64);
        for i in 0..1000u32 {
            f.insert(hash64(format!("key{i}").as_bytes()));
        }
        for i in 0..1000u32 {
            assert!(
                f.may_contain(hash64(format!("key{i}").as_bytes())),
                "key{i}"
            );
        }
        let passed = (0..10_000u32)
            .filter(|i| f.may_contain(hash64(format!("other{i}").as_bytes())))
            .count();
        assert!(passed < 300, "{passed} of 10000 false positives");
    }

    #[test]
    fn every_block_is_one_cache_line() {
        let f = MemFilter::for_share(1000 * MIN_ENTRY_BYTES);
        assert_eq!(f.blocks.as_ptr() as usize % 64, 0);
        assert_eq!(size_of::<Block>(), 64);
    }

    #[test]
    fn an_overfull_filter_still_misses_nothing() {
        let f = MemFilter::for_share(0);
        assert_eq!(f.heap_bytes(), 64, "one block at least");
        for i in 0..5000u32 {
            f.insert(hash64(&i.to_le_bytes()));
        }
        assert!((0..5000u32).all(|i| f.may_contain(hash64(&i.to_le_bytes()))));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Arc, thread};

    /// The apply stage inserts a key, then publishes the commit (a release
    /// store of the applied ts); a reader that sees the commit published
    /// (acquire) finds the key in the filter. Mutation check: publishing
    /// before the insert fails it.
    #[test]
    fn loom_a_memtable_filter_never_hides_a_visible_version() {
        loom::model(|| {
            let filter = Arc::new(MemFilter::for_share(0));
            let applied = Arc::new(AtomicU64::new(0));
            let (f, a) = (filter.clone(), applied.clone());
            let apply = thread::spawn(move || {
                f.insert(0x1234_5678_9abc_def0);
                a.store(1, Ordering::Release);
            });
            if applied.load(Ordering::Acquire) == 1 {
                assert!(filter.may_contain(0x1234_5678_9abc_def0));
            }
            apply.join().unwrap();
        });
    }
}
