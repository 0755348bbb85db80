//! The adaptive limit's configuration.

use core::fmt;

/// How the limit moves; every ratio in thousandths.
///
/// ```
/// use bulwark::adaptive::Algorithm;
/// assert_eq!(Algorithm::aimd(), Algorithm::Aimd { backoff_per_mille: 900 });
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Additive increase, multiplicative decrease: +1 after a call that found the limit at
    /// least half used, × `backoff_per_mille` / 1000 after a dropped call.
    Aimd {
        /// The decrease factor (900: back off to 90 %).
        backoff_per_mille: u32,
    },
    /// TCP Vegas: estimates the queue as `limit × (1 − no-load RTT / RTT)` and grows the limit
    /// while it is below `alpha × log10(limit)`, shrinks it above `beta × log10(limit)`.
    Vegas {
        /// Grow below this many `log10(limit)` queued calls (3).
        alpha: u32,
        /// Shrink above this many `log10(limit)` queued calls (6).
        beta: u32,
    },
    /// Gradient2: compares a long-term average RTT with each new one; the limit scales by
    /// `tolerance × long / short` (between ½ and 1), plus a queue allowance, smoothed.
    Gradient2 {
        /// Weight of each new estimate (200: 20 %).
        smoothing_per_mille: u32,
        /// How much slower than the long-term average a call may be before the limit shrinks
        /// (1500: 1.5×).
        tolerance_per_mille: u32,
        /// Samples the long-term average spans (600).
        long_window: u32,
        /// Calls allowed to queue beyond the estimate (4).
        queue: u32,
    },
}

impl Algorithm {
    /// Whether the algorithm judges by round trips (Vegas, Gradient2), so that a limit reads
    /// the clock when it admits a call and when the call ends. AIMD judges by outcomes and
    /// the calls in flight only: a call through it reads no clock.
    ///
    /// ```
    /// use bulwark::adaptive::Algorithm;
    /// assert!(!Algorithm::aimd().times_calls());
    /// assert!(Algorithm::vegas().times_calls() && Algorithm::gradient2().times_calls());
    /// ```
    pub const fn times_calls(&self) -> bool {
        !matches!(self, Algorithm::Aimd { .. })
    }

    /// AIMD with Netflix's defaults (back off to 90 %).
    ///
    /// ```
    /// assert!(matches!(bulwark::adaptive::Algorithm::aimd(), bulwark::adaptive::Algorithm::Aimd { .. }));
    /// ```
    pub const fn aimd() -> Algorithm {
        Algorithm::Aimd {
            backoff_per_mille: 900,
        }
    }

    /// Vegas with Netflix's defaults (alpha 3, beta 6).
    ///
    /// ```
    /// assert_eq!(bulwark::adaptive::Algorithm::vegas(), bulwark::adaptive::Algorithm::Vegas { alpha: 3, beta: 6 });
    /// ```
    pub const fn vegas() -> Algorithm {
        Algorithm::Vegas { alpha: 3, beta: 6 }
    }

    /// Gradient2 with Netflix's defaults (smoothing 0.2, tolerance 1.5, 600 samples, queue 4).
    ///
    /// ```
    /// assert!(matches!(bulwark::adaptive::Algorithm::gradient2(), bulwark::adaptive::Algorithm::Gradient2 { queue: 4, .. }));
    /// ```
    pub const fn gradient2() -> Algorithm {
        Algorithm::Gradient2 {
            smoothing_per_mille: 200,
            tolerance_per_mille: 1_500,
            long_window: 600,
            queue: 4,
        }
    }
}

/// The algorithm and the limit's bounds: a `const` builder.
///
/// | setting | default |
/// |---|---|
/// | [`initial`](Config::initial) | 20 |
/// | [`min`](Config::min) | 1 |
/// | [`max`](Config::max) | 200 |
///
/// ```
/// use bulwark::adaptive::{Algorithm, Config, ConfigError};
/// assert_eq!(Config::new(Algorithm::vegas()).min(5).max(500).validate(), Ok(()));
/// assert_eq!(Config::new(Algorithm::vegas()).min(0).validate(), Err(ConfigError::Bounds));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) algorithm: Algorithm,
    pub(super) initial: u32,
    pub(super) min: u32,
    pub(super) max: u32,
}

impl Config {
    /// `algorithm` between 1 and 200 calls, starting at 20.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config};
    /// assert_eq!(Config::new(Algorithm::aimd()).validate(), Ok(()));
    /// ```
    pub const fn new(algorithm: Algorithm) -> Config {
        Config {
            algorithm,
            initial: 20,
            min: 1,
            max: 200,
        }
    }

    /// The limit to start from.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, ConfigError};
    /// assert_eq!(Config::new(Algorithm::aimd()).initial(500).validate(), Err(ConfigError::Bounds));
    /// ```
    pub const fn initial(mut self, n: u32) -> Config {
        self.initial = n;
        self
    }

    /// The lowest limit (at least 1).
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config};
    /// assert!(Config::new(Algorithm::aimd()).min(2).validate().is_ok());
    /// ```
    pub const fn min(mut self, n: u32) -> Config {
        self.min = n;
        self
    }

    /// The highest limit.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, ConfigError};
    /// assert_eq!(Config::new(Algorithm::aimd()).max(10).validate(), Err(ConfigError::Bounds)); // initial 20
    /// ```
    pub const fn max(mut self, n: u32) -> Config {
        self.max = n;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: bounds out of order or zero, a ratio out of range.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, ConfigError};
    /// let bad = Algorithm::Aimd { backoff_per_mille: 1_000 };
    /// assert_eq!(Config::new(bad).validate(), Err(ConfigError::Ratio));
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.min == 0 || self.min > self.initial || self.initial > self.max || self.max > 1 << 30
        {
            return Err(ConfigError::Bounds);
        }
        let ok = match self.algorithm {
            Algorithm::Aimd { backoff_per_mille } => {
                backoff_per_mille > 0 && backoff_per_mille < 1_000
            }
            Algorithm::Vegas { alpha, beta } => alpha > 0 && alpha < beta && beta <= 1_000,
            Algorithm::Gradient2 {
                smoothing_per_mille,
                tolerance_per_mille,
                long_window,
                queue,
            } => {
                smoothing_per_mille > 0
                    && smoothing_per_mille <= 1_000
                    && tolerance_per_mille >= 1_000
                    && tolerance_per_mille <= 100_000
                    && long_window > 0
                    && queue <= 1 << 20
            }
        };
        if ok { Ok(()) } else { Err(ConfigError::Ratio) }
    }
}

/// A [`Config`] that cannot run.
///
/// ```
/// use bulwark::adaptive::ConfigError;
/// assert_eq!(ConfigError::Bounds.to_string(), "need 1 <= min <= initial <= max <= 2^30");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The bounds are out of order, zero or above 2^30.
    Bounds,
    /// An algorithm ratio out of its range (a backoff not in (0, 1), alpha not below beta,
    /// a tolerance below 1, a smoothing not in (0, 1], a long window of 0).
    Ratio,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::Bounds => "need 1 <= min <= initial <= max <= 2^30",
            ConfigError::Ratio => "algorithm: a ratio out of its range (backoff in (0, 1), alpha < beta, tolerance >= 1, smoothing in (0, 1], long_window > 0)",
        })
    }
}

impl core::error::Error for ConfigError {}
