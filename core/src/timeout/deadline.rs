//! [`Deadline`]: an absolute instant by which work must be done, or none.

use core::time::Duration;

use crate::time::Instant;

/// An absolute instant by which work must be done, or no deadline at all.
///
/// Deadlines compose: a call made under a deadline hands the *earliest* of its own and its
/// caller's to whatever it calls ([`Deadline::min`]), so nested timeouts and retries never run
/// past the outermost one. [`Deadline::NONE`] is the identity of that composition.
///
/// A deadline is expired from its instant on: `is_expired(now)` is `now >= instant`.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, timeout::Deadline};
/// use core::time::Duration;
///
/// let now = Instant::from_secs(10);
/// let caller = Deadline::after(now, Duration::from_secs(5)); // 15 s
/// let mine = Deadline::after(now, Duration::from_secs(30)); // 40 s
/// let d = caller.min(mine);
/// assert_eq!(d.instant(), Some(Instant::from_secs(15)));
/// assert_eq!(d.remaining(now), Some(Duration::from_secs(5)));
/// assert!(!d.is_expired(now));
/// assert!(d.is_expired(Instant::from_secs(15)));
/// assert_eq!(Deadline::NONE.min(d), d);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: never expires, [`remaining`](Deadline::remaining) is `None`.
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// assert!(!Deadline::NONE.is_expired(Instant::MAX));
    /// ```
    pub const NONE: Deadline = Deadline(None);

    /// A deadline at `instant`.
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// assert_eq!(Deadline::at(Instant::from_secs(3)).instant(), Some(Instant::from_secs(3)));
    /// ```
    pub const fn at(instant: Instant) -> Deadline {
        Deadline(Some(instant))
    }

    /// A deadline `d` after `now` (saturating at [`Instant::MAX`]).
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// use core::time::Duration;
    /// let d = Deadline::after(Instant::MAX, Duration::from_secs(1));
    /// assert_eq!(d.instant(), Some(Instant::MAX));
    /// ```
    pub const fn after(now: Instant, d: Duration) -> Deadline {
        Deadline(Some(now.saturating_add(d)))
    }

    /// The instant, or `None` for [`Deadline::NONE`].
    ///
    /// ```
    /// use bulwark::timeout::Deadline;
    /// assert_eq!(Deadline::NONE.instant(), None);
    /// ```
    pub const fn instant(self) -> Option<Instant> {
        self.0
    }

    /// The earlier of two deadlines ([`Deadline::NONE`] counts as later than any instant).
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// let (a, b) = (Deadline::at(Instant::from_secs(1)), Deadline::at(Instant::from_secs(2)));
    /// assert_eq!(a.min(b), a);
    /// assert_eq!(b.min(a), a);
    /// assert_eq!(Deadline::NONE.min(b), b);
    /// ```
    pub const fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => {
                if a.as_nanos() <= b.as_nanos() {
                    self
                } else {
                    other
                }
            }
            (Some(_), None) => self,
            (None, _) => other,
        }
    }

    /// `true` once `now` has reached the deadline (never for [`Deadline::NONE`]).
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// let d = Deadline::at(Instant::from_secs(2));
    /// assert!(!d.is_expired(Instant::from_millis(1_999)));
    /// assert!(d.is_expired(Instant::from_secs(2)));
    /// ```
    pub const fn is_expired(self, now: Instant) -> bool {
        match self.0 {
            Some(at) => now.as_nanos() >= at.as_nanos(),
            None => false,
        }
    }

    /// The time left from `now` (zero once expired), or `None` when there is no deadline.
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// use core::time::Duration;
    /// let d = Deadline::at(Instant::from_secs(2));
    /// assert_eq!(d.remaining(Instant::from_secs(5)), Some(Duration::ZERO));
    /// assert_eq!(Deadline::NONE.remaining(Instant::ZERO), None);
    /// ```
    pub const fn remaining(self, now: Instant) -> Option<Duration> {
        match self.0 {
            Some(at) => Some(at.saturating_duration_since(now)),
            None => None,
        }
    }

    /// `true` when an instant `at` falls before the deadline (always without one): whether
    /// work starting at `at` could still begin in time.
    ///
    /// ```
    /// use bulwark::{Instant, timeout::Deadline};
    /// let d = Deadline::at(Instant::from_secs(2));
    /// assert!(d.allows(Instant::from_secs(1)));
    /// assert!(!d.allows(Instant::from_secs(2)));
    /// ```
    pub const fn allows(self, at: Instant) -> bool {
        !self.is_expired(at)
    }
}

impl From<Instant> for Deadline {
    /// [`Deadline::at`].
    fn from(at: Instant) -> Deadline {
        Deadline::at(at)
    }
}

impl From<Option<Instant>> for Deadline {
    /// `None` is [`Deadline::NONE`].
    fn from(at: Option<Instant>) -> Deadline {
        Deadline(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_is_commutative_and_none_is_identity() {
        let a = Deadline::at(Instant::from_nanos(5));
        let b = Deadline::at(Instant::from_nanos(9));
        for (x, y) in [(a, b), (b, a), (a, Deadline::NONE), (Deadline::NONE, a)] {
            assert_eq!(x.min(y), y.min(x));
        }
        assert_eq!(a.min(b), a);
        assert_eq!(Deadline::NONE.min(Deadline::NONE), Deadline::NONE);
        assert_eq!(
            Deadline::from(Some(Instant::ZERO)),
            Deadline::at(Instant::ZERO)
        );
    }

    #[test]
    fn extremes_do_not_panic() {
        let d = Deadline::after(Instant::MAX, Duration::MAX);
        assert_eq!(d.instant(), Some(Instant::MAX));
        assert_eq!(
            d.remaining(Instant::ZERO),
            Some(Duration::from_nanos(u64::MAX))
        );
        assert!(Deadline::at(Instant::ZERO).is_expired(Instant::ZERO));
        // A clock that went backwards: more time remains, nothing panics.
        let d = Deadline::at(Instant::from_secs(1));
        assert_eq!(d.remaining(Instant::ZERO), Some(Duration::from_secs(1)));
    }
}
