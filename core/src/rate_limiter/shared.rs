//! The shared, lock-free form: [`RateLimiter`].

use core::fmt;
use core::time::Duration;

use super::config::{Config, Waiting};
use super::error::{ConfigError, Denied, Quota, RateLimited};
use super::state::{Gcra, Reservation, admit_parts, parts, reserve};
use crate::sync::{AtomicU8, AtomicU32, AtomicU64, CachePadded, Ordering, const_fn};
use crate::time::{Clock, Instant, duration_to_nanos};

/// A rate limiter shared by many tasks, threads or interrupt handlers: `&self`, `Sync`,
/// lock-free, no allocation, no timer and no background task (tokens refill lazily, by
/// arithmetic on the next call). Its quota can be changed at run time through `&self`
/// ([`reconfigure`](RateLimiter::reconfigure)). (Interrupt handlers on targets without
/// 64-bit atomics: see [Interrupt handlers](crate#interrupt-handlers).) Every admission
/// rewrites one word, so cores calling at once wait for each other's writes: where that
/// shows, [`ShardedRateLimiter`](super::ShardedRateLimiter) gives each core its own.
///
/// # Memory ordering
///
/// The state is one `AtomicU64`: the GCRA theoretical arrival time (TAT) in nanoseconds on
/// the limiter's clock (its origin is the clock's origin; `0` means "full"), alone on its
/// cache line (calls on other cores read the settings without losing the line to the
/// word's writers). Every admission is a `compare_exchange_weak` loop around the pure
/// GCRA step, the same one the [`Machine`](super::Machine) uses, so every decision is taken
/// on the value it replaces: no two callers can spend the same token. A rejection writes
/// nothing.
///
/// The settings (rate, burst, waits) are double-buffered beside a version counter: version
/// `v` lives in slot `v & 1`, and a change writes the other slot, then publishes `v + 1`
/// (`Release`). An admission reads the version (`Acquire`), the slot's parameters
/// (`Acquire`), the TAT (`Acquire`), and the version again: equal, the parameters are whole
/// (the slot is only rewritten after the next version is published, and a load that saw
/// such a write would see that version: seqlock validation, without ever waiting for a
/// writer) and were still in force after the TAT was read. A TAT written by a call judged
/// under version `v + 1` is only read with version `≥ v + 1` (its CAS is `Release`, the
/// load `Acquire`, and the version is read after it), so the admissions, in the order of the
/// word, judge by versions that never go back. Changes never touch the TAT.
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
    /// The theoretical arrival time, ns, alone on its cache line.
    tat: CachePadded<AtomicU64>,
    /// The settings' version: slot `version & 1` is in force; [`CHANGING`] is set while a
    /// change writes the other slot.
    version: AtomicU64,
    settings: Settings,
    pub(super) clock: C,
    /// Salt for the jitter of waiting callers: one value per waiting call.
    pub(super) salt: AtomicU64,
}

/// The bit of [`RateLimiter::version`] a change holds while it writes the free slot (the
/// version count is the other 63 bits: it never wraps).
const CHANGING: u64 = 1 << 63;

/// Two versions of a limiter's settings, one per slot, each field an atomic (read while a
/// change may be writing the other slot). `t` and `len` are what an admission reads; the
/// rest is the [`Config`] as given, for waiters and [`RateLimiter::config`].
struct Settings {
    t: [AtomicU64; 2],
    len: [AtomicU64; 2],
    burst_minus_one: [AtomicU32; 2],
    rate: [AtomicU32; 2],
    interval_secs: [AtomicU64; 2],
    interval_nanos: [AtomicU32; 2],
    max_wait: [AtomicU64; 2],
    jitter: [AtomicU64; 2],
    seed: [AtomicU64; 2],
    /// Bit 0: the seed was set; bit 1: [`Waiting::Reserve`].
    flags: [AtomicU8; 2],
}

