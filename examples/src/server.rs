//! The axum server one can poke (`axum_server`): `GET /price` is an ordinary `async fn`
//! handler behind bulwark's tower layers, calling a scripted flaky downstream through a client
//! stack of more layers; `GET /stats` shows the breaker, limiter and bulkhead; `GET /metrics`
//! shows every policy in Prometheus text format; `POST /downstream/..` breaks or heals the
//! downstream. The binary (`src/bin/axum_server.rs`) serves [`router`] on a port; tests call
//! it as a tower service on tokio's paused time.
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
//! Every policy reports to `bulwark_observe::MetricsHooks`: the client stack's breaker,
//! retry and bulkhead under the policy name `downstream`, the total timeout and each attempt
//! through an `ObserveLayer` under the same name, the inbound limiter under `per_client`.
//! `/metrics` renders what the recorder behind the [`PrometheusHandle`] holds.
//!
//! Routes: `GET /price` (protected), `GET /stats` (`key value` lines), `GET /metrics`
//! (Prometheus text), `POST /downstream/{ok,fail,stall,slow}` (the downstream behaves so from
//! now on, whatever the script says) and `POST /downstream/script` (back to the script).
//!
//! # Examples
//!
//! ```
//! use axum::body::Body;
//! use axum::http::Request;
//! use bulwark_examples::server::{Script, Settings, prometheus, router};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let recorder = prometheus().build_recorder();
//! let handle = recorder.handle();
//! // This thread's recorder (a server installs it globally: `install_recorder`).
//! let _local = metrics::set_default_local_recorder(&recorder);
//! let app = router(Settings::DEFAULT, Script::default(), handle);
//! let price = app.clone().oneshot(Request::get("/price").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(price.status(), 200);
//! let scraped = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
//! let text = String::from_utf8(scraped.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert!(text.contains(r#"bulwark_retry_calls_total{name="downstream",kind="successful_without_retry"} 1"#));
//! # }
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, Counters, NoWindow};
use bulwark::pipeline::{Rejection, Waits};
use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::timeout::Elapsed;
use bulwark::{Clock, Instant};
use bulwark_observe::{MetricsHooks, ObserveLayer, Observed, Pattern};
use bulwark_tokio::TokioClock;
use bulwark_tokio::axum::{ErrorResponse, error_response};
use bulwark_tokio::tower::{BoxError, RetryLayer, ServiceBuilderExt, rejection};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::parse_duration;

/// The policy name of the client stack's policies (the `name` label of their series).
///
/// ```
/// use bulwark_examples::server::{DOWNSTREAM, Script, Settings, prometheus, router};
/// use axum::{body::Body, http::Request};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let recorder = prometheus().build_recorder();
/// let _local = metrics::set_default_local_recorder(&recorder);
/// let app = router(Settings::DEFAULT, Script::default(), recorder.handle());
/// app.oneshot(Request::get("/price").body(Body::empty()).unwrap()).await.unwrap();
/// let breaker = format!(r#"bulwark_circuit_breaker_calls_total{{name="{DOWNSTREAM}",outcome="success"}} 1"#);
/// assert!(recorder.handle().render().contains(&breaker));
/// # }
/// ```
pub const DOWNSTREAM: &str = "downstream";
/// The policy name of the inbound per-client rate limiter.
///
/// ```
/// use bulwark_examples::server::{PER_CLIENT, Script, Settings, prometheus, router};
/// use axum::{body::Body, http::Request};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let recorder = prometheus().build_recorder();
/// let _local = metrics::set_default_local_recorder(&recorder);
/// let app = router(Settings::DEFAULT, Script::default(), recorder.handle());
/// app.oneshot(Request::get("/price").body(Body::empty()).unwrap()).await.unwrap();
/// let admitted = format!(r#"bulwark_rate_limiter_calls_total{{name="{PER_CLIENT}",outcome="permitted"}} 1"#);
/// assert!(recorder.handle().render().contains(&admitted));
/// # }
/// ```
pub const PER_CLIENT: &str = "per_client";

