//! Retry scenarios on the mock clock: minutes of backoff run instantly and the schedule of
//! attempts is asserted to the nanosecond.

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use bulwark::retry::{
    Backoff, Budget, Config, Counters, Error, Finish, Hooks, Jitter, Retry, Totals, Verdict,
};
use bulwark::timeout::{Deadline, timeout_at};
use bulwark::{Clock, Instant, MockClock, mock};

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// An operation that logs the instant of each attempt and answers from a script
/// (the last answer repeats).
struct Script<'a, T: Copy, E: Copy> {
    clock: &'a MockClock,
    log: RefCell<Vec<Instant>>,
    answers: &'a [Result<T, E>],
}

impl<'a, T: Copy, E: Copy> Script<'a, T, E> {
    fn new(clock: &'a MockClock, answers: &'a [Result<T, E>]) -> Self {
        Script {
            clock,
            log: RefCell::new(Vec::new()),
            answers,
        }
    }
    fn op(&self) -> impl FnMut() -> core::future::Ready<Result<T, E>> + '_ {
        move || {
            let mut log = self.log.borrow_mut();
            log.push(self.clock.now());
            let i = (log.len() - 1).min(self.answers.len() - 1);
            core::future::ready(self.answers[i])
        }
    }
    fn attempts(&self) -> Vec<Instant> {
        self.log.borrow().clone()
    }
}

#[test]
fn minutes_of_exponential_backoff_run_instantly_with_an_exact_schedule() {
    let clock = MockClock::new();
    let counters = Counters::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(8)
            .backoff(Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(60))),
        &clock,
    )
    .unwrap()
    .with_hooks(&counters);
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let wall = std::time::Instant::now();
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert!(wall.elapsed() < Duration::from_secs(1));
    assert_eq!(
        out,
        Err(Error::Exhausted {
            last: "503",
            attempts: 8
        })
    );
    // Delays 1, 2, 4, 8, 16, 32, 60 (capped) s.
    assert_eq!(
        script.attempts(),
        [0, 1, 3, 7, 15, 31, 63, 123].map(secs).to_vec()
    );
    assert_eq!(clock.now(), secs(123));
    assert_eq!(
        counters.snapshot(),
        Totals {
            attempts: 8,
            retries: 7,
            budget_denials: 0
        }
    );
}

#[test]
fn jittered_schedule_is_the_same_for_the_same_seed() {
    let run = |seed| {
        let clock = MockClock::new();
        let retry = Retry::new(
            Config::new()
                .max_attempts(6)
                .backoff(Backoff::exponential(Duration::from_secs(1)))
                .jitter(Jitter::Full)
                .seed(seed),
            &clock,
        )
        .unwrap();
        let mut schedules = Vec::new();
        for _ in 0..2 {
            let script = Script::new(&clock, &[Err::<(), ()>(())]);
            let _ = mock::run(&clock, retry.call(script.op())).unwrap();
            let a = script.attempts();
            schedules.push(a.iter().map(|t| *t - a[0]).collect::<Vec<_>>());
        }
        schedules
    };
    let a = run(7);
    assert_eq!(a, run(7), "same seed, same delays, every run");
    assert_ne!(a[0], a[1], "two calls of one policy jitter differently");
    assert_ne!(a, run(8));
}

#[test]
fn the_deadline_cuts_a_retry_short() {
    let clock = MockClock::new();
    clock.set(secs(100));
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(10)
            .backoff(Backoff::exponential(Duration::from_secs(1))),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>(503u16)]);
    let deadline = Deadline::after(clock.now(), Duration::from_secs(10));
    let out = mock::run(&clock, retry.call_with_deadline(deadline, script.op())).unwrap();
    // Attempts at +0, +1, +3, +7; the next would be at +15 > +10: return at +7 with the
    // last error, without sleeping towards the deadline.
    assert_eq!(script.attempts(), [100, 101, 103, 107].map(secs).to_vec());
    assert_eq!(
        out,
        Err(Error::DeadlineExceeded {
            last: Some(503),
            attempts: 4
        })
    );
    assert_eq!(clock.now(), secs(107));
    assert_eq!(clock.next_deadline(), None);
}

