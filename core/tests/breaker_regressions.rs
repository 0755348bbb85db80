//! Regression tests for defects found by probing the circuit breaker (issue 11). Each test
//! is named after the behaviour it checks and failed on the code before its fix.

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, HalfOpenVerdict, Machine, NoWindow, Snapshot,
    SnapshotError, State, TimeWindow, Window,
};
use bulwark::{Instant, MockClock};
use core::time::Duration;

#[path = "support/breaker_ops.rs"]
mod breaker_ops;

fn rate_cfg() -> Config {
    Config::new()
        .failure_rate(50)
        .minimum_calls(5)
        .time_window(Duration::from_secs(10))
}

/// Item 1: a zeroed bucket (tag 0) in the upper half of the tag cycle was counted into by the
/// add path and skipped by the stats path, so the window went blind.
#[test]
fn time_window_counts_at_any_uptime_machine() {
    for start in [0, 20_000, 40_000, 65_535, 65_536, 100_000, 1 << 40] {
        let mut m = Machine::<TimeWindow<10>>::new(rate_cfg()).unwrap();
        let t = Instant::from_secs(start);
        for i in 0..5 {
            let tk = m.try_acquire(t).unwrap();
            m.on_failure(tk, t);
            if i < 4 {
                assert_eq!(m.state(), State::Closed, "start {start} s, failure {i}");
            }
        }
        assert_eq!(m.state(), State::Open, "5 failures at {start} s must trip");
    }
}

#[test]
fn time_window_counts_at_any_uptime_shared() {
    for start in [0, 20_000, 40_000, 65_535, 65_536, 100_000, 1 << 40] {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(start));
        let b = CircuitBreaker::with_window(rate_cfg(), TimeWindow::<10>, &clock).unwrap();
        for _ in 0..5 {
            b.try_acquire().unwrap().failure();
        }
        // The stored state: at 2^40 s the clock is saturated, so the open time is up at
        // once and `state()` reports what the next call finds (half-open).
        assert_eq!(
            b.snapshot().state,
            State::Open,
            "5 failures at {start} s must trip"
        );
    }
}

/// Item 2: the 16-bit bucket tag aliased, so failures from 65 536 s ago came back.
#[test]
fn old_failures_never_come_back_machine() {
    let mut m = Machine::<TimeWindow<10>>::new(rate_cfg().minimum_calls(10)).unwrap();
    for _ in 0..9 {
        let tk = m.try_acquire(Instant::ZERO).unwrap();
        m.on_failure(tk, Instant::ZERO);
    }
    let later = Instant::from_secs(65_536);
    let tk = m.try_acquire(later).unwrap();
    m.on_success(tk, later);
    assert_eq!(m.state(), State::Closed);
    assert_eq!(m.metrics(later).window.calls, 1);
}

#[test]
fn old_failures_never_come_back_shared() {
    let clock = MockClock::new();
    let b = CircuitBreaker::with_window(rate_cfg().minimum_calls(10), TimeWindow::<10>, &clock)
        .unwrap();
    for _ in 0..9 {
        b.try_acquire().unwrap().failure();
    }
    clock.set(Instant::from_secs(65_536));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window.calls, 1);
}

/// A sample expires exactly at the start of the bucket one window length after its own, at
/// any uptime, in both forms (checked against an oracle of the recorded instants).
fn check_expiry<const N: usize>(start: u64, steps: &[(u64, bool)], span: Duration)
where
    TimeWindow<N>: Window,
{
    let cfg = Config::new()
        .failure_rate(100)
        .minimum_calls(1_000)
        .time_window(span);
    let bucket = (span.as_nanos() as u64) / N as u64;
    let mut m = Machine::<TimeWindow<N>>::new(cfg).unwrap();
    let clock = MockClock::new();
    clock.set(Instant::from_nanos(start));
    let b = CircuitBreaker::with_window(cfg, TimeWindow::<N>, &clock).unwrap();
    let mut log: Vec<(u64, bool)> = Vec::new();
    let mut now = start;
    for &(dt, fail) in steps {
        now = now.saturating_add(dt);
        let t = Instant::from_nanos(now);
        clock.set(t);
        let tk = m.try_acquire(t).unwrap();
        let p = b.try_acquire().unwrap();
        if fail {
            m.on_failure(tk, t);
            p.failure();
        } else {
            m.on_success(tk, t);
            p.success();
        }
        log.push((now, fail));
        let epoch = now / bucket;
        let live: Vec<_> = log
            .iter()
            .filter(|(at, _)| epoch - at / bucket < N as u64)
            .collect();
        let want_calls = live.len() as u32;
        let want_failures = live.iter().filter(|(_, f)| *f).count() as u32;
        let got = m.metrics(t).window;
        assert_eq!(
            (got.calls, got.failures),
            (want_calls, want_failures),
            "machine at {now}"
        );
        let got = b.metrics().window;
        assert_eq!(
            (got.calls, got.failures),
            (want_calls, want_failures),
            "shared at {now}"
        );
    }
}

