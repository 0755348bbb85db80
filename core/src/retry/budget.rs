//! The retry budget: a shared, lock-free allowance of retries that stops retry storms.

use core::fmt;

use super::error::ConfigError;
use core::time::Duration;

use crate::sync::{AtomicU64, Ordering, atomic_array, const_fn};
use crate::time::{Instant, duration_to_nanos};

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

    /// Whether deposits depend on when they are made ([`ExpiringBudget`]): then a call that
    /// succeeds reads the clock and deposits through [`deposit_at`](RetryBudget::deposit_at);
    /// otherwise (the default) it calls [`deposit`](RetryBudget::deposit) and reads no clock.
    ///
    /// ```
    /// use bulwark::retry::{Budget, ExpiringBudget, RetryBudget};
    /// use core::time::Duration;
    /// assert!(!Budget::new(20, 1, 10).unwrap().timed());
    /// assert!(ExpiringBudget::new(Duration::from_secs(10), 20, 1).unwrap().timed());
    /// ```
    #[inline]
    fn timed(&self) -> bool {
        false
    }

    /// A call succeeded at `now`: [`deposit`](RetryBudget::deposit) unless the budget is
    /// [`timed`](RetryBudget::timed).
    ///
    /// ```
    /// use bulwark::{Instant, retry::{Budget, RetryBudget}};
    /// let b = Budget::new(100, 0, 10).unwrap();
    /// b.deposit_at(Instant::from_secs(3));
    /// assert_eq!(b.tokens(), 1);
    /// ```
    #[inline]
    fn deposit_at(&self, now: Instant) {
        let _ = now;
        self.deposit()
    }
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
    #[inline]
    fn timed(&self) -> bool {
        (**self).timed()
    }
    fn deposit_at(&self, now: Instant) {
        (**self).deposit_at(now)
    }
}

/// Thousandths of a token: one retry costs [`COST`].
const COST: u64 = 1_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Low bits of the floor word: floor retries granted in the current second.
const USED_BITS: u32 = 16;
const USED_MASK: u64 = (1 << USED_BITS) - 1;

/// The floor of a budget: `min_per_sec` retries granted in every clock second whatever was
/// earned, counted in one word (`second << 16 | granted in it`) changed only by a CAS.
struct Floor {
    min_per_sec: u64,
    word: AtomicU64,
}

impl Floor {
    const_fn! {
        fn new(min_per_sec: u16) -> Floor {
            Floor { min_per_sec: min_per_sec as u64, word: AtomicU64::new(0) }
        }
    }

    /// Takes one retry from the floor of `now`'s second, if any is left.
    fn take(&self, now: Instant) -> bool {
        if self.min_per_sec == 0 {
            return false;
        }
        let sec = now.as_nanos() / NANOS_PER_SEC;
        // Acquire: pairs with the AcqRel CAS of the previous floor grant.
        let mut cur = self.word.load(Ordering::Acquire);
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
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// A retry budget (compare tower's `TpsBudget`, gRPC's retry throttling): successes earn
/// tokens, each retry spends one, and a floor of `min_per_sec` retries per second is always
/// allowed so a quiet client can still retry. Shared (`&self`), lock-free, allocation-free,
/// usable from a `static`.
///
/// * Each success deposits `retry_percent` % of a token (20 → one retry per five
///   successes). Earned tokens are capped at `max_tokens`: a long healthy stretch cannot fund
///   an unbounded burst later. (tower expires deposits after a TTL instead, as
///   [`ExpiringBudget`] does; the cap bounds the burst the same way without a clock on the
///   deposit path.)
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
    /// Earned thousandths of a token, `0 ..= max_balance`.
    balance: AtomicU64,
    floor: Floor,
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
                balance: AtomicU64::new(0),
                floor: Floor::new(min_per_sec),
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
        if self.floor.take(now) || self.take_token() {
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
            .field("min_per_sec", &self.floor.min_per_sec)
            .field("denied", &self.denied())
            .finish_non_exhaustive()
    }
}

/// The slots of an [`ExpiringBudget`]: a deposit lives in the slot of its time and expires
/// with it, `SLOTS` slot widths later.
const SLOTS: usize = 10;
/// Low bits of a slot word: thousandths of a token deposited in it (saturating).
const AMOUNT_BITS: u32 = 24;
const AMOUNT_MASK: u64 = (1 << AMOUNT_BITS) - 1;
/// The shortest and longest time to live (tower's `TpsBudget` bounds).
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60);

