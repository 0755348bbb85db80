//! The policy simulator's speed: simulated client requests per second of wall time, for a
//! breaker + retry policy (issue 17 asks for at least a million on one core). One iteration
//! is one whole run: 10 s of simulated time at 10 000 requests/s (100 000 requests), every
//! request a real `Pipeline` call through the breaker, retried with backoff, against the
//! downstream model. Criterion's throughput line is the figure: elements = requests.
//!
//! `cargo bench -p bulwark-benches --bench sim`

use std::hint::black_box;
use std::time::Duration;

use bulwark::circuit_breaker;
use bulwark::retry::{self, Backoff};
use bulwark_sim::engine::run;
use bulwark_sim::policy::{BreakerSpec, Policy, Window};
use bulwark_sim::scenario::{Clients, Phase, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scenario(outage: bool) -> Scenario {
    let mut s = Scenario::base("bench", "10 000 req/s for 10 s");
    s.duration = Duration::from_secs(10);
    s.clients = Clients::Open { rate: 10_000.0 };
    // Capacity for 20 000 req/s: the steady run is healthy.
    s.downstream.concurrency = 512;
    s.downstream.queue = 4_096;
    if outage {
        s.phases.push(Phase {
            label: "outage".into(),
            from: Duration::from_secs(3),
            until: Duration::from_secs(6),
            refuse: true,
            ..Phase::default()
        });
    }
    s
}

fn breaker_and_retry() -> Policy {
    let mut p = Policy::no_protection().named("breaker + retry");
    p.retry = retry::Config::new()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(20)).max(Duration::from_secs(1)));
    p.breaker = Some(BreakerSpec {
        config: circuit_breaker::Config::new()
            .consecutive_failures(10)
            .failure_rate(50)
            .minimum_calls(20)
            .open_for(Duration::from_secs(1)),
        window: Window::Count100,
    });
    p
}

fn sim(c: &mut Criterion) {
    let policy = breaker_and_retry();
    let mut g = c.benchmark_group("sim, breaker + retry, simulated requests");
    for (name, outage) in [("steady", false), ("3 s outage of 10", true)] {
        let s = scenario(outage);
        let requests = run(&s, &policy, &mut ()).unwrap().summary.requests;
        g.throughput(Throughput::Elements(requests));
        g.bench_function(name, |b| {
            b.iter(|| black_box(run(&s, &policy, &mut ()).unwrap().summary.requests))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = sim
}
criterion_main!(benches);