#[test]
fn an_expired_deadline_still_lets_a_ready_first_attempt_complete() {
    // A deadline already passed is a zero timeout (one meaning in the whole library, see
    // `bulwark::timeout`): the first attempt is made; ready at once, its result counts.
    let clock = MockClock::new();
    clock.set(secs(5));
    let retry = Retry::new(Config::new().jitter(Jitter::None), &clock).unwrap();
    let script = Script::new(&clock, &[Ok::<u8, ()>(1)]);
    let out = mock::run(
        &clock,
        retry.call_with_deadline(Deadline::at(secs(5)), script.op()),
    )
    .unwrap();
    assert_eq!(out, Ok(1));
    assert_eq!(script.attempts(), [secs(5)]);
}

#[test]
fn a_clock_jump_during_the_sleep_past_the_deadline_returns_the_last_outcome() {
    let clock = MockClock::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .backoff(Backoff::constant(Duration::from_secs(1))),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>("e")]);
    let mut call = pin!(retry.call_with_deadline(Deadline::at(secs(5)), script.op()));
    let cx = &mut Context::from_waker(Waker::noop());
    assert!(call.as_mut().poll(cx).is_pending()); // sleeping until 1 s
    clock.set(secs(9)); // the clock jumps past the deadline
    assert_eq!(
        call.as_mut().poll(cx),
        Poll::Ready(Err(Error::DeadlineExceeded {
            last: Some("e"),
            attempts: 1
        }))
    );
    assert_eq!(script.attempts().len(), 1);
}

#[test]
fn retry_after_hint_is_honoured_and_capped() {
    #[derive(Copy, Clone, Debug, PartialEq)]
    enum E {
        Busy { retry_after_secs: u64 },
    }
    let clock = MockClock::new();
    let retry = Retry::new(
        Config::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_secs(1)))
            .jitter(Jitter::Full)
            .max_retry_after(Duration::from_secs(30)),
        &clock,
    )
    .unwrap()
    .with_classifier(|r: &Result<(), E>| match r {
        Err(E::Busy { retry_after_secs }) => {
            Verdict::failure_after(Duration::from_secs(*retry_after_secs))
        }
        Ok(()) => Verdict::Ignore,
    });
    let script = Script::new(
        &clock,
        &[
            Err(E::Busy {
                retry_after_secs: 7,
            }),
            Err(E::Busy {
                retry_after_secs: 3_600,
            }),
            Ok(()),
        ],
    );
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(out, Ok(()));
    // 7 s as asked (no jitter on a hint), then an hour cut to the 30 s cap.
    assert_eq!(script.attempts(), [0, 7, 37].map(secs).to_vec());
}

#[test]
fn permanent_errors_are_not_retried() {
    let clock = MockClock::new();
    let retry = Retry::new(Config::new().jitter(Jitter::None).max_attempts(5), &clock)
        .unwrap()
        .with_classifier(|r: &Result<(), u16>| match r {
            Err(400..=499) => Verdict::Ignore,
            Err(_) => Verdict::FAILURE,
            Ok(()) => Verdict::Ignore,
        });
    let script = Script::new(&clock, &[Err(503), Err(404), Err(503)]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(
        out,
        Err(Error::Permanent {
            error: 404,
            attempts: 2
        })
    );
    assert_eq!(script.attempts().len(), 2);
    assert_eq!(clock.now(), Instant::from_millis(100)); // one default backoff, then stop
}

#[test]
fn a_retryable_result_is_returned_when_retries_run_out() {
    #[derive(Copy, Clone, Debug, PartialEq)]
    enum Resp {
        TryLater,
    }
    let clock = MockClock::new();
    let retry = Retry::new(Config::new().jitter(Jitter::None).max_attempts(3), &clock)
        .unwrap()
        .with_classifier(|r: &Result<Resp, ()>| match r {
            Ok(Resp::TryLater) => Verdict::FAILURE,
            Err(()) => Verdict::FAILURE,
        });
    let script = Script::new(&clock, &[Ok(Resp::TryLater)]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(out, Ok(Resp::TryLater));
    assert_eq!(script.attempts().len(), 3);
}

#[test]
fn max_elapsed_stops_without_sleeping_past_it() {
    let clock = MockClock::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(100)
            .max_elapsed(Duration::from_secs(60))
            .backoff(Backoff::linear(
                Duration::from_secs(10),
                Duration::from_secs(10),
            )),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>(())]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    // 0, +10 → 10, +20 → 30, +30 → 60 (exactly at the limit), +40 → 100 > 60: stop.
    assert_eq!(script.attempts(), [0, 10, 30, 60].map(secs).to_vec());
    assert_eq!(
        out,
        Err(Error::Exhausted {
            last: (),
            attempts: 4
        })
    );
    assert_eq!(clock.now(), secs(60));
}

#[test]
fn dropping_the_call_mid_sleep_cancels_further_attempts() {
    let clock = MockClock::new();
    let counters = Counters::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(5)
            .backoff(Backoff::constant(Duration::from_secs(10))),
        &clock,
    )
    .unwrap()
    .with_hooks(&counters);
    let script = Script::new(&clock, &[Err::<(), _>(())]);
    {
        let mut call = pin!(retry.call(script.op()));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(call.as_mut().poll(cx).is_pending());
        assert_eq!(clock.next_deadline(), Some(secs(10)));
        // `call` is dropped here, mid-sleep.
    }
    assert_eq!(clock.next_deadline(), None, "the sleep was released");
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(script.attempts().len(), 1, "no attempt after the drop");
    assert_eq!(counters.snapshot().retries, 0);
}

