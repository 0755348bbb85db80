//! Circuit breaker: stop calling a downstream that keeps failing, and probe it again later.
//!
//! ```text
//!            failure policy trips               open time elapsed
//!  Closed ─────────────────────────▶ Open ───────────────────────▶ HalfOpen
//!    ▲                                 ▲      (next call is a probe)   │
//!    │        enough probe successes   │        a probe fails          │
//!    └─────────────────────────────────┼───────────────────────────────┘
//!                                      └───────────────────────────────┘
//! ```
//!
//! Three layers, each usable on its own:
//!
//! * [`Machine`]: the pure state machine. `&mut self`, every input (including `now`) is an
//!   argument. What the model tests compare against.
//! * [`CircuitBreaker`]: the shared form. `&self`, `Sync`, lock-free: the state is encoded in
//!   one atomic word updated by CAS.
//!
//! Both run one driver over the same state type and transitions, written once; they differ
//! only in where the state is stored (plain fields, or the encoded atomic word).
//! * [`CircuitBreaker::call`]: the async wrapper; a hand-written future, nothing boxed.
//!
//! # Policies and defaults
//!
//! Trip policies combine (any one opens): consecutive failures (opens on the `n`-th), failure
//! rate and slow-call rate over a [`CountWindow`] or [`TimeWindow`] (opens at `>=` the
//! threshold, never below [`Config::minimum_calls`]). The open time is fixed or grows with
//! consecutive openings (capped, optionally jittered); growth resets when the breaker closes.
//! Half-open admits a set number of probes; by default the first failed probe re-opens and a
//! set number of successes closes ([`HalfOpenVerdict`]). A probe that is dropped, ignored or
//! cancelled gives its slot back. An outcome the [`Classify`] calls ignored is not recorded at
//! all. An outcome that arrives after the breaker changed state since its call was admitted
//! is dropped. Rejections carry the instant a call could pass ([`Rejected`]).
//!
//! A breaker keeps no totals of its own (that keeps it at 64 bytes and its closed path free
//! of writes): attach [`Counters`] as its [`Events`] to count successes, failures, slow
//! calls, ignored outcomes and rejected (not-permitted) calls, or [`Admissions`] for the
//! calls in flight and the counts since the last change of state. [`Machine`] users see every
//! outcome and rejection themselves and count what they need.
//!
//! # By hand and over time
//!
//! Operators open a breaker for a duration or until an instant
//! ([`CircuitBreaker::open_for`], [`CircuitBreaker::open_until`]), send it half-open
//! ([`CircuitBreaker::half_open`]) or close it ([`CircuitBreaker::reset`], idempotent); an
//! illegal transition is a [`TransitionError`] and changes nothing. [`CircuitBreaker::state`]
//! is what the next call will find: an open breaker whose time is up reports half-open, with
//! no timer and nothing written.
//!
//! # Changed at run time
//!
//! A windowed breaker's rate thresholds (failure rate, slow-call rate, minimum calls) and its
//! slow-call threshold, and any breaker's consecutive failures and open time, change through
//! `&self` with the window and the state kept ([`CircuitBreaker::set_rate_thresholds`],
//! [`CircuitBreaker::set_slow_threshold`], [`CircuitBreaker::set_consecutive_failures`],
//! [`CircuitBreaker::set_open_for`]); each change is one atomic word, so no decision sees
//! half of it, and a call in flight is judged by the settings in force when it ends. An open
//! breaker keeps the end it was given; the next opening uses the new time. Turning the slow-call policy on or off is a
//! [`ConfigError::FixedAtRunTime`]: whether a call is timed is decided when it is admitted.
//! resilience4j and Polly build a new breaker (and a new, empty window) for new settings.
//!
//! # Where the defaults differ from resilience4j, Polly and gobreaker
//!
//! * `state()` after the open time reports half-open, as Polly's `CircuitState` and
//!   gobreaker's `State()` do; resilience4j (without `automaticTransitionFromOpenToHalfOpen`)
//!   reports OPEN until a call arrives. The change itself, and its event, come with that call
//!   in all four.
//! * The open time is fixed (30 s) unless growth is asked for (resilience4j: 60 s, Polly:
//!   5 s, gobreaker: 60 s, all fixed by default). resilience4j's exponential wait multiplies
//!   by 1.5 in floating point and truncates to the millisecond; bulwark's
//!   [`Config::open_growth_ratio`]`(3, 2, max)` multiplies by an integer ratio and rounds
//!   down to the nanosecond (no floats on a microcontroller), saturating at the cap.
//! * A function of the trip can decide the open time instead ([`OpenTime`], set with
//!   [`CircuitBreaker::with_open_time`]): Polly's `BreakDurationGenerator`, which sees the
//!   failure rate, the failure count and the half-open attempts. bulwark gives it the
//!   consecutive openings (Polly's attempts plus one), the run of failures, the window (or
//!   the probes) with its rates in basis points, and the configured open time. Its answer is
//!   saturated, never capped or jittered; Polly does not cap it either.
//! * Window rates are integers, rounded down: whole percent
//!   ([`WindowStats::failure_percent`]) or basis points
//!   ([`WindowStats::failure_basis_points`], 3333 for 33.33 %), where resilience4j's
//!   `getFailureRate()` and `getSlowCallRate()` are floats; the trip decision compares
//!   counts (`failures · 100 >= threshold · calls`), exactly.
//! * Slow successes and slow failures (resilience4j's `getNumberOfSlowSuccessfulCalls()` and
//!   `getNumberOfSlowFailedCalls()`) and the sum and maximum of the call durations are in
//!   [`Metrics::times`] ([`CallTimes`]), in whole microseconds (resilience4j keeps its total
//!   in milliseconds). Calls are timed only with a slow-call policy or
//!   [`Config::record_durations`] (a clock reading per admission and outcome); without,
//!   the figures are zero, where resilience4j always times.
//! * Entering metrics-only or disabled empties the window, as resilience4j's new metrics for
//!   each state do: the figures a metrics-only breaker reports are those of the mode alone.
//! * "Rate exceeded" ([`Events::on_rate_exceeded`]) is reported once per crossing of the
//!   threshold, closed or metrics-only; resilience4j's metrics-only state publishes its
//!   rate-exceeded event on every call while the rate stays over it.
//! * Half-open limits the probes *in flight* by default: a probe that ends frees its slot
//!   for the next call. gobreaker's `MaxRequests` (and resilience4j's permitted calls in
//!   half-open) limit the calls *per half-open episode*: [`HalfOpenLimit::PerEpisode`].
//! * A panicking operation is a failure behind the tokio adapter's tower layers (they catch
//!   the panic, record the failure and resume it), as resilience4j records any exception.
//!   The core is `no_std` and catches nothing: under [`CircuitBreaker::call`] a panic drops
//!   the permit, which counts as an abandoned call (no outcome).
//! * Manual transitions follow resilience4j's table of legal ones (no closed → half-open;
//!   metrics-only never opens), returned as a [`TransitionError`] rather than thrown. Going
//!   half-open by hand is an open time that ends now, so the event reported at once is the
//!   change to open (from a forced mode) and the change to half-open comes with the first
//!   probe. A manual opening does not count as a consecutive opening (no growth), unlike a
//!   trip. Resetting a breaker that is already fresh and closed keeps the calls in flight
//!   (resilience4j's `reset()` starts a new state object every time).
//!
//! # Examples
//!
//! ```
//! use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
//! use bulwark::{Clock, MockClock, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let breaker = CircuitBreaker::new(
//!     Config::new().consecutive_failures(2).open_for(Duration::from_secs(10)),
//!     &clock,
//! )
//! .unwrap();
//!
//! mock::run(&clock, async {
//!     for _ in 0..2 {
//!         let r: Result<(), _> = breaker.call(|| async { Err::<(), _>("down") }).await;
//!         assert!(!r.unwrap_err().is_rejected());
//!     }
//!     // Open: the operation is not even started.
//!     let r = breaker.call(|| async { Ok::<_, &str>(1) }).await;
//!     assert_eq!(r.unwrap_err().is_rejected(), true);
//!
//!     clock.advance(Duration::from_secs(10));
//!     // The next call is the half-open probe; its success closes the breaker.
//!     assert_eq!(breaker.call(|| async { Ok::<_, &str>(2) }).await, Ok(2));
//!     assert_eq!(breaker.state(), State::Closed);
//! })
//! .unwrap();
//! ```

