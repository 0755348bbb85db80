//! Admission: the one trait every gate in front of a call implements, and the one guard a
//! caller holds while the call runs.
//!
//! A circuit breaker, a rate limiter (plain, const, compact, or one key of a keyed one) and a
//! bulkhead all answer the same question before a call — may it start now? — and want to hear
//! how it ended. [`Admit`] is that question; [`Permit`] is the answer a caller holds:
//!
//! * [`Admit::try_admit`] never waits: a ticket, or a rejection that says when to come back
//!   ([`RetryHint::retry_at`]), so a retry placed outside any gate — the
//!   [`pipeline`](crate::pipeline), a tower layer, a hand-written loop — reads one hint.
//! * A [`Permit`] holds its gate through any pointer: `&T`, `&'static T`, or (with `alloc`) an
//!   `Arc<T>` — the no_std form of tokio's `acquire_owned`. It reports the call's
//!   [`Outcome`] with [`Permit::record`], and gives the ticket back if dropped without one
//!   (cancelled, panicked): nothing leaks.
//! * [`Call`] is the async form of any gate: admit (or return the gate's rejection as
//!   [`Error::Rejected`]), run the operation, judge its result with the one
//!   [classifier](crate::classify) and record it on the permit. The adaptive limit and the
//!   adaptive throttle hand it out from their `call` methods.
//!
//! # Examples
//!
//! A gate written by hand, in front of a call, through the trait alone:
//!
//! ```
//! use bulwark::admission::{Admit, Outcome, Permit, RetryHint};
//! use bulwark::circuit_breaker::{CircuitBreaker, Config};
//! use bulwark::{Instant, MockClock};
//! use core::time::Duration;
//!
//! fn call<G: Admit>(gate: &G, ok: bool) -> Result<(), Option<Instant>> {
//!     let permit = Permit::try_new(gate).map_err(|r| r.retry_at())?;
//!     permit.record(if ok { Outcome::Success } else { Outcome::Failure });
//!     Ok(())
//! }
//!
//! let clock = MockClock::new();
//! let breaker = CircuitBreaker::new(
//!     Config::new().consecutive_failures(1).open_for(Duration::from_secs(5)),
//!     &clock,
//! )
//! .unwrap();
//! assert_eq!(call(&breaker, false), Ok(()));
//! assert_eq!(call(&breaker, true), Err(Some(Instant::from_secs(5)))); // open: come back at 5 s
//! ```

use core::fmt;
use core::ops::Deref;

use crate::time::Instant;

mod error;
mod future;

pub use crate::unwind::set_panic_probe;
pub use error::Error;
pub use future::Call;
pub(crate) use future::gate_calls;

/// What a call's result means to the gate that admitted it (and to a circuit breaker, whether
/// the downstream is healthy).
///
/// ```
/// use bulwark::admission::Outcome;
/// assert_ne!(Outcome::Success, Outcome::Ignored);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Not recorded at all (for example a caller error such as "not found"); a half-open
    /// probe slot is given back.
    Ignored,
}

/// A rejection that may say when to come back: the common hint every gate's rejection gives,
/// so one retry policy can wait out any gate.
///
/// ```
/// use bulwark::admission::RetryHint;
/// use bulwark::{Instant, bulkhead::BulkheadFull, rate_limiter::RateLimited};
/// assert_eq!(RateLimited::new(Instant::from_secs(2), Instant::ZERO).retry_at(), Some(Instant::from_secs(2)));
/// assert_eq!(BulkheadFull.retry_at(), None); // a permit may come back at any moment
/// ```
pub trait RetryHint {
    /// The earliest instant at which the call could pass, on the clock of the gate that
    /// rejected it; `None` when no instant is known.
    fn retry_at(&self) -> Option<Instant>;
}

/// A gate in front of a call: it admits the call now (a ticket) or rejects it (with a
/// [`RetryHint`]), and hears how the call ended. Implemented by every shared form that admits
/// calls: [`CircuitBreaker`](crate::circuit_breaker::CircuitBreaker), the rate limiters (one
/// key of a [`KeyedRateLimiter`](crate::rate_limiter::KeyedRateLimiter) through
/// [`Keyed`](crate::rate_limiter::Keyed)), [`Bulkhead`](crate::bulkhead::Bulkhead), and the unit
/// `()` (a gate that admits everything, for a stage left out).
///
/// Callers normally hold a [`Permit`] rather than a bare ticket: its `Drop` calls
/// [`release`](Admit::release), so no ticket is ever lost.
///
/// # Examples
///
/// ```
/// use bulwark::admission::{Admit, Outcome};
/// use bulwark::rate_limiter::{RateLimiter, Config};
/// use bulwark::{Instant, MockClock, admission::RetryHint};
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let limiter = RateLimiter::new(Config::per_second(1).burst(1), &clock).unwrap();
/// let ticket = limiter.try_admit().unwrap();
/// limiter.record(ticket, Outcome::Success); // a limiter's token is spent either way
/// assert_eq!(limiter.try_admit().unwrap_err().retry_at(), Some(Instant::from_secs(1)));
/// ```
pub trait Admit {
    /// What an admitted call holds until it ends (a breaker's [`Ticket`](crate::circuit_breaker::Ticket);
    /// nothing for a limiter or a bulkhead, whose permit is counted in the gate).
    type Ticket;
    /// Why a call was not admitted.
    type Rejected: RetryHint;