/// What an admission judges by: `T` and `b·T` of one version (`b` is their quotient).
#[derive(Copy, Clone)]
struct Hot {
    t: u64,
    len: u64,
}

impl Hot {
    fn gcra(self) -> Gcra {
        parts(self.t, self.len)
    }
}

const SEED_SET: u8 = 1;
const RESERVE: u8 = 2;

impl Settings {
    const_fn! {
        /// `cfg` (checked into `g`) in slot 0.
        fn new(cfg: &Config, g: &Gcra) -> Settings {
            let (rate, interval) = cfg.rate();
            Settings {
                t: [AtomicU64::new(g.t), AtomicU64::new(0)],
                len: [AtomicU64::new(g.len), AtomicU64::new(0)],
                burst_minus_one: [AtomicU32::new(g.burst - 1), AtomicU32::new(0)],
                rate: [AtomicU32::new(rate), AtomicU32::new(0)],
                interval_secs: [AtomicU64::new(interval.as_secs()), AtomicU64::new(0)],
                interval_nanos: [AtomicU32::new(interval.subsec_nanos()), AtomicU32::new(0)],
                max_wait: [
                    AtomicU64::new(duration_to_nanos(cfg.max_wait_time())),
                    AtomicU64::new(0),
                ],
                jitter: [
                    AtomicU64::new(duration_to_nanos(cfg.jitter_max())),
                    AtomicU64::new(0),
                ],
                seed: [
                    AtomicU64::new(match cfg.jitter_seed() {
                        Some(s) => s,
                        None => 0,
                    }),
                    AtomicU64::new(0),
                ],
                flags: [AtomicU8::new(flags(cfg)), AtomicU8::new(0)],
            }
        }
    }

    /// Writes `cfg` into slot `k`. Release: a reader whose load sees one of these values
    /// also sees, in its version check after it, the claim that preceded them (so it retries).
    fn store(&self, k: usize, cfg: &Config, g: &Gcra) {
        let (rate, interval) = cfg.rate();
        let r = Ordering::Release;
        self.t[k].store(g.t, r);
        self.len[k].store(g.len, r);
        self.burst_minus_one[k].store(g.burst - 1, r);
        self.rate[k].store(rate, r);
        self.interval_secs[k].store(interval.as_secs(), r);
        self.interval_nanos[k].store(interval.subsec_nanos(), r);
        self.max_wait[k].store(duration_to_nanos(cfg.max_wait_time()), r);
        self.jitter[k].store(duration_to_nanos(cfg.jitter_max()), r);
        self.seed[k].store(cfg.jitter_seed().unwrap_or(0), r);
        self.flags[k].store(flags(cfg), r);
    }

    /// The admission's parameters in slot `k`. Acquire: pairs with the Release stores of
    /// the change that wrote them (see `store`).
    #[inline(always)]
    fn hot(&self, k: usize) -> Hot {
        let a = Ordering::Acquire;
        Hot {
            t: self.t[k].load(a),
            len: self.len[k].load(a),
        }
    }

    /// The whole configuration in slot `k` (Acquire, as `hot`).
    fn config(&self, k: usize) -> Config {
        let a = Ordering::Acquire;
        let interval = Duration::new(
            self.interval_secs[k].load(a),
            // Always below 10⁹ (written from a `Duration`); `Duration::new` would carry.
            self.interval_nanos[k].load(a),
        );
        let flags = self.flags[k].load(a);
        let mut cfg = Config::per(self.rate[k].load(a), interval)
            .burst(self.burst_minus_one[k].load(a).wrapping_add(1))
            .max_wait(Duration::from_nanos(self.max_wait[k].load(a)))
            .jitter(Duration::from_nanos(self.jitter[k].load(a)))
            .waiting(if flags & RESERVE != 0 {
                Waiting::Reserve
            } else {
                Waiting::Retry
            });
        if flags & SEED_SET != 0 {
            cfg = cfg.seed(self.seed[k].load(a));
        }
        cfg
    }
}

