//! Configuration of the circuit breaker, validated when the breaker is built.

use core::time::Duration;

use super::encoding::MAX_PROBES;
use super::error::{ConfigError, Field};
use super::window::Rules;
use crate::rng::splitmix64;
use crate::sync::{AtomicU64, Ordering};
use crate::time::Instant;
use crate::time::duration_to_nanos;

/// How half-open probes decide between closing and re-opening.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, HalfOpenVerdict};
/// let c = Config::new().failure_rate(50).half_open(4, 4).half_open_verdict(HalfOpenVerdict::Rate);
/// # let _ = c;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HalfOpenVerdict {
    /// The first failed (or slow) probe re-opens; `successes_to_close` successes close.
    #[default]
    FirstFailure,
    /// Admit exactly `probes` probes, wait for all of them, then judge their failure rate and
    /// their slow rate, each against its own threshold (resilience4j's way; `>=` re-opens,
    /// and without a failure-rate policy only all probes failing does). Fewer than
    /// `successes_to_close` successful probes (slow or not) re-open too.
    Rate,
}

/// What bounds the calls a half-open breaker admits.
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, HalfOpenLimit, Machine, NoWindow}};
/// use core::time::Duration;
/// let cfg = Config::new().consecutive_failures(1).open_for(Duration::ZERO).half_open(2, 2);
/// let mut m = Machine::<NoWindow>::new(cfg.half_open_limit(HalfOpenLimit::PerEpisode)).unwrap();
/// let t = m.try_acquire(Instant::ZERO).unwrap();
/// m.on_failure(t, Instant::ZERO); // open, with no open time: half-open at once
/// let (a, b) = (m.try_acquire(Instant::ZERO).unwrap(), m.try_acquire(Instant::ZERO).unwrap());
/// m.on_success(a, Instant::ZERO);
/// // A slot is free again, but this half-open episode has admitted its 2 calls.
/// assert!(m.try_acquire(Instant::ZERO).is_err());
/// # m.release(b);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HalfOpenLimit {
    /// At most `probes` probes in flight at once: a probe that ends frees its slot for the
    /// next call (under [`HalfOpenVerdict::FirstFailure`]).
    #[default]
    InFlight,
    /// At most `probes` probes admitted per half-open episode, however many have ended
    /// (gobreaker's `MaxRequests`; resilience4j's permitted calls in half-open). A probe that
    /// is dropped, or whose outcome is ignored, still gives its slot back.
    PerEpisode,
}

/// Circuit breaker configuration: a `const` builder, checked by the breaker's constructor.
///
/// Policies combine: the breaker opens when *any* enabled policy says so.
///
/// | setting | default |
/// |---|---|
/// | [`consecutive_failures`](Config::consecutive_failures) | off |
/// | [`failure_rate`](Config::failure_rate) (window) | off |
/// | [`slow_calls`](Config::slow_calls) (window) | off |
/// | [`minimum_calls`](Config::minimum_calls) | 1 |
/// | [`time_window`](Config::time_window) (time windows only) | 60 s |
/// | [`open_for`](Config::open_for) | 30 s, fixed (growth: [`open_growth`](Config::open_growth), [`open_growth_ratio`](Config::open_growth_ratio)) |
/// | [`half_open`](Config::half_open) | 1 probe, 1 success closes |
/// | [`half_open_limit`](Config::half_open_limit) | [`HalfOpenLimit::InFlight`] |
/// | [`max_half_open`](Config::max_half_open) | none: half-open lasts until its probes decide |
/// | [`record_durations`](Config::record_durations) | off: calls are timed only with a slow-call policy |
/// | [`seed`](Config::seed) (of the open-time jitter) | none: each breaker takes a fresh seed from [`rng::next_seed`](crate::rng::next_seed) (OS entropy once a std adapter builds its clock) |
///
/// At least one policy must be on; a rate policy needs a window type.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, CountWindow, Machine};
/// use core::time::Duration;
///
/// // 5 failures in a row, or 50 % of the last 20 calls once 10 were made, or 80 % of them
/// // slower than 2 s: open for 10 s, doubling up to 5 min with ±10 % jitter.
/// let config = Config::new()
///     .consecutive_failures(5)
///     .failure_rate(50)
///     .slow_calls(Duration::from_secs(2), 80)
///     .minimum_calls(10)
///     .open_for(Duration::from_secs(10))
///     .open_growth(2, Duration::from_secs(300))
///     .open_jitter(10)
///     .half_open(3, 2);
/// assert!(Machine::<CountWindow<20>>::new(config).is_ok());
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

One key per builder method, named as the method; a method of two arguments takes an inline
table of its arguments (`open_growth_ratio` is written as `open_growth` with a `divisor`).
Durations are [text](crate::duration) (`"10s"`). Omitted settings
keep the defaults above; an unknown key is an error naming it. The settings are checked as
the breaker's constructor checks them (the [`ConfigError`](super::ConfigError) names the
setting) except those that depend on the window type (`N`), which its constructor checks.
`half_open_verdict` is `"first_failure"` or `"rate"`, `half_open_limit` `"in_flight"` or
`"per_episode"`.