    /// `false` for a gate whose [`record`](Admit::record) and [`release`](Admit::release) do
    /// nothing (a limiter spends its token on admission): a caller may then drop the ticket
    /// at once rather than keep a [`Permit`] (and whatever pointer to the gate it holds) for
    /// the length of the call. `true` by default.
    ///
    /// ```
    /// use bulwark::admission::Admit;
    /// use bulwark::{MockClock, bulkhead::Bulkhead, rate_limiter::RateLimiter};
    /// assert!(!<RateLimiter<&MockClock> as Admit>::RECORDS);
    /// assert!(<Bulkhead<bulwark::bulkhead::AtomicSemaphore, &MockClock> as Admit>::RECORDS);
    /// ```
    const RECORDS: bool = true;

    /// Admits a call now, or rejects it. Never waits.
    ///
    /// # Errors
    ///
    /// [`Self::Rejected`](Admit::Rejected) when the call may not start now.
    fn try_admit(&self) -> Result<Self::Ticket, Self::Rejected>;

    /// The admitted call ended with `outcome`.
    fn record(&self, ticket: Self::Ticket, outcome: Outcome);

    /// The admitted call ended without an outcome (cancelled, panicked, or judged by nobody):
    /// nothing is recorded, whatever the ticket held is given back.
    fn release(&self, ticket: Self::Ticket);
}

/// Never rejects: what [`Permit::try_new`] returns for a gate that admits everything.
///
/// ```
/// use bulwark::admission::{Admitted, RetryHint};
/// let never: Result<(), Admitted> = Ok(());
/// assert!(never.is_ok());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admitted {}

impl RetryHint for Admitted {
    fn retry_at(&self) -> Option<Instant> {
        match *self {}
    }
}

impl fmt::Display for Admitted {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl core::error::Error for Admitted {}

/// The gate that admits everything: a stage left out of a composition.
///
/// ```
/// use bulwark::admission::{Admit, Permit};
/// assert!(Permit::try_new(&()).is_ok());
/// ```
impl Admit for () {
    type Ticket = ();
    type Rejected = Admitted;
    const RECORDS: bool = false;

    #[inline(always)]
    fn try_admit(&self) -> Result<(), Admitted> {
        Ok(())
    }

    #[inline(always)]
    fn record(&self, _: (), _: Outcome) {}

    #[inline(always)]
    fn release(&self, _: ()) {}
}

/// A reference to a gate is a gate.
///
/// ```
/// use bulwark::admission::{Admit, Permit};
/// use bulwark::bulkhead::{Bulkhead, Config};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
/// let by_ref: &&Bulkhead<_, _> = &&b;
/// let p = Permit::try_new(by_ref).unwrap();
/// assert_eq!(b.metrics().in_use, 1);
/// drop(p);
/// assert_eq!(b.metrics().in_use, 0);
/// ```
impl<G: Admit + ?Sized> Admit for &G {
    type Ticket = G::Ticket;
    type Rejected = G::Rejected;
    const RECORDS: bool = G::RECORDS;

    #[inline(always)]
    fn try_admit(&self) -> Result<G::Ticket, G::Rejected> {
        (**self).try_admit()
    }

    #[inline(always)]
    fn record(&self, ticket: G::Ticket, outcome: Outcome) {
        (**self).record(ticket, outcome)
    }

