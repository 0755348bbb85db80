//! The fault injector's configuration: a rate per fault, a delay range and a seed.

use core::time::Duration;

use super::error::ConfigError;
use crate::time::duration_to_nanos;

/// How often a fault happens: a share of calls in parts per million (1 % = 10 000).
///
/// ```
/// use bulwark::fault::Rate;
/// assert_eq!(Rate::percent(1), Rate::per_million(10_000));
/// assert_eq!(Rate::per_mille(5).as_per_million(), 5_000);
/// assert_eq!(Rate::NEVER.as_per_million(), 0);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rate(u32);

impl Rate {
    /// Never.
    pub const NEVER: Rate = Rate(0);
    /// Every call.
    pub const ALWAYS: Rate = Rate(1_000_000);

    /// `n` calls in a hundred (saturating; above 100 is refused when the config is checked).
    ///
    /// ```
    /// assert_eq!(bulwark::fault::Rate::percent(25).as_per_million(), 250_000);
    /// ```
    pub const fn percent(n: u32) -> Rate {
        Rate(n.saturating_mul(10_000))
    }

    /// `n` calls in a thousand.
    ///
    /// ```
    /// assert_eq!(bulwark::fault::Rate::per_mille(1).as_per_million(), 1_000);
    /// ```
    pub const fn per_mille(n: u32) -> Rate {
        Rate(n.saturating_mul(1_000))
    }

    /// `n` calls in a million.
    ///
    /// ```
    /// assert_eq!(bulwark::fault::Rate::per_million(3).as_per_million(), 3);
    /// ```
    pub const fn per_million(n: u32) -> Rate {
        Rate(n)
    }

    /// The rate in parts per million.
    ///
    /// ```
    /// assert_eq!(bulwark::fault::Rate::ALWAYS.as_per_million(), 1_000_000);
    /// ```
    pub const fn as_per_million(self) -> u32 {
        self.0
    }
}

/// What to inject and how often: a `const` builder; everything off by default.
///
/// | setting | default |
/// |---|---|
/// | [`abort`](Config::abort) | never |
/// | [`delay`](Config::delay) | never (range 0 s) |
/// | [`replace`](Config::replace) | never |
/// | [`seed`](Config::seed) | none: a fresh seed from [`rng::next_seed`](crate::rng::next_seed) |
///
/// ```
/// use bulwark::fault::{Config, ConfigError, Rate};
/// use core::time::Duration;
/// let cfg = Config::new()
///     .abort(Rate::percent(1))
///     .delay(Rate::percent(10), Duration::from_millis(50), Duration::from_millis(500))
///     .seed(7);
/// assert_eq!(cfg.validate(), Ok(()));
/// assert!(!cfg.is_off());
/// assert!(Config::new().is_off());
/// assert_eq!(Config::new().abort(Rate::percent(101)).validate(), Err(ConfigError::RateAboveAll));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) abort: Rate,
    pub(super) delay: Rate,
    pub(super) delay_min: Duration,
    pub(super) delay_max: Duration,
    pub(super) replace: Rate,
    pub(super) seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Nothing injected.
    ///
    /// ```
    /// assert!(bulwark::fault::Config::new().is_off());
    /// ```
    pub const fn new() -> Config {
        Config {
            abort: Rate::NEVER,
            delay: Rate::NEVER,
            delay_min: Duration::ZERO,
            delay_max: Duration::ZERO,
            replace: Rate::NEVER,
            seed: None,
        }
    }

    /// Refuse `rate` of the calls without making them ([`Injected::Aborted`](super::Injected::Aborted)).
    ///
    /// ```
    /// use bulwark::fault::{Config, Rate};
    /// assert!(!Config::new().abort(Rate::percent(5)).is_off());
    /// ```
    pub const fn abort(mut self, rate: Rate) -> Config {
        self.abort = rate;
        self
    }

    /// Delay `rate` of the calls by a duration drawn uniformly from `min ..= max`.
    ///
    /// ```
    /// use bulwark::fault::{Config, ConfigError, Rate};
    /// use core::time::Duration;
    /// let backwards = Config::new().delay(Rate::percent(5), Duration::from_secs(2), Duration::from_secs(1));
    /// assert_eq!(backwards.validate(), Err(ConfigError::DelayRange));
    /// ```
    pub const fn delay(mut self, rate: Rate, min: Duration, max: Duration) -> Config {
        self.delay = rate;
        self.delay_min = min;
        self.delay_max = max;
        self
    }

    /// Make `rate` of the calls, then replace their outcome with
    /// [`Injected::Replaced`](super::Injected::Replaced).
    ///
    /// ```
    /// use bulwark::fault::{Config, Rate};
    /// assert!(!Config::new().replace(Rate::per_mille(1)).is_off());
    /// ```
    pub const fn replace(mut self, rate: Rate) -> Config {
        self.replace = rate;
        self
    }

    /// A fixed seed: the same decisions, in the same order, in every run.
    ///
    /// ```
    /// use bulwark::fault::{Config, Machine, Rate};
    /// let cfg = Config::new().abort(Rate::percent(50)).seed(42);
    /// let (mut a, mut b) = (Machine::new(cfg).unwrap(), Machine::new(cfg).unwrap());
    /// assert!((0..100).all(|_| a.decide() == b.decide()));
    /// ```
    pub const fn seed(mut self, seed: u64) -> Config {
        self.seed = Some(seed);
        self
    }

    /// Whether nothing is ever injected.
    ///
    /// ```
    /// use bulwark::fault::{Config, Rate};
    /// assert!(Config::new().delay(Rate::NEVER, core::time::Duration::ZERO, core::time::Duration::from_secs(1)).is_off());
    /// ```
    pub const fn is_off(&self) -> bool {
        self.abort.0 == 0 && self.delay.0 == 0 && self.replace.0 == 0
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: a rate above every call, a delay range that ends before it starts.
    ///
    /// ```
    /// use bulwark::fault::{Config, ConfigError, Rate};
    /// assert_eq!(Config::new().replace(Rate::per_million(1_000_001)).validate(), Err(ConfigError::RateAboveAll));
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.abort.0 > Rate::ALWAYS.0
            || self.delay.0 > Rate::ALWAYS.0
            || self.replace.0 > Rate::ALWAYS.0
        {
            return Err(ConfigError::RateAboveAll);
        }
        if duration_to_nanos(self.delay_min) > duration_to_nanos(self.delay_max) {
            return Err(ConfigError::DelayRange);
        }
        Ok(())
    }

    /// The three rates packed in one word (20 bits each; 0 means off), as the shared form
    /// stores them.
    pub(super) const fn word(&self) -> u64 {
        self.abort.0 as u64 | (self.delay.0 as u64) << 20 | (self.replace.0 as u64) << 40
    }
}
