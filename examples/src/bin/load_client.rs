//! A load client for `axum_server`'s serve mode: a paced open-loop load on one route over
//! HTTP/1.1 keep-alive connections (hyper's client), loopback only, bounded in time, in
//! requests and in requests in flight; then a report.
//!
//! ```text
//! --server HOST:PORT    127.0.0.1 or localhost only (anything else is refused)
//! --path P              the route (default /price)
//! --rate SCRIPT         requests per second: "100", or steps on the SERVER's clock (time
//!                       since it started, read from /stats), e.g. "0s:100,30s:400,34s:100"
//! --for SECONDS         how long to offer load (at most 600 s)
//! --max-in-flight N     a request due while N are in flight is skipped and counted (default 128)
//! --max-requests N      stop offering after N requests (default 100000, at most 1000000)
//! --timeout SECONDS     per request (default 5; a request cut by it is a transport error)
//! --server-pid PID      sample the server's VmRSS (/proc/PID/status) every second
//! --warmup SECONDS      the RSS baseline is the first sample at or after this server time (default 5)
//! --json PATH           also write the summary as JSON
//! ```
//!
//! Open loop: requests are sent on the schedule whatever the answers; the schedule never
//! waits for the server. The report: status mix (and transport errors), p50/p99/max latency
//! overall, per status and per phase (a phase is a stretch of constant downstream behaviour
//! and rate; a request belongs to the phase it was sent in), downstream calls (from the
//! server's /stats) against requests offered, the server's RSS over time, and the time from
//! each recovery of the downstream (a step to `ok` after `fail` or `stall`) to the first
//! successful answer.
//!
//! `cargo run -p bulwark-examples --bin load_client -- --server 127.0.0.1:PORT --rate 100 --for 10`

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_examples::parse_duration;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

// ===== options =====

#[derive(Debug)]
struct Options {
    server: SocketAddr,
    path: String,
    rate: Steps<f64>,
    run_for: Duration,
    max_in_flight: usize,
    max_requests: u64,
    timeout: Duration,
    server_pid: Option<u32>,
    warmup: Duration,
    json: Option<std::path::PathBuf>,
}

const USAGE: &str = "usage: load_client --server 127.0.0.1:PORT --rate SCRIPT --for SECONDS \
[--path /price] [--max-in-flight N] [--max-requests N] [--timeout SECONDS] [--server-pid PID] \
[--warmup SECONDS] [--json PATH]";

/// Values that change at instants: `(from, value)`, increasing; the first value also holds
/// before its instant.
#[derive(Clone, Debug, Default)]
struct Steps<T> {
    steps: Vec<(Duration, T)>,
}

impl<T: Clone> Steps<T> {
    fn at(&self, t: Duration) -> Option<T> {
        let first = self.steps.first()?;
        let step = self.steps.iter().rev().find(|(at, _)| *at <= t);
        Some(step.unwrap_or(first).1.clone())
    }

    fn next_change_after(&self, t: Duration) -> Option<Duration> {
        self.steps.iter().map(|&(at, _)| at).find(|&at| at > t)
    }
}

fn parse_steps<T>(
    text: &str,
    value: impl Fn(&str) -> Result<T, String>,
) -> Result<Steps<T>, String> {
    let mut steps: Vec<(Duration, T)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (at, v) = match item.split_once(':') {
            Some((at, v)) => (parse_duration(at)?, v),
            None if steps.is_empty() => (Duration::ZERO, item),
            None => return Err(format!("step {item:?}: want TIME:VALUE")),
        };
        if steps.last().is_some_and(|&(prev, _)| prev >= at) {
            return Err(format!("step {item:?}: times must increase"));
        }
        steps.push((at, value(v.trim())?));
    }
    if steps.is_empty() {
        return Err(format!("{text:?}: no steps"));
    }
    Ok(Steps { steps })
}

