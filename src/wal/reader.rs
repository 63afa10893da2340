//! Physical frames to logical commit records, deciding torn tail vs corruption.
//!
//! The policy (`docs/format/wal.md`, "What readers do"):
//! 1. Every valid commit must continue the chain: `lsn` = previous + 1,
//!    `prev_crc` = previous frame's CRC, `commit_ts` rising, `epoch` = the
//!    segment's epoch. A valid frame that breaks the chain is corruption: no
//!    torn write produces one.
//! 2. At the first invalid frame at offset `X` (last valid commit `L`): if
//!    every byte from `X` on is zero, the segment ends cleanly at `X` (the
//!    zero tail a preallocating writer leaves), reported as such in any
//!    segment: recovery refuses it in a segment that has a successor, which
//!    the writer cut to its last frame before creating it. Otherwise, in
//!    a segment that is not the last one, corruption; in the last one,
//!    corruption if a later valid SyncMark proves records after `L` were
//!    synced, else a torn tail to truncate at `X`.
//! 3. No valid frame is all zeros, so zero bytes that end a valid frame (a
//!    value may end in zeros) are consumed with it before rule 2 looks at
//!    what follows; and the search for a later SyncMark stops at the last
//!    non-zero byte, since a mark cannot start inside all-zero bytes.
//! 4. Work is linear in the segment's size: each valid frame is hashed once,
//!    the first invalid one at most once, and the search for a later
//!    SyncMark checks a 17-byte candidate's length and kind before hashing
//!    it (a fixed cost per offset).

use super::format::{CommitRecord, Frame, FrameError, decode_frame, decode_sync_mark};
use crate::types::{Lsn, Ts};

/// What the next valid commit record must continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[expect(
    clippy::struct_field_names,
    reason = "each field describes the last valid record"
)]
pub(crate) struct Chain {
    pub(crate) last_lsn: Lsn,
    pub(crate) last_crc: u32,
    pub(crate) last_ts: Ts,
}

/// How a segment's frames ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every byte belonged to a valid frame.
    Clean,
    /// The bytes from `offset` on are a torn tail: the caller truncates there.
    TornTail { offset: u64 },
    /// The frames end at `offset` and every byte after is zero: preallocated
    /// space, not lost data. The caller may cut it.
    ZeroTail { offset: u64 },
}

/// Why scanning stopped with an error.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Damage that a torn write cannot explain.
    Corrupt { offset: u64, what: String },
    /// The sink refused a record.
    Sink(crate::Error),
}

/// Where a segment's frames start and what its header says about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentFrames {
    /// Offset of the first frame (just past the header).
    pub(crate) start: usize,
    /// The salt its SyncMarks are checksummed with.
    pub(crate) salt: u64,
    /// The epoch every commit record in it must carry.
    pub(crate) epoch: u64,
}

