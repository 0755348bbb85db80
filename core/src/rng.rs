//! Where jitter's randomness comes from: the process-wide default seed, and the small
//! deterministic mixing functions the patterns share. No allocation, no `rand`.
//!
//! # Seeds: explicit or default
//!
//! Every jittered pattern (retry's [`Jitter`](crate::retry::Jitter), the breaker's
//! [`open_jitter`](crate::circuit_breaker::Config::open_jitter), the rate limiter's
//! [`jitter`](crate::rate_limiter::Config::jitter)) takes an optional seed in its `Config`:
//!
//! * **An explicit seed** (`Config::seed(s)`) is reproducible: the same seed gives the same
//!   delays in every run and every process. Use it in tests and simulations.
//! * **Without one**, each instance (a breaker, a rate limiter's waiting call, a retried call)
//!   takes a fresh seed from [`next_seed`]: the SplitMix64 stream of the process-wide
//!   [`default_seed`], one value per draw. Two instances in one process never share a
//!   sequence, and neither do two processes, as long as the default seed differs between them:
//!
//! | build | the default seed |
//! |---|---|
//! | a program on `bulwark-tokio` or `bulwark-async-std` | drawn once per process from OS entropy when it builds its first clock (`TokioClock`, `AsyncIoClock`), which [offers](offer_default_seed) it |
//! | firmware, or the core alone | what was passed to [`set_default_seed`]; until then a fixed constant, the same in every device |
//!
//! The core itself never touches the OS (it is `no_std` without `alloc`). Firmware should call
//! [`set_default_seed`] once at boot with something that differs between devices and boots (a
//! hardware RNG, or the chip's unique ID mixed with a counter kept in flash); otherwise a fleet
//! restarted together jitters in lockstep. [`set_default_seed`] also wins over an adapter's
//! OS entropy (a simulation that wants every default-seeded instance to repeat).
//!
//! # Examples
//!
//! ```
//! use bulwark::rng;
//!
//! // Firmware at boot (here: a value standing in for a hardware RNG reading).
//! rng::set_default_seed(0x1234_5678_9ABC_DEF0);
//! assert_eq!(rng::default_seed(), 0x1234_5678_9ABC_DEF0);
//! // Every default-seeded instance then takes its own seed from that stream.
//! assert_ne!(rng::next_seed(), rng::next_seed());
//! ```

use crate::sync::{StaticAtomicBool, StaticAtomicU64};
use core::sync::atomic::Ordering;

/// The default seed until one is set or offered.
const FALLBACK_SEED: u64 = 0x5EED_B07A_4C3F_11E2;

/// The seed set by [`set_default_seed`], valid once [`SEED_SET`] is `true`.
static SEED: StaticAtomicU64 = StaticAtomicU64::new(FALLBACK_SEED);
/// Whether [`SEED`] holds a seed that was set or offered.
static SEED_SET: StaticAtomicBool = StaticAtomicBool::new(false);
/// Whether a seed was set or offered (claimed before it is published).
static CLAIMED: StaticAtomicBool = StaticAtomicBool::new(false);
/// Draws taken by [`next_seed`].
static DRAWS: StaticAtomicU64 = StaticAtomicU64::new(0);

/// Sets the process-wide default seed every instance without an explicit seed draws from
/// (through [`next_seed`]). For firmware, which has no OS entropy: call it once at boot with a
/// value that differs between devices and boots. It also wins over a seed an adapter
/// [offers](offer_default_seed). Instances made before the call keep the seeds they already
/// took.
///
/// ```
/// bulwark::rng::set_default_seed(42);
/// assert_eq!(bulwark::rng::default_seed(), 42);
/// ```
pub fn set_default_seed(seed: u64) {
    // Claimed first, so a later offer is refused. Relaxed store, Release flag: a reader that
    // sees the flag (Acquire) sees this seed or a later one.
    CLAIMED.store(true, Ordering::Relaxed);
    SEED.store(seed, Ordering::Relaxed);
    SEED_SET.store(true, Ordering::Release);
}

/// Offers a default seed: taken only if none was set or offered before, so the first offer
/// (an adapter's OS entropy, when it builds its first clock) sticks and an explicit
/// [`set_default_seed`] is never overwritten. Returns whether it was taken.
///
/// ```
/// use bulwark::rng;
/// rng::set_default_seed(7);
/// assert!(!rng::offer_default_seed(8)); // an explicit seed wins
/// assert_eq!(rng::default_seed(), 7);
/// ```
pub fn offer_default_seed(seed: u64) -> bool {
    // AcqRel: exactly one offer (or a set) claims the slot; the winner then publishes its seed
    // as `set_default_seed` does. A draw between the claim and the publication still reads
    // the fallback constant.
    if CLAIMED
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    SEED.store(seed, Ordering::Relaxed);
    SEED_SET.store(true, Ordering::Release);
    true
}

