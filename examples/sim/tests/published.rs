//! The simulator checked against published results: if these drift, either the model or the
//! primitives changed what they do.

use core::time::Duration;

use bulwark::circuit_breaker;
use bulwark::rate_limiter;
use bulwark::retry::{self, Backoff, Jitter};
use bulwark_sim::engine::run;
use bulwark_sim::metrics::RunResult;
use bulwark_sim::policy::{BreakerSpec, BudgetSpec, Policy, Window};
use bulwark_sim::scenario::{Clients, Downstream, Phase, Scenario};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A downstream that never queues (plenty of slots), answers in 1 ms, and fails each served
/// call independently with probability `p`.
fn coin_flip_downstream(p: f64) -> Downstream {
    Downstream {
        replicas: 1,
        concurrency: 100_000,
        queue: 0,
        latency: ms(1),
        latency_sigma: 0.0,
        errors: p,
        overload_errors: 0.0,
        slowdown: 0.0,
        reject_latency: ms(1),
        occ: false,
    }
}

fn open_loop(name: &str, rate: f64, secs: u64, downstream: Downstream) -> Scenario {
    let mut s = Scenario::base(name, "test");
    s.clients = Clients::Open { rate };
    s.duration = Duration::from_secs(secs);
    s.resolution = Duration::from_millis(500);
    s.downstream = downstream;
    s
}

/// Retries with a short constant backoff and no jitter.
fn retrying(attempts: u32) -> Policy {
    let mut p = Policy::no_protection().named("retry");
    p.retry = retry::Config::new()
        .max_attempts(attempts)
        .backoff(Backoff::constant(ms(1)))
        .jitter(Jitter::None);
    p
}

fn sim(s: &Scenario, p: &Policy) -> RunResult {
    run(s, p, &mut ()).expect("valid policy")
}

/// k retries of calls failing independently with probability p make
/// (1 − p^(k+1)) / (1 − p) calls per request on average (a geometric series).
#[test]
fn retry_amplification_matches_the_geometric_series() {
    for (k, p, requests) in [(3u32, 0.5, 40_000u64), (1, 0.2, 20_000)] {
        let s = open_loop("coin", 2_000.0, requests / 2_000, coin_flip_downstream(p));
        let r = sim(&s, &retrying(k + 1));
        let expected = (1.0 - p.powi(k as i32 + 1)) / (1.0 - p);
        let got = r.summary.amplification;
        eprintln!("k = {k}, p = {p}: {got:.4} calls per request (expected {expected:.4})");
        assert!(
            (got - expected).abs() / expected < 0.01,
            "k = {k}, p = {p}: {got} calls per request, expected {expected} within 1 %"
        );
        // And the success rate is 1 − p^(k+1).
        let ok = 1.0 - p.powi(k as i32 + 1);
        assert!(
            (r.summary.success_rate - ok).abs() < 0.01,
            "{}",
            r.summary.success_rate
        );
    }
    // The value the issue names.
    assert_eq!((1.0 - 0.5f64.powi(4)) / 0.5, 1.875);
}

/// A retry budget of ratio r bounds the retries to r per request: the SRE book's per-client
/// retry budget. bulwark's budget earns r per *success* and grants a floor of retries per
/// second, so under a total outage (no successes) only the floor pays for retries: a floor
/// of r × the request rate caps the load at 1 + r, whatever max_attempts says.
#[test]
fn a_retry_budget_caps_amplification_at_one_plus_r_under_total_outage() {
    let rate = 1_000.0;
    let r = 0.1;
    let mut s = open_loop("total outage", rate, 20, coin_flip_downstream(0.0));
    s.phases.push(Phase {
        label: "down".into(),
        from: Duration::ZERO,
        until: Duration::from_secs(20),
        refuse: true,
        ..Phase::default()
    });
    let unbudgeted = sim(&s, &retrying(4));
    assert!((unbudgeted.summary.amplification - 4.0).abs() < 1e-3);
    let mut budgeted = retrying(4);
    budgeted.budget = Some(BudgetSpec {
        retry_percent: 10,
        min_per_second: (r * rate) as u16,
        max_tokens: 100,
    });
    let got = sim(&s, &budgeted).summary.amplification;
    eprintln!("total outage, budget floor r × rate: {got:.4} calls per request");
    assert!(
        (got - (1.0 + r)).abs() < 0.01 * (1.0 + r),
        "amplification {got}, expected 1 + r = {} within 1 %",
        1.0 + r
    );

    // Half the calls failing, no floor: retries come only from successes, at most r of them.
    let s = open_loop("half fail", rate, 20, coin_flip_downstream(0.5));
    budgeted.budget = Some(BudgetSpec {
        retry_percent: 10,
        min_per_second: 0,
        max_tokens: 100,
    });
    let got = sim(&s, &budgeted).summary.amplification;
    let unlimited = sim(&s, &retrying(4)).summary.amplification;
    eprintln!("half failing: budgeted {got:.4}, unbudgeted {unlimited:.4} calls per request");
    assert!(got <= 1.0 + r, "amplification {got} above 1 + r");
    assert!(got > 1.0 && unlimited > 1.8, "{got} {unlimited}");
}

