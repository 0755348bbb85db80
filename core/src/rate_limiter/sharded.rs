//! The limiter for many cores calling at once: [`ShardedRateLimiter`].

use core::fmt;
use core::time::Duration;

use super::config::Config;
use super::error::{ConfigError, Denied, InsufficientCapacity, Quota, RateLimited};
use super::shared::RateLimiter;
use super::state::Reservation;
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::time::{Clock, Instant};

/// Which shard of a [`ShardedRateLimiter`] a caller tries first. Callers that run at the same
/// time on different cores should be told different shards; a caller that stays on one core
/// should be told the same one every time. Any `usize` will do (it is taken modulo the number
/// of shards); the answer is only a hint, never a matter of correctness.
///
/// [`StackHint`] (the default) needs nothing from the platform. On `std`, a thread-local
/// index is exact: `bulwark_tokio::ThreadHint`. On a multi-core microcontroller, the core's
/// number:
///
/// ```
/// use bulwark::rate_limiter::{Config, ShardHint, ShardedRateLimiter};
/// use bulwark::MockClock;
///
/// /// The core this code runs on (an RP2040 would read its SIO `CPUID` register).
/// struct CoreNumber;
/// impl ShardHint for CoreNumber {
///     fn shard(&self) -> usize {
///         0 // this example runs on one core
///     }
/// }
///
/// let clock = MockClock::new();
/// let l: ShardedRateLimiter<_, 2, CoreNumber> =
///     ShardedRateLimiter::with_hint(Config::per_second(4), &clock, CoreNumber).unwrap();
/// // Shard 0 holds 2 of the 4 tokens; the other 2 are taken from shard 1.
/// for _ in 0..4 {
///     l.try_acquire().unwrap();
/// }
/// assert!(l.try_acquire().is_err());
/// ```
pub trait ShardHint {
    /// The caller's shard (any `usize`; taken modulo the number of shards).
    fn shard(&self) -> usize;
}

/// The address of the caller's stack as the hint: threads have stacks of their own, so
/// threads tend to land on different shards, and one thread on the same one, with nothing
/// from the platform. It is a heuristic: two threads may share a shard (they are then as fast
/// as a [`RateLimiter`] is), and a thread whose calls come from very different stack depths
/// may move between shards. Where the platform can say which thread or core is calling, a
/// [`ShardHint`] that says so is exact (`bulwark_tokio::ThreadHint` on `std`).
///
/// ```
/// use bulwark::rate_limiter::{ShardHint, StackHint};
/// // One thread, one call site: the same shard every time.
/// let here = || StackHint.shard();
/// assert_eq!(here(), here());
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct StackHint;

impl ShardHint for StackHint {
    #[inline(always)]
    fn shard(&self) -> usize {
        let frame = 0u8;
        // Which 2 MiB of the address space this frame is in: threads' stacks are at least that
        // far apart where `std` makes them (2 MiB each), so consecutive threads differ by one;
        // the shifted terms keep stacks 8 or 32 MiB apart (other runtimes' sizes) apart too.
        let region = core::ptr::addr_of!(frame) as usize >> 21;
        region ^ (region >> 2) ^ (region >> 4)
    }
}

/// The clock of a shard, never read: the shards of a [`ShardedRateLimiter`] are told the time
/// by the limiter, which reads its own clock once per call.
#[derive(Debug)]
pub(super) struct Told;

impl Clock for Told {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}

