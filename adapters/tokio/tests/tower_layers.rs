//! Every pattern as a tower layer owning its state through an `Arc`, built with the
//! `ServiceBuilder` methods; clones share state. On tokio's paused time, with exact instants.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Rejected, State};
use bulwark::pipeline::Pipeline;
use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter, RateLimited, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::timeout::Elapsed;
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::{BoxError, KeyedCircuitBreaker, ServiceBuilderExt};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn is<T: std::error::Error + 'static>(e: &BoxError) -> bool {
    e.downcast_ref::<T>().is_some()
}

async fn ok(n: u32) -> Result<u32, &'static str> {
    Ok(n)
}

async fn fail(_: u32) -> Result<u32, &'static str> {
    Err("down")
}

#[tokio::test(start_paused = true)]
async fn breaker_clone_sees_the_rejection_of_the_other() {
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(5)),
            TokioClock::new(),
        )
        .unwrap(),
    );
    let a = ServiceBuilder::new()
        .circuit_breaker(Arc::clone(&breaker))
        .service(service_fn(fail));
    let b = a.clone();
    assert!(!is::<Rejected>(&a.clone().oneshot(1).await.unwrap_err()));
    assert!(!is::<Rejected>(&b.clone().oneshot(2).await.unwrap_err()));
    // One failure through each clone: the shared breaker counted two and opened.
    let err = a.oneshot(3).await.unwrap_err();
    let rejected = err.downcast_ref::<Rejected>().expect("rejected");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    // The probe through the other clone fails: open again, for both.
    assert!(!is::<Rejected>(&b.clone().oneshot(4).await.unwrap_err()));
    assert!(is::<Rejected>(&b.oneshot(5).await.unwrap_err()));
}

#[tokio::test(start_paused = true)]
async fn rate_limiter_clones_share_one_bucket_and_report_the_exact_wait() {
    let limiter = Arc::new(
        RateLimiter::new(LimiterConfig::per_second(2).burst(2), TokioClock::new()).unwrap(),
    );
    let a = ServiceBuilder::new()
        .rate_limiter(Arc::clone(&limiter))
        .service(service_fn(ok));
    let b = a.clone();
    assert_eq!(a.clone().oneshot(1).await.unwrap(), 1);
    assert_eq!(b.clone().oneshot(2).await.unwrap(), 2);
    let err = a.clone().oneshot(3).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after,
        ms(500)
    );
    tokio::time::advance(ms(500)).await;
    assert_eq!(b.oneshot(4).await.unwrap(), 4);
    assert!(is::<RateLimited>(&a.oneshot(5).await.unwrap_err()));
}

