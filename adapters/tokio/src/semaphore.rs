//! bulwark's [`Semaphore`] over `tokio::sync::Semaphore`, for bulkheads that wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bulwark::bulkhead::{QueueError, Semaphore, TrySemaphore};
use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// A tokio semaphore as a bulwark [`Semaphore`]: permits are tokio's; waiting is on a
/// `tokio::sync::Notify` that every released permit signals, through a named, allocation-free
/// [`TokioWaiter`] (tokio's own `acquire` is an unnameable `async fn`).
///
/// Waiters are woken in FIFO order; a waiter that is woken and then dropped passes its wake-up
/// on to the next one (tokio's `Notify` guarantees that), so no permit is stranded.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Rejected};
/// use bulwark::Sleep;
/// use bulwark_tokio::{TokioClock, TokioSemaphore};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// let bulkhead = Bulkhead::with_semaphore(TokioSemaphore::new(1), Duration::from_millis(100), clock);
/// let held = bulkhead.acquire().await.unwrap();
/// assert_eq!(bulkhead.acquire().await.unwrap_err(), Rejected::Timeout); // 100 ms later
/// drop(held);
/// assert!(bulkhead.acquire().await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct TokioSemaphore {
    sem: tokio::sync::Semaphore,
    released: Arc<Notify>,
    capacity: usize,
}

impl TokioSemaphore {
    /// A semaphore of `permits` permits (capped at tokio's maximum).
    ///
    /// ```
    /// use bulwark::bulkhead::TrySemaphore;
    /// let s = bulwark_tokio::TokioSemaphore::new(3);
    /// assert_eq!((s.available(), s.capacity()), (3, 3));
    /// ```
    pub fn new(permits: usize) -> Self {
        let permits = permits.min(tokio::sync::Semaphore::MAX_PERMITS);
        TokioSemaphore {
            sem: tokio::sync::Semaphore::new(permits),
            released: Arc::new(Notify::new()),
            capacity: permits,
        }
    }
}

impl TrySemaphore for TokioSemaphore {
    fn try_take(&self) -> bool {
        match self.sem.try_acquire() {
            Ok(permit) => {
                permit.forget(); // counted by the caller, given back through `give_back`
                true
            }
            Err(_) => false,
        }
    }

    fn give_back(&self) {
        self.sem.add_permits(1); // the permit is back in the semaphore first...
        self.released.notify_one(); // ...then a waiter is told to try again
    }

    fn available(&self) -> usize {
        self.sem.available_permits()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

pin_project! {
    /// A caller's place among the waiters of a [`TokioSemaphore`]: a pinned
    /// `tokio::sync::futures::OwnedNotified` of the semaphore's release signal (no allocation).
    ///
    /// ```
    /// let w = bulwark_tokio::TokioWaiter::default();
    /// assert!(format!("{w:?}").contains("TokioWaiter"));
    /// ```
    #[derive(Default)]
    pub struct TokioWaiter {
        #[pin]
        notified: Option<OwnedNotified>,
    }
}

impl std::fmt::Debug for TokioWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioWaiter")
            .field("waiting", &self.notified.is_some())
            .finish()
    }
}

impl Semaphore for TokioSemaphore {
    type Waiter = TokioWaiter;

    fn poll_take(
        &self,
        waiter: Pin<&mut TokioWaiter>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>> {
        let mut notified = waiter.project().notified;
        loop {
            if notified.is_none() {
                notified.set(Some(Arc::clone(&self.released).notified_owned()));
            }
            let Some(mut n) = notified.as_mut().as_pin_mut() else {
                return Poll::Pending; // unreachable: set just above
            };
            // Register for the next release *before* trying, so a release between the try and
            // the wait is never missed (`enable` puts us in the waiter list).
            n.as_mut().enable();
            if self.try_take() {
                notified.set(None);
                return Poll::Ready(Ok(()));
            }
            std::task::ready!(n.poll(cx));
            // Woken by a release: wait for the one after it if another caller got there first.
            notified.set(None);
        }
    }

    fn cancel(&self, waiter: Pin<&mut TokioWaiter>) {
        // A waiter woken and then dropped passes its wake-up on to the next (tokio's `Notify`
        // guarantees that), so no permit is stranded.
        waiter.project().notified.set(None);
    }
}
