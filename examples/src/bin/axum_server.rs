//! An axum server on 127.0.0.1 whose handler calls a flaky downstream through the bulwark
//! pipeline (breaker, rate limiter, bulkhead, retry, attempt and total timeouts), and maps
//! each layer's rejection to the HTTP answer a client can act on: 503 + Retry-After (circuit
//! open), 503 (bulkhead full), 429 + Retry-After (rate limited), 504 (too slow), 502
//! (downstream failed).
//!
//! **Demo mode** (no arguments): the program starts the server on an ephemeral loopback port,
//! sends it 30 requests over plain TCP (real time, about three seconds), prints each status
//! line, and exits. Timings are real, so a line may differ between runs; the tests drive the
//! same layers on paused time.
//!
//! `cargo run -p bulwark-examples --bin axum_server`
//!
//! **Serve mode** (any of the flags below): a long-running server for load tests, with a
//! scripted downstream. It binds 127.0.0.1 only, prints `listening on 127.0.0.1:PORT` as the
//! first line on stdout, serves `GET /price` (through the pipeline) and `GET /stats` (plain
//! `key value` lines: uptime, the fault script, the configuration, downstream calls and
//! outcomes, answers per layer, breaker and bulkhead counts, VmRSS), and exits by itself.
//!
//! ```text
//! --port N         port on 127.0.0.1 (0, the default: pick a free one)
//! --faults SCRIPT  downstream behaviour by time since start, e.g. "5s:fail,15s:stall,22s:slow,28s:ok"
//!                  (ok until the first step): ok = answers in 50 ms; fail = fails after 5 ms;
//!                  stall = hangs until the attempt timeout cuts it; slow = answers in 150 ms
//!                  (above normal, under the 200 ms attempt timeout). A call keeps the
//!                  behaviour of the instant it started.
//! --for SECONDS    exit after this long (default 60, at most 3600)
//! --waits W        the pipeline's Waits: breaker (default), all, nothing
//! ```
//!
//! `cargo run -p bulwark-examples --bin axum_server -- --port 0 --faults "5s:fail,10s:ok" --for 20`

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Counters, NoWindow};
use bulwark::pipeline::{Error, Pipeline, Waits};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig};
use bulwark::{Clock, Instant};
use bulwark_examples::parse_duration;
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::TokioPipeline;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Breaker = CircuitBreaker<TokioClock, NoWindow, Counters>;
type Limiter = RateLimiter<TokioClock>;
type Hold = Bulkhead<AtomicSemaphore, TokioClock>;
/// The pipeline's admission stages, in order: breaker, limiter, bulkhead (each shared through
/// an `Arc`, so `/stats` reads the same breaker and bulkhead the calls go through).
type Stages = ((((), Arc<Breaker>), Arc<Limiter>), Arc<Hold>);
type Policies = TokioPipeline<bulwark::classify::ErrorsAreFailures, (), Stages>;

#[derive(Debug)]
struct DownstreamError;

/// When the server started, on the global clock: the outage and the log are timed from it.
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn since_start() -> Duration {
    let start = *START.get_or_init(|| TokioClock::new().now());
    TokioClock::new().now().saturating_duration_since(start)
}

// ===== the downstream =====

/// What the simulated downstream does with a call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Answers in `OK_LATENCY`.
    Ok,
    /// Fails after `FAIL_LATENCY`.
    Fail,
    /// Hangs (until the attempt timeout cuts it; gives up by itself after `STALL_LIMIT`).
    Stall,
    /// Answers in `SLOW_LATENCY`: above normal, under the attempt timeout.
    Slow,
}

const OK_LATENCY: Duration = Duration::from_millis(50);
const FAIL_LATENCY: Duration = Duration::from_millis(5);
const SLOW_LATENCY: Duration = Duration::from_millis(150);
const STALL_LIMIT: Duration = Duration::from_secs(10);

impl Behaviour {
    const ALL: [Behaviour; 4] = [
        Behaviour::Ok,
        Behaviour::Fail,
        Behaviour::Stall,
        Behaviour::Slow,
    ];