/// A rate limiter split into `N` shards, for many cores calling one limiter at once.
///
/// A [`RateLimiter`] is one word that every admission rewrites, so calls on two cores at once
/// pass that word's cache line back and forth: each call then waits for the line, whatever
/// the limiter's code does (about 100 ns per call on the two-core machine of the README's
/// table, against about 35 ns on one core). Here each shard is a GCRA bucket of its own, on
/// its own cache line, refilling at `rate / N` with a `1/N` share of the burst; a caller takes
/// its tokens from the shard its [`ShardHint`] names, so callers on different cores write
/// different lines. When that shard is empty the caller takes them from the next shard that
/// has them, so the limiter rejects a call only when no shard could serve it:
///
/// * it never admits more than the [`Config`] allows: at most `burst + rate × t` tokens in
///   any span `t` (each shard keeps its share, its period rounded up as a [`RateLimiter`]'s
///   is);
/// * a call is rejected only when every shard, as the call read it, was short of its tokens,
///   so under a demand above the rate it admits the rate. Around bursts it may admit a few
///   tokens fewer than a [`RateLimiter`] of the same [`Config`]: a shard refills in steps of
///   `N` periods, and a full shard's refill is lost while callers take from their own shards
///   first (under 0.2 % over ten minutes of bursty demand in the tests);
/// * a rejection's [`RateLimited::retry_at`] is exact: the earliest instant one shard has the
///   tokens. Callers that are served ahead of their turn by another shard leave that shard's
///   tokens to its own callers later, so tokens come in steps of up to `N` periods rather
///   than one by one when the limiter is saturated;
/// * a call takes all its tokens from one shard, so one call can take at most a shard's
///   burst, `⌈burst / N⌉` ([`Denied::InsufficientCapacity`] above that), and the burst must
///   be at least `N` ([`ConfigError::BurstBelowShards`]).
///
/// Use it where calls on several cores share one limiter and the limiter shows in profiles
/// (`N` at least the number of cores calling; a power of two); use [`RateLimiter`] otherwise:
/// it is 256 bytes, this is `N` times that, and it is exact to the token.
///
/// # Memory ordering
///
/// Each shard is a [`RateLimiter`] (see its "Memory ordering"): an admission is a CAS on one
/// shard's word, a rejection writes nothing. No admission reads or writes two shards' words
/// together, so the bound above is the sum of the shards' own bounds. The limiter's clock is
/// read once per call, before the first shard is tried.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
/// use bulwark::{Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// // 4 shards of 1 token a second, bursts of 2: the limiter is 4 a second, bursts of 8.
/// let l: ShardedRateLimiter<_, 4> = ShardedRateLimiter::new(Config::per_second(4).burst(8), &clock).unwrap();
/// for _ in 0..8 {
///     l.try_acquire().unwrap(); // from the caller's shard, then from the others
/// }
/// let e = l.try_acquire().unwrap_err();
/// assert_eq!(e.retry_at, Instant::from_secs(1)); // each shard has a token again at 1 s
/// clock.advance(Duration::from_secs(1));
/// for _ in 0..4 {
///     l.try_acquire().unwrap();
/// }
/// assert!(l.try_acquire().is_err());
/// ```
pub struct ShardedRateLimiter<C, const N: usize, H = StackHint> {
    shards: [RateLimiter<Told>; N],
    /// The whole limiter's burst and period, for [`RateLimited::quota`] and
    /// [`config`](ShardedRateLimiter::config).
    burst: AtomicU32,
    period: AtomicU64,
    /// Set while [`reconfigure`](ShardedRateLimiter::reconfigure) rewrites the shards.
    changing: AtomicBool,
    clock: C,
    hint: H,
}

impl<C: Clock, const N: usize> ShardedRateLimiter<C, N> {
    /// A full limiter of `N` shards reading time from `clock`, each caller starting at the
    /// shard [`StackHint`] names.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run, [`ConfigError::ZeroCapacity`] for
    /// `N = 0`, [`ConfigError::BurstBelowShards`] for a burst below `N`.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let too_few = ShardedRateLimiter::<_, 8>::new(Config::per_second(4), &clock);
    /// assert_eq!(too_few.err(), Some(ConfigError::BurstBelowShards { burst: 4, shards: 8 }));
    /// assert!(ShardedRateLimiter::<_, 4>::new(Config::per_second(4), &clock).is_ok());
    /// ```
    pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
        Self::with_hint(cfg, clock, StackHint)
    }
}

