//! One behaviour everywhere: the same scenarios, written once and generic over the runtime,
//! run on the core's mock clock, on tokio with paused time, on embassy's mock time driver and
//! under async-std's and smol's executors. Each run reports the same outcomes at the same
//! instants, and every runtime must match the mock clock's report exactly.
//!
//! async-io (async-std's and smol's timer) has no virtual time, and real sleeps have no place
//! in tests: under those two executors the scenarios run on the mock clock, with the adapter's
//! async-lock semaphore and the executor's own wake-ups. `AsyncIoClock` itself is checked in
//! its crate.

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, QueueSemaphore, Rejected, Semaphore};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, State};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::{Clock, Instant, MockClock, Sleep, mock};

/// What happened, and when (ms since the scenario started).
type Log = Vec<(&'static str, u64)>;

fn ms<C: Clock>(clock: C, t0: Instant) -> u64 {
    clock.now().saturating_duration_since(t0).as_millis() as u64
}

// ===== the scenarios =====

/// A breaker that trips on 2 failures, stays open 10 s, and recovers through a probe.
async fn breaker_trips_and_recovers<C: Sleep + Copy>(clock: C) -> Log {
    let t0 = clock.now();
    let mut log = Log::new();
    let cfg = BreakerConfig::new()
        .consecutive_failures(2)
        .open_for(Duration::from_secs(10));
    let breaker = CircuitBreaker::new(cfg, clock).unwrap();
    let healthy_from = Duration::from_secs(8);
    for _ in 0..6 {
        let r = breaker
            .call(|| async {
                clock.sleep(Duration::from_secs(1)).await;
                if clock.now().saturating_duration_since(t0) > healthy_from {
                    Ok(())
                } else {
                    Err(())
                }
            })
            .await;
        match r {
            Ok(()) => log.push(("ok", ms(clock, t0))),
            Err(e) if e.is_rejected() => {
                log.push(("rejected", ms(clock, t0)));
                let r = match e {
                    bulwark::circuit_breaker::Error::Rejected(r) => r,
                    _ => unreachable!(),
                };
                clock.sleep_until(r.retry_at.unwrap()).await;
            }
            Err(_) => log.push(("failed", ms(clock, t0))),
        }
    }
    log.push((
        if breaker.state() == State::Closed {
            "closed"
        } else {
            "not closed"
        },
        ms(clock, t0),
    ));
    log
}

/// A bulkhead of one permit, 300 ms max wait: one caller holds it 1 s; a second gives up at
/// exactly 400 ms; a third, arriving at 500 ms, gets it when it is released at 1 s.
async fn bulkhead_max_wait<C: Sleep + Copy, S: Semaphore>(clock: C, sem: S) -> Log {
    let t0 = clock.now();
    let bulkhead = Bulkhead::with_semaphore(sem, Duration::from_millis(300), clock);
    let holder = async {
        let _p = bulkhead.acquire().await.unwrap();
        clock.sleep(Duration::from_secs(1)).await;
        ("released", ms(clock, t0))
    };
    let late = async {
        clock.sleep(Duration::from_millis(100)).await;
        let r = bulkhead.acquire().await;
        (
            if r.as_ref().err() == Some(&Rejected::Timeout) {
                "timed out"
            } else {
                "unexpected"
            },
            ms(clock, t0),
        )
    };
    let patient = async {
        clock.sleep(Duration::from_millis(800)).await;
        let _p = bulkhead.acquire().await.unwrap();
        ("acquired", ms(clock, t0))
    };
    let ((a, b), c) = mock::join(mock::join(holder, late), patient).await;
    let mut log = vec![a, b, c];
    log.sort_by_key(|e| e.1);
    log
}

/// A limiter of 2 per second, burst 1: three waiting acquires pass at 0, 500 and 1000 ms; on
/// a stricter one, an acquire that would wait past its max wait fails at once.
async fn limiter_waits<C: Sleep + Copy>(clock: C) -> Log {
    let t0 = clock.now();
    let limiter = RateLimiter::new(
        LimiterConfig::per_second(2)
            .burst(1)
            .max_wait(Duration::from_millis(600)),
        clock,
    )
    .unwrap();
    let mut log = Log::new();
    for _ in 0..3 {
        limiter.acquire(1).await.unwrap();
        log.push(("passed", ms(clock, t0)));
    }
    let strict = RateLimiter::new(
        LimiterConfig::per_second(1)
            .burst(1)
            .max_wait(Duration::from_millis(400)),
        clock,
    )
    .unwrap();
    strict.acquire(1).await.unwrap();
    let r = strict.acquire(1).await; // due in 1 s, past the max wait: refused at once
    log.push((if r.is_err() { "refused" } else { "passed" }, ms(clock, t0)));
    log
}

/// Retry with exponential backoff (1 s, 2 s, 4 s) against an operation that fails four
/// times; then a timeout that cuts a slow operation, and one that lets a fast one through.
async fn retry_schedule_and_timeouts<C: Sleep + Copy>(clock: C) -> Log {
    use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
    use bulwark::timeout::timeout;
    let t0 = clock.now();
    let mut log = Log::new();
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(5)
            .backoff(Backoff::exponential(Duration::from_secs(1)))
            .jitter(Jitter::None),
        clock,
    )
    .unwrap();
    let attempts = std::cell::RefCell::new(Vec::new());
    let out = retry
        .call(|| {
            attempts.borrow_mut().push(("attempt", ms(clock, t0)));
            let n = attempts.borrow().len();
            async move { if n < 5 { Err(n) } else { Ok(n) } }
        })
        .await;
    log.extend(attempts.into_inner());
    log.push((
        if out == Ok(5) {
            "retry ok"
        } else {
            "retry failed"
        },
        ms(clock, t0),
    ));
    let slow = timeout(
        clock,
        Duration::from_millis(250),
        clock.sleep(Duration::from_secs(10)),
    )
    .await;
    log.push((
        if slow.is_err() {
            "timed out"
        } else {
            "not cut"
        },
        ms(clock, t0),
    ));
    let fast = timeout(
        clock,
        Duration::from_millis(250),
        clock.sleep(Duration::from_millis(100)),
    )
    .await;
    log.push((if fast.is_ok() { "in time" } else { "cut" }, ms(clock, t0)));
    log
}

