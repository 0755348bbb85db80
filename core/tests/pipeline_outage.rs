//! A flaky downstream with an outage, called through the full pipeline on the mock clock; the
//! exact outcome and timing of every call is asserted.

use core::cell::Cell;
use core::time::Duration;

use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Counters, State};
use bulwark::pipeline::{Error, Layer, Pipeline, Waits};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Verdict};
use bulwark::{Clock, Instant, MockClock, mock};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Down {
    Unavailable,
    BadRequest,
}

/// Up: answers in 100 ms. Down (10 s ..< 30 s): hangs for 2 s, then fails. Request 5 is a bad
/// request (the caller's fault).
async fn downstream(clock: &MockClock, request: u32, attempts: &Cell<u32>) -> Result<u32, Down> {
    attempts.set(attempts.get() + 1);
    let t = clock.now();
    if request == 5 {
        return Err(Down::BadRequest);
    }
    if (Instant::from_secs(10)..Instant::from_secs(30)).contains(&t) {
        clock.sleep(Duration::from_secs(2)).await;
        Err(Down::Unavailable)
    } else {
        clock.sleep(Duration::from_millis(100)).await;
        Ok(request)
    }
}

#[test]
fn outage_through_the_full_pipeline() {
    let clock = MockClock::new();
    let breaker = CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(3)
            .open_for(Duration::from_secs(5)),
        &clock,
    )
    .unwrap()
    .with_events(Counters::new());
    let limiter = RateLimiter::new(LimiterConfig::per_second(20).burst(5), &clock).unwrap();
    let bulkhead = Bulkhead::new(BulkheadConfig::new(2), &clock).unwrap();
    let pipeline = Pipeline::new(
        &clock,
        RetryConfig::new()
            .jitter(Jitter::None)
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(200))),
    )
    .unwrap()
    .breaker(&breaker)
    .limiter(&limiter)
    .bulkhead(&bulkhead)
    .classify(|r: &Result<u32, Down>| match r {
        Ok(_) => Verdict::Success,
        Err(Down::Unavailable) => Verdict::FAILURE,
        Err(_) => Verdict::Ignore,
    })
    .total_timeout(Duration::from_secs(3))
    .attempt_timeout(Duration::from_millis(500));

    let attempts = Cell::new(0);
    let mut log = Vec::new();
    mock::run(&clock, async {
        for request in 0..40u32 {
            // One call a second.
            clock.sleep_until(Instant::from_secs(request as u64)).await;
            let start = clock.now().as_millis();
            attempts.set(0);
            let out = pipeline
                .call(|| downstream(&clock, request, &attempts))
                .await;
            let what = match out {
                Ok(_) => "ok".to_string(),
                Err(Error::Operation(e)) => format!("{e:?}"),
                Err(e) => format!("{:?}", e.layer()),
            };
            log.push((
                request,
                start,
                clock.now().as_millis() - start,
                attempts.get(),
                what,
            ));
        }
    })
    .unwrap();
    use Expect::{AttemptTimeout, Bad, Open, Timeout};
    const OK: Expect = Expect::Ok;
    #[rustfmt::skip]
    let expected = [
        // Healthy: one attempt each, 100 ms.
        (0, 0, 100, 1, OK), (1, 1_000, 100, 1, OK), (2, 2_000, 100, 1, OK), (3, 3_000, 100, 1, OK),
        (4, 4_000, 100, 1, OK),
        // A caller error: not retried, returned as is, ignored by the breaker.
        (5, 5_000, 0, 1, Bad),
        (6, 6_000, 100, 1, OK), (7, 7_000, 100, 1, OK), (8, 8_000, 100, 1, OK), (9, 9_000, 100, 1, OK),
        // The outage: three attempts cut at 500 ms each, 200 ms apart; the third consecutive
        // failure opens the breaker (until 16.9 s).
        (10, 10_000, 1_900, 3, AttemptTimeout),
        // Open until 16.9 s, past each call's 3 s budget: rejected at once, no attempt.
        (11, 11_900, 0, 0, Open), (12, 12_000, 0, 0, Open), (13, 13_000, 0, 0, Open),
        // Open until 16.9 s, within budget: retry waits for it, and the probe hangs until the
        // total timeout cuts it at 17 s. The caller gave up, the downstream did not fail: not
        // recorded, the probe slot is given back (still half-open).
        (14, 14_000, 3_000, 1, Timeout),
        // The next probe runs into its own attempt timeout at 17.5 s: a failure, open until
        // 22.5 s; the retry at 17.7 s finds it open past the budget.
        (15, 17_000, 700, 1, Open),
        (16, 17_700, 0, 0, Open), (17, 17_700, 0, 0, Open), (18, 18_000, 0, 0, Open),
        (19, 19_000, 0, 0, Open),
        // The same cycle: a probe cut by the caller's deadline, then one that fails.
        (20, 20_000, 3_000, 1, Timeout),
        (21, 23_000, 700, 1, Open),
        (22, 23_700, 0, 0, Open), (23, 23_700, 0, 0, Open), (24, 24_000, 0, 0, Open),
        (25, 25_000, 0, 0, Open),
        (26, 26_000, 3_000, 1, Timeout),
        (27, 29_000, 700, 1, Open),
        (28, 29_700, 0, 0, Open), (29, 29_700, 0, 0, Open), (30, 30_000, 0, 0, Open),
        (31, 31_000, 0, 0, Open),
        // The downstream is back at 30 s: the probe at 34.5 s succeeds and closes the breaker.
        (32, 32_000, 2_600, 1, OK),
        (33, 34_600, 100, 1, OK), (34, 34_700, 100, 1, OK), (35, 35_000, 100, 1, OK),
        (36, 36_000, 100, 1, OK), (37, 37_000, 100, 1, OK), (38, 38_000, 100, 1, OK),
        (39, 39_000, 100, 1, OK),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(r, s, d, a, e)| (r, s, d, a, e.name()))
        .collect();
    assert_eq!(log, expected);
    assert_eq!(breaker.state(), State::Closed);
    let m = breaker.events().snapshot();
    // Successes: 0-4, 6-9, 32-39. Failures: 3 (request 10) + the probes of 15, 21, 27.
    // Ignored: the bad request 5 and the probes the caller's deadline cut (14, 20, 26).
    assert_eq!((m.successes, m.failures, m.ignored), (17, 6, 4));
    assert_eq!(bulkhead.metrics().in_use, 0);
}

