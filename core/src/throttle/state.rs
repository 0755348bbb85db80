//! The pure form: the SRE formula, the bucket encoding and the `&mut self` [`Machine`].

use super::config::Config;
use super::error::{ConfigError, Throttled};
use crate::admission::Outcome;
pub(super) use crate::rng::{draw, hit_per_million};
use crate::time::Instant;

/// The local refusal probability, in parts per million:
/// `max(0, (requests − K × accepts) / (requests + 1))` with `K = k_milli / 1000`. Exact in
/// integers (no floats), never above 999 999.
///
/// ```
/// use bulwark::throttle::reject_per_million;
/// assert_eq!(reject_per_million(100, 0, 2_000), 990_099); // 100 / 101
/// assert_eq!(reject_per_million(100, 50, 2_000), 0); // K × accepts covers the requests
/// assert_eq!(reject_per_million(100, 40, 2_000), 198_019); // 20 / 101
/// assert_eq!(reject_per_million(u64::MAX, 0, 1_000), 999_999);
/// ```
pub const fn reject_per_million(requests: u64, accepts: u64, k_milli: u32) -> u32 {
    // Thousandths of a request: no rounding of K.
    let req = requests as u128 * 1_000;
    let allowed = accepts as u128 * k_milli as u128;
    if req <= allowed {
        return 0;
    }
    ((req - allowed) * 1_000_000 / ((requests as u128 + 1) * 1_000)) as u32
}

/// Bits of a bucket word: the low 20 bits of the bucket's epoch, then the requests and the
/// accepts, 22 bits each (saturating at 4 194 303 per bucket).
pub(super) const TAG_BITS: u32 = 20;
pub(super) const COUNT_BITS: u32 = 22;
pub(super) const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
pub(super) const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;

pub(super) const fn pack(epoch: u64, requests: u64, accepts: u64) -> u64 {
    (epoch & TAG_MASK) | requests << TAG_BITS | accepts << (TAG_BITS + COUNT_BITS)
}

pub(super) const fn unpack(w: u64) -> (u64, u64, u64) {
    (
        w & TAG_MASK,
        (w >> TAG_BITS) & COUNT_MAX,
        (w >> (TAG_BITS + COUNT_BITS)) & COUNT_MAX,
    )
}

/// The pure `&mut self` throttle over `N` buckets: the same decisions as an
/// [`AdaptiveThrottle`](super::AdaptiveThrottle) given the same outcomes at the same instants
/// (per-bucket counts saturate at 4 194 303 in both).
///
/// ```
/// use bulwark::admission::Outcome;
/// use bulwark::throttle::{Config, Machine};
/// use bulwark::Instant;
/// let mut m: Machine<4> = Machine::new(Config::new().seed(2)).unwrap();
/// let now = Instant::from_secs(1);
/// for _ in 0..10 {
///     m.record(now, Outcome::Success);
/// }
/// assert!(m.try_admit(now).is_ok()); // accepted traffic: nothing refused
/// assert_eq!(m.counts(now), (10, 10));
/// // Two minutes later the window holds nothing.
/// assert_eq!(m.counts(Instant::from_secs(200)), (0, 0));
/// ```
#[derive(Clone, Debug)]
pub struct Machine<const N: usize> {
    buckets: [(u64, u64, u64); N],
    bucket_ns: u64,
    k_milli: u32,
    seed: u64,
    decisions: u64,
}

