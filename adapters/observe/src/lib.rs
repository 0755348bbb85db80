//! bulwark's policies seen from outside: [`tracing`](https://docs.rs/tracing) spans and
//! events (feature `tracing`: `TracingHooks`) and [`metrics`](https://docs.rs/metrics)
//! counters, gauges and histograms (feature `metrics`: `MetricsHooks`), both named by the
//! policy name given at construction, which appears in every signal.
//!
//! Both are hooks in the core's one convention: they implement the circuit breaker's
//! [`Events`](bulwark::circuit_breaker::Events) and retry's [`Hooks`](bulwark::retry::Hooks)
//! (so they also see a retry inside a [`Pipeline`](bulwark::pipeline::Pipeline) or a tower
//! `PipelineLayer`, through [`Pipeline::hooks`](bulwark::pipeline::Pipeline::hooks)), and
//! this crate's [`Observer`] for the patterns that have no hooks of their own:
//!
//! * [`Observed`] wraps any gate ([`Admit`]: a bulkhead, a rate limiter, one key of a keyed
//!   limiter, a breaker of a keyed table) and reports each admission, rejection and end;
//! * [`acquired`] wraps a waiting acquire (a bulkhead's, a pool's, a limiter's) and reports
//!   it as a gate does: admitted or turned away, and the end when what it got is dropped;
//! * [`instrument`] wraps any call future (a timeout, a bulkhead's or a pool's waiting
//!   acquire, a fallback chain, a whole pipeline call) in a span and reports how it ended,
//!   how long it took, and how long it waited;
//! * [`fell_back`] wraps a fallback step and reports that the chain fell back to it;
//! * with the `tower` feature, `ObserveLayer` does what [`instrument`] does for every call
//!   of a tower service (outside a pipeline: the call; inside a retry: each attempt).
//!
//! Hooks pair up as every hook does: `(TracingHooks, MetricsHooks)` sends to both. With
//! neither feature nothing here costs anything, and a policy built without hooks (`()`) is
//! the policy it was.
//!
//! # Examples
//!
//! A gate observed by a hand-written [`Observer`] (the features' hooks are used the same way):
//!
//! ```
//! use bulwark::admission::Permit;
//! use bulwark::bulkhead::{Bulkhead, Config};
//! use bulwark::MockClock;
//! use bulwark_observe::{Observed, Observer, Pattern, Signal};
//! use std::sync::Mutex;
//!
//! #[derive(Default)]
//! struct Log(Mutex<Vec<Signal>>);
//! impl Observer for Log {
//!     fn on_signal(&self, signal: Signal) { self.0.lock().unwrap().push(signal) }
//! }
//!
//! let clock = MockClock::new();
//! let log = Log::default();
//! let slots = Observed::new(Pattern::Bulkhead, Bulkhead::new(Config::new(1), &clock).unwrap(), &log);
//! let held = Permit::try_new(&slots).unwrap();
//! assert!(Permit::try_new(&slots).is_err()); // full: shed
//! held.success();
//! assert_eq!(
//!     *log.0.lock().unwrap(),
//!     [
//!         Signal::Admitted { pattern: Pattern::Bulkhead },
//!         Signal::Rejected { pattern: Pattern::Bulkhead, retry_at: None },
//!         Signal::Ended { pattern: Pattern::Bulkhead, outcome: Some(bulwark::admission::Outcome::Success) },
//!     ]
//! );
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::admission::{Admit, Outcome, RetryHint};
use bulwark::{Clock, Instant};
use pin_project_lite::pin_project;

mod judge;
#[cfg(feature = "metrics")]
mod metrics_hooks;
#[cfg(feature = "tower")]
mod tower;
#[cfg(feature = "tracing")]
mod tracing_hooks;

pub use judge::Judge;
#[cfg(feature = "metrics")]
pub use metrics_hooks::MetricsHooks;
#[cfg(feature = "tower")]
pub use tower::{Boxed, ObserveLayer, ObserveService};
#[cfg(feature = "tracing")]
pub use tracing_hooks::TracingHooks;

