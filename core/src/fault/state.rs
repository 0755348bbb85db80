//! The pure form: what one call gets ([`Fault`]), drawn by the `&mut self` [`Machine`] from
//! the same function the shared form uses.

use core::time::Duration;

use super::config::Config;
use super::error::{ConfigError, Injected};
pub(super) use crate::rng::draw;
use crate::rng::{hit_per_million as hit, splitmix64};
use crate::time::duration_to_nanos;

/// What one call gets: a delay before it is made (zero for none) and, possibly, a failure
/// instead of its outcome.
///
/// ```
/// use bulwark::fault::{Fault, Injected};
/// use core::time::Duration;
/// assert!(Fault::NONE.is_none());
/// let f = Fault { delay: Duration::from_millis(5), fail: Some(Injected::Aborted) };
/// assert!(!f.is_none());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fault {
    /// How long to wait before making the call.
    pub delay: Duration,
    /// The failure the caller gets instead of the call's outcome.
    pub fail: Option<Injected>,
}

impl Fault {
    /// Nothing injected.
    pub const NONE: Fault = Fault {
        delay: Duration::ZERO,
        fail: None,
    };

    /// Whether nothing is injected.
    ///
    /// ```
    /// assert!(bulwark::fault::Fault::NONE.is_none());
    /// ```
    pub const fn is_none(&self) -> bool {
        self.delay.is_zero() && self.fail.is_none()
    }
}

/// Twenty bits: one rate of the packed word (parts per million, at most 1 000 000 < 2^20).
const RATE_BITS: u64 = (1 << 20) - 1;

/// The fault of one call: from the packed rates `word`, the delay range in nanoseconds and
/// one draw `r`. Each fault has its own bits, so the three are independent.
pub(super) const fn decide(word: u64, min_ns: u64, max_ns: u64, r: u64) -> Fault {
    let r2 = splitmix64(r);
    let fail = if hit(r, word & RATE_BITS) {
        Some(Injected::Aborted)
    } else if hit(r2, (word >> 40) & RATE_BITS) {
        Some(Injected::Replaced)
    } else {
        None
    };
    let delay = if hit(r >> 32, (word >> 20) & RATE_BITS) {
        let span = max_ns.saturating_sub(min_ns);
        let pick = if span == u64::MAX {
            splitmix64(r2)
        } else {
            ((splitmix64(r2) as u128 * (span as u128 + 1)) >> 64) as u64
        };
        Duration::from_nanos(min_ns + pick)
    } else {
        Duration::ZERO
    };
    Fault { delay, fail }
}

/// The pure `&mut self` fault injector: the `k`-th [`decide`](Machine::decide) gives the same
/// [`Fault`] as the `k`-th decision of an [`Injector`](super::Injector) with the same config.
///
/// ```
/// use bulwark::fault::{Config, Injected, Machine, Rate};
/// let mut m = Machine::new(Config::new().abort(Rate::percent(30)).seed(1)).unwrap();
/// let aborted = (0..10_000).filter(|_| m.decide().fail == Some(Injected::Aborted)).count();
/// assert!((2_800..3_200).contains(&aborted)); // about 30 %
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    word: u64,
    min_ns: u64,
    max_ns: u64,
    seed: u64,
    decisions: u64,
}

impl Machine {
    /// A machine for `cfg` (seeded from [`rng::next_seed`](crate::rng::next_seed) when the
    /// config has no seed).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::fault::{Config, Machine};
    /// assert!(Machine::new(Config::new()).unwrap().decide().is_none());
    /// ```
    pub fn new(cfg: Config) -> Result<Machine, ConfigError> {
        cfg.validate()?;
        Ok(Machine {
            word: cfg.word(),
            min_ns: duration_to_nanos(cfg.delay_min),
            max_ns: duration_to_nanos(cfg.delay_max),
            seed: match cfg.seed {
                Some(s) => s,
                None => crate::rng::next_seed(),
            },
            decisions: 0,
        })
    }

    /// The fault of the next call.
    ///
    /// ```
    /// use bulwark::fault::{Config, Machine, Rate};
    /// use core::time::Duration;
    /// let ms = Duration::from_millis;
    /// let mut m = Machine::new(Config::new().delay(Rate::ALWAYS, ms(10), ms(20))).unwrap();
    /// let d = m.decide().delay;
    /// assert!(d >= ms(10) && d <= ms(20));
    /// ```
    pub fn decide(&mut self) -> Fault {
        if self.word == 0 {
            return Fault::NONE;
        }
        let r = draw(self.seed, self.decisions);
        self.decisions = self.decisions.wrapping_add(1);
        decide(self.word, self.min_ns, self.max_ns, r)
    }
}
