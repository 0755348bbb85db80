//! The shared, lock-free form of the breaker.

use core::fmt;

use super::config::{Config, Policy};
use super::error::{ConfigError, Rejected, SnapshotError};
use super::machine::Ticket;
use super::machine::{
    self, Admit, Ctrl, OPEN, OPENING, admit, admit_reads_until, half_open_expired, is_slow,
    open_until, passes_unchanged, records_window, restored, settle, times_calls,
};
use super::window::{NoWindow, Sample, Window, WindowStats, rate_trips};
use super::{Events, Metrics, Outcome, Snapshot, State, Transition};
use crate::admission::Permit;
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Clock, Instant};

/// A circuit breaker shared by many tasks, threads or interrupt handlers: `&self`, `Sync`,
/// lock-free, no allocation.
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
/// The control state is one `AtomicU64` packing state, generation, probe counts and
/// consecutive failures; every change is a CAS (`AcqRel` on success, `Acquire` on failure)
/// around the same pure transition functions the [`Machine`](super::Machine) uses, so every
/// decision is taken on a consistent snapshot. The end of the open time is a second word: the
/// thread that trips the breaker first moves it to an internal *opening* state, then writes
/// the instant (`Release`), then publishes *open* by CAS; a reader that sees *open* with
/// `Acquire` therefore sees the instant. Readers that see *opening* reject with an estimate.
/// The window's counters are separate atomics; a sample racing a state change may land in
/// the window of the state being left or entered (at most one per racing caller).
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
pub struct CircuitBreaker<C, W: Window = NoWindow, E = ()> {
    policy: Policy,
    rules: W::Rules,
    clock: C,
    events: E,
    /// The packed [`Ctrl`].
    ctrl: AtomicU64,
    /// End of the open time, in nanoseconds (valid while the state is `OPEN`).
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
        let (policy, rules) = machine::validate::<W>(&cfg)?;
        Ok(CircuitBreaker {
            policy,
            rules,
            clock,
            events: (),
            ctrl: AtomicU64::new(Ctrl::default().pack()),
            until: AtomicU64::new(0),
            window: W::new_shared(),
        })
    }
}

impl<C: Clock, W: Window, E: Events> CircuitBreaker<C, W, E> {
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
    pub fn with_events<E2: Events>(self, events: E2) -> CircuitBreaker<C, W, E2> {
        CircuitBreaker {
            policy: self.policy,
            rules: self.rules,
            clock: self.clock,
            events,
            ctrl: self.ctrl,
            until: self.until,
            window: self.window,
        }
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
        Config::from_parts(&self.policy, W::rate_rules(&self.rules))
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

    #[inline]
    fn load(&self) -> u64 {
        // Acquire: pairs with the AcqRel CAS of whoever changed the state last, so the
        // decision below sees that change and (for OPEN) the `until` written before it.
        self.ctrl.load(Ordering::Acquire)
    }

    fn cas(&self, cur: u64, next: u64) -> Result<(), u64> {
        // AcqRel on success: publishes our change and acquires the previous one. Acquire on
        // failure: the fresh value we retry with must be as good as a `load`.
        self.ctrl
            .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// The state. An open breaker whose time is up stays [`State::Open`] until a call
    /// arrives (no timer runs).
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), &clock).unwrap();
    /// assert_eq!(b.state(), State::Closed);
    /// ```
    pub fn state(&self) -> State {
        Ctrl::unpack(self.load()).public_state()
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
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<&Self>, Rejected> {
        Permit::try_new(self)
    }

    /// Asks to make a call, without a guard: the [`Ticket`] must be handed back to
    /// [`record`](CircuitBreaker::record) or [`release`](CircuitBreaker::release) of this
    /// breaker. For owners that keep the breaker behind their own pointer (an `Arc` in a tower
    /// service); everyone else wants the RAII [`try_acquire`](CircuitBreaker::try_acquire).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](CircuitBreaker::try_acquire).
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, Outcome}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// let ticket = b.try_acquire_ticket().unwrap();
    /// b.record(ticket, Outcome::Success);
    /// # assert_eq!(b.state(), bulwark::circuit_breaker::State::Closed);
    /// ```
    #[inline]
    pub fn try_acquire_ticket(&self) -> Result<Ticket, Rejected> {
        // Fast path: in the states that let every call through unchanged (closed, disabled,
        // metrics-only) admission writes nothing, so one load decides; the general CAS loop
        // below would compute the same `(Pass, c)` and find nothing to write.
        let cur = self.load();
        let c = Ctrl::unpack(cur);
        if passes_unchanged(c.state) {
            return Ok(Ticket {
                generation: c.generation,
                probe: false,
                started: if times_calls(W::rate_rules(&self.rules)) {
                    self.clock.now()
                } else {
                    Instant::ZERO
                },
            });
        }
        if c.state == OPEN {
            self.reject_while_open()
        } else {
            self.try_acquire_from(cur, None)
        }
    }

