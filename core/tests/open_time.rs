//! Issue 15, item 1: a user-supplied open time (Polly's break-duration generator), on the
//! machine, the shared form and the async form, with literal instants on the mock clock.

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, Error, HalfOpenVerdict, Machine, NoWindow, OpenTime,
    Snapshot, State, Trip, WindowStats,
};
use bulwark::{Instant, MockClock, mock};
use core::cell::RefCell;
use core::time::Duration;

/// Polly's `BreakDurationGenerator` is given `BreakDurationGeneratorArguments` (the failure
/// rate, the failure count and the half-open attempts) and returns the break duration. Here
/// the generator opens for `failures` × 10 s + `half-open attempts` × 1 s; the trips seen are
/// recorded with their figures.
#[test]
fn machine_open_time_follows_polly_break_duration_generator() {
    let seen = RefCell::new(Vec::new());
    let cfg = Config::new()
        .failure_rate(50)
        .minimum_calls(4)
        .open_for(Duration::from_secs(7));
    let mut m = Machine::<CountWindow<4>>::new(cfg)
        .unwrap()
        .with_open_time(|t: &Trip| {
            seen.borrow_mut().push(*t);
            Duration::from_secs(t.failures() as u64 * 10 + (t.openings() as u64 - 1))
        });
    let t0 = Instant::from_secs(100);
    for ok in [true, false, false, true] {
        let t = m.try_acquire(t0).unwrap();
        if ok {
            m.on_success(t, t0)
        } else {
            m.on_failure(t, t0)
        }
    }
    // 2 failures in 4 calls: 20 s + 0 attempts.
    assert_eq!(
        m.try_acquire(t0).unwrap_err().retry_at,
        Some(Instant::from_secs(120))
    );
    // The probe fails at 120 s: 1 failure among the probes, 1 half-open attempt: 11 s.
    let probe = m.try_acquire(Instant::from_secs(120)).unwrap();
    m.on_failure(probe, Instant::from_secs(120));
    assert_eq!(
        m.try_acquire(Instant::from_secs(120)).unwrap_err().retry_at,
        Some(Instant::from_secs(131))
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    let first = seen[0];
    assert_eq!(
        (first.from(), first.openings(), first.consecutive_failures()),
        (State::Closed, 1, 0) // tripped by rate on a success
    );
    assert_eq!(
        first.window(),
        WindowStats {
            calls: 4,
            failures: 2,
            slow: 0,
            minimum_calls: 4
        }
    );
    assert_eq!(first.failure_basis_points(), Some(5_000));
    assert_eq!(first.configured(), Duration::from_secs(7));
    let second = seen[1];
    assert_eq!(
        (
            second.from(),
            second.openings(),
            second.calls(),
            second.failures()
        ),
        (State::HalfOpen, 2, 1, 1)
    );
    assert_eq!(second.failure_basis_points(), Some(10_000));
}

/// The consecutive-failure run reaches the function; the rate verdict over the probes gives
/// their figures (resilience4j's half-open rate, here 2 of 4 probes failing).
#[test]
fn open_time_sees_the_run_and_the_probes() {
    let seen = RefCell::new(Vec::new());
    let cfg = Config::new()
        .consecutive_failures(3)
        .failure_rate(50)
        .minimum_calls(100)
        .half_open(4, 2)
        .half_open_verdict(HalfOpenVerdict::Rate);
    let mut m = Machine::<CountWindow<100>>::new(cfg)
        .unwrap()
        .with_open_time(|t: &Trip| {
            seen.borrow_mut().push(*t);
            Duration::from_secs(1)
        });
    let at = Instant::from_secs;
    for _ in 0..3 {
        let t = m.try_acquire(at(0)).unwrap();
        m.on_failure(t, at(0));
    }
    assert_eq!(m.try_acquire(at(0)).unwrap_err().retry_at, Some(at(1)));
    let probes: Vec<_> = (0..4).map(|_| m.try_acquire(at(1)).unwrap()).collect();
    for (i, p) in probes.into_iter().enumerate() {
        if i % 2 == 0 {
            m.on_failure(p, at(1))
        } else {
            m.on_success(p, at(1))
        }
    }
    assert_eq!(m.state(), State::Open);
    let seen = seen.borrow();
    assert_eq!(
        (
            seen[0].from(),
            seen[0].consecutive_failures(),
            seen[0].calls()
        ),
        (State::Closed, 3, 3)
    );
    assert_eq!(seen[0].failure_basis_points(), None); // 3 of the 100 calls needed
    assert_eq!(
        (seen[1].from(), seen[1].calls(), seen[1].failures()),
        (State::HalfOpen, 4, 2)
    );
    assert_eq!(seen[1].failure_basis_points(), Some(5_000));
}

/// Zero opens with the time up (the next call probes at the same instant); `Duration::MAX`
/// saturates at the end of the clock's range. Neither panics, on either form.
#[test]
fn zero_and_max_open_times_are_saturated() {
    let cfg = Config::new().consecutive_failures(1);
    let at = Instant::from_secs;
    let mut zero = Machine::<NoWindow>::new(cfg)
        .unwrap()
        .with_open_time(|_: &Trip| Duration::ZERO);
    let t = zero.try_acquire(at(5)).unwrap();
    zero.on_failure(t, at(5));
    assert_eq!(zero.state_at(at(5)), State::HalfOpen);
    assert!(zero.try_acquire(at(5)).unwrap().is_probe());

    let mut max = Machine::<NoWindow>::new(cfg)
        .unwrap()
        .with_open_time(|_: &Trip| Duration::MAX);
    let t = max.try_acquire(at(5)).unwrap();
    max.on_failure(t, at(5));
    assert_eq!(
        max.try_acquire(at(1 << 30)).unwrap_err().retry_at,
        Some(Instant::MAX)
    );
    assert_eq!(max.state_at(Instant::MAX), State::HalfOpen);

    let clock = MockClock::new();
    clock.set(at(5));
    let b = CircuitBreaker::new(cfg, &clock)
        .unwrap()
        .with_open_time(|_: &Trip| Duration::MAX);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.try_acquire().unwrap_err().retry_at, Some(Instant::MAX));
    let b = CircuitBreaker::new(cfg, &clock)
        .unwrap()
        .with_open_time(|_: &Trip| Duration::ZERO);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::HalfOpen);
    assert!(b.try_acquire().unwrap().is_probe());
}