#[test]
fn samples_expire_one_window_later_near_the_tag_wrap_and_instant_max() {
    let s = 1_000_000_000;
    let steps: Vec<(u64, bool)> = [
        (0, true),
        (s, false),
        (9 * s, true),
        (s / 2, true),
        (65_536 * s, false),
        (3 * s, true),
        (65_535 * s, true),
        (10 * s, false),
        (1, true),
    ]
    .to_vec();
    for start in [
        0,
        32_768 * s,
        65_530 * s,
        65_536 * s,
        u64::MAX - 200_000 * s,
        u64::MAX - 5 * s,
    ] {
        check_expiry::<10>(start, &steps, Duration::from_secs(10));
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Item 2's property: over arbitrary start instants (biased to the ends of the range
        /// and the tag wrap) and gaps from nanoseconds to days, every sample is visible
        /// exactly until it expires, in the machine and the shared form alike.
        #[test]
        fn a_sample_expires_exactly_one_window_later(
            start in prop_oneof![
                any::<u64>(),
                (0u64..4).prop_map(|k| (k * 65_536 * 1_000_000_000).saturating_sub(5_000_000_000)),
                (0u64..1_000_000_000_000).prop_map(|d| u64::MAX - d),
            ],
            steps in proptest::collection::vec(
                (prop_oneof![0u64..2_000_000_000, 0u64..100_000_000_000_000], any::<bool>()),
                1..40,
            ),
        ) {
            check_expiry::<10>(start, &steps, Duration::from_secs(10));
            check_expiry::<4>(start, &steps, Duration::from_millis(7));
        }
    }
}

/// Item 4: the maximum time in half-open counts from the first probe's admission, not from
/// the end of the open time: with sparse traffic a late first probe can still close.
#[test]
fn max_half_open_counts_from_the_first_probe() {
    let cfg = Config::new()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .max_half_open(Duration::from_secs(5));
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    let t = m.try_acquire(Instant::ZERO).unwrap();
    m.on_failure(t, Instant::ZERO);
    // The first call after the outage comes an hour later and succeeds at once.
    let late = Instant::from_secs(3600);
    let probe = m.try_acquire(late).unwrap();
    m.on_success(probe, late.saturating_add(Duration::from_millis(10)));
    assert_eq!(m.state(), State::Closed);

    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    b.try_acquire().unwrap().failure();
    clock.set(late);
    let probe = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(10));
    probe.success();
    assert_eq!(b.state(), State::Closed);
    // ... and a probe that outlives the maximum, counted from its own start, still re-opens.
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(1));
    let probe = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(5));
    probe.success();
    assert_eq!(b.state(), State::Open);
}

