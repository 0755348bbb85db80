//! The retry budget: a shared, lock-free allowance of retries that stops retry storms.

use core::fmt;

use super::error::ConfigError;
use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::Instant;

/// What a retried call draws its retries from, shared by every call of a
/// [`Retry`](super::Retry). `()` is the unlimited budget (free: both methods are no-ops);
/// [`Budget`] is the real one; `&B` shares a budget between several policies.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, retry::{Budget, RetryBudget}};
/// let b = Budget::new(50, 0, 100).unwrap();
/// assert!(!b.try_withdraw(Instant::ZERO)); // nothing earned yet, no floor
/// b.deposit();
/// b.deposit(); // two successes at 50 % earn one retry
/// assert!(b.try_withdraw(Instant::ZERO));
/// assert!(RetryBudget::try_withdraw(&(), Instant::ZERO));
/// ```
pub trait RetryBudget {
    /// A call succeeded: earn its share of a retry.
    fn deposit(&self);
    /// Ask for one retry at `now`; `true` grants and spends it.
    fn try_withdraw(&self, now: Instant) -> bool;
}

impl RetryBudget for () {
    #[inline]
    fn deposit(&self) {}
    #[inline]
    fn try_withdraw(&self, _now: Instant) -> bool {
        true
    }
}

impl<B: RetryBudget + ?Sized> RetryBudget for &B {
    fn deposit(&self) {
        (**self).deposit()
    }
    fn try_withdraw(&self, now: Instant) -> bool {
        (**self).try_withdraw(now)
    }
}

/// Thousandths of a token: one retry costs [`COST`].
const COST: u64 = 1_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Low bits of the floor word: floor retries granted in the current second.
const USED_BITS: u32 = 16;
const USED_MASK: u64 = (1 << USED_BITS) - 1;

/// A retry budget (compare tower's `TpsBudget`, gRPC's retry throttling): successes earn
/// tokens, each retry spends one, and a floor of `min_per_sec` retries per second is always
/// allowed so a quiet client can still retry. Shared (`&self`), lock-free, allocation-free,
/// usable from a `static`.
///
/// * Each success deposits `retry_percent` % of a token (20 → one retry per five
///   successes). Earned tokens are capped at `max_tokens`: a long healthy stretch cannot fund
///   an unbounded burst later. (tower expires deposits after a TTL instead; the cap bounds the
///   burst the same way without a clock on the deposit path.)
/// * A retry first takes from the floor of the current second (seconds of the [`Clock`]
///   passed in as `now`; a clock that steps back stays in the later second), then from the
///   earned tokens; with neither it is denied, and the denial is counted.
///
/// So within any one clock second, retries granted ≤ `min_per_sec` + tokens earned, and over
/// the budget's lifetime, retries granted from tokens ≤ `retry_percent` % of successes.
///
/// [`Clock`]: crate::Clock
///
/// # Memory ordering
///
/// Two independent words, each only ever changed by a CAS loop, so each is exact under any
/// interleaving: `balance` (earned thousandths of a token) and `floor` (the second, `<< 16`,
/// plus the floor retries granted in it). A grant is one successful CAS on one of them;
/// nothing is read from one word to decide on the other, so no ordering between them is
/// needed. The CASes use `AcqRel`/`Acquire` so that a grant observed by one thread is ordered
/// with the deposit that funded it. The denial counter is `Relaxed`: a statistic.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, retry::{Budget, RetryBudget}};
///
/// // 20 % of successes, at least 2 retries a second, at most 10 tokens saved.
/// static BUDGET: Budget = match Budget::new(20, 2, 10) {
///     Ok(b) => b,
///     Err(_) => panic!("bad budget"),
/// };
/// let t = Instant::from_secs(7);
/// assert!(BUDGET.try_withdraw(t) && BUDGET.try_withdraw(t)); // the floor
/// assert!(!BUDGET.try_withdraw(t));
/// assert_eq!(BUDGET.denied(), 1);
/// for _ in 0..5 { BUDGET.deposit(); } // 5 × 20 % = 1 token
/// assert!(BUDGET.try_withdraw(t));
/// assert!(BUDGET.try_withdraw(Instant::from_secs(8))); // a new second, a new floor
/// ```
pub struct Budget {
    deposit: u64,
    max_balance: u64,
    min_per_sec: u64,
    /// Earned thousandths of a token, `0 ..= max_balance`.
    balance: AtomicU64,
    /// `second << 16 | floor retries granted in that second`.
    floor: AtomicU64,
    denied: AtomicU64,
}

impl Budget {
    const_fn! {
        /// A budget where each success earns `retry_percent` % of a retry (0 ..= 1000),
        /// `min_per_sec` retries are allowed each second regardless, and at most
        /// `max_tokens` earned retries are kept. It starts with nothing earned.
        ///
        /// # Errors
        ///
        /// [`ConfigError::PercentOutOfRange`] for `retry_percent` above 1000.
        ///
        /// ```
        /// use bulwark::retry::{Budget, ConfigError};
        /// assert!(Budget::new(20, 10, 100).is_ok());
        /// assert_eq!(Budget::new(1001, 0, 1).unwrap_err(), ConfigError::PercentOutOfRange);
        /// ```
        pub fn new(retry_percent: u16, min_per_sec: u16, max_tokens: u32) -> Result<Budget, ConfigError> {
            if retry_percent > 1000 {
                return Err(ConfigError::PercentOutOfRange);
            }
            Ok(Budget {
                deposit: retry_percent as u64 * COST / 100,
                max_balance: max_tokens as u64 * COST,
                min_per_sec: min_per_sec as u64,
                balance: AtomicU64::new(0),
                floor: AtomicU64::new(0),
                denied: AtomicU64::new(0),
            })
        }
    }

