//! A check of every byte of a table, for `strata verify` (`crate::inspect`).
//!
//! Reads check less, on purpose (decision 0015): [`Table::open`] checks the
//! footer, index, filter and properties, and a data block is checked at its
//! first use, never against its neighbours. [`Table::verify_all`] reads
//! everything once and also checks what reads never need to:
//! 1. every data block's trailer (kind, compression, CRC) and structure,
//!    and that its last version is its index entry's;
//! 2. order across blocks: each block's first version is above the
//!    previous block's last (so the whole table is strictly ascending);
//! 3. the blocks tile the file as `docs/format/sst.md` lays it out (data
//!    blocks from offset 0, then filter, index, properties, footer), so no
//!    byte lies outside a checksum;
//! 4. the filter admits every user key (a false negative would hide a key
//!    from point reads);
//! 5. the properties (entries, tombstones, keys, ts range, key range, key
//!    and value bytes) are what the entries add up to.
//!
//! It reads the file through its own mapping (`Vfs::map`), uses the
//! table's decoders (`format`, `block`), and never panics on damage: each
//! problem is an `Error::Corruption` naming the file and offset.

use std::cmp::Ordering;

use super::block::{BlockCursor, EntryKind, cmp_version, validate};
use super::format::{BLOCK_TRAILER_BYTES, BlockKind, FOOTER_BYTES, Footer, Handle, verify_block};
use super::reader::Table;
use crate::codec::Cursor;
use crate::error::Error;
use crate::types::Ts;
use crate::vfs::Vfs;

/// Most problems reported for one table; the check stops there.
pub(crate) const MAX_TABLE_PROBLEMS: usize = 16;

/// What the entries add up to, for the comparison with the properties.
#[derive(Debug, Default)]
struct Totals {
    entries: u64,
    tombstones: u64,
    keys: u64,
    key_bytes: u64,
    value_bytes: u64,
    ts: Option<(Ts, Ts)>,
    first_key: Option<Vec<u8>>,
    /// The last entry seen (the previous block's last, between blocks).
    last: Option<(Vec<u8>, Ts)>,
}

/// One pass over a table's bytes.
struct Walk<'a> {
    table: &'a Table,
    file: &'a [u8],
    problems: Vec<Error>,
    totals: Totals,
    /// A data block did not read: the totals are incomplete.
    damaged_blocks: bool,
    /// The filter missed a key (reported once).
    filter_miss: bool,
    filter_offset: u64,
}

impl<'a> Walk<'a> {
    fn problem(&mut self, offset: u64, what: impl Into<String>) {
        if self.problems.len() < MAX_TABLE_PROBLEMS {
            let e = Error::corruption(self.table.path(), offset, what);
            self.problems.push(e);
        }
    }

    fn full(&self) -> bool {
        self.problems.len() >= MAX_TABLE_PROBLEMS
    }

