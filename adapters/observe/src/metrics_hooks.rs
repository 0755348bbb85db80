//! [`MetricsHooks`]: counters, gauges and histograms through the `metrics` facade.

use std::fmt;
use std::sync::OnceLock;

use bulwark::Instant;
use bulwark::admission::Outcome;
use bulwark::circuit_breaker::{self, Events, State, Transition};
use bulwark::retry::{Finish, Hooks};
use metrics::{Counter, Gauge, Histogram, SharedString, Unit};

use crate::{CallOutcome, Observer, Pattern, Signal};

/// Hooks that count, through the [`metrics`](https://docs.rs/metrics) facade, under a
/// policy name that every series carries as its `name` label. Plug it in where
/// `TracingHooks` goes (it needs nothing of the error type).
///
/// Each series is registered with the recorder the first time it is touched, and its handle
/// kept: install the recorder (an exporter) before the first call. After that, a signal
/// costs an atomic load and the recorder's own update.
///
/// | name | type | labels | unit | from |
/// |---|---|---|---|---|
/// | `bulwark_circuit_breaker_calls_total` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` \| `rejected` | calls | breaker [`Events`]; an [`Observed`](crate::Observed) breaker gate (of a keyed breaker table, `rejected` only: see the `KeyedGate` impl) |
/// | `bulwark_circuit_breaker_slow_calls_total` | counter | `name` | calls | breaker [`Events`] |
/// | `bulwark_circuit_breaker_state` | gauge | `name`, `state` = `closed` \| `open` \| `half_open` \| `forced_open` \| `disabled` \| `metrics_only` | 1 for the state now, 0 for the others | breaker [`Events`], [`breaker_state`](MetricsHooks::breaker_state) |
/// | `bulwark_circuit_breaker_transitions_total` | counter | `name`, `from`, `to` (states as above) | transitions | breaker [`Events`] |
/// | `bulwark_retry_calls_total` | counter | `name`, `kind` = `successful_without_retry` \| `successful_with_retry` \| `failed_without_retry` \| `failed_with_retry` | calls | retry / pipeline [`Hooks`] |
/// | `bulwark_retry_attempts_total` | counter | `name` | attempts (first calls and retries) | retry / pipeline [`Hooks`] |
/// | `bulwark_retry_budget_denied_total` | counter | `name` | retries denied | retry / pipeline [`Hooks`] |
/// | `bulwark_retry_call_attempts` | histogram | `name` | attempts per ended call | retry / pipeline [`Hooks`] |
/// | `bulwark_rate_limiter_calls_total`, `bulwark_bulkhead_calls_total`, `bulwark_pool_calls_total` (`bulwark_<pattern>_calls_total`) | counter | `name`, `outcome` = `permitted` \| `rejected` | calls | an [`Observed`](crate::Observed) gate (a keyed table's: every key under the table's name), an [`acquired`](crate::acquired) waiting acquire |
/// | `bulwark_bulkhead_in_flight`, `bulwark_pool_in_flight` | gauge | `name` | calls admitted and not yet ended; for a pool, connections checked out | an [`Observed`](crate::Observed) bulkhead, an [`acquired`](crate::acquired) bulkhead or pool acquire (until what it got is dropped) |
/// | `bulwark_bulkhead_waiting`, `bulwark_pool_waiting` | gauge | `name` | calls waiting for a slot or a connection | an [`instrument`](crate::instrument)ed bulkhead or pool acquire, pending after its first poll |
/// | `bulwark_calls_total` | counter | `name`, `pattern`, `outcome` = `success` \| `failure` \| `rejected` \| `shed` \| `timed_out` | calls | an [`instrument`](crate::instrument)ed call, an `ObserveLayer` |
/// | `bulwark_call_duration_seconds` | histogram | `name`, `pattern` | seconds | the same (not for `pattern` = `attempt`) |
/// | `bulwark_attempt_duration_seconds` | histogram | `name` | seconds | an attempt ([`Pattern::Attempt`]) |
/// | `bulwark_fallback_total` | counter | `name`, `step` | fallbacks | [`fell_back`](crate::fell_back) |
///
/// [`describe`](MetricsHooks::describe) gives the recorder each metric's unit and help text.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark::MockClock;
/// use bulwark_observe::MetricsHooks;
/// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// let clock = MockClock::new();
/// metrics::with_local_recorder(&recorder, || {
///     let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
///         .unwrap()
///         .with_events(MetricsHooks::new("checkout"));
///     breaker.try_acquire().unwrap().failure(); // opens it
///     let _ = breaker.try_acquire(); // rejected
/// });
/// let counted: Vec<(Vec<String>, DebugValue)> = snapshotter
///     .snapshot()
///     .into_vec()
///     .into_iter()
///     .filter(|(key, ..)| key.key().name() == "bulwark_circuit_breaker_calls_total")
///     .map(|(key, _, _, value)| (key.key().labels().map(|l| l.value().to_owned()).collect(), value))
///     .collect();
/// assert_eq!(counted.len(), 2);
/// assert!(counted.contains(&(vec!["checkout".into(), "failure".into()], DebugValue::Counter(1))));
/// assert!(counted.contains(&(vec!["checkout".into(), "rejected".into()], DebugValue::Counter(1))));
/// ```
pub struct MetricsHooks {
    name: SharedString,
    breaker_calls: [OnceLock<Counter>; 4],
    breaker_slow: OnceLock<Counter>,
    breaker_state: [OnceLock<Gauge>; 6],
    retry_calls: [OnceLock<Counter>; 4],
    retry_attempts: OnceLock<Counter>,
    retry_denied: OnceLock<Counter>,
    retry_call_attempts: OnceLock<Histogram>,
    gate_calls: [[OnceLock<Counter>; 2]; PATTERNS],
    in_flight: [OnceLock<Gauge>; PATTERNS],
    waiting: [OnceLock<Gauge>; PATTERNS],
    calls: [[OnceLock<Counter>; OUTCOMES]; PATTERNS],
    durations: [OnceLock<Histogram>; PATTERNS],
    fallbacks: [OnceLock<Counter>; CACHED_STEPS],
}

