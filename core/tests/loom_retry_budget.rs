//! loom: the retry budget under concurrent spend and earn. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_retry_budget`.
#![cfg(loom)]

use bulwark::Instant;
use bulwark::retry::{Budget, RetryBudget};
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;

/// Conservation: every earned token is either spent by exactly one retry or still in the
/// balance; the floor grants exactly its allowance; nothing is lost, doubled or wrapped.
#[test]
fn spend_and_earn_conserve_tokens() {
    loom::model(|| {
        // One retry per success, a floor of one retry per second, room for 10 tokens.
        let b = Arc::new(Budget::new(100, 1, 10).unwrap());
        let t = Instant::from_millis(1_500);
        let b1 = b.clone();
        let h1 = thread::spawn(move || b1.try_withdraw(t) as u32 + b1.try_withdraw(t) as u32);
        let b2 = b.clone();
        let h2 = thread::spawn(move || {
            b2.deposit();
            b2.try_withdraw(t) as u32
        });
        let granted = h1.join().unwrap() + h2.join().unwrap();
        let deposited = 1;
        let floor = 1;
        // Never more retries than the floor plus what was earned.
        assert!(granted <= floor + deposited, "granted {granted}");
        // The floor is always taken (it is tried first and nothing else can use it), so the
        // token grants are `granted - floor`, and together with what is left they account
        // for every deposit exactly.
        assert!(granted >= floor);
        assert_eq!((granted - floor) as u64 + b.tokens(), deposited as u64);
        assert_eq!(b.denied(), 3 - granted as u64);
    });
}

/// Concurrent deposits saturate at the cap exactly; withdrawals never take the balance below
/// zero (it would wrap to a huge `u64`).
#[test]
fn deposits_saturate_at_the_cap_and_the_balance_never_wraps() {
    loom::model(|| {
        let b = Arc::new(Budget::new(100, 0, 1).unwrap());
        let t = Instant::ZERO;
        let b1 = b.clone();
        let h1 = thread::spawn(move || {
            b1.deposit();
            b1.try_withdraw(t) as u32
        });
        let b2 = b.clone();
        let h2 = thread::spawn(move || {
            b2.deposit();
            b2.try_withdraw(t) as u32
        });
        let granted = h1.join().unwrap() + h2.join().unwrap();
        let left = b.tokens();
        assert!(left <= 1, "balance above the cap or wrapped: {left}");
        // Two deposits into a one-token cap: at least one and at most two retries funded,
        // and what is granted plus what is left never exceeds what was deposited.
        assert!((1..=2).contains(&granted));
        assert!(granted as u64 + left <= 2);
    });
}

/// The per-second floor under racing clocks: one thread in second 0, one in second 1. A
/// clock that is behind the floor's second gets no fresh floor, so 1 or 2 are granted —
/// never more than one per second seen.
#[test]
fn floor_is_per_second_under_racing_clocks() {
    loom::model(|| {
        let b = Arc::new(Budget::new(0, 1, 0).unwrap());
        let b1 = b.clone();
        let h1 = thread::spawn(move || {
            b1.try_withdraw(Instant::from_millis(900)) as u32
                + b1.try_withdraw(Instant::from_millis(950)) as u32
        });
        let b2 = b.clone();
        let h2 = thread::spawn(move || b2.try_withdraw(Instant::from_millis(1_100)) as u32);
        let (g1, g2) = (h1.join().unwrap(), h2.join().unwrap());
        assert!(g1 <= 1, "one floor retry per second in second 0, got {g1}");
        assert!((1..=2).contains(&(g1 + g2)));
        assert_eq!(b.denied(), 3 - (g1 + g2) as u64);
        assert_eq!(b.tokens(), 0);
    });
}

/// The expiring budget (tower's `TpsBudget`): one token split in halves across two slots,
/// two retries racing for it. At most one is granted (never a token spent twice), and
/// whatever is not granted is given back: granted + left is exactly the one token.
#[test]
fn expiring_budget_never_spends_a_split_token_twice() {
    use bulwark::retry::ExpiringBudget;
    loom::model(|| {
        let b = Arc::new(ExpiringBudget::new(Duration::from_secs(1), 50, 0).unwrap());
        b.deposit_at(Instant::from_millis(0));
        b.deposit_at(Instant::from_millis(500));
        let t = Instant::from_millis(600);
        let b1 = b.clone();
        let h1 = thread::spawn(move || b1.try_withdraw(t) as u64);
        let b2 = b.clone();
        let h2 = thread::spawn(move || b2.try_withdraw(t) as u64);
        let granted = h1.join().unwrap() + h2.join().unwrap();
        assert!(granted <= 1, "granted {granted}");
        assert_eq!(granted + b.tokens(t), 1);
    });
}

/// A deposit racing a withdrawal on the expiring budget: half a token there, half deposited
/// by one thread while the other asks for a retry. Nothing is lost or doubled.
#[test]
fn expiring_budget_deposit_races_withdrawal() {
    use bulwark::retry::ExpiringBudget;
    loom::model(|| {
        let b = Arc::new(ExpiringBudget::new(Duration::from_secs(1), 50, 0).unwrap());
        let t = Instant::from_millis(300);
        b.deposit_at(Instant::from_millis(100));
        let b1 = b.clone();
        let h1 = thread::spawn(move || b1.deposit_at(t));
        let b2 = b.clone();
        let h2 = thread::spawn(move || b2.try_withdraw(t) as u64);
        h1.join().unwrap();
        let granted = h2.join().unwrap();
        assert_eq!(granted + b.tokens(t), 1);
    });
}
