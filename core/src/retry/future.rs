//! The async wrapper: [`Retry::call`] and its [`Call`] future.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::budget::RetryBudget;
use super::error::Error;
use super::state::{Decision, RetryState, Stop};
use super::{BackoffFn, Builtin, Classify, Finish, Hooks, Operation, Retry, Verdict};
use crate::sync::Ordering;
use crate::time::{Instant, Sleep};
use crate::timeout::Deadline;

impl<S: Sleep, K, H, B: RetryBudget, D: BackoffFn> Retry<S, K, H, B, D> {
    /// Runs `op` until it succeeds or the policy gives up; see the [module](super) docs for
    /// the rules. Each attempt calls `op` for a fresh future.
    ///
    /// # Errors
    ///
    /// [`Error`] with the last error and the attempts made. A retryable `Ok` result is
    /// returned as `Ok` when the retries run out.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the running attempt or the pending sleep: no further attempt
    /// starts and no hook fires.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, mock, retry::{Backoff, Config, Error, Jitter, Retry}};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let cfg = Config::new().backoff(Backoff::constant(Duration::from_secs(60))).jitter(Jitter::None);
    /// let retry = Retry::new(cfg, &clock).unwrap();
    /// let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
    /// assert_eq!(out, Err(Error::Exhausted { last: "down", attempts: 3 }));
    /// assert_eq!(clock.now(), Instant::from_secs(120)); // two minutes of backoff, instantly
    /// ```
    #[inline]
    pub fn call<F, Fut, T, E>(&self, op: F) -> Call<&Self, S, K, H, B, F, Fut, D>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        K: Classify<T, E>,
        H: Hooks<T, E>,
    {
        self.call_with_deadline(Deadline::NONE, op)
    }

    /// [`call`](Retry::call) under the caller's `deadline`: no retry starts at or after it,
    /// and no sleep is planned past it (the call returns early with the last outcome).
    ///
    /// A deadline that has already passed when the call starts means what a zero
    /// [`timeout`](crate::timeout#a-zero-timeout) means everywhere in bulwark: the first
    /// attempt is still made and polled once; if it is ready, its result counts as usual
    /// (a retryable failure is then not retried); if it is pending, it is dropped at once and
    /// the call fails with [`Error::DeadlineExceeded`] `{ last: None, attempts: 1 }`.
    ///
    /// # Errors
    ///
    /// As [`call`](Retry::call); [`Error::DeadlineExceeded`] when the deadline stopped it.
    ///
    /// # Cancellation
    ///
    /// As [`call`](Retry::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, mock, retry::{Backoff, Config, Error, Jitter, Retry}};
    /// use bulwark::timeout::Deadline;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let retry = Retry::new(
    ///     Config::new().max_attempts(10).backoff(Backoff::constant(Duration::from_secs(4))).jitter(Jitter::None),
    ///     &clock,
    /// ).unwrap();
    /// let deadline = Deadline::at(Instant::from_secs(10));
    /// let out = mock::run(&clock, retry.call_with_deadline(deadline, || async { Err::<(), _>(503) })).unwrap();
    /// // Attempts at 0, 4 and 8 s; one at 12 s would be too late, so it returns at 8 s.
    /// assert_eq!(out, Err(Error::DeadlineExceeded { last: Some(503), attempts: 3 }));
    /// assert_eq!(clock.now(), Instant::from_secs(8));
    /// ```
    #[inline]
    pub fn call_with_deadline<F, Fut, T, E>(
        &self,
        deadline: Deadline,
        op: F,
    ) -> Call<&Self, S, K, H, B, F, Fut, D>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        K: Classify<T, E>,
        H: Hooks<T, E>,
    {
        self.call_operation(deadline, op)
    }
}

