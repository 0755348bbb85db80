//! The shared, lock-free form of the breaker.

use core::fmt;
use core::ops::Deref;
use core::time::Duration;

use super::config::{Config, PolicySource, SharedPolicy};
use super::driver::{self, Store};
use super::encoding::{self, Second};
use super::error::{ConfigError, Rejected, SnapshotError, TransitionError};
use super::machine::Ticket;
use super::open_time::{ConfiguredOpenTime, OpenTime};
use super::state::{Breaker, Manual, Mode, Now, Phase, changed_rules, times_calls, validate};
use super::window::{LiveSetting, NoWindow, Sample, Window, WindowStats};
use super::{Events, Exceeded, Metrics, Outcome, Snapshot, State, Transition};
use crate::admission::{Admit, Permit};
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Clock, Instant};

/// A circuit breaker shared by many tasks, threads or interrupt handlers: `&self`, `Sync`,
/// lock-free, no allocation. (Interrupt handlers on targets without 64-bit atomics: see
/// [Interrupt handlers](crate#interrupt-handlers).)
///
/// `C` is the [`Clock`], `W` the [`Window`] kind and `E` the [`Events`] hooks. Generic over
/// `&C`/`&E` too, so a breaker can borrow a clock or hooks that live elsewhere.
///
/// # Time
///
/// A closed breaker reads no clock, unless it times calls (a slow-call policy) or places
/// outcomes by time (a [`TimeWindow`](super::TimeWindow)). An open one asks
/// [`Clock::now_coarse`] whether its open time is up: the cheapest reading the clock
/// offers, so a rejection costs little more than that read. Only when the coarse reading is
/// within [`Clock::coarse_lag`] of the end does it read the precise clock, so a call made at
/// a rejection's `retry_at` is admitted. Rejection hooks are stamped with the reading the
/// decision used (coarse far from the end); state changes with a precise reading.
///
/// # Memory ordering
///
/// The state is one `AtomicU64` control word (its encoding packs phase, generation, probe
/// counts and consecutive failures); every change is a CAS (`AcqRel` on success, `Acquire` on
/// failure) around the same pure transition functions the [`Machine`](super::Machine) runs,
/// so every decision is taken on a consistent snapshot. The instant a phase holds (the end of
/// the open time, the start of half-open) is a second word: the thread that trips the breaker
/// first moves it to an internal *opening* state, then writes the instant (`Release`), then
/// publishes *open* by CAS; a reader that sees *open* with `Acquire` therefore sees the
/// instant. Readers that see *opening* reject with an estimate. The window's counters are
/// separate atomics; a sample racing a state change may land in the window of the state
/// being left or entered (at most one per racing caller). The window's
/// [`CallTimes`](super::CallTimes) figures are further words that no decision reads. The
/// settings that change at run time ([`set_rate_thresholds`](CircuitBreaker::set_rate_thresholds),
/// [`set_slow_threshold`](CircuitBreaker::set_slow_threshold),
/// [`set_consecutive_failures`](CircuitBreaker::set_consecutive_failures),
/// [`set_open_for`](CircuitBreaker::set_open_for)) are one word each, stored `Release` and
/// loaded `Acquire` once per decision that needs them (never on the closed fast paths). The
/// compact configuration keeps its 40 bytes: its changeable fields are those words.
///
/// # Footprint
///
/// A consecutive-failure breaker is its compact configuration (40 bytes), the two words
/// above and the clock: 64 bytes with a reference (any 8-byte clock), 56 with a zero-sized
/// one, so one cache line
/// when placed 64-byte aligned (in crossbeam's `CachePadded`, or a `#[repr(align(64))]`
/// wrapper, which also keeps neighbours from sharing its line).
/// It keeps no totals of its own: attach [`Counters`](super::Counters) as its events for
/// them. Windows add their slots or buckets and the rate settings.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, State};
/// use bulwark::{Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let breaker = CircuitBreaker::with_window(
///     Config::new().failure_rate(50).minimum_calls(4).open_for(Duration::from_secs(5)),
///     CountWindow::<10>,
///     &clock,
/// )
/// .unwrap();
///
/// for ok in [true, false, true, false] {
///     let permit = breaker.try_acquire().unwrap();
///     if ok { permit.success() } else { permit.failure() }
/// }
/// assert_eq!(breaker.state(), State::Open);
/// assert_eq!(breaker.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(5)));
/// ```
pub struct CircuitBreaker<C, W: Window = NoWindow, E = (), G = ConfiguredOpenTime> {
    policy: SharedPolicy,
    rules: W::Rules,
    clock: C,
    events: E,
    /// Zero-sized unless a function was set.
    open: G,
    /// The state's control word (see `encoding`).
    ctrl: AtomicU64,
    /// The instant the phase holds, in nanoseconds: the end of the open time (open), the
    /// start of half-open (half-open).
    until: AtomicU64,
    window: W::Shared,
}