#[tokio::test(start_paused = true)]
async fn bulkhead_clone_is_refused_while_the_other_holds_the_slot() {
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::new(1), TokioClock::new()).unwrap());
    let mut a = ServiceBuilder::new()
        .bulkhead(Arc::clone(&bulkhead))
        .service(service_fn(|n: u32| async move {
            tokio::time::sleep(ms(100)).await;
            Ok::<_, &str>(n)
        }));
    let mut b = a.clone();
    let t0 = Instant::now();
    let held = tokio::spawn(a.ready().await.unwrap().call(1));
    tokio::task::yield_now().await;
    assert_eq!(bulkhead.metrics().in_use, 1);
    let err = b.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(is::<BulkheadFull>(&err));
    assert_eq!(t0.elapsed(), Duration::ZERO, "shed at once");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(t0.elapsed(), ms(100));
    assert_eq!(b.ready().await.unwrap().call(3).await.unwrap(), 3);
    assert_eq!(bulkhead.totals().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_cuts_at_the_exact_instant() {
    let svc = ServiceBuilder::new()
        .bulwark_timeout(ms(250))
        .service(service_fn(|d: u64| async move {
            tokio::time::sleep(ms(d)).await;
            Ok::<_, &str>(d)
        }));
    let t0 = Instant::now();
    assert_eq!(svc.clone().oneshot(249).await.unwrap(), 249);
    let t1 = Instant::now();
    assert!(is::<Elapsed>(&svc.oneshot(10_000).await.unwrap_err()));
    assert_eq!((t1 - t0, t1.elapsed()), (ms(249), ms(250)));
}

#[tokio::test(start_paused = true)]
async fn keyed_rate_limiter_keeps_one_bucket_per_key_shared_by_clones() {
    let per_tenant: Arc<KeyedRateLimiter<String, _, 16>> = Arc::new(
        KeyedRateLimiter::new(LimiterConfig::per_second(1).burst(1), TokioClock::new()).unwrap(),
    );
    let a = ServiceBuilder::new()
        .keyed_rate_limiter(Arc::clone(&per_tenant), |req: &(&str, u32)| {
            req.0.to_string()
        })
        .service(service_fn(
            |(_, n): (&str, u32)| async move { Ok::<_, &str>(n) },
        ));
    let b = a.clone();
    assert_eq!(a.clone().oneshot(("acme", 1)).await.unwrap(), 1);
    // The clone sees acme's spent token; globex has its own.
    let err = b.clone().oneshot(("acme", 2)).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after,
        Duration::from_secs(1)
    );
    assert_eq!(b.clone().oneshot(("globex", 3)).await.unwrap(), 3);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(a.oneshot(("acme", 4)).await.unwrap(), 4);
    assert_eq!(per_tenant.available(&"globex".to_string()), 1);
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_opens_per_key_and_clones_share_the_table() {
    let per_host = Arc::new(
        KeyedCircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(10)),
            8,
            TokioClock::new(),
        )
        .unwrap(),
    );
    let a = ServiceBuilder::new()
        .keyed_circuit_breaker(Arc::clone(&per_host), |host: &&'static str| *host)
        .service(service_fn(|host: &'static str| async move {
            if host.starts_with("down") {
                Err("503")
            } else {
                Ok(host.len())
            }
        }));
    let b = a.clone();
    let _ = a.clone().oneshot("down.a").await;
    let _ = b.clone().oneshot("down.a").await; // the second failure, through the clone
    assert_eq!(per_host.state(&"down.a"), Some(State::Open));
    let err = a.clone().oneshot("down.a").await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Rejected>().unwrap().retry_after(),
        Some(Duration::from_secs(10))
    );
    // Other keys are untouched, one failure of down.b leaves it closed.
    assert_eq!(b.clone().oneshot("up.example").await.unwrap(), 10);
    let _ = b.oneshot("down.b").await;
    assert_eq!(per_host.state(&"down.b"), Some(State::Closed));
    assert_eq!(per_host.len(), 3);
}

