//! The pipeline's rule for which admission rejections retry waits out (issue 12: load
//! shedding must not wait), on the mock clock: by default an open breaker is waited out when
//! its retry instant fits the deadline, and a saturated limiter or a full bulkhead is answered
//! at once; `Waits::All` and `Waits::Nothing` change that.

use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::pipeline::{Error, Pipeline, Waits};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter};
use bulwark::{Clock, Instant, MockClock, mock};
use core::cell::Cell;
use core::time::Duration;

fn retry() -> RetryConfig {
    RetryConfig::new()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .jitter(Jitter::None)
}

#[test]
fn a_rate_limited_call_is_answered_at_once_by_default() {
    let clock = MockClock::new();
    let limiter = RateLimiter::new(LimiterConfig::per_second(10).burst(1), &clock).unwrap();
    limiter.try_acquire().unwrap();
    let ran = Cell::new(0);
    let p = Pipeline::new(&clock, retry()).unwrap().limiter(&limiter);
    let out = mock::run(
        &clock,
        p.call(|| async {
            ran.set(ran.get() + 1);
            Ok::<_, ()>(())
        }),
    )
    .unwrap();
    assert!(matches!(out, Err(Error::RateLimited(r)) if r.retry_at == Instant::from_millis(100)));
    assert_eq!(
        (clock.now(), ran.get()),
        (Instant::ZERO, 0),
        "no wait, no call"
    );
}

#[test]
fn a_full_bulkhead_is_answered_at_once_by_default() {
    let clock = MockClock::new();
    let bulkhead = Bulkhead::new(BulkheadConfig::new(1), &clock).unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let p = Pipeline::new(&clock, retry()).unwrap().bulkhead(&bulkhead);
    let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(()) })).unwrap();
    assert!(matches!(out, Err(Error::BulkheadFull(_))));
    assert_eq!(clock.now(), Instant::ZERO);
    drop(held);
}

fn tripped(clock: &MockClock) -> CircuitBreaker<&MockClock> {
    let b = CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(Duration::from_millis(100)),
        clock,
    )
    .unwrap();
    b.try_acquire().unwrap().failure();
    b
}

#[test]
fn an_open_breaker_is_waited_out_when_its_probe_fits_the_deadline() {
    let clock = MockClock::new();
    let breaker = tripped(&clock);
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .breaker(&breaker)
        .total_timeout(Duration::from_secs(1));
    let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(7) })).unwrap();
    assert_eq!(out, Ok(7));
    assert_eq!(
        clock.now(),
        Instant::from_millis(100),
        "waited exactly until the probe"
    );
}

#[test]
fn an_open_breaker_past_the_deadline_is_answered_at_once() {
    let clock = MockClock::new();
    let breaker = tripped(&clock);
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .breaker(&breaker)
        .total_timeout(Duration::from_millis(50));
    let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(7) })).unwrap();
    assert!(matches!(out, Err(Error::CircuitOpen(_))), "{out:?}");
    assert_eq!(
        clock.now(),
        Instant::ZERO,
        "no sleep that could not end in a call"
    );
}

#[test]
fn waits_all_queues_for_the_limiter_and_retries_a_full_bulkhead() {
    let clock = MockClock::new();
    let limiter = RateLimiter::new(LimiterConfig::per_second(10).burst(1), &clock).unwrap();
    limiter.try_acquire().unwrap();
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .limiter(&limiter)
        .waits(Waits::All);
    assert_eq!(
        mock::run(&clock, p.call(|| async { Ok::<_, ()>(1) })).unwrap(),
        Ok(1)
    );
    assert_eq!(clock.now(), Instant::from_millis(100));

    let bulkhead = Bulkhead::new(BulkheadConfig::new(1), &clock).unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .bulkhead(&bulkhead)
        .waits(Waits::All);
    let (out, ()) = mock::run(
        &clock,
        mock::join(p.call(|| async { Ok::<_, ()>(2) }), async {
            clock.sleep(Duration::from_millis(15)).await;
            drop(held);
        }),
    )
    .unwrap();
    assert_eq!(out, Ok(2));
    // Rejected at 100 ms and at 110 ms (the backoff); the permit is back at 115 ms.
    assert_eq!(clock.now(), Instant::from_millis(120));
}

#[test]
fn waits_nothing_answers_even_an_open_breaker_at_once() {
    let clock = MockClock::new();
    let breaker = tripped(&clock);
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .breaker(&breaker)
        .total_timeout(Duration::from_secs(1))
        .waits(Waits::Nothing);
    let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(7) })).unwrap();
    assert!(
        matches!(out, Err(Error::CircuitOpen(r)) if r.retry_at == Some(Instant::from_millis(100)))
    );
    assert_eq!(clock.now(), Instant::ZERO);
}

#[test]
fn a_forced_open_breaker_is_never_waited_for() {
    let clock = MockClock::new();
    let breaker = tripped(&clock);
    breaker.force_open();
    let p = Pipeline::new(&clock, retry())
        .unwrap()
        .breaker(&breaker)
        .waits(Waits::All);
    let out = mock::run(&clock, p.call(|| async { Ok::<_, ()>(7) })).unwrap();
    assert!(matches!(out, Err(Error::CircuitOpen(r)) if r.retry_at.is_none()));
    assert_eq!(clock.now(), Instant::ZERO);
}