    /// Earned retries available now (whole tokens; the floor not included).
    ///
    /// ```
    /// use bulwark::retry::{Budget, RetryBudget};
    /// let b = Budget::new(100, 0, 3).unwrap();
    /// for _ in 0..5 { b.deposit(); }
    /// assert_eq!(b.tokens(), 3); // capped
    /// ```
    pub fn tokens(&self) -> u64 {
        // Acquire: pairs with the AcqRel CASes of deposits and withdrawals.
        self.balance.load(Ordering::Acquire) / COST
    }

    /// Retries denied so far (wrapping).
    ///
    /// ```
    /// use bulwark::{Instant, retry::{Budget, RetryBudget}};
    /// let b = Budget::new(0, 0, 0).unwrap();
    /// assert!(!b.try_withdraw(Instant::ZERO));
    /// assert_eq!(b.denied(), 1);
    /// ```
    pub fn denied(&self) -> u64 {
        // Relaxed: a statistic; it orders nothing.
        self.denied.load(Ordering::Relaxed)
    }

    /// Takes one retry from the floor of `now`'s second, if any is left.
    fn take_floor(&self, now: Instant) -> bool {
        if self.min_per_sec == 0 {
            return false;
        }
        let sec = now.as_nanos() / NANOS_PER_SEC;
        // Acquire: pairs with the AcqRel CAS of the previous floor grant.
        let mut cur = self.floor.load(Ordering::Acquire);
        loop {
            let (mut s, mut used) = (cur >> USED_BITS, cur & USED_MASK);
            if sec > s {
                (s, used) = (sec, 0); // a new second: a fresh floor
            } // sec < s: the clock stepped back; stay in the later second (no time passed)
            if used >= self.min_per_sec {
                return false;
            }
            let next = s << USED_BITS | (used + 1);
            // AcqRel on success: the grant is ordered after the floor grants it counted and
            // before any later one; Acquire on failure: reload the winner's value.
            match self
                .floor
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes one earned token, if there is one.
    fn take_token(&self) -> bool {
        // Acquire: pairs with the AcqRel CASes of `deposit` and other withdrawals.
        let mut cur = self.balance.load(Ordering::Acquire);
        loop {
            if cur < COST {
                return false;
            }
            // AcqRel: synchronizes with the deposit CASes that funded this token (Acquire)
            // and with later withdrawals (Release); Acquire on failure to reload.
            match self.balance.compare_exchange_weak(
                cur,
                cur - COST,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

impl RetryBudget for Budget {
    fn deposit(&self) {
        if self.deposit == 0 {
            return;
        }
        // Acquire: pairs with the AcqRel CASes of other deposits and withdrawals.
        let mut cur = self.balance.load(Ordering::Acquire);
        loop {
            let next = cur.saturating_add(self.deposit).min(self.max_balance);
            if next == cur {
                return; // full
            }
            // AcqRel: publishes this deposit to the withdrawal that spends it (Release) and
            // orders it after the ones it builds on (Acquire); Acquire on failure to reload.
            match self
                .balance
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    fn try_withdraw(&self, now: Instant) -> bool {
        if self.take_floor(now) || self.take_token() {
            return true;
        }
        // Relaxed: a statistic; it orders nothing.
        self.denied.fetch_add(1, Ordering::Relaxed);
        false
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("tokens", &self.tokens())
            .field("min_per_sec", &self.min_per_sec)
            .field("denied", &self.denied())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn deposit_ratio_and_cap() {
        let b = Budget::new(20, 0, 2).unwrap();
        let t = Instant::ZERO;
        for _ in 0..4 {
            b.deposit();
        }
        assert!(!b.try_withdraw(t), "4 × 20 % is not a whole retry");
        b.deposit();
        assert!(b.try_withdraw(t));
        assert!(!b.try_withdraw(t));
        for _ in 0..1_000 {
            b.deposit();
        }
        assert_eq!(b.tokens(), 2);
        assert!(b.try_withdraw(t) && b.try_withdraw(t) && !b.try_withdraw(t));
        assert_eq!(b.denied(), 3);
    }

    #[test]
    fn floor_per_second_and_backwards_clock() {
        let b = Budget::new(0, 3, 0).unwrap();
        let t = Instant::from_millis(10_100);
        let granted = (0..10).filter(|_| b.try_withdraw(t)).count();
        assert_eq!(granted, 3);
        // Same second, later: nothing more.
        assert!(!b.try_withdraw(Instant::from_millis(10_999)));
        // The clock steps back a second: still the later second, no fresh floor.
        assert!(!b.try_withdraw(Instant::from_millis(9_500)));
        // The next second refills.
        let granted = (0..10)
            .filter(|_| b.try_withdraw(Instant::from_secs(11)))
            .count();
        assert_eq!(granted, 3);
        // The far future, the end of time: no overflow.
        assert!(b.try_withdraw(Instant::MAX));
    }

    #[test]
    fn extremes() {
        let b = Budget::new(1000, u16::MAX, u32::MAX).unwrap();
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(b.tokens(), 100);
        let granted = (0..70_000)
            .filter(|_| b.try_withdraw(Instant::ZERO))
            .count();
        assert_eq!(granted, u16::MAX as usize + 100);
        let none = Budget::new(0, 0, u32::MAX).unwrap();
        none.deposit();
        assert_eq!(none.tokens(), 0);
    }
}
