//! Errors of the bulkhead.

use core::fmt;

/// [`Bulkhead::try_acquire`](super::Bulkhead::try_acquire) found every permit taken.
///
/// ```
/// use bulwark::bulkhead::BulkheadFull;
/// assert_eq!(BulkheadFull.to_string(), "bulkhead full");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BulkheadFull;

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bulkhead full")
    }
}

impl core::error::Error for BulkheadFull {}

/// No instant is known: a permit may come back at any moment.
impl crate::admission::RetryHint for BulkheadFull {
    #[inline]
    fn retry_at(&self) -> Option<crate::time::Instant> {
        None
    }
}

/// Why a waiting [`Semaphore::poll_take`](super::Semaphore::poll_take) gave up.
///
/// ```
/// use bulwark::bulkhead::QueueError;
/// assert_eq!(QueueError::Full.to_string(), "wait queue full");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueError {
    /// The wait queue was full and this newest caller was rejected.
    Full,
    /// The wait queue was full and this caller, the oldest waiter, was shed to make room.
    Shed,
    /// The semaphore was closed (runtime semaphores that can be closed report this).
    Closed,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueError::Full => "wait queue full",
            QueueError::Shed => "shed from the wait queue to make room for a newer caller",
            QueueError::Closed => "semaphore closed",
        })
    }
}

impl core::error::Error for QueueError {}

/// Why a call did not get a bulkhead permit.
///
/// ```
/// use bulwark::bulkhead::{BulkheadFull, QueueError, Rejected};
/// assert_eq!(Rejected::from(BulkheadFull), Rejected::Full);
/// assert_eq!(Rejected::from(QueueError::Shed), Rejected::Shed);
/// assert_eq!(Rejected::Timeout.to_string(), "bulkhead: no permit within the max wait");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rejected {
    /// Every permit was taken and the call could not wait (no max wait, or no waiting
    /// semaphore): shed at once.
    Full,
    /// Every permit was taken and the wait queue was full: this newest caller was shed.
    QueueFull,
    /// This caller was waiting, and was shed (the oldest) to make room for a newer one.
    Shed,
    /// No permit became free within the max wait.
    Timeout,
    /// The semaphore was closed.
    Closed,
    /// [`Compartments`](super::Compartments) has no compartment for the key.
    NoSuchCompartment,
}

impl From<BulkheadFull> for Rejected {
    fn from(_: BulkheadFull) -> Self {
        Rejected::Full
    }
}

impl From<QueueError> for Rejected {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Full => Rejected::QueueFull,
            QueueError::Shed => Rejected::Shed,
            QueueError::Closed => Rejected::Closed,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejected::Full => "bulkhead full",
            Rejected::QueueFull => "bulkhead full and its wait queue full",
            Rejected::Shed => "bulkhead: shed from the wait queue",
            Rejected::Timeout => "bulkhead: no permit within the max wait",
            Rejected::Closed => "bulkhead: semaphore closed",
            Rejected::NoSuchCompartment => "bulkhead: no compartment for this key",
        })
    }
}

impl core::error::Error for Rejected {}

/// A bulkhead configuration that cannot run.
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Config, ConfigError};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// assert_eq!(Bulkhead::new(Config::new(0), &clock).unwrap_err(), ConfigError::ZeroCapacity);
/// assert_eq!(
///     ConfigError::TooLarge.to_string(),
///     "at most 2^32 - 1 permits (max_concurrent, or a queue semaphore's capacity)"
/// );
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// Zero permits (a config's max concurrent calls, or a semaphore's capacity): no call
    /// could ever run; the bulkhead would always be full.
    ZeroCapacity,
    /// More than `u32::MAX` permits (a config's max concurrent calls, or a semaphore's
    /// capacity: a [`QueueSemaphore`](super::QueueSemaphore) keeps it in 32 bits; an
    /// [`AtomicSemaphore`](super::AtomicSemaphore) at most `isize::MAX` too, on 32-bit targets).
    TooLarge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroCapacity => {
                "a bulkhead needs at least one permit (max_concurrent, or a semaphore's \
                 capacity, is 0)"
            }
            ConfigError::TooLarge => {
                "at most 2^32 - 1 permits (max_concurrent, or a queue semaphore's capacity)"
            }
        })
    }
}

impl core::error::Error for ConfigError {}
