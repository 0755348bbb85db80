//! Configuration of the Redis limiter: the limit itself, where time comes from, and how the
//! limiter protects itself when Redis cannot answer.

use std::time::Duration;

use bulwark::circuit_breaker::Config as BreakerConfig;
use bulwark::rate_limiter::{Config as Limit, Gcra};

use crate::error::{Cause, ConfigError};

/// The longest [`Config::expiry_slack`]: a year. Keys expire by Redis's millisecond clock;
/// the slack is added to a TTL computed in the script, whose numbers must stay exact.
pub const MAX_EXPIRY_SLACK: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the limiter reads "now".
///
/// ```
/// use bulwark_redis::TimeSource;
/// assert_eq!(TimeSource::default(), TimeSource::Server);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum TimeSource {
    /// Redis `TIME`, read inside the script (the default): every instance of the fleet uses
    /// one clock, so instances whose own clocks are skewed still agree. Instants stored in
    /// Redis are Unix time in nanoseconds (microsecond resolution). Retry instants are
    /// handed back on the local clock: the local reading when the answer arrived plus the
    /// wait Redis computed.
    #[default]
    Server,
    /// The limiter's local [`Clock`](bulwark::Clock), sent with each check: for tests (a
    /// [`MockClock`](bulwark::MockClock) drives the shared limit) and for a fleet that already
    /// shares a clock. Every instance writing a key prefix must use the same source and the
    /// same clock origin. An instant earlier than a key's last check is an earlier question,
    /// answered as the core's [`gcra`](bulwark::rate_limiter::gcra) answers it (never more
    /// generously than at the later instant); there is no table-wide "latest instant" as in
    /// the in-process keyed table.
    Caller,
}

/// What a check answers while Redis cannot (down, unreachable, slower than the timeout, or
/// its breaker is open).
///
/// The default is [`FailOpen`](Degradation::FailOpen), Envoy's rate-limit service's default
/// (`failure_mode_deny: false`): a rate limit that is down should not take the service down
/// with it.
///
/// ```
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark_redis::Degradation;
/// let d = Degradation::local_share(Limit::per_second(100).burst(50), 4).unwrap();
/// let Degradation::Local(local) = d else { unreachable!() };
/// assert_eq!(local.period().as_millis(), 40); // 25 per second on this instance
/// assert_eq!(local.burst_size(), 12);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Degradation {
    /// Let every call through.
    #[default]
    FailOpen,
    /// Refuse every call with [`Error::Unavailable`](crate::Error::Unavailable).
    FailClosed,
    /// An in-process limiter per key (the core's
    /// [`KeyedRateLimiter`](bulwark::rate_limiter::KeyedRateLimiter), [`LOCAL_KEYS`](crate::LOCAL_KEYS)
    /// keys) with this limit: this instance's share of the fleet's quota
    /// ([`local_share`](Degradation::local_share)). Its buckets start full when it takes
    /// over.
    Local(Limit),
}

impl Degradation {
    /// A local limit that is `1 / instances` of `fleet`: the period of one token times
    /// `instances`, the burst divided by `instances` (rounded down, at least 1).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] (field `degradation`) for zero instances or a period that overflows.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::Degradation;
    /// assert_eq!(Degradation::local_share(Limit::per_second(10), 0).unwrap_err().field(), "degradation");
    /// ```
    pub fn local_share(fleet: Limit, instances: u32) -> Result<Degradation, ConfigError> {
        if instances == 0 {
            return Err(ConfigError::new(
                "degradation",
                "a local share needs at least one instance",
            ));
        }
        let g = fleet
            .gcra()
            .map_err(|e| ConfigError::new("degradation", e))?;
        let period = g
            .emission_interval_nanos()
            .checked_mul(u64::from(instances))
            .ok_or_else(|| {
                ConfigError::new(
                    "degradation",
                    "the local period (fleet period × instances) overflows",
                )
            })?;
        let burst = (g.burst() / instances).max(1);
        Ok(Degradation::Local(
            Limit::with_period(Duration::from_nanos(period))
                .burst(burst)
                .max_wait(fleet.max_wait_time()),
        ))
    }
}

