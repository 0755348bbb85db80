//! Isolated bulkheads per downstream: [`Compartments`].

use core::fmt;
use core::marker::PhantomData;

use super::error::Rejected;
use super::future::Acquire;
use super::shared::{Bulkhead, Metrics};
use super::state::{Semaphore, TrySemaphore};
use crate::admission::Permit;
use crate::time::{Clock, Sleep};

/// Maps a key (usually a fieldless enum of downstreams) to a compartment index.
///
/// ```
/// use bulwark::bulkhead::CompartmentKey;
/// #[derive(Copy, Clone)]
/// enum Service { Payment, Inventory, Email }
/// impl CompartmentKey for Service {
///     fn index(self) -> usize { self as usize }
/// }
/// assert_eq!(Service::Email.index(), 2);
/// assert_eq!(3usize.index(), 3);
/// ```
pub trait CompartmentKey: Copy {
    /// The compartment's index, below the number of compartments.
    fn index(self) -> usize;
}

impl CompartmentKey for usize {
    fn index(self) -> usize {
        self
    }
}

/// `N` isolated bulkheads, one per key, each with its own limit, in one fixed array (no
/// allocation). A compartment that is exhausted never takes permits from, or blocks, another.
///
/// A key whose index is `N` or more has no compartment: [`Rejected::NoSuchCompartment`]
/// (never a panic).
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, CompartmentKey, Compartments, Config, Rejected};
/// use bulwark::MockClock;
///
/// #[derive(Copy, Clone)]
/// enum Service { Payment, Inventory, Email }
/// impl CompartmentKey for Service {
///     fn index(self) -> usize { self as usize }
/// }
///
/// let clock = MockClock::new();
/// let pools: Compartments<Service, _, _, 3> = Compartments::new([
///     Bulkhead::new(Config::new(10), &clock).unwrap(),
///     Bulkhead::new(Config::new(20), &clock).unwrap(),
///     Bulkhead::new(Config::new(5), &clock).unwrap(),
/// ]);
/// let emails: [_; 5] = core::array::from_fn(|_| pools.try_acquire(Service::Email).unwrap());
/// assert_eq!(pools.try_acquire(Service::Email).unwrap_err(), Rejected::Full);
/// assert!(pools.try_acquire(Service::Payment).is_ok()); // unaffected
/// assert_eq!(pools.metrics(Service::Email).unwrap().in_use, 5);
/// # drop(emails);
/// ```
pub struct Compartments<K, S, C, const N: usize> {
    parts: [Bulkhead<S, C>; N],
    _key: PhantomData<fn(K)>,
}

impl<K: CompartmentKey, S: TrySemaphore, C: Clock, const N: usize> Compartments<K, S, C, N> {
    /// The compartments, in index order.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Compartments, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let c: Compartments<usize, _, _, 2> = Compartments::new([
    ///     Bulkhead::new(Config::new(1), &clock).unwrap(),
    ///     Bulkhead::new(Config::new(2), &clock).unwrap(),
    /// ]);
    /// assert_eq!(c.get(1).unwrap().metrics().max, 2);
    /// ```
    pub const fn new(parts: [Bulkhead<S, C>; N]) -> Self {
        Compartments {
            parts,
            _key: PhantomData,
        }
    }

    /// The compartment of `key`, if there is one.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Compartments, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let c: Compartments<usize, _, _, 1> = Compartments::new([Bulkhead::new(Config::new(1), &clock).unwrap()]);
    /// assert!(c.get(0).is_some() && c.get(1).is_none());
    /// ```
    pub fn get(&self, key: K) -> Option<&Bulkhead<S, C>> {
        self.parts.get(key.index())
    }

    /// Takes a permit of `key`'s compartment if one is free, at once.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`], or [`Rejected::NoSuchCompartment`].
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Compartments, Config, Rejected};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let c: Compartments<usize, _, _, 1> = Compartments::new([Bulkhead::new(Config::new(1), &clock).unwrap()]);
    /// assert_eq!(c.try_acquire(9).unwrap_err(), Rejected::NoSuchCompartment);
    /// ```
    pub fn try_acquire(&self, key: K) -> Result<Permit<&Bulkhead<S, C>>, Rejected> {
        match self.get(key) {
            Some(b) => b.try_acquire().map_err(Rejected::from),
            None => Err(Rejected::NoSuchCompartment),
        }
    }

    /// The counters of `key`'s compartment.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Compartments, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let c: Compartments<usize, _, _, 1> = Compartments::new([Bulkhead::new(Config::new(4), &clock).unwrap()]);
    /// assert_eq!(c.metrics(0).unwrap().max, 4);
    /// assert!(c.metrics(1).is_none());
    /// ```
    pub fn metrics(&self, key: K) -> Option<Metrics> {
        self.get(key).map(Bulkhead::metrics)
    }
}

impl<K: CompartmentKey, S: Semaphore, C: Sleep, const N: usize> Compartments<K, S, C, N> {
    /// Waits for a permit of `key`'s compartment (see [`Bulkhead::acquire`]).
    ///
    /// # Errors
    ///
    /// As [`Bulkhead::acquire`], or [`Rejected::NoSuchCompartment`].
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Compartments, Config, QueueSemaphore, Rejected};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let c: Compartments<usize, QueueSemaphore<2>, _, 1> =
    ///     Compartments::new([Bulkhead::queued(Config::new(1), &clock).unwrap()]);
    /// assert!(mock::run(&clock, c.acquire(0)).unwrap().is_ok());
    /// assert_eq!(mock::run(&clock, c.acquire(5)).unwrap().unwrap_err(), Rejected::NoSuchCompartment);
    /// ```
    pub fn acquire(&self, key: K) -> Acquire<&Bulkhead<S, C>, S, C> {
        Acquire::of(self.get(key))
    }
}

impl<K, S: fmt::Debug, C, const N: usize> fmt::Debug for Compartments<K, S, C, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.parts.iter()).finish()
    }
}
