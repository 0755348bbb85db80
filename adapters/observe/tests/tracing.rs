//! `TracingHooks`: the exact events (level, message, fields) and spans of each pattern, on
//! the mock clock.
#![cfg(feature = "tracing")]

mod support;

use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
use bulwark::pipeline::Pipeline;
use bulwark::retry::{Backoff, Budget, Config, Jitter};
use bulwark::timeout::timeout;
use bulwark::{MockClock, mock};
use bulwark_observe::{Pattern, TracingHooks, instrument};
use support::{Seen, fields, with_tracing};
use tracing::Level;

fn brief(events: &[Seen]) -> Vec<(Level, String)> {
    events
        .iter()
        .map(|e| (e.level, e.message().to_owned()))
        .collect()
}

#[test]
fn breaker_state_changes_warn_on_opening_and_inform_on_closing() {
    let clock = MockClock::new();
    let ((), events) = with_tracing(|| {
        let breaker = CircuitBreaker::new(
            Cb::new()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(2)),
            &clock,
        )
        .unwrap()
        .with_events(TracingHooks::new("checkout"));
        let _ = breaker.call_sync(|| Err::<(), _>("503"));
        let _ = breaker.call_sync(|| Ok::<_, &str>(())); // rejected, 2 s to go
        clock.advance(Duration::from_secs(2));
        let _ = breaker.call_sync(|| Ok::<_, &str>(()));
    });
    assert_eq!(
        brief(&events),
        [
            (Level::TRACE, "call recorded".to_owned()),
            (Level::WARN, "circuit breaker changed state".to_owned()),
            (Level::DEBUG, "call rejected".to_owned()),
            (Level::INFO, "circuit breaker changed state".to_owned()),
            (Level::TRACE, "call recorded".to_owned()),
            (Level::INFO, "circuit breaker changed state".to_owned()),
        ]
    );
    assert!(events.iter().all(|e| e.target == "bulwark"));
    assert_eq!(
        events[1].fields,
        fields(&[
            ("message", "circuit breaker changed state"),
            ("pattern", "circuit_breaker"),
            ("name", "checkout"),
            ("from", "Closed"),
            ("to", "Open"),
        ])
    );
    assert_eq!(
        events[2].fields,
        fields(&[
            ("message", "call rejected"),
            ("pattern", "circuit_breaker"),
            ("name", "checkout"),
            ("retry_after_ms", "2000"),
        ])
    );
    assert_eq!(events[5].fields["from"], "HalfOpen");
    assert_eq!(events[5].fields["to"], "Closed");
}

#[test]
fn a_retry_inside_a_pipeline_is_seen_with_its_cause_and_delay() {
    let clock = MockClock::new();
    let (out, events) = with_tracing(|| {
        let cfg = Config::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(250)))
            .jitter(Jitter::None);
        let pipeline = Pipeline::new(&clock, cfg)
            .unwrap()
            .hooks(TracingHooks::new("search"));
        let mut n = 0;
        mock::run(
            &clock,
            pipeline.call(|| {
                n += 1;
                let fail = n < 2;
                async move { if fail { Err("503") } else { Ok(n) } }
            }),
        )
        .unwrap()
    });
    assert_eq!(out, Ok(2));
    assert_eq!(
        brief(&events),
        [
            (Level::TRACE, "attempt".to_owned()),
            (Level::DEBUG, "retrying".to_owned()),
            (Level::TRACE, "attempt".to_owned()),
            (Level::DEBUG, "retried call ended".to_owned()),
        ]
    );
    assert_eq!(
        events[1].fields,
        fields(&[
            ("message", "retrying"),
            ("pattern", "retry"),
            ("name", "search"),
            ("attempt", "1"),
            ("delay_ms", "250"),
            (
                "cause",
                "Judged { verdict: Failure { retry_after: None }, value: Operation(\"503\") }"
            ),
        ])
    );
    assert_eq!(events[3].fields["attempts"], "2");
    assert_eq!(events[3].fields["finish"], "Success");
}

#[test]
fn a_denied_budget_warns_and_the_failed_call_informs() {
    let clock = MockClock::new();
    let budget = Budget::new(0, 0, 1).unwrap();
    let ((), events) = with_tracing(|| {
        let pipeline = Pipeline::new(&clock, Config::new())
            .unwrap()
            .budget(&budget)
            .hooks(TracingHooks::new("stingy"));
        let out = mock::run(&clock, pipeline.call(|| async { Err::<(), _>("503") })).unwrap();
        assert!(out.is_err());
    });
    assert_eq!(
        brief(&events),
        [
            (Level::TRACE, "attempt".to_owned()),
            (Level::WARN, "retry budget denied a retry".to_owned()),
            (Level::INFO, "retried call ended".to_owned()),
        ]
    );
    assert_eq!(events[2].fields["finish"], "BudgetExhausted");
}

#[test]
fn an_instrumented_timeout_runs_in_a_span_and_informs_when_it_fires() {
    let clock = MockClock::new();
    let ((), events) = with_tracing(|| {
        let hooks = TracingHooks::new("api");
        let slow = timeout(
            &clock,
            Duration::from_secs(2),
            clock.sleep(Duration::from_secs(5)),
        );
        let out = mock::run(&clock, instrument(Pattern::Timeout, &hooks, &clock, slow)).unwrap();
        assert!(out.is_err());
    });
    assert_eq!(
        brief(&events),
        [
            (Level::TRACE, "waiting".to_owned()),
            (Level::TRACE, "waiting".to_owned()),
            (Level::INFO, "call timed out".to_owned()),
        ]
    );
    let last = &events[2];
    assert_eq!(
        last.fields,
        fields(&[
            ("message", "call timed out"),
            ("pattern", "timeout"),
            ("name", "api"),
            ("outcome", "timed_out"),
            ("duration_ms", "2000"),
        ])
    );
    assert_eq!(
        last.span,
        Some((
            "bulwark".to_owned(),
            fields(&[("pattern", "timeout"), ("name", "api")])
        ))
    );
}
