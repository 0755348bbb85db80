//! The shared bulkhead: [`Bulkhead`], its [`Config`], [`Metrics`] and [`Totals`].

use core::fmt;
use core::time::Duration;

use super::Events;
use super::config::Config;
use super::error::{BulkheadFull, ConfigError, Rejected};
use super::state::{AtomicSemaphore, QueueSemaphore, Resize, Semaphore, TrySemaphore};
use crate::admission::{Admit, Outcome, Permit};
use crate::lock::RawLock;
use crate::sync::{AtomicU64, Ordering, const_fn};
use crate::time::{Clock, duration_to_nanos};

/// A snapshot of a bulkhead's counters.
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Config};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
/// let _p = b.try_acquire().unwrap();
/// let m = b.metrics();
/// assert_eq!((m.in_use, m.max), (1, 1));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metrics {
    /// Permits held now.
    pub in_use: usize,
    /// The limit.
    pub max: usize,
}

/// A bulkhead's totals since it was built: counts, never reset (wrapping).
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Config, Totals};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
/// let _p = b.try_acquire().unwrap();
/// let _ = b.try_acquire();
/// assert_eq!(b.totals(), Totals { rejected: 1, waited: 0, timed_out: 0 });
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Calls rejected without a permit (full, queue full, shed, timed out).
    pub rejected: u64,
    /// Calls that had to wait (whatever the outcome).
    pub waited: u64,
    /// Calls that waited the whole max wait without getting a permit (also in `rejected`).
    pub timed_out: u64,
}

/// A bulkhead: at most a set number of calls at once, each holding a [`Permit`].
///
/// `S` is the [`TrySemaphore`] counting the permits: [`AtomicSemaphore`] (lock-free, never
/// waits: [`new`](Bulkhead::new)), [`QueueSemaphore`] (waits in a bounded queue:
/// [`queued`](Bulkhead::queued)), or a runtime adapter's ([`with_semaphore`](Bulkhead::with_semaphore)).
/// `C` is the clock that bounds the wait. `E` are the [`Events`] it tells (none by default;
/// [`with_events`](Bulkhead::with_events)).
///
/// # Memory ordering
///
/// Permits synchronize through the semaphore (see [`AtomicSemaphore`]). The counters of
/// [`Totals`] are `Relaxed` statistics, touched only on the rejecting and waiting paths.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
/// use bulwark::MockClock;
///
/// let clock = MockClock::new();
/// let bulkhead = Bulkhead::new(Config::new(2), &clock).unwrap();
/// let a = bulkhead.try_acquire().unwrap();
/// let b = bulkhead.try_acquire().unwrap();
/// assert_eq!(bulkhead.try_acquire().unwrap_err(), BulkheadFull);
/// drop(a); // permits are given back on drop
/// assert!(bulkhead.try_acquire().is_ok());
/// # drop(b);
/// ```
pub struct Bulkhead<S, C, E = ()> {
    pub(super) sem: S,
    pub(super) clock: C,
    pub(super) events: E,
    /// Nanoseconds (saturating), changed through `&self` by `set_max_wait`.
    pub(super) max_wait: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) waited: AtomicU64,
    pub(super) timed_out: AtomicU64,
}

impl<C: Clock> Bulkhead<AtomicSemaphore, C> {
    const_fn! {
        /// A bulkhead that never waits: a call gets a permit at once or is shed
        /// ([`Rejected::Full`](super::Rejected::Full)). The config's max wait and overflow do
        /// not apply.
        ///
        /// # Errors
        ///
        /// [`ConfigError`] for a zero or too large limit.
        ///
        /// ```
        /// use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, Config, ConfigError};
        /// use bulwark::MockClock;
        /// static CLOCK: MockClock = MockClock::new();
        /// static EMAIL: Result<Bulkhead<AtomicSemaphore, &MockClock>, ConfigError> =
        ///     Bulkhead::new(Config::new(5), &CLOCK);
        /// assert!(EMAIL.as_ref().unwrap().try_acquire().is_ok());
        /// ```
        pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
            if let Err(e) = cfg.validate() {
                // A `const fn` cannot run `C`'s destructor; clocks are references or handles,
                // so not dropping one on a configuration error is harmless.
                core::mem::forget(clock);
                return Err(e);
            }
            match AtomicSemaphore::new(cfg.max_concurrent) {
                Ok(sem) => Ok(Self::from_parts(sem, cfg.max_wait, clock)),
                Err(e) => {
                    // As above (unreachable: `validate` checked the same limits).
                    core::mem::forget(clock);
                    Err(e)
                }
            }
        }
    }
}

