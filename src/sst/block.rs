//! Data and index blocks (`docs/format/sst.md`, "data and index block
//! contents"): prefix-compressed entries `(key, ts, kind, value)` with
//! restart points, a builder, a whole-block validator, and a cursor that
//! seeks and steps in both directions.
//!
//! A block is validated once, after its checksum ([`validate`]); the cursor
//! then decodes it without re-checking order, but with every read still
//! bounds-checked, so even an unvalidated block cannot make it panic (it
//! stops and reports [`BlockCursor::is_corrupt`]).

use std::cmp::Ordering;

use crate::codec::{Cursor, put_varint32};
use crate::types::Ts;

/// One restart every this many entries in data blocks.
pub(crate) const DATA_RESTART_INTERVAL: usize = 4;
/// Index blocks restart at every entry, so a seek is a binary search.
pub(crate) const INDEX_RESTART_INTERVAL: usize = 1;

/// An entry's kind byte. On disk: never reuse a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A value (data blocks).
    Value = 1,
    /// A delete (data blocks); its value is empty.
    Tombstone = 2,
    /// A block handle of 12 bytes (index blocks).
    Handle = 3,
}

impl EntryKind {
    fn from_byte(b: u8) -> Option<EntryKind> {
        match b {
            1 => Some(EntryKind::Value),
            2 => Some(EntryKind::Tombstone),
            3 => Some(EntryKind::Handle),
            _ => None,
        }
    }
}

/// Version order: user key ascending, then ts descending.
pub(crate) fn cmp_version(ak: &[u8], ats: Ts, bk: &[u8], bts: Ts) -> Ordering {
    ak.cmp(bk).then_with(|| bts.cmp(&ats))
}

