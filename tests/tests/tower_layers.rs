//! The tower layers composed with `tower::ServiceBuilder` on tokio's paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Rejected, State};
use bulwark::pipeline::Pipeline;
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::timeout::Elapsed;
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::{PipelineLayer, RetryLayer, TimeoutLayer};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

#[tokio::test(start_paused = true)]
async fn retry_over_timeout_cuts_each_attempt_and_retries() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(50)))
            .jitter(Jitter::None),
        TokioClock::new(),
    )
    .unwrap();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry))
        .layer(TimeoutLayer::new(Duration::from_millis(100)))
        .service(service_fn(move |()| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                // The first two attempts hang; the third answers.
                if n < 2 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Ok::<_, std::io::Error>(n)
            }
        }));
    let t0 = tokio::time::Instant::now();
    assert_eq!(svc.oneshot(()).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Two attempts cut at 100 ms, two 50 ms waits, an instant answer.
    assert_eq!(t0.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_reports_elapsed_at_the_limit() {
    let svc = TimeoutLayer::new(Duration::from_millis(10)).layer(service_fn(|()| {
        std::future::pending::<Result<(), std::io::Error>>()
    }));
    let t0 = tokio::time::Instant::now();
    let err = svc.oneshot(()).await.unwrap_err();
    assert!(err.downcast_ref::<Elapsed>().is_some());
    assert_eq!(t0.elapsed(), Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn pipeline_layer_clones_share_the_breaker() {
    let clock = TokioClock::new();
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(3)
                .open_for(Duration::from_secs(60)),
            clock,
        )
        .unwrap(),
    );
    let pipeline = Pipeline::new(clock, RetryConfig::new().max_attempts(1))
        .unwrap()
        .breaker(Arc::clone(&breaker));
    let svc = PipelineLayer::new(pipeline).layer(service_fn(|()| async { Err::<(), _>("down") }));
    let mut rejected = 0;
    for _ in 0..10 {
        let err = svc.clone().oneshot(()).await.unwrap_err();
        rejected += err.downcast_ref::<Rejected>().is_some() as u32;
    }
    assert_eq!((rejected, breaker.state()), (7, State::Open));
}
