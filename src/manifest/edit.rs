//! Edits and their encoding: pure functions, no state, no files.
//!
//! ```text
//! payload := field*                    tags non-decreasing; 1-4 and 7 at most once
//! field   := tag:u16 len:u32 value[len]
//! 1 NextFileNumber u64   2 FlushedLsn u64   3 MaxTs u64   4 Epoch u64
//! 5 RemoveTable level:u8 number:u64
//! 6 AddTable    level:u8 number:u64 file_size:u64 min_ts:u64 max_ts:u64 entries:u64
//!               tombstones:u64 max_lsn:u64 smallest_len:u32 smallest largest_len:u32 largest
//! 7 CleanClose  last_lsn:u64
//! bit 15 set: ignorable (skipped when unknown); any other unknown tag: invalid
//! ```
//!
//! Decoding checks the structure (tags, lengths, order) and each table
//! record on its own ([`TableRecord::check`]); whether an edit fits the state
//! it is applied to is `state.rs`'s business.

use crate::codec::{Cursor, put_len};
use crate::types::{Lsn, MAX_KEY_BYTES, Ts};

/// Levels 0 to `NUM_LEVELS - 1`.
pub(crate) const NUM_LEVELS: usize = 7;

/// Field tags. On disk: never change or reuse a value.
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    NextFileNumber = 1,
    FlushedLsn = 2,
    MaxTs = 3,
    Epoch = 4,
    RemoveTable = 5,
    AddTable = 6,
    CleanClose = 7,
    /// Ignorable (bit 15): older readers skip it.
    HistoryFloor = 0x8001,
}

impl Tag {
    fn from_u16(tag: u16) -> Option<Tag> {
        Some(match tag {
            1 => Tag::NextFileNumber,
            2 => Tag::FlushedLsn,
            3 => Tag::MaxTs,
            4 => Tag::Epoch,
            5 => Tag::RemoveTable,
            6 => Tag::AddTable,
            7 => Tag::CleanClose,
            0x8001 => Tag::HistoryFloor,
            _ => return None,
        })
    }
}

/// Tags with this bit set may be skipped by a reader that does not know them.
pub(crate) const IGNORABLE_TAG_BIT: u16 = 0x8000;

/// Size of an AddTable value without its two keys.
const ADD_TABLE_FIXED_BYTES: usize = 1 + 7 * 8 + 2 * 4;

/// What the manifest knows of one sorted table (its number names the file
/// `tables/<number:020>.sst`). Its own definition, not `sst`'s: the
/// manifest records what the table's writer reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRecord {
    pub(crate) number: u64,
    pub(crate) file_size: u64,
    /// The first entry's user key.
    pub(crate) smallest_key: Vec<u8>,
    /// The last entry's user key.
    pub(crate) largest_key: Vec<u8>,
    pub(crate) min_ts: Ts,
    pub(crate) max_ts: Ts,
    /// Versions, values and tombstones.
    pub(crate) entries: u64,
    pub(crate) tombstones: u64,
    /// The highest WAL lsn whose writes the table holds (0 after compactions).
    pub(crate) max_lsn: Lsn,
}

impl TableRecord {
    /// The rules a table record keeps whatever the state (rule 3 of
    /// `docs/format/manifest.md`, "Applying a record").
    pub(crate) fn check(&self) -> Result<(), String> {
        let n = self.number;
        let fail = |what: &str| Err(format!("table {n}: {what}"));
        if n == 0 {
            return fail("number 0");
        }
        if self.file_size == 0 {
            return fail("file size 0");
        }
        if self.entries == 0 {
            return fail("no entries");
        }
        if self.tombstones > self.entries {
            return fail("more tombstones than entries");
        }
        if self.min_ts > self.max_ts {
            return fail("min_ts above max_ts");
        }
        if self.smallest_key.len() > MAX_KEY_BYTES || self.largest_key.len() > MAX_KEY_BYTES {
            return fail("key longer than MAX_KEY_BYTES");
        }
        if self.smallest_key > self.largest_key {
            return fail("smallest key above largest key");
        }
        Ok(())
    }
}

