//! `MetricsHooks`: the exact series, labels and values each pattern records, on the mock
//! clock and tokio's paused time.
#![cfg(feature = "metrics")]

mod support;

use std::time::Duration;

use bulwark::admission::Permit;
use bulwark::bulkhead::{Bulkhead, Config as Bh, QueueSemaphore};
use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb, State};
use bulwark::fallback::fallback;
use bulwark::rate_limiter::{Config as Rl, Keyed, KeyedRateLimiter, RateLimiter};
use bulwark::retry::{Backoff, Budget, Config, Jitter, Retry, Verdict};
use bulwark::timeout::timeout;
use bulwark::{MockClock, mock};
use bulwark_observe::{MetricsHooks, Observed, Pattern, acquired, fell_back, instrument};
use core::future::IntoFuture;
use support::{Series, counter, gauge, histogram, paused, with_metrics};

fn get<'a>(series: &'a Series, key: &str) -> Option<&'a metrics_util::debugging::DebugValue> {
    series.get(key)
}

#[test]
fn breaker_calls_states_and_transitions() {
    let clock = MockClock::new();
    let ((), series) = with_metrics(|| {
        let breaker = CircuitBreaker::new(
            Cb::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(10)),
            &clock,
        )
        .unwrap()
        .with_events(MetricsHooks::new("checkout"));
        breaker.events().breaker_state(breaker.state());
        let _ = breaker.call_sync(|| Ok::<_, ()>(()));
        let _ = breaker.call_sync(|| Err::<(), _>(()));
        let _ = breaker.call_sync(|| Err::<(), _>(()));
        let _ = breaker.call_sync(|| Ok::<_, ()>(())); // rejected
        clock.advance(Duration::from_secs(10));
        let _ = breaker.call_sync(|| Ok::<_, ()>(())); // the probe closes it
        assert_eq!(breaker.state(), State::Closed);
    });
    let expect = [
        (
            "bulwark_circuit_breaker_calls_total{name=checkout,outcome=success}",
            counter(2),
        ),
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
            "bulwark_circuit_breaker_transitions_total{name=checkout,from=open,to=half_open}",
            counter(1),
        ),
        (
            "bulwark_circuit_breaker_transitions_total{name=checkout,from=half_open,to=closed}",
            counter(1),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=closed}",
            gauge(1.0),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=open}",
            gauge(0.0),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=half_open}",
            gauge(0.0),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=forced_open}",
            gauge(0.0),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=disabled}",
            gauge(0.0),
        ),
        (
            "bulwark_circuit_breaker_state{name=checkout,state=metrics_only}",
            gauge(0.0),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

#[test]
fn retry_kinds_attempts_and_budget() {
    let clock = MockClock::new();
    let ((), series) = with_metrics(|| {
        let cfg = Config::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(100)))
            .jitter(Jitter::None);
        let retry = Retry::new(cfg, &clock)
            .unwrap()
            .with_hooks(MetricsHooks::new("search"))
            .with_classifier(|r: &Result<(), &str>| match r {
                Err("404") => Verdict::Ignore,
                Err(_) => Verdict::FAILURE,
                Ok(()) => Verdict::Success,
            });
        let mut left = 1;
        let run = |op: &mut dyn FnMut() -> Result<(), &'static str>| {
            mock::run(&clock, retry.call(|| core::future::ready(op()))).unwrap()
        };
        assert!(run(&mut || Ok(())).is_ok()); // 1 attempt
        assert!(
            run(&mut || if std::mem::take(&mut left) == 1 {
                Err("503")
            } else {
                Ok(())
            })
            .is_ok()
        ); // 2
        assert!(run(&mut || Err("404")).is_err()); // 1
        assert!(run(&mut || Err("503")).is_err()); // 3
        // A budget with nothing in it: the first retry is denied.
        let budget = Budget::new(0, 0, 1).unwrap();
        let stingy = Retry::new(cfg, &clock)
            .unwrap()
            .with_hooks(MetricsHooks::new("stingy"))
            .with_budget(&budget);
        assert!(
            mock::run(&clock, stingy.call(|| async { Err::<(), _>("503") }))
                .unwrap()
                .is_err()
        );
    });
    let expect = [
        (
            "bulwark_retry_calls_total{name=search,kind=successful_without_retry}",
            counter(1),
        ),
        (
            "bulwark_retry_calls_total{name=search,kind=successful_with_retry}",
            counter(1),
        ),
        (
            "bulwark_retry_calls_total{name=search,kind=failed_without_retry}",
            counter(1),
        ),
        (
            "bulwark_retry_calls_total{name=search,kind=failed_with_retry}",
            counter(1),
        ),
        ("bulwark_retry_attempts_total{name=search}", counter(7)),
        (
            "bulwark_retry_call_attempts{name=search}",
            histogram(&[1.0, 2.0, 1.0, 3.0]),
        ),
        (
            "bulwark_retry_calls_total{name=stingy,kind=failed_without_retry}",
            counter(1),
        ),
        ("bulwark_retry_attempts_total{name=stingy}", counter(1)),
        ("bulwark_retry_budget_denied_total{name=stingy}", counter(1)),
        (
            "bulwark_retry_call_attempts{name=stingy}",
            histogram(&[1.0]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

#[test]
fn gates_count_permitted_rejected_and_in_flight() {
    let clock = MockClock::new();
    let ((), series) = with_metrics(|| {
        let hooks = MetricsHooks::new("db");
        let slots = Observed::new(
            Pattern::Bulkhead,
            Bulkhead::new(Bh::new(2), &clock).unwrap(),
            &hooks,
        );
        let a = Permit::try_new(&slots).unwrap();
        let b = Permit::try_new(&slots).unwrap();
        assert!(Permit::try_new(&slots).is_err());
        a.success();
        // One still held when the series are read.
        std::mem::forget(b);
        let limiter = Observed::new(
            Pattern::RateLimiter,
            RateLimiter::new(Rl::per_second(1).burst(1), &clock).unwrap(),
            &hooks,
        );
        Permit::try_new(&limiter).unwrap().success();
        assert!(Permit::try_new(&limiter).is_err());
        // One key of a keyed limiter, under another policy name.
        let table: KeyedRateLimiter<&str, _, 4> =
            KeyedRateLimiter::new(Rl::per_second(1).burst(1), &clock).unwrap();
        let tenants = MetricsHooks::new("tenants");
        let acme = Observed::new(Pattern::RateLimiter, Keyed::new(&table, "acme"), &tenants);
        Permit::try_new(&acme).unwrap().success();
        assert!(Permit::try_new(&acme).is_err());
    });
    let expect = [
        (
            "bulwark_bulkhead_calls_total{name=db,outcome=permitted}",
            counter(2),
        ),
        (
            "bulwark_bulkhead_calls_total{name=db,outcome=rejected}",
            counter(1),
        ),
        ("bulwark_bulkhead_in_flight{name=db}", gauge(1.0)),
        (
            "bulwark_rate_limiter_calls_total{name=db,outcome=permitted}",
            counter(1),
        ),
        (
            "bulwark_rate_limiter_calls_total{name=db,outcome=rejected}",
            counter(1),
        ),
        (
            "bulwark_rate_limiter_calls_total{name=tenants,outcome=permitted}",
            counter(1),
        ),
        (
            "bulwark_rate_limiter_calls_total{name=tenants,outcome=rejected}",
            counter(1),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

#[test]
fn timeouts_waits_and_fallbacks() {
    let clock = MockClock::new();
    let ((), series) = with_metrics(|| {
        let hooks = MetricsHooks::new("api");
        // A timeout that fires after 2 s, and one whose operation finishes in 1 s.
        let slow = timeout(
            &clock,
            Duration::from_secs(2),
            clock.sleep(Duration::from_secs(5)),
        );
        assert!(
            mock::run(&clock, instrument(Pattern::Timeout, &hooks, &clock, slow))
                .unwrap()
                .is_err()
        );
        let quick = timeout(&clock, Duration::from_secs(2), async {
            clock.sleep(Duration::from_secs(1)).await;
            Ok::<_, &str>(())
        });
        let out = mock::run(&clock, instrument(Pattern::Timeout, &hooks, &clock, quick)).unwrap();
        assert_eq!(out, Ok(Ok(())));
        // A bulkhead wait: the waiting gauge is 1 while it waits, 0 after.
        let bulkhead: Bulkhead<QueueSemaphore<4>, _> =
            Bulkhead::queued(Bh::new(1).max_wait(Duration::from_secs(1)), &clock).unwrap();
        let held = bulkhead.try_acquire().unwrap();
        let waiter = instrument(Pattern::Bulkhead, &hooks, &clock, bulkhead.acquire());
        let out = mock::run(&clock, waiter).unwrap();
        assert!(out.is_err()); // timed out after its max wait
        drop(held);
        // A fallback chain that falls back once.
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
    let expect = [
        (
            "bulwark_calls_total{name=api,pattern=timeout,outcome=timed_out}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=api,pattern=timeout,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=api,pattern=timeout}",
            histogram(&[2.0, 1.0]),
        ),
        ("bulwark_bulkhead_waiting{name=api}", gauge(0.0)),
        (
            "bulwark_calls_total{name=api,pattern=bulkhead,outcome=timed_out}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=api,pattern=bulkhead}",
            histogram(&[1.0]),
        ),
        ("bulwark_fallback_total{name=api,step=1}", counter(1)),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
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

#[test]
fn a_pool_acquire_is_counted_timed_and_its_wait_and_use_gauged() {
    use bulwark::pool::{Config as PoolConfig, Pool};
    let clock = MockClock::new();
    let hooks = MetricsHooks::new("db");
    let pool: Pool<Numbers, QueueSemaphore<4>, _, 1> = Pool::queued(
        Numbers,
        PoolConfig::new().timeout(Duration::from_millis(250)),
        &clock,
    );
    let observed = || {
        instrument(
            Pattern::Pool,
            &hooks,
            &clock,
            acquired(Pattern::Pool, &hooks, pool.acquire()),
        )
    };
    let (held, series) = with_metrics(|| {
        let first = mock::run(&clock, observed()).unwrap().unwrap();
        // The only connection is checked out: the next acquire waits 250 ms and gives up.
        assert!(mock::run(&clock, observed()).unwrap().is_err());
        first
    });
    assert_eq!(**held, 1);
    let expect = [
        (
            "bulwark_pool_calls_total{name=db,outcome=permitted}",
            counter(1),
        ),
        (
            "bulwark_pool_calls_total{name=db,outcome=rejected}",
            counter(1),
        ),
        // The connection still checked out when the series are read.
        ("bulwark_pool_in_flight{name=db}", gauge(1.0)),
        (
            "bulwark_calls_total{name=db,pattern=pool,outcome=success}",
            counter(1),
        ),
        (
            "bulwark_calls_total{name=db,pattern=pool,outcome=timed_out}",
            counter(1),
        ),
        (
            "bulwark_call_duration_seconds{name=db,pattern=pool}",
            histogram(&[0.0, 0.25]),
        ),
        ("bulwark_pool_waiting{name=db}", gauge(0.0)),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}

/// A bulkhead acquire that waits for its slot counts in the in-flight gauge once it has it,
/// and leaves it when its permit is dropped; on tokio's paused time, a holder gives its slot
/// back after 300 ms.
#[test]
fn a_waiting_bulkhead_acquire_is_in_flight_once_admitted() {
    let hooks = MetricsHooks::new("api");
    let ((waited, in_flight), series) = with_metrics(|| {
        paused(async {
            let clock = bulwark_tokio::TokioClock::new();
            let slots: Bulkhead<QueueSemaphore<4>, _> =
                Bulkhead::queued(Bh::new(1).max_wait(Duration::from_secs(1)), clock).unwrap();
            let observed = || {
                instrument(
                    Pattern::Bulkhead,
                    &hooks,
                    clock,
                    acquired(Pattern::Bulkhead, &hooks, slots.acquire()),
                )
            };
            let first = observed().await.unwrap();
            let t0 = tokio::time::Instant::now();
            let (second, ()) = tokio::join!(observed(), async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(first);
            });
            let second = second.unwrap();
            let in_flight = slots.metrics().in_use;
            drop(second);
            (t0.elapsed(), in_flight)
        })
    });
    assert_eq!((waited, in_flight), (Duration::from_millis(300), 1));
    let expect = [
        (
            "bulwark_bulkhead_calls_total{name=api,outcome=permitted}",
            counter(2),
        ),
        // +1 (first), -1 (first given back), +1 (second), -1 (second dropped).
        ("bulwark_bulkhead_in_flight{name=api}", gauge(0.0)),
        ("bulwark_bulkhead_waiting{name=api}", gauge(0.0)),
        (
            "bulwark_calls_total{name=api,pattern=bulkhead,outcome=success}",
            counter(2),
        ),
        (
            "bulwark_call_duration_seconds{name=api,pattern=bulkhead}",
            histogram(&[0.0, 0.3]),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(get(&series, key), Some(value), "{key}");
    }
    assert_eq!(series.len(), expect.len(), "no other series: {series:#?}");
}
