//! The shared, lock-free form: [`RateLimiter`].

use core::fmt;

use super::config::Config;
use super::error::{ConfigError, Denied, RateLimited};
use super::state::{Gcra, Reservation, gcra, rescale, reserve};
use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::{Clock, Instant};

/// A rate limiter shared by many tasks, threads or interrupt handlers: `&self`, `Sync`,
/// lock-free, no allocation, no timer and no background task (tokens refill lazily, by
/// arithmetic on the next call). (Interrupt handlers on targets without 64-bit atomics: see
/// [Interrupt handlers](crate#interrupt-handlers).)
///
/// # Memory ordering
///
/// The whole state is one `AtomicU64`: the GCRA theoretical arrival time in nanoseconds on
/// the limiter's clock (its origin is the clock's origin; `0` means "full"). Every admission
/// is a `compare_exchange_weak` loop around the pure [`gcra`] function, the same one the
/// [`Machine`](super::Machine) uses, so every decision is taken on the value it replaces: no
/// two callers can spend the same token. A rejection writes nothing. The word publishes no
/// other data, so `AcqRel`/`Acquire` is only there to order admissions with the caller's own
/// surrounding code; the exactness comes from the single modification order of the word.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimiter};
/// use bulwark::{Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let limiter = RateLimiter::new(Config::per_second(2), &clock).unwrap();
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_ok());
/// let e = limiter.try_acquire().unwrap_err();
/// assert_eq!(e.retry_at, Instant::from_millis(500));
/// assert_eq!(e.wait_time_from(Instant::ZERO), Duration::from_millis(500));
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.try_acquire().is_ok());
/// ```
pub struct RateLimiter<C> {
    pub(super) cfg: Config,
    gcra: Gcra,
    pub(super) clock: C,
    /// The theoretical arrival time, ns.
    tat: AtomicU64,
    /// Salt for the jitter of waiting callers: one value per waiting call.
    pub(super) salt: AtomicU64,
}

