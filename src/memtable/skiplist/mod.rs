//! [`SkipList`]: the memtable's ordered map, a skiplist with one writer at
//! a time, lock-free readers, no removal and arena-allocated nodes (the
//! design of LevelDB's memtable skiplist; decision 0030).
//!
//! Nodes live in an [`Arena`] of chunks that never move, addressed by `u32`
//! index; a node's level-0 link sits in the node, its upper links (a quarter
//! of nodes have any) in a second arena of `AtomicU32`s, contiguous per node.
//! Heights are random with p = 1/4 per extra level, up to [`MAX_HEIGHT`],
//! from the writer's own xorshift generator.
//!
//! Invariants:
//! 1. A key is inserted at most once and never removed or changed; nodes are
//!    freed only when the whole list is dropped. So a reader borrows an entry
//!    for the list's lifetime, with no reference count and no epoch.
//! 2. A node is whole before it is reachable: the writer sets its entry
//!    (a `OnceLock`), its tower and its own links, and only then stores its
//!    index into each predecessor's link, level 0 first, with `Release`.
//!    Readers load links with `Acquire`, so a node they reach is whole; a
//!    linked node without an entry is a broken invariant (a debug assertion;
//!    release builds treat it as the end of the list).
//! 3. Finger insert: the writer keeps the predecessors of its last insert at
//!    every level. When the next key is above the last one and below the
//!    last one's level-0 successor, those are exactly its predecessors (the
//!    successors of the remembered nodes ascend with the level, so the
//!    level-0 check covers every level), and it links without a search: an
//!    ascending run costs O(height) and two key comparisons per insert.
//!    Otherwise it searches from the head.
//!
//! Concurrency: any number of readers beside one writer. The writer's state
//! (finger, generator, next free indexes) is behind a [`Mutex`] that
//! [`SkipList::writer`] takes, so a second writer waits instead of
//! corrupting the list; the memtable has one inserter at a time anyway (its
//! invariant 4), so the lock is uncontended and taken once per commit.
//! Readers take no lock. Loom model:
//! `loom_a_skiplist_reader_sees_every_published_version`.

mod arena;
#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;

use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::sync::{Mutex, MutexGuard, OnceLock};
use arena::Arena;

/// The tallest tower (4^12 = 16 M nodes before the top level thins out).
pub(crate) const MAX_HEIGHT: usize = if cfg!(loom) { 3 } else { 12 };
/// "No node": the end of a level.
const NIL: u32 = u32::MAX;
/// The head, as a predecessor (never a successor, so it shares NIL's value).
const HEAD: u32 = u32::MAX;
/// A tower word: the height above [`HEIGHT_SHIFT`], the index of the first
/// upper link below it.
const HEIGHT_SHIFT: u32 = 28;
const START_MASK: u32 = (1 << HEIGHT_SHIFT) - 1;

/// One node: the entry, set once before the node is linked (invariant 2),
/// its level-0 successor, and its tower word.
struct Node<K, V> {
    entry: OnceLock<(K, V)>,
    next: AtomicU32,
    tower: AtomicU32,
}

impl<K, V> Node<K, V> {
    fn blank() -> Self {
        Node {
            entry: OnceLock::new(),
            next: AtomicU32::new(NIL),
            tower: AtomicU32::new(0),
        }
    }
}

/// See the module docs.
pub(crate) struct SkipList<K, V> {
    head: [AtomicU32; MAX_HEIGHT],
    nodes: Arena<Node<K, V>>,
    links: Arena<AtomicU32>,
    len: AtomicUsize,
    writer: Mutex<WriterState>,
}

/// What the writer keeps between inserts.
struct WriterState {
    /// Predecessors of the last insert at every level, the last insert
    /// itself at the levels of its tower (HEAD where none).
    finger: [u32; MAX_HEIGHT],
    /// The last node inserted (NIL before the first).
    last: u32,
    rng: u64,
    next_node: u32,
    next_link: u32,
    /// Inserts that took the finger (tests check the fast path is taken).
    finger_hits: u64,
}

impl<K, V> std::fmt::Debug for SkipList<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<K: Ord, V> Default for SkipList<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// A position at an entry, borrowed from the list.
pub(crate) struct Pos<'a, K, V> {
    list: &'a SkipList<K, V>,
    idx: u32,
    entry: &'a (K, V),
}

impl<K, V> Clone for Pos<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Pos<'_, K, V> {}