impl<C: Clock, const N: usize, H: ShardHint> ShardedRateLimiter<C, N, H> {
    /// A full limiter of `N` shards reading time from `clock`, each caller starting at the
    /// shard `hint` names.
    ///
    /// # Errors
    ///
    /// As [`new`](ShardedRateLimiter::new).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardHint, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// struct Second;
    /// impl ShardHint for Second {
    ///     fn shard(&self) -> usize { 1 }
    /// }
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2, _>::with_hint(Config::per_second(3), &clock, Second).unwrap();
    /// // Shard 0 holds 2 tokens, shard 1 one: the call takes shard 1's,
    /// l.try_acquire().unwrap();
    /// // so shard 0 still has both of its own for a call of two.
    /// assert!(l.try_acquire_n(2).is_ok());
    /// ```
    pub fn with_hint(cfg: Config, clock: C, hint: H) -> Result<Self, ConfigError> {
        let period = whole_period(&cfg)?;
        // Every shard checked before any is built.
        for i in 0..N {
            cfg.shard(N, i)?;
        }
        if N == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        let shards = core::array::from_fn(|i| match cfg.shard(N, i) {
            Ok((c, g)) => RateLimiter::checked(&c, &g, Told),
            // Checked above; an empty limiter rather than a panic were it ever reached.
            Err(_) => RateLimiter::checked(&cfg, &EMPTY, Told),
        });
        Ok(ShardedRateLimiter {
            shards,
            burst: AtomicU32::new(cfg.burst_size()),
            period: AtomicU64::new(period),
            changing: AtomicBool::new(false),
            clock,
            hint,
        })
    }

