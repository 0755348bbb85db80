//! The throttle's configuration.

use core::time::Duration;

use super::error::ConfigError;
use crate::time::duration_to_nanos;

/// `K`, the window and the seed: a `const` builder.
///
/// | setting | default |
/// |---|---|
/// | [`k`](Config::k) (in thousandths: `2000` is K = 2) | 2000 |
/// | [`window`](Config::window) | 2 minutes (split into the throttle's `N` buckets) |
/// | [`seed`](Config::seed) | none: a fresh seed from [`rng::next_seed`](crate::rng::next_seed) |
///
/// ```
/// use bulwark::throttle::{Config, ConfigError};
/// use core::time::Duration;
/// let cfg = Config::new().k(1_500).window(Duration::from_secs(60)).seed(3);
/// assert_eq!(cfg.validate::<12>(), Ok(()));
/// assert_eq!(Config::new().k(999).validate::<12>(), Err(ConfigError::KBelowOne));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) k_milli: u32,
    pub(super) window: Duration,
    pub(super) seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// K = 2 over 2 minutes, as the SRE book suggests.
    ///
    /// ```
    /// assert_eq!(bulwark::throttle::Config::new().validate::<12>(), Ok(()));
    /// ```
    pub const fn new() -> Config {
        Config {
            k_milli: 2_000,
            window: Duration::from_secs(120),
            seed: None,
        }
    }

    /// `K` in thousandths (`2000` is K = 2; at least `1000`: with K below 1 a client would
    /// refuse requests the backend accepts).
    ///
    /// ```
    /// use bulwark::throttle::Config;
    /// assert!(Config::new().k(1_000).validate::<4>().is_ok());
    /// ```
    pub const fn k(mut self, k_milli: u32) -> Config {
        self.k_milli = k_milli;
        self
    }

    /// The sliding window the counts cover (split into `N` buckets of `window / N`).
    ///
    /// ```
    /// use bulwark::throttle::{Config, ConfigError};
    /// use core::time::Duration;
    /// assert_eq!(Config::new().window(Duration::from_nanos(3)).validate::<4>(), Err(ConfigError::WindowTooShort));
    /// ```
    pub const fn window(mut self, window: Duration) -> Config {
        self.window = window;
        self
    }

    /// A fixed seed: the same local refusals in every run.
    ///
    /// ```
    /// use bulwark::throttle::Config;
    /// assert_eq!(Config::new().seed(9), Config::new().seed(9));
    /// ```
    pub const fn seed(mut self, seed: u64) -> Config {
        self.seed = Some(seed);
        self
    }

    /// Checks the configuration for a window of `N` buckets.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: K below 1, no buckets, a window shorter than one nanosecond per bucket.
    ///
    /// ```
    /// use bulwark::throttle::{Config, ConfigError};
    /// assert_eq!(Config::new().validate::<0>(), Err(ConfigError::NoBuckets));
    /// ```
    pub const fn validate<const N: usize>(&self) -> Result<(), ConfigError> {
        if self.k_milli < 1_000 {
            return Err(ConfigError::KBelowOne);
        }
        if N == 0 {
            return Err(ConfigError::NoBuckets);
        }
        if duration_to_nanos(self.window) < N as u64 {
            return Err(ConfigError::WindowTooShort);
        }
        Ok(())
    }

    /// The length of one bucket in nanoseconds (at least 1 once validated).
    pub(super) const fn bucket_nanos<const N: usize>(&self) -> u64 {
        let b = duration_to_nanos(self.window) / if N == 0 { 1 } else { N as u64 };
        if b == 0 { 1 } else { b }
    }
}
