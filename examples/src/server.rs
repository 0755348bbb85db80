//! An axum server one can poke: `GET /price` is an ordinary `async fn` handler behind
//! bulwark's tower layers, calling a scripted flaky downstream through a client stack of
//! more layers; `GET /stats` shows the breaker, limiter and bulkhead; `POST /downstream/..`
//! breaks or heals the downstream. It runs until Ctrl-C (or `--for`).
//!
//! ```text
//! inbound, around the /price route:   HandleErrorLayer ▸ rate limiter per client address
//! the handler's downstream client:    total timeout ▸ retry ▸ circuit breaker ▸ bulkhead ▸ attempt timeout ▸ downstream
//! ```
//!
//! Every rejection answers as a client can act on it (`bulwark_tokio::axum`): 429 +
//! `Retry-After` (rate limited), 503 + `Retry-After` (circuit open), 503 (bulkhead full),
//! 504 (too slow); 502 when the downstream itself failed. The retry outside the breaker reads
//! the open breaker's retry instant from its rejection and, since it lies past the total
//! timeout, answers at once instead of sleeping into a 504.
//!
//! ```text
//! --port N         port on 127.0.0.1 (default 3000; 0: pick a free one)
//! --faults SCRIPT  downstream behaviour by time since start, e.g. "5s:fail,15s:stall,22s:slow,28s:ok"
//!                  (ok until the first step): ok = answers in 50 ms; fail = fails after 5 ms;
//!                  stall = hangs until the attempt timeout cuts it; slow = answers in 150 ms
//!                  (above normal, under the 200 ms attempt timeout). A call keeps the
//!                  behaviour of the instant it started.
//! --for SECONDS    exit after this long (default: run until Ctrl-C)
//! --waits W        what the retry waits out: breaker (default), all, nothing
//! ```
//!
//! Routes: `GET /price` (protected), `GET /stats` (`key value` lines), `POST
//! /downstream/{ok,fail,stall,slow}` (the downstream behaves so from now on, whatever the
//! script says) and `POST /downstream/script` (back to the script). The first line on
//! stdout is `listening on 127.0.0.1:PORT`.
//!
//! `cargo run -p bulwark-examples --bin axum_server`, then
//! `curl -i localhost:3000/price`, `curl -X POST localhost:3000/downstream/fail`,
//! `curl localhost:3000/stats`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Counters, NoWindow};
use bulwark::pipeline::{Rejection, Waits};
use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::timeout::Elapsed;
use bulwark::{Clock, Instant};
use bulwark_examples::parse_duration;
use bulwark_tokio::TokioClock;
use bulwark_tokio::axum::{ErrorResponse, error_response};
use bulwark_tokio::tower::{BoxError, RetryLayer, ServiceBuilderExt, rejection};
use tower::{ServiceBuilder, ServiceExt, service_fn};

type Breaker = CircuitBreaker<TokioClock, NoWindow, Counters>;
type Hold = Bulkhead<AtomicSemaphore, TokioClock>;
/// One token bucket per client address; a fixed table of 1024 (the limiter's memory bound).
type PerClient = KeyedRateLimiter<IpAddr, TokioClock, 1024>;
/// The downstream behind its client layers: a request number in, a price out. The stack's
/// type is left to inference (`impl Downstream`), so nothing is boxed per call.
trait Downstream:
    tower::Service<u32, Response = String, Error = BoxError, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Downstream for S where
    S: tower::Service<u32, Response = String, Error = BoxError, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

#[derive(Debug)]
struct DownstreamError;

impl std::fmt::Display for DownstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the downstream failed")
    }
}

impl std::error::Error for DownstreamError {}

/// When the server started, on the global clock: the fault script is timed from it.
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