mod config;
mod driver;
mod encoding;
mod error;
mod future;
mod machine;
mod open_time;
mod shared;
mod state;
mod window;

pub use crate::admission::{Outcome, Permit};
pub use crate::classify::{Classify, ErrorsAreFailures, Verdict};
pub use config::{Config, HalfOpenLimit, HalfOpenVerdict};
pub use error::{ConfigError, Error, Field, Rejected, SnapshotError, TransitionError};
pub use future::Call;
pub use machine::{Machine, Ticket};
pub use open_time::{ConfiguredOpenTime, OpenTime, Trip};
pub use shared::CircuitBreaker;
pub use window::{CallTimes, CountWindow, NoWindow, TimeWindow, Window, WindowStats};

use core::time::Duration;

use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::Instant;

/// The state of a breaker.
///
/// ```
/// use bulwark::circuit_breaker::State;
/// assert!(State::Closed.admits_all());
/// assert!(!State::Open.admits_all());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Calls pass and outcomes are measured.
    Closed,
    /// Calls are rejected until the open time has passed.
    Open,
    /// A limited number of probe calls pass; their outcomes decide.
    HalfOpen,
    /// Forced open by hand: every call is rejected until the mode is left.
    ForcedOpen,
    /// Forced closed by hand: every call passes, nothing is measured.
    Disabled,
    /// Every call passes; outcomes are measured and reported, but the breaker never opens.
    MetricsOnly,
}

