//! Issue 15, item 12: the breaker's thresholds changed at run time through `&self`, with no
//! state lost, on the shared form, the async form and the machine, with literal instants on
//! the mock clock.

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, ConfigError, CountWindow, Error, Field, Machine, NoWindow, State,
    TimeWindow,
};
use bulwark::{Clock, Instant, MockClock, mock};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Waker};
use core::time::Duration;

/// The window keeps its calls across a change: 4 calls recorded under (60 %, minimum 5)
/// count towards (50 %, minimum 4), and the 6th call trips at exactly 50 %.
#[test]
fn a_change_keeps_the_window_and_the_next_decision_uses_it() {
    let clock = MockClock::new();
    clock.set(Instant::from_secs(100));
    let cfg = Config::new().failure_rate(60).minimum_calls(5);
    let b = CircuitBreaker::with_window(cfg, CountWindow::<10>, &clock).unwrap();
    let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
    let now = Instant::from_secs(100);
    let outcomes = [false, false, true, true];
    for ok in outcomes {
        let p = b.try_acquire().unwrap();
        if ok {
            p.success()
        } else {
            p.failure()
        }
        let t = m.try_acquire(now).unwrap();
        if ok {
            m.on_success(t, now)
        } else {
            m.on_failure(t, now)
        }
    }
    b.set_rate_thresholds(Some(50), None, 4).unwrap();
    m.set_rate_thresholds(Some(50), None, 4).unwrap();
    assert_eq!(b.metrics().window.calls, 4);
    assert_eq!(b.metrics().window.minimum_calls, 4);
    // 2 failures of 5: 40 %.
    b.try_acquire().unwrap().success();
    let t = m.try_acquire(now).unwrap();
    m.on_success(t, now);
    assert_eq!((b.state(), m.state()), (State::Closed, State::Closed));
    // 3 failures of 6: 50 % >= 50 %.
    b.try_acquire().unwrap().failure();
    let t = m.try_acquire(now).unwrap();
    m.on_failure(t, now);
    assert_eq!((b.state(), m.state()), (State::Open, State::Open));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_at,
        Some(Instant::from_secs(130))
    );
    assert_eq!(b.config(), cfg.failure_rate(50).minimum_calls(4));
    assert_eq!(m.config(), b.config());
}

/// A call awaiting inside `call` when the slow-call threshold drops from 2 s to 500 ms is
/// judged by the new one when it ends at 1 s (slow: the breaker opens, 100 % of 1 call).
#[test]
fn a_waiting_call_is_judged_by_the_new_slow_threshold() {
    let clock = MockClock::new();
    let cfg = Config::new()
        .slow_calls(Duration::from_secs(2), 100)
        .minimum_calls(1)
        .open_for(Duration::from_secs(10));
    let b = CircuitBreaker::with_window(cfg, TimeWindow::<4>, &clock).unwrap();
    let mut call = pin!(b.call(|| async {
        clock.sleep_until(Instant::from_secs(1)).await;
        Ok::<_, ()>(7)
    }));
    // Admitted at 0 s, now waiting on the clock.
    let cx = &mut Context::from_waker(Waker::noop());
    assert!(call.as_mut().poll(cx).is_pending());
    b.set_slow_threshold(Duration::from_millis(500)).unwrap();
    assert_eq!(mock::run(&clock, call).unwrap(), Ok(7));
    assert_eq!(clock.now(), Instant::from_secs(1));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().times.slow_successes, 1);
    let r = b.call_sync(|| Ok::<_, ()>(1));
    assert!(matches!(r, Err(Error::Rejected(r)) if r.retry_at == Some(Instant::from_secs(11))));
}

/// What cannot change, or would be invalid, is a typed error and changes nothing.
#[test]
fn bad_or_fixed_changes_are_typed_errors_and_change_nothing() {
    let clock = MockClock::new();
    let cfg = Config::new().failure_rate(50).minimum_calls(4);
    let b = CircuitBreaker::with_window(cfg, CountWindow::<8>, &clock).unwrap();
    let cases = [
        (
            b.set_rate_thresholds(Some(0), None, 4),
            ConfigError::PercentOutOfRange(Field::FailureRate),
        ),
        (
            b.set_rate_thresholds(Some(101), None, 4),
            ConfigError::PercentOutOfRange(Field::FailureRate),
        ),
        (
            b.set_rate_thresholds(Some(50), None, 9),
            ConfigError::MinimumCallsAboveWindow,
        ),
        (
            b.set_rate_thresholds(Some(50), None, 0),
            ConfigError::Zero(Field::MinimumCalls),
        ),
        (
            b.set_rate_thresholds(None, None, 4),
            ConfigError::NoTripPolicy,
        ),
        (
            b.set_rate_thresholds(Some(50), Some(80), 4),
            ConfigError::FixedAtRunTime(Field::SlowRate),
        ),
        (
            b.set_slow_threshold(Duration::from_secs(1)),
            ConfigError::FixedAtRunTime(Field::SlowRate),
        ),
    ];
    for (i, (got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case {i}");
    }
    assert_eq!(b.config(), cfg);

    let slow = Config::new()
        .slow_calls(Duration::from_secs(1), 50)
        .consecutive_failures(3);
    let s = CircuitBreaker::with_window(slow, CountWindow::<8>, &clock).unwrap();
    assert_eq!(
        s.set_slow_threshold(Duration::ZERO),
        Err(ConfigError::Zero(Field::SlowThreshold))
    );
    assert_eq!(
        s.set_rate_thresholds(Some(50), None, 1),
        Err(ConfigError::FixedAtRunTime(Field::SlowRate))
    );
    // The slow rate may change while it stays on, and the failure rate may be turned on.
    s.set_rate_thresholds(Some(40), Some(70), 2).unwrap();
    assert_eq!(
        s.config(),
        slow.failure_rate(40)
            .slow_calls(Duration::from_secs(1), 70)
            .minimum_calls(2)
    );

    let plain = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock).unwrap();
    assert_eq!(
        plain.set_rate_thresholds(Some(50), None, 1),
        Err(ConfigError::NoWindow)
    );
    let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2)).unwrap();
    assert_eq!(
        m.set_rate_thresholds(Some(50), None, 1),
        Err(ConfigError::NoWindow)
    );
}