    /// An open breaker: rejects on the coarse reading while the open time is clearly not up
    /// (nothing to write, as [`admit`] would decide); near or past its end, the general path
    /// decides on the precise clock and makes the probe.
    #[inline(never)]
    fn reject_while_open(&self) -> Result<Ticket, Rejected> {
        // The instant is visible because the control word's Acquire load synchronized with
        // the CAS that published OPEN, which `entered` made after storing it. Acquire here
        // pairs with that Release store too, so a newer instant (a trip since, the breaker's
        // current answer just as well) comes with its publication.
        let until = Instant::from_nanos(self.until.load(Ordering::Acquire));
        let t = self.clock.now_coarse();
        if t.saturating_add(self.clock.coarse_lag()) < until {
            let r = Rejected {
                retry_at: Some(until),
            };
            self.events.on_rejected(r, t);
            return Err(r);
        }
        self.try_acquire_from(self.load(), Some(t))
    }

    /// Admission from the control word `cur` just loaded: the CAS loop around [`admit`].
    /// `coarse`: the clock's coarse reading, if the caller already took it.
    #[inline(never)]
    fn try_acquire_from(
        &self,
        mut cur: u64,
        mut coarse: Option<Instant>,
    ) -> Result<Ticket, Rejected> {
        let mut now = LazyNow::new(&self.clock);
        let mut decision = Admit::Pass;
        let mut generation = 0;
        loop {
            // The control word the last decision was taken on, if it was half-open with a
            // maximum time (a decision that read `until` after that word).
            let mut half_open_seen = None;
            let changed = self.update_from(cur, |c| {
                let reads_until = admit_reads_until(c.state, &self.policy);
                // Visible through the control word's Acquire (see `reject_while_open`); read
                // only when the state says the value is meaningful (open: the end of the open
                // time; half-open with a maximum time: the instant half-open began).
                let until = if reads_until {
                    self.until.load(Ordering::Acquire)
                } else {
                    0
                };
                let t = if reads_until {
                    // The instant the decision turns on: the open time's end, or the end of
                    // the half-open maximum.
                    let until = Instant::from_nanos(until);
                    let edge = if c.state == machine::HALF_OPEN {
                        self.policy.half_open_end(until)
                    } else {
                        until
                    };
                    self.decision_now(&mut coarse, &mut now, edge)
                } else {
                    // Opening: another thread is writing the open time, and the estimate of
                    // it must not be early by the coarse lag. Half-open: a rejection carries
                    // this instant. Both rare, so the precise clock.
                    now.get()
                };
                half_open_seen = (c.state == machine::HALF_OPEN && reads_until).then_some(c);
                let (d, next) = admit(c, &self.policy, t, Instant::from_nanos(until));
                if c.state == OPEN
                    && next.state == machine::HALF_OPEN
                    && self.policy.limits_half_open()
                {
                    // Half-open begins with this probe; its maximum time counts from `t`.
                    // AcqRel, before the CAS that publishes half-open: whoever sees that
                    // state (Acquire on the control word) sees this instant. Raising `until`
                    // of an open breaker whose time is up to `t` changes no decision at or
                    // after `t`; a newer open time (a trip since) is never lowered.
                    self.until.fetch_max(t.as_nanos(), Ordering::AcqRel);
                }
                decision = d;
                generation = next.generation;
                opening(c, next)
            });
            if let Some((from, to)) = changed {
                // A re-opening (half-open past its maximum time) publishes the instant its
                // rejection carries.
                let until = match decision {
                    Admit::Reject(r) => r.retry_at,
                    _ => None,
                };
                self.entered(from, to, until, &mut now);
                break;
            }
            // A half-open rejection that wrote nothing read `until` after the control word:
            // a trip in between may have written the next open time there. If the word has
            // moved, decide again on the fresh one. (Open rejections need no such check: a
            // newer `until` is the breaker's current answer.)
            match half_open_seen {
                Some(c) if matches!(decision, Admit::Reject(_)) => {
                    let fresh = self.load();
                    if fresh == c.pack() {
                        break;
                    }
                    cur = fresh;
                }
                _ => break,
            }
        }
        match decision {
            Admit::Pass | Admit::Probe => Ok(Ticket {
                generation,
                probe: decision == Admit::Probe,
                started: if times_calls(W::rate_rules(&self.rules)) {
                    now.get()
                } else {
                    Instant::ZERO
                },
            }),
            Admit::Reject(r) => {
                // The reading the decision used: precise if it needed one, else coarse.
                let at = now.now.or(coarse).unwrap_or_else(|| now.get());
                self.events.on_rejected(r, at);
                Err(r)
            }
        }
    }