impl<'a, K: Ord, V> Pos<'a, K, V> {
    pub(crate) fn key(&self) -> &'a K {
        &self.entry.0
    }

    pub(crate) fn value(&self) -> &'a V {
        &self.entry.1
    }

    /// The next entry in key order.
    pub(crate) fn next(&self) -> Option<Self> {
        self.list.pos(self.list.next_at(self.idx, 0))
    }

    /// The previous entry in key order (a search: nodes link forward only).
    pub(crate) fn prev(&self) -> Option<Self> {
        self.list.pos(self.list.descend(self.key(), false, None).0)
    }
}

impl<K, V> SkipList<K, V> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Bytes allocated for nodes and links (chunks and directories), for the
    /// memtable's accounting.
    pub(crate) fn heap_bytes(&self) -> u64 {
        self.nodes.heap_bytes() + self.links.heap_bytes()
    }
}

impl<K: Ord, V> SkipList<K, V> {
    pub(crate) fn new() -> Self {
        Self::with_seed(0x2545_f491_4f6c_dd1d)
    }

    /// A list whose tower heights come from `seed` (tests pick heights).
    pub(crate) fn with_seed(seed: u64) -> Self {
        SkipList {
            head: std::array::from_fn(|_| AtomicU32::new(NIL)),
            nodes: Arena::new(Node::blank),
            links: Arena::new(|| AtomicU32::new(NIL)),
            len: AtomicUsize::new(0),
            writer: Mutex::new(WriterState {
                finger: [HEAD; MAX_HEIGHT],
                last: NIL,
                rng: seed | 1,
                next_node: 0,
                next_link: 0,
                finger_hits: 0,
            }),
        }
    }

    /// The writer: inserts go through it. Takes the writer lock (module
    /// docs) until it is dropped.
    pub(crate) fn writer(&self) -> Writer<'_, K, V> {
        Writer {
            list: self,
            state: self.writer.lock(),
        }
    }

    /// The first entry.
    pub(crate) fn first(&self) -> Option<Pos<'_, K, V>> {
        self.pos(self.next_at(HEAD, 0))
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<Pos<'_, K, V>> {
        let mut pred = HEAD;
        for level in (0..MAX_HEIGHT).rev() {
            loop {
                let next = self.next_at(pred, level);
                if self.linked(next).is_none() {
                    break;
                }
                pred = next;
            }
        }
        self.pos(pred)
    }

    /// The first entry whose key is `>= probe`.
    pub(crate) fn lower_bound<Q>(&self, probe: &Q) -> Option<Pos<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        // The node the walk stopped at, not the link loaded again: the
        // writer may have linked a node below `probe` after `pred` since.
        let (_, succ) = self.descend(probe, false, None);
        self.pos(succ)
    }

    /// The last entry whose key is `<= probe`.
    pub(crate) fn upper_bound<Q>(&self, probe: &Q) -> Option<Pos<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.pos(self.descend(probe, true, None).0)
    }

    fn pos(&self, idx: u32) -> Option<Pos<'_, K, V>> {
        self.linked(idx).map(|entry| Pos {
            list: self,
            idx,
            entry,
        })
    }

    /// The entry of a node reached through a link (`None` for NIL or HEAD).
    #[inline]
    fn linked(&self, idx: u32) -> Option<&(K, V)> {
        if idx == NIL {
            return None;
        }
        let entry = self.nodes.get(idx).and_then(|n| n.entry.get());
        debug_assert!(entry.is_some(), "node {idx} is linked before it is whole");
        entry
    }

    /// The link out of `pred` (HEAD or a node) at `level`, if it has one.
    #[inline]
    fn link(&self, pred: u32, level: usize) -> Option<&AtomicU32> {
        if pred == HEAD {
            return self.head.get(level);
        }
        let node = self.nodes.get(pred)?;
        if level == 0 {
            return Some(&node.next);
        }
        // Relaxed: the Acquire load that led here ordered the tower's store.
        let tower = node.tower.load(Ordering::Relaxed);
        if level >= (tower >> HEIGHT_SHIFT) as usize {
            return None;
        }
        self.links.get((tower & START_MASK) + level as u32 - 1)
    }

    /// The successor of `pred` at `level` (NIL at the end).
    #[inline]
    fn next_at(&self, pred: u32, level: usize) -> u32 {
        self.link(pred, level)
            .map_or(NIL, |l| l.load(Ordering::Acquire))
    }

    /// Walks down from the head, at each level moving right while the next
    /// key is below `probe` (or equal too, when `inclusive`), and returns
    /// the last node passed (HEAD if none) and the level-0 node that
    /// stopped the walk (NIL at the end); `preds` gets each level's.
    ///
    /// The stopping node is the one compared, never a link loaded again
    /// afterwards: the writer may link a node between the two meanwhile,
    /// one that sorts below `probe` (a newer version of the same key), and
    /// a reader handed that node as "the first `>= probe`" would read a
    /// version above its snapshot.
    fn descend<Q>(
        &self,
        probe: &Q,
        inclusive: bool,
        mut preds: Option<&mut [u32; MAX_HEIGHT]>,
    ) -> (u32, u32)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut pred = HEAD;
        // The node that stopped the walk one level up: the same successor
        // one level down stops it again without a comparison.
        let mut stop = NIL;
        for level in (0..MAX_HEIGHT).rev() {
            loop {
                let next = self.next_at(pred, level);
                if next == stop {
                    break;
                }
                let Some((key, _)) = self.linked(next) else {
                    break;
                };
                match key.borrow().cmp(probe) {
                    CmpOrdering::Less => pred = next,
                    CmpOrdering::Equal if inclusive => pred = next,
                    _ => {
                        stop = next;
                        break;
                    }
                }
            }
            if let Some(slot) = preds.as_deref_mut().and_then(|p| p.get_mut(level)) {
                *slot = pred;
            }
        }
        (pred, stop)
    }
}

