//! Errors of retry.

use core::fmt;

/// Why a [`Retry`](super::Retry) call gave up with an error.
///
/// Every variant carries the number of attempts made (the first call counts) and the last
/// error, unchanged. A *result* the classifier asked to retry is never turned into an error:
/// when the retries run out on one, that result is returned as `Ok`.
///
/// | variant | when |
/// |---|---|
/// | [`Exhausted`](Error::Exhausted) | the policy's own limits: `max_attempts` used up, or the next attempt would start after `max_elapsed` |
/// | [`Permanent`](Error::Permanent) | the classifier said the error is not worth retrying; returned at once |
/// | [`BudgetExhausted`](Error::BudgetExhausted) | the shared [`Budget`](super::Budget) denied the retry |
/// | [`DeadlineExceeded`](Error::DeadlineExceeded) | the next attempt would start at or after the caller's [`Deadline`](crate::timeout::Deadline) (`last` is `None` when it had passed before the call and the first attempt was not ready at its first poll: that attempt was dropped) |
///
/// # Examples
///
/// ```
/// use bulwark::retry::Error;
/// let e: Error<&str> = Error::Exhausted { last: "503", attempts: 3 };
/// assert_eq!(e.attempts(), 3);
/// assert_eq!(e.to_string(), "gave up after 3 attempts: 503");
/// assert_eq!(e.into_last(), Some("503"));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// Out of attempts or out of time (`max_attempts`, `max_elapsed`).
    Exhausted {
        /// The last attempt's error.
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// The classifier called the error permanent: it was not retried.
    Permanent {
        /// The error.
        error: E,
        /// Attempts made (the failing one included).
        attempts: u32,
    },
    /// The retry budget denied the retry.
    BudgetExhausted {
        /// The last attempt's error.
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// Retrying would not start before the caller's deadline.
    DeadlineExceeded {
        /// The last attempt's error; `None` when the deadline had passed before the call and
        /// the first attempt, pending at its first poll, was dropped.
        last: Option<E>,
        /// Attempts made.
        attempts: u32,
    },
}

impl<E> Error<E> {
    /// Attempts made before giving up.
    ///
    /// ```
    /// use bulwark::retry::Error;
    /// assert_eq!(Error::<()>::DeadlineExceeded { last: None, attempts: 0 }.attempts(), 0);
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Exhausted { attempts, .. }
            | Error::Permanent { attempts, .. }
            | Error::BudgetExhausted { attempts, .. }
            | Error::DeadlineExceeded { attempts, .. } => *attempts,
        }
    }

    /// The last error of the operation, if an attempt was made.
    ///
    /// ```
    /// use bulwark::retry::Error;
    /// assert_eq!(Error::Permanent { error: 404, attempts: 1 }.last(), Some(&404));
    /// ```
    pub fn last(&self) -> Option<&E> {
        match self {
            Error::Exhausted { last, .. } | Error::BudgetExhausted { last, .. } => Some(last),
            Error::Permanent { error, .. } => Some(error),
            Error::DeadlineExceeded { last, .. } => last.as_ref(),
        }
    }

    /// The last error of the operation, by value.
    ///
    /// ```
    /// use bulwark::retry::Error;
    /// assert_eq!(Error::BudgetExhausted { last: 'x', attempts: 2 }.into_last(), Some('x'));
    /// ```
    pub fn into_last(self) -> Option<E> {
        match self {
            Error::Exhausted { last, .. } | Error::BudgetExhausted { last, .. } => Some(last),
            Error::Permanent { error, .. } => Some(error),
            Error::DeadlineExceeded { last, .. } => last,
        }
    }

    /// `true` for [`Error::Permanent`].
    ///
    /// ```
    /// use bulwark::retry::Error;
    /// assert!(Error::Permanent { error: (), attempts: 1 }.is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::Permanent { .. })
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Exhausted { last, attempts } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
            Error::Permanent { error, .. } => write!(f, "permanent error: {error}"),
            Error::BudgetExhausted { last, attempts } => {
                write!(
                    f,
                    "retry budget exhausted after {attempts} attempts: {last}"
                )
            }
            Error::DeadlineExceeded {
                last: Some(last),
                attempts,
            } => write!(f, "deadline exceeded after {attempts} attempts: {last}"),
            Error::DeadlineExceeded { last: None, .. } => {
                f.write_str("deadline already passed and the first attempt was not ready")
            }
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.last().map(|e| e as _)
    }
}

/// A retry or budget configuration that cannot be used, found when it is built.
///
/// ```
/// use bulwark::retry::{Config, ConfigError, Retry};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let err = Retry::new(Config::new().max_attempts(0), &clock).unwrap_err();
/// assert_eq!(err, ConfigError::ZeroAttempts);
/// assert_eq!(err.to_string(), "max_attempts must be at least 1");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `max_attempts` is 0 (1 means "no retries").
    ZeroAttempts,
    /// An exponential backoff with a multiplier of 0, or a fraction with a zero denominator.
    ZeroMultiplier,
    /// An exponential backoff with a fractional multiplier below 1 (a backoff that shrinks).
    MultiplierBelowOne,
    /// An [`ExpiringBudget`](super::ExpiringBudget)'s time to live outside 1 s ..= 60 s.
    TtlOutOfRange,
    /// A percentage out of its range (proportional jitter: 0 ..= 100; budget: 0 ..= 1000).
    PercentOutOfRange,
    /// [`backoff`](super::Config::backoff): an [exponential](super::Backoff::exponential)
    /// backoff whose initial delay is zero (zero times any multiplier stays zero: it would
    /// never back off).
    ZeroInitialDelay,
    /// [`max_retry_after`](super::Config::max_retry_after) is zero: every Retry-After hint
    /// would become an immediate retry.
    ZeroMaxRetryAfter,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroAttempts => "max_attempts must be at least 1",
            ConfigError::ZeroMultiplier => {
                "backoff.multiplier must be at least 1 (and a fraction's denominator above 0)"
            }
            ConfigError::MultiplierBelowOne => "backoff.multiplier must be at least 1",
            ConfigError::TtlOutOfRange => "a retry budget's ttl must be within 1s ..= 60s",
            ConfigError::PercentOutOfRange => {
                "percentage out of range (jitter's proportional: 0 ..= 100; a budget's \
                 retry_percent: 0 ..= 1000; additive jitter: 0 ..= 100 000 thousandths)"
            }
            ConfigError::ZeroInitialDelay => {
                "backoff.exponential (the first delay) must be above zero: zero never grows"
            }
            ConfigError::ZeroMaxRetryAfter => {
                "max_retry_after must be above zero (zero would retry at once whatever Retry-After asks)"
            }
        })
    }
}

impl core::error::Error for ConfigError {}