    /// Settles the call of `ticket` with `outcome`.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, Outcome, State}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// let ticket = b.try_acquire_ticket().unwrap();
    /// b.record(ticket, Outcome::Failure);
    /// assert_eq!(b.state(), State::Open);
    /// ```
    #[inline]
    pub fn record(&self, ticket: Ticket, outcome: Outcome) {
        // Fast path: a success of a normal (non-probe) call with no window to feed. It can
        // change the control word only by clearing a run of consecutive failures in the
        // closed state of its own generation; otherwise `settle` would leave the word as it
        // is (late outcome, or a state without transitions on success), so one load decides,
        // with no CAS.
        if !W::MEASURES && !ticket.probe && outcome == Outcome::Success {
            let c = Ctrl::unpack(self.load());
            if c.state != machine::CLOSED || c.generation != ticket.generation || c.consec == 0 {
                if c.state != machine::DISABLED {
                    self.events.on_outcome(outcome, false);
                }
                return;
            }
        }
        self.settle(ticket.generation, ticket.probe, ticket.started, outcome)
    }

    /// Abandons the call of `ticket` (cancelled): nothing is recorded, a half-open probe slot
    /// is given back.
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(Duration::ZERO), &clock).unwrap();
    /// b.record(b.try_acquire_ticket().unwrap(), bulwark::circuit_breaker::Outcome::Failure);
    /// let probe = b.try_acquire_ticket().unwrap();
    /// assert!(b.try_acquire_ticket().is_err());
    /// b.release(probe);
    /// assert!(b.try_acquire_ticket().unwrap().is_probe());
    /// ```
    pub fn release(&self, ticket: Ticket) {
        if ticket.probe {
            let generation = ticket.generation;
            self.update(|c| {
                settle(
                    c,
                    &self.policy,
                    W::rate_rules(&self.rules),
                    generation,
                    true,
                    Outcome::Ignored,
                    false,
                    WindowStats::default(),
                    false,
                )
            });
        }
    }

    /// The CAS loop every change goes through: applies `f` to the current control word until
    /// the result sticks. Returns (before, after) when `f` changed anything.
    fn update(&self, f: impl FnMut(Ctrl) -> Ctrl) -> Option<(Ctrl, Ctrl)> {
        self.update_from(self.load(), f)
    }

    /// [`update`](Self::update) starting from a value the caller just loaded.
    fn update_from(&self, mut cur: u64, mut f: impl FnMut(Ctrl) -> Ctrl) -> Option<(Ctrl, Ctrl)> {
        loop {
            let c = Ctrl::unpack(cur);
            let next = f(c);
            let packed = next.pack();
            if packed == cur {
                return None;
            }
            match self.cas(cur, packed) {
                Ok(()) => return Some((c, next)),
                Err(actual) => cur = actual,
            }
        }
    }

    fn settle(&self, generation: u32, probe: bool, started: Instant, outcome: Outcome) {
        let mut now = LazyNow::new(&self.clock);
        let rules = W::rate_rules(&self.rules);
        let slow = times_calls(rules) && is_slow(rules, started, now.get());
        let cur = self.load();
        let first = Ctrl::unpack(cur);
        if first.state != machine::DISABLED {
            self.events.on_outcome(outcome, slow);
        }
        let stats = if W::MEASURES
            && first.generation == generation
            && records_window(first.state)
            && outcome != Outcome::Ignored
        {
            let sample = Sample {
                failure: outcome == Outcome::Failure,
                slow,
            };
            let t = if W::NEEDS_TIME {
                now.get()
            } else {
                Instant::ZERO
            };
            W::record_shared(&self.window, &self.rules, t, sample)
        } else {
            WindowStats::default()
        };
        // A success in the closed state of its own generation, with no run of failures to
        // clear and no rate that trips: `settle` would leave the word as it is (the common
        // case of a healthy windowed breaker), so skip computing and comparing it.
        if outcome == Outcome::Success
            && !probe
            && first.state == machine::CLOSED
            && first.generation == generation
            && first.consec == 0
            && !rate_trips(rules, stats)
        {
            return;
        }
        let mut coarse = None;
        let changed = self.update_from(cur, |c| {
            // A probe ending after the half-open maximum time re-opens (a late verdict).
            let expired =
                probe && c.state == machine::HALF_OPEN && self.policy.limits_half_open() && {
                    // Acquire: as in `try_acquire_from`.
                    let until = Instant::from_nanos(self.until.load(Ordering::Acquire));
                    let edge = self.policy.half_open_end(until);
                    half_open_expired(
                        &self.policy,
                        until,
                        self.decision_now(&mut coarse, &mut now, edge),
                    )
                };
            let next = settle(
                c,
                &self.policy,
                rules,
                generation,
                probe,
                outcome,
                slow,
                stats,
                expired,
            );
            opening(c, next)
        });
        if let Some((from, to)) = changed {
            self.entered(from, to, None, &mut now);
        }
    }

    /// After a successful CAS from `from` to `to`: finish an opening (writing `until`, or the
    /// trip's own open time), empty the window on closing, and report the change.
    fn entered(&self, from: Ctrl, to: Ctrl, until: Option<Instant>, now: &mut LazyNow<'_, C>) {
        if to.state == OPENING {
            let until = until.unwrap_or_else(|| open_until(to, &self.policy, now.get()));
            // Release, then published by the AcqRel CAS below: whoever sees OPEN with Acquire
            // (the control word) sees this instant.
            self.until.store(until.as_nanos(), Ordering::Release);
            let open = Ctrl { state: OPEN, ..to };
            // A strong CAS: a spurious failure would leave the breaker *opening* for good. It
            // fails only if someone changed the state meanwhile (a reset, a forced mode).
            let _ = self.ctrl.compare_exchange(
                to.pack(),
                open.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else if to.state == machine::CLOSED && to.generation != from.generation {
            // Entering closed (from another state, or a reset): measure afresh.
            W::reset_shared(&self.window);
        }
        self.notify(from, to, now);
    }

    fn notify(&self, from: Ctrl, to: Ctrl, now: &mut LazyNow<'_, C>) {
        let (from, to) = (from.public_state(), to.public_state());
        if from != to {
            self.events.on_state_change(Transition {
                from,
                to,
                at: now.get(),
            });
        }
    }

    /// Moves to the state `make` builds, whatever the current state.
    fn force(&self, make: impl Fn(Ctrl) -> Ctrl) {
        if let Some((from, to)) = self.update(make) {
            self.entered(from, to, None, &mut LazyNow::new(&self.clock));
        }
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
        self.force(|c| c.enter(machine::FORCED_OPEN));
    }

    /// Forces the breaker closed: every call passes, nothing is measured.
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
        self.force(|c| c.enter(machine::DISABLED));
    }

    /// Lets every call pass while still measuring; never opens.
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
        self.force(|c| c.enter(machine::METRICS_ONLY));
    }

    /// Back to a fresh closed breaker (window emptied, open-time growth reset). Outcomes of calls admitted before the reset are dropped.
    ///
    /// ```
    /// # use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State}};
    /// # let clock = MockClock::new();
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// b.try_acquire().unwrap().failure();
    /// b.reset();
    /// assert_eq!(b.state(), State::Closed);
    /// ```
    pub fn reset(&self) {
        self.force(Ctrl::close);
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
        machine::metrics(
            Ctrl::unpack(self.load()),
            W::stats_shared(&self.window, &self.rules, now),
        )
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
        let c = Ctrl::unpack(self.load());
        // Visible through the control word's Acquire (see `reject_while_open`); only
        // meaningful when the state is OPEN.
        let until = Instant::from_nanos(self.until.load(Ordering::Acquire));
        machine::snapshot(c, until, self.clock.now())
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
        let s = machine::checked_snapshot(s, &self.policy)?;
        let mut now = LazyNow::new(&self.clock);
        let t = now.get();
        let mut until = t;
        let changed = self.update(|c| {
            let (next, u) = restored(c, s, t);
            until = u;
            opening(c, next)
        });
        W::reset_shared(&self.window);
        if let Some((from, to)) = changed {
            self.entered(from, to, Some(until), &mut now);
        }
        Ok(())
    }
}

