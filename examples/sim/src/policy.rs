//! Policies: what a client wraps its calls in, as the core's own `Config` types, and the
//! TOML schema that maps onto them.
//!
//! The core has no `serde` feature yet, so this module is the one place where a file's
//! fields become the core's builders (`retry::Config`, `circuit_breaker::Config`,
//! `rate_limiter::Config`, `bulkhead::Config`, `retry::Budget`), and where the core's typed
//! `ConfigError`s become messages naming the field and its line. When the core derives
//! `Deserialize`, the structs below give way to its types and only the error mapping stays.
//!
//! # The schema
//!
//! ```toml
//! [[policy]]
//! name = "full pipeline"
//! attempt_timeout = "250ms"     # each attempt (optional)
//! total_timeout = "1s"          # the whole call, retries included (optional)
//! waits = "breaker"             # which rejections retry waits out: breaker | all | nothing
//!
//! [policy.retry]                # omitted: no retries (max_attempts = 1)
//! max_attempts = 3              # counts the first call
//! backoff = "exponential"       # constant | linear | exponential
//! initial = "50ms"
//! multiplier = 2                # exponential
//! step = "50ms"                 # linear
//! max = "1s"                    # cap of the delay
//! jitter = "full"               # none | full | equal | decorrelated | proportional
//! jitter_percent = 20           # proportional
//! max_elapsed = "2s"
//! max_retry_after = "5s"
//!
//! [policy.budget]               # a retry budget shared by the policy's calls
//! retry_percent = 20            # each success earns 20 % of a retry
//! min_per_second = 10           # retries always allowed per second
//! max_tokens = 100              # earned retries kept at most
//!
//! [policy.breaker]
//! consecutive_failures = 5
//! failure_rate = 50             # percent, needs a window
//! slow_threshold = "500ms"      # with slow_percent: the slow-call policy
//! slow_percent = 80
//! minimum_calls = 20
//! window = "count"              # none | count | time
//! window_size = 100             # count windows: 10, 20, 50, 100, 200, 500 or 1000 calls
//! time_window = "10s"           # time windows: 10 buckets over this span
//! open_for = "2s"
//! open_growth = 2               # multiply the open time per consecutive opening ...
//! open_max = "30s"              # ... up to this
//! open_jitter = 10              # percent
//! half_open_probes = 1
//! half_open_successes = 1
//! half_open_verdict = "first-failure"   # first-failure | rate
//! max_half_open = "5s"
//!
//! [policy.limiter]
//! rate = 2000                   # tokens per `per`
//! per = "1s"
//! burst = 200
//!
//! [policy.bulkhead]
//! max_concurrent = 128
//! ```

use core::ops::Range;
use core::time::Duration;

use bulwark::circuit_breaker::{self, HalfOpenVerdict};
use bulwark::pipeline::Waits;
use bulwark::retry::{self, Backoff, Jitter};
use bulwark::{bulkhead, rate_limiter};
use serde::Deserialize;
use toml::Spanned;

use crate::engine::{AnyBreaker, BreakerLog, SimMockClock};
use crate::files::{Ctx, FileError, toml_error};
use crate::units::human;

/// The window a breaker measures rates over (the core's window size is a const generic, so a
/// file picks one of these sizes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Window {
    /// No window: consecutive failures only.
    NoWindow,
    Count10,
    Count20,
    Count50,
    Count100,
    Count200,
    Count500,
    Count1000,
    /// A time window of 10 buckets over the config's `time_window`.
    Time10,
}

impl Window {
    /// The count window of `n` calls, if it is one of the sizes offered.
    ///
    /// ```
    /// use bulwark_sim::policy::Window;
    /// assert_eq!(Window::count(100), Some(Window::Count100));
    /// assert_eq!(Window::count(30), None);
    /// ```
    pub fn count(n: u64) -> Option<Window> {
        Some(match n {
            10 => Window::Count10,
            20 => Window::Count20,
            50 => Window::Count50,
            100 => Window::Count100,
            200 => Window::Count200,
            500 => Window::Count500,
            1000 => Window::Count1000,
            _ => return None,
        })
    }
}

