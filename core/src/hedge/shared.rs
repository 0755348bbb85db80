//! The shared form: [`Hedge`].

use core::fmt;
use core::time::Duration;

use super::config::{Config, ConfigError, Delay};
use super::latencies::Latencies;
use crate::classify::ErrorsAreFailures;

/// A hedging policy shared by every call through it (`&self`): `N` copies in all, the
/// [`Config`]'s delay, a classifier `K` (which answers are acceptable), a
/// [`RetryBudget`](crate::retry::RetryBudget) `B` each hedge takes a token from (`()`: no
/// limit), and the [`Latencies`] of recent acceptable answers for a percentile delay.
///
/// ```
/// use bulwark::hedge::{Config, Delay, Hedge};
/// use bulwark::MockClock;
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(Duration::from_millis(20))), &clock).unwrap();
/// assert_eq!(hedge.delay(), Duration::from_millis(20));
/// ```
pub struct Hedge<S, const N: usize, K = ErrorsAreFailures, B = ()> {
    pub(super) cfg: Config,
    pub(super) sleeper: S,
    pub(super) classify: K,
    pub(super) budget: B,
    pub(super) latencies: Latencies,
}

impl<S, const N: usize> Hedge<S, N> {
    /// A hedge for `cfg` on `sleeper`'s clock; every `Err` is not acceptable, no budget.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::hedge::{Config, ConfigError, Delay, Hedge};
    /// let clock = bulwark::MockClock::new();
    /// let one = Hedge::<_, 1>::new(Config::new(Delay::Fixed(core::time::Duration::ZERO)), &clock);
    /// assert_eq!(one.err(), Some(ConfigError::NoHedges));
    /// ```
    pub fn new(cfg: Config, sleeper: S) -> Result<Self, ConfigError> {
        cfg.validate::<N>()?;
        Ok(Hedge {
            cfg,
            sleeper,
            classify: ErrorsAreFailures,
            budget: (),
            latencies: Latencies::new(),
        })
    }
}

impl<S, const N: usize, K, B> Hedge<S, N, K, B> {
    /// The same hedge judging answers with `classify`.
    ///
    /// ```
    /// use bulwark::classify::Verdict;
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// let clock = MockClock::new();
    /// let hedge: Hedge<_, 2, _> = Hedge::new(Config::new(Delay::Fixed(core::time::Duration::from_secs(1))), &clock)
    ///     .unwrap()
    ///     .with_classifier(|r: &Result<u16, ()>| if r == &Ok(503) { Verdict::FAILURE } else { Verdict::Success });
    /// let copy = Cell::new(0);
    /// // The first copy's 503 is not acceptable: the hedge starts at once and its 200 wins.
    /// let out = mock::run(&clock, hedge.call(|| { copy.set(copy.get() + 1); let n = copy.get(); async move { Ok(if n == 1 { 503 } else { 200 }) } }));
    /// assert_eq!(out.unwrap(), Ok(200));
    /// ```
    pub fn with_classifier<K2>(self, classify: K2) -> Hedge<S, N, K2, B> {
        Hedge {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify,
            budget: self.budget,
            latencies: self.latencies,
        }
    }

    /// The same hedge taking a token of `budget` for each hedge (share it with a retry's:
    /// together they cannot exceed it).
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use bulwark::throttle::RetryThrottling;
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// let clock = MockClock::new();
    /// let tokens = RetryThrottling::new(2, 1).unwrap(); // its first token leaves only half: none to give
    /// let hedge: Hedge<_, 2, _, _> = Hedge::new(Config::new(Delay::Fixed(core::time::Duration::ZERO)), &clock)
    ///     .unwrap()
    ///     .with_budget(&tokens);
    /// let copies = Cell::new(0);
    /// let out = mock::run(&clock, hedge.call(|| { copies.set(copies.get() + 1); async { Err::<(), _>("down") } }));
    /// assert_eq!((out.unwrap(), copies.get()), (Err("down"), 1)); // no hedge: the budget said no
    /// ```
    pub fn with_budget<B2>(self, budget: B2) -> Hedge<S, N, K, B2> {
        Hedge {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: self.classify,
            budget,
            latencies: self.latencies,
        }
    }

    /// The delay before the next hedge now: the fixed one, or the percentile of recent
    /// acceptable answers clamped to its range (its max until 16 answers are in).
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use core::time::Duration;
    /// let ms = Duration::from_millis;
    /// let clock = bulwark::MockClock::new();
    /// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Percentile { per_mille: 950, min: ms(5), max: ms(500) }), &clock).unwrap();
    /// assert_eq!(hedge.delay(), ms(500)); // nothing seen yet
    /// (0..20).for_each(|_| hedge.latencies().record(ms(1)));
    /// assert_eq!(hedge.delay(), ms(5)); // p95 of 1 ms, clamped up to the min
    /// ```
    pub fn delay(&self) -> Duration {
        match self.cfg.delay {
            Delay::Fixed(d) => d,
            Delay::Percentile {
                per_mille,
                min,
                max,
            } => self
                .latencies
                .percentile(per_mille)
                .map_or(max, |p| p.clamp(min, max)),
        }
    }

    /// The latencies of recent acceptable answers, recorded when the delay is a
    /// [`Delay::Percentile`] (the one that reads them); with a [`Delay::Fixed`] nothing is
    /// recorded, so that a call pays neither the clock read nor the histogram's two shared
    /// writes.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use bulwark::{MockClock, mock};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let ms = Duration::from_millis;
    /// let p90 = Delay::Percentile { per_mille: 900, min: ms(1), max: ms(50) };
    /// let adaptive: Hedge<_, 2> = Hedge::new(Config::new(p90), &clock).unwrap();
    /// let fixed: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(ms(50))), &clock).unwrap();
    /// for hedge in [&adaptive, &fixed] {
    ///     for _ in 0..16 {
    ///         mock::run(&clock, hedge.call(|| async {
    ///             clock.sleep(ms(4)).await;
    ///             Ok::<_, ()>(())
    ///         }))
    ///         .unwrap()
    ///         .unwrap();
    ///     }
    /// }
    /// let p90 = adaptive.latencies().percentile(900).unwrap();
    /// assert!(p90 >= ms(4) && p90 <= ms(5));
    /// assert_eq!(fixed.latencies().percentile(900), None);
    /// ```
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }
}

impl<S, const N: usize, K, B> fmt::Debug for Hedge<S, N, K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("copies", &N)
            .field("cfg", &self.cfg)
            .field("latencies", &self.latencies)
            .finish_non_exhaustive()
    }
}