type Breaker = CircuitBreaker<TokioClock, NoWindow, (Counters, MetricsHooks)>;
type Hold = Observed<Bulkhead<AtomicSemaphore, TokioClock>, MetricsHooks>;
/// One token bucket per client address; a fixed table of 1024 (the limiter's memory bound).
type PerClient = Observed<KeyedRateLimiter<IpAddr, TokioClock, 1024>, MetricsHooks>;
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

/// The fault script: from each instant (since the server started) on, the downstream
/// behaves so; `ok` before the first step. `ok` answers in 50 ms; `fail` fails after 5 ms;
/// `stall` hangs until the attempt timeout cuts it; `slow` answers in 150 ms (above normal,
/// under the 200 ms attempt timeout). A call keeps the behaviour of the instant it started.
///
/// ```
/// use bulwark_examples::server::Script;
/// let s = Script::parse("5s:fail, 15s:stall,22.5s:ok").unwrap();
/// assert_eq!(s.render(), "5000ms:fail,15000ms:stall,22500ms:ok");
/// assert!(Script::parse("5s:broken").is_err());
/// assert!(Script::parse("5s:fail,5s:ok").is_err()); // times must increase
/// assert_eq!(Script::default().render(), "");
/// ```
#[derive(Debug, Default)]
pub struct Script {
    steps: Vec<(Duration, Behaviour)>,
}

impl Script {
    /// Reads `TIME:BEHAVIOUR,...` (times increasing; behaviours `ok`, `fail`, `stall`, `slow`).
    ///
    /// # Errors
    ///
    /// A message naming the step that is not of that form.
    ///
    /// ```
    /// use bulwark_examples::server::Script;
    /// assert_eq!(Script::parse("0s:fail").unwrap().render(), "0ms:fail");
    /// assert!(Script::parse("fail").unwrap_err().contains("TIME:BEHAVIOUR"));
    /// ```
    pub fn parse(text: &str) -> Result<Script, String> {
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

    /// The script, each time in milliseconds.
    ///
    /// ```
    /// use bulwark_examples::server::Script;
    /// assert_eq!(Script::parse("1.5s:slow,2s:ok").unwrap().render(), "1500ms:slow,2000ms:ok");
    /// ```
    pub fn render(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(at, b)| format!("{}ms:{}", at.as_millis(), b.name()))
            .collect();
        steps.join(",")
    }
}

/// What the server counts: downstream calls and outcomes, and the answer of each request.
#[derive(Default)]
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

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the downstream and the routes share: when the server started (the script is timed
/// from it), the script, the override and the counts.
struct World {
    start: Instant,
    script: Script,
    /// The behaviour set by `POST /downstream/{behaviour}`: 0 = follow the script, else
    /// `Behaviour::ALL[n - 1]`.
    forced: AtomicU8,
    stats: Stats,
}

impl World {
    fn since_start(&self) -> Duration {
        TokioClock::new()
            .now()
            .saturating_duration_since(self.start)
    }

    /// What the downstream does now: the override, or the script.
    fn behaviour_now(&self) -> Behaviour {
        match self.forced.load(Ordering::Relaxed) {
            0 => self.script.at(self.since_start()),
            n => Behaviour::ALL[usize::from(n - 1) % Behaviour::ALL.len()],
        }
    }
}

/// Counts a downstream call as cut unless it finished.
struct Unfinished<'a>(Option<&'a World>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(world) = self.0 {
            bump(&world.stats.cut);
        }
    }
}

/// The downstream: behaves as the override or the script says at the instant the call
/// starts.
async fn downstream(n: u32, world: Arc<World>) -> Result<String, DownstreamError> {
    let behaviour = world.behaviour_now();
    bump(&world.stats.started[behaviour as usize]);
    let mut unfinished = Unfinished(Some(&world));
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
    unfinished.0 = None;
    bump(match outcome {
        Ok(_) => &world.stats.succeeded,
        Err(_) => &world.stats.failed,
    });
    outcome
}

// ===== the server =====

