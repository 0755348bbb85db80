//! The async form of every gate: [`Call`].

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::error::Error;
use super::{Admit, Permit};
use crate::classify::Classify;

pin_project! {
    /// One call of an operation through a gate ([`Admit`]): the gate is asked when the future
    /// is first polled; a rejection is returned at once as [`Error::Rejected`] with the
    /// gate's own rejection, and the operation is never called; an admitted call runs the
    /// operation holding a [`Permit`], and the classifier `K` judges its result, which the
    /// permit records ([`Classify`] → [`Outcome`](super::Outcome)).
    ///
    /// Generic over how it reaches its gate, as [`Permit`] is: `&G` from a gate's `call`
    /// method ([`AdaptiveLimit::call`](crate::adaptive::AdaptiveLimit::call),
    /// [`AdaptiveThrottle::call`](crate::throttle::AdaptiveThrottle::call)), or any owner (an
    /// `Arc`, a `&'static`) through [`Call::new`], for a future that must be `'static`. It
    /// never allocates and is `Send` whenever its parts are.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the operation's future and its permit unrecorded: the gate
    /// gets its ticket back ([`Admit::release`]) and counts nothing, as for any abandoned
    /// [`Permit`].
    ///
    /// # Panics
    ///
    /// A panic out of the operation goes on to the caller. Where a std adapter has set the
    /// [panic probe](super::set_panic_probe), its permit, dropped by the unwinding, records a
    /// [failure](super::Outcome::Failure), as resilience4j counts an exception; without one
    /// the permit is abandoned.
    ///
    /// # Examples
    ///
    /// Any gate, a bulkhead here, through an `Arc`:
    ///
    /// ```
    /// use bulwark::admission::{Call, Error};
    /// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
    /// use bulwark::classify::ErrorsAreFailures;
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    ///
    /// let clock = MockClock::new();
    /// let bulkhead = Arc::new(Bulkhead::new(Config::new(1), &clock).unwrap());
    /// let held = bulwark::admission::Permit::try_new(&*bulkhead).unwrap(); // the only slot
    /// let mut ran = false;
    /// let call = Call::new(Arc::clone(&bulkhead), ErrorsAreFailures, || { ran = true; async { Ok::<_, ()>(1) } });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Err(Error::Rejected(BulkheadFull)));
    /// assert!(!ran); // rejected: the operation was never called
    /// drop(held);
    /// let call = Call::new(Arc::clone(&bulkhead), ErrorsAreFailures, || async { Ok::<_, ()>(1) });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
    /// assert_eq!(bulkhead.metrics().in_use, 0); // the permit went back with the answer
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<R, F, Fut, K>
    where
        R: Deref,
        R::Target: Admit,
    {
        // Three `Option`s rather than an enum of phases: measured with callgrind, an admitted
        // call through a breaker costs 83 instructions this way (as `circuit_breaker::Call`)
        // and 110 with a pinned `enum { Start, Running, Done }` replaced at each step.
        //
        // Not polled yet: the gate and the operation, taken at the first poll.
        start: Option<(R, F)>,
        classify: K,
        // Admitted: the permit, taken to record the outcome.
        permit: Option<Permit<R>>,
        // Admitted: the operation's future, dropped once it has answered.
        #[pin]
        fut: Option<Fut>,
    }
}

impl<R, F, Fut, K> Call<R, F, Fut, K>
where
    R: Deref,
    R::Target: Admit,
{
    /// A call of `op` through the gate `gate` points to, `classify` judging the result for
    /// the gate.
    ///
    /// ```
    /// use bulwark::admission::Call;
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// use bulwark::classify::Verdict;
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// // A 404 is the caller's own business: ignored, the breaker stays closed.
    /// let not_found_is_ignored = |r: &Result<(), u16>| if r == &Err(404) { Verdict::Ignore } else { Verdict::FAILURE };
    /// let out = mock::run(&clock, Call::new(&breaker, not_found_is_ignored, || async { Err(404) })).unwrap();
    /// assert_eq!(out.unwrap_err().into_inner(), Some(404));
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn new(gate: R, classify: K, op: F) -> Self
    where
        F: FnOnce() -> Fut,
    {
        Call {
            start: Some((gate, op)),
            classify,
            permit: None,
            fut: None,
        }
    }
}

