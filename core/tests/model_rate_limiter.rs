//! Model tests of the rate limiter: the `&mut` machine, the shared atomic form and a naive
//! continuous token bucket must agree on every call; no window ever admits more than
//! `burst + rate × elapsed`.
#![cfg(not(loom))]

use bulwark::rate_limiter::{Config, Denied, KeyedMachine, KeyedRateLimiter, Machine, RateLimiter};
use bulwark::{Clock, Instant, MockClock};
use proptest::prelude::*;

/// A token bucket kept as "credit" in nanoseconds (tokens × T), refilled continuously.
struct Bucket {
    t: u64,
    cap: u64,
    credit: u64,
    last: u64,
}

impl Bucket {
    fn new(t: u64, burst: u32) -> Self {
        let cap = t * u64::from(burst);
        Bucket {
            t,
            cap,
            credit: cap,
            last: 0,
        }
    }
    /// `Ok` or the instant the call would pass; `None` for "never".
    fn take(&mut self, n: u32, now: u64) -> Result<(), Option<u64>> {
        if now > self.last {
            self.credit = (self.credit + (now - self.last)).min(self.cap);
            self.last = now;
        }
        let need = self.t * u64::from(n);
        if need > self.cap {
            return Err(None);
        }
        if self.credit >= need {
            self.credit -= need;
            Ok(())
        } else {
            Err(Some(now + (need - self.credit)))
        }
    }
}

fn as_model(r: Result<(), Denied>) -> Result<(), Option<u64>> {
    r.map_err(|d| d.retry_at().map(Instant::as_nanos))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn machine_atomic_and_bucket_agree_and_never_over_admit(
        rate in 1u32..50,
        burst in 1u32..10,
        steps in prop::collection::vec((0u64..400, 0u32..12), 1..120),
    ) {
        let cfg = Config::per_second(rate).burst(burst);
        let t = cfg.period().as_nanos() as u64;
        let mut machine = Machine::new(cfg).unwrap();
        let clock = MockClock::new();
        let shared = RateLimiter::new(cfg, &clock).unwrap();
        let mut bucket = Bucket::new(t, burst);
        let mut now = 0u64;
        let mut log: Vec<(u64, u32)> = Vec::new();
        for (advance_ms, n) in steps {
            now += advance_ms * 1_000_000;
            clock.set(Instant::from_nanos(now));
            let m = machine.try_acquire_n(n, Instant::from_nanos(now));
            let a = shared.try_acquire_n(n);
            prop_assert_eq!(m, a, "machine vs atomic at {} ns, n = {}", now, n);
            prop_assert_eq!(as_model(m), bucket.take(n, now), "machine vs bucket at {} ns, n = {}", now, n);
            prop_assert_eq!(machine.available(Instant::from_nanos(now)), shared.available());
            if m.is_ok() && n > 0 {
                log.push((now, n));
            }
        }
        // Every window [a, b] between admissions: tokens × T ≤ burst × T + (b − a).
        for i in 0..log.len() {
            let mut sum = 0u64;
            for j in i..log.len() {
                sum += u64::from(log[j].1);
                let span = log[j].0 - log[i].0;
                prop_assert!(
                    sum * t <= u64::from(burst) * t + span,
                    "{} tokens in {} ns (burst {}, T {})", sum, span, burst, t
                );
            }
        }
    }

    #[test]
    fn retry_at_is_exact(
        rate in 1u32..50,
        burst in 1u32..10,
        pre in prop::collection::vec((0u64..100, 1u32..4), 0..20),
        n in 1u32..10,
    ) {
        let cfg = Config::per_second(rate).burst(burst);
        let mut m = Machine::new(cfg).unwrap();
        let mut now = 0;
        for (adv, k) in pre {
            now += adv * 1_000_000;
            let _ = m.try_acquire_n(k, Instant::from_nanos(now));
        }
        match m.try_acquire_n(n, Instant::from_nanos(now)) {
            Ok(()) => {}
            Err(Denied::InsufficientCapacity(_)) => prop_assert!(n > burst),
            Err(Denied::RateLimited(r)) => {
                // One nanosecond early is still too early; at retry_at it passes.
                let mut early = m.clone();
                prop_assert!(early.try_acquire_n(n, r.retry_at.saturating_sub(core::time::Duration::from_nanos(1))).is_err());
                prop_assert!(m.try_acquire_n(n, r.retry_at).is_ok());
            }
        }
    }

    #[test]
    fn keyed_machine_matches_one_machine_per_key_when_big_enough(
        steps in prop::collection::vec((0u64..300, 0u8..6, 0u32..4), 1..100),
    ) {
        // 6 keys in 64 slots (sets of 8): no lossy eviction, so each key must behave
        // exactly like its own Machine.
        let cfg = Config::per_second(5).burst(3);
        let mut keyed: KeyedMachine<u8, 64> = KeyedMachine::new(cfg).unwrap();
        let mut single: Vec<Machine> = (0..6).map(|_| Machine::new(cfg).unwrap()).collect();
        let mut now = 0;
        for (adv, key, n) in steps {
            now += adv * 1_000_000;
            let at = Instant::from_nanos(now);
            prop_assert_eq!(keyed.try_acquire_n(&key, n, at), single[key as usize].try_acquire_n(n, at));
        }
        prop_assert_eq!(keyed.lossy_evictions(), 0);
    }

    /// Changes of quota through `&self` between calls: the shared form and the machine
    /// (`reconfigure`, the same TAT-keeping change) agree on every call and every TAT.
    #[test]
    fn machine_and_shared_form_agree_across_changes(
        steps in prop::collection::vec((0u64..400, 0u32..6, prop::option::of((1u32..40, 1u32..8))), 1..120),
    ) {
        let cfg = Config::per_second(10).burst(4);
        let mut m = Machine::new(cfg).unwrap();
        let clock = MockClock::new();
        let shared = RateLimiter::new(cfg, &clock).unwrap();
        for (adv, n, change) in steps {
            clock.advance(core::time::Duration::from_millis(adv));
            let now = clock.now();
            if let Some((rate, burst)) = change {
                let c = Config::per_second(rate).burst(burst);
                prop_assert_eq!(m.reconfigure(c), shared.reconfigure(c));
            }
            prop_assert_eq!(m.try_acquire_n(n, now), shared.try_acquire_n(n));
            prop_assert_eq!(m.tat(), shared.tat());
            prop_assert_eq!(m.available(now), shared.available());
        }
    }

    #[test]
    fn no_panic_on_any_input(
        period in any::<u64>(),
        burst in any::<u32>(),
        tat_steps in prop::collection::vec((any::<u64>(), any::<u32>()), 1..30),
    ) {
        let cfg = Config::with_period(core::time::Duration::from_nanos(period)).burst(burst);
        if let Ok(mut m) = Machine::new(cfg) {
            for (now, n) in tat_steps {
                let _ = m.try_acquire_n(n, Instant::from_nanos(now));
                let _ = m.available(Instant::from_nanos(now));
                let _ = m.reconfigure(Config::per_second(3));
            }
        }
    }
}

