//! The shared pool: [`Pool`], its [`Metrics`] and [`Totals`], and the slot storage.

use core::fmt;
use core::ops::Deref;

use super::config::Config;
use super::error::ConfigError;
use super::error::TryAcquireError;
use super::guard::PooledConnection;
use super::manager::Manager;
use crate::bulkhead::{QueueSemaphore, TrySemaphore};
use crate::lock::{Mutex, RawLock, SpinLock};
use crate::sync::{AtomicU64, AtomicUsize, Ordering, const_fn};
use crate::time::{Clock, Instant};

/// A snapshot of a pool's counters.
///
/// ```
/// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
/// use bulwark::{MockClock, mock};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = u8; type Error = ();
/// #     type Connect = core::future::Ready<Result<u8, ()>>;
/// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
/// # }
/// let clock = MockClock::new();
/// let pool: Pool<M, QueueSemaphore<4>, _, 2> = Pool::queued(M, Config::new(), &clock);
/// let c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
/// let m = pool.metrics();
/// assert_eq!((m.capacity, m.idle, m.in_use, pool.totals().created), (2, 0, 1, 1));
/// drop(c);
/// assert_eq!((pool.metrics().idle, pool.metrics().in_use), (1, 0));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metrics {
    /// Slots (`N`).
    pub capacity: usize,
    /// Idle connections waiting in their slots now.
    pub idle: usize,
    /// Connections handed out now (live [`PooledConnection`]s).
    pub in_use: usize,
}

/// A pool's totals since it was built: counts, never reset (wrapping).
///
/// ```
/// use bulwark::pool::Totals;
/// assert_eq!(Totals::default().created, 0);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Connections opened successfully, ever.
    pub created: u64,
    /// Connections discarded, ever: marked broken, [`Manager::has_broken`], failed
    /// [`Manager::is_valid`], past max lifetime or max idle.
    pub discarded: u64,
    /// Connect attempts that failed.
    pub connect_failed: u64,
    /// Acquires that had to wait for a free slot.
    pub waited: u64,
    /// Acquires that ran out of time ([`Error::Timeout`](super::Error::Timeout)).
    pub timed_out: u64,
}

/// An idle connection in its slot.
pub(super) struct Idle<T> {
    pub(super) conn: T,
    pub(super) created: Instant,
    pub(super) last_used: Instant,
}

