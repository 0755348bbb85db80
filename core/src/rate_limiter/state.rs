//! The limiter's state: the validated [`Gcra`] parameters, the pure GCRA function and the
//! `&mut self` [`Machine`].

use super::config::Config;
use super::error::{ConfigError, Denied, InsufficientCapacity, Quota, RateLimited};
use crate::time::Instant;
use core::time::Duration;

/// Validated GCRA parameters: the emission interval `T` (ns per token) and the burst `b`.
///
/// Made by [`Config::gcra`]. `b × T` fits a `u64`, which is what keeps [`gcra`] free of
/// overflow except at the very end of the clock's range.
///
/// ```
/// use bulwark::rate_limiter::Config;
/// let g = Config::per_second(2).burst(4).gcra().unwrap();
/// assert_eq!((g.emission_interval_nanos(), g.burst()), (500_000_000, 4));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gcra {
    pub(super) t: u64,
    pub(super) burst: u32,
    pub(super) len: u64,
}

impl Gcra {
    /// The quota these parameters enforce.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// use core::time::Duration;
    /// let q = Config::per_second(10).burst(3).gcra().unwrap().quota();
    /// assert_eq!((q.burst, q.period), (3, Duration::from_millis(100)));
    /// ```
    pub const fn quota(&self) -> Quota {
        Quota {
            burst: self.burst,
            period: Duration::from_nanos(self.t),
        }
    }

    /// `T`: nanoseconds to refill one token.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(1000).gcra().unwrap().emission_interval_nanos(), 1_000_000);
    /// ```
    pub const fn emission_interval_nanos(&self) -> u64 {
        self.t
    }

    /// `b`: the burst.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// assert_eq!(Config::per_second(5).gcra().unwrap().burst(), 5);
    /// ```
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// Tokens free at `now` for a limiter whose theoretical arrival time is `tat`.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config;
    /// let g = Config::per_second(10).gcra().unwrap(); // T = 100 ms
    /// assert_eq!(g.available(0, 0), 10);
    /// assert_eq!(g.available(250_000_000, 0), 7); // 2.5 tokens in use round up to 3
    /// ```
    pub const fn available(&self, tat: u64, now: u64) -> u32 {
        let debt = tat.saturating_sub(now);
        let in_use = debt.div_ceil(self.t);
        if in_use >= self.burst as u64 {
            0
        } else {
            self.burst - in_use as u32
        }
    }
}

/// The Generic Cell Rate Algorithm: one step, pure.
///
/// `tat` is the *theoretical arrival time*, in nanoseconds on the limiter's clock: the instant
/// at which the bucket would be full again. Taking `n` tokens at `now`:
///
/// ```text
/// new_tat  = max(tat, now) + n·T
/// allow_at = new_tat − b·T            (the instant the bucket holds n tokens)
/// pass  ⇔  allow_at ≤ now             → Ok(new_tat)
/// else                                → Err(RateLimited::new(allow_at, now))  (nothing taken)
/// ```
///
/// `max(tat, now)` is what makes an idle limiter accrue at most the burst. `n = 0` always
/// passes and changes nothing; `n > b` is [`Denied::InsufficientCapacity`] (never passes,
/// nothing taken). `retry_at` does not depend on `now` (it is `tat + n·T − b·T`), so it is
/// exact. A `now` earlier than one seen before (a clock stepping back) is simply an earlier
/// question: since `tat` already exceeds every instant at which tokens were taken, the
/// answer is never more generous than at the latest instant. If `new_tat` would pass the end
/// of the clock's range (about 584 years) the call is limited with `retry_at =`
/// [`Instant::MAX`] rather than wrapping.
///
/// # Errors
///
/// [`Denied`] as above.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, Denied, RateLimited, gcra};
/// let g = Config::per_second(10).burst(2).gcra().unwrap(); // T = 100 ms, b = 2
/// let ms = 1_000_000;
/// let tat = gcra(0, 0, 1, &g).unwrap();
/// assert_eq!(tat, 100 * ms);
/// let tat = gcra(tat, 0, 1, &g).unwrap(); // the burst's second token
/// assert_eq!(tat, 200 * ms);
/// let limited = RateLimited::new(Instant::from_millis(100), Instant::ZERO);
/// assert_eq!(gcra(tat, 0, 1, &g), Err(Denied::RateLimited(limited.with_quota(g.quota()))));
/// assert_eq!(gcra(tat, 100 * ms, 1, &g), Ok(300 * ms));
/// ```
#[inline(always)]
pub const fn gcra(tat: u64, now: u64, n: u32, g: &Gcra) -> Result<u64, Denied> {
    if n == 0 {
        return Ok(tat);
    }
    admit_parts(tat, now, n, g.t, g.len)
}