/// A retry budget whose deposits expire after a time to live (tower's `TpsBudget`,
/// Finagle's `RetryBudget` with its 10 s TTL): each success earns `retry_percent` % of a
/// retry, usable for `ttl`; each retry spends one; `min_per_sec` retries a second are allowed
/// regardless (the same floor as [`Budget`]). Where [`Budget`] caps the tokens saved, this
/// forgets old ones, so the retries allowed follow the recent success rate. Shared (`&self`),
/// lock-free, `no_std`, allocation-free.
///
/// Time is cut into ten slots of `ttl / 10`: a deposit goes to its slot and expires
/// when that slot is ten slots old (between 0.9 × `ttl` and `ttl` after it was made); a
/// retry spends the oldest live deposits first. A slot holds up to 16 777 tokens (more
/// deposits in one slot saturate).
///
/// # Memory ordering
///
/// Each slot is one word (`epoch << 24 | thousandths`) changed only by CAS (`AcqRel` on
/// success, so a grant is ordered after the deposits that funded it; `Acquire` on failure to
/// reload). A retry takes what it needs slot by slot; if the live slots together hold less
/// than a token it gives back what it took (to the same slot, if that slot has not expired
/// meanwhile). So retries granted never exceed what was deposited and still live, under any
/// interleaving; two retries racing for the last token may both be denied (each holding
/// half for a moment). The latest epoch seen, for [`deposit`](RetryBudget::deposit) without
/// an instant, and the denial counter are `Relaxed`: a hint and a statistic.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, retry::{ExpiringBudget, RetryBudget}};
/// use core::time::Duration;
///
/// // 50 % of successes, a 10 s time to live, no floor.
/// let b = ExpiringBudget::new(Duration::from_secs(10), 50, 0).unwrap();
/// b.deposit_at(Instant::from_secs(1));
/// b.deposit_at(Instant::from_secs(1)); // two successes: one retry, until 11 s
/// assert_eq!(b.tokens(Instant::from_secs(10)), 1);
/// assert_eq!(b.tokens(Instant::from_secs(11)), 0); // expired
/// assert!(!b.try_withdraw(Instant::from_secs(11)));
/// ```
pub struct ExpiringBudget {
    /// Nanoseconds per slot: `ttl / SLOTS`.
    slot_nanos: u64,
    /// Thousandths of a token per success.
    deposit: u64,
    floor: Floor,
    /// `epoch << 24 | thousandths`, slot `epoch % SLOTS`.
    slots: [AtomicU64; SLOTS],
    /// The latest epoch a deposit or withdrawal was made at.
    latest: AtomicU64,
    denied: AtomicU64,
}

impl ExpiringBudget {
    const_fn! {
        /// A budget where each success earns `retry_percent` % of a retry (0 ..= 1000) for
        /// `ttl` (1 s ..= 60 s, tower's bounds), and `min_per_sec` retries a second are
        /// allowed regardless.
        ///
        /// # Errors
        ///
        /// [`ConfigError::PercentOutOfRange`] for `retry_percent` above 1000,
        /// [`ConfigError::TtlOutOfRange`] for a `ttl` outside 1 s ..= 60 s.
        ///
        /// ```
        /// use bulwark::retry::{ConfigError, ExpiringBudget};
        /// use core::time::Duration;
        /// assert!(ExpiringBudget::new(Duration::from_secs(10), 20, 10).is_ok());
        /// let short = ExpiringBudget::new(Duration::from_millis(10), 20, 10);
        /// assert_eq!(short.unwrap_err(), ConfigError::TtlOutOfRange);
        /// ```
        pub fn new(ttl: Duration, retry_percent: u16, min_per_sec: u16) -> Result<ExpiringBudget, ConfigError> {
            if retry_percent > 1000 {
                return Err(ConfigError::PercentOutOfRange);
            }
            let nanos = duration_to_nanos(ttl);
            if nanos < duration_to_nanos(MIN_TTL) || nanos > duration_to_nanos(MAX_TTL) {
                return Err(ConfigError::TtlOutOfRange);
            }
            Ok(ExpiringBudget {
                slot_nanos: nanos / SLOTS as u64,
                deposit: retry_percent as u64 * COST / 100,
                floor: Floor::new(min_per_sec),
                slots: atomic_array!(AtomicU64, 0, SLOTS),
                latest: AtomicU64::new(0),
                denied: AtomicU64::new(0),
            })
        }
    }