const PATTERNS: usize = 9;
/// Fallback steps whose counter handle is kept (a longer chain registers its later steps on
/// every fall-back, which allocates the label).
const CACHED_STEPS: usize = 8;
const STEP_LABELS: [&str; CACHED_STEPS] = ["1", "2", "3", "4", "5", "6", "7", "8"];
const OUTCOMES: usize = 5;

const STATES: [State; 6] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
    State::MetricsOnly,
];

fn state_index(s: State) -> usize {
    match s {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
        State::ForcedOpen => 3,
        State::Disabled => 4,
        State::MetricsOnly => 5,
    }
}

fn state_label(s: State) -> &'static str {
    match s {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
        State::ForcedOpen => "forced_open",
        State::Disabled => "disabled",
        State::MetricsOnly => "metrics_only",
    }
}

fn pattern_index(p: Pattern) -> usize {
    match p {
        Pattern::CircuitBreaker => 0,
        Pattern::Retry => 1,
        Pattern::Timeout => 2,
        Pattern::Bulkhead => 3,
        Pattern::RateLimiter => 4,
        Pattern::Pool => 5,
        Pattern::Fallback => 6,
        Pattern::Pipeline => 7,
        Pattern::Attempt => 8,
    }
}

fn outcome_index(o: CallOutcome) -> usize {
    match o {
        CallOutcome::Success => 0,
        CallOutcome::Failure => 1,
        CallOutcome::Rejected => 2,
        CallOutcome::Shed => 3,
        CallOutcome::TimedOut => 4,
    }
}

const OUTCOME_LABELS: [&str; OUTCOMES] = ["success", "failure", "rejected", "shed", "timed_out"];

fn gate_calls_name(p: Pattern) -> &'static str {
    match p {
        Pattern::CircuitBreaker => "bulwark_circuit_breaker_calls_total",
        Pattern::Retry => "bulwark_retry_calls_total",
        Pattern::Timeout => "bulwark_timeout_calls_total",
        Pattern::Bulkhead => "bulwark_bulkhead_calls_total",
        Pattern::RateLimiter => "bulwark_rate_limiter_calls_total",
        Pattern::Pool => "bulwark_pool_calls_total",
        Pattern::Fallback => "bulwark_fallback_calls_total",
        Pattern::Pipeline => "bulwark_pipeline_calls_total",
        Pattern::Attempt => "bulwark_attempt_calls_total",
    }
}