impl<const N: usize> Machine<N> {
    /// A machine for `cfg`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::throttle::{Config, ConfigError, Machine};
    /// assert_eq!(Machine::<0>::new(Config::new()).err(), Some(ConfigError::NoBuckets));
    /// ```
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        cfg.validate::<N>()?;
        Ok(Machine {
            buckets: [(u64::MAX, 0, 0); N],
            bucket_ns: cfg.bucket_nanos::<N>(),
            k_milli: cfg.k_milli,
            seed: match cfg.seed {
                Some(s) => s,
                None => crate::rng::next_seed(),
            },
            decisions: 0,
        })
    }

    /// Requests and accepts in the window ending at `now`.
    ///
    /// ```
    /// use bulwark::throttle::{Config, Machine};
    /// let m: Machine<4> = Machine::new(Config::new()).unwrap();
    /// assert_eq!(m.counts(bulwark::Instant::ZERO), (0, 0));
    /// ```
    pub fn counts(&self, now: Instant) -> (u64, u64) {
        let e = now.as_nanos() / self.bucket_ns;
        let (mut req, mut acc) = (0, 0);
        for (i, &(epoch, r, a)) in self.buckets.iter().enumerate() {
            if epoch == expected(e, i, N) {
                req += r;
                acc += a;
            }
        }
        (req, acc)
    }

    /// Counts an outcome at `now`: a success is a request the backend accepted, a failure one
    /// it refused; an ignored outcome is not counted.
    ///
    /// ```
    /// use bulwark::admission::Outcome;
    /// use bulwark::throttle::{Config, Machine};
    /// let mut m: Machine<4> = Machine::new(Config::new()).unwrap();
    /// m.record(bulwark::Instant::ZERO, Outcome::Failure);
    /// m.record(bulwark::Instant::ZERO, Outcome::Ignored);
    /// assert_eq!(m.counts(bulwark::Instant::ZERO), (1, 0));
    /// ```
    pub fn record(&mut self, now: Instant, outcome: Outcome) {
        let accepted = match outcome {
            Outcome::Success => 1,
            Outcome::Failure => 0,
            Outcome::Ignored => return,
        };
        self.count(now, accepted);
    }

    fn count(&mut self, now: Instant, accepted: u64) {
        let e = now.as_nanos() / self.bucket_ns;
        let b = &mut self.buckets[(e % N as u64) as usize];
        if b.0 != e {
            if b.0 != u64::MAX && b.0 > e {
                return; // a later epoch owns this slot: the sample is older than the window
            }
            *b = (e, 0, 0);
        }
        b.1 = (b.1 + 1).min(COUNT_MAX);
        b.2 = (b.2 + accepted).min(COUNT_MAX);
    }

    /// Admits a request at `now`, or refuses it locally (and counts the refusal as a request
    /// the backend did not accept).
    ///
    /// # Errors
    ///
    /// [`Throttled`] with the probability it was refused at.
    ///
    /// ```
    /// use bulwark::admission::Outcome;
    /// use bulwark::throttle::{Config, Machine};
    /// use bulwark::Instant;
    /// let mut m: Machine<4> = Machine::new(Config::new().seed(5)).unwrap();
    /// for _ in 0..1000 {
    ///     m.record(Instant::ZERO, Outcome::Failure);
    /// }
    /// assert_eq!(m.try_admit(Instant::ZERO).unwrap_err().reject_per_million, 999_000);
    /// ```
    pub fn try_admit(&mut self, now: Instant) -> Result<(), Throttled> {
        let (req, acc) = self.counts(now);
        let p = reject_per_million(req, acc, self.k_milli);
        if p == 0 {
            return Ok(());
        }
        let r = draw(self.seed, self.decisions);
        self.decisions = self.decisions.wrapping_add(1);
        if hit_per_million(r, u64::from(p)) {
            self.count(now, 0);
            return Err(Throttled {
                reject_per_million: p,
            });
        }
        Ok(())
    }
}

/// The epoch slot `i` of `N` holds in the window ending at epoch `e`: the one in
/// `(e − N, e]` congruent to `i`.
pub(super) const fn expected(e: u64, i: usize, n: usize) -> u64 {
    let back = (e % n as u64 + n as u64 - i as u64) % n as u64;
    e.wrapping_sub(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_word_round_trips_and_its_counts_saturate() {
        assert_eq!(unpack(pack(5, 7, 3)), (5, 7, 3));
        assert_eq!(
            unpack(pack((1 << TAG_BITS) + 9, COUNT_MAX, COUNT_MAX)),
            (9, COUNT_MAX, COUNT_MAX)
        );
        let mut m: Machine<2> = Machine::new(Config::new().seed(1)).unwrap();
        m.buckets[0] = (0, COUNT_MAX, COUNT_MAX - 1);
        m.record(Instant::ZERO, Outcome::Success);
        m.record(Instant::ZERO, Outcome::Success);
        assert_eq!(m.counts(Instant::ZERO), (COUNT_MAX, COUNT_MAX));
    }

    #[test]
    fn the_expected_epoch_of_each_slot_is_the_one_in_the_window() {
        // Window of 4 ending at epoch 10: slots hold 8, 9, 10, 7.
        assert_eq!([0, 1, 2, 3].map(|i| expected(10, i, 4)), [8, 9, 10, 7]);
        assert_eq!(expected(0, 0, 4), 0);
        assert_eq!(reject_per_million(0, 0, 2_000), 0);
    }
}
