//! Scenarios: who calls (the clients), what they call (the downstream), and what happens to
//! it over time (phases). Built-in ones by name ([`Scenario::builtin`]), or from a TOML file
//! ([`Scenario::from_toml`], see `examples/sim/scenarios/`).

use core::time::Duration;

use serde::Deserialize;

use crate::files::{self, FileError};

/// How the clients send requests.
#[derive(Clone, Debug, PartialEq)]
pub enum Clients {
    /// Open loop: requests arrive at `rate` per second (Poisson arrivals), whatever happens to
    /// the earlier ones: what a public service sees.
    Open {
        /// Requests per second (scaled by a phase's `rate_factor`).
        rate: f64,
    },
    /// Closed loop: `clients` callers each send a request, wait for its answer, think, and
    /// send the next: what a batch job or a fixed worker pool does.
    Closed {
        /// Number of callers.
        clients: u32,
        /// Mean think time between an answer and the next request (exponential; zero: at once).
        think: Duration,
        /// Requests each caller sends before it stops (none: until the end of the run).
        requests_per_client: Option<u64>,
        /// Every caller starts at 0 (contention experiments); otherwise their first requests
        /// spread over one think time.
        start_together: bool,
    },
}

/// The downstream service: replicas with a concurrency limit, a FIFO queue, and service
/// times that grow with load. In a scenario file: the `[downstream]` table, keyed by the
/// field names, durations as text (`"20ms"`), omitted fields at their defaults.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Downstream {
    /// Replicas, called round robin.
    pub replicas: u32,
    /// Requests each replica serves at once.
    pub concurrency: u32,
    /// Requests each replica queues when every slot is busy; beyond that it answers
    /// "overloaded" at once.
    pub queue: u32,
    /// Median service time (log-normal).
    #[serde(with = "bulwark::duration")]
    pub latency: Duration,
    /// Shape of the log-normal service time (0: every request takes the median).
    pub latency_sigma: f64,
    /// Probability that a served request fails.
    pub errors: f64,
    /// Extra failure probability when the queue is full, growing linearly with its fill.
    pub overload_errors: f64,
    /// Service-time growth with queueing: each request is served
    /// `1 + slowdown × queued / queue` times slower (contention, memory pressure, GC), so a
    /// full queue serves `1 + slowdown` times slower.
    pub slowdown: f64,
    /// How long a refusal ("overloaded", "connection refused") takes to arrive.
    #[serde(with = "bulwark::duration")]
    pub reject_latency: Duration,
    /// An optimistic-concurrency resource (the model of "Exponential Backoff and Jitter"): a
    /// call succeeds only if no other call committed while it ran; no concurrency limit.
    pub occ: bool,
}

impl Default for Downstream {
    fn default() -> Self {
        Downstream {
            replicas: 1,
            concurrency: 64,
            queue: 512,
            latency: Duration::from_millis(20),
            latency_sigma: 0.5,
            errors: 0.001,
            overload_errors: 0.0,
            slowdown: 0.5,
            reject_latency: Duration::from_millis(1),
            occ: false,
        }
    }
}

/// A stretch of time during which the downstream (one replica, or all) or the load differs
/// from the base. Later phases in the list win where they overlap. In a scenario file: a
/// `[[phase]]` table keyed by the field names (`from` and `until` required).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// A name for the report (in a file, `phase N` when omitted).
    #[serde(default)]
    pub label: String,
    /// Start, from the beginning of the run.
    #[serde(with = "bulwark::duration")]
    pub from: Duration,
    /// End (exclusive).
    #[serde(with = "bulwark::duration")]
    pub until: Duration,
    /// Only this replica (0-based); all when `None`.
    pub replica: Option<u32>,
    /// Fraction of the concurrency that still serves (0: nothing is served, requests queue).
    pub capacity: Option<f64>,
    /// Service time multiplier.
    pub latency_factor: Option<f64>,
    /// Failure probability of a served request.
    pub errors: Option<f64>,
    /// Every call is refused at once (a hard outage: connection refused, 503 from a proxy).
    #[serde(default)]
    pub refuse: bool,
    /// Open-loop arrival rate multiplier (an overload spike).
    pub rate_factor: Option<f64>,
}

/// A complete scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// One line saying what happens.
    pub description: String,
    /// Simulated time during which requests arrive (answers still in flight at the end are
    /// awaited for up to one more minute).
    pub duration: Duration,
    /// Width of a time bucket of the series (plots, CSV).
    pub resolution: Duration,
    /// Seed of every random draw (arrivals, service times, failures, jitter).
    pub seed: u64,
    /// The clients.
    pub clients: Clients,
    /// The downstream.
    pub downstream: Downstream,
    /// What happens over time.
    pub phases: Vec<Phase>,
    /// At most this many client requests are sent; a run that reaches it says so in its
    /// summary. (A closed loop that never lets time advance, with instant answers and no think
    /// time, is stopped separately: after a million events at one instant no new request is
    /// sent.)
    pub max_requests: u64,
}