/// A circuit breaker: the core's config and the window it runs with.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BreakerSpec {
    /// The core's config.
    pub config: circuit_breaker::Config,
    /// The window.
    pub window: Window,
}

/// A retry budget's settings ([`retry::Budget::new`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BudgetSpec {
    /// Each success earns this percentage of a retry.
    pub retry_percent: u16,
    /// Retries always allowed per second.
    pub min_per_second: u16,
    /// Earned retries kept at most.
    pub max_tokens: u32,
}

/// A client policy: the pipeline's stages, each optional, as the core's configs.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The name in the report.
    pub name: String,
    /// Retry (`max_attempts(1)`: none).
    pub retry: retry::Config,
    /// A retry budget.
    pub budget: Option<BudgetSpec>,
    /// A circuit breaker.
    pub breaker: Option<BreakerSpec>,
    /// A rate limiter.
    pub limiter: Option<rate_limiter::Config>,
    /// A bulkhead (rejects at once when full, as inside any pipeline).
    pub bulkhead: Option<bulkhead::Config>,
    /// Each attempt's timeout.
    pub attempt_timeout: Option<Duration>,
    /// The whole call's timeout.
    pub total_timeout: Option<Duration>,
    /// Which rejections retry waits out.
    pub waits: Waits,
}

impl Policy {
    /// No protection: one attempt, nothing in front of it.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// assert!(Policy::no_protection().breaker.is_none());
    /// ```
    pub fn no_protection() -> Policy {
        Policy {
            name: "no protection".into(),
            retry: retry::Config::new().max_attempts(1),
            budget: None,
            breaker: None,
            limiter: None,
            bulkhead: None,
            attempt_timeout: None,
            total_timeout: None,
            waits: Waits::Breaker,
        }
    }

    /// Retry only: 3 attempts, exponential backoff from 50 ms (×2, capped at 1 s) with full
    /// jitter; nothing else. What many clients ship.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// assert!(Policy::retry_only().budget.is_none());
    /// ```
    pub fn retry_only() -> Policy {
        Policy {
            name: "retry only".into(),
            retry: retry::Config::new().max_attempts(3).backoff(
                Backoff::exponential(Duration::from_millis(50)).max(Duration::from_secs(1)),
            ),
            ..Policy::no_protection()
        }
    }

    /// The full pipeline: the same retry drawing on a budget (20 % of successes, 10/s floor),
    /// a breaker (50 % failures over the last 100 calls once 20 were made, or 10 in a row;
    /// open 1 s growing ×2 to 4 s, ±10 %; 2 probes), a rate limiter (2500/s, burst 250), a bulkhead of 128,
    /// attempt timeout 250 ms, total timeout 1 s.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// assert!(Policy::full_pipeline().validate().is_ok());
    /// ```
    pub fn full_pipeline() -> Policy {
        Policy {
            name: "full pipeline".into(),
            budget: Some(BudgetSpec {
                retry_percent: 20,
                min_per_second: 10,
                max_tokens: 100,
            }),
            breaker: Some(BreakerSpec {
                config: circuit_breaker::Config::new()
                    .consecutive_failures(10)
                    .failure_rate(50)
                    .minimum_calls(20)
                    .open_for(Duration::from_secs(1))
                    .open_growth(2, Duration::from_secs(4))
                    .open_jitter(10)
                    .half_open(2, 2),
                window: Window::Count100,
            }),
            limiter: Some(rate_limiter::Config::per_second(2500).burst(250)),
            bulkhead: Some(bulkhead::Config::new(128)),
            attempt_timeout: Some(Duration::from_millis(250)),
            total_timeout: Some(Duration::from_secs(1)),
            ..Policy::retry_only()
        }
        .named("full pipeline")
    }

