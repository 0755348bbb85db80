//! Retry: run an operation again when it fails transiently, with backoff and jitter, within
//! attempt, time, deadline and budget limits.
//!
//! Three layers, each usable on its own:
//!
//! * [`Backoff`], [`Jitter`] and [`RetryState`]: the pure machine. `&mut self`, `now` is an
//!   argument; [`RetryState::decide`] says "retry at `t`" or "stop".
//! * [`Budget`]: the shared, lock-free retry budget (`&self`, atomics), behind the
//!   [`RetryBudget`] trait.
//! * [`Retry::call`]: the async wrapper over a [`Sleep`](crate::Sleep). The operation is an
//!   `FnMut() -> Future`; each attempt is a fresh future; nothing is boxed.
//!
//! # Policy and defaults
//!
//! * `max_attempts` counts the first call: 3 attempts = 1 call + 2 retries.
//! * The [`Classify`] decides (the one [classification](crate::classify) of every pattern):
//!   [`Verdict::Success`] and [`Verdict::Ignore`] hand the result back at once (an `Err` as
//!   [`Error::Permanent`]: retrying cannot fix it); [`Verdict::Failure`] retries — an `Ok`
//!   result too ("try later" responses). When the retries run out on a retryable *result*,
//!   that result is returned as `Ok`, not an error.
//! * A failure's `retry_after` hint replaces the computed delay, cut to
//!   [`Config::max_retry_after`].
//! * The call never sleeps past its [`Deadline`](crate::timeout::Deadline) nor plans an
//!   attempt after `max_elapsed`: when the next attempt could not start in time it returns at
//!   once with the last outcome. A deadline already past when the call starts is a zero
//!   timeout ([its one meaning](crate::timeout#a-zero-timeout)): the first attempt completes
//!   if it is ready at its first poll, and is dropped if it is pending. (Otherwise an attempt
//!   itself is not cut short: wrap the operation in [`timeout_at`](crate::timeout::timeout_at)
//!   for that.)
//! * Each retry is asked of the [`RetryBudget`]; successes deposit into it.
//!
//! # Where the defaults differ from resilience4j, Polly and tower
//!
//! | setting | bulwark | peer |
//! |---|---|---|
//! | backoff | exponential, 100 ms × 2, capped at 10 s | resilience4j: 500 ms constant unless exponential (×1.5 by default); Polly: 2 s constant by default |
//! | fractional growth | [`Backoff::multiplier_ratio`] (3/2 for 1.5), integer fixed point | resilience4j and Polly: a `double` |
//! | jitter | [`Jitter::Full`] | resilience4j: none unless randomized; tower: additive ([`Jitter::Additive`]) |
//! | jitter and cap | jitter around the *capped* delay, so retries at the cap stay spread ([`JitterBase::Capped`]) | resilience4j: around the uncapped delay, cap last ([`JitterBase::Uncapped`]) |
//! | a cap below the first delay | accepted: it caps every delay | Polly's `MaxDelay`: the same |
//! | a retryable *result* left when attempts run out | handed back as `Ok` ([`Retry::fail_after_max_attempts`] makes it an error) | resilience4j: the same by default (`failAfterMaxAttempts` off) |
//! | retry budget | [`Budget`]: earned tokens capped, no clock read on a success; [`ExpiringBudget`]: deposits expire after a TTL | tower's `TpsBudget`, Finagle's `RetryBudget`: deposits expire after a TTL (10 s) |
//! | how calls ended | [`Finish::kind`] in [`Hooks::on_finish`], [`Counters::calls`] | resilience4j: the same four counts in `Retry.Metrics` |
//!
//! # Examples
//!
//! ```
//! use bulwark::retry::{Backoff, Config, Jitter, Retry, Verdict};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::cell::Cell;
//! use core::time::Duration;
//!
//! #[derive(Debug, PartialEq)]
//! enum HttpError { Unavailable, NotFound }
//!
//! let clock = MockClock::new();
//! let retry = Retry::new(
//!     Config::new()
//!         .max_attempts(4)
//!         .backoff(Backoff::exponential(Duration::from_secs(1)))
//!         .jitter(Jitter::None), // exact delays (the default spreads them: full jitter)
//!     &clock,
//! )
//! .unwrap()
//! .with_classifier(|r: &Result<&str, HttpError>| match r {
//!     Err(HttpError::Unavailable) => Verdict::FAILURE,
//!     _ => Verdict::Ignore, // success, or a 404 that retrying will not fix
//! });
//!
//! let calls = Cell::new(0);
//! let out = mock::run(&clock, retry.call(|| {
//!     calls.set(calls.get() + 1);
//!     let n = calls.get();
//!     async move { if n < 3 { Err(HttpError::Unavailable) } else { Ok("hello") } }
//! }))
//! .unwrap();
//! assert_eq!(out, Ok("hello"));
//! assert_eq!(clock.now(), Instant::from_secs(3)); // waited 1 s, then 2 s
//! assert_eq!(calls.get(), 3);
//! ```