/// One manifest record: counters to set, tables to remove and to add.
///
/// Applied in this order whatever the order on disk: the counters, every
/// removal, every addition, then `clean_close` (which replaces the state's,
/// `None` included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) next_file_number: Option<u64>,
    pub(crate) flushed_lsn: Option<Lsn>,
    pub(crate) max_ts: Option<Ts>,
    pub(crate) epoch: Option<u64>,
    /// `(level, number)`.
    pub(crate) removed: Vec<(u8, u64)>,
    /// `(level, table)`.
    pub(crate) added: Vec<(u8, TableRecord)>,
    pub(crate) clean_close: Option<Lsn>,
    /// Compaction may have collected versions below this ts.
    pub(crate) history_floor: Option<Ts>,
}

impl Edit {
    /// Whether the edit can be a snapshot record (the first of a manifest
    /// file): every counter set, no removal.
    pub(crate) fn is_snapshot(&self) -> bool {
        self.next_file_number.is_some()
            && self.flushed_lsn.is_some()
            && self.max_ts.is_some()
            && self.epoch.is_some()
            && self.removed.is_empty()
    }

    /// The record payload. Fails (encoding nothing) on a table record that
    /// breaks [`TableRecord::check`] or a level out of range, the only
    /// things that could make a length not fit.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let counters = [
            (Tag::NextFileNumber, self.next_file_number),
            (Tag::FlushedLsn, self.flushed_lsn.map(|l| l.0)),
            (Tag::MaxTs, self.max_ts.map(Ts::get)),
            (Tag::Epoch, self.epoch),
        ];
        for (tag, value) in counters {
            if let Some(v) = value {
                put_field(&mut out, tag, &v.to_le_bytes())?;
            }
        }
        for &(level, number) in &self.removed {
            check_level(level)?;
            let mut v = vec![level];
            v.extend_from_slice(&number.to_le_bytes());
            put_field(&mut out, Tag::RemoveTable, &v)?;
        }
        for (level, table) in &self.added {
            check_level(*level)?;
            table.check()?;
            put_field(&mut out, Tag::AddTable, &encode_table(*level, table)?)?;
        }
        if let Some(lsn) = self.clean_close {
            put_field(&mut out, Tag::CleanClose, &lsn.0.to_le_bytes())?;
        }
        if let Some(ts) = self.history_floor {
            put_field(&mut out, Tag::HistoryFloor, &ts.get().to_le_bytes())?;
        }
        Ok(out)
    }

    /// Decodes a record payload; the error says what is wrong.
    pub(crate) fn decode(payload: &[u8]) -> Result<Edit, String> {
        let mut c = Cursor::new(payload);
        let mut edit = Edit::default();
        let mut last_tag = 0u16;
        while c.remaining() > 0 {
            let (Some(tag), Some(value)) = (c.u16(), c.len_prefixed()) else {
                return Err("field runs past the end of its record".into());
            };
            if tag < last_tag {
                return Err(format!("tag {tag} after tag {last_tag}"));
            }
            let repeated = tag == last_tag;
            last_tag = tag;
            let Some(known) = Tag::from_u16(tag) else {
                if tag & IGNORABLE_TAG_BIT != 0 {
                    continue;
                }
                return Err(format!("unknown tag {tag}"));
            };
            if repeated && !matches!(known, Tag::RemoveTable | Tag::AddTable) {
                return Err(format!("tag {tag} twice"));
            }
            decode_field(&mut edit, known, value)?;
        }
        Ok(edit)
    }
}

fn check_level(level: u8) -> Result<(), String> {
    if usize::from(level) < NUM_LEVELS {
        Ok(())
    } else {
        Err(format!("level {level} is not below {NUM_LEVELS}"))
    }
}

fn put_field(out: &mut Vec<u8>, tag: Tag, value: &[u8]) -> Result<(), String> {
    out.extend_from_slice(&(tag as u16).to_le_bytes());
    put_len(out, value.len()).ok_or("field too long")?;
    out.extend_from_slice(value);
    Ok(())
}

fn encode_table(level: u8, t: &TableRecord) -> Result<Vec<u8>, String> {
    let mut v =
        Vec::with_capacity(ADD_TABLE_FIXED_BYTES + t.smallest_key.len() + t.largest_key.len());
    v.push(level);
    for n in [
        t.number,
        t.file_size,
        t.min_ts.get(),
        t.max_ts.get(),
        t.entries,
        t.tombstones,
        t.max_lsn.0,
    ] {
        v.extend_from_slice(&n.to_le_bytes());
    }
    for key in [&t.smallest_key, &t.largest_key] {
        put_len(&mut v, key.len()).ok_or("key too long")?;
        v.extend_from_slice(key);
    }
    Ok(v)
}