impl<S: Sleep, K, H, B: RetryBudget, D: BackoffFn> Retry<S, K, H, B, D> {
    /// [`call_with_deadline`](Retry::call_with_deadline) for an operation given as an
    /// [`Operation`] value rather than a closure, so that the future type can be named (a
    /// tower service's `Future`, the [`pipeline`](crate::pipeline)).
    ///
    /// # Errors
    ///
    /// As [`call`](Retry::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, mock, retry::{Config, Operation, Retry}, timeout::Deadline};
    /// use core::future::{Ready, ready};
    ///
    /// struct Flaky(u32);
    /// impl Operation for Flaky {
    ///     type Future = Ready<Result<u32, ()>>;
    ///     fn attempt(&mut self) -> Self::Future {
    ///         self.0 += 1;
    ///         ready(if self.0 < 2 { Err(()) } else { Ok(self.0) })
    ///     }
    /// }
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// let out = mock::run(&clock, retry.call_operation(Deadline::NONE, Flaky(0))).unwrap();
    /// assert_eq!(out, Ok(2));
    /// ```
    #[inline]
    pub fn call_operation<O, T, E>(
        &self,
        deadline: Deadline,
        op: O,
    ) -> Call<&Self, S, K, H, B, O, O::Future, D>
    where
        O: Operation,
        O::Future: Future<Output = Result<T, E>>,
        K: Classify<T, E>,
        H: Hooks<T, E>,
    {
        Call::new(self, deadline, op)
    }
}