mod backoff;
mod budget;
mod config;
mod error;
mod future;
mod shared;
mod state;

pub use backoff::{Backoff, BackoffFn, Builtin, Jitter, JitterBase};
pub use budget::{Budget, ExpiringBudget, RetryBudget};
pub use config::Config;
pub use error::{ConfigError, Error};
pub use future::Call;
pub use shared::{FailAfterMaxAttempts, Retry};
pub use state::{Decision, RetryState, Stop};

use core::fmt;
use core::time::Duration;

use crate::sync::{AtomicU64, Ordering, const_fn};

/// Makes one attempt's future. Every `FnMut() -> Future` closure is an operation; implement
/// it on a named type when the retry future's type must be nameable.
///
/// ```
/// use bulwark::retry::Operation;
/// fn attempts<O: Operation>(mut op: O) -> O::Future { op.attempt() }
/// let _first = attempts(|| async { Ok::<u8, ()>(1) });
/// ```
pub trait Operation {
    /// The future of one attempt.
    type Future: core::future::Future;
    /// Starts one attempt.
    fn attempt(&mut self) -> Self::Future;
}

impl<F: FnMut() -> Fut, Fut: core::future::Future> Operation for F {
    type Future = Fut;
    #[inline]
    fn attempt(&mut self) -> Fut {
        self()
    }
}

pub use crate::classify::{Classify, ErrorsAreFailures, Verdict};

hooks! {
    /// Hooks called by a [`Retry`]; a retry without hooks (`()`) pays nothing. Hooks run
    /// inline: keep them short. [`Counters`] keeps the totals.
    ///
    /// `attempt` is the number of the attempt concerned (1 = the first call).
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::retry::{Config, Hooks, Jitter, Retry};
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// use core::time::Duration;
    ///
    /// #[derive(Default)]
    /// struct Log(Cell<[u64; 2]>);
    /// impl Hooks<(), &str> for Log {
    ///     fn on_retry(&self, attempt: u32, delay: Duration, _outcome: &Result<(), &str>) {
    ///         let mut l = self.0.get();
    ///         l[attempt as usize - 1] = delay.as_millis() as u64;
    ///         self.0.set(l);
    ///     }
    /// }
    ///
    /// let clock = MockClock::new();
    /// let log = Log::default();
    /// let retry = Retry::new(Config::new().jitter(Jitter::None), &clock).unwrap().with_hooks(&log);
    /// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
    /// assert!(out.is_err());
    /// assert_eq!(log.0.get(), [100, 200]); // the default backoff: 100 ms, then 200 ms
    /// ```
    pub trait Hooks<T, E> {
        /// Attempt `attempt` is starting (after its sleep, if any).
        fn on_attempt(&self, attempt: u32);
        /// A retry will start after `delay`; `outcome` is what attempt `attempt` returned.
        fn on_retry(&self, attempt: u32, delay: Duration, outcome: &Result<T, E>);
        /// The budget denied the retry after attempt `attempt`; the call returns `outcome`.
        fn on_budget_denied(&self, attempt: u32, outcome: &Result<T, E>);
        /// The call ended after `attempts` attempts, as `finish` says (once per call that
        /// ends; a call dropped before it ends reports nothing).
        ///
        /// ```
        /// use bulwark::retry::{Config, Finish, Hooks, Retry};
        /// use bulwark::{MockClock, mock};
        /// use core::cell::Cell;
        ///
        /// #[derive(Default)]
        /// struct Last(Cell<Option<(u32, Finish)>>);
        /// impl<T, E> Hooks<T, E> for Last {
        ///     fn on_finish(&self, attempts: u32, finish: Finish) { self.0.set(Some((attempts, finish))) }
        /// }
        ///
        /// let clock = MockClock::new();
        /// let last = Last::default();
        /// let retry = Retry::new(Config::new().max_attempts(2), &clock).unwrap().with_hooks(&last);
        /// let _ = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") }));
        /// assert_eq!(last.0.get(), Some((2, Finish::Exhausted)));
        /// let _ = mock::run(&clock, retry.call(|| async { Ok::<_, ()>(1) }));
        /// assert_eq!(last.0.get(), Some((1, Finish::Success)));
        /// ```
        fn on_finish(&self, attempts: u32, finish: Finish);
    }
}

