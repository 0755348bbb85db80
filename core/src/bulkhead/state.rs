//! The semaphore a bulkhead counts its permits with: the [`TrySemaphore`] and [`Semaphore`]
//! traits, the non-waiting [`AtomicSemaphore`] and the waiting [`QueueSemaphore`].

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::error::{ConfigError, QueueError};
use crate::lock::{Mutex, RawLock, SpinLock};
use crate::sync::{AtomicU64, AtomicUsize, Ordering, const_fn};

/// A counting semaphore that can be asked for a permit without waiting.
///
/// This is what a runtime adapter implements (over tokio's, async-lock's or embassy-sync's
/// semaphore) to back a [`Bulkhead`](super::Bulkhead). Permits are counted, not held as
/// guards: [`try_take`](TrySemaphore::try_take) takes one and the taker owes one
/// [`give_back`](TrySemaphore::give_back). The guard callers hold is the bulkhead's
/// [`Permit`](crate::admission::Permit), which owns or borrows the bulkhead as it likes; so
/// a semaphore never has to hand out a guard that borrows it.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{AtomicSemaphore, TrySemaphore};
/// let sem = AtomicSemaphore::new(1).unwrap();
/// assert!(sem.try_take());
/// assert!(!sem.try_take());
/// sem.give_back();
/// assert_eq!((sem.available(), sem.capacity()), (1, 1));
/// ```
pub trait TrySemaphore {
    /// Takes a permit if one is free, at once. `true`: taken, one
    /// [`give_back`](TrySemaphore::give_back) is owed.
    fn try_take(&self) -> bool;

    /// Gives back one permit taken by [`try_take`](TrySemaphore::try_take) or a completed
    /// [`poll_take`](Semaphore::poll_take). Called only by whoever took it.
    fn give_back(&self);

    /// Permits free now (a snapshot).
    fn available(&self) -> usize;

    /// Permits in total.
    fn capacity(&self) -> usize;

    /// Permits held now (a snapshot): `capacity − available`, or more while a [resized](Resize)
    /// semaphore drains down to a smaller capacity.
    ///
    /// ```
    /// use bulwark::bulkhead::{AtomicSemaphore, Resize, TrySemaphore};
    /// let sem = AtomicSemaphore::new(3).unwrap();
    /// assert!(sem.try_take() && sem.try_take());
    /// sem.resize(1).unwrap();
    /// assert_eq!((sem.in_use(), sem.capacity(), sem.available()), (2, 1, 0));
    /// ```
    fn in_use(&self) -> usize {
        self.capacity().saturating_sub(self.available())
    }
}

/// A [`TrySemaphore`] that can also wait for a permit.
///
/// Waiting is poll-based: the waiting future keeps the semaphore's [`Waiter`](Semaphore::Waiter)
/// (its place in the queue), pinned, and polls [`poll_take`](Semaphore::poll_take) with it,
/// reaching the semaphore through whatever pointer it holds. So a waiting future can own its
/// bulkhead (an `Arc`) as easily as borrow it, and neither the core nor an adapter boxes.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{QueueSemaphore, QueueWaiter, Semaphore, TrySemaphore};
/// use core::task::{Context, Poll, Waker};
/// let sem: QueueSemaphore<4> = QueueSemaphore::new(1).unwrap();
/// let cx = &mut Context::from_waker(Waker::noop());
/// assert!(sem.try_take());
/// let mut waiter = core::pin::pin!(QueueWaiter::default());
/// assert!(sem.poll_take(waiter.as_mut(), cx).is_pending()); // queued
/// sem.give_back();
/// assert_eq!(sem.poll_take(waiter.as_mut(), cx), Poll::Ready(Ok(()))); // the permit passed to it
/// assert_eq!(sem.available(), 0);
/// ```
pub trait Semaphore: TrySemaphore {
    /// A waiter's state: its place in the queue (pinned: it may be a node of the runtime's
    /// intrusive wait list). `Default` is "not waiting yet".
    type Waiter: Default;