/// The behaviour set by `POST /downstream/{behaviour}`: 0 = follow the script, else
/// `Behaviour::ALL[n - 1]`.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// What the downstream does now: the override, or the script.
fn behaviour_now(script: &Script) -> Behaviour {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => script.at(since_start()),
        n => Behaviour::ALL[usize::from(n - 1) % Behaviour::ALL.len()],
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
    /// Answers to `/price`, by what happened.
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

/// The downstream: behaves as the override or the script says at the instant the call
/// starts.
async fn downstream(n: u32, script: Arc<Script>) -> Result<String, DownstreamError> {
    let behaviour = behaviour_now(&script);
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

/// The layers' settings: sized for a load of about 100 requests per second, with room for
/// bursts of twice that before the limiter sheds.
#[derive(Copy, Clone, Debug)]
struct Settings {
    consecutive_failures: u32,
    open_for: Duration,
    limiter_per_second: u32,
    limiter_burst: u32,
    bulkhead: usize,
    max_attempts: u32,
    backoff: Duration,
    jitter: Jitter,
    attempt_timeout: Duration,
    total_timeout: Duration,
    waits: Waits,
}

const SETTINGS: Settings = Settings {
    consecutive_failures: 4,
    open_for: Duration::from_secs(1),
    limiter_per_second: 200,
    limiter_burst: 20,
    bulkhead: 16,
    max_attempts: 2,
    backoff: Duration::from_millis(20),
    jitter: Jitter::Full,
    attempt_timeout: Duration::from_millis(200),
    total_timeout: Duration::from_millis(300),
    waits: Waits::Breaker,
};

/// The router's state: the downstream behind its layers, and the shared state the layers
/// hold, kept here too for `/stats` (every handle is an `Arc` of the same breaker, limiter
/// and bulkhead the calls go through).
#[derive(Clone)]
struct App<D> {
    downstream: D,
    breaker: Arc<Breaker>,
    limiter: Arc<PerClient>,
    bulkhead: Arc<Hold>,
    settings: Settings,
    script: Arc<Script>,
    calls: Arc<AtomicU32>,
}

fn build(settings: Settings, script: Script) -> App<impl Downstream> {
    let clock = TokioClock::new();
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
        PerClient::new(
            LimiterConfig::per_second(settings.limiter_per_second).burst(settings.limiter_burst),
            clock,
        )
        .expect("a valid limiter configuration"),
    );
    let bulkhead = Arc::new(
        Bulkhead::new(BulkheadConfig::new(settings.bulkhead), clock)
            .expect("a valid bulkhead configuration"),
    );
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(settings.max_attempts)
            .backoff(Backoff::constant(settings.backoff))
            .jitter(settings.jitter),
        clock,
    )
    .expect("a valid retry configuration");
    let script = Arc::new(script);
    let for_calls = Arc::clone(&script);
    // The client side: each layer holds its state through an `Arc`; nothing is leaked.
    let downstream = ServiceBuilder::new()
        .bulwark_timeout(settings.total_timeout)
        .layer(RetryLayer::with_waits(retry, settings.waits))
        .circuit_breaker(Arc::clone(&breaker))
        .bulkhead(Arc::clone(&bulkhead))
        .bulwark_timeout(settings.attempt_timeout)
        .service(service_fn(move |n: u32| {
            downstream(n, Arc::clone(&for_calls))
        }));
    App {
        downstream,
        breaker,
        limiter,
        bulkhead,
        settings,
        script,
        calls: Arc::new(AtomicU32::new(0)),
    }
}

/// `GET /price`: an ordinary `async fn` handler. The layers around the route did the rate
/// limiting; the downstream call goes through the client's layers.
async fn price<D: Downstream>(State(app): State<App<D>>) -> Response {
    let n = app.calls.fetch_add(1, Ordering::Relaxed);
    let started = TokioClock::new().now();
    let err = match app.downstream.oneshot(n).await {
        Ok(body) => {
            bump(&STATS.answered_ok);
            return body.into_response();
        }
        Err(e) => e,
    };
    match rejection(&*err) {
        Some(Rejection::CircuitOpen(_)) => bump(&STATS.circuit_open),
        Some(Rejection::BulkheadFull(_)) => bump(&STATS.bulkhead_full),
        Some(_) => bump(&STATS.rate_limited),
        None if err.downcast_ref::<Elapsed>().is_some() => {
            let took = TokioClock::new().now().saturating_duration_since(started);
            bump(if took >= app.settings.total_timeout {
                &STATS.total_timeout
            } else {
                &STATS.attempt_timeout
            });
        }
        None => {
            bump(&STATS.downstream_failed);
            return (StatusCode::BAD_GATEWAY, "the downstream failed\n").into_response();
        }
    }
    // 503 + Retry-After, 503, 504: bulwark's answers.
    ErrorResponse(err).into_response()
}

