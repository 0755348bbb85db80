//! [`ConstRateLimiter`]: the shared limiter with its rate fixed at compile time, so the value
//! is only the state word and the clock.

use core::fmt;
use core::time::Duration;

use super::config::Config;
use super::error::{Denied, RateLimited};
use super::shared::admit;
use super::state::Gcra;
use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::Clock;

/// A lock-free GCRA limiter whose rate is part of its type: one token every `PERIOD_NS`
/// nanoseconds, up to `BURST` saved. Its size is the 8-byte state word plus the clock (16 bytes
/// with a `&MockClock`, 8 with a zero-sized clock such as embassy's) — for tables of many
/// limiters or tight memory. Same GCRA, same exact retry instants, as
/// [`RateLimiter`](super::RateLimiter), which keeps its rate in the value and can wait.
///
/// Invalid parameters (a zero period or burst, a burst × period past `u64` nanoseconds) are a
/// compile error where the limiter is built, not a run-time one.
///
/// # From a rate
///
/// `PERIOD_NS` is the period itself, in whole nanoseconds, so the rate is exactly
/// `10⁹ / PERIOD_NS` per second. Do not derive it as `1_000_000_000 / rate`: that truncates,
/// and a truncated period admits *more* than the rate (600 M/s would become 1 ns, 1 000 M/s).
/// Evaluate [`Config::gcra`] in a constant instead: it rounds the period up and refuses a rate
/// that rounding would slow by more than 0.1 % (see [`Config`]), here at compile time.
///
/// ```
/// use bulwark::rate_limiter::{Config, ConstRateLimiter};
/// use bulwark::MockClock;
/// const THREE_PER_SECOND: u64 = match Config::per_second(3).gcra() {
///     Ok(g) => g.emission_interval_nanos(),
///     Err(_) => panic!("a rate whose period is not whole nanoseconds"),
/// };
/// assert_eq!(THREE_PER_SECOND, 333_333_334);
/// let clock = MockClock::new();
/// let _l: ConstRateLimiter<_, THREE_PER_SECOND, 3> = ConstRateLimiter::new(&clock);
/// ```
///
/// ```compile_fail
/// use bulwark::rate_limiter::Config;
/// // 1.67 ns: rounded up to 2 ns it would be 17 % slow, so this constant does not compile.
/// const SIX_HUNDRED_MILLION_PER_SECOND: u64 = match Config::per_second(600_000_000).gcra() {
///     Ok(g) => g.emission_interval_nanos(),
///     Err(_) => panic!("a rate whose period is not whole nanoseconds"),
/// };
/// let _ = SIX_HUNDRED_MILLION_PER_SECOND;
/// ```
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::ConstRateLimiter;
/// use bulwark::{Instant, MockClock};
///
/// let clock = MockClock::new();
/// // 1 per 100 ms, bursts of 2.
/// let limiter: ConstRateLimiter<_, 100_000_000, 2> = ConstRateLimiter::new(&clock);
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_ok());
/// assert_eq!(limiter.try_acquire().unwrap_err().retry_at, Instant::from_millis(100));
/// assert_eq!(core::mem::size_of_val(&limiter), 16);
/// ```
///
/// ```compile_fail
/// # use bulwark::{MockClock, rate_limiter::ConstRateLimiter};
/// let clock = MockClock::new();
/// let _zero_burst: ConstRateLimiter<_, 1_000, 0> = ConstRateLimiter::new(&clock);
/// ```
pub struct ConstRateLimiter<C, const PERIOD_NS: u64, const BURST: u32> {
    tat: AtomicU64,
    clock: C,
}

impl<C: Clock, const PERIOD_NS: u64, const BURST: u32> ConstRateLimiter<C, PERIOD_NS, BURST> {
    const GCRA: Gcra = match Config::with_period(Duration::from_nanos(PERIOD_NS))
        .burst(BURST)
        .gcra()
    {
        Ok(g) => g,
        Err(_) => panic!(
            "ConstRateLimiter: the period and burst must be non-zero and their product fit u64 ns"
        ),
    };

    const_fn! {
        /// A full limiter (a burst available at once) on `clock`. `const`, so it can be a
        /// `static`.
        ///
        /// ```
        /// use bulwark::{MockClock, rate_limiter::ConstRateLimiter};
        /// static CLOCK: MockClock = MockClock::new();
        /// static UPLINK: ConstRateLimiter<&MockClock, 1_000_000_000, 5> = ConstRateLimiter::new(&CLOCK);
        /// assert_eq!(UPLINK.available(), 5);
        /// ```
        pub fn new(clock: C) -> Self {
            let _checked_at_compile_time = Self::GCRA;
            ConstRateLimiter { tat: AtomicU64::new(0), clock }
        }
    }

