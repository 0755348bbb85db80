//! How long a breaker stays open after a trip: the configured growth, or a user's function of
//! the trip (Polly's break-duration generator).

use core::time::Duration;

use super::State;
use super::config::Policy;
use super::window::WindowStats;
use crate::time::duration_to_nanos;

/// What a breaker knew when it tripped: what an [`OpenTime`] decides the open time from.
///
/// The figures are those of the call that tripped the breaker, taken when it tripped:
///
/// * from [`State::Closed`]: the run of consecutive failures (including this call's) and the
///   window after recording the call (all zero for a breaker without a window);
/// * from [`State::HalfOpen`] (a failed or slow probe, the rate verdict over the probes, or
///   the [maximum time in half-open](super::Config::max_half_open) running out): the
///   episode's probes as a window (`calls` the probes that ended, `failures` and `slow` of
///   them, `minimum_calls` 1), and no run of failures.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, CountWindow, Machine, State, Trip}};
/// use core::time::Duration;
///
/// let cfg = Config::new().failure_rate(50).minimum_calls(4).open_for(Duration::from_secs(10));
/// let seen = core::cell::Cell::new(None);
/// let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap().with_open_time(|trip: &Trip| {
///     seen.set(Some(*trip));
///     trip.configured()
/// });
/// for ok in [true, false, true, false] {
///     let t = m.try_acquire(Instant::ZERO).unwrap();
///     if ok { m.on_success(t, Instant::ZERO) } else { m.on_failure(t, Instant::ZERO) }
/// }
/// let trip = seen.get().unwrap();
/// assert_eq!((trip.from(), trip.openings(), trip.calls(), trip.failures()), (State::Closed, 1, 4, 2));
/// assert_eq!(trip.failure_basis_points(), Some(5_000));
/// assert_eq!((trip.consecutive_failures(), trip.configured()), (1, Duration::from_secs(10)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trip {
    pub(crate) openings: u8,
    pub(crate) from: State,
    pub(crate) consecutive_failures: u16,
    pub(crate) window: WindowStats,
    pub(crate) configured: Duration,
}

impl Trip {
    /// Consecutive openings, this one included (1 for the first trip since the breaker last
    /// closed; Polly's `HalfOpenAttempts` is this minus one). Counted up to 31, like the
    /// configured growth.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// let t = Trip::new(State::Closed, 3);
    /// assert_eq!(t.openings(), 3);
    /// ```
    pub const fn openings(&self) -> u32 {
        self.openings as u32
    }

    /// The state the breaker tripped from: [`State::Closed`] or [`State::HalfOpen`].
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::HalfOpen, 2).from(), State::HalfOpen);
    /// ```
    pub const fn from(&self) -> State {
        self.from
    }

    /// The run of consecutive failures that tripped a closed breaker, this call's included
    /// (0 from half-open, and for a trip by rate on a success).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).consecutive_failures(), 0);
    /// ```
    pub const fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures as u32
    }

    /// The window (or, from half-open, the probes) when the breaker tripped.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip, WindowStats};
    /// assert_eq!(Trip::new(State::Closed, 1).window(), WindowStats::default());
    /// ```
    pub const fn window(&self) -> WindowStats {
        self.window
    }

    /// Calls in the window (or probes that ended) when the breaker tripped.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).calls(), 0);
    /// ```
    pub const fn calls(&self) -> u32 {
        self.window.calls
    }

    /// Failures among them (Polly's `FailureCount`).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).failures(), 0);
    /// ```
    pub const fn failures(&self) -> u32 {
        self.window.failures
    }

    /// The failure rate in basis points (Polly's `FailureRate`, as 0 ..= 10 000); `None`
    /// while it was not known (below the minimum number of calls, or no window).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).failure_basis_points(), None);
    /// ```
    pub fn failure_basis_points(&self) -> Option<u32> {
        self.window.failure_basis_points()
    }

    /// The slow-call rate in basis points; `None` while it was not known.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).slow_basis_points(), None);
    /// ```
    pub fn slow_basis_points(&self) -> Option<u32> {
        self.window.slow_basis_points()
    }

    /// The open time the configuration gives this trip ([`Config::open_for`](super::Config::open_for),
    /// grown and jittered as configured): a function can scale it, or fall back to it.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{State, Trip};
    /// assert_eq!(Trip::new(State::Closed, 1).configured(), core::time::Duration::ZERO);
    /// ```
    pub const fn configured(&self) -> Duration {
        self.configured
    }

    /// A trip from `from` at the `openings`-th consecutive opening (counted up to 31), with
    /// no figures and no configured time: for testing an [`OpenTime`] by itself.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{OpenTime, State, Trip};
    /// use core::time::Duration;
    /// let linear = |t: &Trip| Duration::from_secs(5).saturating_mul(t.openings());
    /// assert_eq!(linear.open_time(&Trip::new(State::HalfOpen, 3)), Duration::from_secs(15));
    /// ```
    pub const fn new(from: State, openings: u8) -> Trip {
        Trip {
            openings: if openings > super::encoding::MAX_OPENINGS {
                super::encoding::MAX_OPENINGS
            } else {
                openings
            },
            from,
            consecutive_failures: 0,
            window: WindowStats {
                calls: 0,
                failures: 0,
                slow: 0,
                minimum_calls: 0,
            },
            configured: Duration::ZERO,
        }
    }
}

