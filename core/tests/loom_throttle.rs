//! loom checks of the adaptive throttle's buckets and of gRPC retry throttling's tokens. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_throttle`.
#![cfg(loom)]

use bulwark::admission::Outcome;
use bulwark::throttle::{AdaptiveThrottle, Config};
use bulwark::{Clock, Instant};
use core::time::Duration;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

/// A clock the test moves.
struct Shared(Arc<AtomicU64>);
impl Clock for Shared {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// Outcomes recorded at once into one bucket are all counted.
#[test]
fn concurrent_records_are_all_counted() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let t: Arc<AdaptiveThrottle<_, 2>> = Arc::new(
            AdaptiveThrottle::new(
                Config::new().window(Duration::from_secs(2)).seed(1),
                Shared(clock),
            )
            .unwrap(),
        );
        let other = {
            let t = t.clone();
            thread::spawn(move || t.record_outcome(Outcome::Success))
        };
        t.record_outcome(Outcome::Failure);
        other.join().unwrap();
        assert_eq!(t.counts(), (2, 1));
    });
}

/// A record in a new epoch of a slot and a record in its old epoch, racing: the old one is
/// either counted before the slot turns over (then reset with it) or dropped; the new one is
/// always counted.
#[test]
fn a_slot_turning_over_keeps_the_newer_epoch() {
    loom::model(|| {
        let new = Arc::new(AtomicU64::new(2_000_000_000)); // 2 s: the same slot of 2, one lap on
        let cfg = Config::new().window(Duration::from_secs(2)).seed(1);
        let clock = Arc::new(AtomicU64::new(0));
        let t: Arc<AdaptiveThrottle<_, 2>> =
            Arc::new(AdaptiveThrottle::new(cfg, Shared(clock.clone())).unwrap());
        t.record_outcome(Outcome::Failure); // epoch 0, slot 0
        let mover = {
            let (t, clock, new) = (t.clone(), clock.clone(), new.clone());
            thread::spawn(move || {
                clock.store(new.load(Ordering::SeqCst), Ordering::SeqCst);
                t.record_outcome(Outcome::Success); // epoch 2, slot 0
            })
        };
        t.record_outcome(Outcome::Failure); // epoch 0 or 2, depending on the clock it reads
        mover.join().unwrap();
        let (req, acc) = t.counts(); // read at 2 s
        assert_eq!(acc, 1);
        assert!(req == 1 || req == 2, "{req}");
    });
}

/// gRPC's retry throttling from three threads at once (two failures asking for a retry, one
/// success worth half a token), 4 tokens, retries allowed while more than 2 are left: the
/// outcome is that of one of the three serial orders, never a lost or doubled update. Deposit
/// first: capped at 4, then 3 (granted), 2 (refused). Between the withdrawals: 3 (granted),
/// 3.5, 2.5 (granted). Last: 3 (granted), 2 (refused), 2.5.
#[test]
fn retry_throttling_keeps_every_token_and_answers_in_some_order() {
    use bulwark::retry::RetryBudget;
    use bulwark::throttle::RetryThrottling;
    loom::model(|| {
        let t = Arc::new(RetryThrottling::new(4, 500).unwrap());
        let spawn = |deposit: bool| {
            let t = t.clone();
            thread::spawn(move || {
                if deposit {
                    t.deposit();
                    0
                } else {
                    u32::from(t.try_withdraw(Instant::ZERO))
                }
            })
        };
        let (a, b) = (spawn(false), spawn(true));
        let mine = u32::from(t.try_withdraw(Instant::ZERO));
        let granted = mine + a.join().unwrap() + b.join().unwrap();
        let seen = (t.tokens_milli(), granted);
        assert!(
            [(2_000, 1), (2_500, 2), (2_500, 1)].contains(&seen),
            "{seen:?}"
        );
    });
}