```
use bulwark::circuit_breaker::{Config, HalfOpenLimit, HalfOpenVerdict};
use core::time::Duration;

let config: Config = toml::from_str(r#"
    consecutive_failures = 5
    failure_rate = 50
    slow_calls = { threshold = "2s", percent = 80 }
    minimum_calls = 10
    time_window = "1m"
    open_for = "10s"
    open_growth = { multiplier = 3, divisor = 2, max = "5m" }
    open_jitter = 10
    half_open = { probes = 3, successes_to_close = 2 }
    half_open_verdict = "rate"
    half_open_limit = "per_episode"
    max_half_open = "30s"
    record_durations = true
    seed = 42
"#).unwrap();
let s = Duration::from_secs;
assert_eq!(config, Config::new()
    .consecutive_failures(5)
    .failure_rate(50)
    .slow_calls(s(2), 80)
    .minimum_calls(10)
    .time_window(s(60))
    .open_for(s(10))
    .open_growth_ratio(3, 2, s(300))
    .open_jitter(10)
    .half_open(3, 2)
    .half_open_verdict(HalfOpenVerdict::Rate)
    .half_open_limit(HalfOpenLimit::PerEpisode)
    .max_half_open(s(30))
    .record_durations(true)
    .seed(42));

let err = toml::from_str::<Config>("consecutive_failures = 0").unwrap_err();
assert!(err.message().contains("consecutive_failures must not be zero"));
```
"##
)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<u8>,
    pub(crate) slow_rate: Option<u8>,
    pub(crate) slow_threshold: Duration,
    pub(crate) minimum_calls: u32,
    pub(crate) time_window: Duration,
    pub(crate) open_base: Duration,
    pub(crate) open_multiplier: u32,
    /// The multiplier is `open_multiplier / open_divisor`.
    pub(crate) open_divisor: u32,
    pub(crate) open_max: Duration,
    pub(crate) open_jitter: u8,
    pub(crate) probes: u32,
    pub(crate) successes_to_close: u32,
    pub(crate) verdict: HalfOpenVerdict,
    pub(crate) half_open_limit: HalfOpenLimit,
    pub(crate) max_half_open: Option<Duration>,
    /// Time every call for the window's [`CallTimes`](super::CallTimes).
    pub(crate) record_durations: bool,
    /// Meaningful when `seed_set`.
    pub(crate) seed: u64,
    /// Was [`Config::seed`] called (reproducible), or does each breaker take a fresh seed?
    pub(crate) seed_set: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults in the table above (no trip policy yet).
    ///
    /// ```
    /// let c = bulwark::circuit_breaker::Config::new();
    /// assert_eq!(c, Default::default());
    /// ```
    pub const fn new() -> Self {
        Config {
            consecutive_failures: None,
            failure_rate: None,
            slow_rate: None,
            slow_threshold: Duration::MAX,
            minimum_calls: 1,
            time_window: Duration::from_secs(60),
            open_base: Duration::from_secs(30),
            open_multiplier: 1,
            open_divisor: 1,
            open_max: Duration::from_secs(30),
            open_jitter: 0,
            probes: 1,
            successes_to_close: 1,
            verdict: HalfOpenVerdict::FirstFailure,
            half_open_limit: HalfOpenLimit::InFlight,
            max_half_open: None,
            record_durations: false,
            seed: 0,
            seed_set: false,
        }
    }

    /// Open after `n` failures in a row (on the `n`-th). 1 ..= 65 535 (a limit of the
    /// encoding: the run of failures has 16 bits of the shared form's control word).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().consecutive_failures(3);
    /// # let _ = c;
    /// ```
    pub const fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        self
    }

    /// Open when at least `percent` % of the calls in the window failed (`>=`), once the
    /// window holds [`minimum_calls`](Config::minimum_calls). 1 ..= 100. Needs a window.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().failure_rate(50);
    /// # let _ = c;
    /// ```
    pub const fn failure_rate(mut self, percent: u8) -> Self {
        self.failure_rate = Some(percent);
        self
    }

    /// A call that takes `threshold` or longer is slow; open when at least `percent` % of the
    /// calls in the window were slow. Needs a window. In half-open, a slow probe re-opens like
    /// a failed one under [`HalfOpenVerdict::FirstFailure`]; under [`HalfOpenVerdict::Rate`]
    /// the probes' slow rate is judged against `percent` on its own. Not zero.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// use core::time::Duration;
    /// let c = Config::new().slow_calls(Duration::from_millis(500), 60);
    /// # let _ = c;
    /// ```
    pub const fn slow_calls(mut self, threshold: Duration, percent: u8) -> Self {
        self.slow_threshold = threshold;
        self.slow_rate = Some(percent);
        self
    }

    /// The same configuration with the rate thresholds of a run-time change
    /// (`set_rate_thresholds` of both breaker forms).
    pub(crate) const fn with_rates(
        mut self,
        failure_rate: Option<u8>,
        slow_rate: Option<u8>,
        minimum_calls: u32,
    ) -> Self {
        self.failure_rate = failure_rate;
        self.slow_rate = slow_rate;
        self.minimum_calls = minimum_calls;
        self
    }

    /// The window must hold at least `n` calls before a rate is judged; below that the rate is
    /// "not yet known" and never opens the breaker.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().failure_rate(50).minimum_calls(20);
    /// # let _ = c;
    /// ```
    pub const fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// The span of a [`TimeWindow`](super::TimeWindow), split into its `N` buckets.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// use core::time::Duration;
    /// let c = Config::new().failure_rate(50).time_window(Duration::from_secs(10));
    /// # let _ = c;
    /// ```
    pub const fn time_window(mut self, span: Duration) -> Self {
        self.time_window = span;
        self
    }

    /// Stay open for `d` (fixed unless [`open_growth`](Config::open_growth) is set).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// use core::time::Duration;
    /// let c = Config::new().consecutive_failures(3).open_for(Duration::from_secs(5));
    /// # let _ = c;
    /// ```
    pub const fn open_for(mut self, d: Duration) -> Self {
        self.open_base = d;
        if self.open_multiplier == self.open_divisor {
            self.open_max = d;
        }
        self
    }

    /// Multiply the open time by `multiplier` for each consecutive opening, up to `max`. The
    /// count resets when the breaker closes and saturates at the cap. Consecutive openings
    /// are counted up to 31 (a limit of the encoding: 5 bits of the shared form's control
    /// word), so the time stops growing after the 31st opening even below `max`.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// use core::time::Duration;
    /// let c = Config::new()
    ///     .consecutive_failures(3)
    ///     .open_for(Duration::from_secs(1))
    ///     .open_growth(2, Duration::from_secs(60));
    /// # let _ = c;
    /// ```
    pub const fn open_growth(mut self, multiplier: u32, max: Duration) -> Self {
        self.open_multiplier = multiplier;
        self.open_divisor = 1;
        self.open_max = max;
        self
    }

    /// Multiply the open time by the fraction `multiplier / divisor` for each consecutive
    /// opening, up to `max`: `(3, 2)` is resilience4j's default exponential growth of ×1.5
    /// (`IntervalFunction`'s multiplier). Integer arithmetic (no floats): each opening's time
    /// is the previous one times `multiplier`, divided by `divisor`, rounded down to the
    /// nanosecond, saturating at `max`. Otherwise as [`open_growth`](Config::open_growth).
    /// `multiplier` at least `divisor` (the time never shrinks), at most 65 535; `divisor`
    /// 1 ..= 255 (the compact stored configuration).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// use core::time::Duration;
    /// let cfg = Config::new()
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(10))
    ///     .open_growth_ratio(3, 2, Duration::from_secs(30));
    /// let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    /// let mut now = Instant::ZERO;
    /// let mut open = Vec::new();
    /// for _ in 0..4 {
    ///     let t = m.try_acquire(now).unwrap(); // closed, then each half-open probe
    ///     m.on_failure(t, now);
    ///     let until = m.try_acquire(now).unwrap_err().retry_at.unwrap();
    ///     open.push(until.saturating_duration_since(now).as_millis());
    ///     now = until;
    /// }
    /// assert_eq!(open, [10_000, 15_000, 22_500, 30_000]);
    /// ```
    pub const fn open_growth_ratio(mut self, multiplier: u32, divisor: u32, max: Duration) -> Self {
        self.open_multiplier = multiplier;
        self.open_divisor = divisor;
        self.open_max = max;
        self
    }

    /// Spread each open time uniformly by ±`percent` % (0 ..= 100), so that many breakers do
    /// not probe together. Deterministic for a given [`seed`](Config::seed).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().consecutive_failures(3).open_jitter(20);
    /// # let _ = c;
    /// ```
    pub const fn open_jitter(mut self, percent: u8) -> Self {
        self.open_jitter = percent;
        self
    }

    /// In half-open, admit up to `probes` calls at once (1 ..= 63); `successes_to_close`
    /// successful probes close the breaker (1 ..= 63). 63 is a limit of the encoding: each
    /// half-open counter has 6 bits of the shared form's control word.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().consecutive_failures(3).half_open(2, 3);
    /// # let _ = c;
    /// ```
    pub const fn half_open(mut self, probes: u32, successes_to_close: u32) -> Self {
        self.probes = probes;
        self.successes_to_close = successes_to_close;
        self
    }

    /// How the half-open probes are judged (default [`HalfOpenVerdict::FirstFailure`]).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{Config, HalfOpenVerdict};
    /// let c = Config::new().failure_rate(50).half_open_verdict(HalfOpenVerdict::Rate);
    /// # let _ = c;
    /// ```
    pub const fn half_open_verdict(mut self, verdict: HalfOpenVerdict) -> Self {
        self.verdict = verdict;
        self
    }

    /// What bounds the probes of one half-open episode (default
    /// [`HalfOpenLimit::InFlight`]); [`HalfOpenLimit::PerEpisode`] is gobreaker's
    /// `MaxRequests`. The [`HalfOpenVerdict::Rate`] verdict always admits exactly `probes`
    /// per episode.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, HalfOpenLimit, Machine, NoWindow}};
    /// use core::time::Duration;
    /// let cfg = Config::new().consecutive_failures(1).open_for(Duration::ZERO).half_open(2, 2);
    /// for (limit, third_probe) in [(HalfOpenLimit::InFlight, true), (HalfOpenLimit::PerEpisode, false)] {
    ///     let mut m = Machine::<NoWindow>::new(cfg.half_open_limit(limit)).unwrap();
    ///     let t = m.try_acquire(Instant::ZERO).unwrap();
    ///     m.on_failure(t, Instant::ZERO);
    ///     let (a, _b) = (m.try_acquire(Instant::ZERO).unwrap(), m.try_acquire(Instant::ZERO).unwrap());
    ///     m.on_success(a, Instant::ZERO); // 1 of the 2 successes needed; 1 probe in flight
    ///     assert_eq!(m.try_acquire(Instant::ZERO).is_ok(), third_probe);
    /// }
    /// ```
    pub const fn half_open_limit(mut self, limit: HalfOpenLimit) -> Self {
        self.half_open_limit = limit;
        self
    }

    /// Re-open a breaker that is still half-open `d` after half-open began (when its first
    /// probe was admitted, however late after the open time that call came): its probes
    /// hang, or no call comes to decide (resilience4j's maximum wait in half-open). The
    /// re-opening counts as a failed half-open (the open time grows). Checked when a call
    /// arrives or a probe ends, on the clock's [coarse reading](crate::Clock::now_coarse)
    /// (no timer runs); the probes still running are then late, and their outcomes dropped.
    /// Not zero. Default: none.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// use core::time::Duration;
    /// let c = Config::new().consecutive_failures(3).max_half_open(Duration::from_secs(10));
    /// # let _ = c;
    /// ```
    pub const fn max_half_open(mut self, d: Duration) -> Self {
        self.max_half_open = Some(d);
        self
    }

    /// Time every call, so that the window's [`CallTimes`](super::CallTimes) (the sum and
    /// maximum of the call durations) are measured without a slow-call policy (with one,
    /// calls are timed anyway). Costs a precise clock reading at each admission and each
    /// outcome. Needs a window. Default: off.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, CountWindow, Machine}};
    /// use core::time::Duration;
    /// let cfg = Config::new().failure_rate(50).record_durations(true);
    /// let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_success(t, Instant::from_millis(40));
    /// let times = m.metrics(Instant::from_millis(40)).times;
    /// assert_eq!((times.total, times.max), (Duration::from_millis(40), Duration::from_millis(40)));
    /// ```
    pub const fn record_durations(mut self, on: bool) -> Self {
        self.record_durations = on;
        self
    }

    /// An explicit seed of the open-time jitter, for reproducible open times (tests,
    /// simulations): the same seed gives the same open times in every run and process.
    /// Without it (the default) each breaker takes a fresh seed from
    /// [`rng::next_seed`](crate::rng::next_seed) when it is built: different breakers, and
    /// (with a std adapter's clock, or a seed set by the firmware) different processes, do not
    /// probe in lockstep.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// let c = Config::new().consecutive_failures(3).open_jitter(20).seed(42);
    /// assert_eq!(c.explicit_seed(), Some(42));
    /// assert_eq!(Config::new().explicit_seed(), None);
    /// ```
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.seed_set = true;
        self
    }

    /// The seed set by [`seed`](Config::seed), if any.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::Config;
    /// assert_eq!(Config::new().seed(5).explicit_seed(), Some(5));
    /// ```
    pub const fn explicit_seed(&self) -> Option<u64> {
        if self.seed_set { Some(self.seed) } else { None }
    }

    /// Checks the settings that do not depend on the window type.
    pub(crate) const fn validate(&self, has_window: bool) -> Result<(), ConfigError> {
        if let Some(n) = self.consecutive_failures {
            if n == 0 {
                return Err(ConfigError::Zero(Field::ConsecutiveFailures));
            }
            if n > u16::MAX as u32 {
                return Err(ConfigError::TooLarge(Field::ConsecutiveFailures));
            }
        }
        let rate = self.failure_rate.is_some() || self.slow_rate.is_some();
        if let Some(p) = self.failure_rate
            && (p == 0 || p > 100)
        {
            return Err(ConfigError::PercentOutOfRange(Field::FailureRate));
        }
        if let Some(p) = self.slow_rate {
            if p == 0 || p > 100 {
                return Err(ConfigError::PercentOutOfRange(Field::SlowRate));
            }
            if self.slow_threshold.is_zero() {
                // Every call would be slow: certainly not what was meant.
                return Err(ConfigError::Zero(Field::SlowThreshold));
            }
        }
        if self.open_jitter > 100 {
            return Err(ConfigError::PercentOutOfRange(Field::OpenJitter));
        }
        if (rate || self.record_durations) && !has_window {
            return Err(ConfigError::NoWindow);
        }
        if !rate && self.consecutive_failures.is_none() {
            return Err(ConfigError::NoTripPolicy);
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::Zero(Field::MinimumCalls));
        }
        if self.probes == 0 {
            return Err(ConfigError::Zero(Field::Probes));
        }
        if self.successes_to_close == 0 {
            return Err(ConfigError::Zero(Field::SuccessesToClose));
        }
        if self.probes > MAX_PROBES as u32 {
            return Err(ConfigError::TooLarge(Field::Probes));
        }
        if self.successes_to_close > MAX_PROBES as u32 {
            return Err(ConfigError::TooLarge(Field::SuccessesToClose));
        }
        let counts_ended = matches!(self.verdict, HalfOpenVerdict::Rate)
            || matches!(self.half_open_limit, HalfOpenLimit::PerEpisode);
        if counts_ended && self.successes_to_close > self.probes {
            return Err(ConfigError::SuccessesAboveProbes);
        }
        if self.open_multiplier == 0 {
            return Err(ConfigError::Zero(Field::OpenMultiplier));
        }
        if duration_to_nanos(self.open_max) < duration_to_nanos(self.open_base) {
            return Err(ConfigError::OpenMaxBelowBase);
        }
        if self.open_multiplier > u16::MAX as u32 {
            return Err(ConfigError::TooLarge(Field::OpenMultiplier));
        }
        if self.open_divisor == 0 {
            return Err(ConfigError::Zero(Field::OpenDivisor));
        }
        if self.open_divisor > u8::MAX as u32 {
            return Err(ConfigError::TooLarge(Field::OpenDivisor));
        }
        if self.open_multiplier < self.open_divisor {
            return Err(ConfigError::OpenGrowthBelowOne);
        }
        if let Some(d) = self.max_half_open
            && d.is_zero()
        {
            return Err(ConfigError::Zero(Field::MaxHalfOpen));
        }
        Ok(())
    }

    /// The compact form a breaker stores. Call after [`validate`](Config::validate), which
    /// keeps every count within the narrower field.
    /// Without an explicit seed, a jittered breaker takes a fresh one here, once.
    pub(crate) fn policy(&self) -> Policy {
        Policy {
            open_base: duration_to_nanos(self.open_base),
            open_max: duration_to_nanos(self.open_max),
            seed: match (self.seed_set, self.open_jitter) {
                (true, _) => self.seed,
                (false, 0) => 0,
                (false, _) => crate::rng::next_seed(),
            },
            max_half_open: match self.max_half_open {
                Some(d) => duration_to_nanos(d),
                None => u64::MAX,
            },
            open_multiplier: self.open_multiplier as u16,
            open_divisor: self.open_divisor as u8,
            consecutive_failures: match self.consecutive_failures {
                Some(n) => n as u16,
                None => 0,
            },
            half_open: self.probes as u8
                | match self.verdict {
                    HalfOpenVerdict::FirstFailure => 0,
                    HalfOpenVerdict::Rate => RATE_VERDICT,
                }
                | match self.half_open_limit {
                    HalfOpenLimit::InFlight => 0,
                    HalfOpenLimit::PerEpisode => PER_EPISODE,
                },
            successes_to_close: self.successes_to_close as u8,
            open_jitter: self.open_jitter | if self.seed_set { 0 } else { SEED_NOT_SET },
        }
    }

    /// The configuration a breaker runs with, rebuilt from what it stores: the settings of
    /// `rules` (a breaker without a window has none) read as their defaults when absent.
    pub(crate) fn from_parts(p: &Policy, rules: Option<&Rules>) -> Config {
        let mut c = Config::new();
        c.consecutive_failures =
            (p.consecutive_failures != 0).then_some(p.consecutive_failures as u32);
        c.open_base = nanos_to_duration(p.open_base);
        c.open_max = nanos_to_duration(p.open_max);
        c.open_multiplier = p.open_multiplier as u32;
        c.open_divisor = p.open_divisor as u32;
        c.max_half_open = (p.max_half_open != u64::MAX).then(|| nanos_to_duration(p.max_half_open));
        c.open_jitter = p.jitter_percent();
        c.probes = p.probes() as u32;
        c.successes_to_close = p.successes_to_close as u32;
        c.verdict = p.verdict();
        c.half_open_limit = if p.half_open & PER_EPISODE != 0 {
            HalfOpenLimit::PerEpisode
        } else {
            HalfOpenLimit::InFlight
        };
        if p.open_jitter & SEED_NOT_SET == 0 {
            c = c.seed(p.seed);
        }
        if let Some(r) = rules {
            c.failure_rate = (r.failure_rate() != 0).then_some(r.failure_rate());
            c.slow_rate = (r.slow_rate() != 0).then_some(r.slow_rate());
            c.slow_threshold = nanos_to_duration(r.slow_threshold);
            c.minimum_calls = r.minimum_calls();
            c.time_window = nanos_to_duration(r.span);
            c.record_durations = r.durations();
        }
        c
    }
}