/// `127.0.0.1:PORT` or `localhost:PORT` (an `http://` prefix and a trailing `/` are allowed);
/// every other host is refused: this client talks to loopback only.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let rest = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("--server {s:?}: want 127.0.0.1:PORT"))?;
    if host != "127.0.0.1" && host != "localhost" {
        return Err(format!(
            "--server {s:?}: refused, this load client only talks to 127.0.0.1 / localhost"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--server {s:?}: bad port"))?;
    if port == 0 {
        return Err(format!("--server {s:?}: port 0"));
    }
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut server = None;
    let mut opts = Options {
        server: SocketAddr::from(([127, 0, 0, 1], 0)),
        path: "/price".into(),
        rate: Steps::default(),
        run_for: Duration::ZERO,
        max_in_flight: 128,
        max_requests: 100_000,
        timeout: Duration::from_secs(5),
        server_pid: None,
        warmup: Duration::from_secs(5),
        json: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: &str, max: u64| match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("{flag} {v:?}: a number from 1 to {max}")),
        };
        match flag.as_str() {
            "--server" => server = Some(parse_server(value()?)?),
            "--path" => {
                let p = value()?;
                if !p.starts_with('/') || p.contains(char::is_whitespace) {
                    return Err(format!("--path {p:?}: a path such as /price"));
                }
                opts.path = p.clone();
            }
            "--rate" => {
                opts.rate = parse_steps(value()?, |v| match v.parse::<f64>() {
                    Ok(r) if r > 0.0 && r <= 5000.0 => Ok(r),
                    _ => Err(format!(
                        "rate {v:?}: requests per second, above 0 and at most 5000"
                    )),
                })?
            }
            "--for" => opts.run_for = parse_duration(value()?)?,
            "--max-in-flight" => opts.max_in_flight = number(value()?, 1024)? as usize,
            "--max-requests" => opts.max_requests = number(value()?, 1_000_000)?,
            "--timeout" => opts.timeout = parse_duration(value()?)?,
            "--server-pid" => opts.server_pid = Some(number(value()?, u64::from(u32::MAX))? as u32),
            "--warmup" => opts.warmup = parse_duration(value()?)?,
            "--json" => opts.json = Some(value()?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    opts.server = server.ok_or("--server is required")?;
    if opts.rate.steps.is_empty() {
        return Err("--rate is required".into());
    }
    if opts.run_for.is_zero() || opts.run_for > Duration::from_secs(600) {
        return Err("--for: above 0 and at most 600 s".into());
    }
    if opts.timeout.is_zero() || opts.timeout > Duration::from_secs(60) {
        return Err("--timeout: above 0 and at most 60 s".into());
    }
    Ok(opts)
}

// ===== the HTTP client =====

type Sender = SendRequest<Empty<Bytes>>;

/// Idle keep-alive connections, used in turn (first in, first out) so that every one is
/// exercised; at most one per request in flight.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<VecDeque<Sender>>,
    opened: std::sync::atomic::AtomicU64,
}

impl Pool {
    async fn connect(&self) -> Result<Sender, &'static str> {
        let stream = TcpStream::connect(self.addr).await.map_err(|_| "connect")?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "handshake")?;
        // The connection task ends when the sender is dropped or the server closes.
        tokio::spawn(conn);
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(sender)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(s) = idle.pop_front() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    /// One GET on a pooled connection (or a new one): the status code.
    async fn get(&self, path: &str, body: Option<&mut String>) -> Result<u16, &'static str> {
        let reused = self.take_idle();
        let was_reused = reused.is_some();
        let mut sender = match reused {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut out = self.send(&mut sender, path).await;
        if out.is_err() && was_reused {
            // The server may close an idle keep-alive connection just as we reuse it: the
            // request never reached the handler. Try once on a fresh connection.
            sender = self.connect().await?;
            out = self.send(&mut sender, path).await;
        }
        let (status, text) = out?;
        if let Some(b) = body {
            *b = text;
        }
        self.idle.lock().unwrap().push_back(sender);
        Ok(status)
    }

    async fn send(&self, sender: &mut Sender, path: &str) -> Result<(u16, String), &'static str> {
        sender.ready().await.map_err(|_| "send")?;
        let req = Request::get(path)
            .header(header::HOST, self.addr.to_string())
            .body(Empty::new())
            .map_err(|_| "request")?;
        let res = sender.send_request(req).await.map_err(|_| "send")?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.map_err(|_| "body")?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }
}

