//! An `async fn` axum handler that awaits bulwark calls compiles and serves, with no helper
//! function around the calls (issue 13, item 2): the policies live in `Arc`s in the router's
//! state, and every future awaited in the handler is `Send + 'static`.
//!
//! Driven without a network: `Router` is a tower service, called with `oneshot` on tokio's
//! paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, State as BreakerState};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Config as RetryConfig, Jitter, Retry};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::TokioPipeline;
use tower::ServiceExt;

type Breaker = CircuitBreaker<TokioClock>;
type Stages = ((), Arc<Breaker>);

#[derive(Clone)]
struct App {
    pipeline: Arc<TokioPipeline<bulwark::pipeline::AllTransient, (), Stages>>,
    breaker: Arc<Breaker>,
    retry: Arc<Retry<TokioClock>>,
    limiter: Arc<RateLimiter<TokioClock>>,
    bulkhead: Arc<Bulkhead<QueueSemaphore<8>, TokioClock>>,
    calls: Arc<AtomicU32>,
}

async fn downstream(calls: Arc<AtomicU32>) -> Result<&'static str, &'static str> {
    // Fails on the first call of each request pair, then answers: retried once, it succeeds.
    if calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
        Err("flaky")
    } else {
        Ok("price: 42")
    }
}

/// Exactly the handler a newcomer writes: an `async fn` awaiting bulwark calls inline.
async fn price(State(app): State<App>) -> Response {
    // A wait for a rate-limiter token and a bulkhead slot (both futures own nothing borrowed
    // from a non-'static place; the permit is held across the awaits below).
    if app.limiter.acquire(1).await.is_err() {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let Ok(_slot) = app.bulkhead.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // A bare retry, a bare breaker call, and the whole pipeline.
    let calls = Arc::clone(&app.calls);
    let retried = app.retry.call(|| downstream(Arc::clone(&calls))).await;
    let guarded = app.breaker.call(|| async { Ok::<_, ()>(()) }).await;
    let calls = Arc::clone(&app.calls);
    match app.pipeline.call(|| downstream(Arc::clone(&calls))).await {
        Ok(body) if retried.is_ok() && guarded.is_ok() => body.into_response(),
        Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Err(Error::CircuitOpen(_)) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn app() -> App {
    let clock = TokioClock::new();
    let breaker =
        Arc::new(CircuitBreaker::new(BreakerConfig::new().consecutive_failures(5), clock).unwrap());
    let retry_cfg = RetryConfig::new()
        .max_attempts(2)
        .backoff(bulwark::retry::Backoff::constant(Duration::from_millis(10)))
        .jitter(Jitter::None);
    App {
        pipeline: Arc::new(
            Pipeline::new(clock, retry_cfg)
                .unwrap()
                .breaker(Arc::clone(&breaker))
                .total_timeout(Duration::from_secs(1)),
        ),
        breaker,
        retry: Arc::new(Retry::new(retry_cfg, clock).unwrap()),
        limiter: Arc::new(RateLimiter::new(LimiterConfig::per_second(100), clock).unwrap()),
        bulkhead: Arc::new(
            Bulkhead::queued(
                BulkheadConfig::new(4).max_wait(Duration::from_millis(100)),
                clock,
            )
            .unwrap(),
        ),
        calls: Arc::new(AtomicU32::new(0)),
    }
}

#[tokio::test(start_paused = true)]
async fn an_async_fn_handler_awaiting_bulwark_calls_compiles_and_serves() {
    let app = app();
    let router = Router::new()
        .route("/price", get(price))
        .with_state(app.clone());
    for _ in 0..3 {
        let response = router
            .clone()
            .oneshot(Request::get("/price").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Each request: the bare retry (fail, succeed) and the pipeline (fail, succeed).
    assert_eq!(app.calls.load(Ordering::SeqCst), 3 * 4);
    assert_eq!(app.breaker.state(), BreakerState::Closed);
    assert_eq!(
        app.bulkhead.metrics().in_use,
        0,
        "every slot was given back"
    );
    // Nothing leaked: the router's clones and the futures dropped their handles.
    drop(router);
    assert_eq!(Arc::strong_count(&app.pipeline), 1);
    assert_eq!(Arc::strong_count(&app.bulkhead), 1);
}