    /// The contents of the block `handle` names, checked as `kind`, if it
    /// lies before `limit`.
    fn block(&mut self, handle: Handle, limit: usize, kind: BlockKind) -> Option<&'a [u8]> {
        let name = match kind {
            BlockKind::Data => "data",
            BlockKind::Index => "index",
            BlockKind::Filter => "filter",
            BlockKind::Properties => "properties",
        };
        let Some((start, end)) = handle.span(limit) else {
            self.problem(
                handle.offset,
                format!("{name} block handle past its region"),
            );
            return None;
        };
        let file = self.file;
        let raw = file.get(start..end).unwrap_or_default();
        match verify_block(raw, kind) {
            Ok(contents) => Some(contents),
            Err(w) => {
                self.problem(handle.offset, format!("{name} block: {w}"));
                None
            }
        }
    }

    /// Checks one data block (`handle`, named by the index entry whose
    /// version is `last`) and adds its entries to the totals.
    fn data_block(&mut self, handle: Handle, data_end: usize, last: (&[u8], Ts)) {
        let Some(contents) = self.block(handle, data_end, BlockKind::Data) else {
            self.damaged_blocks = true;
            return;
        };
        let summary = match validate(contents, &[EntryKind::Value, EntryKind::Tombstone]) {
            Ok(s) => s,
            Err(w) => {
                self.problem(handle.offset, format!("data block: {w}"));
                self.damaged_blocks = true;
                return;
            }
        };
        if (summary.last.0.as_slice(), summary.last.1) != last {
            self.problem(
                handle.offset,
                "data block ends elsewhere than its index entry says",
            );
        }
        if let Some((key, ts)) = &self.totals.last
            && cmp_version(key, *ts, &summary.first.0, summary.first.1) != Ordering::Less
        {
            self.problem(
                handle.offset,
                "data block's first version is not above the previous block's last",
            );
        }
        let mut c = BlockCursor::new(contents);
        c.seek_to_first(contents);
        while c.is_valid() {
            let value_len = c.value(contents).len() as u64;
            self.entry(c.key(), c.ts(), c.kind(), value_len);
            c.next(contents);
        }
        if c.is_corrupt() {
            // `validate` accepted the block, so its cursor cannot fail.
            self.problem(handle.offset, "data block does not decode");
            self.damaged_blocks = true;
        }
    }

    fn entry(&mut self, key: &[u8], ts: Ts, kind: Option<EntryKind>, value_len: u64) {
        let t = &mut self.totals;
        let new_key = t.last.as_ref().is_none_or(|(k, _)| k.as_slice() != key);
        t.entries += 1;
        t.key_bytes += key.len() as u64;
        t.value_bytes += value_len;
        if kind == Some(EntryKind::Tombstone) {
            t.tombstones += 1;
        }
        t.ts = Some(t.ts.map_or((ts, ts), |(lo, hi)| (lo.min(ts), hi.max(ts))));
        if t.first_key.is_none() {
            t.first_key = Some(key.to_vec());
        }
        t.last = Some((key.to_vec(), ts));
        if new_key {
            t.keys += 1;
            if !self.filter_miss && !self.table.may_contain(key) {
                self.filter_miss = true;
                let at = self.filter_offset;
                self.problem(at, "the filter does not hold a key the table holds");
            }
        }
    }

    /// Rule 5 of the module docs, once every block read.
    fn compare_properties(&mut self, at: u64) {
        let p = self.table.properties();
        let t = &self.totals;
        let (min_ts, max_ts) = t.ts.unwrap_or((Ts::ZERO, Ts::ZERO));
        let last_key = t.last.as_ref().map(|(k, _)| k.clone()).unwrap_or_default();
        let first_key = t.first_key.clone().unwrap_or_default();
        let counts = [
            ("entries", p.entries, t.entries),
            ("tombstones", p.tombstones, t.tombstones),
            ("keys", p.keys, t.keys),
            ("key bytes", p.key_bytes, t.key_bytes),
            ("value bytes", p.value_bytes, t.value_bytes),
            ("min ts", p.min_ts.get(), min_ts.get()),
            ("max ts", p.max_ts.get(), max_ts.get()),
        ];
        let mut wrong: Vec<String> = counts
            .iter()
            .filter(|(_, said, found)| said != found)
            .map(|(name, said, found)| format!("{name} {said} (the entries: {found})"))
            .collect();
        if p.smallest_key != first_key {
            wrong.push("smallest key is not the first entry's".into());
        }
        if p.largest_key != last_key {
            wrong.push("largest key is not the last entry's".into());
        }
        if !wrong.is_empty() {
            self.problem(
                at,
                format!("properties disagree with the entries: {}", wrong.join(", ")),
            );
        }
    }
}

