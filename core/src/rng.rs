//! Small deterministic mixing functions shared by the patterns (jitter, hashing). No state, no
//! allocation, no `rand`.
//!
//! `splitmix64` hashes (breaker and limiter jitter, the keyed table); [`Rng`] is the seeded
//! SplitMix64 stream retry jitter draws from.

/// The SplitMix64 increment (2^64 / φ).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser applied to `z + GOLDEN`: a cheap, well-mixed hash for
/// deterministic jitter and hashing.
pub(crate) const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[0, max]` drawn from `seed` and `salt` (deterministic; the modulo bias
/// is irrelevant for jitter).
pub(crate) const fn jitter(seed: u64, salt: u64, max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let r = splitmix64(seed ^ splitmix64(salt));
    if max == u64::MAX { r } else { r % (max + 1) }
}

/// FNV-1a (64-bit) as a [`core::hash::Hasher`], finished through [`splitmix64`] so the low bits
/// are well mixed for table indexing. Not DoS-resistant: keys an attacker controls can be
/// made to collide (they then share a probe window and evict each other sooner, never more).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) const fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl core::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        splitmix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
}

/// The [`Fnv1a`] hash of `v`.
pub(crate) fn hash_of<T: core::hash::Hash + ?Sized>(v: &T) -> u64 {
    let mut h = Fnv1a::new();
    v.hash(&mut h);
    core::hash::Hasher::finish(&h)
}

/// The SplitMix64 generator: the state walks by [`GOLDEN`], each output is its hash.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (every seed is fine, zero included).
    pub(crate) const fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let out = splitmix64(self.0);
        self.0 = self.0.wrapping_add(GOLDEN);
        out
    }

    /// Uniform in `0 ..= n` (Lemire's multiply-shift; the bias, below 2^-64 × n, does not
    /// matter for jitter). Never panics.
    pub(crate) fn up_to(&mut self, n: u64) -> u64 {
        let r = self.next_u64();
        if n == u64::MAX {
            return r;
        }
        ((r as u128 * (n as u128 + 1)) >> 64) as u64
    }

    /// Uniform in `lo ..= hi` (`lo` when `hi < lo`).
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.up_to(hi.saturating_sub(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_is_deterministic() {
        for salt in 0..1000 {
            let j = jitter(7, salt, 10);
            assert!(j <= 10);
            assert_eq!(j, jitter(7, salt, 10));
        }
        assert_eq!(jitter(1, 2, 0), 0);
        let _ = jitter(1, 2, u64::MAX);
    }

    #[test]
    fn fnv_distinguishes_keys() {
        assert_ne!(hash_of(&1u32), hash_of(&2u32));
        assert_eq!(hash_of("payment"), hash_of("payment"));
        // Known FNV-1a vector before the finaliser: "a" -> 0xaf63dc4c8601ec8c.
        let mut h = Fnv1a::new();
        core::hash::Hasher::write(&mut h, b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(0);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for _ in 0..10_000 {
            let x = r.between(10, 20);
            assert!((10..=20).contains(&x));
            lo = lo.min(x);
            hi = hi.max(x);
        }
        assert_eq!((lo, hi), (10, 20));
        assert_eq!(r.between(5, 3), 5);
        let _ = r.up_to(u64::MAX);
        assert_eq!(r.up_to(0), 0);
    }
}