/// The pattern a signal comes from: the `pattern` field of spans and events, the `pattern`
/// label of the generic call metrics, and the pattern in the specific metric names.
///
/// ```
/// use bulwark_observe::Pattern;
/// assert_eq!(Pattern::CircuitBreaker.as_str(), "circuit_breaker");
/// assert_eq!(Pattern::RateLimiter.to_string(), "rate_limiter");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pattern {
    /// A circuit breaker.
    CircuitBreaker,
    /// A retry policy.
    Retry,
    /// A timeout.
    Timeout,
    /// A bulkhead.
    Bulkhead,
    /// A rate limiter (plain or keyed).
    RateLimiter,
    /// A connection pool.
    Pool,
    /// A fallback chain.
    Fallback,
    /// A pipeline (or any composition of the patterns).
    Pipeline,
    /// One attempt of a retried call (an [`instrument`]ed operation, or an `ObserveLayer`
    /// inside a retry layer).
    Attempt,
}

impl Pattern {
    /// The name used in fields, labels and metric names (snake case).
    ///
    /// ```
    /// assert_eq!(bulwark_observe::Pattern::Attempt.as_str(), "attempt");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Pattern::CircuitBreaker => "circuit_breaker",
            Pattern::Retry => "retry",
            Pattern::Timeout => "timeout",
            Pattern::Bulkhead => "bulkhead",
            Pattern::RateLimiter => "rate_limiter",
            Pattern::Pool => "pool",
            Pattern::Fallback => "fallback",
            Pattern::Pipeline => "pipeline",
            Pattern::Attempt => "attempt",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an observed call ended ([`Judge`] decides it from the call's output).
///
/// ```
/// use bulwark_observe::CallOutcome;
/// assert_eq!(CallOutcome::TimedOut.as_str(), "timed_out");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// It succeeded.
    Success,
    /// The operation failed (its own error).
    Failure,
    /// An open circuit breaker rejected it.
    Rejected,
    /// Load was shed: a rate limiter, a full bulkhead or wait queue, a full pool queue.
    Shed,
    /// A timeout cut it (an attempt timeout, a total timeout, a pool's acquire timeout).
    TimedOut,
}

impl CallOutcome {
    /// The name used in fields and labels.
    ///
    /// ```
    /// assert_eq!(bulwark_observe::CallOutcome::Shed.as_str(), "shed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::Failure => "failure",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Shed => "shed",
            CallOutcome::TimedOut => "timed_out",
        }
    }
}

/// What the wrappers of this crate report to an [`Observer`].
///
/// ```
/// use bulwark_observe::{Pattern, Signal};
/// let s = Signal::Waiting { pattern: Pattern::Pool, waiting: true };
/// assert_eq!(s.pattern(), Pattern::Pool);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// A gate admitted a call ([`Observed`]).
    Admitted {
        /// The gate's pattern.
        pattern: Pattern,
    },
    /// A gate rejected a call; `retry_at` is when it could pass, on the gate's clock, if
    /// known ([`Observed`]).
    Rejected {
        /// The gate's pattern.
        pattern: Pattern,
        /// The rejection's retry instant.
        retry_at: Option<Instant>,
    },
    /// A call a gate admitted ended: with an outcome, or abandoned (`None`: cancelled, or
    /// ended without a verdict) ([`Observed`]).
    Ended {
        /// The gate's pattern.
        pattern: Pattern,
        /// What was recorded.
        outcome: Option<Outcome>,
    },
    /// An [`instrument`]ed call started waiting (`true`: it was not ready at its first
    /// poll) or stopped waiting (`false`: it completed or was dropped).
    Waiting {
        /// The call's pattern.
        pattern: Pattern,
        /// Whether it waits now.
        waiting: bool,
    },
    /// An [`instrument`]ed call ended (not reported for a call dropped before its end).
    Finished {
        /// The call's pattern.
        pattern: Pattern,
        /// How it ended.
        outcome: CallOutcome,
        /// From its first poll to its end, on the call's clock.
        duration: Duration,
    },
    /// A fallback chain fell back to a step ([`fell_back`]).
    FellBack {
        /// The step's number in the chain (1 = the first fallback after the primary).
        step: u32,
    },
}

