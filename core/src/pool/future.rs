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
use crate::bulkhead::{Semaphore, TrySemaphore};
use crate::sync::Ordering;
use crate::time::{Instant, Sleep};

impl<M: Manager, S: Semaphore, C: Sleep, const N: usize> Pool<M, S, C, N> {
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
    pub fn acquire(&self) -> Acquire<'_, M, S, C, N> {
        PoolAcquire {
            pool: self,
            deadline: None,
            done: false,
            wait: None,
            connect: None,
            sleep: None,
            permit: None,
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
pub type Acquire<'a, M, S, C, const N: usize> = PoolAcquire<
    'a,
    Pool<M, S, C, N>,
    <S as Semaphore>::Acquire<'a>,
    <M as Manager>::Connect<'a>,
    <C as Sleep>::Sleep<'a>,
    <S as TrySemaphore>::Permit<'a>,
>;

pin_project! {
    /// The future behind [`Acquire`]: `P` the pool, `W` the semaphore's wait, `K` the
    /// connect, `Z` the sleep, `T` the permit. Name it through [`Acquire`].
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
    pub struct PoolAcquire<'a, P, W, K, Z, T> {
        pool: &'a P,
        deadline: Option<Instant>,
        done: bool,
        #[pin]
        wait: Option<W>,
        // Declared before `permit`: a cancelled connect is dropped before its slot is freed.
        #[pin]
        connect: Option<K>,
        #[pin]
        sleep: Option<Z>,
        permit: Option<T>,
    }
}

impl<'a, M: Manager, S: Semaphore, C: Sleep, const N: usize> Future for Acquire<'a, M, S, C, N> {
    type Output = Result<PooledConnection<'a, M, S, C, N>, Error<M::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let pool: &'a Pool<M, S, C, N> = this.pool;
        if *this.done {
            return Poll::Pending; // polled after completion
        }
        let deadline = *this
            .deadline
            .get_or_insert_with(|| pool.clock.now().saturating_add(pool.cfg.timeout_duration()));

        // 1. A slot: at once, or through the semaphore's wait queue.
        if this.permit.is_none() && this.wait.is_none() {
            match pool.sem.try_acquire() {
                Some(p) => *this.permit = Some(p),
                None => {
                    // Relaxed: a statistic.
                    pool.waited.fetch_add(1, Ordering::Relaxed);
                    this.wait.set(Some(pool.sem.acquire()));
                }
            }
        }
        if let Some(wait) = this.wait.as_mut().as_pin_mut()
            && let Poll::Ready(r) = wait.poll(cx)
        {
            this.wait.set(None);
            match r {
                Ok(p) => *this.permit = Some(p),
                Err(e) => {
                    *this.done = true;
                    this.sleep.set(None);
                    return Poll::Ready(Err(e.into()));
                }
            }
        }

        // 2. With a slot and no connect under way: reuse an idle connection, or connect.
        if this.connect.is_none()
            && let Some(permit) = this.permit.take()
        {
            if let Some(idle) = pool.take_idle(pool.clock.now()) {
                *this.done = true;
                this.sleep.set(None);
                return Poll::Ready(Ok(pool.hand_out(idle.conn, idle.created, permit)));
            }
            *this.permit = Some(permit);
            this.connect.set(Some(pool.manager.connect()));
        }
        if let Some(connect) = this.connect.as_mut().as_pin_mut()
            && let Poll::Ready(r) = connect.poll(cx)
        {
            this.connect.set(None);
            this.sleep.set(None);
            *this.done = true;
            let permit = this.permit.take();
            return Poll::Ready(match (r, permit) {
                (Ok(conn), Some(permit)) => {
                    // Relaxed: a statistic.
                    pool.created.fetch_add(1, Ordering::Relaxed);
                    Ok(pool.hand_out(conn, pool.clock.now(), permit))
                }
                (Ok(conn), None) => {
                    // Unreachable: `connect` is only set while a permit is held. Without a
                    // slot the connection cannot be handed out; close it, never panic.
                    pool.created.fetch_add(1, Ordering::Relaxed);
                    pool.discard(conn);
                    Err(Error::Closed)
                }
                (Err(e), _) => {
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
            this.wait.set(None);
            this.connect.set(None);
            *this.permit = None;
            this.sleep.set(None);
            *this.done = true;
            // Relaxed: a statistic.
            pool.timed_out.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(Error::Timeout));
        }
        Poll::Pending
    }
}

impl<P, W, K, Z, T> fmt::Debug for PoolAcquire<'_, P, W, K, Z, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.wait.is_some())
            .field("connecting", &self.connect.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
