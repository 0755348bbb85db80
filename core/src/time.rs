//! Time: [`Instant`], the [`Clock`] that reads it and the [`Sleep`] that waits for it.
//!
//! An [`Instant`] is a `u64` count of nanoseconds since the clock's own origin (584 years of
//! range). All arithmetic saturates: nothing here panics on overflow, and an instant that is
//! earlier than another one simply yields a zero duration between them, which is how a clock
//! that steps backwards is treated everywhere in bulwark ("no time passed").

use core::future::Future;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since the origin of the [`Clock`] that produced it.
///
/// Instants from different clocks are not comparable. Arithmetic saturates at
/// [`Instant::ZERO`] and [`Instant::MAX`].
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use core::time::Duration;
///
/// let t = Instant::from_millis(1_500);
/// assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
/// assert_eq!(t - Instant::from_secs(1), Duration::from_millis(500));
/// // Saturating: an earlier instant minus a later one is zero, not a panic.
/// assert_eq!(Instant::ZERO - t, Duration::ZERO);
/// assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX`.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// assert_eq!(bulwark::time::duration_to_nanos(Duration::from_micros(3)), 3_000);
/// assert_eq!(bulwark::time::duration_to_nanos(Duration::MAX), u64::MAX);
/// ```
pub const fn duration_to_nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