/// [`gcra`] for `n ≥ 1` on the parameters' parts: `T` and the bucket's length `b·T`. The one
/// definition of an admission: [`gcra`] calls it, and so does the shared limiter's fast path
/// (bench row `limiter_check_1thread/bulwark_mockclock_admit`), which reads the two parts
/// from its published settings. `n > b` is `n·T > b·T`, tested only for `n > 1` (one token
/// never exceeds a burst of at least 1), so it folds away for a constant `n = 1`; `b` itself
/// (`b·T / T`, exact) is only computed for an error. `new − now ≤ b·T` is
/// `new − b·T ≤ now` without a saturating subtraction (`new ≥ now`, since `T > 0`).
#[inline(always)]
pub(super) const fn admit_parts(
    tat: u64,
    now: u64,
    n: u32,
    t: u64,
    len: u64,
) -> Result<u64, Denied> {
    if n > 1 && n as u128 * t as u128 > len as u128 {
        return Err(Denied::InsufficientCapacity(InsufficientCapacity {
            requested: n,
            burst: burst_of(t, len),
        }));
    }
    // n ≤ b and b·T fits u64, so n·T cannot overflow.
    let base = if tat > now { tat } else { now };
    match base.checked_add(t * n as u64) {
        Some(new_tat) if new_tat - now <= len => Ok(new_tat),
        // new_tat − now > len, so new_tat > len.
        Some(new_tat) => Err(limited(new_tat - len, now, &parts(t, len))),
        None => Err(limited(u64::MAX, now, &parts(t, len))),
    }
}

/// The burst of a bucket `len = b·T` long (exact); 0 for a zero `t`, which no validated
/// parameters have.
pub(super) const fn burst_of(t: u64, len: u64) -> u32 {
    match len.checked_div(t) {
        Some(b) => b as u32,
        None => 0,
    }
}

/// The parameters `T` and `b·T` stand for.
pub(super) const fn parts(t: u64, len: u64) -> Gcra {
    Gcra {
        t,
        burst: burst_of(t, len),
        len,
    }
}

/// The GCRA step both [`gcra`] and [`reserve`] take: the theoretical arrival time after `n`
/// more tokens and the instant they are due (ns), or the refusal no wait can cure.
#[inline(always)]
const fn schedule(tat: u64, now: u64, n: u32, g: &Gcra) -> Result<(u64, u64), Denied> {
    if n == 0 {
        return Ok((tat, now));
    }
    if n > g.burst {
        return Err(Denied::InsufficientCapacity(InsufficientCapacity {
            requested: n,
            burst: g.burst,
        }));
    }
    // n ≤ b and b·T fits u64, so n·T cannot overflow.
    let base = if tat > now { tat } else { now };
    match base.checked_add(g.t * n as u64) {
        Some(new_tat) => Ok((new_tat, new_tat.saturating_sub(g.len))),
        None => Err(limited(u64::MAX, now, g)),
    }
}

/// Limited until `at` (ns), judged at `now` (ns) against `g`.
#[inline(always)]
const fn limited(at: u64, now: u64, g: &Gcra) -> Denied {
    let r = RateLimited::new(Instant::from_nanos(at), Instant::from_nanos(now));
    Denied::RateLimited(if at == u64::MAX {
        r
    } else {
        r.with_quota(g.quota())
    })
}