/// Builds one block's contents.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(interval: usize) -> Self {
        Self {
            buf: Vec::new(),
            restarts: Vec::new(),
            interval: interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Contents length if the block were finished now.
    pub(crate) fn len_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// The key of the last entry added.
    pub(crate) fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Appends an entry. The caller adds entries in strictly ascending
    /// version order and keeps keys and values under the format's limits
    /// (both below `u32::MAX`).
    pub(crate) fn add(&mut self, key: &[u8], ts: Ts, kind: EntryKind, value: &[u8]) {
        let shared = if self.since_restart.is_multiple_of(self.interval) {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let suffix = key.get(shared..).unwrap_or_default();
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, suffix.len() as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(suffix);
        self.buf.extend_from_slice(&ts.get().to_le_bytes());
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(suffix);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Appends the finished contents to `out` and resets the builder.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

/// Where the restart array of `contents` starts, and how many restarts.
fn restart_array(contents: &[u8]) -> Option<(usize, usize)> {
    let count_at = contents.len().checked_sub(4)?;
    let n = usize::try_from(Cursor::new(contents.get(count_at..)?).u32()?).ok()?;
    let start = count_at.checked_sub(n.checked_mul(4)?)?;
    Some((start, n))
}

fn restart_at(contents: &[u8], array: usize, i: usize) -> Option<usize> {
    let at = array.checked_add(i.checked_mul(4)?)?;
    usize::try_from(Cursor::new(contents.get(at..)?).u32()?).ok()
}

/// One decoded entry header, positions relative to the contents.
#[derive(Debug, Clone, Copy)]
struct Header {
    shared: usize,
    suffix: (usize, usize),
    ts: Ts,
    kind: EntryKind,
    value: (usize, usize),
    next: usize,
}

/// Decodes the entry at `off`, whose entries region ends at `limit`.
fn decode_header(contents: &[u8], off: usize, limit: usize) -> Option<Header> {
    let region = contents.get(..limit)?;
    let mut c = Cursor::new(region.get(off..)?);
    let shared = usize::try_from(c.varint32()?).ok()?;
    let unshared = usize::try_from(c.varint32()?).ok()?;
    let value_len = usize::try_from(c.varint32()?).ok()?;
    let suffix_start = limit - c.remaining();
    c.bytes(unshared)?;
    let ts = Ts::from(c.u64()?);
    let kind = EntryKind::from_byte(c.u8()?)?;
    let value_start = limit - c.remaining();
    c.bytes(value_len)?;
    Some(Header {
        shared,
        suffix: (suffix_start, suffix_start + unshared),
        ts,
        kind,
        value: (value_start, value_start + value_len),
        next: limit - c.remaining(),
    })
}

/// What a valid block holds: its entry count and first and last versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockSummary {
    pub(crate) entries: usize,
    pub(crate) restarts: usize,
    pub(crate) first: (Vec<u8>, Ts),
    pub(crate) last: (Vec<u8>, Ts),
}

/// Checks everything a cursor relies on: the restart array (the first
/// restart is the first entry, every restart an entry start, ascending),
/// every entry's lengths, the shared prefixes, strictly ascending order,
/// and that every kind is one of `kinds` (with a tombstone's value empty
/// and a handle's 12 bytes).
pub(crate) fn validate(contents: &[u8], kinds: &[EntryKind]) -> Result<BlockSummary, &'static str> {
    let (limit, n) = restart_array(contents).ok_or("restart array past the block")?;
    if n == 0 {
        return Err("block without a restart");
    }
    let mut next_restart = 0;
    let mut key: Vec<u8> = Vec::new();
    let mut prev: Option<Ts> = None;
    let mut first = None;
    let mut entries = 0;
    let mut off = 0;
    while off < limit {
        let h = decode_header(contents, off, limit).ok_or("entry past the block")?;
        let at_restart = restart_at(contents, limit, next_restart) == Some(off);
        if entries == 0 && !at_restart {
            // Cursors start at restarts: entries before the first one
            // would be unreachable.
            return Err("the first entry is not a restart");
        }
        if at_restart {
            next_restart += 1;
            if h.shared != 0 {
                return Err("a restart entry shares a prefix");
            }
        }
        if h.shared > key.len() {
            return Err("entry shares more than the previous key");
        }
        let ok_kind = kinds.contains(&h.kind)
            && match h.kind {
                EntryKind::Tombstone => h.value.0 == h.value.1,
                EntryKind::Handle => h.value.1 - h.value.0 == super::format::HANDLE_BYTES,
                EntryKind::Value => true,
            };
        if !ok_kind {
            return Err("entry of a kind this block cannot hold");
        }
        let mut new_key = key.get(..h.shared).unwrap_or_default().to_vec();
        new_key.extend_from_slice(contents.get(h.suffix.0..h.suffix.1).unwrap_or_default());
        if let Some(pts) = prev
            && cmp_version(&key, pts, &new_key, h.ts) != Ordering::Less
        {
            return Err("entries out of order");
        }
        key = new_key;
        prev = Some(h.ts);
        if first.is_none() {
            first = Some((key.clone(), h.ts));
        }
        entries += 1;
        off = h.next;
    }
    if next_restart != n {
        return Err("a restart is not an entry start");
    }
    match (first, prev) {
        (Some(first), Some(ts)) => Ok(BlockSummary {
            entries,
            restarts: n,
            first,
            last: (key, ts),
        }),
        _ => Err("empty block"),
    }
}

/// A position in one block. It does not borrow the block: every call takes
/// the block's contents, so a table iterator can own both the table and
/// its cursors. Calls on one cursor must always pass the same contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockCursor {
    /// End of the entries region (start of the restart array).
    limit: usize,
    restarts: usize,
    /// Offset of the current entry; `limit` when not on an entry.
    pos: usize,
    valid: bool,
    corrupt: bool,
    key: Vec<u8>,
    ts: Ts,
    kind: Option<EntryKind>,
    value: (usize, usize),
    next: usize,
}

