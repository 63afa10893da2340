//! Manifest decoding: arbitrary bytes as a manifest file and as `CURRENT`
//! never panic. Properties checked beyond "no panic":
//! - a replayed manifest's valid prefix (its first `valid_len` bytes)
//!   replays clean, to the same state and record count, and a torn tail
//!   starts exactly at `valid_len` (what a writable open cuts is all that
//!   is dropped);
//! - an undamaged built manifest replays exactly (every record, no tail);
//!   one damaged byte is corruption or drops at most its last record, and
//!   is never taken for a newer version;
//! - `CURRENT`: only the exact encoding of a number decodes, to that number.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata::__internals::{
    ManifestScan, build_manifest, decode_current, encode_current, scan_manifest,
};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Arbitrary bytes as a whole manifest file.
    Raw(Vec<u8>),
    /// A valid manifest's header and snapshot, then arbitrary bytes.
    Framed(Vec<u8>),
    /// A valid manifest built from ops, then at most one damaged byte and a cut.
    Built {
        ops: Vec<(u8, u8, u8)>,
        flip: Option<(u16, u8)>,
        cut: Option<u16>,
    },
    /// Arbitrary bytes as `CURRENT`, and a number to encode.
    Current(Vec<u8>, u64),
}

fn check(data: &[u8]) -> ManifestScan {
    let scan = scan_manifest(data, 1);
    match &scan {
        ManifestScan::Replayed {
            records,
            valid_len,
            torn_at,
            snapshot,
        } => {
            let valid = *valid_len as usize;
            assert!(valid <= data.len());
            assert_eq!(torn_at.is_none(), valid == data.len());
            if let Some(at) = torn_at {
                assert_eq!(*at, *valid_len);
            }
            assert_eq!(
                scan_manifest(&data[..valid], 1),
                ManifestScan::Replayed {
                    records: *records,
                    valid_len: *valid_len,
                    torn_at: None,
                    snapshot: snapshot.clone(),
                }
            );
        }
        ManifestScan::Corrupt { offset } => assert!((*offset as usize) <= data.len()),
        ManifestScan::Unsupported => {}
    }
    scan
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(data) => {
            check(&data);
        }
        Input::Framed(tail) => {
            let (mut data, _) = build_manifest(&[]);
            data.extend_from_slice(&tail);
            check(&data);
        }
        Input::Built { ops, flip, cut } => {
            let ops: Vec<_> = ops.into_iter().take(64).collect();
            let (mut data, count) = build_manifest(&ops);
            let ManifestScan::Replayed { records, torn_at, .. } = check(&data) else {
                panic!("an undamaged manifest must replay");
            };
            assert_eq!((records, torn_at), (count, None));
            if let Some((at, xor)) = flip.filter(|&(_, xor)| xor != 0) {
                let at = usize::from(at) % data.len();
                data[at] ^= xor;
                match check(&data) {
                    ManifestScan::Replayed { records, .. } => {
                        assert!(records + 1 >= count, "more than the last record dropped")
                    }
                    ManifestScan::Corrupt { .. } => {}
                    ManifestScan::Unsupported => panic!("one damaged byte read as a newer version"),
                }
            }
            if let Some(cut) = cut {
                data.truncate(usize::from(cut) % (data.len() + 1));
                check(&data);
            }
        }
        Input::Current(data, number) => {
            if let Some(n) = decode_current(&data) {
                assert_eq!(encode_current(n), data);
            }
            if number > 0 {
                assert_eq!(decode_current(&encode_current(number)), Some(number));
            }
        }
    }
});