    /// Earned retries live at `now` (whole tokens; the floor not included).
    ///
    /// ```
    /// use bulwark::{Instant, retry::{ExpiringBudget, RetryBudget}};
    /// use core::time::Duration;
    /// let b = ExpiringBudget::new(Duration::from_secs(1), 100, 0).unwrap();
    /// b.deposit_at(Instant::ZERO);
    /// assert_eq!(b.tokens(Instant::from_millis(999)), 1);
    /// assert_eq!(b.tokens(Instant::from_secs(1)), 0);
    /// ```
    pub fn tokens(&self, now: Instant) -> u64 {
        let epoch = self.epoch(now);
        // Acquire: pairs with the AcqRel CASes of deposits and withdrawals.
        let live = self
            .slots
            .iter()
            .map(|s| live(s.load(Ordering::Acquire), epoch));
        live.sum::<u64>() / COST
    }

    /// Retries denied so far.
    ///
    /// ```
    /// use bulwark::{Instant, retry::{ExpiringBudget, RetryBudget}};
    /// use core::time::Duration;
    /// let b = ExpiringBudget::new(Duration::from_secs(10), 20, 0).unwrap();
    /// assert!(!b.try_withdraw(Instant::ZERO));
    /// assert_eq!(b.denied(), 1);
    /// ```
    pub fn denied(&self) -> u64 {
        // Relaxed: a statistic; it orders nothing.
        self.denied.load(Ordering::Relaxed)
    }

    /// The slot epoch of `now` (kept to the 40 bits a slot word holds).
    fn epoch(&self, now: Instant) -> u64 {
        (now.as_nanos() / self.slot_nanos) & (u64::MAX >> AMOUNT_BITS)
    }

    /// Notes `epoch` as the latest seen, for deposits made without an instant.
    fn see(&self, epoch: u64) {
        // Relaxed: a hint for `deposit`; it publishes nothing.
        self.latest.fetch_max(epoch, Ordering::Relaxed);
    }