    /// The three policies a run without `--policies` compares.
    pub fn defaults() -> Vec<Policy> {
        vec![
            Policy::no_protection(),
            Policy::retry_only(),
            Policy::full_pipeline(),
        ]
    }

    /// The same policy, renamed.
    pub fn named(mut self, name: &str) -> Policy {
        self.name = name.to_string();
        self
    }

    /// Checks every stage with the core (the same constructors a run uses).
    ///
    /// # Errors
    ///
    /// `(section, message)`: the section (`retry`, `breaker`, ...) and the core's message.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// let mut p = Policy::retry_only();
    /// p.retry = p.retry.max_attempts(0);
    /// assert_eq!(p.validate().unwrap_err().0, "retry");
    /// ```
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.check().map_err(|e| match e {
            CoreError::Retry(e) => ("retry".into(), e.to_string()),
            CoreError::Breaker(e) => ("breaker".into(), e.to_string()),
            CoreError::Limiter(e) => ("limiter".into(), e.to_string()),
            CoreError::Bulkhead(e) => ("bulkhead".into(), e.to_string()),
            CoreError::Budget(e) => ("budget".into(), e.to_string()),
        })
    }

    fn check(&self) -> Result<(), CoreError> {
        self.retry.validate().map_err(CoreError::Retry)?;
        if let Some(b) = &self.breaker {
            let clock = SimMockClock::with_slots();
            let log = BreakerLog::default();
            AnyBreaker::new(b.config, b.window, &clock, &log).map_err(CoreError::Breaker)?;
        }
        if let Some(l) = &self.limiter {
            l.gcra().map_err(CoreError::Limiter)?;
        }
        if let Some(b) = &self.bulkhead {
            b.validate().map_err(CoreError::Bulkhead)?;
        }
        if let Some(b) = &self.budget {
            retry::Budget::new(b.retry_percent, b.min_per_second, b.max_tokens)
                .map_err(CoreError::Budget)?;
        }
        Ok(())
    }

    /// One line per stage, for the report.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// assert!(Policy::no_protection().describe().contains("1 attempt"));
    /// ```
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let r = &self.retry;
        let dbg = format!("{r:?}");
        let attempts = dbg
            .split("max_attempts: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("?")
            .to_string();
        if attempts == "1" {
            parts.push("1 attempt".to_string());
        } else {
            parts.push(format!("retry: {attempts} attempts"));
        }
        if let Some(b) = &self.budget {
            parts.push(format!(
                "budget {} % of successes, {}/s floor",
                b.retry_percent, b.min_per_second
            ));
        }
        if self.breaker.is_some() {
            parts.push("circuit breaker".to_string());
        }
        if let Some(l) = &self.limiter {
            let (n, per) = l.rate();
            parts.push(format!("limiter {n} per {}", human(per)));
        }
        if let Some(b) = &self.bulkhead {
            parts.push(format!("bulkhead {}", b.max_concurrent()));
        }
        if let Some(d) = self.attempt_timeout {
            parts.push(format!("attempt timeout {}", human(d)));
        }
        if let Some(d) = self.total_timeout {
            parts.push(format!("total timeout {}", human(d)));
        }
        parts.join(", ")
    }

    /// Reads the policies of a TOML file (the schema is in the [module](self) docs); `path`
    /// names the file in errors.
    ///
    /// # Errors
    ///
    /// [`FileError`] naming the line and the field: a TOML or type error, an unknown field, or
    /// a value the core's config refuses (its typed error, in words).
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// let text = "[[policy]]\nname = \"r\"\n[policy.retry]\nmax_attempts = 0\n";
    /// let err = Policy::from_toml("p.toml", text).unwrap_err();
    /// assert_eq!(err.line, Some(4));
    /// assert_eq!(err.field, "policy[0].retry.max_attempts");
    /// assert_eq!(err.to_string(), "p.toml:4: policy[0].retry.max_attempts: max_attempts must be at least 1");
    /// ```
    pub fn from_toml(path: &str, text: &str) -> Result<Vec<Policy>, FileError> {
        let raw: FileToml = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let cx = Ctx { path, text };
        if raw.policy.is_empty() {
            return Err(FileError {
                path: path.to_string(),
                line: None,
                field: "policy".into(),
                message: "no [[policy]] tables in the file".into(),
            });
        }
        raw.policy
            .iter()
            .enumerate()
            .map(|(i, p)| p.get_ref().to_policy(&cx, i, p.span()))
            .collect()
    }
}

