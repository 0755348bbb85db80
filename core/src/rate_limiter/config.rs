//! The rate limiter's configuration: a `const` builder, validated into [`Gcra`] parameters.

use core::time::Duration;

use super::error::ConfigError;
use super::state::Gcra;
use crate::time::duration_to_nanos;

/// How fast tokens refill, how many can be saved up (the burst), and how callers wait.
///
/// Built with `const fn`s and checked when a limiter is made from it ([`ConfigError`]).
///
/// # Rates and whole nanoseconds
///
/// The limiter refills one token every period `T` of whole nanoseconds (its state is one
/// `u64` of nanoseconds). A rate given as `rate` per `interval` ([`per`](Config::per),
/// [`per_second`](Config::per_second), [`per_minute`](Config::per_minute)) whose period
/// `interval / rate` is not a whole number of nanoseconds is rounded **up** to the next
/// nanosecond, so the limiter never admits more than the configured rate (at most
/// `burst + elapsed × rate` tokens in any span). The rounding makes it slower by less than
/// 1 ns per period: negligible for 3 per second (333 333 333.3 ns → 333 333 334 ns), but not
/// for 600 M per second (1.67 ns → 2 ns, 17 % slow). A rate the rounding would slow by more
/// than 0.1 % ([`MAX_RATE_ERROR_PER_MILLE`]) is refused when the limiter is built, with
/// [`ConfigError::InexactRate`]. Every rate up to 1 M per second is accepted; above that,
/// rates whose period is close enough to whole nanoseconds (500 M per second: 2 ns) are.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::Config;
/// use core::time::Duration;
///
/// // 100 calls a second, at most 20 back to back; waiting callers wait up to 50 ms and
/// // spread their wake-ups over up to 2 ms.
/// const CFG: Config = Config::per_second(100)
///     .burst(20)
///     .max_wait(Duration::from_millis(50))
///     .jitter(Duration::from_millis(2))
///     .seed(7);
/// assert_eq!(CFG.period(), Duration::from_millis(10));
/// assert_eq!(CFG.burst_size(), 20);
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

`rate` tokens `per` interval (default `"1s"`: [`per`](Config::per)), then one key per
builder method: `burst` (default: `rate`), `max_wait`, `jitter` (durations as
[text](crate::duration), default `"0s"`), `seed`, `waiting` (`"retry"`, the default, or
`"reserve"`: [`Waiting`]). `rate` is required; an unknown key is an
error naming it; the whole is checked as a limiter's constructor checks it ([`Config::gcra`]),
the error naming the setting.

```
use bulwark::rate_limiter::{Config, Waiting};
use core::time::Duration;

let config: Config = toml::from_str(r#"
    rate = 100
    per = "1s"
    burst = 20
    max_wait = "50ms"
    jitter = "2ms"
    seed = 7
    waiting = "reserve"
"#).unwrap();
let ms = Duration::from_millis;
let expected = Config::per_second(100).burst(20).max_wait(ms(50)).jitter(ms(2)).seed(7);
assert_eq!(config, expected.waiting(Waiting::Reserve));
let per_minute: Config = toml::from_str(r#"rate = 90
per = "1m""#).unwrap();
assert_eq!(per_minute, Config::per_minute(90));

let err = toml::from_str::<Config>("rate = 0").unwrap_err();
assert!(err.message().contains("rate must be above zero"));
```
"##
)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `rate` tokens every `interval`: the rate exactly as given. The period of one token
    /// is derived when the limiter is built (see "Rates and whole nanoseconds").
    interval: Duration,
    rate: u32,
    burst: u32,
    /// Nanoseconds (saturating: 584 years stands for "forever"), so the config stays 64 bytes.
    max_wait: u64,
    /// Nanoseconds, as `max_wait`.
    jitter: u64,
    /// Meaningful when `seed_set`.
    seed: u64,
    /// Was [`Config::seed`] called (reproducible), or does each waiting call take a fresh seed?
    seed_set: bool,
    /// How waiting callers get their tokens.
    waiting: Waiting,
}

