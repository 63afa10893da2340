//! The fixed parts of a table file (`docs/format/sst.md`): block handles,
//! block trailers, the footer and the properties block. Pure functions; a
//! decoding error is a `&'static str`-ish message that the reader turns into
//! `Error::Corruption` with the file and offset.

use crate::codec::{Cursor, put_len};
use crate::types::Ts;

/// Bytes after every block's contents: kind, compression, CRC32.
pub(crate) const BLOCK_TRAILER_BYTES: usize = 6;
/// Bytes of the footer, the last bytes of the file.
pub(crate) const FOOTER_BYTES: usize = 52;
/// The footer's last 8 bytes.
pub(crate) const MAGIC: [u8; 8] = *b"STRATSST";
/// The table format version this build writes, and the newest it reads.
/// Version 2 (2026-12-01) differs from 1 only in the filter: a blocked
/// bloom filter (hash version 2). This build reads both.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The oldest table format version this build reads.
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
/// Bytes of an encoded [`Handle`].
pub(crate) const HANDLE_BYTES: usize = 12;

/// What a block holds (its trailer's first byte). On disk: never reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Data = 1,
    Index = 2,
    Filter = 3,
    Properties = 4,
}

/// Where a block's contents are: `len` bytes at `offset`, trailer after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Handle {
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

impl Handle {
    pub(crate) fn encode_into(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.offset.to_le_bytes());
        buf.extend_from_slice(&self.len.to_le_bytes());
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Handle> {
        Some(Handle {
            offset: c.u64()?,
            len: c.u32()?,
        })
    }

    /// The byte range of contents plus trailer, if it ends at or before `limit`.
    pub(crate) fn span(self, limit: usize) -> Option<(usize, usize)> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start
            .checked_add(usize::try_from(self.len).ok()?)?
            .checked_add(BLOCK_TRAILER_BYTES)?;
        (end <= limit).then_some((start, end))
    }
}

fn block_crc(contents: &[u8], kind: u8, compression: u8) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(contents);
    h.update(&[kind, compression]);
    h.finalize()
}

/// Appends the trailer of a block whose contents are `contents`.
pub(crate) fn push_trailer(buf: &mut Vec<u8>, contents: &[u8], kind: BlockKind) {
    let kind = kind as u8;
    buf.push(kind);
    buf.push(0);
    buf.extend_from_slice(&block_crc(contents, kind, 0).to_le_bytes());
}

/// Checks `block` (contents then trailer) and returns the contents.
pub(crate) fn verify_block(block: &[u8], kind: BlockKind) -> Result<&[u8], &'static str> {
    let split = block
        .len()
        .checked_sub(BLOCK_TRAILER_BYTES)
        .ok_or("block shorter than its trailer")?;
    let (contents, trailer) = block.split_at(split);
    let mut c = Cursor::new(trailer);
    let (found_kind, compression, crc) = (
        c.u8().ok_or("short trailer")?,
        c.u8().ok_or("short trailer")?,
        c.u32().ok_or("short trailer")?,
    );
    if block_crc(contents, found_kind, compression) != crc {
        return Err("block checksum mismatch");
    }
    if found_kind != kind as u8 {
        return Err("block of the wrong kind");
    }
    if compression != 0 {
        return Err("unknown block compression");
    }
    Ok(contents)
}

/// The footer: where the index, filter and properties blocks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) index: Handle,
    pub(crate) filter: Handle,
    pub(crate) properties: Handle,
    /// The table's format version.
    pub(crate) version: u32,
}

/// Why a footer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FooterError {
    /// Shorter than a footer, or the magic is wrong.
    NotATable,
    /// The footer's own checksum failed.
    Checksum,
    /// Version 0, which no build writes.
    BadVersion,
    /// A newer format than this build reads.
    Unsupported(u32),
}

impl Footer {
    pub(crate) fn encode(self) -> [u8; FOOTER_BYTES] {
        let mut buf = Vec::with_capacity(FOOTER_BYTES);
        self.index.encode_into(&mut buf);
        self.filter.encode_into(&mut buf);
        self.properties.encode_into(&mut buf);
        buf.extend_from_slice(&self.version.to_le_bytes());
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&MAGIC);
        let mut out = [0; FOOTER_BYTES];
        out.copy_from_slice(&buf);
        out
    }

    /// Decodes the footer from the last [`FOOTER_BYTES`] of `file`.
    pub(crate) fn decode(file: &[u8]) -> Result<Footer, FooterError> {
        let start = file
            .len()
            .checked_sub(FOOTER_BYTES)
            .ok_or(FooterError::NotATable)?;
        let bytes = file.get(start..).ok_or(FooterError::NotATable)?;
        let (body, magic) = bytes.split_at(FOOTER_BYTES - MAGIC.len());
        if magic != MAGIC {
            return Err(FooterError::NotATable);
        }
        let (fields, crc) = body.split_at(body.len() - 4);
        let mut c = Cursor::new(crc);
        if c.u32() != Some(crc32fast::hash(fields)) {
            return Err(FooterError::Checksum);
        }
        let mut c = Cursor::new(fields);
        let bad = FooterError::NotATable;
        let index = Handle::decode(&mut c).ok_or(bad)?;
        let filter = Handle::decode(&mut c).ok_or(bad)?;
        let properties = Handle::decode(&mut c).ok_or(bad)?;
        match c.u32().ok_or(bad)? {
            0 => Err(FooterError::BadVersion),
            version @ OLDEST_FORMAT_VERSION..=FORMAT_VERSION => Ok(Footer {
                index,
                filter,
                properties,
                version,
            }),
            v => Err(FooterError::Unsupported(v)),
        }
    }
}

