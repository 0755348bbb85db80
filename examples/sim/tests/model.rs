//! The engine and the downstream model: timing through the pipeline, queueing, timeouts that
//! leave work behind, and the breaker's timings in the summary.

use core::time::Duration;

use bulwark::bulkhead;
use bulwark::circuit_breaker;
use bulwark::retry::{self, Backoff, Jitter};
use bulwark_sim::engine::run;
use bulwark_sim::metrics::Timing;
use bulwark_sim::policy::{BreakerSpec, Policy, Window};
use bulwark_sim::scenario::{Clients, Downstream, Phase, Scenario};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn one_request(downstream: Downstream) -> Scenario {
    let mut s = Scenario::base("one", "test");
    s.clients = Clients::Closed {
        clients: 1,
        think: Duration::ZERO,
        requests_per_client: Some(1),
        start_together: true,
    };
    s.duration = Duration::from_secs(10);
    s.downstream = downstream;
    s
}

/// One request against a refusing downstream: three attempts, 1 ms each, 100 ms apart; the
/// pipeline's backoff sleeps are the simulation's events, to the nanosecond.
#[test]
fn backoff_sleeps_and_answers_happen_at_the_simulated_instants() {
    let mut s = one_request(Downstream {
        reject_latency: ms(1),
        ..Downstream::default()
    });
    s.phases.push(Phase {
        from: Duration::ZERO,
        until: Duration::from_secs(10),
        refuse: true,
        ..Phase::default()
    });
    let mut p = Policy::no_protection();
    p.retry = retry::Config::new()
        .max_attempts(3)
        .backoff(Backoff::constant(ms(100)))
        .jitter(Jitter::None);
    let r = run(&s, &p, &mut ()).unwrap().summary;
    assert_eq!(r.downstream_calls, 3);
    assert_eq!(r.ends.failed, 1);
    assert_eq!(r.last_end, ms(1 + 100 + 1 + 100 + 1));
}

/// Closed-loop callers beyond the downstream's slots queue; beyond its queue they are refused.
#[test]
fn the_downstream_serves_its_slots_queues_the_rest_and_refuses_past_the_queue() {
    let mut s = Scenario::base("q", "test");
    s.clients = Clients::Closed {
        clients: 30,
        think: Duration::ZERO,
        requests_per_client: Some(20),
        start_together: true,
    };
    s.downstream = Downstream {
        concurrency: 4,
        queue: 16,
        latency: ms(10),
        latency_sigma: 0.0,
        errors: 0.0,
        slowdown: 0.0,
        ..Downstream::default()
    };
    let r = run(&s, &Policy::no_protection(), &mut ()).unwrap().summary;
    assert_eq!(r.requests, 600);
    assert_eq!(r.peak_concurrency, 4 + 16);
    // Refused calls come back at once and are sent again: some fail, the served ones succeed.
    assert!(r.ends.failed > 0 && r.ends.success > 0);
    assert_eq!(r.ends.success + r.ends.failed, 600);
    // The queue stays full: a served request waits for the 16 ahead of it, 4 at a time,
    // then takes its 10 ms: 50 ms (the histogram's ±3 %); a refused one takes 1 ms.
    assert!(r.p99 >= ms(48) && r.p99 <= ms(52), "{:?}", r.p99);
    assert!(r.p50 >= ms(10), "{:?}", r.p50);
}

/// An attempt cut by its timeout is abandoned by the client, not by the server: the
/// downstream goes on serving it (which is how timeouts plus retries overload a slow
/// service).
#[test]
fn timed_out_attempts_leave_their_work_at_the_downstream() {
    let mut s = Scenario::base("slow", "test");
    s.clients = Clients::Open { rate: 200.0 };
    s.duration = Duration::from_secs(5);
    s.downstream = Downstream {
        concurrency: 1_000,
        latency: ms(200),
        latency_sigma: 0.0,
        errors: 0.0,
        slowdown: 0.0,
        ..Downstream::default()
    };
    let mut p = Policy::no_protection();
    p.retry = retry::Config::new()
        .max_attempts(2)
        .backoff(Backoff::constant(ms(10)))
        .jitter(Jitter::None);
    p.attempt_timeout = Some(ms(50));
    let r = run(&s, &p, &mut ()).unwrap().summary;
    assert_eq!(r.ends.success, 0);
    assert_eq!(r.ends.attempt_timeout, r.requests);
    assert!((r.amplification - 2.0).abs() < 1e-9);
    // Each attempt occupies a slot for 200 ms though its caller left after 50: about
    // 400 calls/s × 0.2 s in flight.
    assert!(r.peak_concurrency >= 70, "{}", r.peak_concurrency);
    // The bulkhead counts what the *client* holds: the abandoned attempts free it (about
    // 400 attempts/s × 50 ms = 20 held), while the downstream still has 80 of them.
    p.bulkhead = Some(bulkhead::Config::new(40));
    let r = run(&s, &p, &mut ()).unwrap().summary;
    assert_eq!(r.ends.bulkhead_full, 0);
    assert!(r.peak_concurrency >= 70, "{}", r.peak_concurrency);
}

/// The summary's breaker timings: it sees the outage within a few calls, is open for about
/// the outage, and the clients recover once a probe succeeds after it.
#[test]
fn the_summary_reports_detection_open_time_and_recovery() {
    let mut s = Scenario::base("outage", "test");
    s.clients = Clients::Open { rate: 500.0 };
    s.duration = Duration::from_secs(30);
    s.phases.push(Phase {
        from: Duration::from_secs(10),
        until: Duration::from_secs(20),
        refuse: true,
        ..Phase::default()
    });
    let mut p = Policy::no_protection();
    p.breaker = Some(BreakerSpec {
        config: circuit_breaker::Config::new()
            .consecutive_failures(5)
            .open_for(Duration::from_secs(2)),
        window: Window::NoWindow,
    });
    let r = run(&s, &p, &mut ()).unwrap().summary;
    let Timing::After(detect) = r.detect else {
        panic!("{:?}", r.detect)
    };
    // Five refused calls in a row at 500/s; a success of a call that started before the
    // outage (service times of about 20 ms) still breaks the run.
    assert!(detect < ms(100), "{detect:?}");
    let open = r.time_open.unwrap();
    assert!(
        open > Duration::from_secs(9) && open < Duration::from_secs(12),
        "{open:?}"
    );
    let Timing::After(recover) = r.recover else {
        panic!("{:?}", r.recover)
    };
    // Within one open time of the end, in whole buckets.
    assert!(recover <= Duration::from_millis(2_250), "{recover:?}");
    // Without a breaker there is nothing to detect or open.
    let plain = run(&s, &Policy::no_protection(), &mut ()).unwrap().summary;
    assert_eq!((plain.detect, plain.time_open), (Timing::NoBreaker, None));
    assert_eq!(plain.recover, Timing::After(Duration::ZERO));
    // Nor in a scenario without an incident.
    s.phases.clear();
    let calm = run(&s, &p, &mut ()).unwrap().summary;
    assert_eq!(
        (calm.detect, calm.recover),
        (Timing::NoIncident, Timing::NoIncident)
    );
}