    fn name(self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Fail => "fail",
            Behaviour::Stall => "stall",
            Behaviour::Slow => "slow",
        }
    }

    fn parse(s: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// The fault script: from each instant (since start) on, the downstream behaves so; `Ok`
/// before the first step.
#[derive(Debug, Default)]
struct Script {
    steps: Vec<(Duration, Behaviour)>,
}

impl Script {
    fn parse(text: &str) -> Result<Script, String> {
        let mut steps: Vec<(Duration, Behaviour)> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (at, what) = item
                .split_once(':')
                .ok_or_else(|| format!("fault step {item:?}: want TIME:BEHAVIOUR, e.g. 5s:fail"))?;
            let at = parse_duration(at)?;
            let what = Behaviour::parse(what.trim()).ok_or_else(|| {
                format!("fault step {item:?}: behaviour is one of ok, fail, stall, slow")
            })?;
            if steps.last().is_some_and(|&(prev, _)| prev >= at) {
                return Err(format!("fault step {item:?}: times must increase"));
            }
            steps.push((at, what));
        }
        Ok(Script { steps })
    }

    fn at(&self, t: Duration) -> Behaviour {
        self.steps
            .iter()
            .rev()
            .find(|&&(at, _)| at <= t)
            .map_or(Behaviour::Ok, |&(_, b)| b)
    }

    fn render(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(at, b)| format!("{}ms:{}", at.as_millis(), b.name()))
            .collect();
        steps.join(",")
    }
}

/// What the server counts: downstream calls and outcomes, and the answer of each request.
struct Stats {
    /// Downstream calls started, by the behaviour they met (index: `Behaviour::ALL`).
    started: [AtomicU64; 4],
    /// Downstream calls that answered.
    succeeded: AtomicU64,
    /// Downstream calls that failed.
    failed: AtomicU64,
    /// Downstream calls dropped before they finished (cut by a timeout).
    cut: AtomicU64,
    /// Answers to `/price`, by what the pipeline returned.
    answered_ok: AtomicU64,
    circuit_open: AtomicU64,
    rate_limited: AtomicU64,
    bulkhead_full: AtomicU64,
    attempt_timeout: AtomicU64,
    total_timeout: AtomicU64,
    downstream_failed: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array below
const ZERO: AtomicU64 = AtomicU64::new(0);

static STATS: Stats = Stats {
    started: [ZERO; 4],
    succeeded: ZERO,
    failed: ZERO,
    cut: ZERO,
    answered_ok: ZERO,
    circuit_open: ZERO,
    rate_limited: ZERO,
    bulkhead_full: ZERO,
    attempt_timeout: ZERO,
    total_timeout: ZERO,
    downstream_failed: ZERO,
};

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts a downstream call as cut unless it finished.
struct Unfinished(bool);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.0 {
            bump(&STATS.cut);
        }
    }
}

/// The downstream of the demo: answers in 50 ms, but fails from 0.4 s to 1.4 s after start
/// (an outage).
async fn flaky_downstream(n: u32) -> Result<String, DownstreamError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outage = Duration::from_millis(400)..Duration::from_millis(1400);
    if outage.contains(&since_start()) {
        Err(DownstreamError)
    } else {
        Ok(format!("price #{n}: 42.00\n"))
    }
}

/// The downstream of serve mode: behaves as the script says at the instant the call starts.
async fn scripted_downstream(n: u32, script: &Script) -> Result<String, DownstreamError> {
    let behaviour = script.at(since_start());
    bump(&STATS.started[behaviour as usize]);
    let mut unfinished = Unfinished(true);
    let outcome = match behaviour {
        Behaviour::Ok => {
            tokio::time::sleep(OK_LATENCY).await;
            Ok(format!("price #{n}: 42.00\n"))
        }
        Behaviour::Slow => {
            tokio::time::sleep(SLOW_LATENCY).await;
            Ok(format!("price #{n}: 42.00 (slowly)\n"))
        }
        Behaviour::Fail => {
            tokio::time::sleep(FAIL_LATENCY).await;
            Err(DownstreamError)
        }
        Behaviour::Stall => {
            tokio::time::sleep(STALL_LIMIT).await;
            Err(DownstreamError)
        }
    };
    unfinished.0 = false;
    bump(match outcome {
        Ok(_) => &STATS.succeeded,
        Err(_) => &STATS.failed,
    });
    outcome
}