type Seen = (u32, Duration, Result<(), &'static str>);

#[derive(Default)]
struct Recorder {
    retries: RefCell<Vec<Seen>>,
    denied: Cell<u32>,
}

impl Hooks<(), &'static str> for Recorder {
    fn on_retry(&self, attempt: u32, delay: Duration, outcome: &Result<(), &'static str>) {
        self.retries.borrow_mut().push((attempt, delay, *outcome));
    }
    fn on_budget_denied(&self, attempt: u32, _outcome: &Result<(), &'static str>) {
        self.denied.set(attempt);
    }
}

#[test]
fn hooks_see_every_retry_and_the_budget_denies_when_empty() {
    let clock = MockClock::new();
    let hooks = Recorder::default();
    let counters = Counters::new();
    let budget = Budget::new(50, 1, 10).unwrap();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(10)
            .backoff(Backoff::constant(Duration::from_millis(300))),
        &clock,
    )
    .unwrap()
    .with_hooks((&hooks, &counters))
    .with_budget(&budget);
    // Two successes earn one token.
    for _ in 0..2 {
        let out = mock::run(&clock, retry.call(|| async { Ok::<(), &str>(()) })).unwrap();
        assert_eq!(out, Ok(()));
    }
    assert_eq!(budget.tokens(), 1);
    let script = Script::new(&clock, &[Err::<(), _>("down")]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    // Retry 1 from the floor of second 0, retry 2 from the earned token (0.3 s), retry 3
    // (0.6 s, still second 0) denied.
    assert_eq!(
        out,
        Err(Error::BudgetExhausted {
            last: "down",
            attempts: 3
        })
    );
    assert_eq!(
        *hooks.retries.borrow(),
        [
            (1, Duration::from_millis(300), Err("down")),
            (2, Duration::from_millis(300), Err("down"))
        ]
    );
    assert_eq!(hooks.denied.get(), 3);
    let m = counters.snapshot();
    assert_eq!((m.attempts, m.retries, m.budget_denials), (5, 2, 1));
    assert_eq!(budget.denied(), 1);
}

#[test]
fn retry_composes_with_a_per_attempt_timeout_under_one_deadline() {
    // Each attempt hangs; a per-attempt timeout of 2 s turns that into an error that is
    // retried, and the whole call stays inside the caller's 10 s deadline.
    let clock = MockClock::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(10)
            .backoff(Backoff::constant(Duration::from_secs(1))),
        &clock,
    )
    .unwrap();
    let deadline = Deadline::after(clock.now(), Duration::from_secs(10));
    let starts = RefCell::new(Vec::new());
    let out = mock::run(
        &clock,
        retry.call_with_deadline(deadline, || {
            starts.borrow_mut().push(clock.now());
            let per_attempt = deadline.min(Deadline::after(clock.now(), Duration::from_secs(2)));
            timeout_at(&clock, per_attempt, clock.sleep(Duration::from_secs(3600)))
        }),
    )
    .unwrap();
    // Attempts time out 2 s after they start; the one at 9 s is cut at the caller's 10 s.
    assert_eq!(*starts.borrow(), [0, 3, 6, 9].map(secs).to_vec());
    assert!(matches!(
        out,
        Err(Error::DeadlineExceeded {
            last: Some(_),
            attempts: 4
        })
    ));
    assert_eq!(clock.now(), secs(10));
}