/// A table of `capacity` breakers, each opened by one failure for 10 s.
fn breakers_opening_for_10s(capacity: usize) -> KeyedCircuitBreaker<i32> {
    KeyedCircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10)),
        capacity,
        TokioClock::new(),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_evicts_closed_then_expired_never_open_and_overflows() {
    let t = breakers_opening_for_10s(2);
    t.breaker(&1).try_acquire().unwrap().failure(); // 1: open until 10 s
    drop(t.breaker(&2)); // 2: closed
    drop(t.breaker(&3)); // full: the closed 2 goes, not the open 1
    assert_eq!((t.state(&1), t.state(&2)), (Some(State::Open), None));
    assert_eq!(t.evictions(), 1);
    t.breaker(&3).try_acquire().unwrap().failure(); // 3: open until 10 s
    // Every breaker is open within its open time: a new key shares the overflow breaker.
    assert!(Arc::ptr_eq(&t.breaker(&4), t.overflow()));
    assert_eq!((t.overflows(), t.len()), (1, 2));
    tokio::time::advance(Duration::from_secs(10)).await;
    // Open, but its open time is over: now it may go (the least recently used first).
    drop(t.breaker(&4));
    // 3's open time is up too: its state is what its next call finds, a half-open probe.
    assert_eq!((t.state(&1), t.state(&3)), (None, Some(State::HalfOpen)));
    assert_eq!(t.state(&4), Some(State::Closed));
    assert_eq!(t.evictions(), 2);
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_evicts_the_least_recently_used_key() {
    let t = breakers_opening_for_10s(3);
    for k in [1, 2, 3] {
        drop(t.breaker(&k));
    }
    // Calls on 2, then on 1 (twice: the second finds it already the latest): 3 is now the
    // least recently used, though it was added last.
    for k in [2, 1, 1] {
        drop(t.breaker(&k));
    }
    drop(t.breaker(&4));
    assert_eq!(t.state(&3), None);
    drop(t.breaker(&5)); // then 2, used before 1 and 4
    assert_eq!(t.state(&2), None);
    for k in [1, 4, 5] {
        assert_eq!(t.state(&k), Some(State::Closed), "key {k}");
    }
    assert_eq!((t.evictions(), t.overflows()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_tracked_answers_none_where_breaker_would_overflow() {
    let t = breakers_opening_for_10s(1);
    t.tracked(&1).unwrap().try_acquire().unwrap().failure();
    assert!(t.tracked(&2).is_none()); // 1 is open within its open time: it keeps its place
    assert_eq!(t.overflows(), 0); // `tracked` counts nothing
    assert!(Arc::ptr_eq(&t.breaker(&2), t.overflow()));
    assert_eq!(t.overflows(), 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    let two = t.tracked(&2).unwrap(); // 1's open time is over and nobody probed it
    assert!(!Arc::ptr_eq(&two, t.overflow()));
    assert_eq!((t.state(&1), t.state(&2)), (None, Some(State::Closed)));
}

#[tokio::test(start_paused = true)]
async fn retry_and_pipeline_layers_share_their_policy_across_clones() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let policy = Retry::new(
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::constant(ms(10)))
            .jitter(Jitter::None),
        TokioClock::new(),
    )
    .unwrap();
    let a = ServiceBuilder::new()
        .bulwark_retry(policy)
        .service(service_fn(move |n: u32| {
            let k = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if k.is_multiple_of(2) {
                    Err("flaky")
                } else {
                    Ok(n)
                }
            }
        }));
    let b = a.clone();
    assert!(Arc::ptr_eq(a.policy(), b.policy()));
    let t0 = Instant::now();
    assert_eq!(a.oneshot(1).await.unwrap(), 1);
    assert_eq!(b.oneshot(2).await.unwrap(), 2);
    assert_eq!((calls.load(Ordering::SeqCst), t0.elapsed()), (4, ms(20)));

    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new().consecutive_failures(2),
            TokioClock::new(),
        )
        .unwrap(),
    );
    let p = Pipeline::new(TokioClock::new(), RetryConfig::new().max_attempts(1))
        .unwrap()
        .breaker(Arc::clone(&breaker));
    let a = ServiceBuilder::new().pipeline(p).service(service_fn(fail));
    let _ = a.clone().oneshot(1).await;
    let _ = a.clone().clone().oneshot(2).await;
    assert_eq!(breaker.state(), State::Open);
    assert!(is::<Rejected>(&a.oneshot(3).await.unwrap_err()));
}

/// tower's own `ServiceBuilder::{retry, timeout, rate_limit, concurrency_limit}` exist in
/// this test build (tower's `retry`, `timeout` and `limit` features are on): bulwark's
/// methods keep their own names, so both kinds stack in one builder.
#[tokio::test(start_paused = true)]
async fn extension_methods_coexist_with_towers_own() {
    let limiter =
        Arc::new(RateLimiter::new(LimiterConfig::per_second(100), TokioClock::new()).unwrap());
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(1)) // tower's
        .bulwark_timeout(Duration::from_secs(1))
        .rate_limiter(limiter)
        .concurrency_limit(4) // tower's
        .service(service_fn(ok));
    assert_eq!(svc.oneshot(9).await.unwrap(), 9);
}

