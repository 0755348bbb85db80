//! The configuration, the pure GCRA function and the `&mut self` [`Machine`].

use core::time::Duration;

use super::error::{ConfigError, Denied, InsufficientCapacity, RateLimited};
use crate::time::{Instant, duration_to_nanos};

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

/// Validated GCRA parameters: the emission interval `T` (ns per token) and the burst `b`.
///
/// Made by [`Config::gcra`]. `b × T` fits a `u64`, which is what keeps [`gcra`] free of
/// overflow except at the very end of the clock's range.
///
/// ```
/// use bulwark::rate_limiter::Config;
/// let g = Config::per_second(2).burst(4).gcra().unwrap();
/// assert_eq!((g.emission_interval_nanos(), g.burst()), (500_000_000, 4));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gcra {
    t: u64,
    burst: u32,
    len: u64,
}

impl Gcra {
    /// `T`: nanoseconds to refill one token.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(1000).gcra().unwrap().emission_interval_nanos(), 1_000_000);
    /// ```
    pub const fn emission_interval_nanos(&self) -> u64 {
        self.t
    }

    /// `b`: the burst.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(5).gcra().unwrap().burst(), 5);
    /// ```
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// Tokens free at `now` for a limiter whose theoretical arrival time is `tat`.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// let g = Config::per_second(10).gcra().unwrap(); // T = 100 ms
    /// assert_eq!(g.available(0, 0), 10);
    /// assert_eq!(g.available(250_000_000, 0), 7); // 2.5 tokens in use round up to 3
    /// ```
    pub const fn available(&self, tat: u64, now: u64) -> u32 {
        let debt = tat.saturating_sub(now);
        let in_use = debt.div_ceil(self.t);
        if in_use >= self.burst as u64 {
            0
        } else {
            self.burst - in_use as u32
        }
    }
}

/// The Generic Cell Rate Algorithm: one step, pure.
///
/// `tat` is the *theoretical arrival time*, in nanoseconds on the limiter's clock: the instant
/// at which the bucket would be full again. Taking `n` tokens at `now`:
///
/// ```text
/// new_tat  = max(tat, now) + n·T
/// allow_at = new_tat − b·T            (the instant the bucket holds n tokens)
/// pass  ⇔  allow_at ≤ now             → Ok(new_tat)
/// else                                → Err(RateLimited::new(allow_at, now))  (nothing taken)
/// ```
///
/// `max(tat, now)` is what makes an idle limiter accrue at most the burst. `n = 0` always
/// passes and changes nothing; `n > b` is [`Denied::InsufficientCapacity`] (never passes,
/// nothing taken). `retry_at` does not depend on `now` (it is `tat + n·T − b·T`), so it is
/// exact. A `now` earlier than one seen before (a clock stepping back) is simply an earlier
/// question: since `tat` already exceeds every instant at which tokens were taken, the
/// answer is never more generous than at the latest instant. If `new_tat` would pass the end
/// of the clock's range (about 584 years) the call is limited with `retry_at =`
/// [`Instant::MAX`] rather than wrapping.
///
/// # Errors
///
/// [`Denied`] as above.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, Denied, RateLimited, gcra};
/// let g = Config::per_second(10).burst(2).gcra().unwrap(); // T = 100 ms, b = 2
/// let ms = 1_000_000;
/// let tat = gcra(0, 0, 1, &g).unwrap();
/// assert_eq!(tat, 100 * ms);
/// let tat = gcra(tat, 0, 1, &g).unwrap(); // the burst's second token
/// assert_eq!(tat, 200 * ms);
/// assert_eq!(
///     gcra(tat, 0, 1, &g),
///     Err(Denied::RateLimited(RateLimited::new(Instant::from_millis(100), Instant::ZERO)))
/// );
/// assert_eq!(gcra(tat, 100 * ms, 1, &g), Ok(300 * ms));
/// ```
pub const fn gcra(tat: u64, now: u64, n: u32, g: &Gcra) -> Result<u64, Denied> {
    if n == 0 {
        return Ok(tat);
    }
    if n > g.burst {
        return Err(Denied::InsufficientCapacity(InsufficientCapacity {
            requested: n,
            burst: g.burst,
        }));
    }
    // n ≤ b and b·T fits u64, so n·T cannot overflow.
    let inc = g.t * n as u64;
    let base = if tat > now { tat } else { now };
    let Some(new_tat) = base.checked_add(inc) else {
        return Err(Denied::RateLimited(RateLimited::new(
            Instant::MAX,
            Instant::from_nanos(now),
        )));
    };
    let allow_at = new_tat.saturating_sub(g.len);
    if allow_at <= now {
        Ok(new_tat)
    } else {
        Err(Denied::RateLimited(RateLimited::new(
            Instant::from_nanos(allow_at),
            Instant::from_nanos(now),
        )))
    }
}