/// Item 5: the rate verdict judges the failure rate and the slow rate each against its own
/// threshold; a slow success is not a failure.
#[test]
fn rate_verdict_judges_failures_and_slow_calls_separately() {
    let cfg = Config::new()
        .failure_rate(50)
        .slow_calls(Duration::from_secs(1), 50)
        .minimum_calls(4)
        .open_for(Duration::from_secs(1))
        .half_open(4, 1)
        .half_open_verdict(HalfOpenVerdict::Rate);
    let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
    let t0 = Instant::ZERO;
    for _ in 0..4 {
        let t = m.try_acquire(t0).unwrap();
        m.on_failure(t, t0);
    }
    assert_eq!(m.state(), State::Open);
    let t1 = Instant::from_secs(1);
    let probes: Vec<_> = (0..4).map(|_| m.try_acquire(t1).unwrap()).collect();
    let mut probes = probes.into_iter();
    m.on_failure(probes.next().unwrap(), t1); // 1 failure of 4: 25 %
    m.on_success(probes.next().unwrap(), Instant::from_secs(3)); // 1 slow of 4: 25 %
    m.on_success(probes.next().unwrap(), t1);
    m.on_success(probes.next().unwrap(), t1);
    assert_eq!(m.state(), State::Closed);

    // Each rate on its own still trips at its threshold.
    for (fail, slow) in [(2, 0), (0, 2)] {
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        for _ in 0..4 {
            let t = m.try_acquire(t0).unwrap();
            m.on_failure(t, t0);
        }
        let probes: Vec<_> = (0..4).map(|_| m.try_acquire(t1).unwrap()).collect();
        for (i, p) in probes.into_iter().enumerate() {
            if i < fail {
                m.on_failure(p, t1);
            } else if i < fail + slow {
                m.on_success(p, Instant::from_secs(3));
            } else {
                m.on_success(p, t1);
            }
        }
        assert_eq!(m.state(), State::Open, "{fail} failures, {slow} slow of 4");
    }
}

/// Item 6: below the minimum number of calls the rate is not yet known.
#[test]
fn window_rates_below_the_minimum_are_unknown() {
    let mut m =
        Machine::<CountWindow<10>>::new(Config::new().failure_rate(50).minimum_calls(5)).unwrap();
    let t = m.try_acquire(Instant::ZERO).unwrap();
    m.on_failure(t, Instant::ZERO);
    assert_eq!(m.metrics(Instant::ZERO).window.calls, 1);
    assert_eq!(m.metrics(Instant::ZERO).window.failure_percent(), None);
    for _ in 0..4 {
        let t = m.try_acquire(Instant::ZERO).unwrap();
        m.on_success(t, Instant::ZERO);
    }
    assert_eq!(m.metrics(Instant::ZERO).window.failure_percent(), Some(20));
}

/// Item 7: a call rejected while every half-open probe is in flight carries an instant
/// (the earliest a probe could end: now); only forced open carries none.
#[test]
fn a_half_open_rejection_carries_a_retry_instant() {
    let cfg = Config::new()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1));
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    let t = m.try_acquire(Instant::ZERO).unwrap();
    m.on_failure(t, Instant::ZERO);
    let _probe = m.try_acquire(Instant::from_secs(1)).unwrap();
    let at = Instant::from_secs(2);
    assert_eq!(m.try_acquire(at).unwrap_err().retry_at, Some(at));

    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    b.try_acquire().unwrap().failure();
    clock.set(Instant::from_secs(1));
    let _probe = b.try_acquire().unwrap();
    clock.set(at);
    assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(at));
    b.force_open();
    assert_eq!(b.try_acquire().unwrap_err().retry_at, None);
}

/// Item 8: `restore` checks its input: the time left open is cut to the longest configured
/// open time, the internal opening code and reserved bytes are rejected, and an impossible
/// run of failures is rejected.
#[test]
fn restore_clamps_and_rejects_corrupt_snapshots() {
    let cfg = Config::new()
        .consecutive_failures(3)
        .open_for(Duration::from_secs(30));
    let forever = Snapshot {
        state: State::Open,
        consecutive_failures: 0,
        openings: 1,
        open_remaining: Duration::MAX,
    };
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    let _ = m.restore(forever, Instant::ZERO);
    assert_eq!(
        m.try_acquire(Instant::ZERO).unwrap_err().retry_at,
        Some(Instant::from_secs(30))
    );
    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    let _ = b.restore(forever);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_at,
        Some(Instant::from_secs(30))
    );

    let good = forever.to_bytes();
    let mut opening = good;
    opening[1] = 6; // the shared form's internal "opening" code
    assert!(Snapshot::from_bytes(&opening).is_err());
    for reserved in [3, 6, 7] {
        let mut b = good;
        b[reserved] = 1;
        assert!(
            Snapshot::from_bytes(&b).is_err(),
            "reserved byte {reserved}"
        );
    }
    // A run of failures outside the closed state cannot be. (A closed run at or above the
    // threshold can: a threshold lowered at run time leaves one, see `runtime_thresholds`.)
    let impossible = Snapshot {
        state: State::HalfOpen,
        consecutive_failures: 60_000,
        openings: 1,
        open_remaining: Duration::ZERO,
    };
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    assert_eq!(
        m.restore(impossible, Instant::ZERO),
        Err(SnapshotError::ConsecutiveFailures)
    );
    assert_eq!(
        (m.state(), m.metrics(Instant::ZERO).consecutive_failures),
        (State::Closed, 0),
        "rejected, state kept"
    );
}

