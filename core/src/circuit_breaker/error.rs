//! Errors of the circuit breaker.

use core::fmt;
use core::time::Duration;

use crate::time::{Human, Instant};

/// The breaker did not let a call through.
///
/// `retry_at` is the earliest instant at which a call could pass: the end of the open period,
/// or, when every half-open probe is taken, the instant of the rejection (a probe may end at
/// any moment; a retry policy adds its own backoff). It is `None` only when the breaker is
/// forced open: no instant is known.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::Rejected};
/// use core::time::Duration;
///
/// let r = Rejected::new(Some(Instant::from_secs(30)), Instant::from_secs(10));
/// assert_eq!(r.retry_after(), Some(Duration::from_secs(20)));
/// assert_eq!(r.to_string(), "circuit breaker open; retry in 20.0 s");
/// assert_eq!(Rejected::new(None, Instant::ZERO).to_string(), "circuit breaker forced open");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rejected {
    /// When a call could pass, if known.
    pub retry_at: Option<Instant>,
    /// When the call was rejected: [`retry_after`](Rejected::retry_after) counts from here.
    /// (An instant, not the wait itself: the rejection is returned on a hot path, and a
    /// `Duration` made there cost the README row "breaker open rejection" a third of its time.)
    at: Instant,
}

impl Rejected {
    /// Rejected at `now` until `retry_at`.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::Rejected};
    /// let r = Rejected::new(Some(Instant::from_secs(3)), Instant::from_secs(1));
    /// assert_eq!(r.retry_after().map(|d| d.as_secs()), Some(2));
    /// ```
    #[inline(always)]
    pub const fn new(retry_at: Option<Instant>, now: Instant) -> Rejected {
        Rejected { retry_at, at: now }
    }

    /// How long from the rejection until a call could pass: what the error displays, and what
    /// an HTTP `Retry-After` says. `None` with `retry_at`.
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::Rejected};
    /// use core::time::Duration;
    /// let r = Rejected::new(Some(Instant::from_millis(1_500)), Instant::from_secs(1));
    /// assert_eq!(r.retry_after(), Some(Duration::from_millis(500)));
    /// assert_eq!(Rejected::new(None, Instant::ZERO).retry_after(), None);
    /// ```
    pub const fn retry_after(&self) -> Option<Duration> {
        match self.retry_at {
            Some(t) => Some(t.saturating_duration_since(self.at)),
            None => None,
        }
    }

    /// How long from `now` until a call could pass (zero if that instant is past).
    ///
    /// ```
    /// use bulwark::{Instant, circuit_breaker::Rejected};
    /// assert_eq!(Rejected::new(None, Instant::ZERO).wait_time_from(Instant::ZERO), None);
    /// ```
    pub fn wait_time_from(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(now))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after() {
            Some(d) => write!(f, "circuit breaker open; retry in {}", Human(d)),
            None => f.write_str("circuit breaker forced open"),
        }
    }
}

impl core::error::Error for Rejected {}

impl crate::admission::RetryHint for Rejected {
    #[inline]
    fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call): the breaker rejected the
/// call, or the operation ran and failed with its own error (passed through unchanged).
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Error, Rejected};
/// let e: Error<&str> = Error::Inner("boom");
/// assert_eq!(e.to_string(), "boom");
/// assert_eq!(e.into_inner(), Some("boom"));
/// let r: Error<&str> = Error::Rejected(Rejected::new(None, bulwark::Instant::ZERO));
/// assert!(r.is_rejected());
/// ```
pub type Error<E> = crate::admission::Error<Rejected, E>;