    /// Takes a permit, or registers `cx`'s waker and keeps `waiter`'s place in the queue.
    /// `Ready(Ok(()))`: taken, one [`give_back`](TrySemaphore::give_back) is owed, and
    /// `waiter` is spent. `Ready(Err(_))`: shed from the queue (see [`QueueError`]).
    fn poll_take(
        &self,
        waiter: Pin<&mut Self::Waiter>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>>;

    /// Leaves the queue: the waiting future is dropped before it got a permit. A waiter that
    /// never waited, or that already got its permit, is left alone.
    fn cancel(&self, waiter: Pin<&mut Self::Waiter>);

    /// Wakes every waiter, so each polls again and sees a changed setting (a bulkhead's
    /// [`max_wait`](super::Bulkhead::set_max_wait)). By default nothing: a waiter then sees the
    /// change at its next poll.
    ///
    /// ```
    /// use bulwark::bulkhead::{QueueSemaphore, Semaphore};
    /// let sem: QueueSemaphore<4> = QueueSemaphore::new(1).unwrap();
    /// sem.wake_all(); // nobody waits: nothing happens
    /// ```
    fn wake_all(&self) {}
}

/// A semaphore whose capacity can change while it is in use, through `&self`, losing no
/// permit: growing frees permits at once (waking waiters); shrinking below the permits in use
/// drains gracefully (held permits stay valid; returned ones are retired until the permits in
/// use fit the new capacity, and no new one is handed out before).
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{AtomicSemaphore, Resize, TrySemaphore};
/// let sem = AtomicSemaphore::new(2).unwrap();
/// assert!(sem.try_take() && sem.try_take());
/// sem.resize(1).unwrap(); // two held, one allowed: drains
/// sem.give_back();
/// assert!(!sem.try_take()); // the returned permit was retired
/// sem.give_back();
/// assert!(sem.try_take()); // one in use now: the new capacity
/// ```
pub trait Resize: TrySemaphore {
    /// Sets the capacity.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for 0, [`ConfigError::TooLarge`] above what the
    /// semaphore counts; the capacity is then unchanged.
    fn resize(&self, capacity: usize) -> Result<(), ConfigError>;
}

impl<S: Resize + ?Sized> Resize for &S {
    fn resize(&self, capacity: usize) -> Result<(), ConfigError> {
        (**self).resize(capacity)
    }
}

/// Permits owed after a shrink below the permits in use: each permit given back pays one
/// instead of becoming free. Usually zero, so a give-back pays one `Relaxed` load for it.
struct Debt(AtomicUsize);

impl Debt {
    const_fn! {
        fn new() -> Debt {
            Debt(AtomicUsize::new(0))
        }
    }

    /// A permit given back pays one unit of debt if any is owed: `true` when it did (the
    /// permit is retired, not freed).
    #[inline]
    fn absorb(&self) -> bool {
        // Relaxed first look (nearly always 0): the CAS below decides.
        let mut d = self.0.load(Ordering::Relaxed);
        while d > 0 {
            // AcqRel: ordered with the resize that incurred the debt (`incur`'s AcqRel) and
            // with other payers; Relaxed on failure: retry with the fresher count.
            match self
                .0
                .compare_exchange_weak(d, d - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => d = actual,
            }
        }
        false
    }

    /// Cancels up to `n` units; returns how many.
    fn forgive(&self, n: usize) -> usize {
        // Acquire: pairs with the AcqRel of `incur` and `absorb`.
        let mut d = self.0.load(Ordering::Acquire);
        loop {
            let k = d.min(n);
            if k == 0 {
                return 0;
            }
            // AcqRel: as `absorb`; Acquire on failure to reload.
            match self
                .0
                .compare_exchange_weak(d, d - k, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return k,
                Err(actual) => d = actual,
            }
        }
    }

