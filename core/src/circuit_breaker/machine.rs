//! The pure state machine: the plain store of the breaker's state, run by the same driver
//! as the shared form.

use super::config::{Config, Policy};
use super::driver::{self, Store};
use super::error::{ConfigError, Rejected, SnapshotError, TransitionError};
use super::open_time::{ConfiguredOpenTime, OpenTime};
use super::state::{Breaker, Manual, Mode, changed_rules, validate};
use super::window::{Sample, Window, WindowStats};
use super::{Metrics, Outcome, Snapshot, State};
use crate::time::Instant;
use core::num::NonZeroU64;

// ===== Machine =====

/// The pass a [`Machine`] gives an admitted call: hand it back with the outcome.
///
/// Not `Clone`: each admitted call is settled once. A ticket that is never handed back holds
/// its half-open probe slot: use [`Machine::release`] for a call that was abandoned.
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
/// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
/// let ticket = m.try_acquire(Instant::ZERO).unwrap();
/// assert!(!ticket.is_probe());
/// m.on_success(ticket, Instant::ZERO);
/// ```
#[derive(PartialEq, Eq)]
#[must_use = "hand the ticket back with on_success / on_failure / release"]
pub struct Ticket {
    /// The generation admitted in (low 32 bits), whether a probe (bit 32), and bit 63 always
    /// set (the niche of `Option<Ticket>`). One word, not a `u32` and a `bool`: a ticket built
    /// field by field and read back whole stalled store forwarding on the closed path (README
    /// row "breaker closed path vs recloser": 2x the time at the same instruction count).
    tag: NonZeroU64,
    pub(crate) started: Instant,
}

impl core::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ticket")
            .field("generation", &self.generation())
            .field("probe", &self.is_probe())
            .field("started", &self.started)
            .finish()
    }
}

impl Ticket {
    /// A ticket of a call admitted in `generation`, a half-open probe or not, started at
    /// `started` (or [`Instant::ZERO`] when calls are not timed).
    #[inline(always)]
    pub(crate) const fn new(generation: u32, probe: bool, started: Instant) -> Ticket {
        let tag = 1 << 63 | (probe as u64) << 32 | generation as u64;
        Ticket {
            // Bit 63 is set: never zero, the `None` arm cannot happen.
            tag: match NonZeroU64::new(tag) {
                Some(t) => t,
                None => NonZeroU64::MAX,
            },
            started,
        }
    }

    /// The generation of the state the call was admitted in.
    #[inline(always)]
    pub(crate) const fn generation(&self) -> u32 {
        self.tag.get() as u32
    }

    /// `true` if this call is a half-open probe.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// assert!(!t.is_probe());
    /// # m.release(t);
    /// ```
    #[inline(always)]
    pub fn is_probe(&self) -> bool {
        self.tag.get() & 1 << 32 != 0
    }
}

/// The pure circuit breaker: `&mut self`, no clock, no atomics. `now` is an argument of every
/// call that needs time; an instant earlier than a previous one is read as "no time passed".
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
/// use core::time::Duration;
///
/// let mut m = Machine::<NoWindow>::new(
///     Config::new().consecutive_failures(2).open_for(Duration::from_secs(5)),
/// )
/// .unwrap();
/// let t0 = Instant::from_secs(1);
/// for _ in 0..2 {
///     let ticket = m.try_acquire(t0).unwrap();
///     m.on_failure(ticket, t0);
/// }
/// assert_eq!(m.state(), State::Open);
/// assert_eq!(m.try_acquire(t0).unwrap_err().retry_at, Some(Instant::from_secs(6)));
///
/// let probe = m.try_acquire(Instant::from_secs(6)).unwrap();
/// assert!(probe.is_probe());
/// assert_eq!(m.state(), State::HalfOpen);
/// m.on_success(probe, Instant::from_secs(6));
/// assert_eq!(m.state(), State::Closed);
/// ```
///
/// `W` is the [`Window`] kind and `G` the [`OpenTime`] (the configured growth unless
/// [`with_open_time`](Machine::with_open_time) sets a function).
pub struct Machine<W: Window = super::NoWindow, G = ConfiguredOpenTime> {
    policy: Policy,
    rules: W::Rules,
    state: Breaker,
    window: W::State,
    open: G,
}

impl<W: Window, G> core::fmt::Debug for Machine<W, G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine")
            .field("policy", &self.policy)
            .field("rules", &self.rules)
            .field("state", &self.state)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl<W: Window> Machine<W> {
    /// A closed breaker.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration the breaker cannot run with.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, ConfigError, Machine, NoWindow};
    /// assert_eq!(Machine::<NoWindow>::new(Config::new().failure_rate(50)).unwrap_err(), ConfigError::NoWindow);
    /// ```
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        let (policy, rules) = validate::<W>(&cfg)?;
        Ok(Machine {
            policy,
            rules,
            state: Breaker::CLOSED,
            window: W::new_state(),
            open: ConfiguredOpenTime,
        })
    }
}

