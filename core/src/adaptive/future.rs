//! The async form: [`AdaptiveLimit::call`] and its [`Call`] future.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::shared::AdaptiveLimit;
use crate::admission::Permit;
use crate::bulkhead::BulkheadFull;
use crate::classify::{Classify, ErrorsAreFailures};
use crate::time::Clock;

/// The outcome of an [`AdaptiveLimit::call`]: refused at the limit, or the operation's own
/// error.
///
/// ```
/// use bulwark::adaptive::Error;
/// use bulwark::bulkhead::BulkheadFull;
/// assert_eq!(Error::<&str>::Full(BulkheadFull).to_string(), "bulkhead full");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The limit was reached: the operation was not called.
    Full(BulkheadFull),
    /// The operation failed.
    Operation(E),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full(r) => r.fmt(f),
            Error::Operation(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Full(r) => Some(r),
            Error::Operation(e) => Some(e),
        }
    }
}

impl<C: Clock> AdaptiveLimit<C> {
    /// Runs `op` if the limit has room, measuring its round trip (every `Err` counts as
    /// dropped).
    ///
    /// # Errors
    ///
    /// [`Error::Full`] at the limit (the operation is not called), or [`Error::Operation`].
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(10), &clock).unwrap();
    /// assert_eq!(mock::run(&clock, limit.call(|| async { Err::<(), _>("503") })).unwrap(), Err(bulwark::adaptive::Error::Operation("503")));
    /// assert_eq!(limit.limit(), 9); // dropped: backed off
    /// ```
    pub fn call<F, Fut, T, E>(&self, op: F) -> Call<&Self, F, Fut, ErrorsAreFailures>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Call::new(self, ErrorsAreFailures, op)
    }
}

pin_project! {
    /// The future of [`AdaptiveLimit::call`], for any owner of the limit through [`Call::new`].
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Call, Config};
    /// use bulwark::classify::ErrorsAreFailures;
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    /// let clock = MockClock::new();
    /// let limit = Arc::new(AdaptiveLimit::new(Config::new(Algorithm::vegas()), &clock).unwrap());
    /// let call = Call::new(Arc::clone(&limit), ErrorsAreFailures, || async { Ok::<_, ()>(1) });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
    /// assert_eq!(limit.in_flight(), 0);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<R, F, Fut, K>
    where
        R: Deref,
        R::Target: crate::admission::Admit,
    {
        start: Option<(R, F)>,
        classify: K,
        permit: Option<Permit<R>>,
        #[pin]
        fut: Option<Fut>,
    }
}

impl<R, F, Fut, K, C> Call<R, F, Fut, K>
where
    R: Deref<Target = AdaptiveLimit<C>>,
    C: Clock,
{
    /// A call of `op` through the limit `limit` points to, `classify` judging the result.
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Call, Config};
    /// use bulwark::classify::ErrorsAreFailures;
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()), &clock).unwrap();
    /// assert_eq!(mock::run(&clock, Call::new(&limit, ErrorsAreFailures, || async { Ok::<_, ()>(3) })).unwrap(), Ok(3));
    /// ```
    pub fn new(limit: R, classify: K, op: F) -> Self {
        Call {
            start: Some((limit, op)),
            classify,
            permit: None,
            fut: None,
        }
    }
}

impl<R, F, Fut, K, C, T, E> Future for Call<R, F, Fut, K>
where
    R: Deref<Target = AdaptiveLimit<C>>,
    C: Clock,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    K: Classify<T, E>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((limit, op)) = this.start.take() {
            match Permit::try_new(limit) {
                Ok(permit) => {
                    *this.permit = Some(permit);
                    this.fut.set(Some(op()));
                }
                Err(full) => return Poll::Ready(Err(Error::Full(full))),
            }
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            return Poll::Pending; // polled after completion
        };
        let result = core::task::ready!(fut.poll(cx));
        this.fut.set(None);
        if let Some(permit) = this.permit.take() {
            permit.record(this.classify.classify(&result).outcome());
        }
        Poll::Ready(result.map_err(Error::Operation))
    }
}

impl<R, F, Fut, K> fmt::Debug for Call<R, F, Fut, K>
where
    R: Deref,
    R::Target: crate::admission::Admit,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
