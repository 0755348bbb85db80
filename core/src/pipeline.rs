//! The pipeline: the patterns composed in a sound order, with one error type.
//!
//! ```text
//! fallback ▸ total timeout ▸ retry ▸ circuit breaker ▸ rate limiter ▸ bulkhead ▸ attempt timeout ▸ operation
//! ```
//!
//! Why this order, from the outside in:
//!
//! * **Fallback** is outermost: it sees the final answer of everything below, including a
//!   total timeout, and decides what the caller gets instead. It is the [`fallback`] module's
//!   chain around [`Pipeline::call`] (see the example).
//! * **Total timeout** bounds the whole call, retries and their sleeps included. It is a
//!   [`Deadline`] that retry reads, so retry never sleeps past it, and that caps each
//!   attempt's own timeout, so an attempt is cut at the deadline. Zero (for it and for the
//!   attempt timeout) means what [a zero timeout](crate::timeout#a-zero-timeout) means
//!   everywhere in bulwark: a ready operation still completes, a pending one is cut at once.
//! * **Retry** wraps the admission layers so that a rejection that will clear soon can be
//!   waited out: an open circuit reports when a probe could pass, and retry uses that instant
//!   as its delay (a Retry-After hint) instead of hammering, when it fits the call's deadline.
//!   Load shedding does not wait: by default a saturated rate limiter or a full bulkhead is
//!   answered at once, so a server sheds in microseconds (see [`Waits`] for the rule and the
//!   other choices). An attempt timeout is retried with the normal backoff.
//! * **Circuit breaker** before the limiter and bulkhead: when the downstream is known to be
//!   down, reject before spending a rate token or a concurrency slot on it. It counts each
//!   attempt (not each call), so retries feed it the truth about the downstream.
//! * **Rate limiter** before the bulkhead: a token is spent only by calls that could run, and
//!   a rejected call never held a bulkhead slot.
//! * **Bulkhead** closest to the operation: its slot is held exactly while the operation runs.
//! * **Attempt timeout** around the operation only: a slow attempt fails (and counts as a
//!   breaker failure), and its bulkhead slot is freed. An attempt cut short by the *total*
//!   timeout is the caller giving up, not the downstream failing: the breaker does not record
//!   it (a probe gives its slot back).
//!
//! Each layer is optional (`()` switches one off) and admissions inside the pipeline never
//! wait: they shed, and retry does the waiting with the instants they report. To compose in
//! another order, nest the building blocks yourself ([`timeout_at`], [`Retry::call`],
//! [`CircuitBreaker::call`](crate::circuit_breaker::CircuitBreaker::call),
//! [`Bulkhead::acquire`](crate::bulkhead::Bulkhead::acquire), ...): each is an ordinary
//! future, and nesting them costs nothing either.
//!
//! Nothing is boxed and nothing is dispatched dynamically: a pipeline call is one named
//! future, usable without `std` or `alloc`.
//!
//! # Errors
//!
//! [`Error`] says which layer rejected, or carries the operation's own error unchanged. An
//! operation error counts as a breaker failure and is retried when the pipeline's
//! [`transient`](Pipeline::transient) predicate says so; a non-transient error (a caller
//! error such as "not found") is returned at once and the breaker ignores it.
//!
//! # Examples
//!
//! ```
//! use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, State};
//! use bulwark::fallback::fallback;
//! use bulwark::pipeline::{Error, Pipeline};
//! use bulwark::retry::{Backoff, Config as RetryConfig, Jitter};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::future::IntoFuture;
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let breaker = CircuitBreaker::new(BreakerConfig::new().consecutive_failures(3), &clock).unwrap();
//! let pipeline = Pipeline::new(
//!     &clock,
//!     RetryConfig::new()
//!         .max_attempts(3)
//!         .backoff(Backoff::constant(Duration::from_millis(100)))
//!         .jitter(Jitter::None), // exact delays, for the assertion below
//! )
//! .unwrap()
//! .breaker(&breaker)
//! .total_timeout(Duration::from_secs(2))
//! .attempt_timeout(Duration::from_millis(500));
//!
//! // The downstream is down: three attempts, then the fallback answers.
//! let answer = fallback(|| pipeline.call(|| async { Err::<&str, _>("503") }))
//!     .or(|_: Error<&str>| async { Ok("cached page") });
//! assert_eq!(mock::run(&clock, answer.into_future()).unwrap(), Ok("cached page"));
//! assert_eq!(clock.now(), Instant::from_millis(200));
//! assert_eq!(breaker.state(), State::Open); // three failures in a row
//! ```

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use crate::bulkhead::{self, Bulkhead, BulkheadFull, TrySemaphore};
use crate::circuit_breaker::{self, CircuitBreaker, Events, Outcome, Window};
use crate::rate_limiter::{RateLimited, RateLimiter};
use crate::retry::{self, Classify, Operation, Retry, RetryBudget, Verdict};
use crate::time::{Clock, Instant, Sleep};
use crate::timeout::{Deadline, Elapsed, Timeout, timeout_at, timeout_within};

#[cfg(doc)]
use crate::fallback;

// ===== the error =====

