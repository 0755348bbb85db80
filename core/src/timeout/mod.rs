//! Timeout and deadline: race an operation against a [`Sleep`], and carry an absolute
//! [`Deadline`] through nested calls.
//!
//! [`timeout`] and [`timeout_at`] wrap a future: its output, or [`Elapsed`] once the deadline
//! passes, at which point the inner future is dropped (that *is* the cancellation; see
//! [`Timeout`]'s `# Cancellation`). A future that is ready when first polled pays for no
//! timer: the sleep is only created after its first `Pending`.
//!
//! [`Deadline`] is the absolute form. Nested calls combine deadlines with [`Deadline::min`],
//! so the earliest one wins; [`Retry`](crate::retry::Retry) reads it and never sleeps past it.
//!
//! # Where it differs from tokio, tower and Polly
//!
//! [`Elapsed`] carries the instant the deadline passed and the timeout it was given
//! (`tokio::time::error::Elapsed` and tower's carry neither; Polly's
//! `TimeoutRejectedException` carries the timeout). The hook ([`Timeout::with_hooks`],
//! Polly's `OnTimeout`) is opt-in and free when unset (`()`).
//!
//! # A zero timeout
//!
//! One meaning everywhere in bulwark, the one `tokio::time::timeout` has: **a zero timeout (or
//! a deadline already passed) still lets an operation that is ready at its first poll
//! complete; an operation that is pending is cut at once** (dropped, with [`Elapsed`]). The
//! operation is always polled before the time is checked, which is also why a ready
//! operation reads no clock. This holds for [`timeout`], [`timeout_at`] with any
//! [`Deadline`], [`Retry::call_with_deadline`](crate::retry::Retry::call_with_deadline) (its
//! first attempt), and the [`pipeline`](crate::pipeline)'s total and attempt timeouts.
//!
//! ```
//! use bulwark::{Clock, MockClock, mock};
//! use bulwark::timeout::{Deadline, Elapsed, timeout, timeout_at};
//! use core::future::pending;
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let zero = Duration::ZERO;
//! assert_eq!(mock::run(&clock, timeout(&clock, zero, async { 7 })).unwrap(), Ok(7));
//! let passed = Deadline::after(clock.now(), zero);
//! assert_eq!(mock::run(&clock, timeout_at(&clock, passed, async { 7 })).unwrap(), Ok(7));
//! let cut = mock::run(&clock, timeout(&clock, zero, pending::<()>())).unwrap();
//! assert_eq!(cut, Err(Elapsed { deadline: clock.now(), timeout: Some(zero) })); // at once: no time passed
//! ```
//!
//! # Examples
//!
//! ```
//! use bulwark::{Clock, Instant, MockClock, Sleep, mock};
//! use bulwark::timeout::{Deadline, Elapsed, timeout_at};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let outer = Deadline::after(clock.now(), Duration::from_secs(2));
//! // An inner step wants 10 s, but the caller only has 2 s: the earliest deadline wins.
//! let inner = outer.min(Deadline::after(clock.now(), Duration::from_secs(10)));
//! let out = mock::run(&clock, timeout_at(&clock, inner, clock.sleep(Duration::from_secs(60))));
//! assert_eq!(out.unwrap(), Err(Elapsed { deadline: Instant::from_secs(2), timeout: None }));
//! assert_eq!(clock.now(), Instant::from_secs(2));
//! ```

mod deadline;
mod error;
mod future;

pub use deadline::Deadline;
pub use error::{Elapsed, Error};
pub use future::Timeout;

hooks! {
    /// What a [`Timeout`] tells when it fires ([`Timeout::with_hooks`]): the one hook
    /// convention of every pattern (`()` for none, `&H` shared, `(A, B)` both).
    ///
    /// ```
    /// use bulwark::timeout::{Elapsed, Hooks};
    /// use core::sync::atomic::{AtomicU32, Ordering};
    ///
    /// struct Count(AtomicU32);
    /// impl Hooks for Count {
    ///     fn on_timeout(&self, _elapsed: &Elapsed) { self.0.fetch_add(1, Ordering::Relaxed); }
    /// }
    /// let c = Count(AtomicU32::new(0));
    /// let e = Elapsed { deadline: bulwark::Instant::ZERO, timeout: None };
    /// (&c, ()).on_timeout(&e);
    /// assert_eq!(c.0.load(Ordering::Relaxed), 1);
    /// ```
    pub trait Hooks {
        /// The deadline passed; the inner future has just been dropped and the timeout
        /// returns `elapsed`.
        fn on_timeout(&self, elapsed: &Elapsed);
    }
}