/// The fault layer: refusals never reach the inner service, replacements do, delays start
/// the inner call at the exact instant, and every clone follows one switch.
#[tokio::test(start_paused = true)]
async fn fault_layer_refuses_replaces_and_delays_for_every_clone() {
    use bulwark::fault::{Config as FaultConfig, Injected, Injector, Rate};

    let hits = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&hits);
    let chaos = Arc::new(Injector::new(FaultConfig::new(), TokioClock::new()).unwrap());
    let svc = ServiceBuilder::new()
        .fault_injection(Arc::clone(&chaos))
        .service(service_fn(move |x: u32| {
            seen.fetch_add(1, Ordering::SeqCst);
            let at = Instant::now();
            async move { Ok::<_, std::io::Error>((x, at)) }
        }));
    let start = Instant::now();
    let injected = |e: BoxError| *e.downcast_ref::<Injected>().unwrap();

    chaos.set(FaultConfig::new().abort(Rate::ALWAYS)).unwrap();
    assert_eq!(
        injected(svc.clone().oneshot(1).await.unwrap_err()),
        Injected::Aborted
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    chaos.set(FaultConfig::new().replace(Rate::ALWAYS)).unwrap();
    assert_eq!(
        injected(svc.clone().oneshot(2).await.unwrap_err()),
        Injected::Replaced
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let d = Duration::from_millis(150);
    chaos
        .set(FaultConfig::new().delay(Rate::ALWAYS, d, d))
        .unwrap();
    let (x, _) = svc.clone().oneshot(3).await.unwrap();
    assert_eq!((x, start.elapsed()), (3, d));

    chaos.disable();
    assert_eq!(svc.oneshot(4).await.unwrap().0, 4);
    assert_eq!(start.elapsed(), d);
    let t = chaos.totals();
    assert_eq!((t.decided, t.aborted, t.replaced, t.delayed), (3, 1, 1, 1));
}

/// A pipeline layer inside a timeout layer reads the timeout's end when the call is made:
/// retries are planned only while they can start before it, and the call answers with the
/// last attempt's error at once instead of sleeping into the timeout.
#[tokio::test(start_paused = true)]
async fn pipeline_layer_under_a_timeout_layer_stops_retrying_before_its_end() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let p = Pipeline::new(
        TokioClock::new(),
        RetryConfig::new()
            .max_attempts(10)
            .backoff(Backoff::constant(ms(300)))
            .jitter(Jitter::None),
    )
    .unwrap();
    let svc = ServiceBuilder::new()
        .bulwark_timeout(ms(1_000))
        .pipeline(p)
        .service(service_fn(move |_: u32| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>("down") }
        }));
    let t0 = Instant::now();
    let err = svc.oneshot(1).await.unwrap_err();
    // Attempts at 0, 300, 600 and 900 ms; the one planned at 1200 ms would start after the
    // timeout's end: the answer is the last attempt's error, at 900 ms, not an Elapsed.
    assert_eq!((calls.load(Ordering::SeqCst), t0.elapsed()), (4, ms(900)));
    assert!(!is::<Elapsed>(&err), "{err}");
    assert_eq!(err.to_string(), "down");
}

/// resilience4j records every exception as a failure by default (`recordExceptions`); a
/// panic is Rust's unchecked exception. A panicking operation behind the breaker's layer is
/// a failure (the breaker opens), not an abandoned call, and the panic still reaches the
/// caller (here, the task's `JoinError`).
#[tokio::test(start_paused = true)]
async fn a_panicking_operation_counts_as_a_failure() {
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(30)),
            TokioClock::new(),
        )
        .unwrap(),
    );
    let svc = ServiceBuilder::new()
        .circuit_breaker(Arc::clone(&breaker))
        .service(service_fn(|n: u32| async move {
            if n == 0 {
                panic!("the operation panicked");
            }
            Ok::<_, &'static str>(n)
        }));
    let joined = tokio::spawn(svc.clone().oneshot(0)).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(breaker.state(), State::Open);
    let err = svc.oneshot(1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Rejected>().unwrap().retry_after(),
        Some(Duration::from_secs(30))
    );
}

