//! bulwark's [`Semaphore`] over `async_lock::Semaphore` (async-std's and smol's).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bulwark::bulkhead::{QueueError, Semaphore, TrySemaphore};
use pin_project_lite::pin_project;

/// async-lock's semaphore (the one async-std and smol use) as a bulwark [`Semaphore`], for
/// bulkheads that wait. Waiters are served fairly, in order, by async-lock's event listener.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Rejected};
/// use bulwark_async_std::{AsyncIoClock, AsyncLockSemaphore};
/// use std::time::Duration;
///
/// smol::block_on(async {
///     let b = Bulkhead::with_semaphore(AsyncLockSemaphore::new(1), Duration::ZERO, AsyncIoClock::new());
///     let held = b.acquire().await.unwrap();
///     assert_eq!(b.acquire().await.unwrap_err(), Rejected::Full); // no wait allowed: shed
///     drop(held);
///     assert!(b.acquire().await.is_ok());
/// });
/// ```
#[derive(Debug)]
pub struct AsyncLockSemaphore {
    sem: async_lock::Semaphore,
    capacity: usize,
}

impl AsyncLockSemaphore {
    /// A semaphore of `permits` permits.
    ///
    /// ```
    /// use bulwark::bulkhead::TrySemaphore;
    /// let s = bulwark_async_std::AsyncLockSemaphore::new(4);
    /// assert_eq!((s.available(), s.capacity()), (4, 4));
    /// ```
    pub const fn new(permits: usize) -> Self {
        AsyncLockSemaphore {
            sem: async_lock::Semaphore::new(permits),
            capacity: permits,
        }
    }
}

impl TrySemaphore for AsyncLockSemaphore {
    type Permit<'a> = async_lock::SemaphoreGuard<'a>;

    fn try_acquire(&self) -> Option<async_lock::SemaphoreGuard<'_>> {
        self.sem.try_acquire()
    }

    fn available(&self) -> usize {
        self.sem.available_permits()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Semaphore for AsyncLockSemaphore {
    type Acquire<'a> = AsyncLockAcquire<'a>;

    fn acquire(&self) -> AsyncLockAcquire<'_> {
        AsyncLockAcquire {
            inner: self.sem.acquire(),
        }
    }
}

pin_project! {
    /// The future of [`AsyncLockSemaphore`]'s [`Semaphore::acquire`]: async-lock's own,
    /// named and allocation-free. Dropping it gives up its place in line.
    ///
    /// ```
    /// use bulwark::bulkhead::Semaphore;
    /// let sem = bulwark_async_std::AsyncLockSemaphore::new(1);
    /// let permit = smol::block_on(sem.acquire()).unwrap();
    /// drop(permit);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct AsyncLockAcquire<'a> {
        #[pin]
        inner: async_lock::futures::Acquire<'a>,
    }
}

impl<'a> Future for AsyncLockAcquire<'a> {
    type Output = Result<async_lock::SemaphoreGuard<'a>, QueueError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Ok)
    }
}

impl std::fmt::Debug for AsyncLockAcquire<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncLockAcquire").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    async fn waiter_gets_the_released_permit() {
        let sem = AsyncLockSemaphore::new(1);
        let held = sem.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(sem.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        drop(held);
        let permit = waiter.await.unwrap();
        assert_eq!(sem.available(), 0);
        drop(permit);
        assert_eq!(sem.available(), 1);
    }

    #[test]
    fn under_async_std() {
        async_std::task::block_on(waiter_gets_the_released_permit());
    }

    #[test]
    fn under_smol() {
        smol::block_on(waiter_gets_the_released_permit());
    }
}