/// A restored snapshot is cut to the configured longest open time only with the configured
/// growth: a function may give more.
#[test]
fn restore_with_a_function_keeps_the_time_left() {
    let cfg = Config::new()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(30));
    let s = Snapshot {
        state: State::Open,
        consecutive_failures: 0,
        openings: 1,
        open_remaining: Duration::from_secs(3_600),
    };
    let mut plain = Machine::<NoWindow>::new(cfg).unwrap();
    plain.restore(s, Instant::ZERO).unwrap();
    assert_eq!(
        plain.try_acquire(Instant::ZERO).unwrap_err().retry_at,
        Some(Instant::from_secs(30))
    );
    let mut custom = Machine::<NoWindow>::new(cfg)
        .unwrap()
        .with_open_time(|_: &Trip| Duration::from_secs(3_600));
    custom.restore(s, Instant::ZERO).unwrap();
    assert_eq!(
        custom.try_acquire(Instant::ZERO).unwrap_err().retry_at,
        Some(Instant::from_secs(3_600))
    );
}

/// The shared form and `call` honour the function: linear growth, 5 s per consecutive
/// opening (a capturing closure owned by the breaker), back to 5 s after closing.
#[test]
fn shared_and_async_forms_honour_the_function() {
    let clock = MockClock::new();
    let base = Duration::from_secs(5);
    let b = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock)
        .unwrap()
        .with_open_time(move |t: &Trip| base.saturating_mul(t.openings()));
    mock::run(&clock, async {
        for _ in 0..2 {
            let _ = b.call(|| async { Err::<(), _>("down") }).await;
        }
        let r = b.call(|| async { Ok::<_, &str>(()) }).await;
        assert_eq!(retry_at(r), Some(Instant::from_secs(5)));
        clock.set(Instant::from_secs(5));
        let _ = b.call(|| async { Err::<(), _>("still down") }).await;
        let r = b.call(|| async { Ok::<_, &str>(()) }).await;
        assert_eq!(retry_at(r), Some(Instant::from_secs(15)));
        clock.set(Instant::from_secs(15));
        assert_eq!(b.call(|| async { Ok::<_, &str>(1) }).await, Ok(1));
        assert_eq!(b.state(), State::Closed);
        for _ in 0..2 {
            let _ = b.call(|| async { Err::<(), _>("down") }).await;
        }
        let r = b.call(|| async { Ok::<_, &str>(()) }).await;
        assert_eq!(retry_at(r), Some(Instant::from_secs(20)));
    })
    .unwrap();
}

/// The default stays zero-sized: the breaker does not grow for users without a function.
#[test]
fn the_default_open_time_adds_nothing() {
    use core::mem::size_of;
    assert_eq!(
        size_of::<CircuitBreaker<&MockClock>>(),
        size_of::<
            CircuitBreaker<&MockClock, NoWindow, (), bulwark::circuit_breaker::ConfiguredOpenTime>,
        >()
    );
    assert_eq!(size_of::<CircuitBreaker<&MockClock>>(), 64);
    let f = |t: &Trip| Duration::from_secs(t.openings() as u64);
    assert_eq!(
        f.open_time(&Trip::new(State::Closed, 40)),
        Duration::from_secs(31)
    );
}

fn retry_at<T>(r: Result<T, Error<&str>>) -> Option<Instant> {
    match r {
        Err(Error::Rejected(r)) => r.retry_at,
        _ => panic!("not rejected"),
    }
}