/// A pool of at most `N` connections, opened lazily by a [`Manager`], reused while healthy.
///
/// * `M`: the [`Manager`] that opens and checks connections.
/// * `S`: the semaphore of `N` permits that bounds how many callers hold a slot at once:
///   [`QueueSemaphore`] (through [`Pool::queued`]) or a runtime adapter's
///   ([`Pool::with_semaphore`]). [`Pool::acquire`] waits through it, raced against a `Sleep`
///   deadline, exactly as [`Bulkhead::acquire`](crate::bulkhead::Bulkhead::acquire) does.
/// * `C`: the clock that times the acquire timeout, max lifetime and max idle.
/// * `N`: the number of slots; `N = 0` is a compile error.
/// * `L`: the slots' [lock strategy](crate::lock), [`SpinLock`] unless chosen.
///
/// # How it works
///
/// A caller first takes a permit (at most `N` are out), then takes the first idle connection
/// that is still fresh and passes [`Manager::is_valid`] out of its slot, or opens a new one.
/// Holding a permit guarantees room: every connection that exists is either idle in a slot
/// or held by a distinct permit holder, so there are never more than `N` connections, and a
/// returning connection always finds an empty slot. The guard puts the connection back into
/// a slot *before* its permit is given back. Slots are scanned from the first, so a lightly
/// loaded pool keeps reusing the same few connections and lets the rest age out.
///
/// Each slot is a [`Mutex`](crate::lock::Mutex) of lock strategy `L` (see
/// [`lock`](crate::lock)) around `Option<connection>`, held only to move a connection in or
/// out (never while user code runs: validation, `has_broken` and the connection's own
/// destructor run outside it).
///
/// # Interrupt handlers
///
/// A pool lives in tasks: acquiring awaits, and its manager connects. With the default
/// [`SpinLock`] do **not** touch it from an interrupt handler (an interrupt that spins on a
/// slot its own thread holds never returns). With
/// [`CriticalSectionLock`](crate::lock) (feature `critical-section`) its
/// non-waiting calls ([`try_acquire`](Pool::try_acquire), dropping a connection,
/// [`reap`](Pool::reap), [`metrics`](Pool::metrics)) may be made from an interrupt handler,
/// provided the semaphore and clock may be too (a [`QueueSemaphore`] with the same lock, as
/// [`Pool::queued`] builds, is) and so may the manager's `is_valid` and `has_broken` and the
/// connection's destructor. [`LocalLock`](crate::lock::LocalLock) makes it `!Sync` (one thread).
/// [`Pool::queued`] uses the same `L` for its [`QueueSemaphore`].
///
/// # Memory ordering
///
/// A connection is handed from one holder to the next through its slot's lock (Release on
/// unlock, Acquire on lock), so everything the previous holder did to it is visible to the
/// next. Counters in [`Totals`] are `Relaxed` statistics.
///
/// # Examples
///
/// ```
/// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
/// use bulwark::{MockClock, mock};
/// use core::cell::Cell;
/// use core::future::{Ready, ready};
///
/// struct Counter { opened: Cell<u32> }
/// impl Manager for Counter {
///     type Connection = u32; // the connection's serial number
///     type Error = ();
///     type Connect = Ready<Result<u32, ()>>;
///     fn connect(&self) -> Self::Connect {
///         self.opened.set(self.opened.get() + 1);
///         ready(Ok(self.opened.get()))
///     }
/// }
///
/// let clock = MockClock::new();
/// let pool: Pool<Counter, QueueSemaphore<8>, _, 4> =
///     Pool::queued(Counter { opened: Cell::new(0) }, Config::new(), &clock);
/// mock::run(&clock, async {
///     for _ in 0..10 {
///         let conn = pool.acquire().await.unwrap();
///         assert_eq!(*conn, 1); // the same connection every time
///     }
/// })
/// .unwrap();
/// assert_eq!(pool.totals().created, 1);
/// ```
pub struct Pool<M: Manager, S, C, const N: usize, L = SpinLock> {
    pub(super) manager: M,
    pub(super) sem: S,
    pub(super) clock: C,
    pub(super) cfg: Config,
    slots: [Mutex<L, Option<Idle<M::Connection>>>; N],
    in_use: AtomicUsize,
    pub(super) created: AtomicU64,
    discarded: AtomicU64,
    pub(super) connect_failed: AtomicU64,
    pub(super) waited: AtomicU64,
    pub(super) timed_out: AtomicU64,
}

impl<M: Manager, C: Clock, const N: usize, const Q: usize, L: RawLock>
    Pool<M, QueueSemaphore<Q, L>, C, N, L>
{
    const_fn! {
        /// A pool of `N` slots whose callers wait in a [`QueueSemaphore`] of `Q` wait slots
        /// (more waiters than `Q` are rejected: [`Error::QueueFull`](super::Error::QueueFull)).
        /// `const`: a pool can live in a `static`.
        ///
        /// ```
        /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
        /// use bulwark::MockClock;
        /// # struct M;
        /// # impl Manager for M {
        /// #     type Connection = u8; type Error = ();
        /// #     type Connect = core::future::Ready<Result<u8, ()>>;
        /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
        /// # }
        /// static CLOCK: MockClock = MockClock::new();
        /// static POOL: Pool<M, QueueSemaphore<16>, &MockClock, 4> =
        ///     Pool::queued(M, Config::new(), &CLOCK);
        /// assert_eq!(POOL.metrics().capacity, 4);
        /// ```
        ///
        /// A pool of no slots could never hand out a connection, so it does not compile:
        ///
        /// ```compile_fail
        /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
        /// use bulwark::MockClock;
        /// # struct M;
        /// # impl Manager for M {
        /// #     type Connection = u8; type Error = ();
        /// #     type Connect = core::future::Ready<Result<u8, ()>>;
        /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
        /// # }
        /// let clock = MockClock::new();
        /// let _empty: Pool<M, QueueSemaphore<16>, _, 0> = Pool::queued(M, Config::new(), &clock);
        /// ```
        pub fn queued(manager: M, cfg: Config, clock: C) -> Self {
            const {
                assert!(
                    N as u64 <= u32::MAX as u64,
                    "a queued pool has at most u32::MAX slots (N <= u32::MAX)"
                )
            };
            // `N > 0` is checked at compile time in `from_parts`, `N <= u32::MAX` above.
            let sem = QueueSemaphore::checked(N as u32, crate::bulkhead::Overflow::RejectNewest);
            Pool::from_parts(manager, sem, cfg, clock)
        }
    }
}