pin_project! {
    /// Where a [`Call`] is: one pinned slot holds the running attempt or the sleep (never both).
    #[project = PhaseProj]
    #[project_replace = PhaseReplace]
    enum Phase<Fut, Sl, O> {
        // `at`: the start instant, when the caller already read it.
        Start { at: Option<Instant> },
        // A first attempt started when the deadline had already passed (the deadline is
        // expired at `RetryState::started`) may complete if ready at its first poll, and is
        // dropped if pending (like a zero timeout). Kept out of this variant: a flag here made
        // the pipeline's future larger and its ready call 20 % slower (moved, not copied).
        Running { #[pin] fut: Fut },
        // `last` is the outcome that led to the sleep, returned if the deadline has passed
        // when the sleep ends (a clock that jumped).
        Sleeping { #[pin] sleep: Sl, last: O },
        Done,
    }
}

pin_project! {
    /// The future of [`Retry::call`] and [`Retry::call_with_deadline`]. `Send` whenever its
    /// parts are (the policy, the operation, its future and output, the sleep).
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the running attempt or the pending sleep: no further attempt starts.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::{MockClock, mock, retry::{Call, Config, Retry}};
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// let call = retry.call(|| async { Ok::<_, ()>(5) });
    /// fn is_send<T: Send>(_: &T) {}
    /// is_send(&call);
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(5));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<R, S: Sleep, K, H, B, F, Fut: Future, D = Builtin> {
        retry: R,
        _policy: PhantomData<fn() -> (K, H, B, D)>,
        op: F,
        deadline: Deadline,
        state: RetryState,
        #[pin]
        phase: Phase<Fut, S::Sleep, Fut::Output>,
    }
}

impl<R, S, K, H, B, O, D> Call<R, S, K, H, B, O, O::Future, D>
where
    R: Deref<Target = Retry<S, K, H, B, D>>,
    S: Sleep,
    O: Operation,
{
    /// A call of `op` under `deadline` through the policy `retry` points to: what
    /// [`Retry::call_operation`] returns, for any owner of the policy (an `Arc`, a
    /// `&'static`), so that the future can be `'static` without leaking the policy.
    ///
    /// ```
    /// use bulwark::retry::{Call, Config, Retry};
    /// use bulwark::{MockClock, mock, timeout::Deadline};
    /// use std::sync::Arc;
    /// let clock = MockClock::new();
    /// let policy = Arc::new(Retry::new(Config::new(), &clock).unwrap());
    /// let mut left = 2;
    /// let call = Call::new(Arc::clone(&policy), Deadline::NONE, move || {
    ///     left -= 1;
    ///     let fail = left > 0;
    ///     async move { if fail { Err("flaky") } else { Ok("done") } }
    /// });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok("done"));
    /// ```
    #[inline(always)]
    pub fn new(retry: R, deadline: Deadline, op: O) -> Self {
        Call::starting(retry, deadline, op, None)
    }

    /// [`new`](Call::new), then [`started_at`](Call::started_at) when `start` is `Some`: one
    /// constructor for a caller that may or may not have read the clock, so that the call is
    /// built once, in place (a `match` over `new` and `started_at` copied the whole future
    /// in the tower bench row "bulwark PipelineLayer").
    ///
    /// ```
    /// use bulwark::retry::{Call, Config, Retry};
    /// use bulwark::{Instant, MockClock, mock, timeout::Deadline};
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// let call = Call::starting(&retry, Deadline::NONE, || async { Ok::<_, ()>(1) }, Some(Instant::ZERO));
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
    /// ```
    #[inline(always)]
    pub fn starting(retry: R, deadline: Deadline, op: O, start: Option<Instant>) -> Self {
        Call {
            retry,
            _policy: PhantomData,
            op,
            deadline,
            state: RetryState::new(Instant::ZERO, 0),
            phase: Phase::Start { at: start },
        }
    }

    /// The same call, told that it starts at `now`, an instant its caller has just read from
    /// the policy's clock (the call then does not read it again on its first poll). The
    /// policy's `max_elapsed` counts from `now`.
    ///
    /// ```
    /// use bulwark::retry::{Call, Config, Error, Jitter, Backoff, Retry};
    /// use bulwark::{Clock, Instant, MockClock, mock, timeout::Deadline};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let cfg = Config::new().max_attempts(10).max_elapsed(Duration::from_secs(5))
    ///     .backoff(Backoff::constant(Duration::from_secs(2))).jitter(Jitter::None);
    /// let retry = Retry::new(cfg, &clock).unwrap();
    /// let call = Call::new(&retry, Deadline::NONE, || async { Err::<(), _>("down") })
    ///     .started_at(Instant::ZERO);
    /// clock.set(Instant::from_secs(1)); // polled a second later: the elapsed time counts from 0
    /// let out = mock::run(&clock, call).unwrap();
    /// assert!(matches!(out, Err(Error::Exhausted { attempts: 3, .. })));
    /// assert_eq!(clock.now(), Instant::from_secs(5));
    /// ```
    #[inline(always)]
    pub fn started_at(mut self, now: Instant) -> Self {
        // The phase is still `Start` (the call has not been polled: it is taken by value):
        // set its field rather than replace (and drop) the phase.
        if let Phase::Start { at } = &mut self.phase {
            *at = Some(now);
        } else {
            self.phase = Phase::Start { at: Some(now) };
        }
        self
    }
}

impl<R, S: Sleep, K, H, B, F, Fut: Future, D> Call<R, S, K, H, B, F, Fut, D> {
    /// The owner of the policy the call runs under, to be replaced between polls (the
    /// [`pipeline`](crate::pipeline) points its stages at the pipeline it owns once its call
    /// is pinned). The next retry decision reads the policy through it.
    ///
    /// ```
    /// use bulwark::retry::{Call, Config, Retry};
    /// use bulwark::{MockClock, mock, timeout::Deadline};
    /// use core::pin::pin;
    /// let clock = MockClock::new();
    /// let one = Retry::new(Config::new().max_attempts(1), &clock).unwrap();
    /// let five = Retry::new(Config::new().max_attempts(5), &clock).unwrap();
    /// let mut call = pin!(Call::new(&one, Deadline::NONE, || async { Err::<(), _>("down") }));
    /// *call.as_mut().policy_mut() = &five; // before the first poll: five attempts
    /// assert_eq!(mock::run(&clock, call).unwrap().unwrap_err().attempts(), 5);
    /// ```
    #[inline]
    pub fn policy_mut(self: Pin<&mut Self>) -> &mut R {
        self.project().retry
    }

    /// The operation that makes each attempt, to be changed between attempts (what the next
    /// attempt sends, say).
    ///
    /// ```
    /// use bulwark::retry::{Call, Config, Operation, Retry};
    /// use bulwark::{MockClock, mock, timeout::Deadline};
    /// use core::future::{Ready, ready};
    /// use core::pin::pin;
    /// struct Send(u32);
    /// impl Operation for Send {
    ///     type Future = Ready<Result<u32, ()>>;
    ///     fn attempt(&mut self) -> Self::Future { ready(Ok(self.0)) }
    /// }
    /// let clock = MockClock::new();
    /// let retry = Retry::new(Config::new(), &clock).unwrap();
    /// let mut call = pin!(Call::new(&retry, Deadline::NONE, Send(1)));
    /// call.as_mut().operation_mut().0 = 2;
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(2));
    /// ```
    #[inline]
    pub fn operation_mut(self: Pin<&mut Self>) -> &mut F {
        self.project().op
    }
}

