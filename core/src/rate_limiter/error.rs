//! Errors of the rate limiter.

use core::fmt;
use core::time::Duration;

use super::config::MAX_RATE_ERROR_PER_MILLE;
use crate::time::{Human, Instant};

/// The limiter has no tokens for this call now; it would pass at `retry_at`.
///
/// `retry_at` is exact: a call for the same number of tokens made at `retry_at` passes,
/// unless another call took tokens in between.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, rate_limiter::RateLimited};
/// use core::time::Duration;
///
/// let r = RateLimited::new(Instant::from_millis(1_500), Instant::from_secs(1));
/// assert_eq!(r.retry_after, Duration::from_millis(500));
/// assert_eq!(r.wait_time_from(Instant::from_secs(2)), Duration::ZERO);
/// assert_eq!(r.to_string(), "rate limited; retry in 500 ms");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RateLimited {
    /// The earliest instant at which the call would pass.
    pub retry_at: Instant,
    /// How long that was from the rejection: what the error displays, and what an HTTP
    /// `Retry-After` says.
    pub retry_after: Duration,
    /// The quota the call was judged against ([`Quota::UNKNOWN`] where the judge did not
    /// say, e.g. [`NEVER`](RateLimited::NEVER)).
    pub quota: Quota,
}

impl RateLimited {
    /// "Never": no instant the call could pass (more than the burst, an instant past the
    /// clock's range).
    ///
    /// ```
    /// use bulwark::rate_limiter::RateLimited;
    /// assert_eq!(RateLimited::NEVER.to_string(), "rate limited; the call can never pass");
    /// ```
    pub const NEVER: RateLimited = RateLimited {
        retry_at: Instant::MAX,
        retry_after: Duration::MAX,
        quota: Quota::UNKNOWN,
    };

    /// Rejected at `now` until `retry_at` ([`NEVER`](RateLimited::NEVER) for
    /// [`Instant::MAX`]).
    ///
    /// ```
    /// use bulwark::{Instant, rate_limiter::RateLimited};
    /// let r = RateLimited::new(Instant::from_secs(3), Instant::from_secs(1));
    /// assert_eq!(r.retry_after.as_secs(), 2);
    /// ```
    pub const fn new(retry_at: Instant, now: Instant) -> RateLimited {
        if retry_at.as_nanos() == Instant::MAX.as_nanos() {
            return RateLimited::NEVER;
        }
        RateLimited {
            retry_at,
            retry_after: retry_at.saturating_duration_since(now),
            quota: Quota::UNKNOWN,
        }
    }

    /// The same rejection, judged against `quota`.
    ///
    /// ```
    /// use bulwark::{Instant, rate_limiter::{Quota, RateLimited}};
    /// use core::time::Duration;
    /// let q = Quota { burst: 20, period: Duration::from_millis(50) };
    /// let r = RateLimited::new(Instant::from_secs(3), Instant::from_secs(1)).with_quota(q);
    /// assert_eq!(r.quota, q);
    /// assert_eq!(r.to_string(), "rate limited (20 at once, one more every 50 ms); retry in 2.0 s");
    /// ```
    #[must_use]
    pub const fn with_quota(mut self, quota: Quota) -> RateLimited {
        self.quota = quota;
        self
    }

    /// How long from `now` until the call would pass (zero if that instant is past).
    ///
    /// ```
    /// use bulwark::{Instant, rate_limiter::RateLimited};
    /// let r = RateLimited::new(Instant::from_secs(3), Instant::ZERO);
    /// assert_eq!(r.wait_time_from(Instant::from_secs(1)).as_secs(), 2);
    /// ```
    pub fn wait_time_from(&self, now: Instant) -> Duration {
        self.retry_at.saturating_duration_since(now)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == RateLimited::NEVER {
            return f.write_str("rate limited; the call can never pass");
        }
        if self.quota == Quota::UNKNOWN {
            return write!(f, "rate limited; retry in {}", Human(self.retry_after));
        }
        write!(
            f,
            "rate limited ({} at once, one more every {}); retry in {}",
            self.quota.burst,
            Human(self.quota.period),
            Human(self.retry_after)
        )
    }
}

impl core::error::Error for RateLimited {}

