//! Views (LevelDB's and RocksDB's "super-version"): the memtables and
//! tables that together hold every version, as one immutable value a
//! snapshot reads through until a newer one is installed.
//!
//! Invariants:
//! 1. **Newer sources hold newer versions.** For any key, every version in
//!    a source listed earlier (`mem`, then `imm` newest first, then the
//!    tables of level 0 newest first, then the deeper levels) has a larger
//!    commit ts than every version of that key in a source listed later.
//!    Commits are applied in ts order into the active memtable, a memtable
//!    is frozen whole and flushed whole, and compaction merges neighbours.
//!    So a point read stops at the first source that has a version at or
//!    below its read ts.
//! 2. **A view never changes.** Freeze, flush and compaction install a
//!    new view; whoever holds the old one (a snapshot until its next
//!    operation, a scan for its life) reads it unchanged, and a table
//!    stays mapped while any view lists it (`docs/unsafe.md`).
//! 3. **A view taken after a snapshot registered holds every commit the
//!    snapshot can see.** Versions only move (memtable -> table, tables ->
//!    compacted table) through one `install` that publishes the new place
//!    and drops the old one together, and nothing at or above the GC
//!    watermark (which the snapshot holds at or below its read ts) is ever
//!    dropped.
//!
//! Freeze (`Views::freeze`) and flush (`Views::replace_flushed`, in
//! `flush.rs`) install new views; decision 0017 gives the protocol.
//!
//! **Re-taking the view** (decision 0032, `docs/concurrency.md` protocol 9).
//! Every install bumps [`Views`]' generation, under the write lock that
//! installs it, and the view records the generation it was installed at. A
//! snapshot reads through a [`SnapshotView`]: at the start of each
//! operation it compares the generation with its view's (one load of a
//! cache line written only by installs) and, when they differ, takes the
//! current view instead. By invariant 3 the newer view answers exactly as
//! the older one did, and the older one, with the flushed memtables and
//! compacted-away tables only it lists, is released. A scan or cursor holds
//! its own `Arc` of the view it began on (`cursor.rs`), so the snapshot may
//! move on while it reads.

use std::ops::Bound;
use std::sync::Arc;

use crate::budget::Account;
use crate::error::Result;
use crate::iter::{AnySource, LevelIter};
use crate::memtable::{MemCursor, Memtable};
use crate::sst::{Found, Probe, Table};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{RwLock, RwLockReadGuard};
use crate::types::Ts;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct View {
    /// The memtable commits are applied to.
    pub(crate) mem: Arc<Memtable>,
    /// Frozen memtables waiting for their flush, newest first.
    pub(crate) imm: Vec<Arc<Memtable>>,
    /// Tables per level: level 0 newest first (key ranges may overlap);
    /// deeper levels sorted by key, with disjoint ranges.
    pub(crate) levels: Vec<Vec<Arc<Table>>>,
    /// The install that made it current (0: the view a database opens with).
    generation: u64,
}

impl View {
    /// A view of one (recovered or empty) memtable over the tables of
    /// each level (level 0 newest first).
    pub(crate) fn new(mem: Memtable, levels: Vec<Vec<Arc<Table>>>) -> View {
        View {
            mem: Arc::new(mem),
            imm: Vec::new(),
            levels,
            generation: 0,
        }
    }

    /// Tables in the view.
    pub(crate) fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// The memtables, newest first.
    fn memtables(&self) -> impl Iterator<Item = &Memtable> {
        std::iter::once(self.mem.as_ref()).chain(self.imm.iter().map(AsRef::as_ref))
    }

    /// The value of `key` at `read_ts` (`None`: absent or deleted).
    ///
    /// The filters of every table the read may probe are loaded first, all
    /// together, so their cache misses overlap each other and the memtable
    /// search instead of following one another (`sst::touch`).
    pub(crate) fn get(&self, key: &[u8], read_ts: Ts) -> Result<Option<Vec<u8>>> {
        let probe = Probe::new(key);
        self.candidates(key).for_each(|t| t.touch(&probe));
        for mem in self.memtables() {
            if let Some(found) = mem.get_hashed(key, probe.hash(), read_ts) {
                return Ok(found);
            }
        }
        for t in self.candidates(key) {
            match t.get_probe(&probe, read_ts)? {
                Some(Found::Value(v)) => return Ok(Some(v)),
                Some(Found::Tombstone) => return Ok(None),
                None => {}
            }
        }
        Ok(None)
    }

