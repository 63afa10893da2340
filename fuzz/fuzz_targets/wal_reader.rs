//! WAL reader: arbitrary bytes as a segment never panic and yield only a clean
//! log, a torn tail, or corruption. Properties checked beyond "no panic":
//! - a torn tail at offset X: the bytes before X read back clean, with the
//!   same records (what recovery keeps after truncating is a valid log);
//! - an undamaged built log reads back exactly as built;
//! - records come out with consecutive LSNs;
//! - a zero tail at offset X: the bytes before X read back clean, with the
//!   same records, and every byte from X on is zero; zeros appended to an
//!   undamaged built log (preallocated space) read back as a zero tail.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata::__internals::{WalScan, build_wal_segment, scan_wal_segment, segment_header};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Arbitrary bytes as a whole file.
    Raw(Vec<u8>, bool),
    /// A valid header followed by arbitrary bytes.
    Framed(Vec<u8>),
    /// A valid log of small transactions, then damage: byte flips and a cut.
    Built {
        txns: Vec<Vec<(u8, Option<u8>)>>,
        flips: Vec<(u16, u8)>,
        cut: Option<u16>,
        /// Zero bytes appended after the damage (a preallocated tail).
        zeros: u16,
    },
}

type Txn = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn check(data: &[u8], is_last: bool) -> WalScan {
    let scan = scan_wal_segment(data, is_last);
    match &scan {
        WalScan::TornTail { offset, records } => {
            assert!(is_last, "only the last segment may have a torn tail");
            let prefix = &data[..*offset as usize];
            assert_eq!(
                scan_wal_segment(prefix, is_last),
                WalScan::Clean(records.clone())
            );
            check_lsns(records);
        }
        WalScan::ZeroTail { offset, records } => {
            let offset = *offset as usize;
            assert!(data[offset..].iter().all(|&b| b == 0));
            assert_eq!(
                scan_wal_segment(&data[..offset], is_last),
                WalScan::Clean(records.clone())
            );
            check_lsns(records);
        }
        WalScan::Clean(records) => check_lsns(records),
        WalScan::Corrupt { offset } => assert!((*offset as usize) <= data.len()),
        WalScan::BadHeader => {}
    }
    scan
}

fn check_lsns(records: &[(u64, u64, Txn)]) {
    for pair in records.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1);
        assert!(pair[1].1 > pair[0].1);
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(data, is_last) => {
            check(&data, is_last);
        }
        Input::Framed(tail) => {
            let mut data = segment_header();
            data.extend_from_slice(&tail);
            check(&data, true);
            check(&data, false);
        }
        Input::Built {
            txns,
            flips,
            cut,
            zeros,
        } => {
            let txns: Vec<Txn> = txns
                .iter()
                .take(32)
                .map(|ops| {
                    ops.iter()
                        .map(|&(k, v)| (vec![k % 16], v.map(|n| vec![n; usize::from(n % 8)])))
                        .collect()
                })
                .collect();
            let mut data = build_wal_segment(&txns);
            if flips.is_empty() && cut.is_none() {
                let WalScan::Clean(records) = check(&data, true) else {
                    panic!("an undamaged log must read back clean");
                };
                assert_eq!(records.len(), txns.len());
                if zeros > 0 {
                    let end = data.len();
                    data.resize(end + usize::from(zeros), 0);
                    for is_last in [true, false] {
                        assert_eq!(
                            check(&data, is_last),
                            WalScan::ZeroTail {
                                offset: end as u64,
                                records: records.clone()
                            },
                            "zeros after an undamaged log are a zero tail"
                        );
                    }
                }
                return;
            }
            for (pos, xor) in flips.iter().take(4) {
                let len = data.len();
                data[usize::from(*pos) % len] ^= xor;
            }
            if let Some(cut) = cut {
                data.truncate(usize::from(cut) % (data.len() + 1));
            }
            data.resize(data.len() + usize::from(zeros), 0);
            check(&data, true);
            check(&data, false);
        }
    }
});