    fn owed(&self) -> usize {
        // Acquire: pairs with the AcqRel of `incur` and `absorb`.
        self.0.load(Ordering::Acquire)
    }
}

/// The resize of the queue semaphore (whose word has no room for a negative count): `capacity` swapped for `new`; growth cancels debt
/// first and frees the rest (`free(n)`); a shrink incurs debt and pays what it can at once
/// from free permits (`take_free`), the rest as permits come back.
fn resize(
    capacity: &AtomicUsize,
    debt: &Debt,
    new: usize,
    take_free: impl Fn() -> bool,
    free: impl Fn(usize),
) {
    // AcqRel: concurrent resizes see each other's capacity in one order, so their deltas add
    // up to the last capacity set.
    let old = capacity.swap(new, Ordering::AcqRel);
    if new >= old {
        let grow = new - old;
        let cancelled = debt.forgive(grow);
        if grow > cancelled {
            free(grow - cancelled);
        }
    } else {
        // AcqRel: publishes the debt before the drain below and to every `absorb`.
        debt.0.fetch_add(old - new, Ordering::AcqRel);
        while debt.owed() > 0 && take_free() {
            if !debt.absorb() {
                free(1); // paid meanwhile by a permit given back: this one is not needed
                break;
            }
        }
    }
}

/// A reference to a semaphore is a semaphore: a bulkhead can count on one that lives in a
/// `static` (firmware) or is shared with other code.
///
/// ```
/// use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, ConfigError, TrySemaphore};
/// use bulwark::MockClock;
/// use core::time::Duration;
/// static SEM: Result<AtomicSemaphore, ConfigError> = AtomicSemaphore::new(1);
/// let sem = SEM.as_ref().unwrap();
/// let clock = MockClock::new();
/// let b = Bulkhead::with_semaphore(sem, Duration::ZERO, &clock);
/// let _p = b.try_acquire().unwrap();
/// assert_eq!(sem.available(), 0);
/// ```
impl<S: TrySemaphore + ?Sized> TrySemaphore for &S {
    #[inline]
    fn try_take(&self) -> bool {
        (**self).try_take()
    }

    #[inline]
    fn give_back(&self) {
        (**self).give_back()
    }

    fn available(&self) -> usize {
        (**self).available()
    }

    fn capacity(&self) -> usize {
        (**self).capacity()
    }
}

impl<S: Semaphore + ?Sized> Semaphore for &S {
    type Waiter = S::Waiter;

    fn poll_take(
        &self,
        waiter: Pin<&mut S::Waiter>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>> {
        (**self).poll_take(waiter, cx)
    }

    fn cancel(&self, waiter: Pin<&mut S::Waiter>) {
        (**self).cancel(waiter)
    }
}

/// A non-waiting, lock-free semaphore: one `AtomicUsize` of free permits.
///
/// `try_acquire` is a load and one CAS; the release on drop is one `fetch_add`. Usable from
/// interrupt handlers (see [Interrupt handlers](crate#interrupt-handlers) for targets without
/// 64-bit atomics).
///
/// # Memory ordering
///
/// Taking a permit is an `Acquire` CAS, giving one back a `Release` add: whatever a holder did
/// before dropping its permit happens-before whatever the next holder of that permit does
/// (with one permit, it is a mutex).
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{AtomicSemaphore, ConfigError, TrySemaphore};
/// static SEM: Result<AtomicSemaphore, ConfigError> = AtomicSemaphore::new(2);
/// let sem = SEM.as_ref().unwrap();
/// assert!(sem.try_take() && sem.try_take());
/// assert!(!sem.try_take());
/// sem.give_back();
/// sem.give_back();
/// assert_eq!(sem.available(), 2);
/// ```
pub struct AtomicSemaphore {
    /// Free permits, read as an `isize`: below zero after a shrink below the permits in use
    /// (the permits still to come back before one is free again).
    free: AtomicUsize,
    capacity: AtomicUsize,
}

impl AtomicSemaphore {
    const_fn! {
        /// `capacity` free permits. `const`, so it can be a `static` (of the `Result`).
        ///
        /// # Errors
        ///
        /// [`ConfigError::ZeroCapacity`] for `capacity = 0`: nothing could ever take a permit
        /// (a bulkhead over it would always be full); [`ConfigError::TooLarge`] above
        /// `u32::MAX` (or `isize::MAX`, on 32-bit targets: the count goes below zero while a
        /// shrink drains).
        ///
        /// ```
        /// use bulwark::bulkhead::{AtomicSemaphore, ConfigError, TrySemaphore};
        /// assert_eq!(AtomicSemaphore::new(3).unwrap().available(), 3);
        /// assert_eq!(AtomicSemaphore::new(0).err(), Some(ConfigError::ZeroCapacity));
        /// ```
        pub fn new(capacity: usize) -> Result<Self, ConfigError> {
            if capacity == 0 {
                return Err(ConfigError::ZeroCapacity);
            }
            if capacity > isize::MAX as usize || capacity as u64 > u32::MAX as u64 {
                return Err(ConfigError::TooLarge);
            }
            Ok(AtomicSemaphore {
                free: AtomicUsize::new(capacity),
                capacity: AtomicUsize::new(capacity),
            })
        }
    }
}

impl TrySemaphore for AtomicSemaphore {
    #[inline]
    fn try_take(&self) -> bool {
        // Relaxed first look: the CAS below is what synchronizes.
        let mut free = self.free.load(Ordering::Relaxed);
        loop {
            if free as isize <= 0 {
                return false; // none free, or still draining after a shrink
            }
            // Acquire on success: synchronizes with the Release `fetch_add` of the permit's
            // previous holder. Relaxed on failure: we only retry with the fresher count.
            match self.free.compare_exchange_weak(
                free,
                free - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => free = actual,
            }
        }
    }

