//! WAL byte layout: segment header, frames, commit records, sync marks.
//! Pure encode/decode functions; the specification is `docs/format/wal.md`.
//!
//! ```text
//! segment_header (56) := "STRATWAL" version:u16 flags:u16 header_len:u32 segment_no:u64
//!                        epoch:u64 first_lsn:u64 prev_crc:u32 salt:u64 header_crc:u32
//! frame               := crc:u32 len:u32 kind:u8 payload[len]      crc over len|kind|payload
//!                        (a SyncMark's crc covers salt|len|kind|payload)
//! Commit (kind 1)     := lsn:u64 commit_ts:u64 epoch:u64 prev_crc:u32 op_count:u32 op*
//! op                  := kind:u8 key_len:u32 key [value_len:u32 value]   (1 Put, 2 Delete)
//! SyncMark (kind 2)   := synced_lsn:u64
//! ```

use crate::codec::{Cursor, put_len};
use crate::types::{Lsn, MAX_KEY_BYTES, MAX_TXN_BYTES, MAX_VALUE_BYTES, Ts};

/// Segment file magic.
pub(crate) const MAGIC: [u8; 8] = *b"STRATWAL";
/// The format version this build writes and the highest it reads.
pub(crate) const VERSION: u16 = 1;
/// Size of the segment header.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 56;
/// Size of a frame header (crc, len, kind).
pub(crate) const FRAME_HEADER_BYTES: usize = 9;
/// Size of the fixed part of a commit payload.
pub(crate) const COMMIT_HEADER_BYTES: usize = 32;
/// Size of a whole SyncMark frame.
pub(crate) const SYNC_MARK_FRAME_BYTES: usize = FRAME_HEADER_BYTES + 8;
/// Largest payload a valid frame can have.
pub(crate) const MAX_PAYLOAD_BYTES: usize = MAX_TXN_BYTES + COMMIT_HEADER_BYTES;

// Bytes CRC-hashed by the decoders on this thread (tests bound the work of a
// recovery scan with it). Only the decoders count, and only in test builds:
// the commit path (encoders) never touches it.
#[cfg(test)]
thread_local! {
    static HASHED_BYTES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The bytes the decoders on this thread have CRC-hashed so far.
#[cfg(test)]
pub(crate) fn hashed_bytes() -> u64 {
    HASHED_BYTES.with(std::cell::Cell::get)
}

/// Counts `n` bytes hashed by a decoder (a no-op outside tests).
#[inline]
fn count_hashed(n: usize) {
    #[cfg(test)]
    HASHED_BYTES.with(|h| h.set(h.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// Frame kinds. On disk: never change or reuse a value.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Commit = 1,
    SyncMark = 2,
}

/// Operation kinds inside a commit record. On disk: never change or reuse a value.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Put = 1,
    Delete = 2,
}

/// Encoded size of one operation.
pub(crate) fn op_encoded_len(key: &[u8], value: Option<&[u8]>) -> usize {
    1 + 4 + key.len() + value.map_or(0, |v| 4 + v.len())
}

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) segment_no: u64,
    pub(crate) epoch: u64,
    pub(crate) first_lsn: Lsn,
    pub(crate) prev_crc: u32,
    /// Random per segment; mixed into SyncMark checksums so that bytes inside
    /// a record (user data) can never pass for a mark of this segment.
    pub(crate) salt: u64,
}

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header, or all zeros: a torn creation.
    Torn,
    /// The header CRC does not match: damaged, or (in the newest segment,
    /// with only zeros after it) a creation torn while the header was written.
    Checksum,
    /// Written by a newer format version.
    Version(u16),
    /// Checksummed, but its fields are wrong: damage no torn write explains.
    Corrupt(&'static str),
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut buf = Vec::with_capacity(SEGMENT_HEADER_BYTES);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        buf.extend_from_slice(&self.segment_no.to_le_bytes());
        buf.extend_from_slice(&self.epoch.to_le_bytes());
        buf.extend_from_slice(&self.first_lsn.0.to_le_bytes());
        buf.extend_from_slice(&self.prev_crc.to_le_bytes());
        buf.extend_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out.copy_from_slice(&buf);
        out
    }

    pub(crate) fn decode(data: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let Some(head) = data.get(..SEGMENT_HEADER_BYTES) else {
            return Err(HeaderError::Torn);
        };
        if head.iter().all(|&b| b == 0) {
            return Err(HeaderError::Torn);
        }
        // The CRC first: a header torn while it was written fails it,
        // whichever of its bytes (the magic too) did not make it.
        let (covered, stored) = head.split_at(SEGMENT_HEADER_BYTES - 4);
        count_hashed(covered.len());
        if stored != crc32fast::hash(covered).to_le_bytes() {
            return Err(HeaderError::Checksum);
        }
        let mut c = Cursor::new(head);
        let corrupt = HeaderError::Corrupt;
        if c.array::<8>() != Some(MAGIC) {
            return Err(corrupt("bad segment magic"));
        }
        let version = c.u16().ok_or(corrupt("short header"))?;
        let flags = c.u16().ok_or(corrupt("short header"))?;
        let header_len = c.u32().ok_or(corrupt("short header"))?;
        let segment_no = c.u64().ok_or(corrupt("short header"))?;
        let epoch = c.u64().ok_or(corrupt("short header"))?;
        let first_lsn = Lsn(c.u64().ok_or(corrupt("short header"))?);
        let prev_crc = c.u32().ok_or(corrupt("short header"))?;
        let salt = c.u64().ok_or(corrupt("short header"))?;
        if version > VERSION {
            return Err(HeaderError::Version(version));
        }
        if version == 0 || flags != 0 || header_len as usize != SEGMENT_HEADER_BYTES {
            return Err(corrupt("bad segment header fields"));
        }
        Ok(SegmentHeader {
            segment_no,
            epoch,
            first_lsn,
            prev_crc,
            salt,
        })
    }
}