#[test]
fn zero_backoff_retries_at_once_and_extreme_configs_do_not_panic() {
    let clock = MockClock::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(4)
            .backoff(Backoff::constant(Duration::ZERO)),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>(())]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(out.unwrap_err().attempts(), 4);
    assert_eq!(script.attempts(), vec![Instant::ZERO; 4]);

    // Delays near the end of time, with the clock near the end of time: saturate, no panic.
    clock.set(Instant::MAX - Duration::from_secs(1));
    let retry = Retry::new(
        Config::new()
            .max_attempts(3)
            .max_elapsed(Duration::MAX)
            .backoff(Backoff::exponential(Duration::MAX).multiplier(u32::MAX))
            .jitter(Jitter::Decorrelated)
            .max_retry_after(Duration::MAX),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>(())]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(out.unwrap_err().attempts(), 3);
    assert_eq!(clock.now(), Instant::MAX);
}

/// Every `on_finish` a retry reports, in order.
#[derive(Default)]
struct Finishes(RefCell<Vec<(u32, Finish)>>);

impl<T, E> Hooks<T, E> for Finishes {
    fn on_finish(&self, attempts: u32, finish: Finish) {
        self.0.borrow_mut().push((attempts, finish));
    }
}

#[test]
fn on_finish_reports_how_each_call_ended_once() {
    let clock = MockClock::new();
    let seen = Finishes::default();
    let cfg = Config::new()
        .jitter(Jitter::None)
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_secs(1)));
    let retry = Retry::new(cfg, &clock)
        .unwrap()
        .with_hooks(&seen)
        .with_classifier(|r: &Result<u32, &str>| match r {
            Err("404") => Verdict::Ignore,
            Ok(0) | Err(_) => Verdict::FAILURE, // `Ok(0)`: "try later"
            Ok(_) => Verdict::Success,
        });
    let run = |answers: &[Result<u32, &'static str>]| {
        let script = Script::new(&clock, answers);
        mock::run(&clock, retry.call(script.op())).unwrap()
    };
    assert_eq!(run(&[Ok(1)]), Ok(1));
    assert_eq!(run(&[Err("503"), Ok(2)]), Ok(2));
    assert!(matches!(run(&[Err("404")]), Err(Error::Permanent { .. })));
    assert!(matches!(run(&[Err("503")]), Err(Error::Exhausted { .. })));
    assert_eq!(run(&[Ok(0)]), Ok(0)); // a retryable result handed back: not a success
    assert_eq!(
        *seen.0.borrow(),
        [
            (1, Finish::Success),
            (2, Finish::Success),
            (1, Finish::Permanent),
            (3, Finish::Exhausted),
            (3, Finish::Exhausted),
        ]
    );

    // The budget, the caller's deadline (twice: a decision, and a first attempt pending when
    // the deadline had already passed), and a call dropped before it ends (nothing).
    seen.0.borrow_mut().clear();
    let budget = Budget::new(0, 0, 10).unwrap();
    let budgeted = Retry::new(cfg, &clock)
        .unwrap()
        .with_hooks(&seen)
        .with_budget(&budget);
    let out = mock::run(&clock, budgeted.call(|| async { Err::<(), _>("down") })).unwrap();
    assert!(matches!(
        out,
        Err(Error::BudgetExhausted { attempts: 1, .. })
    ));
    let plain = Retry::new(cfg, &clock).unwrap().with_hooks(&seen);
    let soon = Deadline::after(clock.now(), Duration::from_millis(500));
    let out = mock::run(
        &clock,
        plain.call_with_deadline(soon, || async { Err::<(), _>("down") }),
    )
    .unwrap();
    assert!(matches!(
        out,
        Err(Error::DeadlineExceeded { attempts: 1, .. })
    ));
    let past = Deadline::at(Instant::ZERO);
    clock.advance(Duration::from_secs(1));
    let out = mock::run(
        &clock,
        plain.call_with_deadline(past, core::future::pending::<Result<(), &str>>),
    )
    .unwrap();
    assert_eq!(
        out,
        Err(Error::DeadlineExceeded {
            last: None,
            attempts: 1
        })
    );
    {
        let mut dropped = pin!(plain.call(core::future::pending::<Result<(), &str>>));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        *seen.0.borrow(),
        [
            (1, Finish::BudgetExhausted),
            (1, Finish::DeadlineExceeded),
            (1, Finish::DeadlineExceeded),
        ]
    );
}