    #[inline]
    fn give_back(&self) {
        // Release: synchronizes with the Acquire CAS of the next taker. After a shrink below
        // the permits in use, this pays back one of the permits owed (`free` below zero).
        self.free.fetch_add(1, Ordering::Release);
    }

    fn available(&self) -> usize {
        // Relaxed: a statistic.
        (self.free.load(Ordering::Relaxed) as isize).max(0) as usize
    }

    fn capacity(&self) -> usize {
        // Relaxed: a statistic.
        self.capacity.load(Ordering::Relaxed)
    }

    fn in_use(&self) -> usize {
        // Relaxed: statistics (capacity − free, `free` possibly below zero).
        let free = self.free.load(Ordering::Relaxed) as isize;
        (self.capacity() as isize).saturating_sub(free).max(0) as usize
    }
}

impl Resize for AtomicSemaphore {
    fn resize(&self, capacity: usize) -> Result<(), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if capacity > isize::MAX as usize || capacity as u64 > u32::MAX as u64 {
            return Err(ConfigError::TooLarge);
        }
        // AcqRel: concurrent resizes see each other's capacity in one order, so their deltas
        // add up to the last capacity set.
        let old = self.capacity.swap(capacity, Ordering::AcqRel);
        // AcqRel: a growth publishes its permits to the next taker's Acquire CAS; a shrink
        // (a wrapping add of a negative delta) may take `free` below zero, so takers are
        // refused until enough permits come back.
        self.free
            .fetch_add(capacity.wrapping_sub(old), Ordering::AcqRel);
        Ok(())
    }
}

impl fmt::Debug for AtomicSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicSemaphore")
            .field("available", &self.available())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// What a [`QueueSemaphore`] does when a caller must wait and its `Q` wait slots are taken.
///
/// ```
/// use bulwark::bulkhead::Overflow;
/// assert_eq!(Overflow::default(), Overflow::RejectNewest);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Overflow {
    /// The newcomer is rejected ([`QueueError::Full`]); the waiters keep their places.
    #[default]
    RejectNewest,
    /// The oldest waiter is shed ([`QueueError::Shed`]) and the newcomer takes its place:
    /// under sustained overload the freshest requests are the ones still worth serving.
    DropOldest,
}

/// One wait slot: the waiter's ticket (also its age) and its waker, taken out when woken.
struct Slot {
    ticket: u64,
    waker: Option<Waker>,
}

struct Slots<const Q: usize> {
    slots: [Option<Slot>; Q],
    next_ticket: u64,
}

const FREE_MASK: u64 = 0xFFFF_FFFF;
const ONE_WAITER: u64 = 1 << 32;