    #[inline(always)]
    fn release(&self, ticket: G::Ticket) {
        (**self).release(ticket)
    }
}

/// An admitted call: holds its gate through `R` (`&G`, `&'static G`, `Arc<G>`, any pointer to
/// an [`Admit`]) and the gate's ticket. Report how the call ended with
/// [`record`](Permit::record) (or [`success`](Permit::success) / [`failure`](Permit::failure));
/// dropped without that, it [`release`](Admit::release)s the ticket.
///
/// Generic over its pointer so that one type serves borrowed use (`Permit<&G>`) and owned use
/// (`Permit<Arc<G>>`, which a `'static` tower future can hold) alike; nothing needs to be
/// leaked to get a `'static` permit.
///
/// # Examples
///
/// ```
/// use bulwark::admission::Permit;
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
/// use bulwark::MockClock;
/// use std::sync::Arc;
///
/// static CLOCK: MockClock = MockClock::new();
/// let breaker = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(1), &CLOCK).unwrap());
/// // An owned permit: 'static, it can move into a spawned task.
/// let permit: Permit<Arc<_>> = Permit::try_new(Arc::clone(&breaker)).unwrap();
/// std::thread::spawn(move || permit.failure()).join().unwrap();
/// assert_eq!(breaker.state(), State::Open);
/// ```
#[must_use = "dropping a permit abandons the call; record its outcome"]
pub struct Permit<R>
where
    R: Deref,
    R::Target: Admit,
{
    gate: R,
    /// `None` once recorded.
    ticket: Option<<R::Target as Admit>::Ticket>,
}

impl<R> Permit<R>
where
    R: Deref,
    R::Target: Admit,
{
    /// Asks `gate` to admit a call now.
    ///
    /// # Errors
    ///
    /// The gate's rejection, with its [`RetryHint`].
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
    /// let held = Permit::try_new(&b).unwrap();
    /// assert_eq!(Permit::try_new(&b).map(drop), Err(BulkheadFull));
    /// drop(held);
    /// assert!(Permit::try_new(&b).is_ok());
    /// ```
    #[inline(always)]
    pub fn try_new(gate: R) -> Result<Self, <R::Target as Admit>::Rejected> {
        let ticket = gate.try_admit()?;
        Ok(Permit::from_ticket(gate, ticket))
    }

    /// A permit for a `ticket` that `gate` has already issued (from [`Admit::try_admit`], or a
    /// gate's own waiting entry point): from now on the permit records or releases it.
    ///
    /// ```
    /// use bulwark::admission::{Admit, Permit};
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
    /// let ticket = b.try_admit().unwrap();
    /// drop(Permit::from_ticket(&b, ticket)); // gives it back
    /// assert_eq!(b.metrics().in_use, 0);
    /// ```
    #[inline(always)]
    pub fn from_ticket(gate: R, ticket: <R::Target as Admit>::Ticket) -> Self {
        Permit {
            gate,
            ticket: Some(ticket),
        }
    }

    /// The gate that admitted the call.
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(2), &clock).unwrap();
    /// let p = Permit::try_new(&b).unwrap();
    /// assert_eq!(p.gate().metrics().in_use, 1);
    /// ```
    pub fn gate(&self) -> &R::Target {
        &self.gate
    }

    /// The pointer the permit reaches its gate through (the `Arc`, the reference).
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(2), &clock).unwrap();
    /// let p = Permit::try_new(&b).unwrap();
    /// assert!(core::ptr::eq(*p.owner(), &b));
    /// ```
    pub fn owner(&self) -> &R {
        &self.gate
    }

    /// The gate's ticket (a breaker's says whether the call is a half-open probe). Always
    /// `Some` while the permit can be reached: only [`record`](Permit::record) (which consumes
    /// the permit) and `drop` take it.
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), &clock).unwrap();
    /// assert!(!Permit::try_new(&b).unwrap().ticket().unwrap().is_probe());
    /// ```
    pub fn ticket(&self) -> Option<&<R::Target as Admit>::Ticket> {
        self.ticket.as_ref()
    }

    /// The call ended with `outcome`.
    ///
    /// ```
    /// use bulwark::admission::{Outcome, Permit};
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock).unwrap();
    /// Permit::try_new(&b).unwrap().failure();
    /// Permit::try_new(&b).unwrap().record(Outcome::Ignored); // the run of failures goes on
    /// assert_eq!(b.metrics().consecutive_failures, 1);
    /// ```
    #[inline(always)]
    pub fn record(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.gate.record(ticket, outcome);
        }
    }

    /// The call succeeded: [`record`](Permit::record)`(Outcome::Success)`.
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock).unwrap();
    /// Permit::try_new(&b).unwrap().failure();
    /// Permit::try_new(&b).unwrap().success(); // the run of failures ends
    /// assert_eq!(b.metrics().consecutive_failures, 0);
    /// ```
    #[inline(always)]
    pub fn success(self) {
        self.record(Outcome::Success)
    }

    /// The call failed: [`record`](Permit::record)`(Outcome::Failure)`.
    ///
    /// ```
    /// use bulwark::admission::Permit;
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// Permit::try_new(&b).unwrap().failure();
    /// assert_eq!(b.state(), State::Open);
    /// ```
    #[inline(always)]
    pub fn failure(self) {
        self.record(Outcome::Failure)
    }
}

impl<R> Drop for Permit<R>
where
    R: Deref,
    R::Target: Admit,
{
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            // Only a gate that records asks the probe: for the others (`()`, the limiters)
            // a failure and a release are the same nothing, and the check, a call that
            // cannot be inlined, kept the drop glue of every future holding such a permit
            // (README row "core retry-only pipeline": 22.4 ns with this test first, 27.6
            // without, best of three alternated runs).
            if <R::Target as Admit>::RECORDS && crate::unwind::panicking() {
                // Dropped by a panic out of the operation: a failure (see `set_panic_probe`).
                self.gate.record(ticket, Outcome::Failure);
            } else {
                self.gate.release(ticket);
            }
        }
    }
}

impl<R> fmt::Debug for Permit<R>
where
    R: Deref,
    R::Target: Admit,
    <R::Target as Admit>::Ticket: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}