/// What went wrong in a pipeline call: which layer rejected, or the operation's own error.
///
/// ```
/// use bulwark::pipeline::{Error, Layer};
/// let e: Error<&str> = Error::Operation("boom");
/// assert_eq!(e.layer(), Layer::Operation);
/// assert_eq!(e.into_operation(), Some("boom"));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The operation failed with this error (on its last attempt), unchanged.
    Operation(E),
    /// The circuit breaker was open.
    CircuitOpen(circuit_breaker::Rejected),
    /// The rate limiter refused the attempt.
    RateLimited(RateLimited),
    /// The bulkhead had no free slot.
    BulkheadFull(BulkheadFull),
    /// The last attempt ran past its attempt timeout.
    AttemptTimeout(Elapsed),
    /// The whole call ran past its total timeout (retries included).
    Timeout(Elapsed),
}

/// The layer an [`Error`] comes from.
///
/// ```
/// use bulwark::pipeline::{Error, Layer};
/// use bulwark::bulkhead::BulkheadFull;
/// assert_eq!(Error::<()>::BulkheadFull(BulkheadFull).layer(), Layer::Bulkhead);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// The operation itself.
    Operation,
    /// The circuit breaker.
    CircuitBreaker,
    /// The rate limiter.
    RateLimiter,
    /// The bulkhead.
    Bulkhead,
    /// The attempt timeout.
    AttemptTimeout,
    /// The total timeout.
    Timeout,
}

impl<E> Error<E> {
    /// The layer the error comes from.
    ///
    /// ```
    /// use bulwark::pipeline::{Error, Layer};
    /// use bulwark::{Instant, timeout::Elapsed};
    /// let e: Error<()> = Error::Timeout(Elapsed { deadline: Instant::ZERO });
    /// assert_eq!(e.layer(), Layer::Timeout);
    /// ```
    pub fn layer(&self) -> Layer {
        match self {
            Error::Operation(_) => Layer::Operation,
            Error::CircuitOpen(_) => Layer::CircuitBreaker,
            Error::RateLimited(_) => Layer::RateLimiter,
            Error::BulkheadFull(_) => Layer::Bulkhead,
            Error::AttemptTimeout(_) => Layer::AttemptTimeout,
            Error::Timeout(_) => Layer::Timeout,
        }
    }