/// What a table holds, from its properties block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// Versions: values and tombstones.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// Distinct user keys (what the filter holds).
    pub keys: u64,
    /// Data blocks (the index's entries).
    pub data_blocks: u64,
    /// Lowest commit ts of any entry.
    pub min_ts: Ts,
    /// Highest commit ts of any entry.
    pub max_ts: Ts,
    /// The first entry's user key.
    pub smallest_key: Vec<u8>,
    /// The last entry's user key.
    pub largest_key: Vec<u8>,
    /// The highest WAL lsn whose writes the table holds (0: unknown, e.g.
    /// after a compaction).
    pub max_lsn: u64,
    /// Sum of the entries' key lengths.
    pub key_bytes: u64,
    /// Sum of the entries' value lengths.
    pub value_bytes: u64,
}

mod tag {
    pub(super) const ENTRIES: u16 = 1;
    pub(super) const TOMBSTONES: u16 = 2;
    pub(super) const KEYS: u16 = 3;
    pub(super) const DATA_BLOCKS: u16 = 4;
    pub(super) const MIN_TS: u16 = 5;
    pub(super) const MAX_TS: u16 = 6;
    pub(super) const SMALLEST_KEY: u16 = 7;
    pub(super) const LARGEST_KEY: u16 = 8;
    pub(super) const MAX_LSN: u16 = 9;
    pub(super) const KEY_BYTES: u16 = 10;
    pub(super) const VALUE_BYTES: u16 = 11;
}