impl<C: Clock> CircuitBreaker<C> {
    /// A closed breaker without a window (consecutive failures only), reading time from
    /// `clock`. See [`with_window`](CircuitBreaker::with_window) for rate policies.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration the breaker cannot run with.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, ConfigError}};
    /// let clock = MockClock::new();
    /// assert!(CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).is_ok());
    /// assert_eq!(CircuitBreaker::new(Config::new(), &clock).unwrap_err(), ConfigError::NoTripPolicy);
    /// ```
    pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
        Self::with_window(cfg, NoWindow, clock)
    }
}

impl<C: Clock, W: Window> CircuitBreaker<C, W> {
    /// A closed breaker measuring rates over `window` ([`CountWindow`](super::CountWindow)
    /// or [`TimeWindow`](super::TimeWindow)).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration the breaker cannot run with.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, CountWindow}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::with_window(Config::new().failure_rate(50), CountWindow::<100>, &clock);
    /// assert!(b.is_ok());
    /// ```
    pub fn with_window(cfg: Config, window: W, clock: C) -> Result<Self, ConfigError> {
        let _ = window;
        let (policy, rules) = validate::<W>(&cfg)?;
        let window = W::new_shared();
        W::set_live_rules(&window, &rules, LiveSetting::All);
        Ok(CircuitBreaker {
            policy: SharedPolicy::new(&policy),
            rules,
            clock,
            events: (),
            open: ConfiguredOpenTime,
            ctrl: AtomicU64::new(encoding::encode(&Breaker::CLOSED)),
            until: AtomicU64::new(0),
            window,
        })
    }
}

impl<C: Clock, W: Window, E: Events, G: OpenTime> CircuitBreaker<C, W, E, G> {
    /// The same breaker, reporting to `events`.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, Events}};
    /// struct Log;
    /// impl Events for Log {}
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap().with_events(Log);
    /// # let _ = b;
    /// ```
    pub fn with_events<E2: Events>(self, events: E2) -> CircuitBreaker<C, W, E2, G> {
        CircuitBreaker {
            policy: self.policy,
            rules: self.rules,
            clock: self.clock,
            events,
            open: self.open,
            ctrl: self.ctrl,
            until: self.until,
            window: self.window,
        }
    }

