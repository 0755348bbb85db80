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
    #[project = PhaseProj]
    enum Phase<R, F, Fut>
    where
        R: Deref,
        R::Target: Admit,
    {
        /// Not polled yet: the gate is asked at the first poll. `None` once taken.
        Start { start: Option<(R, F)> },
        /// Admitted: the operation runs holding its permit (`None` once taken to record).
        Running { permit: Option<Permit<R>>, #[pin] fut: Fut },
        /// Answered (or rejected).
        Done,
    }
}

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
        #[pin]
        phase: Phase<R, F, Fut>,
        classify: K,
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
    pub fn new(gate: R, classify: K, op: F) -> Self {
        Call {
            phase: Phase::Start {
                start: Some((gate, op)),
            },
            classify,
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
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Start { start } => {
                    let Some((gate, op)) = start.take() else {
                        return Poll::Pending; // only after `op` panicked: the phase never left `Start`
                    };
                    match Permit::try_new(gate) {
                        Ok(permit) => this.phase.set(Phase::Running {
                            permit: Some(permit),
                            fut: op(),
                        }),
                        Err(rejected) => {
                            this.phase.set(Phase::Done);
                            return Poll::Ready(Err(Error::Rejected(rejected)));
                        }
                    }
                }
                PhaseProj::Running { permit, fut } => {
                    let result = core::task::ready!(fut.poll(cx));
                    let permit = permit.take();
                    // The operation's future is dropped before the outcome is recorded.
                    this.phase.set(Phase::Done);
                    if let Some(permit) = permit {
                        permit.record(this.classify.classify(&result).outcome());
                    }
                    return Poll::Ready(result.map_err(Error::Inner));
                }
                // Polled after completion: the contract allows anything but unsoundness.
                PhaseProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<R, F, Fut, K> fmt::Debug for Call<R, F, Fut, K>
where
    R: Deref,
    R::Target: Admit,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Start { .. } => "start",
            Phase::Running { .. } => "running",
            Phase::Done => "done",
        };
        f.debug_struct("Call")
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}