/// The layers' settings: [`Settings::DEFAULT`] is sized for a load of about 100 requests
/// per second, with room for bursts of twice that before the limiter sheds.
///
/// ```
/// use bulwark::retry::Jitter;
/// use bulwark_examples::server::Settings;
/// // Exact timings for a test on paused time: no jitter in the retry's backoff.
/// let exact = Settings { jitter: Jitter::None, ..Settings::DEFAULT };
/// assert_eq!(exact.consecutive_failures, 4);
/// ```
#[derive(Copy, Clone, Debug)]
pub struct Settings {
    /// The breaker opens after this many consecutive failed attempts.
    pub consecutive_failures: u32,
    /// For this long.
    pub open_for: Duration,
    /// The inbound limiter's rate per client address.
    pub limiter_per_second: u32,
    /// Its burst.
    pub limiter_burst: u32,
    /// The bulkhead's capacity (calls to the downstream at once).
    pub bulkhead: usize,
    /// The retry's attempts (the first call included).
    pub max_attempts: u32,
    /// The retry's constant backoff.
    pub backoff: Duration,
    /// The jitter on that backoff.
    pub jitter: Jitter,
    /// The timeout of each attempt.
    pub attempt_timeout: Duration,
    /// The timeout of the whole call, retries included.
    pub total_timeout: Duration,
    /// Which rejections the retry waits out.
    pub waits: Waits,
}

impl Settings {
    /// What `axum_server` runs with unless told otherwise.
    ///
    /// ```
    /// use bulwark_examples::server::Settings;
    /// assert_eq!(Settings::DEFAULT.open_for, std::time::Duration::from_secs(1));
    /// ```
    pub const DEFAULT: Settings = Settings {
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
}

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
    world: Arc<World>,
    calls: Arc<AtomicU32>,
    metrics: PrometheusHandle,
}

fn build(settings: Settings, script: Script, metrics: PrometheusHandle) -> App<impl Downstream> {
    let clock = TokioClock::new();
    let breaker = Arc::new(
        CircuitBreaker::new(
            BreakerConfig::new()
                .consecutive_failures(settings.consecutive_failures)
                .open_for(settings.open_for),
            clock,
        )
        .expect("a valid breaker configuration")
        .with_events((Counters::new(), MetricsHooks::new(DOWNSTREAM))),
    );
    // The state gauge reads right before the first change of state.
    breaker.events().1.breaker_state(breaker.state());
    let limiter = Arc::new(Observed::new(
        Pattern::RateLimiter,
        KeyedRateLimiter::new(
            LimiterConfig::per_second(settings.limiter_per_second).burst(settings.limiter_burst),
            clock,
        )
        .expect("a valid limiter configuration"),
        MetricsHooks::new(PER_CLIENT),
    ));
    let bulkhead = Arc::new(Observed::new(
        Pattern::Bulkhead,
        Bulkhead::new(BulkheadConfig::new(settings.bulkhead), clock)
            .expect("a valid bulkhead configuration"),
        MetricsHooks::new(DOWNSTREAM),
    ));
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(settings.max_attempts)
            .backoff(Backoff::constant(settings.backoff))
            .jitter(settings.jitter),
        clock,
    )
    .expect("a valid retry configuration")
    .with_hooks(MetricsHooks::new(DOWNSTREAM));
    let world = Arc::new(World {
        start: clock.now(),
        script,
        forced: AtomicU8::new(0),
        stats: Stats::default(),
    });
    let for_calls = Arc::clone(&world);
    // Calls (the total timeout's) and attempts (the attempt timeout's), timed and counted.
    let observed = Arc::new(MetricsHooks::new(DOWNSTREAM));
    // The client side: each layer holds its state through an `Arc`; nothing is leaked.
    let downstream = ServiceBuilder::new()
        .layer(ObserveLayer::shared(
            Pattern::Timeout,
            Arc::clone(&observed),
        ))
        .bulwark_timeout(settings.total_timeout)
        .layer(RetryLayer::with_waits(retry, settings.waits))
        .circuit_breaker(Arc::clone(&breaker))
        .bulkhead(Arc::clone(&bulkhead))
        .layer(ObserveLayer::shared(Pattern::Attempt, observed))
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
        world,
        calls: Arc::new(AtomicU32::new(0)),
        metrics,
    }
}

