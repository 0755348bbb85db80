//! The README's Observability setup, run: one pair of hooks on a breaker and on the
//! pipeline around it, heard by a subscriber and a recorder at once.
#![cfg(all(feature = "tracing", feature = "metrics"))]

mod support;

use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::retry::{Backoff, Config, Jitter};
use bulwark::{MockClock, mock};
use bulwark_observe::{MetricsHooks, TracingHooks};
use support::{counter, with_metrics, with_tracing};
use tracing::Level;

#[test]
fn one_pair_of_hooks_on_the_breaker_and_the_pipeline() {
    let clock = MockClock::new();
    let ((out, events), series) = with_metrics(|| {
        with_tracing(|| {
            let hooks = (TracingHooks::new("checkout"), MetricsHooks::new("checkout"));
            let cfg = Cb::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(60));
            let breaker = CircuitBreaker::new(cfg, &clock)
                .unwrap()
                .with_events(&hooks);
            let retry = Config::new()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_millis(10)))
                .jitter(Jitter::None);
            let pipeline = Pipeline::new(&clock, retry)
                .unwrap()
                .breaker(&breaker)
                .total_timeout(Duration::from_secs(1))
                .hooks(&hooks);
            mock::run(&clock, pipeline.call(|| async { Err::<(), _>("503") })).unwrap()
        })
    });
    // Two failures open the breaker; the third and last attempt is rejected: the call ends
    // with the rejection, its attempts used up.
    assert!(matches!(out, Err(Error::CircuitOpen(_))));
    for (key, value) in [
        (
            "bulwark_circuit_breaker_calls_total{name=checkout,outcome=failure}",
            counter(2),
        ),
        (
            "bulwark_circuit_breaker_calls_total{name=checkout,outcome=rejected}",
            counter(1),
        ),
        (
            "bulwark_circuit_breaker_transitions_total{name=checkout,from=closed,to=open}",
            counter(1),
        ),
        (
            "bulwark_retry_calls_total{name=checkout,kind=failed_with_retry}",
            counter(1),
        ),
        ("bulwark_retry_attempts_total{name=checkout}", counter(3)),
    ] {
        assert_eq!(series.get(key), Some(&value), "{key}");
    }
    let warned: Vec<_> = events
        .iter()
        .filter(|e| e.level == Level::WARN)
        .map(|e| (e.message(), e.fields["to"].as_str()))
        .collect();
    assert_eq!(warned, [("circuit breaker changed state", "Open")]);
    let last = events.last().unwrap();
    assert_eq!(
        (last.level, last.message()),
        (Level::INFO, "retried call ended")
    );
    assert_eq!(last.fields["finish"], "Exhausted");
}