/// resilience4j `IntervalFunction.ofExponentialBackoff(500 ms, 1.5)` (its default
/// multiplier) under Polly's `MaxDelay` of 1 s: waits of 500 ms, 750 ms, then 1 s each (the cap
/// below later delays simply caps), through the async form on the mock clock.
#[test]
fn fractional_growth_capped_on_the_mock_clock() {
    let clock = MockClock::new();
    let ms = Duration::from_millis;
    let retry = Retry::new(
        Config::new().jitter(Jitter::None).max_attempts(5).backoff(
            Backoff::exponential(ms(500))
                .multiplier_ratio(3, 2)
                .max(ms(1_000)),
        ),
        &clock,
    )
    .unwrap();
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(out.unwrap_err().attempts(), 5);
    assert_eq!(
        script.attempts(),
        [0, 500, 1_250, 2_250, 3_250]
            .map(Instant::from_millis)
            .to_vec()
    );
    // Polly's MaxDelay below the base delay: accepted, every wait is the cap.
    let below = Config::new()
        .backoff(Backoff::constant(Duration::from_secs(5)).max(Duration::from_secs(1)));
    assert!(Retry::new(below, &clock).is_ok());
}

/// Polly's `DelayGenerator` captures state; here a unit an operator may change at run time,
/// shared through an `Arc` the closure captures. The policy owns the closure (no `'static`,
/// nothing leaked): dropping the policy drops the closure and its `Arc`.
#[test]
fn a_custom_backoff_owns_its_capturing_closure() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let clock = MockClock::new();
    let unit_ms = Arc::new(AtomicU64::new(300));
    let unit = Arc::clone(&unit_ms);
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(4)
            .backoff(Backoff::custom(move |n: u32| {
                Duration::from_millis(unit.load(Ordering::Relaxed)) * n
            })),
        &clock,
    )
    .unwrap();
    assert_eq!(Arc::strong_count(&unit_ms), 2);
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let _ = mock::run(&clock, retry.call(script.op())).unwrap();
    // Waits 300, 600, 900 ms.
    assert_eq!(
        script.attempts(),
        [0, 300, 900, 1_800].map(Instant::from_millis).to_vec()
    );
    // The next call reads the new unit: waits 100, 200, 300 ms from 1.8 s.
    unit_ms.store(100, Ordering::Relaxed);
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let _ = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(
        script.attempts(),
        [1_800, 1_900, 2_100, 2_400]
            .map(Instant::from_millis)
            .to_vec()
    );
    drop(retry);
    assert_eq!(Arc::strong_count(&unit_ms), 1);
}

/// The same closure in a pipeline held by an `Arc`, called through a `'static` future (what a
/// tower service does): the backoff's delays and the operation's attempts at literal instants.
#[test]
fn a_pipeline_owns_a_custom_backoff() {
    use bulwark::pipeline::{Call, Error, Pipeline};
    use std::sync::Arc;
    let clock = MockClock::new();
    let table = [250u64, 1_000, 4_000];
    let p = Arc::new(
        Pipeline::new(
            &clock,
            Config::new()
                .jitter(Jitter::None)
                .max_attempts(4)
                .backoff(Backoff::custom(move |n: u32| {
                    Duration::from_millis(table[(n as usize - 1).min(2)])
                })),
        )
        .unwrap(),
    );
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let out = mock::run(&clock, Call::new(Arc::clone(&p), script.op())).unwrap();
    assert_eq!(out, Err(Error::Operation("503")));
    assert_eq!(
        script.attempts(),
        [0, 250, 1_250, 5_250].map(Instant::from_millis).to_vec()
    );
}

