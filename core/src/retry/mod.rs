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

use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::Clock;

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
    }
}

/// Totals kept by [`Counters`] (wrapping).
///
/// ```
/// use bulwark::retry::{Counters, Totals};
/// assert_eq!(Counters::new().snapshot(), Totals::default());
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
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
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// A retry policy, shared by every call made through it (`&self`).
///
/// `S` is the [`Sleep`](crate::Sleep) (and clock) it waits on, `K` the [`Classify`], `H` the
/// [`Hooks`] and `B` the [`RetryBudget`]; all but `S` default to no-cost choices. `&S`,
/// `&H` and `&B` work too, so the clock, hooks and budget can live elsewhere.
///
/// # Memory ordering
///
/// The policy's only atomic is a call counter that gives each call its own jitter stream. It
/// is touched only when a call's first attempt fails (a successful call costs no atomic
/// operation), with a `Relaxed` fetch-add: atomic whatever its ordering, so every call gets
/// a distinct value, and nothing else is published through it.
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Backoff, Config, Retry};
/// use bulwark::{MockClock, mock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let retry = Retry::new(Config::new().backoff(Backoff::constant(Duration::from_secs(1))), &clock).unwrap();
/// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
/// assert_eq!(out.unwrap_err().attempts(), 3);
/// ```
pub struct Retry<S, K = ErrorsAreFailures, H = (), B = ()> {
    cfg: Config,
    sleeper: S,
    classify: K,
    hooks: H,
    budget: B,
    calls: AtomicU64,
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
            classify: ErrorsAreFailures,
            hooks: (),
            budget: (),
            calls: AtomicU64::new(0),
        })
    }
}

impl<S, K, H, B> Retry<S, K, H, B> {
    /// The classifier.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Classify, Config, Retry, Verdict}};
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// assert_eq!(retry.classifier().classify(&Err::<(), _>("down")), Verdict::FAILURE);
    /// ```
    pub fn classifier(&self) -> &K {
        &self.classify
    }

    /// The clock the policy reads and sleeps on.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, retry::{Config, Retry}};
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// assert_eq!(retry.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &S {
        &self.sleeper
    }

    /// The same policy with `classify` deciding what is retried.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Retry, Verdict}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap()
    ///     .with_classifier(|r: &Result<(), u16>| if matches!(r, Err(500..)) { Verdict::FAILURE } else { Verdict::Ignore });
    /// # let _ = r;
    /// ```
    pub fn with_classifier<K2>(self, classify: K2) -> Retry<S, K2, H, B> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify,
            hooks: self.hooks,
            budget: self.budget,
            calls: self.calls,
        }
    }

    /// The same policy with its classifier replaced by `f` of it (to change one setting of a
    /// classifier that is not `Clone`).
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Classify, Config, Retry, Verdict}};
    /// #[derive(Debug)]
    /// struct Upto(u16);
    /// impl<T> Classify<T, u16> for Upto {
    ///     fn classify(&self, r: &Result<T, u16>) -> Verdict {
    ///         if matches!(r, Err(e) if *e >= self.0) { Verdict::FAILURE } else { Verdict::Ignore }
    ///     }
    /// }
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_classifier(Upto(500));
    /// let r = r.map_classifier(|Upto(n)| Upto(n - 100));
    /// assert_eq!(r.classifier().classify(&Err::<(), u16>(404)), Verdict::FAILURE);
    /// ```
    pub fn map_classifier<K2>(self, f: impl FnOnce(K) -> K2) -> Retry<S, K2, H, B> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: f(self.classify),
            hooks: self.hooks,
            budget: self.budget,
            calls: self.calls,
        }
    }

    /// The same policy reporting to `hooks` (for totals, [`Counters`]).
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
            calls: self.calls,
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
            calls: self.calls,
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

    /// The hooks.
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Counters, Retry}};
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_hooks(Counters::new());
    /// assert_eq!(r.hooks().snapshot().attempts, 0);
    /// ```
    pub fn hooks(&self) -> &H {
        &self.hooks
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
}

impl<S, K, H, B: fmt::Debug> fmt::Debug for Retry<S, K, H, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("config", &self.cfg)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