impl State {
    /// `true` for the states that let every call through.
    ///
    /// ```
    /// use bulwark::circuit_breaker::State;
    /// assert!(State::MetricsOnly.admits_all() && State::Disabled.admits_all());
    /// ```
    pub const fn admits_all(self) -> bool {
        matches!(self, State::Closed | State::Disabled | State::MetricsOnly)
    }
}

/// A window rate that crossed its threshold, as reported to [`Events::on_rate_exceeded`]
/// (resilience4j's `FailureRateExceeded` and `SlowCallRateExceeded` events).
///
/// ```
/// use bulwark::circuit_breaker::Exceeded;
/// assert_ne!(Exceeded::FailureRate, Exceeded::SlowCallRate);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exceeded {
    /// The failure rate reached [`Config::failure_rate`].
    FailureRate,
    /// The slow-call rate reached the percentage of [`Config::slow_calls`].
    SlowCallRate,
}

/// A change of state, as reported to [`Events`].
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{State, Transition}};
/// let t = Transition { from: State::Closed, to: State::Open, at: Instant::from_secs(1) };
/// assert_eq!(t.to, State::Open);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// When (as read by the breaker's clock; [`Instant::ZERO`] for changes made by hand
    /// through the machine, which has no clock).
    pub at: Instant,
}

