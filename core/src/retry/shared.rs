//! The shared form: [`Retry`], one policy for every call made through it (`&self`).

use core::fmt;

use super::{BackoffFn, Builtin, Classify, Config, ConfigError, ErrorsAreFailures, Verdict};
use crate::sync::AtomicU64;
use crate::time::Clock;

/// A retry policy, shared by every call made through it (`&self`).
///
/// `S` is the [`Sleep`](crate::Sleep) (and clock) it waits on, `K` the [`Classify`](super::Classify), `H` the
/// [`Hooks`](super::Hooks) and `B` the [`RetryBudget`](super::RetryBudget); all but `S` default to no-cost choices. `&S`,
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
pub struct Retry<S, K = ErrorsAreFailures, H = (), B = (), D = Builtin> {
    pub(super) cfg: Config<D>,
    pub(super) sleeper: S,
    pub(super) classify: K,
    pub(super) hooks: H,
    pub(super) budget: B,
    pub(super) calls: AtomicU64,
}

impl<S: Clock, D: BackoffFn> Retry<S, ErrorsAreFailures, (), (), D> {
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
    pub fn new(cfg: Config<D>, sleeper: S) -> Result<Self, ConfigError> {
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

impl<S, K, H, B, D> Retry<S, K, H, B, D> {
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
    pub fn with_classifier<K2>(self, classify: K2) -> Retry<S, K2, H, B, D> {
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
    pub fn map_classifier<K2>(self, f: impl FnOnce(K) -> K2) -> Retry<S, K2, H, B, D> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: f(self.classify),
            hooks: self.hooks,
            budget: self.budget,
            calls: self.calls,
        }
    }

    /// The same policy, but when the attempts run out on a retryable *result* (an `Ok` its
    /// classifier judged a failure), the call fails with [`Error::Exhausted`](super::Error)
    /// holding `into_error` of that result, instead of handing the `Ok` back (resilience4j's
    /// `failAfterMaxAttempts`, which throws `MaxRetriesExceeded`). Errors are unchanged.
    ///
    /// ```
    /// use bulwark::retry::{Config, Error, Jitter, Retry, Verdict};
    /// use bulwark::{MockClock, mock};
    ///
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new().max_attempts(3).jitter(Jitter::None), &clock)
    ///     .unwrap()
    ///     .with_classifier(|r: &Result<u16, String>| match r {
    ///         Ok(503) => Verdict::FAILURE, // "try later": retry on this result
    ///         _ => Verdict::Success,
    ///     });
    /// // By default the last result comes back as it is...
    /// let out = mock::run(&clock, retry.call(|| async { Ok(503) })).unwrap();
    /// assert_eq!(out, Ok(503));
    /// // ...with fail_after_max_attempts, as an error.
    /// let retry = retry.fail_after_max_attempts(|status| format!("still {status}"));
    /// let out = mock::run(&clock, retry.call(|| async { Ok(503) })).unwrap();
    /// assert_eq!(out, Err(Error::Exhausted { last: "still 503".to_string(), attempts: 3 }));
    /// ```
    pub fn fail_after_max_attempts<F>(
        self,
        into_error: F,
    ) -> Retry<S, FailAfterMaxAttempts<K, F>, H, B, D> {
        self.map_classifier(|inner| FailAfterMaxAttempts { inner, into_error })
    }

    /// The same policy reporting to `hooks` (for totals, [`Counters`](super::Counters)).
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Config, Hooks, Retry}};
    /// struct Quiet;
    /// impl<T, E> Hooks<T, E> for Quiet {}
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_hooks(Quiet);
    /// # let _ = r;
    /// ```
    pub fn with_hooks<H2>(self, hooks: H2) -> Retry<S, K, H2, B, D> {
        Retry {
            cfg: self.cfg,
            sleeper: self.sleeper,
            classify: self.classify,
            hooks,
            budget: self.budget,
            calls: self.calls,
        }
    }

    /// The same policy drawing its retries from `budget` (a [`Budget`](super::Budget), or `&Budget` to
    /// share one between policies).
    ///
    /// ```
    /// use bulwark::{MockClock, retry::{Budget, Config, Retry}};
    /// static BUDGET: Budget = match Budget::new(10, 5, 100) { Ok(b) => b, Err(_) => panic!() };
    /// let clock = MockClock::new();
    /// let r = Retry::new(Config::new(), &clock).unwrap().with_budget(&BUDGET);
    /// # let _ = r;
    /// ```
    pub fn with_budget<B2>(self, budget: B2) -> Retry<S, K, H, B2, D> {
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
    pub fn config(&self) -> &Config<D> {
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

impl<S, K, H, B: fmt::Debug, D> fmt::Debug for Retry<S, K, H, B, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("config", &self.cfg)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// A classifier that judges as `K` does and turns a retryable result left when the attempts
/// run out into an error: what [`Retry::fail_after_max_attempts`] installs.
///
/// ```
/// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
/// use bulwark::retry::FailAfterMaxAttempts;
/// let k = FailAfterMaxAttempts::new(|r: &Result<u16, &str>| {
///     if r == &Ok(503) { Verdict::FAILURE } else { Verdict::Success }
/// }, |_status: u16| "gave up");
/// assert_eq!(k.classify(&Ok(503)), Verdict::FAILURE);
/// assert_eq!(k.exhausted(Ok(503)), Err("gave up"));
/// # let _ = ErrorsAreFailures;
/// ```
#[derive(Copy, Clone)]
pub struct FailAfterMaxAttempts<K, F> {
    inner: K,
    into_error: F,
}

impl<K, F> FailAfterMaxAttempts<K, F> {
    /// `inner`'s verdicts; `into_error` for a retryable `Ok` left at the end.
    ///
    /// ```
    /// use bulwark::classify::{Classify, ErrorsAreFailures};
    /// use bulwark::retry::FailAfterMaxAttempts;
    /// let k = FailAfterMaxAttempts::new(ErrorsAreFailures, |v: u8| v as u16);
    /// assert_eq!(Classify::<u8, u16>::exhausted(&k, Err(7)), Err(7)); // errors unchanged
    /// ```
    pub const fn new(inner: K, into_error: F) -> Self {
        FailAfterMaxAttempts { inner, into_error }
    }
}

impl<T, E, K: Classify<T, E>, F: Fn(T) -> E> Classify<T, E> for FailAfterMaxAttempts<K, F> {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        self.inner.classify(result)
    }

    fn exhausted(&self, result: Result<T, E>) -> Result<T, E> {
        match self.inner.exhausted(result) {
            Ok(v) => Err((self.into_error)(v)),
            Err(e) => Err(e),
        }
    }
}

impl<K: fmt::Debug, F> fmt::Debug for FailAfterMaxAttempts<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailAfterMaxAttempts")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
