//! bulwark's [`Semaphore`] on embassy-sync: a blocking mutex of the firmware's choice guards
//! the count, and embassy's multi-waker registration holds the waiters.

use core::cell::RefCell;
use core::pin::Pin;
use core::task::{Context, Poll};

use bulwark::bulkhead::{QueueError, Semaphore, TrySemaphore};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::waitqueue::MultiWakerRegistration;

struct State<const W: usize> {
    free: usize,
    waiters: MultiWakerRegistration<W>,
}

/// A counting semaphore for bulkheads on embassy. `M` is the raw mutex
/// (`CriticalSectionRawMutex` to share with interrupt handlers, `NoopRawMutex` within one
/// executor); `W` is how many tasks can wait with a registered waker at once (when more wait,
/// embassy's registration wakes them all to make room: they poll again, nothing is lost).
///
/// Every released permit wakes all waiters (greedy, not FIFO); the first to poll wins.
///
/// # Examples
///
/// ```standalone_crate
/// use bulwark::bulkhead::{Bulkhead, TrySemaphore};
/// use bulwark_embassy::{EmbassyClock, EmbassySemaphore};
/// use core::time::Duration;
/// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
///
/// static PUMP: EmbassySemaphore<CriticalSectionRawMutex, 4> = EmbassySemaphore::new(2);
/// let bulkhead = Bulkhead::with_semaphore(&PUMP, Duration::from_millis(50), EmbassyClock);
/// let a = bulkhead.try_acquire().unwrap();
/// let _b = bulkhead.try_acquire().unwrap();
/// assert!(bulkhead.try_acquire().is_err());
/// drop(a);
/// assert_eq!(PUMP.available(), 1);
/// ```
pub struct EmbassySemaphore<M: RawMutex, const W: usize> {
    state: Mutex<M, RefCell<State<W>>>,
    capacity: usize,
}

impl<M: RawMutex, const W: usize> EmbassySemaphore<M, W> {
    /// A semaphore of `permits` permits; `const`, so it can live in a `static`.
    ///
    /// ```standalone_crate
    /// use bulwark::bulkhead::TrySemaphore;
    /// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    /// let s: bulwark_embassy::EmbassySemaphore<NoopRawMutex, 2> = bulwark_embassy::EmbassySemaphore::new(3);
    /// assert_eq!(s.capacity(), 3);
    /// ```
    pub const fn new(permits: usize) -> Self {
        EmbassySemaphore {
            state: Mutex::new(RefCell::new(State {
                free: permits,
                waiters: MultiWakerRegistration::new(),
            })),
            capacity: permits,
        }
    }

    fn take(&self, cx: Option<&mut Context<'_>>) -> bool {
        self.state.lock(|s| {
            let mut s = s.borrow_mut();
            if s.free > 0 {
                s.free -= 1;
                return true;
            }
            // Registered under the same lock the release takes: a release cannot slip
            // between our check and our registration.
            if let Some(cx) = cx {
                s.waiters.register(cx.waker());
            }
            false
        })
    }
}

impl<M: RawMutex, const W: usize> TrySemaphore for EmbassySemaphore<M, W> {
    fn try_take(&self) -> bool {
        self.take(None)
    }

    fn give_back(&self) {
        self.state.lock(|s| {
            let mut s = s.borrow_mut();
            s.free += 1;
            s.waiters.wake();
        });
    }

    fn available(&self) -> usize {
        self.state.lock(|s| s.borrow().free)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Waiting registers the caller's waker with the semaphore under its lock on every poll; a
/// waiter keeps no state of its own (`()`), and leaving the queue is simply not being polled
/// again (a stale waker at most wakes a task once for nothing).
///
/// ```standalone_crate
/// use bulwark::bulkhead::{Semaphore, TrySemaphore};
/// use core::{pin::pin, task::{Context, Poll, Waker}};
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// let s: bulwark_embassy::EmbassySemaphore<NoopRawMutex, 2> = bulwark_embassy::EmbassySemaphore::new(1);
/// let cx = &mut Context::from_waker(Waker::noop());
/// assert!(s.try_take());
/// let mut w = pin!(());
/// assert!(s.poll_take(w.as_mut(), cx).is_pending());
/// s.give_back();
/// assert_eq!(s.poll_take(w.as_mut(), cx), Poll::Ready(Ok(())));
/// ```
impl<M: RawMutex, const W: usize> Semaphore for EmbassySemaphore<M, W> {
    type Waiter = ();

    fn poll_take(&self, _: Pin<&mut ()>, cx: &mut Context<'_>) -> Poll<Result<(), QueueError>> {
        if self.take(Some(cx)) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn cancel(&self, _: Pin<&mut ()>) {}
}

impl<M: RawMutex, const W: usize> core::fmt::Debug for EmbassySemaphore<M, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EmbassySemaphore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