hooks! {
    /// Hooks called by the breaker; a breaker without hooks (`()`) pays nothing.
    ///
    /// Hooks run inline on the calling task: keep them short and non-blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, Events, State, Transition};
    /// use bulwark::MockClock;
    /// use core::sync::atomic::{AtomicU32, Ordering};
    ///
    /// #[derive(Default)]
    /// struct Opened(AtomicU32);
    /// impl Events for Opened {
    ///     fn on_state_change(&self, t: Transition) {
    ///         if t.to == State::Open { self.0.fetch_add(1, Ordering::Relaxed); }
    ///     }
    /// }
    ///
    /// let clock = MockClock::new();
    /// let events = Opened::default();
    /// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap().with_events(&events);
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(events.0.load(Ordering::Relaxed), 1);
    /// ```
    ///
    /// Hooks compose: `(Counters::new(), log)` counts and logs, `.0` first.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, Counters, Events, Transition};
    /// use bulwark::MockClock;
    /// use core::cell::Cell;
    ///
    /// #[derive(Default)]
    /// struct Log(Cell<u32>);
    /// impl Events for Log {
    ///     fn on_state_change(&self, _: Transition) { self.0.set(self.0.get() + 1) }
    /// }
    ///
    /// let clock = MockClock::new();
    /// let (counters, log) = (Counters::new(), Log::default());
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
    ///     .unwrap()
    ///     .with_events((&counters, &log));
    /// let _ = b.call_sync(|| Err::<(), _>("down"));
    /// assert_eq!((counters.snapshot().failures, log.0.get()), (1, 1));
    /// ```
    pub trait Events {
        /// The breaker changed state.
        fn on_state_change(&self, transition: Transition);
        /// A call was rejected at `at` (for an open breaker, the clock's
        /// [coarse reading](crate::Clock::now_coarse) its decision used).
        fn on_rejected(&self, rejected: Rejected, at: Instant);
        /// A call ended with `outcome`; `slow` if it took at least the slow-call threshold
        /// (only measured with a slow-call policy). Not called while [`State::Disabled`]. Late
        /// outcomes (from before a change of state) are reported too, though the breaker drops
        /// them; a call abandoned without an outcome is not.
        ///
        /// ```
        /// use bulwark::circuit_breaker::{CircuitBreaker, Config, Events, Outcome};
        /// use bulwark::MockClock;
        /// use core::cell::Cell;
        ///
        /// #[derive(Default)]
        /// struct Failures(Cell<u32>);
        /// impl Events for Failures {
        ///     fn on_outcome(&self, outcome: Outcome, _slow: bool) {
        ///         if outcome == Outcome::Failure { self.0.set(self.0.get() + 1) }
        ///     }
        /// }
        /// let clock = MockClock::new();
        /// let failures = Failures::default();
        /// let b = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap().with_events(&failures);
        /// let _ = b.call_sync(|| Err::<(), _>("down"));
        /// let _ = b.call_sync(|| Ok::<_, &str>(()));
        /// assert_eq!(failures.0.get(), 1);
        /// ```
        fn on_outcome(&self, outcome: Outcome, slow: bool);
        /// A window rate reached its threshold (`>=`, once the window holds
        /// [`Config::minimum_calls`]): once per crossing, by the call whose outcome crossed it,
        /// before the change of state it causes. Closed, the crossing trips the breaker;
        /// [metrics-only](State::MetricsOnly), the rate must fall below the threshold before
        /// it is reported again. `window` is what the window held after that outcome.
        ///
        /// ```
        /// use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, Events, Exceeded, WindowStats};
        /// use bulwark::MockClock;
        /// use core::cell::Cell;
        ///
        /// #[derive(Default)]
        /// struct Crossings(Cell<u32>);
        /// impl Events for Crossings {
        ///     fn on_rate_exceeded(&self, rate: Exceeded, _: WindowStats) {
        ///         assert_eq!(rate, Exceeded::FailureRate);
        ///         self.0.set(self.0.get() + 1);
        ///     }
        /// }
        /// let clock = MockClock::new();
        /// let crossings = Crossings::default();
        /// let cfg = Config::new().failure_rate(50).minimum_calls(2);
        /// let b = CircuitBreaker::with_window(cfg, CountWindow::<4>, &clock).unwrap().with_events(&crossings);
        /// b.metrics_only();
        /// for _ in 0..3 {
        ///     let _ = b.call_sync(|| Err::<(), _>("down")); // over 50 % from the 2nd call on
        /// }
        /// assert_eq!(crossings.0.get(), 1);
        /// ```
        fn on_rate_exceeded(&self, rate: Exceeded, window: WindowStats);
        /// A call was admitted (`probe`: as a half-open probe), in any state. Every admitted
        /// call later reports [`on_finished`](Events::on_finished) exactly once, so the
        /// difference is the calls in flight ([`Admissions`] keeps it).
        fn on_admitted(&self, probe: bool);
        /// An admitted call ended: with an outcome (even one the breaker drops or ignores,
        /// and while disabled) or abandoned without one (a dropped permit, a cancelled call).
        fn on_finished(&self);
    }
}

