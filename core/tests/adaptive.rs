//! Adaptive concurrency: each algorithm, fed by a downstream that serves `capacity` calls at a
//! base latency and queues the rest (latency grows with the excess; far beyond capacity it
//! drops calls), settles near the capacity and follows it down when the capacity halves.
#![cfg(not(loom))]

use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config, Machine};
use bulwark::admission::{Admit, Permit};
use bulwark::{Clock, MockClock};
use core::time::Duration;

const BASE_NS: u64 = 10_000_000; // 10 ms

/// A saturated client (always `limit` calls in flight) against a downstream of `capacity`:
/// round trip `BASE × max(1, in_flight / capacity)`, calls beyond `drop_at` dropped. Returns
/// the limits seen over the last quarter of `samples`.
fn run(m: &mut Machine, capacity: u64, drop_at: u64, samples: usize) -> (u32, u32) {
    let (mut lo, mut hi) = (u32::MAX, 0);
    for i in 0..samples {
        let in_flight = u64::from(m.limit());
        let rtt = BASE_NS * in_flight.max(capacity) / capacity;
        m.on_sample(rtt, in_flight as u32, in_flight > drop_at);
        if i >= samples * 3 / 4 {
            lo = lo.min(m.limit());
            hi = hi.max(m.limit());
        }
    }
    (lo, hi)
}

fn machine(algorithm: Algorithm) -> Machine {
    Machine::new(Config::new(algorithm).initial(10).min(1).max(1_000)).unwrap()
}

#[test]
fn aimd_settles_just_under_the_point_where_calls_drop() {
    let mut m = machine(Algorithm::aimd());
    let (lo, hi) = run(&mut m, 50, 50, 5_000);
    assert!(lo >= 44 && hi <= 51, "{lo}..{hi}");
    let (lo, hi) = run(&mut m, 25, 25, 5_000); // capacity halves
    assert!(lo >= 21 && hi <= 26, "{lo}..{hi}");
}

#[test]
fn vegas_settles_a_few_queued_calls_above_capacity() {
    let mut m = machine(Algorithm::vegas());
    let (lo, hi) = run(&mut m, 50, u64::MAX, 5_000);
    assert!(lo >= 50 && hi <= 70, "{lo}..{hi}");
    let (lo, hi) = run(&mut m, 25, u64::MAX, 5_000);
    assert!(lo >= 25 && hi <= 40, "{lo}..{hi}");
}

/// Gradient2 reads the latency's trend, not a capacity: with latency flat it grows (by its
/// queue allowance, smoothed); when latency jumps (×3 here) it cuts the limit within a few
/// samples (the gradient floors at ½); while the client is app-limited (in flight below half
/// the limit) it holds still. Under a client that is always saturated against a queueing
/// downstream, Netflix's Gradient2 keeps growing while its long-term average catches up; that
/// case is AIMD's and Vegas's (above), and `max` bounds it.
#[test]
fn gradient2_grows_on_flat_latency_and_cuts_when_latency_jumps() {
    let mut m = machine(Algorithm::gradient2());
    for _ in 0..200 {
        let l = m.limit();
        m.on_sample(BASE_NS, l, false);
    }
    let grown = m.limit();
    assert!(grown >= 150, "{grown}"); // 10 + 0.8 per sample
    for _ in 0..10 {
        let l = m.limit();
        m.on_sample(3 * BASE_NS, l, false);
    }
    let cut = m.limit();
    assert!(cut <= grown * 7 / 10, "{grown} -> {cut}");
    // App-limited (2 in flight): no change whatever the latency.
    for rtt in [BASE_NS, 10 * BASE_NS] {
        m.on_sample(rtt, 2, false);
        assert_eq!(m.limit(), cut);
    }
}

/// The shared form takes the same steps as the machine for the same samples.
#[test]
fn the_shared_form_follows_the_machine() {
    for algorithm in [
        Algorithm::aimd(),
        Algorithm::vegas(),
        Algorithm::gradient2(),
    ] {
        let cfg = Config::new(algorithm).initial(10).min(1).max(1_000);
        let clock = MockClock::new();
        let shared = AdaptiveLimit::new(cfg, &clock).unwrap();
        let mut m = Machine::new(cfg).unwrap();
        for i in 0..2_000u64 {
            let limit = shared.limit();
            assert_eq!(limit, m.limit(), "{algorithm:?} at sample {i}");
            // Fill the limit, then finish one call after a latency that grows past 30 calls.
            let held: Vec<_> = (0..limit)
                .map(|_| Permit::try_new(&shared).unwrap())
                .collect();
            assert!(shared.try_admit().is_err());
            let rtt = BASE_NS * u64::from(limit).max(30) / 30;
            clock.advance(Duration::from_nanos(rtt));
            let dropped = limit > 60;
            let mut held = held.into_iter();
            let first = held.next().unwrap();
            let in_flight = first.ticket().unwrap().in_flight;
            if dropped {
                first.failure()
            } else {
                first.success()
            }
            m.on_sample(rtt, in_flight, dropped);
            drop(held); // abandoned: no samples
            assert_eq!(shared.in_flight(), 0);
            let _ = clock.now();
        }
    }
}