/// A `u64` value that must be exactly 8 bytes.
fn u64_value(tag: Tag, value: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("{tag:?} of {} bytes, not 8", value.len()))?;
    Ok(u64::from_le_bytes(bytes))
}

fn decode_field(edit: &mut Edit, tag: Tag, value: &[u8]) -> Result<(), String> {
    match tag {
        Tag::NextFileNumber => edit.next_file_number = Some(u64_value(tag, value)?),
        Tag::FlushedLsn => edit.flushed_lsn = Some(Lsn(u64_value(tag, value)?)),
        Tag::MaxTs => edit.max_ts = Some(Ts::from(u64_value(tag, value)?)),
        Tag::Epoch => edit.epoch = Some(u64_value(tag, value)?),
        Tag::CleanClose => edit.clean_close = Some(Lsn(u64_value(tag, value)?)),
        Tag::HistoryFloor => edit.history_floor = Some(Ts::from(u64_value(tag, value)?)),
        Tag::RemoveTable => {
            let mut c = Cursor::new(value);
            let (Some(level), Some(number), 0) = (c.u8(), c.u64(), c.remaining()) else {
                return Err(format!("RemoveTable of {} bytes, not 9", value.len()));
            };
            check_level(level)?;
            edit.removed.push((level, number));
        }
        Tag::AddTable => {
            let (level, table) = decode_table(value).ok_or("malformed AddTable")?;
            check_level(level)?;
            table.check()?;
            edit.added.push((level, table));
        }
    }
    Ok(())
}

