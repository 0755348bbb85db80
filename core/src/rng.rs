//! A tiny seeded pseudo-random generator for jitter: SplitMix64. No std, no alloc, `Copy`,
//! deterministic for a given seed. Not for cryptography.

/// The SplitMix64 increment (2^64 / φ).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser applied to `z + GOLDEN`: a cheap, well-mixed hash, also used on
/// its own for deterministic jitter (the circuit breaker's open time).
pub(crate) const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
