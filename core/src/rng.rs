//! Small deterministic mixing functions shared by the patterns (jitter, hashing). No state, no
//! allocation, no `rand`.
//!
//! `splitmix64` moved here from `circuit_breaker/config.rs` so the rate limiter can share it.

/// The splitmix64 finaliser: a cheap, well-mixed hash for deterministic jitter.
pub(crate) const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
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
}
