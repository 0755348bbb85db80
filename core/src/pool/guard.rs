//! The RAII guard of a checked-out connection: [`PooledConnection`].

use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

use super::error::TryAcquireError;
use super::manager::Manager;
use super::shared::Pool;
use crate::bulkhead::TrySemaphore;
use crate::lock::{RawLock, SpinLock};
use crate::time::{Clock, Instant};

/// A connection checked out of a [`Pool`]: derefs to the connection and gives it back on
/// drop.
///
/// On drop the connection goes back to an idle slot, unless it was marked broken
/// ([`mark_broken`](PooledConnection::mark_broken)), [`Manager::has_broken`] says so, or it
/// is past the max lifetime: then it is closed. Either way the slot's permit is given back
/// *after* the connection is parked or closed, so there are never more than `N` connections.
/// Every drop counts, including one during a panic's unwinding (`no_std` cannot tell): a
/// connection a panicking caller leaves half-used is returned unless marked broken first.
///
/// # Examples
///
/// ```
/// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
/// use bulwark::{MockClock, mock};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = Vec<u8>; type Error = ();
/// #     type Connect = core::future::Ready<Result<Vec<u8>, ()>>;
/// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(Vec::new())) }
/// # }
/// let clock = MockClock::new();
/// let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
/// let mut conn = mock::run(&clock, pool.acquire()).unwrap().unwrap();
/// conn.push(42); // DerefMut to the connection
/// drop(conn); // back to the pool
/// assert_eq!(*pool.try_acquire().unwrap(), [42]);
/// ```
#[must_use = "the connection goes back to the pool as soon as the guard is dropped"]
pub struct PooledConnection<R, M, S, C, const N: usize, L: RawLock = SpinLock>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    pool: R,
    /// Initialised from `new` until `drop` takes it out (exactly once).
    conn: ManuallyDrop<M::Connection>,
    created: Instant,
    broken: bool,
}

impl<R, M, S, C, const N: usize, L: RawLock> PooledConnection<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    /// An idle connection of the pool `pool` points to, at once: what [`Pool::try_acquire`]
    /// returns, for any owner of the pool (an `Arc`, a `&'static`), so that the guard can be
    /// `'static`.
    ///
    /// # Errors
    ///
    /// As [`Pool::try_acquire`].
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, PooledConnection, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(5)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool = Arc::new(Pool::<M, QueueSemaphore<1>, _, 1>::queued(M, Config::new(), &clock));
    /// drop(mock::run(&clock, pool.acquire()).unwrap().unwrap()); // one idle connection
    /// let conn = PooledConnection::try_new(Arc::clone(&pool)).unwrap();
    /// assert_eq!(*conn, 5);
    /// ```
    pub fn try_new(pool: R) -> Result<Self, TryAcquireError> {
        let idle = {
            let p: &Pool<M, S, C, N, L> = &pool;
            if !p.sem.try_take() {
                return Err(TryAcquireError::Exhausted);
            }
            // Given back if no idle connection is found, and if a user's `is_valid` panics.
            let permit = OwedPermit::new(&p.sem);
            let idle = p.take_idle(p.clock.now()).ok_or(TryAcquireError::NoIdle)?;
            permit.keep();
            idle
        };
        Ok(Pool::hand_out(pool, idle.conn, idle.created))
    }

    pub(super) fn new(pool: R, conn: M::Connection, created: Instant) -> Self {
        PooledConnection {
            pool,
            conn: ManuallyDrop::new(conn),
            created,
            broken: false,
        }
    }

    /// Marks the connection broken: it is closed on drop instead of returned (its slot is
    /// freed for a new connection). Call it when a request on it failed in a way that leaves
    /// the connection in an unknown state.
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
    /// let mut conn = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    /// conn.mark_broken();
    /// assert!(conn.is_marked_broken());
    /// drop(conn);
    /// assert_eq!((pool.metrics().idle, pool.totals().discarded), (0, 1));
    /// ```
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether [`mark_broken`](PooledConnection::mark_broken) was called.
    ///
    /// ```
    /// # use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// # use bulwark::{MockClock, mock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// # let clock = MockClock::new();
    /// # let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
    /// let conn = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    /// assert!(!conn.is_marked_broken());
    /// ```
    pub fn is_marked_broken(&self) -> bool {
        self.broken
    }

    /// Closes the connection now and frees its slot: [`mark_broken`](PooledConnection::mark_broken)
    /// and drop in one call.
    ///
    /// ```
    /// # use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// # use bulwark::{MockClock, mock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// # let clock = MockClock::new();
    /// # let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
    /// let conn = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    /// conn.discard();
    /// assert_eq!(pool.totals().discarded, 1);
    /// assert_eq!(pool.metrics().in_use, 0);
    /// ```
    pub fn discard(mut self) {
        self.broken = true;
    }

    /// When the connection was opened (on the pool's clock).
    ///
    /// ```
    /// # use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// # use bulwark::{Instant, MockClock, mock};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// # let clock = MockClock::new();
    /// # let pool: Pool<M, QueueSemaphore<1>, _, 1> = Pool::queued(M, Config::new(), &clock);
    /// clock.set(Instant::from_secs(3));
    /// let conn = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    /// assert_eq!(conn.created_at(), Instant::from_secs(3));
    /// ```
    pub fn created_at(&self) -> Instant {
        self.created
    }
}

impl<R, M, S, C, const N: usize, L: RawLock> Deref for PooledConnection<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn
    }
}

impl<R, M, S, C, const N: usize, L: RawLock> DerefMut for PooledConnection<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn
    }
}

impl<R, M, S, C, const N: usize, L: RawLock> Drop for PooledConnection<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    fn drop(&mut self) {
        // SAFETY: `conn` was initialised in `new` and is only ever taken here; `drop` runs at
        // most once, and nothing reads `conn` after this line (the fields left to drop are
        // plain data, and `ManuallyDrop` does not drop its contents). So the value
        // is moved out exactly once and never used again.
        let conn = unsafe { ManuallyDrop::take(&mut self.conn) };
        // The slot's permit is given back last, once the connection is parked or closed, and
        // also if `check_in` panics (a user's `has_broken`).
        let _slot = OwedPermit::new(&self.pool.sem);
        self.pool.check_in(conn, self.created, self.broken);
    }
}

/// A semaphore permit owed back: given back when dropped (on unwinding too), unless
/// [`keep`](OwedPermit::keep) hands it on.
pub(super) struct OwedPermit<'a, S: TrySemaphore> {
    sem: Option<&'a S>,
}

impl<'a, S: TrySemaphore> OwedPermit<'a, S> {
    /// A permit just taken from `sem`.
    pub(super) fn new(sem: &'a S) -> Self {
        OwedPermit { sem: Some(sem) }
    }

    /// The permit passes to a new owner (a connection guard): not given back here.
    pub(super) fn keep(mut self) {
        self.sem = None;
    }
}

impl<S: TrySemaphore> Drop for OwedPermit<'_, S> {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take() {
            sem.give_back();
        }
    }
}

impl<R, M, S, C, const N: usize, L: RawLock> fmt::Debug for PooledConnection<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("conn", &*self.conn)
            .field("created", &self.created)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}