/// The quota a rate limiter judges calls against: `burst` tokens at once, one more every
/// `period` (what [`Config`](super::Config) sets). Carried by [`RateLimited`], so a caller (or
/// an HTTP `RateLimit-Policy` header) can say which quota was exceeded.
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimiter};
/// use bulwark::MockClock;
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let l = RateLimiter::new(Config::per_second(4).burst(2), &clock).unwrap();
/// l.try_acquire_n(2).unwrap();
/// let q = l.try_acquire().unwrap_err().quota;
/// assert_eq!((q.burst, q.period), (2, Duration::from_millis(250)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quota {
    /// Tokens a full limiter grants at once.
    pub burst: u32,
    /// The time to refill one token.
    pub period: Duration,
}

impl Quota {
    /// No quota known (a burst of zero): what [`RateLimited::new`] carries.
    ///
    /// ```
    /// use bulwark::{Instant, rate_limiter::{Quota, RateLimited}};
    /// assert_eq!(RateLimited::new(Instant::from_secs(1), Instant::ZERO).quota, Quota::UNKNOWN);
    /// ```
    pub const UNKNOWN: Quota = Quota {
        burst: 0,
        period: Duration::ZERO,
    };
}

impl crate::admission::RetryHint for RateLimited {
    #[inline]
    fn retry_at(&self) -> Option<Instant> {
        Some(self.retry_at)
    }
}

/// A call asked for more tokens than the burst: it can never pass. Nothing was consumed.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::InsufficientCapacity;
/// let e = InsufficientCapacity { requested: 12, burst: 10 };
/// assert_eq!(e.to_string(), "asked for 12 tokens but the burst is 10: can never pass");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InsufficientCapacity {
    /// The number of tokens asked for.
    pub requested: u32,
    /// The most a single call can ever take (the burst).
    pub burst: u32,
}

impl fmt::Display for InsufficientCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asked for {} tokens but the burst is {}: can never pass",
            self.requested, self.burst
        )
    }
}

impl core::error::Error for InsufficientCapacity {}

/// Why a call for tokens did not pass.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, rate_limiter::{Denied, RateLimited}};
/// let d = Denied::RateLimited(RateLimited::new(Instant::from_secs(1), Instant::ZERO));
/// assert_eq!(d.retry_at(), Some(Instant::from_secs(1)));
/// assert_eq!(d.to_string(), "rate limited; retry in 1.0 s");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Denied {
    /// Not now; at `retry_at`.
    RateLimited(RateLimited),
    /// Never: more than the burst was asked for.
    InsufficientCapacity(InsufficientCapacity),
}

impl Denied {
    /// The instant the call would pass, or `None` when it never can.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Denied, InsufficientCapacity};
    /// let d = Denied::InsufficientCapacity(InsufficientCapacity { requested: 2, burst: 1 });
    /// assert_eq!(d.retry_at(), None);
    /// ```
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            Denied::RateLimited(r) => Some(r.retry_at),
            Denied::InsufficientCapacity(_) => None,
        }
    }

    /// The denial as a [`RateLimited`]: asking more than the burst becomes
    /// [`RateLimited::NEVER`] (the call can never pass). What a one-token call answers
    /// (`try_acquire`, a gate's admission), where a burst of at least 1 makes that case
    /// unreachable.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Denied, InsufficientCapacity, RateLimited};
    /// let d = Denied::InsufficientCapacity(InsufficientCapacity { requested: 2, burst: 1 });
    /// assert_eq!(d.into_rate_limited(), RateLimited::NEVER);
    /// ```
    #[inline]
    pub fn into_rate_limited(self) -> RateLimited {
        match self {
            Denied::RateLimited(r) => r,
            Denied::InsufficientCapacity(_) => RateLimited::NEVER,
        }
    }
}

impl From<RateLimited> for Denied {
    fn from(r: RateLimited) -> Self {
        Denied::RateLimited(r)
    }
}