/// How a caller that waits for tokens ([`RateLimiter::acquire`](super::RateLimiter::acquire))
/// gets them, when several wait at once.
///
/// The default is [`Retry`](Waiting::Retry): a waiter takes nothing until it has its tokens, so
/// a waiter that gives up (its request timed out, its client went away — common in a server)
/// costs the live callers nothing. [`Reserve`](Waiting::Reserve) is resilience4j's
/// reservation semantics: strict arrival order and one wake-up per waiter, at the price of
/// tokens spent on waiters that give up (handed back only while no later caller has taken
/// tokens). Choose it when waiters rarely give up and fairness or wake-up storms matter.
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimiter, Waiting};
/// use bulwark::{Instant, MockClock};
/// use core::future::Future;
/// use core::pin::pin;
/// use core::task::{Context, Waker};
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let cfg = Config::per_second(10).burst(1).max_wait(Duration::from_secs(1));
/// let l = RateLimiter::new(cfg.waiting(Waiting::Reserve), &clock).unwrap();
/// l.try_acquire().unwrap();
/// let cx = &mut Context::from_waker(Waker::noop());
/// // Three callers start waiting at 0 ms: each takes its own instant.
/// let mut waiters = [pin!(l.acquire(1)), pin!(l.acquire(1)), pin!(l.acquire(1))];
/// for w in &mut waiters {
///     assert!(w.as_mut().poll(cx).is_pending());
/// }
/// // A newcomer at 150 ms queues behind them (with `Retry` it could take the 200 ms token).
/// clock.advance(Duration::from_millis(150));
/// assert_eq!(l.try_acquire().unwrap_err().retry_at, Instant::from_millis(400));
/// // The waiters are served in order: the first at 100 ms, the second at 200 ms, ...
/// assert!(waiters[0].as_mut().poll(cx).is_ready());
/// assert!(waiters[1].as_mut().poll(cx).is_pending());
/// clock.advance(Duration::from_millis(50));
/// assert!(waiters[1].as_mut().poll(cx).is_ready());
/// assert!(waiters[2].as_mut().poll(cx).is_pending());
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Waiting {
    /// A waiter sleeps until its tokens are due (plus the configured jitter) and tries again;
    /// waiters due at the same instant race for the tokens, and the losers sleep again.
    #[default]
    Retry,
    /// A waiter takes its tokens at once for the instant they are due and sleeps until then:
    /// served in the order of arrival, each at its own instant, woken once (jitter unused).
    Reserve,
}

impl Config {
    /// `rate` tokens per second, burst `rate` (a full second's worth). The period of one
    /// token is `1 s / rate`, rounded up to whole nanoseconds (see [`Config`]); `rate = 0` is
    /// a [`ConfigError::ZeroRate`] and a rate the rounding would slow by more than 0.1 % a
    /// [`ConfigError::InexactRate`] when the limiter is built.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError};
    /// assert_eq!(Config::per_second(4).period().as_millis(), 250);
    /// assert_eq!(Config::per_second(4).burst_size(), 4);
    /// assert_eq!(Config::per_second(3).period().as_nanos(), 333_333_334); // never faster
    /// assert!(Config::per_second(500_000_000).gcra().is_ok()); // 2 ns: exact
    /// assert!(matches!(
    ///     Config::per_second(600_000_000).gcra(), // 1.67 ns: 2 ns would be 17 % slow
    ///     Err(ConfigError::InexactRate { .. })
    /// ));
    /// ```
    pub const fn per_second(rate: u32) -> Config {
        Config::per(rate, Duration::from_secs(1))
    }

    /// `rate` tokens per minute, burst `rate`.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_minute(60).period().as_secs(), 1);
    /// ```
    pub const fn per_minute(rate: u32) -> Config {
        Config::per(rate, Duration::from_secs(60))
    }

    /// `rate` tokens every `interval`, burst `rate`. The period of one token is
    /// `interval / rate`, rounded up to whole nanoseconds, within 0.1 % (see [`Config`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// assert_eq!(Config::per(3, Duration::from_millis(30)).period(), Duration::from_millis(10));
    /// assert_eq!(Config::per(3, Duration::from_millis(1)).period().as_nanos(), 333_334);
    /// ```
    pub const fn per(rate: u32, interval: Duration) -> Config {
        Config {
            interval,
            rate,
            burst: rate,
            max_wait: 0,
            jitter: 0,
            seed: 0,
            seed_set: false,
            waiting: Waiting::Retry,
        }
    }