/// Drives `try_acquire` (one token per call) on `clock` for a long run of small, uneven steps,
/// taking every token offered at each instant, and asserts the limiter's invariant: never
/// more than `burst + elapsed × rate` admitted, with the rate `per_second` tokens a second.
fn never_more_than_burst_plus_elapsed_times_rate(
    clock: &MockClock,
    per_second: u64,
    burst: u64,
    mut check: impl FnMut() -> bool,
) -> u64 {
    let start = clock.now_nanos();
    let mut admitted = 0u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        clock.advance(core::time::Duration::from_nanos(1 + x % 7));
        while check() {
            admitted += 1;
            let elapsed = clock.now_nanos() - start;
            assert!(
                admitted * 1_000_000_000 <= burst * 1_000_000_000 + elapsed * per_second,
                "{admitted} admitted in {elapsed} ns at {per_second}/s with burst {burst}"
            );
        }
    }
    admitted
}

trait NowNanos {
    fn now_nanos(&self) -> u64;
}
impl NowNanos for MockClock {
    fn now_nanos(&self) -> u64 {
        bulwark::Clock::now(self).as_nanos()
    }
}

#[test]
fn six_hundred_million_per_second_never_admits_more_than_burst_plus_elapsed_times_rate() {
    // Regression (issue 11, item 11): the period 1 s / 600 M = 1.67 ns was truncated to 1 ns,
    // so the limiter admitted 1 000 M/s. It must keep the rate or refuse the configuration.
    let cfg = Config::per_second(600_000_000).burst(10);
    let clock = MockClock::new();
    match RateLimiter::new(cfg, &clock) {
        Ok(l) => {
            never_more_than_burst_plus_elapsed_times_rate(&clock, 600_000_000, 10, || {
                l.try_acquire().is_ok()
            });
        }
        Err(e) => assert!(
            matches!(e, bulwark::rate_limiter::ConfigError::InexactRate { .. }),
            "{e:?}"
        ),
    }
    let clock = MockClock::new();
    match KeyedRateLimiter::<u8, _, 4>::new(cfg, &clock) {
        Ok(l) => {
            never_more_than_burst_plus_elapsed_times_rate(&clock, 600_000_000, 10, || {
                l.try_acquire(&1).is_ok()
            });
        }
        Err(e) => assert!(
            matches!(e, bulwark::rate_limiter::ConfigError::InexactRate { .. }),
            "{e:?}"
        ),
    }
    let clock = MockClock::new();
    match Machine::new(cfg) {
        Ok(mut m) => {
            never_more_than_burst_plus_elapsed_times_rate(&clock, 600_000_000, 10, || {
                m.try_acquire(bulwark::Clock::now(&clock)).is_ok()
            });
        }
        Err(e) => assert!(
            matches!(e, bulwark::rate_limiter::ConfigError::InexactRate { .. }),
            "{e:?}"
        ),
    }
}

#[test]
fn accepted_high_rates_keep_their_rate_within_the_tolerance_and_never_exceed_it() {
    // Exact periods (1 ns, 2 ns, 1 µs) and rounded ones inside 0.1 % (1001 ns for 999 999/s,
    // 1000 ns for 1 001 000/s): never above `burst + elapsed × rate`, never 0.1 % below it.
    for rate in [1_000_000_000u32, 500_000_000, 1_000_000, 999_999, 1_001_000] {
        let clock = MockClock::new();
        let l = RateLimiter::new(Config::per_second(rate).burst(10), &clock).unwrap();
        let admitted =
            never_more_than_burst_plus_elapsed_times_rate(&clock, u64::from(rate), 10, || {
                l.try_acquire().is_ok()
            });
        let ideal = clock.now_nanos() * u64::from(rate) / 1_000_000_000;
        assert!(
            admitted * 1000 >= ideal * 999,
            "{rate}/s: {admitted} admitted, {ideal} ideal"
        );
    }
}
