//! The pure retry machine: [`RetryState`], which decides "retry at `t`" or
//! "stop" from `now`, the outcome's hint and the deadline. No clock, no atomics, no futures.

use core::time::Duration;

use super::backoff::{BackoffFn, JitterBase};
use super::config::Config;
use crate::rng::{RandomSource, Rng};
use crate::time::{Instant, duration_to_nanos};
use crate::timeout::Deadline;

/// Why [`RetryState::decide`] said stop.
///
/// ```
/// use bulwark::retry::Stop;
/// assert_ne!(Stop::MaxAttempts, Stop::Deadline);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stop {
    /// `max_attempts` attempts were made.
    MaxAttempts,
    /// The next attempt would start more than `max_elapsed` after the first.
    MaxElapsed,
    /// The next attempt would start at or after the deadline.
    Deadline,
}

/// What to do after an attempt whose outcome is worth retrying.
///
/// ```
/// use bulwark::{Instant, retry::Decision};
/// use core::time::Duration;
/// let d = Decision::Retry { delay: Duration::from_secs(1), at: Instant::from_secs(1) };
/// assert!(matches!(d, Decision::Retry { .. }));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// Wait `delay`, then start the next attempt at `at` (`now + delay`).
    Retry {
        /// The wait.
        delay: Duration,
        /// When the next attempt starts.
        at: Instant,
    },
    /// Give up.
    Stop(Stop),
}

/// The state of one retried call: attempts made, when the first started, the previous delay
/// (for decorrelated jitter) and the jitter generator. Pure: `now` is an argument.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::retry::{Backoff, Config, Decision, Jitter, RetryState, Stop};
/// use bulwark::timeout::Deadline;
/// use core::time::Duration;
///
/// let cfg = Config::new()
///     .max_attempts(3)
///     .backoff(Backoff::exponential(Duration::from_secs(1)))
///     .jitter(Jitter::None); // exact delays
/// let mut s = RetryState::new(Instant::ZERO, 0);
/// s.start_attempt(); // attempt 1 fails at t = 0
/// assert_eq!(
///     s.decide(&cfg, Instant::ZERO, None, Deadline::NONE),
///     Decision::Retry { delay: Duration::from_secs(1), at: Instant::from_secs(1) }
/// );
/// s.start_attempt(); // attempt 2 fails at t = 1 s
/// assert_eq!(
///     s.decide(&cfg, Instant::from_secs(1), None, Deadline::NONE),
///     Decision::Retry { delay: Duration::from_secs(2), at: Instant::from_secs(3) }
/// );
/// s.start_attempt(); // attempt 3 fails: that was the last one
/// assert_eq!(s.decide(&cfg, Instant::from_secs(3), None, Deadline::NONE), Decision::Stop(Stop::MaxAttempts));
/// assert_eq!(s.attempts(), 3);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryState {
    attempts: u32,
    started: Instant,
    prev: u64,
    rng: Rng,
}

impl RetryState {
    /// The instant the call's first attempt started (as given to [`new`](RetryState::new)).
    pub(crate) const fn started(&self) -> Instant {
        self.started
    }

    /// A call whose first attempt starts at `started`, jittered from `seed`. No attempt is
    /// counted yet: call [`start_attempt`](RetryState::start_attempt) as each one starts.
    ///
    /// ```
    /// use bulwark::{Instant, retry::RetryState};
    /// assert_eq!(RetryState::new(Instant::ZERO, 1).attempts(), 0);
    /// ```
    pub const fn new(started: Instant, seed: u64) -> RetryState {
        RetryState {
            attempts: 0,
            started,
            prev: 0,
            rng: Rng::new(seed),
        }
    }

