//! Random scenarios and policies, extreme values included: a run never panics, and what it
//! reports adds up.

use core::time::Duration;

use bulwark::circuit_breaker;
use bulwark::retry::{self, Backoff, Jitter};
use bulwark::{bulkhead, rate_limiter};
use bulwark_sim::engine::run;
use bulwark_sim::policy::{BreakerSpec, BudgetSpec, Policy, Window};
use bulwark_sim::rng::Rng;
use bulwark_sim::scenario::{Clients, Downstream, Phase, Scenario};

fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[(r.next_u64() % xs.len() as u64) as usize]
}

fn scenario(r: &mut Rng) -> Scenario {
    let mut s = Scenario::base("random", "test");
    s.seed = r.next_u64();
    // A closed loop with instant answers and no think time never lets time pass.
    s.max_requests = 5_000;
    s.duration = Duration::from_millis(pick(r, &[1, 50, 500, 2_000]));
    s.resolution = Duration::from_millis(pick(r, &[1, 10, 250]));
    s.clients = if r.chance(0.5) {
        Clients::Open {
            rate: pick(r, &[1e-6, 0.5, 100.0, 3_000.0]),
        }
    } else {
        Clients::Closed {
            clients: pick(r, &[1, 7, 200]),
            think: Duration::from_millis(pick(r, &[0, 1, 30])),
            requests_per_client: pick(r, &[None, Some(0), Some(1), Some(5)]),
            start_together: r.chance(0.5),
        }
    };
    s.downstream = Downstream {
        replicas: pick(r, &[1, 3]),
        concurrency: pick(r, &[1, 8, 100]),
        queue: pick(r, &[0, 4, 1_000]),
        latency: Duration::from_micros(pick(r, &[0, 50, 20_000, 3_000_000])),
        latency_sigma: pick(r, &[0.0, 0.5, 3.0]),
        errors: pick(r, &[0.0, 0.3, 1.0]),
        overload_errors: pick(r, &[0.0, 1.0]),
        slowdown: pick(r, &[0.0, 2.0, 100.0]),
        reject_latency: Duration::from_micros(pick(r, &[0, 1_000])),
        occ: r.chance(0.2),
    };
    for _ in 0..pick(r, &[0, 1, 3]) {
        let from = pick(r, &[0, 10, 300]);
        s.phases.push(Phase {
            label: "p".into(),
            from: Duration::from_millis(from),
            until: Duration::from_millis(from + pick(r, &[1, 200, 10_000])),
            replica: pick(r, &[None, Some(0)]),
            capacity: pick(r, &[None, Some(0.0), Some(0.5)]),
            latency_factor: pick(r, &[None, Some(1e-3), Some(1e12)]),
            errors: pick(r, &[None, Some(1.0)]),
            refuse: r.chance(0.3),
            rate_factor: pick(r, &[None, Some(0.0), Some(1e3)]),
        });
    }
    s
}

fn policy(r: &mut Rng) -> Policy {
    let mut p = Policy::no_protection();
    p.retry = retry::Config::new()
        .max_attempts(pick(r, &[1, 2, 50]))
        .backoff(Backoff::exponential(Duration::from_micros(pick(
            r,
            &[1, 10_000],
        ))))
        .jitter(pick(
            r,
            &[
                Jitter::None,
                Jitter::Full,
                Jitter::Decorrelated,
                Jitter::Equal,
            ],
        ));
    if r.chance(0.5) {
        p.budget = Some(BudgetSpec {
            retry_percent: pick(r, &[0, 20, 1000]),
            min_per_second: pick(r, &[0, 5]),
            max_tokens: pick(r, &[0, 100]),
        });
    }
    if r.chance(0.5) {
        p.breaker = Some(BreakerSpec {
            config: circuit_breaker::Config::new()
                .consecutive_failures(pick(r, &[1, 5]))
                .failure_rate(50)
                .minimum_calls(10)
                .open_for(Duration::from_millis(pick(r, &[1, 100, 5_000])))
                .half_open(pick(r, &[1, 3]), 1),
            window: pick(r, &[Window::Count20, Window::Time10, Window::Count1000]),
        });
    }
    if r.chance(0.3) {
        p.limiter = Some(rate_limiter::Config::per_second(pick(r, &[1, 1_000])).burst(5));
    }
    if r.chance(0.3) {
        p.bulkhead = Some(bulkhead::Config::new(pick(r, &[1, 50])));
    }
    p.attempt_timeout = pick(
        r,
        &[None, Some(Duration::ZERO), Some(Duration::from_millis(30))],
    );
    p.total_timeout = pick(r, &[None, Some(Duration::from_millis(200))]);
    p
}

#[test]
fn random_runs_never_panic_and_their_counts_add_up() {
    let mut r = Rng::new(2026);
    let mut truncated = 0;
    for i in 0..200 {
        let s = scenario(&mut r);
        let p = policy(&mut r);
        let out = run(&s, &p, &mut ()).unwrap_or_else(|e| panic!("run {i}: {e}"));
        let m = &out.summary;
        let e = m.ends;
        let ended = e.success
            + e.failed
            + e.circuit_open
            + e.rate_limited
            + e.bulkhead_full
            + e.attempt_timeout
            + e.timeout
            + e.unfinished;
        assert_eq!(ended, m.requests, "run {i}: {m:?}");
        assert!(m.requests <= 5_000, "run {i}");
        truncated += u32::from(m.truncated);
        assert_eq!(
            out.series.requests.iter().sum::<u64>(),
            m.requests,
            "run {i}"
        );
        assert_eq!(
            out.series.downstream_calls.iter().sum::<u64>(),
            m.downstream_calls,
            "run {i}"
        );
        assert!((0.0..=1.0).contains(&m.success_rate), "run {i}");
        assert!(m.p50 <= m.p99 && m.p99 <= m.p999, "run {i}: {m:?}");
        for f in &out.series.open_fraction {
            assert!((0.0..=1.0 + 1e-9).contains(f), "run {i}: open fraction {f}");
        }
    }
    // The guard was reached, and the runs that reached it ended normally too.
    assert!(truncated > 0);
}

/// A closed loop whose answers are instant and whose callers never think would send requests
/// forever at one instant; the run stops sending and says so.
#[test]
fn a_closed_loop_that_stops_time_is_cut_off() {
    let mut s = Scenario::base("stuck", "test");
    s.clients = Clients::Closed {
        clients: 2,
        think: Duration::ZERO,
        requests_per_client: None,
        start_together: true,
    };
    s.downstream.reject_latency = Duration::ZERO;
    s.phases.push(Phase {
        from: Duration::ZERO,
        until: Duration::from_secs(60),
        refuse: true,
        ..Phase::default()
    });
    let m = run(&s, &Policy::no_protection(), &mut ()).unwrap().summary;
    assert!(m.truncated);
    assert_eq!(m.last_end, Duration::ZERO);
    assert_eq!(m.ends.failed, m.requests);
}