    /// The operation's own error, if that is what this is.
    ///
    /// ```
    /// use bulwark::pipeline::Error;
    /// assert_eq!(Error::Operation(3).into_operation(), Some(3));
    /// ```
    pub fn into_operation(self) -> Option<E> {
        match self {
            Error::Operation(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Operation(e) => e.fmt(f),
            Error::CircuitOpen(r) => r.fmt(f),
            Error::RateLimited(r) => r.fmt(f),
            Error::BulkheadFull(r) => r.fmt(f),
            Error::AttemptTimeout(e) => write!(f, "attempt timed out: {e}"),
            Error::Timeout(e) => write!(f, "timed out: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Operation(e) => Some(e),
            Error::CircuitOpen(r) => Some(r),
            Error::RateLimited(r) => Some(r),
            Error::BulkheadFull(r) => Some(r),
            Error::AttemptTimeout(e) | Error::Timeout(e) => Some(e),
        }
    }
}

/// A future whose output is a `Result`: names its `Ok` and `Err` types (every such future
/// implements it).
///
/// ```
/// use bulwark::pipeline::ResultFuture;
/// fn err_type<F: ResultFuture<Err = u8>>(_: F) {}
/// err_type(async { Ok::<(), u8>(()) });
/// ```
pub trait ResultFuture: Future<Output = Result<Self::Ok, Self::Err>> {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<F: Future<Output = Result<T, E>>, T, E> ResultFuture for F {
    type Ok = T;
    type Err = E;
}

// ===== the stages =====

/// A circuit breaker stage: [`CircuitBreaker`], or `()` for none.
///
/// ```
/// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, Outcome}, pipeline::BreakerStage};
/// let clock = MockClock::new();
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
/// let permit = BreakerStage::admit(&b).unwrap();
/// <CircuitBreaker<_> as BreakerStage>::settle(permit, Outcome::Failure);
/// assert!(BreakerStage::admit(&b).is_err());
/// assert!(BreakerStage::admit(&()).is_ok()); // `()`: no breaker
/// ```
pub trait BreakerStage {
    /// Held while an attempt runs.
    type Permit<'a>
    where
        Self: 'a;
    /// Admits an attempt, or says why not.
    fn admit(&self) -> Result<Self::Permit<'_>, circuit_breaker::Rejected>;
    /// Records the attempt's outcome.
    fn settle(permit: Self::Permit<'_>, outcome: Outcome);
}

impl BreakerStage for () {
    type Permit<'a> = ();
    #[inline]
    fn admit(&self) -> Result<(), circuit_breaker::Rejected> {
        Ok(())
    }
    #[inline]
    fn settle(_: (), _: Outcome) {}
}

impl<C: Clock, W: Window, E: Events> BreakerStage for CircuitBreaker<C, W, E> {
    type Permit<'a>
        = circuit_breaker::Permit<'a, C, W, E>
    where
        Self: 'a;
    #[inline]
    fn admit(&self) -> Result<Self::Permit<'_>, circuit_breaker::Rejected> {
        self.try_acquire()
    }
    #[inline]
    fn settle(permit: Self::Permit<'_>, outcome: Outcome) {
        permit.record(outcome)
    }
}

/// A rate limiter stage: [`RateLimiter`], or `()` for none.
///
/// ```
/// use bulwark::{MockClock, pipeline::LimiterStage, rate_limiter::{Config, RateLimiter}};
/// let clock = MockClock::new();
/// let l = RateLimiter::new(Config::per_second(1), &clock).unwrap();
/// assert!(l.admit().is_ok());
/// assert!(l.admit().is_err());
/// ```
pub trait LimiterStage {
    /// Takes one token, or says when one would be free.
    fn admit(&self) -> Result<(), RateLimited>;
}

impl LimiterStage for () {
    #[inline]
    fn admit(&self) -> Result<(), RateLimited> {
        Ok(())
    }
}

impl<C: Clock> LimiterStage for RateLimiter<C> {
    #[inline]
    fn admit(&self) -> Result<(), RateLimited> {
        self.check()
    }
}

/// A bulkhead stage: [`Bulkhead`], or `()` for none. Inside a pipeline the bulkhead sheds at
/// once; retry does the waiting.
///
/// ```
/// use bulwark::{MockClock, bulkhead::{Bulkhead, Config}, pipeline::BulkheadStage};
/// let clock = MockClock::new();
/// let h = Bulkhead::new(Config::new(1), &clock).unwrap();
/// let slot = h.admit().unwrap();
/// assert!(h.admit().is_err());
/// drop(slot);
/// ```
pub trait BulkheadStage {
    /// Held while an attempt runs.
    type Permit<'a>
    where
        Self: 'a;
    /// Takes a slot if one is free.
    fn admit(&self) -> Result<Self::Permit<'_>, BulkheadFull>;
}

impl BulkheadStage for () {
    type Permit<'a> = ();
    #[inline]
    fn admit(&self) -> Result<(), BulkheadFull> {
        Ok(())
    }
}

impl<S: TrySemaphore, C: Clock> BulkheadStage for Bulkhead<S, C> {
    type Permit<'a>
        = bulkhead::Permit<'a, S>
    where
        Self: 'a;
    #[inline]
    fn admit(&self) -> Result<Self::Permit<'_>, BulkheadFull> {
        self.try_acquire()
    }
}

/// Decides which operation errors are transient: retried, and counted as breaker failures.
/// `Fn(&E) -> bool` closures are predicates.
///
/// ```
/// use bulwark::pipeline::Transient;
/// let server_side = |e: &u16| *e >= 500;
/// assert!(server_side.is_transient(&503) && !server_side.is_transient(&400));
/// ```
pub trait Transient<E> {
    /// `true` when retrying may help.
    fn is_transient(&self, error: &E) -> bool;
}

/// The default predicate: every operation error is transient.
///
/// ```
/// use bulwark::pipeline::{AllTransient, Transient};
/// assert!(Transient::<u16>::is_transient(&AllTransient, &404));
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct AllTransient;

impl<E> Transient<E> for AllTransient {
    fn is_transient(&self, _: &E) -> bool {
        true
    }
}

impl<E, F: Fn(&E) -> bool> Transient<E> for F {
    fn is_transient(&self, error: &E) -> bool {
        self(error)
    }
}

/// Which admission rejections a pipeline's retry waits out; the others are answered at once.
///
/// The rule: retry waits for what will clear by itself within the call's deadline. An open
/// circuit breaker says when its next probe can pass; waiting until then (never past the
/// deadline: a retry instant beyond it ends the call at once) is cheaper for everyone than
/// failing and being called again. A saturated rate limiter or a full bulkhead is the
/// system shedding load: waiting in line would hold the caller's resources exactly when
/// there are none to spare, so by default they are answered at once (a server turns them
/// into 429 / 503 in microseconds). A forced-open breaker has no instant and is never
/// waited for.
///
/// | rejection | [`Breaker`](Waits::Breaker) (default) | [`All`](Waits::All) | [`Nothing`](Waits::Nothing) |
/// |---|---|---|---|
/// | breaker open (retry instant known) | waits until then, if within the deadline | same | at once |
/// | breaker half-open, every probe out | retried with the backoff | same | at once |
/// | breaker forced open | at once | at once | at once |
/// | rate limited | at once | waits until its retry instant | at once |
/// | bulkhead full | at once | retried with the backoff | at once |
///
/// `All` suits a batch client that would rather queue than fail; `Nothing` a caller that
/// does its own retrying.
///
/// ```
/// use bulwark::pipeline::{Error, Pipeline, Waits};
/// use bulwark::rate_limiter::{Config as Rl, RateLimiter};
/// use bulwark::{Clock, Instant, MockClock, mock, retry::Config};
/// let clock = MockClock::new();
/// let limiter = RateLimiter::new(Rl::per_second(1).burst(1), &clock).unwrap();
/// let shed = Pipeline::new(&clock, Config::new().max_attempts(3)).unwrap().limiter(&limiter);
/// assert_eq!(mock::run(&clock, shed.call(|| async { Ok::<_, ()>(1) })).unwrap(), Ok(1));
/// // The token is spent: the next call is answered at once, with when to come back.
/// let out = mock::run(&clock, shed.call(|| async { Ok::<_, ()>(2) })).unwrap();
/// assert!(matches!(out, Err(Error::RateLimited(r)) if r.retry_at == Instant::from_secs(1)));
/// assert_eq!(clock.now(), Instant::ZERO);
/// // Told to wait, the same call waits for the token instead.
/// let queue = shed.waits(Waits::All);
/// assert_eq!(mock::run(&clock, queue.call(|| async { Ok::<_, ()>(3) })).unwrap(), Ok(3));
/// assert_eq!(clock.now(), Instant::from_secs(1));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Waits {
    /// Wait out an open breaker (within the deadline); answer shedding at once. The default.
    #[default]
    Breaker,
    /// Also wait for a rate limiter's retry instant, and retry a full bulkhead with the
    /// backoff.
    All,
    /// Answer every admission rejection at once.
    Nothing,
}

/// Retry's classifier inside a pipeline: admission rejections are waited out or answered at
/// once as [`Waits`] says, attempt timeouts retried, operation errors retried when transient.
///
/// ```
/// use bulwark::{MockClock, pipeline::Pipeline, retry::{Classify, Config, Verdict}};
/// use bulwark::pipeline::Error;
/// let clock = MockClock::new();
/// let p = Pipeline::new(&clock, Config::new()).unwrap();
/// let classifier = p.retry().classifier();
/// assert_eq!(classifier.classify(&Err::<(), _>(Error::Operation("down"))), Verdict::Retry);
/// ```
#[derive(Debug)]
pub struct Classifier<'c, S, P> {
    clock: &'c S,
    transient: P,
    waits: Waits,
}