    /// Restarts the jitter generator from `seed` (the async wrapper seeds a call only when
    /// its first attempt fails, so a successful call never pays for it).
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// Counts an attempt as started (saturating).
    ///
    /// ```
    /// use bulwark::{Instant, retry::RetryState};
    /// let mut s = RetryState::new(Instant::ZERO, 1);
    /// s.start_attempt();
    /// assert_eq!(s.attempts(), 1);
    /// ```
    pub fn start_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// Attempts started so far.
    ///
    /// ```
    /// use bulwark::{Instant, retry::RetryState};
    /// assert_eq!(RetryState::new(Instant::ZERO, 0).attempts(), 0);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After an attempt whose outcome is worth retrying, finished at `now`: retry after a
    /// delay, or stop. `hint` (a Retry-After from the outcome) replaces the backoff and
    /// jitter, cut to [`Config::max_retry_after`]. The next attempt must start no later than
    /// `max_elapsed` after the first, and strictly before `deadline`; the machine never
    /// plans a wait past either — it stops instead.
    ///
    /// Works on any input without panicking, an unvalidated config included.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::retry::{Backoff, Config, Decision, Jitter, RetryState, Stop};
    /// use bulwark::timeout::Deadline;
    /// use core::time::Duration;
    ///
    /// let cfg = Config::new().backoff(Backoff::constant(Duration::from_secs(5))).jitter(Jitter::None);
    /// let mut s = RetryState::new(Instant::ZERO, 0);
    /// s.start_attempt();
    /// let deadline = Deadline::at(Instant::from_secs(4));
    /// assert_eq!(s.decide(&cfg, Instant::ZERO, None, deadline), Decision::Stop(Stop::Deadline));
    /// // A Retry-After hint of 2 s fits before the deadline.
    /// assert_eq!(
    ///     s.decide(&cfg, Instant::ZERO, Some(Duration::from_secs(2)), deadline),
    ///     Decision::Retry { delay: Duration::from_secs(2), at: Instant::from_secs(2) }
    /// );
    /// ```
    pub fn decide<D: BackoffFn>(
        &mut self,
        cfg: &Config<D>,
        now: Instant,
        hint: Option<Duration>,
        deadline: Deadline,
    ) -> Decision {
        let mut rng = self.rng;
        let d = self.decide_with(cfg, now, hint, deadline, &mut rng);
        self.rng = rng;
        d
    }