/// Decides how long a breaker stays open after a trip, from the [`Trip`]: Polly's
/// `BreakDurationGenerator`, which sees the failure rate, the failure count and the number
/// of half-open attempts and returns the break duration.
///
/// Implemented by [`ConfiguredOpenTime`] (the default: [`Config::open_for`](super::Config::open_for)
/// with its growth and jitter) and by every `Fn(&Trip) -> Duration`, capturing closures
/// included: the breaker owns the function (no allocation, no `'static` borrow). Set it with
/// [`Machine::with_open_time`](super::Machine::with_open_time) or
/// [`CircuitBreaker::with_open_time`](super::CircuitBreaker::with_open_time).
///
/// # What the breaker does with the answer
///
/// The duration is taken as it is, with no cap and no jitter of the configuration's (apply
/// [`Trip::configured`] for those): it is counted in whole nanoseconds, saturating, so
/// [`Duration::MAX`] (or anything past the clock's range) keeps the breaker open until the
/// clock reaches [`Instant::MAX`](crate::Instant::MAX), and its rejections carry that
/// instant. [`Duration::ZERO`] opens with the time already up: the next call is a half-open
/// probe (as with `open_for(Duration::ZERO)`). Neither panics. A [`Snapshot`](super::Snapshot)
/// restored into a breaker with a function is not cut to the configured longest open time
/// (the function may give more). On the shared form, a call that races the trip while its
/// open time is being published is rejected with a `retry_at` of the next nanosecond (the
/// function's answer is not known to it yet), not the configured estimate.
///
/// The function runs inline on the call that trips the breaker (on the shared form, possibly
/// more than once for one trip when callers race: it must be a pure function of the trip,
/// and keep it short).
///
/// # Examples
///
/// Linear growth, 5 s per consecutive opening, and twice as long when every call failed:
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Trip}};
/// use core::time::Duration;
///
/// let base = Duration::from_secs(5);
/// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2))
///     .unwrap()
///     .with_open_time(move |trip: &Trip| base.saturating_mul(trip.openings()));
/// let mut now = Instant::ZERO;
/// let mut open = [0; 3];
/// for secs in &mut open {
///     while let Ok(t) = m.try_acquire(now) {
///         m.on_failure(t, now);
///     }
///     let until = m.try_acquire(now).unwrap_err().retry_at.unwrap();
///     *secs = until.saturating_duration_since(now).as_secs();
///     now = until;
/// }
/// assert_eq!(open, [5, 10, 15]);
/// ```
pub trait OpenTime {
    /// The open time after `trip`.
    fn open_time(&self, trip: &Trip) -> Duration;

    /// Is this the configured growth (whose open time the shared form can estimate from the
    /// configuration alone, and whose longest open time bounds a restored snapshot)?
    #[doc(hidden)]
    fn is_configured(&self) -> bool {
        false
    }
}

/// The open time the [`Config`](super::Config) gives: [`open_for`](super::Config::open_for),
/// grown by [`open_growth`](super::Config::open_growth) or
/// [`open_growth_ratio`](super::Config::open_growth_ratio) per consecutive opening, capped,
/// jittered by [`open_jitter`](super::Config::open_jitter). The default [`OpenTime`] of every
/// breaker; zero-sized.
///
/// ```
/// use bulwark::circuit_breaker::{ConfiguredOpenTime, OpenTime, State, Trip};
/// assert_eq!(core::mem::size_of::<ConfiguredOpenTime>(), 0);
/// let trip = Trip::new(State::Closed, 1);
/// assert_eq!(ConfiguredOpenTime.open_time(&trip), trip.configured());
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfiguredOpenTime;

impl OpenTime for ConfiguredOpenTime {
    #[inline]
    fn open_time(&self, trip: &Trip) -> Duration {
        trip.configured
    }

    fn is_configured(&self) -> bool {
        true
    }
}

impl<F: Fn(&Trip) -> Duration> OpenTime for F {
    fn open_time(&self, trip: &Trip) -> Duration {
        self(trip)
    }
}

/// What a trip is caused by, as the transitions know it (the figures of [`Trip`] but the
/// openings and the configured time).
#[derive(Copy, Clone, Debug)]
pub(crate) struct Cause {
    pub(crate) from: State,
    pub(crate) consecutive_failures: u16,
    pub(crate) window: WindowStats,
}

/// The open time in nanoseconds (saturating) of the `openings`-th consecutive opening, as
/// `open` decides it for `cause`. `salt` varies the configured jitter.
#[inline]
pub(crate) fn open_nanos<G: OpenTime + ?Sized>(
    p: &Policy,
    open: &G,
    openings: u8,
    salt: u64,
    cause: &Cause,
) -> u64 {
    let configured = p.open_duration(openings, salt);
    if open.is_configured() {
        return configured;
    }
    let trip = Trip {
        openings,
        from: cause.from,
        consecutive_failures: cause.consecutive_failures,
        window: cause.window,
        configured: Duration::from_nanos(configured),
    };
    duration_to_nanos(open.open_time(&trip))
}

/// The longest open time a breaker with `open` can give (to bound a restored snapshot).
pub(crate) fn longest<G: OpenTime + ?Sized>(p: &Policy, open: &G) -> u64 {
    if open.is_configured() {
        p.longest_open()
    } else {
        u64::MAX
    }
}
