//! Policies: what a client wraps its calls in, as the core's own `Config` types, and the
//! TOML schema that reads them.
//!
//! A file's `retry`, `breaker`, `limiter` and `bulkhead` tables are the core's
//! `retry::Config`, `circuit_breaker::Config`, `rate_limiter::Config` and `bulkhead::Config`,
//! read by the core's `serde` feature: the same keys as their builder methods, checked by the
//! core as they are read. The simulator's own keys are only what the core has no `Config`
//! for: the name, the timeouts, what retry waits out, the retry budget and the breaker's
//! window (a type parameter in the core). Errors name the file, the line and the field
//! ([`FileError`]).
//!
//! # The schema
//!
//! ```toml
//! [[policy]]
//! name = "full pipeline"
//! attempt_timeout = "250ms"     # each attempt (optional)
//! total_timeout = "1s"          # the whole call, retries included (optional)
//! waits = "breaker"             # which rejections retry waits out: breaker | all | nothing
//! breaker_window = 100          # calls (10, 20, 50, 100, 200, 500, 1000), "time" or "none";
//!                               # omitted: 100 if the breaker has a rate policy, else none
//!
//! [policy.retry]                # bulwark::retry::Config; omitted: no retries
//! max_attempts = 3              # counts the first call
//! backoff = { exponential = "50ms", max = "1s" }   # or { constant = "100ms" },
//!                               # { linear = "100ms", step = "50ms", max = "1s" },
//!                               # exponential's multiplier = 2
//! jitter = "full"               # none | full | equal | decorrelated | { proportional = 20 }
//! max_elapsed = "2s"
//! max_retry_after = "5s"
//!
//! [policy.budget]               # a retry budget shared by the policy's calls (the sim's)
//! retry_percent = 20            # each success earns 20 % of a retry
//! min_per_second = 10           # retries always allowed per second
//! max_tokens = 100              # earned retries kept at most
//!
//! [policy.breaker]              # bulwark::circuit_breaker::Config
//! consecutive_failures = 5
//! failure_rate = 50             # percent, needs a window
//! slow_calls = { threshold = "500ms", percent = 80 }
//! minimum_calls = 20
//! time_window = "10s"           # breaker_window = "time": 10 buckets over this span
//! open_for = "2s"
//! open_growth = { multiplier = 2, max = "30s" }
//! open_jitter = 10              # percent
//! half_open = { probes = 1, successes_to_close = 1 }
//! half_open_verdict = "first_failure"   # first_failure | rate
//! max_half_open = "5s"
//!
//! [policy.limiter]              # bulwark::rate_limiter::Config
//! rate = 2000                   # tokens per `per`
//! per = "1s"
//! burst = 200
//!
//! [policy.bulkhead]             # bulwark::bulkhead::Config
//! max_concurrent = 128
//! ```
//!
//! Inside a pipeline the limiter and the bulkhead answer at once (their `max_wait` does not
//! apply; `waits = "all"` makes retry wait out a limiter instead). A `seed` in the `retry`,
//! `breaker` or `limiter` table fixes that primitive's random draws; otherwise the run
//! derives them from the scenario's seed.

use core::time::Duration;

use bulwark::circuit_breaker::{self, ConfigError, Machine, NoWindow};
use bulwark::duration::Text;
use bulwark::pipeline::Waits;
use bulwark::retry::{self, Backoff};
use bulwark::{bulkhead, rate_limiter};
use serde::Deserialize;

use crate::engine::{BreakerLog, BuildError, Primitives, SimMockClock};
use crate::files::{Doc, FileError};
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

    /// Does `config` need a window (a failure-rate or slow-call policy)? A file that leaves
    /// `breaker_window` out gets [`Window::Count100`] then, and [`Window::NoWindow`] otherwise.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_sim::policy::Window;
    /// assert!(Window::needed(&Config::new().failure_rate(50)));
    /// assert!(!Window::needed(&Config::new().consecutive_failures(5)));
    /// ```
    pub fn needed(config: &circuit_breaker::Config) -> bool {
        matches!(
            Machine::<NoWindow>::new(*config),
            Err(ConfigError::NoWindow)
        )
    }
}