impl<W: Window, G: OpenTime> Machine<W, G> {
    /// The same machine, taking its open times from `open` (Polly's break-duration
    /// generator): a function of the [`Trip`](super::Trip) that sees the consecutive openings
    /// and the figures that tripped the breaker. See [`OpenTime`] for what is done with its
    /// answer (taken as it is, saturating; zero probes at once).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, CountWindow, Machine, Trip}};
    /// use core::time::Duration;
    /// // Open 1 s per percent of failures in the window: 75 % opens for 75 s.
    /// let mut m = Machine::<CountWindow<4>>::new(Config::new().failure_rate(50).minimum_calls(4))
    ///     .unwrap()
    ///     .with_open_time(|t: &Trip| Duration::from_secs(t.failure_basis_points().unwrap_or(0) as u64 / 100));
    /// for ok in [false, true, false, false] {
    ///     let t = m.try_acquire(Instant::ZERO).unwrap();
    ///     if ok { m.on_success(t, Instant::ZERO) } else { m.on_failure(t, Instant::ZERO) }
    /// }
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, Some(Instant::from_secs(75)));
    /// ```
    pub fn with_open_time<G2: OpenTime>(self, open: G2) -> Machine<W, G2> {
        Machine {
            policy: self.policy,
            rules: self.rules,
            state: self.state,
            window: self.window,
            open,
        }
    }

    /// The [`OpenTime`] it opens with.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, ConfiguredOpenTime, Machine, NoWindow};
    /// let m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// assert_eq!(m.open_time(), &ConfiguredOpenTime);
    /// ```
    pub fn open_time(&self) -> &G {
        &self.open
    }

    /// The configuration it runs with. The machine stores a compact form, so settings its
    /// window kind does not use (the rate settings, for [`NoWindow`](super::NoWindow)) read
    /// as their defaults, and durations of `u64::MAX` nanoseconds or more as
    /// [`Duration::MAX`](core::time::Duration::MAX).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{Config, Machine, NoWindow};
    /// let cfg = Config::new().consecutive_failures(2);
    /// assert_eq!(Machine::<NoWindow>::new(cfg).unwrap().config(), cfg);
    /// ```
    pub fn config(&self) -> Config {
        Config::from_parts(&self.policy, W::rate_rules(&self.rules))
    }

    /// Changes the rate thresholds: the failure rate and the slow-call rate (percent, `None`:
    /// that rate does not trip) and the minimum number of calls, keeping the window and the
    /// state; see [`CircuitBreaker::set_rate_thresholds`](super::CircuitBreaker::set_rate_thresholds).
    ///
    /// # Errors
    ///
    /// As [`CircuitBreaker::set_rate_thresholds`](super::CircuitBreaker::set_rate_thresholds);
    /// the machine is then left as it was.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, CountWindow, Machine, State}};
    /// let mut m = Machine::<CountWindow<4>>::new(Config::new().failure_rate(100).minimum_calls(2)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// m.set_rate_thresholds(Some(100), None, 1).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_success(t, Instant::ZERO); // 1 of 2 failed: below 100 %
    /// assert_eq!(m.state(), State::Closed);
    /// m.set_rate_thresholds(Some(50), None, 1).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO); // 2 of 3: over 50 %
    /// assert_eq!(m.state(), State::Open);
    /// ```
    pub fn set_rate_thresholds(
        &mut self,
        failure_rate: Option<u8>,
        slow_rate: Option<u8>,
        minimum_calls: u32,
    ) -> Result<(), ConfigError> {
        let cfg = self
            .config()
            .with_rates(failure_rate, slow_rate, minimum_calls);
        self.rules = changed_rules::<W>(&self.rules, &cfg)?;
        Ok(())
    }

    /// Changes the consecutive failures that open the breaker (`None`: off), keeping the run
    /// of failures; see [`CircuitBreaker::set_consecutive_failures`](super::CircuitBreaker::set_consecutive_failures).
    ///
    /// # Errors
    ///
    /// As [`CircuitBreaker::set_consecutive_failures`](super::CircuitBreaker::set_consecutive_failures).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(3)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// m.set_consecutive_failures(Some(2)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state(), State::Open);
    /// ```
    pub fn set_consecutive_failures(&mut self, n: Option<u32>) -> Result<(), ConfigError> {
        let mut cfg = self.config();
        cfg.consecutive_failures = n;
        cfg.validate(W::MEASURES)?;
        self.policy = self.policy.with_run_time(&cfg);
        Ok(())
    }

    /// Changes the open time (the next opening uses it); see
    /// [`CircuitBreaker::set_open_for`](super::CircuitBreaker::set_open_for).
    ///
    /// # Errors
    ///
    /// As [`CircuitBreaker::set_open_for`](super::CircuitBreaker::set_open_for).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, ConfigError, Machine, NoWindow}};
    /// use core::time::Duration;
    /// let cfg = Config::new().consecutive_failures(1).open_for(Duration::from_secs(1)).open_growth(2, Duration::from_secs(8));
    /// let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    /// assert_eq!(m.set_open_for(Duration::from_secs(9)), Err(ConfigError::OpenMaxBelowBase));
    /// m.set_open_for(Duration::from_secs(3)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, Some(Instant::from_secs(3)));
    /// ```
    pub fn set_open_for(&mut self, d: core::time::Duration) -> Result<(), ConfigError> {
        let cfg = self.config().open_for(d);
        cfg.validate(W::MEASURES)?;
        self.policy = self.policy.with_run_time(&cfg);
        Ok(())
    }

    /// Changes the slow-call threshold, keeping the window and the state; see
    /// [`CircuitBreaker::set_slow_threshold`](super::CircuitBreaker::set_slow_threshold).
    ///
    /// # Errors
    ///
    /// As [`CircuitBreaker::set_slow_threshold`](super::CircuitBreaker::set_slow_threshold).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, ConfigError, CountWindow, Field, Machine}};
    /// use core::time::Duration;
    /// let mut m = Machine::<CountWindow<4>>::new(Config::new().failure_rate(50)).unwrap();
    /// assert_eq!(m.set_slow_threshold(Duration::from_secs(1)), Err(ConfigError::FixedAtRunTime(Field::SlowRate)));
    /// ```
    pub fn set_slow_threshold(
        &mut self,
        threshold: core::time::Duration,
    ) -> Result<(), ConfigError> {
        let cfg = self.config();
        let Some(percent) = cfg.slow_rate else {
            return Err(ConfigError::FixedAtRunTime(super::Field::SlowRate));
        };
        self.rules = changed_rules::<W>(&self.rules, &cfg.slow_calls(threshold, percent))?;
        Ok(())
    }

    /// The state as the last transition left it. An open breaker whose time is up stays
    /// [`State::Open`] here until a call arrives (no timer runs); [`state_at`](Machine::state_at)
    /// tells what that call will find.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{Config, Machine, NoWindow, State};
    /// let m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2)).unwrap();
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn state(&self) -> State {
        self.state.public()
    }

    /// The state a call at `now` will find: an open breaker whose open time is up is
    /// [`State::HalfOpen`] (that call is a probe), a half-open breaker past its
    /// [maximum time](Config::max_half_open) is [`State::Open`]. Changes nothing.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// use core::time::Duration;
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1).open_for(Duration::from_secs(5))).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state_at(Instant::from_millis(4_999)), State::Open);
    /// assert_eq!(m.state_at(Instant::from_secs(5)), State::HalfOpen);
    /// assert_eq!(m.state(), State::Open); // no call has arrived yet
    /// ```
    pub fn state_at(&self, now: Instant) -> State {
        self.state.public_at(&self.policy, &mut { now })
    }

    /// Asks to make a call at `now`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open (with the instant it could pass), forced open, or
    /// half-open with every probe slot taken.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert!(m.try_acquire(Instant::ZERO).is_err());
    /// ```
    pub fn try_acquire(&mut self, now: Instant) -> Result<Ticket, Rejected> {
        let (mut store, policy, rules, open) = self.parts();
        driver::acquire(&mut store, (policy, open), rules, &mut { now })
    }

    /// The call of `ticket` succeeded at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_success(t, Instant::from_millis(3));
    /// # assert_eq!(m.state(), bulwark::circuit_breaker::State::Closed);
    /// ```
    pub fn on_success(&mut self, ticket: Ticket, now: Instant) {
        self.record(ticket, Outcome::Success, now)
    }

    /// The call of `ticket` failed at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state(), State::Open);
    /// ```
    pub fn on_failure(&mut self, ticket: Ticket, now: Instant) {
        self.record(ticket, Outcome::Failure, now)
    }

    /// Abandons the call of `ticket` without an outcome (cancelled): a probe slot is given
    /// back, nothing is recorded.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.release(t);
    /// assert_eq!(m.metrics(Instant::ZERO).window.calls, 0);
    /// ```
    pub fn release(&mut self, ticket: Ticket) {
        // Giving a slot back reads no time.
        driver::release(&mut self.parts().0, ticket, &mut { Instant::ZERO });
    }

    /// Settles the call of `ticket` with `outcome` at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Outcome, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.record(t, Outcome::Ignored, Instant::ZERO); // neither a success nor a failure
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        let (mut store, policy, rules, open) = self.parts();
        driver::record(&mut store, (policy, open), rules, ticket, outcome, &mut {
            now
        });
    }

    /// Forces the breaker open until another mode is chosen; calls are rejected with no
    /// retry instant.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.force_open();
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, None);
    /// ```
    pub fn force_open(&mut self) {
        // A change of mode reads no time.
        driver::force(&mut self.parts().0, Mode::ForcedOpen, &mut {
            Instant::ZERO
        });
    }

    /// Forces the breaker closed: every call passes, nothing is measured (the window is
    /// emptied on entering).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.disable();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state(), State::Disabled);
    /// ```
    pub fn disable(&mut self) {
        // A change of mode reads no time.
        driver::force(&mut self.parts().0, Mode::Disabled, &mut { Instant::ZERO });
    }

    /// Lets every call pass while still measuring, from an empty window (entering the mode
    /// empties it); never opens.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.metrics_only();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!((m.state(), m.metrics(Instant::ZERO).consecutive_failures), (State::MetricsOnly, 0));
    /// ```
    pub fn metrics_only(&mut self) {
        // A change of mode reads no time.
        driver::force(&mut self.parts().0, Mode::MetricsOnly, &mut {
            Instant::ZERO
        });
    }

    /// Back to a fresh closed breaker (window emptied, open-time growth reset), from any
    /// state: closing by hand. Idempotent: a breaker already fresh and closed only has its
    /// window emptied (its calls in flight still count).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.force_open();
    /// m.reset();
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn reset(&mut self) {
        driver::reset(&mut self.parts().0, &mut { Instant::ZERO });
    }

    /// Opens the breaker by hand for `d` from `now` (resilience4j's `transitionToOpenState`,
    /// with the duration chosen by the operator). The open time's growth is not advanced:
    /// only trips count as consecutive openings.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] in [`State::MetricsOnly`] (that mode never opens).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State, TransitionError}};
    /// use core::time::Duration;
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(5)).unwrap();
    /// m.open_for(Duration::from_secs(90), Instant::from_secs(10)).unwrap();
    /// assert_eq!(m.try_acquire(Instant::from_secs(10)).unwrap_err().retry_at, Some(Instant::from_secs(100)));
    /// m.metrics_only();
    /// assert_eq!(
    ///     m.open_for(Duration::from_secs(1), Instant::from_secs(10)),
    ///     Err(TransitionError::Illegal { from: State::MetricsOnly, to: State::Open })
    /// );
    /// ```
    pub fn open_for(
        &mut self,
        d: core::time::Duration,
        now: Instant,
    ) -> Result<(), TransitionError> {
        let until = now.saturating_add(d);
        driver::manual(&mut self.parts().0, Manual::Open { until }, &mut { now })
    }

    /// Opens the breaker by hand until `at`; see [`open_for`](Machine::open_for). An instant
    /// already past opens with the time up: the next call probes.
    ///
    /// # Errors
    ///
    /// As [`open_for`](Machine::open_for).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(5)).unwrap();
    /// m.open_until(Instant::from_secs(60)).unwrap();
    /// assert_eq!(m.state_at(Instant::from_secs(59)), State::Open);
    /// assert!(m.try_acquire(Instant::from_secs(60)).unwrap().is_probe());
    /// ```
    pub fn open_until(&mut self, at: Instant) -> Result<(), TransitionError> {
        // The end is given: the transition reads no other time.
        driver::manual(&mut self.parts().0, Manual::Open { until: at }, &mut { at })
    }

    /// Half-open at `now`, by hand: the next call is a probe (resilience4j's
    /// `transitionToHalfOpenState`). Made as an open time that ends at `now`, so
    /// [`state_at`](Machine::state_at) reports [`State::HalfOpen`] at once; half-open's
    /// [maximum time](Config::max_half_open) counts from that call. A breaker already
    /// half-open (or open with its time up) is left as it is.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] from [`State::Closed`] (nothing to probe) and
    /// [`State::MetricsOnly`].
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State, TransitionError}};
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(5)).unwrap();
    /// let now = Instant::from_secs(1);
    /// assert_eq!(m.half_open(now), Err(TransitionError::Illegal { from: State::Closed, to: State::HalfOpen }));
    /// m.force_open();
    /// m.half_open(now).unwrap();
    /// assert_eq!(m.state_at(now), State::HalfOpen);
    /// let probe = m.try_acquire(now).unwrap();
    /// m.on_success(probe, now);
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn half_open(&mut self, now: Instant) -> Result<(), TransitionError> {
        driver::manual(&mut self.parts().0, Manual::HalfOpen { now }, &mut { now })
    }

    /// The state, the run of failures and the window as of `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.metrics(Instant::ZERO).consecutive_failures, 1);
    /// ```
    pub fn metrics(&self, now: Instant) -> Metrics {
        let state = self.state_at(now);
        let window = W::stats(&self.window, &self.rules, now);
        let times = W::times(&self.window, &self.rules, now, window.slow);
        self.state.metrics(state, window, times)
    }

    /// The durable state as of `now` (see [`Snapshot`]).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// assert_eq!(m.snapshot(Instant::ZERO).state, State::Closed);
    /// ```
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.state.snapshot(now)
    }

    /// Restores a [`Snapshot`] taken earlier (perhaps by another process), at `now` on this
    /// machine's clock. The window starts empty. The time left open is cut to the longest
    /// open time this configuration can give.
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] for a snapshot this breaker could not have written (a run of
    /// failures outside the closed state; time left open in another state). A closed run at
    /// or above the threshold is restored as it is (a threshold lowered at run time leaves
    /// one): the next failure trips the breaker. The breaker is then left as it was.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Snapshot, SnapshotError, State}};
    /// # use core::time::Duration;
    /// let cfg = Config::new().consecutive_failures(3).open_for(Duration::from_secs(30));
    /// let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    /// let s = Snapshot { state: State::Open, consecutive_failures: 0, openings: 1, open_remaining: Duration::MAX };
    /// m.restore(s, Instant::ZERO).unwrap();
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, Some(Instant::from_secs(30)));
    ///
    /// let bad = Snapshot { state: State::HalfOpen, consecutive_failures: 7, openings: 1, open_remaining: Duration::ZERO };
    /// assert_eq!(m.restore(bad, Instant::ZERO), Err(SnapshotError::ConsecutiveFailures));
    /// assert_eq!(m.state(), State::Open); // unchanged
    /// ```
    pub fn restore(&mut self, s: Snapshot, now: Instant) -> Result<(), SnapshotError> {
        let (mut store, policy, _, open) = self.parts();
        driver::restore(&mut store, (policy, open), s, &mut { now })
    }

    /// The plain store and the settings the driver runs it with.
    fn parts(&mut self) -> (Plain<'_, W>, &Policy, &W::Rules, &G) {
        let Machine {
            policy,
            rules,
            state,
            window,
            open,
        } = self;
        (Plain { state, window }, policy, rules, open)
    }
}

