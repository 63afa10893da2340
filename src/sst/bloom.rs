//! The table's bloom filter over its distinct user keys
//! (`docs/format/sst.md`, "filter block contents"): `bits | probes |
//! hash_version`, over a stable 64-bit key hash. Version 1 (tables of
//! format 1) spreads a key's probes over the whole filter by double
//! hashing; version 2 (written since format 2) keeps them in one 64-byte
//! block chosen by the hash, so a probe costs one cache line, not up to
//! `probes` (decision 0025). It never says "absent" for a key that was
//! added.

use super::touch::touch;
use crate::codec::Cursor;

/// Default bits per key: about 0.8% false positives with 7 probes.
pub(crate) const DEFAULT_BITS_PER_KEY: usize = 10;
/// Filter version 1: probes over the whole filter.
pub(crate) const HASH_V1: u8 = 1;
/// Filter version 2: every probe of a key in one 64-byte block.
pub(crate) const HASH_V2_BLOCKED: u8 = 2;
/// What builders write.
pub(crate) const DEFAULT_HASH_VERSION: u8 = HASH_V2_BLOCKED;
/// Bytes (and bits) of one block of a version-2 filter.
const BLOCK_BYTES: usize = 64;
const BLOCK_BITS: u32 = 512;

/// The filter's key hash, version 1: FNV-1a 64 then the splitmix64
/// finaliser. Stable across builds and platforms (it is on disk).
pub(crate) fn hash64(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn probe_bits(hash: u64, probes: u8, bits: u32) -> impl Iterator<Item = u32> {
    let h1 = hash as u32;
    let h2 = ((hash >> 32) as u32) | 1;
    (0..u32::from(probes)).map(move |j| h1.wrapping_add(j.wrapping_mul(h2)) % bits)
}

/// Version 2: the bits a key sets, all in block `((hash >> 32) * blocks)
/// >> 32`; within it `(h1 + j * delta) % 512` with `h1 = hash as u32` and
/// `delta = h1.rotate_right(17) | 1`.
pub(crate) fn blocked_probe_bits(hash: u64, probes: u8, blocks: u32) -> impl Iterator<Item = u32> {
    let block = (((hash >> 32) * u64::from(blocks)) >> 32) as u32;
    let base = block * BLOCK_BITS;
    let h1 = hash as u32;
    let delta = h1.rotate_right(17) | 1;
    (0..u32::from(probes)).map(move |j| base + h1.wrapping_add(j.wrapping_mul(delta)) % BLOCK_BITS)
}

/// The filter's size in bytes for `keys` keys: at least 8, and at most what
/// a reader accepts (bit positions are `u32`), so a huge table gets a less
/// selective filter, never a truncated bit count (a division by zero, or
/// probes the reader computes differently: false negatives).
fn filter_bytes(keys: usize, bits_per_key: usize) -> usize {
    keys.saturating_mul(bits_per_key)
        .div_ceil(8)
        .clamp(8, MAX_FILTER_BYTES)
}

/// The largest filter [`Bloom::decode`] accepts.
const MAX_FILTER_BYTES: usize = (u32::MAX / 8) as usize;

/// Collects key hashes and writes the filter block's contents.
#[derive(Debug, Default)]
pub(crate) struct BloomBuilder {
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// The bytes the builder holds (a hash per key added).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.hashes.capacity() * size_of::<u64>()
    }

    /// Adds a distinct user key (the caller adds each key once).
    pub(crate) fn add(&mut self, key: &[u8]) {
        self.hashes.push(hash64(key));
    }

    /// The filter's contents for `bits_per_key` bits per key added, in
    /// the version builders write.
    pub(crate) fn finish(&self, bits_per_key: usize) -> Vec<u8> {
        self.finish_version(bits_per_key, DEFAULT_HASH_VERSION)
    }

    /// [`BloomBuilder::finish`] in filter `version` (1 or 2; tests write 1
    /// to check that older tables still read).
    pub(crate) fn finish_version(&self, bits_per_key: usize, version: u8) -> Vec<u8> {
        let bits_per_key = bits_per_key.clamp(1, 64);
        // ln 2 * bits per key probes minimise false positives.
        let probes = ((bits_per_key * 69 + 50) / 100).clamp(1, 30) as u8;
        let mut bytes = filter_bytes(self.hashes.len(), bits_per_key);
        if version == HASH_V2_BLOCKED {
            bytes = bytes
                .div_ceil(BLOCK_BYTES)
                .saturating_mul(BLOCK_BYTES)
                .min(MAX_FILTER_BYTES / BLOCK_BYTES * BLOCK_BYTES);
        }
        let nbits = (bytes * 8) as u32;
        let mut out = vec![0u8; bytes];
        let mut set = |bit: u32| {
            if let Some(byte) = out.get_mut((bit / 8) as usize) {
                *byte |= 1 << (bit % 8);
            }
        };
        for &h in &self.hashes {
            if version == HASH_V2_BLOCKED {
                blocked_probe_bits(h, probes, nbits / BLOCK_BITS).for_each(&mut set);
            } else {
                probe_bits(h, probes, nbits).for_each(&mut set);
            }
        }
        out.push(probes);
        out.push(version);
        out
    }
}