impl<C: Clock, W: Window, E> CircuitBreaker<C, W, E> {
    /// The instant a decision at `edge` is taken on: the clock's coarse reading (read once
    /// per call, into `coarse`), or its precise one when the coarse reading falls short of
    /// `edge` by less than the clock's coarse lag, where the coarse answer could be wrong.
    #[inline]
    fn decision_now(
        &self,
        coarse: &mut Option<Instant>,
        now: &mut LazyNow<'_, C>,
        edge: Instant,
    ) -> Instant {
        let t = *coarse.get_or_insert_with(|| self.clock.now_coarse());
        if t < edge && t.saturating_add(self.clock.coarse_lag()) >= edge {
            now.get()
        } else {
            t
        }
    }
}

/// A trip goes through *opening* until `until` is written (see `entered`). Only a trip (a
/// new generation): a change that leaves an open breaker open must not re-open it.
#[inline]
fn opening(c: Ctrl, next: Ctrl) -> Ctrl {
    if next.state == OPEN && next.generation != c.generation {
        Ctrl {
            state: OPENING,
            ..next
        }
    } else {
        next
    }
}

/// Reads the clock at most once, and only when needed.
struct LazyNow<'a, C> {
    clock: &'a C,
    now: Option<Instant>,
}

impl<'a, C: Clock> LazyNow<'a, C> {
    fn new(clock: &'a C) -> Self {
        LazyNow { clock, now: None }
    }
    fn get(&mut self) -> Instant {
        *self.now.get_or_insert_with(|| self.clock.now())
    }
}

impl<C, W: Window, E> fmt::Debug for CircuitBreaker<C, W, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("ctrl", &Ctrl::unpack(self.ctrl.load(Ordering::Relaxed)))
            .field(
                "config",
                &Config::from_parts(&self.policy, W::rate_rules(&self.rules)),
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
/// Admit::record(&b, ticket, Outcome::Failure);
/// assert_eq!(b.try_admit().unwrap_err().retry_at(), Some(Instant::from_secs(3)));
/// ```
impl<C: Clock, W: Window, E: Events> crate::admission::Admit for CircuitBreaker<C, W, E> {
    type Ticket = Ticket;
    type Rejected = Rejected;

    #[inline]
    fn try_admit(&self) -> Result<Ticket, Rejected> {
        self.try_acquire_ticket()
    }

    #[inline]
    fn record(&self, ticket: Ticket, outcome: Outcome) {
        CircuitBreaker::record(self, ticket, outcome)
    }

    #[inline]
    fn release(&self, ticket: Ticket) {
        CircuitBreaker::release(self, ticket)
    }
}