/// A switch between answering from Redis and answering by the [`Degradation`].
///
/// ```
/// use bulwark_redis::{Cause, Event};
/// let e = Event::Degraded(Cause::Unreachable("refused".into()));
/// assert_eq!(e.to_string(), "rate limit degraded: Redis is unreachable: refused");
/// assert_eq!(Event::Recovered.to_string(), "rate limit recovered: Redis answers again");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Redis stopped answering; checks are answered by the degradation from now on.
    Degraded(Cause),
    /// Redis answered again; checks use the shared limit again.
    Recovered,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Degraded(c) => write!(f, "rate limit degraded: {c}"),
            Event::Recovered => f.write_str("rate limit recovered: Redis answers again"),
        }
    }
}

/// The Redis limiter's configuration: a builder, checked by [`validate`](Config::validate)
/// and the limiter's constructor.
///
/// | setting | default |
/// |---|---|
/// | the limit (rate, burst, max wait of [`acquire`](crate::RedisRateLimiter::acquire)) | given |
/// | [`prefix`](Config::prefix) of the Redis keys | `bulwark:rl:` |
/// | [`time`](Config::time) | [`TimeSource::Server`] (Redis `TIME`) |
/// | [`timeout`](Config::timeout) of one check's round trip | 100 ms |
/// | [`breaker`](Config::breaker) around Redis | 3 consecutive failures, open 1 s |
/// | [`degradation`](Config::degradation) | [`Degradation::FailOpen`] |
/// | [`expiry_slack`](Config::expiry_slack) | zero |
///
/// The limit's jitter setting is not used: a wait ends at the exact retry instant.
///
/// ```
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark_redis::{Config, Degradation, TimeSource};
/// use std::time::Duration;
///
/// let limit = Limit::per_second(100).burst(20);
/// let cfg = Config::new(limit)
///     .prefix("api:")
///     .timeout(Duration::from_millis(25))
///     .degradation(Degradation::local_share(limit, 8).unwrap());
/// assert!(cfg.validate().is_ok());
/// assert_eq!(cfg.time_source(), TimeSource::Server);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) limit: Limit,
    pub(crate) prefix: String,
    pub(crate) time: TimeSource,
    pub(crate) timeout: Duration,
    pub(crate) breaker: BreakerConfig,
    pub(crate) degradation: Degradation,
    pub(crate) expiry_slack: Duration,
}

impl Config {
    /// The shared limit `limit` (the same [`Config`](bulwark::rate_limiter::Config) as the
    /// in-process limiters: rate, burst, max wait), with the defaults in the table above.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_second(5)).limit().burst_size(), 5);
    /// ```
    pub fn new(limit: Limit) -> Config {
        Config {
            limit,
            prefix: String::from("bulwark:rl:"),
            time: TimeSource::Server,
            timeout: Duration::from_millis(100),
            breaker: BreakerConfig::new()
                .consecutive_failures(3)
                .open_for(Duration::from_secs(1)),
            degradation: Degradation::FailOpen,
            expiry_slack: Duration::ZERO,
        }
    }