/// The output for a call that stops on a retryable outcome.
fn give_up<T, E>(out: Result<T, E>, attempts: u32, why: Why) -> Result<T, Error<E>> {
    out.map_err(|last| match why {
        Why::Exhausted => Error::Exhausted { last, attempts },
        Why::Budget => Error::BudgetExhausted { last, attempts },
        Why::Deadline => Error::DeadlineExceeded {
            last: Some(last),
            attempts,
        },
    })
}

#[derive(Copy, Clone)]
enum Why {
    Exhausted,
    Budget,
    Deadline,
}

impl<R, S, K, H, B, F, Fut, T, E, D> Future for Call<R, S, K, H, B, F, Fut, D>
where
    R: Deref<Target = Retry<S, K, H, B, D>>,
    D: BackoffFn,
    S: Sleep,
    K: Classify<T, E>,
    H: Hooks<T, E>,
    B: RetryBudget,
    F: Operation<Future = Fut>,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let retry: &Retry<S, K, H, B, D> = this.retry;
        let cfg = &retry.cfg;
        loop {
            let polled = match this.phase.as_mut().project() {
                PhaseProj::Start { at } => {
                    // The clock is read only when a limit needs it.
                    let now = match *at {
                        Some(t) => t,
                        None if this.deadline.instant().is_some() || cfg.max_elapsed.is_some() => {
                            retry.sleeper.now()
                        }
                        None => Instant::ZERO,
                    };
                    // A deadline already past still lets a first attempt that is ready at once
                    // complete (the library's one meaning of a zero timeout, tokio's).
                    *this.state = RetryState::new(now, 0); // seeded on the first failure
                    this.state.start_attempt();
                    retry.hooks.on_attempt(1);
                    // Replaced, not `set`: the phase is `Start`, whose fields need no drop, and
                    // `set` called the whole phase's drop glue out of line to find that out (the
                    // tower bench row "bulwark PipelineLayer").
                    let _start = this.phase.as_mut().project_replace(Phase::Running {
                        fut: this.op.attempt(),
                    });
                    // Polled here rather than through the loop's match: the variant just
                    // set is known, so no second dispatch on the phase (the core pipeline
                    // bench row "bulwark retry only", and the tower retry layer's row).
                    match this.phase.as_mut().project() {
                        PhaseProj::Running { fut } => fut.poll(cx),
                        _ => continue,
                    }
                }
                PhaseProj::Running { fut } => fut.poll(cx),
                PhaseProj::Sleeping { sleep, .. } => {
                    core::task::ready!(sleep.poll(cx));
                    let expired = this.deadline.is_expired(retry.sleeper.now());
                    if let PhaseReplace::Sleeping { last, .. } =
                        this.phase.as_mut().project_replace(Phase::Done)
                        && expired
                    {
                        // The clock jumped past the deadline while we slept: do not start late.
                        let attempts = this.state.attempts();
                        retry.hooks.on_finish(attempts, Finish::DeadlineExceeded);
                        return Poll::Ready(give_up(last, attempts, Why::Deadline));
                    }
                    this.state.start_attempt();
                    retry.hooks.on_attempt(this.state.attempts());
                    this.phase.set(Phase::Running {
                        fut: this.op.attempt(),
                    });
                    continue;
                }
                PhaseProj::Done => return Poll::Pending, // polled after completion
            };
            let out = match polled {
                Poll::Ready(out) => out,
                Poll::Pending
                    if this.state.attempts() == 1
                        && this.deadline.is_expired(this.state.started()) =>
                {
                    // Past the deadline and not ready: dropped now (the cancellation).
                    this.phase.set(Phase::Done);
                    retry.hooks.on_finish(1, Finish::DeadlineExceeded);
                    return Poll::Ready(Err(Error::DeadlineExceeded {
                        last: None,
                        attempts: this.state.attempts(),
                    }));
                }
                Poll::Pending => return Poll::Pending,
            };
            // Replaced, not `set`: the phase is `Running`, and `set` called the whole phase's
            // drop glue out of line to find that out.
            let _ran = this.phase.as_mut().project_replace(Phase::Done);
            let hint = match retry.classify.classify(&out) {
                Verdict::Failure { retry_after } => retry_after,
                verdict @ (Verdict::Success | Verdict::Ignore) => {
                    let attempts = this.state.attempts();
                    return Poll::Ready(match out {
                        Ok(v) => {
                            if verdict == Verdict::Success {
                                if retry.budget.timed() {
                                    retry.budget.deposit_at(retry.sleeper.now());
                                } else {
                                    retry.budget.deposit(); // reads no clock
                                }
                            }
                            retry.hooks.on_finish(attempts, Finish::Success);
                            Ok(v)
                        }
                        Err(error) => {
                            retry.hooks.on_finish(attempts, Finish::Permanent);
                            Err(Error::Permanent { error, attempts })
                        }
                    });
                }
            };
            let attempt = this.state.attempts();
            if attempt == 1 {
                // The first failure of this call: give it its own jitter stream. With an
                // explicit seed, the k-th failing call draws stream k of it (stream 0 is the
                // seed itself, as `RetryState::new(_, seed)`); without one, a fresh seed.
                // Relaxed: a fetch-add hands out distinct values whatever its ordering; it
                // publishes nothing.
                let k = if cfg.seed_set {
                    retry.calls.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                };
                this.state.reseed(cfg.call_seed(k));
            }
            let now = retry.sleeper.now();
            let (delay, at) = match this.state.decide(cfg, now, hint, *this.deadline) {
                Decision::Retry { delay, at } => (delay, at),
                Decision::Stop(Stop::Deadline) => {
                    retry.hooks.on_finish(attempt, Finish::DeadlineExceeded);
                    return Poll::Ready(give_up(out, attempt, Why::Deadline));
                }
                Decision::Stop(Stop::MaxAttempts | Stop::MaxElapsed) => {
                    retry.hooks.on_finish(attempt, Finish::Exhausted);
                    let out = retry.classify.exhausted(out);
                    return Poll::Ready(give_up(out, attempt, Why::Exhausted));
                }
            };
            if !retry.budget.try_withdraw(now) {
                retry.hooks.on_budget_denied(attempt, &out);
                retry.hooks.on_finish(attempt, Finish::BudgetExhausted);
                return Poll::Ready(give_up(out, attempt, Why::Budget));
            }
            retry.hooks.on_retry(attempt, delay, &out);
            this.phase.set(Phase::Sleeping {
                sleep: retry.sleeper.sleep_until(at),
                last: out,
            });
        }
    }
}

impl<R, S: Sleep, K, H, B, F, Fut: Future, D> fmt::Debug for Call<R, S, K, H, B, F, Fut, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Start { .. } => "start",
            Phase::Running { .. } => "running",
            Phase::Sleeping { .. } => "sleeping",
            Phase::Done => "done",
        };
        f.debug_struct("Call")
            .field("deadline", &self.deadline)
            .field("state", &self.state)
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}