impl<M: Manager, S: TrySemaphore, C: Clock, const N: usize, L: RawLock> Pool<M, S, C, N, L> {
    /// A pool over any semaphore (a runtime adapter's). The semaphore bounds the callers
    /// holding a slot, so it may have at most `N` permits (fewer caps concurrency lower), and
    /// at least one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SemaphoreTooLarge`] when `sem.capacity() > N`;
    /// [`ConfigError::NoPermits`] when `sem.capacity() == 0` (every acquire would wait out
    /// its timeout).
    ///
    /// ```
    /// use bulwark::pool::{Config, ConfigError, Manager, Pool, QueueSemaphore};
    /// use bulwark::MockClock;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let ok = Pool::<_, _, _, 4>::with_semaphore(M, QueueSemaphore::<2>::new(3).unwrap(), Config::new(), &clock);
    /// assert!(ok.is_ok());
    /// let too_many = Pool::<_, _, _, 4>::with_semaphore(M, QueueSemaphore::<2>::new(5).unwrap(), Config::new(), &clock);
    /// assert_eq!(too_many.err().map(|e| e.to_string()), Some(ConfigError::SemaphoreTooLarge.to_string()));
    /// ```
    pub fn with_semaphore(manager: M, sem: S, cfg: Config, clock: C) -> Result<Self, ConfigError> {
        if sem.capacity() > N {
            return Err(ConfigError::SemaphoreTooLarge);
        }
        if sem.capacity() == 0 {
            return Err(ConfigError::NoPermits);
        }
        Ok(Pool::from_parts(manager, sem, cfg, clock))
    }

