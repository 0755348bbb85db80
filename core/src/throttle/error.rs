//! Errors of the adaptive throttle.

use core::fmt;

/// The throttle refused the request locally.
///
/// ```
/// use bulwark::throttle::Throttled;
/// let t = Throttled { reject_per_million: 352_000 };
/// assert_eq!(t.to_string(), "throttled locally: the backend accepted too few recent requests (refusing 35.2 %)");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Throttled {
    /// The refusal probability at the time, in parts per million.
    pub reject_per_million: u32,
}

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = self.reject_per_million / 1_000;
        write!(
            f,
            "throttled locally: the backend accepted too few recent requests (refusing {}.{} %)",
            tenths / 10,
            tenths % 10
        )
    }
}

impl core::error::Error for Throttled {}

/// No instant is known: the refusal is a draw, not a schedule.
impl crate::admission::RetryHint for Throttled {
    fn retry_at(&self) -> Option<crate::time::Instant> {
        None
    }
}

/// A [`Config`](super::Config) that cannot run.
///
/// ```
/// use bulwark::throttle::ConfigError;
/// assert_eq!(ConfigError::KBelowOne.to_string(), "k must be at least 1000 (K = 1)");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// K below 1 (`k` below 1000 thousandths).
    KBelowOne,
    /// A window of no buckets (`N = 0`).
    NoBuckets,
    /// A window shorter than one nanosecond per bucket.
    WindowTooShort,
    /// [`RetryThrottling`](super::RetryThrottling)'s `max_tokens` outside 1 ..= 1000.
    MaxTokens,
    /// [`RetryThrottling`](super::RetryThrottling)'s `token_ratio` of zero.
    TokenRatio,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::KBelowOne => "k must be at least 1000 (K = 1)",
            ConfigError::NoBuckets => "the window needs at least one bucket (N = 0)",
            ConfigError::WindowTooShort => "window must be at least one nanosecond per bucket",
            ConfigError::MaxTokens => "max_tokens must be between 1 and 1000",
            ConfigError::TokenRatio => "token_ratio must be above zero",
        })
    }
}

impl core::error::Error for ConfigError {}