/// [`scan_frames`] of a segment of epoch 0, with the signature the loom
/// models (`loom_tests.rs`) call: their fake sinks write epoch-0 records.
#[cfg(all(test, loom))]
pub(crate) fn scan_segment(
    data: &[u8],
    salt: u64,
    start: usize,
    chain: &mut Chain,
    is_last: bool,
    sink: &mut dyn FnMut(&CommitRecord<'_>) -> crate::Result<()>,
) -> Result<Outcome, ReadError> {
    let seg = SegmentFrames {
        start,
        salt,
        epoch: 0,
    };
    scan_frames(data, seg, chain, is_last, sink)
}

/// Scans the frames of one segment from `seg.start`, handing each valid
/// commit record to `sink` in order and advancing `chain`.
pub(crate) fn scan_frames(
    data: &[u8],
    seg: SegmentFrames,
    chain: &mut Chain,
    is_last: bool,
    sink: &mut dyn FnMut(&CommitRecord<'_>) -> crate::Result<()>,
) -> Result<Outcome, ReadError> {
    let SegmentFrames { start, salt, epoch } = seg;
    let mut offset = start;
    while offset < data.len() {
        let rest = data.get(offset..).unwrap_or_default();
        let what = match decode_frame(rest, salt) {
            Ok((frame, used)) => {
                check_chain(&frame, chain, epoch).map_err(|what| corrupt(offset, what))?;
                if let Frame::Commit(rec) = &frame {
                    sink(rec).map_err(ReadError::Sink)?;
                    *chain = Chain {
                        last_lsn: rec.header.lsn,
                        last_crc: rec.crc,
                        last_ts: rec.header.commit_ts,
                    };
                }
                offset += used;
                continue;
            }
            Err(FrameError::Truncated) => "truncated frame",
            Err(FrameError::Invalid(what)) => what,
        };
        if rest.iter().all(|&b| b == 0) {
            return Ok(Outcome::ZeroTail {
                offset: offset as u64,
            });
        }
        if !is_last {
            return Err(corrupt(offset, what));
        }
        if let Some(at) = later_proof_of_sync(data, salt, offset, chain.last_lsn) {
            return Err(corrupt(
                offset,
                format!("{what}; a sync mark at offset {at} shows this data was synced"),
            ));
        }
        return Ok(Outcome::TornTail {
            offset: offset as u64,
        });
    }
    Ok(Outcome::Clean)
}

fn corrupt(offset: usize, what: impl Into<String>) -> ReadError {
    ReadError::Corrupt {
        offset: offset as u64,
        what: what.into(),
    }
}

fn check_chain(frame: &Frame<'_>, chain: &Chain, epoch: u64) -> Result<(), String> {
    match frame {
        Frame::Commit(rec) => {
            let h = &rec.header;
            if h.epoch != epoch {
                return Err(format!(
                    "record {} has epoch {} in a segment of epoch {epoch}",
                    h.lsn, h.epoch
                ));
            }
            if h.lsn != chain.last_lsn.next() {
                return Err(format!("lsn {} does not follow {}", h.lsn, chain.last_lsn));
            }
            if h.prev_crc != chain.last_crc {
                return Err(format!("record {} breaks the checksum chain", h.lsn));
            }
            if h.commit_ts <= chain.last_ts {
                return Err(format!(
                    "record {} has a commit_ts that does not rise",
                    h.lsn
                ));
            }
            Ok(())
        }
        Frame::SyncMark { synced_lsn } if *synced_lsn > chain.last_lsn => Err(format!(
            "sync mark claims lsn {synced_lsn} before it was written"
        )),
        Frame::SyncMark { .. } => Ok(()),
    }
}

/// Looks at every offset after `from` for a valid SyncMark whose `synced_lsn`
/// exceeds `last_lsn`; returns its offset. Marks are checksummed with the
/// segment's random salt, so bytes inside a record cannot pass for one.
/// A valid frame is never all zeros, so no mark starts after the last
/// non-zero byte: a preallocated zero tail is not searched.
///
/// Work: a mark has one fixed length, so each offset costs at most one
/// 17-byte check (`decode_sync_mark` looks at length and kind before it
/// hashes): linear in the bytes searched, whatever lengths the damaged bytes
/// claim.
fn later_proof_of_sync(data: &[u8], salt: u64, from: usize, last_lsn: Lsn) -> Option<usize> {
    let last_non_zero = data.iter().rposition(|&b| b != 0)?;
    (from + 1..=last_non_zero).find(|&at| {
        decode_sync_mark(data.get(at..).unwrap_or_default(), salt)
            .is_some_and(|synced_lsn| synced_lsn > last_lsn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::format::{
        CommitFrameBuilder, CommitHeader, SYNC_MARK_FRAME_BYTES, seal_commit, sync_mark,
    };

    const SALT: u64 = 0x5eed;
    const SEG: SegmentFrames = SegmentFrames {
        start: 0,
        salt: SALT,
        epoch: 0,
    };

    /// A segment body of `n` groups, each a SyncMark (covering the group
    /// before it, as in Sync mode) plus one commit.
    fn log(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        let mut prev_crc = 0;
        for lsn in 1..=n {
            out.extend_from_slice(&sync_mark(SALT, Lsn(lsn - 1)));
            starts.push(out.len());
            let mut b = CommitFrameBuilder::with_capacity(16);
            b.push(format!("k{lsn}").as_bytes(), Some(b"v")).unwrap();
            let h = CommitHeader {
                lsn: Lsn(lsn),
                commit_ts: Ts::from(lsn * 10),
                epoch: 0,
                prev_crc,
            };
            prev_crc = seal_commit(&b.finish(), &h, &mut out);
        }
        (out, starts)
    }

    fn scan(data: &[u8], is_last: bool) -> (Result<Outcome, ReadError>, Vec<Lsn>) {
        let mut seen = Vec::new();
        let mut chain = Chain::default();
        let r = scan_frames(data, SEG, &mut chain, is_last, &mut |rec| {
            seen.push(rec.header.lsn);
            Ok(())
        });
        (r, seen)
    }

    #[test]
    fn clean_log_yields_every_record() {
        let (data, _) = log(5);
        let (r, seen) = scan(&data, true);
        assert_eq!(r.unwrap(), Outcome::Clean);
        assert_eq!(seen, (1..=5).map(Lsn).collect::<Vec<_>>());
    }

    #[test]
    fn every_cut_of_the_last_segment_is_a_torn_tail_yielding_a_prefix() {
        let (data, _) = log(4);
        for cut in 0..data.len() {
            let (r, seen) = scan(&data[..cut], true);
            match r.unwrap() {
                Outcome::Clean => {}
                Outcome::TornTail { offset } | Outcome::ZeroTail { offset } => {
                    assert!(offset as usize <= cut);
                }
            }
            assert_eq!(seen, (1..=seen.len() as u64).map(Lsn).collect::<Vec<_>>());
        }
    }

    #[test]
    fn damage_followed_by_a_covering_sync_mark_is_corruption_with_or_without_a_zero_tail() {
        for zero_tail in [0, 4096] {
            let (mut data, starts) = log(4);
            data[starts[1] + 12] ^= 0x40;
            data.resize(data.len() + zero_tail, 0);
            let (r, seen) = scan(&data, true);
            let Err(ReadError::Corrupt { offset, what }) = r else {
                panic!("expected corruption (zero tail {zero_tail})")
            };
            assert_eq!(offset as usize, starts[1]);
            assert!(what.contains("sync mark"), "{what}");
            assert_eq!(seen, vec![Lsn(1)]);
        }
    }

    #[test]
    fn damage_in_the_last_group_is_a_torn_tail() {
        let (mut data, starts) = log(3);
        let at = starts[2] + 12;
        data[at] ^= 0x40;
        let (r, seen) = scan(&data, true);
        assert_eq!(
            r.unwrap(),
            Outcome::TornTail {
                offset: starts[2] as u64
            }
        );
        assert_eq!(seen, vec![Lsn(1), Lsn(2)]);
    }

    #[test]
    fn any_damage_in_an_earlier_segment_is_corruption() {
        let (data, _) = log(3);
        let (r, _) = scan(&data[..data.len() - 1], false);
        assert!(matches!(r, Err(ReadError::Corrupt { .. })));
    }

    #[test]
    fn unsynced_records_after_damage_are_dropped_to_keep_a_prefix() {
        // Buffered mode: marks never advance, so damage in the middle cannot be
        // told from lost write-back, and the prefix before it is what survives.
        let mut out = Vec::new();
        let mut prev_crc = 0;
        let mut starts = Vec::new();
        for lsn in 1..=4u64 {
            out.extend_from_slice(&sync_mark(SALT, Lsn(0)));
            starts.push(out.len());
            let mut b = CommitFrameBuilder::with_capacity(16);
            b.push(b"k", Some(b"v")).unwrap();
            let h = CommitHeader {
                lsn: Lsn(lsn),
                commit_ts: Ts::from(lsn),
                epoch: 0,
                prev_crc,
            };
            prev_crc = seal_commit(&b.finish(), &h, &mut out);
        }
        out[starts[1] + 20] ^= 1;
        let (r, seen) = scan(&out, true);
        assert_eq!(
            r.unwrap(),
            Outcome::TornTail {
                offset: starts[1] as u64
            }
        );
        assert_eq!(seen, vec![Lsn(1)]);
    }

    #[test]
    fn sync_mark_bytes_inside_a_value_prove_nothing() {
        // A value that carries a mark claiming a huge synced lsn (checksummed
        // without this segment's salt, as user data must be), then a torn
        // write of that record: still a torn tail.
        let (mut data, _) = log(2);
        let mut value = vec![b'x'; 10];
        value.extend_from_slice(&sync_mark(0, Lsn(1_000_000)));
        value.extend_from_slice(&[b'y'; 10]);
        data.extend_from_slice(&sync_mark(SALT, Lsn(2)));
        let start = data.len();
        let mut b = CommitFrameBuilder::with_capacity(64);
        b.push(b"k3", Some(&value)).unwrap();
        let h = CommitHeader {
            lsn: Lsn(3),
            commit_ts: Ts::from(30),
            epoch: 0,
            prev_crc: 0,
        };
        seal_commit(&b.finish(), &h, &mut data);
        data.truncate(data.len() - 5);
        let (r, seen) = scan(&data, true);
        assert_eq!(
            r.unwrap(),
            Outcome::TornTail {
                offset: start as u64
            }
        );
        assert_eq!(seen, vec![Lsn(1), Lsn(2)]);
    }

    /// A one-commit group (mark covering `lsn - 1`) whose value is `value`.
    fn group(data: &mut Vec<u8>, lsn: u64, prev_crc: u32, value: &[u8]) -> u32 {
        data.extend_from_slice(&sync_mark(SALT, Lsn(lsn - 1)));
        let mut b = CommitFrameBuilder::with_capacity(64);
        b.push(format!("k{lsn}").as_bytes(), Some(value)).unwrap();
        let h = CommitHeader {
            lsn: Lsn(lsn),
            commit_ts: Ts::from(lsn * 10),
            epoch: 0,
            prev_crc,
        };
        seal_commit(&b.finish(), &h, data)
    }

    #[test]
    fn zeros_after_the_last_frame_are_a_zero_tail_in_any_segment() {
        let (log, _) = log(3);
        for zeros in [1, 8, 9, 17, 4096] {
            let mut data = log.clone();
            data.resize(log.len() + zeros, 0);
            for is_last in [true, false] {
                let (r, seen) = scan(&data, is_last);
                assert_eq!(
                    r.unwrap(),
                    Outcome::ZeroTail {
                        offset: log.len() as u64
                    },
                    "{zeros} zeros, last: {is_last}"
                );
                assert_eq!(seen, vec![Lsn(1), Lsn(2), Lsn(3)]);
            }
        }
    }

    #[test]
    fn a_torn_frame_followed_by_zeros_is_a_torn_tail_at_the_frame_start() {
        let (mut data, starts) = log(3);
        // The last commit reached the disk only in part; preallocated zeros
        // follow where the rest should be.
        let cut = starts[2] + 11;
        data[cut..].fill(0);
        data.resize(data.len() + 1000, 0);
        let (r, seen) = scan(&data, true);
        assert_eq!(
            r.unwrap(),
            Outcome::TornTail {
                offset: starts[2] as u64
            }
        );
        assert_eq!(seen, vec![Lsn(1), Lsn(2)]);
        let (r, _) = scan(&data, false);
        assert!(
            matches!(r, Err(ReadError::Corrupt { offset, .. }) if offset as usize == starts[2])
        );
    }

    #[test]
    fn a_value_ending_in_zeros_before_a_zero_tail_is_read_whole() {
        let mut data = Vec::new();
        let crc = group(&mut data, 1, 0, b"v");
        let value = [b'x', 0, 0, 0, 0, 0, 0, 0, 0, 0];
        group(&mut data, 2, crc, &value);
        let end = data.len();
        data.resize(end + 300, 0);
        let mut values = Vec::new();
        let mut chain = Chain::default();
        let r = scan_frames(&data, SEG, &mut chain, true, &mut |rec| {
            values.extend(rec.ops().map(|op| op.value.map(<[u8]>::to_vec)));
            Ok(())
        });
        assert_eq!(r.unwrap(), Outcome::ZeroTail { offset: end as u64 });
        assert_eq!(values, vec![Some(b"v".to_vec()), Some(value.to_vec())]);
        assert_eq!(chain.last_lsn, Lsn(2));
    }

    #[test]
    fn a_sync_mark_whose_last_bytes_are_zero_is_still_found_before_a_zero_tail() {
        // The proof search stops at the last non-zero byte, but a mark
        // starting before it may end in zeros (a small synced_lsn's high
        // bytes): it must still count.
        let (mut data, starts) = log(2);
        data[starts[0] + 12] ^= 0x40;
        data.extend_from_slice(&sync_mark(SALT, Lsn(2)));
        assert_eq!(data.last(), Some(&0));
        data.resize(data.len() + 100, 0);
        let (r, _) = scan(&data, true);
        assert!(
            matches!(r, Err(ReadError::Corrupt { offset, .. }) if offset as usize == starts[0])
        );
    }

    /// Random bytes (xorshift64, fixed seed).
    fn random_bytes(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// A damaged tail of incompressible bytes: the search for a later sync
    /// mark looks at every offset, and once hashed a frame's whole claimed
    /// length at each (about 10^13 bytes of CRC for a 64 MiB tail). Every
    /// byte on disk may be hashed only a bounded number of times.
    #[test]
    fn the_work_of_scanning_a_random_tail_is_linear_in_its_size() {
        let (mut data, _) = log(50);
        data.extend_from_slice(&random_bytes(4 << 20));
        let before = crate::wal::format::hashed_bytes();
        let (r, seen) = scan(&data, true);
        let hashed = crate::wal::format::hashed_bytes() - before;
        assert!(matches!(r, Ok(Outcome::TornTail { .. })), "{r:?}");
        assert_eq!(seen.len(), 50);
        assert!(
            hashed <= 4 * data.len() as u64,
            "{hashed} bytes hashed for a {}-byte segment",
            data.len()
        );
    }

    /// `docs/format/wal.md`: a commit record's epoch equals its segment's.
    /// A valid record of another epoch is corruption, in the last segment
    /// too (no torn write makes one), even as the very last frame.
    #[test]
    fn a_record_whose_epoch_is_not_its_segments_is_corruption() {
        let (data, starts) = log(3);
        let mut chain = Chain::default();
        for epoch in [1, 7] {
            let seg = SegmentFrames { epoch, ..SEG };
            let r = scan_frames(&data, seg, &mut chain, true, &mut |_| Ok(()));
            let Err(ReadError::Corrupt { offset, what }) = r else {
                panic!("epoch {epoch}: expected corruption, got {r:?}")
            };
            assert_eq!(offset as usize, starts[0]);
            assert!(what.contains("epoch"), "{what}");
        }
        // Records 1 and 2, then a record 3 of epoch 1 that is otherwise valid.
        let mut tail = data[..starts[2] - SYNC_MARK_FRAME_BYTES].to_vec();
        let mut two = Chain::default();
        scan_frames(&tail, SEG, &mut two, true, &mut |_| Ok(())).unwrap();
        tail.extend_from_slice(&sync_mark(SALT, Lsn(2)));
        let start = tail.len();
        let mut b = CommitFrameBuilder::with_capacity(16);
        b.push(b"k3", Some(b"v")).unwrap();
        let h = CommitHeader {
            lsn: Lsn(3),
            commit_ts: Ts::from(30),
            epoch: 1,
            prev_crc: two.last_crc,
        };
        seal_commit(&b.finish(), &h, &mut tail);
        let (r, seen) = scan(&tail, true);
        assert!(
            matches!(r, Err(ReadError::Corrupt { offset, .. }) if offset as usize == start),
            "{r:?}"
        );
        assert_eq!(seen, vec![Lsn(1), Lsn(2)]);
    }

    #[test]
    fn a_valid_record_that_breaks_the_chain_is_corruption() {
        let (a, _) = log(2);
        let mut data = a.clone();
        data.extend_from_slice(&a); // lsn 1 again after lsn 2
        let (r, _) = scan(&data, true);
        let Err(ReadError::Corrupt { what, .. }) = r else {
            panic!("expected corruption")
        };
        assert!(what.contains("sync mark") || what.contains("lsn"), "{what}");
    }
}