impl<T, E, S: Clock, P: Transient<E>> Classify<T, Error<E>> for Classifier<'_, S, P> {
    #[inline]
    fn classify(&self, r: &Result<T, Error<E>>) -> Verdict {
        match r {
            Ok(_) | Err(Error::Timeout(_)) => Verdict::Return,
            Err(Error::Operation(e)) if self.transient.is_transient(e) => Verdict::Retry,
            Err(Error::Operation(_)) => Verdict::Return,
            Err(Error::AttemptTimeout(_)) => Verdict::Retry,
            Err(rejected) => self.rejection(rejected),
        }
    }
}

impl<S: Clock, P> Classifier<'_, S, P> {
    /// An admission rejection, as [`Waits`] says. Kept out of line: the ready call's path
    /// (`Ok`) stays as small as it was before the rule existed (the core pipeline bench row).
    #[inline(never)]
    fn rejection<E>(&self, r: &Error<E>) -> Verdict {
        // An instant already here (a half-open breaker whose probes are all out says "now")
        // adds nothing to the backoff: retry with it, rather than at once.
        let after = |at: Instant| match at.saturating_duration_since(self.clock.now()) {
            d if d.is_zero() => Verdict::Retry,
            d => Verdict::RetryAfter(d),
        };
        match (r, self.waits) {
            (Error::CircuitOpen(rejected), Waits::Breaker | Waits::All) => {
                rejected.retry_at.map_or(Verdict::Return, after)
            }
            (Error::RateLimited(limited), Waits::All) => after(limited.retry_at),
            (Error::BulkheadFull(_), Waits::All) => Verdict::Retry,
            _ => Verdict::Return,
        }
    }
}

// ===== the pipeline =====

/// The composed policies (see the [module](self) docs for the order and why). Build it with
/// [`Pipeline::new`] and the `with`-style methods; call it with [`Pipeline::call`].
///
/// ```
/// use bulwark::pipeline::Pipeline;
/// use bulwark::{MockClock, mock, retry::Config};
/// let clock = MockClock::new();
/// let p = Pipeline::new(&clock, Config::new().max_attempts(1)).unwrap();
/// assert_eq!(mock::run(&clock, p.call(|| async { Ok::<_, ()>(7) })).unwrap(), Ok(7));
/// ```
pub struct Pipeline<'c, S, P = AllTransient, B = (), CB = (), RL = (), BH = ()> {
    clock: &'c S,
    retry: Retry<&'c S, Classifier<'c, S, P>, (), B>,
    breaker: &'c CB,
    limiter: &'c RL,
    bulkhead: &'c BH,
    total: Option<Duration>,
    attempt: Option<Duration>,
}

