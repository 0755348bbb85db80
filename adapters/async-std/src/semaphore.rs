//! bulwark's [`Semaphore`] over `async_lock::Semaphore` (async-std's and smol's).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
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
    sem: Arc<async_lock::Semaphore>,
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
    pub fn new(permits: usize) -> Self {
        AsyncLockSemaphore {
            sem: Arc::new(async_lock::Semaphore::new(permits)),
            capacity: permits,
        }
    }
}

impl TrySemaphore for AsyncLockSemaphore {
    fn try_take(&self) -> bool {
        match self.sem.try_acquire() {
            Some(guard) => {
                guard.forget(); // counted by the caller, given back through `give_back`
                true
            }
            None => false,
        }
    }

    fn give_back(&self) {
        self.sem.add_permits(1);
    }

    fn available(&self) -> usize {
        self.sem.available_permits()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

pin_project! {
    /// A caller's place in line at an [`AsyncLockSemaphore`]: async-lock's own named wait
    /// future, pinned in the waiting future (no allocation). Dropping it gives up the place.
    ///
    /// ```
    /// let w = bulwark_async_std::AsyncLockWaiter::default();
    /// assert!(format!("{w:?}").contains("AsyncLockWaiter"));
    /// ```
    #[derive(Default)]
    pub struct AsyncLockWaiter {
        #[pin]
        acquire: Option<async_lock::futures::AcquireArc>,
    }
}

impl std::fmt::Debug for AsyncLockWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncLockWaiter")
            .field("waiting", &self.acquire.is_some())
            .finish()
    }
}

impl Semaphore for AsyncLockSemaphore {
    type Waiter = AsyncLockWaiter;

    fn poll_take(
        &self,
        waiter: Pin<&mut AsyncLockWaiter>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>> {
        let mut acquire = waiter.project().acquire;
        if acquire.is_none() {
            acquire.set(Some(self.sem.acquire_arc()));
        }
        let Some(fut) = acquire.as_mut().as_pin_mut() else {
            return Poll::Pending; // unreachable: set just above
        };
        let guard = std::task::ready!(fut.poll(cx));
        guard.forget();
        acquire.set(None);
        Poll::Ready(Ok(()))
    }

    fn cancel(&self, waiter: Pin<&mut AsyncLockWaiter>) {
        waiter.project().acquire.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    async fn waiter_gets_the_released_permit() {
        let sem = AsyncLockSemaphore::new(1);
        assert!(sem.try_take());
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(AsyncLockWaiter::default());
        assert!(sem.poll_take(waiter.as_mut(), cx).is_pending());
        sem.give_back();
        std::future::poll_fn(|cx| sem.poll_take(waiter.as_mut(), cx))
            .await
            .unwrap();
        assert_eq!(sem.available(), 0);
        sem.give_back();
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
