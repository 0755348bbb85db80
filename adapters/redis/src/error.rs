//! Errors: why a check did not pass, why Redis could not answer, and a configuration that
//! cannot run.

use std::fmt;
use std::time::Duration;

use bulwark::Instant;
use bulwark::admission::RetryHint;
use bulwark::rate_limiter::{InsufficientCapacity, RateLimited};

/// Why a check for tokens did not pass.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, rate_limiter::RateLimited};
/// use bulwark_redis::{Cause, Error};
/// use std::time::Duration;
///
/// let e = Error::RateLimited(RateLimited::new(Instant::from_millis(300), Instant::ZERO));
/// assert_eq!(e.to_string(), "rate limited; retry in 300 ms");
/// assert_eq!(e.retry_after(), Some(Duration::from_millis(300)));
/// let down = Error::Unavailable(Cause::Timeout(Duration::from_millis(50)));
/// assert_eq!(
///     down.to_string(),
///     "the shared rate limit is unavailable and the limiter fails closed: Redis did not answer within 50 ms"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No tokens for this call now: retry at `retry_at` (an instant on the limiter's local
    /// clock; `retry_after` is how long that was from the answer).
    RateLimited(RateLimited),
    /// More tokens than the burst were asked for: the call can never pass. Nothing was taken
    /// and Redis was not asked.
    InsufficientCapacity(InsufficientCapacity),
    /// Redis could not answer (down, unreachable, slow, or its breaker is open) and the
    /// limiter is configured to fail closed, or the local fallback's share of the burst is
    /// smaller than the tokens asked for.
    Unavailable(Cause),
    /// Redis answered with an error that says nothing about its health (the key holds
    /// something else, for instance): a mistake to fix, reported as is, never degraded.
    Redis(String),
}

impl Error {
    /// How long to wait before the call could pass, when that is known: the rate limit's
    /// retry hint, or the time until the breaker around Redis lets a probe through.
    ///
    /// ```
    /// use bulwark_redis::{Cause, Error};
    /// assert_eq!(Error::Redis("WRONGTYPE".into()).retry_after(), None);
    /// assert_eq!(Error::Unavailable(Cause::Unreachable("refused".into())).retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited(r) if *r != RateLimited::NEVER => Some(r.retry_after),
            Error::Unavailable(Cause::BreakerOpen { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RateLimited(r) => r.fmt(f),
            Error::InsufficientCapacity(e) => e.fmt(f),
            Error::Unavailable(c) => write!(
                f,
                "the shared rate limit is unavailable and the limiter fails closed: {c}"
            ),
            Error::Redis(m) => write!(f, "Redis refused the rate-limit script: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl RetryHint for Error {
    /// The rate limit's retry instant, or when the breaker around Redis lets a probe through.
    fn retry_at(&self) -> Option<Instant> {
        match self {
            Error::RateLimited(r) => Some(r.retry_at),
            Error::Unavailable(Cause::BreakerOpen { retry_at, .. }) => *retry_at,
            _ => None,
        }
    }
}

/// Why Redis could not answer a check: what degraded it.
///
/// ```
/// use bulwark_redis::Cause;
/// assert_eq!(
///     Cause::Unreachable("Connection refused (os error 111)".into()).to_string(),
///     "Redis is unreachable: Connection refused (os error 111)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// No answer within the configured timeout.
    Timeout(Duration),
    /// The connection failed, dropped, or the server said it cannot serve now (loading,
    /// read-only replica, out of memory, busy).
    Unreachable(String),
    /// The breaker around Redis is open after recent failures: Redis was not asked.
    BreakerOpen {
        /// When the breaker lets a probe through (local clock), if known.
        retry_at: Option<Instant>,
        /// How long that was from the rejection.
        retry_after: Option<Duration>,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Timeout(d) => write!(
                f,
                "Redis did not answer within {}",
                bulwark::time::Human(*d)
            ),
            Cause::Unreachable(m) => write!(f, "Redis is unreachable: {m}"),
            Cause::BreakerOpen {
                retry_after: Some(d),
                ..
            } => write!(
                f,
                "the breaker around Redis is open after recent failures; next probe in {}",
                bulwark::time::Human(*d)
            ),
            Cause::BreakerOpen { .. } => {
                f.write_str("the breaker around Redis is open after recent failures")
            }
        }
    }
}

/// A configuration that cannot run, naming the field at fault.
///
/// ```
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark_redis::Config;
/// let e = Config::new(Limit::per_second(0)).validate().unwrap_err();
/// assert_eq!(e.field(), "limit");
/// assert_eq!(
///     e.to_string(),
///     "invalid bulwark-redis config, field `limit`: rate must be above zero, and so must the period of one token (per / rate)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl fmt::Display) -> Self {
        ConfigError {
            field,
            reason: reason.to_string(),
        }
    }

    /// The field at fault: `limit`, `timeout`, `breaker`, `degradation`, `expiry_slack` or
    /// `client`.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::Config;
    /// use std::time::Duration;
    /// let e = Config::new(Limit::per_second(5)).timeout(Duration::ZERO).validate().unwrap_err();
    /// assert_eq!(e.field(), "timeout");
    /// ```
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::Config;
    /// let e = Config::new(Limit::per_second(5).burst(0)).validate().unwrap_err();
    /// assert_eq!(e.reason(), "burst must be at least 1");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid bulwark-redis config, field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}