use core::time::Duration;

use crate::time::Sleep;
use future::Limit;

/// Runs `fut` for at most `d`: its output, or [`Elapsed`] once `d` has passed.
///
/// The clock is read — and the deadline fixed at `now + d` — when `fut` is first pending, so a
/// future that is ready at once costs neither a clock read nor a timer. (For an operation
/// that does real work before its first `Pending`, that work is not counted; use
/// [`timeout_at`] with a deadline taken earlier when it must be.)
///
/// # Cancellation
///
/// `fut` is dropped when the time is up, and when the returned future is dropped.
///
/// # Examples
///
/// ```
/// use bulwark::{MockClock, mock, timeout::timeout};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let out = mock::run(&clock, timeout(&clock, Duration::from_secs(1), async { 42 }));
/// assert_eq!(out.unwrap(), Ok(42));
/// assert_eq!(clock.next_deadline(), None); // no timer was ever armed
/// ```
pub fn timeout<S: Sleep, F>(sleeper: S, d: Duration, fut: F) -> Timeout<S, F> {
    Timeout::new(sleeper, Limit::In(d, Deadline::NONE), fut)
}

/// Runs `fut` until `deadline` (an [`Instant`](crate::Instant) or a [`Deadline`];
/// [`Deadline::NONE`] never times out): its output, or [`Elapsed`] once the deadline is
/// reached. A deadline already past still lets a ready future complete.
///
/// # Cancellation
///
/// `fut` is dropped at the deadline, and when the returned future is dropped.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, MockClock, Sleep, mock, timeout::{Elapsed, timeout_at}};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let slow = clock.sleep(Duration::from_secs(9));
/// let out = mock::run(&clock, timeout_at(&clock, Instant::from_secs(3), slow));
/// assert_eq!(out.unwrap(), Err(Elapsed { deadline: Instant::from_secs(3), timeout: None }));
/// ```
pub fn timeout_at<S: Sleep, F>(sleeper: S, deadline: impl Into<Deadline>, fut: F) -> Timeout<S, F> {
    Timeout::new(sleeper, Limit::At(deadline.into()), fut)
}