/// A semaphore that can wait: lock-free permits in front of a bounded wait queue of `Q`
/// fixed waker slots, guarded by a lock of strategy `L` (see [`lock`](crate::lock)). No
/// allocation. The core's waiting [`Semaphore`], so waiting bulkheads run
/// (and are tested) on any executor and on the [`MockClock`](crate::MockClock).
///
/// `try_acquire` and the release on drop touch one atomic word and no lock while nobody
/// waits. Waiters park in one of `Q` slots; once all are taken, [`Overflow`] decides who is
/// shed: the bounded queue is the load-shedding answer when the system is saturated.
/// Waking is greedy, not FIFO: a released permit wakes every parked waiter and goes to
/// whoever takes it first (possibly a `try_acquire` that never waited), like embassy-sync's
/// `GreedySemaphore`; `Q` is small, so waking all is cheap, and it means a woken waiter that is
/// then cancelled cannot swallow the wake-up meant for another.
///
/// # Interrupt handlers
///
/// The wait slots are locked while a waiter joins, leaves or is woken (wakers are woken after
/// the lock is released). With the default [`SpinLock`] do **not** use the semaphore from an
/// interrupt handler: an interrupt that gives a permit back while its own thread holds the slot
/// lock spins forever. With [`CriticalSectionLock`](crate::lock) (feature
/// `critical-section`) it may be used from interrupt handlers: e.g. an interrupt gives back a
/// permit and wakes the waiting task. [`LocalLock`](crate::lock::LocalLock) makes it `!Sync`
/// (one thread).
///
/// # Memory ordering
///
/// ```text
/// state: AtomicU64 = waiters << 32 | free permits
///   waiters = occupied wait slots; only changed under the slot lock
///   free    = permits not held; taken by CAS (Acquire), given back by fetch_add (AcqRel)
/// ```
///
/// A waiter stores its waker and increments `waiters` in one CAS, both under the slot lock
/// (or takes a free permit in that same CAS instead). A release adds the permit with one
/// `fetch_add` and reads `waiters` from the same value: if the waiter's CAS came first in the
/// word's modification order, the release sees `waiters > 0`, takes the lock (after the
/// waiter released it) and finds the waker; if the release came first, the waiter's CAS sees
/// the free permit. No wake-up is lost.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Overflow, QueueError, QueueSemaphore, QueueWaiter, Semaphore, TrySemaphore};
/// use core::{pin::pin, task::{Context, Poll, Waker}};
///
/// let sem: QueueSemaphore<1> = QueueSemaphore::with_overflow(1, Overflow::DropOldest).unwrap();
/// let cx = &mut Context::from_waker(Waker::noop());
/// assert!(sem.try_take());
/// let mut old = pin!(QueueWaiter::default());
/// assert!(sem.poll_take(old.as_mut(), cx).is_pending());
/// let mut new = pin!(QueueWaiter::default());
/// assert!(sem.poll_take(new.as_mut(), cx).is_pending()); // takes the only slot...
/// assert_eq!(sem.poll_take(old.as_mut(), cx), Poll::Ready(Err(QueueError::Shed)));
/// sem.give_back();
/// assert_eq!(sem.poll_take(new.as_mut(), cx), Poll::Ready(Ok(()))); // ...and gets the permit
/// ```
pub struct QueueSemaphore<const Q: usize, L = SpinLock> {
    state: AtomicU64,
    capacity: AtomicUsize,
    debt: Debt,
    overflow: Overflow,
    slots: Mutex<L, Slots<Q>>,
}

impl<const Q: usize, L: RawLock> QueueSemaphore<Q, L> {
    const_fn! {
        /// `capacity` free permits, `Q` wait slots, [`Overflow::RejectNewest`]. `const`, so it
        /// can be a `static` (of the `Result`).
        ///
        /// # Errors
        ///
        /// [`ConfigError::ZeroCapacity`] for `capacity = 0` (every caller would wait for
        /// nothing), [`ConfigError::TooLarge`] above `u32::MAX` (the permits share one
        /// 64-bit word with the waiter count).
        ///
        /// ```
        /// use bulwark::bulkhead::{ConfigError, QueueSemaphore, TrySemaphore};
        /// let sem: QueueSemaphore<8> = QueueSemaphore::new(3).unwrap();
        /// assert_eq!(sem.available(), 3);
        /// assert_eq!(QueueSemaphore::<8>::new(0).err(), Some(ConfigError::ZeroCapacity));
        /// # #[cfg(target_pointer_width = "64")]
        /// assert_eq!(QueueSemaphore::<8>::new(1 << 32).err(), Some(ConfigError::TooLarge));
        /// ```
        pub fn new(capacity: usize) -> Result<Self, ConfigError> {
            Self::with_overflow(capacity, Overflow::RejectNewest)
        }
    }