    /// The same breaker, taking its open times from `open` (Polly's break-duration
    /// generator), which it owns: a capturing closure is fine. See [`OpenTime`] for what is
    /// done with its answer. Zero-sized by default ([`ConfiguredOpenTime`]); a function adds
    /// its captures to the breaker's size.
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config, Trip}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let base = Duration::from_secs(2);
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
    ///     .unwrap()
    ///     .with_open_time(move |t: &Trip| base.saturating_mul(t.openings()));
    /// b.try_acquire().unwrap().failure(); // first opening: 2 s
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(2)));
    /// clock.set(Instant::from_secs(2));
    /// b.try_acquire().unwrap().failure(); // the probe fails: second opening, 4 s
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(6)));
    /// ```
    pub fn with_open_time<G2: OpenTime>(self, open: G2) -> CircuitBreaker<C, W, E, G2> {
        CircuitBreaker {
            policy: self.policy,
            rules: self.rules,
            clock: self.clock,
            events: self.events,
            open,
            ctrl: self.ctrl,
            until: self.until,
            window: self.window,
        }
    }

    /// The [`OpenTime`] it opens with.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, ConfiguredOpenTime}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// assert_eq!(b.open_time(), &ConfiguredOpenTime);
    /// ```
    pub fn open_time(&self) -> &G {
        &self.open
    }

    /// The configuration it runs with. The breaker stores a compact form, so settings its
    /// window kind does not use (the rate settings, for [`NoWindow`]) read as their
    /// defaults, and durations of `u64::MAX` nanoseconds or more as [`Duration::MAX`](core::time::Duration::MAX).
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow}};
    /// # let clock = MockClock::new();
    /// let cfg = Config::new().consecutive_failures(3);
    /// let b = CircuitBreaker::new(cfg, &clock).unwrap();
    /// assert_eq!(b.config(), cfg);
    /// ```
    pub fn config(&self) -> Config {
        Config::from_parts(&self.policy.policy(), W::rate_rules(&self.rules()))
    }

    /// The rules decisions are taken with now: the run-time settings of the window (see
    /// [`set_rate_thresholds`](CircuitBreaker::set_rate_thresholds)).
    #[inline(always)]
    fn rules(&self) -> W::Rules {
        W::live_rules(&self.window, &self.rules)
    }

    /// Changes the rate thresholds at run time, through `&self`, with no state lost: the
    /// failure rate and the slow-call rate (percent, `None`: that rate does not trip) and the
    /// minimum number of calls, as [`Config::failure_rate`], the percentage of
    /// [`Config::slow_calls`] and [`Config::minimum_calls`] set them. The window keeps its
    /// calls; the next decision, including that of a call already in flight when it ends,
    /// judges with the new thresholds (resilience4j must build a new breaker for this).
    ///
    /// # Memory ordering
    ///
    /// The three settings are one atomic word, stored whole (`Release`) and loaded whole by
    /// each decision (`Acquire`): no decision sees some of them changed and not the others.
    /// [`set_slow_threshold`](CircuitBreaker::set_slow_threshold) is a separate change.
    ///
    /// # Errors
    ///
    /// As [`Config`] is checked when the breaker is built ([`ConfigError::PercentOutOfRange`],
    /// [`ConfigError::MinimumCallsAboveWindow`], [`ConfigError::NoTripPolicy`],
    /// [`ConfigError::NoWindow`] for a breaker without a window), and
    /// [`ConfigError::FixedAtRunTime`]`(`[`Field::SlowRate`](super::Field::SlowRate)`)` to turn
    /// the slow-call policy on or off (whether calls are timed is decided as they are
    /// admitted). The breaker is then left as it was.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, ConfigError, CountWindow, Field, State}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::with_window(Config::new().failure_rate(75).minimum_calls(4), CountWindow::<4>, &clock).unwrap();
    /// for ok in [true, false, true] {
    ///     let p = b.try_acquire().unwrap();
    ///     if ok { p.success() } else { p.failure() }
    /// }
    /// let in_flight = b.try_acquire().unwrap();
    /// b.set_rate_thresholds(Some(50), None, 4).unwrap();
    /// in_flight.failure(); // 2 of 4 failed: 50 % trips under the new threshold, not the old
    /// assert_eq!(b.state(), State::Open);
    /// assert_eq!(b.config(), Config::new().failure_rate(50).minimum_calls(4));
    /// assert_eq!(b.set_rate_thresholds(Some(50), None, 5), Err(ConfigError::MinimumCallsAboveWindow));
    /// assert_eq!(b.set_rate_thresholds(Some(50), Some(90), 4), Err(ConfigError::FixedAtRunTime(Field::SlowRate)));
    /// ```
    pub fn set_rate_thresholds(
        &self,
        failure_rate: Option<u8>,
        slow_rate: Option<u8>,
        minimum_calls: u32,
    ) -> Result<(), ConfigError> {
        let cfg = self
            .config()
            .with_rates(failure_rate, slow_rate, minimum_calls);
        let rules = changed_rules::<W>(&self.rules, &cfg)?;
        W::set_live_rules(&self.window, &rules, LiveSetting::Rates);
        Ok(())
    }

    /// Changes the consecutive failures that open the breaker at run time, through `&self`
    /// (`None`: that policy is off), with no state lost: the run of failures so far is kept,
    /// and the next failure is judged against the new count (a run already at or over it
    /// opens on that failure). One atomic store (`Release`), loaded by each decision that
    /// settles a failure (`Acquire`).
    ///
    /// Changes made at the same time by different callers are each valid on their own; two
    /// that each turn one policy off can together leave none (the breaker then never opens):
    /// let one operator make the changes.
    ///
    /// # Errors
    ///
    /// As [`Config::consecutive_failures`] is checked when the breaker is built
    /// ([`ConfigError::Zero`], [`ConfigError::TooLarge`], [`ConfigError::NoTripPolicy`]);
    /// the breaker is then left as it was.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, ConfigError, State}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// b.try_acquire().unwrap().failure();
    /// b.set_consecutive_failures(Some(3)).unwrap();
    /// assert_eq!(b.state(), State::Closed); // the run of 2 is kept
    /// b.try_acquire().unwrap().failure(); // the 3rd
    /// assert_eq!(b.state(), State::Open);
    /// assert_eq!(b.set_consecutive_failures(None), Err(ConfigError::NoTripPolicy));
    /// ```
    pub fn set_consecutive_failures(&self, n: Option<u32>) -> Result<(), ConfigError> {
        let current = self.policy.policy();
        let mut cfg = Config::from_parts(&current, W::rate_rules(&self.rules()));
        cfg.consecutive_failures = n;
        cfg.validate(W::MEASURES)?;
        self.policy.store_small(&current.with_run_time(&cfg));
        Ok(())
    }

    /// Changes the open time at run time, through `&self`, as [`Config::open_for`] sets it
    /// (with growth, the base the growth starts from; without, the fixed time): the next
    /// opening uses it. An open breaker keeps the end it was given (its rejections'
    /// `retry_at` stays true); the consecutive openings are kept. One atomic store of the
    /// base (and, without growth, one of the cap, which decisions do not read then).
    ///
    /// # Errors
    ///
    /// [`ConfigError::OpenMaxBelowBase`] for a base above the growth's cap; the breaker is
    /// then left as it was.
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(Duration::from_secs(30)), &clock).unwrap();
    /// b.set_open_for(Duration::from_secs(5)).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(5)));
    /// assert_eq!(b.config(), Config::new().consecutive_failures(1).open_for(Duration::from_secs(5)));
    /// ```
    pub fn set_open_for(&self, d: Duration) -> Result<(), ConfigError> {
        let current = self.policy.policy();
        let cfg = Config::from_parts(&current, W::rate_rules(&self.rules())).open_for(d);
        cfg.validate(W::MEASURES)?;
        self.policy.store_open(&current.with_run_time(&cfg));
        Ok(())
    }

    /// Changes the slow-call threshold at run time, through `&self`, with no state lost (as
    /// [`Config::slow_calls`] sets it): a call that ends from now on is slow if it took
    /// `threshold` or longer, calls already in flight included; the calls in the window keep
    /// the verdict they were recorded with. One atomic store (`Release`), loaded by each
    /// decision (`Acquire`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Zero`]`(`[`Field::SlowThreshold`](super::Field::SlowThreshold)`)`, and
    /// [`ConfigError::FixedAtRunTime`]`(`[`Field::SlowRate`](super::Field::SlowRate)`)` for a
    /// breaker without a slow-call policy (it does not time calls; one cannot be turned on at
    /// run time). The breaker is then left as it was.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, CountWindow, State}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let cfg = Config::new().slow_calls(Duration::from_secs(2), 100).minimum_calls(1);
    /// let b = CircuitBreaker::with_window(cfg, CountWindow::<4>, &clock).unwrap();
    /// let in_flight = b.try_acquire().unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// b.set_slow_threshold(Duration::from_millis(500)).unwrap();
    /// in_flight.success(); // 1 s: slow under the new threshold
    /// assert_eq!(b.state(), State::Open);
    /// ```
    pub fn set_slow_threshold(&self, threshold: Duration) -> Result<(), ConfigError> {
        let cfg = self.config();
        let Some(percent) = cfg.slow_rate else {
            return Err(ConfigError::FixedAtRunTime(super::Field::SlowRate));
        };
        let rules = changed_rules::<W>(&self.rules, &cfg.slow_calls(threshold, percent))?;
        W::set_live_rules(&self.window, &rules, LiveSetting::SlowThreshold);
        Ok(())
    }

    /// The event hooks.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config}};
    /// # let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), &clock).unwrap().with_events(());
    /// assert_eq!(b.events(), &());
    /// ```
    pub fn events(&self) -> &E {
        &self.events
    }

    /// The clock.
    ///
    /// ```
    /// # use bulwark::{Clock, Instant, MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow}};
    /// # let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), &clock).unwrap();
    /// assert_eq!(b.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    #[inline(always)]
    fn load(&self) -> u64 {
        // Acquire: pairs with the AcqRel CAS of whoever changed the state last, so the
        // decision below sees that change and (for open) the instant written before it.
        self.ctrl.load(Ordering::Acquire)
    }

    /// The state the next call will find: an open breaker whose open time is up reports
    /// [`State::HalfOpen`] (the next call is a probe), and a half-open breaker past its
    /// [maximum time](Config::max_half_open) reports [`State::Open`]. No timer runs and
    /// nothing is written: the transition itself (and its
    /// [`on_state_change`](super::Events::on_state_change)) happens when that call arrives.
    /// Reads the clock (coarsely, far from the edge) only in those two states.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, State}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(Duration::from_secs(5)), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(b.state(), State::HalfOpen); // what the next call finds
    /// assert!(b.try_acquire().unwrap().is_probe());
    /// ```
    pub fn state(&self) -> State {
        let w = self.load();
        match encoding::second(w) {
            Second::Published => {
                let mut now = Reading::new(&self.clock);
                self.read(w, &mut now)
                    .public_at(&self.policy.policy(), &mut now)
            }
            _ => encoding::state(w),
        }
    }

    /// Asks to make a call. Never waits.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open (with the instant it could pass), forced open, or
    /// half-open with every probe slot taken.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow}};
    /// # let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// assert!(b.try_acquire().is_err());
    /// ```
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<&Self>, Rejected> {
        Permit::try_new(self)
    }

    /// [`Admit::try_admit`]: asks to make a call, without a guard.
    #[inline(always)]
    fn admit_ticket(&self) -> Result<Ticket, Rejected> {
        // Fast path (README rows "breaker closed path vs recloser" and "breaker closed path,
        // 2 threads, vs recloser"): in the states that let every call through unchanged
        // (closed, disabled, metrics-only) admission writes nothing, so one load decides; the
        // driver would compute the same pass and find nothing to write.
        let w = self.load();
        if encoding::passes_unchanged(w) {
            // Nothing at all with the default hooks (`()`); opt-in admission counts pay here.
            self.events.on_admitted(false);
            return Ok(Ticket::new(
                encoding::generation(w),
                false,
                if times_calls(W::rate_rules(&self.rules)) {
                    self.clock.now()
                } else {
                    Instant::ZERO
                },
            ));
        }
        let admitted = if encoding::is_open(w) {
            self.reject_while_open()
        } else {
            self.acquire(None)
        };
        if let Ok(t) = &admitted {
            self.events.on_admitted(t.is_probe());
        }
        admitted
    }

    /// An open breaker: rejects on the coarse reading while the open time is clearly not up
    /// (nothing to write, as the driver would decide); near or past its end, the driver
    /// decides on the precise clock and makes the probe. The fast path of README rows
    /// "breaker open rejection, coarse read of the same clock, vs recloser" and "breaker open
    /// rejection vs recloser (std clock)".
    #[inline(never)]
    fn reject_while_open(&self) -> Result<Ticket, Rejected> {
        // The instant is visible because the control word's Acquire load synchronized with
        // the CAS that published open, which `entered` made after storing it. Acquire here
        // pairs with that Release store too, so a newer instant (a trip since, the breaker's
        // current answer just as well) comes with its publication.
        let until = Instant::from_nanos(self.until.load(Ordering::Acquire));
        let t = self.clock.now_coarse();
        if t.saturating_add(self.clock.coarse_lag()) < until {
            let r = Rejected::new(Some(until), t);
            self.events.on_rejected(r, t);
            return Err(r);
        }
        self.acquire(Some(t))
    }

    /// Admission through the driver. `coarse`: the clock's coarse reading, if the caller
    /// already took it.
    #[inline(never)]
    fn acquire(&self, coarse: Option<Instant>) -> Result<Ticket, Rejected> {
        let mut now = Reading::new(&self.clock);
        now.coarse = coarse;
        driver::acquire(
            &mut { self },
            (&self.policy, &self.open),
            &self.rules,
            &mut now,
        )
    }

    /// [`Admit::record`]: settles the call of `ticket` with `outcome`.
    #[inline(always)]
    fn record_ticket(&self, ticket: Ticket, outcome: Outcome) {
        self.events.on_finished();
        // Fast path (README rows "breaker closed path vs recloser" and "breaker closed path,
        // 2 threads, vs recloser"): a success of a normal (non-probe) call with no window to
        // feed can change the state only by clearing a run of consecutive failures in the
        // closed state of its own generation; otherwise the driver would leave the state as
        // it is (late outcome, or a state without transitions on success), so one load
        // decides, with no CAS.
        if !W::MEASURES && !ticket.is_probe() && outcome == Outcome::Success {
            let w = self.load();
            if !encoding::success_clears_failures(w, ticket.generation()) {
                if !encoding::is_disabled(w) {
                    self.events.on_outcome(outcome, false);
                }
                return;
            }
        }
        self.settle(ticket, outcome);
    }

    /// Settling through the driver, out of line: the fast path above stays small enough to
    /// inline into every caller.
    #[inline(never)]
    fn settle(&self, ticket: Ticket, outcome: Outcome) {
        let mut now = Reading::new(&self.clock);
        driver::record(
            &mut { self },
            (&self.policy, &self.open),
            &self.rules(),
            ticket,
            outcome,
            &mut now,
        );
    }

    /// [`Admit::release`]: abandons the call of `ticket` (cancelled): nothing is recorded, a
    /// half-open probe slot is given back.
    #[inline(always)]
    fn release_ticket(&self, ticket: Ticket) {
        self.events.on_finished();
        // Only a probe has anything to give back: a dropped permit of a normal call costs
        // this one test.
        if ticket.is_probe() {
            driver::release(&mut { self }, ticket, &mut Reading::new(&self.clock));
        }
    }

    /// Reads control word `w` (and the instant its phase holds, from the second word or, while
    /// it is being written, as an estimate).
    fn read(&self, w: u64, now: &mut Reading<'_, C>) -> Breaker {
        now.publishing = false;
        let at = match encoding::second(w) {
            Second::Unused => Instant::ZERO,
            // Visible through the control word's Acquire (see `reject_while_open`): stored
            // before the CAS that published the phase. A newer instant (a change since) comes
            // with its own publication, which a CAS on the stale word will then find.
            Second::Published => Instant::from_nanos(self.until.load(Ordering::Acquire)),
            // The thread that tripped the breaker is writing the end right now: about `now`
            // plus the open time (ours and its `now` differ by the race window). Precise: the
            // estimate must not be early by the coarse lag. At least a nanosecond ahead, so an
            // opening breaker admits no probe even with no open time: a probe would race the
            // store that publishes the open time.
            Second::Opening {
                openings,
                generation,
            } => {
                now.publishing = true;
                self.estimate_open_end(openings, generation, now)
            }
        };
        encoding::decode(w, at)
    }

    /// The end of the open time a trip is publishing right now (its `openings` and
    /// `generation` from the control word). Out of line and cold: `read` stays small enough
    /// to inline into the closed path (README row "breaker closed path, count window 100 vs
    /// recloser ring 100").
    #[cold]
    #[inline(never)]
    fn estimate_open_end(
        &self,
        openings: u8,
        generation: u32,
        now: &mut Reading<'_, C>,
    ) -> Instant {
        // A function's answer depends on the trip's figures, which the word does not hold:
        // estimate the next nanosecond (see `OpenTime`).
        let open = if self.open.is_configured() {
            self.policy
                .policy()
                .open_duration(openings, generation as u64)
        } else {
            1
        };
        now.precise()
            .saturating_add(Duration::from_nanos(open.max(1)))
    }

    /// Stores control word `w` as it is: a state another thread would see mid-change.
    #[cfg(test)]
    pub(super) fn set_word(&self, w: u64) {
        self.ctrl.store(w, Ordering::Relaxed);
    }

    fn cas(&self, cur: u64, next: u64) -> Result<(), u64> {
        // AcqRel on success: publishes our change and acquires the previous one. Acquire on
        // failure: the fresh value we retry with must be as good as a `load`.
        self.ctrl
            .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Forces the breaker open until another mode is chosen; calls are rejected with no retry
    /// instant.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.force_open();
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, None);
    /// ```
    pub fn force_open(&self) {
        driver::force(
            &mut { self },
            Mode::ForcedOpen,
            &mut Reading::new(&self.clock),
        );
    }

    /// Forces the breaker closed: every call passes, nothing is measured (the window is
    /// emptied on entering).
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.disable();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.state(), State::Disabled);
    /// ```
    pub fn disable(&self) {
        driver::force(
            &mut { self },
            Mode::Disabled,
            &mut Reading::new(&self.clock),
        );
    }

    /// Lets every call pass while still measuring, from an empty window (entering the mode
    /// empties it); never opens.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.metrics_only();
    /// b.try_acquire().unwrap().failure();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.state(), State::MetricsOnly);
    /// ```
    pub fn metrics_only(&self) {
        driver::force(
            &mut { self },
            Mode::MetricsOnly,
            &mut Reading::new(&self.clock),
        );
    }

    /// Back to a fresh closed breaker (window emptied, open-time growth reset), from any
    /// state: closing by hand (resilience4j's `transitionToClosedState` and `reset`, Polly's
    /// `Reset`). Outcomes of calls admitted before the reset are dropped. Idempotent:
    /// resetting a breaker that is already fresh and closed only empties its window (its
    /// calls in flight still count), so resetting twice is resetting once.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// b.reset();
    /// assert_eq!(b.state(), State::Closed);
    ///
    /// let permit = b.try_acquire().unwrap();
    /// b.reset(); // already fresh: nothing changes, the call in flight still counts
    /// permit.failure();
    /// assert_eq!(b.state(), State::Open);
    /// ```
    pub fn reset(&self) {
        driver::reset(&mut { self }, &mut Reading::new(&self.clock));
    }

    /// Opens the breaker by hand for `d` from now, as an operator does (resilience4j's
    /// `transitionToOpenState`, with the duration chosen by the operator). The open time's
    /// growth is not advanced: only trips count as consecutive openings. When the time is up
    /// the next call is a half-open probe, as after a trip.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] in [`State::MetricsOnly`] (that mode never opens), and
    /// [`TransitionError::Busy`] while another caller is tripping the breaker.
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config, State}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap();
    /// b.open_for(Duration::from_secs(90)).unwrap();
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(90)));
    /// b.metrics_only();
    /// assert!(b.open_for(Duration::from_secs(1)).is_err());
    /// ```
    pub fn open_for(&self, d: Duration) -> Result<(), TransitionError> {
        let mut now = Reading::new(&self.clock);
        let until = now.precise().saturating_add(d);
        driver::manual(&mut { self }, Manual::Open { until }, &mut now)
    }

    /// Opens the breaker by hand until `at` (on this breaker's clock); see
    /// [`open_for`](CircuitBreaker::open_for). An instant already past opens with the time
    /// up: the next call probes.
    ///
    /// # Errors
    ///
    /// As [`open_for`](CircuitBreaker::open_for).
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config, State}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap();
    /// b.open_until(Instant::from_secs(120)).unwrap();
    /// clock.set(Instant::from_secs(120));
    /// assert_eq!(b.state(), State::HalfOpen);
    /// ```
    pub fn open_until(&self, at: Instant) -> Result<(), TransitionError> {
        let mut now = Reading::new(&self.clock);
        driver::manual(&mut { self }, Manual::Open { until: at }, &mut now)
    }

    /// Half-open now, by hand: the next call is a probe (resilience4j's
    /// `transitionToHalfOpenState`). Made as an open time that ends now, so [`state`](CircuitBreaker::state)
    /// reports [`State::HalfOpen`] at once and the change to half-open is reported when that
    /// call arrives. A breaker already half-open (or open with its time up) is left as it is.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] from [`State::Closed`] (nothing to probe) and
    /// [`State::MetricsOnly`]; [`TransitionError::Busy`] while another caller is tripping
    /// the breaker.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, State}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.force_open();
    /// b.half_open().unwrap();
    /// assert_eq!(b.state(), State::HalfOpen);
    /// let probe = b.try_acquire().unwrap();
    /// assert!(probe.is_probe());
    /// probe.success();
    /// assert_eq!(b.state(), State::Closed);
    /// ```
    pub fn half_open(&self) -> Result<(), TransitionError> {
        let mut now = Reading::new(&self.clock);
        let at = now.precise();
        driver::manual(&mut { self }, Manual::HalfOpen { now: at }, &mut now)
    }

    /// The state, the run of failures and the window now (totals: [`Counters`](super::Counters)).
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.metrics().consecutive_failures, 1);
    /// ```
    pub fn metrics(&self) -> Metrics {
        let now = if W::NEEDS_TIME {
            self.clock.now()
        } else {
            Instant::ZERO
        };
        let mut reading = Reading::new(&self.clock);
        let state = self.read(self.load(), &mut reading);
        let public = state.public_at(&self.policy.policy(), &mut reading);
        let rules = self.rules();
        let window = W::stats_shared(&self.window, &rules, now);
        let times = W::times_shared(&self.window, &rules, now, window.slow);
        state.metrics(public, window, times)
    }

    /// The durable state now (see [`Snapshot`]).
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// assert_eq!(b.snapshot().state, State::Open);
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let mut now = Reading::new(&self.clock);
        let state = self.read(self.load(), &mut now);
        state.snapshot(now.precise())
    }

    /// Restores a [`Snapshot`] taken earlier, perhaps by another process or before a reboot.
    /// The window starts empty. The time left open is cut to the longest open time this
    /// configuration can give.
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] for a snapshot this breaker could not have written (see
    /// [`Machine::restore`](super::Machine::restore)); the breaker is then left as it was.
    ///
    /// ```
    /// # use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, Snapshot, SnapshotError, State}};
    /// # use core::time::Duration;
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// let s = Snapshot { state: State::Open, consecutive_failures: 0, openings: 1, open_remaining: Duration::from_secs(9) };
    /// b.restore(s).unwrap();
    /// assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::from_secs(9)));
    /// let corrupt = Snapshot { state: State::Disabled, consecutive_failures: 0, openings: 0, open_remaining: Duration::from_secs(1) };
    /// assert_eq!(b.restore(corrupt), Err(SnapshotError::OpenRemaining));
    /// assert_eq!(b.state(), State::Open);
    /// ```
    pub fn restore(&self, s: Snapshot) -> Result<(), SnapshotError> {
        driver::restore(
            &mut { self },
            (&self.policy, &self.open),
            s,
            &mut Reading::new(&self.clock),
        )
    }
}