/// Every scenario's report on one runtime.
#[derive(Debug, PartialEq)]
struct Report {
    breaker: Log,
    bulkhead: Log,
    limiter: Log,
    retry: Log,
}

// ===== the runtimes =====

fn on_mock_clock() -> Report {
    let clock = MockClock::new();
    let breaker = mock::run(&clock, breaker_trips_and_recovers(&clock)).unwrap();
    let clock = MockClock::new();
    let bulkhead = mock::run(
        &clock,
        bulkhead_max_wait(&clock, QueueSemaphore::<4>::new(1).unwrap()),
    )
    .unwrap();
    let clock = MockClock::new();
    let limiter = mock::run(&clock, limiter_waits(&clock)).unwrap();
    let clock = MockClock::new();
    let retry = mock::run(&clock, retry_schedule_and_timeouts(&clock)).unwrap();
    Report {
        breaker,
        bulkhead,
        limiter,
        retry,
    }
}

fn on_tokio_paused_time() -> Report {
    use bulwark_tokio::{TokioClock, TokioSemaphore};
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    Report {
        breaker: rt().block_on(async { breaker_trips_and_recovers(&TokioClock::new()).await }),
        bulkhead: rt().block_on(async {
            bulkhead_max_wait(&TokioClock::new(), TokioSemaphore::new(1)).await
        }),
        limiter: rt().block_on(async { limiter_waits(&TokioClock::new()).await }),
        retry: rt().block_on(async { retry_schedule_and_timeouts(&TokioClock::new()).await }),
    }
}

