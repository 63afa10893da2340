//! [`Arena`]: slots addressed by a `u32` index, allocated in chunks that
//! never move and are freed only with the arena, so a reader may hold a
//! `&T` for the arena's lifetime and the skiplist allocates once per chunk
//! instead of once per node.
//!
//! Layout: chunk sizes double from [`BASE_SLOTS`] up to [`CAP_SLOTS`], then
//! stay there (a small memtable wastes little; a large one allocates
//! rarely). Chunks sit in a directory of levels that double in turn, so
//! nothing is ever moved or reallocated: level `d` holds `2^d` chunk cells,
//! each set once. Every cell is a `OnceLock`: a reader that reaches an index
//! through a link it loaded with `Acquire` (skiplist invariant 2) finds the
//! chunk set, and `get` never blocks.
//!
//! One allocator at a time: only the skiplist's writer calls [`Arena::slot`]
//! (it holds the writer lock); readers call [`Arena::get`] only.

use crate::sync::OnceLock;
use crate::sync::atomic::{AtomicU64, Ordering};

/// Slots in the first chunk (under loom: tiny, so a model crosses chunks).
const BASE_SHIFT: u32 = if cfg!(loom) { 0 } else { 4 };
/// Slots in the largest chunk.
const CAP_SHIFT: u32 = if cfg!(loom) { 1 } else { 10 };
const BASE_SLOTS: u32 = 1 << BASE_SHIFT;
const CAP_SLOTS: u32 = 1 << CAP_SHIFT;
/// Slots in the chunks of doubling size, before the first of `CAP_SLOTS`.
const GROWING_SLOTS: u64 = (1u64 << BASE_SHIFT) * ((1u64 << (CAP_SHIFT - BASE_SHIFT + 1)) - 1);
/// Directory levels: `2^32 - 1` chunk cells, more than `u32` indexes need.
const DIR_LEVELS: usize = 32;

type Chunk<T> = Box<[T]>;
type Level<T> = Box<[OnceLock<Chunk<T>>]>;

/// See the module docs.
pub(super) struct Arena<T> {
    dir: [OnceLock<Level<T>>; DIR_LEVELS],
    /// Makes a fresh slot.
    init: fn() -> T,
    /// Bytes of the chunks and directory levels allocated so far.
    bytes: AtomicU64,
}

/// Where index `i` lives: directory level, cell in it, slot in the chunk,
/// and the chunk's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    level: usize,
    cell: usize,
    slot: usize,
    chunk_slots: usize,
}

fn place(i: u32) -> Place {
    let i = u64::from(i);
    let (chunk, slot, chunk_slots) = if i < GROWING_SLOTS {
        // Chunk c starts at BASE * (2^c - 1) and holds BASE * 2^c slots.
        let q = (i >> BASE_SHIFT) + 1;
        let c = q.ilog2();
        let start = u64::from(BASE_SLOTS) * ((1u64 << c) - 1);
        (u64::from(c), i - start, 1u64 << (BASE_SHIFT + c))
    } else {
        let j = i - GROWING_SLOTS;
        let first_capped = u64::from(CAP_SHIFT - BASE_SHIFT + 1);
        (
            first_capped + (j >> CAP_SHIFT),
            j & (u64::from(CAP_SLOTS) - 1),
            u64::from(CAP_SLOTS),
        )
    };
    // Directory level d holds cells for chunks 2^d - 1 .. 2^(d+1) - 1.
    let d = (chunk + 1).ilog2();
    Place {
        level: d as usize,
        cell: (chunk + 1 - (1u64 << d)) as usize,
        slot: slot as usize,
        chunk_slots: chunk_slots as usize,
    }
}

impl<T> Arena<T> {
    /// An empty arena whose slots start as `init()` makes them.
    pub(super) fn new(init: fn() -> T) -> Self {
        Arena {
            dir: std::array::from_fn(|_| OnceLock::new()),
            init,
            bytes: AtomicU64::new(0),
        }
    }

    /// Slot `i`, if its chunk is allocated.
    #[inline]
    pub(super) fn get(&self, i: u32) -> Option<&T> {
        let p = place(i);
        self.dir
            .get(p.level)?
            .get()?
            .get(p.cell)?
            .get()?
            .get(p.slot)
    }