/// How a [`Retry`] call ended, as reported to [`Hooks::on_finish`]: the call's result in one
/// word, without its value.
///
/// ```
/// use bulwark::retry::Finish;
/// assert!(Finish::Success.is_success());
/// assert!(!Finish::Exhausted.is_success());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Finish {
    /// A result the classifier judged a success (or ignored, when it is an `Ok`).
    Success,
    /// An error the classifier did not retry (ignored): [`Error::Permanent`].
    Permanent,
    /// Out of attempts or time while the last outcome was still a failure
    /// ([`Error::Exhausted`], or a retryable `Ok` result handed back as it is).
    Exhausted,
    /// The budget denied the retry ([`Error::BudgetExhausted`]).
    BudgetExhausted,
    /// The next attempt would not start before the deadline ([`Error::DeadlineExceeded`]).
    DeadlineExceeded,
}

impl Finish {
    /// `true` for [`Finish::Success`]: the call returns a result its classifier accepted.
    ///
    /// ```
    /// assert!(!bulwark::retry::Finish::BudgetExhausted.is_success());
    /// ```
    pub const fn is_success(self) -> bool {
        matches!(self, Finish::Success)
    }

    /// The kind of a call that ended this way after `attempts` attempts: succeeded or failed
    /// (every finish but [`Success`](Finish::Success) is a failure), with or without a
    /// retry. resilience4j's four retry metrics count these.
    ///
    /// ```
    /// use bulwark::retry::{CallKind, Finish};
    /// assert_eq!(Finish::Success.kind(1), CallKind::SucceededWithoutRetry);
    /// assert_eq!(Finish::Success.kind(3), CallKind::SucceededAfterRetries);
    /// assert_eq!(Finish::Permanent.kind(1), CallKind::FailedWithoutRetry);
    /// assert_eq!(Finish::Exhausted.kind(3), CallKind::FailedAfterRetries);
    /// ```
    pub const fn kind(self, attempts: u32) -> CallKind {
        match (self.is_success(), attempts > 1) {
            (true, false) => CallKind::SucceededWithoutRetry,
            (true, true) => CallKind::SucceededAfterRetries,
            (false, false) => CallKind::FailedWithoutRetry,
            (false, true) => CallKind::FailedAfterRetries,
        }
    }
}

/// How a retried call ended, in the four kinds resilience4j's retry metrics count
/// (`successful_calls_without_retry_attempt`, `successful_calls_with_retry_attempt`,
/// `failed_calls_without_retry_attempt`, `failed_calls_with_retry_attempt`): from
/// [`Finish::kind`] in the end-of-call hook [`Hooks::on_finish`], counted by [`Counters`].
///
/// ```
/// use bulwark::retry::{CallKind, Config, Counters, Finish, Hooks, Retry};
/// use bulwark::{MockClock, mock};
/// use core::cell::Cell;
///
/// struct Kinds(Cell<Option<CallKind>>);
/// impl<T, E> Hooks<T, E> for Kinds {
///     fn on_finish(&self, attempts: u32, finish: Finish) { self.0.set(Some(finish.kind(attempts))) }
/// }
/// let clock = MockClock::new();
/// let kinds = Kinds(Cell::new(None));
/// let retry = Retry::new(Config::new(), &clock).unwrap().with_hooks(&kinds);
/// let n = Cell::new(0);
/// let out = mock::run(&clock, retry.call(|| {
///     n.set(n.get() + 1);
///     let first = n.get() == 1;
///     async move { if first { Err("blip") } else { Ok(7) } }
/// }))
/// .unwrap();
/// assert_eq!(out, Ok(7));
/// assert_eq!(kinds.0.get(), Some(CallKind::SucceededAfterRetries));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallKind {
    /// Succeeded at the first attempt.
    SucceededWithoutRetry,
    /// Succeeded after one retry or more.
    SucceededAfterRetries,
    /// Failed at the first attempt and was not retried (a permanent error, a budget or a
    /// deadline that allowed no retry, or `max_attempts` 1).
    FailedWithoutRetry,
    /// Failed after one retry or more.
    FailedAfterRetries,
}

/// Calls counted by kind ([`Counters::calls`]), as resilience4j's retry metrics.
///
/// ```
/// let c = bulwark::retry::Calls::default();
/// assert_eq!(c.succeeded_without_retry + c.failed_after_retries, 0);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Calls {
    /// [`CallKind::SucceededWithoutRetry`].
    pub succeeded_without_retry: u64,
    /// [`CallKind::SucceededAfterRetries`].
    pub succeeded_after_retries: u64,
    /// [`CallKind::FailedWithoutRetry`].
    pub failed_without_retry: u64,
    /// [`CallKind::FailedAfterRetries`].
    pub failed_after_retries: u64,
}

