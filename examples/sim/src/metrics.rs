//! What a run measured: the per-policy summary and the series over time.

use core::time::Duration;

use bulwark::Instant;
use bulwark::circuit_breaker::State;

use crate::downstream::Model;
use crate::engine::End;
use crate::policy::Policy;
use crate::scenario::Scenario;
use crate::units::human;

/// Sub-buckets per power of two: a recorded latency is known to within 1/16 (the quantiles
/// report the middle of their bucket: ±3 %).
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Latencies are recorded in microseconds up to 2^40 µs (12 days).
const MAX_EXP: u32 = 40;
const BINS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

/// A log-linear latency histogram (microseconds, 1/16 precision), allocation once.
///
/// ```
/// use bulwark_sim::metrics::Hist;
/// use core::time::Duration;
/// let mut h = Hist::new();
/// for ms in 1..=100 {
///     h.record(Duration::from_millis(ms).as_nanos() as u64);
/// }
/// let p50 = h.quantile(0.5).as_secs_f64() * 1e3;
/// assert!((p50 - 50.0).abs() < 50.0 * 0.04, "{p50}");
/// assert_eq!(h.count(), 100);
/// ```
#[derive(Clone, Debug)]
pub struct Hist {
    bins: Vec<u32>,
    count: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    /// Empty.
    pub fn new() -> Hist {
        Hist {
            bins: vec![0; BINS],
            count: 0,
        }
    }

    fn index(us: u64) -> usize {
        let us = us.min((1u64 << (MAX_EXP + 1)) - 1);
        if us < SUB {
            return us as usize;
        }
        let e = 63 - us.leading_zeros();
        let sub = (us >> (e - SUB_BITS)) - SUB;
        (SUB + u64::from(e - SUB_BITS) * SUB + sub) as usize
    }

    /// The middle of bin `i`, in microseconds.
    fn value(i: usize) -> f64 {
        let i = i as u64;
        if i < SUB {
            return i as f64 + 0.5;
        }
        let e = (i - SUB) / SUB + u64::from(SUB_BITS);
        let sub = (i - SUB) % SUB;
        let width = 1u64 << (e - u64::from(SUB_BITS));
        ((SUB + sub) * width) as f64 + width as f64 / 2.0
    }

    /// Records a latency of `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = Self::index(ns / 1_000);
        self.bins[i] = self.bins[i].saturating_add(1);
        self.count += 1;
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 ..= 1); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Duration::from_nanos((Self::value(i) * 1e3) as u64);
            }
        }
        Duration::from_nanos((Self::value(BINS - 1) * 1e3) as u64)
    }
}

/// A time measured from an incident: when the breaker saw it, when the clients recovered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// The scenario has no incident.
    NoIncident,
    /// The policy has no circuit breaker (for detection).
    NoBreaker,
    /// It did not happen before the run ended.
    Never,
    /// It happened this long after the incident began (detection) or ended (recovery).
    After(Duration),
}

impl core::fmt::Display for Timing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Timing::NoIncident => f.write_str("–"),
            Timing::NoBreaker => f.write_str("no breaker"),
            Timing::Never => f.write_str("never"),
            Timing::After(d) => f.write_str(&human(*d)),
        }
    }
}

/// How the requests ended, counted.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ends {
    /// Succeeded.
    pub success: u64,
    /// The downstream's error came back.
    pub failed: u64,
    /// Rejected by the open circuit breaker.
    pub circuit_open: u64,
    /// Rejected by the rate limiter.
    pub rate_limited: u64,
    /// Rejected by the full bulkhead.
    pub bulkhead_full: u64,
    /// The last attempt timed out.
    pub attempt_timeout: u64,
    /// The total timeout ended the call.
    pub timeout: u64,
    /// Still running when the run ended.
    pub unfinished: u64,
}

/// One policy's results on one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The policy's name.
    pub policy: String,
    /// Client requests sent.
    pub requests: u64,
    /// How they ended.
    pub ends: Ends,
    /// Successes / requests.
    pub success_rate: f64,
    /// Latency of every request (success or not), arrival to answer: median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Calls that reached the downstream (first attempts and retries).
    pub downstream_calls: u64,
    /// Downstream calls / client requests.
    pub amplification: f64,
    /// The most requests the downstream served or queued at once.
    pub peak_concurrency: u32,
    /// From the start of the incident to the breaker's first opening.
    pub detect: Timing,
    /// From the end of the incident until the success rate is back (95 % of what it was before
    /// the incident, held for a second).
    pub recover: Timing,
    /// Time the breaker spent open during the arrivals (`None`: no breaker).
    pub time_open: Option<Duration>,
    /// When the last request ended (simulated time).
    pub last_end: Duration,
    /// The run stopped sending at [`Scenario::max_requests`].
    pub truncated: bool,
}