/// `GET /price`: an ordinary `async fn` handler. The layers around the route did the rate
/// limiting; the downstream call goes through the client's layers.
async fn price<D: Downstream>(State(app): State<App<D>>) -> Response {
    let n = app.calls.fetch_add(1, Ordering::Relaxed);
    let started = TokioClock::new().now();
    let stats = &app.world.stats;
    let err = match app.downstream.oneshot(n).await {
        Ok(body) => {
            bump(&stats.answered_ok);
            return body.into_response();
        }
        Err(e) => e,
    };
    match rejection(&*err) {
        Some(Rejection::CircuitOpen(_)) => bump(&stats.circuit_open),
        Some(Rejection::BulkheadFull(_)) => bump(&stats.bulkhead_full),
        Some(_) => bump(&stats.rate_limited),
        None if err.downcast_ref::<Elapsed>().is_some() => {
            let took = TokioClock::new().now().saturating_duration_since(started);
            bump(if took >= app.settings.total_timeout {
                &stats.total_timeout
            } else {
                &stats.attempt_timeout
            });
        }
        None => {
            bump(&stats.downstream_failed);
            return (StatusCode::BAD_GATEWAY, "the downstream failed\n").into_response();
        }
    }
    // 503 + Retry-After, 503, 504: bulwark's answers.
    ErrorResponse(err).into_response()
}

/// The answer to a rejection of the layers around `/price` (the limiter): bulwark's, counted.
async fn inbound_rejected(world: Arc<World>, err: BoxError) -> Response {
    if matches!(rejection(&*err), Some(Rejection::RateLimited(_))) {
        bump(&world.stats.rate_limited);
    }
    error_response(&*err)
}

/// The limiter's key: the client's address (connections come through
/// `into_make_service_with_connect_info`; without it, as in a test, one unspecified address).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `POST /downstream/{behaviour}`: the downstream behaves so from now on (`script`: as the
/// fault script says again).
async fn set_downstream<D: Downstream>(
    State(app): State<App<D>>,
    Path(what): Path<String>,
) -> Response {
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
    app.world.forced.store(n, Ordering::Relaxed);
    format!("downstream: {what}\n").into_response()
}

/// This process's resident set size in KiB (VmRSS in /proc/self/status), if readable.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /stats`: one `key value` per line.
async fn stats<D: Downstream>(State(app): State<App<D>>, req: Request) -> String {
    let you = client_ip(&req);
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let s = app.settings;
    let world = &app.world;
    let st = &world.stats;
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k} {v}");
    };
    line("uptime_ms", &world.since_start().as_millis());
    line("faults", &world.script.render());
    line("behaviour", &world.behaviour_now().name());
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
    let started: u64 = st.started.iter().map(get).sum();
    line("downstream.calls", &started);
    for b in Behaviour::ALL {
        line(
            &format!("downstream.started.{}", b.name()),
            &get(&st.started[b as usize]),
        );
    }
    line("downstream.succeeded", &get(&st.succeeded));
    line("downstream.failed", &get(&st.failed));
    line("downstream.cut", &get(&st.cut));
    line("answered.ok", &get(&st.answered_ok));
    line("answered.circuit_open", &get(&st.circuit_open));
    line("answered.rate_limited", &get(&st.rate_limited));
    line("answered.bulkhead_full", &get(&st.bulkhead_full));
    line("answered.attempt_timeout", &get(&st.attempt_timeout));
    line("answered.total_timeout", &get(&st.total_timeout));
    line("answered.downstream_failed", &get(&st.downstream_failed));
    let t = app.breaker.events().0.snapshot();
    line("breaker.state", &format!("{:?}", app.breaker.state()));
    line(
        "breaker.consecutive_failures",
        &app.breaker.metrics().consecutive_failures,
    );
    line("breaker.successes", &t.successes);
    line("breaker.failures", &t.failures);
    line("breaker.rejected", &t.rejected);
    let table = app.limiter.gate();
    line("limiter.tokens_for_you", &table.available(&you));
    line("limiter.lossy_evictions", &table.lossy_evictions());
    let bulkhead = app.bulkhead.gate();
    line("bulkhead.in_use", &bulkhead.metrics().in_use);
    line("bulkhead.capacity", &s.bulkhead);
    line("bulkhead.rejected", &bulkhead.totals().rejected);
    if let Some(kib) = rss_kib() {
        line("rss_kib", &kib);
    }
    out
}