/// Carries a theoretical arrival time from the parameters `old` to `new` at `now`, keeping the
/// number of tokens *in use* (`(tat − now) / T`, with its fraction), capped at the new burst.
/// A full bucket stays full; a bucket with 3 of 10 tokens in use has 3 in use under the new
/// rate too (so 17 free if the burst became 20, 0 free if it became 2).
///
/// ```
/// use bulwark::rate_limiter::{Config, rescale};
/// let old = Config::per_second(10).gcra().unwrap(); // T = 100 ms
/// let new = Config::per_second(100).gcra().unwrap(); // T = 10 ms
/// let ms = 1_000_000;
/// assert_eq!(rescale(1_300 * ms, 1_000 * ms, &old, &new), 1_030 * ms); // 3 in use
/// assert_eq!(rescale(500 * ms, 1_000 * ms, &old, &new), 500 * ms);     // full stays full
/// ```
pub const fn rescale(tat: u64, now: u64, old: &Gcra, new: &Gcra) -> u64 {
    if tat <= now {
        return tat;
    }
    let debt = (tat - now) as u128 * new.t as u128 / old.t as u128;
    let debt = if debt > new.len as u128 {
        new.len
    } else {
        debt as u64
    };
    now.saturating_add(debt)
}

/// The rate limiter as a pure `&mut self` state machine: the instant is an argument.
///
/// One `u64` of state (the theoretical arrival time). What the shared
/// [`RateLimiter`](super::RateLimiter) does with a CAS loop, this does with a plain store,
/// through the same [`gcra`] function.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, Machine};
///
/// let mut m = Machine::new(Config::per_second(2)).unwrap(); // burst 2, T = 500 ms
/// let t0 = Instant::ZERO;
/// assert!(m.try_acquire(t0).is_ok());
/// assert!(m.try_acquire(t0).is_ok());
/// assert_eq!(m.try_acquire(t0).unwrap_err().retry_at, Instant::from_millis(500));
/// assert!(m.try_acquire(Instant::from_millis(500)).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    gcra: Gcra,
    tat: u64,
}

impl Machine {
    /// A full limiter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Machine};
    /// assert!(Machine::new(Config::per_second(0)).is_err());
    /// ```
    pub const fn new(cfg: Config) -> Result<Machine, ConfigError> {
        match cfg.gcra() {
            Ok(gcra) => Ok(Machine { gcra, tat: 0 }),
            Err(e) => Err(e),
        }
    }