    /// The tables a point read of `key` probes, in the order it probes
    /// them: level 0's tables covering `key`, newest first, then the one
    /// table of each deeper level that covers it.
    fn candidates<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a Arc<Table>> + 'a {
        let (l0, deeper): (&[Arc<Table>], &[Vec<Arc<Table>>]) = match self.levels.split_first() {
            Some((l0, deeper)) => (l0, deeper),
            None => (&[], &[]),
        };
        l0.iter().filter(move |t| t.covers(key)).chain(
            deeper
                .iter()
                .filter_map(move |tables| covering(tables, key)),
        )
    }

    /// The commit ts of the newest version of `key` held in memory (the
    /// conflict check's lookup).
    pub(crate) fn newest_in_memory(&self, key: &[u8]) -> Option<Ts> {
        self.memtables().find_map(|m| m.newest_ts(key))
    }

    /// One cursor per source, newest first, for a merging iterator.
    #[cfg(test)]
    pub(crate) fn sources(&self) -> Vec<AnySource<'_>> {
        self.sources_in(&Bound::Unbounded, &Bound::Unbounded)
    }

    /// [`View::sources`] for a scan between `start` and `end`: tables (and
    /// whole levels) whose key range lies outside the bounds are left out,
    /// so a scan seeks only sources that can hold a row of it. Empty
    /// memtables are left out too.
    pub(crate) fn sources_in(
        &self,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
    ) -> Vec<AnySource<'_>> {
        let overlaps = |smallest: &[u8], largest: &[u8]| {
            let after_start = match start {
                Bound::Included(s) | Bound::Excluded(s) => largest >= s.as_slice(),
                Bound::Unbounded => true,
            };
            let before_end = match end {
                Bound::Included(e) | Bound::Excluded(e) => smallest <= e.as_slice(),
                Bound::Unbounded => true,
            };
            after_start && before_end
        };
        // One allocation: room for every source the view has.
        let level0 = self.levels.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(1 + self.imm.len() + level0 + self.levels.len());
        for mem in self.memtables().filter(|m| m.len() > 0) {
            out.push(AnySource::Mem(MemCursor::new(mem)));
        }
        let mut levels = self.levels.iter();
        // Level 0's tables overlap: each is a source of its own.
        for t in levels.next().into_iter().flatten() {
            let p = t.properties();
            if overlaps(&p.smallest_key, &p.largest_key) {
                out.push(AnySource::Table(crate::sst::TableIter::borrowed(t)));
            }
        }
        // A deeper level is sorted and disjoint: one source walks it all.
        for tables in levels {
            if let (Some(first), Some(last)) = (tables.first(), tables.last()) {
                let (a, b) = (first.properties(), last.properties());
                if overlaps(&a.smallest_key, &b.largest_key) {
                    out.push(AnySource::Level(LevelIter::new(tables)));
                }
            }
        }
        out
    }

    /// Bytes and versions held by the memtables.
    pub(crate) fn memtable_usage(&self) -> (u64, u64) {
        self.memtables().fold((0, 0), |(b, v), m| {
            (b + m.approximate_bytes(), v + m.len() as u64)
        })
    }
}

/// The table of a sorted, disjoint level whose key range holds `key`.
fn covering<'a>(tables: &'a [Arc<Table>], key: &[u8]) -> Option<&'a Arc<Table>> {
    let i = tables.partition_point(|t| t.properties().largest_key.as_slice() < key);
    tables
        .get(i)
        .filter(|t| t.properties().smallest_key.as_slice() <= key)
}

/// The current view, replaced whole by freeze, flush and compaction.
#[derive(Debug)]
pub(crate) struct Views {
    current: RwLock<Arc<View>>,
    /// The current view's generation, stored under `current`'s write lock
    /// by each install, for snapshots to compare with their own view's
    /// without taking the lock.
    generation: Generation,
    /// Memtables flushed to tables that an older view still holds
    /// ([`Views::release_flushed`]).
    pinned: Arc<Account>,
}

/// A cache line of its own: `Views::current`'s lock word is written by
/// every reader that takes the view, this only by installs, and every
/// snapshot operation loads it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Generation(AtomicU64);

impl Views {
    pub(crate) fn new(view: View) -> Self {
        Self {
            generation: Generation(AtomicU64::new(view.generation)),
            current: RwLock::new(Arc::new(view)),
            pinned: Arc::default(),
        }
    }