impl Instant {
    /// The clock's origin.
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::ZERO.as_nanos(), 0);
    /// ```
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant (about 584 years after the origin).
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::MAX.as_nanos(), u64::MAX);
    /// ```
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::from_nanos(7).as_nanos(), 7);
    /// ```
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::from_millis(2).as_nanos(), 2_000_000);
    /// ```
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the origin (saturating).
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::from_secs(1), bulwark::Instant::from_millis(1000));
    /// ```
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::from_secs(1).as_nanos(), 1_000_000_000);
    /// ```
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the origin.
    ///
    /// ```
    /// assert_eq!(bulwark::Instant::from_nanos(2_999_999).as_millis(), 2);
    /// ```
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time since the origin as a [`Duration`].
    ///
    /// ```
    /// use core::time::Duration;
    /// assert_eq!(bulwark::Instant::from_millis(5).since_origin(), Duration::from_millis(5));
    /// ```
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    ///
    /// ```
    /// use bulwark::Instant;
    /// use core::time::Duration;
    /// assert_eq!(Instant::ZERO.saturating_add(Duration::from_nanos(3)), Instant::from_nanos(3));
    /// assert_eq!(Instant::MAX.saturating_add(Duration::MAX), Instant::MAX);
    /// ```
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_to_nanos(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    ///
    /// ```
    /// use bulwark::Instant;
    /// use core::time::Duration;
    /// assert_eq!(Instant::from_nanos(5).saturating_sub(Duration::from_nanos(9)), Instant::ZERO);
    /// ```
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_to_nanos(d)))
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is actually later (a clock
    /// that stepped backwards).
    ///
    /// ```
    /// use bulwark::Instant;
    /// use core::time::Duration;
    /// let (a, b) = (Instant::from_secs(1), Instant::from_secs(3));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_secs(2));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The time from `earlier` to `self`, or `None` when `earlier` is later.
    ///
    /// ```
    /// use bulwark::Instant;
    /// assert_eq!(Instant::ZERO.checked_duration_since(Instant::from_nanos(1)), None);
    /// ```
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.0.checked_sub(earlier.0) {
            Some(n) => Some(Duration::from_nanos(n)),
            None => None,
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating; see [`Instant::saturating_add`].
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturating; see [`Instant::saturating_sub`].
    fn sub(self, d: Duration) -> Instant {
        self.saturating_sub(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating; see [`Instant::saturating_duration_since`].
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// A source of [`Instant`]s.
///
/// Implementations must be cheap and should be monotonic. bulwark never relies on
/// monotonicity for safety: an instant earlier than one already seen is read as "no time
/// passed", never as a panic or a wedged state.
///
/// # Examples
///
/// ```
/// use bulwark::{Clock, Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// clock.advance(Duration::from_millis(10));
/// assert_eq!(clock.now(), Instant::from_millis(10));
/// // References to clocks are clocks too.
/// fn read(c: impl Clock) -> Instant { c.now() }
/// assert_eq!(read(&clock), Instant::from_millis(10));
/// ```
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;

    /// A cheaper, coarser reading of the same clock, for decisions that tolerate a few
    /// milliseconds (is an open circuit breaker's time up?). It must never be later than
    /// [`now`](Clock::now) would read, and should lag it by at most the clock's coarse
    /// granularity. The default is `now()`; clocks with a cheaper coarse source (the
    /// kernel's tick-granular monotonic clock, for example) override it.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock};
    /// let clock = MockClock::new();
    /// assert_eq!(clock.now_coarse(), clock.now()); // the default: the precise reading
    ///
    /// /// A clock whose coarse reading lags by up to 4 ms, like a kernel tick.
    /// struct Ticking(u64);
    /// impl Clock for Ticking {
    ///     fn now(&self) -> Instant { Instant::from_nanos(self.0) }
    ///     fn now_coarse(&self) -> Instant { Instant::from_nanos(self.0 / 4_000_000 * 4_000_000) }
    ///     fn coarse_lag(&self) -> core::time::Duration { core::time::Duration::from_millis(4) }
    /// }
    /// let t = Ticking(10_500_000);
    /// assert!(t.now_coarse() <= t.now());
    /// assert_eq!(t.now_coarse(), Instant::from_millis(8));
    /// ```
    #[inline]
    fn now_coarse(&self) -> Instant {
        self.now()
    }

    /// How far [`now_coarse`](Clock::now_coarse) may lag [`now`](Clock::now): its
    /// granularity. A decision whose coarse reading falls within this of the instant that
    /// matters reads the precise clock instead, so an instant promised to a caller (a
    /// breaker's retry instant) holds exactly. Zero by default, with the default
    /// `now_coarse`.
    ///
    /// ```
    /// use bulwark::{Clock, MockClock};
    /// assert_eq!(MockClock::new().coarse_lag(), core::time::Duration::ZERO);
    /// ```
    #[inline]
    fn coarse_lag(&self) -> Duration {
        Duration::ZERO
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
    #[inline]
    fn now_coarse(&self) -> Instant {
        (**self).now_coarse()
    }
    #[inline]
    fn coarse_lag(&self) -> Duration {
        (**self).coarse_lag()
    }
}

/// A duration as a person reads it: `"750 µs"`, `"120 ms"`, `"2.3 s"`, `"1 min 30 s"`,
/// `"2 h 5 min"`. What bulwark's errors print (never a raw offset from a clock's origin).
/// Rounded down to the unit shown; integer arithmetic only (no floats on a microcontroller).
///
/// ```
/// use bulwark::time::Human;
/// use core::time::Duration;
/// assert_eq!(Human(Duration::from_millis(2_345)).to_string(), "2.3 s");
/// assert_eq!(Human(Duration::from_millis(120)).to_string(), "120 ms");
/// assert_eq!(Human(Duration::from_secs(90)).to_string(), "1 min 30 s");
/// assert_eq!(Human(Duration::from_secs(7_500)).to_string(), "2 h 5 min");
/// assert_eq!(Human(Duration::ZERO).to_string(), "0 s");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Human(pub Duration);

impl core::fmt::Display for Human {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        match secs {
            0 if d.is_zero() => f.write_str("0 s"),
            0 if d.as_millis() == 0 => write!(f, "{} µs", d.as_micros()),
            0 => write!(f, "{} ms", d.as_millis()),
            1..=59 => write!(f, "{}.{} s", secs, d.subsec_millis() / 100),
            60..=3_599 => write!(f, "{} min {} s", secs / 60, secs % 60),
            _ => write!(f, "{} h {} min", secs / 3_600, secs % 3_600 / 60),
        }
    }
}

/// A [`Clock`] that can also wait: the only thing an async runtime must give the core.
///
/// The sleep future is a plain associated type that borrows nothing from `&self`: runtime
/// timers (tokio, async-io, embassy) own their deadline, and a clock that must be reached from
/// its future (the [`MockClock`](crate::MockClock)) implements `Sleep` on a reference to
/// itself, whose copy the future holds. So a future built on a `Sleep` names no lifetime of
/// the call that made it, and generic server code can require `Send + 'static` of it (an
/// `async fn` axum handler that awaits a bulwark call compiles).
///
/// # Examples
///
/// ```
/// use bulwark::{Clock, Instant, MockClock, Sleep, mock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let woke_at = mock::run(&clock, async {
///     (&clock).sleep(Duration::from_secs(60)).await;
///     clock.now()
/// })
/// .unwrap();
/// assert_eq!(woke_at, Instant::from_secs(60));
///
/// // Generic code waits through any `Sleep`.
/// async fn nap(s: impl Sleep) { s.sleep(Duration::from_secs(1)).await }
/// mock::run(&clock, nap(&clock)).unwrap();
/// assert_eq!(clock.now(), Instant::from_secs(61));
/// ```
pub trait Sleep: Clock {
    /// The future returned by [`Sleep::sleep_until`].
    type Sleep: Future<Output = ()>;

    /// Completes once the clock reads `deadline` or later (at once if it already does).
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// Completes after `d` has passed, measured from now.
    fn sleep(&self, d: Duration) -> Self::Sleep {
        self.sleep_until(self.now().saturating_add(d))
    }
}

impl<S: Sleep + ?Sized> Sleep for &S {
    type Sleep = S::Sleep;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        assert_eq!(Instant::MAX + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::MAX, Instant::ZERO);
        assert_eq!(Instant::ZERO - Instant::MAX, Duration::ZERO);
        assert_eq!(Instant::MAX - Instant::ZERO, Duration::from_nanos(u64::MAX));
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
        let mut t = Instant::from_nanos(u64::MAX - 1);
        t += Duration::from_nanos(5);
        assert_eq!(t, Instant::MAX);
    }

    #[test]
    fn checked_duration_since_detects_backwards() {
        let a = Instant::from_nanos(10);
        let b = Instant::from_nanos(4);
        assert_eq!(a.checked_duration_since(b), Some(Duration::from_nanos(6)));
        assert_eq!(b.checked_duration_since(a), None);
    }
}
