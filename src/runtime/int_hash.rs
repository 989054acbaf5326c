//! A one-multiply hasher for maps keyed by integers the server hands out itself
//! (`user_data`, stream ids): peers never choose those keys, so a keyed hash
//! (SipHash) would only cost time on hot lookups (every send completion, every
//! viewer batch).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing for integer keys; other input is mixed byte by byte.
#[derive(Default)]
pub struct IntHasher(u64);

/// A `HashMap` keyed by server-assigned integers, hashed by [`IntHasher`].
pub type IntHashMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// The golden-ratio multiplier of Fibonacci hashing.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Spreads sequential values over the high bits hashbrown uses.
        self.0 = n.wrapping_mul(GOLDEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_spread_over_the_high_bits() {
        let top = |n: u64| {
            let mut h = IntHasher::default();
            h.write_u64(n);
            h.finish() >> 57
        };
        let buckets: std::collections::HashSet<u64> = (0..64).map(top).collect();
        assert!(
            buckets.len() > 32,
            "only {} of 128 top-bit buckets",
            buckets.len()
        );
    }

    #[test]
    fn map_finds_what_it_stored() {
        let mut map: IntHashMap<u64, u32> = IntHashMap::default();
        for i in 0..1000u64 {
            map.insert(i * 7, i as u32);
        }
        assert_eq!(map.get(&(700 * 7)), Some(&700));
        assert_eq!(map.get(&1), None);
    }
}