/// `GET /stats` parsed: `key value` per line.
async fn server_stats(pool: &Pool) -> Result<BTreeMap<String, String>, String> {
    let mut body = String::new();
    let status = pool.get("/stats", Some(&mut body)).await?;
    if status != 200 {
        return Err(format!("/stats answered {status}"));
    }
    Ok(body
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn stat_u64(stats: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    stats.get(key)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ===== the load =====

#[derive(Copy, Clone, Debug)]
enum Outcome {
    Status(u16),
    Transport(&'static str),
    /// Due while the in-flight cap was reached: not sent.
    Skipped,
}

#[derive(Copy, Clone, Debug)]
struct Record {
    /// When it was due, on the server's clock.
    sent: Duration,
    latency: Duration,
    outcome: Outcome,
}

/// A sample of the server taken every second: on the server's clock.
#[derive(Copy, Clone, Debug, Default)]
struct Sample {
    at: Duration,
    calls: Option<u64>,
    rss_kib: Option<u64>,
}

struct Run {
    records: Vec<Record>,
    samples: Vec<Sample>,
    first: BTreeMap<String, String>,
    last: BTreeMap<String, String>,
    connections: u64,
    elapsed: Duration,
}

async fn run(opts: &Options) -> Result<Run, String> {
    let pool = Arc::new(Pool {
        addr: opts.server,
        idle: Mutex::new(VecDeque::new()),
        opened: Default::default(),
    });
    // A second pool for /stats, so that sampling never takes a load connection.
    let stats_pool = Arc::new(Pool {
        addr: opts.server,
        idle: Mutex::new(VecDeque::new()),
        opened: Default::default(),
    });

    // Where the server's clock starts, on ours: uptime read at the middle of the exchange.
    let asked = Instant::now();
    let first = server_stats(&stats_pool)
        .await
        .map_err(|e| format!("cannot read {}/stats: {e}", opts.server))?;
    let answered = Instant::now();
    let uptime = Duration::from_millis(stat_u64(&first, "uptime_ms").ok_or("no uptime_ms")?);
    let origin = (asked + (answered - asked) / 2)
        .checked_sub(uptime)
        .ok_or("uptime beyond this process's clock")?;
    let server_time = move |t: Instant| t.saturating_duration_since(origin);

    // Every second: the server's downstream calls and RSS.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (stop, stats_pool, pid) = (stop.clone(), stats_pool.clone(), opts.server_pid);
        let limit = opts.run_for + opts.timeout + Duration::from_secs(5);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let begun = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && begun.elapsed() < limit {
                tick.tick().await;
                let calls =
                    match tokio::time::timeout(Duration::from_secs(2), server_stats(&stats_pool))
                        .await
                    {
                        Ok(Ok(s)) => stat_u64(&s, "downstream.calls"),
                        _ => None,
                    };
                samples.push(Sample {
                    at: server_time(Instant::now()),
                    calls,
                    rss_kib: pid.and_then(rss_kib),
                });
            }
            samples
        })
    };

    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let end = start + opts.run_for;
    let mut due = start;
    let mut offered = 0u64;
    while due < end && offered < opts.max_requests {
        tokio::time::sleep_until(due).await;
        offered += 1;
        let sent = server_time(due);
        let rate = opts.rate.at(sent).unwrap_or(1.0);
        let next = due + Duration::from_secs_f64(1.0 / rate);
        // A rate step between now and the next send starts the new rate on time.
        due = match opts.rate.next_change_after(sent) {
            Some(change) if origin + change < next => origin + change,
            _ => next,
        };
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= opts.max_in_flight {
            records.lock().unwrap().push(Record {
                sent,
                latency: Duration::ZERO,
                outcome: Outcome::Skipped,
            });
            continue;
        }
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (pool, records, in_flight) = (pool.clone(), records.clone(), in_flight.clone());
        let (path, timeout) = (opts.path.clone(), opts.timeout);
        tasks.spawn(async move {
            let began = Instant::now();
            let outcome = match tokio::time::timeout(timeout, pool.get(&path, None)).await {
                Ok(Ok(status)) => Outcome::Status(status),
                Ok(Err(kind)) => Outcome::Transport(kind),
                Err(_) => Outcome::Transport("timeout"),
            };
            let latency = began.elapsed();
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            records.lock().unwrap().push(Record {
                sent,
                latency,
                outcome,
            });
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    // Every request ends by its timeout; wait for them (bounded).
    let _ = tokio::time::timeout(opts.timeout + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let elapsed = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut samples = sampler.await.map_err(|e| format!("sampler: {e}"))?;
    let last = server_stats(&stats_pool)
        .await
        .map_err(|e| format!("cannot read /stats at the end: {e}"))?;
    samples.push(Sample {
        at: server_time(Instant::now()),
        calls: stat_u64(&last, "downstream.calls"),
        rss_kib: opts.server_pid.and_then(rss_kib),
    });
    let mut records = std::mem::take(&mut *records.lock().unwrap());
    records.sort_by_key(|r| r.sent);
    Ok(Run {
        records,
        samples,
        first,
        last,
        connections: pool.opened.load(std::sync::atomic::Ordering::Relaxed),
        elapsed,
    })
}

// ===== the report =====

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Counts and latencies of a set of records.
#[derive(Default)]
struct Tally {
    offered: u64,
    skipped: u64,
    transport: BTreeMap<&'static str, u64>,
    status: BTreeMap<u16, u64>,
    latencies: Vec<Duration>,
    by_status: BTreeMap<u16, Vec<Duration>>,
}

impl Tally {
    fn add(&mut self, r: &Record) {
        self.offered += 1;
        match r.outcome {
            Outcome::Skipped => self.skipped += 1,
            Outcome::Transport(kind) => *self.transport.entry(kind).or_default() += 1,
            Outcome::Status(s) => {
                *self.status.entry(s).or_default() += 1;
                self.latencies.push(r.latency);
                self.by_status.entry(s).or_default().push(r.latency);
            }
        }
    }

    fn finish(&mut self) {
        self.latencies.sort();
        self.by_status.values_mut().for_each(|v| v.sort());
    }

    fn latency_json(v: &[Duration]) -> Value {
        json!({
            "n": v.len(),
            "p50_ms": ms(percentile(v, 50.0)),
            "p99_ms": ms(percentile(v, 99.0)),
            "max_ms": ms(v.last().copied().unwrap_or_default()),
            "over_10ms": v.iter().filter(|&&d| d > Duration::from_millis(10)).count(),
        })
    }

    fn json(&self) -> Value {
        let status: serde_json::Map<String, Value> = self
            .status
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        let by_status: serde_json::Map<String, Value> = self
            .by_status
            .iter()
            .map(|(s, v)| (s.to_string(), Self::latency_json(v)))
            .collect();
        json!({
            "offered": self.offered,
            "skipped_in_flight_cap": self.skipped,
            "transport_errors": self.transport.values().sum::<u64>(),
            "transport_error_kinds": self.transport,
            "status": status,
            "latency": Self::latency_json(&self.latencies),
            "latency_by_status": by_status,
        })
    }

    fn status_mix(&self) -> String {
        let mut s = String::new();
        for (code, n) in &self.status {
            let _ = write!(s, "{code}:{n} ");
        }
        for (kind, n) in &self.transport {
            let _ = write!(s, "ERR-{kind}:{n} ");
        }
        if self.skipped > 0 {
            let _ = write!(s, "skipped:{} ", self.skipped);
        }
        s.trim_end().to_string()
    }
}

/// Downstream calls made by server time `t`, interpolated between the samples.
fn calls_at(samples: &[Sample], t: Duration) -> Option<f64> {
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.at.as_secs_f64(), s.calls? as f64)))
        .collect();
    let t = t.as_secs_f64();
    let (first, last) = (pts.first()?, pts.last()?);
    if t <= first.0 {
        return Some(first.1);
    }
    if t >= last.0 {
        return Some(last.1);
    }
    let i = pts.iter().position(|p| p.0 >= t)?;
    let (a, b) = (pts[i - 1], pts[i]);
    Some(a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0).max(1e-9))
}

fn report(opts: &Options, run: &Run) -> (String, Value) {
    let faults: Steps<String> = run
        .first
        .get("faults")
        .and_then(|f| parse_steps(&format!("0ms:ok,{f}"), |v| Ok(v.to_string())).ok())
        .unwrap_or_else(|| Steps {
            steps: vec![(Duration::ZERO, "ok".to_string())],
        });
    let first_sent = run.records.first().map_or(Duration::ZERO, |r| r.sent);
    let last_sent = run.records.last().map_or(Duration::ZERO, |r| r.sent);

    // Phases: cut at every fault step and rate step within the run.
    let mut cuts: Vec<Duration> = faults
        .steps
        .iter()
        .map(|s| s.0)
        .chain(opts.rate.steps.iter().map(|s| s.0))
        .filter(|&t| t > first_sent && t <= last_sent)
        .collect();
    cuts.push(first_sent);
    cuts.push(last_sent + Duration::from_nanos(1));
    cuts.sort();
    cuts.dedup();
    let mut phases = Vec::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:>6} {:>8} {:>8} {:>8} {:>9}  status mix",
        "phase (server time)", "sent", "p50 ms", "p99 ms", "max ms", "ds calls"
    );
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        let mut t = Tally::default();
        run.records
            .iter()
            .filter(|r| r.sent >= from && r.sent < to)
            .for_each(|r| t.add(r));
        t.finish();
        let behaviour = faults.at(from).unwrap_or_default();
        let rate = opts.rate.at(from).unwrap_or_default();
        let calls = calls_at(&run.samples, to)
            .zip(calls_at(&run.samples, from))
            .map(|(b, a)| (b - a).round());
        let label = format!(
            "{:>5.1}-{:<5.1}s {behaviour:<5}",
            from.as_secs_f64(),
            to.as_secs_f64()
        );
        let _ = writeln!(
            table,
            "{label:<22} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>9}  {} (@{rate}/s)",
            t.offered - t.skipped,
            ms(percentile(&t.latencies, 50.0)),
            ms(percentile(&t.latencies, 99.0)),
            ms(t.latencies.last().copied().unwrap_or_default()),
            calls.map_or("?".into(), |c| format!("~{c}")),
            t.status_mix()
        );
        let mut j = t.json();
        j["behaviour"] = json!(behaviour);
        j["rate_per_s"] = json!(rate);
        j["from_s"] = json!(from.as_secs_f64());
        j["to_s"] = json!(to.as_secs_f64());
        j["downstream_calls_approx"] = json!(calls);
        phases.push(j);
    }

    let mut all = Tally::default();
    run.records.iter().for_each(|r| all.add(r));
    all.finish();
    let sent = all.offered - all.skipped;

    // Recoveries: each step to `ok` after `fail` or `stall`, to the first 200 answered after it.
    let mut recoveries = Vec::new();
    for w in faults.steps.windows(2) {
        let ((_, before), (healed, after)) = (&w[0], &w[1]);
        if after != "ok" || !(before == "fail" || before == "stall") {
            continue;
        }
        if *healed < first_sent || *healed > last_sent {
            continue;
        }
        let first_ok = run
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Status(200)))
            .map(|r| r.sent + r.latency)
            .filter(|&done| done >= *healed)
            .min();
        recoveries.push(json!({
            "after": before,
            "healed_at_s": healed.as_secs_f64(),
            "first_ok_after_ms": first_ok.map(|d| ms(d - *healed)),
        }));
    }

    // Downstream calls against what was offered.
    let calls = stat_u64(&run.last, "downstream.calls")
        .zip(stat_u64(&run.first, "downstream.calls"))
        .map(|(b, a)| b.saturating_sub(a));

    // RSS: the first sample at or after the warm-up, and the last.
    let rss: Vec<(f64, u64)> = run
        .samples
        .iter()
        .filter_map(|s| Some((s.at.as_secs_f64(), s.rss_kib?)))
        .collect();
    let rss_warm = rss
        .iter()
        .find(|s| s.0 >= opts.warmup.as_secs_f64())
        .map(|s| s.1);
    let rss_end = rss.last().map(|s| s.1);
    let rss_max = rss.iter().map(|s| s.1).max();

    let server: serde_json::Map<String, Value> = run
        .last
        .iter()
        .map(|(k, v)| {
            let v = v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n));
            (k.clone(), v)
        })
        .collect();
    let summary = json!({
        "server": opts.server.to_string(),
        "path": opts.path,
        "elapsed_s": run.elapsed.as_secs_f64(),
        "connections_opened": run.connections,
        "overall": all.json(),
        "sent": sent,
        "downstream_calls": calls,
        "downstream_calls_per_sent": calls.map(|c| c as f64 / sent.max(1) as f64),
        "phases": phases,
        "recoveries": recoveries,
        "rss_kib": rss,
        "rss_after_warmup_kib": rss_warm,
        "rss_end_kib": rss_end,
        "rss_max_kib": rss_max,
        "warmup_s": opts.warmup.as_secs_f64(),
        "server_stats_end": server,
    });

    let mut text = String::new();
    let _ = writeln!(
        text,
        "load_client: {} {} for {:.1} s, {} sent ({} skipped at the in-flight cap of {}), {} connections",
        opts.server,
        opts.path,
        run.elapsed.as_secs_f64(),
        sent,
        all.skipped,
        opts.max_in_flight,
        run.connections
    );
    let _ = writeln!(text, "status mix: {}", all.status_mix());
    let _ = writeln!(
        text,
        "latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&all.latencies, 50.0)),
        ms(percentile(&all.latencies, 99.0)),
        ms(all.latencies.last().copied().unwrap_or_default())
    );
    for (status, v) in &all.by_status {
        let _ = writeln!(
            text,
            "  {status}: n {:>6}, p50 {:>7.1} ms, p99 {:>7.1} ms, max {:>7.1} ms",
            v.len(),
            ms(percentile(v, 50.0)),
            ms(percentile(v, 99.0)),
            ms(v.last().copied().unwrap_or_default())
        );
    }
    text.push('\n');
    text.push_str(&table);
    text.push('\n');
    let _ = writeln!(
        text,
        "downstream calls: {} for {} requests sent ({:.3} per request)",
        calls.map_or("?".into(), |c| c.to_string()),
        sent,
        calls.map_or(f64::NAN, |c| c as f64 / sent.max(1) as f64)
    );
    for r in &recoveries {
        let _ = writeln!(
            text,
            "recovery after {} at {:.1} s: first 200 after {} ms",
            r["after"].as_str().unwrap_or("?"),
            r["healed_at_s"].as_f64().unwrap_or_default(),
            r["first_ok_after_ms"]
        );
    }
    if !rss.is_empty() {
        let series: Vec<String> = rss
            .iter()
            .map(|(t, kib)| format!("{t:.0}s:{kib}"))
            .collect();
        let _ = writeln!(
            text,
            "server RSS (KiB) by server time: {}",
            series.join(" ")
        );
        if let (Some(w), Some(e)) = (rss_warm, rss_end) {
            let _ = writeln!(
                text,
                "server RSS after warm-up ({:.0} s) {w} KiB, at the end {e} KiB ({:+.1} %), max {} KiB",
                opts.warmup.as_secs_f64(),
                (e as f64 / w as f64 - 1.0) * 100.0,
                rss_max.unwrap_or_default()
            );
        }
    }
    let keys = [
        "answered.ok",
        "answered.circuit_open",
        "answered.rate_limited",
        "answered.bulkhead_full",
        "answered.attempt_timeout",
        "answered.total_timeout",
        "answered.downstream_failed",
        "downstream.succeeded",
        "downstream.failed",
        "downstream.cut",
        "breaker.rejected",
    ];
    let counts: Vec<String> = keys
        .iter()
        .filter_map(|k| Some(format!("{k} {}", run.last.get(*k)?)))
        .collect();
    let _ = writeln!(text, "server: {}", counts.join(", "));
    (text, summary)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("load_client: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    let run = match run(&opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load_client: {e}");
            std::process::exit(1);
        }
    };
    let (text, summary) = report(&opts, &run);
    print!("{text}");
    if let Some(path) = &opts.json {
        let pretty = serde_json::to_string_pretty(&summary).expect("a JSON value");
        if let Err(e) = std::fs::write(path, pretty + "\n") {
            eprintln!("load_client: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_accepted() {
        assert!(parse_server("127.0.0.1:8080").is_ok());
        assert!(parse_server("http://localhost:8080/").is_ok());
        for refused in [
            "example.com:80",
            "10.0.0.1:80",
            "0.0.0.0:80",
            "[::1]:80",
            "127.0.0.2:80",
        ] {
            assert!(parse_server(refused).is_err(), "{refused} must be refused");
        }
        assert!(parse_server("127.0.0.1:0").is_err());
    }

    #[test]
    fn rate_steps() {
        let r = parse_steps("100", |v| v.parse::<f64>().map_err(|e| e.to_string())).unwrap();
        assert_eq!(r.at(Duration::from_secs(99)), Some(100.0));
        let r = parse_steps("0s:100,10s:400,11s:100", |v| {
            v.parse::<f64>().map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(r.at(Duration::from_millis(10_500)), Some(400.0));
        assert_eq!(
            r.next_change_after(Duration::from_secs(10)),
            Some(Duration::from_secs(11))
        );
        assert!(parse_steps("5s:1,4s:2", |v| Ok(v.to_string())).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn bounded_arguments() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(parse_args(&args("--server 127.0.0.1:1 --rate 10 --for 5")).is_ok());
        assert!(parse_args(&args("--server 127.0.0.1:1 --rate 10 --for 601")).is_err());
        assert!(parse_args(&args("--server 127.0.0.1:1 --rate 0 --for 5")).is_err());
        assert!(
            parse_args(&args(
                "--server 127.0.0.1:1 --rate 10 --for 5 --max-in-flight 0"
            ))
            .is_err()
        );
    }
}