// ===== the server =====

/// The pipeline's settings, one set per mode.
#[derive(Copy, Clone, Debug)]
struct Settings {
    consecutive_failures: u32,
    open_for: Duration,
    limiter_per_second: u32,
    limiter_burst: u32,
    bulkhead: usize,
    max_attempts: u32,
    backoff: Duration,
    attempt_timeout: Duration,
    total_timeout: Duration,
    waits: Waits,
}

const DEMO: Settings = Settings {
    consecutive_failures: 4,
    open_for: Duration::from_secs(1),
    limiter_per_second: 50,
    limiter_burst: 10,
    bulkhead: 16,
    max_attempts: 2,
    backoff: Duration::from_millis(20),
    attempt_timeout: Duration::from_millis(200),
    total_timeout: Duration::from_millis(300),
    waits: Waits::Breaker,
};

/// Serve mode: sized for a load of about 100 requests per second, with room for bursts of
/// twice that before the limiter sheds.
const SERVE: Settings = Settings {
    limiter_per_second: 200,
    limiter_burst: 20,
    ..DEMO
};

#[derive(Clone)]
struct App {
    policies: Arc<Policies>,
    breaker: Arc<Breaker>,
    bulkhead: Arc<Hold>,
    settings: Arc<Settings>,
    /// `None`: the demo's downstream.
    script: Option<Arc<Script>>,
    calls: Arc<AtomicU32>,
}

fn build(settings: Settings, script: Option<Script>) -> App {
    let clock = TokioClock::new();
    // Built once at start-up; shared through `Arc`s by every request and by `/stats`.
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(settings.consecutive_failures)
                .open_for(settings.open_for),
            clock,
        )
        .expect("a valid breaker configuration")
        .with_events(Counters::new()),
    );
    let limiter = Arc::new(
        RateLimiter::new(
            LimiterConfig::per_second(settings.limiter_per_second).burst(settings.limiter_burst),
            clock,
        )
        .expect("a valid limiter configuration"),
    );
    let bulkhead = Arc::new(
        Bulkhead::new(BulkheadConfig::new(settings.bulkhead), clock)
            .expect("a valid bulkhead configuration"),
    );
    let policies = Arc::new(
        Pipeline::new(
            clock,
            RetryConfig::new()
                .max_attempts(settings.max_attempts)
                .backoff(Backoff::constant(settings.backoff)),
        )
        .expect("a valid retry configuration")
        .breaker(Arc::clone(&breaker))
        .limiter(limiter)
        .bulkhead(Arc::clone(&bulkhead))
        .attempt_timeout(settings.attempt_timeout)
        .total_timeout(settings.total_timeout)
        .waits(settings.waits),
    );
    App {
        policies,
        breaker,
        bulkhead,
        settings: Arc::new(settings),
        script: script.map(Arc::new),
        calls: Arc::new(AtomicU32::new(0)),
    }
}

async fn downstream(app: App) -> Result<String, DownstreamError> {
    let n = app.calls.fetch_add(1, Ordering::SeqCst);
    match app.script.as_deref() {
        None => flaky_downstream(n).await,
        Some(script) => scripted_downstream(n, script).await,
    }
}