impl<S, P, B, CB, RL, BH> fmt::Debug for Pipeline<'_, S, P, B, CB, RL, BH> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("total_timeout", &self.total)
            .field("attempt_timeout", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<'c, S: Sleep> Pipeline<'c, S> {
    /// A pipeline on `clock` retrying by `retry` (give `max_attempts(1)` for no retries), with
    /// no breaker, limiter, bulkhead or timeouts yet.
    ///
    /// # Errors
    ///
    /// [`retry::ConfigError`] when the retry configuration is invalid.
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::Config};
    /// let clock = MockClock::new();
    /// assert!(Pipeline::new(&clock, Config::new().max_attempts(0)).is_err());
    /// ```
    pub fn new(clock: &'c S, retry: retry::Config) -> Result<Self, retry::ConfigError> {
        let classifier = Classifier {
            clock,
            transient: AllTransient,
            waits: Waits::Breaker,
        };
        Ok(Pipeline {
            clock,
            retry: Retry::new(retry, clock)?.with_classifier(classifier),
            breaker: &(),
            limiter: &(),
            bulkhead: &(),
            total: None,
            attempt: None,
        })
    }
}

impl<'c, S: Sleep, P, B, CB, RL, BH> Pipeline<'c, S, P, B, CB, RL, BH> {
    /// Adds a circuit breaker.
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::Config};
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Cb::new().consecutive_failures(5), &clock).unwrap();
    /// let _p = Pipeline::new(&clock, Config::new()).unwrap().breaker(&b);
    /// ```
    pub fn breaker<CB2: BreakerStage>(
        self,
        breaker: &'c CB2,
    ) -> Pipeline<'c, S, P, B, CB2, RL, BH> {
        Pipeline {
            clock: self.clock,
            retry: self.retry,
            breaker,
            limiter: self.limiter,
            bulkhead: self.bulkhead,
            total: self.total,
            attempt: self.attempt,
        }
    }

    /// Adds a rate limiter.
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::Config};
    /// use bulwark::rate_limiter::{Config as Rl, RateLimiter};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Rl::per_second(100), &clock).unwrap();
    /// let _p = Pipeline::new(&clock, Config::new()).unwrap().limiter(&l);
    /// ```
    pub fn limiter<RL2: LimiterStage>(
        self,
        limiter: &'c RL2,
    ) -> Pipeline<'c, S, P, B, CB, RL2, BH> {
        Pipeline {
            clock: self.clock,
            retry: self.retry,
            breaker: self.breaker,
            limiter,
            bulkhead: self.bulkhead,
            total: self.total,
            attempt: self.attempt,
        }
    }

    /// Adds a bulkhead.
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::Config};
    /// use bulwark::bulkhead::{Bulkhead, Config as Bh};
    /// let clock = MockClock::new();
    /// let h = Bulkhead::new(Bh::new(10), &clock).unwrap();
    /// let _p = Pipeline::new(&clock, Config::new()).unwrap().bulkhead(&h);
    /// ```
    pub fn bulkhead<BH2: BulkheadStage>(
        self,
        bulkhead: &'c BH2,
    ) -> Pipeline<'c, S, P, B, CB, RL, BH2> {
        Pipeline {
            clock: self.clock,
            retry: self.retry,
            breaker: self.breaker,
            limiter: self.limiter,
            bulkhead,
            total: self.total,
            attempt: self.attempt,
        }
    }

    /// Decides which operation errors are transient (retried, counted as breaker failures);
    /// the others return at once and the breaker ignores them. Default: all.
    ///
    /// ```
    /// use bulwark::{MockClock, mock, pipeline::{Error, Pipeline}, retry::Config};
    /// let clock = MockClock::new();
    /// let p = Pipeline::new(&clock, Config::new().max_attempts(5)).unwrap().transient(|e: &u16| *e >= 500);
    /// let out = mock::run(&clock, p.call(|| async { Err::<(), u16>(404) })).unwrap();
    /// assert_eq!(out, Err(Error::Operation(404))); // not retried
    /// ```
    pub fn transient<P2>(self, transient: P2) -> Pipeline<'c, S, P2, B, CB, RL, BH> {
        let classifier = Classifier {
            clock: self.clock,
            transient,
            waits: self.retry.classifier().waits,
        };
        Pipeline {
            clock: self.clock,
            retry: self.retry.with_classifier(classifier),
            breaker: self.breaker,
            limiter: self.limiter,
            bulkhead: self.bulkhead,
            total: self.total,
            attempt: self.attempt,
        }
    }

    /// Which admission rejections retry waits out (default [`Waits::Breaker`]: an open
    /// breaker, within the deadline; a saturated limiter or full bulkhead is answered at
    /// once). See [`Waits`] for the rule.
    ///
    /// ```
    /// use bulwark::{MockClock, mock, pipeline::{Error, Pipeline, Waits}, retry::Config};
    /// use bulwark::bulkhead::{Bulkhead, Config as Bh};
    /// let clock = MockClock::new();
    /// let h = Bulkhead::new(Bh::new(1), &clock).unwrap();
    /// let held = h.try_acquire().unwrap();
    /// let p = Pipeline::new(&clock, Config::new().max_attempts(3)).unwrap().bulkhead(&h).waits(Waits::Nothing);
    /// let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(()) })).unwrap();
    /// assert!(matches!(out, Err(Error::BulkheadFull(_))));
    /// # drop(held);
    /// ```
    pub fn waits(mut self, waits: Waits) -> Self {
        self.retry.classifier_mut().waits = waits;
        self
    }

    /// Shares a retry budget across calls (see [`retry::Budget`]).
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::{Budget, Config}};
    /// let budget = Budget::new(20, 10, 100).unwrap();
    /// let clock = MockClock::new();
    /// let _p = Pipeline::new(&clock, Config::new()).unwrap().budget(&budget);
    /// ```
    pub fn budget<B2: RetryBudget>(self, budget: B2) -> Pipeline<'c, S, P, B2, CB, RL, BH> {
        Pipeline {
            clock: self.clock,
            retry: self.retry.with_budget(budget),
            breaker: self.breaker,
            limiter: self.limiter,
            bulkhead: self.bulkhead,
            total: self.total,
            attempt: self.attempt,
        }
    }

    /// Bounds each whole call, retries and sleeps included. It counts from
    /// [`call`](Pipeline::call), like `tokio::time::timeout`; so does the retry's
    /// `max_elapsed` inside a pipeline. A zero total timeout means what it means everywhere
    /// in bulwark ([a zero timeout](crate::timeout#a-zero-timeout)): an operation ready at its
    /// first poll still completes (once: nothing is retried); a pending one is cut at once
    /// with [`Error::Timeout`].
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, Sleep, mock, pipeline::{Error, Pipeline}, retry::Config};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let p = Pipeline::new(&clock, Config::new()).unwrap().total_timeout(Duration::from_secs(1));
    /// let out = mock::run(&clock, p.call(|| async { clock.sleep(Duration::from_secs(5)).await; Ok::<_, ()>(()) })).unwrap();
    /// assert!(matches!(out, Err(Error::Timeout(_))));
    /// assert_eq!(clock.now(), Instant::from_secs(1));
    /// ```
    pub fn total_timeout(mut self, d: Duration) -> Self {
        self.total = Some(d);
        self
    }

    /// Bounds each attempt, counted from the end of the operation's first poll (its first
    /// `Pending`; an operation ready at once reads no clock), so time the call waits to be
    /// polled, and synchronous work in that first poll, are not charged to the downstream.
    /// An attempt cut by it is a breaker failure; one cut by the total timeout is not. A zero
    /// attempt timeout lets an operation ready at its first poll complete and cuts a pending
    /// one at once ([a zero timeout](crate::timeout#a-zero-timeout)).
    ///
    /// ```
    /// use bulwark::{MockClock, Sleep, mock, pipeline::{Error, Pipeline}, retry::Config};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let p = Pipeline::new(&clock, Config::new().max_attempts(1)).unwrap().attempt_timeout(Duration::from_millis(10));
    /// let out = mock::run(&clock, p.call(|| async { clock.sleep(Duration::from_secs(1)).await; Ok::<_, ()>(()) })).unwrap();
    /// assert!(matches!(out, Err(Error::AttemptTimeout(_))));
    /// ```
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt = Some(d);
        self
    }

    /// The retry policy (its configuration, budget).
    ///
    /// ```
    /// use bulwark::{MockClock, pipeline::Pipeline, retry::Config};
    /// let clock = MockClock::new();
    /// let cfg = Config::new().max_attempts(4);
    /// let p = Pipeline::new(&clock, cfg).unwrap();
    /// assert_eq!(format!("{:?}", p.retry().config()), format!("{cfg:?}"));
    /// ```
    pub fn retry(&self) -> &Retry<&'c S, Classifier<'c, S, P>, (), B> {
        &self.retry
    }
}