/// The file form of [`Config`] (feature `serde`): the builder's methods as keys.
#[cfg(feature = "serde")]
mod serde_form {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::{Config, HalfOpenLimit, HalfOpenVerdict};
    use crate::duration::Text;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Form {
        #[serde(skip_serializing_if = "Option::is_none")]
        consecutive_failures: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        failure_rate: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        slow_calls: Option<SlowCalls>,
        minimum_calls: u32,
        time_window: Text,
        open_for: Text,
        #[serde(skip_serializing_if = "Option::is_none")]
        open_growth: Option<OpenGrowth>,
        open_jitter: u8,
        half_open: HalfOpen,
        half_open_verdict: HalfOpenVerdict,
        half_open_limit: HalfOpenLimit,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_half_open: Option<Text>,
        #[serde(skip_serializing_if = "is_false")]
        record_durations: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    }

    fn is_false(b: &bool) -> bool {
        !*b
    }

    /// [`Config::slow_calls`]`(threshold, percent)`.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SlowCalls {
        threshold: Text,
        percent: u8,
    }

    /// [`Config::open_growth`]`(multiplier, max)`.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OpenGrowth {
        multiplier: u32,
        /// [`Config::open_growth_ratio`]'s divisor; 1 (an integer multiplier) when omitted.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        divisor: u32,
        max: Text,
    }

    fn one() -> u32 {
        1
    }

    fn is_one(n: &u32) -> bool {
        *n == 1
    }

    /// [`Config::half_open`]`(probes, successes_to_close)`; either may be left at its default.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct HalfOpen {
        probes: u32,
        successes_to_close: u32,
    }

    impl Default for HalfOpen {
        fn default() -> Self {
            let c = Config::new();
            HalfOpen {
                probes: c.probes,
                successes_to_close: c.successes_to_close,
            }
        }
    }

    impl Default for Form {
        fn default() -> Self {
            Form::from(&Config::new())
        }
    }

    impl From<&Config> for Form {
        fn from(c: &Config) -> Form {
            // `open_for` also sets the cap while the multiplier is 1: growth is written only
            // when the builder's `open_for` alone would not give back the same config.
            let grows = c.open_multiplier != c.open_divisor || c.open_max != c.open_base;
            Form {
                consecutive_failures: c.consecutive_failures,
                failure_rate: c.failure_rate,
                slow_calls: c.slow_rate.map(|percent| SlowCalls {
                    threshold: Text(c.slow_threshold),
                    percent,
                }),
                minimum_calls: c.minimum_calls,
                time_window: Text(c.time_window),
                open_for: Text(c.open_base),
                open_growth: grows.then_some(OpenGrowth {
                    multiplier: c.open_multiplier,
                    divisor: c.open_divisor,
                    max: Text(c.open_max),
                }),
                open_jitter: c.open_jitter,
                half_open: HalfOpen {
                    probes: c.probes,
                    successes_to_close: c.successes_to_close,
                },
                half_open_verdict: c.verdict,
                half_open_limit: c.half_open_limit,
                max_half_open: c.max_half_open.map(Text),
                record_durations: c.record_durations,
                seed: c.explicit_seed(),
            }
        }
    }

    impl Form {
        /// The builder's calls, in the order that gives back what [`From`] wrote.
        fn config(self) -> Config {
            let mut c = Config::new()
                .minimum_calls(self.minimum_calls)
                .time_window(self.time_window.0)
                .open_for(self.open_for.0)
                .open_jitter(self.open_jitter)
                .half_open(self.half_open.probes, self.half_open.successes_to_close)
                .half_open_verdict(self.half_open_verdict)
                .half_open_limit(self.half_open_limit)
                .record_durations(self.record_durations);
            if let Some(n) = self.consecutive_failures {
                c = c.consecutive_failures(n);
            }
            if let Some(p) = self.failure_rate {
                c = c.failure_rate(p);
            }
            if let Some(s) = self.slow_calls {
                c = c.slow_calls(s.threshold.0, s.percent);
            }
            if let Some(g) = self.open_growth {
                c = c.open_growth_ratio(g.multiplier, g.divisor, g.max.0);
            }
            if let Some(d) = self.max_half_open {
                c = c.max_half_open(d.0);
            }
            if let Some(seed) = self.seed {
                c = c.seed(seed);
            }
            c
        }
    }

    impl Serialize for Config {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Form::from(self).serialize(serializer)
        }
    }

    /// Checked as the constructors check, but for the window: its type is not in the file.
    impl<'de> Deserialize<'de> for Config {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
            let config = Form::deserialize(deserializer)?.config();
            match config.validate(true) {
                Ok(()) => Ok(config),
                Err(e) => Err(de::Error::custom(e)),
            }
        }
    }
}