impl<R, F, Fut, K, T, E> Future for Call<R, F, Fut, K>
where
    R: Deref,
    R::Target: Admit,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    K: Classify<T, E>,
{
    type Output = Result<T, Error<<R::Target as Admit>::Rejected, E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((gate, op)) = this.start.take() {
            match Permit::try_new(gate) {
                Ok(permit) => {
                    *this.permit = Some(permit);
                    this.fut.set(Some(op()));
                }
                Err(rejected) => return Poll::Ready(Err(Error::Rejected(rejected))),
            }
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Rejected or answered: polled after completion, which may do anything but be
            // unsound.
            return Poll::Pending;
        };
        let result = core::task::ready!(fut.poll(cx));
        // The operation's future is dropped before the outcome is recorded.
        this.fut.set(None);
        if let Some(permit) = this.permit.take() {
            permit.record(this.classify.classify(&result).outcome());
        }
        Poll::Ready(result.map_err(Error::Inner))
    }
}

impl<R, F, Fut, K> fmt::Debug for Call<R, F, Fut, K>
where
    R: Deref,
    R::Target: Admit,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("started", &self.start.is_none())
            .field("admitted", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}

/// A gate's `call` and `call_with`, the two entry points to its [`Call`], written once: inside
/// an inherent `impl` of a gate, `gate_calls! { #[doc..] call; #[doc..] call_with; }` with
/// each method's own docs.
macro_rules! gate_calls {
    ($(#[$call:meta])* call; $(#[$with:meta])* call_with;) => {
        $(#[$call])*
        pub fn call<F, Fut, T, E>(
            &self,
            op: F,
        ) -> $crate::admission::Call<&Self, F, Fut, $crate::classify::ErrorsAreFailures>
        where
            F: FnOnce() -> Fut,
            Fut: core::future::Future<Output = Result<T, E>>,
        {
            self.call_with($crate::classify::ErrorsAreFailures, op)
        }

        $(#[$with])*
        pub fn call_with<K, F, Fut, T, E>(
            &self,
            classify: K,
            op: F,
        ) -> $crate::admission::Call<&Self, F, Fut, K>
        where
            K: $crate::classify::Classify<T, E>,
            F: FnOnce() -> Fut,
            Fut: core::future::Future<Output = Result<T, E>>,
        {
            $crate::admission::Call::new(self, classify, op)
        }
    };
}
pub(crate) use gate_calls;

#[cfg(all(test, not(loom)))]
mod tests {
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use core::time::Duration;

    use super::Call;
    use crate::bulkhead::{Bulkhead, Config};
    use crate::classify::ErrorsAreFailures;
    use crate::{MockClock, mock};

    #[test]
    fn a_cancelled_call_gives_its_permit_back_and_a_finished_one_stays_finished() {
        let clock = MockClock::new();
        let b = Bulkhead::new(Config::new(1), &clock).unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        {
            let mut call = pin!(Call::new(&b, ErrorsAreFailures, || async {
                clock.sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(1)
            }));
            assert_eq!(
                b.metrics().in_use,
                0,
                "nothing is admitted before the first poll"
            );
            assert!(call.as_mut().poll(cx).is_pending());
            assert_eq!(b.metrics().in_use, 1);
        } // cancelled mid-flight
        assert_eq!(b.metrics().in_use, 0);
        assert_eq!(
            clock.next_deadline(),
            None,
            "the operation's sleep was dropped"
        );

        let mut runs = 0;
        {
            let mut call = pin!(Call::new(&b, ErrorsAreFailures, || {
                runs += 1;
                async { Err::<(), _>("503") }
            }));
            assert_eq!(
                call.as_mut().poll(cx),
                Poll::Ready(Err(super::Error::Inner("503")))
            );
            assert_eq!(call.as_mut().poll(cx), Poll::Pending); // polled after completion
        }
        assert_eq!((runs, b.metrics().in_use), (1, 0));
        assert_eq!(
            mock::run(
                &clock,
                Call::new(&b, ErrorsAreFailures, || async { Ok::<_, ()>(2) })
            ),
            Ok(Ok(2))
        );
    }
}
