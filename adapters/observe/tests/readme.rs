//! The README's Observability section, checked: its setup run (one pair of hooks on a
//! breaker and on the pipeline around it, heard by a subscriber and a recorder at once), and
//! its table of metrics compared with what every pattern records.
#![cfg(all(feature = "tracing", feature = "metrics"))]

mod support;

use std::collections::{BTreeMap, BTreeSet};
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

/// The README's table of metrics is exactly what `MetricsHooks` records once every pattern
/// has run: the same names, each with the type and the label names the table gives.
#[test]
fn the_readme_table_is_what_is_recorded() {
    let documented = readme_table();
    let recorded = every_pattern_once();
    let names = |m: &BTreeMap<String, (String, BTreeSet<String>)>| -> BTreeSet<String> {
        m.keys().cloned().collect()
    };
    assert_eq!(
        names(&recorded),
        names(&documented),
        "recorded (left) vs the README's table (right)"
    );
    assert_eq!(recorded, documented);
}

/// The rows of the README's metrics table (in its Observability section): name to (type,
/// label names).
fn readme_table() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Observability\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has an Observability section");
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `bulwark_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].to_owned();
        // Label names are the backticked words of the labels cell (values are not).
        let labels = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(rows.insert(name, (kind, labels)).is_none(), "{line}");
    }
    rows
}

/// A pool whose connections are numbers, opened at once.
struct Numbers;
impl bulwark::pool::Manager for Numbers {
    type Connection = u32;
    type Error = &'static str;
    type Connect = core::future::Ready<Result<u32, &'static str>>;
    fn connect(&self) -> Self::Connect {
        core::future::ready(Ok(1))
    }
}

/// Runs every pattern once with `MetricsHooks` (each signal it knows at least once) and
/// returns every series' name with its type and label names.
fn every_pattern_once() -> BTreeMap<String, (String, BTreeSet<String>)> {
    use bulwark::admission::Permit;
    use bulwark::bulkhead::{Bulkhead, Config as Bh, QueueSemaphore};
    use bulwark::circuit_breaker::CountWindow;
    use bulwark::fallback::fallback;
    use bulwark::pool::{Config as PoolConfig, Pool};
    use bulwark::rate_limiter::{Config as Rl, Keyed, KeyedRateLimiter, RateLimiter};
    use bulwark::retry::{Budget, Retry};
    use bulwark::timeout::timeout;
    use bulwark_observe::{Observed, Pattern, acquired, fell_back, instrument};
    use core::future::IntoFuture;
    use metrics_util::MetricKind;
    use metrics_util::debugging::DebuggingRecorder;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = MockClock::new();
    let hooks = MetricsHooks::new("all");
    metrics::with_local_recorder(&recorder, || {
        // Breaker: a slow success, a failure that opens it, a rejection; its state.
        let cfg = Cb::new()
            .failure_rate(50)
            .minimum_calls(2)
            .slow_calls(Duration::from_secs(1), 100)
            .open_for(Duration::from_secs(60));
        let breaker = CircuitBreaker::with_window(cfg, CountWindow::<2>, &clock)
            .unwrap()
            .with_events(&hooks);
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_secs(2));
        permit.success();
        breaker.try_acquire().unwrap().failure();
        assert!(breaker.try_acquire().is_err());
        // Retry: a budget that denies the first retry.
        let budget = Budget::new(0, 0, 1).unwrap();
        let retry = Retry::new(Config::new().max_attempts(2), &clock)
            .unwrap()
            .with_hooks(&hooks)
            .with_budget(&budget);
        let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("503") }));
        assert!(out.unwrap().is_err());
        // Gates: a limiter, one key of a keyed one, a bulkhead.
        let limiter = Observed::new(
            Pattern::RateLimiter,
            RateLimiter::new(Rl::per_second(1).burst(1), &clock).unwrap(),
            &hooks,
        );
        Permit::try_new(&limiter).unwrap().success();
        assert!(Permit::try_new(&limiter).is_err());
        let table: KeyedRateLimiter<&str, _, 4> =
            KeyedRateLimiter::new(Rl::per_second(1).burst(1), &clock).unwrap();
        let key = Observed::new(Pattern::RateLimiter, Keyed::new(&table, "acme"), &hooks);
        Permit::try_new(&key).unwrap().success();
        let slots: Bulkhead<QueueSemaphore<4>, _> =
            Bulkhead::queued(Bh::new(1).max_wait(Duration::from_secs(1)), &clock).unwrap();
        let observed = Observed::new(Pattern::Bulkhead, &slots, &hooks);
        let held = Permit::try_new(&observed).unwrap();
        assert!(Permit::try_new(&observed).is_err());
        // A bulkhead acquire that waits (and gives up), then a pool checkout that waits.
        let wait = acquired(Pattern::Bulkhead, &hooks, slots.acquire());
        let out = mock::run(&clock, instrument(Pattern::Bulkhead, &hooks, &clock, wait));
        assert!(out.unwrap().is_err());
        held.success();
        let pool: Pool<Numbers, QueueSemaphore<4>, _, 1> = Pool::queued(
            Numbers,
            PoolConfig::new().timeout(Duration::from_millis(250)),
            &clock,
        );
        let checkout = || {
            let acquire = acquired(Pattern::Pool, &hooks, pool.acquire());
            instrument(Pattern::Pool, &hooks, &clock, acquire)
        };
        let conn = mock::run(&clock, checkout()).unwrap().unwrap();
        assert!(mock::run(&clock, checkout()).unwrap().is_err());
        drop(conn);
        // A timeout, an attempt, a fallback.
        let limit = timeout(&clock, Duration::from_secs(1), async { Ok::<_, &str>(()) });
        let out = mock::run(&clock, instrument(Pattern::Timeout, &hooks, &clock, limit));
        assert!(out.unwrap().is_ok());
        let attempt = async { Ok::<_, &str>(()) };
        let out = mock::run(
            &clock,
            instrument(Pattern::Attempt, &hooks, &clock, attempt),
        );
        assert!(out.unwrap().is_ok());
        let chain = fallback(|| async { Err::<&str, _>("down") }).or(fell_back(
            &hooks,
            1,
            |_: &str| async { Ok("cached") },
        ));
        assert_eq!(
            mock::run(&clock, chain.into_future()).unwrap(),
            Ok("cached")
        );
    });
    let mut seen = BTreeMap::new();
    for (key, ..) in snapshotter.snapshot().into_vec() {
        let kind = match key.kind() {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let labels: BTreeSet<String> = key.key().labels().map(|l| l.key().to_owned()).collect();
        let name = key.key().name().to_owned();
        let previous = seen.insert(name.clone(), (kind.to_owned(), labels.clone()));
        if let Some(previous) = previous {
            assert_eq!(
                previous,
                (kind.to_owned(), labels),
                "{name}: one type, one label set"
            );
        }
    }
    seen
}