impl<C: Clock> RateLimiter<C> {
    const_fn! {
        /// A full limiter reading time from `clock`.
        ///
        /// # Errors
        ///
        /// [`ConfigError`] for a configuration that cannot run.
        ///
        /// ```
        /// use bulwark::rate_limiter::{Config, ConfigError, RateLimiter};
        /// use bulwark::MockClock;
        /// static CLOCK: MockClock = MockClock::new();
        /// static LIMITER: Result<RateLimiter<&MockClock>, ConfigError> =
        ///     RateLimiter::new(Config::per_second(100), &CLOCK);
        /// assert!(LIMITER.as_ref().unwrap().try_acquire().is_ok());
        /// ```
        pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
            let gcra = match cfg.gcra() {
                Ok(gcra) => gcra,
                Err(e) => {
                    // A `const fn` cannot run `C`'s destructor; clocks are references or
                    // handles, so not dropping one on a configuration error is harmless.
                    core::mem::forget(clock);
                    return Err(e);
                }
            };
            Ok(RateLimiter {
                cfg,
                gcra,
                clock,
                tat: AtomicU64::new(0),
                salt: AtomicU64::new(0),
            })
        }
    }

    /// Takes one token now.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the exact instant a token is free.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_minute(1), &clock).unwrap();
    /// l.try_acquire().unwrap();
    /// assert_eq!(l.try_acquire().unwrap_err().retry_at, Instant::from_secs(60));
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        self.try_acquire_at(1, self.clock.now())
            .map_err(|d| match d {
                Denied::RateLimited(r) => r,
                // Unreachable: the burst is at least 1. Answer "never" rather than panic.
                Denied::InsufficientCapacity(_) => RateLimited::NEVER,
            })
    }

    /// Takes `n` tokens now, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied`]: limited until an instant, or more than the burst asked for (nothing taken).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Denied, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(10), &clock).unwrap();
    /// assert!(l.try_acquire_n(10).is_ok());
    /// assert_eq!(l.try_acquire_n(2).unwrap_err().retry_at(), Some(Instant::from_millis(200)));
    /// assert!(matches!(l.try_acquire_n(11), Err(Denied::InsufficientCapacity(_))));
    /// assert!(l.try_acquire_n(0).is_ok());
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Denied> {
        self.try_acquire_at(n, self.clock.now())
    }

    /// Takes `n` tokens now for the instant they are due, if that is no later than `until`:
    /// callers that reserve one after another are each given their own instant, in the order
    /// their reservations landed, instead of all waking when the next token is due and racing
    /// for it (see [`Waiting::Reserve`](super::Waiting::Reserve)).
    ///
    /// # Errors
    ///
    /// [`Denied`]: due after `until` (nothing taken), or `n` above the burst.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(10).burst(1), &clock).unwrap();
    /// let until = Instant::from_secs(1);
    /// let due = [(); 3].map(|()| l.try_reserve_n(1, until).unwrap().due());
    /// assert_eq!(due, [0, 100, 200].map(Instant::from_millis));
    /// ```
    pub fn try_reserve_n(&self, n: u32, until: Instant) -> Result<Reservation, Denied> {
        self.reserve_at(n, self.clock.now(), until)
    }

    /// [`try_reserve_n`](RateLimiter::try_reserve_n) as of `now` (the CAS loop around
    /// [`reserve`]).
    pub(super) fn reserve_at(
        &self,
        n: u32,
        now: Instant,
        until: Instant,
    ) -> Result<Reservation, Denied> {
        let max_wait = until.as_nanos().saturating_sub(now.as_nanos());
        let now = now.as_nanos();
        update(&self.tat, |cur| {
            reserve(cur, now, n, &self.gcra, max_wait).map(|r| (r.tat(), r))
        })
    }

    /// Hands back reservation `r`, given up before it was used (see
    /// [`Machine::cancel`](super::Machine::cancel)): `true` if its tokens are free again,
    /// `false` if other callers took tokens since (they stay spent).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(1).burst(1), &clock).unwrap();
    /// let until = Instant::from_secs(9);
    /// l.try_acquire().unwrap();
    /// let first = l.try_reserve_n(1, until).unwrap();
    /// let second = l.try_reserve_n(1, until).unwrap();
    /// assert!(!l.cancel(first)); // the second was given an instant that counts it
    /// assert!(l.cancel(second));
    /// assert_eq!(l.try_reserve_n(1, until).unwrap().due(), Instant::from_secs(2));
    /// ```
    pub fn cancel(&self, r: Reservation) -> bool {
        // Acquire/AcqRel as in `update`: a hand-back is one more write in the word's single
        // modification order, made only on the exact value the reservation left behind.
        let cur = self.tat.load(Ordering::Acquire);
        match r.undo(cur) {
            Some(prev) => self
                .tat
                .compare_exchange(cur, prev, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            None => false,
        }
    }

    /// Takes `n` tokens as of `now` (the CAS loop around [`gcra`]).
    pub(super) fn try_acquire_at(&self, n: u32, now: Instant) -> Result<(), Denied> {
        admit(&self.tat, &self.gcra, n, now)
    }

    /// Tokens free now.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// l.try_acquire_n(2).unwrap();
    /// assert_eq!(l.available(), 3);
    /// ```
    pub fn available(&self) -> u32 {
        // Acquire: pairs with the admissions' AcqRel CAS; a snapshot for metrics.
        self.gcra.available(
            self.tat.load(Ordering::Acquire),
            self.clock.now().as_nanos(),
        )
    }

    /// The theoretical arrival time: when the bucket is full again.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// l.try_acquire().unwrap();
    /// assert_eq!(l.tat(), Instant::from_millis(200));
    /// ```
    pub fn tat(&self) -> Instant {
        // Acquire: pairs with the admissions' AcqRel CAS.
        Instant::from_nanos(self.tat.load(Ordering::Acquire))
    }

    /// The configuration in force.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(l.config().burst_size(), 5);
    /// ```
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The clock.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Clock, Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(l.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Changes rate, burst, max wait and jitter, keeping the tokens in use (see
    /// [`rescale`](super::rescale)).
    ///
    /// Takes `&mut self`: the GCRA parameters and the state word must change together, and a
    /// `&self` version would need a lock (or a second word and a generation check) on every
    /// admission. Exclusive access costs nothing on the hot path; share the limiter behind your
    /// own lock (or rebuild it) if it must be reconfigured while in use.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]; the limiter is then unchanged.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let mut l = RateLimiter::new(Config::per_second(10), &clock).unwrap();
    /// l.try_acquire_n(6).unwrap();
    /// l.reconfigure(Config::per_second(5)).unwrap();
    /// assert_eq!(l.available(), 0); // 6 in use, capped at the new burst 5
    /// ```
    pub fn reconfigure(&mut self, cfg: Config) -> Result<(), ConfigError> {
        let new = cfg.gcra()?;
        let now = self.clock.now().as_nanos();
        // Relaxed: `&mut self` excludes every other access; no synchronization is needed.
        let tat = self.tat.load(Ordering::Relaxed);
        self.tat
            .store(rescale(tat, now, &self.gcra, &new), Ordering::Relaxed);
        self.gcra = new;
        self.cfg = cfg;
        Ok(())
    }
}

/// The shared admission: a CAS loop on the TAT word around the pure [`gcra`] step. Also used
/// by [`ConstRateLimiter`](super::ConstRateLimiter).
#[inline]
pub(super) fn admit(tat: &AtomicU64, g: &Gcra, n: u32, now: Instant) -> Result<(), Denied> {
    let now = now.as_nanos();
    update(tat, |cur| gcra(cur, now, n, g).map(|next| (next, ())))
}

/// The CAS loop on the TAT word: `step` decides on the value it replaces (the new word and
/// what to return), or refuses, writing nothing.
#[inline(always)]
fn update<T>(
    tat: &AtomicU64,
    mut step: impl FnMut(u64) -> Result<(u64, T), Denied>,
) -> Result<T, Denied> {
    // Acquire: pairs with the AcqRel CAS of the previous admission (the word carries no
    // other data; see the type's "Memory ordering").
    let mut cur = tat.load(Ordering::Acquire);
    loop {
        let (next, out) = step(cur)?;
        if next == cur {
            return Ok(out); // n = 0: nothing to write
        }
        // AcqRel on success: this admission is ordered after the one it replaces and
        // before the next one that reads it. Acquire on failure: we retry on the fresher
        // value another admission wrote.
        match tat.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(out),
            Err(actual) => cur = actual,
        }
    }
}

impl<C> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("cfg", &self.cfg)
            // Relaxed: a debug snapshot only.
            .field("tat", &self.tat.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::MockClock;
    use core::time::Duration;

    #[test]
    fn shared_form_matches_literal_instants() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(10));
        let l = RateLimiter::new(Config::per_second(4).burst(2), &clock).unwrap();
        assert!(l.try_acquire().is_ok());
        assert!(l.try_acquire().is_ok());
        assert_eq!(
            l.try_acquire().unwrap_err().retry_at,
            Instant::from_millis(10_250)
        );
        clock.advance(Duration::from_millis(249));
        assert!(l.try_acquire().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(l.try_acquire().is_ok());
        // Backwards: never more generous.
        clock.set(Instant::ZERO);
        assert_eq!(
            l.try_acquire().unwrap_err().retry_at,
            Instant::from_millis(10_500)
        );
    }

    #[test]
    fn threads_never_over_admit() {
        extern crate std;
        use core::sync::atomic::AtomicU32;
        let clock = MockClock::new();
        let l = RateLimiter::new(Config::per_second(1).burst(100), &clock).unwrap();
        let ok = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if l.try_acquire().is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), 100);
    }
}

/// The limiter as a gate: each admitted call spends one token (recorded outcomes change
/// nothing: the token is spent either way); its rejection's [`RetryHint`](crate::admission::RetryHint)
/// is the instant the next token is free.
///
/// ```
/// use bulwark::admission::{Permit, RetryHint};
/// use bulwark::{Instant, MockClock, rate_limiter::{Config, RateLimiter}};
/// let clock = MockClock::new();
/// let l = RateLimiter::new(Config::per_second(1).burst(1), &clock).unwrap();
/// Permit::try_new(&l).unwrap().success();
/// assert_eq!(Permit::try_new(&l).map(drop).unwrap_err().retry_at(), Some(Instant::from_secs(1)));
/// ```
impl<C: Clock> crate::admission::Admit for RateLimiter<C> {
    type Ticket = ();
    type Rejected = RateLimited;
    const RECORDS: bool = false;

    #[inline]
    fn try_admit(&self) -> Result<(), RateLimited> {
        self.try_acquire()
    }

    #[inline]
    fn record(&self, _: (), _: crate::admission::Outcome) {}

    #[inline]
    fn release(&self, _: ()) {}
}