/// `GET /metrics`: every series of the recorder, in Prometheus text format.
async fn metrics<D: Downstream>(State(app): State<App<D>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

fn routes<D: Downstream>(app: App<D>) -> Router {
    let world = Arc::clone(&app.world);
    let inbound = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |err: BoxError| {
            inbound_rejected(Arc::clone(&world), err)
        }))
        .keyed_rate_limiter(Arc::clone(&app.limiter), client_ip);
    Router::new()
        .route("/price", get(price::<D>).layer(inbound))
        .route("/stats", get(stats::<D>))
        .route("/metrics", get(metrics::<D>))
        .route("/downstream/{behaviour}", post(set_downstream::<D>))
        .with_state(app)
}

/// The exporter's builder as the server uses it: every histogram with fixed buckets (the
/// exporter's default, a summary over a rolling window, keeps samples for a minute, so its
/// memory follows the request rate), seconds for the durations and whole attempts for
/// `bulwark_retry_call_attempts`.
///
/// ```
/// use bulwark_examples::server::prometheus;
/// let recorder = prometheus().build_recorder();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::histogram!("bulwark_call_duration_seconds").record(0.03);
/// });
/// let text = recorder.handle().render();
/// assert!(text.contains(r#"bulwark_call_duration_seconds_bucket{le="0.05"} 1"#));
/// assert!(text.contains(r#"bulwark_call_duration_seconds_bucket{le="0.025"} 0"#));
/// ```
pub fn prometheus() -> PrometheusBuilder {
    const SECONDS: [f64; 12] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    const ATTEMPTS: [f64; 5] = [1.0, 2.0, 3.0, 5.0, 10.0];
    PrometheusBuilder::new()
        .set_buckets(&SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("bulwark_retry_call_attempts".into()),
                &ATTEMPTS,
            )
        })
        .expect("the bucket lists are not empty")
}

/// The server's routes, its policies built from `settings`, its downstream following
/// `script` (timed from now, on the tokio clock), its `/metrics` rendered by `metrics` (the
/// handle of the recorder the caller installed: `MetricsHooks` register their series with
/// the recorder current when a series is first touched). Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the limiter keys by client
/// address; called directly as a tower service, every request shares one key.
///
/// ```
/// use axum::body::Body;
/// use axum::http::Request;
/// use bulwark_examples::server::{Script, Settings, router};
/// use metrics_exporter_prometheus::PrometheusBuilder;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let handle = PrometheusBuilder::new().build_recorder().handle();
/// let app = router(Settings::DEFAULT, Script::parse("0s:fail").unwrap(), handle);
/// let post = |what: &str| Request::post(format!("/downstream/{what}")).body(Body::empty()).unwrap();
/// let get = || Request::get("/price").body(Body::empty()).unwrap();
/// assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 502); // fails as scripted
/// assert_eq!(app.clone().oneshot(post("ok")).await.unwrap().status(), 200);
/// assert_eq!(app.oneshot(get()).await.unwrap().status(), 200); // healed
/// # }
/// ```
pub fn router(settings: Settings, script: Script, metrics: PrometheusHandle) -> Router {
    routes(build(settings, script, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use metrics_exporter_prometheus::PrometheusBuilder;

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
            ..Settings::DEFAULT
        };
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let app = build(exact, Script::parse("0s:fail").unwrap(), handle);
        let breaker = Arc::clone(&app.breaker);
        let r = routes(app);
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
        tokio::time::advance(Settings::DEFAULT.open_for).await;
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
    }
}