    /// Slot `i`, allocating its chunk (and directory level) if need be;
    /// `None` past the directory's end (more than `u32` indexes).
    ///
    /// # Preconditions
    /// One caller at a time (module docs).
    pub(super) fn slot(&self, i: u32) -> Option<&T> {
        let p = place(i);
        let level = self.dir.get(p.level)?.get_or_init(|| {
            let cells = 1usize << p.level;
            self.charge(cells * size_of::<OnceLock<Chunk<T>>>());
            (0..cells).map(|_| OnceLock::new()).collect()
        });
        let chunk = level.get(p.cell)?.get_or_init(|| {
            self.charge(p.chunk_slots * size_of::<T>());
            (0..p.chunk_slots).map(|_| (self.init)()).collect()
        });
        chunk.get(p.slot)
    }

    /// The first index at or after `i` from which `n` slots lie in one
    /// chunk (`n` at most [`CAP_SLOTS`]; a chunk's unused tail is skipped).
    pub(super) fn run_start(mut i: u32, n: u32) -> u32 {
        debug_assert!(n <= CAP_SLOTS);
        loop {
            let p = place(i);
            if p.slot + n as usize <= p.chunk_slots {
                return i;
            }
            i = i.saturating_add((p.chunk_slots - p.slot) as u32);
        }
    }

    /// Bytes allocated so far (chunks and directory levels; the fixed
    /// directory root is part of the owner's size).
    pub(super) fn heap_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn charge(&self, bytes: usize) {
        // Only the one allocator adds (module docs): a load and a store.
        let old = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(old + bytes as u64, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn indexes_map_to_distinct_slots_chunk_after_chunk() {
        let (mut chunk, mut slot, mut chunk_slots) = (0u64, 0, BASE_SLOTS as usize);
        for i in 0..200_000u32 {
            let p = place(i);
            let d = (chunk + 1).ilog2();
            let cell = (chunk + 1 - (1 << d)) as usize;
            assert_eq!((p.level, p.cell, p.slot), (d as usize, cell, slot), "{i}");
            assert_eq!(p.chunk_slots, chunk_slots, "index {i}");
            slot += 1;
            if slot == chunk_slots {
                (chunk, slot) = (chunk + 1, 0);
                chunk_slots = (chunk_slots * 2).min(CAP_SLOTS as usize);
            }
        }
        let last = place(u32::MAX);
        assert!(last.level < DIR_LEVELS);
        assert!(last.slot < last.chunk_slots);
    }

    #[test]
    fn slots_stay_put_and_are_charged_once_per_chunk() {
        let arena: Arena<u64> = Arena::new(|| 7);
        assert_eq!(arena.get(0), None);
        for i in 0..5000u32 {
            let s = arena.slot(i).unwrap();
            assert_eq!(*s, 7);
        }
        let first = std::ptr::from_ref(arena.get(0).unwrap());
        let _ = arena.slot(100_000);
        assert_eq!(std::ptr::from_ref(arena.get(0).unwrap()), first);
        // Chunks up to index 5000 plus the one holding 100,000, each once.
        let mut chunks = std::collections::BTreeSet::new();
        for i in (0..5000u32).chain([100_000]) {
            let p = place(i);
            chunks.insert((p.level, p.cell, p.chunk_slots));
        }
        let chunk_bytes: usize = chunks.iter().map(|c| c.2 * size_of::<u64>()).sum();
        assert!(arena.heap_bytes() >= chunk_bytes as u64);
        assert!(arena.heap_bytes() < chunk_bytes as u64 + 4096);
    }

    #[test]
    fn a_run_never_crosses_a_chunk() {
        for i in 0..50_000u32 {
            for n in 1..=BASE_SLOTS {
                let s = Arena::<u8>::run_start(i, n);
                assert!(s >= i);
                let (a, b) = (place(s), place(s + n - 1));
                assert_eq!((a.level, a.cell), (b.level, b.cell), "{i} + {n}");
                assert!(s - i < n, "skips only the chunk's tail");
            }
        }
    }
}
