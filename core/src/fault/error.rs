//! Errors of fault injection.

use core::fmt;

/// The fault a call was given instead of its own outcome.
///
/// ```
/// use bulwark::fault::Injected;
/// assert_eq!(Injected::Aborted.to_string(), "fault injected: the call was refused before it was made");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Injected {
    /// The call was not made.
    Aborted,
    /// The call was made; its outcome was thrown away.
    Replaced,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Injected::Aborted => "fault injected: the call was refused before it was made",
            Injected::Replaced => "fault injected: the call was made and its outcome replaced",
        })
    }
}

impl core::error::Error for Injected {}

/// No instant is known: an injected fault says nothing about when to retry.
impl crate::admission::RetryHint for Injected {
    fn retry_at(&self) -> Option<crate::time::Instant> {
        None
    }
}

/// The outcome of an [`Injector::call`](super::Injector::call): an injected fault, or the
/// operation's own error.
///
/// ```
/// use bulwark::fault::{Error, Injected};
/// let e: Error<&str> = Error::Injected(Injected::Replaced);
/// assert_eq!(e.to_string(), "fault injected: the call was made and its outcome replaced");
/// assert_eq!(Error::Operation("boom").to_string(), "boom");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// A fault was injected.
    Injected(Injected),
    /// The operation failed on its own.
    Operation(E),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Injected(i) => i.fmt(f),
            Error::Operation(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Injected(_) => None,
            Error::Operation(e) => Some(e),
        }
    }
}

/// A [`Config`](super::Config) that cannot run.
///
/// ```
/// use bulwark::fault::ConfigError;
/// assert_eq!(ConfigError::DelayRange.to_string(), "delay: the range's max is below its min");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// A rate above 100 % (1 000 000 per million).
    RateAboveAll,
    /// The delay range's max is below its min.
    DelayRange,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::RateAboveAll => "abort, delay or replace: a rate above 100 %",
            ConfigError::DelayRange => "delay: the range's max is below its min",
        })
    }
}

impl core::error::Error for ConfigError {}
