//! Layers composed by hand cooperate: a retry layer outside a breaker or limiter layer reads
//! the rejection's retry hint from the error, and waits until then when that fits the
//! deadline and the policy allows waiting, or answers at once. Tokio's paused time, exact
//! instants.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Rejected, State};
use bulwark::pipeline::Waits;
use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter, RateLimited, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::timeout::Elapsed;
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::{BoxError, RetryLayer, ServiceBuilderExt, TokioRetry};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(cfg: RetryConfig) -> TokioRetry {
    Retry::new(
        cfg.backoff(Backoff::constant(ms(100))).jitter(Jitter::None),
        TokioClock::new(),
    )
    .unwrap()
}

/// Opens after 2 failures in a row, for 5 s.
fn breaker() -> Arc<CircuitBreaker<TokioClock>> {
    Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(5)),
            TokioClock::new(),
        )
        .unwrap(),
    )
}

/// A downstream that fails its first `n` calls, then answers; counts calls.
fn flaky(
    n: u32,
    calls: &Arc<AtomicU32>,
) -> impl tower::Service<(), Response = u32, Error = &'static str, Future: Send> + Clone {
    let calls = Arc::clone(calls);
    service_fn(move |()| {
        let k = calls.fetch_add(1, Ordering::SeqCst);
        async move { if k < n { Err("503") } else { Ok(k) } }
    })
}

fn is<T: std::error::Error + 'static>(e: &BoxError) -> bool {
    e.downcast_ref::<T>().is_some()
}

#[tokio::test(start_paused = true)]
async fn retry_waits_out_an_open_breaker_until_its_retry_instant() {
    let (b, calls) = (breaker(), Arc::new(AtomicU32::new(0)));
    let svc = ServiceBuilder::new()
        .bulwark_retry(policy(RetryConfig::new().max_attempts(4)))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    // 0 ms: fails; 100 ms: fails, the breaker opens until 5.1 s; 200 ms: rejected, and the
    // rejection says 5.1 s: the retry sleeps until then instead of its 100 ms backoff; at
    // 5.1 s the half-open probe reaches the healed downstream.
    assert_eq!(svc.oneshot(()).await.unwrap(), 2);
    assert_eq!(t0.elapsed(), ms(5_100));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the rejected attempt never ran"
    );
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn retry_answers_at_once_when_the_wait_passes_the_timeout_around_it() {
    let (b, calls) = (breaker(), Arc::new(AtomicU32::new(0)));
    let svc = ServiceBuilder::new()
        .bulwark_timeout(Duration::from_secs(2)) // the deadline: 5.1 s does not fit
        .bulwark_retry(policy(RetryConfig::new().max_attempts(4)))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    let err = svc.oneshot(()).await.unwrap_err();
    // The breaker's own answer at 200 ms, not a timeout at 2 s.
    let rejected = err
        .downcast_ref::<Rejected>()
        .expect("the breaker's rejection");
    assert_eq!(rejected.retry_after(), Some(ms(4_900)));
    assert!(!is::<Elapsed>(&err));
    assert_eq!(t0.elapsed(), ms(200));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_answers_at_once_when_the_policy_forbids_the_wait() {
    // max_elapsed: no attempt may start later than 1 s after the first.
    let (b, calls) = (breaker(), Arc::new(AtomicU32::new(0)));
    let svc = ServiceBuilder::new()
        .bulwark_retry(policy(
            RetryConfig::new()
                .max_attempts(4)
                .max_elapsed(Duration::from_secs(1)),
        ))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    assert!(is::<Rejected>(&svc.oneshot(()).await.unwrap_err()));
    assert_eq!(t0.elapsed(), ms(200));

    // Waits::Nothing: never wait for a gate.
    let (b, calls) = (breaker(), Arc::new(AtomicU32::new(0)));
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::with_waits(
            policy(RetryConfig::new().max_attempts(4)),
            Waits::Nothing,
        ))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    assert!(is::<Rejected>(&svc.oneshot(()).await.unwrap_err()));
    assert_eq!(t0.elapsed(), ms(200));
}

