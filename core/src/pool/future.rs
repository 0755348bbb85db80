//! Waiting for a connection: [`Pool::acquire`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::error::Error;
use super::guard::PooledConnection;
use super::manager::Manager;
use super::shared::Pool;
use crate::bulkhead::Semaphore;
use crate::lock::{RawLock, SpinLock};
use crate::sync::Ordering;
use crate::time::{Instant, Sleep};

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
    /// #     type Connect<'a> = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect<'_> { core::future::ready(Ok(1)) }
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
    /// assert_eq!(pool.metrics().created, 1);
    /// ```
    pub fn acquire(&self) -> Acquire<'_, M, S, C, N, L> {
        PoolAcquire {
            pool: self,
            deadline: None,
            done: false,
            waiting: false,
            waiter: S::Waiter::default(),
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
/// #     type Connect<'a> = core::future::Ready<Result<u8, ()>>;
/// #     fn connect(&self) -> Self::Connect<'_> { core::future::ready(Ok(1)) }
/// # }
/// let clock = MockClock::new();
/// let pool: Pool<M, QueueSemaphore<4>, _, 2> = Pool::queued(M, Config::new(), &clock);
/// let fut: Acquire<'_, M, QueueSemaphore<4>, &MockClock, 2> = pool.acquire();
/// fn is_send<T: Send>(_: &T) {}
/// is_send(&fut);
/// assert_eq!(*mock::run(&clock, fut).unwrap().unwrap(), 1);
/// ```
pub type Acquire<'a, M, S, C, const N: usize, L = SpinLock> =
    PoolAcquire<'a, Pool<M, S, C, N, L>, <M as Manager>::Connect<'a>, <C as Sleep>::Sleep>;

pin_project! {
    /// The future behind [`Acquire`]: `P` the pool, `K` the connect, `Z` the sleep. Name it
    /// through [`Acquire`].
    ///
    /// ```
    /// use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
    /// use bulwark::MockClock;
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = u8; type Error = ();
    /// #     type Connect<'a> = core::future::Ready<Result<u8, ()>>;
    /// #     fn connect(&self) -> Self::Connect<'_> { core::future::ready(Ok(1)) }
    /// # }
    /// let clock = MockClock::new();
    /// let pool: Pool<M, QueueSemaphore<4>, _, 2> = Pool::queued(M, Config::new(), &clock);
    /// assert!(format!("{:?}", pool.acquire()).starts_with("Acquire"));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct PoolAcquire<'a, P: Slots, K, Z> {
        pool: &'a P,
        deadline: Option<Instant>,
        done: bool,
        waiting: bool,
        #[pin]
        waiter: P::Waiter,
        #[pin]
        connect: Option<K>,
        #[pin]
        sleep: Option<Z>,
        // A semaphore permit is held (owed back to the pool's semaphore).
        permit: bool,
    }

    impl<'a, P: Slots, K, Z> PinnedDrop for PoolAcquire<'a, P, K, Z> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Cancelled: leave the wait queue, cancel the connect, then free the slot (in
            // that order).
            if *this.waiting {
                this.pool.cancel(this.waiter);
            }
            this.connect.set(None);
            if *this.permit {
                this.pool.give_back();
            }
        }
    }
}

/// What a pool's acquire future needs of its pool while it is dropped: leave the semaphore's
/// queue, give a slot's permit back. Implemented by [`Pool`].
pub trait Slots {
    /// A waiter's place in the queue.
    type Waiter;
    /// Leaves the queue.
    fn cancel(&self, waiter: Pin<&mut Self::Waiter>);
    /// Gives a permit back.
    fn give_back(&self);
}

impl<M: Manager, S: Semaphore, C, const N: usize, L> Slots for Pool<M, S, C, N, L> {
    type Waiter = S::Waiter;
    fn cancel(&self, waiter: Pin<&mut S::Waiter>) {
        self.sem.cancel(waiter);
    }
    fn give_back(&self) {
        self.sem.give_back();
    }
}

impl<'a, M: Manager, S: Semaphore, C: Sleep, const N: usize, L: RawLock> Future
    for Acquire<'a, M, S, C, N, L>
{
    type Output = Result<PooledConnection<'a, M, S, C, N, L>, Error<M::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let pool: &'a Pool<M, S, C, N, L> = this.pool;
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
                return Poll::Ready(Ok(pool.hand_out(idle.conn, idle.created)));
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
                    Ok(pool.hand_out(conn, pool.clock.now()))
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

impl<P: Slots, K, Z> fmt::Debug for PoolAcquire<'_, P, K, Z> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.waiting)
            .field("connecting", &self.connect.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
