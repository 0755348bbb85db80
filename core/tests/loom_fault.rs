//! loom checks of the fault injector's shared form. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_fault`.
#![cfg(loom)]

use bulwark::fault::{Config, Injected, Injector, Machine, Rate};
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;

/// Two threads deciding at once take distinct draws: together they get exactly the first
/// two decisions of a machine with the same seed, in some order.
#[test]
fn concurrent_decisions_take_distinct_draws() {
    let cfg = Config::new()
        .abort(Rate::percent(50))
        .delay(
            Rate::percent(50),
            Duration::from_millis(1),
            Duration::from_millis(9),
        )
        .replace(Rate::percent(50))
        .seed(11);
    let mut m = Machine::new(cfg).unwrap();
    let want = [m.decide(), m.decide()];
    loom::model(move || {
        let chaos = Arc::new(Injector::new(cfg, ()).unwrap());
        let other = {
            let chaos = chaos.clone();
            thread::spawn(move || chaos.decide())
        };
        let mine = chaos.decide();
        let theirs = other.join().unwrap();
        assert!(
            [mine, theirs] == want || [theirs, mine] == want,
            "{mine:?} {theirs:?} vs {want:?}"
        );
        assert_eq!(chaos.totals().decided, 2);
    });
}

/// A decision that sees the rates `set` stored also sees the delay range stored with them:
/// switching from "abort, no delay" to "delay 5 ms, never abort" never yields an abort with
/// a delay, nor a delay outside the new range.
#[test]
fn a_switch_publishes_the_delay_range_with_the_rates() {
    loom::model(|| {
        let chaos = Arc::new(Injector::new(Config::new().abort(Rate::ALWAYS), ()).unwrap());
        let switch = {
            let chaos = chaos.clone();
            thread::spawn(move || {
                chaos
                    .set(Config::new().delay(
                        Rate::ALWAYS,
                        Duration::from_millis(5),
                        Duration::from_millis(5),
                    ))
                    .unwrap();
            })
        };
        let f = chaos.decide();
        switch.join().unwrap();
        match f.fail {
            Some(Injected::Aborted) => assert!(f.delay.is_zero(), "old rates: {f:?}"),
            _ => assert_eq!(f.delay, Duration::from_millis(5), "new rates: {f:?}"),
        }
        assert_eq!(chaos.decide().delay, Duration::from_millis(5));
    });
}
