//! The async wrapper: [`CircuitBreaker::call`].

use core::future::Future;

use super::error::Error;
use super::open_time::OpenTime;
use super::shared::CircuitBreaker;
use super::window::Window;
use super::{Classify, ErrorsAreFailures, Events};
use crate::time::Clock;

impl<C: Clock, W: Window, E: Events, G: OpenTime> CircuitBreaker<C, W, E, G> {
    /// Runs a synchronous `op` through the breaker: `Err` results are failures. `op` is not
    /// called when the breaker rejects.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] when the breaker did not let the call through, or
    /// [`Error::Inner`] with `op`'s own error.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, Error}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// assert_eq!(b.call_sync(|| Err::<(), _>("refused")), Err(Error::Inner("refused")));
    /// assert!(b.call_sync(|| Ok::<_, &str>(1)).unwrap_err().is_rejected());
    /// ```
    #[inline(always)]
    pub fn call_sync<T, Er>(&self, op: impl FnOnce() -> Result<T, Er>) -> Result<T, Error<Er>> {
        self.call_sync_with(ErrorsAreFailures, op)
    }

    /// Runs a synchronous `op` through the breaker, with `classify` deciding what each result
    /// means.
    ///
    /// # Errors
    ///
    /// As [`call_sync`](CircuitBreaker::call_sync).
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, circuit_breaker::{CircuitBreaker, Config, State, Verdict}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// let _ = b.call_sync_with(|_: &Result<(), u16>| Verdict::Ignore, || Err(404));
    /// assert_eq!(b.state(), State::Closed);
    /// ```
    #[inline(always)]
    pub fn call_sync_with<K, T, Er>(
        &self,
        classify: K,
        op: impl FnOnce() -> Result<T, Er>,
    ) -> Result<T, Error<Er>>
    where
        K: Classify<T, Er>,
    {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        let result = op();
        permit.record(classify.classify(&result).outcome());
        result.map_err(Error::Inner)
    }

    /// Runs `op` through the breaker: `Err` results are failures. See
    /// [`call_with`](CircuitBreaker::call_with) to classify results yourself.
    ///
    /// The permit is asked for when the returned future is first polled; `op` is not called
    /// at all when the breaker rejects.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops `op`'s future and its permit: nothing is recorded and a
    /// half-open probe slot is given back.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] when the breaker did not let the call through, or
    /// [`Error::Inner`] with `op`'s own error.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, mock, circuit_breaker::{CircuitBreaker, Config, Error, NoWindow}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// let out = mock::run(&clock, b.call(|| async { Err::<(), _>(500) })).unwrap();
    /// assert_eq!(out, Err(Error::Inner(500)));
    /// let out = mock::run(&clock, b.call(|| async { Ok::<_, u16>(()) })).unwrap();
    /// assert!(out.unwrap_err().is_rejected());
    /// ```
    pub fn call<F, Fut, T, Er>(&self, op: F) -> Call<&Self, F, Fut, ErrorsAreFailures>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Er>>,
    {
        self.call_with(ErrorsAreFailures, op)
    }

    /// Runs `op` through the breaker, with `classify` deciding what each result means.
    ///
    /// # Errors
    ///
    /// As [`call`](CircuitBreaker::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, mock, circuit_breaker::{CircuitBreaker, Config, NoWindow, State, Verdict}};
    /// let clock = MockClock::new();
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
    /// // 404s are the caller's fault: ignored, the breaker stays closed.
    /// let classify = |r: &Result<(), u16>| match r {
    ///     Err(404) => Verdict::Ignore,
    ///     Err(_) => Verdict::FAILURE,
    ///     Ok(()) => Verdict::Success,
    /// };
    /// let _ = mock::run(&clock, b.call_with(classify, || async { Err::<(), u16>(404) })).unwrap();
    /// assert_eq!(b.state(), State::Closed);
    /// ```
    pub fn call_with<K, F, Fut, T, Er>(&self, classify: K, op: F) -> Call<&Self, F, Fut, K>
    where
        K: Classify<T, Er>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Er>>,
    {
        Call::new(self, classify, op)
    }
}

/// The future of [`CircuitBreaker::call`] and [`CircuitBreaker::call_with`]: the one
/// [`admission::Call`](crate::admission::Call) every gate's async form is, generic over how it
/// reaches its breaker (`&CircuitBreaker` from those methods, or any owner — an `Arc`, a
/// `&'static` — through `Call::new`, for a future that must be `'static`).
///
/// ```
/// use bulwark::circuit_breaker::{Call, CircuitBreaker, Config, ErrorsAreFailures, State};
/// use bulwark::{MockClock, mock};
/// use std::sync::Arc;
/// let clock = MockClock::new();
/// let b = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap());
/// // The future owns a clone of the Arc: it borrows nothing from this scope's breaker.
/// let call = Call::new(Arc::clone(&b), ErrorsAreFailures, || async { Err::<(), _>(503) });
/// fn is_send<T: Send>(_: &T) {}
/// is_send(&call); // Send whenever its parts are
/// let _ = mock::run(&clock, call).unwrap();
/// assert_eq!(b.state(), State::Open);
/// ```
pub type Call<R, F, Fut, K> = crate::admission::Call<R, F, Fut, K>;