/// The answer to a rejection of the layers around `/price` (the limiter): bulwark's, counted.
async fn inbound_rejected(err: BoxError) -> Response {
    if matches!(rejection(&*err), Some(Rejection::RateLimited(_))) {
        bump(&STATS.rate_limited);
    }
    error_response(&*err)
}

/// The limiter's key: the client's address (connections come through
/// `into_make_service_with_connect_info`).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `POST /downstream/{behaviour}`: the downstream behaves so from now on (`script`: as the
/// fault script says again).
async fn set_downstream(Path(what): Path<String>) -> Response {
    let n = match what.as_str() {
        "script" => 0,
        other => match Behaviour::parse(other) {
            Some(b) => b as u8 + 1,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    "want one of ok, fail, stall, slow, script\n",
                )
                    .into_response();
            }
        },
    };
    OVERRIDE.store(n, Ordering::Relaxed);
    format!("downstream: {what}\n").into_response()
}

/// This process's resident set size in KiB (VmRSS in /proc/self/status), if readable.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /stats`: one `key value` per line.
async fn stats<D: Downstream>(
    State(app): State<App<D>>,
    ConnectInfo(you): ConnectInfo<SocketAddr>,
) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let s = app.settings;
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k} {v}");
    };
    line("uptime_ms", &since_start().as_millis());
    line("faults", &app.script.render());
    line("behaviour", &behaviour_now(&app.script).name());
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
    line("downstream.calls", &started);
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
    line(
        "breaker.consecutive_failures",
        &app.breaker.metrics().consecutive_failures,
    );
    line("breaker.successes", &t.successes);
    line("breaker.failures", &t.failures);
    line("breaker.rejected", &t.rejected);
    line("limiter.tokens_for_you", &app.limiter.available(&you.ip()));
    line("limiter.lossy_evictions", &app.limiter.lossy_evictions());
    let m = app.bulkhead.metrics();
    line("bulkhead.in_use", &m.in_use);
    line("bulkhead.capacity", &s.bulkhead);
    line("bulkhead.rejected", &app.bulkhead.totals().rejected);
    if let Some(kib) = rss_kib() {
        line("rss_kib", &kib);
    }
    out
}

fn router<D: Downstream>(app: App<D>) -> Router {
    let inbound = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(inbound_rejected))
        .keyed_rate_limiter(Arc::clone(&app.limiter), client_ip);
    Router::new()
        .route("/price", get(price::<D>).layer(inbound))
        .route("/stats", get(stats::<D>))
        .route("/downstream/{behaviour}", post(set_downstream))
        .with_state(app)
}

// ===== main =====

struct Options {
    port: u16,
    script: Script,
    run_for: Option<Duration>,
    waits: Waits,
}

const USAGE: &str =
    "usage: axum_server [--port N] [--faults SCRIPT] [--for SECONDS] [--waits breaker|all|nothing]
       serves on 127.0.0.1 (port 3000 by default) until Ctrl-C or until --for has passed";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        port: 3000,
        script: Script::default(),
        run_for: None,
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
                let d = parse_duration(value()?)?;
                if d > Duration::from_secs(3600) || d.is_zero() {
                    return Err("--for: between 1 ms and 3600 s".into());
                }
                opts.run_for = Some(d);
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