fn decode_table(value: &[u8]) -> Option<(u8, TableRecord)> {
    let mut c = Cursor::new(value);
    let level = c.u8()?;
    let (number, file_size, min_ts, max_ts) = (c.u64()?, c.u64()?, c.u64()?, c.u64()?);
    let (entries, tombstones, max_lsn) = (c.u64()?, c.u64()?, c.u64()?);
    let smallest_key = c.len_prefixed()?.to_vec();
    let largest_key = c.len_prefixed()?.to_vec();
    if c.remaining() != 0 {
        return None;
    }
    let table = TableRecord {
        number,
        file_size,
        smallest_key,
        largest_key,
        min_ts: Ts::from(min_ts),
        max_ts: Ts::from(max_ts),
        entries,
        tombstones,
        max_lsn: Lsn(max_lsn),
    };
    Some((level, table))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::manifest::tests::table;
    use proptest::prelude::*;

    fn arb_table() -> impl Strategy<Value = TableRecord> {
        let key = || proptest::collection::vec(any::<u8>(), 0..12);
        (
            (1..u64::MAX, 1..u64::MAX, key(), key()),
            (
                any::<u64>(),
                any::<u64>(),
                1..u64::MAX,
                any::<u64>(),
                any::<u64>(),
            ),
        )
            .prop_map(
                |((number, file_size, a, b), (t1, t2, entries, tomb, lsn))| TableRecord {
                    number,
                    file_size,
                    smallest_key: a.clone().min(b.clone()),
                    largest_key: a.max(b),
                    min_ts: Ts::from(t1.min(t2)),
                    max_ts: Ts::from(t1.max(t2)),
                    entries,
                    tombstones: tomb % (entries + 1),
                    max_lsn: Lsn(lsn),
                },
            )
    }

    fn arb_edit() -> impl Strategy<Value = Edit> {
        let level = || 0..NUM_LEVELS as u8;
        (
            (
                any::<Option<u64>>(),
                any::<Option<u64>>(),
                any::<Option<u64>>(),
                any::<Option<u64>>(),
            ),
            proptest::collection::vec((level(), any::<u64>()), 0..4),
            proptest::collection::vec((level(), arb_table()), 0..4),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
        )
            .prop_map(
                |((next, flushed, ts, epoch), removed, added, close, floor)| Edit {
                    next_file_number: next,
                    flushed_lsn: flushed.map(Lsn),
                    max_ts: ts.map(Ts::from),
                    epoch,
                    removed,
                    added,
                    clean_close: close.map(Lsn),
                    history_floor: floor.map(Ts::from),
                },
            )
    }

    proptest! {
        #[test]
        fn every_edit_round_trips(edit in arb_edit()) {
            let bytes = edit.encode().unwrap();
            prop_assert_eq!(Edit::decode(&bytes).unwrap(), edit);
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(edit) = Edit::decode(&bytes) {
                // What decodes re-encodes to bytes that decode the same.
                let again = edit.encode().unwrap();
                prop_assert_eq!(Edit::decode(&again).unwrap(), edit);
            }
        }
    }

    #[test]
    fn an_empty_payload_is_an_empty_edit() {
        assert_eq!(Edit::decode(&[]).unwrap(), Edit::default());
        assert_eq!(Edit::default().encode().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn every_cut_of_an_encoded_edit_is_refused_or_shorter() {
        let edit = Edit {
            next_file_number: Some(9),
            removed: vec![(1, 3)],
            added: vec![(2, table(4, b"a", b"m"))],
            clean_close: Some(Lsn(5)),
            ..Edit::default()
        };
        let bytes = edit.encode().unwrap();
        for cut in 0..bytes.len() {
            if let Ok(shorter) = Edit::decode(&bytes[..cut]) {
                assert_ne!(shorter, edit, "cut {cut}");
            }
        }
    }

    /// A payload built field by field, for the structure checks.
    fn fields(fields: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, value) in fields {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    #[test]
    fn structure_errors_are_refused_with_a_reason() {
        let eight = 5u64.to_le_bytes();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (fields(&[(8, &eight[..])]), "unknown tag 8"),
            (fields(&[(0, &eight[..])]), "unknown tag 0"),
            (
                fields(&[(2, &eight[..]), (1, &eight[..])]),
                "tag 1 after tag 2",
            ),
            (fields(&[(1, &eight[..]), (1, &eight[..])]), "tag 1 twice"),
            (fields(&[(7, &eight[..]), (7, &eight[..])]), "tag 7 twice"),
            (fields(&[(1, &eight[..7])]), "NextFileNumber of 7 bytes"),
            (fields(&[(5, &[0u8; 8][..])]), "RemoveTable of 8 bytes"),
            (fields(&[(5, &[7u8; 9][..])]), "level 7 is not below 7"),
            (fields(&[(6, &[0u8; 10][..])]), "malformed AddTable"),
            (vec![1, 0, 8, 0, 0, 0, 1], "runs past the end"),
            (vec![1], "runs past the end"),
        ];
        for (bytes, want) in cases {
            let err = Edit::decode(&bytes).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
    }

    #[test]
    fn ignorable_unknown_tags_are_skipped_after_the_known_ones() {
        let eight = 5u64.to_le_bytes();
        let bytes = fields(&[(1, &eight[..]), (0x8000, &b"hint"[..]), (0xffff, &b""[..])]);
        let edit = Edit::decode(&bytes).unwrap();
        assert_eq!(edit.next_file_number, Some(5));
        // Still in order: a known tag after an ignorable one is refused.
        assert!(Edit::decode(&fields(&[(0x8001, &b""[..]), (1, &eight[..])])).is_err());
    }

    #[test]
    fn table_records_that_break_a_rule_are_refused_both_ways() {
        let good = table(3, b"a", b"b");
        assert!(good.check().is_ok());
        let bad: Vec<(TableRecord, &str)> = vec![
            (
                TableRecord {
                    number: 0,
                    ..good.clone()
                },
                "number 0",
            ),
            (
                TableRecord {
                    file_size: 0,
                    ..good.clone()
                },
                "file size 0",
            ),
            (
                TableRecord {
                    entries: 0,
                    tombstones: 0,
                    ..good.clone()
                },
                "no entries",
            ),
            (
                TableRecord {
                    tombstones: 6,
                    ..good.clone()
                },
                "more tombstones",
            ),
            (
                TableRecord {
                    min_ts: Ts::from(21),
                    ..good.clone()
                },
                "min_ts above",
            ),
            (table(3, b"b", b"a"), "smallest key above"),
            (
                table(3, b"", &vec![0; MAX_KEY_BYTES + 1]),
                "longer than MAX_KEY_BYTES",
            ),
        ];
        for (t, want) in bad {
            let edit = Edit {
                added: vec![(0, t.clone())],
                ..Edit::default()
            };
            assert!(edit.encode().unwrap_err().contains(want), "{want}");
            // The same bytes, encoded by hand, are refused by the decoder.
            let bytes = fields(&[(6, &encode_table(0, &t).unwrap()[..])]);
            assert!(Edit::decode(&bytes).unwrap_err().contains(want), "{want}");
        }
        let edit = Edit {
            added: vec![(7, good)],
            ..Edit::default()
        };
        assert!(edit.encode().unwrap_err().contains("level 7"));
    }
}
