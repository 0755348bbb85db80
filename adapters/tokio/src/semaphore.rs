//! bulwark's [`Semaphore`] over `tokio::sync::Semaphore`, for bulkheads that wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bulwark::bulkhead::{QueueError, Semaphore, TrySemaphore};
use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A tokio semaphore as a bulwark [`Semaphore`]: permits are tokio's; waiting is a
/// `tokio::sync::Notify` that every released permit signals, so the wait future is a named,
/// allocation-free type (tokio's own `acquire` is an unnameable `async fn`).
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
    released: Notify,
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
            released: Notify::new(),
            capacity: permits,
        }
    }
}

impl TrySemaphore for TokioSemaphore {
    type Permit<'a> = TokioPermit<'a>;

    fn try_acquire(&self) -> Option<TokioPermit<'_>> {
        let permit = self.sem.try_acquire().ok()?;
        Some(TokioPermit {
            permit: Some(permit),
            released: &self.released,
        })
    }

    fn available(&self) -> usize {
        self.sem.available_permits()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Semaphore for TokioSemaphore {
    type Acquire<'a> = TokioAcquire<'a>;

    fn acquire(&self) -> TokioAcquire<'_> {
        TokioAcquire {
            sem: self,
            notified: self.released.notified(),
        }
    }
}

/// A permit of a [`TokioSemaphore`]; dropping it gives the permit back and wakes one waiter.
///
/// ```
/// use bulwark::bulkhead::TrySemaphore;
/// let s = bulwark_tokio::TokioSemaphore::new(1);
/// let p = s.try_acquire().unwrap();
/// assert_eq!(s.available(), 0);
/// drop(p);
/// assert_eq!(s.available(), 1);
/// ```
#[derive(Debug)]
pub struct TokioPermit<'a> {
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
    released: &'a Notify,
}

impl Drop for TokioPermit<'_> {
    fn drop(&mut self) {
        drop(self.permit.take()); // the permit is back in the semaphore first...
        self.released.notify_one(); // ...then a waiter is told to try again
    }
}

pin_project! {
    /// The future of [`TokioSemaphore`]'s [`Semaphore::acquire`]. Holds nothing until it
    /// completes; dropping it gives up its place in line.
    ///
    /// ```
    /// use bulwark::bulkhead::Semaphore;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sem = bulwark_tokio::TokioSemaphore::new(1);
    /// let permit = sem.acquire().await.unwrap();
    /// drop(permit);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TokioAcquire<'a> {
        sem: &'a TokioSemaphore,
        #[pin]
        notified: Notified<'a>,
    }
}

impl<'a> Future for TokioAcquire<'a> {
    type Output = Result<TokioPermit<'a>, QueueError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            // Register for the next release *before* trying, so a release between the try and
            // the wait is never missed (`enable` puts us in the waiter list).
            this.notified.as_mut().enable();
            if let Some(p) = this.sem.try_acquire() {
                return Poll::Ready(Ok(p));
            }
            std::task::ready!(this.notified.as_mut().poll(cx));
            // Woken by a release: wait for the one after it if another caller got there first.
            this.notified.set(this.sem.released.notified());
        }
    }
}

impl std::fmt::Debug for TokioAcquire<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioAcquire").finish_non_exhaustive()
    }
}