/// In a policy file, `breaker_window`: a number of calls (a count window of 10, 20, 50, 100,
/// 200, 500 or 1000), `"time"` (10 buckets over the breaker's `time_window`) or `"none"`.
///
/// ```
/// use bulwark_sim::policy::Window;
/// #[derive(serde::Deserialize)]
/// struct P { w: Window }
/// assert_eq!(toml::from_str::<P>("w = 200").unwrap().w, Window::Count200);
/// assert_eq!(toml::from_str::<P>("w = \"time\"").unwrap().w, Window::Time10);
/// let e = toml::from_str::<P>("w = 30").err().unwrap();
/// assert!(e.message().contains("10, 20, 50, 100, 200, 500 or 1000"));
/// ```
impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Window;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a number of calls, \"time\" or \"none\"")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Window, E> {
                u64::try_from(n)
                    .ok()
                    .and_then(Window::count)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{n}: count windows of 10, 20, 50, 100, 200, 500 or 1000 calls"
                        ))
                    })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Window, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(-1))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Window, E> {
                match s {
                    "time" => Ok(Window::Time10),
                    "none" => Ok(Window::NoWindow),
                    _ => Err(E::custom(format!(
                        "`{s}`: a number of calls, \"time\" or \"none\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
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

/// A retry budget's settings ([`retry::Budget::new`]); in a file, `[policy.budget]` with
/// these keys (`min_per_second` 0 and `max_tokens` 100 when omitted).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Each success earns this percentage of a retry.
    pub retry_percent: u16,
    /// Retries always allowed per second.
    #[serde(default)]
    pub min_per_second: u16,
    /// Earned retries kept at most.
    #[serde(default = "hundred")]
    pub max_tokens: u32,
}

fn hundred() -> u32 {
    100
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

    /// Checks every stage with the core: builds the primitives a run builds.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: the stage (`retry`, `breaker`, `budget.retry_percent`, ...) and the
    /// core's message.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// let mut p = Policy::retry_only();
    /// p.retry = p.retry.max_attempts(0);
    /// let err = p.validate().unwrap_err();
    /// assert_eq!(err.to_string(), "retry: max_attempts must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), BuildError> {
        self.retry.validate().map_err(|e| BuildError {
            field: "retry".into(),
            message: e.to_string(),
        })?;
        let clock = SimMockClock::with_slots();
        let log = BreakerLog::default();
        Primitives::build(self, &clock, &log, 0).map(drop)
    }

    /// One line per stage, for the report.
    ///
    /// ```
    /// use bulwark_sim::policy::Policy;
    /// assert!(Policy::no_protection().describe().contains("1 attempt"));
    /// ```
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.retry.attempt_limit() {
            1 => parts.push("1 attempt".to_string()),
            n => parts.push(format!("retry: {n} attempts")),
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
    /// a value the core's config refuses (its error, in its words).
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
        let doc = Doc::new(path, text);
        let raw: FileToml = doc.read()?;
        if raw.policy.is_empty() {
            return Err(doc.error("policy", "no [[policy]] tables in the file"));
        }
        raw.policy
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.into_policy(i, &doc))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    policy: Vec<PolicyToml>,
}

/// One `[[policy]]`: the core's configs as they are, and the simulator's own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    name: Option<String>,
    attempt_timeout: Option<Text>,
    total_timeout: Option<Text>,
    #[serde(default)]
    waits: WaitsToml,
    breaker_window: Option<Window>,
    retry: Option<retry::Config>,
    budget: Option<BudgetSpec>,
    breaker: Option<circuit_breaker::Config>,
    limiter: Option<rate_limiter::Config>,
    bulkhead: Option<bulkhead::Config>,
}

/// [`Waits`], as a file writes it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum WaitsToml {
    #[default]
    Breaker,
    All,
    Nothing,
}

impl PolicyToml {
    fn into_policy(self, i: usize, doc: &Doc<'_>) -> Result<Policy, FileError> {
        let at = |field: &str| format!("policy[{i}].{field}");
        let breaker = match (self.breaker, self.breaker_window) {
            (Some(config), window) => Some(BreakerSpec {
                config,
                window: window.unwrap_or(if Window::needed(&config) {
                    Window::Count100
                } else {
                    Window::NoWindow
                }),
            }),
            (None, Some(_)) => {
                return Err(doc.error(
                    &at("breaker_window"),
                    "a window without a breaker: add [policy.breaker]",
                ));
            }
            (None, None) => None,
        };
        let p = Policy {
            name: self.name.unwrap_or_else(|| format!("policy {}", i + 1)),
            retry: self.retry.unwrap_or(retry::Config::new().max_attempts(1)),
            budget: self.budget,
            breaker,
            limiter: self.limiter,
            bulkhead: self.bulkhead,
            attempt_timeout: self.attempt_timeout.map(|t| t.0),
            total_timeout: self.total_timeout.map(|t| t.0),
            waits: match self.waits {
                WaitsToml::Breaker => Waits::Breaker,
                WaitsToml::All => Waits::All,
                WaitsToml::Nothing => Waits::Nothing,
            },
        };
        // The core checked each config as it read it; what is left is what only the whole
        // sees: the breaker's window, the budget.
        p.validate()
            .map_err(|e| doc.error(&at(&e.field), e.message))?;
        Ok(p)
    }
}
