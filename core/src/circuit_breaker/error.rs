//! Errors of the circuit breaker.

use core::fmt;
use core::time::Duration;

use crate::time::Instant;

/// The breaker did not let a call through.
///
/// `retry_at` is the earliest instant at which a call could pass: the end of the open period.
/// It is `None` when no instant is known: the breaker is forced open, or every half-open probe
/// is taken (a call can pass once one of them finishes).
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::Rejected};
/// use core::time::Duration;
///
/// let r = Rejected { retry_at: Some(Instant::from_secs(30)) };
/// assert_eq!(r.wait_time_from(Instant::from_secs(10)), Some(Duration::from_secs(20)));
/// assert_eq!(r.to_string(), "circuit breaker open; retry at 30000 ms");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// When a call could pass, if known.
    pub retry_at: Option<Instant>,
}

impl Rejected {
    /// How long from `now` until a call could pass (zero if that instant is past).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::Rejected};
    /// assert_eq!(Rejected { retry_at: None }.wait_time_from(Instant::ZERO), None);
    /// ```
    pub fn wait_time_from(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(now))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_at {
            Some(t) => write!(f, "circuit breaker open; retry at {} ms", t.as_millis()),
            None => f.write_str("circuit breaker open"),
        }
    }
}

impl core::error::Error for Rejected {}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call): the breaker rejected the
/// call, or the operation ran and failed with its own error (passed through unchanged).
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Error, Rejected};
/// let e: Error<&str> = Error::Inner("boom");
/// assert_eq!(e.to_string(), "boom");
/// assert_eq!(e.into_inner(), Some("boom"));
/// let r: Error<&str> = Error::Rejected(Rejected { retry_at: None });
/// assert!(r.is_rejected());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The breaker did not let the call through; the operation never ran.
    Rejected(Rejected),
    /// The operation ran and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// `true` for [`Error::Rejected`].
    ///
    /// ```
    /// use bulwark::circuit_breaker::Error;
    /// assert!(!Error::Inner(1).is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }

    /// The operation's own error, if that is what this is.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Error;
    /// assert_eq!(Error::Inner(7).into_inner(), Some(7));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Rejected(r) => Some(r),
            Error::Inner(e) => Some(e),
        }
    }
}

/// A configuration the breaker cannot run with, found when the breaker is built.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, ConfigError, Machine, NoWindow};
/// let err = Machine::<NoWindow>::new(Config::new().consecutive_failures(0)).unwrap_err();
/// assert_eq!(err, ConfigError::ZeroThreshold);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A threshold, probe count, minimum number of calls or maximum half-open time is zero.
    ZeroThreshold,
    /// A percentage is above 100 (or zero).
    PercentOutOfRange,
    /// A value does not fit the breaker's packed state (consecutive failures or an open-time
    /// multiplier above 65 535, probes or successes to close above 255, a count window above
    /// 2^20 calls).
    TooLarge,
    /// A failure-rate or slow-call policy was set on a breaker without a window.
    NoWindow,
    /// The window can never hold `minimum_calls` calls.
    MinimumCallsAboveWindow,
    /// The time window is shorter than one nanosecond per bucket, or zero.
    ZeroWindow,
    /// No policy would ever open the breaker (use metrics-only mode for that).
    NoTripPolicy,
    /// The open-time growth multiplier is zero, or the cap is below the base.
    BadOpenBackoff,
    /// More successes are needed to close than probes could ever be admitted (rate verdict).
    SuccessesAboveProbes,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroThreshold => {
                "a threshold, probe count, minimum number of calls or max half-open time is zero"
            }
            ConfigError::PercentOutOfRange => "a percentage is outside 1..=100",
            ConfigError::TooLarge => "a value does not fit the breaker's packed state",
            ConfigError::NoWindow => "a rate policy needs a count or time window",
            ConfigError::MinimumCallsAboveWindow => {
                "minimum_calls exceeds what the window can hold"
            }
            ConfigError::ZeroWindow => {
                "the time window is zero or shorter than its bucket count in ns"
            }
            ConfigError::NoTripPolicy => "no policy would ever open the breaker",
            ConfigError::BadOpenBackoff => {
                "open-time multiplier is zero or the cap is below the base"
            }
            ConfigError::SuccessesAboveProbes => {
                "successes_to_close exceeds the probes of a rate verdict"
            }
        })
    }
}

impl core::error::Error for ConfigError {}

/// A [`Snapshot`](super::Snapshot) could not be decoded.
///
/// ```
/// use bulwark::circuit_breaker::{Snapshot, SnapshotError};
/// assert_eq!(Snapshot::from_bytes(&[0xff; 16]), Err(SnapshotError::Version));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes were written by an unknown format version.
    Version,
    /// The state byte is not a known state.
    State,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotError::Version => "unknown snapshot format version",
            SnapshotError::State => "unknown circuit state in snapshot",
        })
    }
}

impl core::error::Error for SnapshotError {}
