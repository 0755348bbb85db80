//! The hedge's configuration.

use core::fmt;
use core::time::Duration;

/// When a hedge starts after the copy before it.
///
/// ```
/// use bulwark::hedge::Delay;
/// use core::time::Duration;
/// let p99 = Delay::Percentile { per_mille: 990, min: Duration::from_millis(5), max: Duration::from_secs(1) };
/// assert_ne!(p99, Delay::Fixed(Duration::from_millis(50)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Always this long.
    Fixed(Duration),
    /// The `per_mille` percentile of the latencies of recent acceptable answers, clamped to
    /// `min ..= max`; `max` until enough answers (16) have been seen.
    Percentile {
        /// The percentile in thousandths (`990` is the p99).
        per_mille: u16,
        /// The shortest delay.
        min: Duration,
        /// The longest delay, and the delay before enough answers have been seen.
        max: Duration,
    },
}

/// When each hedge starts ([`Delay`]); how many copies run at most is the hedge's type
/// parameter `N` (the first and `N − 1` hedges).
///
/// ```
/// use bulwark::hedge::{Config, ConfigError, Delay};
/// use core::time::Duration;
/// assert_eq!(Config::new(Delay::Fixed(Duration::from_millis(20))).validate::<2>(), Ok(()));
/// assert_eq!(Config::new(Delay::Fixed(Duration::ZERO)).validate::<1>(), Err(ConfigError::NoHedges));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) delay: Delay,
}

impl Config {
    /// Hedges after `delay`.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay};
    /// assert_eq!(Config::new(Delay::Fixed(core::time::Duration::ZERO)).delay(), Delay::Fixed(core::time::Duration::ZERO));
    /// ```
    pub const fn new(delay: Delay) -> Config {
        Config { delay }
    }

    /// The delay.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay};
    /// let d = Delay::Fixed(core::time::Duration::from_millis(3));
    /// assert_eq!(Config::new(d).delay(), d);
    /// ```
    pub const fn delay(&self) -> Delay {
        self.delay
    }

    /// Checks the configuration for `N` copies in all.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: no hedges, a percentile above 1000, a range whose max is below its min.
    ///
    /// ```
    /// use bulwark::hedge::{Config, ConfigError, Delay};
    /// use core::time::Duration;
    /// let bad = Delay::Percentile { per_mille: 1001, min: Duration::ZERO, max: Duration::ZERO };
    /// assert_eq!(Config::new(bad).validate::<2>(), Err(ConfigError::Percentile));
    /// ```
    pub const fn validate<const N: usize>(&self) -> Result<(), ConfigError> {
        if N < 2 {
            return Err(ConfigError::NoHedges);
        }
        if let Delay::Percentile {
            per_mille,
            min,
            max,
        } = self.delay
        {
            if per_mille > 1_000 {
                return Err(ConfigError::Percentile);
            }
            if min.as_nanos() > max.as_nanos() {
                return Err(ConfigError::DelayRange);
            }
        }
        Ok(())
    }
}

/// A [`Config`] that cannot run.
///
/// ```
/// use bulwark::hedge::ConfigError;
/// assert_eq!(ConfigError::NoHedges.to_string(), "a hedge needs at least one copy beside the first (N below 2)");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `N` below 2: no copy beside the first.
    NoHedges,
    /// A percentile above 1000 per mille.
    Percentile,
    /// A percentile delay whose max is below its min.
    DelayRange,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::NoHedges => "a hedge needs at least one copy beside the first (N below 2)",
            ConfigError::Percentile => "delay.per_mille must be at most 1000",
            ConfigError::DelayRange => "delay: max is below min",
        })
    }
}

impl core::error::Error for ConfigError {}