impl<C: Clock, const Q: usize, L: RawLock> Bulkhead<QueueSemaphore<Q, L>, C> {
    const_fn! {
        /// A bulkhead whose callers wait up to the config's max wait, at most `Q` at a time;
        /// the config's [`Overflow`](super::Overflow) decides who is shed when more want to wait.
        ///
        /// # Errors
        ///
        /// [`ConfigError`] for a zero or too large limit.
        ///
        /// ```
        /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore};
        /// use bulwark::MockClock;
        /// use core::time::Duration;
        /// let clock = MockClock::new();
        /// let b: Bulkhead<QueueSemaphore<16>, _> =
        ///     Bulkhead::queued(Config::new(4).max_wait(Duration::from_millis(100)), &clock).unwrap();
        /// assert_eq!(b.metrics().max, 4);
        /// ```
        pub fn queued(cfg: Config, clock: C) -> Result<Self, ConfigError> {
            if let Err(e) = cfg.validate() {
                // As in `Bulkhead::new`.
                core::mem::forget(clock);
                return Err(e);
            }
            // `validate` checked 1 ≤ max_concurrent ≤ u32::MAX, what `QueueSemaphore::new`
            // checks (its `Result` cannot be dropped in a `const fn`, so not called here).
            let sem = QueueSemaphore::checked(cfg.max_concurrent as u32, cfg.overflow);
            Ok(Self::from_parts(sem, cfg.max_wait, clock))
        }
    }
}

impl<S: TrySemaphore, C: Clock> Bulkhead<S, C> {
    const_fn! {
        /// A bulkhead over any semaphore (a runtime adapter's), waiting up to `max_wait`.
        /// The limit is the semaphore's: the core's semaphores refuse zero permits when they
        /// are built ([`AtomicSemaphore::new`], [`QueueSemaphore::new`]); give an adapter's
        /// semaphore at least one permit too, or every call is rejected.
        ///
        /// ```
        /// use bulwark::bulkhead::{AtomicSemaphore, Bulkhead};
        /// use bulwark::MockClock;
        /// use core::time::Duration;
        /// let clock = MockClock::new();
        /// let b = Bulkhead::with_semaphore(AtomicSemaphore::new(3).unwrap(), Duration::ZERO, &clock);
        /// assert_eq!(b.metrics().max, 3);
        /// ```
        pub fn with_semaphore(sem: S, max_wait: Duration, clock: C) -> Self {
            Self::from_parts(sem, max_wait, clock)
        }
    }
}