#[derive(Clone, Copy)]
enum Expect {
    Ok,
    Bad,
    Open,
    AttemptTimeout,
    Timeout,
}

impl Expect {
    fn name(self) -> String {
        match self {
            Expect::Ok => "ok".into(),
            Expect::Bad => format!("{:?}", Down::BadRequest),
            Expect::Open => format!("{:?}", Layer::CircuitBreaker),
            Expect::AttemptTimeout => format!("{:?}", Layer::AttemptTimeout),
            Expect::Timeout => format!("{:?}", Layer::Timeout),
        }
    }
}

#[test]
fn the_total_timeout_counts_from_the_call_and_each_attempt_timeout_from_its_start() {
    /// An operation that hangs for an hour.
    async fn hang(clock: &MockClock) -> Result<(), ()> {
        clock.sleep(Duration::from_secs(3600)).await;
        Ok(())
    }

    // Polled 400 ms after the call: the attempt still gets its full second.
    let clock = MockClock::new();
    let p = Pipeline::new(&clock, RetryConfig::new().max_attempts(1))
        .unwrap()
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(1));
    let call = p.call(|| hang(&clock));
    clock.advance(Duration::from_millis(400));
    let out = mock::run(&clock, call).unwrap();
    assert!(matches!(out, Err(Error::AttemptTimeout(_))));
    assert_eq!(clock.now(), Instant::from_millis(1400));

    // ...but the total timeout, like `tokio::time::timeout`, counts from the call.
    let clock = MockClock::new();
    let p = Pipeline::new(&clock, RetryConfig::new().max_attempts(1))
        .unwrap()
        .total_timeout(Duration::from_secs(1))
        .attempt_timeout(Duration::from_secs(5));
    let call = p.call(|| hang(&clock));
    clock.advance(Duration::from_millis(400));
    let out = mock::run(&clock, call).unwrap();
    assert!(matches!(out, Err(Error::Timeout(_))));
    assert_eq!(clock.now(), Instant::from_secs(1));

    // The first attempt is rejected by the limiter (its one token is gone): told to wait
    // out rate limits, the pipeline starts the second when a token is back, and that attempt
    // gets its own full attempt timeout.
    let clock = MockClock::new();
    let limiter = RateLimiter::new(LimiterConfig::per_second(1), &clock).unwrap();
    limiter.try_acquire().unwrap();
    let twice = Pipeline::new(&clock, RetryConfig::new().max_attempts(2))
        .unwrap()
        .limiter(&limiter)
        .attempt_timeout(Duration::from_millis(500))
        .waits(Waits::All);
    let out = mock::run(&clock, twice.call(|| hang(&clock))).unwrap();
    assert!(matches!(out, Err(Error::AttemptTimeout(_))));
    assert_eq!(clock.now(), Instant::from_millis(1500));
}