/// [`gcra`] for a caller that may wait up to `max_wait` nanoseconds: its `n` tokens are taken
/// now (the state moves on as if they were spent) for the instant they are due,
/// [`Reservation::due`]. Callers that reserve one after another are each given their own
/// instant, in the order they reserved. With `max_wait = 0` it is [`gcra`].
///
/// # Errors
///
/// As [`gcra`]: [`Denied::RateLimited`] when the tokens would be due later than
/// `now + max_wait` (nothing is taken), [`Denied::InsufficientCapacity`] for `n` above the burst.
///
/// ```
/// use bulwark::rate_limiter::{Config, reserve};
/// use bulwark::Instant;
/// let g = Config::per_second(10).burst(1).gcra().unwrap(); // T = 100 ms
/// let ms = 1_000_000;
/// let a = reserve(0, 0, 1, &g, 250 * ms).unwrap();
/// let b = reserve(a.tat(), 0, 1, &g, 250 * ms).unwrap();
/// let c = reserve(b.tat(), 0, 1, &g, 250 * ms).unwrap();
/// assert_eq!([a.due(), b.due(), c.due()], [0, 100, 200].map(Instant::from_millis));
/// // A fourth would be due at 300 ms: past the 250 ms it may wait.
/// assert_eq!(reserve(c.tat(), 0, 1, &g, 250 * ms).unwrap_err().retry_at(), Some(Instant::from_millis(300)));
/// ```
#[inline(always)]
pub const fn reserve(
    tat: u64,
    now: u64,
    n: u32,
    g: &Gcra,
    max_wait: u64,
) -> Result<Reservation, Denied> {
    match schedule(tat, now, n, g) {
        Ok((new_tat, allow_at)) if allow_at.saturating_sub(now) <= max_wait => Ok(Reservation {
            tat: new_tat,
            due: if allow_at > now { allow_at } else { now },
            // `schedule` checked n ≤ b, and b·T fits u64.
            inc: g.t * n as u64,
        }),
        Ok((_, allow_at)) => Err(limited(allow_at, now, g)),
        Err(e) => Err(e),
    }
}

/// Tokens taken ahead of the instant they are due ([`reserve`], [`Machine::try_reserve_n`],
/// the shared limiter's [`try_reserve_n`](super::RateLimiter::try_reserve_n)). The tokens are
/// the holder's at [`due`](Reservation::due); a reservation given up before then can be handed
/// back with `cancel` as long as no other caller has taken tokens since.
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, Machine};
/// let mut m = Machine::new(Config::per_second(1).burst(1)).unwrap();
/// m.try_acquire(Instant::ZERO).unwrap();
/// let r = m.try_reserve_n(1, Instant::ZERO, Instant::from_secs(5)).unwrap();
/// assert_eq!(r.due(), Instant::from_secs(1));
/// ```
#[must_use = "the tokens are taken: wait until `due`, or cancel"]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    tat: u64,
    due: u64,
    inc: u64,
}

impl Reservation {
    /// The instant the reserved tokens are the holder's (the reserving instant if they were
    /// free at once).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, reserve};
    /// use bulwark::Instant;
    /// let g = Config::per_second(1).gcra().unwrap();
    /// assert_eq!(reserve(0, 7, 1, &g, 0).unwrap().due(), Instant::from_nanos(7));
    /// ```
    pub const fn due(&self) -> Instant {
        Instant::from_nanos(self.due)
    }

    /// The theoretical arrival time the reservation left behind (ns).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, reserve};
    /// let g = Config::per_second(1).gcra().unwrap();
    /// assert_eq!(reserve(0, 0, 1, &g, 0).unwrap().tat(), 1_000_000_000);
    /// ```
    pub const fn tat(&self) -> u64 {
        self.tat
    }

    /// The state before this reservation, if the state is still `tat` (nobody took tokens
    /// since): what cancelling it restores.
    pub(super) const fn undo(&self, tat: u64) -> Option<u64> {
        if tat == self.tat && self.inc > 0 {
            Some(self.tat - self.inc)
        } else {
            None
        }
    }
}

/// Carries a theoretical arrival time from the parameters `old` to `new` at `now`, keeping the
/// number of tokens *in use* (`(tat − now) / T`, with its fraction), capped at the new burst.
/// A full bucket stays full; a bucket with 3 of 10 tokens in use has 3 in use under the new
/// rate too (so 17 free if the burst became 20, 0 free if it became 2).
///
/// ```
/// use bulwark::rate_limiter::{Config, rescale};
/// let old = Config::per_second(10).gcra().unwrap(); // T = 100 ms
/// let new = Config::per_second(100).gcra().unwrap(); // T = 10 ms
/// let ms = 1_000_000;
/// assert_eq!(rescale(1_300 * ms, 1_000 * ms, &old, &new), 1_030 * ms); // 3 in use
/// assert_eq!(rescale(500 * ms, 1_000 * ms, &old, &new), 500 * ms);     // full stays full
/// ```
pub const fn rescale(tat: u64, now: u64, old: &Gcra, new: &Gcra) -> u64 {
    if tat <= now {
        return tat;
    }
    let debt = (tat - now) as u128 * new.t as u128 / old.t as u128;
    let debt = if debt > new.len as u128 {
        new.len
    } else {
        debt as u64
    };
    now.saturating_add(debt)
}