impl<S: TrySemaphore, C: Clock, E: Events> Bulkhead<S, C, E> {
    /// Takes a permit if one is free, at once. With [`AtomicSemaphore`] this is one atomic
    /// CAS and never blocks: usable from an interrupt handler (see
    /// [Interrupt handlers](crate#interrupt-handlers) for targets without 64-bit atomics).
    ///
    /// # Errors
    ///
    /// [`BulkheadFull`] when every permit is held (counted in [`Totals::rejected`]).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
    /// let p = b.try_acquire().unwrap();
    /// assert!(b.try_acquire().is_err());
    /// drop(p);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<&Self>, BulkheadFull> {
        Permit::try_new(self)
    }

    /// The gauges: permits held now, and the limit.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(3), &clock).unwrap();
    /// let _p = b.try_acquire().unwrap();
    /// assert_eq!((b.metrics().in_use, b.metrics().max), (1, 3));
    /// ```
    pub fn metrics(&self) -> Metrics {
        Metrics {
            in_use: self.sem.in_use(),
            max: self.sem.capacity(),
        }
    }

    /// The counts since the bulkhead was built.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(1), &clock).unwrap();
    /// let _p = b.try_acquire().unwrap();
    /// assert!(b.try_acquire().is_err());
    /// assert_eq!(b.totals().rejected, 1);
    /// ```
    pub fn totals(&self) -> Totals {
        // Relaxed: statistics, not synchronization.
        Totals {
            rejected: self.rejected.load(Ordering::Relaxed),
            waited: self.waited.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    /// The semaphore.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, TrySemaphore};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(3), &clock).unwrap();
    /// assert_eq!(b.semaphore().available(), 3);
    /// ```
    pub fn semaphore(&self) -> &S {
        &self.sem
    }

    /// The clock.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::{Clock, Instant, MockClock};
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(3), &clock).unwrap();
    /// assert_eq!(b.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<S: Resize, C, E> Bulkhead<S, C, E> {
    /// Changes the most calls admitted at once, through `&self`, keeping every count and
    /// permit (resilience4j's `changeConfig`, here without a new bulkhead). Growing admits
    /// waiters at once; shrinking below the permits in use drains gracefully: held permits
    /// stay valid, and no call is admitted until the calls in flight fit the new limit.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for 0, [`ConfigError::TooLarge`] above what the
    /// semaphore counts; the limit is then unchanged.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, Metrics};
    /// use bulwark::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(3), &clock).unwrap();
    /// let (p1, p2) = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    /// b.set_max_concurrent(1).unwrap(); // two in flight, one allowed
    /// assert_eq!(b.metrics(), Metrics { in_use: 2, max: 1 });
    /// drop(p1);
    /// assert!(b.try_acquire().is_err()); // still draining: one in flight is the limit
    /// drop(p2);
    /// let p3 = b.try_acquire().unwrap();
    /// assert_eq!(b.metrics(), Metrics { in_use: 1, max: 1 });
    /// # drop(p3);
    /// ```
    pub fn set_max_concurrent(&self, max_concurrent: usize) -> Result<(), ConfigError> {
        self.sem.resize(max_concurrent)
    }
}

impl<S: Semaphore, C, E> Bulkhead<S, C, E> {
    /// Changes the longest a call waits for a permit, through `&self`. Calls already waiting
    /// see it at once (they are woken and measure the new wait from when they started): a
    /// shorter wait that has already passed rejects them now with
    /// [`Rejected::Timeout`](super::Rejected::Timeout), a longer one keeps them waiting.
    /// (With a semaphore that cannot wake its waiters, at their next poll.)
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore, Rejected};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    ///
    /// let clock = MockClock::new();
    /// let b: Bulkhead<QueueSemaphore<4>, _> =
    ///     Bulkhead::queued(Config::new(1).max_wait(Duration::from_secs(1)), &clock).unwrap();
    /// let _held = b.try_acquire().unwrap();
    /// b.set_max_wait(Duration::from_secs(3));
    /// assert_eq!(b.max_wait(), Duration::from_secs(3));
    /// let out = mock::run(&clock, b.acquire()).unwrap();
    /// assert!(matches!(out, Err(Rejected::Timeout)));
    /// assert_eq!(clock.now(), Instant::from_secs(3));
    /// ```
    pub fn set_max_wait(&self, max_wait: Duration) {
        // Release: pairs with the Acquire load of a waiter that measures its deadline.
        self.max_wait
            .store(duration_to_nanos(max_wait), Ordering::Release);
        self.sem.wake_all();
    }
}