/// The inverse of [`duration_to_nanos`]: `u64::MAX` nanoseconds (where every duration of
/// that length or more saturates) reads as [`Duration::MAX`].
fn nanos_to_duration(n: u64) -> Duration {
    if n == u64::MAX {
        Duration::MAX
    } else {
        Duration::from_nanos(n)
    }
}

/// In [`Policy::open_jitter`] (a percentage, at most 100): the seed was not explicit, it was
/// drawn when the breaker was built (so [`Config::from_parts`] reads it back as "no seed").
const SEED_NOT_SET: u8 = 0x80;

/// A validated [`Config`] in the form a breaker stores (40 bytes): durations as nanoseconds,
/// counts in the widths validation allows. The rate settings are kept apart, in the
/// [`Rules`] that only a breaker with a window stores, so a consecutive-failure breaker
/// carries none of them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) open_base: u64,
    pub(crate) open_max: u64,
    pub(crate) seed: u64,
    /// Nanoseconds; `u64::MAX`: none.
    pub(crate) max_half_open: u64,
    /// The growth of the open time is `open_multiplier / open_divisor`.
    pub(crate) open_multiplier: u16,
    pub(crate) open_divisor: u8,
    /// 0: the policy is off.
    pub(crate) consecutive_failures: u16,
    /// The half-open probes (at most [`MAX_PROBES`], in the low bits) and the verdict
    /// ([`RATE_VERDICT`]): see [`probes`](Policy::probes) and [`verdict`](Policy::verdict).
    half_open: u8,
    pub(crate) successes_to_close: u8,
    /// The jitter percentage; its top bit is [`SEED_NOT_SET`].
    pub(crate) open_jitter: u8,
}

