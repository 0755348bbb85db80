//! A whole tower stack observed: a `PipelineLayer` whose retry, breaker and bulkhead report
//! to `MetricsHooks`, with an `ObserveLayer` around the call and one around each attempt, on
//! tokio's paused time (exact durations).
#![cfg(all(feature = "metrics", feature = "tower"))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, Config as Bh};
use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
use bulwark::pipeline::Pipeline;
use bulwark::rate_limiter::{Config as Rl, KeyedRateLimiter};
use bulwark::retry::{Backoff, Config, Jitter};
use bulwark_observe::{MetricsHooks, ObserveLayer, Observed, Pattern};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::{KeyedLayer, PipelineLayer};
use support::{counter, gauge, histogram, paused, with_metrics};
use tower::{ServiceBuilder, ServiceExt, service_fn};

#[test]
fn pipeline_layer_calls_and_attempts_are_counted_and_timed() {
    let (elapsed, series) = with_metrics(|| {
        paused(async {
            let clock = TokioClock::new();
            let breaker = Arc::new(
                CircuitBreaker::new(Cb::new().consecutive_failures(5), clock)
                    .unwrap()
                    .with_events(MetricsHooks::new("checkout")),
            );
            let slots = Arc::new(Observed::new(
                Pattern::Bulkhead,
                Bulkhead::new(Bh::new(4), clock).unwrap(),
                MetricsHooks::new("checkout"),
            ));
            let cfg = Config::new()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_millis(200)))
                .jitter(Jitter::None);
            let pipeline = Pipeline::new(clock, cfg)
                .unwrap()
                .breaker(Arc::clone(&breaker))
                .bulkhead(Arc::clone(&slots))
                .hooks(MetricsHooks::new("checkout"));
            let hooks = Arc::new(MetricsHooks::new("checkout"));
            let calls = Arc::new(AtomicU32::new(0));
            let seen = Arc::clone(&calls);
            // Two attempts fail after 100 ms each, the third succeeds after 50 ms.
            let svc = ServiceBuilder::new()
                .layer(ObserveLayer::shared(Pattern::Pipeline, Arc::clone(&hooks)))
                .layer(PipelineLayer::new(pipeline))
                .layer(ObserveLayer::shared(Pattern::Attempt, Arc::clone(&hooks)))
                .service(service_fn(move |()| {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < 2 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err("503")
                        } else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(n)
                        }
                    }
                }));
            let t0 = tokio::time::Instant::now();
            assert_eq!(svc.oneshot(()).await.unwrap(), 2);
            t0.elapsed()
        })
    });
    assert_eq!(elapsed, Duration::from_millis(650));
    let expect = [
        (
            "bulwark_retry_calls_total{name=checkout,kind=successful_with_retry}",
            counter(1),
        ),
        ("bulwark_retry_attempts_total{name=checkout}", counter(3)),
        (
            "bulwark_retry_call_attempts{name=checkout}",
            histogram(&[3.0]),
        ),
        (
            "bulwark_circuit_breaker_calls_total{name=checkout,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_circuit_breaker_calls_total{name=checkout,outcome=failure}",
            counter(2),
        ),
        (
            "bulwark_bulkhead_calls_total{name=checkout,outcome=permitted}",
            counter(3),
        ),
        ("bulwark_bulkhead_in_flight{name=checkout}", gauge(0.0)),
        (
            "bulwark_calls_total{name=checkout,pattern=pipeline,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=checkout,pattern=pipeline}",
            histogram(&[0.65]),
        ),
        (
            "bulwark_calls_total{name=checkout,pattern=attempt,outcome=failure}",
            counter(2),
        ),
        (
            "bulwark_calls_total{name=checkout,pattern=attempt,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_attempt_duration_seconds{name=checkout}",
            histogram(&[0.1, 0.1, 0.05]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(series.get(*key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

#[test]
fn keyed_layer_over_an_observed_table_counts_shed_calls() {
    let ((), series) = with_metrics(|| {
        paused(async {
            let table: KeyedRateLimiter<u8, _, 8> =
                KeyedRateLimiter::new(Rl::per_second(1).burst(1), TokioClock::new()).unwrap();
            let observed =
                Observed::new(Pattern::RateLimiter, table, MetricsHooks::new("per-user"));
            let hooks = Arc::new(MetricsHooks::new("per-user"));
            let svc = ServiceBuilder::new()
                .layer(ObserveLayer::shared(Pattern::RateLimiter, hooks))
                .layer(KeyedLayer::new(observed, |user: &u8| *user))
                .service(service_fn(|user: u8| async move {
                    Ok::<_, std::io::Error>(user)
                }));
            assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
            assert_eq!(svc.clone().oneshot(2).await.unwrap(), 2);
            assert!(svc.oneshot(1).await.is_err()); // user 1's token is spent
        })
    });
    let expect = [
        (
            "bulwark_rate_limiter_calls_total{name=per-user,outcome=permitted}",
            counter(2),
        ),
        (
            "bulwark_rate_limiter_calls_total{name=per-user,outcome=rejected}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=per-user,pattern=rate_limiter,outcome=success}",
            counter(2),
        ),
        (
            "bulwark_calls_total{name=per-user,pattern=rate_limiter,outcome=shed}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=per-user,pattern=rate_limiter}",
            histogram(&[0.0, 0.0, 0.0]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(series.get(*key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

#[test]
fn retry_layer_hooks_and_an_observed_gate_layer() {
    use bulwark::retry::Retry;
    use bulwark_tokio::tower::{GateLayer, RetryLayer};
    let (out, series) = with_metrics(|| {
        paused(async {
            let clock = TokioClock::new();
            let limiter = Observed::new(
                Pattern::RateLimiter,
                bulwark::rate_limiter::RateLimiter::new(Rl::per_second(1).burst(1), clock).unwrap(),
                MetricsHooks::new("outbound"),
            );
            let policy = Retry::new(
                Config::new()
                    .max_attempts(2)
                    .backoff(Backoff::constant(Duration::from_millis(10)))
                    .jitter(Jitter::None),
                clock,
            )
            .unwrap()
            .with_hooks(MetricsHooks::new("outbound"));
            let svc = ServiceBuilder::new()
                .layer(RetryLayer::new(policy))
                .layer(GateLayer::new(limiter))
                .service(service_fn(|()| async {
                    Err::<(), _>(std::io::Error::other("503"))
                }));
            // The first attempt passes the limiter and fails; the retry is shed by it and,
            // shedding not being waited for, answered at once.
            svc.oneshot(()).await.map_err(|e| e.to_string())
        })
    });
    assert!(out.unwrap_err().contains("rate limited"));
    let expect = [
        (
            "bulwark_rate_limiter_calls_total{name=outbound,outcome=permitted}",
            counter(1),
        ),
        (
            "bulwark_rate_limiter_calls_total{name=outbound,outcome=rejected}",
            counter(1),
        ),
        ("bulwark_retry_attempts_total{name=outbound}", counter(2)),
        (
            "bulwark_retry_calls_total{name=outbound,kind=failed_with_retry}",
            counter(1),
        ),
        (
            "bulwark_retry_call_attempts{name=outbound}",
            histogram(&[2.0]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(series.get(*key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

/// A keyed breaker table: `Observed` counts its admissions and rejections (every key under
/// the table's name), and an `ObserveLayer` around the keyed layer gives how each call ended
/// (the per-key breakers carry no events of their own).
#[test]
fn keyed_breaker_layer_calls_are_counted_with_their_outcomes() {
    use bulwark_tokio::tower::KeyedCircuitBreaker;
    let ((), series) = with_metrics(|| {
        paused(async {
            let table: KeyedCircuitBreaker<u8> =
                KeyedCircuitBreaker::new(Cb::new().consecutive_failures(1), 8, TokioClock::new())
                    .unwrap();
            let observed = Observed::new(
                Pattern::CircuitBreaker,
                table,
                MetricsHooks::new("per-host"),
            );
            let hooks = Arc::new(MetricsHooks::new("per-host"));
            let svc = ServiceBuilder::new()
                .layer(ObserveLayer::shared(Pattern::CircuitBreaker, hooks))
                .layer(KeyedLayer::new(observed, |host: &u8| *host))
                .service(service_fn(|host: u8| async move {
                    if host == 1 { Err("503") } else { Ok(host) }
                }));
            assert!(svc.clone().oneshot(1).await.is_err()); // host 1 fails: its breaker opens
            assert!(svc.clone().oneshot(1).await.is_err()); // rejected by host 1's breaker
            assert_eq!(svc.oneshot(2).await.unwrap(), 2); // host 2 is not affected
        })
    });
    let expect = [
        (
            "bulwark_circuit_breaker_calls_total{name=per-host,outcome=rejected}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=per-host,pattern=circuit_breaker,outcome=failure}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=per-host,pattern=circuit_breaker,outcome=rejected}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=per-host,pattern=circuit_breaker,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=per-host,pattern=circuit_breaker}",
            histogram(&[0.0, 0.0, 0.0]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(series.get(*key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}