/// Fixed fields of a commit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommitHeader {
    pub(crate) lsn: Lsn,
    pub(crate) commit_ts: Ts,
    pub(crate) epoch: u64,
    pub(crate) prev_crc: u32,
}

/// Where one operation's key and value sit in a frame's bytes (offsets
/// from the start of the frame): what the write set indexes, what the
/// conflict check reads keys from, and what the memtable's values point
/// into (the frame is shared, not copied per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpAt {
    key_at: u32,
    key_len: u32,
    /// `(offset, length)` of the value; `None` for a delete.
    value: Option<(u32, u32)>,
}

impl OpAt {
    /// The key, in the frame `bytes` this position was taken in.
    pub(crate) fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        slice_at(bytes, self.key_at, self.key_len)
    }

    /// The value (`None` for a delete), in the frame `bytes`.
    pub(crate) fn value<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        self.value.map(|(at, len)| slice_at(bytes, at, len))
    }

    /// `(offset, length)` of the value in the frame; `None` for a delete.
    pub(crate) fn value_range(&self) -> Option<(u32, u32)> {
        self.value
    }

    /// The operation's encoded size.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + 4 + self.key_len as usize + self.value.map_or(0, |(_, len)| 4 + len as usize)
    }
}

fn slice_at(bytes: &[u8], at: u32, len: u32) -> &[u8] {
    let at = at as usize;
    bytes.get(at..at + len as usize).unwrap_or_default()
}

/// Builds the frame of a commit record: the ops are encoded first (outside any
/// lock), the header fields are filled in by [`seal_commit`] once the commit
/// timestamp and LSN are known. A transaction's write set appends its
/// operations here as they are written (`write_set.rs`), so in the common
/// case (keys written in ascending order, none twice) the buffer it
/// commits is already the frame.
#[derive(Debug, Default)]
pub(crate) struct CommitFrameBuilder {
    buf: Vec<u8>,
    ops: u32,
}

impl CommitFrameBuilder {
    pub(crate) fn with_capacity(ops_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(FRAME_HEADER_BYTES + COMMIT_HEADER_BYTES + ops_bytes);
        buf.resize(FRAME_HEADER_BYTES + COMMIT_HEADER_BYTES, 0);
        Self { buf, ops: 0 }
    }

