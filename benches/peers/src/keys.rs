//! Keys, values and key choosers shared by every engine.
//!
//! Keys are 16 bytes: a 3-byte prefix and 13 decimal digits (`key0000000000042`),
//! so they sort in index order. Values are [`VALUE_BYTES`] pseudo-random bytes
//! derived from the key index, so every engine stores exactly the same data.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::as_f64;

/// Length of every key.
pub const KEY_BYTES: usize = 16;
/// Length of every loaded or updated value.
pub const VALUE_BYTES: usize = 100;
/// Logical bytes of one loaded entry (key + value).
pub const ENTRY_BYTES: u64 = (KEY_BYTES + VALUE_BYTES) as u64;

/// A 16-byte key: `prefix` (3 bytes) followed by `index` in 13 decimal digits.
pub fn key_with(prefix: [u8; 3], index: u64) -> [u8; KEY_BYTES] {
    let mut key = [b'0'; KEY_BYTES];
    key[..3].copy_from_slice(&prefix);
    let mut rest = index;
    for digit in key.iter_mut().skip(3).rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    key
}

/// The data key with index `index`.
pub fn key(index: u64) -> [u8; KEY_BYTES] {
    key_with(*b"key", index)
}

/// One of the hot counters of the contention workload (sorted before every data key).
pub fn counter_key(index: u64) -> [u8; KEY_BYTES] {
    key_with(*b"ctr", index)
}

/// The value loaded under key `index`.
pub fn value(index: u64) -> Vec<u8> {
    let mut value = vec![0; VALUE_BYTES];
    SmallRng::seed_from_u64(index).fill_bytes(&mut value);
    value
}

/// A new value computed from two values read and a salt (read-2-write-2, YCSB F).
pub fn mix(a: &[u8], b: &[u8], salt: u64) -> Vec<u8> {
    let mut out = a.to_vec();
    out.resize(VALUE_BYTES, 0);
    for (byte, (x, s)) in out
        .iter_mut()
        .zip(b.iter().zip(salt.to_le_bytes().iter().cycle()))
    {
        *byte ^= x ^ s;
    }
    out
}

/// A deterministic RNG for one workload and thread.
pub fn thread_rng(workload_salt: u64, thread: usize) -> SmallRng {
    SmallRng::seed_from_u64(workload_salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ thread as u64)
}

/// Two different uniformly random indexes below `n` (`n >= 2`).
pub fn random_pair(rng: &mut SmallRng, n: u64) -> (u64, u64) {
    let a = rng.random_range(0..n);
    let b = (a + rng.random_range(1..n.max(2))) % n;
    (a, b)
}

/// YCSB's scrambled zipfian generator (Gray et al., "Quickly generating
/// billion-record synthetic databases", as in YCSB's `ZipfianGenerator`), with
/// the rank hashed (FNV-1a) over the key space so the hot keys are spread out.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `0..n` with skew `theta` (`0 < theta < 1`; YCSB uses 0.99).
    pub fn new(n: u64, theta: f64) -> Self {
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2, theta);
        let n_f = as_f64(n);
        let eta = (1.0 - (2.0 / n_f).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
        }
    }

    /// The rank drawn (0 is the most popular), before scrambling.
    pub fn rank(&self, rng: &mut SmallRng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5_f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let rank = as_f64(self.n) * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        // `rank` lies in [0, n]: the base is in [0, 1] for u in [0, 1).
        #[expect(clippy::cast_sign_loss, reason = "non-negative, see above")]
        let rank = rank as u64;
        rank.min(self.n - 1)
    }

    /// A key index in `0..n`, zipfian-distributed and scrambled.
    pub fn next(&self, rng: &mut SmallRng) -> u64 {
        fnv1a(self.rank(rng)) % self.n
    }
}

/// The generalised harmonic number: sum over i in 1..=n of 1 / i^theta.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / as_f64(i).powf(theta)).sum()
}

/// FNV-1a over the eight little-endian bytes of `x`.
fn fnv1a(x: u64) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in x.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_index_order_and_are_16_bytes() {
        assert_eq!(&key(42), b"key0000000000042");
        assert!(key(9) < key(10));
        assert!(counter_key(999) < key(0));
    }

    #[test]
    fn zipfian_stays_in_range_and_is_skewed() {
        let zipf = Zipfian::new(1000, 0.99);
        let mut rng = thread_rng(1, 0);
        let mut rank0 = 0;
        for _ in 0..10_000 {
            assert!(zipf.next(&mut rng) < 1000);
            if zipf.rank(&mut rng) == 0 {
                rank0 += 1;
            }
        }
        // Rank 0 has probability 1/zeta(1000) ~ 13%; uniform would be 0.1%.
        assert!(rank0 > 500, "rank 0 drawn {rank0} times");
    }
}