async fn price(State(app): State<App>) -> Response {
    let policies = Arc::clone(&app.policies);
    let out = policies.call(move || downstream(app.clone())).await;
    let now = TokioClock::new().now();
    let retry_after = |at: Instant| {
        let secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
        [(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))]
    };
    match out {
        Ok(body) => {
            bump(&STATS.answered_ok);
            body.into_response()
        }
        Err(Error::CircuitOpen(r)) => {
            bump(&STATS.circuit_open);
            match r.retry_at {
                Some(at) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    retry_after(at),
                    "circuit open\n",
                )
                    .into_response(),
                None => (StatusCode::SERVICE_UNAVAILABLE, "circuit open\n").into_response(),
            }
        }
        Err(Error::RateLimited(r)) => {
            bump(&STATS.rate_limited);
            (
                StatusCode::TOO_MANY_REQUESTS,
                retry_after(r.retry_at),
                "slow down\n",
            )
                .into_response()
        }
        Err(Error::BulkheadFull(_)) => {
            bump(&STATS.bulkhead_full);
            (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response()
        }
        Err(e @ (Error::AttemptTimeout(_) | Error::Timeout(_))) => {
            bump(match e {
                Error::AttemptTimeout(_) => &STATS.attempt_timeout,
                _ => &STATS.total_timeout,
            });
            (StatusCode::GATEWAY_TIMEOUT, "downstream too slow\n").into_response()
        }
        Err(e) => {
            bump(&STATS.downstream_failed);
            (
                StatusCode::BAD_GATEWAY,
                format!("downstream failed: {e:?}\n"),
            )
                .into_response()
        }
    }
}

/// This process's resident set size in KiB (VmRSS in /proc/self/status), if readable.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /stats`: one `key value` per line.
async fn stats(State(app): State<App>) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let s = app.settings;
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k} {v}");
    };
    line("uptime_ms", &since_start().as_millis());
    if let Some(script) = app.script.as_deref() {
        line("faults", &script.render());
        line("behaviour", &script.at(since_start()).name());
    }
    line("config.consecutive_failures", &s.consecutive_failures);
    line("config.open_for_ms", &s.open_for.as_millis());
    line("config.limiter_per_second", &s.limiter_per_second);
    line("config.limiter_burst", &s.limiter_burst);
    line("config.bulkhead", &s.bulkhead);
    line("config.max_attempts", &s.max_attempts);
    line("config.backoff_ms", &s.backoff.as_millis());
    line("config.attempt_timeout_ms", &s.attempt_timeout.as_millis());
    line("config.total_timeout_ms", &s.total_timeout.as_millis());
    line("config.waits", &format!("{:?}", s.waits).to_lowercase());
    line("config.ok_latency_ms", &OK_LATENCY.as_millis());
    line("config.slow_latency_ms", &SLOW_LATENCY.as_millis());
    line("config.fail_latency_ms", &FAIL_LATENCY.as_millis());
    let started: u64 = STATS.started.iter().map(get).sum();
    line(
        "downstream.calls",
        &started.max(u64::from(app.calls.load(Ordering::SeqCst))),
    );
    for b in Behaviour::ALL {
        line(
            &format!("downstream.started.{}", b.name()),
            &get(&STATS.started[b as usize]),
        );
    }
    line("downstream.succeeded", &get(&STATS.succeeded));
    line("downstream.failed", &get(&STATS.failed));
    line("downstream.cut", &get(&STATS.cut));
    line("answered.ok", &get(&STATS.answered_ok));
    line("answered.circuit_open", &get(&STATS.circuit_open));
    line("answered.rate_limited", &get(&STATS.rate_limited));
    line("answered.bulkhead_full", &get(&STATS.bulkhead_full));
    line("answered.attempt_timeout", &get(&STATS.attempt_timeout));
    line("answered.total_timeout", &get(&STATS.total_timeout));
    line("answered.downstream_failed", &get(&STATS.downstream_failed));
    let t = app.breaker.events().snapshot();
    line("breaker.state", &format!("{:?}", app.breaker.state()));
    line("breaker.successes", &t.successes);
    line("breaker.failures", &t.failures);
    line("breaker.rejected", &t.rejected);
    line("bulkhead.rejected", &app.bulkhead.totals().rejected);
    if let Some(kib) = rss_kib() {
        line("rss_kib", &kib);
    }
    out
}

fn router(app: App) -> Router {
    Router::new()
        .route("/price", get(price))
        .route("/stats", get(stats))
        .with_state(app)
}

// ===== demo mode =====

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