/// The default of [`Scenario::max_requests`].
pub const MAX_REQUESTS: u64 = 1_000_000_000;

/// The most time buckets a run keeps (each holds a small latency histogram once a request
/// ends in it: at most about 50 MB).
pub const MAX_BUCKETS: u64 = 20_000;

/// The names of the built-in scenarios, with what each does.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "steady",
        "1500 req/s against a downstream that serves about 2800 req/s; nothing goes wrong",
    ),
    (
        "outage",
        "hard outage: every call is refused at once from 20 s to 35 s",
    ),
    (
        "brownout",
        "from 20 s to 40 s responses are 8× slower and 20 % of them fail",
    ),
    (
        "flapping",
        "from 15 s to 45 s the downstream is down 2 s, up 3 s, over and over",
    ),
    (
        "spike",
        "overload spike: the arrival rate doubles from 20 s to 30 s (above capacity)",
    ),
    (
        "slow-recovery",
        "down from 15 s to 25 s, then back at 25 %, 50 %, 75 % capacity for 5 s each",
    ),
    (
        "bad-replica",
        "one of 4 replicas fails every call, slowly, from 15 s to 45 s",
    ),
];

/// The scenario a run without `--scenario` uses.
pub const DEFAULT_SCENARIO: &str = "outage";

impl Scenario {
    /// The base every built-in starts from: 60 s of open-loop traffic at 1500 req/s against
    /// one replica serving 64 requests at a time (median 20 ms), no phases.
    pub fn base(name: &str, description: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            description: description.to_string(),
            duration: Duration::from_secs(60),
            resolution: Duration::from_millis(250),
            seed: 1,
            clients: Clients::Open { rate: 1500.0 },
            downstream: Downstream::default(),
            phases: Vec::new(),
            max_requests: MAX_REQUESTS,
        }
    }

    /// A built-in scenario by name (see [`BUILTIN`]).
    ///
    /// ```
    /// use bulwark_sim::scenario::Scenario;
    /// let s = Scenario::builtin("outage").unwrap();
    /// assert_eq!(s.phases.len(), 1);
    /// assert!(Scenario::builtin("nope").is_none());
    /// ```
    pub fn builtin(name: &str) -> Option<Scenario> {
        let (name, description) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        let mut s = Scenario::base(name, description);
        let secs = Duration::from_secs;
        let phase = |label: &str, from: u64, until: u64| Phase {
            label: label.to_string(),
            from: secs(from),
            until: secs(until),
            ..Phase::default()
        };
        match *name {
            "steady" => {}
            "outage" => s.phases.push(Phase {
                refuse: true,
                ..phase("outage", 20, 35)
            }),
            "brownout" => s.phases.push(Phase {
                latency_factor: Some(8.0),
                errors: Some(0.2),
                ..phase("brownout", 20, 40)
            }),
            "flapping" => {
                let mut t = 15;
                while t < 45 {
                    s.phases.push(Phase {
                        refuse: true,
                        ..phase("down", t, t + 2)
                    });
                    t += 5;
                }
            }
            "spike" => s.phases.push(Phase {
                rate_factor: Some(2.0),
                ..phase("spike", 20, 30)
            }),
            "slow-recovery" => {
                s.phases.push(Phase {
                    refuse: true,
                    ..phase("outage", 15, 25)
                });
                for (i, c) in [0.25, 0.5, 0.75].into_iter().enumerate() {
                    let from = 25 + 5 * i as u64;
                    s.phases.push(Phase {
                        capacity: Some(c),
                        ..phase(&format!("{:.0} % capacity", c * 100.0), from, from + 5)
                    });
                }
            }
            "bad-replica" => {
                s.downstream.replicas = 4;
                s.downstream.concurrency = 16;
                s.downstream.queue = 128;
                s.phases.push(Phase {
                    replica: Some(0),
                    errors: Some(1.0),
                    latency_factor: Some(5.0),
                    ..phase("replica 0 fails", 15, 45)
                });
            }
            _ => return None,
        }
        Some(s)
    }

    /// Reads a scenario from TOML (see `examples/sim/scenarios/*.toml` and `--help`);
    /// `path` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`FileError`] naming the file, the line and the field.
    ///
    /// ```
    /// use bulwark_sim::scenario::Scenario;
    /// let s = Scenario::from_toml("x.toml", r#"
    /// name = "short outage"
    /// duration = "10s"
    /// [clients]
    /// rate = 200
    /// [[phase]]
    /// from = "2s"
    /// until = "4s"
    /// refuse = true
    /// "#).unwrap();
    /// assert_eq!(s.phases[0].until.as_secs(), 4);
    ///
    /// let err = Scenario::from_toml("x.toml", "duration = \"10\"\n").unwrap_err();
    /// assert_eq!((err.line, err.field.as_str()), (Some(1), "duration"));
    /// ```
    pub fn from_toml(path: &str, text: &str) -> Result<Scenario, FileError> {
        files::scenario_from_toml(path, text)
    }

    /// The incident: from the start of the first phase to the end of the last one (`None`
    /// for a scenario without phases).
    ///
    /// ```
    /// use bulwark_sim::scenario::Scenario;
    /// let s = Scenario::builtin("outage").unwrap();
    /// assert_eq!(s.incident().map(|(a, b)| (a.as_secs(), b.as_secs())), Some((20, 35)));
    /// ```
    pub fn incident(&self) -> Option<(Duration, Duration)> {
        let from = self.phases.iter().map(|p| p.from).min()?;
        let until = self.phases.iter().map(|p| p.until).max()?;
        Some((from, until))
    }

    /// Checks the values a file or a caller could get wrong.
    ///
    /// # Errors
    ///
    /// `(field, message)` for the first problem found.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: &str| Err((f.to_string(), m.to_string()));
        if self.duration.is_zero() {
            return bad("duration", "must be above zero");
        }
        if self.resolution.is_zero() {
            return bad("resolution", "must be above zero");
        }
        if self.max_requests == 0 {
            return bad("max_requests", "must be at least 1");
        }
        if self.duration.as_nanos() / self.resolution.as_nanos() > MAX_BUCKETS as u128 {
            return bad(
                "resolution",
                "gives more than 20 000 time buckets: make it coarser",
            );
        }
        match &self.clients {
            Clients::Open { rate } => {
                if !(*rate > 0.0 && rate.is_finite()) {
                    return bad("clients.rate", "must be a positive number of requests/s");
                }
            }
            Clients::Closed { clients, .. } => {
                if *clients == 0 {
                    return bad("clients.clients", "must be at least 1");
                }
            }
        }
        let d = &self.downstream;
        if d.replicas == 0 {
            return bad("downstream.replicas", "must be at least 1");
        }
        if d.concurrency == 0 {
            return bad("downstream.concurrency", "must be at least 1");
        }
        for (f, p) in [
            ("downstream.errors", d.errors),
            ("downstream.overload_errors", d.overload_errors),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(f, "is a probability: 0 ..= 1");
            }
        }
        if !(d.latency_sigma >= 0.0 && d.latency_sigma <= 5.0) {
            return bad("downstream.latency_sigma", "must be within 0 ..= 5");
        }
        if !(d.slowdown >= 0.0 && d.slowdown.is_finite()) {
            return bad("downstream.slowdown", "must be zero or positive");
        }
        for (i, p) in self.phases.iter().enumerate() {
            let f = |name: &str| format!("phase[{i}].{name}");
            if p.until <= p.from {
                return Err((f("until"), "must be after `from`".to_string()));
            }
            if let Some(r) = p.replica
                && r >= d.replicas
            {
                return Err((
                    f("replica"),
                    format!("there are only {} replicas (0-based)", d.replicas),
                ));
            }
            if let Some(c) = p.capacity
                && !(0.0..=1.0).contains(&c)
            {
                return Err((f("capacity"), "is a fraction: 0 ..= 1".to_string()));
            }
            if let Some(e) = p.errors
                && !(0.0..=1.0).contains(&e)
            {
                return Err((f("errors"), "is a probability: 0 ..= 1".to_string()));
            }
            if let Some(l) = p.latency_factor
                && !(l > 0.0 && l.is_finite())
            {
                return Err((f("latency_factor"), "must be above zero".to_string()));
            }
            if let Some(r) = p.rate_factor
                && !(r >= 0.0 && r.is_finite())
            {
                return Err((f("rate_factor"), "must be zero or positive".to_string()));
            }
        }
        Ok(())
    }
}

impl Scenario {
    /// About how many client requests a run sends (for the progress bar).
    ///
    /// ```
    /// use bulwark_sim::scenario::Scenario;
    /// assert_eq!(Scenario::builtin("steady").unwrap().expected_requests(), 90_000);
    /// ```
    pub fn expected_requests(&self) -> u64 {
        match &self.clients {
            Clients::Open { rate } => (rate * self.duration.as_secs_f64()) as u64,
            Clients::Closed {
                clients,
                think,
                requests_per_client,
                ..
            } => {
                let per = requests_per_client.unwrap_or_else(|| {
                    let cycle = think.as_secs_f64() + self.downstream.latency.as_secs_f64();
                    (self.duration.as_secs_f64() / cycle.max(1e-6)) as u64
                });
                u64::from(*clients) * per
            }
        }
    }
}
