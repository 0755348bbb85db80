//! Errors of the connection pool.

use core::fmt;

use crate::bulkhead::QueueError;

/// Why [`Pool::acquire`](super::Pool::acquire) gave no connection.
///
/// `E` is the [`Manager`](super::Manager)'s connect error, passed through unchanged.
///
/// ```
/// use bulwark::bulkhead::QueueError;
/// use bulwark::pool::Error;
/// assert_eq!(Error::<&str>::Timeout.to_string(), "pool: no connection within the timeout");
/// assert_eq!(Error::<()>::from(QueueError::Shed), Error::Shed);
/// assert_eq!(Error::Connect("refused").to_string(), "pool: connect failed: refused");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// No connection within the pool's timeout (waiting for a slot and connecting together).
    Timeout,
    /// Opening a new connection failed; the slot was given back.
    Connect(E),
    /// Every slot was taken and the wait queue was full: this newest caller was shed.
    QueueFull,
    /// This caller was waiting and was shed (the oldest) to make room for a newer one.
    Shed,
    /// The semaphore was closed.
    Closed,
}

impl<E> From<QueueError> for Error<E> {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Full => Error::QueueFull,
            QueueError::Shed => Error::Shed,
            QueueError::Closed => Error::Closed,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("pool: no connection within the timeout"),
            Error::Connect(e) => write!(f, "pool: connect failed: {e}"),
            Error::QueueFull => f.write_str("pool: every slot taken and the wait queue full"),
            Error::Shed => f.write_str("pool: shed from the wait queue"),
            Error::Closed => f.write_str("pool: semaphore closed"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

/// Why [`Pool::try_acquire`](super::Pool::try_acquire) gave no connection. It never waits and
/// never connects, so a pool with no idle connection answers [`TryAcquireError::NoIdle`].
///
/// ```
/// use bulwark::pool::TryAcquireError;
/// assert_eq!(TryAcquireError::Exhausted.to_string(), "pool: every slot in use");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TryAcquireError {
    /// Every slot is in use.
    Exhausted,
    /// A slot is free but no valid idle connection is there (connecting would wait).
    NoIdle,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryAcquireError::Exhausted => "pool: every slot in use",
            TryAcquireError::NoIdle => "pool: no idle connection (connecting would wait)",
        })
    }
}

impl core::error::Error for TryAcquireError {}

/// A pool configuration that cannot run.
///
/// ```
/// use bulwark::pool::ConfigError;
/// assert_eq!(ConfigError::ZeroCapacity.to_string(), "a pool needs at least one slot");
/// assert_eq!(ConfigError::NoPermits.to_string(), "the pool's semaphore has no permits (capacity 0)");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `N == 0`: no connection could ever be handed out.
    ZeroCapacity,
    /// The semaphore has more permits than the pool has slots (or more than `u32::MAX`):
    /// more callers could hold a connection than there are slots to return them to.
    SemaphoreTooLarge,
    /// The semaphore has no permits: no caller could ever hold a slot, and every acquire
    /// would wait out its timeout.
    NoPermits,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroCapacity => "a pool needs at least one slot",
            ConfigError::SemaphoreTooLarge => {
                "the semaphore has more permits than the pool has slots"
            }
            ConfigError::NoPermits => "the pool's semaphore has no permits (capacity 0)",
        })
    }
}

impl core::error::Error for ConfigError {}