    /// `f` of the current view, read under the lock, without a handle on
    /// it: a background task that only looks (compaction's picker) then
    /// never holds a view an install replaced, so never keeps a flushed
    /// memtable alive. Installs wait while `f` runs: keep it short.
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.current.read())
    }

    /// The flusher lets go of memtable `m` once it has installed a view
    /// without it (`replace_flushed`). If an older view still lists it (a
    /// snapshot that has not read since, a scan), it is counted as pinned
    /// from here until it is freed; if not, it is freed now, uncounted.
    /// No view can take a new handle on `m` (none lists it any more), so
    /// the count can only fall meanwhile.
    pub(crate) fn release_flushed(&self, m: Arc<Memtable>) {
        if Arc::strong_count(&m) > 1 {
            m.retire(&self.pinned);
        }
        drop(m);
    }

    /// The current view, and the bytes of the flushed memtables that only
    /// older views hold, read together: a flush retires its memtable only
    /// after installing a view without it, so a memtable is never counted
    /// in both (for a moment it may be in neither).
    pub(crate) fn current_and_pinned(&self) -> (Arc<View>, u64) {
        let current = self.current.read();
        (Arc::clone(&current), self.pinned.bytes())
    }

    /// The view to read (a snapshot takes it after registering its read ts).
    pub(crate) fn current(&self) -> Arc<View> {
        Arc::clone(&self.current.read())
    }

    /// The current view's generation. An install that happened before this
    /// load is seen (it stored a larger number; one it races with may not
    /// be: a snapshot then re-takes at its next operation).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.0.load(Ordering::Acquire)
    }

    /// Makes `view` current, one generation after the view it replaces.
    /// Requires: `current` is the guarded value of `self.current`'s write
    /// lock, so installs are numbered in the order they happen.
    fn install(&self, current: &mut Arc<View>, mut view: View) {
        view.generation = current.generation + 1;
        let generation = view.generation;
        *current = Arc::new(view);
        self.generation.0.store(generation, Ordering::Release);
    }

    /// Freezes the active memtable: a new view whose active memtable is
    /// empty and whose newest frozen one is the old active one. Called by
    /// the apply stage between two batches (the only inserter), so the
    /// frozen memtable holds whole commits. Returns the frozen count.
    pub(crate) fn freeze(&self) -> usize {
        let mut current = self.current.write();
        let old = &**current;
        let imm: Vec<Arc<Memtable>> = std::iter::once(Arc::clone(&old.mem))
            .chain(old.imm.iter().cloned())
            .collect();
        let frozen = imm.len();
        let view = View {
            mem: Arc::new(old.mem.successor()),
            imm,
            levels: old.levels.clone(),
            generation: 0,
        };
        self.install(&mut current, view);
        frozen
    }

    /// Replaces frozen memtable `flushed` by `table`, newest in level 0:
    /// one install, so every view lists the versions exactly once (in the
    /// memtable, or in the table).
    /// (`table` is `None` only in the loom model, which has no files.)
    pub(crate) fn replace_flushed(&self, flushed: &Arc<Memtable>, table: Option<Arc<Table>>) {
        let mut current = self.current.write();
        let old = &**current;
        let imm = old
            .imm
            .iter()
            .filter(|m| !Arc::ptr_eq(m, flushed))
            .cloned()
            .collect();
        let mut levels = old.levels.clone();
        if levels.is_empty() {
            levels.push(Vec::new());
        }
        if let (Some(l0), Some(table)) = (levels.first_mut(), table) {
            l0.insert(0, table);
        }
        let view = View {
            mem: Arc::clone(&old.mem),
            imm,
            levels,
            generation: 0,
        };
        self.install(&mut current, view);
    }
}

impl Views {
    /// A compaction's install: the tables `removed` (with their level) out
    /// and `added` in, in one new view (invariant 3), levels >= 1 kept
    /// sorted by key. Memtables and the other tables are the current
    /// view's, so a flush installed meanwhile stays. A table moved down is
    /// in both lists.
    pub(crate) fn replace_compacted(
        &self,
        removed: &[(usize, Arc<Table>)],
        added: &[(usize, Arc<Table>)],
    ) {
        let mut current = self.current.write();
        let old = &**current;
        let mut levels = old.levels.clone();
        for (level, t) in removed {
            if let Some(tables) = levels.get_mut(*level) {
                tables.retain(|x| !Arc::ptr_eq(x, t));
            }
        }
        for (level, t) in added {
            if levels.len() <= *level {
                levels.resize_with(level + 1, Vec::new);
            }
            if let Some(tables) = levels.get_mut(*level) {
                tables.push(Arc::clone(t));
            }
        }
        for tables in levels.iter_mut().skip(1) {
            tables.sort_by(|a, b| {
                a.properties()
                    .smallest_key
                    .cmp(&b.properties().smallest_key)
            });
        }
        let view = View {
            mem: Arc::clone(&old.mem),
            imm: old.imm.clone(),
            levels,
            generation: 0,
        };
        self.install(&mut current, view);
    }
}