    /// Adds `amount` thousandths to the slot of `epoch` (a stale slot is reset first).
    fn add(&self, epoch: u64, amount: u64) {
        let slot = &self.slots[(epoch % SLOTS as u64) as usize];
        // Acquire: pairs with the AcqRel CASes of other deposits and withdrawals.
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            let held = if cur >> AMOUNT_BITS == epoch {
                cur & AMOUNT_MASK
            } else {
                0
            };
            if cur >> AMOUNT_BITS > epoch && held == 0 {
                return; // the slot moved on to a later epoch: this deposit has expired
            }
            let next = epoch << AMOUNT_BITS | held.saturating_add(amount).min(AMOUNT_MASK);
            // AcqRel: publishes the deposit to the withdrawal that spends it (Release) and
            // orders it after the ones it builds on (Acquire); Acquire on failure to reload.
            match slot.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes up to `want` thousandths from the slot of index `i` if it is live at `epoch`;
    /// returns the slot's epoch and what was taken.
    fn take(&self, i: usize, epoch: u64, want: u64) -> (u64, u64) {
        // Acquire: pairs with the AcqRel CASes of deposits and other withdrawals.
        let mut cur = self.slots[i].load(Ordering::Acquire);
        loop {
            let held = live(cur, epoch);
            if held == 0 {
                return (0, 0);
            }
            let took = held.min(want);
            // AcqRel: ordered after the deposits that funded it (Acquire) and before later
            // withdrawals (Release); Acquire on failure to reload.
            match self.slots[i].compare_exchange_weak(
                cur,
                cur - took,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (cur >> AMOUNT_BITS, took),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Spends one token from the live slots, oldest first; all or nothing.
    fn take_token(&self, epoch: u64) -> bool {
        let mut took = [(0u64, 0u64); SLOTS];
        let mut need = COST;
        for k in 1..=SLOTS as u64 {
            let i = ((epoch + k) % SLOTS as u64) as usize; // oldest first, `epoch` last
            took[i] = self.take(i, epoch, need);
            need -= took[i].1;
            if need == 0 {
                return true;
            }
        }
        // Not enough: give back what was taken, to the epochs it came from.
        for (e, amount) in took {
            if amount > 0 {
                self.add(e, amount);
            }
        }
        false
    }
}

/// The thousandths a slot word holds that are live at `epoch` (deposited less than `SLOTS`
/// epochs before it; a slot from the future, after the clock stepped back, counts too).
fn live(word: u64, epoch: u64) -> u64 {
    let e = word >> AMOUNT_BITS;
    if e + SLOTS as u64 > epoch {
        word & AMOUNT_MASK
    } else {
        0
    }
}

impl RetryBudget for ExpiringBudget {
    /// A deposit without an instant (hedging) goes to the latest slot this budget saw.
    fn deposit(&self) {
        // Relaxed: a hint (see `see`).
        self.deposit_at_epoch(self.latest.load(Ordering::Relaxed));
    }

    fn try_withdraw(&self, now: Instant) -> bool {
        let epoch = self.epoch(now);
        self.see(epoch);
        if self.floor.take(now) || self.take_token(epoch) {
            return true;
        }
        // Relaxed: a statistic; it orders nothing.
        self.denied.fetch_add(1, Ordering::Relaxed);
        false
    }

    #[inline]
    fn timed(&self) -> bool {
        true
    }

    fn deposit_at(&self, now: Instant) {
        let epoch = self.epoch(now);
        self.see(epoch);
        self.deposit_at_epoch(epoch);
    }
}

impl ExpiringBudget {
    fn deposit_at_epoch(&self, epoch: u64) {
        if self.deposit != 0 {
            self.add(epoch, self.deposit);
        }
    }
}

impl fmt::Debug for ExpiringBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringBudget")
            .field("slot", &Duration::from_nanos(self.slot_nanos))
            .field("min_per_sec", &self.floor.min_per_sec)
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

    /// tower `TpsBudget::new(ttl = 10 s, min_per_sec = 0, retry_percent = 0.5)`: "deposits
    /// ... expire after ttl", spent oldest first. Literal instants: 4 successes at 1 s and 2
    /// at 6 s fund 3 retries; at 10.9 s all are live; at 11 s the first 2 tokens have expired.
    #[test]
    fn deposits_expire_after_the_ttl() {
        let b = ExpiringBudget::new(Duration::from_secs(10), 50, 0).unwrap();
        let ms = Instant::from_millis;
        for _ in 0..4 {
            b.deposit_at(ms(1_000));
        }
        b.deposit_at(ms(6_000));
        b.deposit_at(ms(6_500));
        assert_eq!(b.tokens(ms(10_900)), 3);
        assert_eq!(b.tokens(ms(11_000)), 1);
        // Oldest first: a retry at 10.9 s spends a token of the 1 s slot.
        assert!(b.try_withdraw(ms(10_900)));
        assert_eq!(b.tokens(ms(10_900)), 2);
        assert_eq!(b.tokens(ms(11_000)), 1); // what was left of 1 s expires; 6 s's stays
        assert!(b.try_withdraw(ms(11_000)));
        assert!(!b.try_withdraw(ms(11_000)));
        assert_eq!(b.denied(), 1);
        // A deposit without an instant goes to the latest slot seen (11 s).
        b.deposit();
        b.deposit();
        assert_eq!(b.tokens(ms(20_999)), 1);
        assert_eq!(b.tokens(ms(21_000)), 0);
    }

    /// A token split across slots is spent whole or not at all; a failed gather gives back.
    #[test]
    fn a_token_split_across_slots() {
        let b = ExpiringBudget::new(Duration::from_secs(1), 50, 0).unwrap();
        let ms = Instant::from_millis;
        b.deposit_at(ms(0)); // half a token, slot 0
        assert!(!b.try_withdraw(ms(50)));
        assert_eq!(b.tokens(ms(50)), 0);
        b.deposit_at(ms(500)); // the other half, slot 5
        assert!(b.try_withdraw(ms(600)));
        assert!(!b.try_withdraw(ms(600)));
        // Refunds keep what was there: half a token again, still there after the failure.
        b.deposit_at(ms(700));
        assert!(!b.try_withdraw(ms(700)));
        b.deposit_at(ms(800));
        assert!(b.try_withdraw(ms(800)));
    }

    #[test]
    fn expiring_floor_bounds_and_extremes() {
        let b = ExpiringBudget::new(Duration::from_secs(60), 1000, 2).unwrap();
        assert!(b.try_withdraw(Instant::ZERO) && b.try_withdraw(Instant::ZERO));
        assert!(!b.try_withdraw(Instant::ZERO));
        // A slot saturates at 16 777 tokens.
        for _ in 0..2_000 {
            b.deposit_at(Instant::from_secs(1));
        }
        assert_eq!(b.tokens(Instant::from_secs(1)), 16_777);
        assert!(b.try_withdraw(Instant::MAX));
        b.deposit_at(Instant::MAX);
        assert_eq!(b.tokens(Instant::MAX), 10);
        assert_eq!(
            ExpiringBudget::new(Duration::from_secs(61), 1, 1).unwrap_err(),
            ConfigError::TtlOutOfRange
        );
        assert_eq!(
            ExpiringBudget::new(Duration::from_secs(10), 1001, 1).unwrap_err(),
            ConfigError::PercentOutOfRange
        );
    }
}