/// The patterns whose admitted calls hold a slot until they end: an in-flight gauge means
/// something for them (a limiter's token is spent on admission; a breaker counts outcomes).
fn holds_slots(p: Pattern) -> bool {
    matches!(p, Pattern::Bulkhead | Pattern::Pool)
}

fn in_flight_name(p: Pattern) -> &'static str {
    match p {
        Pattern::CircuitBreaker => "bulwark_circuit_breaker_in_flight",
        Pattern::Retry => "bulwark_retry_in_flight",
        Pattern::Timeout => "bulwark_timeout_in_flight",
        Pattern::Bulkhead => "bulwark_bulkhead_in_flight",
        Pattern::RateLimiter => "bulwark_rate_limiter_in_flight",
        Pattern::Pool => "bulwark_pool_in_flight",
        Pattern::Fallback => "bulwark_fallback_in_flight",
        Pattern::Pipeline => "bulwark_pipeline_in_flight",
        Pattern::Attempt => "bulwark_attempt_in_flight",
    }
}

fn waiting_name(p: Pattern) -> &'static str {
    match p {
        Pattern::CircuitBreaker => "bulwark_circuit_breaker_waiting",
        Pattern::Retry => "bulwark_retry_waiting",
        Pattern::Timeout => "bulwark_timeout_waiting",
        Pattern::Bulkhead => "bulwark_bulkhead_waiting",
        Pattern::RateLimiter => "bulwark_rate_limiter_waiting",
        Pattern::Pool => "bulwark_pool_waiting",
        Pattern::Fallback => "bulwark_fallback_waiting",
        Pattern::Pipeline => "bulwark_pipeline_waiting",
        Pattern::Attempt => "bulwark_attempt_waiting",
    }
}

impl MetricsHooks {
    /// Hooks for the policy `name` (the `name` label of every series).
    ///
    /// ```
    /// let hooks = bulwark_observe::MetricsHooks::new("checkout");
    /// assert_eq!(hooks.name(), "checkout");
    /// ```
    pub fn new(name: impl Into<SharedString>) -> Self {
        MetricsHooks {
            name: name.into(),
            breaker_calls: Default::default(),
            breaker_slow: OnceLock::new(),
            breaker_state: Default::default(),
            retry_calls: Default::default(),
            retry_attempts: OnceLock::new(),
            retry_denied: OnceLock::new(),
            retry_call_attempts: OnceLock::new(),
            gate_calls: Default::default(),
            in_flight: Default::default(),
            waiting: Default::default(),
            calls: Default::default(),
            durations: Default::default(),
            fallbacks: Default::default(),
        }
    }

    /// The policy name.
    ///
    /// ```
    /// assert_eq!(bulwark_observe::MetricsHooks::new(String::from("search")).name(), "search");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes a breaker's state now (`bulwark_circuit_breaker_state`: 1 for `state`, 0 for
    /// the others). Changes of state keep it up to date; call this once after building the
    /// breaker, so the gauge reads right before the first change.
    ///
    /// ```
    /// use bulwark::circuit_breaker::State;
    /// use bulwark_observe::MetricsHooks;
    /// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    /// let recorder = DebuggingRecorder::new();
    /// let snapshotter = recorder.snapshotter();
    /// metrics::with_local_recorder(&recorder, || MetricsHooks::new("checkout").breaker_state(State::Closed));
    /// let closed = snapshotter.snapshot().into_vec().into_iter().find(|(k, ..)| {
    ///     k.key().labels().any(|l| l.key() == "state" && l.value() == "closed")
    /// });
    /// assert_eq!(closed.map(|(_, _, _, v)| v), Some(DebugValue::Gauge(1.0.into())));
    /// ```
    pub fn breaker_state(&self, state: State) {
        for s in STATES {
            let gauge = self.breaker_state[state_index(s)].get_or_init(|| {
                metrics::gauge!(
                    "bulwark_circuit_breaker_state",
                    "name" => self.name.clone(),
                    "state" => state_label(s)
                )
            });
            gauge.set(if s == state { 1.0 } else { 0.0 });
        }
    }