impl Signal {
    /// The pattern the signal comes from.
    ///
    /// ```
    /// use bulwark_observe::{Pattern, Signal};
    /// assert_eq!(Signal::FellBack { step: 1 }.pattern(), Pattern::Fallback);
    /// ```
    pub fn pattern(&self) -> Pattern {
        match *self {
            Signal::Admitted { pattern }
            | Signal::Rejected { pattern, .. }
            | Signal::Ended { pattern, .. }
            | Signal::Waiting { pattern, .. }
            | Signal::Finished { pattern, .. } => pattern,
            Signal::FellBack { .. } => Pattern::Fallback,
        }
    }
}

/// Hears the [`Signal`]s of this crate's wrappers, in the core's hook convention: the method
/// has an empty default, `()` hears nothing (and costs nothing), `&H` forwards, `(A, B)`
/// tells both, `.0` first; `Arc<H>` forwards too (a tower layer shares its observer). Hooks
/// run inline: keep them short and non-blocking.
///
/// ```
/// use bulwark_observe::{Observer, Pattern, Signal};
/// use std::cell::Cell;
/// #[derive(Default)]
/// struct Count(Cell<u32>);
/// impl Observer for Count {
///     fn on_signal(&self, _: Signal) { self.0.set(self.0.get() + 1) }
/// }
/// let (a, b) = (Count::default(), Count::default());
/// (&a, &b).on_signal(Signal::FellBack { step: 1 });
/// ().on_signal(Signal::FellBack { step: 1 });
/// assert_eq!((a.0.get(), b.0.get()), (1, 1));
/// ```
pub trait Observer {
    /// A signal.
    #[inline]
    fn on_signal(&self, signal: Signal) {
        let _ = signal;
    }

    /// The span an [`instrument`]ed call of `pattern` runs in ([`TracingHooks`] opens one;
    /// the default is none).
    #[cfg(feature = "tracing")]
    #[inline]
    fn span(&self, pattern: Pattern) -> tracing::Span {
        let _ = pattern;
        tracing::Span::none()
    }
}

impl Observer for () {}

impl<O: Observer + ?Sized> Observer for &O {
    #[inline]
    fn on_signal(&self, signal: Signal) {
        (**self).on_signal(signal)
    }
    #[cfg(feature = "tracing")]
    #[inline]
    fn span(&self, pattern: Pattern) -> tracing::Span {
        (**self).span(pattern)
    }
}

impl<O: Observer + ?Sized> Observer for std::sync::Arc<O> {
    #[inline]
    fn on_signal(&self, signal: Signal) {
        (**self).on_signal(signal)
    }
    #[cfg(feature = "tracing")]
    #[inline]
    fn span(&self, pattern: Pattern) -> tracing::Span {
        (**self).span(pattern)
    }
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    #[inline]
    fn on_signal(&self, signal: Signal) {
        self.0.on_signal(signal);
        self.1.on_signal(signal);
    }
    /// The first of the two spans that is not disabled.
    #[cfg(feature = "tracing")]
    #[inline]
    fn span(&self, pattern: Pattern) -> tracing::Span {
        let first = self.0.span(pattern);
        if first.is_none() {
            self.1.span(pattern)
        } else {
            first
        }
    }
}

// ===== gates =====

/// A gate ([`Admit`]) that reports to an [`Observer`]: each admission, each rejection (with
/// its retry instant) and the end of each admitted call. It admits exactly what its gate
/// admits, with the gate's own tickets and rejections, so it goes wherever the gate went: a
/// [`Permit`](bulwark::admission::Permit), a pipeline stage, a tower `GateLayer`, and (with
/// the `tower` feature) a `KeyedLayer` when the gate is a keyed table.
///
/// # Examples
///
/// ```
/// use bulwark::admission::Permit;
/// use bulwark::rate_limiter::{Config, RateLimiter};
/// use bulwark::{Instant, MockClock};
/// use bulwark_observe::{Observed, Observer, Pattern, Signal};
/// use std::cell::Cell;
///
/// #[derive(Default)]
/// struct LastRetry(Cell<Option<Instant>>);
/// impl Observer for LastRetry {
///     fn on_signal(&self, s: Signal) {
///         if let Signal::Rejected { retry_at, .. } = s { self.0.set(retry_at) }
///     }
/// }
///
/// let clock = MockClock::new();
/// let seen = LastRetry::default();
/// let limiter = Observed::new(Pattern::RateLimiter, RateLimiter::new(Config::per_second(1).burst(1), &clock).unwrap(), &seen);
/// Permit::try_new(&limiter).unwrap().success();
/// assert!(Permit::try_new(&limiter).is_err());
/// assert_eq!(seen.0.get(), Some(Instant::from_secs(1)));
/// ```
#[derive(Debug)]
pub struct Observed<G, O> {
    pattern: Pattern,
    gate: G,
    observer: O,
}

