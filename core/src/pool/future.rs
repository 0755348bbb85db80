//! Waiting for a connection: [`Pool::acquire`].

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::error::Error;
use super::guard::PooledConnection;
use super::manager::Manager;
use super::shared::Pool;
use crate::bulkhead::{Semaphore, TrySemaphore};
use crate::lock::RawLock;
use crate::sync::Ordering;
use crate::time::{Clock, Instant, Sleep};

impl<M: Manager, S: Semaphore, C: Sleep, const N: usize, L: RawLock> Pool<M, S, C, N, L> {
    /// Checks out a connection: an idle one if a fresh, valid one is there, else a new one
    /// from [`Manager::connect`]. Waits for a free slot through the semaphore when all `N`
    /// are held. Waiting and connecting together are bounded by the config's timeout, raced
    /// against a `Sleep` until `first poll + timeout` (the pattern of
    /// [`Bulkhead::acquire`](crate::bulkhead::Bulkhead::acquire)); a slot that frees up at
    /// the deadline itself still wins.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (at exactly the deadline), [`Error::Connect`] with the manager's
    /// error, [`Error::QueueFull`] / [`Error::Shed`] / [`Error::Closed`] from the semaphore.
    ///
    /// # Cancellation
    ///
    /// Dropping the future leaves the wait queue, or drops the connect future (cancelling the
    /// attempt) and then gives the slot back. It never leaks a slot.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::pool::{Config, Error, Manager, Pool, QueueSemaphore};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<4>, _, 1> =
    ///     Pool::queued(M, Config::new().timeout(Duration::from_millis(250)), &clock);
    /// let held = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    /// // The only slot is held: the next caller waits 250 ms, then gives up.
    /// let err = mock::run(&clock, pool.acquire()).unwrap().unwrap_err();
    /// assert_eq!(err, Error::Timeout);
    /// assert_eq!(clock.now(), Instant::from_millis(250));
    /// drop(held);
    /// assert!(mock::run(&clock, pool.acquire()).unwrap().is_ok());
    /// assert_eq!(pool.totals().created, 1);
    /// ```
    pub fn acquire(&self) -> Acquire<&Self> {
        PoolAcquire::new(self)
    }
}

impl<R> PoolAcquire<R, <R::Target as Slots>::Connect, <R::Target as Slots>::Sleep>
where
    R: Deref,
    R::Target: Slots,
{
    /// A checkout from the pool `pool` points to: what [`Pool::acquire`] returns, for any
    /// owner of the pool (an `Arc`, a `&'static`), so that the future and the connection it
    /// yields can be `'static`.
    ///
    /// ```
    /// use bulwark::pool::{Acquire, Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(3)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool = Arc::new(Pool::<M, QueueSemaphore<4>, _, 2>::queued(M, Config::new(), &clock));
    /// let conn = mock::run(&clock, Acquire::new(Arc::clone(&pool))).unwrap().unwrap();
    /// assert_eq!((*conn, pool.metrics().in_use), (3, 1));
    /// drop(conn);
    /// assert_eq!(Arc::strong_count(&pool), 1);
    /// ```
    pub fn new(pool: R) -> Self {
        PoolAcquire {
            pool: Some(pool),
            deadline: None,
            done: false,
            waiting: false,
            waiter: Default::default(),
            connect: None,
            sleep: None,
            permit: false,
        }
    }
}

/// The future of [`Pool::acquire`]. `Send` when the manager's connect future, the
/// semaphore's wait future, the clock's sleep, the permit and the connection are.
///
/// An alias of [`PoolAcquire`], which spells out the parts (pin-project-lite, which
/// projects the pinned fields without `unsafe`, takes no const generics).
///
/// ```
/// use bulwark::pool::{Acquire, Config, Manager, Pool, QueueSemaphore};
/// use bulwark::{MockClock, mock};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = u8; type Error = ();
/// #     type Connect = core::future::Ready<Result<u8, ()>>;
/// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
/// # }
/// let clock = MockClock::new();
/// let pool: Pool<M, QueueSemaphore<4>, _, 2> = Pool::queued(M, Config::new(), &clock);
/// let fut: Acquire<&Pool<M, QueueSemaphore<4>, &MockClock, 2>> = pool.acquire();
/// fn is_send<T: Send>(_: &T) {}
/// is_send(&fut);
/// assert_eq!(*mock::run(&clock, fut).unwrap().unwrap(), 1);
/// ```
pub type Acquire<R> = PoolAcquire<
    R,
    <<R as Deref>::Target as Slots>::Connect,
    <<R as Deref>::Target as Slots>::Sleep,