impl<'c, S, P, B, CB, RL, BH> Pipeline<'c, S, P, B, CB, RL, BH>
where
    S: Sleep,
    B: RetryBudget,
    CB: BreakerStage,
    RL: LimiterStage,
    BH: BulkheadStage,
{
    /// Runs `op` through every layer. `op` (a closure, or any [`Operation`]) makes one
    /// attempt's future; it is called again for each retry, and not at all for an attempt a
    /// layer rejects.
    ///
    /// # Errors
    ///
    /// [`Error`]: the layer that rejected the last attempt, the total timeout, or the
    /// operation's own error.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the running attempt (its breaker permit is abandoned, not
    /// recorded; its bulkhead slot is freed) or the pending retry sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, mock, pipeline::Pipeline, retry::Config};
    /// use core::cell::Cell;
    /// let clock = MockClock::new();
    /// let p = Pipeline::new(&clock, Config::new().max_attempts(3)).unwrap();
    /// let tries = Cell::new(0);
    /// let out = mock::run(&clock, p.call(|| {
    ///     tries.set(tries.get() + 1);
    ///     let n = tries.get();
    ///     async move { if n < 3 { Err("flaky") } else { Ok(n) } }
    /// }));
    /// assert_eq!(out.unwrap(), Ok(3));
    /// ```
    pub fn call<'p, Op, Fut>(&'p self, op: Op) -> Call<'p, 'c, S, P, B, CB, RL, BH, Op, Fut>
    where
        Op: Operation<Future = Fut>,
        Fut: ResultFuture,
        P: Transient<Fut::Err>,
    {
        // One clock read serves the total deadline and the retry's start (its `max_elapsed`):
        // like `tokio::time::timeout`, they count from this call. Each attempt's own timeout
        // counts from the operation's first `Pending` (see `attempt_timeout`).
        let now = (self.total.is_some() || self.retry.config().max_elapsed.is_some())
            .then(|| self.clock.now());
        let total = match (self.total, now) {
            (Some(d), Some(now)) => Deadline::after(now, d),
            _ => Deadline::NONE,
        };
        let attempts = Attempts {
            pipeline: self,
            op,
            total,
        };
        Call {
            inner: self.retry.call_operation_from(now, total, attempts),
            total,
        }
    }
}

