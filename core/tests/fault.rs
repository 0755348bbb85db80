//! Fault injection: the machine and the shared form draw one sequence; rates, delays and the
//! three faults behave as configured; the async form waits, refuses, replaces and passes
//! through on the mock clock at literal instants.
#![cfg(not(loom))]

use core::cell::Cell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use bulwark::fault::{Config, ConfigError, Error, Fault, Injected, Injector, Machine, Rate};
use bulwark::{Clock, Instant, MockClock, mock};
use proptest::prelude::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

proptest! {
    /// The k-th decision of a machine equals the k-th of an injector with the same config,
    /// and every delay lies in the range.
    #[test]
    fn machine_and_injector_draw_one_sequence(
        seed: u64,
        abort in 0u32..=1_000_000,
        delay in 0u32..=1_000_000,
        replace in 0u32..=1_000_000,
        lo in 0u64..10_000,
        span in 0u64..10_000,
    ) {
        let cfg = Config::new()
            .abort(Rate::per_million(abort))
            .delay(Rate::per_million(delay), MS(lo), MS(lo + span))
            .replace(Rate::per_million(replace))
            .seed(seed);
        let mut m = Machine::new(cfg).unwrap();
        let i = Injector::new(cfg, MockClock::new()).unwrap();
        for _ in 0..200 {
            let f = m.decide();
            prop_assert_eq!(f, i.decide());
            prop_assert!(f.delay.is_zero() || (f.delay >= MS(lo) && f.delay <= MS(lo + span)));
        }
    }
}

/// Counts of each fault over `n` decisions.
fn counts(cfg: Config, n: u32) -> (u32, u32, u32) {
    let mut m = Machine::new(cfg).unwrap();
    let (mut aborted, mut replaced, mut delayed) = (0, 0, 0);
    for _ in 0..n {
        let f = m.decide();
        match f.fail {
            Some(Injected::Aborted) => aborted += 1,
            Some(Injected::Replaced) => replaced += 1,
            None => {}
        }
        if !f.delay.is_zero() {
            delayed += 1;
        }
    }
    (aborted, replaced, delayed)
}

#[test]
fn rates_hold_over_many_calls_and_the_faults_are_independent() {
    let n = 200_000;
    let cfg = Config::new()
        .abort(Rate::percent(10))
        .delay(Rate::percent(25), MS(1), MS(2))
        .replace(Rate::percent(50))
        .seed(9);
    let (aborted, replaced, delayed) = counts(cfg, n);
    // 10 % aborted; replaced: 50 % of the 90 % not aborted (an abort wins); 25 % delayed.
    let near = |got: u32, want: f64| (f64::from(got) / f64::from(n) - want).abs() < 0.005;
    assert!(near(aborted, 0.10), "aborted {aborted}");
    assert!(near(replaced, 0.45), "replaced {replaced}");
    assert!(near(delayed, 0.25), "delayed {delayed}");
}

#[test]
fn never_and_always_are_exact() {
    assert_eq!(counts(Config::new().seed(1), 10_000), (0, 0, 0));
    let always = Config::new()
        .abort(Rate::ALWAYS)
        .delay(Rate::ALWAYS, MS(5), MS(5))
        .seed(1);
    assert_eq!(counts(always, 10_000), (10_000, 0, 10_000));
    let mut m = Machine::new(always).unwrap();
    assert_eq!(
        m.decide(),
        Fault {
            delay: MS(5),
            fail: Some(Injected::Aborted)
        }
    );
    assert_eq!(
        counts(Config::new().replace(Rate::ALWAYS).seed(1), 1000),
        (0, 1000, 0)
    );
}

#[test]
fn delays_cover_the_whole_range_even_the_largest() {
    let mut m = Machine::new(Config::new().delay(Rate::ALWAYS, MS(10), MS(13)).seed(4)).unwrap();
    let mut per_ms = [0u32; 3];
    for _ in 0..3000 {
        let d = m.decide().delay;
        assert!(d >= MS(10) && d <= MS(13), "{d:?}");
        per_ms[((d.as_nanos() - 10_000_000) / 1_000_000).min(2) as usize] += 1;
    }
    // Uniform: each millisecond of the range gets about a third.
    assert!(
        per_ms.iter().all(|&n| (850..1150).contains(&n)),
        "{per_ms:?}"
    );
    // The full span of a u64 of nanoseconds: no overflow, always within it.
    let mut huge = Machine::new(
        Config::new()
            .delay(Rate::ALWAYS, Duration::ZERO, Duration::MAX)
            .seed(2),
    )
    .unwrap();
    for _ in 0..100 {
        assert!(huge.decide().delay <= Duration::from_nanos(u64::MAX));
    }
}