/// The same through a pipeline layer (issue 15 item 5): the panicking attempt's breaker permit
/// records a failure, the panic ends the call at once (no retry: it reaches the caller, as an
/// exception escapes a resilience4j decorator only after being recorded), and the next call
/// finds the breaker open.
#[tokio::test(start_paused = true)]
async fn a_panicking_operation_in_a_pipeline_layer_counts_as_a_failure_and_is_not_retried() {
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(30)),
            TokioClock::new(),
        )
        .unwrap(),
    );
    let p = Pipeline::new(
        TokioClock::new(),
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::constant(ms(10)))
            .jitter(Jitter::None),
    )
    .unwrap()
    .breaker(Arc::clone(&breaker));
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let svc = ServiceBuilder::new()
        .pipeline(p)
        .service(service_fn(move |n: u32| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("the operation panicked");
                }
                Ok::<_, &'static str>(n)
            }
        }));
    let joined = tokio::spawn(svc.clone().oneshot(0)).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.state(), State::Open);
    // The next call finds the breaker open: the pipeline waits out its 30 s (its retry reads
    // the rejection's instant), then the probe succeeds.
    let t0 = Instant::now();
    assert_eq!(svc.oneshot(1).await.unwrap(), 1);
    assert_eq!(t0.elapsed(), Duration::from_secs(30));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(breaker.state(), State::Closed);
}

/// A breaker whose open time is a function of the trip (Polly's break-duration generator,
/// issue 15 item 1) behind the breaker layer, named by `CircuitBreakerLayer`'s open-time
/// parameter: the rejection's retry hint is the function's answer, 5 s per opening.
#[tokio::test(start_paused = true)]
async fn a_breaker_with_an_open_time_function_works_behind_its_layer() {
    use bulwark::circuit_breaker::Trip;
    use bulwark_tokio::tower::CircuitBreakerLayer;
    let breaker = CircuitBreaker::new(
        BreakerConfig::new().consecutive_failures(1),
        TokioClock::new(),
    )
    .unwrap()
    .with_open_time(|trip: &Trip| Duration::from_secs(5) * trip.openings());
    let layer: CircuitBreakerLayer<TokioClock, bulwark::circuit_breaker::NoWindow, (), _, _> =
        CircuitBreakerLayer::new(breaker);
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|n: u32| async move {
            if n == 0 { Err("down") } else { Ok(n) }
        }));
    assert!(svc.clone().oneshot(0).await.is_err()); // trips: open for 5 s
    let err = svc.clone().oneshot(1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Rejected>().unwrap().retry_after(),
        Some(Duration::from_secs(5))
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(svc.clone().oneshot(0).await.is_err()); // the probe fails: open for 10 s
    let err = svc.oneshot(1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Rejected>().unwrap().retry_after(),
        Some(Duration::from_secs(10))
    );
    assert_eq!(layer.gate().state(), State::Open);
}

/// A service called again counts its calls on a reference of its own (`tower::Handle`), not
/// on the `Arc` every clone shares: two threads each calling through their own clone do not
/// contend on one reference count. Whatever holds it, the state lives until the last
/// future is done, and is then freed.
#[tokio::test(start_paused = true)]
async fn calls_through_one_service_count_on_its_own_reference_and_the_last_future_frees_the_state()
{
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::new(16), TokioClock::new()).unwrap());
    let pipeline = Arc::new(
        Pipeline::new(TokioClock::new(), RetryConfig::new().max_attempts(2))
            .unwrap()
            .bulkhead(Arc::clone(&bulkhead)),
    );
    let gone = Arc::downgrade(&pipeline);
    let layer = bulwark_tokio::tower::PipelineLayer::shared(Arc::clone(&pipeline));
    let mut svc = tower::Layer::layer(&layer, service_fn(ok));
    assert_eq!(Arc::strong_count(&pipeline), 3); // ours, the layer, the service

    // Ten calls in flight through one service: the first holds the shared `Arc`, the nine
    // after it the service's own reference (one more count of the shared one).
    let mut calls = Vec::new();
    for n in 0..10 {
        calls.push(svc.ready().await.unwrap().call(n));
    }
    assert_eq!(Arc::strong_count(&pipeline), 5);
    // A clone starts without one: called once, it clones the shared `Arc` and allocates
    // nothing; called again, it takes its own.
    let mut other = svc.clone();
    calls.push(other.ready().await.unwrap().call(10));
    assert_eq!(Arc::strong_count(&pipeline), 7); // + the clone, + its first call
    calls.push(other.ready().await.unwrap().call(11));
    calls.push(other.ready().await.unwrap().call(12));
    assert_eq!(Arc::strong_count(&pipeline), 8); // + the clone's own reference

    // Nothing ran yet (futures are lazy); drop every owner but the futures, then run them:
    // each takes its bulkhead slot and gives it back on the state its handle keeps alive.
    drop((svc, other, layer, pipeline));
    assert!(gone.upgrade().is_some());
    let last = calls.pop().unwrap();
    for (n, call) in (0..).zip(calls) {
        assert_eq!(call.await.unwrap(), n);
    }
    assert_eq!(bulkhead.metrics().in_use, 0);
    assert!(
        gone.upgrade().is_some(),
        "the last future still holds the pipeline"
    );
    assert_eq!(last.await.unwrap(), 12);
    assert!(
        gone.upgrade().is_none(),
        "the last future freed the pipeline"
    );
}