/// The view one snapshot reads through (decision 0032): taken when the
/// snapshot registers, and re-taken at the start of an operation once a
/// newer view has been installed, so the snapshot stops holding the
/// memtables and tables that only its old view listed.
///
/// Invariants (`docs/concurrency.md` protocol 9):
/// 1. Every view it holds was taken after the snapshot registered (the
///    caller registers first), so it holds every commit the snapshot sees
///    (invariant 3): re-taking never changes an answer.
/// 2. An operation that begins after an install happened before it reads
///    through that install's view or a newer one, unless another operation
///    of the same snapshot is reading at that moment (then it reads
///    through the older view, which is still correct by 1, and the next
///    operation re-takes).
///
/// Concurrency: the slot is a `RwLock` of its own, taken shared for the
/// length of one operation (uncontended unless one snapshot is used from
/// several threads at once) and exclusively only with `try_write`, so an
/// operation never waits for another.
#[derive(Debug)]
pub(crate) struct SnapshotView {
    slot: RwLock<Arc<View>>,
}

impl SnapshotView {
    /// The current view. Requires: the snapshot has registered (invariant 1).
    pub(crate) fn take(views: &Views) -> Self {
        SnapshotView {
            slot: RwLock::new(views.current()),
        }
    }

    /// The view for one operation: this snapshot's own, or the current one
    /// if a newer view was installed since it was taken.
    pub(crate) fn read(&self, views: &Views) -> RwLockReadGuard<'_, Arc<View>> {
        let view = self.slot.read();
        if view.generation == views.generation() {
            return view;
        }
        drop(view);
        // Not while another operation of this snapshot reads the old view
        // (invariant 2): it would have to wait for that one to end.
        if let Some(mut slot) = self.slot.try_write() {
            let old = std::mem::replace(&mut *slot, views.current());
            drop(slot);
            // Freed here if it was the last holder (a flushed memtable's
            // arena, obsolete tables' files), outside the lock.
            drop(old);
        }
        self.slot.read()
    }
}

#[cfg(all(test, not(loom)))]
#[allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]
mod tests {
    use std::sync::Arc;

    use crate::types::Lsn;
    use crate::vfs::MemVfs;
    use crate::{Db, Options};

    fn commit(db: &Db, key: &[u8]) {
        let mut t = db.begin();
        t.put(key, b"v").unwrap();
        t.commit().unwrap();
    }

    /// The memory itself goes, not just its count: a weak handle on a
    /// memtable flushed after a snapshot began dies at the snapshot's next
    /// read, or, when a scan opened before the flush is still alive, when
    /// that scan is dropped.
    #[test]
    fn a_flushed_memtable_is_freed_at_the_snapshots_next_read_or_its_scans_drop() {
        let db = Db::open_with_vfs("/db", Options::default(), Arc::new(MemVfs::new())).unwrap();
        let active = |db: &Db| Arc::downgrade(&db.inner.engine.core.views.current().mem);
        let settle = |db: &Db| {
            db.flush().unwrap();
            db.wait_for_compactions().unwrap();
        };
        commit(&db, b"a");
        let snap = db.begin_read();
        let first = active(&db);
        settle(&db);
        assert!(first.upgrade().is_some(), "the snapshot's view holds it");
        assert_eq!(snap.get(b"a").unwrap(), Some(b"v".to_vec()));
        assert!(
            first.upgrade().is_none(),
            "freed at the snapshot's next read"
        );

        let second = active(&db);
        let scan = snap.scan(..).unwrap();
        commit(&db, b"c");
        settle(&db);
        assert_eq!(snap.get(b"b").unwrap(), None);
        assert!(second.upgrade().is_some(), "the scan's own view holds it");
        let rows: Vec<_> = scan.map(Result::unwrap).collect();
        assert_eq!(rows, [(b"a".to_vec(), b"v".to_vec())]);
        assert!(second.upgrade().is_none(), "freed with the scan");

        // A read-write transaction's reads re-take too.
        drop(snap);
        let txn = db.begin();
        let third = active(&db);
        commit(&db, b"b");
        settle(&db);
        assert_eq!(txn.get(b"b").unwrap(), None);
        assert!(
            third.upgrade().is_none(),
            "freed at the transaction's next read"
        );
        drop(txn);
        db.close().unwrap();
    }