>;

pin_project! {
    /// The future behind [`Acquire`]: `R` the owner of the pool, `K` the connect, `Z` the
    /// sleep. Name it through [`Acquire`].
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
    /// let pool: Pool<M, QueueSemaphore<4>, _, 2> = Pool::queued(M, Config::new(), &clock);
    /// assert!(format!("{:?}", pool.acquire()).starts_with("Acquire"));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct PoolAcquire<R, K, Z>
    where
        R: Deref,
        R::Target: Slots,
    {
        // `None` once the connection is handed out (the guard owns it then).
        pool: Option<R>,
        deadline: Option<Instant>,
        done: bool,
        waiting: bool,
        #[pin]
        waiter: <R::Target as Slots>::Waiter,
        #[pin]
        connect: Option<K>,
        #[pin]
        sleep: Option<Z>,
        // A semaphore permit is held (owed back to the pool's semaphore).
        permit: bool,
    }

    impl<R, K, Z> PinnedDrop for PoolAcquire<R, K, Z>
    where
        R: Deref,
        R::Target: Slots,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Cancelled: leave the wait queue, cancel the connect, then free the slot (in
            // that order).
            let Some(pool) = this.pool.as_ref() else {
                return;
            };
            if *this.waiting {
                pool.cancel(this.waiter);
            }
            this.connect.set(None);
            if *this.permit {
                pool.give_back();
            }
        }
    }
}

/// What a pool's acquire future needs of its pool while it is dropped: leave the semaphore's
/// queue, give a slot's permit back. Implemented by [`Pool`].
///
/// ```
/// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore, Slots};
/// use bulwark::MockClock;
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = u8; type Error = ();
/// #     type Connect = core::future::Ready<Result<u8, ()>>;
/// #     fn connect(&self) -> Self::Connect { core::future::ready(Ok(1)) }
/// # }
/// fn waits_on<P: Slots>(_: &P) {}
/// let clock = MockClock::new();
/// waits_on(&Pool::<M, QueueSemaphore<1>, _, 1>::queued(M, Config::new(), &clock));
/// ```
pub trait Slots {
    /// A waiter's place in the queue.
    type Waiter: Default;
    /// The connect future.
    type Connect;
    /// The sleep bounding the wait.
    type Sleep;
    /// Leaves the queue.
    fn cancel(&self, waiter: Pin<&mut Self::Waiter>);
    /// Gives a permit back.
    fn give_back(&self);
}

impl<M: Manager, S: Semaphore, C: Sleep, const N: usize, L: RawLock> Slots for Pool<M, S, C, N, L> {
    type Waiter = S::Waiter;
    type Connect = M::Connect;
    type Sleep = C::Sleep;
    fn cancel(&self, waiter: Pin<&mut S::Waiter>) {
        self.sem.cancel(waiter);
    }
    fn give_back(&self) {
        self.sem.give_back();
    }
}