/// A decoded filter, borrowing the block's contents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bloom<'a> {
    bits: &'a [u8],
    probes: u8,
    version: u8,
}

impl<'a> Bloom<'a> {
    pub(crate) fn decode(contents: &'a [u8]) -> Result<Bloom<'a>, &'static str> {
        let split = contents
            .len()
            .checked_sub(2)
            .ok_or("filter shorter than its trailer")?;
        let (bits, tail) = contents.split_at(split);
        let mut c = Cursor::new(tail);
        let probes = c.u8().ok_or("short filter")?;
        let version = c.u8().ok_or("short filter")?;
        if version != HASH_V1 && version != HASH_V2_BLOCKED {
            return Err("unknown filter hash version");
        }
        if bits.is_empty() || !(1..=30).contains(&probes) || bits.len() > MAX_FILTER_BYTES {
            return Err("filter of an impossible shape");
        }
        if version == HASH_V2_BLOCKED && bits.len() % BLOCK_BYTES != 0 {
            return Err("blocked filter not a whole number of 64-byte blocks");
        }
        Ok(Bloom {
            bits,
            probes,
            version,
        })
    }

    /// The byte of the filter that a probe for `hash` reads first: for a
    /// version-2 filter the start of the one 64-byte block all its probes
    /// fall in (so loading it early loads the whole probe).
    pub(crate) fn first_byte(&self, hash: u64) -> usize {
        let nbits = (self.bits.len() * 8) as u32;
        let bit = if self.version == HASH_V2_BLOCKED {
            blocked_probe_bits(hash, 1, nbits / BLOCK_BITS).next()
        } else {
            probe_bits(hash, 1, nbits).next()
        };
        let bit = bit.unwrap_or(0);
        if self.version == HASH_V2_BLOCKED {
            (bit / BLOCK_BITS) as usize * BLOCK_BYTES
        } else {
            (bit / 8) as usize
        }
    }

    /// Starts loading the filter's bits a probe for `hash` reads, so that
    /// several tables' probes wait for memory together rather than one
    /// after another ([`touch`]).
    pub(crate) fn touch(&self, hash: u64) {
        touch(self.bits, self.first_byte(hash));
    }

    /// The filter `decode` returned for `contents`, rebuilt from its
    /// [`Bloom::shape`] (a table decodes its filter once, at open).
    pub(crate) fn from_shape(contents: &'a [u8], shape: (u8, u8)) -> Bloom<'a> {
        let bits = contents
            .get(..contents.len().saturating_sub(2))
            .unwrap_or_default();
        Bloom {
            bits,
            probes: shape.0,
            version: shape.1,
        }
    }

    /// Probes per key and hash version.
    pub(crate) fn shape(&self) -> (u8, u8) {
        (self.probes, self.version)
    }

    /// False only if `key` was certainly never added.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash64(key))
    }