#[cfg(all(test, not(loom)))]
mod tests {
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use core::time::Duration;

    use crate::circuit_breaker::{CircuitBreaker, Config, Counters, State};
    use crate::{Instant, MockClock, mock};

    #[test]
    fn dropping_a_probe_call_mid_flight_gives_the_slot_back() {
        let clock = MockClock::new();
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1));
        let b = CircuitBreaker::new(cfg, &clock)
            .unwrap()
            .with_events(Counters::new());
        let _ = b.call_sync(|| Err::<(), _>(()));
        clock.advance(Duration::from_secs(1));
        let cx = &mut Context::from_waker(Waker::noop());
        {
            let mut probe = pin!(b.call(|| async {
                clock.sleep(Duration::from_secs(60)).await;
                Ok::<_, ()>(())
            }));
            assert_eq!(probe.as_mut().poll(cx), Poll::Pending);
            assert_eq!(b.state(), State::HalfOpen);
            assert!(
                b.try_acquire().is_err(),
                "the only probe slot is held by the pending call"
            );
        } // cancelled here
        assert_eq!(
            clock.next_deadline(),
            None,
            "the inner future (and its sleep) was dropped"
        );
        let again = mock::run(&clock, b.call(|| async { Ok::<_, ()>(5) })).unwrap();
        assert_eq!(again, Ok(5));
        assert_eq!(b.state(), State::Closed);
        let t = b.events().snapshot();
        assert_eq!(
            (t.calls(), t.successes),
            (2, 1),
            "the failure that opened it and the probe after; the cancelled call records nothing"
        );
    }

    #[test]
    fn rejected_call_never_starts_the_operation() {
        let clock = MockClock::new();
        let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
        b.force_open();
        let mut started = false;
        let out = mock::run(
            &clock,
            b.call(|| {
                started = true;
                async { Ok::<_, ()>(()) }
            }),
        )
        .unwrap();
        assert!(out.unwrap_err().is_rejected());
        assert!(!started);
    }

    #[test]
    fn slow_calls_are_measured_across_awaits() {
        let clock = MockClock::new();
        let cfg = Config::new()
            .slow_calls(Duration::from_secs(2), 100)
            .minimum_calls(1);
        let b = CircuitBreaker::with_window(cfg, crate::circuit_breaker::CountWindow::<4>, &clock)
            .unwrap();
        let out = mock::run(
            &clock,
            b.call(|| async {
                clock.sleep(Duration::from_secs(2)).await;
                Ok::<_, ()>(())
            }),
        )
        .unwrap();
        assert_eq!(out, Ok(()));
        assert_eq!(b.state(), State::Open, "one call, 100 % slow");
        assert_eq!(
            b.try_acquire().unwrap_err().retry_at,
            Some(Instant::from_secs(32))
        );
    }

    #[test]
    fn shared_form_survives_a_clock_stepping_back() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(100));
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10));
        let b = CircuitBreaker::new(cfg, &clock).unwrap();
        let _ = b.call_sync(|| Err::<(), _>(()));
        clock.set(Instant::from_secs(5)); // the clock jumps back 95 s
        assert_eq!(
            b.try_acquire().unwrap_err().retry_at,
            Some(Instant::from_secs(110))
        );
        clock.set(Instant::from_secs(110));
        assert!(b.try_acquire().unwrap().is_probe());
    }

    #[test]
    fn counters_count_every_path_but_disabled() {
        use crate::circuit_breaker::{CountWindow, Outcome, Totals};
        let clock = MockClock::new();
        let counters = Counters::new();
        let cfg = Config::new()
            .consecutive_failures(2)
            .slow_calls(Duration::from_secs(1), 100)
            .minimum_calls(10)
            .open_for(Duration::from_secs(5));
        let b = CircuitBreaker::with_window(cfg, CountWindow::<10>, &clock)
            .unwrap()
            .with_events(&counters);
        let slow = b.try_acquire().unwrap();
        clock.advance(Duration::from_secs(1));
        slow.success(); // slow, below minimum_calls: no trip
        b.try_acquire().unwrap().record(Outcome::Ignored);
        drop(b.try_acquire().unwrap()); // abandoned: not an outcome
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure(); // trips
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
        b.disable();
        b.try_acquire().unwrap().failure(); // disabled: not counted
        assert_eq!(
            counters.snapshot(),
            Totals {
                successes: 1,
                failures: 2,
                slow: 1,
                ignored: 1,
                rejected: 2
            }
        );

        // The windowless fast path of a success counts too.
        let plain = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
            .unwrap()
            .with_events(Counters::new());
        plain.try_acquire().unwrap().success();
        assert_eq!(plain.events().snapshot().successes, 1);
    }

    #[test]
    fn an_open_breaker_reads_the_coarse_clock_and_admits_at_its_retry_instant() {
        use crate::Clock;
        use core::cell::Cell;
        /// The precise time in nanoseconds; the coarse reading lags to the last 4 ms tick.
        /// Counts its precise readings.
        struct Ticked {
            nanos: Cell<u64>,
            precise_reads: Cell<u32>,
        }
        impl Clock for Ticked {
            fn now(&self) -> Instant {
                self.precise_reads.set(self.precise_reads.get() + 1);
                Instant::from_nanos(self.nanos.get())
            }
            fn now_coarse(&self) -> Instant {
                Instant::from_nanos(self.nanos.get() / 4_000_000 * 4_000_000)
            }
            fn coarse_lag(&self) -> Duration {
                Duration::from_millis(4)
            }
        }
        let clock = Ticked {
            nanos: Cell::new(1_000_000),
            precise_reads: Cell::new(0),
        };
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_millis(10));
        let b = CircuitBreaker::new(cfg, &clock).unwrap();
        b.try_acquire().unwrap().failure(); // open until 11 ms
        let reads = clock.precise_reads.get();
        let retry_at = |at_ms: u64| {
            clock.nanos.set(at_ms * 1_000_000);
            b.try_acquire().unwrap_err().retry_at
        };
        // Far from the end (coarse 4 ms + 4 ms of lag < 11 ms): the coarse reading decides.
        assert_eq!(retry_at(6), Some(Instant::from_millis(11)));
        assert_eq!(clock.precise_reads.get(), reads, "no precise read");
        // Within a tick of the end (coarse 8 ms): the precise reading decides.
        assert_eq!(retry_at(9), Some(Instant::from_millis(11)));
        assert_eq!(clock.precise_reads.get(), reads + 1);
        // At the retry instant the call passes, though the coarse reading still says 8 ms.
        clock.nanos.set(11_000_000);
        assert!(b.try_acquire().unwrap().is_probe());
    }

    #[test]
    fn shared_half_open_reopens_after_its_maximum_time_and_reports_it() {
        use crate::circuit_breaker::{Events, Transition};
        use core::cell::Cell;
        #[derive(Default)]
        struct Opened(Cell<u32>);
        impl Events for Opened {
            fn on_state_change(&self, t: Transition) {
                if t.to == State::Open {
                    self.0.set(self.0.get() + 1);
                }
            }
        }
        let clock = MockClock::new();
        let opened = Opened::default();
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .max_half_open(Duration::from_secs(5));
        let b = CircuitBreaker::new(cfg, &clock)
            .unwrap()
            .with_events(&opened);
        b.try_acquire().unwrap().failure();
        clock.set(Instant::from_secs(1));
        let hung = b.try_acquire().unwrap();
        assert!(hung.is_probe());
        clock.set(Instant::from_secs(6));
        assert_eq!(
            b.try_acquire().unwrap_err().retry_at,
            Some(Instant::from_secs(7))
        );
        assert_eq!((b.state(), opened.0.get()), (State::Open, 2));
        hung.success(); // late: dropped
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.snapshot().open_remaining, Duration::from_secs(1));
        clock.set(Instant::from_secs(7));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_pair_of_hooks_sees_every_event() {
        use crate::circuit_breaker::{Events, Outcome, Rejected, Transition};
        use core::cell::Cell;
        #[derive(Default)]
        struct Log {
            changes: Cell<u32>,
            rejections: Cell<u32>,
            outcomes: Cell<u32>,
        }
        impl Events for Log {
            fn on_state_change(&self, _: Transition) {
                self.changes.set(self.changes.get() + 1);
            }
            fn on_rejected(&self, _: Rejected, _: Instant) {
                self.rejections.set(self.rejections.get() + 1);
            }
            fn on_outcome(&self, _: Outcome, _: bool) {
                self.outcomes.set(self.outcomes.get() + 1);
            }
        }
        let clock = MockClock::new();
        let (counters, log) = (Counters::new(), Log::default());
        let b = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
            .unwrap()
            .with_events((&counters, &log));
        let _ = b.call_sync(|| Err::<(), _>(())); // fails, opens
        let _ = b.call_sync(|| Ok::<_, ()>(())); // rejected
        let t = counters.snapshot();
        assert_eq!((t.failures, t.rejected), (1, 1));
        assert_eq!(
            (log.changes.get(), log.rejections.get(), log.outcomes.get()),
            (1, 1, 1)
        );
    }
}