    /// Takes one token at `now`.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the instant one token is free.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(1)).unwrap();
    /// assert!(m.try_acquire(Instant::from_secs(5)).is_ok());
    /// assert_eq!(m.try_acquire(Instant::from_secs(5)).unwrap_err().retry_at, Instant::from_secs(6));
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), RateLimited> {
        match self.try_acquire_n(1, now) {
            Ok(()) => Ok(()),
            Err(Denied::RateLimited(r)) => Err(r),
            // The burst is at least 1, so one token is never beyond it.
            Err(Denied::InsufficientCapacity(_)) => Err(RateLimited::NEVER),
        }
    }

    /// Takes `n` tokens at `now`, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied`]: limited until an instant, or `n` above the burst.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Denied, Machine};
    /// let mut m = Machine::new(Config::per_second(10)).unwrap();
    /// assert!(m.try_acquire_n(7, Instant::ZERO).is_ok());
    /// assert_eq!(m.try_acquire_n(5, Instant::ZERO).unwrap_err().retry_at(), Some(Instant::from_millis(200)));
    /// assert!(matches!(m.try_acquire_n(11, Instant::ZERO), Err(Denied::InsufficientCapacity(_))));
    /// assert_eq!(m.available(Instant::ZERO), 3); // the failed calls took nothing
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&mut self, n: u32, now: Instant) -> Result<(), Denied> {
        self.tat = gcra(self.tat, now.as_nanos(), n, &self.gcra)?;
        Ok(())
    }

    /// Tokens free at `now`.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(4)).unwrap();
    /// m.try_acquire_n(4, Instant::ZERO).unwrap();
    /// assert_eq!(m.available(Instant::from_millis(500)), 2);
    /// assert_eq!(m.available(Instant::from_secs(100)), 4); // never more than the burst
    /// ```
    pub fn available(&self, now: Instant) -> u32 {
        self.gcra.available(self.tat, now.as_nanos())
    }

    /// The theoretical arrival time: when the bucket is full again.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(4)).unwrap();
    /// m.try_acquire(Instant::ZERO).unwrap();
    /// assert_eq!(m.tat(), Instant::from_millis(250));
    /// ```
    pub fn tat(&self) -> Instant {
        Instant::from_nanos(self.tat)
    }

    /// The GCRA parameters in force.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let m = Machine::new(Config::per_second(4)).unwrap();
    /// assert_eq!(m.gcra().burst(), 4);
    /// ```
    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// Changes rate and burst at `now`, keeping the tokens in use (see [`rescale`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError`]; the machine is then unchanged.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(10)).unwrap();
    /// m.try_acquire_n(3, Instant::ZERO).unwrap();
    /// m.reconfigure(Config::per_second(20), Instant::ZERO).unwrap();
    /// assert_eq!(m.available(Instant::ZERO), 17);
    /// assert!(m.reconfigure(Config::per_second(0), Instant::ZERO).is_err());
    /// assert_eq!(m.available(Instant::ZERO), 17);
    /// ```
    pub fn reconfigure(&mut self, cfg: Config, now: Instant) -> Result<(), ConfigError> {
        let new = cfg.gcra()?;
        self.tat = rescale(self.tat, now.as_nanos(), &self.gcra, &new);
        self.gcra = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn g(rate: u32, burst: u32) -> Gcra {
        Config::per_second(rate).burst(burst).gcra().unwrap()
    }

    #[test]
    fn burst_then_steady_rate_with_literal_instants() {
        let mut m = Machine::new(Config::per_second(10).burst(3)).unwrap();
        let at = Instant::from_millis;
        for _ in 0..3 {
            assert!(m.try_acquire(at(1_000)).is_ok());
        }
        assert_eq!(m.try_acquire(at(1_000)).unwrap_err().retry_at, at(1_100));
        assert_eq!(m.try_acquire(at(1_099)).unwrap_err().retry_at, at(1_100));
        assert!(m.try_acquire(at(1_100)).is_ok());
        assert_eq!(m.try_acquire(at(1_150)).unwrap_err().retry_at, at(1_200));
        // Idle for an hour: at most the burst is saved up.
        assert_eq!(m.available(at(3_600_000)), 3);
        for _ in 0..3 {
            assert!(m.try_acquire(at(3_600_000)).is_ok());
        }
        assert!(m.try_acquire(at(3_600_000)).is_err());
    }

    #[test]
    fn n_tokens_and_insufficient_capacity() {
        let gg = g(10, 5);
        assert_eq!(gcra(0, 0, 5, &gg), Ok(500 * MS));
        assert_eq!(
            gcra(0, 0, 6, &gg),
            Err(Denied::InsufficientCapacity(InsufficientCapacity {
                requested: 6,
                burst: 5
            }))
        );
        assert_eq!(
            gcra(0, 0, u32::MAX, &gg).unwrap_err().retry_at(),
            None,
            "huge n never passes and never overflows"
        );
        // 2 tokens when 1 is free: retry when the second one is.
        let tat = gcra(0, 0, 4, &gg).unwrap();
        assert_eq!(
            gcra(tat, 0, 2, &gg).unwrap_err().retry_at(),
            Some(Instant::from_millis(100))
        );
        // n = 0 passes and changes nothing, even when limited.
        let full = gcra(0, 0, 5, &gg).unwrap();
        assert_eq!(gcra(full, 0, 0, &gg), Ok(full));
    }

    #[test]
    fn clock_backwards_is_never_more_generous() {
        let mut m = Machine::new(Config::per_second(10).burst(2)).unwrap();
        let t = Instant::from_secs(100);
        m.try_acquire_n(2, t).unwrap();
        // Asking about an earlier instant: still limited, same exact retry instant.
        assert_eq!(
            m.try_acquire(Instant::from_secs(1)).unwrap_err().retry_at,
            Instant::from_millis(100_100)
        );
        assert_eq!(m.available(Instant::ZERO), 0);
        assert!(m.try_acquire(Instant::from_millis(100_100)).is_ok());
    }

    #[test]
    fn end_of_clock_range_saturates_without_panic() {
        let gg = g(1, 1);
        let end = u64::MAX - 10;
        assert_eq!(
            gcra(0, end, 1, &gg),
            Err(Denied::RateLimited(RateLimited::NEVER))
        );
        assert_eq!(gcra(0, u64::MAX - 1_000_000_000, 1, &gg), Ok(u64::MAX));
        assert!(gcra(u64::MAX, u64::MAX, 1, &gg).is_err());
        let mut m = Machine::new(Config::per_second(1)).unwrap();
        assert!(m.try_acquire(Instant::MAX).is_err());
        assert_eq!(m.available(Instant::MAX), 1);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        assert_eq!(
            Machine::new(Config::per_second(0)),
            Err(ConfigError::ZeroRate)
        );
        // Faster than one token a nanosecond: a period of 0.5 ns is not whole nanoseconds
        // (it used to be truncated to zero and called a zero rate).
        assert_eq!(
            Machine::new(Config::per_second(2_000_000_000)),
            Err(ConfigError::InexactRate {
                rate: 2_000_000_000,
                interval: Duration::from_secs(1)
            })
        );
        assert_eq!(
            Machine::new(Config::per(0, Duration::from_secs(1))),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::ZERO)),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Machine::new(Config::per_second(1).burst(0)),
            Err(ConfigError::ZeroBurst)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::MAX)),
            Err(ConfigError::TooLong)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::from_secs(1)).burst(u32::MAX))
                .map(|m| m.gcra().burst()),
            Ok(u32::MAX)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::from_secs(10)).burst(u32::MAX)),
            Err(ConfigError::TooLong)
        );
    }

    #[test]
    fn inexact_periods_round_up_within_the_tolerance_and_are_refused_beyond_it() {
        let t = |c: Config| c.gcra().map(|g| g.emission_interval_nanos());
        // 3/s: 333 333 333.3 ns rounds up (never faster than asked); negligible error.
        assert_eq!(t(Config::per_second(3)), Ok(333_333_334));
        assert_eq!(t(Config::per(3, Duration::from_millis(1))), Ok(333_334));
        // Exact periods at high rates are fine.
        assert_eq!(t(Config::per_second(1_000_000_000)), Ok(1));
        assert_eq!(t(Config::per_second(500_000_000)), Ok(2));
        assert_eq!(t(Config::per_second(1_000_000)), Ok(1_000));
        // Just inside and just outside 0.1 %.
        assert_eq!(t(Config::per_second(999_999)), Ok(1_001)); // 0.0999 % slow
        assert_eq!(t(Config::per_second(1_001_000)), Ok(1_000)); // 999.001 ns: 0.0999 % slow
        let refused = |rate: u32| {
            matches!(
                Config::per_second(rate).gcra(),
                Err(ConfigError::InexactRate { rate: r, .. }) if r == rate
            )
        };
        assert!(refused(600_000_000)); // 1.67 ns → 2 ns: 16.7 % slow
        assert!(refused(3_000_000)); // 333.3 ns → 334 ns: 0.2 % slow
        assert!(refused(u32::MAX));
        // The period itself is always exact.
        assert_eq!(t(Config::with_period(Duration::from_nanos(2))), Ok(2));
    }

    #[test]
    fn reconfigure_keeps_tokens_in_use() {
        let mut m = Machine::new(Config::per_second(10)).unwrap();
        let t = Instant::from_secs(1);
        m.try_acquire_n(4, t).unwrap();
        m.reconfigure(Config::per_second(2).burst(3), t).unwrap();
        // 4 in use capped at the new burst 3: empty, full again after 3 × 500 ms.
        assert_eq!(m.available(t), 0);
        assert_eq!(m.tat(), Instant::from_millis(2_500));
        m.reconfigure(Config::per_second(100), t).unwrap();
        assert_eq!(m.available(t), 97);
    }
}