/// Makes each attempt: the admissions, then the operation under its timeout.
/// The [`Operation`] a pipeline call hands to retry; see [`Pipeline::call`].
///
/// ```
/// use bulwark::{MockClock, mock, pipeline::Pipeline, retry::Config};
/// let clock = MockClock::new();
/// let p = Pipeline::new(&clock, Config::new()).unwrap();
/// // Each retry asks the `Attempts` for a fresh `Attempt`.
/// assert_eq!(mock::run(&clock, p.call(|| async { Ok::<_, ()>(1) })).unwrap(), Ok(1));
/// ```
pub struct Attempts<'p, 'c, S, P, B, CB, RL, BH, Op> {
    pipeline: &'p Pipeline<'c, S, P, B, CB, RL, BH>,
    op: Op,
    total: Deadline,
}

impl<'p, 'c, S, P, B, CB, RL, BH, Op, Fut> Operation for Attempts<'p, 'c, S, P, B, CB, RL, BH, Op>
where
    S: Sleep,
    CB: BreakerStage,
    RL: LimiterStage,
    BH: BulkheadStage,
    P: Transient<Fut::Err>,
    Op: Operation<Future = Fut>,
    Fut: ResultFuture,
{
    type Future = Attempt<'p, S, P, CB, BH, Fut>;

    fn attempt(&mut self) -> Self::Future {
        let p = self.pipeline;
        let rejected = |layer| Attempt {
            state: AttemptState::Rejected { layer: Some(layer) },
        };
        let breaker = match p.breaker.admit() {
            Ok(permit) => permit,
            Err(r) => return rejected(Rejection::Breaker(r)),
        };
        if let Err(r) = p.limiter.admit() {
            return rejected(Rejection::Limiter(r)); // the breaker permit is abandoned, not recorded
        }
        let bulkhead = match p.bulkhead.admit() {
            Ok(permit) => permit,
            Err(r) => return rejected(Rejection::Bulkhead(r)),
        };
        // The attempt's timeout starts with it: anchored (the clock read) only if the
        // operation is pending, and never past the call's total deadline.
        let fut = match p.attempt {
            Some(d) => timeout_within(p.clock, d, self.total, self.op.attempt()),
            None => timeout_at(p.clock, self.total, self.op.attempt()),
        };
        Attempt {
            state: AttemptState::Running {
                fut,
                breaker: Some(breaker),
                _bulkhead: bulkhead,
                transient: &p.retry.classifier().transient,
                total: self.total,
            },
        }
    }
}

impl<S, P, B, CB, RL, BH, Op> fmt::Debug for Attempts<'_, '_, S, P, B, CB, RL, BH, Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempts")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Why an attempt never started.
#[derive(Copy, Clone, Debug)]
enum Rejection {
    Breaker(circuit_breaker::Rejected),
    Limiter(RateLimited),
    Bulkhead(BulkheadFull),
}

pin_project! {
    #[project = AttemptProj]
    enum AttemptState<'p, S, P, CB, BH, Fut>
    where
        S: Sleep,
        CB: BreakerStage,
        CB: 'p,
        BH: BulkheadStage,
        BH: 'p,
    {
        Running {
            #[pin]
            fut: Timeout<'p, S, Fut>,
            breaker: Option<CB::Permit<'p>>,
            _bulkhead: BH::Permit<'p>,
            transient: &'p P,
            total: Deadline,
        },
        Rejected { layer: Option<Rejection> },
    }
}

pin_project! {
    /// One attempt of a pipeline call: admitted (running the operation under its timeout,
    /// holding its breaker permit and bulkhead slot) or rejected by a layer.
    ///
    /// ```
    /// use bulwark::{MockClock, mock, pipeline::{Error, Pipeline}, retry::Config};
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Cb::new().consecutive_failures(1), &clock).unwrap();
    /// b.force_open();
    /// let p = Pipeline::new(&clock, Config::new().max_attempts(1)).unwrap().breaker(&b);
    /// // The only attempt is rejected by the breaker and never runs the operation.
    /// let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(1) })).unwrap();
    /// assert!(matches!(out, Err(Error::CircuitOpen(_))));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Attempt<'p, S, P, CB, BH, Fut>
    where
        S: Sleep,
        CB: BreakerStage,
        CB: 'p,
        BH: BulkheadStage,
        BH: 'p,
    {
        #[pin]
        state: AttemptState<'p, S, P, CB, BH, Fut>,
    }
}