enum CoreError {
    Retry(retry::ConfigError),
    Breaker(circuit_breaker::ConfigError),
    Limiter(rate_limiter::ConfigError),
    Bulkhead(bulkhead::ConfigError),
    Budget(retry::ConfigError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    policy: Vec<Spanned<PolicyToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    name: Option<String>,
    attempt_timeout: Option<Spanned<String>>,
    total_timeout: Option<Spanned<String>>,
    waits: Option<Spanned<String>>,
    retry: Option<Spanned<RetryToml>>,
    budget: Option<Spanned<BudgetToml>>,
    breaker: Option<Spanned<BreakerToml>>,
    limiter: Option<Spanned<LimiterToml>>,
    bulkhead: Option<Spanned<BulkheadToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryToml {
    max_attempts: Option<Spanned<u32>>,
    backoff: Option<Spanned<String>>,
    initial: Option<Spanned<String>>,
    multiplier: Option<Spanned<u32>>,
    step: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    jitter_percent: Option<Spanned<u8>>,
    max_elapsed: Option<Spanned<String>>,
    max_retry_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetToml {
    retry_percent: Spanned<u16>,
    min_per_second: Option<Spanned<u16>>,
    max_tokens: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerToml {
    consecutive_failures: Option<Spanned<u32>>,
    failure_rate: Option<Spanned<u8>>,
    slow_threshold: Option<Spanned<String>>,
    slow_percent: Option<Spanned<u8>>,
    minimum_calls: Option<Spanned<u32>>,
    window: Option<Spanned<String>>,
    window_size: Option<Spanned<u64>>,
    time_window: Option<Spanned<String>>,
    open_for: Option<Spanned<String>>,
    open_growth: Option<Spanned<u32>>,
    open_max: Option<Spanned<String>>,
    open_jitter: Option<Spanned<u8>>,
    half_open_probes: Option<Spanned<u32>>,
    half_open_successes: Option<Spanned<u32>>,
    half_open_verdict: Option<Spanned<String>>,
    max_half_open: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimiterToml {
    rate: Spanned<u32>,
    per: Option<Spanned<String>>,
    burst: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkheadToml {
    max_concurrent: Spanned<usize>,
}

/// The span of an optional field, or else of its table.
fn at<T>(v: &Option<Spanned<T>>, table: &Range<usize>) -> Range<usize> {
    v.as_ref().map_or(table.clone(), |v| v.span())
}

fn val<T: Copy>(v: &Option<Spanned<T>>) -> Option<T> {
    v.as_ref().map(|v| *v.get_ref())
}

impl PolicyToml {
    fn to_policy(&self, cx: &Ctx<'_>, i: usize, span: Range<usize>) -> Result<Policy, FileError> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("policy {}", i + 1));
        let f = |s: &str| format!("policy[{i}].{s}");
        let mut p = Policy::no_protection().named(&name);
        p.attempt_timeout = cx.opt_duration(&self.attempt_timeout, &f("attempt_timeout"))?;
        p.total_timeout = cx.opt_duration(&self.total_timeout, &f("total_timeout"))?;
        if let Some(w) = &self.waits {
            p.waits = match w.get_ref().as_str() {
                "breaker" => Waits::Breaker,
                "all" => Waits::All,
                "nothing" => Waits::Nothing,
                other => {
                    return Err(cx.err(
                        w.span(),
                        &f("waits"),
                        format!("`{other}`: expected \"breaker\", \"all\" or \"nothing\""),
                    ));
                }
            };
        }
        if let Some(r) = &self.retry {
            p.retry = r.get_ref().to_config(cx, &f("retry"), r.span())?;
        }
        if let Some(b) = &self.budget {
            let t = b.get_ref();
            let spec = BudgetSpec {
                retry_percent: *t.retry_percent.get_ref(),
                min_per_second: val(&t.min_per_second).unwrap_or(0),
                max_tokens: val(&t.max_tokens).unwrap_or(100),
            };
            retry::Budget::new(spec.retry_percent, spec.min_per_second, spec.max_tokens).map_err(
                |e| {
                    cx.err(
                        t.retry_percent.span(),
                        &f("budget.retry_percent"),
                        format!("{e} (0 ..= 1000)"),
                    )
                },
            )?;
            p.budget = Some(spec);
        }
        if let Some(b) = &self.breaker {
            p.breaker = Some(b.get_ref().to_spec(cx, &f("breaker"), b.span())?);
        }
        if let Some(l) = &self.limiter {
            let t = l.get_ref();
            let per = match &t.per {
                Some(per) => cx.duration(per, &f("limiter.per"))?,
                None => Duration::from_secs(1),
            };
            let mut cfg = rate_limiter::Config::per(*t.rate.get_ref(), per);
            if let Some(b) = val(&t.burst) {
                cfg = cfg.burst(b);
            }
            cfg.gcra().map_err(|e| {
                let (field, sp) = match e {
                    rate_limiter::ConfigError::ZeroBurst | rate_limiter::ConfigError::TooLong => {
                        ("burst", at(&t.burst, &l.span()))
                    }
                    _ => ("rate", t.rate.span()),
                };
                cx.err(sp, &f(&format!("limiter.{field}")), e)
            })?;
            p.limiter = Some(cfg);
        }
        if let Some(b) = &self.bulkhead {
            let t = b.get_ref();
            let cfg = bulkhead::Config::new(*t.max_concurrent.get_ref());
            cfg.validate()
                .map_err(|e| cx.err(t.max_concurrent.span(), &f("bulkhead.max_concurrent"), e))?;
            p.bulkhead = Some(cfg);
        }
        // Everything was checked field by field; this catches what only the whole sees.
        p.validate()
            .map_err(|(section, m)| cx.err(span, &f(&section), m))?;
        Ok(p)
    }
}

impl RetryToml {
    fn to_config(
        &self,
        cx: &Ctx<'_>,
        f: &str,
        table: Range<usize>,
    ) -> Result<retry::Config, FileError> {
        let fl = |s: &str| format!("{f}.{s}");
        let mut cfg = retry::Config::new();
        if let Some(n) = val(&self.max_attempts) {
            cfg = cfg.max_attempts(n);
        }
        let initial = cx
            .opt_duration(&self.initial, &fl("initial"))?
            .unwrap_or(Duration::from_millis(100));
        let kind = self
            .backoff
            .as_ref()
            .map_or("exponential", |b| b.get_ref().as_str());
        let mut backoff = match kind {
            "constant" => Backoff::constant(initial),
            "linear" => {
                let step = cx.opt_duration(&self.step, &fl("step"))?.unwrap_or(initial);
                Backoff::linear(initial, step)
            }
            "exponential" => {
                let b = Backoff::exponential(initial);
                match val(&self.multiplier) {
                    Some(m) => b.multiplier(m),
                    None => b,
                }
            }
            other => {
                return Err(cx.err(
                    at(&self.backoff, &table),
                    &fl("backoff"),
                    format!("`{other}`: expected \"constant\", \"linear\" or \"exponential\""),
                ));
            }
        };
        let max = cx.opt_duration(&self.max, &fl("max"))?;
        backoff = match (max, kind) {
            (Some(m), _) => backoff.max(m),
            (None, "exponential") => backoff.max(Duration::from_secs(10).max(initial)),
            (None, _) => backoff,
        };
        cfg = cfg.backoff(backoff);
        let jitter = match self.jitter.as_ref().map(|j| j.get_ref().as_str()) {
            None | Some("full") => Jitter::Full,
            Some("none") => Jitter::None,
            Some("equal") => Jitter::Equal,
            Some("decorrelated") => Jitter::Decorrelated,
            Some("proportional") => Jitter::Proportional(val(&self.jitter_percent).unwrap_or(20)),
            Some(other) => {
                return Err(cx.err(
                    at(&self.jitter, &table),
                    &fl("jitter"),
                    format!("`{other}`: expected none, full, equal, decorrelated or proportional"),
                ));
            }
        };
        cfg = cfg.jitter(jitter);
        if let Some(d) = cx.opt_duration(&self.max_elapsed, &fl("max_elapsed"))? {
            cfg = cfg.max_elapsed(d);
        }
        if let Some(d) = cx.opt_duration(&self.max_retry_after, &fl("max_retry_after"))? {
            cfg = cfg.max_retry_after(d);
        }
        cfg.validate().map_err(|e| {
            use retry::ConfigError as E;
            let (field, span) = match e {
                E::ZeroAttempts => ("max_attempts", at(&self.max_attempts, &table)),
                E::ZeroMultiplier => ("multiplier", at(&self.multiplier, &table)),
                E::MaxBelowInitial => ("max", at(&self.max, &table)),
                E::PercentOutOfRange => ("jitter_percent", at(&self.jitter_percent, &table)),
                E::ZeroInitialDelay => ("initial", at(&self.initial, &table)),
                E::ZeroMaxRetryAfter => ("max_retry_after", at(&self.max_retry_after, &table)),
                _ => ("", table.clone()),
            };
            cx.err(span, &fl(field), e)
        })?;
        Ok(cfg)
    }
}

impl BreakerToml {
    fn to_spec(
        &self,
        cx: &Ctx<'_>,
        f: &str,
        table: Range<usize>,
    ) -> Result<BreakerSpec, FileError> {
        let fl = |s: &str| format!("{f}.{s}");
        let mut c = circuit_breaker::Config::new();
        if let Some(n) = val(&self.consecutive_failures) {
            c = c.consecutive_failures(n);
        }
        if let Some(p) = val(&self.failure_rate) {
            c = c.failure_rate(p);
        }
        match (
            cx.opt_duration(&self.slow_threshold, &fl("slow_threshold"))?,
            val(&self.slow_percent),
        ) {
            (Some(t), Some(p)) => c = c.slow_calls(t, p),
            (None, None) => {}
            (Some(_), None) => {
                return Err(cx.err(
                    at(&self.slow_threshold, &table),
                    &fl("slow_percent"),
                    "slow_threshold needs slow_percent",
                ));
            }
            (None, Some(_)) => {
                return Err(cx.err(
                    at(&self.slow_percent, &table),
                    &fl("slow_threshold"),
                    "slow_percent needs slow_threshold",
                ));
            }
        }
        if let Some(n) = val(&self.minimum_calls) {
            c = c.minimum_calls(n);
        }
        if let Some(d) = cx.opt_duration(&self.time_window, &fl("time_window"))? {
            c = c.time_window(d);
        }
        let open_for = cx.opt_duration(&self.open_for, &fl("open_for"))?;
        if let Some(d) = open_for {
            c = c.open_for(d);
        }
        if let Some(m) = val(&self.open_growth) {
            let max = cx
                .opt_duration(&self.open_max, &fl("open_max"))?
                .unwrap_or(open_for.unwrap_or(Duration::from_secs(30)) * 8);
            c = c.open_growth(m, max);
        }
        if let Some(j) = val(&self.open_jitter) {
            c = c.open_jitter(j);
        }
        if self.half_open_probes.is_some() || self.half_open_successes.is_some() {
            let probes = val(&self.half_open_probes).unwrap_or(1);
            c = c.half_open(probes, val(&self.half_open_successes).unwrap_or(probes));
        }
        if let Some(v) = &self.half_open_verdict {
            c = c.half_open_verdict(match v.get_ref().as_str() {
                "first-failure" => HalfOpenVerdict::FirstFailure,
                "rate" => HalfOpenVerdict::Rate,
                other => {
                    return Err(cx.err(
                        v.span(),
                        &fl("half_open_verdict"),
                        format!("`{other}`: expected \"first-failure\" or \"rate\""),
                    ));
                }
            });
        }
        if let Some(d) = cx.opt_duration(&self.max_half_open, &fl("max_half_open"))? {
            c = c.max_half_open(d);
        }
        let rate = self.failure_rate.is_some() || self.slow_percent.is_some();
        let window = match self.window.as_ref().map(|w| w.get_ref().as_str()) {
            None if !rate => Window::NoWindow,
            None | Some("count") => {
                let n = val(&self.window_size).unwrap_or(100);
                Window::count(n).ok_or_else(|| {
                    cx.err(
                        at(&self.window_size, &table),
                        &fl("window_size"),
                        format!("{n}: count windows of 10, 20, 50, 100, 200, 500 or 1000 calls"),
                    )
                })?
            }
            Some("none") => Window::NoWindow,
            Some("time") => Window::Time10,
            Some(other) => {
                return Err(cx.err(
                    at(&self.window, &table),
                    &fl("window"),
                    format!("`{other}`: expected \"none\", \"count\" or \"time\""),
                ));
            }
        };
        let clock = SimMockClock::with_slots();
        let log = BreakerLog::default();
        AnyBreaker::new(c, window, &clock, &log).map_err(|e| {
            use circuit_breaker::ConfigError as E;
            use circuit_breaker::Field as F;
            let field = |fd: F| -> (&str, Range<usize>) {
                match fd {
                    F::ConsecutiveFailures => (
                        "consecutive_failures",
                        at(&self.consecutive_failures, &table),
                    ),
                    F::FailureRate => ("failure_rate", at(&self.failure_rate, &table)),
                    F::SlowRate => ("slow_percent", at(&self.slow_percent, &table)),
                    F::SlowThreshold => ("slow_threshold", at(&self.slow_threshold, &table)),
                    F::MinimumCalls => ("minimum_calls", at(&self.minimum_calls, &table)),
                    F::OpenMultiplier => ("open_growth", at(&self.open_growth, &table)),
                    F::OpenJitter => ("open_jitter", at(&self.open_jitter, &table)),
                    F::Probes => ("half_open_probes", at(&self.half_open_probes, &table)),
                    F::SuccessesToClose => {
                        ("half_open_successes", at(&self.half_open_successes, &table))
                    }
                    F::MaxHalfOpen => ("max_half_open", at(&self.max_half_open, &table)),
                    F::WindowSize => ("window_size", at(&self.window_size, &table)),
                    _ => ("", table.clone()),
                }
            };
            let (name, span) = match e {
                E::Zero(fd) | E::PercentOutOfRange(fd) | E::TooLarge(fd) => field(fd),
                E::NoWindow => ("window", at(&self.window, &table)),
                E::MinimumCallsAboveWindow => ("minimum_calls", at(&self.minimum_calls, &table)),
                E::ZeroWindow => ("time_window", at(&self.time_window, &table)),
                E::OpenMaxBelowBase => ("open_max", at(&self.open_max, &table)),
                E::SuccessesAboveProbes => {
                    ("half_open_successes", at(&self.half_open_successes, &table))
                }
                _ => ("", table.clone()),
            };
            let field = if name.is_empty() {
                f.to_string()
            } else {
                fl(name)
            };
            cx.err(span, &field, e)
        })?;
        Ok(BreakerSpec { config: c, window })
    }
}
