//! Errors of [`timeout`](super::timeout).

use core::fmt;

use core::time::Duration;

use crate::time::Instant;

/// The deadline passed before the inner future completed; the inner future was dropped.
/// Carries the instant it passed and, when the limit was a duration, that duration (tower's
/// and Polly's timeout errors carry the configured timeout too).
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, timeout::Elapsed};
/// use core::time::Duration;
/// let e = Elapsed { deadline: Instant::from_millis(1_500), timeout: Some(Duration::from_secs(1)) };
/// assert_eq!(e.to_string(), "deadline elapsed at 1500 ms (a 1000 ms timeout)");
/// let e = Elapsed { deadline: Instant::from_millis(1_500), timeout: None };
/// assert_eq!(e.to_string(), "deadline elapsed at 1500 ms");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Elapsed {
    /// The deadline that passed.
    pub deadline: Instant,
    /// The timeout the future was given: `Some(d)` from [`timeout`](super::timeout) and
    /// [`timeout_within`](super::timeout_within) (even when the outer deadline cut it
    /// shorter), `None` from [`timeout_at`](super::timeout_at), which has only an instant.
    pub timeout: Option<Duration>,
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline elapsed at {} ms", self.deadline.as_millis())?;
        match self.timeout {
            Some(d) => write!(f, " (a {} ms timeout)", d.as_millis()),
            None => Ok(()),
        }
    }
}

impl core::error::Error for Elapsed {}

/// The error of a timed fallible future: the deadline passed, or the future failed with its
/// own error (passed through unchanged). Build it with [`Error::flatten`].
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, timeout::{Elapsed, Error}};
/// let ok: Result<Result<u8, &str>, Elapsed> = Ok(Err("refused"));
/// assert_eq!(Error::flatten(ok), Err(Error::Inner("refused")));
/// let late: Result<Result<u8, &str>, Elapsed> = Err(Elapsed { deadline: Instant::ZERO, timeout: None });
/// assert!(Error::flatten(late).unwrap_err().is_elapsed());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The deadline passed first.
    Elapsed(Elapsed),
    /// The future completed in time with this error.
    Inner(E),
}

impl<E> Error<E> {
    /// Turns the output of a [`Timeout`](super::Timeout) over a fallible future into one
    /// `Result`.
    ///
    /// ```
    /// use bulwark::timeout::{Elapsed, Error};
    /// let r: Result<Result<u8, ()>, Elapsed> = Ok(Ok(3));
    /// assert_eq!(Error::flatten(r), Ok(3));
    /// ```
    pub fn flatten<T>(r: Result<Result<T, E>, Elapsed>) -> Result<T, Error<E>> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Inner(e)),
            Err(e) => Err(Error::Elapsed(e)),
        }
    }

    /// `true` for [`Error::Elapsed`].
    ///
    /// ```
    /// use bulwark::timeout::Error;
    /// assert!(!Error::Inner(1).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        matches!(self, Error::Elapsed(_))
    }
}

impl<E> From<Elapsed> for Error<E> {
    fn from(e: Elapsed) -> Self {
        Error::Elapsed(e)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Elapsed(e) => e.fmt(f),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Elapsed(e) => Some(e),
            Error::Inner(e) => Some(e),
        }
    }
}