    const_fn! {
        /// As [`new`](QueueSemaphore::new), choosing who is shed when the queue is full.
        ///
        /// # Errors
        ///
        /// As [`new`](QueueSemaphore::new).
        ///
        /// ```
        /// use bulwark::bulkhead::{Overflow, QueueSemaphore};
        /// let sem: QueueSemaphore<8> = QueueSemaphore::with_overflow(3, Overflow::DropOldest).unwrap();
        /// assert_eq!(sem.overflow(), Overflow::DropOldest);
        /// ```
        pub fn with_overflow(capacity: usize, overflow: Overflow) -> Result<Self, ConfigError> {
            if capacity == 0 {
                return Err(ConfigError::ZeroCapacity);
            }
            if capacity as u64 > u32::MAX as u64 {
                return Err(ConfigError::TooLarge);
            }
            Ok(Self::checked(capacity as u32, overflow))
        }
    }

    const_fn! {
        /// With a capacity already checked to be above zero (a `u32` cannot be too large).
        pub(crate) fn checked(capacity: u32, overflow: Overflow) -> Self {
            QueueSemaphore {
                state: AtomicU64::new(capacity as u64),
                capacity: AtomicUsize::new(capacity as usize),
                debt: Debt::new(),
                overflow,
                slots: Mutex::new(Slots { slots: [const { None }; Q], next_ticket: 0 }),
            }
        }
    }

    /// The overflow policy.
    ///
    /// ```
    /// use bulwark::bulkhead::{Overflow, QueueSemaphore};
    /// assert_eq!(QueueSemaphore::<2>::new(1).unwrap().overflow(), Overflow::RejectNewest);
    /// ```
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Callers waiting now (a snapshot).
    ///
    /// ```
    /// use bulwark::bulkhead::QueueSemaphore;
    /// assert_eq!(QueueSemaphore::<2>::new(1).unwrap().waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        // Relaxed: a statistic.
        (self.state.load(Ordering::Relaxed) >> 32) as usize
    }

    #[inline]
    fn release(&self) {
        if self.debt.absorb() {
            return; // retired: the semaphore shrank below the permits in use
        }
        self.free(1);
    }

    /// Frees `n` permits and wakes the waiters, if any.
    #[inline]
    fn free(&self, n: usize) {
        // AcqRel: Release publishes the holder's work to the next taker's Acquire CAS;
        // Acquire reads `waiters` as of a CAS that, if it registered a waiter, happened
        // after that waiter stored its waker (see the type's "Memory ordering").
        let prev = self.state.fetch_add(n as u64, Ordering::AcqRel);
        if prev >> 32 != 0 {
            self.wake_waiters();
        }
    }

    /// Wakes every queued waiter (outside the lock).
    fn wake_waiters(&self) {
        let mut wakers: [Option<Waker>; Q] = [const { None }; Q];
        self.slots.lock(|s| {
            for (slot, out) in s.slots.iter_mut().zip(wakers.iter_mut()) {
                if let Some(slot) = slot {
                    *out = slot.waker.take();
                }
            }
        });
        // Woken outside the lock: a waker may run arbitrary code.
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    /// Takes a free permit, also leaving the wait queue when `leaving` (one CAS).
    fn take(&self, leaving: bool) -> bool {
        let dw = if leaving { ONE_WAITER } else { 0 };
        // Relaxed first look: the CAS below synchronizes.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & FREE_MASK == 0 {
                return false;
            }
            // Acquire on success: synchronizes with the Release of the permit's previous
            // holder (`release`). Relaxed on failure: retry with the fresher value.
            match self.state.compare_exchange_weak(
                s,
                s - 1 - dw,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }
}

impl<const Q: usize, L: RawLock> TrySemaphore for QueueSemaphore<Q, L> {
    #[inline]
    fn try_take(&self) -> bool {
        self.take(false)
    }

    #[inline]
    fn give_back(&self) {
        self.release();
    }

    fn available(&self) -> usize {
        // Relaxed: a statistic.
        (self.state.load(Ordering::Relaxed) & FREE_MASK) as usize
    }