/// [`timeout`] by `d`, but never past the caller's `deadline`: an attempt's timeout inside a
/// call's deadline. Like `timeout`, the clock is read only if `fut` is pending; the deadline
/// reported by [`Elapsed`] is whichever came first.
///
/// # Cancellation
///
/// `fut` is dropped when the time is up, and when the returned future is dropped.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, MockClock, mock, timeout::{Deadline, Elapsed, timeout_within}};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let caller = Deadline::at(Instant::from_secs(2));
/// // A 5 s attempt timeout inside a call that must end at 2 s ends at 2 s.
/// let out = mock::run(&clock, timeout_within(&clock, Duration::from_secs(5), caller, clock.sleep(Duration::from_secs(9))));
/// // It was given 5 s: the error says so, and when it gave up.
/// let five = Some(Duration::from_secs(5));
/// assert_eq!(out.unwrap(), Err(Elapsed { deadline: Instant::from_secs(2), timeout: five }));
/// // Without a caller deadline it is a plain `timeout`.
/// let out = mock::run(&clock, timeout_within(&clock, Duration::from_secs(1), Deadline::NONE, async { 7 }));
/// assert_eq!(out.unwrap(), Ok(7));
/// ```
pub fn timeout_within<S: Sleep, F>(
    sleeper: S,
    d: Duration,
    deadline: Deadline,
    fut: F,
) -> Timeout<S, F> {
    Timeout::new(sleeper, Limit::In(d, deadline), fut)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::mock::{self, MockClock};
    use crate::time::{Clock, Instant};
    use core::cell::Cell;
    use core::future::Future;
    use core::pin::{Pin, pin};
    use core::task::{Context, Poll, Waker};

    /// Pending `n` times (waking itself), then ready; counts its polls.
    struct Countdown<'a> {
        left: u32,
        polls: &'a Cell<u32>,
    }
    impl Future for Countdown<'_> {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            self.polls.set(self.polls.get() + 1);
            if self.left == 0 {
                return Poll::Ready("done");
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn ready_future_never_registers_a_sleep() {
        let clock = MockClock::new();
        let polls = Cell::new(0);
        let mut t = pin!(timeout(
            &clock,
            Duration::from_secs(1),
            Countdown {
                left: 0,
                polls: &polls
            }
        ));
        let cx = &mut Context::from_waker(Waker::noop());
        assert_eq!(t.as_mut().poll(cx), Poll::Ready(Ok("done")));
        assert_eq!(polls.get(), 1);
        assert_eq!(clock.next_deadline(), None);
        // The same with an absolute deadline already in the past.
        clock.set(Instant::from_secs(5));
        let polls = Cell::new(0);
        let out = mock::run(
            &clock,
            timeout_at(
                &clock,
                Instant::from_secs(1),
                Countdown {
                    left: 0,
                    polls: &polls,
                },
            ),
        );
        assert_eq!(out, Ok(Ok("done")));
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn sleep_is_armed_only_after_the_first_pending() {
        let clock = MockClock::new();
        let polls = Cell::new(0);
        let mut t = pin!(timeout(
            &clock,
            Duration::from_secs(1),
            Countdown {
                left: 1,
                polls: &polls
            }
        ));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(t.as_mut().poll(cx).is_pending());
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(1)));
        assert_eq!(t.as_mut().poll(cx), Poll::Ready(Ok("done")));
        // Completion releases the timer at once.
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn pending_future_times_out_at_the_exact_instant_and_is_dropped() {
        struct DropFlag<'a>(&'a Cell<bool>);
        impl Drop for DropFlag<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let clock = MockClock::new();
        clock.set(Instant::from_millis(250));
        let dropped = Cell::new(false);
        let inner = async {
            let _guard = DropFlag(&dropped);
            core::future::pending::<()>().await
        };
        let mut t = pin!(timeout(&clock, Duration::from_millis(1_500), inner));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(t.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(1_749));
        assert!(t.as_mut().poll(cx).is_pending());
        assert!(!dropped.get());
        clock.set(Instant::from_millis(1_750));
        assert_eq!(
            t.as_mut().poll(cx),
            Poll::Ready(Err(Elapsed {
                deadline: Instant::from_millis(1_750),
                timeout: Some(Duration::from_millis(1_500)),
            }))
        );
        assert!(dropped.get(), "the inner future is dropped at the deadline");
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn nested_deadlines_take_the_earliest() {
        let clock = MockClock::new();
        let outer = Deadline::after(clock.now(), Duration::from_secs(3));
        let out = mock::run(&clock, async {
            // The inner layer asks for 10 s but derives its deadline from the outer one.
            let inner = outer.min(Deadline::after(clock.now(), Duration::from_secs(10)));
            timeout_at(&clock, inner, core::future::pending::<()>()).await
        });
        assert_eq!(
            out,
            Ok(Err(Elapsed {
                deadline: Instant::from_secs(3),
                timeout: None,
            }))
        );
        assert_eq!(clock.now(), Instant::from_secs(3));
        // Nesting the futures themselves: the outer (earlier) one fires first.
        let t0 = clock.now();
        let out = mock::run(
            &clock,
            timeout(
                &clock,
                Duration::from_secs(2),
                timeout(
                    &clock,
                    Duration::from_secs(5),
                    core::future::pending::<()>(),
                ),
            ),
        );
        assert_eq!(
            out,
            Ok(Err(Elapsed {
                deadline: t0 + Duration::from_secs(2),
                timeout: Some(Duration::from_secs(2)),
            }))
        );
    }

    #[test]
    fn no_deadline_never_times_out_and_huge_durations_saturate() {
        let clock = MockClock::new();
        let polls = Cell::new(0);
        let out = mock::run(
            &clock,
            timeout_at(
                &clock,
                Deadline::NONE,
                Countdown {
                    left: 3,
                    polls: &polls,
                },
            ),
        );
        assert_eq!(out, Ok(Ok("done")));
        assert_eq!(clock.next_deadline(), None);
        clock.set(Instant::MAX - Duration::from_secs(1));
        let polls = Cell::new(0);
        let out = mock::run(
            &clock,
            timeout(
                &clock,
                Duration::MAX,
                Countdown {
                    left: 2,
                    polls: &polls,
                },
            ),
        );
        assert_eq!(out, Ok(Ok("done")));
    }

    #[test]
    fn timeout_future_is_send_when_parts_are() {
        fn is_send<T: Send>(_: &T) {}
        let clock = MockClock::new();
        let t = timeout(&clock, Duration::from_secs(1), async { 1 });
        is_send(&t);
        assert!(std::format!("{t:?}").starts_with("Timeout"));
    }

    #[test]
    fn timeout_within_starts_at_the_first_pending_and_stops_at_the_cap() {
        let clock = MockClock::new();
        // Anchored when first pending (at 2 s), not when built (at 0 s).
        let t = timeout_within(
            &clock,
            Duration::from_secs(1),
            Deadline::NONE,
            clock.sleep(Duration::from_secs(60)),
        );
        clock.set(Instant::from_secs(2));
        let out = mock::run(&clock, t).unwrap();
        assert_eq!(
            out,
            Err(Elapsed {
                deadline: Instant::from_secs(3),
                timeout: Some(Duration::from_secs(1)),
            })
        );
        // Never past the cap.
        let cap = Deadline::at(Instant::from_millis(3500));
        let t = timeout_within(
            &clock,
            Duration::from_secs(10),
            cap,
            clock.sleep(Duration::from_secs(60)),
        );
        let out = mock::run(&clock, t).unwrap();
        assert_eq!(
            out,
            Err(Elapsed {
                deadline: Instant::from_millis(3500),
                timeout: Some(Duration::from_secs(10)),
            })
        );
    }

    /// Polly `TimeoutStrategyOptions.OnTimeout`: "invoked when a timeout occurs", with the
    /// timeout that was configured (`OnTimeoutArguments.Timeout`); here also the instant.
    /// A 1.5 s timeout started at 0.25 s fires once, at 1.75 s; one that completes, never.
    #[test]
    fn the_hook_fires_once_with_the_configured_timeout() {
        struct Log(Cell<u32>, Cell<Option<Elapsed>>);
        impl Hooks for Log {
            fn on_timeout(&self, elapsed: &Elapsed) {
                self.0.set(self.0.get() + 1);
                self.1.set(Some(*elapsed));
            }
        }
        let clock = MockClock::new();
        clock.set(Instant::from_millis(250));
        let log = Log(Cell::new(0), Cell::new(None));
        let t = timeout(
            &clock,
            Duration::from_millis(1_500),
            clock.sleep(Duration::from_secs(9)),
        )
        .with_hooks(&log);
        let out = mock::run(&clock, t).unwrap();
        let want = Elapsed {
            deadline: Instant::from_millis(1_750),
            timeout: Some(Duration::from_millis(1_500)),
        };
        assert_eq!(out, Err(want));
        assert_eq!((log.0.get(), log.1.get()), (1, Some(want)));
        let fast = timeout(
            &clock,
            Duration::from_secs(1),
            clock.sleep(Duration::from_millis(10)),
        )
        .with_hooks(&log);
        assert_eq!(mock::run(&clock, fast).unwrap(), Ok(()));
        assert_eq!(log.0.get(), 1);
        // An absolute deadline has no duration to report.
        let at = timeout_at(&clock, Instant::from_secs(3), core::future::pending::<()>())
            .with_hooks(&log);
        let _ = mock::run(&clock, at).unwrap();
        assert_eq!(
            log.1.get(),
            Some(Elapsed {
                deadline: Instant::from_secs(3),
                timeout: None
            })
        );
    }
}