    #[test]
    fn the_memtable_knows_the_last_wal_record_it_holds_across_reopens() {
        let vfs = Arc::new(MemVfs::new());
        let open = || Db::open_with_vfs("/db", Options::default(), vfs.clone()).unwrap();
        let last = |db: &Db| db.inner.engine.core.views.current().mem.last_lsn();
        let db = open();
        assert_eq!(last(&db), Lsn(0));
        for k in [b"a", b"b", b"c"] {
            commit(&db, k);
        }
        assert_eq!(last(&db), Lsn(3));
        // A read-only transaction and an empty commit write no record.
        db.begin().commit().unwrap();
        assert_eq!(last(&db), Lsn(3));
        db.close().unwrap();
        let db = open();
        assert_eq!(last(&db), Lsn(3), "recovery notes each replayed record");
        commit(&db, b"d");
        assert_eq!(last(&db), Lsn(4));
        db.close().unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::Arc;

    use super::{View, Views};
    use crate::commit::{hand_off_flushed, newest_ts};
    use crate::memtable::Memtable;
    use crate::mvcc::RecentWrites;
    use crate::sync::thread;
    use crate::types::Ts;

    /// A flush hands frozen memtable `M` (holding `k` at ts 5, above the GC
    /// watermark 1) off while a committer's conflict check looks `k` up:
    /// in every interleaving the check finds ts 5 (in `M` through the old
    /// view, or in the recent-writes index), so "first committer wins"
    /// never misses a flushed write. Mutation check: installing the view
    /// before noting the keys makes the lookup see neither.
    #[test]
    fn loom_flush_hand_off_never_hides_a_write_from_the_conflict_check() {
        loom::model(|| {
            let mem = Memtable::new();
            mem.insert(b"k", Ts::from(5), Some(b"v"));
            let views = Arc::new(Views::new(View::new(mem, Vec::new())));
            views.freeze();
            let recent = Arc::new(RecentWrites::default());
            let m = Arc::clone(&views.current().imm[0]);
            let (v, r) = (Arc::clone(&views), Arc::clone(&recent));
            let flusher = thread::spawn(move || {
                let newest = [(b"k".to_vec(), Ts::from(5))];
                hand_off_flushed(&v, &r, Ts::from(1), &m, newest, None);
            });
            assert_eq!(
                newest_ts(&views.current(), &recent, b"k"),
                Some(Ts::from(5))
            );
            flusher.join().unwrap();
            assert!(views.current().imm.is_empty());
            assert_eq!(
                newest_ts(&views.current(), &recent, b"k"),
                Some(Ts::from(5))
            );
        });
    }

    /// A snapshot's view (`SnapshotView`, protocol 9) across a flush of
    /// memtable `M` holding `k` at ts 5: the flush installs a view with
    /// `M`'s table instead, while a spawned reader runs two operations of
    /// a snapshot at ts 5, the first keeping a scan's own handle on its
    /// view. In every interleaving each operation and the scan read `k`;
    /// an operation that began after the install (the flag, stored after
    /// it) reads through the new view; and once the reader has joined, the
    /// snapshot's next operation lets `M` go. Mutation checks: an install
    /// that does not store the generation fails the flag's assertion; a
    /// re-take that waits for the write lock while its own read guard is
    /// held deadlocks.
    #[test]
    fn loom_a_snapshot_re_takes_the_view_after_a_flush_and_lets_the_memtable_go() {
        use std::sync::atomic::AtomicUsize;

        use super::SnapshotView;
        use crate::sst::{Table, TableBuilder, TableOptions};
        use crate::sync::atomic::{AtomicBool, Ordering};
        use crate::vfs::{MemVfs, Vfs};

        static RUNS: AtomicUsize = AtomicUsize::new(0);
        loom::model(|| {
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let vfs: Arc<dyn Vfs> = Arc::new(MemVfs::new());
            let path = std::path::Path::new("/t/1.sst");
            vfs.create_dir_all(std::path::Path::new("/t")).unwrap();
            let mut b = TableBuilder::create(vfs.as_ref(), path, TableOptions::default()).unwrap();
            b.add(b"k", Ts::from(5), Some(b"v")).unwrap();
            b.finish(1).unwrap();
            let table = Arc::new(Table::open(vfs.as_ref(), path).unwrap());
            let mem = Memtable::new();
            mem.insert(b"k", Ts::from(5), Some(b"v"));
            let views = Arc::new(Views::new(View::new(mem, Vec::new())));
            views.freeze();
            let flushed = Arc::clone(&views.current().imm[0]);
            let weak = Arc::downgrade(&flushed);
            let snap = SnapshotView::take(&views);
            let installed = Arc::new(AtomicBool::new(false));
            let (v, done) = (Arc::clone(&views), Arc::clone(&installed));
            let reader = thread::spawn(move || {
                let mut scan = None;
                for _ in 0..2 {
                    let after_install = done.load(Ordering::Acquire);
                    let view = snap.read(&v);
                    assert_eq!(view.get(b"k", Ts::from(5)).unwrap(), Some(b"v".to_vec()));
                    if after_install {
                        assert!(
                            view.imm.is_empty(),
                            "read through the view before the flush"
                        );
                    }
                    scan.get_or_insert_with(|| Arc::clone(&view));
                }
                let scan = scan.unwrap();
                assert_eq!(scan.get(b"k", Ts::from(5)).unwrap(), Some(b"v".to_vec()));
                drop(scan);
                snap
            });
            views.replace_flushed(&flushed, Some(table));
            drop(flushed);
            installed.store(true, Ordering::Release);
            let snap = reader.join().unwrap();
            let view = snap.read(&views);
            assert_eq!(view.get(b"k", Ts::from(5)).unwrap(), Some(b"v".to_vec()));
            drop(view);
            assert!(
                weak.upgrade().is_none(),
                "the snapshot still holds the flushed memtable"
            );
        });
        assert!(RUNS.load(std::sync::atomic::Ordering::Relaxed) > 1);
    }

    /// A compaction removes table `t` (its manifest edit is durable) while
    /// a reader takes the current view: in every interleaving, a view that
    /// lists `t` finds its file and reads it, and once no view lists it
    /// the file is gone (`Table::mark_obsolete`, `compaction` invariant 3).
    /// Mutation check: removing the file right after the install (instead
    /// of marking it obsolete) fails the reader's assertion.
    #[test]
    fn loom_a_table_is_never_deleted_while_a_view_lists_it() {
        use std::path::Path;

        use crate::sst::{Table, TableBuilder, TableOptions};
        use crate::sync::atomic::{AtomicU64, Ordering};
        use crate::vfs::{MemVfs, Vfs};

        loom::model(|| {
            let vfs: Arc<dyn Vfs> = Arc::new(MemVfs::new());
            let path = Path::new("/t/1.sst");
            vfs.create_dir_all(Path::new("/t")).unwrap();
            let mut b = TableBuilder::create(vfs.as_ref(), path, TableOptions::default()).unwrap();
            b.add(b"k", Ts::from(1), Some(b"v")).unwrap();
            b.finish(1).unwrap();
            let table = Arc::new(Table::open(vfs.as_ref(), path).unwrap());
            let levels = vec![Vec::new(), vec![Arc::clone(&table)]];
            let views = Arc::new(Views::new(View::new(Memtable::new(), levels)));
            let pending = Arc::new(AtomicU64::new(0));
            let (v, fs, p) = (Arc::clone(&views), Arc::clone(&vfs), Arc::clone(&pending));
            let compactor = thread::spawn(move || {
                v.replace_compacted(&[(1, Arc::clone(&table))], &[]);
                table.mark_obsolete(fs, p);
                drop(table);
            });
            let view = views.current();
            for t in view.levels.iter().flatten() {
                assert!(
                    vfs.read_all(t.path()).is_ok(),
                    "a listed table's file is gone"
                );
                assert_eq!(view.get(b"k", Ts::from(5)).unwrap(), Some(b"v".to_vec()));
            }
            drop(view);
            compactor.join().unwrap();
            assert!(views.current().levels.iter().all(Vec::is_empty));
            assert!(vfs.read_all(path).is_err(), "no view lists it: deleted");
            assert_eq!(pending.load(Ordering::Relaxed), 0);
        });
    }
}