/// One policy's series over time, one value per time bucket. Serialized (`series.json`) with
/// the CSV's column names; a value that is not a number (no request ended) is `null`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Series {
    /// Bucket start, seconds.
    #[serde(rename = "t_s")]
    pub t: Vec<f64>,
    /// Client requests that arrived.
    pub requests: Vec<u64>,
    /// Requests that ended, and those that succeeded.
    pub completed: Vec<u64>,
    /// Requests that succeeded.
    pub successes: Vec<u64>,
    /// Calls that reached the downstream.
    pub downstream_calls: Vec<u64>,
    /// Downstream calls per second.
    pub downstream_rps: Vec<f64>,
    /// Most requests at the downstream at once.
    pub peak_concurrency: Vec<u32>,
    /// Success rate of the requests that ended (NaN when none did).
    pub success_rate: Vec<f64>,
    /// Latency quantiles of the requests that ended, in ms (NaN when none did).
    pub p50_ms: Vec<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Vec<f64>,
    /// 99.9th percentile, ms.
    pub p999_ms: Vec<f64>,
    /// Fraction of the bucket the breaker spent open.
    #[serde(rename = "breaker_open_fraction")]
    pub open_fraction: Vec<f64>,
}

/// One policy's results: the summary and the series.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The summary.
    pub summary: Summary,
    /// The series.
    pub series: Series,
}

/// The counters of a run in progress.
#[derive(Debug)]
pub(crate) struct Metrics {
    bucket_ns: u64,
    pub(crate) requests: u64,
    ends: Ends,
    bucket_requests: Vec<u64>,
    bucket_completed: Vec<u64>,
    bucket_ok: Vec<u64>,
    bucket_lat: Vec<Option<Hist>>,
    total: Hist,
    last_end: u64,
    pub(crate) truncated: bool,
}

impl Metrics {
    pub(crate) fn new(_scenario: &Scenario, bucket_ns: u64, buckets: usize) -> Metrics {
        Metrics {
            bucket_ns,
            requests: 0,
            ends: Ends::default(),
            bucket_requests: vec![0; buckets],
            bucket_completed: vec![0; buckets],
            bucket_ok: vec![0; buckets],
            bucket_lat: vec![None; buckets],
            total: Hist::new(),
            last_end: 0,
            truncated: false,
        }
    }

    fn bucket(&self, now: u64) -> usize {
        ((now / self.bucket_ns) as usize).min(self.bucket_requests.len() - 1)
    }

    #[inline]
    pub(crate) fn start(&mut self, now: u64) {
        self.requests += 1;
        let b = self.bucket(now);
        self.bucket_requests[b] += 1;
    }

    #[inline]
    pub(crate) fn end(&mut self, now: u64, started: u64, end: End) {
        let e = &mut self.ends;
        match end {
            End::Success => e.success += 1,
            End::Failed => e.failed += 1,
            End::CircuitOpen => e.circuit_open += 1,
            End::RateLimited => e.rate_limited += 1,
            End::BulkheadFull => e.bulkhead_full += 1,
            End::AttemptTimeout => e.attempt_timeout += 1,
            End::Timeout => e.timeout += 1,
            End::Unfinished => {
                e.unfinished += 1;
                return;
            }
        }
        self.last_end = self.last_end.max(now);
        let lat = now.saturating_sub(started);
        self.total.record(lat);
        let b = self.bucket(now);
        self.bucket_completed[b] += 1;
        if end == End::Success {
            self.bucket_ok[b] += 1;
        }
        self.bucket_lat[b].get_or_insert_with(Hist::new).record(lat);
    }