impl<G, O> Observed<G, O> {
    /// `gate`, reporting to `observer` as a gate of `pattern`.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// use bulwark_observe::{Observed, Pattern};
    /// let clock = MockClock::new();
    /// let b = Observed::new(Pattern::Bulkhead, Bulkhead::new(Config::new(4), &clock).unwrap(), ());
    /// assert_eq!(b.gate().metrics().max, 4);
    /// ```
    pub fn new(pattern: Pattern, gate: G, observer: O) -> Self {
        Observed {
            pattern,
            gate,
            observer,
        }
    }

    /// The gate.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// use bulwark_observe::{Observed, Pattern};
    /// let clock = MockClock::new();
    /// let l = Observed::new(Pattern::RateLimiter, RateLimiter::new(Config::per_second(5).burst(5), &clock).unwrap(), ());
    /// assert!(l.gate().try_acquire().is_ok());
    /// ```
    pub fn gate(&self) -> &G {
        &self.gate
    }

    /// The observer.
    ///
    /// ```
    /// use bulwark_observe::{Observed, Pattern};
    /// let o = Observed::new(Pattern::Bulkhead, (), 7u8);
    /// assert_eq!(*o.observer(), 7);
    /// ```
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The pattern it reports as.
    ///
    /// ```
    /// use bulwark_observe::{Observed, Pattern};
    /// assert_eq!(Observed::new(Pattern::Pool, (), ()).pattern(), Pattern::Pool);
    /// ```
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }
}

impl<G: Admit, O: Observer> Admit for Observed<G, O> {
    type Ticket = G::Ticket;
    type Rejected = G::Rejected;

    #[inline]
    fn try_admit(&self) -> Result<G::Ticket, G::Rejected> {
        let pattern = self.pattern;
        match self.gate.try_admit() {
            Ok(ticket) => {
                self.observer.on_signal(Signal::Admitted { pattern });
                Ok(ticket)
            }
            Err(rejected) => {
                let retry_at = rejected.retry_at();
                self.observer
                    .on_signal(Signal::Rejected { pattern, retry_at });
                Err(rejected)
            }
        }
    }

    #[inline]
    fn record(&self, ticket: G::Ticket, outcome: Outcome) {
        self.gate.record(ticket, outcome);
        self.observer.on_signal(Signal::Ended {
            pattern: self.pattern,
            outcome: Some(outcome),
        });
    }

    #[inline]
    fn release(&self, ticket: G::Ticket) {
        self.gate.release(ticket);
        self.observer.on_signal(Signal::Ended {
            pattern: self.pattern,
            outcome: None,
        });
    }
}

// ===== waiting acquires =====