impl Table {
    /// Checks every byte of this table (the module docs list what); each
    /// problem found is one `Error::Corruption` naming this table's file
    /// and the offset of the part (at most [`MAX_TABLE_PROBLEMS`]), or the
    /// `Error::Io` of mapping it again. Empty: the table is intact.
    pub(crate) fn verify_all(&self, vfs: &dyn Vfs) -> Vec<Error> {
        let mapped = match vfs.map(self.path()) {
            Ok(m) => m,
            Err(e) => return vec![Error::Io(e)],
        };
        let file = mapped.bytes();
        let footer_at = file.len().saturating_sub(FOOTER_BYTES);
        let mut walk = Walk {
            table: self,
            file,
            problems: Vec::new(),
            totals: Totals::default(),
            damaged_blocks: false,
            filter_miss: false,
            filter_offset: 0,
        };
        // `open` checked the footer; the file may have changed since.
        let Ok(footer) = Footer::decode(file) else {
            walk.problem(footer_at as u64, "footer does not decode");
            return walk.problems;
        };
        walk.filter_offset = footer.filter.offset;
        let data_end = usize::try_from(footer.filter.offset).unwrap_or(usize::MAX);
        let Some(index) = walk.block(footer.index, footer_at, BlockKind::Index) else {
            return walk.problems;
        };
        let mut expected = 0u64;
        let mut idx = BlockCursor::new(index);
        idx.seek_to_first(index);
        while idx.is_valid() && !walk.full() {
            let Some(handle) = Handle::decode(&mut Cursor::new(idx.value(index))) else {
                walk.problem(footer.index.offset, "index entry without a block handle");
                break;
            };
            if handle.offset != expected {
                walk.problem(
                    expected,
                    format!(
                        "data block at offset {} does not follow the block before it",
                        handle.offset
                    ),
                );
            }
            walk.data_block(handle, data_end, (idx.key(), idx.ts()));
            expected = handle
                .offset
                .saturating_add(u64::from(handle.len))
                .saturating_add(BLOCK_TRAILER_BYTES as u64);
            idx.next(index);
        }
        if idx.is_corrupt() {
            walk.problem(footer.index.offset, "index block does not decode");
        }
        if walk.full() {
            return walk.problems;
        }
        check_layout(&mut walk, &footer, expected, footer_at as u64);
        if !walk.damaged_blocks {
            walk.compare_properties(footer.properties.offset);
        }
        walk.problems
    }
}

/// Rule 3 of the module docs: after the data blocks (ending at
/// `data_end`) come the filter, index and properties blocks, each right
/// after the one before, then the footer.
fn check_layout(walk: &mut Walk<'_>, footer: &Footer, data_end: u64, footer_at: u64) {
    let end = |h: Handle| {
        h.offset
            .saturating_add(u64::from(h.len))
            .saturating_add(BLOCK_TRAILER_BYTES as u64)
    };
    let parts = [
        ("filter block", footer.filter.offset, data_end),
        ("index block", footer.index.offset, end(footer.filter)),
        (
            "properties block",
            footer.properties.offset,
            end(footer.index),
        ),
        ("footer", footer_at, end(footer.properties)),
    ];
    for (name, at, after) in parts {
        if at != after {
            walk.problem(
                after.min(at),
                format!(
                    "the {name} starts at offset {at}, not right after the part before it \
                     (offset {after})"
                ),
            );
        }
    }
}