    fn capacity(&self) -> usize {
        // Relaxed: a statistic.
        self.capacity.load(Ordering::Relaxed)
    }

    fn in_use(&self) -> usize {
        // Relaxed: statistics (capacity + debt − free, each a snapshot).
        (self.capacity() + self.debt.0.load(Ordering::Relaxed)).saturating_sub(self.available())
    }
}

impl<const Q: usize, L: RawLock> Resize for QueueSemaphore<Q, L> {
    fn resize(&self, capacity: usize) -> Result<(), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if capacity as u64 > u32::MAX as u64 {
            return Err(ConfigError::TooLarge);
        }
        resize(
            &self.capacity,
            &self.debt,
            capacity,
            || self.take(false),
            |n| self.free(n),
        );
        Ok(())
    }
}

impl<const Q: usize, L: RawLock> Semaphore for QueueSemaphore<Q, L> {
    type Waiter = QueueWaiter;

    fn poll_take(
        &self,
        waiter: Pin<&mut QueueWaiter>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>> {
        self.poll_waiter(&mut waiter.get_mut().place, cx)
    }

    fn wake_all(&self) {
        self.wake_waiters();
    }

    fn cancel(&self, waiter: Pin<&mut QueueWaiter>) {
        let waiter = waiter.get_mut();
        if let Place::Waiting { slot, ticket } = waiter.place {
            waiter.place = Place::Done;
            self.slots.lock(|s| {
                if s.slots[slot].as_ref().is_some_and(|x| x.ticket == ticket) {
                    s.slots[slot] = None;
                    // Release: pairs with the Acquire of a releaser reading the count. Under
                    // the lock, like every change of `waiters`.
                    self.state.fetch_sub(ONE_WAITER, Ordering::Release);
                }
            });
        }
    }
}

impl<const Q: usize, L: RawLock> fmt::Debug for QueueSemaphore<Q, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueSemaphore")
            .field("available", &self.available())
            .field("capacity", &self.capacity())
            .field("waiting", &self.waiting())
            .field("queue", &Q)
            .field("overflow", &self.overflow)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
enum Place {
    #[default]
    Start,
    Waiting {
        slot: usize,
        ticket: u64,
    },
    Done,
}

/// A caller's place in a [`QueueSemaphore`]'s wait queue (its [`Semaphore::Waiter`]).
///
/// # Cancellation
///
/// The waiting future calls [`Semaphore::cancel`] when dropped: its wait slot is freed at
/// once; a waiter never holds a permit.
///
/// ```
/// use bulwark::bulkhead::{QueueSemaphore, QueueWaiter, Semaphore, TrySemaphore};
/// use core::task::{Context, Waker};
/// let sem: QueueSemaphore<1> = QueueSemaphore::new(1).unwrap();
/// assert!(sem.try_take());
/// let mut w = core::pin::pin!(QueueWaiter::default());
/// assert!(sem.poll_take(w.as_mut(), &mut Context::from_waker(Waker::noop())).is_pending());
/// assert_eq!(sem.waiting(), 1);
/// sem.cancel(w.as_mut());
/// assert_eq!(sem.waiting(), 0);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueWaiter {
    place: Place,
}