    /// Appends one operation and returns where it sits. The caller has
    /// checked the limits (at `Txn::put`) and the total (`MAX_TXN_BYTES`),
    /// so the length conversions cannot fail; they are checked anyway and
    /// refuse rather than truncate.
    pub(crate) fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> crate::Result<OpAt> {
        let len = self.buf.len() + op_encoded_len(key, value);
        let too_large = || crate::Error::TxnTooLarge {
            len,
            max: MAX_TXN_BYTES,
        };
        if len > FRAME_HEADER_BYTES + MAX_PAYLOAD_BYTES {
            return Err(too_large());
        }
        let offset = |n: usize| u32::try_from(n).map_err(|_| too_large());
        let kind = if value.is_some() {
            OpKind::Put
        } else {
            OpKind::Delete
        };
        self.buf.push(kind as u8);
        put_len(&mut self.buf, key.len()).ok_or_else(too_large)?;
        let key_at = offset(self.buf.len())?;
        self.buf.extend_from_slice(key);
        let value = match value {
            Some(v) => {
                put_len(&mut self.buf, v.len()).ok_or_else(too_large)?;
                let at = offset(self.buf.len())?;
                self.buf.extend_from_slice(v);
                Some((at, offset(v.len())?))
            }
            None => None,
        };
        self.ops = self.ops.checked_add(1).ok_or_else(too_large)?;
        Ok(OpAt {
            key_at,
            key_len: offset(key.len())?,
            value,
        })
    }

    /// The frame so far (headers not filled in); [`OpAt`]s index it.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of the operations appended so far.
    pub(crate) fn ops_bytes(&self) -> usize {
        self.buf.len() - (FRAME_HEADER_BYTES + COMMIT_HEADER_BYTES)
    }

    /// The unsealed frame.
    pub(crate) fn finish(self) -> UnsealedCommit {
        UnsealedCommit {
            buf: self.buf.into(),
            ops: self.ops,
        }
    }
}

/// A commit frame whose header fields are not filled in yet. Its bytes are
/// shared: sealing copies them into the WAL batch and leaves them as they
/// are, and the memtable keeps the values in place ([`OpAt`]).
#[derive(Debug)]
pub(crate) struct UnsealedCommit {
    buf: std::sync::Arc<[u8]>,
    ops: u32,
}

impl UnsealedCommit {
    /// The frame's bytes (header fields zero), shared.
    pub(crate) fn shared(&self) -> &std::sync::Arc<[u8]> {
        &self.buf
    }
}

/// Appends `frame` to `out` with its commit header and frame header
/// filled in, and returns the frame's CRC (the next record's `prev_crc`).
/// `frame` itself is not changed.
pub(crate) fn seal_commit(frame: &UnsealedCommit, header: &CommitHeader, out: &mut Vec<u8>) -> u32 {
    let payload_len = (frame.buf.len() - FRAME_HEADER_BYTES) as u32;
    let mut head = [0u8; FRAME_HEADER_BYTES + COMMIT_HEADER_BYTES];
    let fields: [&[u8]; 8] = [
        &[0; 4],
        &payload_len.to_le_bytes(),
        &[FrameKind::Commit as u8],
        &header.lsn.0.to_le_bytes(),
        &header.commit_ts.get().to_le_bytes(),
        &header.epoch.to_le_bytes(),
        &header.prev_crc.to_le_bytes(),
        &frame.ops.to_le_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        for (dst, src) in head.iter_mut().skip(at).zip(f) {
            *dst = *src;
        }
        at += f.len();
    }
    let body = frame.buf.get(head.len()..).unwrap_or_default();
    let mut crc = crc32fast::Hasher::new();
    crc.update(head.get(4..).unwrap_or_default());
    crc.update(body);
    let crc = crc.finalize();
    for (dst, src) in head.iter_mut().zip(crc.to_le_bytes()) {
        *dst = src;
    }
    out.reserve(head.len() + body.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    crc
}

/// CRC of a SyncMark frame: over the segment salt, then len|kind|payload.
fn sync_mark_crc(salt: u64, covered: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&salt.to_le_bytes());
    h.update(covered);
    h.finalize()
}