/// [`Events`] that make admission observable, as resilience4j's metrics show it: the calls
/// in flight, and what happened since the last change of state (admitted, successes,
/// failures, slow, ignored and rejected calls), reset on each transition. Lock-free,
/// `Relaxed` (statistics): a call racing a transition may be counted in the state it saw or
/// in the next. Opt-in: a breaker with the default hooks (`()`) pays nothing for it.
///
/// ```
/// use bulwark::circuit_breaker::{Admissions, CircuitBreaker, Config};
/// use bulwark::MockClock;
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(2).open_for(Duration::from_secs(5)), &clock)
///     .unwrap()
///     .with_events(Admissions::new());
/// let held = b.try_acquire().unwrap();
/// let _ = b.call_sync(|| Ok::<_, ()>(()));
/// assert_eq!(b.events().in_flight(), 1);
/// held.failure();
/// let _ = b.call_sync(|| Err::<(), _>(())); // the 2nd failure in a row opens
/// let _ = b.call_sync(|| Ok::<_, ()>(())); // rejected
/// let open = b.events().since_transition();
/// assert_eq!((open.admitted, open.totals.rejected, b.events().in_flight()), (0, 1, 0));
/// ```
#[derive(Debug, Default)]
pub struct Admissions {
    admitted_total: AtomicU64,
    finished_total: AtomicU64,
    admitted: AtomicU64,
    counts: Counters,
}

/// What [`Admissions`] counted since the breaker's last change of state (wrapping).
///
/// ```
/// use bulwark::circuit_breaker::{SinceTransition, Totals};
/// let s = SinceTransition { admitted: 2, totals: Totals { successes: 1, ..Default::default() } };
/// assert_eq!(s.totals.calls(), 1); // one of the two is still in flight
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SinceTransition {
    /// Calls admitted (probes included).
    pub admitted: u64,
    /// Outcomes and rejections, as [`Counters`] counts them.
    pub totals: Totals,
}

impl Admissions {
    const_fn! {
        /// All zero.
        ///
        /// ```
        /// let a = bulwark::circuit_breaker::Admissions::new();
        /// assert_eq!(a.in_flight(), 0);
        /// ```
        pub fn new() -> Self {
            Admissions {
                admitted_total: AtomicU64::new(0),
                finished_total: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                counts: Counters::new(),
            }
        }
    }

    /// Calls admitted and not yet finished (read in two loads: a call racing the read may
    /// show as finished before admitted, which reads as 0, never as a huge number).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Admissions, Events};
    /// let a = Admissions::new();
    /// a.on_admitted(false);
    /// assert_eq!(a.in_flight(), 1);
    /// a.on_finished();
    /// assert_eq!(a.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u64 {
        // Relaxed: statistics. Finished first: a finish counted here was admitted before.
        let finished = self.finished_total.load(Ordering::Relaxed);
        let admitted = self.admitted_total.load(Ordering::Relaxed);
        admitted.saturating_sub(finished)
    }

    /// The counts since the last change of state (each read on its own).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Admissions, Events, Outcome, State, Transition};
    /// use bulwark::Instant;
    /// let a = Admissions::new();
    /// a.on_outcome(Outcome::Failure, false);
    /// assert_eq!(a.since_transition().totals.failures, 1);
    /// a.on_state_change(Transition { from: State::Closed, to: State::Open, at: Instant::ZERO });
    /// assert_eq!(a.since_transition().totals.failures, 0);
    /// ```
    pub fn since_transition(&self) -> SinceTransition {
        SinceTransition {
            // Relaxed: a statistic.
            admitted: self.admitted.load(Ordering::Relaxed),
            totals: self.counts.snapshot(),
        }
    }
}