/// Totals kept by [`Counters`] (wrapping).
///
/// ```
/// use bulwark::retry::{Counters, Totals};
/// assert_eq!(Counters::new().snapshot(), Totals::default());
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Attempts started (first calls and retries).
    pub attempts: u64,
    /// Retries started (attempts after the first of a call).
    pub retries: u64,
    /// Retries the budget denied.
    pub budget_denials: u64,
}

/// [`Hooks`] that count attempts, retries and budget denials: the metrics of a [`Retry`]
/// (or of several, shared by reference). Opt-in, so a retry that does not want totals does
/// not pay an atomic add per call. Usable from a `static`.
///
/// # Memory ordering
///
/// `Relaxed` adds and loads: statistics that order nothing. A snapshot taken while calls run
/// may mix counts from slightly different moments.
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Budget, Config, Counters, Totals, Retry};
/// use bulwark::{MockClock, mock};
///
/// let clock = MockClock::new();
/// let counters = Counters::new();
/// let budget = Budget::new(20, 1, 10).unwrap();
/// let retry = Retry::new(Config::new().max_attempts(5), &clock)
///     .unwrap()
///     .with_hooks(&counters)
///     .with_budget(&budget);
/// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
/// // The floor allowed one retry this second; the second retry was denied.
/// assert_eq!(out.unwrap_err().attempts(), 2);
/// assert_eq!(counters.snapshot(), Totals { attempts: 2, retries: 1, budget_denials: 1 });
/// ```
pub struct Counters {
    attempts: AtomicU64,
    retries: AtomicU64,
    denials: AtomicU64,
    /// Calls by kind, indexed by [`CallKind`] in declaration order.
    calls: [AtomicU64; 4],
}

impl Counters {
    const_fn! {
        /// All zero.
        ///
        /// ```
        /// static COUNTERS: bulwark::retry::Counters = bulwark::retry::Counters::new();
        /// assert_eq!(COUNTERS.snapshot().attempts, 0);
        /// ```
        pub fn new() -> Counters {
            Counters {
                attempts: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                denials: AtomicU64::new(0),
                calls: [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ],
            }
        }
    }

    /// The totals now.
    ///
    /// ```
    /// use bulwark::retry::{Config, Counters, Retry};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let counters = Counters::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_hooks(&counters);
    /// let _ = mock::run(&clock, r.call(|| async { Ok::<_, ()>(1) }));
    /// assert_eq!(counters.snapshot().attempts, 1);
    /// ```
    pub fn snapshot(&self) -> Totals {
        // Relaxed: statistics; they order nothing.
        Totals {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            budget_denials: self.denials.load(Ordering::Relaxed),
        }
    }

    /// The calls that ended, by [kind](CallKind).
    ///
    /// ```
    /// use bulwark::retry::{Calls, Config, Counters, Retry};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let counters = Counters::new();
    /// let r = Retry::new(Config::new().max_attempts(2), &clock).unwrap().with_hooks(&counters);
    /// let _ = mock::run(&clock, r.call(|| async { Ok::<_, ()>(1) }));
    /// let _ = mock::run(&clock, r.call(|| async { Err::<(), _>("down") }));
    /// assert_eq!(
    ///     counters.calls(),
    ///     Calls { succeeded_without_retry: 1, failed_after_retries: 1, ..Calls::default() }
    /// );
    /// ```
    pub fn calls(&self) -> Calls {
        // Relaxed: statistics; they order nothing.
        let n = |k: CallKind| self.calls[k as usize].load(Ordering::Relaxed);
        Calls {
            succeeded_without_retry: n(CallKind::SucceededWithoutRetry),
            succeeded_after_retries: n(CallKind::SucceededAfterRetries),
            failed_without_retry: n(CallKind::FailedWithoutRetry),
            failed_after_retries: n(CallKind::FailedAfterRetries),
        }
    }
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> Hooks<T, E> for Counters {
    fn on_attempt(&self, attempt: u32) {
        // Relaxed: statistics; they order nothing.
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_budget_denied(&self, _attempt: u32, _outcome: &Result<T, E>) {
        // Relaxed: a statistic.
        self.denials.fetch_add(1, Ordering::Relaxed);
    }
    fn on_finish(&self, attempts: u32, finish: Finish) {
        // Relaxed: a statistic.
        self.calls[finish.kind(attempts) as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}