/// Ctrl-C, or `--for` passing, whichever comes first.
async fn shutdown(run_for: Option<Duration>) {
    let limit = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("axum_server: Ctrl-C, exiting"),
        () = limit => eprintln!("axum_server: --for has passed, exiting"),
    }
}

async fn serve(opts: Options) -> std::io::Result<()> {
    let settings = Settings {
        waits: opts.waits,
        ..SETTINGS
    };
    let app = build(settings, opts.script);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    // The first line on stdout, for whoever started us (stdout is line-buffered).
    println!("listening on {}", listener.local_addr()?);
    eprintln!(
        "axum_server: faults {:?}, {}; {settings:?}",
        app.script.render(),
        match opts.run_for {
            Some(d) => format!("exiting after {d:?}"),
            None => "Ctrl-C to stop".into(),
        }
    );
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown(opts.run_for))
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    since_start(); // every time in the program counts from here
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    use axum::body::Body;

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
    fn flags() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let o = parse_args(&args("--port 0 --faults 1s:fail --for 2 --waits nothing")).unwrap();
        assert_eq!(
            (o.port, o.run_for, o.waits),
            (0, Some(Duration::from_secs(2)), Waits::Nothing)
        );
        let o = parse_args(&[]).unwrap();
        assert_eq!((o.port, o.run_for), (3000, None));
        assert!(parse_args(&args("--for 3601")).is_err());
        assert!(parse_args(&args("--port x")).is_err());
    }

    async fn status(app: &Router, req: Request) -> (u16, Option<String>) {
        let res = app.clone().oneshot(req).await.unwrap();
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), retry_after)
    }

    fn get_price() -> Request {
        Request::get("/price").body(Body::empty()).unwrap()
    }

    /// The routes on paused time, through the router (no network): the downstream fails,
    /// the breaker opens after 4 failed attempts (2 requests of 2 attempts), and the third
    /// request is answered at once with 503 and the open time; the limiter sheds a burst.
    #[tokio::test(start_paused = true)]
    async fn the_layers_answer_as_the_settings_say() {
        let exact = Settings {
            jitter: Jitter::None,
            ..SETTINGS
        };
        let app = build(exact, Script::parse("0s:fail").unwrap());
        let breaker = Arc::clone(&app.breaker);
        let r = router(app);
        let t0 = tokio::time::Instant::now();
        assert_eq!(status(&r, get_price()).await, (502, None));
        assert_eq!(status(&r, get_price()).await, (502, None));
        assert_eq!(breaker.state(), bulwark::circuit_breaker::State::Open);
        let t1 = tokio::time::Instant::now();
        assert_eq!(status(&r, get_price()).await, (503, Some("1".into())));
        assert_eq!(
            t1.elapsed(),
            Duration::ZERO,
            "an open breaker is answered at once"
        );
        // Two requests of two attempts: 5 ms each, 20 ms backoff between.
        assert_eq!(t1 - t0, Duration::from_millis(2 * (5 + 20 + 5)));
        let post = |what: &str| {
            Request::post(format!("/downstream/{what}"))
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(status(&r, post("ok")).await.0, 200);
        assert_eq!(status(&r, post("nonsense")).await.0, 400);
        tokio::time::advance(SETTINGS.open_for).await;
        assert_eq!(status(&r, get_price()).await, (200, None));
        // 25 requests at once: the limiter's burst (20) passes and 5 get 429 + Retry-After;
        // of the 20, the bulkhead (16) runs 16 and sheds 4 with a plain 503.
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..25 {
            let r = r.clone();
            burst.spawn(async move { status(&r, get_price()).await });
        }
        let mut codes = std::collections::BTreeMap::new();
        while let Some(code) = burst.join_next().await {
            *codes.entry(code.unwrap()).or_insert(0) += 1;
        }
        let want = [
            ((200, None), 16),
            ((429, Some("1".into())), 5),
            ((503, None), 4),
        ];
        assert_eq!(codes, want.into_iter().collect());
        OVERRIDE.store(0, Ordering::Relaxed);
    }
}