/// A waiting acquire (a bulkhead's or a pool's `acquire()`, a rate limiter's `acquire(n)`)
/// reported as a gate reports its admissions: [`Signal::Admitted`] when it gets its permit,
/// connection or tokens, [`Signal::Rejected`] (no retry instant: it already waited) when it
/// is turned away (the error [`Judge`]s as shed, rejected or timed out; an operation's own
/// failure, such as a pool's connect error, is neither), and [`Signal::Ended`] when what it
/// got is given back: the output holds it in a [`Held`], which reports on drop. So a
/// bulkhead's in-flight gauge counts the calls that waited for their slot, and a pool's
/// in-flight gauge the connections checked out.
///
/// Wrap it in [`instrument`] as well for the span, the waiting gauge and the wait's duration.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore};
/// use bulwark::{MockClock, mock};
/// use bulwark_observe::{Observer, Pattern, Signal, acquired};
/// use std::sync::Mutex;
/// use std::time::Duration;
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<Signal>>);
/// impl Observer for Log {
///     fn on_signal(&self, s: Signal) { self.0.lock().unwrap().push(s) }
/// }
///
/// let clock = MockClock::new();
/// let log = Log::default();
/// let slots: Bulkhead<QueueSemaphore<4>, _> =
///     Bulkhead::queued(Config::new(1).max_wait(Duration::from_secs(1)), &clock).unwrap();
/// let held = mock::run(&clock, acquired(Pattern::Bulkhead, &log, slots.acquire())).unwrap().unwrap();
/// // The only slot is held: the next acquire waits its second and gives up.
/// assert!(mock::run(&clock, acquired(Pattern::Bulkhead, &log, slots.acquire())).unwrap().is_err());
/// drop(held);
/// assert_eq!(
///     *log.0.lock().unwrap(),
///     [
///         Signal::Admitted { pattern: Pattern::Bulkhead },
///         Signal::Rejected { pattern: Pattern::Bulkhead, retry_at: None },
///         Signal::Ended { pattern: Pattern::Bulkhead, outcome: None },
///     ]
/// );
/// ```
pub fn acquired<O, F, T, E>(pattern: Pattern, observer: O, fut: F) -> Acquired<O, F>
where
    O: Observer,
    F: Future<Output = Result<T, E>>,
    E: Judge,
{
    Acquired {
        fut,
        pattern,
        observer: Some(observer),
    }
}

pin_project! {
    /// The future of [`acquired`]: what the acquire gave, [`Held`] until it is dropped.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use bulwark_observe::{Pattern, acquired};
    /// let clock = MockClock::new();
    /// let slots: Bulkhead<QueueSemaphore<4>, _> = Bulkhead::queued(Config::new(2), &clock).unwrap();
    /// let held = mock::run(&clock, acquired(Pattern::Bulkhead, (), slots.acquire())).unwrap().unwrap();
    /// assert_eq!(slots.metrics().in_use, 1);
    /// drop(held);
    /// assert_eq!(slots.metrics().in_use, 0);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Acquired<O, F> {
        #[pin]
        fut: F,
        pattern: Pattern,
        // Given to the `Held` when the acquire succeeds.
        observer: Option<O>,
    }
}

impl<O, F, T, E> Future for Acquired<O, F>
where
    O: Observer,
    F: Future<Output = Result<T, E>>,
    E: Judge,
{
    type Output = Result<Held<T, O>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.fut.poll(cx));
        let pattern = *this.pattern;
        let Some(observer) = this.observer.take() else {
            // Polled again after it completed: the acquire's own answer, unobserved.
            return Poll::Ready(out.map(|held| Held {
                held,
                end: Ending {
                    pattern,
                    observer: None,
                },
            }));
        };
        Poll::Ready(match out {
            Ok(held) => {
                observer.on_signal(Signal::Admitted { pattern });
                Ok(Held {
                    held,
                    end: Ending {
                        pattern,
                        observer: Some(observer),
                    },
                })
            }
            Err(e) => {
                if e.judge() != CallOutcome::Failure {
                    observer.on_signal(Signal::Rejected {
                        pattern,
                        retry_at: None,
                    });
                }
                Err(e)
            }
        })
    }
}

/// What an [`acquired`] acquire got (a bulkhead permit, a pool connection), as itself
/// (`Deref`); dropping it gives it back and reports [`Signal::Ended`].
///
/// ```
/// use bulwark::pool::{Config, Manager, Pool};
/// use bulwark::bulkhead::QueueSemaphore;
/// use bulwark::{MockClock, mock};
/// use bulwark_observe::{Pattern, acquired};
///
/// struct Numbers;
/// impl Manager for Numbers {
///     type Connection = u32;
///     type Error = &'static str;
///     type Connect = core::future::Ready<Result<u32, &'static str>>;
///     fn connect(&self) -> Self::Connect { core::future::ready(Ok(7)) }
/// }
/// let clock = MockClock::new();
/// let pool: Pool<Numbers, QueueSemaphore<4>, _, 1> = Pool::queued(Numbers, Config::new(), &clock);
/// let conn = mock::run(&clock, acquired(Pattern::Pool, (), pool.acquire())).unwrap().unwrap();
/// assert_eq!(**conn, 7); // the held guard, then its connection
/// ```
pub struct Held<T, O: Observer> {
    // Fields drop in order: what was held is given back first, then the end is reported (a
    // gauge read after the signal sees it free).
    held: T,
    end: Ending<O>,
}

