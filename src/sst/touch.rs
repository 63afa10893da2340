//! Loading memory early. A point read is a chain of cache misses (the
//! filters of every table it may probe, a table's fences, a data block's
//! restart array, then its entries); where the addresses of several are
//! known at once, loading them one after another costs one memory latency
//! each. [`touch`] issues the loads first, independent of each other, so
//! they wait for memory together and the search that follows finds them
//! in the cache (decision 0028).
//!
//! A plain load, not a prefetch instruction: the intrinsic needs `unsafe`
//! on stable Rust, and independent loads already overlap in an
//! out-of-order core.

/// Loads item `at` of `items`, if there is one.
#[inline]
pub(crate) fn touch<T: Copy>(items: &[T], at: usize) {
    if let Some(&item) = items.get(at) {
        std::hint::black_box(item);
    }
}

/// Loads every cache line of `bytes[start..end]`.
#[inline]
pub(crate) fn touch_range(bytes: &[u8], start: usize, end: usize) {
    let mut at = start;
    while at < end {
        touch(bytes, at);
        at += LINE_BYTES;
    }
    if start < end {
        touch(bytes, end - 1);
    }
}

/// A cache line (x86-64 and most ARM cores).
const LINE_BYTES: usize = 64;