/// The open time and the consecutive failures change through `&self`: the run of failures
/// and the consecutive openings are kept (growth continues from the new base).
#[test]
fn open_time_and_consecutive_failures_change_without_losing_state() {
    let clock = MockClock::new();
    let s = Duration::from_secs;
    let cfg = Config::new()
        .consecutive_failures(4)
        .open_for(s(10))
        .open_growth(2, s(100));
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
        let t = m.try_acquire(Instant::ZERO).unwrap();
        m.on_failure(t, Instant::ZERO);
    }
    b.set_consecutive_failures(Some(3)).unwrap();
    m.set_consecutive_failures(Some(3)).unwrap();
    assert_eq!(b.metrics().consecutive_failures, 2);
    b.try_acquire().unwrap().failure(); // the 3rd: opens for 10 s
    let t = m.try_acquire(Instant::ZERO).unwrap();
    m.on_failure(t, Instant::ZERO);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_at,
        Some(Instant::from_secs(10))
    );
    assert_eq!(
        m.try_acquire(Instant::ZERO).unwrap_err().retry_at,
        Some(Instant::from_secs(10))
    );
    // The open breaker keeps its end; the next opening (the 2nd: ×2) starts from 7 s.
    b.set_open_for(s(7)).unwrap();
    m.set_open_for(s(7)).unwrap();
    assert_eq!(
        b.try_acquire().unwrap_err().retry_at,
        Some(Instant::from_secs(10))
    );
    clock.set(Instant::from_secs(10));
    b.try_acquire().unwrap().failure(); // the probe fails
    let t = m.try_acquire(Instant::from_secs(10)).unwrap();
    m.on_failure(t, Instant::from_secs(10));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_at,
        Some(Instant::from_secs(24))
    );
    assert_eq!(
        m.try_acquire(Instant::from_secs(10)).unwrap_err().retry_at,
        Some(Instant::from_secs(24))
    );
    assert_eq!(b.config(), cfg.consecutive_failures(3).open_for(s(7)));
    assert_eq!(m.config(), b.config());
    // Above the growth's cap: refused, nothing changes.
    assert_eq!(b.set_open_for(s(101)), Err(ConfigError::OpenMaxBelowBase));
    assert_eq!(
        b.set_consecutive_failures(Some(0)),
        Err(ConfigError::Zero(Field::ConsecutiveFailures))
    );
    assert_eq!(
        b.set_consecutive_failures(Some(70_000)),
        Err(ConfigError::TooLarge(Field::ConsecutiveFailures))
    );
    assert_eq!(b.config(), cfg.consecutive_failures(3).open_for(s(7)));
}

/// Found by the breaker fuzz target once it changed settings at run time: lowering the
/// consecutive-failures threshold to the current run leaves a closed breaker with a run at
/// its threshold (the next failure trips it, as the docs say). Its own snapshot of that state
/// must restore, on both forms, and restoring must keep the run.
#[test]
fn a_run_at_a_lowered_threshold_snapshots_and_restores() {
    use bulwark::circuit_breaker::{CircuitBreaker, Machine, NoWindow};
    let cfg = Config::new()
        .consecutive_failures(3)
        .open_for(Duration::from_secs(10));
    let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    for _ in 0..2 {
        let t = m.try_acquire(Instant::ZERO).unwrap();
        m.on_failure(t, Instant::ZERO);
    }
    m.set_consecutive_failures(Some(2)).unwrap();
    assert_eq!(m.state(), State::Closed);
    let snap = m.snapshot(Instant::ZERO);
    assert_eq!(snap.consecutive_failures, 2);
    assert_eq!(m.restore(snap, Instant::ZERO), Ok(()));
    assert_eq!(m.snapshot(Instant::ZERO), snap);
    let t = m.try_acquire(Instant::ZERO).unwrap();
    m.on_failure(t, Instant::ZERO);
    assert_eq!(m.state(), State::Open);

    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
    }
    b.set_consecutive_failures(Some(1)).unwrap();
    let snap = b.snapshot();
    assert_eq!((snap.state, snap.consecutive_failures), (State::Closed, 2));
    assert_eq!(b.restore(snap), Ok(()));
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}