/// Item 9: a ticket held across 2^16 state changes (the old generation's width) is still
/// stale: its outcome neither frees a slot nor closes the breaker.
#[test]
fn a_stale_probe_never_counts_after_many_state_changes() {
    let cfg = Config::new()
        .consecutive_failures(1)
        .open_for(Duration::ZERO);
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    let t0 = Instant::ZERO;
    let t = m.try_acquire(t0).unwrap();
    m.on_failure(t, t0);
    let stale = m.try_acquire(t0).unwrap(); // a probe that hangs
    assert!(stale.is_probe());
    // 65 533 forced changes, then close, trip and probe again: 65 536 changes in all.
    for _ in 0..65_533 {
        m.force_open();
    }
    m.reset();
    let t = m.try_acquire(t0).unwrap();
    m.on_failure(t, t0);
    let fresh = m.try_acquire(t0).unwrap();
    assert!(fresh.is_probe());
    m.on_success(stale, t0);
    assert_eq!(
        m.state(),
        State::HalfOpen,
        "the stale probe must not close the breaker"
    );
    m.release(fresh);

    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    b.try_acquire().unwrap().failure();
    let stale = b.try_acquire().unwrap();
    for _ in 0..65_533 {
        b.force_open();
    }
    b.reset();
    b.try_acquire().unwrap().failure();
    let fresh = b.try_acquire().unwrap();
    stale.success();
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "the stale probe must not close the breaker"
    );
    drop(fresh);
}

/// Item 12 (breaker): settings that cannot work are rejected, each error naming its field.
#[test]
fn breaker_configs_that_cannot_work_are_rejected_by_field() {
    let ok = Config::new().consecutive_failures(3);
    assert!(Machine::<CountWindow<10>>::new(ok.slow_calls(Duration::ZERO, 50)).is_err());
    assert!(Machine::<TimeWindow<10>>::new(ok.failure_rate(50).minimum_calls(u32::MAX)).is_err());
    let probes = Machine::<NoWindow>::new(ok.half_open(0, 1)).unwrap_err();
    let minimum = Machine::<NoWindow>::new(ok.minimum_calls(0)).unwrap_err();
    let max_half_open = Machine::<NoWindow>::new(ok.max_half_open(Duration::ZERO)).unwrap_err();
    assert_ne!(probes, minimum);
    assert_ne!(probes, max_half_open);
    assert!(probes.to_string().contains("probes"), "{probes}");
    assert!(minimum.to_string().contains("minimum_calls"), "{minimum}");
}

/// The differential test of issue 11: the machine and the shared form side by side on a time
/// window, from arbitrary start instants, with time moving forward by nanoseconds to days;
/// while the breaker is closed, its window holds exactly the outcomes recorded since it
/// closed that have not expired (the oracle).
mod differential {
    use super::*;
    use bulwark::Clock;
    use bulwark::circuit_breaker::{Outcome, Permit, Ticket};
    use proptest::prelude::*;

    const N: usize = 4;
    const BUCKET: u64 = 1_000_000_000;

    use super::breaker_ops::{self, Op};

