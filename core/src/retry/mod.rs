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
//! * The [`Classify`] decides: [`Verdict::Return`] hands the result back at once (a success,
//!   or an error that retrying cannot fix: [`Error::Permanent`]); [`Verdict::Retry`] and
//!   [`Verdict::RetryAfter`] retry — an `Ok` result too ("try later" responses). When the
//!   retries run out on a retryable *result*, that result is returned as `Ok`, not an error.
//! * A `RetryAfter(d)` hint replaces the computed delay, cut to
//!   [`Config::max_retry_after`].
//! * The call never sleeps past its [`Deadline`](crate::timeout::Deadline) nor plans an
//!   attempt after `max_elapsed`: when the next attempt could not start in time it returns at
//!   once with the last outcome. A deadline already past means no attempt at all. (An attempt
//!   itself is not cut short: wrap the operation in [`timeout_at`](crate::timeout::timeout_at)
//!   for that.)
//! * Each retry is asked of the [`RetryBudget`]; successes deposit into it.
//!
//! # Examples
//!
//! ```
//! use bulwark::retry::{Backoff, Config, Retry, Verdict};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::cell::Cell;
//! use core::time::Duration;
//!
//! #[derive(Debug, PartialEq)]
//! enum HttpError { Unavailable, NotFound }
//!
//! let clock = MockClock::new();
//! let retry = Retry::new(
//!     Config::new().max_attempts(4).backoff(Backoff::exponential(Duration::from_secs(1))),
//!     &clock,
//! )
//! .unwrap()
//! .with_classifier(|r: &Result<&str, HttpError>| match r {
//!     Err(HttpError::Unavailable) => Verdict::Retry,
//!     _ => Verdict::Return, // success, or a 404 that retrying will not fix
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
//! assert_eq!(retry.metrics().retries, 2);
//! ```

mod backoff;
mod budget;
mod error;
mod future;
mod machine;

pub use backoff::{Backoff, Jitter};
pub use budget::{Budget, RetryBudget};
pub use error::{ConfigError, Error};
pub use future::Call;
pub use machine::{Config, Decision, RetryState, Stop};

use core::fmt;
use core::time::Duration;

use crate::sync::{AtomicU64, Ordering};
use crate::time::Clock;

/// What to do with an attempt's result.
///
/// ```
/// use bulwark::retry::Verdict;
/// use core::time::Duration;
/// assert_ne!(Verdict::Retry, Verdict::RetryAfter(Duration::from_secs(1)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Hand the result back now: an `Ok` as is, an `Err` as [`Error::Permanent`].
    Return,
    /// Transient: retry after the backoff delay.
    Retry,
    /// Transient: retry after this delay (a Retry-After hint), instead of the backoff's.
    RetryAfter(Duration),
}

/// Decides the [`Verdict`] for an attempt's result. Closures
/// `Fn(&Result<T, E>) -> Verdict` are classifiers.
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Classify, ErrorsAreTransient, Verdict};
/// use core::time::Duration;
///
/// enum Response { Ok, TryLater { after_secs: u64 } }
/// let classify = |r: &Result<Response, u16>| match r {
///     Ok(Response::TryLater { after_secs }) => Verdict::RetryAfter(Duration::from_secs(*after_secs)),
///     Ok(Response::Ok) => Verdict::Return,
///     Err(400..=499) => Verdict::Return, // the caller's fault: permanent
///     Err(_) => Verdict::Retry,
/// };
/// assert_eq!(classify.classify(&Err(404)), Verdict::Return);
/// assert_eq!(classify.classify(&Ok(Response::TryLater { after_secs: 2 })), Verdict::RetryAfter(Duration::from_secs(2)));
/// assert_eq!(Classify::<(), ()>::classify(&ErrorsAreTransient, &Err(())), Verdict::Retry);
/// ```
pub trait Classify<T, E> {
    /// The verdict on `result`.
    fn classify(&self, result: &Result<T, E>) -> Verdict;
}

/// The default classifier: every `Err` is transient, every `Ok` is returned.
///
/// ```
/// use bulwark::retry::{Classify, ErrorsAreTransient, Verdict};
/// assert_eq!(Classify::<u8, ()>::classify(&ErrorsAreTransient, &Ok(1)), Verdict::Return);
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct ErrorsAreTransient;

impl<T, E> Classify<T, E> for ErrorsAreTransient {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        if result.is_ok() {
            Verdict::Return
        } else {
            Verdict::Retry
        }
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> Verdict> Classify<T, E> for F {
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        self(result)
    }
}

/// Hooks called by a [`Retry`]. Every method has an empty default and `()` implements the
/// trait, so a retry without hooks pays nothing. Hooks run inline: keep them short.
///
/// `attempt` is the number of the attempt that just finished (1 = the first call).
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Config, Hooks, Retry};
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
/// let retry = Retry::new(Config::new(), &clock).unwrap().with_hooks(&log);
/// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
/// assert!(out.is_err());
/// assert_eq!(log.0.get(), [100, 200]); // the default backoff: 100 ms, then 200 ms
/// ```
pub trait Hooks<T, E> {
    /// A retry will start after `delay`; `outcome` is what attempt `attempt` returned.
    fn on_retry(&self, attempt: u32, delay: Duration, outcome: &Result<T, E>) {
        let _ = (attempt, delay, outcome);
    }
    /// The budget denied the retry after attempt `attempt`; the call returns `outcome`.
    fn on_budget_denied(&self, attempt: u32, outcome: &Result<T, E>) {
        let _ = (attempt, outcome);
    }
}

impl<T, E> Hooks<T, E> for () {}