    /// Gives the installed recorder the unit and help text of every metric in the table
    /// above (Prometheus shows them as `# HELP` and in the unit suffix conventions). Call once,
    /// after installing the recorder.
    ///
    /// ```
    /// use metrics_util::debugging::DebuggingRecorder;
    /// let recorder = DebuggingRecorder::new();
    /// metrics::with_local_recorder(&recorder, bulwark_observe::MetricsHooks::describe);
    /// ```
    pub fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            "bulwark_circuit_breaker_calls_total",
            Unit::Count,
            "Calls through a circuit breaker, by outcome (rejected: not permitted)."
        );
        describe_counter!(
            "bulwark_circuit_breaker_slow_calls_total",
            Unit::Count,
            "Calls a circuit breaker measured as slow."
        );
        describe_gauge!(
            "bulwark_circuit_breaker_state",
            Unit::Count,
            "1 for the state a circuit breaker is in, 0 for the others."
        );
        describe_counter!(
            "bulwark_circuit_breaker_transitions_total",
            Unit::Count,
            "Changes of state of a circuit breaker."
        );
        describe_counter!(
            "bulwark_retry_calls_total",
            Unit::Count,
            "Retried calls that ended, by kind."
        );
        describe_counter!(
            "bulwark_retry_attempts_total",
            Unit::Count,
            "Attempts started (first calls and retries)."
        );
        describe_counter!(
            "bulwark_retry_budget_denied_total",
            Unit::Count,
            "Retries the retry budget denied."
        );
        describe_histogram!(
            "bulwark_retry_call_attempts",
            Unit::Count,
            "Attempts per retried call that ended."
        );
        for p in [Pattern::RateLimiter, Pattern::Bulkhead, Pattern::Pool] {
            describe_counter!(
                gate_calls_name(p),
                Unit::Count,
                "Calls a gate permitted or rejected."
            );
            describe_gauge!(waiting_name(p), Unit::Count, "Calls waiting.");
            if holds_slots(p) {
                describe_gauge!(
                    in_flight_name(p),
                    Unit::Count,
                    "Calls admitted and not yet ended."
                );
            }
        }
        describe_counter!(
            "bulwark_calls_total",
            Unit::Count,
            "Observed calls that ended, by pattern and outcome."
        );
        describe_histogram!(
            "bulwark_call_duration_seconds",
            Unit::Seconds,
            "Duration of observed calls, from their first poll to their end."
        );
        describe_histogram!(
            "bulwark_attempt_duration_seconds",
            Unit::Seconds,
            "Duration of observed attempts of retried calls."
        );
        describe_counter!(
            "bulwark_fallback_total",
            Unit::Count,
            "Times a fallback chain fell back, by step."
        );
    }

    fn breaker_call(&self, outcome: usize, label: &'static str) {
        self.breaker_calls[outcome]
            .get_or_init(|| {
                metrics::counter!(
                    "bulwark_circuit_breaker_calls_total",
                    "name" => self.name.clone(),
                    "outcome" => label
                )
            })
            .increment(1);
    }

    fn breaker_outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.breaker_call(0, "success"),
            Outcome::Failure => self.breaker_call(1, "failure"),
            Outcome::Ignored => self.breaker_call(2, "ignored"),
        }
    }

    fn gate_call(&self, pattern: Pattern, rejected: bool) {
        let label = if rejected { "rejected" } else { "permitted" };
        self.gate_calls[pattern_index(pattern)][usize::from(rejected)]
            .get_or_init(|| {
                metrics::counter!(gate_calls_name(pattern), "name" => self.name.clone(), "outcome" => label)
            })
            .increment(1);
    }

    fn in_flight(&self, pattern: Pattern) -> &Gauge {
        self.in_flight[pattern_index(pattern)]
            .get_or_init(|| metrics::gauge!(in_flight_name(pattern), "name" => self.name.clone()))
    }
}

impl fmt::Debug for MetricsHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHooks")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Events for MetricsHooks {
    fn on_state_change(&self, t: Transition) {
        metrics::counter!(
            "bulwark_circuit_breaker_transitions_total",
            "name" => self.name.clone(),
            "from" => state_label(t.from),
            "to" => state_label(t.to)
        )
        .increment(1);
        self.breaker_state(t.to);
    }

    fn on_rejected(&self, _: circuit_breaker::Rejected, _: Instant) {
        self.breaker_call(3, "rejected");
    }

    fn on_outcome(&self, outcome: Outcome, slow: bool) {
        self.breaker_outcome(outcome);
        if slow && outcome != Outcome::Ignored {
            self.breaker_slow
                .get_or_init(|| {
                    metrics::counter!("bulwark_circuit_breaker_slow_calls_total", "name" => self.name.clone())
                })
                .increment(1);
        }
    }
}