#[tokio::test(start_paused = true)]
async fn a_saturated_limiter_is_answered_at_once_by_default_and_waited_for_when_asked() {
    let calls = Arc::new(AtomicU32::new(0));
    let limiter = Arc::new(
        RateLimiter::new(LimiterConfig::per_second(1).burst(1), TokioClock::new()).unwrap(),
    );
    let shed = ServiceBuilder::new()
        .bulwark_retry(policy(RetryConfig::new().max_attempts(3)))
        .rate_limiter(Arc::clone(&limiter))
        .service(flaky(0, &calls));
    let t0 = Instant::now();
    assert_eq!(shed.clone().oneshot(()).await.unwrap(), 0);
    let err = shed.oneshot(()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after,
        Duration::from_secs(1)
    );
    assert_eq!(t0.elapsed(), Duration::ZERO, "load shedding does not wait");

    let queue = ServiceBuilder::new()
        .layer(RetryLayer::with_waits(
            policy(RetryConfig::new().max_attempts(3)),
            Waits::All,
        ))
        .rate_limiter(Arc::clone(&limiter))
        .service(flaky(0, &calls));
    assert_eq!(queue.oneshot(()).await.unwrap(), 1);
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(1),
        "waited for the exact pass instant"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_keyed_limiters_rejection_carries_the_same_hint() {
    let calls = Arc::new(AtomicU32::new(0));
    let per_user: Arc<KeyedRateLimiter<u8, _, 8>> = Arc::new(
        KeyedRateLimiter::new(LimiterConfig::per_second(4).burst(1), TokioClock::new()).unwrap(),
    );
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::with_waits(
            policy(RetryConfig::new().max_attempts(2)),
            Waits::All,
        ))
        .keyed_rate_limiter(per_user, |_: &()| 7u8)
        .service(flaky(0, &calls));
    let t0 = Instant::now();
    svc.clone().oneshot(()).await.unwrap();
    svc.oneshot(()).await.unwrap();
    assert_eq!(t0.elapsed(), ms(250));
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_is_answered_at_once() {
    let calls = Arc::new(AtomicU32::new(0));
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::new(1), TokioClock::new()).unwrap());
    let held = bulkhead.try_acquire().unwrap();
    let svc = ServiceBuilder::new()
        .bulwark_retry(policy(RetryConfig::new().max_attempts(5)))
        .bulkhead(Arc::clone(&bulkhead))
        .service(flaky(0, &calls));
    let t0 = Instant::now();
    assert!(is::<BulkheadFull>(&svc.oneshot(()).await.unwrap_err()));
    assert_eq!(
        (t0.elapsed(), calls.load(Ordering::SeqCst)),
        (Duration::ZERO, 0)
    );
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn the_downstreams_own_errors_still_use_the_backoff() {
    // No gate: the classifier of the policy judges, the backoff spaces the attempts.
    let calls = Arc::new(AtomicU32::new(0));
    let svc = ServiceBuilder::new()
        .bulwark_timeout(Duration::from_secs(1))
        .bulwark_retry(policy(RetryConfig::new().max_attempts(3)))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    assert_eq!(svc.oneshot(()).await.unwrap(), 2);
    assert_eq!(t0.elapsed(), ms(200));
}

#[tokio::test(start_paused = true)]
async fn the_tightest_timeout_around_the_retry_counts_and_is_forgotten_after_the_call() {
    let (b, calls) = (breaker(), Arc::new(AtomicU32::new(0)));
    // 60 s outside, 2 s inside: the 5.1 s retry instant does not fit the 2 s.
    let svc = ServiceBuilder::new()
        .bulwark_timeout(Duration::from_secs(60))
        .bulwark_timeout(Duration::from_secs(2))
        .bulwark_retry(policy(RetryConfig::new().max_attempts(4)))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls));
    let t0 = Instant::now();
    assert!(is::<Rejected>(&svc.oneshot(()).await.unwrap_err()));
    assert_eq!(t0.elapsed(), ms(200));

    // The same retry and breaker without a timeout around them, called next on this
    // thread: no bound is left over from the call above, so it waits the breaker out.
    let bare = ServiceBuilder::new()
        .bulwark_retry(policy(RetryConfig::new().max_attempts(2)))
        .circuit_breaker(Arc::clone(&b))
        .service(flaky(2, &calls)); // its third call on: answers
    let t1 = Instant::now();
    assert_eq!(bare.oneshot(()).await.unwrap(), 2);
    assert_eq!(t1.elapsed(), ms(4_900)); // until 5.1 s after t0
}