impl Events for Admissions {
    fn on_state_change(&self, _: Transition) {
        // Relaxed: statistics; a count racing the reset may land on either side of it.
        self.admitted.store(0, Ordering::Relaxed);
        self.counts.clear();
    }
    fn on_rejected(&self, rejected: Rejected, at: Instant) {
        self.counts.on_rejected(rejected, at);
    }
    fn on_outcome(&self, outcome: Outcome, slow: bool) {
        self.counts.on_outcome(outcome, slow);
    }
    fn on_admitted(&self, _: bool) {
        // Relaxed: statistics.
        self.admitted_total.fetch_add(1, Ordering::Relaxed);
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }
    fn on_finished(&self) {
        // Relaxed: a statistic.
        self.finished_total.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`Events`] that count: the totals of a breaker since it was built, lock-free (`Relaxed`
/// increments: statistics, not synchronization). A breaker keeps no totals of its own, so
/// one that needs none pays nothing for them; attach these where they are wanted.
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, Counters};
/// use bulwark::MockClock;
///
/// let clock = MockClock::new();
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
///     .unwrap()
///     .with_events(Counters::new());
/// let _ = b.call_sync(|| Ok::<_, ()>(()));
/// let _ = b.call_sync(|| Err::<(), _>(()));
/// let _ = b.call_sync(|| Ok::<_, ()>(())); // rejected: open
/// let t = b.events().snapshot();
/// assert_eq!((t.successes, t.failures, t.rejected, t.calls()), (1, 1, 1, 2));
/// ```
#[derive(Debug, Default)]
pub struct Counters {
    successes: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    const_fn! {
        /// All zero.
        ///
        /// ```
        /// let c = bulwark::circuit_breaker::Counters::new();
        /// assert_eq!(c.snapshot().calls(), 0);
        /// ```
        pub fn new() -> Self {
            Counters {
                successes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                slow: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }
        }
    }