    /// An idle connection now, never waiting and never connecting.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Exhausted`] when every slot is held; [`TryAcquireError::NoIdle`]
    /// when a slot is free but holds no fresh, valid connection (a fresh pool has none: only
    /// [`acquire`](Pool::acquire) connects).
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore, TryAcquireError};
    /// use bulwark::{MockClock, mock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.try_acquire().err(), Some(TryAcquireError::NoIdle));
    /// drop(mock::run(&clock, pool.acquire()).unwrap().unwrap()); // connects, then idles
    /// let held = pool.try_acquire().unwrap();
    /// assert_eq!(pool.try_acquire().err(), Some(TryAcquireError::Exhausted));
    /// # drop(held);
    /// ```
    pub fn try_acquire(&self) -> Result<PooledConnection<&Self, M, S, C, N, L>, TryAcquireError> {
        PooledConnection::try_new(self)
    }

    /// Discards every idle connection past its max lifetime or max idle time now, and
    /// returns how many. Optional: stale connections are never handed out anyway; this only
    /// closes them sooner (call it from a periodic task).
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use core::time::Duration;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 2> =
    ///     Pool::queued(M, Config::new().max_idle(Duration::from_secs(10)), &clock);
    /// drop(mock::run(&clock, pool.acquire()).unwrap().unwrap());
    /// assert_eq!(pool.reap(), 0);
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(pool.reap(), 1);
    /// assert_eq!(pool.metrics().idle, 0);
    /// ```
    pub fn reap(&self) -> usize {
        let now = self.clock.now();
        let mut reaped = 0;
        for slot in &self.slots {
            let stale = slot.lock(|s| match s {
                Some(i) if !self.cfg.fresh(i.created, i.last_used, now) => s.take(),
                _ => None,
            });
            if let Some(idle) = stale {
                reaped += 1;
                self.discard(idle.conn);
            }
        }
        reaped
    }

    /// The counters.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::MockClock;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 3> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.metrics().capacity, 3);
    /// assert_eq!(pool.totals().created, 0); // lazy: nothing opened yet
    /// ```
    pub fn metrics(&self) -> Metrics {
        let idle = self
            .slots
            .iter()
            .filter(|s| s.lock(|s| s.is_some()))
            .count();
        // Relaxed: a statistic, not synchronization.
        Metrics {
            capacity: N,
            idle,
            in_use: self.in_use.load(Ordering::Relaxed),
        }
    }

    /// The counts since the pool was built.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
    /// drop(mock::run(&clock, pool.acquire()).unwrap().unwrap());
    /// assert_eq!((pool.totals().created, pool.totals().discarded), (1, 0));
    /// ```
    pub fn totals(&self) -> Totals {
        // Relaxed: statistics, not synchronization.
        Totals {
            created: self.created.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            connect_failed: self.connect_failed.load(Ordering::Relaxed),
            waited: self.waited.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    /// The manager.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::MockClock;
    /// # #[derive(Debug, PartialEq)] struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 3> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.manager(), &M);
    /// ```
    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// The semaphore.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::bulkhead::TrySemaphore;
    /// use bulwark::MockClock;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 3> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.semaphore().available(), 3);
    /// ```
    pub fn semaphore(&self) -> &S {
        &self.sem
    }

    /// The clock.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::{Clock, Instant, MockClock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 3> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.clock().now(), Instant::ZERO);
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The configuration.
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::MockClock;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<1>, _, 3> = Pool::queued(M, Config::new(), &clock);
    /// assert_eq!(pool.config(), Config::new());
    /// ```
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Takes the first idle connection that is fresh and valid out of its slot, discarding
    /// the stale and invalid ones it meets. The caller holds a permit.
    pub(super) fn take_idle(&self, now: Instant) -> Option<Idle<M::Connection>> {
        for slot in &self.slots {
            // Only the move happens under the slot lock; user code runs after.
            let Some(mut idle) = slot.lock(Option::take) else {
                continue;
            };
            if self.cfg.fresh(idle.created, idle.last_used, now)
                && self.manager.is_valid(&mut idle.conn)
            {
                return Some(idle);
            }
            self.discard(idle.conn);
        }
        None
    }

    /// Wraps a connection in its guard, which takes over the caller's semaphore permit and
    /// reaches the pool through `pool`.
    pub(super) fn hand_out<R: Deref<Target = Self>>(
        pool: R,
        conn: M::Connection,
        created: Instant,
    ) -> PooledConnection<R, M, S, C, N, L> {
        // Relaxed: a statistic.
        pool.in_use.fetch_add(1, Ordering::Relaxed);
        PooledConnection::new(pool, conn, created)
    }

    /// A guard gives its connection back (before its permit). Discards it when marked
    /// broken, when [`Manager::has_broken`] says so, or past its max lifetime; otherwise parks
    /// it in the first empty slot.
    pub(super) fn check_in(&self, mut conn: M::Connection, created: Instant, broken: bool) {
        // Relaxed: a statistic. First, so that a panicking `has_broken` cannot skip it.
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        let now = self.clock.now();
        if broken || !self.cfg.fresh(created, now, now) || self.manager.has_broken(&mut conn) {
            self.discard(conn);
            return;
        }
        let mut item = Some(Idle {
            conn,
            created,
            last_used: now,
        });
        for slot in &self.slots {
            slot.lock(|s| {
                if s.is_none() {
                    *s = item.take();
                }
            });
            if item.is_none() {
                return;
            }
        }
        // Every slot full: impossible while each connection outside the slots belongs to a
        // distinct permit holder (see the type's docs). Close it rather than panic.
        if let Some(idle) = item {
            self.discard(idle.conn);
        }
    }

    /// Closes a connection (its destructor runs here, outside every lock).
    pub(super) fn discard(&self, conn: M::Connection) {
        // Relaxed: a statistic.
        self.discarded.fetch_add(1, Ordering::Relaxed);
        drop(conn);
    }
}

impl<M: Manager, S, C, const N: usize, L: RawLock> Pool<M, S, C, N, L> {
    const_fn! {
        fn from_parts(manager: M, sem: S, cfg: Config, clock: C) -> Self {
            const { assert!(N > 0, "a pool needs at least one slot (N > 0)") };
            Pool {
                manager,
                sem,
                clock,
                cfg,
                slots: slots_array(),
                in_use: AtomicUsize::new(0),
                created: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
                connect_failed: AtomicU64::new(0),
                waited: AtomicU64::new(0),
                timed_out: AtomicU64::new(0),
            }
        }
    }
}

impl<M: Manager, S: fmt::Debug, C, const N: usize, L> fmt::Debug for Pool<M, S, C, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &N)
            .field("sem", &self.sem)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// `N` empty, unlocked slots (a `const` array outside loom, whose atomics are not `const`).
#[cfg(not(loom))]
const fn slots_array<L: RawLock, T, const N: usize>() -> [Mutex<L, Option<T>>; N] {
    [const { Mutex::new(None) }; N]
}

#[cfg(loom)]
fn slots_array<L: RawLock, T, const N: usize>() -> [Mutex<L, Option<T>>; N] {
    core::array::from_fn(|_| Mutex::new(None))
}