impl From<InsufficientCapacity> for Denied {
    fn from(e: InsufficientCapacity) -> Self {
        Denied::InsufficientCapacity(e)
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::RateLimited(r) => r.fmt(f),
            Denied::InsufficientCapacity(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Denied {}

impl crate::admission::RetryHint for Denied {
    #[inline]
    fn retry_at(&self) -> Option<Instant> {
        Denied::retry_at(self)
    }
}

/// A limiter configuration that cannot run.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, ConfigError, RateLimiter};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// assert_eq!(RateLimiter::new(Config::per_second(0), &clock).unwrap_err(), ConfigError::ZeroRate);
/// assert_eq!(ConfigError::ZeroBurst.to_string(), "burst must be at least 1");
/// let e = RateLimiter::new(Config::per_second(600_000_000), &clock).unwrap_err();
/// assert_eq!(e.to_string(), "rate = 600000000 per 1s needs a token period of \
///     1000000000/600000000 ns, which whole nanoseconds cannot represent: 2 ns would be \
///     16.66 % slow (at most 0.1 % allowed); choose a rate whose period is whole nanoseconds \
///     or give the period");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The rate is zero (or the refill period of one token is zero).
    ZeroRate,
    /// The burst is zero: no call could ever pass.
    ZeroBurst,
    /// `burst × period` does not fit 584 years of nanoseconds.
    TooLong,
    /// `rate` tokens every `interval` needs a period of one token that whole nanoseconds
    /// cannot represent: rounded up (so as never to admit more than the rate), it would make
    /// the limiter more than 0.1 % slower than asked
    /// ([`MAX_RATE_ERROR_PER_MILLE`](super::MAX_RATE_ERROR_PER_MILLE)). Above 1 M tokens a
    /// second, pick a rate whose period is (nearly) whole nanoseconds, or give the period
    /// itself with [`Config::with_period`](super::Config::with_period).
    InexactRate {
        /// The tokens per interval asked for.
        rate: u32,
        /// The interval.
        interval: Duration,
    },
    /// A keyed table with no slots, or a sharded limiter with no shards.
    ZeroCapacity,
    /// [`jitter`](super::Config::jitter), as far as the max wait lets it reach, is longer
    /// than the bucket (`burst × period`, the time an empty bucket takes to refill): it would
    /// only delay callers, by up to centuries with [`Duration::MAX`](core::time::Duration::MAX)
    /// for both.
    JitterTooLong,
    /// A [`ShardedRateLimiter`](super::ShardedRateLimiter) with more shards than tokens in its
    /// burst: some shard would hold no token at all.
    BurstBelowShards {
        /// The burst asked for.
        burst: u32,
        /// The number of shards.
        shards: usize,
    },
    /// Another [`RateLimiter::reconfigure`](super::RateLimiter::reconfigure) of the same
    /// limiter was in progress (from another thread, or an interrupted one): this change was
    /// not applied, nothing changed. Changes never wait for each other, so an interrupt
    /// handler cannot spin on one; retry it (a thread), or give up (a handler).
    Busy,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ConfigError::InexactRate { rate, interval } = *self {
            // Only built for a rate above zero; `max(1)` keeps Display total regardless.
            let rate = u128::from(rate.max(1));
            let ns = interval.as_nanos();
            let t = ns.div_ceil(rate);
            // The slowdown of the rounded period, in hundredths of a percent.
            let whole = t * rate;
            let slow = (whole - ns) * 10_000 / whole.max(1);
            return write!(
                f,
                "rate = {rate} per {} needs a token period of {ns}/{rate} ns, which whole \
                 nanoseconds cannot represent: {t} ns would be {}.{:02} % slow (at most {}.{} % \
                 allowed); choose a rate whose period is whole nanoseconds or give the period",
                crate::duration::Text(interval),
                slow / 100,
                slow % 100,
                MAX_RATE_ERROR_PER_MILLE / 10,
                MAX_RATE_ERROR_PER_MILLE % 10,
            );
        }
        if let ConfigError::BurstBelowShards { burst, shards } = *self {
            return write!(
                f,
                "burst = {burst} is below the {shards} shards: each shard needs a token of its \
                 own (raise the burst or use fewer shards)"
            );
        }
        f.write_str(match self {
            ConfigError::ZeroRate => {
                "rate must be above zero, and so must the period of one token (per / rate)"
            }
            ConfigError::ZeroBurst => "burst must be at least 1",
            ConfigError::TooLong => {
                "burst times the period of one token (per / rate) overflows 64-bit nanoseconds"
            }
            ConfigError::ZeroCapacity => {
                "a keyed table needs at least one slot, a sharded limiter at least one shard"
            }
            ConfigError::JitterTooLong => {
                "jitter must be at most burst times the period of one token (per / rate): the \
                 time the bucket takes to refill"
            }
            ConfigError::InexactRate { .. } => "the rate needs a sub-nanosecond token period",
            ConfigError::BurstBelowShards { .. } => "the burst is below the number of shards",
            ConfigError::Busy => {
                "another change of this limiter's settings was in progress: nothing changed, retry"
            }
        })
    }
}

impl core::error::Error for ConfigError {}