/// A configuration the breaker cannot run with, found when the breaker is built. Errors
/// about one setting name it ([`Field`]).
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, ConfigError, Field, Machine, NoWindow};
/// let err = Machine::<NoWindow>::new(Config::new().consecutive_failures(0)).unwrap_err();
/// assert_eq!(err, ConfigError::Zero(Field::ConsecutiveFailures));
/// assert_eq!(err.to_string(), "circuit breaker config: consecutive_failures must not be zero");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The setting is zero where it must be positive.
    Zero(Field),
    /// The percentage is outside `1..=100` (`0..=100` for the open-time jitter).
    PercentOutOfRange(Field),
    /// The value is above a limit of the breaker's encoding, not of the domain: consecutive
    /// failures above 65 535 or probes or successes to close above 63 (the shared form's
    /// control word, which both forms follow so they behave the same), an open-time
    /// multiplier above 65 535 or divisor above 255 (the compact stored configuration), a count window above
    /// 2^20 calls or a time window above 4096 buckets (the window's packed counters).
    TooLarge(Field),
    /// A failure-rate or slow-call policy was set on a breaker without a window.
    NoWindow,
    /// The window can never hold `minimum_calls` calls (a count window of fewer calls, or a
    /// time window of `N` buckets of at most 65 535 calls each).
    MinimumCallsAboveWindow,
    /// The time window is shorter than one nanosecond per bucket, or zero.
    ZeroWindow,
    /// No policy would ever open the breaker (use metrics-only mode for that).
    NoTripPolicy,
    /// The cap of the open-time growth is below the base open time.
    OpenMaxBelowBase,
    /// More successes are needed to close than probes could ever be admitted (rate verdict,
    /// or a per-episode half-open limit).
    SuccessesAboveProbes,
    /// The open-time growth's multiplier is below its divisor: the time would shrink.
    OpenGrowthBelowOne,
    /// A change at run time ([`CircuitBreaker::set_rate_thresholds`](super::CircuitBreaker::set_rate_thresholds),
    /// [`CircuitBreaker::set_slow_threshold`](super::CircuitBreaker::set_slow_threshold)) that
    /// the breaker cannot make without losing state: turning the slow-call policy
    /// ([`Field::SlowRate`]) on or off. Whether calls are timed is decided when each call
    /// is admitted; a call admitted untimed could not be judged slow when it ends, and one
    /// admitted timed would be judged by a policy that is gone. The breaker is left as it was.
    FixedAtRunTime(Field),
}

