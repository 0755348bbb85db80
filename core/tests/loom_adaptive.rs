//! loom checks of the adaptive limit's shared form. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_adaptive`.
#![cfg(loom)]

use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
use bulwark::admission::{Admit, Outcome};
use bulwark::{Clock, Instant};
use loom::sync::Arc;
use loom::thread;

struct Zero;
impl Clock for Zero {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}

/// Three callers at a limit of two: exactly two are admitted.
#[test]
fn never_more_in_flight_than_the_limit() {
    loom::model(|| {
        let l = Arc::new(
            AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(2).min(1), Zero).unwrap(),
        );
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let l = l.clone();
                thread::spawn(move || l.try_admit().is_ok())
            })
            .collect();
        let mine = l.try_admit().is_ok();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&a| a)
            .count()
            + usize::from(mine);
        assert_eq!(admitted, 2);
        assert_eq!(l.in_flight(), 2);
    });
}

/// Two dropped calls finishing at once both back off: 10 × 0.9 × 0.9 = 8.1, never 9 (a lost
/// step).
#[test]
fn concurrent_samples_are_all_applied() {
    loom::model(|| {
        let l = Arc::new(
            AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(10).min(1), Zero).unwrap(),
        );
        let (a, b) = (l.try_admit().unwrap(), l.try_admit().unwrap());
        let other = {
            let l = l.clone();
            thread::spawn(move || l.record(b, Outcome::Failure))
        };
        l.record(a, Outcome::Failure);
        other.join().unwrap();
        assert_eq!(l.limit(), 8);
        assert_eq!(l.in_flight(), 0);
    });
}
