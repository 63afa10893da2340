//! Sorted-table blocks: arbitrary bytes as a block's contents never panic
//! the validator or a cursor. A block the validator accepts reads back
//! strictly ascending, the same in both directions, and seeks land on the
//! first entry at or after their target (checked inside `decode_block`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::__internals::decode_block;

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (contents, probe) = input;
    decode_block(&contents, &probe);
});