    /// Takes one token now: from the caller's shard, or from the next one that has it.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the exact instant a shard has a token again.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_minute(2), &clock).unwrap();
    /// l.try_acquire().unwrap();
    /// l.try_acquire().unwrap();
    /// // Each shard refills one token a minute.
    /// assert_eq!(l.try_acquire().unwrap_err().retry_at, Instant::from_secs(60));
    /// ```
    #[doc(alias = "check")]
    #[inline]
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        self.try_acquire_at(1, self.clock.now())
            .map_err(Denied::into_rate_limited)
    }

    /// Takes `n` tokens now, all from one shard, or none.
    ///
    /// # Errors
    ///
    /// [`Denied`]: limited until an instant, or more than a shard's burst asked for (nothing
    /// taken).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Denied, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(10), &clock).unwrap();
    /// assert!(l.try_acquire_n(5).is_ok()); // one shard's burst
    /// assert!(matches!(l.try_acquire_n(6), Err(Denied::InsufficientCapacity(_))));
    /// assert!(l.try_acquire_n(5).is_ok()); // the other shard's
    /// assert!(l.try_acquire_n(1).is_err());
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Denied> {
        self.try_acquire_at(n, self.clock.now())
    }

    /// Takes `n` tokens from one shard for the instant they are due, if that is no later than
    /// `until` (see [`RateLimiter::try_reserve_n`]); the caller's shard first, then the
    /// others.
    ///
    /// # Errors
    ///
    /// [`Denied`]: due after `until` on every shard (nothing taken), or `n` above a shard's
    /// burst.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(10).burst(2), &clock).unwrap();
    /// let until = Instant::from_secs(1);
    /// let due = [(); 4].map(|()| l.try_reserve_n(1, until).unwrap().due());
    /// // Two shards of a token every 200 ms: two at once, two at 200 ms.
    /// assert_eq!(due, [0, 0, 200, 200].map(Instant::from_millis));
    /// ```
    pub fn try_reserve_n(&self, n: u32, until: Instant) -> Result<ShardReservation, Denied> {
        self.reserve_at(n, self.clock.now(), until)
    }

    /// Hands back reservation `r` (see [`RateLimiter::cancel`]): `true` if its tokens are
    /// free again, `false` if other callers took tokens from its shard since.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(2), &clock).unwrap();
    /// let r = l.try_reserve_n(1, Instant::ZERO).unwrap();
    /// assert_eq!(l.available(), 1);
    /// assert!(l.cancel(r));
    /// assert_eq!(l.available(), 2);
    /// ```
    pub fn cancel(&self, r: ShardReservation) -> bool {
        match self.shards.get(r.shard) {
            Some(s) => s.cancel(r.reservation),
            None => false, // not one of this limiter's
        }
    }

    /// Tokens free now over all shards (one call can take at most one shard's).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 4>::new(Config::per_second(8), &clock).unwrap();
    /// l.try_acquire_n(2).unwrap();
    /// assert_eq!(l.available(), 6);
    /// ```
    pub fn available(&self) -> u32 {
        let now = self.clock.now();
        self.shards
            .iter()
            .fold(0u32, |sum, s| sum.saturating_add(s.available_at(now)))
    }

    /// The configuration in force, as given to [`new`](ShardedRateLimiter::new) or the last
    /// [`reconfigure`](ShardedRateLimiter::reconfigure) (read while a change is rewriting the
    /// shards, the rate may be the new one and the burst the old one).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let cfg = Config::per_second(8).burst(5).max_wait(Duration::from_millis(20));
    /// let l = ShardedRateLimiter::<_, 4>::new(cfg, &clock).unwrap();
    /// assert_eq!(l.config(), cfg);
    /// ```
    pub fn config(&self) -> Config {
        // Relaxed: a value for display and for waiters, not a synchronization point (each
        // shard's own settings are read under its seqlock).
        let burst = self.burst.load(Ordering::Relaxed);
        match self.shards.first() {
            Some(s) => s.config().unshard(N, burst),
            None => Config::per_second(0),
        }
    }

    /// The whole limiter's quota: its burst and the period of one token over all shards.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 4>::new(Config::per_second(8), &clock).unwrap();
    /// assert_eq!(l.quota().period, Duration::from_millis(125));
    /// assert_eq!(l.quota().burst, 8);
    /// ```
    pub fn quota(&self) -> Quota {
        // Relaxed: as in `config`.
        Quota {
            burst: self.burst.load(Ordering::Relaxed),
            period: Duration::from_nanos(self.period.load(Ordering::Relaxed)),
        }
    }

    /// The clock.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Clock, Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(2), &clock).unwrap();
    /// assert_eq!(l.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Changes the whole configuration at run time, through `&self`, lock-free: each shard
    /// as [`RateLimiter::reconfigure`] changes one (what was spent stays spent), one shard
    /// after another. A call during the change is judged, whole, by one shard's settings,
    /// old or new.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run (as
    /// [`new`](ShardedRateLimiter::new)), [`ConfigError::Busy`] while another change of this
    /// limiter is in progress. Either way nothing changed.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError, ShardedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(4), &clock).unwrap();
    /// l.reconfigure(Config::per_second(10)).unwrap();
    /// assert_eq!(l.available(), 10);
    /// assert_eq!(l.reconfigure(Config::per_second(1)),
    ///            Err(ConfigError::BurstBelowShards { burst: 1, shards: 2 }));
    /// assert_eq!(l.config(), Config::per_second(10));
    /// ```
    pub fn reconfigure(&self, cfg: Config) -> Result<(), ConfigError> {
        let period = whole_period(&cfg)?;
        for i in 0..N {
            cfg.shard(N, i)?;
        }
        // Acquire: pairs with the Release that ended the previous change, so its shard
        // changes are ordered before ours.
        if self
            .changing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(ConfigError::Busy);
        }
        let mut result = Ok(());
        for (i, s) in self.shards.iter().enumerate() {
            // Only this change writes the shards' settings (the flag), so neither fails.
            if let Err(e) = cfg.shard(N, i).and_then(|(c, _)| s.reconfigure(c)) {
                result = Err(e);
            }
        }
        // Relaxed: display values (see `config`).
        self.burst.store(cfg.burst_size(), Ordering::Relaxed);
        self.period.store(period, Ordering::Relaxed);
        // Release: the next change, acquiring the flag, comes after all of ours.
        self.changing.store(false, Ordering::Release);
        result
    }

    /// Takes `n` tokens as of `now`: the caller's shard, then the others.
    #[inline]
    pub(super) fn try_acquire_at(&self, n: u32, now: Instant) -> Result<(), Denied> {
        self.first(|s| s.try_acquire_at(n, now), n).map(|_| ())
    }

    /// Reserves `n` tokens as of `now`, due by `until`: the caller's shard, then the others.
    pub(super) fn reserve_at(
        &self,
        n: u32,
        now: Instant,
        until: Instant,
    ) -> Result<ShardReservation, Denied> {
        // Tokens free now, on any shard; else the shard that has them first, if by `until`
        // (another caller may have reserved it meanwhile: then any shard that has them by
        // then).
        let found = match self.scan(|s| s.reserve_at(n, now, now), n) {
            Err((Denied::RateLimited(r), Some(i))) if r.retry_at <= until => self
                .shards
                .get(i)
                .map(|s| s.reserve_at(n, now, until).map(|t| (i, t)))
                .filter(Result::is_ok)
                .unwrap_or_else(|| self.first(|s| s.reserve_at(n, now, until), n)),
            found => found.map_err(|(e, _)| e),
        };
        found.map(|(shard, reservation)| ShardReservation { shard, reservation })
    }

    /// The first shard, from the caller's, that `take` succeeds on, with what it returned;
    /// or, when none does, the earliest instant one would, or (no shard could ever serve `n`)
    /// the largest shard's burst.
    #[inline(always)]
    fn first<T>(
        &self,
        take: impl Fn(&RateLimiter<Told>) -> Result<T, Denied>,
        n: u32,
    ) -> Result<(usize, T), Denied> {
        self.scan(take, n).map_err(|(e, _)| e)
    }

    /// [`first`](Self::first), with the shard of the earliest instant when none succeeds.
    #[inline(always)]
    fn scan<T>(
        &self,
        take: impl Fn(&RateLimiter<Told>) -> Result<T, Denied>,
        n: u32,
    ) -> Result<(usize, T), (Denied, Option<usize>)> {
        let home = self.hint.shard() % N.max(1);
        let mut earliest: Option<(RateLimited, usize)> = None;
        for k in 0..N {
            let i = if home + k < N { home + k } else { home + k - N };
            let Some(s) = self.shards.get(i) else { break };
            match take(s) {
                Ok(t) => return Ok((i, t)),
                Err(Denied::RateLimited(r)) => {
                    if earliest.is_none_or(|(e, _)| r.retry_at < e.retry_at) {
                        earliest = Some((r, i));
                    }
                }
                Err(Denied::InsufficientCapacity(_)) => {}
            }
        }
        Err(match earliest {
            Some((r, i)) => (Denied::RateLimited(r.with_quota(self.quota())), Some(i)),
            None => (
                Denied::InsufficientCapacity(InsufficientCapacity {
                    requested: n,
                    // The first shards hold the extra tokens of an uneven split.
                    burst: self.burst.load(Ordering::Relaxed).div_ceil(N.max(1) as u32),
                }),
                None,
            ),
        })
    }

    /// The next jitter salt of a waiting call (see [`RateLimiter::acquire`]).
    pub(super) fn next_salt(&self) -> u64 {
        // Relaxed: the salt only spreads jitter; the first shard's counter serves the limiter.
        match self.shards.first() {
            Some(s) => s.salt.fetch_add(1, Ordering::Relaxed),
            None => 0,
        }
    }
}