/// The process-wide default seed: the value given to [`set_default_seed`] or taken by
/// [`offer_default_seed`]; until then a fixed constant. See the [module](self) docs.
///
/// ```
/// // The same value for the life of the process (until a seed is set).
/// assert_eq!(bulwark::rng::default_seed(), bulwark::rng::default_seed());
/// ```
pub fn default_seed() -> u64 {
    if SEED_SET.load(Ordering::Acquire) {
        SEED.load(Ordering::Relaxed)
    } else {
        FALLBACK_SEED
    }
}

/// A fresh seed: the next value of the SplitMix64 stream of [`default_seed`] (one `Relaxed`
/// fetch-add on a process-wide counter). What every instance without an explicit seed uses;
/// call it to seed a [`RetryState`](crate::retry::RetryState) the same way.
///
/// ```
/// use bulwark::{Instant, retry::RetryState};
/// let state = RetryState::new(Instant::ZERO, bulwark::rng::next_seed());
/// # let _ = state;
/// assert_ne!(bulwark::rng::next_seed(), bulwark::rng::next_seed());
/// ```
pub fn next_seed() -> u64 {
    // Relaxed: the fetch-add hands out distinct counts whatever its ordering; it publishes
    // nothing.
    let n = DRAWS.fetch_add(1, Ordering::Relaxed);
    splitmix64(default_seed().wrapping_add(n.wrapping_mul(GOLDEN)))
}

/// The seed of stream `k` derived from an explicit `seed`: stream 0 is `seed` itself, so the
/// first user of an explicit seed draws exactly what a generator made from it draws; the
/// others get well-separated streams.
pub(crate) const fn stream_seed(seed: u64, k: u64) -> u64 {
    seed ^ splitmix64(k) ^ splitmix64(0)
}

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

/// The `k`-th draw of `seed`: 64 well-mixed bits, one value per decision of the seeded
/// patterns that decide by chance (fault injection, adaptive throttling), so a machine and its
/// shared form draw the same sequence.
pub(crate) const fn draw(seed: u64, k: u64) -> u64 {
    splitmix64(seed ^ splitmix64(k))
}

/// Whether the low 32 bits of a draw fall below `per_million` (Lemire's multiply-shift on 32
/// bits: never at 0, always at 1 000 000).
pub(crate) const fn hit_per_million(bits: u64, per_million: u64) -> bool {
    ((bits & 0xFFFF_FFFF) * 1_000_000) >> 32 < per_million
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
/// made to collide (they then share a set and evict each other sooner, never more).
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

/// Where a random draw comes from: 64 bits at a time. Retry's jitter draws from one
/// ([`RetryState::decide_with`](crate::retry::RetryState::decide_with)), so a test can pin
/// the exact draw with a source of its own; the library's own is [`Rng`].
///
/// # Examples
///
/// ```
/// use bulwark::rng::RandomSource;
///
/// /// Always the same bits: `u64::MAX` is the top of every range.
/// struct Top;
/// impl RandomSource for Top {
///     fn next_u64(&mut self) -> u64 { u64::MAX }
/// }
/// assert_eq!(Top.up_to(1_000), 1_000);
/// assert_eq!(Top.between(10, 20), 20);
/// ```
pub trait RandomSource {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// Uniform in `0 ..= n` (Lemire's multiply-shift of one draw: the top `n + 1`-th of the
    /// 64-bit range maps to `n`; the bias, below 2^-64 × n, does not matter for jitter). Never
    /// panics.
    ///
    /// ```
    /// use bulwark::rng::{RandomSource, Rng};
    /// let mut rng = Rng::new(7);
    /// assert!(rng.up_to(10) <= 10);
    /// assert_eq!(rng.up_to(0), 0);
    /// ```
    fn up_to(&mut self, n: u64) -> u64 {
        let r = self.next_u64();
        if n == u64::MAX {
            return r;
        }
        ((r as u128 * (n as u128 + 1)) >> 64) as u64
    }

    /// Uniform in `lo ..= hi` (`lo` when `hi < lo`).
    ///
    /// ```
    /// use bulwark::rng::{RandomSource, Rng};
    /// let mut rng = Rng::new(7);
    /// assert!((10..=20).contains(&rng.between(10, 20)));
    /// assert_eq!(rng.between(5, 3), 5);
    /// ```
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.up_to(hi.saturating_sub(lo))
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// The library's [`RandomSource`]: the SplitMix64 generator (the state walks by 2^64 / φ,
/// each output is its hash). Small (one `u64`), `Copy`, deterministic for a seed.
///
/// ```
/// use bulwark::rng::{RandomSource, Rng};
/// let (mut a, mut b) = (Rng::new(42), Rng::new(42));
/// assert_eq!(a.next_u64(), b.next_u64()); // same seed, same stream
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (every seed is fine, zero included).
    ///
    /// ```
    /// use bulwark::rng::{RandomSource, Rng};
    /// assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
    /// ```
    pub const fn new(seed: u64) -> Rng {
        Rng(seed)
    }
}

impl RandomSource for Rng {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let out = splitmix64(self.0);
        self.0 = self.0.wrapping_add(GOLDEN);
        out
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