/// The one writer of a [`SkipList`] (module docs), holding its lock.
pub(crate) struct Writer<'a, K, V> {
    list: &'a SkipList<K, V>,
    state: MutexGuard<'a, WriterState>,
}

impl<K: Ord, V> Writer<'_, K, V> {
    /// Inserts `key` with `value`; `false` (and nothing changes) if the key
    /// is already there.
    ///
    /// # Panics
    /// Past 2^32 - 1 entries (or 2^28 upper links, about 800 M entries): a
    /// memtable is flushed at its share of the memory budget, and each entry
    /// is charged at least 81 bytes, so that is over 60 GB of memtable.
    pub(crate) fn insert(&mut self, key: K, value: V) -> bool {
        let list = self.list;
        let mut preds = self.state.finger;
        if self.finger_fits(&key) {
            self.state.finger_hits += 1;
        } else {
            let (_, succ) = list.descend(&key, false, Some(&mut preds));
            if list.linked(succ).is_some_and(|(k, _)| *k == key) {
                return false;
            }
        }
        let state = &mut *self.state;
        let height = random_height(&mut state.rng);
        let idx = state.next_node;
        let start = Arena::<AtomicU32>::run_start(state.next_link, (height - 1) as u32);
        let (Some(node), true) = (
            list.nodes.slot(idx).filter(|_| idx != NIL),
            start + height as u32 <= START_MASK,
        ) else {
            panic!("memtable skiplist full: {idx} entries, {start} upper links");
        };
        // Invariant 2: the node is whole before the first link to it.
        for (level, &pred) in preds.iter().enumerate().take(height).skip(1) {
            if let Some(link) = list.links.slot(start + level as u32 - 1) {
                link.store(list.next_at(pred, level), Ordering::Relaxed);
            }
        }
        node.next
            .store(list.next_at(preds[0], 0), Ordering::Relaxed);
        node.tower
            .store(((height as u32) << HEIGHT_SHIFT) | start, Ordering::Relaxed);
        if node.entry.set((key, value)).is_err() {
            unreachable!("node {idx} is fresh: indexes are handed out once");
        }
        for (level, &pred) in preds.iter().enumerate().take(height) {
            if let Some(link) = list.link(pred, level) {
                link.store(idx, Ordering::Release);
            }
        }
        for slot in preds.iter_mut().take(height) {
            *slot = idx;
        }
        state.finger = preds;
        state.last = idx;
        state.next_node = idx + 1;
        if height > 1 {
            state.next_link = start + height as u32 - 1;
        }
        list.len.store(state.next_node as usize, Ordering::Relaxed);
        true
    }

    /// Invariant 3: whether the finger holds `key`'s predecessors.
    fn finger_fits(&self, key: &K) -> bool {
        let (list, last) = (self.list, self.state.last);
        list.linked(last).is_some_and(|(k, _)| key > k)
            && list
                .linked(list.next_at(last, 0))
                .is_none_or(|(k, _)| key < k)
    }

    /// Inserts so far that took the finger (invariant 3).
    #[cfg(test)]
    pub(crate) fn finger_hits(&self) -> u64 {
        self.state.finger_hits
    }
}

/// 1 + one level per two zero bits at the bottom of a xorshift64 draw:
/// p = 1/4 per level, as LevelDB's.
fn random_height(rng: &mut u64) -> usize {
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    (1 + x.trailing_zeros() as usize / 2).min(MAX_HEIGHT)
}