/// A retry or pipeline layer over an inner service whose readiness reserves something (tower's
/// concurrency limit takes its permit in `poll_ready`): the first attempt is sent on the
/// service the caller made ready, not on a clone that must reserve again while the ready one
/// still holds the only permit. Retries take a fresh clone and wait for its readiness.
#[tokio::test(start_paused = true)]
async fn the_first_attempt_uses_the_readiness_the_caller_obtained() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let flaky = service_fn(move |n: u32| {
        let k = seen.fetch_add(1, Ordering::SeqCst);
        async move { if k == 0 { Err("503") } else { Ok(n) } }
    });
    let policy = || {
        Retry::new(
            RetryConfig::new()
                .max_attempts(3)
                .backoff(Backoff::constant(ms(10)))
                .jitter(Jitter::None),
            TokioClock::new(),
        )
        .unwrap()
    };
    let svc = ServiceBuilder::new()
        .bulwark_retry(policy())
        .concurrency_limit(1)
        .service(flaky.clone());
    let t0 = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(1), svc.oneshot(7)).await;
    assert_eq!(
        out.expect("the retry layer waited on its own permit")
            .unwrap(),
        7
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2); // a failure, then the retry 10 ms later
    assert_eq!(t0.elapsed(), ms(10));

    let pipeline = ServiceBuilder::new()
        .layer(bulwark_tokio::tower::PipelineLayer::new(
            Pipeline::new(
                TokioClock::new(),
                RetryConfig::new()
                    .max_attempts(3)
                    .backoff(Backoff::constant(ms(10)))
                    .jitter(Jitter::None),
            )
            .unwrap(),
        ))
        .concurrency_limit(1)
        .service(flaky);
    let out = tokio::time::timeout(Duration::from_secs(1), pipeline.oneshot(8)).await;
    assert_eq!(
        out.expect("the pipeline layer waited on its own permit")
            .unwrap(),
        8
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Hedging: the first copy goes to the ready service; the hedge 50 ms later waits for
    // the permit, which the first copy's answer at 20 ms hands back, and is never sent.
    let slow = service_fn(|n: u32| async move {
        tokio::time::sleep(ms(20)).await;
        Ok::<_, &'static str>(n)
    });
    let hedge: bulwark::hedge::Hedge<_, 2> = bulwark::hedge::Hedge::new(
        bulwark::hedge::Config::new(bulwark::hedge::Delay::Fixed(ms(50))),
        TokioClock::new(),
    )
    .unwrap();
    let mut hedged = ServiceBuilder::new()
        .layer(bulwark_tokio::tower::HedgeLayer::new(hedge))
        .concurrency_limit(1)
        .service(slow);
    let t0 = Instant::now();
    // The service outlives its call (as a server's does): its readiness must not stay behind
    // in it, holding the permit the call needs.
    let call = hedged.ready().await.unwrap().call(9);
    let out = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert_eq!(
        out.expect("the hedge layer waited on its own permit")
            .unwrap(),
        9
    );
    assert_eq!(t0.elapsed(), ms(20));
}