async fn demo() -> std::io::Result<()> {
    since_start(); // the outage is timed from here
    let app = build(DEMO, None);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let served = app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router(served)).await });
    println!("bulwark + axum on http://{addr}/price (downstream down from 0.4 s to 1.4 s)\n");

    for i in 0..30 {
        let at = since_start().as_millis();
        println!("request {i:>2} at {at:>4} ms: {}", get_status(addr).await?);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let t = app.breaker.events().snapshot();
    println!(
        "\nbreaker: {:?}, {} successes, {} failures, {} rejected",
        app.breaker.state(),
        t.successes,
        t.failures,
        t.rejected
    );
    server.abort();
    Ok(())
}

// ===== serve mode =====

struct ServeOptions {
    port: u16,
    script: Script,
    run_for: Duration,
    waits: Waits,
}

const USAGE: &str = "usage: axum_server                     (demo: 30 requests, then exit)
       axum_server [--port N] [--faults SCRIPT] [--for SECONDS] [--waits breaker|all|nothing]
                                        (serve on 127.0.0.1 until --for has passed)";

fn parse_args(args: &[String]) -> Result<ServeOptions, String> {
    let mut opts = ServeOptions {
        port: 0,
        script: Script::default(),
        run_for: Duration::from_secs(60),
        waits: Waits::Breaker,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                opts.port = v.parse().map_err(|_| format!("--port {v:?}: not a port"))?;
            }
            "--faults" => opts.script = Script::parse(value()?)?,
            "--for" => {
                opts.run_for = parse_duration(value()?)?;
                if opts.run_for > Duration::from_secs(3600) || opts.run_for.is_zero() {
                    return Err("--for: between 1 ms and 3600 s".into());
                }
            }
            "--waits" => {
                opts.waits = match value()?.as_str() {
                    "breaker" => Waits::Breaker,
                    "all" => Waits::All,
                    "nothing" => Waits::Nothing,
                    other => return Err(format!("--waits {other:?}: breaker, all or nothing")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

async fn serve(opts: ServeOptions) -> std::io::Result<()> {
    let settings = Settings {
        waits: opts.waits,
        ..SERVE
    };
    let app = build(settings, Some(opts.script));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    // The first line on stdout, for whoever started us (stdout is line-buffered).
    println!("listening on {}", listener.local_addr()?);
    eprintln!(
        "axum_server: faults {:?}, exiting after {:?}; {settings:?}",
        app.script
            .as_deref()
            .map(Script::render)
            .unwrap_or_default(),
        opts.run_for
    );
    tokio::select! {
        served = axum::serve(listener, router(app)) => served,
        () = tokio::time::sleep(opts.run_for) => {
            eprintln!("axum_server: --for {:?} has passed, exiting", opts.run_for);
            Ok(())
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    since_start(); // every time in the program counts from here
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return demo().await;
    }
    match parse_args(&args) {
        Ok(opts) => serve(opts).await,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("axum_server: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_script() {
        let s = Script::parse("5s:fail, 15s:stall,22.5s:slow,28000ms:ok").unwrap();
        assert_eq!(s.at(Duration::ZERO), Behaviour::Ok);
        assert_eq!(s.at(Duration::from_secs(5)), Behaviour::Fail);
        assert_eq!(s.at(Duration::from_secs(20)), Behaviour::Stall);
        assert_eq!(s.at(Duration::from_secs(23)), Behaviour::Slow);
        assert_eq!(s.at(Duration::from_secs(99)), Behaviour::Ok);
        assert_eq!(
            s.render(),
            "5000ms:fail,15000ms:stall,22500ms:slow,28000ms:ok"
        );
        assert!(Script::parse("5s:broken").is_err());
        assert!(Script::parse("5s:fail,5s:ok").is_err());
        assert!(Script::parse("fail").is_err());
    }

    #[test]
    fn serve_flags() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let o = parse_args(&args("--port 0 --faults 1s:fail --for 2 --waits nothing")).unwrap();
        assert_eq!(
            (o.port, o.run_for, o.waits),
            (0, Duration::from_secs(2), Waits::Nothing)
        );
        assert!(parse_args(&args("--for 3601")).is_err());
        assert!(parse_args(&args("--port x")).is_err());
    }
}