impl<S, C, E> Bulkhead<S, C, E> {
    /// The same bulkhead telling `events` when a call is permitted, rejected, and finished
    /// (resilience4j's `CALL_PERMITTED`, `CALL_REJECTED`, `CALL_FINISHED`); `&E` and `(A, B)`
    /// are events too. Counts and permits are kept.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, Events, Rejected};
    /// use bulwark::MockClock;
    /// use core::cell::Cell;
    ///
    /// #[derive(Default)]
    /// struct Tally { permitted: Cell<u32>, rejected: Cell<u32>, finished: Cell<u32> }
    /// impl Events for Tally {
    ///     fn on_permitted(&self) { self.permitted.set(self.permitted.get() + 1) }
    ///     fn on_rejected(&self, _why: Rejected) { self.rejected.set(self.rejected.get() + 1) }
    ///     fn on_finished(&self) { self.finished.set(self.finished.get() + 1) }
    /// }
    /// let clock = MockClock::new();
    /// let tally = Tally::default();
    /// let b = Bulkhead::new(Config::new(1), &clock).unwrap().with_events(&tally);
    /// let p = b.try_acquire().unwrap();
    /// assert!(b.try_acquire().is_err());
    /// drop(p);
    /// assert_eq!((tally.permitted.get(), tally.rejected.get(), tally.finished.get()), (1, 1, 1));
    /// ```
    pub fn with_events<E2: Events>(self, events: E2) -> Bulkhead<S, C, E2> {
        Bulkhead {
            sem: self.sem,
            clock: self.clock,
            events,
            max_wait: self.max_wait,
            rejected: self.rejected,
            waited: self.waited,
            timed_out: self.timed_out,
        }
    }

    /// The longest a call waits for a permit now (see
    /// [`set_max_wait`](Bulkhead::set_max_wait)).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use bulwark::MockClock;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let b = Bulkhead::new(Config::new(2).max_wait(Duration::from_millis(50)), &clock).unwrap();
    /// assert_eq!(b.max_wait(), Duration::from_millis(50));
    /// ```
    pub fn max_wait(&self) -> Duration {
        // Acquire: pairs with the Release store of `set_max_wait`.
        Duration::from_nanos(self.max_wait.load(Ordering::Acquire))
    }

    pub(super) fn count_rejected(&self) {
        // Relaxed: a statistic.
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    const_fn! {
        fn from_parts(sem: S, max_wait: Duration, clock: C) -> Bulkhead<S, C> {
            Bulkhead {
                sem,
                clock,
                events: (),
                max_wait: AtomicU64::new(duration_to_nanos(max_wait)),
                rejected: AtomicU64::new(0),
                waited: AtomicU64::new(0),
                timed_out: AtomicU64::new(0),
            }
        }
    }
}

impl<S: fmt::Debug, C, E> fmt::Debug for Bulkhead<S, C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("sem", &self.sem)
            .field("max_wait", &self.max_wait())
            .finish_non_exhaustive()
    }
}

/// The bulkhead as a gate: a call holds one permit while it runs, whatever its outcome; the
/// permit is given back when the call is recorded or released (its [`Permit`] dropped, also
/// when the call's future is dropped, panics or is cancelled). There is no `forget`: a permit
/// that is never given back would shrink the bulkhead for good.
///
/// ```
/// use bulwark::admission::Permit;
/// use bulwark::bulkhead::{Bulkhead, Config};
/// use bulwark::MockClock;
/// use std::sync::Arc;
/// let clock = MockClock::new();
/// let b = Arc::new(Bulkhead::new(Config::new(1), &clock).unwrap());
/// {
///     let _permit = Permit::try_new(Arc::clone(&b)).unwrap(); // an owned permit
///     assert_eq!(b.metrics().in_use, 1);
/// }
/// assert_eq!(b.metrics().in_use, 0);
/// ```
impl<S: TrySemaphore, C, E: Events> Admit for Bulkhead<S, C, E> {
    type Ticket = ();
    type Rejected = BulkheadFull;

    #[inline]
    fn try_admit(&self) -> Result<(), BulkheadFull> {
        if self.sem.try_take() {
            self.events.on_permitted();
            Ok(())
        } else {
            self.count_rejected();
            self.events.on_rejected(Rejected::Full);
            Err(BulkheadFull)
        }
    }

    #[inline]
    fn record(&self, (): (), _: Outcome) {
        self.sem.give_back();
        self.events.on_finished();
    }

    #[inline]
    fn release(&self, (): ()) {
        self.sem.give_back();
        self.events.on_finished();
    }
}