impl<T, E, H: Hooks<T, E> + ?Sized> Hooks<T, E> for &H {
    fn on_retry(&self, attempt: u32, delay: Duration, outcome: &Result<T, E>) {
        (**self).on_retry(attempt, delay, outcome)
    }
    fn on_budget_denied(&self, attempt: u32, outcome: &Result<T, E>) {
        (**self).on_budget_denied(attempt, outcome)
    }
}

/// Totals of a [`Retry`] since it was built (wrapping).
///
/// ```
/// use bulwark::retry::{Config, Retry, Metrics};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let r = Retry::new(Config::new(), &clock).unwrap();
/// assert_eq!(r.metrics(), Metrics { attempts: 0, retries: 0, budget_denials: 0 });
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Metrics {
    /// Attempts started (first calls and retries).
    pub attempts: u64,
    /// Retries started (attempts after the first of a call).
    pub retries: u64,
    /// Retries the budget denied.
    pub budget_denials: u64,
}

/// A retry policy, shared by every call made through it (`&self`).
///
/// `S` is the [`Sleep`](crate::Sleep) (and clock) it waits on, `K` the [`Classify`], `H` the
/// [`Hooks`] and `B` the [`RetryBudget`]; all but `S` default to no-cost choices. `&S`,
/// `&H` and `&B` work too, so the clock, hooks and budget can live elsewhere.
///
/// # Memory ordering
///
/// The only atomics are the metric counters, updated `Relaxed` (statistics). The counter of
/// attempts also gives each call its own jitter stream (a fetch-add is atomic whatever its
/// ordering, so every call gets a distinct value).
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Budget, Config, Retry};
/// use bulwark::{MockClock, mock};
///
/// let clock = MockClock::new();
/// let budget = Budget::new(20, 1, 10).unwrap();
/// let retry = Retry::new(Config::new().max_attempts(5), &clock).unwrap().with_budget(&budget);
/// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
/// // The floor allowed one retry this second; the second retry was denied.
/// assert_eq!(out.unwrap_err().attempts(), 2);
/// assert_eq!(retry.metrics().budget_denials, 1);
/// ```
pub struct Retry<S, K = ErrorsAreTransient, H = (), B = ()> {
    cfg: Config,
    sleeper: S,
    classify: K,
    hooks: H,
    budget: B,
    attempts: AtomicU64,
    retries: AtomicU64,
    denials: AtomicU64,
}

impl<S: Clock> Retry<S> {
    /// A retry policy waiting on `sleeper`, retrying every `Err`, with no hooks and no
    /// budget.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when [`Config::validate`] fails.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Retry}};
    /// let clock = MockClock::new();
    /// assert!(Retry::new(Config::new(), &clock).is_ok());
    /// ```
    pub fn new(cfg: Config, sleeper: S) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Retry {
            cfg,
            sleeper,
            classify: ErrorsAreTransient,
            hooks: (),
            budget: (),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            denials: AtomicU64::new(0),
        })
    }
}

impl<S, K, H, B> Retry<S, K, H, B> {
    /// The same policy with `classify` deciding what is retried.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Retry, Verdict}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap()
    ///     .with_classifier(|r: &Result<(), u16>| if matches!(r, Err(500..)) { Verdict::Retry } else { Verdict::Return });
    /// # let _ = r;
    /// ```
    pub fn with_classifier<K2>(self, classify: K2) -> Retry<S, K2, H, B> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify,
            hooks: self.hooks,
            budget: self.budget,
            attempts: self.attempts,
            retries: self.retries,
            denials: self.denials,
        }
    }

    /// The same policy reporting to `hooks`.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Hooks, Retry}};
    /// struct Quiet;
    /// impl<T, E> Hooks<T, E> for Quiet {}
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_hooks(Quiet);
    /// # let _ = r;
    /// ```
    pub fn with_hooks<H2>(self, hooks: H2) -> Retry<S, K, H2, B> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: self.classify,
            hooks,
            budget: self.budget,
            attempts: self.attempts,
            retries: self.retries,
            denials: self.denials,
        }
    }

    /// The same policy drawing its retries from `budget` (a [`Budget`], or `&Budget` to
    /// share one between policies).
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Budget, Config, Retry}};
    /// static BUDGET: Budget = match Budget::new(10, 5, 100) { Ok(b) => b, Err(_) => panic!() };
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_budget(&BUDGET);
    /// # let _ = r;
    /// ```
    pub fn with_budget<B2>(self, budget: B2) -> Retry<S, K, H, B2> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: self.classify,
            hooks: self.hooks,
            budget,
            attempts: self.attempts,
            retries: self.retries,
            denials: self.denials,
        }
    }

    /// The configuration.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Retry}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new().max_attempts(7), &clock).unwrap();
    /// assert!(r.config().validate().is_ok());
    /// ```
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The budget.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Budget, Config, Retry}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_budget(Budget::new(10, 1, 5).unwrap());
    /// assert_eq!(r.budget().tokens(), 0);
    /// ```
    pub fn budget(&self) -> &B {
        &self.budget
    }

    /// The totals so far.
    ///
    /// ```
    /// use bulwark::{MockClock, mock, retry::{Config, Retry}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap();
    /// let _ = mock::run(&clock, r.call(|| async { Ok::<_, ()>(1) }));
    /// assert_eq!(r.metrics().attempts, 1);
    /// ```
    pub fn metrics(&self) -> Metrics {
        // Relaxed: statistics; they order nothing.
        Metrics {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            budget_denials: self.denials.load(Ordering::Relaxed),
        }
    }
}

impl<S, K, H, B: fmt::Debug> fmt::Debug for Retry<S, K, H, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("config", &self.cfg)
            .field("budget", &self.budget)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}
