//! The engine against the library's own mock runner: the same pipeline, driven request by
//! request by `bulwark::mock::run` against a hand-written downstream, ends the same way at
//! the same instants as in the simulation. So the simulation's sleeps, timeouts and answers
//! are the mock clock's, and its pipeline decides what `Pipeline` decides.

use core::cell::Cell;
use core::time::Duration;

use bulwark::circuit_breaker::{self, CircuitBreaker};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::retry::{self, Backoff, Jitter};
use bulwark::{Clock, Instant, MockClock, mock};
use bulwark_sim::engine::run;
use bulwark_sim::policy::{BreakerSpec, Policy, Window};
use bulwark_sim::scenario::{Clients, Downstream, Phase, Scenario};

const REQUESTS: u64 = 60;
const LATENCY: Duration = Duration::from_millis(10);
const REFUSAL: Duration = Duration::from_millis(1);
const DOWN: (u64, u64) = (100, 500); // ms

fn breaker_config() -> circuit_breaker::Config {
    circuit_breaker::Config::new()
        .consecutive_failures(3)
        .open_for(Duration::from_millis(150))
}

fn retry_config() -> retry::Config {
    retry::Config::new()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(20)))
        .jitter(Jitter::None)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    calls: u64,
    ok: u64,
    failed: u64,
    open: u64,
    last_end: Duration,
}

/// One caller sending `REQUESTS` requests back to back through the pipeline on a mock clock.
fn by_hand() -> Tally {
    let clock = MockClock::new();
    let breaker = CircuitBreaker::new(breaker_config(), &clock).unwrap();
    let pipeline = Pipeline::new(&clock, retry_config())
        .unwrap()
        .breaker(&breaker);
    let calls = Cell::new(0u64);
    let mut t = Tally::default();
    for _ in 0..REQUESTS {
        let out = mock::run(
            &clock,
            pipeline.call(|| {
                calls.set(calls.get() + 1);
                let start = clock.now();
                let down =
                    start >= Instant::from_millis(DOWN.0) && start < Instant::from_millis(DOWN.1);
                let clock = &clock;
                async move {
                    if down {
                        clock.sleep(REFUSAL).await;
                        Err("refused")
                    } else {
                        clock.sleep(LATENCY).await;
                        Ok(())
                    }
                }
            }),
        )
        .unwrap();
        match out {
            Ok(()) => t.ok += 1,
            Err(Error::Operation(_)) => t.failed += 1,
            Err(Error::CircuitOpen(_)) => t.open += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    t.calls = calls.get();
    t.last_end = clock.now().since_origin();
    t
}

fn simulated() -> Tally {
    let mut s = Scenario::base("conformance", "test");
    s.clients = Clients::Closed {
        clients: 1,
        think: Duration::ZERO,
        requests_per_client: Some(REQUESTS),
        start_together: true,
    };
    s.duration = Duration::from_secs(10);
    s.downstream = Downstream {
        latency: LATENCY,
        latency_sigma: 0.0,
        errors: 0.0,
        slowdown: 0.0,
        reject_latency: REFUSAL,
        ..Downstream::default()
    };
    s.phases.push(Phase {
        from: Duration::from_millis(DOWN.0),
        until: Duration::from_millis(DOWN.1),
        refuse: true,
        ..Phase::default()
    });
    let mut p = Policy::no_protection();
    p.retry = retry_config();
    p.breaker = Some(BreakerSpec {
        config: breaker_config(),
        window: Window::NoWindow,
    });
    let m = run(&s, &p, &mut ()).unwrap().summary;
    Tally {
        calls: m.downstream_calls,
        ok: m.ends.success,
        failed: m.ends.failed,
        open: m.ends.circuit_open,
        last_end: m.last_end,
    }
}

#[test]
fn the_simulation_matches_the_pipeline_run_by_hand_on_the_mock_clock() {
    let hand = by_hand();
    // The scenario exercises every path: successes, failures, open-circuit rejections
    // (waited out or not), probes.
    assert!(hand.ok > 0 && hand.failed > 0 && hand.open > 0, "{hand:?}");
    assert_eq!(simulated(), hand);
}