impl<const Q: usize, L: RawLock> QueueSemaphore<Q, L> {
    /// One poll of a waiter at `place`.
    fn poll_waiter(
        &self,
        place_of: &mut Place,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), QueueError>> {
        let sem = self;
        let place = *place_of;
        let mut evicted: Option<Waker> = None;
        let (place, out) = match place {
            Place::Done => return Poll::Pending, // polled after completion
            Place::Start if sem.take(false) => (Place::Done, Some(Ok(()))),
            Place::Start => sem.slots.lock(|s| {
                let slot = match s.slots.iter().position(Option::is_none) {
                    Some(i) => Some((i, true)),
                    None if Q > 0 && sem.overflow == Overflow::DropOldest => s
                        .slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, x)| x.as_ref().map(|x| (x.ticket, i)))
                        .min()
                        .map(|(_, i)| (i, false)),
                    None => None,
                };
                let Some((i, fresh)) = slot else {
                    // Last chance before giving up: a permit may have been freed meanwhile.
                    return if sem.take(false) {
                        (Place::Done, Some(Ok(())))
                    } else {
                        (Place::Done, Some(Err(QueueError::Full)))
                    };
                };
                // Replacing the oldest waiter: it finds its ticket gone on its next poll.
                evicted = s.slots[i].take().and_then(|old| old.waker);
                let ticket = s.next_ticket;
                s.next_ticket = s.next_ticket.wrapping_add(1);
                s.slots[i] = Some(Slot {
                    ticket,
                    waker: Some(cx.waker().clone()),
                });
                // One CAS: take a permit freed since our first look, or join the waiters
                // (an evicting newcomer inherits the evicted waiter's count).
                let dw = if fresh { ONE_WAITER } else { 0 };
                // Relaxed first look: the CAS synchronizes.
                let mut st = sem.state.load(Ordering::Relaxed);
                let got = loop {
                    let (next, got) = if st & FREE_MASK > 0 {
                        (st - 1 - (ONE_WAITER - dw), true)
                    } else {
                        (st + dw, false)
                    };
                    // AcqRel: Acquire pairs with a releaser's fetch_add (we may take its
                    // permit); Release publishes the waker stored above to the releaser
                    // whose fetch_add reads this value and then takes the lock.
                    match sem.state.compare_exchange_weak(
                        st,
                        next,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break got,
                        Err(actual) => st = actual,
                    }
                };
                if got {
                    s.slots[i] = None;
                    (Place::Done, Some(Ok(())))
                } else {
                    (Place::Waiting { slot: i, ticket }, None)
                }
            }),
            Place::Waiting { slot, ticket } => sem.slots.lock(|s| match &mut s.slots[slot] {
                Some(x) if x.ticket == ticket => {
                    if sem.take(true) {
                        s.slots[slot] = None;
                        (Place::Done, Some(Ok(())))
                    } else {
                        match &x.waker {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => x.waker = Some(cx.waker().clone()),
                        }
                        (place, None)
                    }
                }
                _ => (Place::Done, Some(Err(QueueError::Shed))),
            }),
        };
        *place_of = place;
        if let Some(w) = evicted {
            // Outside the lock: a waker may run arbitrary code.
            w.wake();
        }
        match out {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn queue_semaphore_beyond_u32_max_permits_is_refused_not_clamped() {
        // Regression (issue 11, item 12): `new(usize::MAX)` used to give a semaphore of
        // u32::MAX permits, silently.
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(
                QueueSemaphore::<1>::new(usize::MAX).err(),
                Some(ConfigError::TooLarge)
            );
            assert_eq!(
                QueueSemaphore::<1>::with_overflow(u32::MAX as usize + 1, Overflow::DropOldest)
                    .err(),
                Some(ConfigError::TooLarge)
            );
        }
        let most = QueueSemaphore::<1>::new(u32::MAX as usize).unwrap();
        assert_eq!(most.capacity(), u32::MAX as usize);
        assert_eq!(most.available(), u32::MAX as usize);
    }

    #[test]
    fn zero_permit_atomic_semaphore_is_refused_not_a_bulkhead_that_is_always_full() {
        // Regression (issue 11, item 12): a bulkhead over `AtomicSemaphore::new(0)` rejected
        // every call, forever.
        assert_eq!(
            AtomicSemaphore::new(0).err(),
            Some(ConfigError::ZeroCapacity)
        );
        // Up to `u32::MAX` (and `isize::MAX`: the count goes below zero while a shrink drains).
        assert!(AtomicSemaphore::new(u32::MAX as usize).is_ok());
        assert_eq!(
            AtomicSemaphore::new(usize::MAX).err(),
            Some(ConfigError::TooLarge)
        );
    }

    #[test]
    fn zero_permit_queue_semaphore_is_refused_not_always_full() {
        assert_eq!(
            QueueSemaphore::<4>::new(0).err(),
            Some(ConfigError::ZeroCapacity)
        );
        assert_eq!(
            QueueSemaphore::<4>::with_overflow(0, Overflow::DropOldest).err(),
            Some(ConfigError::ZeroCapacity)
        );
    }
}
