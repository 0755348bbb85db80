//! The [`Timeout`] future.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use super::Hooks;
use super::deadline::Deadline;
use super::error::Elapsed;
use crate::time::{Instant, Sleep};

/// When a [`Timeout`] gives up: a duration not yet anchored to the clock, or a deadline.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Limit {
    /// `now + d`, with `now` read when the inner future is first pending, and no later than
    /// the deadline (an attempt's timeout inside a call's).
    In(Duration, Deadline),
    /// An absolute deadline (or none).
    At(Deadline),
    /// Anchored once the inner future was first pending: the instant it gives up at, and the
    /// duration it was given (if any), for [`Elapsed`].
    Armed(Instant, Option<Duration>),
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
    /// assert_eq!(
    ///     mock::run(&clock, t).unwrap(),
    ///     Err(Elapsed { deadline: Instant::from_secs(1), timeout: Some(Duration::from_secs(1)) })
    /// );
    /// assert_eq!(clock.now(), Instant::from_secs(1));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<S: Sleep, F, H = ()> {
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: Option<S::Sleep>,
        sleeper: S,
        limit: Limit,
        hooks: H,
    }
}

impl<S: Sleep, F> Timeout<S, F> {
    pub(crate) fn new(sleeper: S, limit: Limit, fut: F) -> Self {
        Timeout {
            fut: Some(fut),
            sleep: None,
            sleeper,
            limit,
            hooks: (),
        }
    }
}

impl<S: Sleep, F, H> Timeout<S, F, H> {
    /// The same timeout, telling `hooks` when it fires ([`Hooks::on_timeout`]; Polly's
    /// `OnTimeout`, resilience4j's `TimeLimiter` timeout event). `&H` and `(A, B)` are hooks
    /// too.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, Sleep, mock};
    /// use bulwark::timeout::{Elapsed, Hooks, timeout};
    /// use core::cell::Cell;
    /// use core::time::Duration;
    ///
    /// struct Log(Cell<Option<Elapsed>>);
    /// impl Hooks for Log {
    ///     fn on_timeout(&self, elapsed: &Elapsed) { self.0.set(Some(*elapsed)) }
    /// }
    /// let clock = MockClock::new();
    /// let log = Log(Cell::new(None));
    /// let slow = clock.sleep(Duration::from_secs(5));
    /// let t = timeout(&clock, Duration::from_millis(250), slow).with_hooks(&log);
    /// let _ = mock::run(&clock, t).unwrap();
    /// let fired = log.0.get().unwrap();
    /// assert_eq!(fired.deadline, Instant::from_millis(250));
    /// assert_eq!(fired.timeout, Some(Duration::from_millis(250)));
    /// ```
    pub fn with_hooks<H2: Hooks>(self, hooks: H2) -> Timeout<S, F, H2> {
        Timeout {
            fut: self.fut,
            sleep: self.sleep,
            sleeper: self.sleeper,
            limit: self.limit,
            hooks,
        }
    }
}

impl<S: Sleep, F: Future, H: Hooks> Future for Timeout<S, F, H> {
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
            let (deadline, timeout) = match *this.limit {
                Limit::In(d, cap) => {
                    let at = this.sleeper.now().saturating_add(d);
                    (cap.instant().map_or(at, |cap| at.min(cap)), Some(d))
                }
                Limit::At(deadline) => match deadline.instant() {
                    Some(at) => (at, None),
                    None => return Poll::Pending, // no deadline: never times out
                },
                Limit::Armed(at, timeout) => (at, timeout), // its sleep ended: re-armed
            };
            *this.limit = Limit::Armed(deadline, timeout);
            this.sleep.set(Some(this.sleeper.sleep_until(deadline)));
        }
        let Some(sleep) = this.sleep.as_mut().as_pin_mut() else {
            return Poll::Pending; // unreachable: set just above
        };
        core::task::ready!(sleep.poll(cx));
        this.sleep.set(None);
        this.fut.set(None); // cancellation: the inner future is dropped at the deadline
        let elapsed = match *this.limit {
            Limit::Armed(deadline, timeout) => Elapsed { deadline, timeout },
            Limit::In(d, _) => Elapsed {
                deadline: Instant::MAX, // unreachable: anchored above
                timeout: Some(d),
            },
            Limit::At(d) => Elapsed {
                deadline: d.instant().unwrap_or(Instant::MAX), // unreachable: anchored above
                timeout: None,
            },
        };
        this.hooks.on_timeout(&elapsed);
        Poll::Ready(Err(elapsed))
    }
}

impl<S: Sleep, F, H> fmt::Debug for Timeout<S, F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("armed", &self.sleep.is_some())
            .field("done", &self.fut.is_none())
            .finish_non_exhaustive()
    }
}