#[test]
fn bad_configs_are_typed_errors() {
    let clock = MockClock::new();
    assert_eq!(
        Machine::new(Config::new().abort(Rate::percent(101))).err(),
        Some(ConfigError::RateAboveAll)
    );
    assert_eq!(
        Injector::new(Config::new().replace(Rate::per_million(u32::MAX)), &clock).err(),
        Some(ConfigError::RateAboveAll)
    );
    assert_eq!(
        Machine::new(Config::new().delay(Rate::ALWAYS, MS(2), MS(1))).err(),
        Some(ConfigError::DelayRange)
    );
    assert_eq!(Rate::percent(u32::MAX), Rate::per_million(u32::MAX)); // saturates, then refused
}

#[test]
fn switching_at_run_time_takes_effect_on_the_next_call() {
    let clock = MockClock::new();
    let chaos = Injector::new(Config::new().seed(5), &clock).unwrap();
    assert!(chaos.decide().is_none());
    assert_eq!(chaos.totals().decided, 0); // off: no draw
    chaos.set(Config::new().abort(Rate::ALWAYS)).unwrap();
    assert_eq!(chaos.decide().fail, Some(Injected::Aborted));
    chaos
        .set(Config::new().delay(Rate::ALWAYS, MS(7), MS(7)))
        .unwrap();
    assert_eq!(
        chaos.decide(),
        Fault {
            delay: MS(7),
            fail: None
        }
    );
    chaos.disable();
    assert!(chaos.decide().is_none());
    let t = chaos.totals();
    assert_eq!((t.decided, t.aborted, t.replaced, t.delayed), (2, 1, 0, 1));
}

#[test]
fn a_delayed_call_starts_at_the_exact_instant_and_then_runs() {
    let clock = MockClock::new();
    clock.set(Instant::from_secs(1));
    let chaos = Injector::new(Config::new().delay(Rate::ALWAYS, MS(250), MS(250)), &clock).unwrap();
    let started = Cell::new(None);
    let out = mock::run(
        &clock,
        chaos.call(|| {
            started.set(Some(clock.now()));
            async { Ok::<_, ()>("ok") }
        }),
    )
    .unwrap();
    assert_eq!(out, Ok("ok"));
    assert_eq!(started.get(), Some(Instant::from_millis(1250)));
}

#[test]
fn an_aborted_call_is_never_made_and_a_replaced_one_is() {
    let clock = MockClock::new();
    let made = Cell::new(0);
    let op = || {
        made.set(made.get() + 1);
        async { Ok::<_, &str>(1) }
    };
    let abort = Injector::new(Config::new().abort(Rate::ALWAYS), &clock).unwrap();
    assert_eq!(
        mock::run(&clock, abort.call(op)).unwrap(),
        Err(Error::Injected(Injected::Aborted))
    );
    assert_eq!(made.get(), 0);
    let replace = Injector::new(Config::new().replace(Rate::ALWAYS), &clock).unwrap();
    assert_eq!(
        mock::run(&clock, replace.call(op)).unwrap(),
        Err(Error::Injected(Injected::Replaced))
    );
    assert_eq!(made.get(), 1);
    // Off: the operation's own result and error pass through unchanged, at once.
    let off = Injector::new(Config::new(), &clock).unwrap();
    assert_eq!(mock::run(&clock, off.call(op)).unwrap(), Ok(1));
    assert_eq!(
        mock::run(&clock, off.call(|| async { Err::<(), _>("boom") })).unwrap(),
        Err(Error::Operation("boom"))
    );
    assert_eq!(clock.now(), Instant::ZERO);
}

#[test]
fn dropping_a_delayed_call_never_makes_it() {
    let clock = MockClock::new();
    let chaos = Injector::new(Config::new().delay(Rate::ALWAYS, MS(100), MS(100)), &clock).unwrap();
    let made = Cell::new(false);
    {
        let mut call = pin!(chaos.call(|| {
            made.set(true);
            async { Ok::<_, ()>(()) }
        }));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(call.as_mut().poll(cx).is_pending());
        assert_eq!(clock.next_deadline(), Some(Instant::from_millis(100)));
    }
    clock.advance(MS(100));
    assert!(!made.get());
    assert_eq!(clock.next_deadline(), None); // the sleep's slot was given back
}

#[test]
fn the_decision_is_made_at_the_first_poll_not_at_creation() {
    let clock = MockClock::new();
    let chaos = Injector::new(Config::new(), &clock).unwrap();
    let call = chaos.call(|| async { Ok::<_, ()>(1) });
    chaos.set(Config::new().abort(Rate::ALWAYS)).unwrap(); // switched before the call runs
    let mut call = pin!(call);
    let cx = &mut Context::from_waker(Waker::noop());
    assert_eq!(
        call.as_mut().poll(cx),
        Poll::Ready(Err(Error::Injected(Injected::Aborted)))
    );
    assert_eq!(call.as_mut().poll(cx), Poll::Pending); // polled after completion: no panic
}
