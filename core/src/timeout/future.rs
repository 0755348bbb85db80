//! The [`Timeout`] future.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use super::deadline::Deadline;
use super::error::Elapsed;
use crate::time::Sleep;

/// When a [`Timeout`] gives up: a duration not yet anchored to the clock, or a deadline.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Limit {
    /// `now + d`, with `now` read when the inner future is first pending, and no later than
    /// the deadline (an attempt's timeout inside a call's).
    In(Duration, Deadline),
    /// An absolute deadline (or none).
    At(Deadline),
}

pin_project! {
    /// The future of [`timeout`](super::timeout) and [`timeout_at`](super::timeout_at):
    /// the inner future's output, or [`Elapsed`] once the deadline passes.
    ///
    /// Polls the inner future first and only creates its sleep after the inner future's
    /// first `Pending`: a future that is ready at once never reads the clock and never arms
    /// a timer. `Send` whenever the inner future, the sleeper and its sleep are.
    ///
    /// # Cancellation
    ///
    /// When the deadline passes, the inner future is dropped at once (inside the poll that
    /// returns [`Elapsed`]): whatever it held is released then, and it is never polled
    /// again. Dropping the `Timeout` drops the inner future and the sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, Sleep, mock, timeout::{Elapsed, Timeout, timeout}};
    /// use core::time::Duration;
    ///
    /// let clock = MockClock::new();
    /// let t: Timeout<&MockClock, _> = timeout(&clock, Duration::from_secs(1), clock.sleep(Duration::from_secs(5)));
    /// assert_eq!(mock::run(&clock, t).unwrap(), Err(Elapsed { deadline: Instant::from_secs(1) }));
    /// assert_eq!(clock.now(), Instant::from_secs(1));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<S: Sleep, F> {
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: Option<S::Sleep>,
        sleeper: S,
        limit: Limit,
    }
}

impl<S: Sleep, F> Timeout<S, F> {
    pub(crate) fn new(sleeper: S, limit: Limit, fut: F) -> Self {
        Timeout {
            fut: Some(fut),
            sleep: None,
            sleeper,
            limit,
        }
    }
}

impl<S: Sleep, F: Future> Future for Timeout<S, F> {
    type Output = Result<F::Output, Elapsed>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Polled after completion: may do anything but be unsound.
            return Poll::Pending;
        };
        if let Poll::Ready(v) = fut.poll(cx) {
            this.fut.set(None);
            this.sleep.set(None); // release the timer now, not when the Timeout is dropped
            return Poll::Ready(Ok(v));
        }
        if this.sleep.is_none() {
            let deadline = match *this.limit {
                Limit::In(d, cap) => {
                    let at = this.sleeper.now().saturating_add(d);
                    cap.instant().map_or(at, |cap| at.min(cap))
                }
                Limit::At(deadline) => match deadline.instant() {
                    Some(at) => at,
                    None => return Poll::Pending, // no deadline: never times out
                },
            };
            *this.limit = Limit::At(Deadline::at(deadline));
            this.sleep.set(Some(this.sleeper.sleep_until(deadline)));
        }
        let Some(sleep) = this.sleep.as_mut().as_pin_mut() else {
            return Poll::Pending; // unreachable: set just above
        };
        core::task::ready!(sleep.poll(cx));
        this.sleep.set(None);
        this.fut.set(None); // cancellation: the inner future is dropped at the deadline
        let deadline = match *this.limit {
            Limit::At(d) => d.instant().unwrap_or(crate::time::Instant::MAX),
            Limit::In(..) => crate::time::Instant::MAX, // unreachable: anchored above
        };
        Poll::Ready(Err(Elapsed { deadline }))
    }
}

impl<S: Sleep, F> fmt::Debug for Timeout<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("armed", &self.sleep.is_some())
            .field("done", &self.fut.is_none())
            .finish_non_exhaustive()
    }
}
