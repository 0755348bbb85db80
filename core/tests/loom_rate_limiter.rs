//! loom checks of the rate limiter's shared forms. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_rate_limiter`.
#![cfg(loom)]

use bulwark::rate_limiter::{Config, KeyedRateLimiter, RateLimiter};
use bulwark::{Clock, Instant};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::thread;

/// A clock the test moves; loom explores reads before and after each move.
struct Shared(Arc<AtomicU64>);
impl Clock for Shared {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn concurrent_checks_admit_exactly_the_burst() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l = Arc::new(RateLimiter::new(Config::per_second(1).burst(2), Shared(clock)).unwrap());
        let ok = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (l, ok) = (l.clone(), ok.clone());
                thread::spawn(move || {
                    if l.try_acquire().is_ok() {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::SeqCst), 2);
        assert_eq!(l.tat(), Instant::from_secs(2));
    });
}

#[test]
fn check_n_never_over_admits_tokens() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l = Arc::new(RateLimiter::new(Config::per_second(1).burst(3), Shared(clock)).unwrap());
        let tokens = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = [2u32, 2]
            .into_iter()
            .map(|n| {
                let (l, tokens) = (l.clone(), tokens.clone());
                thread::spawn(move || {
                    if l.try_acquire_n(n).is_ok() {
                        tokens.fetch_add(n, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 2 + 2 > 3: exactly one of them passes, whatever the interleaving.
        assert_eq!(tokens.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn time_moving_during_checks_never_over_admits() {
    loom::model(|| {
        let now = Arc::new(AtomicU64::new(0));
        let l = Arc::new(
            RateLimiter::new(Config::per_second(1).burst(1), Shared(now.clone())).unwrap(),
        );
        let ok = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (l, ok) = (l.clone(), ok.clone());
                thread::spawn(move || {
                    if l.try_acquire().is_ok() {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // One period passes while they race: at most burst + 1 admissions.
        now.store(1_000_000_000, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let ok = ok.load(Ordering::SeqCst);
        assert!((1..=2).contains(&ok), "{ok} admitted");
    });
}

#[test]
fn keyed_limiter_admits_exactly_the_burst_per_key() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l: Arc<KeyedRateLimiter<u8, _, 2>> =
            Arc::new(KeyedRateLimiter::new(Config::per_second(1).burst(1), Shared(clock)).unwrap());
        let ok = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (l, ok) = (l.clone(), ok.clone());
                thread::spawn(move || {
                    if l.try_acquire(&7).is_ok() {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::SeqCst), 1);
    });
}

/// Two keys of one set (a table of 8 slots is one set) inserted at once: the set's lock
/// (in its first slot) keeps every slot of the set, the second too, to one caller at a time
/// (loom's cells would catch two at once), and neither insertion is lost.
#[test]
fn keyed_limiter_keeps_both_keys_inserted_into_one_set_at_once() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l: Arc<KeyedRateLimiter<u8, _, 8>> =
            Arc::new(KeyedRateLimiter::new(Config::per_second(1).burst(1), Shared(clock)).unwrap());
        let threads: Vec<_> = [1, 2]
            .map(|key| {
                let l = l.clone();
                thread::spawn(move || l.try_acquire(&key).is_ok())
            })
            .into_iter()
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
        assert_eq!(l.len(), 2);
        assert!(l.try_acquire(&1).is_err() && l.try_acquire(&2).is_err());
    });
}

/// Reservations and their hand-backs beside each other: a hand-back succeeds only on the
/// exact word its reservation left, so the state after everything counts exactly the tokens
/// kept (none lost, none given twice), and reservations kept have distinct instants.
#[test]
fn reservations_and_hand_backs_keep_exact_count() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l = Arc::new(RateLimiter::new(Config::per_second(1).burst(1), Shared(clock)).unwrap());
        l.try_acquire().unwrap(); // empty: every reservation below is for a later instant
        let until = Instant::from_secs(10);
        let reserver = {
            let l = l.clone();
            thread::spawn(move || {
                let r = l.try_reserve_n(1, until).unwrap();
                (r.due(), l.cancel(r))
            })
        };
        let other = {
            let l = l.clone();
            thread::spawn(move || l.try_reserve_n(1, until).unwrap().due())
        };
        let (mine, handed_back) = reserver.join().unwrap();
        let theirs = other.join().unwrap();
        // The first token, theirs, and mine unless handed back.
        let kept = if handed_back { 2 } else { 3 };
        assert_eq!(l.tat(), Instant::from_secs(kept));
        if !handed_back {
            assert_ne!(mine, theirs, "two reservations kept, two instants");
        }
    });
}