/// The setting a [`ConfigError`] is about, named as the [`Config`](super::Config) builder
/// method that sets it, `method.argument` for a method of two arguments: the key a policy
/// file (feature `serde`) writes it under.
///
/// ```
/// use bulwark::circuit_breaker::Field;
/// assert_eq!(Field::SlowThreshold.to_string(), "slow_calls.threshold");
/// assert_eq!(Field::SuccessesToClose.to_string(), "half_open.successes_to_close");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Field {
    /// [`Config::consecutive_failures`](super::Config::consecutive_failures).
    ConsecutiveFailures,
    /// [`Config::failure_rate`](super::Config::failure_rate).
    FailureRate,
    /// The percentage of [`Config::slow_calls`](super::Config::slow_calls).
    SlowRate,
    /// The duration of [`Config::slow_calls`](super::Config::slow_calls).
    SlowThreshold,
    /// [`Config::minimum_calls`](super::Config::minimum_calls).
    MinimumCalls,
    /// The multiplier of [`Config::open_growth`](super::Config::open_growth).
    OpenMultiplier,
    /// The divisor of [`Config::open_growth_ratio`](super::Config::open_growth_ratio).
    OpenDivisor,
    /// [`Config::open_jitter`](super::Config::open_jitter).
    OpenJitter,
    /// The probe count of [`Config::half_open`](super::Config::half_open).
    Probes,
    /// The successes of [`Config::half_open`](super::Config::half_open).
    SuccessesToClose,
    /// [`Config::max_half_open`](super::Config::max_half_open).
    MaxHalfOpen,
    /// The window's `N` (calls of a count window, buckets of a time window).
    WindowSize,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::ConsecutiveFailures => "consecutive_failures",
            Field::FailureRate => "failure_rate",
            Field::SlowRate => "slow_calls.percent",
            Field::SlowThreshold => "slow_calls.threshold",
            Field::MinimumCalls => "minimum_calls",
            Field::OpenMultiplier => "open_growth.multiplier",
            Field::OpenDivisor => "open_growth.divisor",
            Field::OpenJitter => "open_jitter",
            Field::Probes => "half_open.probes",
            Field::SuccessesToClose => "half_open.successes_to_close",
            Field::MaxHalfOpen => "max_half_open",
            Field::WindowSize => "window size N",
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit breaker config: ")?;
        match self {
            ConfigError::Zero(field) => write!(f, "{field} must not be zero"),
            ConfigError::PercentOutOfRange(field) => write!(f, "{field} is not a valid percentage"),
            ConfigError::TooLarge(field) => {
                write!(f, "{field} is above a limit of the breaker's encoding")
            }
            ConfigError::NoWindow => {
                f.write_str("failure_rate and slow_calls need a count or time window")
            }
            ConfigError::MinimumCallsAboveWindow => {
                f.write_str("minimum_calls exceeds what the window can hold")
            }
            ConfigError::ZeroWindow => {
                f.write_str("time_window is zero or shorter than its bucket count in ns")
            }
            ConfigError::NoTripPolicy => f.write_str(
                "no policy would ever open the breaker: set consecutive_failures, failure_rate or \
                 slow_calls",
            ),
            ConfigError::OpenMaxBelowBase => f.write_str("open_growth.max is below open_for"),
            ConfigError::OpenGrowthBelowOne => {
                f.write_str("open_growth.multiplier is below open_growth.divisor")
            }
            ConfigError::FixedAtRunTime(field) => {
                write!(f, "{field} cannot be turned on or off at run time")
            }
            ConfigError::SuccessesAboveProbes => f.write_str(
                "half_open.successes_to_close exceeds half_open.probes, all a rate \
                     half_open_verdict or a per_episode half_open_limit admits",
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// A [`Snapshot`](super::Snapshot) could not be decoded.
///
/// ```
/// use bulwark::circuit_breaker::{Snapshot, SnapshotError};
/// assert_eq!(Snapshot::from_bytes(&[0xff; 16]), Err(SnapshotError::Version));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SnapshotError {
    /// The bytes were written by an unknown format version.
    Version,
    /// The state byte is not a known state.
    State,
    /// A reserved byte is not zero: not written by this format.
    Reserved,
    /// A run of consecutive failures the breaker could not have had: outside the closed
    /// state.
    ConsecutiveFailures,
    /// Time left open in a state other than open.
    OpenRemaining,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotError::Version => "unknown snapshot format version",
            SnapshotError::State => "unknown circuit state in snapshot",
            SnapshotError::Reserved => "a reserved snapshot byte is not zero",
            SnapshotError::ConsecutiveFailures => {
                "snapshot consecutive_failures is impossible for this breaker"
            }
            SnapshotError::OpenRemaining => "snapshot open_remaining is set outside the open state",
        })
    }
}

impl core::error::Error for SnapshotError {}

/// A transition asked for by hand could not be made.
///
/// The transitions an operator can ask for, and where each is refused, follow resilience4j's
/// table of legal transitions: a breaker in [`State::MetricsOnly`](super::State::MetricsOnly)
/// never opens (leave the mode with `reset` first), and a closed breaker has nothing to
/// probe, so it does not go half-open.
///
/// ```
/// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, State, TransitionError}};
/// let clock = MockClock::new();
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
/// let e = b.half_open().unwrap_err();
/// assert_eq!(e, TransitionError::Illegal { from: State::Closed, to: State::HalfOpen });
/// assert_eq!(e.to_string(), "illegal circuit breaker transition from Closed to HalfOpen");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransitionError {
    /// The transition is not allowed from the state the breaker is in.
    Illegal {
        /// The state the breaker is in (and stays in).
        from: super::State,
        /// The state asked for.
        to: super::State,
    },
    /// The shared form only: another caller is tripping the breaker at this very moment
    /// (between its two writes, see the [memory ordering](super::CircuitBreaker#memory-ordering)
    /// of the shared form); nothing was changed. Asking again a moment later succeeds. The
    /// [`Machine`](super::Machine) never returns it.
    Busy,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::Illegal { from, to } => write!(
                f,
                "illegal circuit breaker transition from {from:?} to {to:?}"
            ),
            TransitionError::Busy => f.write_str("circuit breaker busy tripping; try again"),
        }
    }
}

impl core::error::Error for TransitionError {}