    /// Sequences with time moving in nanoseconds: within a few buckets, or by days to a
    /// quarter of the clock's range (past the 16-bit tag wrap).
    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let advance = prop_oneof![
            3 => 0..3 * BUCKET,
            1 => prop_oneof![65_530 * BUCKET..65_540 * BUCKET, 0..u64::MAX / 4],
        ];
        breaker_ops::ops(advance, 100)
    }

    type Held<'a> = (
        Ticket,
        Permit<&'a CircuitBreaker<&'a MockClock, TimeWindow<N>, ()>>,
        u64,
    );

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn machine_and_shared_form_agree_and_the_window_forgets_nothing_early(
            start in prop_oneof![any::<u64>(), 0..1_000 * BUCKET, (u64::MAX - 1_000 * BUCKET)..],
            consecutive in proptest::option::of(2u32..6),
            rate in 1u8..=100,
            minimum in 1u32..8,
            ops in ops(),
        ) {
            let mut cfg = Config::new()
                .failure_rate(rate)
                .minimum_calls(minimum)
                .time_window(Duration::from_nanos(N as u64 * BUCKET))
                .open_for(Duration::from_secs(2));
            if let Some(n) = consecutive {
                cfg = cfg.consecutive_failures(n);
            }
            let clock = MockClock::new();
            clock.set(Instant::from_nanos(start));
            let mut machine = Machine::<TimeWindow<N>>::new(cfg).unwrap();
            let shared = CircuitBreaker::with_window(cfg, TimeWindow::<N>, &clock).unwrap();
            let mut held: Vec<Held<'_>> = Vec::new();
            // The oracle: outcomes recorded in the current closed period, and its number.
            let mut log: Vec<(u64, bool)> = Vec::new();
            let mut period = 0u64;
            for op in ops {
                let now = clock.now();
                match op {
                    Op::Advance(d) => clock.set(now.saturating_add(Duration::from_nanos(d))),
                    Op::Acquire => match (machine.try_acquire(now), shared.try_acquire()) {
                        (Ok(t), Ok(p)) => {
                            prop_assert_eq!(t.is_probe(), p.is_probe());
                            held.push((t, p, period));
                        }
                        (Err(x), Err(y)) => prop_assert_eq!(x, y),
                        (a, b) => prop_assert!(false, "disagree: {:?} / {:?}", a, b.map(|p| p.is_probe())),
                    },
                    Op::Settle(i, o) if i < held.len() => {
                        let (t, p, at_period) = held.remove(i);
                        let counted = !t.is_probe()
                            && at_period == period
                            && machine.state() == State::Closed
                            && o != Outcome::Ignored;
                        if counted {
                            log.push((now.as_nanos(), o == Outcome::Failure));
                        }
                        machine.record(t, o, now);
                        p.record(o);
                    }
                    Op::Drop(i) if i < held.len() => {
                        let (t, p, _) = held.remove(i);
                        machine.release(t);
                        drop(p);
                    }
                    Op::Settle(..) | Op::Drop(..) => {}
                    Op::Reset => {
                        // Resetting a fresh closed breaker only empties its window.
                        let fresh = machine.state() == State::Closed
                            && machine.metrics(now).consecutive_failures == 0;
                        machine.reset();
                        shared.reset();
                        log.clear();
                        if !fresh {
                            period += 1;
                        }
                    }
                    Op::ForceOpen => {
                        machine.force_open();
                        shared.force_open();
                    }
                    Op::OpenFor(d) => {
                        let d = Duration::from_nanos(d);
                        prop_assert_eq!(machine.open_for(d, now), shared.open_for(d));
                    }
                    Op::HalfOpen => prop_assert_eq!(machine.half_open(now), shared.half_open()),
                }
                let now = clock.now();
                prop_assert_eq!(machine.state_at(now), shared.state());
                let (mm, sm) = (machine.metrics(now), shared.metrics());
                prop_assert_eq!(mm, sm);
                if machine.state() == State::Closed {
                    let epoch = now.as_nanos() / BUCKET;
                    let live: Vec<_> =
                        log.iter().filter(|(t, _)| epoch - t / BUCKET < N as u64).collect();
                    prop_assert_eq!(mm.window.calls as usize, live.len());
                    prop_assert_eq!(
                        mm.window.failures as usize,
                        live.iter().filter(|(_, f)| *f).count()
                    );
                } else {
                    log.clear();
                    period += 1;
                }
            }
        }
    }
}