const fn flags(cfg: &Config) -> u8 {
    let seed = if cfg.jitter_seed().is_some() {
        SEED_SET
    } else {
        0
    };
    let reserve = match cfg.waiting_mode() {
        Waiting::Reserve => RESERVE,
        Waiting::Retry => 0,
    };
    seed | reserve
}

/// The slot of version `v`.
#[inline(always)]
const fn slot(v: u64) -> usize {
    (v & 1) as usize
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
            Ok(RateLimiter::checked(&cfg, &gcra, clock))
        }
    }

    const_fn! {
        /// A full limiter for `cfg`, already checked into `gcra`.
        pub(super) fn checked(cfg: &Config, gcra: &Gcra, clock: C) -> Self {
            RateLimiter {
                tat: CachePadded::new(AtomicU64::new(0)),
                version: AtomicU64::new(0),
                settings: Settings::new(cfg, gcra),
                clock,
                salt: AtomicU64::new(0),
            }
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
            .map_err(Denied::into_rate_limited)
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

    /// The parameters in force and the TAT, read as the type's "Memory ordering" says: the
    /// version, its slot, the word, the version again (retrying if it moved). Returns the
    /// version, its parameters and the TAT.
    #[inline(always)]
    fn snapshot(&self) -> (u64, Hot, u64) {
        loop {
            // Acquire: pairs with the Release publication of version `v` (`reconfigure`),
            // so the slot's loads see what that change wrote.
            let v = self.version.load(Ordering::Acquire);
            let hot = self.settings.hot(slot(v));
            // Acquire: pairs with the AcqRel CAS of the admission that wrote this value.
            let tat = self.tat.0.load(Ordering::Acquire);
            // Acquire, after the slot's Acquire loads: had one of them seen a later change's
            // write, this would see (at least) that change's claim.
            if self.version.load(Ordering::Acquire) == v {
                return (v, hot, tat);
            }
        }
    }

    /// `T` and `b·T` in force, for a table whose entries keep their own TATs (the keyed
    /// limiter, which publishes its quota through a limiter of this type): [`snapshot`]
    /// without the word.
    ///
    /// [`snapshot`]: RateLimiter::snapshot
    #[inline(always)]
    pub(super) fn parts_in_force(&self) -> (u64, u64) {
        loop {
            // Acquire: pairs with the Release publication of version `v` (`reconfigure`).
            let v = self.version.load(Ordering::Acquire);
            let hot = self.settings.hot(slot(v));
            // Acquire, after the slot's Acquire loads: had one of them seen a later change's
            // write, this would see (at least) that change's claim.
            if self.version.load(Ordering::Acquire) == v {
                return (hot.t, hot.len);
            }
        }
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
        'settings: loop {
            let (v, hot, mut cur) = self.snapshot();
            let g = hot.gcra();
            loop {
                let r = reserve(cur, now, n, &g, max_wait)?;
                if r.tat() == cur {
                    return Ok(r); // n = 0: nothing to write
                }
                // As in `try_acquire_at`.
                match self.tat.0.compare_exchange_weak(
                    cur,
                    r.tat(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(r),
                    Err(actual) => cur = actual,
                }
                if self.version.load(Ordering::Acquire) != v {
                    continue 'settings;
                }
            }
        }
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
        // Acquire/AcqRel as in the admissions: a hand-back is one more write in the word's
        // single modification order, made only on the exact value the reservation left
        // behind (the settings play no part: it restores the value before the reservation).
        let cur = self.tat.0.load(Ordering::Acquire);
        match r.undo(cur) {
            Some(prev) => self
                .tat
                .0
                .compare_exchange(cur, prev, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            None => false,
        }
    }

    /// Takes `n` tokens as of `now`: the CAS loop around the GCRA step, on the parameters in
    /// force (bench row `limiter_check_1thread/bulwark_mockclock_admit`).
    #[inline]
    pub(super) fn try_acquire_at(&self, n: u32, now: Instant) -> Result<(), Denied> {
        if n == 0 {
            return Ok(()); // takes nothing, always passes (as `gcra`)
        }
        let now = now.as_nanos();
        'settings: loop {
            let (v, hot, mut cur) = self.snapshot();
            loop {
                let next = admit_parts(cur, now, n, hot.t, hot.len)?;
                // AcqRel on success: this admission is ordered after the one it replaces
                // and before the next one that reads it (whose version read then sees at
                // least `v`). Acquire on failure: we retry on the fresher value another
                // admission wrote.
                match self.tat.0.compare_exchange_weak(
                    cur,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(()),
                    Err(actual) => cur = actual,
                }
                // Acquire, after the failed CAS read `actual`: the settings are still in
                // force for it, or we read them again.
                if self.version.load(Ordering::Acquire) != v {
                    continue 'settings;
                }
            }
        }
    }

    /// Tokens free now, under the quota in force.
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
        self.available_at(self.clock.now())
    }

    /// [`available`](RateLimiter::available) as of `now`.
    pub(super) fn available_at(&self, now: Instant) -> u32 {
        let (_, hot, tat) = self.snapshot();
        hot.gcra().available(tat, now.as_nanos())
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
        Instant::from_nanos(self.tat.0.load(Ordering::Acquire))
    }

    /// The configuration in force (a copy: it may change at any time through
    /// [`reconfigure`](RateLimiter::reconfigure)).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(l.config(), Config::per_second(5));
    /// l.reconfigure(Config::per_second(7).burst(2)).unwrap();
    /// assert_eq!(l.config().burst_size(), 2);
    /// ```
    pub fn config(&self) -> Config {
        loop {
            // Acquire/Acquire around the slot's loads, as in `snapshot`.
            let v = self.version.load(Ordering::Acquire);
            let cfg = self.settings.config(slot(v));
            if self.version.load(Ordering::Acquire) == v {
                return cfg;
            }
        }
    }

    /// The quota in force: what calls are judged against now.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::MockClock;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(l.quota().period, Duration::from_millis(200));
    /// ```
    pub fn quota(&self) -> Quota {
        self.snapshot().1.gcra().quota()
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

    /// Changes the whole configuration — rate, burst, max wait, jitter, waiting — at run
    /// time, through `&self`, lock-free: from any task, thread or interrupt handler, while
    /// calls are in flight.
    ///
    /// # What happens to the bucket
    ///
    /// The theoretical arrival time (TAT, the instant the bucket is full again) is kept:
    /// what was spent stays spent, measured in time, and every call judged after the change
    /// is judged against the new quota. So:
    ///
    /// * a full bucket stays full (of the new burst);
    /// * a bucket full again in 300 ms still is; it then has `⌈300 ms / new period⌉` tokens
    ///   in use. With an unchanged bucket length (`burst × period`: any
    ///   [`per_second(r)`](Config::per_second) with the default burst `r` is one second),
    ///   that keeps the *fraction* of tokens free; with an unchanged period it keeps the
    ///   *number* in use, so a larger burst is free at once;
    /// * if the bucket shrank below what is owed (the TAT is further away than the new
    ///   `burst × period`), the excess is paid off at the new rate before the next call
    ///   passes: never more generous than the new quota on what was spent.
    ///
    /// resilience4j's `changeLimitForPeriod` keeps the current cycle's permissions and
    /// applies the new limit from the next cycle; a GCRA has no cycles, and keeping the TAT
    /// is its analogue (governor has no run-time change). Keeping the TAT is also what makes
    /// the change exact without a lock: the parameters and the state word need not change
    /// together (see the type's "Memory ordering").
    ///
    /// # Calls in flight
    ///
    /// Each call is judged, whole, against one version of the settings, never a mix of the
    /// old period with the new burst, and that version was in force when the call read the
    /// state it replaces. A call waiting in [`acquire`](RateLimiter::acquire) judges against
    /// the new quota the next time it tries (when its sleep ends); its deadline stays the one
    /// it started with. Reserved tokens ([`Waiting::Reserve`]) keep their instants.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run, and [`ConfigError::Busy`] when
    /// another change of this limiter was in progress at that moment (changes never wait for
    /// each other, so an interrupt handler cannot spin on one). Either way nothing changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError, RateLimiter};
    /// use bulwark::{Instant, MockClock};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(10), &clock).unwrap(); // 100 ms a token
    /// l.try_acquire_n(6).unwrap(); // full again at 600 ms: 4 free
    /// assert_eq!(l.available(), 4);
    ///
    /// l.reconfigure(Config::per_second(20)).unwrap(); // 50 ms a token, still a 1 s bucket
    /// assert_eq!(l.tat(), Instant::from_millis(600)); // kept
    /// assert_eq!(l.available(), 8); // 40 % free, as before
    ///
    /// l.reconfigure(Config::per_second(20).burst(5)).unwrap(); // a 250 ms bucket owing 600 ms
    /// assert_eq!(l.try_acquire().unwrap_err().retry_at, Instant::from_millis(400));
    /// clock.advance(Duration::from_millis(400));
    /// assert!(l.try_acquire().is_ok());
    ///
    /// assert_eq!(l.reconfigure(Config::per_second(0)), Err(ConfigError::ZeroRate));
    /// assert_eq!(l.config(), Config::per_second(20).burst(5)); // unchanged
    /// ```
    pub fn reconfigure(&self, cfg: Config) -> Result<(), ConfigError> {
        let g = cfg.gcra()?;
        // Claim the free slot: set CHANGING on an unclaimed version. Acquire: pairs with the
        // previous change's Release publication (its slot writes are before ours).
        let mut v = self.version.load(Ordering::Relaxed);
        loop {
            if v & CHANGING != 0 {
                return Err(ConfigError::Busy);
            }
            match self.version.compare_exchange_weak(
                v,
                v | CHANGING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => v = actual,
            }
        }
        // Slot `v + 1` is the one version `v − 1` used: a reader still on it sees our
        // claim in its version check (the Release stores below) and reads again.
        self.settings.store(slot(v + 1), &cfg, &g);
        // Release: publishes the slot's writes to every Acquire read of the version; also
        // clears CHANGING.
        self.version.store(v + 1, Ordering::Release);
        Ok(())
    }
}

/// The shared admission of [`ConstRateLimiter`](super::ConstRateLimiter): a CAS loop on
/// the TAT word around the GCRA step, its parameters constant.
#[inline]
pub(super) fn admit(tat: &AtomicU64, g: &Gcra, n: u32, now: Instant) -> Result<(), Denied> {
    if n == 0 {
        return Ok(());
    }
    let now = now.as_nanos();
    // Acquire: pairs with the AcqRel CAS of the previous admission (the word carries no
    // other data; see `RateLimiter`'s "Memory ordering").
    let mut cur = tat.load(Ordering::Acquire);
    loop {
        let next = admit_parts(cur, now, n, g.t, g.len)?;
        // AcqRel on success: ordered after the admission it replaces and before the next
        // one that reads it. Acquire on failure: retry on the fresher value.
        match tat.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
}

impl<C> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a debug snapshot only.
        let v = self.version.load(Ordering::Relaxed);
        f.debug_struct("RateLimiter")
            .field("version", &(v & !CHANGING))
            .field("cfg", &self.settings.config(slot(v)))
            .field("tat", &self.tat.0.load(Ordering::Relaxed))
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

    /// Issue 15 item 12, literal instants: a change keeps the TAT, so what was spent stays
    /// spent (measured in time) and later calls are judged by the new quota. resilience4j's
    /// `changeLimitForPeriod` likewise leaves what the current cycle spent and applies the
    /// new limit from the next cycle.
    #[test]
    fn reconfigure_through_shared_ref_keeps_the_tat_with_literal_instants() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(100));
        let at = |ms: u64| Instant::from_millis(100_000 + ms);
        let l = RateLimiter::new(Config::per_second(10), &clock).unwrap(); // 100 ms, burst 10
        l.try_acquire_n(5).unwrap(); // full again at +500 ms
        assert_eq!(l.tat(), at(500));
        // Double the rate, same 1 s bucket: 50 % free before, 50 % free after.
        l.reconfigure(Config::per_second(20)).unwrap();
        assert_eq!(l.tat(), at(500));
        assert_eq!(l.available(), 10);
        assert_eq!(l.quota().period, Duration::from_millis(50));
        l.try_acquire_n(10).unwrap(); // +500 ms + 10 × 50 ms
        assert_eq!(l.tat(), at(1_000));
        let e = l.try_acquire().unwrap_err();
        assert_eq!(e.retry_at, at(50));
        assert_eq!(e.quota.burst, 20, "judged against the new quota");
        // Same period, larger burst: the extra tokens are free at once.
        l.reconfigure(Config::per_second(20).burst(25)).unwrap();
        assert_eq!(l.available(), 5);
        // A bucket shrunk below the debt (burst 2 of 50 ms owing 1 s): paid at the new rate.
        l.reconfigure(Config::per_second(20).burst(2)).unwrap();
        assert_eq!(l.try_acquire().unwrap_err().retry_at, at(950));
        clock.set(at(950));
        assert!(l.try_acquire().is_ok());
        assert!(l.try_acquire().is_err());
        // A bad config changes nothing.
        assert_eq!(
            l.reconfigure(Config::per_second(10).burst(0)),
            Err(ConfigError::ZeroBurst)
        );
        assert_eq!(l.config(), Config::per_second(20).burst(2));
    }

    /// A change while another is writing its slot is refused, typed, and changes nothing.
    #[test]
    fn a_change_during_a_change_is_busy() {
        let clock = MockClock::new();
        let l = RateLimiter::new(Config::per_second(10), &clock).unwrap();
        l.version.fetch_or(CHANGING, Ordering::Relaxed); // as if interrupted mid-change
        assert_eq!(l.reconfigure(Config::per_second(1)), Err(ConfigError::Busy));
        // Calls go on, on the version in force.
        assert!(l.try_acquire().is_ok());
        assert_eq!(l.config(), Config::per_second(10));
        l.version.fetch_and(!CHANGING, Ordering::Relaxed);
        l.reconfigure(Config::per_second(1)).unwrap();
        assert_eq!(l.config(), Config::per_second(1));
        extern crate std;
        assert!(std::format!("{l:?}").contains("version: 1"));
    }

    /// Many changes from one thread while others call: every call is judged by one whole
    /// quota, and the tokens taken never exceed the larger burst (time stands still).
    #[test]
    fn threads_calling_while_the_quota_flips() {
        extern crate std;
        use core::sync::atomic::AtomicU32;
        let clock = MockClock::new();
        let a = Config::with_period(Duration::from_secs(1)).burst(50);
        let b = Config::with_period(Duration::from_secs(4)).burst(10);
        let l = RateLimiter::new(a, &clock).unwrap();
        let ok = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..200 {
                        if l.try_acquire().is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            s.spawn(|| {
                for i in 0..500 {
                    let _ = l.reconfigure(if i % 2 == 0 { b } else { a });
                }
            });
        });
        // 1 s tokens in a 50 s bucket, 4 s tokens in a 40 s bucket: at most 50.
        assert!(
            ok.load(Ordering::Relaxed) <= 50,
            "{}",
            ok.load(Ordering::Relaxed)
        );
        assert!(l.tat() <= Instant::from_secs(50));
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

admit_one_token!(
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
    [C: Clock] RateLimiter<C>
);