fn put_field(buf: &mut Vec<u8>, tag: u16, bytes: &[u8]) {
    buf.extend_from_slice(&tag.to_le_bytes());
    // Keys are at most MAX_KEY_BYTES, so the length always fits.
    let _fits = put_len(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

impl Properties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128 + self.smallest_key.len() + self.largest_key.len());
        let u64s = [
            (tag::ENTRIES, self.entries),
            (tag::TOMBSTONES, self.tombstones),
            (tag::KEYS, self.keys),
            (tag::DATA_BLOCKS, self.data_blocks),
            (tag::MIN_TS, self.min_ts.get()),
            (tag::MAX_TS, self.max_ts.get()),
        ];
        for (t, v) in u64s {
            put_field(&mut buf, t, &v.to_le_bytes());
        }
        put_field(&mut buf, tag::SMALLEST_KEY, &self.smallest_key);
        put_field(&mut buf, tag::LARGEST_KEY, &self.largest_key);
        for (t, v) in [
            (tag::MAX_LSN, self.max_lsn),
            (tag::KEY_BYTES, self.key_bytes),
            (tag::VALUE_BYTES, self.value_bytes),
        ] {
            put_field(&mut buf, t, &v.to_le_bytes());
        }
        buf
    }

    pub(crate) fn decode(contents: &[u8]) -> Result<Properties, &'static str> {
        const REQUIRED: u32 = (1 << 12) - 2 - (1 << tag::MAX_LSN);
        let mut p = Properties::default();
        let mut seen: u32 = 0;
        let mut last_tag = 0;
        let mut c = Cursor::new(contents);
        while c.remaining() > 0 {
            let t = c.u16().ok_or("short property tag")?;
            let bytes = c.len_prefixed().ok_or("property length past the block")?;
            if t <= last_tag {
                return Err("property tags out of order");
            }
            last_tag = t;
            let as_u64 = || -> Result<u64, &'static str> {
                Ok(u64::from_le_bytes(
                    bytes
                        .try_into()
                        .map_err(|_| "property of the wrong length")?,
                ))
            };
            match t {
                tag::ENTRIES => p.entries = as_u64()?,
                tag::TOMBSTONES => p.tombstones = as_u64()?,
                tag::KEYS => p.keys = as_u64()?,
                tag::DATA_BLOCKS => p.data_blocks = as_u64()?,
                tag::MIN_TS => p.min_ts = Ts::from(as_u64()?),
                tag::MAX_TS => p.max_ts = Ts::from(as_u64()?),
                tag::SMALLEST_KEY => p.smallest_key = bytes.to_vec(),
                tag::LARGEST_KEY => p.largest_key = bytes.to_vec(),
                tag::MAX_LSN => p.max_lsn = as_u64()?,
                tag::KEY_BYTES => p.key_bytes = as_u64()?,
                tag::VALUE_BYTES => p.value_bytes = as_u64()?,
                _ => continue, // a newer writer's field: skip it
            }
            seen |= 1 << t;
        }
        if seen & REQUIRED != REQUIRED {
            return Err("a required property is missing");
        }
        if p.tombstones > p.entries || p.keys > p.entries || p.keys == 0 || p.min_ts > p.max_ts {
            return Err("properties contradict each other");
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Properties {
        Properties {
            entries: 10,
            tombstones: 2,
            keys: 7,
            data_blocks: 3,
            min_ts: Ts::from(5),
            max_ts: Ts::from(90),
            smallest_key: b"a".to_vec(),
            largest_key: b"zz".to_vec(),
            max_lsn: 44,
            key_bytes: 30,
            value_bytes: 300,
        }
    }

    #[test]
    fn properties_round_trip_and_skip_unknown_tags() {
        let p = props();
        let mut enc = p.encode();
        assert_eq!(Properties::decode(&enc), Ok(p.clone()));
        put_field(&mut enc, 500, b"from the future");
        assert_eq!(Properties::decode(&enc), Ok(p));
    }

    #[test]
    fn properties_refuse_missing_repeated_or_contradictory_fields() {
        let p = props();
        let enc = p.encode();
        // Drop the first field (entries): required.
        assert!(Properties::decode(&enc[2 + 4 + 8..]).is_err());
        let mut twice = enc.clone();
        put_field(&mut twice, tag::VALUE_BYTES, &1u64.to_le_bytes());
        assert!(Properties::decode(&twice).is_err());
        let bad = Properties {
            tombstones: 11,
            ..props()
        };
        assert!(Properties::decode(&bad.encode()).is_err());
        assert!(Properties::decode(&enc[..enc.len() - 1]).is_err());
    }

    #[test]
    fn footer_round_trips_and_names_what_is_wrong() {
        let f = Footer {
            index: Handle { offset: 7, len: 9 },
            filter: Handle { offset: 1, len: 2 },
            properties: Handle { offset: 3, len: 4 },
            version: FORMAT_VERSION,
        };
        let mut file = vec![0xaa; 10];
        file.extend_from_slice(&f.encode());
        assert_eq!(Footer::decode(&file), Ok(f));
        assert_eq!(Footer::decode(&file[1..20]), Err(FooterError::NotATable));
        let n = file.len();
        let mut flipped = file.clone();
        flipped[n - 20] ^= 1;
        assert_eq!(Footer::decode(&flipped), Err(FooterError::Checksum));
        let mut newer = file[..n - 16].to_vec();
        newer.extend_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32fast::hash(&newer[10..]);
        newer.extend_from_slice(&crc.to_le_bytes());
        newer.extend_from_slice(&MAGIC);
        assert_eq!(
            Footer::decode(&newer),
            Err(FooterError::Unsupported(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn the_footer_and_properties_are_laid_out_as_specified() {
        // Footer: index, filter, properties handles (offset u64, len u32),
        // version u32, CRC32 of those 40 bytes, magic.
        let f = Footer {
            index: Handle { offset: 1, len: 2 },
            filter: Handle { offset: 3, len: 4 },
            properties: Handle { offset: 5, len: 6 },
            version: 1,
        };
        let mut expect = Vec::new();
        for (offset, len) in [(1u64, 2u32), (3, 4), (5, 6)] {
            expect.extend_from_slice(&offset.to_le_bytes());
            expect.extend_from_slice(&len.to_le_bytes());
        }
        expect.extend_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&expect);
        expect.extend_from_slice(&crc.to_le_bytes());
        expect.extend_from_slice(b"STRATSST");
        assert_eq!(f.encode().as_slice(), expect.as_slice());
        // Properties: tag u16, len u32, bytes; tags 1..=11 ascending.
        let enc = props().encode();
        let mut c = Cursor::new(&enc);
        let mut tags = Vec::new();
        while c.remaining() > 0 {
            tags.push(c.u16().unwrap());
            c.len_prefixed().unwrap();
        }
        assert_eq!(tags, (1..=11).collect::<Vec<u16>>());
        assert_eq!(&enc[..14], &[1, 0, 8, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_block_is_verified_by_kind_and_checksum() {
        let mut block = b"contents".to_vec();
        push_trailer(&mut block, b"contents", BlockKind::Data);
        assert_eq!(verify_block(&block, BlockKind::Data), Ok(&b"contents"[..]));
        assert!(verify_block(&block, BlockKind::Index).is_err());
        for i in 0..block.len() {
            let mut b = block.clone();
            b[i] ^= 0x40;
            assert!(verify_block(&b, BlockKind::Data).is_err(), "byte {i}");
        }
        assert!(verify_block(&block[..5], BlockKind::Data).is_err());
    }
}