/// The machine's store: its fields, changed in place.
struct Plain<'a, W: Window> {
    state: &'a mut Breaker,
    window: &'a mut W::State,
}

impl<W: Window> Store for Plain<'_, W> {
    type Window = W;
    type Now = Instant;

    fn load(&mut self, _: &mut Instant) -> Breaker {
        *self.state
    }

    fn update<R>(
        &mut self,
        now: &mut Instant,
        mut f: impl FnMut(Breaker, &mut Instant) -> (R, Breaker),
    ) -> (R, Option<(Breaker, Breaker)>) {
        let from = *self.state;
        let (r, to) = f(from, now);
        *self.state = to;
        (r, (to != from).then_some((from, to)))
    }

    fn record_window(&mut self, rules: &W::Rules, now: &mut Instant, s: Sample) -> WindowStats {
        W::record(self.window, rules, *now, s)
    }

    fn record_timed(&mut self, rules: &W::Rules, now: &mut Instant, s: Sample, micros: u32) {
        W::record_timed(self.window, rules, *now, s, micros)
    }

    fn reset_window(&mut self) {
        W::reset(self.window);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CountWindow, HalfOpenVerdict, NoWindow, TimeWindow};
    use super::*;
    use core::time::Duration;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn fail<W: Window>(m: &mut Machine<W>, now: Instant) {
        let t = m.try_acquire(now).unwrap();
        m.on_failure(t, now);
    }

    fn succeed<W: Window>(m: &mut Machine<W>, now: Instant) {
        let t = m.try_acquire(now).unwrap();
        m.on_success(t, now);
    }

    #[test]
    fn consecutive_failures_trip_on_the_nth_and_success_resets() {
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(3)).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(1));
        succeed(&mut m, at(2));
        fail(&mut m, at(3));
        fail(&mut m, at(4));
        assert_eq!(m.state(), State::Closed);
        fail(&mut m, at(5));
        assert_eq!(m.state(), State::Open);
        assert_eq!(
            m.try_acquire(at(6)),
            Err(Rejected::new(Some(at(30_005)), at(6)))
        );
    }

    #[test]
    fn count_window_rate_waits_for_minimum_calls() {
        let cfg = Config::new().failure_rate(50).minimum_calls(4);
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(0));
        fail(&mut m, at(0)); // 100 % but only 3 calls: not known yet
        assert_eq!(m.state(), State::Closed);
        succeed(&mut m, at(0)); // 3 of 4 = 75 % >= 50 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn rate_exactly_at_threshold_trips() {
        let cfg = Config::new().failure_rate(50).minimum_calls(2);
        let mut m = Machine::<CountWindow<2>>::new(cfg).unwrap();
        succeed(&mut m, at(0));
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn slow_calls_trip_even_when_successful() {
        let cfg = Config::new()
            .slow_calls(Duration::from_millis(100), 100)
            .minimum_calls(2);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        let t = m.try_acquire(at(0)).unwrap();
        m.on_success(t, at(100)); // exactly the threshold: slow
        let t = m.try_acquire(at(100)).unwrap();
        m.on_success(t, at(150)); // fast
        assert_eq!(m.state(), State::Closed);
        let t = m.try_acquire(at(150)).unwrap();
        m.on_success(t, at(300));
        assert_eq!(m.metrics(at(300)).window.slow, 2);
        assert_eq!(m.state(), State::Closed); // 2 of 3 slow < 100 %
        let cfg = Config::new()
            .slow_calls(Duration::from_millis(100), 60)
            .minimum_calls(3);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        for i in 0..2u64 {
            let t = m.try_acquire(at(i * 1000)).unwrap();
            m.on_success(t, at(i * 1000 + 500));
        }
        succeed(&mut m, at(5000)); // 2 of 3 = 66 % >= 60 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn time_window_forgets_old_failures() {
        let cfg = Config::new()
            .failure_rate(50)
            .minimum_calls(3)
            .time_window(Duration::from_secs(10));
        let mut m = Machine::<TimeWindow<10>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(500));
        // 10 s later both failures have left the window.
        succeed(&mut m, at(10_000));
        succeed(&mut m, at(10_000));
        fail(&mut m, at(10_001));
        assert_eq!(m.state(), State::Closed); // 1 of 3: the two old failures are gone
        fail(&mut m, at(10_002)); // 2 of 4 = 50 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn half_open_admits_n_probes_and_needs_m_successes() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .half_open(2, 3);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p1 = m.try_acquire(at(1000)).unwrap();
        let p2 = m.try_acquire(at(1000)).unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(
            m.try_acquire(at(1000)),
            Err(Rejected::new(Some(at(1000)), at(1000)))
        );
        m.on_success(p1, at(1001));
        let p3 = m.try_acquire(at(1001)).unwrap(); // the slot came back
        m.on_success(p2, at(1002));
        assert_eq!(m.state(), State::HalfOpen);
        m.on_success(p3, at(1003));
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn failed_probe_reopens_with_growing_time() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(2, Duration::from_secs(3));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        assert_eq!(m.try_acquire(at(0)).unwrap_err().retry_at, Some(at(1000)));
        fail(&mut m, at(1000)); // probe fails: 2 s
        assert_eq!(
            m.try_acquire(at(1000)).unwrap_err().retry_at,
            Some(at(3000))
        );
        fail(&mut m, at(3000)); // 4 s, capped at 3 s
        assert_eq!(
            m.try_acquire(at(3000)).unwrap_err().retry_at,
            Some(at(6000))
        );
        succeed(&mut m, at(6000)); // closes: growth starts over
        fail(&mut m, at(7000));
        assert_eq!(
            m.try_acquire(at(7000)).unwrap_err().retry_at,
            Some(at(8000))
        );
    }

    #[test]
    fn half_open_past_its_maximum_time_reopens_and_late_probes_are_dropped() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(2, Duration::from_secs(60))
            .max_half_open(Duration::from_secs(5));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0)); // open until 1 s
        let hung = m.try_acquire(at(1000)).unwrap(); // the probe hangs
        // Its slot is taken (a call may pass once it ends: at once, for all we know);
        // half-open lasts from its first probe, 1 s, until 1 s + 5 s.
        assert_eq!(
            m.try_acquire(at(5999)),
            Err(Rejected::new(Some(at(5999)), at(5999)))
        );
        // At 6 s the breaker re-opens: the second opening, 2 s.
        assert_eq!(
            m.try_acquire(at(6000)).unwrap_err().retry_at,
            Some(at(8000))
        );
        assert_eq!(m.state(), State::Open);
        m.on_success(hung, at(6500)); // late: dropped
        assert_eq!(m.state(), State::Open);
        // A probe that ends in time decides as usual.
        let p = m.try_acquire(at(8000)).unwrap();
        m.on_success(p, at(12_999)); // half-open until 8 s + 5 s
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn a_probe_ending_after_the_maximum_time_reopens_instead_of_closing() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .max_half_open(Duration::from_secs(5));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(3000)).unwrap(); // the first call comes late: 3 s
        m.on_success(p, at(8000)); // 3 s + 5 s: too late to close
        assert_eq!(m.state(), State::Open);
        assert_eq!(
            m.try_acquire(at(8000)).unwrap_err().retry_at,
            Some(at(9000))
        );
        // Without a maximum, the same slow probe closes the breaker.
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(30_000)).unwrap();
        m.on_success(p, at(3_600_000));
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn config_round_trips_through_the_stored_form() {
        let full = Config::new()
            .consecutive_failures(7)
            .failure_rate(40)
            .slow_calls(Duration::from_millis(250), 70)
            .minimum_calls(5)
            .time_window(Duration::from_secs(9))
            .open_for(Duration::from_secs(3))
            .open_growth(3, Duration::from_secs(100))
            .open_jitter(15)
            .half_open(4, 2)
            .half_open_verdict(HalfOpenVerdict::Rate)
            .max_half_open(Duration::from_secs(20))
            .seed(99);
        assert_eq!(
            Machine::<CountWindow<10>>::new(full).unwrap().config(),
            full
        );
        assert_eq!(Machine::<TimeWindow<3>>::new(full).unwrap().config(), full);
        // Without a window the rate settings are not stored: they read as their defaults.
        let plain = Config::new()
            .consecutive_failures(2)
            .minimum_calls(7)
            .time_window(Duration::from_secs(5));
        assert_eq!(
            Machine::<NoWindow>::new(plain).unwrap().config(),
            Config::new().consecutive_failures(2)
        );
        // Durations of u64::MAX nanoseconds or more read back as Duration::MAX.
        let long = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::MAX);
        assert_eq!(Machine::<NoWindow>::new(long).unwrap().config(), long);
        let past_u64 = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(u64::MAX / 1_000_000_000 + 1));
        let read = Machine::<NoWindow>::new(past_u64).unwrap().config();
        assert_eq!(
            (read.open_base, read.open_max),
            (Duration::MAX, Duration::MAX)
        );
    }

    #[test]
    fn released_probe_gives_its_slot_back() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::ZERO);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(0)).unwrap();
        assert!(m.try_acquire(at(0)).is_err());
        m.release(p);
        let p = m.try_acquire(at(0)).unwrap();
        let t = Ticket::new(p.generation(), true, at(0));
        m.record(p, Outcome::Ignored, at(0));
        assert_eq!(m.state(), State::HalfOpen);
        m.on_success(t, at(0)); // hand-built duplicate: probes saturate, no underflow
    }

    #[test]
    fn late_outcomes_are_dropped() {
        let cfg = Config::new().consecutive_failures(1);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        let early = m.try_acquire(at(0)).unwrap();
        fail(&mut m, at(1)); // opens
        m.reset(); // closed again, new generation
        m.on_failure(early, at(2)); // from the old generation: not counted against the new state
        assert_eq!(m.state(), State::Closed);
        assert_eq!(m.metrics(at(2)).consecutive_failures, 0);
    }

    #[test]
    fn rate_verdict_judges_all_probes() {
        let cfg = Config::new()
            .failure_rate(50)
            .minimum_calls(1)
            .open_for(Duration::from_secs(1))
            .half_open(4, 2)
            .half_open_verdict(HalfOpenVerdict::Rate);
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let probes: [Ticket; 4] = core::array::from_fn(|_| m.try_acquire(at(1000)).unwrap());
        assert!(m.try_acquire(at(1000)).is_err()); // exactly 4 in all
        let [a, b, c, d] = probes;
        m.on_failure(a, at(1000));
        assert_eq!(m.state(), State::HalfOpen); // the first failure does not decide
        m.on_success(b, at(1000));
        m.on_success(c, at(1000));
        m.on_success(d, at(1000));
        assert_eq!(m.state(), State::Closed); // 1 of 4 < 50 %
    }

    #[test]
    fn clock_backwards_never_wedges() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(50_000));
        // The clock steps back: still open, same retry instant, no panic.
        assert_eq!(m.try_acquire(at(0)).unwrap_err().retry_at, Some(at(60_000)));
        let p = m.try_acquire(at(60_000)).unwrap();
        m.on_success(p, at(1)); // ends "before" it started: zero duration, not slow
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn huge_instants_saturate() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::MAX);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, Instant::MAX);
        assert_eq!(m.try_acquire(Instant::MAX).map(|t| t.is_probe()), Ok(true));
    }

    #[test]
    fn modes_and_reset() {
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
        m.metrics_only();
        fail(&mut m, at(0));
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::MetricsOnly);
        m.force_open();
        assert_eq!(m.try_acquire(at(0)), Err(Rejected::new(None, at(0))));
        m.disable();
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Disabled); // a failure changes nothing
        m.reset();
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn snapshot_round_trip_keeps_growth_and_remaining_time() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(10, Duration::from_secs(1000));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(1000)); // second opening: 10 s
        let s = Snapshot::from_bytes(&m.snapshot(at(4000)).to_bytes()).unwrap();
        assert_eq!((s.openings, s.open_remaining), (2, Duration::from_secs(7)));
        let mut r = Machine::<NoWindow>::new(cfg).unwrap();
        r.restore(s, at(100)).unwrap();
        assert_eq!(r.try_acquire(at(100)).unwrap_err().retry_at, Some(at(7100)));
        fail(&mut r, at(7100)); // the probe fails: third opening, 100 s
        assert_eq!(
            r.try_acquire(at(7100)).unwrap_err().retry_at,
            Some(at(107_100))
        );
    }

    /// resilience4j's table of legal transitions (`CircuitBreaker.StateTransition`): an
    /// operator can open from closed, half-open, open, forced open and disabled, go
    /// half-open from open, forced open and disabled, but not from closed; metrics-only
    /// never opens. Each refusal names both states and changes nothing.
    #[test]
    fn manual_transitions_follow_resilience4j_legal_table() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(30));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        let illegal = |from, to| Err(TransitionError::Illegal { from, to });
        assert_eq!(m.half_open(at(0)), illegal(State::Closed, State::HalfOpen));
        assert_eq!(m.state(), State::Closed);

        // Closed -> open for 90 s: the operator's duration, not the configured 30 s.
        assert_eq!(m.open_for(Duration::from_secs(90), at(1_000)), Ok(()));
        assert_eq!(
            m.try_acquire(at(1_000)),
            Err(Rejected::new(Some(at(91_000)), at(1_000)))
        );
        // Open -> half-open now: the next call is a probe.
        assert_eq!(m.half_open(at(2_000)), Ok(()));
        assert_eq!(m.state_at(at(2_000)), State::HalfOpen);
        let probe = m.try_acquire(at(2_000)).unwrap();
        assert!(probe.is_probe());
        // Half-open -> half-open changes nothing: the probe still decides.
        assert_eq!(m.half_open(at(2_001)), Ok(()));
        m.on_failure(probe, at(2_500));
        // A failed probe opens for the configured time; the manual opening did not count as
        // a consecutive opening (no growth configured here anyway).
        assert_eq!(
            m.try_acquire(at(2_500)).unwrap_err().retry_at,
            Some(at(32_500))
        );
        // Forced open -> open until an instant; disabled -> half-open.
        m.force_open();
        assert_eq!(m.open_until(at(40_000)), Ok(()));
        assert_eq!(m.state_at(at(39_999)), State::Open);
        m.disable();
        assert_eq!(m.half_open(at(3_000)), Ok(()));
        assert!(m.try_acquire(at(3_000)).unwrap().is_probe());
        // Metrics-only refuses both.
        m.metrics_only();
        assert_eq!(
            m.open_for(Duration::from_secs(1), at(4_000)),
            illegal(State::MetricsOnly, State::Open)
        );
        assert_eq!(
            m.half_open(at(4_000)),
            illegal(State::MetricsOnly, State::HalfOpen)
        );
        assert_eq!(m.state(), State::MetricsOnly);
    }

    /// Polly's `Reset()` and resilience4j's `reset()` close from any state; bulwark's reset
    /// is idempotent: on a breaker already fresh and closed it changes nothing but the
    /// window, so a call admitted before the second reset still counts.
    #[test]
    fn reset_is_idempotent() {
        let cfg = Config::new()
            .consecutive_failures(2)
            .failure_rate(100)
            .minimum_calls(3);
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        m.reset();
        assert_eq!(m.metrics(at(0)).consecutive_failures, 0);
        let t = m.try_acquire(at(1)).unwrap();
        m.reset();
        m.reset();
        m.on_failure(t, at(2)); // same generation: counted
        assert_eq!(m.metrics(at(2)).consecutive_failures, 1);
        assert_eq!(m.metrics(at(2)).window.calls, 1);
        // A reset of a breaker with a run of failures starts a new generation.
        let t = m.try_acquire(at(3)).unwrap();
        m.reset();
        m.on_failure(t, at(4)); // late: dropped
        assert_eq!(m.metrics(at(4)).consecutive_failures, 0);
        assert_eq!(m.metrics(at(4)).window.calls, 0);
    }

    /// Polly's `CircuitState` and gobreaker's `State()` report half-open once the break
    /// has elapsed, with no timer; resilience4j (without its automatic transition) keeps
    /// reporting OPEN until a call arrives. bulwark follows Polly and gobreaker, in both
    /// forms, and makes no transition until that call.
    #[test]
    fn state_is_time_driven_without_a_timer() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10))
            .max_half_open(Duration::from_secs(5));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(1_000));
        assert_eq!(m.state_at(at(10_999)), State::Open);
        assert_eq!(m.state_at(at(11_000)), State::HalfOpen);
        assert_eq!(m.metrics(at(11_000)).state, State::HalfOpen);
        assert_eq!(m.state(), State::Open); // nothing changed yet
        let probe = m.try_acquire(at(12_000)).unwrap();
        // Half-open since 12 s, at most 5 s: a call at 17 s finds it open again.
        assert_eq!(m.state_at(at(16_999)), State::HalfOpen);
        assert_eq!(m.state_at(at(17_000)), State::Open);
        m.release(probe);

        let clock = crate::MockClock::new();
        clock.set(at(1_000));
        let b = super::super::CircuitBreaker::new(cfg, &clock).unwrap();
        b.try_acquire().unwrap().failure();
        clock.set(at(10_999));
        assert_eq!(b.state(), State::Open);
        clock.set(at(11_000));
        assert_eq!(
            (b.state(), b.metrics().state),
            (State::HalfOpen, State::HalfOpen)
        );
        assert_eq!(b.snapshot().state, State::Open); // the stored state
        clock.set(at(12_000));
        let probe = b.try_acquire().unwrap();
        clock.set(at(17_000));
        assert_eq!(b.state(), State::Open);
        drop(probe);
    }

    /// resilience4j's `transitionToMetricsOnlyState()` and `transitionToDisabledState()`
    /// start each mode with fresh metrics: entering metrics-only (or disabled) empties the
    /// window, so the figures it reports are those of the mode alone.
    #[test]
    fn metrics_only_and_disabled_start_from_an_empty_window() {
        let cfg = Config::new().failure_rate(50).minimum_calls(4);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        succeed(&mut m, at(1));
        assert_eq!(m.metrics(at(1)).window.calls, 2);
        m.metrics_only();
        assert_eq!(m.metrics(at(2)).window.calls, 0);
        fail(&mut m, at(3));
        assert_eq!(
            (
                m.metrics(at(3)).window.calls,
                m.metrics(at(3)).window.failures
            ),
            (1, 1)
        );
        m.disable();
        assert_eq!(m.metrics(at(4)).window.calls, 0);

        let clock = crate::MockClock::new();
        let b = super::super::CircuitBreaker::with_window(cfg, CountWindow::<10>, &clock).unwrap();
        b.try_acquire().unwrap().failure();
        b.metrics_only();
        assert_eq!(b.metrics().window.calls, 0);
        b.try_acquire().unwrap().failure();
        assert_eq!(b.metrics().window.failures, 1);
        b.disable();
        assert_eq!(b.metrics().window.calls, 0);
    }

    /// resilience4j publishes `CircuitBreakerOnFailureRateExceededEvent` (and the slow-call
    /// one) when a rate reaches its threshold; bulwark reports each crossing once: closed,
    /// the crossing trips (reported before the change of state); metrics-only, the rate must
    /// fall below the threshold before it is reported again.
    #[test]
    fn rate_exceeded_fires_once_per_crossing() {
        use super::super::{CircuitBreaker, Events, Exceeded, Transition};
        use core::cell::RefCell;
        type Seen = [Option<(Exceeded, u32, u32)>; 4];
        /// The crossings seen (up to 4), and the changes of state.
        #[derive(Default)]
        struct Log(RefCell<(Seen, usize)>, RefCell<u32>);
        impl Log {
            fn take(&self) -> Seen {
                core::mem::take(&mut *self.0.borrow_mut()).0
            }
        }
        impl Events for Log {
            fn on_rate_exceeded(&self, rate: Exceeded, w: WindowStats) {
                let (seen, n) = &mut *self.0.borrow_mut();
                seen[*n] = Some((rate, w.calls, w.failures));
                *n += 1;
            }
            fn on_state_change(&self, _: Transition) {
                *self.1.borrow_mut() += 1;
            }
        }
        let cfg = Config::new()
            .failure_rate(50)
            .slow_calls(Duration::from_millis(100), 50)
            .minimum_calls(2);
        let clock = crate::MockClock::new();
        let log = Log::default();
        let b = CircuitBreaker::with_window(cfg, CountWindow::<4>, &clock)
            .unwrap()
            .with_events(&log);
        b.metrics_only();
        let changes = *log.1.borrow();
        let call = |fail: bool| {
            let p = b.try_acquire().unwrap();
            if fail { p.failure() } else { p.success() }
        };
        call(true); // 1 call: not known yet
        call(true); // 2 of 2 failed: crossing
        call(true); // still over: nothing
        call(false); // 3 of 4: still over
        call(false); // 2 of 4 (the first left): still over (>=)
        call(false); // 1 of 4: below
        call(true); // 1 of 4 (another failure left): still below
        call(true); // 2 of 4: crossing again
        assert_eq!(
            log.take(),
            [
                Some((Exceeded::FailureRate, 2, 2)),
                Some((Exceeded::FailureRate, 4, 2)),
                None,
                None
            ]
        );
        assert_eq!(*log.1.borrow(), changes); // metrics-only never changes state

        // Closed: the crossing trips, reported once, then the state change.
        b.reset();
        call(false);
        clock.advance(Duration::from_millis(0));
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(150)); // slow and failed
        p.failure();
        assert_eq!(
            log.take(),
            [
                Some((Exceeded::FailureRate, 2, 1)),
                Some((Exceeded::SlowCallRate, 2, 1)),
                None,
                None
            ]
        );
        assert_eq!(b.state(), State::Open);
    }

    /// gobreaker's `MaxRequests` in half-open: at most that many requests pass per half-open
    /// episode (`ErrTooManyRequests` after), and that many consecutive successes close.
    /// bulwark's per-episode limit does the same; a probe that is dropped gives its slot back.
    #[test]
    fn per_episode_limit_is_gobreakers_max_requests() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(60))
            .half_open(3, 3)
            .half_open_limit(super::super::HalfOpenLimit::PerEpisode);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let a = m.try_acquire(at(60_000)).unwrap();
        let b = m.try_acquire(at(60_000)).unwrap();
        m.on_success(a, at(60_001));
        m.release(b); // dropped: its slot comes back
        let c = m.try_acquire(at(60_002)).unwrap();
        let d = m.try_acquire(at(60_002)).unwrap();
        // 3 admitted this episode (a, c, d), 1 ended: the 4th is rejected at once.
        assert_eq!(
            m.try_acquire(at(60_003)),
            Err(Rejected::new(Some(at(60_003)), at(60_003)))
        );
        m.on_success(c, at(60_004));
        assert_eq!(m.state(), State::HalfOpen);
        m.on_success(d, at(60_005)); // the 3rd success closes
        assert_eq!(m.state(), State::Closed);
    }

    /// resilience4j's `CircuitBreaker.Metrics` restart with each state (a new state object
    /// brings new metrics): its not-permitted count, successful and failed calls are those of
    /// the current state. bulwark's opt-in `Admissions` events show the same, plus the calls
    /// in flight, which a dropped permit (a cancelled call) also ends.
    #[test]
    fn admissions_count_per_state_and_in_flight() {
        use super::super::{Admissions, CircuitBreaker};
        let clock = crate::MockClock::new();
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10));
        let b = CircuitBreaker::new(cfg, &clock)
            .unwrap()
            .with_events(Admissions::new());
        let a = b.try_acquire().unwrap();
        let c = b.try_acquire().unwrap();
        assert_eq!(
            (
                b.events().in_flight(),
                b.events().since_transition().admitted
            ),
            (2, 2)
        );
        drop(c); // abandoned: no outcome, but no longer in flight
        a.failure(); // opens: the counts start over
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
        let open = b.events().since_transition();
        assert_eq!(
            (open.admitted, open.totals.rejected, open.totals.failures),
            (0, 2, 0)
        );
        assert_eq!(b.events().in_flight(), 0);
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire().unwrap(); // half-open: a new state, new counts
        assert_eq!(b.events().since_transition().admitted, 1);
        probe.success(); // closes
        assert_eq!(b.events().since_transition(), Default::default());
        assert_eq!(b.events().in_flight(), 0);
    }
}