/// resilience4j `Retry.Metrics`: "number of successful calls without a retry attempt",
/// "... with a retry attempt", "failed calls without a retry attempt", "... after all retry
/// attempts". Four calls on the mock clock, one of each kind, ending at literal instants.
#[test]
fn calls_are_counted_by_kind_as_resilience4j() {
    use bulwark::retry::Calls;
    let clock = MockClock::new();
    let counters = Counters::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_secs(1))),
        &clock,
    )
    .unwrap()
    .with_classifier(|r: &Result<(), &str>| match r {
        Err("404") => Verdict::Ignore,
        Err(_) => Verdict::FAILURE,
        Ok(()) => Verdict::Success,
    })
    .with_hooks(&counters);
    let run = |answers: &[Result<(), &'static str>]| {
        let script = Script::new(&clock, answers);
        mock::run(&clock, retry.call(script.op())).unwrap()
    };
    assert_eq!(run(&[Ok(())]), Ok(()));
    assert_eq!(clock.now(), secs(0));
    assert_eq!(run(&[Err("503"), Ok(())]), Ok(()));
    assert_eq!(clock.now(), secs(1));
    assert!(run(&[Err("404")]).unwrap_err().is_permanent());
    assert_eq!(clock.now(), secs(1));
    assert_eq!(run(&[Err("503")]).unwrap_err().attempts(), 3);
    assert_eq!(clock.now(), secs(3));
    assert_eq!(
        counters.calls(),
        Calls {
            succeeded_without_retry: 1,
            succeeded_after_retries: 1,
            failed_without_retry: 1,
            failed_after_retries: 1,
        }
    );
}

/// resilience4j `RetryConfig.failAfterMaxAttempts(true)`: "when retries are exhausted on a
/// result predicate, a `MaxRetriesExceeded` is thrown" instead of returning the last result.
/// Here the retryable result 503 after 3 attempts at 0, 1 and 2 s becomes an error.
#[test]
fn fail_after_max_attempts_turns_the_last_result_into_an_error() {
    let clock = MockClock::new();
    let counters = Counters::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_secs(1))),
        &clock,
    )
    .unwrap()
    .with_classifier(|r: &Result<u16, &str>| match r {
        Ok(503) => Verdict::FAILURE,
        _ => Verdict::Success,
    })
    .with_hooks(&counters)
    .fail_after_max_attempts(|_status: u16| "max retries exceeded");
    let script = Script::new(&clock, &[Ok::<u16, &str>(503)]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert_eq!(
        out,
        Err(Error::Exhausted {
            last: "max retries exceeded",
            attempts: 3
        })
    );
    assert_eq!(script.attempts(), [0, 1, 2].map(secs).to_vec());
    assert_eq!(counters.calls().failed_after_retries, 1);
    // A success on the way is untouched.
    let script = Script::new(&clock, &[Ok::<u16, &str>(503), Ok(200)]);
    assert_eq!(mock::run(&clock, retry.call(script.op())).unwrap(), Ok(200));
}

/// Finagle's `RetryBudget` (ttl 10 s): successes deposit with the instant they succeed at
/// (the call reads the clock only because the budget is timed), and a failure 12 s later finds
/// them expired. Two successes at 0 s fund one retry at 5 s; none is left at 12 s.
#[test]
fn an_expiring_budget_on_the_mock_clock() {
    use bulwark::retry::ExpiringBudget;
    let clock = MockClock::new();
    let budget = ExpiringBudget::new(Duration::from_secs(10), 50, 0).unwrap();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(2)
            .backoff(Backoff::constant(Duration::from_secs(1))),
        &clock,
    )
    .unwrap()
    .with_budget(&budget);
    for _ in 0..2 {
        let script = Script::new(&clock, &[Ok::<(), &str>(())]);
        assert_eq!(mock::run(&clock, retry.call(script.op())).unwrap(), Ok(()));
    }
    clock.set(secs(5));
    let script = Script::new(&clock, &[Err("503"), Ok(())]);
    assert_eq!(mock::run(&clock, retry.call(script.op())).unwrap(), Ok(()));
    assert_eq!(script.attempts(), [secs(5), secs(6)].to_vec());
    // The retry's success at 6 s earned half a token; the 0 s ones are gone by 12 s.
    clock.set(secs(12));
    let script = Script::new(&clock, &[Err::<(), _>("503")]);
    let out = mock::run(&clock, retry.call(script.op())).unwrap();
    assert!(matches!(
        out,
        Err(Error::BudgetExhausted { attempts: 1, .. })
    ));
}