    /// One token every `period`, burst 1.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// let c = Config::with_period(Duration::from_millis(100));
    /// assert_eq!((c.period().as_millis(), c.burst_size()), (100, 1));
    /// ```
    pub const fn with_period(period: Duration) -> Config {
        Config {
            interval: period,
            rate: 1,
            burst: 1,
            max_wait: 0,
            jitter: 0,
            seed: 0,
            seed_set: false,
            waiting: Waiting::Retry,
        }
    }

    /// The most tokens that can be saved up and taken back to back (and by one call).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(10).burst(3).burst_size(), 3);
    /// ```
    pub const fn burst(mut self, burst: u32) -> Config {
        self.burst = burst;
        self
    }

    /// How long [`RateLimiter::acquire`](super::RateLimiter::acquire) may wait for tokens
    /// (default zero: it then behaves like `try_acquire_n`).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// let c = Config::per_second(1).max_wait(Duration::from_secs(2));
    /// assert_eq!(c.max_wait_time(), Duration::from_secs(2));
    /// ```
    pub const fn max_wait(mut self, d: Duration) -> Config {
        self.max_wait = duration_to_nanos(d);
        self
    }

    /// Waiting callers wake up to this much after their tokens are due (uniform, seeded), so
    /// that callers rejected together do not all wake at the same instant. Never past the
    /// max wait. As far as the max wait lets it reach (`min(jitter, max_wait)`), at most
    /// `burst × period`, the time an empty bucket takes to refill
    /// ([`ConfigError::JitterTooLong`] otherwise). Default zero.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// let c = Config::per_second(1).jitter(Duration::from_millis(5));
    /// assert_eq!(c.jitter_max(), Duration::from_millis(5));
    /// ```
    pub const fn jitter(mut self, d: Duration) -> Config {
        self.jitter = duration_to_nanos(d);
        self
    }

    /// An explicit seed of the jitter, for reproducible wake-ups (tests, simulations): the
    /// same seed gives the same wake-ups in every run and process. Without it (the default)
    /// each waiting call takes a fresh seed from [`rng::next_seed`](crate::rng::next_seed),
    /// so limiters in different processes (with a std adapter's clock, or a seed set by the
    /// firmware) and in one process do not wake in lockstep.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_ne!(Config::per_second(1).seed(1), Config::per_second(1).seed(2));
    /// ```
    pub const fn seed(mut self, seed: u64) -> Config {
        self.seed = seed;
        self.seed_set = true;
        self
    }

    /// How waiting callers get their tokens: see [`Waiting`] (default [`Waiting::Retry`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Waiting};
    /// assert_eq!(Config::per_second(1).waiting_mode(), Waiting::Retry);
    /// assert_eq!(Config::per_second(1).waiting(Waiting::Reserve).waiting_mode(), Waiting::Reserve);
    /// ```
    pub const fn waiting(mut self, waiting: Waiting) -> Config {
        self.waiting = waiting;
        self
    }

    /// How waiting callers get their tokens (see [`waiting`](Config::waiting)).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Waiting};
    /// assert_eq!(Config::per_second(1).waiting_mode(), Waiting::default());
    /// ```
    pub const fn waiting_mode(&self) -> Waiting {
        self.waiting
    }

    /// The time to refill one token: `interval / rate` rounded up to whole nanoseconds
    /// (zero for a zero rate; saturating at [`Duration::MAX`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(1000).period().as_micros(), 1000);
    /// assert_eq!(Config::per_second(7).period().as_nanos(), 142_857_143);
    /// ```
    pub const fn period(&self) -> Duration {
        match self.period_nanos() {
            Some(ns) => duration_from_nanos_u128(ns),
            None => Duration::ZERO,
        }
    }