    pub(crate) fn may_contain_hash(&self, hash: u64) -> bool {
        let nbits = (self.bits.len() * 8) as u32;
        let set = |bit: u32| {
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        };
        if self.version == HASH_V2_BLOCKED {
            blocked_probe_bits(hash, self.probes, nbits / BLOCK_BITS).all(set)
        } else {
            probe_bits(hash, self.probes, nbits).all(set)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_specified_one() {
        // FNV-1a of the empty input is the offset basis; then the finaliser.
        let mut x: u64 = 0xcbf2_9ce4_8422_2325;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        assert_eq!(hash64(b""), x);
        assert_ne!(hash64(b"a"), hash64(b"b"));
        // Known answers, so the hash cannot drift with the code (computed
        // from the spec's text: FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c and
        // of "foobar" 0x85944171f73967e8, the published values, then the
        // finaliser).
        assert_eq!(hash64(b"a"), 0x02c0_bdbf_4814_20f8);
        assert_eq!(hash64(b"foobar"), 0x404d_a9e3_b740_78c2);
    }

    #[test]
    fn the_filter_bits_are_the_specified_ones() {
        // "a" and "foobar" at 10 bits per key: 8 bytes (the minimum), 7
        // probes at (h1 + j * h2) % 64, computed from the spec's text.
        let mut b = BloomBuilder::default();
        b.add(b"a");
        b.add(b"foobar");
        assert_eq!(
            b.finish_version(DEFAULT_BITS_PER_KEY, HASH_V1),
            [4, 65, 16, 0, 32, 8, 254, 1, 7, HASH_V1]
        );
        // Version 2: one 64-byte block (the minimum), 7 probes at
        // (h1 + j * delta) % 512 with delta = h1 rotated right by 17, | 1,
        // computed from the spec's text by a separate script.
        let mut want = vec![0u8; 64];
        for (i, v) in [
            (0, 16),
            (12, 8),
            (17, 1),
            (24, 4),
            (28, 128),
            (31, 1),
            (32, 8),
            (33, 64),
            (35, 2),
            (36, 16),
            (37, 128),
            (39, 4),
            (40, 64),
            (52, 32),
        ] {
            want[i] = v;
        }
        want.extend_from_slice(&[7, HASH_V2_BLOCKED]);
        assert_eq!(b.finish(DEFAULT_BITS_PER_KEY), want);
    }

    #[test]
    fn no_false_negatives_and_about_the_expected_false_positive_rate() {
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("key{i:08}").into_bytes())
            .collect();
        let mut b = BloomBuilder::default();
        for k in &keys {
            b.add(k);
        }
        // 0.8% expected for version 1 and about 1% for blocks of 512
        // bits; 2% leaves room for the hash's imperfection.
        for version in [HASH_V1, HASH_V2_BLOCKED] {
            let contents = b.finish_version(DEFAULT_BITS_PER_KEY, version);
            let f = Bloom::decode(&contents).unwrap();
            assert!(keys.iter().all(|k| f.may_contain(k)), "a false negative");
            let false_positives = (0..10_000u32)
                .filter(|i| f.may_contain(format!("other{i:08}").as_bytes()))
                .count();
            assert!(
                false_positives < 200,
                "v{version}: {false_positives} of 10000"
            );
        }
    }

    #[test]
    fn a_filter_for_any_number_of_keys_has_a_size_the_reader_accepts() {
        for keys in [0, 1, 1000, 429_496_730, 1 << 31, usize::MAX] {
            let bytes = filter_bytes(keys, 10);
            assert!((8..=MAX_FILTER_BYTES).contains(&bytes), "{keys} keys");
            assert_ne!((bytes * 8) as u32, 0, "{keys} keys");
        }
        assert_eq!(filter_bytes(1000, 10), 1250);
    }

    #[test]
    fn an_empty_filter_and_bad_shapes() {
        let contents = BloomBuilder::default().finish(10);
        let f = Bloom::decode(&contents).unwrap();
        assert!(!f.may_contain(b"x"));
        assert!(Bloom::decode(&[1]).is_err());
        assert!(Bloom::decode(&[0, 7, 1][1..]).is_err(), "no bits");
        assert!(Bloom::decode(&[0, 0, 1]).is_err(), "no probes");
        assert!(Bloom::decode(&[0, 7, 3]).is_err(), "unknown hash");
        assert!(
            Bloom::decode(&[0, 7, 2]).is_err(),
            "a blocked filter of 1 byte"
        );
        let mut block = vec![0u8; 64];
        block.extend_from_slice(&[7, 2]);
        assert!(Bloom::decode(&block).is_ok());
    }
}