impl<'p, S, P, CB, BH, Fut> Future for Attempt<'p, S, P, CB, BH, Fut>
where
    S: Sleep,
    P: Transient<Fut::Err>,
    CB: BreakerStage,
    BH: BulkheadStage,
    Fut: ResultFuture,
{
    type Output = Result<Fut::Ok, Error<Fut::Err>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            AttemptProj::Rejected { layer } => match layer.take() {
                Some(Rejection::Breaker(r)) => Poll::Ready(Err(Error::CircuitOpen(r))),
                Some(Rejection::Limiter(r)) => Poll::Ready(Err(Error::RateLimited(r))),
                Some(Rejection::Bulkhead(r)) => Poll::Ready(Err(Error::BulkheadFull(r))),
                None => Poll::Pending, // polled after completion
            },
            AttemptProj::Running {
                fut,
                breaker,
                transient,
                total,
                ..
            } => {
                let out = core::task::ready!(fut.poll(cx));
                let (outcome, result) = match out {
                    Ok(Ok(v)) => (Outcome::Success, Ok(v)),
                    Ok(Err(e)) if transient.is_transient(&e) => {
                        (Outcome::Failure, Err(Error::Operation(e)))
                    }
                    Ok(Err(e)) => (Outcome::Ignored, Err(Error::Operation(e))),
                    // Cut by the caller's total deadline, not by its own attempt timeout: the
                    // caller gave up, which says nothing about the downstream. Like a
                    // cancellation it is not recorded (a probe gives its slot back), so a short
                    // remaining budget cannot re-open the breaker.
                    Err(elapsed) if Some(elapsed.deadline) == total.instant() => {
                        (Outcome::Ignored, Err(Error::Timeout(elapsed)))
                    }
                    Err(elapsed) => (Outcome::Failure, Err(Error::AttemptTimeout(elapsed))),
                };
                if let Some(permit) = breaker.take() {
                    CB::settle(permit, outcome);
                }
                Poll::Ready(result)
            }
        }
    }
}

impl<S: Sleep, P, CB: BreakerStage, BH: BulkheadStage, Fut> fmt::Debug
    for Attempt<'_, S, P, CB, BH, Fut>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt").finish_non_exhaustive()
    }
}

/// The retry future inside a [`Call`].
type Inner<'p, 'c, S, P, B, CB, RL, BH, Op, Fut> = retry::Call<
    'p,
    &'c S,
    Classifier<'c, S, P>,
    (),
    B,
    Attempts<'p, 'c, S, P, B, CB, RL, BH, Op>,
    Attempt<'p, S, P, CB, BH, Fut>,
>;

pin_project! {
    /// The future of [`Pipeline::call`]: one named type, no boxing. `Send` whenever its parts
    /// are.
    ///
    /// ```
    /// use bulwark::{MockClock, mock, pipeline::Pipeline, retry::Config};
    /// let clock = MockClock::new();
    /// let p = Pipeline::new(&clock, Config::new()).unwrap();
    /// let call = p.call(|| async { Ok::<_, ()>(1) });
    /// fn is_send<T: Send>(_: &T) {}
    /// is_send(&call);
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<'p, 'c, S, P, B, CB, RL, BH, Op, Fut>
    where
        S: Sleep,
        B: RetryBudget,
        CB: BreakerStage,
        CB: 'p,
        RL: LimiterStage,
        BH: BulkheadStage,
        BH: 'p,
        Fut: ResultFuture,
        P: Transient<Fut::Err>,
        Op: Operation<Future = Fut>,
    {
        #[pin]
        inner: Inner<'p, 'c, S, P, B, CB, RL, BH, Op, Fut>,
        total: Deadline,
    }
}

impl<'p, 'c, S, P, B, CB, RL, BH, Op, Fut> Future for Call<'p, 'c, S, P, B, CB, RL, BH, Op, Fut>
where
    'c: 'p,
    S: Sleep + 'c,
    B: RetryBudget,
    CB: BreakerStage + 'p,
    RL: LimiterStage,
    BH: BulkheadStage + 'p,
    Fut: ResultFuture,
    P: Transient<Fut::Err>,
    Op: Operation<Future = Fut>,
{
    type Output = Result<Fut::Ok, Error<Fut::Err>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = core::task::ready!(this.inner.poll(cx));
        let total = *this.total;
        Poll::Ready(out.map_err(|e| match e {
            retry::Error::Exhausted { last, .. } | retry::Error::BudgetExhausted { last, .. } => {
                last
            }
            retry::Error::Permanent { error, .. } => error,
            // Stopped because the next attempt could not start before the deadline: the last
            // attempt's own error says why (an open circuit, a timeout, ...).
            retry::Error::DeadlineExceeded {
                last: Some(last), ..
            } => last,
            retry::Error::DeadlineExceeded { last: None, .. } => Error::Timeout(Elapsed {
                deadline: total.instant().unwrap_or(Instant::ZERO),
            }),
        }))
    }
}

impl<'p, 'c, S, P, B, CB, RL, BH, Op, Fut> fmt::Debug for Call<'p, 'c, S, P, B, CB, RL, BH, Op, Fut>
where
    'c: 'p,
    S: Sleep + 'c,
    B: RetryBudget,
    CB: BreakerStage + 'p,
    RL: LimiterStage,
    BH: BulkheadStage + 'p,
    Fut: ResultFuture,
    P: Transient<Fut::Err>,
    Op: Operation<Future = Fut>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}