    /// The rate as given: `rate` tokens every `interval`.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// assert_eq!(Config::per_minute(90).rate(), (90, Duration::from_secs(60)));
    /// assert_eq!(Config::with_period(Duration::from_millis(5)).rate(), (1, Duration::from_millis(5)));
    /// ```
    pub const fn rate(&self) -> (u32, Duration) {
        (self.rate, self.interval)
    }

    /// `interval / rate` in nanoseconds, rounded up; `None` for a zero rate.
    const fn period_nanos(&self) -> Option<u128> {
        if self.rate == 0 {
            return None;
        }
        Some(self.interval.as_nanos().div_ceil(self.rate as u128))
    }

    /// The burst.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_minute(5).burst_size(), 5);
    /// ```
    pub const fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The max wait (at most `u64::MAX` nanoseconds, about 584 years).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert!(Config::per_second(1).max_wait_time().is_zero());
    /// ```
    pub const fn max_wait_time(&self) -> Duration {
        Duration::from_nanos(self.max_wait)
    }

    /// The jitter bound (at most `u64::MAX` nanoseconds, about 584 years).
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert!(Config::per_second(1).jitter_max().is_zero());
    /// ```
    pub const fn jitter_max(&self) -> Duration {
        Duration::from_nanos(self.jitter)
    }

    /// The explicit jitter seed, if [`seed`](Config::seed) set one.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(1).seed(9).jitter_seed(), Some(9));
    /// assert_eq!(Config::per_second(1).jitter_seed(), None);
    /// ```
    pub const fn jitter_seed(&self) -> Option<u64> {
        if self.seed_set { Some(self.seed) } else { None }
    }

    /// Shard `i` of `shards` ([`ShardedRateLimiter`](super::ShardedRateLimiter)): the same
    /// tokens per `shards × interval` (so the shards together refill at this rate), a
    /// `1/shards` share of the burst (the first `burst % shards` shards one token more), the
    /// same waits. `shards` is at least 1 and at most the burst (else
    /// [`ConfigError::ZeroCapacity`] or [`ConfigError::BurstBelowShards`]); the stretched
    /// interval must fit a `Duration` ([`ConfigError::TooLong`]).
    pub(super) fn shard(&self, shards: usize, i: usize) -> Result<(Config, Gcra), ConfigError> {
        let n = match u32::try_from(shards) {
            Ok(0) => return Err(ConfigError::ZeroCapacity),
            Ok(n) if n <= self.burst => n,
            _ if self.burst == 0 => return Err(ConfigError::ZeroBurst),
            _ => {
                return Err(ConfigError::BurstBelowShards {
                    burst: self.burst,
                    shards,
                });
            }
        };
        let i = i as u32; // below `shards`, so below `n`
        let interval = self.interval.checked_mul(n).ok_or(ConfigError::TooLong)?;
        let cfg = Config {
            interval,
            burst: self.burst / n + u32::from(i < self.burst % n),
            ..*self
        };
        Ok((cfg, cfg.gcra()?))
    }

    /// The whole configuration of a sharded limiter from its shard `self` (see `shard`): the
    /// interval back to `1/shards` of the shard's, the burst `burst`.
    pub(super) fn unshard(self, shards: usize, burst: u32) -> Config {
        Config {
            interval: self.interval / u32::try_from(shards).unwrap_or(u32::MAX).max(1),
            burst,
            ..self
        }
    }