/// Tokens one shard reserved ([`ShardedRateLimiter::try_reserve_n`]): the shard and its
/// [`Reservation`].
///
/// ```
/// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
/// use bulwark::{Instant, MockClock};
/// let clock = MockClock::new();
/// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(2), &clock).unwrap();
/// let r = l.try_reserve_n(1, Instant::ZERO).unwrap();
/// assert_eq!(r.due(), Instant::ZERO);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ShardReservation {
    shard: usize,
    reservation: Reservation,
}

impl ShardReservation {
    /// The instant the reserved tokens are due.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(4).burst(2), &clock).unwrap();
    /// l.try_acquire_n(1).unwrap();
    /// l.try_acquire_n(1).unwrap();
    /// let r = l.try_reserve_n(1, Instant::from_secs(1)).unwrap();
    /// assert_eq!(r.due(), Instant::from_millis(500));
    /// ```
    pub fn due(&self) -> Instant {
        self.reservation.due()
    }
}

/// A whole configuration's period of one token, ns (checked as the limiter would be).
fn whole_period(cfg: &Config) -> Result<u64, ConfigError> {
    Ok(cfg.gcra()?.t)
}

/// The parameters of a limiter that admits nothing ever: never built (see `with_hint`).
const EMPTY: super::state::Gcra = super::state::Gcra {
    t: u64::MAX,
    burst: 1,
    len: u64::MAX,
};

