//! loom model checks of the breaker's thresholds changed at run time through `&self` (issue 15,
//! item 12): a decision never sees half a change, and changes of different settings never
//! undo each other.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=$PWD/target/loom cargo test -p bulwark --release --test loom_breaker_thresholds`
#![cfg(loom)]

use bulwark::admission::Permit;
use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, State};
use bulwark::{Clock, Instant};
use core::time::Duration;
use loom::sync::Arc;

/// A clock that stands still at 100 s.
struct Still;
impl Clock for Still {
    fn now(&self) -> Instant {
        Instant::from_secs(100)
    }
}

/// The change (failure rate 50 %, minimum 4 calls) → (100 %, 2 calls) races the outcome of a
/// call in flight. With 2 failures in 3 calls, the old thresholds do not trip (3 < 4 calls)
/// and neither do the new (66 % < 100 %); only a torn mix (50 %, 2 calls) would. The call in
/// flight is judged with one setting or the other, whole.
#[test]
fn a_decision_never_sees_half_a_threshold_change() {
    loom::model(|| {
        let cfg = Config::new().failure_rate(50).minimum_calls(4);
        let b = Arc::new(CircuitBreaker::with_window(cfg, CountWindow::<4>, Still).unwrap());
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
        let in_flight = Permit::try_new(b.clone()).unwrap();
        let changer = {
            let b = b.clone();
            loom::thread::spawn(move || b.set_rate_thresholds(Some(100), None, 2).unwrap())
        };
        let caller = loom::thread::spawn(move || in_flight.failure());
        changer.join().unwrap();
        caller.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().window.calls, 3);
        assert_eq!(b.config(), cfg.failure_rate(100).minimum_calls(2));
    });
}

/// The slow-call threshold and the rate thresholds are separate words: changing them at the
/// same time keeps both changes.
#[test]
fn changes_of_different_settings_never_undo_each_other() {
    loom::model(|| {
        let s = Duration::from_secs;
        let cfg = Config::new()
            .failure_rate(50)
            .slow_calls(s(2), 100)
            .minimum_calls(2);
        let b = Arc::new(CircuitBreaker::with_window(cfg, CountWindow::<4>, Still).unwrap());
        let threshold = {
            let b = b.clone();
            loom::thread::spawn(move || b.set_slow_threshold(s(1)).unwrap())
        };
        let rates = {
            let b = b.clone();
            loom::thread::spawn(move || b.set_rate_thresholds(Some(60), Some(90), 3).unwrap())
        };
        threshold.join().unwrap();
        rates.join().unwrap();
        assert_eq!(
            b.config(),
            cfg.failure_rate(60).slow_calls(s(1), 90).minimum_calls(3)
        );
    });
}

/// A change of the open time racing a trip: the trip opens for the old time or the new one,
/// whole, and publishes it (a caller after both sees that end).
#[test]
fn an_open_time_change_racing_a_trip_opens_for_one_or_the_other() {
    loom::model(|| {
        let s = Duration::from_secs;
        let cfg = Config::new().consecutive_failures(1).open_for(s(30));
        let b = Arc::new(CircuitBreaker::new(cfg, Still).unwrap());
        let permit = Permit::try_new(b.clone()).unwrap();
        let changer = {
            let b = b.clone();
            loom::thread::spawn(move || {
                b.set_open_for(s(5)).unwrap();
                b.set_consecutive_failures(Some(2)).unwrap();
            })
        };
        let caller = loom::thread::spawn(move || permit.failure());
        changer.join().unwrap();
        caller.join().unwrap();
        // The failure was judged with 1 or 2 consecutive failures: open, or closed with a
        // run of 1; if open, for 30 s or 5 s from 100 s.
        match b.state() {
            State::Open => {
                let at = b.try_acquire().unwrap_err().retry_at.unwrap();
                assert!(
                    at == Instant::from_secs(130) || at == Instant::from_secs(105),
                    "{at:?}"
                );
            }
            State::Closed => assert_eq!(b.metrics().consecutive_failures, 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.config(), cfg.open_for(s(5)).consecutive_failures(2));
    });
}