/// Reports [`Signal::Ended`] when dropped (unless there is no observer: an acquire polled
/// again after it completed).
struct Ending<O: Observer> {
    pattern: Pattern,
    observer: Option<O>,
}

impl<O: Observer> Drop for Ending<O> {
    fn drop(&mut self) {
        if let Some(observer) = self.observer.take() {
            observer.on_signal(Signal::Ended {
                pattern: self.pattern,
                outcome: None,
            });
        }
    }
}

impl<O: Observer> fmt::Debug for Ending<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ending")
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

impl<T, O: Observer> Held<T, O> {
    /// What was acquired, no longer observed: reports [`Signal::Ended`] now (for a guard
    /// consumed by its own methods, such as a pool connection discarded as broken).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use bulwark_observe::{Pattern, acquired};
    /// let clock = MockClock::new();
    /// let slots: Bulkhead<QueueSemaphore<4>, _> = Bulkhead::queued(Config::new(1), &clock).unwrap();
    /// let held = mock::run(&clock, acquired(Pattern::Bulkhead, (), slots.acquire())).unwrap().unwrap();
    /// let permit = held.into_inner();
    /// assert_eq!(slots.metrics().in_use, 1);
    /// drop(permit);
    /// assert_eq!(slots.metrics().in_use, 0);
    /// ```
    pub fn into_inner(self) -> T {
        let Held { held, end } = self;
        drop(end);
        held
    }
}

impl<T: fmt::Debug, O: Observer> fmt::Debug for Held<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("held", &self.held)
            .field("end", &self.end)
            .finish()
    }
}

impl<T, O: Observer> std::ops::Deref for Held<T, O> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.held
    }
}

impl<T, O: Observer> std::ops::DerefMut for Held<T, O> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.held
    }
}

// ===== calls =====

/// Runs `fut` as an observed call of `pattern`: inside the observer's span (with the
/// `tracing` feature), reporting [`Signal::Waiting`] while it is pending after its first
/// poll, and [`Signal::Finished`] with its [`Judge`]d outcome and its duration on `clock`
/// (from its first poll) when it ends. A call dropped before it ends reports that it stopped
/// waiting, and nothing else.
///
/// # Examples
///
/// A timeout, observed:
///
/// ```
/// use bulwark::{Clock, MockClock, mock, timeout::timeout};
/// use bulwark_observe::{CallOutcome, Observer, Pattern, Signal, instrument};
/// use core::time::Duration;
/// use std::cell::Cell;
///
/// #[derive(Default)]
/// struct Last(Cell<Option<Signal>>);
/// impl Observer for Last {
///     fn on_signal(&self, s: Signal) { self.0.set(Some(s)) }
/// }
///
/// let clock = MockClock::new();
/// let last = Last::default();
/// let slow = timeout(&clock, Duration::from_secs(2), clock.sleep(Duration::from_secs(5)));
/// let out = mock::run(&clock, instrument(Pattern::Timeout, &last, &clock, slow)).unwrap();
/// assert!(out.is_err());
/// assert_eq!(
///     last.0.get(),
///     Some(Signal::Finished { pattern: Pattern::Timeout, outcome: CallOutcome::TimedOut, duration: Duration::from_secs(2) })
/// );
/// ```
pub fn instrument<O, C, F>(pattern: Pattern, observer: O, clock: C, fut: F) -> Instrumented<O, C, F>
where
    O: Observer,
    C: Clock,
    F: Future,
    F::Output: Judge,
{
    Instrumented {
        span: span_of(&observer, pattern),
        fut,
        pattern,
        observer,
        clock,
        started: None,
        waiting: false,
    }
}