#[cfg(all(test, not(loom)))]
#[allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sst::{TableBuilder, TableOptions};
    use crate::vfs::MemVfs;

    const PATH: &str = "/t/a.sst";

    /// A table of 300 versions in 256-byte blocks; its bytes.
    fn table(vfs: &MemVfs) -> Vec<u8> {
        vfs.create_dir_all(Path::new("/t")).unwrap();
        let opts = TableOptions {
            block_bytes: 256,
            ..TableOptions::default()
        };
        let mut b = TableBuilder::create(vfs, Path::new(PATH), opts).unwrap();
        for i in 0..100u64 {
            let key = format!("key{i:04}");
            for ts in [30, 20, 10] {
                let value = (ts != 20 || i % 3 != 0).then_some(b"value".as_slice());
                b.add(key.as_bytes(), Ts::from(ts + i), value).unwrap();
            }
        }
        b.finish(5).unwrap();
        vfs.read_all(Path::new(PATH)).unwrap()
    }

    fn verify(vfs: &MemVfs, bytes: Vec<u8>) -> Result<Vec<Error>, Error> {
        vfs.write_file(Path::new(PATH), bytes);
        let t = Table::open(vfs, Path::new(PATH))?;
        Ok(t.verify_all(vfs))
    }

    #[test]
    fn an_intact_table_has_no_problem() {
        let vfs = MemVfs::new();
        let bytes = table(&vfs);
        assert!(verify(&vfs, bytes).unwrap().is_empty());
    }

    /// Damage to any byte of the data blocks, which `open` does not read,
    /// is found, and named with the offset of the block holding it.
    #[test]
    fn damage_to_every_data_byte_is_found_at_its_block() {
        let vfs = MemVfs::new();
        let good = table(&vfs);
        let filter_at = {
            let footer = Footer::decode(&good).unwrap();
            usize::try_from(footer.filter.offset).unwrap()
        };
        for at in (0..filter_at).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let problems = verify(&vfs, bad).unwrap();
            let Some(Error::Corruption { offset, what, .. }) = problems.first() else {
                panic!("byte {at}: no problem found");
            };
            assert!(*offset <= at as u64, "byte {at}: offset {offset}");
            assert!(
                at as u64 - offset < 300,
                "byte {at}: offset {offset}: {what}"
            );
        }
    }

    /// The rule reads never check: a block whose first version is not
    /// above the previous block's last (here, a previous block that ended
    /// at "zz") is named, at the block's offset.
    #[test]
    fn a_block_starting_below_the_previous_blocks_end_is_found() {
        let vfs = MemVfs::new();
        let bytes = table(&vfs);
        let t = Table::open(&vfs, Path::new(PATH)).unwrap();
        let mut walk = Walk {
            table: &t,
            file: &bytes,
            problems: Vec::new(),
            totals: Totals {
                last: Some((b"zz".to_vec(), Ts::from(1))),
                ..Totals::default()
            },
            damaged_blocks: false,
            filter_miss: false,
            filter_offset: 0,
        };
        let footer = Footer::decode(&bytes).unwrap();
        let index = walk
            .block(footer.index, bytes.len(), BlockKind::Index)
            .unwrap();
        let mut idx = BlockCursor::new(index);
        idx.seek_to_first(index);
        let handle = Handle::decode(&mut Cursor::new(idx.value(index))).unwrap();
        let data_end = usize::try_from(footer.filter.offset).unwrap();
        let (key, ts) = (idx.key().to_vec(), idx.ts());
        walk.data_block(handle, data_end, (&key, ts));
        let [Error::Corruption { what, offset, .. }] = walk.problems.as_slice() else {
            panic!("{:?}", walk.problems);
        };
        assert_eq!(*offset, 0);
        assert!(what.contains("previous block"), "{what}");
    }

    /// Bytes no checksum covers (junk between the data blocks and the
    /// filter, with the footer's handles moved past it: every block still
    /// verifies and `open` accepts the table) are found.
    #[test]
    fn bytes_outside_every_block_are_found() {
        let vfs = MemVfs::new();
        let good = table(&vfs);
        let footer = Footer::decode(&good).unwrap();
        let gap = usize::try_from(footer.filter.offset).unwrap();
        let shift = |h: Handle| Handle {
            offset: h.offset + 3,
            len: h.len,
        };
        let moved = Footer {
            index: shift(footer.index),
            filter: shift(footer.filter),
            properties: shift(footer.properties),
            version: footer.version,
        };
        let mut bad = good[..gap].to_vec();
        bad.extend_from_slice(b"???");
        bad.extend_from_slice(&good[gap..good.len() - FOOTER_BYTES]);
        bad.extend_from_slice(&moved.encode());
        let problems = verify(&vfs, bad).unwrap();
        let [Error::Corruption { offset, what, .. }] = problems.as_slice() else {
            panic!("{problems:?}");
        };
        assert_eq!(*offset, gap as u64);
        assert!(what.contains("filter block starts"), "{what}");
    }
}