/// In [`Policy::half_open`] (probes, at most [`MAX_PROBES`]): the verdict is
/// [`HalfOpenVerdict::Rate`]. Packed so that the policy stays 40 bytes with the fractional
/// growth's divisor.
const RATE_VERDICT: u8 = 0x80;
/// In [`Policy::half_open`]: the limit is [`HalfOpenLimit::PerEpisode`].
const PER_EPISODE: u8 = 0x40;

impl Policy {
    /// Half-open probes admitted at once.
    #[inline]
    pub(crate) const fn probes(&self) -> u8 {
        self.half_open & MAX_PROBES
    }

    /// Do the probes that ended still count against the probe limit (the rate verdict, or
    /// [`HalfOpenLimit::PerEpisode`])?
    #[inline]
    pub(crate) const fn counts_ended_probes(&self) -> bool {
        self.half_open & (RATE_VERDICT | PER_EPISODE) != 0
    }

    /// How half-open probes are judged.
    #[inline]
    pub(crate) const fn verdict(&self) -> HalfOpenVerdict {
        if self.half_open & RATE_VERDICT != 0 {
            HalfOpenVerdict::Rate
        } else {
            HalfOpenVerdict::FirstFailure
        }
    }

    /// Is there a maximum time in half-open?
    #[inline]
    pub(crate) const fn limits_half_open(&self) -> bool {
        self.max_half_open != u64::MAX
    }