/// Embassy's mock driver is one global clock: drive it 1 ms at a time between polls.
fn on_embassy_mock_driver() -> Report {
    use bulwark_embassy::{EmbassyClock, EmbassySemaphore};
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use embassy_time::MockDriver;
    static DRIVER: Mutex<()> = Mutex::new(());
    let _only_us = DRIVER.lock().unwrap();
    fn drive<F: Future>(f: F) -> F::Output {
        MockDriver::get().reset();
        let mut f = pin!(f);
        let cx = &mut Context::from_waker(Waker::noop());
        for _ in 0..120_000 {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return v;
            }
            MockDriver::get().advance(embassy_time::Duration::from_millis(1));
        }
        panic!("scenario did not finish within 120 s of mock time");
    }
    let sem: EmbassySemaphore<CriticalSectionRawMutex, 4> = EmbassySemaphore::new(1);
    Report {
        breaker: drive(breaker_trips_and_recovers(&EmbassyClock)),
        bulkhead: drive(bulkhead_max_wait(&EmbassyClock, &sem)),
        limiter: drive(limiter_waits(&EmbassyClock)),
        retry: drive(retry_schedule_and_timeouts(&EmbassyClock)),
    }
}

/// Under a foreign executor: the scenario joined with a driver that moves the mock clock to
/// the next sleep deadline each time it is polled.
async fn with_time_driver<F: Future>(clock: &MockClock, scenario: F) -> F::Output {
    let mut scenario = pin!(scenario);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = scenario.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if let Some(t) = clock.next_deadline() {
            clock.set(t.max(clock.now()));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

fn under_executor(
    block_on: fn(std::pin::Pin<Box<dyn Future<Output = Report>>>) -> Report,
) -> Report {
    use bulwark_async_std::AsyncLockSemaphore;
    block_on(Box::pin(async {
        let c1 = MockClock::new();
        let breaker = with_time_driver(&c1, breaker_trips_and_recovers(&c1)).await;
        let c2 = MockClock::new();
        let bulkhead =
            with_time_driver(&c2, bulkhead_max_wait(&c2, AsyncLockSemaphore::new(1))).await;
        let c3 = MockClock::new();
        let limiter = with_time_driver(&c3, limiter_waits(&c3)).await;
        let c4 = MockClock::new();
        let retry = with_time_driver(&c4, retry_schedule_and_timeouts(&c4)).await;
        Report {
            breaker,
            bulkhead,
            limiter,
            retry,
        }
    }))
}

// ===== the checks =====

#[test]
fn mock_clock_report_is_the_specified_behaviour() {
    let r = on_mock_clock();
    assert_eq!(
        r.breaker,
        vec![
            ("failed", 1_000),
            ("failed", 2_000),   // trips: open until 12 s
            ("rejected", 2_000), // waits out the open time
            ("ok", 13_000),      // the probe (healthy after 8 s) closes it
            ("ok", 14_000),
            ("ok", 15_000),
            ("closed", 15_000),
        ]
    );
    assert_eq!(
        r.bulkhead,
        vec![("timed out", 400), ("released", 1_000), ("acquired", 1_000)]
    );
    assert_eq!(
        r.limiter,
        vec![
            ("passed", 0),
            ("passed", 500),
            ("passed", 1_000),
            ("refused", 1_000)
        ]
    );
}

#[test]
fn tokio_paused_time_matches_the_mock_clock() {
    assert_eq!(on_tokio_paused_time(), on_mock_clock());
}

#[test]
fn embassy_mock_driver_matches_the_mock_clock() {
    assert_eq!(on_embassy_mock_driver(), on_mock_clock());
}

#[test]
fn smol_executor_matches_the_mock_clock() {
    assert_eq!(under_executor(smol::block_on), on_mock_clock());
}

#[test]
fn async_std_executor_matches_the_mock_clock() {
    assert_eq!(under_executor(async_std::task::block_on), on_mock_clock());
}
