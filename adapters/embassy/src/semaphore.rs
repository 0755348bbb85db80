//! bulwark's [`Semaphore`] on embassy-sync: a blocking mutex of the firmware's choice guards
//! the count, and embassy's multi-waker registration holds the waiters.

use core::cell::RefCell;
use core::future::Future;
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
    type Permit<'a>
        = EmbassyPermit<'a, M, W>
    where
        Self: 'a;

    fn try_acquire(&self) -> Option<EmbassyPermit<'_, M, W>> {
        // `then`, not `then_some`: a permit built eagerly and dropped would release one.
        self.take(None).then(|| EmbassyPermit { sem: self })
    }

    fn available(&self) -> usize {
        self.state.lock(|s| s.borrow().free)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<M: RawMutex, const W: usize> Semaphore for EmbassySemaphore<M, W> {
    type Acquire<'a>
        = EmbassyAcquire<'a, M, W>
    where
        Self: 'a;

    fn acquire(&self) -> EmbassyAcquire<'_, M, W> {
        EmbassyAcquire { sem: self }
    }
}

impl<M: RawMutex, const W: usize> core::fmt::Debug for EmbassySemaphore<M, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EmbassySemaphore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A permit of an [`EmbassySemaphore`]; dropping it gives the permit back and wakes waiters.
///
/// ```standalone_crate
/// use bulwark::bulkhead::TrySemaphore;
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// let s: bulwark_embassy::EmbassySemaphore<NoopRawMutex, 2> = bulwark_embassy::EmbassySemaphore::new(1);
/// let p = s.try_acquire().unwrap();
/// drop(p);
/// assert_eq!(s.available(), 1);
/// ```
pub struct EmbassyPermit<'a, M: RawMutex, const W: usize> {
    sem: &'a EmbassySemaphore<M, W>,
}

impl<M: RawMutex, const W: usize> Drop for EmbassyPermit<'_, M, W> {
    fn drop(&mut self) {
        self.sem.state.lock(|s| {
            let mut s = s.borrow_mut();
            s.free += 1;
            s.waiters.wake();
        });
    }
}

impl<M: RawMutex, const W: usize> core::fmt::Debug for EmbassyPermit<'_, M, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EmbassyPermit")
    }
}

/// The future of [`EmbassySemaphore`]'s [`Semaphore::acquire`]; holds nothing until it
/// completes.
///
/// ```standalone_crate
/// use bulwark::bulkhead::Semaphore;
/// use core::{future::Future, pin::pin, task::{Context, Waker}};
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// let s: bulwark_embassy::EmbassySemaphore<NoopRawMutex, 2> = bulwark_embassy::EmbassySemaphore::new(1);
/// let mut acquire = pin!(s.acquire());
/// assert!(acquire.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct EmbassyAcquire<'a, M: RawMutex, const W: usize> {
    sem: &'a EmbassySemaphore<M, W>,
}

impl<'a, M: RawMutex, const W: usize> Future for EmbassyAcquire<'a, M, W> {
    type Output = Result<EmbassyPermit<'a, M, W>, QueueError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sem = self.sem;
        if sem.take(Some(cx)) {
            Poll::Ready(Ok(EmbassyPermit { sem }))
        } else {
            Poll::Pending
        }
    }
}

impl<M: RawMutex, const W: usize> core::fmt::Debug for EmbassyAcquire<'_, M, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EmbassyAcquire")
    }
}