impl<T, E> Hooks<T, E> for MetricsHooks {
    fn on_attempt(&self, _attempt: u32) {
        self.retry_attempts
            .get_or_init(
                || metrics::counter!("bulwark_retry_attempts_total", "name" => self.name.clone()),
            )
            .increment(1);
    }

    fn on_budget_denied(&self, _attempt: u32, _outcome: &Result<T, E>) {
        self.retry_denied
            .get_or_init(|| metrics::counter!("bulwark_retry_budget_denied_total", "name" => self.name.clone()))
            .increment(1);
    }

    fn on_finish(&self, attempts: u32, finish: Finish) {
        let (i, kind) = match (finish.is_success(), attempts > 1) {
            (true, false) => (0, "successful_without_retry"),
            (true, true) => (1, "successful_with_retry"),
            (false, false) => (2, "failed_without_retry"),
            (false, true) => (3, "failed_with_retry"),
        };
        self.retry_calls[i]
            .get_or_init(|| {
                metrics::counter!("bulwark_retry_calls_total", "name" => self.name.clone(), "kind" => kind)
            })
            .increment(1);
        self.retry_call_attempts
            .get_or_init(
                || metrics::histogram!("bulwark_retry_call_attempts", "name" => self.name.clone()),
            )
            .record(f64::from(attempts));
    }
}

impl Observer for MetricsHooks {
    fn on_signal(&self, signal: Signal) {
        match signal {
            Signal::Admitted { pattern } => {
                if pattern != Pattern::CircuitBreaker {
                    self.gate_call(pattern, false);
                }
                if holds_slots(pattern) {
                    self.in_flight(pattern).increment(1.0);
                }
            }
            Signal::Rejected { pattern, .. } => {
                if pattern == Pattern::CircuitBreaker {
                    self.breaker_call(3, "rejected");
                } else {
                    self.gate_call(pattern, true);
                }
            }
            Signal::Ended { pattern, outcome } => {
                if pattern == Pattern::CircuitBreaker {
                    if let Some(outcome) = outcome {
                        self.breaker_outcome(outcome);
                    }
                } else if holds_slots(pattern) {
                    self.in_flight(pattern).decrement(1.0);
                }
            }
            Signal::Waiting { pattern, waiting } if holds_slots(pattern) => {
                let gauge = self.waiting[pattern_index(pattern)].get_or_init(
                    || metrics::gauge!(waiting_name(pattern), "name" => self.name.clone()),
                );
                if waiting {
                    gauge.increment(1.0);
                } else {
                    gauge.decrement(1.0);
                }
            }
            Signal::Waiting { .. } => {}
            Signal::Finished {
                pattern,
                outcome,
                duration,
            } => {
                let p = pattern_index(pattern);
                let o = outcome_index(outcome);
                self.calls[p][o]
                    .get_or_init(|| {
                        metrics::counter!(
                            "bulwark_calls_total",
                            "name" => self.name.clone(),
                            "pattern" => pattern.as_str(),
                            "outcome" => OUTCOME_LABELS[o]
                        )
                    })
                    .increment(1);
                self.durations[p]
                    .get_or_init(|| {
                        if pattern == Pattern::Attempt {
                            metrics::histogram!("bulwark_attempt_duration_seconds", "name" => self.name.clone())
                        } else {
                            metrics::histogram!(
                                "bulwark_call_duration_seconds",
                                "name" => self.name.clone(),
                                "pattern" => pattern.as_str()
                            )
                        }
                    })
                    .record(duration.as_secs_f64());
            }
            Signal::FellBack { step } => {
                let cached = usize::try_from(step)
                    .ok()
                    .and_then(|s| s.checked_sub(1))
                    .and_then(|i| Some((self.fallbacks.get(i)?, *STEP_LABELS.get(i)?)));
                match cached {
                    Some((slot, label)) => slot
                        .get_or_init(|| {
                            metrics::counter!("bulwark_fallback_total", "name" => self.name.clone(), "step" => label)
                        })
                        .increment(1),
                    None => metrics::counter!(
                        "bulwark_fallback_total",
                        "name" => self.name.clone(),
                        "step" => step.to_string()
                    )
                    .increment(1),
                }
            }
        }
    }
}