    /// The end of the half-open maximum, for a half-open state that began at `since`.
    #[inline]
    pub(crate) const fn half_open_end(&self, since: Instant) -> Instant {
        Instant::from_nanos(since.as_nanos().saturating_add(self.max_half_open))
    }

    /// The open-time jitter in percent (without the [`SEED_NOT_SET`] mark).
    const fn jitter_percent(&self) -> u8 {
        self.open_jitter & !SEED_NOT_SET
    }

    /// The longest open time this policy can give: the cap, jittered up.
    pub(crate) const fn longest_open(&self) -> u64 {
        let span = (self.open_max as u128 * self.jitter_percent() as u128 / 100) as u64;
        self.open_max.saturating_add(span)
    }

    /// `self` with the settings of `cfg` (validated) that change at run time: the open
    /// time's base and cap, and the consecutive failures.
    pub(crate) const fn with_run_time(&self, cfg: &Config) -> Policy {
        Policy {
            open_base: duration_to_nanos(cfg.open_base),
            open_max: duration_to_nanos(cfg.open_max),
            consecutive_failures: match cfg.consecutive_failures {
                Some(n) => n as u16,
                None => 0,
            },
            ..*self
        }
    }

    /// The small fields as one word (see [`SharedPolicy`]).
    const fn small_word(&self) -> u64 {
        self.open_multiplier as u64
            | (self.open_divisor as u64) << 16
            | (self.consecutive_failures as u64) << 24
            | (self.half_open as u64) << 40
            | (self.successes_to_close as u64) << 48
            | (self.open_jitter as u64) << 56
    }

