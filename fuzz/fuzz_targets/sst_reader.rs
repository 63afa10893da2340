//! Sorted-table reader: arbitrary bytes as a table file never panic; a file
//! that opens reads the same forwards, backwards and through point gets
//! (checked inside `read_sst`). A table built from arbitrary versions reads
//! back exactly those versions; damaged, it reads back the same versions or
//! reports damage, never different ones.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata::__internals::{SstRead, TableVersion, build_sst, read_sst};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Arbitrary bytes as a whole file.
    Raw(Vec<u8>),
    /// A valid table of small versions, then damage: byte flips and a cut.
    Built {
        versions: Vec<(u8, u8, Option<u8>)>,
        block_bytes: u8,
        flips: Vec<(u16, u8)>,
        cut: Option<u16>,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(data) => {
            read_sst(&data);
        }
        Input::Built {
            versions,
            block_bytes,
            flips,
            cut,
        } => {
            let versions: Vec<TableVersion> = versions
                .iter()
                .take(200)
                .map(|&(k, ts, v)| {
                    let key = vec![b'k'; usize::from(k % 5)].into_iter().chain([k]).collect();
                    (key, u64::from(ts % 16), v.map(|n| vec![n; usize::from(n % 12)]))
                })
                .collect();
            let Some(mut data) = build_sst(&versions, usize::from(block_bytes) + 16) else {
                return;
            };
            let SstRead::Versions(clean) = read_sst(&data) else {
                panic!("an undamaged table must read back");
            };
            let mut expect = versions.clone();
            expect.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            expect.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
            assert_eq!(clean.len(), expect.len());
            for ((k, t, _), (ek, et, _)) in clean.iter().zip(&expect) {
                assert_eq!((k, t), (ek, et));
            }
            if flips.is_empty() && cut.is_none() {
                return;
            }
            for (pos, xor) in flips.iter().take(4) {
                let len = data.len();
                data[usize::from(*pos) % len] ^= xor;
            }
            if let Some(cut) = cut {
                data.truncate(usize::from(cut) % (data.len() + 1));
            }
            match read_sst(&data) {
                SstRead::Damaged => {}
                SstRead::Versions(v) => assert_eq!(v, clean, "damage changed what a table says"),
            }
        }
    }
});