/// Encodes a SyncMark frame for a segment with the given salt.
pub(crate) fn sync_mark(salt: u64, synced_lsn: Lsn) -> [u8; SYNC_MARK_FRAME_BYTES] {
    let mut out = [0u8; SYNC_MARK_FRAME_BYTES];
    out[4..8].copy_from_slice(&8u32.to_le_bytes());
    out[8] = FrameKind::SyncMark as u8;
    out[9..].copy_from_slice(&synced_lsn.0.to_le_bytes());
    let crc = sync_mark_crc(salt, &out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The `synced_lsn` of a valid SyncMark frame at the start of `data`, in a
/// segment with `salt`; `None` if there is none. Accepts exactly what
/// [`decode_frame`] accepts as a SyncMark, but checks the fixed length and
/// kind before hashing, so a call hashes at most 8 + 13 bytes: the search
/// for a mark at every offset of a damaged tail stays linear in its size.
pub(crate) fn decode_sync_mark(data: &[u8], salt: u64) -> Option<Lsn> {
    let frame = data.get(..SYNC_MARK_FRAME_BYTES)?;
    let mut c = Cursor::new(frame);
    let (crc, len, kind) = (c.u32()?, c.u32()?, c.u8()?);
    if len != 8 || kind != FrameKind::SyncMark as u8 {
        return None;
    }
    let synced_lsn = Lsn(c.u64()?);
    let covered = frame.get(4..)?;
    count_hashed(8 + covered.len());
    (sync_mark_crc(salt, covered) == crc).then_some(synced_lsn)
}

/// One operation of a decoded commit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op<'a> {
    pub(crate) key: &'a [u8],
    /// `None` is a delete (tombstone).
    pub(crate) value: Option<&'a [u8]>,
}

/// A decoded, validated commit record borrowing the segment bytes.
#[derive(Debug, Clone)]
pub(crate) struct CommitRecord<'a> {
    pub(crate) header: CommitHeader,
    /// The frame's CRC (the next record's `prev_crc`).
    pub(crate) crc: u32,
    op_count: u32,
    ops: &'a [u8],
}

impl<'a> CommitRecord<'a> {
    /// The operations, in ascending key order.
    pub(crate) fn ops(&self) -> impl Iterator<Item = Op<'a>> + Clone + 'a {
        let mut c = Cursor::new(self.ops);
        (0..self.op_count).map_while(move |_| decode_op(&mut c))
    }
}

/// A decoded frame.
#[derive(Debug, Clone)]
pub(crate) enum Frame<'a> {
    Commit(CommitRecord<'a>),
    SyncMark { synced_lsn: Lsn },
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The frame header or payload runs past the end of the data.
    Truncated,
    /// Length, checksum, kind or payload structure is wrong.
    Invalid(&'static str),
}

fn decode_op<'a>(c: &mut Cursor<'a>) -> Option<Op<'a>> {
    let kind = c.u8()?;
    let key = c.len_prefixed()?;
    let value = match kind {
        k if k == OpKind::Put as u8 => Some(c.len_prefixed()?),
        k if k == OpKind::Delete as u8 => None,
        _ => return None,
    };
    Some(Op { key, value })
}

/// Decodes the frame at the start of `data` in a segment with `salt`;
/// returns it and its total size.
pub(crate) fn decode_frame(data: &[u8], salt: u64) -> Result<(Frame<'_>, usize), FrameError> {
    let mut c = Cursor::new(data);
    let (Some(crc), Some(len), Some(kind)) = (c.u32(), c.u32(), c.u8()) else {
        return Err(FrameError::Truncated);
    };
    let len = len as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::Invalid("frame length exceeds the maximum"));
    }
    let payload = c.bytes(len).ok_or(FrameError::Truncated)?;
    let covered = data
        .get(4..FRAME_HEADER_BYTES + len)
        .ok_or(FrameError::Truncated)?;
    let actual = if kind == FrameKind::SyncMark as u8 {
        count_hashed(8 + covered.len());
        sync_mark_crc(salt, covered)
    } else {
        count_hashed(covered.len());
        crc32fast::hash(covered)
    };
    if actual != crc {
        return Err(FrameError::Invalid("frame checksum mismatch"));
    }
    let frame = match kind {
        k if k == FrameKind::Commit as u8 => Frame::Commit(decode_commit(payload, crc)?),
        k if k == FrameKind::SyncMark as u8 => {
            let mut p = Cursor::new(payload);
            let synced = p.u64().ok_or(FrameError::Invalid("short sync mark"))?;
            if p.remaining() != 0 {
                return Err(FrameError::Invalid("sync mark has trailing bytes"));
            }
            Frame::SyncMark {
                synced_lsn: Lsn(synced),
            }
        }
        _ => return Err(FrameError::Invalid("unknown frame kind")),
    };
    Ok((frame, FRAME_HEADER_BYTES + len))
}