    /// [`decide`](RetryState::decide) drawing the jitter from `rng` instead of the state's own
    /// seeded generator: a test pins the exact draw with a [`RandomSource`] of its own (a
    /// draw of `u64::MAX` is the top of the range, `0` the bottom).
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::retry::{Backoff, Config, Decision, Jitter, RetryState};
    /// use bulwark::rng::RandomSource;
    /// use bulwark::timeout::Deadline;
    /// use core::time::Duration;
    ///
    /// struct Half;
    /// impl RandomSource for Half {
    ///     fn next_u64(&mut self) -> u64 { 1 << 63 } // the middle of every range
    /// }
    /// let cfg = Config::new().backoff(Backoff::constant(Duration::from_secs(10))).jitter(Jitter::Full);
    /// let mut s = RetryState::new(Instant::ZERO, 0);
    /// s.start_attempt();
    /// assert_eq!(
    ///     s.decide_with(&cfg, Instant::ZERO, None, Deadline::NONE, &mut Half),
    ///     Decision::Retry { delay: Duration::from_secs(5), at: Instant::from_secs(5) }
    /// );
    /// ```
    pub fn decide_with<D: BackoffFn, R: RandomSource + ?Sized>(
        &mut self,
        cfg: &Config<D>,
        now: Instant,
        hint: Option<Duration>,
        deadline: Deadline,
        rng: &mut R,
    ) -> Decision {
        if self.attempts >= cfg.max_attempts {
            return Decision::Stop(Stop::MaxAttempts);
        }
        let delay = match hint {
            Some(h) => duration_to_nanos(h).min(duration_to_nanos(cfg.max_hint)),
            None => {
                let b = &cfg.backoff;
                let d = match cfg.jitter_base {
                    JitterBase::Capped => b.delay_nanos(self.attempts),
                    JitterBase::Uncapped => b.uncapped_nanos(self.attempts),
                };
                let base = b.delay_nanos(1);
                let prev = if self.prev == 0 { base } else { self.prev };
                let cap = duration_to_nanos(b.cap());
                cfg.jitter.apply(d, base, cap, prev, rng)
            }
        };
        let delay = Duration::from_nanos(delay);
        let at = now.saturating_add(delay);
        if let Some(max) = cfg.max_elapsed
            && at.saturating_duration_since(self.started) > max
        {
            return Decision::Stop(Stop::MaxElapsed);
        }
        if !deadline.allows(at) {
            return Decision::Stop(Stop::Deadline);
        }
        self.prev = duration_to_nanos(delay);
        Decision::Retry { delay, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Backoff, Jitter};

    const NONE: Deadline = Deadline::NONE;

    fn secs(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    /// Runs attempts that each fail at once; returns the instants attempts started.
    fn schedule(cfg: &Config, deadline: Deadline) -> ([Instant; 16], usize, Stop) {
        let mut s = RetryState::new(Instant::ZERO, 9);
        let mut at = [Instant::ZERO; 16];
        let mut now = Instant::ZERO;
        let mut n = 0;
        loop {
            s.start_attempt();
            at[n] = now;
            n += 1;
            match s.decide(cfg, now, None, deadline) {
                Decision::Retry { at: t, .. } => now = t,
                Decision::Stop(why) => return (at, n, why),
            }
        }
    }

    #[test]
    fn exponential_schedule_with_literal_instants() {
        let cfg = Config::new()
            .jitter(Jitter::None)
            .max_attempts(6)
            .backoff(Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(8)));
        let (at, n, why) = schedule(&cfg, NONE);
        assert_eq!(why, Stop::MaxAttempts);
        assert_eq!(
            &at[..n],
            &[secs(0), secs(1), secs(3), secs(7), secs(15), secs(23)]
        );
    }

    /// Pins every draw at `bits`.
    struct Fixed(u64);
    impl RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    fn delay_with(cfg: &Config, retry: u32, bits: u64) -> Duration {
        let mut s = RetryState::new(Instant::ZERO, 0);
        for _ in 0..retry {
            s.start_attempt();
        }
        match s.decide_with(cfg, Instant::ZERO, None, NONE, &mut Fixed(bits)) {
            Decision::Retry { delay, .. } => delay,
            other => panic!("{other:?}"),
        }
    }

    /// resilience4j `IntervalFunction.ofExponentialRandomBackoff(500 ms, 1.5, 0.5, 2 s)`:
    /// "randomizationFactor ... delay ± factor × delay", drawn around the *uncapped*
    /// `500 ms × 1.5^(n-1)`, then `min(.., maxInterval)`. Retry 4: 1687.5 ms ± 50 % is
    /// `[843.75, 2531.25] ms`; the top draw is capped to 2 s, the bottom stays 843.75 ms. With
    /// the default base (around the capped delay) it is the same until the cap; retry 5 is
    /// capped at 2 s first, so its bottom draw is 1 s, where resilience4j's is 1265.625 ms.
    #[test]
    fn jitter_around_the_uncapped_delay_with_pinned_draws() {
        let r4j = Config::new()
            .max_attempts(10)
            .backoff(
                Backoff::exponential(Duration::from_millis(500))
                    .multiplier_ratio(3, 2)
                    .max(Duration::from_secs(2)),
            )
            .jitter(Jitter::Proportional(50))
            .jitter_base(JitterBase::Uncapped);
        assert_eq!(delay_with(&r4j, 4, u64::MAX), Duration::from_secs(2));
        assert_eq!(delay_with(&r4j, 4, 0), Duration::from_micros(843_750));
        assert_eq!(delay_with(&r4j, 5, 0), Duration::from_micros(1_265_625));
        let capped = r4j.jitter_base(JitterBase::Capped);
        assert_eq!(delay_with(&capped, 4, 0), Duration::from_micros(843_750));
        assert_eq!(delay_with(&capped, 5, 0), Duration::from_secs(1));
        assert_eq!(delay_with(&capped, 5, u64::MAX), Duration::from_secs(2));
        // Full jitter, the middle draw: half the delay (1 s of 2 s).
        let full = capped.jitter(Jitter::Full);
        assert_eq!(delay_with(&full, 5, 1 << 63), Duration::from_secs(1));
    }

    /// tower `ExponentialBackoff::new(100 ms, 1 s, 0.5)`: the base `min × 2^n` capped at
    /// `max`, plus a uniform draw on `[0, base × jitter]`, no more than `max − base`.
    #[test]
    fn additive_jitter_on_the_schedule() {
        let tower = Config::new()
            .max_attempts(10)
            .backoff(Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(1)))
            .jitter(Jitter::Additive(500));
        assert_eq!(delay_with(&tower, 1, 0), Duration::from_millis(100));
        assert_eq!(delay_with(&tower, 1, u64::MAX), Duration::from_millis(150));
        assert_eq!(delay_with(&tower, 3, 1 << 63), Duration::from_millis(500));
        assert_eq!(delay_with(&tower, 4, u64::MAX), Duration::from_secs(1)); // 800 + 400, capped
    }

    #[test]
    fn max_attempts_one_never_retries() {
        let cfg = Config::new().max_attempts(1);
        let (_, n, why) = schedule(&cfg, NONE);
        assert_eq!((n, why), (1, Stop::MaxAttempts));
    }

