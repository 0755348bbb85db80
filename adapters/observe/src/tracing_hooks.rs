//! [`TracingHooks`]: spans and events through `tracing`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bulwark::Instant;
use bulwark::admission::Outcome;
use bulwark::circuit_breaker::{self, Events, State, Transition};
use bulwark::retry::{Finish, Hooks};
use tracing::{Level, Span};

use crate::{CallOutcome, Observer, Pattern, Signal};

/// Hooks that speak `tracing`, named by a policy name that every event and span carries
/// (`name`, beside `pattern`). Plug it in as a breaker's
/// [`Events`](bulwark::circuit_breaker::Events), a retry's or a pipeline's
/// [`Hooks`](bulwark::retry::Hooks) (it needs the error to be `Debug`: the cause of a
/// retry), or the [`Observer`] of this crate's wrappers; pair it with other hooks as
/// `(TracingHooks, other)`.
///
/// Every event has the target `bulwark`, the fields `pattern` and `name`, and a message:
///
/// | event | level | fields |
/// |---|---|---|
/// | breaker changed state to open or forced open | WARN | `from`, `to` |
/// | breaker changed state (any other) | INFO | `from`, `to` |
/// | breaker rejected a call | DEBUG | `retry_after_ms` (absent when forced open) |
/// | breaker recorded an outcome | TRACE | `outcome`, `slow` |
/// | retry attempt started | TRACE | `attempt` |
/// | retrying | DEBUG | `attempt` (the one that failed), `delay_ms`, `cause` (the outcome, `Debug`) |
/// | retry budget denied a retry | WARN | `attempt` |
/// | retried call ended: success | DEBUG | `attempts`, `finish` |
/// | retried call ended: failure | INFO | `attempts`, `finish` |
/// | gate admitted a call / admitted call ended | TRACE | `outcome` for the end |
/// | gate rejected (breaker) or shed (limiter, bulkhead, pool) a call | DEBUG | `retry_at_ns` (on the gate's clock, when known) |
/// | instrumented call waits / stops waiting | TRACE | `waiting` |
/// | instrumented call timed out | INFO | `outcome`, `duration_ms` |
/// | instrumented call ended otherwise | DEBUG | `outcome`, `duration_ms` |
/// | fallback chain fell back | INFO | `step` |
///
/// Each [`instrument`](crate::instrument)ed call (and each call of an `ObserveLayer`) runs in
/// a DEBUG span named `bulwark` with the fields `pattern` and `name`.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark::MockClock;
/// use bulwark_observe::TracingHooks;
///
/// let clock = MockClock::new();
/// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock)
///     .unwrap()
///     .with_events(TracingHooks::new("checkout"));
/// // With a subscriber installed, this logs at WARN:
/// // circuit breaker changed state pattern="circuit_breaker" name="checkout" from=Closed to=Open
/// breaker.try_acquire().unwrap().failure();
/// assert_eq!(breaker.events().name(), "checkout");
/// ```
#[derive(Clone, Debug)]
pub struct TracingHooks {
    name: Cow<'static, str>,
}

impl TracingHooks {
    /// Hooks for the policy `name`.
    ///
    /// ```
    /// let hooks = bulwark_observe::TracingHooks::new(format!("tenant-{}", 7));
    /// assert_eq!(hooks.name(), "tenant-7");
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        TracingHooks { name: name.into() }
    }

    /// The policy name.
    ///
    /// ```
    /// assert_eq!(bulwark_observe::TracingHooks::new("search").name(), "search");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One event at a level chosen at run time (`tracing`'s macros want a constant level).
macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {{
        let level: Level = $level;
        if level == Level::WARN {
            tracing::event!(target: "bulwark", Level::WARN, $($rest)+)
        } else if level == Level::INFO {
            tracing::event!(target: "bulwark", Level::INFO, $($rest)+)
        } else {
            tracing::event!(target: "bulwark", Level::DEBUG, $($rest)+)
        }
    }};
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Events for TracingHooks {
    fn on_state_change(&self, t: Transition) {
        let level = match t.to {
            State::Open | State::ForcedOpen => Level::WARN,
            _ => Level::INFO,
        };
        event_at!(
            level,
            pattern = "circuit_breaker",
            name = %self.name,
            from = ?t.from,
            to = ?t.to,
            "circuit breaker changed state"
        );
    }

    fn on_rejected(&self, rejected: circuit_breaker::Rejected, _at: Instant) {
        match rejected.retry_after() {
            Some(after) => tracing::debug!(
                target: "bulwark",
                pattern = "circuit_breaker",
                name = %self.name,
                retry_after_ms = millis(after),
                "call rejected"
            ),
            None => tracing::debug!(
                target: "bulwark",
                pattern = "circuit_breaker",
                name = %self.name,
                "call rejected"
            ),
        }
    }

    fn on_outcome(&self, outcome: Outcome, slow: bool) {
        tracing::trace!(
            target: "bulwark",
            pattern = "circuit_breaker",
            name = %self.name,
            outcome = ?outcome,
            slow,
            "call recorded"
        );
    }
}

impl<T, E: fmt::Debug> Hooks<T, E> for TracingHooks {
    fn on_attempt(&self, attempt: u32) {
        tracing::trace!(target: "bulwark", pattern = "retry", name = %self.name, attempt, "attempt");
    }

    fn on_retry(&self, attempt: u32, delay: Duration, outcome: &Result<T, E>) {
        match outcome {
            Err(e) => tracing::debug!(
                target: "bulwark",
                pattern = "retry",
                name = %self.name,
                attempt,
                delay_ms = millis(delay),
                cause = ?e,
                "retrying"
            ),
            Ok(_) => tracing::debug!(
                target: "bulwark",
                pattern = "retry",
                name = %self.name,
                attempt,
                delay_ms = millis(delay),
                cause = "a result judged a failure",
                "retrying"
            ),
        }
    }

    fn on_budget_denied(&self, attempt: u32, _outcome: &Result<T, E>) {
        tracing::warn!(
            target: "bulwark",
            pattern = "retry",
            name = %self.name,
            attempt,
            "retry budget denied a retry"
        );
    }

    fn on_finish(&self, attempts: u32, finish: Finish) {
        let level = if finish.is_success() {
            Level::DEBUG
        } else {
            Level::INFO
        };
        event_at!(
            level,
            pattern = "retry",
            name = %self.name,
            attempts,
            finish = ?finish,
            "retried call ended"
        );
    }
}

impl Observer for TracingHooks {
    fn on_signal(&self, signal: Signal) {
        let pattern = signal.pattern().as_str();
        let name = &*self.name;
        match signal {
            Signal::Admitted { .. } => {
                tracing::trace!(target: "bulwark", pattern, name, "call admitted")
            }
            Signal::Rejected {
                pattern: p,
                retry_at,
            } => {
                let message = if p == Pattern::CircuitBreaker {
                    "call rejected"
                } else {
                    "call shed"
                };
                match retry_at {
                    Some(at) => tracing::debug!(
                        target: "bulwark",
                        pattern,
                        name,
                        retry_at_ns = at.as_nanos(),
                        "{message}"
                    ),
                    None => tracing::debug!(target: "bulwark", pattern, name, "{message}"),
                }
            }
            Signal::Ended { outcome, .. } => {
                tracing::trace!(target: "bulwark", pattern, name, outcome = ?outcome, "admitted call ended")
            }
            Signal::Waiting { waiting, .. } => {
                tracing::trace!(target: "bulwark", pattern, name, waiting, "waiting")
            }
            Signal::Finished {
                outcome, duration, ..
            } => {
                let level = if outcome == CallOutcome::TimedOut {
                    Level::INFO
                } else {
                    Level::DEBUG
                };
                let message = if outcome == CallOutcome::TimedOut {
                    "call timed out"
                } else {
                    "call ended"
                };
                event_at!(
                    level,
                    pattern,
                    name,
                    outcome = outcome.as_str(),
                    duration_ms = millis(duration),
                    "{message}"
                );
            }
            Signal::FellBack { step } => {
                tracing::info!(target: "bulwark", pattern, name, step, "fell back")
            }
        }
    }

    fn span(&self, pattern: Pattern) -> Span {
        tracing::debug_span!(target: "bulwark", "bulwark", pattern = pattern.as_str(), name = %self.name)
    }
}