fn decode_commit(payload: &[u8], crc: u32) -> Result<CommitRecord<'_>, FrameError> {
    let bad = FrameError::Invalid;
    let mut c = Cursor::new(payload);
    let lsn = Lsn(c.u64().ok_or(bad("short commit header"))?);
    let commit_ts = Ts::from(c.u64().ok_or(bad("short commit header"))?);
    let epoch = c.u64().ok_or(bad("short commit header"))?;
    let prev_crc = c.u32().ok_or(bad("short commit header"))?;
    let op_count = c.u32().ok_or(bad("short commit header"))?;
    let ops = payload
        .get(COMMIT_HEADER_BYTES..)
        .ok_or(bad("short commit header"))?;
    let mut prev_key: Option<&[u8]> = None;
    for _ in 0..op_count {
        let op = decode_op(&mut c).ok_or(bad("malformed operation"))?;
        if op.key.len() > MAX_KEY_BYTES || op.value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(bad("operation exceeds size limits"));
        }
        if prev_key.is_some_and(|p| p >= op.key) {
            return Err(bad("operation keys not strictly ascending"));
        }
        prev_key = Some(op.key);
    }
    if c.remaining() != 0 {
        return Err(bad("commit record has trailing bytes"));
    }
    if lsn == Lsn::ZERO {
        return Err(bad("commit record with lsn 0"));
    }
    let header = CommitHeader {
        lsn,
        commit_ts,
        epoch,
        prev_crc,
    };
    Ok(CommitRecord {
        header,
        crc,
        op_count,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_frame(lsn: u64, ops: &[(&[u8], Option<&[u8]>)]) -> (Vec<u8>, u32) {
        let mut b = CommitFrameBuilder::with_capacity(64);
        for (k, v) in ops {
            b.push(k, *v).unwrap();
        }
        let mut out = Vec::new();
        let header = CommitHeader {
            lsn: Lsn(lsn),
            commit_ts: Ts::from(99),
            epoch: 3,
            prev_crc: 0xabcd,
        };
        let crc = seal_commit(&b.finish(), &header, &mut out);
        (out, crc)
    }

    #[test]
    fn commit_round_trips() {
        let (buf, crc) = commit_frame(7, &[(&b"a"[..], Some(&b"1"[..])), (&b"b"[..], None)]);
        let (frame, used) = decode_frame(&buf, 0).unwrap();
        assert_eq!(used, buf.len());
        let Frame::Commit(rec) = frame else {
            panic!("not a commit")
        };
        assert_eq!(rec.crc, crc);
        assert_eq!(rec.header.lsn, Lsn(7));
        assert_eq!(rec.header.commit_ts, Ts::from(99));
        assert_eq!(rec.header.epoch, 3);
        assert_eq!(rec.header.prev_crc, 0xabcd);
        let ops: Vec<_> = rec.ops().collect();
        assert_eq!(
            ops,
            vec![
                Op {
                    key: b"a",
                    value: Some(b"1")
                },
                Op {
                    key: b"b",
                    value: None
                }
            ]
        );
    }

    #[test]
    fn empty_record_and_sync_mark_round_trip() {
        let (buf, _) = commit_frame(1, &[]);
        let (Frame::Commit(rec), _) = decode_frame(&buf, 0).unwrap() else {
            panic!()
        };
        assert_eq!(rec.ops().count(), 0);
        let mark = sync_mark(5, Lsn(41));
        let (frame, used) = decode_frame(&mark, 5).unwrap();
        assert_eq!(used, SYNC_MARK_FRAME_BYTES);
        assert!(matches!(
            frame,
            Frame::SyncMark {
                synced_lsn: Lsn(41)
            }
        ));
    }

    #[test]
    fn every_truncation_is_truncated_and_every_bit_flip_is_invalid() {
        let (buf, _) = commit_frame(
            5,
            &[(&b"key"[..], Some(&b"value"[..])), (&b"kez"[..], None)],
        );
        for cut in 0..buf.len() {
            assert_eq!(
                decode_frame(&buf[..cut], 0).unwrap_err(),
                FrameError::Truncated,
                "cut {cut}"
            );
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                // A flipped length can only shorten the frame (-> checksum) or
                // lengthen it past the data (-> truncated); never Ok.
                assert!(decode_frame(&b, 0).is_err(), "flip byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn a_sync_mark_is_valid_only_under_its_segments_salt() {
        let mark = sync_mark(0xfeed, Lsn(7));
        assert!(decode_frame(&mark, 0xfeed).is_ok());
        assert_eq!(
            decode_frame(&mark, 0xbeef).unwrap_err(),
            FrameError::Invalid("frame checksum mismatch")
        );
    }

    #[test]
    fn decode_sync_mark_accepts_exactly_the_marks_decode_frame_accepts() {
        let mark = sync_mark(0xfeed, Lsn(7));
        assert_eq!(decode_sync_mark(&mark, 0xfeed), Some(Lsn(7)));
        assert_eq!(decode_sync_mark(&mark, 0xbeef), None);
        assert_eq!(decode_sync_mark(&mark[..16], 0xfeed), None);
        for i in 0..mark.len() {
            for bit in 0..8 {
                let mut m = mark.to_vec();
                m[i] ^= 1 << bit;
                let by_frame = match decode_frame(&m, 0xfeed) {
                    Ok((Frame::SyncMark { synced_lsn }, _)) => Some(synced_lsn),
                    _ => None,
                };
                assert_eq!(decode_sync_mark(&m, 0xfeed), by_frame, "byte {i} bit {bit}");
            }
        }
        let (commit, _) = commit_frame(1, &[]);
        assert_eq!(decode_sync_mark(&commit, 0), None);
    }

    #[test]
    fn unsorted_keys_and_unknown_kinds_are_invalid() {
        let (buf, _) = commit_frame(5, &[(&b"b"[..], None), (&b"a"[..], None)]);
        assert_eq!(
            decode_frame(&buf, 0).unwrap_err(),
            FrameError::Invalid("operation keys not strictly ascending")
        );
        let mut mark = sync_mark(0, Lsn(1)).to_vec();
        mark[8] = 9;
        let crc = crc32fast::hash(&mark[4..]);
        mark[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_frame(&mark, 0).unwrap_err(),
            FrameError::Invalid("unknown frame kind")
        );
    }

    #[test]
    fn segment_header_round_trips_and_detects_damage() {
        let h = SegmentHeader {
            segment_no: 4,
            epoch: 2,
            first_lsn: Lsn(100),
            prev_crc: 77,
            salt: 9,
        };
        let enc = h.encode();
        assert_eq!(SegmentHeader::decode(&enc).unwrap(), h);
        assert_eq!(
            SegmentHeader::decode(&enc[..55]).unwrap_err(),
            HeaderError::Torn
        );
        assert_eq!(
            SegmentHeader::decode(&[0; 56]).unwrap_err(),
            HeaderError::Torn
        );
        let mut bad = enc;
        bad[20] ^= 1;
        assert_eq!(
            SegmentHeader::decode(&bad).unwrap_err(),
            HeaderError::Checksum
        );
        let mut torn = enc;
        torn[3..].fill(0);
        assert_eq!(
            SegmentHeader::decode(&torn).unwrap_err(),
            HeaderError::Checksum
        );
        let mut flags = enc;
        flags[10] = 1;
        let crc = crc32fast::hash(&flags[..52]);
        flags[52..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&flags).unwrap_err(),
            HeaderError::Corrupt("bad segment header fields")
        );
        let mut newer = enc;
        newer[8] = 2;
        let crc = crc32fast::hash(&newer[..52]);
        newer[52..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&newer).unwrap_err(),
            HeaderError::Version(2)
        );
    }
}