impl BlockCursor {
    /// A cursor on `contents`, not yet on an entry.
    pub(crate) fn new(contents: &[u8]) -> Self {
        let mut c = BlockCursor::default();
        match restart_array(contents) {
            Some((limit, n)) if n > 0 => {
                c.limit = limit;
                c.restarts = n;
            }
            _ => c.corrupt = true,
        }
        c
    }

    /// This cursor moved to another block's `contents`, not yet on an
    /// entry; the key's buffer is kept (no allocation per block).
    pub(crate) fn reset(&mut self, contents: &[u8]) {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        *self = BlockCursor::new(contents);
        self.key = key;
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.valid
    }

    /// A decoding failure stopped the cursor (only possible on a block that
    /// did not pass [`validate`]).
    pub(crate) fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn ts(&self) -> Ts {
        self.ts
    }

    pub(crate) fn kind(&self) -> Option<EntryKind> {
        self.kind
    }

    pub(crate) fn value<'c>(&self, contents: &'c [u8]) -> &'c [u8] {
        contents.get(self.value.0..self.value.1).unwrap_or_default()
    }

    fn invalidate(&mut self) {
        self.valid = false;
        self.pos = self.limit;
    }

    fn fail(&mut self) {
        self.corrupt = true;
        self.invalidate();
    }

    /// Decodes the entry at `off`; `self.key` must hold the previous key.
    fn load(&mut self, contents: &[u8], off: usize) -> bool {
        if off >= self.limit || self.corrupt {
            self.invalidate();
            return false;
        }
        let Some(h) = decode_header(contents, off, self.limit) else {
            self.fail();
            return false;
        };
        let Some(suffix) = contents.get(h.suffix.0..h.suffix.1) else {
            self.fail();
            return false;
        };
        if h.shared > self.key.len() {
            self.fail();
            return false;
        }
        self.key.truncate(h.shared);
        self.key.extend_from_slice(suffix);
        self.ts = h.ts;
        self.kind = Some(h.kind);
        self.value = h.value;
        self.pos = off;
        self.next = h.next;
        self.valid = true;
        true
    }

    fn restart(&self, contents: &[u8], i: usize) -> Option<usize> {
        restart_at(contents, self.limit, i)
    }

    /// Moves to the entry at restart `i`.
    fn load_restart(&mut self, contents: &[u8], i: usize) -> bool {
        if let Some(off) = self.restart(contents, i) {
            self.key.clear();
            self.load(contents, off)
        } else {
            self.fail();
            false
        }
    }

    pub(crate) fn seek_to_first(&mut self, contents: &[u8]) {
        self.load_restart(contents, 0);
    }

    /// Moves to the entry at restart `i` (in an index block, where every
    /// entry is a restart: the `i`th entry); invalid past the last.
    pub(crate) fn seek_to_restart(&mut self, contents: &[u8], i: usize) {
        if i < self.restarts {
            self.load_restart(contents, i);
        } else {
            self.invalidate();
        }
    }

    pub(crate) fn seek_to_last(&mut self, contents: &[u8]) {
        if self.restarts == 0 {
            return self.fail();
        }
        if !self.load_restart(contents, self.restarts - 1) {
            return;
        }
        while self.next < self.limit {
            let next = self.next;
            if !self.load(contents, next) {
                return;
            }
        }
    }

    pub(crate) fn next(&mut self, contents: &[u8]) {
        if self.valid {
            let next = self.next;
            self.load(contents, next);
        }
    }

    /// Moves to the entry before the current one (invalid before the first).
    pub(crate) fn prev(&mut self, contents: &[u8]) {
        if !self.valid {
            return;
        }
        let target = self.pos;
        // The last restart strictly before the current entry.
        let mut i = self.restarts;
        loop {
            if i == 0 {
                self.invalidate();
                return;
            }
            i -= 1;
            match self.restart(contents, i) {
                Some(off) if off < target => break,
                Some(_) => {}
                None => return self.fail(),
            }
        }
        if !self.load_restart(contents, i) {
            return;
        }
        while self.next < target {
            let next = self.next;
            if !self.load(contents, next) {
                return;
            }
        }
    }

    /// The key of restart `i` (a restart entry shares nothing).
    fn restart_version<'c>(&self, contents: &'c [u8], i: usize) -> Option<(&'c [u8], Ts)> {
        let off = self.restart(contents, i)?;
        let h = decode_header(contents, off, self.limit)?;
        Some((contents.get(h.suffix.0..h.suffix.1)?, h.ts))
    }

    /// Starts loading the entry at every restart, so the binary search
    /// over them waits for memory once rather than once per probe
    /// ([`super::touch`]).
    /// Loads the cache lines of the entries from the current one (from the
    /// first, `from_start`) to the block's end together, ahead of a scan
    /// that will read them in turn (decision 0031: one miss per line,
    /// waited for one after another, was most of a scan's time).
    pub(crate) fn touch_entries(&self, contents: &[u8], from_start: bool) {
        let from = if from_start { 0 } else { self.pos };
        super::touch::touch_range(contents, from, self.limit);
    }

    pub(crate) fn touch_restarts(&self, contents: &[u8]) {
        for i in 0..self.restarts {
            if let Some(off) = self.restart(contents, i) {
                super::touch::touch(contents, off);
            }
        }
    }

    /// Moves to the first entry `>= (key, ts)` (invalid if there is none):
    /// a binary search over the restarts, then a forward scan.
    pub(crate) fn seek(&mut self, contents: &[u8], key: &[u8], ts: Ts) {
        self.seek_ordinal(contents, key, ts);
    }

    /// [`BlockCursor::seek`] that also returns the number of entries before
    /// the one it lands on (the entry count if none), counted for a block
    /// with a restart at every entry (index blocks).
    pub(crate) fn seek_ordinal(&mut self, contents: &[u8], key: &[u8], ts: Ts) -> usize {
        let (mut lo, mut hi) = (0, self.restarts);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.restart_version(contents, mid) {
                Some((k, t)) if cmp_version(k, t, key, ts) == Ordering::Less => lo = mid,
                Some(_) => hi = mid,
                None => {
                    self.fail();
                    return lo;
                }
            }
        }
        // The entries from restart `lo` to the next: the walk below reads
        // them in turn, so load their cache lines together first.
        if let Some(start) = self.restart(contents, lo) {
            let next = (lo + 1 < self.restarts).then(|| self.restart(contents, lo + 1));
            let end = next.flatten().unwrap_or(self.limit);
            super::touch::touch_range(contents, start, end);
        }
        if !self.load_restart(contents, lo) {
            return lo;
        }
        let mut ordinal = lo;
        while cmp_version(&self.key, self.ts, key, ts) == Ordering::Less {
            let next = self.next;
            ordinal += 1;
            if !self.load(contents, next) {
                break;
            }
        }
        ordinal
    }

    /// [`BlockCursor::seek_ordinal`] for a block with a restart at every
    /// entry (index blocks), given that the answer lies in `lo..=hi`: every
    /// entry before `lo` is below `(key, ts)` and every entry from `hi` on
    /// above it (the table's fences say so). A lower-bound search over
    /// `lo..hi` only, which decodes no entry at all when `lo == hi`.
    pub(crate) fn seek_ordinal_between(
        &mut self,
        contents: &[u8],
        key: &[u8],
        ts: Ts,
        lo: usize,
        hi: usize,
    ) -> usize {
        let (mut lo, mut hi) = (lo.min(self.restarts), hi.min(self.restarts));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.restart_version(contents, mid) {
                Some((k, t)) if cmp_version(k, t, key, ts) == Ordering::Less => lo = mid + 1,
                Some(_) => hi = mid,
                None => {
                    self.fail();
                    return lo;
                }
            }
        }
        if lo < self.restarts {
            self.load_restart(contents, lo);
        } else {
            self.invalidate();
        }
        lo
    }

    /// Moves to the last entry `<= (key, ts)` (invalid if there is none).
    pub(crate) fn seek_for_prev(&mut self, contents: &[u8], key: &[u8], ts: Ts) {
        self.seek(contents, key, ts);
        if self.corrupt {
            return;
        }
        if !self.valid {
            self.seek_to_last(contents);
        } else if cmp_version(&self.key, self.ts, key, ts) == Ordering::Greater {
            self.prev(contents);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Version = (Vec<u8>, u64, Option<Vec<u8>>);

    fn build(entries: &[Version], interval: usize) -> Vec<u8> {
        let mut b = BlockBuilder::new(interval);
        for (k, t, v) in entries {
            match v {
                Some(v) => b.add(k, Ts::from(*t), EntryKind::Value, v),
                None => b.add(k, Ts::from(*t), EntryKind::Tombstone, &[]),
            }
        }
        let mut out = Vec::new();
        b.finish_into(&mut out);
        out
    }

    fn sorted(mut v: Vec<Version>) -> Vec<Version> {
        v.sort_by(|a, b| cmp_version(&a.0, Ts::from(a.1), &b.0, Ts::from(b.1)));
        v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        v
    }

    fn current(c: &BlockCursor, contents: &[u8]) -> Version {
        let v = (c.kind() == Some(EntryKind::Value)).then(|| c.value(contents).to_vec());
        (c.key().to_vec(), c.ts().get(), v)
    }

    fn versions() -> impl Strategy<Value = Vec<Version>> {
        let key = prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0, 0xff]), 0..6);
        let value = prop::option::of(prop::collection::vec(any::<u8>(), 0..8));
        prop::collection::vec((key, 0u64..6, value), 1..80).prop_map(sorted)
    }

    fn first_at_or_after(all: &[Version], key: &[u8], ts: u64) -> Option<usize> {
        all.iter()
            .position(|(k, t, _)| cmp_version(k, Ts::from(*t), key, Ts::from(ts)) != Ordering::Less)
    }

    proptest! {
        #[test]
        fn a_block_reads_back_what_was_added_in_both_directions(
            all in versions(),
            interval in 1usize..20,
            probes in prop::collection::vec((prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0, 0xff]), 0..6), 0u64..7), 0..20),
        ) {
            let contents = build(&all, interval);
            let summary = validate(&contents, &[EntryKind::Value, EntryKind::Tombstone]).unwrap();
            prop_assert_eq!(summary.entries, all.len());
            let mut c = BlockCursor::new(&contents);
            let mut forward = Vec::new();
            c.seek_to_first(&contents);
            while c.is_valid() {
                forward.push(current(&c, &contents));
                c.next(&contents);
            }
            prop_assert_eq!(&forward, &all);
            let mut backward = Vec::new();
            c.seek_to_last(&contents);
            while c.is_valid() {
                backward.push(current(&c, &contents));
                c.prev(&contents);
            }
            backward.reverse();
            prop_assert_eq!(&backward, &all);
            for (key, ts) in probes {
                c.seek(&contents, &key, Ts::from(ts));
                match first_at_or_after(&all, &key, ts) {
                    Some(i) => prop_assert_eq!(current(&c, &contents), all[i].clone()),
                    None => prop_assert!(!c.is_valid()),
                }
                c.seek_for_prev(&contents, &key, Ts::from(ts));
                let before = all.iter().rposition(|(k, t, _)| {
                    cmp_version(k, Ts::from(*t), &key, Ts::from(ts)) != Ordering::Greater
                });
                match before {
                    Some(i) => prop_assert_eq!(current(&c, &contents), all[i].clone()),
                    None => prop_assert!(!c.is_valid()),
                }
                prop_assert!(!c.is_corrupt());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_a_cursor_or_the_validator(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            key in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let _ = validate(&bytes, &[EntryKind::Value, EntryKind::Tombstone, EntryKind::Handle]);
            let mut c = BlockCursor::new(&bytes);
            c.seek(&bytes, &key, Ts::from(3));
            for _ in 0..50 { c.next(&bytes); }
            c.seek_to_last(&bytes);
            for _ in 0..50 { c.prev(&bytes); }
            c.seek_for_prev(&bytes, &key, Ts::ZERO);
        }
    }

    #[test]
    fn the_worked_example_of_the_spec_is_what_the_builder_writes() {
        let all = vec![
            (b"ab".to_vec(), 9, Some(b"x".to_vec())),
            (b"ab".to_vec(), 5, None),
            (b"ac".to_vec(), 7, Some(Vec::new())),
        ];
        let contents = build(&all, 16);
        let mut expect = vec![0, 2, 1, b'a', b'b'];
        expect.extend_from_slice(&9u64.to_le_bytes());
        expect.extend_from_slice(&[1, b'x', 2, 0, 0]);
        expect.extend_from_slice(&5u64.to_le_bytes());
        expect.extend_from_slice(&[2, 1, 1, 0, b'c']);
        expect.extend_from_slice(&7u64.to_le_bytes());
        expect.extend_from_slice(&[1, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(contents, expect);
    }

    #[test]
    fn the_validator_names_each_kind_of_damage() {
        let all = sorted(vec![
            (b"a".to_vec(), 1, Some(b"1".to_vec())),
            (b"b".to_vec(), 1, None),
            (b"c".to_vec(), 1, Some(b"3".to_vec())),
        ]);
        let good = build(&all, 2);
        let kinds = [EntryKind::Value, EntryKind::Tombstone];
        assert!(validate(&good, &kinds).is_ok());
        assert_eq!(
            validate(&good, &[EntryKind::Value]),
            Err("entry of a kind this block cannot hold")
        );
        let unordered = build(&[(b"b".to_vec(), 1, None), (b"a".to_vec(), 1, None)], 16);
        assert_eq!(validate(&unordered, &kinds), Err("entries out of order"));
        let mut no_restart = good.clone();
        let n = no_restart.len();
        no_restart[n - 4..].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            validate(&no_restart, &kinds),
            Err("block without a restart")
        );
        let mut moved = good.clone();
        // The second restart (entry 2) moved by one byte.
        let at = n - 8;
        let r = u32::from_le_bytes(moved[at..at + 4].try_into().unwrap());
        moved[at..at + 4].copy_from_slice(&(r + 1).to_le_bytes());
        assert!(validate(&moved, &kinds).is_err());
        assert_eq!(validate(&[], &kinds), Err("restart array past the block"));
    }

    #[test]
    fn a_block_whose_first_restart_is_not_its_first_entry_is_refused() {
        // Entries "a" and "b" (neither shares a prefix), with one restart
        // that points at "b": every cursor starts at a restart, so "a"
        // would be invisible to seeks and to both directions while the
        // block still passed as valid (the spec: "the first restart is 0").
        let all = vec![
            (b"a".to_vec(), 1, Some(b"1".to_vec())),
            (b"b".to_vec(), 1, Some(b"2".to_vec())),
        ];
        let every = build(&all, 1);
        let n = every.len();
        let second = every[n - 8..n - 4].to_vec();
        let mut contents = every[..n - 12].to_vec();
        contents.extend_from_slice(&second);
        contents.extend_from_slice(&1u32.to_le_bytes());
        let kinds = [EntryKind::Value, EntryKind::Tombstone];
        assert_eq!(
            validate(&contents, &kinds),
            Err("the first entry is not a restart")
        );
        // Unchanged, the same entries validate.
        assert_eq!(validate(&every, &kinds).map(|s| s.entries), Ok(2));
    }
}
