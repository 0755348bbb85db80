//! Adaptive concurrency: each algorithm, fed by a downstream that serves `capacity` calls at a
//! base latency and queues the rest (latency grows with the excess; far beyond capacity it
//! drops calls), settles near the capacity and follows it down when the capacity halves; and
//! the same through the async form on the mock clock with 200 callers at once, where a burst
//! of samples makes the limit swing (see the last test).
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

/// The limits an adaptive limit shows, through its async form on the mock clock, to a
/// saturated client (200 callers, each calling again as soon as it is answered, or 1 ms after
/// a refusal) of a downstream of `capacity` servers that take 10 ms a call, first come first
/// served: a call waits for the first free server (or, when `shed`, is refused when none is
/// free, the refusal taking 1 ms). The capacity is 50 for 5 s, then 25 for 5 s. Returns the lowest, the mean and
/// the highest limit over the last second of each half.
fn through_the_async_form(algorithm: Algorithm, shed: bool) -> [(u32, u32, u32); 2] {
    use bulwark::bounded::Limit;
    use bulwark::{Instant, mock};
    use core::cell::RefCell;

    let clock = MockClock::new();
    let cfg = Config::new(algorithm).initial(10).min(1).max(1_000);
    let limit = AdaptiveLimit::new(cfg, &clock).unwrap();
    let free_at = RefCell::new([Instant::ZERO; 50]);
    let seen = RefCell::new([(u32::MAX, 0u64, 0u64, 0u32); 2]);
    let downstream = || async {
        let now = clock.now();
        let capacity = if now < Instant::from_secs(5) { 50 } else { 25 };
        let done = {
            let mut free_at = free_at.borrow_mut();
            let first = free_at[..capacity].iter_mut().min().unwrap();
            if shed && *first > now {
                None
            } else {
                *first = (*first).max(now) + Duration::from_nanos(BASE_NS);
                Some(*first)
            }
        };
        match done {
            Some(at) => {
                clock.sleep_until(at).await;
                Ok(())
            }
            None => {
                clock.sleep(Duration::from_millis(1)).await;
                Err("shed")
            }
        }
    };
    let caller = |_| async {
        if let Err(e) = limit.call(downstream).await
            && e.is_rejected()
        {
            clock.sleep(Duration::from_millis(1)).await;
        }
        let now = clock.now().as_nanos();
        if now % 5_000_000_000 >= 4_000_000_000 {
            let l = limit.limit();
            let s = &mut seen.borrow_mut()[usize::from(now >= 5_000_000_000)];
            *s = (s.0.min(l), s.1 + u64::from(l), s.2 + 1, s.3.max(l));
        }
    };
    let end = Instant::from_secs(10);
    let calls = (0..).take_while(|_| clock.now() < end);
    mock::run(&clock, Limit::<200>::for_each(calls, caller)).unwrap();
    seen.borrow()
        .map(|(lo, sum, n, hi)| (lo, (sum / n.max(1)) as u32, hi))
}

/// Through the async form on the mock clock, with 200 callers at once: both algorithms back
/// off when the capacity halves, and on average stay near it (Vegas) or under it (AIMD), but
/// they swing far more than one sample at a time (the machine tests above) suggests. Every
/// sample moves the limit, and a synchronised burst of samples moves it many times in one
/// round trip: AIMD, shedding every call beyond its capacity, overshoots, then backs off once
/// per shed call of the burst (0.9¹² in one millisecond) and averages about half the capacity;
/// Vegas swings from 8 to twice the capacity around a mean near it. Netflix smooths this with a
/// windowed limit (one sample per window), which bulwark does not have yet.
#[test]
fn on_the_mock_clock_the_limit_follows_capacity_and_backs_off() {
    // (lowest, mean, highest) over the last second at capacity 50, then at 25.
    let [full, halved] = through_the_async_form(Algorithm::aimd(), true);
    assert_eq!([full, halved], [(17, 24, 62), (14, 16, 33)]);
    let [full, halved] = through_the_async_form(Algorithm::vegas(), false);
    assert_eq!([full, halved], [(8, 40, 110), (8, 29, 59)]);
}

/// AIMD judges by outcomes and the calls in flight, never by round trips: a call through it
/// reads no clock (two `Instant::now()` a call were about half of its tower layer's cost).
/// Vegas and Gradient2 time each call: one read when admitted, one when it ends.
#[test]
fn only_the_algorithms_that_time_calls_read_the_clock() {
    use bulwark::Instant;
    use bulwark::admission::Outcome;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting(AtomicU32);
    impl Clock for Counting {
        fn now(&self) -> Instant {
            self.0.fetch_add(1, Ordering::Relaxed);
            Instant::ZERO
        }
    }
    for (algorithm, reads) in [
        (Algorithm::aimd(), 0),
        (Algorithm::vegas(), 2),
        (Algorithm::gradient2(), 2),
    ] {
        assert_eq!(algorithm.times_calls(), reads > 0);
        let clock = Counting(AtomicU32::new(0));
        let limit = AdaptiveLimit::new(Config::new(algorithm).initial(4), &clock).unwrap();
        let ticket = limit.try_admit().unwrap();
        assert_eq!(ticket.started.is_some(), reads > 0);
        limit.record(ticket, Outcome::Success);
        let ticket = limit.try_admit().unwrap();
        limit.record(ticket, Outcome::Failure);
        assert_eq!(clock.0.load(Ordering::Relaxed), 2 * reads, "{algorithm:?}");
    }
    // AIMD still backs off on a dropped call.
    let limit = AdaptiveLimit::new(
        Config::new(Algorithm::aimd()).initial(10),
        Counting(AtomicU32::new(0)),
    )
    .unwrap();
    let ticket = limit.try_admit().unwrap();
    limit.record(ticket, Outcome::Failure);
    assert_eq!(limit.limit(), 9);
}