/// The shared form's store: the control word, updated by CAS, and the second word.
impl<'a, C: Clock, W: Window, E: Events, G: OpenTime> Store for &'a CircuitBreaker<C, W, E, G> {
    type Window = W;
    type Now = Reading<'a, C>;

    fn load(&mut self, now: &mut Reading<'a, C>) -> Breaker {
        self.read(CircuitBreaker::load(self), now)
    }

    fn update<R>(
        &mut self,
        now: &mut Reading<'a, C>,
        mut f: impl FnMut(Breaker, &mut Reading<'a, C>) -> (R, Breaker),
    ) -> (R, Option<(Breaker, Breaker)>) {
        let mut cur = CircuitBreaker::load(self);
        loop {
            let from = self.read(cur, now);
            let (r, to) = f(from, now);
            if to == from {
                // A half-open decision that wrote nothing read the second word after the
                // control word: a trip in between may have written the next open time there.
                // If the word has moved, decide again on the fresh one. (Open needs no such
                // check: a newer open time is the breaker's current answer.)
                if let Phase::HalfOpen { .. } = from.phase {
                    let fresh = CircuitBreaker::load(self);
                    if fresh != cur {
                        cur = fresh;
                        continue;
                    }
                }
                return (r, None);
            }
            if let Phase::HalfOpen { since, .. } = to.phase
                && to.generation != from.generation
            {
                // Half-open begins with this probe. AcqRel, before the CAS that publishes
                // half-open: whoever sees that state (Acquire on the control word) sees its
                // start. Raising the end of an open breaker whose time is up to `since`
                // changes no decision at or after `since`; a newer open time (a trip since) is
                // never lowered.
                self.until.fetch_max(since.as_nanos(), Ordering::AcqRel);
            }
            // A change into open is written *opening*; `entered` publishes it.
            match self.cas(cur, encoding::encode(&to)) {
                Ok(()) => return (r, Some((from, to))),
                Err(actual) => cur = actual,
            }
        }
    }

    fn record_window(
        &mut self,
        rules: &W::Rules,
        now: &mut Reading<'a, C>,
        s: Sample,
    ) -> WindowStats {
        let t = if W::NEEDS_TIME {
            now.precise()
        } else {
            Instant::ZERO
        };
        W::record_shared(&self.window, rules, t, s)
    }

    fn record_timed(&mut self, rules: &W::Rules, now: &mut Reading<'a, C>, s: Sample, micros: u32) {
        let t = if W::NEEDS_TIME {
            now.precise()
        } else {
            Instant::ZERO
        };
        W::record_timed_shared(&self.window, rules, t, s, micros)
    }

    fn reset_window(&mut self) {
        W::reset_shared(&self.window);
    }

    /// Finishes an opening (publishes the open time's end), and reports the change.
    fn entered(&mut self, from: Breaker, to: Breaker, now: &mut Reading<'a, C>) {
        if let Phase::Open { until } = to.phase {
            // Release, then published by the AcqRel CAS below: whoever sees open with Acquire
            // (the control word) sees this instant.
            self.until.store(until.as_nanos(), Ordering::Release);
            let opening = encoding::encode(&to);
            // A strong CAS: a spurious failure would leave the breaker *opening* for good. It
            // fails only if someone changed the state meanwhile (a reset, a forced mode).
            let _ = self.ctrl.compare_exchange(
                opening,
                encoding::published(opening),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        let (from, to) = (from.public(), to.public());
        if from != to {
            self.events.on_state_change(Transition {
                from,
                to,
                at: now.precise(),
            });
        }
    }

    fn ended(&mut self, seen: &Breaker, outcome: Outcome, slow: bool) {
        if seen.phase != Phase::Disabled {
            self.events.on_outcome(outcome, slow);
        }
    }

    fn exceeded(&mut self, rate: Exceeded, window: WindowStats) {
        self.events.on_rate_exceeded(rate, window);
    }

    fn rejected(&mut self, rejected: Rejected, now: &mut Reading<'a, C>) {
        // The reading the decision used: precise if it needed one, else coarse.
        let at = now.precise.or(now.coarse).unwrap_or_else(|| now.precise());
        self.events.on_rejected(rejected, at);
    }
}

/// How the shared form reads time: each reading at most once per call, and only when needed;
/// the coarse one where it gives the same answer as the precise one.
pub(crate) struct Reading<'a, C> {
    clock: &'a C,
    coarse: Option<Instant>,
    precise: Option<Instant>,
    /// The control word last read was *opening* (see [`Now::publishing`]).
    publishing: bool,
}

impl<'a, C: Clock> Reading<'a, C> {
    fn new(clock: &'a C) -> Self {
        Reading {
            clock,
            coarse: None,
            precise: None,
            publishing: false,
        }
    }
}

impl<C: Clock> Now for Reading<'_, C> {
    fn precise(&mut self) -> Instant {
        *self.precise.get_or_insert_with(|| self.clock.now())
    }

    fn publishing(&self) -> bool {
        self.publishing
    }

    /// The clock's coarse reading, or its precise one when the coarse reading falls short of
    /// `edge` by less than the clock's coarse lag, where the coarse answer could be wrong.
    fn near(&mut self, edge: Instant) -> Instant {
        let t = *self.coarse.get_or_insert_with(|| self.clock.now_coarse());
        if t < edge && t.saturating_add(self.clock.coarse_lag()) >= edge {
            self.precise()
        } else {
            t
        }
    }
}

impl<C, W: Window, E, G> fmt::Debug for CircuitBreaker<C, W, E, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a view for people, no decision depends on it.
        let w = self.ctrl.load(Ordering::Relaxed);
        let at = Instant::from_nanos(self.until.load(Ordering::Relaxed));
        f.debug_struct("CircuitBreaker")
            .field("state", &encoding::decode(w, at))
            .field(
                "config",
                &Config::from_parts(
                    &self.policy.policy(),
                    W::rate_rules(&W::live_rules(&self.window, &self.rules)),
                ),
            )
            .finish_non_exhaustive()
    }
}