    #[test]
    fn max_elapsed_stops_before_planning_past_it() {
        let cfg = Config::new()
            .jitter(Jitter::None)
            .max_attempts(100)
            .max_elapsed(Duration::from_secs(10))
            .backoff(Backoff::constant(Duration::from_secs(3)));
        let (at, n, why) = schedule(&cfg, NONE);
        assert_eq!(why, Stop::MaxElapsed);
        // 0, 3, 6, 9 — the next would be at 12 > 10.
        assert_eq!(&at[..n], &[secs(0), secs(3), secs(6), secs(9)]);
        // Exactly at the limit is allowed.
        let cfg = cfg.max_elapsed(Duration::from_secs(9));
        let (_, n, _) = schedule(&cfg, NONE);
        assert_eq!(n, 4);
    }

    #[test]
    fn deadline_is_exclusive() {
        let cfg = Config::new()
            .jitter(Jitter::None)
            .max_attempts(100)
            .backoff(Backoff::constant(Duration::from_secs(2)));
        let (at, n, why) = schedule(&cfg, Deadline::at(secs(6)));
        assert_eq!(why, Stop::Deadline);
        assert_eq!(&at[..n], &[secs(0), secs(2), secs(4)]); // 6 would start expired
    }

    #[test]
    fn hint_overrides_backoff_and_is_capped() {
        let cfg = Config::new()
            .backoff(Backoff::constant(Duration::from_secs(1)))
            .jitter(Jitter::Full)
            .max_retry_after(Duration::from_secs(30));
        let mut s = RetryState::new(Instant::ZERO, 0);
        s.start_attempt();
        let d = s.decide(&cfg, secs(5), Some(Duration::from_secs(7)), NONE);
        assert_eq!(
            d,
            Decision::Retry {
                delay: Duration::from_secs(7),
                at: secs(12)
            }
        );
        s.start_attempt();
        let d = s.decide(&cfg, secs(12), Some(Duration::from_secs(3600)), NONE);
        assert_eq!(
            d,
            Decision::Retry {
                delay: Duration::from_secs(30),
                at: secs(42)
            }
        );
    }

    #[test]
    fn decorrelated_uses_previous_delay() {
        let cfg = Config::new()
            .max_attempts(u32::MAX)
            .backoff(Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(20)))
            .jitter(Jitter::Decorrelated);
        let mut s = RetryState::new(Instant::ZERO, 5);
        let mut prev = 1_000_000_000u64;
        for _ in 0..2_000 {
            s.start_attempt();
            match s.decide(&cfg, Instant::ZERO, None, NONE) {
                Decision::Retry { delay, .. } => {
                    let d = duration_to_nanos(delay);
                    assert!(d >= 1_000_000_000 && d <= (prev * 3).min(20_000_000_000));
                    prev = d;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let cfg = Config::new()
            .max_attempts(10)
            .jitter(Jitter::Full)
            .backoff(Backoff::exponential(Duration::from_millis(100)));
        let run = |seed| {
            let mut s = RetryState::new(Instant::ZERO, seed);
            core::array::from_fn::<_, 9, _>(|_| {
                s.start_attempt();
                s.decide(&cfg, Instant::ZERO, None, NONE)
            })
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn clock_going_backwards_and_extremes_do_not_panic() {
        let cfg = Config::new()
            .max_attempts(u32::MAX)
            .max_elapsed(Duration::from_secs(10))
            .backoff(Backoff::exponential(Duration::MAX).multiplier(u32::MAX));
        let mut s = RetryState::new(secs(100), 0);
        s.start_attempt();
        // Clock stepped back to before the start: the delay is still computed, no panic.
        let _ = s.decide(&cfg, secs(1), None, NONE);
        let mut s = RetryState::new(Instant::MAX, 0);
        s.start_attempt();
        let _ = s.decide(
            &cfg,
            Instant::MAX,
            Some(Duration::MAX),
            Deadline::at(Instant::MAX),
        );
        // Unvalidated config: zero attempts simply stops.
        let mut s = RetryState::new(Instant::ZERO, 0);
        assert_eq!(
            s.decide(&Config::new().max_attempts(0), Instant::ZERO, None, NONE),
            Decision::Stop(Stop::MaxAttempts)
        );
        for _ in 0..3 {
            s.start_attempt();
        }
        let mut s = RetryState {
            attempts: u32::MAX - 1,
            ..s
        };
        s.start_attempt();
        s.start_attempt();
        assert_eq!(s.attempts(), u32::MAX);
    }
}
