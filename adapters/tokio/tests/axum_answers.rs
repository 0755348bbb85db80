//! A real axum `Router` served on 127.0.0.1 (axum::serve on a TcpListener) and called over
//! TCP: every rejection of a bulwark layer turns into the answer a client can act on (open
//! breaker 503 + Retry-After, rate limited 429 + Retry-After, bulkhead full 503, timeout 504).
//! Real time: loopback needs it; nothing here waits on a timer beyond the 20 ms timeout.
#![cfg(feature = "axum")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter, RateLimiter};
use bulwark_tokio::TokioClock;
use bulwark_tokio::axum::{ErrorResponse, ServerErrors, handle_error};
use bulwark_tokio::tower::{CircuitBreakerLayer, ServiceBuilderExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The status code, the `Retry-After` header (if any) and the body of `GET path`.
async fn get_once(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &str,
) -> (u16, Option<String>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let retry_after = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after: ")
            .map(str::to_string)
    });
    (status, retry_after, body.to_string())
}

#[tokio::test]
async fn every_rejection_answers_with_its_status_and_retry_after_over_tcp() {
    let clock = TokioClock::new();
    // Open for 1.2 s: the first rejection says "retry in 2" (whole seconds, rounded up).
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(1)
                .open_for(Duration::from_millis(1_200)),
            clock,
        )
        .unwrap(),
    );
    let forced =
        Arc::new(CircuitBreaker::new(BreakerConfig::new().consecutive_failures(1), clock).unwrap());
    forced.force_open();
    let limiter = Arc::new(RateLimiter::new(LimiterConfig::per_second(1).burst(1), clock).unwrap());
    let per_tenant: Arc<KeyedRateLimiter<String, _, 16>> =
        Arc::new(KeyedRateLimiter::new(LimiterConfig::per_minute(1).burst(1), clock).unwrap());
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::new(1), clock).unwrap());
    let held = bulkhead.try_acquire().unwrap(); // the only slot, taken for the whole test

    // A downstream client in a handler: its rejections come back through `?`.
    let client_breaker =
        Arc::new(CircuitBreaker::new(BreakerConfig::new().consecutive_failures(1), clock).unwrap());
    let client = ServiceBuilder::new()
        .circuit_breaker(Arc::clone(&client_breaker))
        .service(service_fn(|()| async {
            Err::<&'static str, _>("connection refused")
        }));

    let app = Router::new()
        .route("/ok", get(|| async { "fine\n" }))
        .route(
            "/breaker",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken\n") }).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .layer(
                        CircuitBreakerLayer::shared(Arc::clone(&breaker)).classify(ServerErrors),
                    ),
            ),
        )
        .route(
            "/forced",
            get(|| async { "unreachable\n" }).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .circuit_breaker(forced),
            ),
        )
        .route(
            "/limited",
            get(|| async { "fine\n" }).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .rate_limiter(limiter),
            ),
        )
        .route(
            "/tenant",
            get(|| async { "fine\n" }).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .keyed_rate_limiter(per_tenant, |req: &axum::extract::Request| {
                        req.headers()
                            .get("x-tenant")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("anonymous")
                            .to_string()
                    }),
            ),
        )
        .route(
            "/full",
            get(|| async { "unreachable\n" }).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .bulkhead(Arc::clone(&bulkhead)),
            ),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late\n"
            })
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .bulwark_timeout(Duration::from_millis(20)),
            ),
        )
        .route(
            "/client",
            get(move || {
                let client = client.clone();
                async move {
                    let body: &str = client.oneshot(()).await?;
                    Ok::<_, ErrorResponse>(body)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(
        get_once(addr, "/ok", "").await,
        (200, None, "fine\n".into())
    );

    // The handler's 500 is a failure (`ServerErrors` judges the status) and opens the
    // breaker: then the route answers 503 with the open time, rounded up.
    assert_eq!(
        get_once(addr, "/breaker", "").await,
        (500, None, "broken\n".into())
    );
    let (status, retry_after, body) = get_once(addr, "/breaker", "").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("2")));
    assert!(
        body.starts_with("circuit breaker open; retry in 1."),
        "{body}"
    );
    // Forced open: no instant is known, so no Retry-After.
    let (status, retry_after, body) = get_once(addr, "/forced", "").await;
    assert_eq!(
        (status, retry_after, body.as_str()),
        (503, None, "circuit breaker forced open\n")
    );

    // Rate limited: 1 token a second; the second request waits under a second: "1".
    assert_eq!(get_once(addr, "/limited", "").await.0, 200);
    let (status, retry_after, body) = get_once(addr, "/limited", "").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert!(
        body.starts_with("rate limited (1 at once, one more every 1.0 s); retry in"),
        "{body}"
    );

    // Keyed: one token a minute per tenant, so acme's second request says "60" and globex
    // is not affected.
    assert_eq!(get_once(addr, "/tenant", "x-tenant: acme\r\n").await.0, 200);
    let (status, retry_after, _) = get_once(addr, "/tenant", "x-tenant: acme\r\n").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("60")));
    assert_eq!(
        get_once(addr, "/tenant", "x-tenant: globex\r\n").await.0,
        200
    );

    // Bulkhead full: 503 without Retry-After (a slot may free up at any moment).
    let (status, retry_after, body) = get_once(addr, "/full", "").await;
    assert_eq!(
        (status, retry_after, body.as_str()),
        (503, None, "bulkhead full\n")
    );

    // Timed out: 504.
    let (status, retry_after, body) = get_once(addr, "/slow", "").await;
    assert_eq!(
        (status, retry_after, body.as_str()),
        (504, None, "timed out\n")
    );

    // In a handler, through `?`: the client's own error is a 500 that does not leak its
    // text; then its breaker is open: 503 with the default 30 s open time.
    let (status, _, body) = get_once(addr, "/client", "").await;
    assert_eq!((status, body.as_str()), (500, "internal error\n"));
    let (status, retry_after, _) = get_once(addr, "/client", "").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("30")));

    drop(held);
    assert_eq!(get_once(addr, "/full", "").await.0, 200);
    server.abort();
}
