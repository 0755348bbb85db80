//! A panicking operation is a failure where the platform lets a panic be seen (feature `std`).

use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::admission::{Admit, Permit};

/// Polls `fut`, an operation admitted with `permit`. With the core's `std` feature (the std
/// adapters turn it on), a panic out of the poll first records a [failure](crate::admission::Outcome::Failure)
/// on the permit, if it still holds one, then goes on unwinding to the caller with its own
/// payload: a breaker counts a panic as resilience4j counts an exception. Without `std` the
/// panic unwinds straight through, and the permit, dropped on the way, counts the call as
/// abandoned.
///
/// What every future that holds a permit around an operation polls it with (a gate's
/// [`Call`](crate::admission::Call), a pipeline attempt, the tower gate layers).
///
/// ```
/// use bulwark::admission::{Permit, poll_admitted};
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark::MockClock;
/// use core::pin::pin;
/// use core::task::{Context, Poll, Waker};
///
/// let clock = MockClock::new();
/// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
/// let mut permit = Some(Permit::try_new(&breaker).unwrap());
/// let mut cx = Context::from_waker(Waker::noop());
/// let polled = poll_admitted(pin!(async { 7 }), &mut cx, &mut permit);
/// assert_eq!(polled, Poll::Ready(7));
/// assert!(permit.is_some()); // a finished poll leaves the permit for its outcome
/// ```
#[inline(always)]
pub fn poll_admitted<F: Future, R>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
    permit: &mut Option<Permit<R>>,
) -> Poll<F::Output>
where
    R: Deref,
    R::Target: Admit,
{
    #[cfg(feature = "std")]
    {
        // AssertUnwindSafe: the panic is resumed as soon as the failure is recorded, so
        // nothing the poll touched is used in the state the panic left it in; the permit is
        // taken out first, so unwinding does not give it back as well.
        match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                if let Some(permit) = permit.take() {
                    permit.record(crate::admission::Outcome::Failure);
                }
                std::panic::resume_unwind(payload)
            }
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = permit;
        fut.poll(cx)
    }
}