admit_one_token!(
    /// The sharded limiter as a gate: as [`RateLimiter`]'s, each admitted call spends one token.
    ///
    /// ```
    /// use bulwark::admission::{Permit, RetryHint};
    /// use bulwark::{Instant, MockClock, rate_limiter::{Config, ShardedRateLimiter}};
    /// let clock = MockClock::new();
    /// let l = ShardedRateLimiter::<_, 2>::new(Config::per_second(2), &clock).unwrap();
    /// Permit::try_new(&l).unwrap().success();
    /// Permit::try_new(&l).unwrap().success();
    /// assert_eq!(Permit::try_new(&l).map(drop).unwrap_err().retry_at(), Some(Instant::from_secs(1)));
    /// ```
    [C: Clock, const N: usize, H: ShardHint] ShardedRateLimiter<C, N, H>
);

impl<C, const N: usize, H> fmt::Debug for ShardedRateLimiter<C, N, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a debug snapshot only.
        f.debug_struct("ShardedRateLimiter")
            .field("shards", &N)
            .field("burst", &self.burst.load(Ordering::Relaxed))
            .field("period_ns", &self.period.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use super::*;
    use crate::{MockClock, mock};
    use core::sync::atomic::AtomicUsize;

    /// A hint the test sets: every caller starts at `self.0`.
    struct At(AtomicUsize);
    impl ShardHint for At {
        fn shard(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn at(clock: &MockClock, cfg: Config) -> ShardedRateLimiter<&MockClock, 4, At> {
        ShardedRateLimiter::with_hint(cfg, clock, At(AtomicUsize::new(0))).unwrap()
    }

    /// The caller's shard first, then the next ones in order, wrapping; the rejection is
    /// the earliest shard's instant, with the whole limiter's quota.
    #[test]
    fn takes_from_its_own_shard_then_the_next_ones() {
        let clock = MockClock::new();
        // 4 shards of 2 tokens, each refilling one every 4 × 125 ms.
        let l = at(&clock, Config::per_second(8));
        l.hint.0.store(2, Ordering::Relaxed);
        l.try_acquire_n(2).unwrap(); // shard 2
        l.try_acquire().unwrap(); // shard 3
        assert_eq!(l.shards[2].available_at(Instant::ZERO), 0);
        assert_eq!(l.shards[3].available_at(Instant::ZERO), 1);
        l.try_acquire_n(2).unwrap(); // shard 3 has one: shard 0
        assert_eq!(l.shards[0].available_at(Instant::ZERO), 0);
        l.try_acquire_n(2).unwrap(); // shard 1
        l.try_acquire().unwrap(); // shard 3's last
        assert_eq!(l.available(), 0);
        // Shard 3 was emptied last, but every shard has a token again at 500 ms.
        let e = l.try_acquire().unwrap_err();
        assert_eq!(e.retry_at, Instant::from_millis(500));
        assert_eq!(
            e.quota,
            Quota {
                burst: 8,
                period: Duration::from_millis(125)
            }
        );
        // Two tokens: shard 2 and shard 0 spent both (due at 1 s), shard 1 too, shard 3 at 1 s.
        assert_eq!(
            l.try_acquire_n(2).unwrap_err().retry_at(),
            Some(Instant::from_secs(1))
        );
        clock.advance(Duration::from_millis(500));
        for _ in 0..4 {
            l.try_acquire().unwrap();
        }
        assert!(l.try_acquire().is_err());
    }

    /// Against a plain limiter of the same config, over ten minutes of one-millisecond
    /// steps of bursty demand, most of it on one shard: never more generous, and short
    /// by at most 0.2 % (a shard refills in steps of `N` periods, and a full shard's refill is
    /// lost while callers take from their own shards first). Without taking from the other
    /// shards it would be short by 1.4 % here.
    #[test]
    fn admits_about_what_a_plain_limiter_does_and_never_more() {
        let clock = MockClock::new();
        let cfg = Config::per_second(103).burst(13);
        let l = at(&clock, cfg);
        let plain = RateLimiter::new(cfg, &clock).unwrap();
        let (mut ours, mut theirs) = (0u64, 0u64);
        for step in 0..600_000u64 {
            // Most calls on shard 0, one millisecond in ten on one of the others.
            let home = if step % 10 == 9 {
                1 + (step / 10) % 3
            } else {
                0
            };
            l.hint.0.store(home as usize, Ordering::Relaxed);
            // Busy stretches (0 to 2 calls a millisecond; the rate is 0.103) and idle ones.
            let calls = if (step / 7_000) % 3 == 2 {
                0
            } else {
                (step.wrapping_mul(2_654_435_761) >> 9) % 3
            };
            for _ in 0..calls {
                ours += u64::from(l.try_acquire().is_ok());
                theirs += u64::from(plain.try_acquire().is_ok());
            }
            assert!(ours <= theirs, "step {step}: {ours} > {theirs}");
            clock.advance(Duration::from_millis(1));
        }
        // Busy two thirds of the ten minutes: at least the rate over those.
        assert!(theirs >= 103 * 400, "{theirs}");
        assert!((theirs - ours) * 500 <= theirs, "{ours} vs {theirs}");
    }

    /// Several threads on one limiter, time standing still: exactly the burst.
    #[test]
    fn threads_never_over_admit() {
        use core::sync::atomic::AtomicU32;
        let clock = MockClock::new();
        let l = ShardedRateLimiter::<_, 4>::new(Config::per_second(1).burst(101), &clock).unwrap();
        let ok = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if l.try_acquire().is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), 101);
        assert_eq!(l.available(), 0);
    }

    /// Bad input: typed errors naming what is wrong, never a panic.
    #[test]
    fn bad_configs_are_typed_errors() {
        let clock = MockClock::new();
        let new = |cfg: Config| ShardedRateLimiter::<_, 4>::new(cfg, &clock).err();
        assert_eq!(
            new(Config::per_second(3)),
            Some(ConfigError::BurstBelowShards {
                burst: 3,
                shards: 4
            })
        );
        assert_eq!(
            new(Config::per_second(8).burst(0)),
            Some(ConfigError::ZeroBurst)
        );
        assert_eq!(
            new(Config::per_second(0).burst(8)),
            Some(ConfigError::ZeroRate)
        );
        // The shards' interval, 4 × the given one, does not fit a `Duration`.
        assert_eq!(
            new(Config::per(8, Duration::MAX)),
            Some(ConfigError::TooLong)
        );
        assert_eq!(
            ShardedRateLimiter::<_, 0>::new(Config::per_second(8), &clock).err(),
            Some(ConfigError::ZeroCapacity)
        );
        let e = ConfigError::BurstBelowShards {
            burst: 3,
            shards: 4,
        };
        assert!(std::format!("{e}").contains("burst = 3 is below the 4 shards"));
        // More than a shard's burst, asked for at once: its own error, nothing taken.
        let l = at(&clock, Config::per_second(9)); // shards of 3, 2, 2, 2
        assert_eq!(
            l.try_acquire_n(4),
            Err(Denied::InsufficientCapacity(InsufficientCapacity {
                requested: 4,
                burst: 3
            }))
        );
        l.hint.0.store(1, Ordering::Relaxed);
        l.try_acquire_n(3).unwrap(); // only shard 0 holds 3
        assert_eq!(l.available(), 6);
        assert!(l.try_acquire_n(0).is_ok());
        assert_eq!(l.try_acquire_n(u32::MAX).unwrap_err().retry_at(), None);
    }

    /// A clock that jumps back is never more generous; uptimes of centuries are fine.
    #[test]
    fn clock_backwards_and_far_ahead() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(10));
        let l = at(&clock, Config::per_second(4));
        for _ in 0..4 {
            l.try_acquire().unwrap();
        }
        clock.set(Instant::ZERO);
        assert_eq!(
            l.try_acquire().unwrap_err().retry_at,
            Instant::from_secs(11)
        );
        clock.set(Instant::from_secs(200 * 365 * 24 * 3600));
        for _ in 0..4 {
            l.try_acquire().unwrap();
        }
        assert!(l.try_acquire().is_err());
    }

    #[test]
    fn a_change_during_a_change_is_busy_and_changes_nothing() {
        let clock = MockClock::new();
        let l = at(&clock, Config::per_second(4));
        l.changing.store(true, Ordering::Relaxed); // as if interrupted mid-change
        assert_eq!(l.reconfigure(Config::per_second(8)), Err(ConfigError::Busy));
        assert_eq!(l.config(), Config::per_second(4));
        l.changing.store(false, Ordering::Relaxed);
        l.reconfigure(Config::per_second(8).burst(12)).unwrap();
        assert_eq!(l.config(), Config::per_second(8).burst(12));
        assert_eq!(l.available(), 12);
        assert!(std::format!("{l:?}").contains("burst: 12"));
    }

    /// Waiting, both ways: retrying sleeps until the earliest shard has the tokens;
    /// reserving takes them from one shard for their instant, and a dropped waiter hands
    /// them back.
    #[test]
    fn waits_on_the_earliest_shard() {
        let clock = MockClock::new();
        let cfg = Config::per_second(4).max_wait(Duration::from_secs(1));
        let l = at(&clock, cfg);
        let at_ms = mock::run(&clock, async {
            for _ in 0..4 {
                l.acquire(1).await.unwrap();
            }
            l.acquire(1).await.unwrap();
            clock.now()
        })
        .unwrap();
        assert_eq!(at_ms, Instant::from_secs(1));
        // Four shards, each one token every second, one spent again: three free.
        assert_eq!(l.available(), 3);

        let clock = MockClock::new();
        let l = at(&clock, cfg.waiting(super::super::Waiting::Reserve));
        let r = mock::run(&clock, async {
            for _ in 0..4 {
                l.acquire(1).await.unwrap();
            }
            l.acquire(1).await
        })
        .unwrap();
        assert_eq!(r, Ok(()));
        assert_eq!(clock.now(), Instant::from_secs(1));
        // A waiter dropped before its instant hands its shard's token back: four shards
        // can then each reserve their 2 s token again.
        clock.set(Instant::from_secs(1));
        let l = at(&clock, cfg.waiting(super::super::Waiting::Reserve));
        for _ in 0..4 {
            l.try_acquire().unwrap();
        }
        {
            let mut waiter = core::pin::pin!(l.acquire(1));
            let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
        }
        let until = Instant::from_secs(2);
        for _ in 0..4 {
            assert_eq!(l.try_reserve_n(1, until).unwrap().due(), until);
        }
        assert!(l.try_reserve_n(1, until).is_err());
        // Past the max wait on every shard: fails at once, takes nothing.
        let l2 = at(&clock, Config::per_second(4));
        for _ in 0..4 {
            l2.try_acquire().unwrap();
        }
        assert!(mock::run(&clock, l2.acquire(1)).unwrap().is_err());
    }
}