    /// All back to zero (`Relaxed` stores: statistics).
    fn clear(&self) {
        for c in [
            &self.successes,
            &self.failures,
            &self.slow,
            &self.ignored,
            &self.rejected,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The totals now (each read on its own: a call racing this read may be in one total
    /// and not yet in another).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Counters, Events, Outcome};
    /// let c = Counters::new();
    /// c.on_outcome(Outcome::Success, true);
    /// assert_eq!((c.snapshot().successes, c.snapshot().slow), (1, 1));
    /// ```
    pub fn snapshot(&self) -> Totals {
        // Relaxed: statistics, no other memory depends on them.
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            successes: get(&self.successes),
            failures: get(&self.failures),
            slow: get(&self.slow),
            ignored: get(&self.ignored),
            rejected: get(&self.rejected),
        }
    }
}

impl Events for Counters {
    fn on_rejected(&self, _: Rejected, _: Instant) {
        // Relaxed: a statistic.
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
    fn on_outcome(&self, outcome: Outcome, slow: bool) {
        // Relaxed: statistics.
        let counter = match outcome {
            Outcome::Success => &self.successes,
            Outcome::Failure => &self.failures,
            Outcome::Ignored => &self.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if slow && outcome != Outcome::Ignored {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What [`Counters`] counted (wrapping).
///
/// ```
/// use bulwark::circuit_breaker::Totals;
/// let t = Totals { successes: 3, failures: 1, slow: 1, ignored: 1, rejected: 9 };
/// assert_eq!(t.calls(), 5);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls that were slow (also counted as a success or failure).
    pub slow: u64,
    /// Calls whose outcome was ignored.
    pub ignored: u64,
    /// Calls rejected.
    pub rejected: u64,
}

impl Totals {
    /// Calls that ran to an outcome: successes, failures and ignored outcomes (rejections
    /// are not calls; slow calls are already among the others).
    ///
    /// ```
    /// let t = bulwark::circuit_breaker::Totals { successes: 1, failures: 2, ..Default::default() };
    /// assert_eq!(t.calls(), 3);
    /// ```
    pub fn calls(&self) -> u64 {
        self.successes
            .wrapping_add(self.failures)
            .wrapping_add(self.ignored)
    }
}

/// A point-in-time view of what a breaker decides on: its state, the run of failures and
/// the window. Totals since the start are kept by [`Counters`], when attached.
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
/// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(3)).unwrap();
/// let t = m.try_acquire(Instant::ZERO).unwrap();
/// m.on_failure(t, Instant::ZERO);
/// let metrics = m.metrics(Instant::ZERO);
/// assert_eq!((metrics.state, metrics.consecutive_failures), (State::Closed, 1));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metrics {
    /// The state now.
    pub state: State,
    /// Failures in a row right now (closed state).
    pub consecutive_failures: u32,
    /// What the window holds now.
    pub window: WindowStats,
    /// The window's timed figures now: slow successes and slow failures, the sum and maximum
    /// of the calls' durations (zero unless calls are timed).
    pub times: CallTimes,
}

/// The breaker's durable state in 16 bytes, to save and restore (for example across a
/// reboot). The open period is stored as the time that remains, so it survives a clock whose
/// origin changes. Windows and in-flight probes are not part of it: a restored breaker starts
/// measuring afresh, and a half-open breaker is restored open with no time left (the next
/// call probes).
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Snapshot, State}};
/// use core::time::Duration;
///
/// let cfg = Config::new().consecutive_failures(1).open_for(Duration::from_secs(60));
/// let mut before = Machine::<NoWindow>::new(cfg).unwrap();
/// let t = before.try_acquire(Instant::ZERO).unwrap();
/// before.on_failure(t, Instant::ZERO);
/// let bytes = before.snapshot(Instant::from_secs(20)).to_bytes();
///
/// // After a reboot the clock starts again at zero.
/// let mut after = Machine::<NoWindow>::new(cfg).unwrap();
/// after.restore(Snapshot::from_bytes(&bytes).unwrap(), Instant::ZERO).unwrap();
/// assert_eq!(after.state(), State::Open);
/// assert_eq!(after.try_acquire(Instant::ZERO).unwrap_err().retry_at, Some(Instant::from_secs(40)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// Failures in a row (closed state).
    pub consecutive_failures: u16,
    /// Consecutive openings (drives open-time growth; counted up to 31, see
    /// [`Config::open_growth`]).
    pub openings: u8,
    /// Time left in the open state.
    pub open_remaining: Duration,
}

const SNAPSHOT_VERSION: u8 = 1;

impl Snapshot {
    /// Encodes the snapshot (little endian, versioned).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Snapshot, State};
    /// use core::time::Duration;
    /// let s = Snapshot { state: State::Open, consecutive_failures: 0, openings: 2, open_remaining: Duration::from_secs(5) };
    /// assert_eq!(Snapshot::from_bytes(&s.to_bytes()), Ok(s));
    /// ```
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = SNAPSHOT_VERSION;
        b[1] = match self.state {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
            State::MetricsOnly => 5,
        };
        b[2] = self.openings;
        b[4..6].copy_from_slice(&self.consecutive_failures.to_le_bytes());
        b[8..16]
            .copy_from_slice(&crate::time::duration_to_nanos(self.open_remaining).to_le_bytes());
        b
    }

    /// Decodes bytes written by [`Snapshot::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] for an unknown version or state, or a reserved byte that is not
    /// zero. What a snapshot says is checked against the breaker when it is restored.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Snapshot, SnapshotError};
    /// let mut b = [0u8; 16];
    /// b[0] = 1;
    /// b[1] = 200;
    /// assert_eq!(Snapshot::from_bytes(&b), Err(SnapshotError::State));
    /// ```
    pub fn from_bytes(b: &[u8; 16]) -> Result<Snapshot, SnapshotError> {
        if b[0] != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version);
        }
        if b[3] != 0 || b[6] != 0 || b[7] != 0 {
            return Err(SnapshotError::Reserved);
        }
        let state = match b[1] {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            5 => State::MetricsOnly,
            _ => return Err(SnapshotError::State),
        };
        let mut nanos = [0u8; 8];
        nanos.copy_from_slice(&b[8..16]);
        Ok(Snapshot {
            state,
            openings: b[2].min(encoding::MAX_OPENINGS),
            consecutive_failures: u16::from_le_bytes([b[4], b[5]]),
            open_remaining: Duration::from_nanos(u64::from_le_bytes(nanos)),
        })
    }
}