/// The breaker as a gate: admits calls while closed (or half-open, up to its probes) and
/// learns from their outcomes; its rejection's [`RetryHint`](crate::admission::RetryHint) is when the open period ends.
///
/// ```
/// use bulwark::admission::{Admit, Outcome, RetryHint};
/// use bulwark::{Instant, MockClock, circuit_breaker::{CircuitBreaker, Config}};
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(Duration::from_secs(3)), &clock).unwrap();
/// let ticket = b.try_admit().unwrap();
/// b.record(ticket, Outcome::Failure);
/// assert_eq!(b.try_admit().unwrap_err().retry_at(), Some(Instant::from_secs(3)));
///
/// // Dropping a probe's ticket without an outcome gives its slot back.
/// clock.set(Instant::from_secs(3));
/// let probe = b.try_admit().unwrap();
/// assert!(probe.is_probe() && b.try_admit().is_err()); // the only probe slot is taken
/// b.release(probe);
/// assert!(b.try_admit().unwrap().is_probe());
/// ```
impl<C: Clock, W: Window, E: Events, G: OpenTime> Admit for CircuitBreaker<C, W, E, G> {
    type Ticket = Ticket;
    type Rejected = Rejected;

    #[inline(always)]
    fn try_admit(&self) -> Result<Ticket, Rejected> {
        self.admit_ticket()
    }

    #[inline(always)]
    fn record(&self, ticket: Ticket, outcome: Outcome) {
        self.record_ticket(ticket, outcome)
    }

    #[inline(always)]
    fn release(&self, ticket: Ticket) {
        self.release_ticket(ticket)
    }
}

/// A breaker's permit knows whether it is a probe (the ticket of the one shared guard).
impl<R> Permit<R>
where
    R: Deref,
    R::Target: Admit<Ticket = Ticket>,
{
    /// `true` if this call is a circuit breaker's half-open probe.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(Duration::ZERO), &clock).unwrap();
    /// assert!(!b.try_acquire().unwrap().is_probe());
    /// b.try_acquire().unwrap().failure();
    /// assert!(b.try_acquire().unwrap().is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.ticket().is_some_and(Ticket::is_probe)
    }
}