/// "Exponential Backoff and Jitter" (AWS Architecture Blog): writers contending for one
/// optimistic-concurrency resource. Without jitter the writers that collided back off in
/// lockstep and collide again; full jitter spreads them, so the work (calls) to commit every
/// write drops by more than half, and the last write lands much sooner.
#[test]
fn full_jitter_needs_far_fewer_calls_than_no_jitter_under_contention() {
    let mut s = Scenario::base("occ", "test");
    s.clients = Clients::Closed {
        clients: 100,
        think: Duration::ZERO,
        requests_per_client: Some(1),
        start_together: true,
    };
    s.duration = Duration::from_secs(120);
    s.resolution = Duration::from_secs(1);
    s.downstream = Downstream {
        occ: true,
        latency: ms(10),
        latency_sigma: 0.2,
        errors: 0.0,
        ..Downstream::default()
    };
    let policy = |jitter: Jitter| {
        let mut p = Policy::no_protection();
        p.retry = retry::Config::new()
            .max_attempts(100)
            .backoff(Backoff::exponential(ms(10)).max(Duration::from_secs(2)))
            .jitter(jitter);
        p
    };
    let none = sim(&s, &policy(Jitter::None)).summary;
    let full = sim(&s, &policy(Jitter::Full)).summary;
    assert_eq!((none.ends.success, full.ends.success), (100, 100));
    let ratio = none.downstream_calls as f64 / full.downstream_calls as f64;
    eprintln!(
        "OCC: no jitter {} calls, last at {:?}; full jitter {} calls, last at {:?}",
        none.downstream_calls, none.last_end, full.downstream_calls, full.last_end
    );
    assert!(
        ratio > 1.8,
        "no jitter {} calls, full jitter {} calls: ratio {ratio:.2}",
        none.downstream_calls,
        full.downstream_calls
    );
    assert!(
        full.last_end * 3 < none.last_end,
        "{:?} {:?}",
        full.last_end,
        none.last_end
    );
}

fn hard_outage(rate: f64, secs: u64, from: u64, until: u64) -> Scenario {
    let mut s = open_loop("outage", rate, secs, coin_flip_downstream(0.0));
    s.phases.push(Phase {
        label: "down".into(),
        from: Duration::from_secs(from),
        until: Duration::from_secs(until),
        refuse: true,
        ..Phase::default()
    });
    s
}

/// Calls that reached the downstream between `from` and `until` seconds.
fn calls_between(r: &RunResult, from: f64, until: f64) -> u64 {
    let s = &r.series;
    (0..s.t.len())
        .filter(|&i| s.t[i] >= from && s.t[i] < until)
        .map(|i| s.downstream_calls[i])
        .sum()
}

/// In front of a hard outage a breaker lets only its half-open probes through: one per open
/// time (plus the failures that tripped it).
#[test]
fn a_breaker_cuts_the_load_of_a_hard_outage_to_probes() {
    let s = hard_outage(500.0, 30, 5, 25);
    let plain = sim(&s, &Policy::no_protection());
    let mut guarded = Policy::no_protection().named("breaker");
    guarded.breaker = Some(BreakerSpec {
        config: circuit_breaker::Config::new()
            .consecutive_failures(5)
            .open_for(Duration::from_secs(1)),
        window: Window::NoWindow,
    });
    let guarded = sim(&s, &guarded);
    // Skip the first second of the outage (the trip) and the buckets at its end.
    let plain_calls = calls_between(&plain, 6.0, 24.5);
    let probes = calls_between(&guarded, 6.0, 24.5);
    eprintln!("outage: {plain_calls} calls unguarded, {probes} with the breaker");
    assert!(plain_calls > 9_000, "{plain_calls}");
    // 18.5 s at one probe per second of open time.
    assert!((17..=20).contains(&probes), "{probes} probes");
    assert!(calls_between(&guarded, 5.0, 6.0) <= 5 + 1);
    // After the outage it closes again: load back to the arrival rate.
    let after = calls_between(&guarded, 27.0, 30.0) as f64 / 3.0;
    assert!((after - 500.0).abs() < 75.0, "{after}/s");
}

/// A rate limiter caps what reaches the downstream at its rate, retry storm or not.
#[test]
fn a_rate_limiter_caps_the_downstream_load_at_its_rate() {
    let s = hard_outage(1_000.0, 20, 5, 20);
    let storm = sim(&s, &retrying(4));
    let mut limited = retrying(4);
    limited.limiter = Some(rate_limiter::Config::per_second(200).burst(20));
    let limited = sim(&s, &limited);
    // The retries quadruple the load during the outage; the limiter holds it at 200/s.
    assert!(calls_between(&storm, 6.0, 20.0) as f64 / 14.0 > 3_900.0);
    let series = &limited.series;
    for i in 0..series.t.len() {
        let per_s = series.downstream_rps[i];
        // 200/s plus the burst of 20 in any one 500 ms bucket: at most 120 calls.
        assert!(
            series.downstream_calls[i] <= 120,
            "t = {}: {per_s}/s",
            series.t[i]
        );
    }
    let total = limited.summary.downstream_calls as f64;
    assert!(total <= 200.0 * 20.0 + 20.0, "{total}");
    assert!(total > 0.95 * 200.0 * 20.0, "{total}");
}