    /// The policy of the words of a [`SharedPolicy`].
    #[inline(always)]
    const fn of_words(
        open_base: u64,
        open_max: u64,
        seed: u64,
        max_half_open: u64,
        small: u64,
    ) -> Policy {
        Policy {
            open_base,
            open_max,
            seed,
            max_half_open,
            open_multiplier: small as u16,
            open_divisor: (small >> 16) as u8,
            consecutive_failures: (small >> 24) as u16,
            half_open: (small >> 40) as u8,
            successes_to_close: (small >> 48) as u8,
            open_jitter: (small >> 56) as u8,
        }
    }

    /// The open time for the `openings`-th consecutive opening (1-based), before jitter,
    /// saturating at the cap; then jittered by a hash of the seed and `salt`. Without growth
    /// (a multiplier of 1) the open time is the base, whatever the cap (validation keeps the
    /// cap at or above the base; a base changed at run time is not capped by the old cap).
    pub(crate) fn open_duration(&self, openings: u8, salt: u64) -> u64 {
        let (num, den) = (self.open_multiplier as u64, self.open_divisor as u64);
        let max = if num == den {
            self.open_base
        } else {
            self.open_max
        };
        let mut d = self.open_base.min(max);
        let mut i = 1;
        while i < openings && d < max {
            // ⌊d · num / den⌋ in u64 (no u128 on a microcontroller): with d = q · den + r it
            // is q · num + ⌊r · num / den⌋, and r · num < 2^8 · 2^16 cannot overflow.
            // Saturating, then capped.
            d = (d / den)
                .saturating_mul(num)
                .saturating_add(d % den * num / den)
                .min(max);
            i += 1;
        }
        let percent = self.jitter_percent();
        if percent == 0 || d == 0 {
            return d;
        }
        let span = (d as u128 * percent as u128 / 100) as u64;
        let r = splitmix64(self.seed ^ salt.rotate_left(17) ^ openings as u64);
        // Uniform in [d - span, d + span] (the tiny modulo bias is irrelevant here).
        let offset = (r as u128 % (2 * span as u128 + 1)) as u64;
        (d - span).saturating_add(offset)
    }
}

/// Where a driver reads the [`Policy`] from: a plain one (the machine), or the shared
/// form's [`SharedPolicy`], read once per decision that needs it (never on the fast paths).
pub(crate) trait PolicySource {
    /// The policy now.
    fn policy(&self) -> Policy;
}

impl PolicySource for Policy {
    #[inline(always)]
    fn policy(&self) -> Policy {
        *self
    }
}

/// The shared form's [`Policy`], in the same 40 bytes: the settings that change at run time
/// through `&self` (the open time's base and cap, and the small fields with the consecutive
/// failures) are atomic words, each change one store of one word.
///
/// A change of the open time without growth stores the base, then the cap; decisions do not
/// read the cap without growth (see [`Policy::open_duration`]), so none sees half of it.
#[derive(Debug)]
pub(crate) struct SharedPolicy {
    open_base: AtomicU64,
    open_max: AtomicU64,
    seed: u64,
    max_half_open: u64,
    small: AtomicU64,
}

impl SharedPolicy {
    pub(crate) fn new(p: &Policy) -> SharedPolicy {
        SharedPolicy {
            open_base: AtomicU64::new(p.open_base),
            open_max: AtomicU64::new(p.open_max),
            seed: p.seed,
            max_half_open: p.max_half_open,
            small: AtomicU64::new(p.small_word()),
        }
    }

    /// Publishes the open time (base, then cap) of `p`.
    pub(crate) fn store_open(&self, p: &Policy) {
        // Release: pairs with the Acquire loads of `policy`; no other data is published.
        self.open_base.store(p.open_base, Ordering::Release);
        self.open_max.store(p.open_max, Ordering::Release);
    }

    /// Publishes the small fields of `p` (the consecutive failures; the others are fixed).
    pub(crate) fn store_small(&self, p: &Policy) {
        // Release: as `store_open`.
        self.small.store(p.small_word(), Ordering::Release);
    }
}

