//! An axum server on 127.0.0.1 whose handler calls a flaky downstream through the bulwark
//! pipeline, and maps each layer's rejection to the HTTP answer a client can act on.
//!
//! The program starts the server on an ephemeral loopback port, sends it 30 requests over
//! plain TCP (real time, about three seconds), prints each status line, and exits. Timings
//! are real, so a line may differ between runs; the tests drive the same layers on paused
//! time.
//!
//! `cargo run -p bulwark-examples --bin axum_server`

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Counters, NoWindow};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig};
use bulwark::{Clock, Instant};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::TokioPipeline;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Breaker = CircuitBreaker<&'static TokioClock, NoWindow, Counters>;
type Limiter = RateLimiter<&'static TokioClock>;
type Policies = TokioPipeline<bulwark::pipeline::AllTransient, (), Breaker, Limiter>;

#[derive(Debug)]
struct DownstreamError;

/// When the server started, on the global clock: the outage and the log are timed from it.
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn since_start() -> Duration {
    let start = *START.get_or_init(|| TokioClock::global().now());
    TokioClock::global().now().saturating_duration_since(start)
}

/// The downstream: answers in 50 ms, but fails from 0.4 s to 1.4 s after start (an outage).
async fn flaky_downstream(n: u32) -> Result<String, DownstreamError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outage = Duration::from_millis(400)..Duration::from_millis(1400);
    if outage.contains(&since_start()) {
        Err(DownstreamError)
    } else {
        Ok(format!("price #{n}: 42.00\n"))
    }
}

#[derive(Clone, Copy)]
struct App {
    policies: &'static Policies,
    calls: &'static AtomicU32,
}

/// The pipeline call, as a plain function: its future type is concrete (all `'static`), so
/// proving it `Send` for axum is straightforward. (Inside an `async fn`, rustc's `Send` check
/// of a generic-associated-type future can fail with "not general enough", a known rustc
/// limitation; a function boundary like this one is the usual workaround.)
fn call_downstream(
    app: App,
) -> impl Future<Output = Result<String, Error<DownstreamError>>> + Send {
    app.policies
        .call(move || flaky_downstream(app.calls.fetch_add(1, Ordering::SeqCst)))
}

async fn price(State(app): State<App>) -> Response {
    let out = call_downstream(app).await;
    let now = TokioClock::global().now();
    let retry_after = |at: Instant| {
        let secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
        [(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))]
    };
    match out {
        Ok(body) => body.into_response(),
        Err(Error::CircuitOpen(r)) => match r.retry_at {
            Some(at) => (
                StatusCode::SERVICE_UNAVAILABLE,
                retry_after(at),
                "circuit open\n",
            )
                .into_response(),
            None => (StatusCode::SERVICE_UNAVAILABLE, "circuit open\n").into_response(),
        },
        Err(Error::RateLimited(r)) => (
            StatusCode::TOO_MANY_REQUESTS,
            retry_after(r.retry_at),
            "slow down\n",
        )
            .into_response(),
        Err(Error::AttemptTimeout(_) | Error::Timeout(_)) => {
            (StatusCode::GATEWAY_TIMEOUT, "downstream too slow\n").into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("downstream failed: {e:?}\n"),
        )
            .into_response(),
    }
}

/// One HTTP/1.1 request over a fresh loopback connection; the status line of the answer.
async fn get_status(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /price HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer.lines().next().unwrap_or_default().to_string();
    let retry_after = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("retry-after"));
    Ok(match retry_after {
        Some(h) => format!("{status} ({h})"),
        None => status,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let clock = TokioClock::global();
    since_start(); // the outage is timed from here
    // Built once at start-up and kept for the life of the server.
    let breaker: &'static Breaker = Box::leak(Box::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(4)
                .open_for(Duration::from_secs(1)),
            clock,
        )
        .expect("a valid breaker configuration")
        .with_events(Counters::new()),
    ));
    let limiter: &'static Limiter = Box::leak(Box::new(
        RateLimiter::new(LimiterConfig::per_second(50).burst(10), clock)
            .expect("a valid limiter configuration"),
    ));
    let policies: &'static Policies = Box::leak(Box::new(
        Pipeline::new(
            clock,
            RetryConfig::new()
                .max_attempts(2)
                .backoff(Backoff::constant(Duration::from_millis(20))),
        )
        .expect("a valid retry configuration")
        .breaker(breaker)
        .limiter(limiter)
        .attempt_timeout(Duration::from_millis(200))
        .total_timeout(Duration::from_millis(300)),
    ));
    let app = App {
        policies,
        calls: Box::leak(Box::new(AtomicU32::new(0))),
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Router::new().route("/price", get(price)).with_state(app);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    println!("bulwark + axum on http://{addr}/price (downstream down from 0.4 s to 1.4 s)\n");

    for i in 0..30 {
        let at = since_start().as_millis();
        println!("request {i:>2} at {at:>4} ms: {}", get_status(addr).await?);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let t = breaker.events().snapshot();
    println!(
        "\nbreaker: {:?}, {} successes, {} failures, {} rejected",
        breaker.state(),
        t.successes,
        t.failures,
        t.rejected
    );
    server.abort();
    Ok(())
}