    /// Takes one token now.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the exact instant a token is free.
    ///
    /// ```
    /// use bulwark::{MockClock, rate_limiter::ConstRateLimiter};
    /// let clock = MockClock::new();
    /// let l: ConstRateLimiter<_, 1_000, 1> = ConstRateLimiter::new(&clock);
    /// assert!(l.try_acquire().is_ok());
    /// assert!(l.try_acquire().is_err());
    /// ```
    #[inline]
    #[doc(alias = "check")]
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        self.try_acquire_n(1).map_err(Denied::into_rate_limited)
    }

    /// Takes `n` tokens now, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied::RateLimited`] with the instant they are free, or
    /// [`Denied::InsufficientCapacity`] when `n` is above the burst (it never passes; nothing
    /// is taken).
    ///
    /// ```
    /// use bulwark::{MockClock, rate_limiter::{ConstRateLimiter, Denied}};
    /// let clock = MockClock::new();
    /// let l: ConstRateLimiter<_, 1_000, 3> = ConstRateLimiter::new(&clock);
    /// assert!(l.try_acquire_n(3).is_ok());
    /// assert!(matches!(l.try_acquire_n(4), Err(Denied::InsufficientCapacity(_))));
    /// ```
    #[inline]
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Denied> {
        admit(&self.tat, &Self::GCRA, n, self.clock.now())
    }

    /// Tokens free now.
    ///
    /// ```
    /// use bulwark::{MockClock, rate_limiter::ConstRateLimiter};
    /// let clock = MockClock::new();
    /// let l: ConstRateLimiter<_, 1_000, 4> = ConstRateLimiter::new(&clock);
    /// l.try_acquire_n(3).unwrap();
    /// assert_eq!(l.available(), 1);
    /// ```
    pub fn available(&self) -> u32 {
        // Acquire: pairs with the admissions' AcqRel CAS; a snapshot for metrics.
        Self::GCRA.available(
            self.tat.load(Ordering::Acquire),
            self.clock.now().as_nanos(),
        )
    }

    /// The clock.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, rate_limiter::ConstRateLimiter};
    /// let clock = MockClock::new();
    /// let l: ConstRateLimiter<_, 1_000, 1> = ConstRateLimiter::new(&clock);
    /// assert_eq!(l.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<C, const PERIOD_NS: u64, const BURST: u32> fmt::Debug
    for ConstRateLimiter<C, PERIOD_NS, BURST>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConstRateLimiter")
            .field("period_ns", &PERIOD_NS)
            .field("burst", &BURST)
            // Relaxed: a debug snapshot only.
            .field("tat", &self.tat.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::MockClock;
    use crate::rate_limiter::RateLimiter;

    #[test]
    fn agrees_with_the_configurable_limiter_step_by_step() {
        let a = MockClock::new();
        let b = MockClock::new();
        let fixed: ConstRateLimiter<_, 250_000_000, 3> = ConstRateLimiter::new(&a);
        let cfg = Config::with_period(Duration::from_millis(250)).burst(3);
        let dynamic = RateLimiter::new(cfg, &b).unwrap();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let step = Duration::from_millis(x % 300);
            a.advance(step);
            b.advance(step);
            let n = (x >> 20) as u32 % 5;
            assert_eq!(fixed.try_acquire_n(n), dynamic.try_acquire_n(n));
            assert_eq!(fixed.available(), dynamic.available());
        }
    }

    #[test]
    fn footprint_is_the_state_word_and_the_clock() {
        use crate::time::Instant;
        struct Zst;
        impl Clock for Zst {
            fn now(&self) -> Instant {
                Instant::ZERO
            }
        }
        assert_eq!(core::mem::size_of::<ConstRateLimiter<Zst, 1_000, 1>>(), 8);
        assert_eq!(
            core::mem::size_of::<ConstRateLimiter<&MockClock, 1_000, 1>>(),
            16
        );
    }
}

admit_one_token!(
    /// The limiter as a gate: each admitted call spends one token (recorded outcomes change
    /// nothing: the token is spent either way); its rejection's [`RetryHint`](crate::admission::RetryHint)
    /// is the instant the next token is free.
    ///
    /// ```
    /// use bulwark::admission::{Permit, RetryHint};
    /// use bulwark::{Instant, MockClock, rate_limiter::{Config, ConstRateLimiter}};
    /// let clock = MockClock::new();
    /// let l: ConstRateLimiter<_, 1_000_000_000, 1> = ConstRateLimiter::new(&clock);
    /// Permit::try_new(&l).unwrap().success();
    /// assert_eq!(Permit::try_new(&l).map(drop).unwrap_err().retry_at(), Some(Instant::from_secs(1)));
    /// ```
    [C: Clock, const PERIOD_NS: u64, const BURST: u32] ConstRateLimiter<C, PERIOD_NS, BURST>
);