    pub(crate) fn finish(
        self,
        scenario: &Scenario,
        policy: &Policy,
        model: &Model,
        log: &[(Instant, State)],
        has_breaker: bool,
    ) -> RunResult {
        let n = self.bucket_requests.len();
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let end_ns = scenario.duration.as_nanos() as u64;
        // Open intervals, clipped to the arrivals.
        let mut open: Vec<(u64, u64)> = Vec::new();
        let mut since: Option<u64> = None;
        for &(at, state) in log {
            let at = at.as_nanos();
            match (state, since) {
                (State::Open | State::ForcedOpen, None) => since = Some(at),
                (State::Open | State::ForcedOpen, Some(_)) => {}
                (_, Some(s)) => {
                    open.push((s, at));
                    since = None;
                }
                (_, None) => {}
            }
        }
        if let Some(s) = since {
            open.push((s, end_ns.max(s)));
        }
        let mut open_fraction = vec![0.0; n];
        let mut time_open = 0u64;
        for &(a, b) in &open {
            let (a, b) = (a.min(end_ns), b.min(end_ns));
            time_open += b - a;
            let mut t = a;
            while t < b {
                let i = (t / self.bucket_ns) as usize;
                let bucket_end = (i as u64 + 1) * self.bucket_ns;
                let until = b.min(bucket_end);
                if let Some(f) = open_fraction.get_mut(i) {
                    *f += (until - t) as f64 / self.bucket_ns as f64;
                }
                t = until;
            }
        }
        let rate = |ok: u64, done: u64| {
            if done == 0 {
                f64::NAN
            } else {
                ok as f64 / done as f64
            }
        };
        let q = |b: &Option<Hist>, q: f64| {
            b.as_ref()
                .map_or(f64::NAN, |h| h.quantile(q).as_secs_f64() * 1e3)
        };
        let series = Series {
            t: (0..n).map(|i| i as f64 * bucket_s).collect(),
            requests: self.bucket_requests.clone(),
            completed: self.bucket_completed.clone(),
            successes: self.bucket_ok.clone(),
            downstream_calls: model.bucket_calls.clone(),
            downstream_rps: model
                .bucket_calls
                .iter()
                .map(|&c| c as f64 / bucket_s)
                .collect(),
            peak_concurrency: model.bucket_peak.clone(),
            success_rate: (0..n)
                .map(|i| rate(self.bucket_ok[i], self.bucket_completed[i]))
                .collect(),
            p50_ms: self.bucket_lat.iter().map(|b| q(b, 0.5)).collect(),
            p99_ms: self.bucket_lat.iter().map(|b| q(b, 0.99)).collect(),
            p999_ms: self.bucket_lat.iter().map(|b| q(b, 0.999)).collect(),
            open_fraction,
        };
        let incident = scenario.incident().map(|(a, b)| {
            (
                (a.as_nanos() as u64).min(end_ns),
                (b.as_nanos() as u64).min(end_ns),
            )
        });
        let detect = match (incident, has_breaker) {
            (None, _) => Timing::NoIncident,
            (_, false) => Timing::NoBreaker,
            (Some((a, b)), true) => open
                .iter()
                .map(|&(s, _)| s)
                .find(|&s| s >= a && s < b)
                .map_or(Timing::Never, |s| {
                    Timing::After(Duration::from_nanos(s - a))
                }),
        };
        let recover = match incident {
            None => Timing::NoIncident,
            Some((a, b)) => {
                let before = (a / self.bucket_ns) as usize;
                let (ok, done) = (0..before.min(n)).fold((0, 0), |(o, d), i| {
                    (o + self.bucket_ok[i], d + self.bucket_completed[i])
                });
                let baseline = if done == 0 {
                    1.0
                } else {
                    ok as f64 / done as f64
                };
                let threshold = 0.95 * baseline;
                let hold = (1e9 / self.bucket_ns as f64).ceil().max(1.0) as usize;
                let first = b.div_ceil(self.bucket_ns) as usize;
                let good = |i: usize| {
                    self.bucket_completed[i] > 0
                        && rate(self.bucket_ok[i], self.bucket_completed[i]) >= threshold
                };
                (first..n)
                    .find(|&i| (i..(i + hold).min(n)).all(good))
                    .map_or(Timing::Never, |i| {
                        Timing::After(Duration::from_nanos(
                            (i as u64 * self.bucket_ns).saturating_sub(b),
                        ))
                    })
            }
        };
        let requests = self.requests;
        let summary = Summary {
            policy: policy.name.clone(),
            requests,
            ends: self.ends,
            success_rate: if requests == 0 {
                0.0
            } else {
                self.ends.success as f64 / requests as f64
            },
            p50: self.total.quantile(0.5),
            p99: self.total.quantile(0.99),
            p999: self.total.quantile(0.999),
            downstream_calls: model.calls,
            amplification: if requests == 0 {
                0.0
            } else {
                model.calls as f64 / requests as f64
            },
            peak_concurrency: model.peak,
            detect,
            recover,
            time_open: has_breaker.then_some(Duration::from_nanos(time_open)),
            last_end: Duration::from_nanos(self.last_end),
            truncated: self.truncated,
        };
        RunResult { summary, series }
    }
}