impl PolicySource for SharedPolicy {
    #[inline]
    fn policy(&self) -> Policy {
        // Acquire: pairs with the Release stores of `store`. Each word is a whole setting.
        Policy::of_words(
            self.open_base.load(Ordering::Acquire),
            self.open_max.load(Ordering::Acquire),
            self.seed,
            self.max_half_open,
            self.small.load(Ordering::Acquire),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_time_grows_and_saturates_at_the_cap() {
        let c = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(2, Duration::from_secs(10));
        let secs: [u64; 6] =
            core::array::from_fn(|i| c.policy().open_duration(i as u8 + 1, 0) / 1_000_000_000);
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(c.policy().open_duration(u8::MAX, 0), 10_000_000_000);
    }

    /// resilience4j's exponential wait in the open state multiplies by 1.5 by default
    /// (`IntervalFunction.DEFAULT_MULTIPLIER`): 10 s, 15 s, 22.5 s, 33.75 s, ... here as the
    /// ratio 3/2 in integer nanoseconds, rounded down, capped at 60 s.
    #[test]
    fn fractional_growth_follows_resilience4j_default_multiplier() {
        let c = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10))
            .open_growth_ratio(3, 2, Duration::from_secs(60));
        let ms: [u64; 6] =
            core::array::from_fn(|i| c.policy().open_duration(i as u8 + 1, 0) / 1_000_000);
        assert_eq!(ms, [10_000, 15_000, 22_500, 33_750, 50_625, 60_000]);
        // Rounded down to the nanosecond: 1 ns · 3/2 stays 1 ns, 3 ns grows to 4 ns.
        let tiny = |base| {
            Config::new()
                .consecutive_failures(1)
                .open_for(Duration::from_nanos(base))
                .open_growth_ratio(3, 2, Duration::from_secs(1))
                .policy()
                .open_duration(2, 0)
        };
        assert_eq!((tiny(1), tiny(3)), (1, 4));
        // Saturating near the top of the range, never wrapping.
        let big = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_nanos(u64::MAX / 2))
            .open_growth_ratio(65_535, 255, Duration::MAX);
        assert_eq!(big.policy().open_duration(2, 0), u64::MAX);
        assert_eq!(big.policy().open_duration(31, 0), u64::MAX);
    }

    #[test]
    fn huge_open_times_saturate() {
        let c = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::MAX)
            .open_growth(u32::MAX, Duration::MAX);
        assert_eq!(c.policy().open_duration(31, 0), u64::MAX);
        let j = c.open_jitter(100);
        let _ = j.policy().open_duration(31, 7); // no overflow, no panic
    }

    #[test]
    fn jitter_stays_within_bounds_and_is_deterministic() {
        let c = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10))
            .open_jitter(20);
        let p = c.policy(); // one breaker: without an explicit seed each draws its own
        let (mut lo, mut hi) = (u64::MAX, 0);
        for salt in 0..2_000 {
            let d = p.open_duration(1, salt);
            assert!((8_000_000_000..=12_000_000_000).contains(&d), "{d}");
            assert_eq!(d, p.open_duration(1, salt));
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // The draws really spread over the band.
        assert!(lo < 8_400_000_000 && hi > 11_600_000_000, "{lo} {hi}");
    }

    #[test]
    fn validation_rejects_bad_configs_naming_the_field() {
        use ConfigError::*;
        let ok = Config::new().consecutive_failures(3);
        let s = Duration::from_secs;
        let cases = [
            (ok, false, Ok(())),
            (Config::new(), true, Err(NoTripPolicy)),
            (
                ok.consecutive_failures(0),
                false,
                Err(Zero(Field::ConsecutiveFailures)),
            ),
            (
                ok.consecutive_failures(70_000),
                false,
                Err(TooLarge(Field::ConsecutiveFailures)),
            ),
            (
                ok.failure_rate(101),
                true,
                Err(PercentOutOfRange(Field::FailureRate)),
            ),
            (
                ok.failure_rate(0),
                true,
                Err(PercentOutOfRange(Field::FailureRate)),
            ),
            (ok.failure_rate(50), false, Err(NoWindow)),
            (
                ok.slow_calls(s(1), 0),
                true,
                Err(PercentOutOfRange(Field::SlowRate)),
            ),
            (
                ok.slow_calls(Duration::ZERO, 50),
                true,
                Err(Zero(Field::SlowThreshold)),
            ),
            (ok.half_open(0, 1), false, Err(Zero(Field::Probes))),
            (ok.half_open(64, 1), false, Err(TooLarge(Field::Probes))),
            (
                ok.half_open(1, 0),
                false,
                Err(Zero(Field::SuccessesToClose)),
            ),
            (
                ok.half_open(63, 64),
                false,
                Err(TooLarge(Field::SuccessesToClose)),
            ),
            (ok.half_open(63, 63), false, Ok(())),
            (ok.minimum_calls(0), false, Err(Zero(Field::MinimumCalls))),
            (
                ok.open_jitter(101),
                false,
                Err(PercentOutOfRange(Field::OpenJitter)),
            ),
            (
                ok.open_growth(0, s(60)),
                false,
                Err(Zero(Field::OpenMultiplier)),
            ),
            (
                ok.open_growth(65_536, s(60)),
                false,
                Err(TooLarge(Field::OpenMultiplier)),
            ),
            (
                ok.open_growth_ratio(3, 0, s(60)),
                false,
                Err(Zero(Field::OpenDivisor)),
            ),
            (
                ok.open_growth_ratio(300, 256, s(60)),
                false,
                Err(TooLarge(Field::OpenDivisor)),
            ),
            (
                ok.open_growth_ratio(2, 3, s(60)),
                false,
                Err(OpenGrowthBelowOne),
            ),
            (ok.open_growth_ratio(3, 2, s(60)), false, Ok(())),
            (
                ok.max_half_open(Duration::ZERO),
                false,
                Err(Zero(Field::MaxHalfOpen)),
            ),
            (ok.max_half_open(Duration::from_nanos(1)), false, Ok(())),
            (
                ok.open_for(s(9)).open_growth(2, s(1)),
                false,
                Err(OpenMaxBelowBase),
            ),
            (
                ok.half_open(2, 3).half_open_verdict(HalfOpenVerdict::Rate),
                false,
                Err(SuccessesAboveProbes),
            ),
            (
                ok.half_open(2, 3)
                    .half_open_limit(HalfOpenLimit::PerEpisode),
                false,
                Err(SuccessesAboveProbes),
            ),
            (ok.half_open(2, 3), false, Ok(())),
        ];
        for (i, (cfg, window, want)) in cases.into_iter().enumerate() {
            assert_eq!(cfg.validate(window), want, "case {i}");
        }
    }
}