/// The span an instrumented call runs in: a `tracing` span with the feature, nothing without.
#[cfg(feature = "tracing")]
type SpanSlot = tracing::Span;
#[cfg(not(feature = "tracing"))]
type SpanSlot = ();

#[cfg(feature = "tracing")]
fn span_of<O: Observer>(observer: &O, pattern: Pattern) -> SpanSlot {
    observer.span(pattern)
}
#[cfg(not(feature = "tracing"))]
fn span_of<O: Observer>(_: &O, _: Pattern) -> SpanSlot {}

#[cfg(feature = "tracing")]
fn enter(span: &SpanSlot) -> tracing::span::Entered<'_> {
    span.enter()
}
/// What entering no span gives back (without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
struct NotEntered;
#[cfg(not(feature = "tracing"))]
fn enter(_: &SpanSlot) -> NotEntered {
    NotEntered
}

pin_project! {
    /// The future of [`instrument`]: the call's output, unchanged.
    ///
    /// ```
    /// use bulwark::{MockClock, mock};
    /// use bulwark_observe::{Pattern, instrument};
    /// let clock = MockClock::new();
    /// let call = instrument(Pattern::Pipeline, (), &clock, async { Ok::<_, ()>(3) });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(3));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<O: Observer, C, F> {
        #[pin]
        fut: F,
        pattern: Pattern,
        observer: O,
        clock: C,
        started: Option<Instant>,
        waiting: bool,
        span: SpanSlot,
    }

    impl<O: Observer, C, F> PinnedDrop for Instrumented<O, C, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.waiting {
                this.observer.on_signal(Signal::Waiting { pattern: *this.pattern, waiting: false });
            }
        }
    }
}

impl<O, C, F> Future for Instrumented<O, C, F>
where
    O: Observer,
    C: Clock,
    F: Future,
    F::Output: Judge,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = enter(this.span);
        let started = *this.started.get_or_insert_with(|| this.clock.now());
        match this.fut.poll(cx) {
            Poll::Pending => {
                if !*this.waiting {
                    *this.waiting = true;
                    this.observer.on_signal(Signal::Waiting {
                        pattern: *this.pattern,
                        waiting: true,
                    });
                }
                Poll::Pending
            }
            Poll::Ready(out) => {
                let pattern = *this.pattern;
                if std::mem::take(this.waiting) {
                    this.observer.on_signal(Signal::Waiting {
                        pattern,
                        waiting: false,
                    });
                }
                this.observer.on_signal(Signal::Finished {
                    pattern,
                    outcome: out.judge(),
                    duration: this.clock.now().saturating_duration_since(started),
                });
                Poll::Ready(out)
            }
        }
    }
}

impl<O: Observer, C, F> fmt::Debug for Instrumented<O, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("pattern", &self.pattern)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// A fallback step that reports [`Signal::FellBack`] `{ step }` when the chain falls back to
/// it, then runs `next` (any step of [`fallback`](bulwark::fallback): a closure of the
/// previous error).
///
/// ```
/// use bulwark::fallback::fallback;
/// use bulwark::{MockClock, mock};
/// use bulwark_observe::{Observer, Signal, fell_back};
/// use core::future::IntoFuture;
/// use std::cell::Cell;
///
/// #[derive(Default)]
/// struct Steps(Cell<u32>);
/// impl Observer for Steps {
///     fn on_signal(&self, s: Signal) { if let Signal::FellBack { step } = s { self.0.set(step) } }
/// }
/// let clock = MockClock::new();
/// let steps = Steps::default();
/// let chain = fallback(|| async { Err::<&str, _>("down") })
///     .or(fell_back(&steps, 1, |_: &str| async { Ok("cached") }));
/// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok("cached"));
/// assert_eq!(steps.0.get(), 1);
/// ```
pub fn fell_back<O: Observer, E, R>(
    observer: O,
    step: u32,
    next: impl FnOnce(E) -> R,
) -> impl FnOnce(E) -> R {
    move |e| {
        observer.on_signal(Signal::FellBack { step });
        next(e)
    }
}