    /// Checks the configuration and returns the GCRA parameters.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a zero rate or burst, a rate whose whole-nanosecond period would
    /// be more than 0.1 % slow ([`ConfigError::InexactRate`]), a `burst × period` beyond
    /// `u64` ns, or a jitter reaching past `burst × period` (see [`jitter`](Config::jitter)).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError};
    /// use core::time::Duration;
    /// assert!(Config::per_second(10).gcra().is_ok());
    /// assert_eq!(Config::per_second(10).burst(0).gcra().unwrap_err(), ConfigError::ZeroBurst);
    /// let huge = Config::with_period(Duration::from_secs(u64::MAX / 2)).burst(3);
    /// assert_eq!(huge.gcra().unwrap_err(), ConfigError::TooLong);
    /// ```
    pub const fn gcra(&self) -> Result<Gcra, ConfigError> {
        let t = match self.period_nanos() {
            Some(0) | None => return Err(ConfigError::ZeroRate),
            Some(t) => t,
        };
        if self.burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        if t > u64::MAX as u128 {
            return Err(ConfigError::TooLong);
        }
        // The rounded-up period makes the limiter slower by (t·rate − interval) / (t·rate);
        // both products fit u128 (t < 2⁶⁴, rate < 2³², the excess < rate).
        let whole = t * self.rate as u128;
        let excess = whole - self.interval.as_nanos();
        if excess * 1000 > whole * MAX_RATE_ERROR_PER_MILLE as u128 {
            return Err(ConfigError::InexactRate {
                rate: self.rate,
                interval: self.interval,
            });
        }
        let t = t as u64;
        match t.checked_mul(self.burst as u64) {
            // Jitter past the bucket's length only delays callers (centuries, at the max); the
            // max wait caps it, so only the part it lets through counts.
            Some(len) if jitter_reach(self.jitter, self.max_wait) > len => {
                Err(ConfigError::JitterTooLong)
            }
            Some(len) => Ok(Gcra {
                t,
                burst: self.burst,
                len,
            }),
            None => Err(ConfigError::TooLong),
        }
    }
}

/// The file form of [`Config`] (feature `serde`).
#[cfg(feature = "serde")]
mod serde_form {
    use core::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::{Config, Waiting};
    use crate::duration::Text;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        rate: u32,
        #[serde(default = "one_second")]
        per: Text,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        burst: Option<u32>,
        #[serde(default)]
        max_wait: Text,
        #[serde(default)]
        jitter: Text,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
        #[serde(default)]
        waiting: Waiting,
    }

    fn one_second() -> Text {
        Text(Duration::from_secs(1))
    }

    impl Serialize for Config {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Form {
                rate: self.rate,
                per: Text(self.interval),
                burst: Some(self.burst),
                max_wait: Text(self.max_wait_time()),
                jitter: Text(self.jitter_max()),
                seed: self.jitter_seed(),
                waiting: self.waiting,
            }
            .serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Config {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
            let f = Form::deserialize(deserializer)?;
            let mut c = Config::per(f.rate, f.per.0)
                .max_wait(f.max_wait.0)
                .jitter(f.jitter.0)
                .waiting(f.waiting);
            if let Some(b) = f.burst {
                c = c.burst(b);
            }
            if let Some(seed) = f.seed {
                c = c.seed(seed);
            }
            match c.gcra() {
                Ok(_) => Ok(c),
                Err(e) => Err(de::Error::custom(e)),
            }
        }
    }
}

/// How much wake-up jitter a config can add: its jitter, cut to its max wait (nanoseconds).
const fn jitter_reach(jitter: u64, max_wait: u64) -> u64 {
    if jitter < max_wait { jitter } else { max_wait }
}

/// The most a rate may be slowed, in thousandths, by rounding its period up to whole
/// nanoseconds: a rate that would be slowed more is [`ConfigError::InexactRate`] (see
/// [`Config`]).
///
/// ```
/// use bulwark::rate_limiter::{Config, MAX_RATE_ERROR_PER_MILLE};
/// assert_eq!(MAX_RATE_ERROR_PER_MILLE, 1); // 0.1 %
/// assert!(Config::per_second(1_000_000).gcra().is_ok()); // 1 µs: exact
/// assert!(Config::per_second(999_999).gcra().is_ok()); // 1000.001 ns → 1001 ns: 0.0999 % slow
/// assert!(Config::per_second(3_000_000).gcra().is_err()); // 333.3 ns → 334 ns: 0.2 % slow
/// ```
pub const MAX_RATE_ERROR_PER_MILLE: u32 = 1;

/// A `Duration` of `ns` nanoseconds, saturating at [`Duration::MAX`].
const fn duration_from_nanos_u128(ns: u128) -> Duration {
    let secs = ns / 1_000_000_000;
    if secs > u64::MAX as u128 {
        return Duration::MAX;
    }
    Duration::new(secs as u64, (ns % 1_000_000_000) as u32)
}