    /// Put before every key: one prefix per limit, so two limits never share a bucket.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// let c = bulwark_redis::Config::new(Limit::per_second(5)).prefix("login:");
    /// assert_eq!(c.key_prefix(), "login:");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Config {
        self.prefix = prefix.into();
        self
    }

    /// Where "now" comes from (see [`TimeSource`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::{Config, TimeSource};
    /// assert_eq!(Config::new(Limit::per_second(5)).time(TimeSource::Caller).time_source(), TimeSource::Caller);
    /// ```
    pub fn time(mut self, time: TimeSource) -> Config {
        self.time = time;
        self
    }

    /// The longest one check may wait for Redis (including a reconnect and a script reload);
    /// past it the check is answered by the degradation. Must be above zero.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use std::time::Duration;
    /// let c = bulwark_redis::Config::new(Limit::per_second(5)).timeout(Duration::from_millis(20));
    /// assert_eq!(c.check_timeout(), Duration::from_millis(20));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout;
        self
    }

    /// The circuit breaker around Redis calls (failures are unreachable servers and
    /// timeouts; the breaker runs on the limiter's local clock). While it is open, checks
    /// are answered by the degradation without asking Redis.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config as Breaker;
    /// use bulwark::rate_limiter::Config as Limit;
    /// use std::time::Duration;
    /// let c = bulwark_redis::Config::new(Limit::per_second(5))
    ///     .breaker(Breaker::new().consecutive_failures(1).open_for(Duration::from_millis(500)));
    /// assert!(c.validate().is_ok());
    /// ```
    pub fn breaker(mut self, breaker: BreakerConfig) -> Config {
        self.breaker = breaker;
        self
    }

    /// What checks answer while Redis cannot (see [`Degradation`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::{Config, Degradation};
    /// let c = Config::new(Limit::per_second(5)).degradation(Degradation::FailClosed);
    /// assert_eq!(c.degradation_mode(), Degradation::FailClosed);
    /// ```
    pub fn degradation(mut self, degradation: Degradation) -> Config {
        self.degradation = degradation;
        self
    }

    /// How much longer than "until the bucket is full again" a key lives in Redis (default
    /// zero; at most [`MAX_EXPIRY_SLACK`]). Keys expire on Redis's own clock: with
    /// [`TimeSource::Server`] the expiry is exact at zero slack. With
    /// [`TimeSource::Caller`] and a clock that does not run at real speed (a mock clock), a
    /// key could expire before the caller's clock says its bucket is full, which forgets its
    /// debt; give such tests a slack longer than they run.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use std::time::Duration;
    /// let c = bulwark_redis::Config::new(Limit::per_second(5)).expiry_slack(Duration::from_secs(3600));
    /// assert!(c.validate().is_ok());
    /// assert_eq!(c.expiry_slack(Duration::from_secs(400 * 24 * 3600)).validate().unwrap_err().field(), "expiry_slack");
    /// ```
    pub fn expiry_slack(mut self, slack: Duration) -> Config {
        self.expiry_slack = slack;
        self
    }

    /// The shared limit.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_minute(60)).limit().period().as_secs(), 1);
    /// ```
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// The key prefix.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_second(1)).key_prefix(), "bulwark:rl:");
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The time source.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::TimeSource;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_second(1)).time_source(), TimeSource::Server);
    /// ```
    pub fn time_source(&self) -> TimeSource {
        self.time
    }

    /// The timeout of one check.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_second(1)).check_timeout().as_millis(), 100);
    /// ```
    pub fn check_timeout(&self) -> Duration {
        self.timeout
    }

    /// The degradation.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::Degradation;
    /// assert_eq!(bulwark_redis::Config::new(Limit::per_second(1)).degradation_mode(), Degradation::FailOpen);
    /// ```
    pub fn degradation_mode(&self) -> Degradation {
        self.degradation
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: `limit` (as the core's
    /// [`Config::gcra`](bulwark::rate_limiter::Config::gcra)), `timeout` (zero), `breaker`
    /// (as the core's breaker), `degradation` (a local limit that cannot run),
    /// `expiry_slack` (above [`MAX_EXPIRY_SLACK`]).
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config as Breaker;
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::Config;
    /// let e = Config::new(Limit::per_second(1)).breaker(Breaker::new()).validate().unwrap_err();
    /// assert_eq!(e.field(), "breaker");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(|_| ())
    }

    pub(crate) fn checked(&self) -> Result<Gcra, ConfigError> {
        let gcra = self
            .limit
            .gcra()
            .map_err(|e| ConfigError::new("limit", e))?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "timeout",
                "the timeout must be above zero",
            ));
        }
        // The breaker checks its own config when built; build a throwaway to ask it now.
        bulwark::circuit_breaker::CircuitBreaker::new(self.breaker, bulwark::MockClock::new())
            .map_err(|e| ConfigError::new("breaker", e))?;
        if let Degradation::Local(local) = self.degradation {
            local
                .gcra()
                .map_err(|e| ConfigError::new("degradation", e))?;
        }
        if self.expiry_slack > MAX_EXPIRY_SLACK {
            return Err(ConfigError::new(
                "expiry_slack",
                "the expiry slack must be at most a year",
            ));
        }
        Ok(gcra)
    }
}