/// The rate limiter as a pure `&mut self` state machine: the instant is an argument.
///
/// One `u64` of state (the theoretical arrival time). What the shared
/// [`RateLimiter`](super::RateLimiter) does with a CAS loop, this does with a plain store,
/// through the same [`gcra`] function.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, Machine};
///
/// let mut m = Machine::new(Config::per_second(2)).unwrap(); // burst 2, T = 500 ms
/// let t0 = Instant::ZERO;
/// assert!(m.try_acquire(t0).is_ok());
/// assert!(m.try_acquire(t0).is_ok());
/// assert_eq!(m.try_acquire(t0).unwrap_err().retry_at, Instant::from_millis(500));
/// assert!(m.try_acquire(Instant::from_millis(500)).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    gcra: Gcra,
    tat: u64,
}

impl Machine {
    /// A full limiter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Machine};
    /// assert!(Machine::new(Config::per_second(0)).is_err());
    /// ```
    pub const fn new(cfg: Config) -> Result<Machine, ConfigError> {
        match cfg.gcra() {
            Ok(gcra) => Ok(Machine { gcra, tat: 0 }),
            Err(e) => Err(e),
        }
    }

    /// Takes one token at `now`.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the instant one token is free.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(1)).unwrap();
    /// assert!(m.try_acquire(Instant::from_secs(5)).is_ok());
    /// assert_eq!(m.try_acquire(Instant::from_secs(5)).unwrap_err().retry_at, Instant::from_secs(6));
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), RateLimited> {
        match self.try_acquire_n(1, now) {
            Ok(()) => Ok(()),
            Err(Denied::RateLimited(r)) => Err(r),
            // The burst is at least 1, so one token is never beyond it.
            Err(Denied::InsufficientCapacity(_)) => Err(RateLimited::NEVER),
        }
    }

    /// Takes `n` tokens at `now`, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied`]: limited until an instant, or `n` above the burst.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Denied, Machine};
    /// let mut m = Machine::new(Config::per_second(10)).unwrap();
    /// assert!(m.try_acquire_n(7, Instant::ZERO).is_ok());
    /// assert_eq!(m.try_acquire_n(5, Instant::ZERO).unwrap_err().retry_at(), Some(Instant::from_millis(200)));
    /// assert!(matches!(m.try_acquire_n(11, Instant::ZERO), Err(Denied::InsufficientCapacity(_))));
    /// assert_eq!(m.available(Instant::ZERO), 3); // the failed calls took nothing
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&mut self, n: u32, now: Instant) -> Result<(), Denied> {
        self.tat = gcra(self.tat, now.as_nanos(), n, &self.gcra)?;
        Ok(())
    }

    /// Takes `n` tokens at `now` for the instant they are due, if that is no later than
    /// `until` (see [`reserve`]): callers reserving one after another are each given their
    /// own instant, in order.
    ///
    /// # Errors
    ///
    /// [`Denied`]: due after `until` (nothing taken), or `n` above the burst.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(10).burst(1)).unwrap();
    /// let at = Instant::from_millis;
    /// let due: Vec<_> = (0..3).map(|_| m.try_reserve_n(1, at(0), at(200)).unwrap().due()).collect();
    /// assert_eq!(due, [at(0), at(100), at(200)]);
    /// assert_eq!(m.try_reserve_n(1, at(0), at(200)).unwrap_err().retry_at(), Some(at(300)));
    /// ```
    pub fn try_reserve_n(
        &mut self,
        n: u32,
        now: Instant,
        until: Instant,
    ) -> Result<Reservation, Denied> {
        let max_wait = until.as_nanos().saturating_sub(now.as_nanos());
        let r = reserve(self.tat, now.as_nanos(), n, &self.gcra, max_wait)?;
        self.tat = r.tat;
        Ok(r)
    }

    /// Hands back reservation `r`, given up before it was used: its tokens are free again if
    /// no tokens were taken since it was made (`true`); otherwise they stay spent (`false`),
    /// since later callers were given instants that count them.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(1).burst(1)).unwrap();
    /// let until = Instant::from_secs(9);
    /// m.try_acquire(Instant::ZERO).unwrap();
    /// let r = m.try_reserve_n(1, Instant::ZERO, until).unwrap();
    /// assert!(m.cancel(r));
    /// assert_eq!(m.try_reserve_n(1, Instant::ZERO, until).unwrap().due(), Instant::from_secs(1));
    /// ```
    pub fn cancel(&mut self, r: Reservation) -> bool {
        match r.undo(self.tat) {
            Some(tat) => {
                self.tat = tat;
                true
            }
            None => false,
        }
    }

    /// Tokens free at `now`.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(4)).unwrap();
    /// m.try_acquire_n(4, Instant::ZERO).unwrap();
    /// assert_eq!(m.available(Instant::from_millis(500)), 2);
    /// assert_eq!(m.available(Instant::from_secs(100)), 4); // never more than the burst
    /// ```
    pub fn available(&self, now: Instant) -> u32 {
        self.gcra.available(self.tat, now.as_nanos())
    }

    /// The theoretical arrival time: when the bucket is full again.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(4)).unwrap();
    /// m.try_acquire(Instant::ZERO).unwrap();
    /// assert_eq!(m.tat(), Instant::from_millis(250));
    /// ```
    pub fn tat(&self) -> Instant {
        Instant::from_nanos(self.tat)
    }

    /// The GCRA parameters in force.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let m = Machine::new(Config::per_second(4)).unwrap();
    /// assert_eq!(m.gcra().burst(), 4);
    /// ```
    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// Changes rate and burst, keeping the theoretical arrival time: what was spent stays
    /// spent, and from now on calls are judged against the new quota (see
    /// [`RateLimiter::reconfigure`](super::RateLimiter::reconfigure) for what that means for
    /// the tokens free; [`rescale`] gives the other choice, keeping the tokens in use).
    ///
    /// # Errors
    ///
    /// [`ConfigError`]; the machine is then unchanged.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Machine};
    /// let mut m = Machine::new(Config::per_second(10)).unwrap(); // a 1 s bucket
    /// m.try_acquire_n(3, Instant::ZERO).unwrap(); // full again at 300 ms
    /// m.reconfigure(Config::per_second(20)).unwrap(); // still a 1 s bucket, 50 ms a token
    /// assert_eq!(m.tat(), Instant::from_millis(300));
    /// assert_eq!(m.available(Instant::ZERO), 14); // 70 % free, as before
    /// assert!(m.reconfigure(Config::per_second(0)).is_err());
    /// assert_eq!(m.available(Instant::ZERO), 14);
    /// ```
    pub fn reconfigure(&mut self, cfg: Config) -> Result<(), ConfigError> {
        self.gcra = cfg.gcra()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const MS: u64 = 1_000_000;

    fn g(rate: u32, burst: u32) -> Gcra {
        Config::per_second(rate).burst(burst).gcra().unwrap()
    }

    #[test]
    fn burst_then_steady_rate_with_literal_instants() {
        let mut m = Machine::new(Config::per_second(10).burst(3)).unwrap();
        let at = Instant::from_millis;
        for _ in 0..3 {
            assert!(m.try_acquire(at(1_000)).is_ok());
        }
        assert_eq!(m.try_acquire(at(1_000)).unwrap_err().retry_at, at(1_100));
        assert_eq!(m.try_acquire(at(1_099)).unwrap_err().retry_at, at(1_100));
        assert!(m.try_acquire(at(1_100)).is_ok());
        assert_eq!(m.try_acquire(at(1_150)).unwrap_err().retry_at, at(1_200));
        // Idle for an hour: at most the burst is saved up.
        assert_eq!(m.available(at(3_600_000)), 3);
        for _ in 0..3 {
            assert!(m.try_acquire(at(3_600_000)).is_ok());
        }
        assert!(m.try_acquire(at(3_600_000)).is_err());
    }

    #[test]
    fn n_tokens_and_insufficient_capacity() {
        let gg = g(10, 5);
        assert_eq!(gcra(0, 0, 5, &gg), Ok(500 * MS));
        assert_eq!(
            gcra(0, 0, 6, &gg),
            Err(Denied::InsufficientCapacity(InsufficientCapacity {
                requested: 6,
                burst: 5
            }))
        );
        assert_eq!(
            gcra(0, 0, u32::MAX, &gg).unwrap_err().retry_at(),
            None,
            "huge n never passes and never overflows"
        );
        // 2 tokens when 1 is free: retry when the second one is.
        let tat = gcra(0, 0, 4, &gg).unwrap();
        assert_eq!(
            gcra(tat, 0, 2, &gg).unwrap_err().retry_at(),
            Some(Instant::from_millis(100))
        );
        // n = 0 passes and changes nothing, even when limited.
        let full = gcra(0, 0, 5, &gg).unwrap();
        assert_eq!(gcra(full, 0, 0, &gg), Ok(full));
    }

    #[test]
    fn clock_backwards_is_never_more_generous() {
        let mut m = Machine::new(Config::per_second(10).burst(2)).unwrap();
        let t = Instant::from_secs(100);
        m.try_acquire_n(2, t).unwrap();
        // Asking about an earlier instant: still limited, same exact retry instant.
        assert_eq!(
            m.try_acquire(Instant::from_secs(1)).unwrap_err().retry_at,
            Instant::from_millis(100_100)
        );
        assert_eq!(m.available(Instant::ZERO), 0);
        assert!(m.try_acquire(Instant::from_millis(100_100)).is_ok());
    }

    #[test]
    fn end_of_clock_range_saturates_without_panic() {
        let gg = g(1, 1);
        let end = u64::MAX - 10;
        assert_eq!(
            gcra(0, end, 1, &gg),
            Err(Denied::RateLimited(RateLimited::NEVER))
        );
        assert_eq!(gcra(0, u64::MAX - 1_000_000_000, 1, &gg), Ok(u64::MAX));
        assert!(gcra(u64::MAX, u64::MAX, 1, &gg).is_err());
        let mut m = Machine::new(Config::per_second(1)).unwrap();
        assert!(m.try_acquire(Instant::MAX).is_err());
        assert_eq!(m.available(Instant::MAX), 1);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        assert_eq!(
            Machine::new(Config::per_second(0)),
            Err(ConfigError::ZeroRate)
        );
        // Faster than one token a nanosecond: a period of 0.5 ns is not whole nanoseconds
        // (it used to be truncated to zero and called a zero rate).
        assert_eq!(
            Machine::new(Config::per_second(2_000_000_000)),
            Err(ConfigError::InexactRate {
                rate: 2_000_000_000,
                interval: Duration::from_secs(1)
            })
        );
        assert_eq!(
            Machine::new(Config::per(0, Duration::from_secs(1))),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::ZERO)),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Machine::new(Config::per_second(1).burst(0)),
            Err(ConfigError::ZeroBurst)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::MAX)),
            Err(ConfigError::TooLong)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::from_secs(1)).burst(u32::MAX))
                .map(|m| m.gcra().burst()),
            Ok(u32::MAX)
        );
        assert_eq!(
            Machine::new(Config::with_period(Duration::from_secs(10)).burst(u32::MAX)),
            Err(ConfigError::TooLong)
        );
    }

    #[test]
    fn inexact_periods_round_up_within_the_tolerance_and_are_refused_beyond_it() {
        let t = |c: Config| c.gcra().map(|g| g.emission_interval_nanos());
        // 3/s: 333 333 333.3 ns rounds up (never faster than asked); negligible error.
        assert_eq!(t(Config::per_second(3)), Ok(333_333_334));
        assert_eq!(t(Config::per(3, Duration::from_millis(1))), Ok(333_334));
        // Exact periods at high rates are fine.
        assert_eq!(t(Config::per_second(1_000_000_000)), Ok(1));
        assert_eq!(t(Config::per_second(500_000_000)), Ok(2));
        assert_eq!(t(Config::per_second(1_000_000)), Ok(1_000));
        // Just inside and just outside 0.1 %.
        assert_eq!(t(Config::per_second(999_999)), Ok(1_001)); // 0.0999 % slow
        assert_eq!(t(Config::per_second(1_001_000)), Ok(1_000)); // 999.001 ns: 0.0999 % slow
        let refused = |rate: u32| {
            matches!(
                Config::per_second(rate).gcra(),
                Err(ConfigError::InexactRate { rate: r, .. }) if r == rate
            )
        };
        assert!(refused(600_000_000)); // 1.67 ns → 2 ns: 16.7 % slow
        assert!(refused(3_000_000)); // 333.3 ns → 334 ns: 0.2 % slow
        assert!(refused(u32::MAX));
        // The period itself is always exact.
        assert_eq!(t(Config::with_period(Duration::from_nanos(2))), Ok(2));
    }

    /// A change keeps the theoretical arrival time: 4 tokens of 10/s spent at 1 s leave the
    /// bucket full again at 1.4 s whatever the new quota; measured in the new one's tokens.
    #[test]
    fn reconfigure_keeps_the_theoretical_arrival_time() {
        let mut m = Machine::new(Config::per_second(10)).unwrap();
        let t = Instant::from_secs(1);
        m.try_acquire_n(4, t).unwrap();
        assert_eq!(m.tat(), Instant::from_millis(1_400));
        // 2/s, burst 3: a 1.5 s bucket owing 400 ms: 0.8 of a token in use, 2 free.
        m.reconfigure(Config::per_second(2).burst(3)).unwrap();
        assert_eq!(m.tat(), Instant::from_millis(1_400));
        assert_eq!(m.available(t), 2);
        m.try_acquire_n(2, t).unwrap(); // 1.4 s + 2 × 500 ms
        assert_eq!(m.tat(), Instant::from_millis(2_400));
        assert_eq!(
            m.try_acquire(t).unwrap_err().retry_at,
            Instant::from_millis(1_400)
        );
        // Shrunk below the debt (burst 1 of 100 ms owing 1.4 s): paid off at the new rate.
        m.reconfigure(Config::per_second(10).burst(1)).unwrap();
        assert_eq!(
            m.try_acquire(t).unwrap_err().retry_at,
            Instant::from_millis(2_400)
        );
        assert!(m.try_acquire(Instant::from_millis(2_400)).is_ok());
        m.reconfigure(Config::per_second(100)).unwrap();
        assert_eq!(m.available(Instant::from_millis(2_500)), 100);
    }

    proptest::proptest! {
        /// The parts-based step is `gcra` for every `n ≥ 1`.
        #[test]
        fn admit_parts_is_gcra(
            tat in 0u64..10_000 * MS,
            now in 0u64..10_000 * MS,
            n in 1u32..8,
            rate in 1u32..50,
            burst in 1u32..6,
        ) {
            let g = g(rate, burst);
            let reference = match schedule(tat, now, n, &g) {
                Ok((new_tat, allow_at)) if allow_at <= now => Ok(new_tat),
                Ok((_, allow_at)) => Err(limited(allow_at, now, &g)),
                Err(e) => Err(e),
            };
            proptest::prop_assert_eq!(gcra(tat, now, n, &g), reference);
        }
    }

    proptest::proptest! {
        /// `reserve` with no wait is `gcra`; with a wait it admits exactly what is due within
        /// it, at that instant, and `Reservation::undo` restores an equivalent state.
        #[test]
        fn reserve_agrees_with_gcra(
            tat in 0u64..10_000 * MS,
            now in 0u64..10_000 * MS,
            n in 0u32..6,
            rate in 1u32..50,
            burst in 1u32..5,
            wait in 0u64..2_000 * MS,
        ) {
            let g = g(rate, burst);
            let plain = gcra(tat, now, n, &g);
            proptest::prop_assert_eq!(reserve(tat, now, n, &g, 0).map(|r| r.tat()), plain);
            match (reserve(tat, now, n, &g, wait), gcra(tat, now.saturating_add(wait), n, &g)) {
                (Ok(r), _) => {
                    proptest::prop_assert!(r.due().as_nanos() >= now);
                    proptest::prop_assert!(r.due().as_nanos() - now <= wait);
                    if r.due().as_nanos() > now {
                        // Not free now: refused by gcra until exactly `due`.
                        proptest::prop_assert_eq!(
                            plain.unwrap_err().retry_at(),
                            Some(r.due())
                        );
                    } else {
                        proptest::prop_assert_eq!(plain, Ok(r.tat()));
                    }
                    let back = r.undo(r.tat()).unwrap_or(r.tat());
                    // Handing back leaves as many tokens free as before reserving.
                    proptest::prop_assert_eq!(g.available(back, now), g.available(tat, now));
                }
                (Err(e), _) => proptest::prop_assert_eq!(Err(e), plain),
            }
        }
    }
}