impl<R, M, S, C, const N: usize, L: RawLock> Future for PoolAcquire<R, M::Connect, C::Sleep>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: Semaphore,
    C: Sleep,
{
    type Output = Checkout<R, M, S, C, N, L>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(pool) = this.pool.as_ref() else {
            return Poll::Pending; // polled after completion
        };
        let pool: &Pool<M, S, C, N, L> = pool;
        if *this.done {
            return Poll::Pending; // polled after completion
        }
        let deadline = *this
            .deadline
            .get_or_insert_with(|| pool.clock.now().saturating_add(pool.cfg.timeout_duration()));

        // 1. A slot: at once, or through the semaphore's wait queue.
        if !*this.permit && !*this.waiting {
            if pool.sem.try_take() {
                *this.permit = true;
            } else {
                // Relaxed: a statistic.
                pool.waited.fetch_add(1, Ordering::Relaxed);
                *this.waiting = true;
            }
        }
        if *this.waiting
            && let Poll::Ready(r) = pool.sem.poll_take(this.waiter.as_mut(), cx)
        {
            *this.waiting = false;
            match r {
                Ok(()) => *this.permit = true,
                Err(e) => {
                    *this.done = true;
                    this.sleep.set(None);
                    return Poll::Ready(Err(e.into()));
                }
            }
        }

        // 2. With a slot and no connect under way: reuse an idle connection, or connect.
        if this.connect.is_none() && *this.permit {
            if let Some(idle) = pool.take_idle(pool.clock.now()) {
                *this.done = true;
                *this.permit = false; // the guard owns it now
                this.sleep.set(None);
                return Poll::Ready(hand_out(this.pool, idle.conn, idle.created));
            }
            this.connect.set(Some(pool.manager.connect()));
        }
        if let Some(connect) = this.connect.as_mut().as_pin_mut()
            && let Poll::Ready(r) = connect.poll(cx)
        {
            this.connect.set(None);
            this.sleep.set(None);
            *this.done = true;
            let permit = core::mem::replace(this.permit, false);
            return Poll::Ready(match (r, permit) {
                (Ok(conn), true) => {
                    // Relaxed: a statistic.
                    pool.created.fetch_add(1, Ordering::Relaxed);
                    let now = pool.clock.now();
                    hand_out(this.pool, conn, now)
                }
                (Ok(conn), false) => {
                    // Unreachable: `connect` is only set while a permit is held. Without a
                    // slot the connection cannot be handed out; close it, never panic.
                    pool.created.fetch_add(1, Ordering::Relaxed);
                    pool.discard(conn);
                    Err(Error::Closed)
                }
                (Err(e), permit) => {
                    if permit {
                        pool.sem.give_back();
                    }
                    // Relaxed: a statistic.
                    pool.connect_failed.fetch_add(1, Ordering::Relaxed);
                    Err(Error::Connect(e))
                }
            });
        }

        // 3. Still waiting or connecting: race the deadline.
        if this.sleep.is_none() {
            this.sleep.set(Some(pool.clock.sleep_until(deadline)));
        }
        if let Some(sleep) = this.sleep.as_mut().as_pin_mut()
            && sleep.poll(cx).is_ready()
        {
            // Leave the wait queue, cancel the connect, then free the slot (in that order).
            if core::mem::replace(this.waiting, false) {
                pool.sem.cancel(this.waiter.as_mut());
            }
            this.connect.set(None);
            if core::mem::replace(this.permit, false) {
                pool.sem.give_back();
            }
            this.sleep.set(None);
            *this.done = true;
            // Relaxed: a statistic.
            pool.timed_out.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(Error::Timeout));
        }
        Poll::Pending
    }
}

/// What a checkout yields: the guard, or why not.
type Checkout<R, M, S, C, const N: usize, L> =
    Result<PooledConnection<R, M, S, C, N, L>, Error<<M as Manager>::Error>>;

/// The guard of a connection just checked out: moves the owner of the pool out of the future
/// (the caller has just read it there, so the error cannot happen).
fn hand_out<R, M, S, C, const N: usize, L: RawLock>(
    pool: &mut Option<R>,
    conn: M::Connection,
    created: Instant,
) -> Checkout<R, M, S, C, N, L>
where
    R: Deref<Target = Pool<M, S, C, N, L>>,
    M: Manager,
    S: TrySemaphore,
    C: Clock,
{
    match pool.take() {
        Some(pool) => Ok(Pool::hand_out(pool, conn, created)),
        None => Err(Error::Closed),
    }
}

impl<R, K, Z> fmt::Debug for PoolAcquire<R, K, Z>
where
    R: Deref,
    R::Target: Slots,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.waiting)
            .field("connecting", &self.connect.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
