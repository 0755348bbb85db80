//! A deterministic, allocation-free clock for tests, and a runner that drives a future on it.
//!
//! [`MockClock`] only moves when told to ([`MockClock::advance`], [`MockClock::set`]). Its
//! sleeps register their wakers in a fixed number of slots and are woken when time is moved
//! past their deadline, so they work under any executor; a sleep that finds every slot taken
//! panics with a message naming the capacity rather than never waking (see [`MockClock`]).
//! [`run`] drives one future to completion and, whenever the future is pending and nothing
//! woke it, jumps the clock to the earliest pending sleep deadline (what tokio's paused time
//! does): a scenario with minutes of backoff finishes in microseconds and gives the same
//! answer every time.
//!
//! # Examples
//!
//! ```
//! use bulwark::{Clock, Instant, MockClock, Sleep, mock};
//! use core::time::Duration;
//!
//! static CLOCK: MockClock = MockClock::new(); // usable from a `static`
//! let ticks = mock::run(&CLOCK, async {
//!     let mut ticks = [Instant::ZERO; 3];
//!     for t in &mut ticks {
//!         CLOCK.sleep(Duration::from_secs(90)).await;
//!         *t = CLOCK.now();
//!     }
//!     ticks
//! })
//! .unwrap();
//! assert_eq!(ticks, [Instant::from_secs(90), Instant::from_secs(180), Instant::from_secs(270)]);
//! ```

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;

use crate::lock::{Mutex, SpinLock};
use crate::sync::{AtomicBool, AtomicU64, Ordering, StaticAtomicUsize, const_fn};
use crate::time::{Clock, Instant, Sleep};

/// The default number of waker slots of a [`MockClock`].
///
/// ```
/// let _clock: bulwark::MockClock<{ bulwark::mock::DEFAULT_SLOTS }> = bulwark::MockClock::new();
/// ```
pub const DEFAULT_SLOTS: usize = 32;

/// A clock that moves only when told to. Allocation-free and usable from a `static`.
///
/// `N` is the number of sleeps that can wait with a registered waker at once (default
/// [`DEFAULT_SLOTS`]): raise it with [`MockClock::with_slots`], e.g.
/// `MockClock::<64>::with_slots()`. Under [`run`] any number of sleeps may wait (the runner
/// re-polls its future after every time jump, so a sleep that finds every slot taken only
/// records its deadline). A sleep polled by any other executor needs a slot of its own.
///
/// # Panics
///
/// Polling a [`MockSleep`] panics when every slot is taken and the waker is not [`run`]'s,
/// with a message naming `N` and how to raise it: that waker could never be called, and a
/// task that silently never wakes hangs a test. After such a refusal [`advance`] and [`set`]
/// panic too, so the test fails on its own thread even if an executor caught the task's panic.
///
/// [`advance`]: MockClock::advance
/// [`set`]: MockClock::set
///
/// # Examples
///
/// ```
/// use bulwark::{Clock, Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// assert_eq!(clock.now(), Instant::ZERO);
/// clock.advance(Duration::from_secs(2));
/// clock.set(Instant::from_secs(1)); // a clock may be stepped backwards in a test
/// assert_eq!(clock.now(), Instant::from_secs(1));
///
/// let big: MockClock<128> = MockClock::with_slots();
/// assert_eq!(big.now(), Instant::ZERO);
/// ```
pub struct MockClock<const N: usize = DEFAULT_SLOTS> {
    now: AtomicU64,
    /// The earliest deadline of a sleep polled by [`run`] that found no free slot
    /// (`u64::MAX`: none).
    overflow: AtomicU64,
    /// A sleep with any other waker found no free slot (and panicked): time may not move on.
    refused: AtomicBool,
    /// Spin-locked: a test clock, shared by threads, never touched by an interrupt handler.
    slots: Mutex<SpinLock, [Option<(Instant, Waker)>; N]>,
}

impl MockClock {
    const_fn! {
        /// A clock at [`Instant::ZERO`] with [`DEFAULT_SLOTS`] waker slots.
        ///
        /// ```
        /// let clock = bulwark::MockClock::new();
        /// # use bulwark::Clock;
        /// assert_eq!(clock.now(), bulwark::Instant::ZERO);
        /// ```
        pub fn new() -> Self {
            Self::with_slots()
        }
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MockClock<N> {
    const_fn! {
        /// A clock at [`Instant::ZERO`] with `N` waker slots.
        ///
        /// ```
        /// let clock: bulwark::MockClock<4> = bulwark::MockClock::with_slots();
        /// # use bulwark::Clock;
        /// assert_eq!(clock.now(), bulwark::Instant::ZERO);
        /// ```
        pub fn with_slots() -> Self {
            MockClock {
                now: AtomicU64::new(0),
                overflow: AtomicU64::new(u64::MAX),
                refused: AtomicBool::new(false),
                slots: Mutex::new([const { None }; N]),
            }
        }
    }

    /// Moves the clock forward by `d` (saturating) and wakes every sleep that is now due.
    ///
    /// # Panics
    ///
    /// When a sleep on this clock was refused a waker slot earlier (see [`MockClock`]).
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// clock.advance(Duration::from_millis(3));
    /// assert_eq!(clock.now(), Instant::from_millis(3));
    /// ```
    pub fn advance(&self, d: Duration) {
        let d = crate::time::duration_to_nanos(d);
        // Relaxed suffices for the value itself: `wake_due` takes the slot lock, which orders
        // this store before any sleep that registers afterwards (see `MockSleep::poll`).
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(d))
            });
        self.wake_due();
    }

    /// Sets the clock to `t`, forwards or backwards, and wakes every sleep that is now due.
    ///
    /// # Panics
    ///
    /// When a sleep on this clock was refused a waker slot earlier (see [`MockClock`]).
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock};
    /// let clock = MockClock::new();
    /// clock.set(Instant::from_secs(5));
    /// assert_eq!(clock.now(), Instant::from_secs(5));
    /// ```
    pub fn set(&self, t: Instant) {
        // Release: pairs with the Acquire load in `now`, so a reader that sees `t` also sees
        // everything the test did before moving the clock.
        self.now.store(t.as_nanos(), Ordering::Release);
        self.wake_due();
    }

    /// The earliest deadline among the sleeps waiting on this clock, if any.
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, Sleep};
    /// use core::{future::Future, pin::pin, task::{Context, Waker}};
    /// let clock = MockClock::new();
    /// let mut sleep = pin!(clock.sleep_until(Instant::from_secs(3)));
    /// assert!(sleep.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    /// assert_eq!(clock.next_deadline(), Some(Instant::from_secs(3)));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        let registered = self
            .slots
            .lock(|slots| slots.iter().flatten().map(|(at, _)| *at).min());
        // Acquire: pairs with the AcqRel `fetch_min` of an overflowing sleep.
        let overflow = self.overflow.load(Ordering::Acquire);
        let overflow = (overflow != u64::MAX).then_some(Instant::from_nanos(overflow));
        registered.into_iter().chain(overflow).min()
    }

    /// Wakes the sleeps whose deadline has passed, one slot at a time so that no waker runs
    /// while the slot lock is held.
    fn wake_due(&self) {
        // Acquire: pairs with the Release store of a refused sleep.
        if self.refused.load(Ordering::Acquire) {
            refused_earlier(N);
        }
        let now = self.now();
        // A sleep that overflowed the slots is re-polled by `run` after every jump; forget
        // its deadline once reached (it records itself again if still pending).
        let _ = self
            .overflow
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                (o <= now.as_nanos()).then_some(u64::MAX)
            });
        for i in 0..N {
            let due = self.slots.lock(|slots| match &slots[i] {
                Some((at, _)) if *at <= now => slots[i].take(),
                _ => None,
            });
            if let Some((_, waker)) = due {
                waker.wake();
            }
        }
    }
}

impl<const N: usize> Clock for MockClock<N> {
    fn now(&self) -> Instant {
        // Acquire: pairs with the Release store in `set` / the AcqRel update in `advance`.
        Instant::from_nanos(self.now.load(Ordering::Acquire))
    }
}

/// A mock clock waits through a reference to it: the sleep future holds that reference (the
/// waker slots live in the clock). [`MockClock::sleep`] and [`MockClock::sleep_until`] are the
/// same futures, callable on the clock itself.
impl<'a, const N: usize> Sleep for &'a MockClock<N> {
    type Sleep = MockSleep<&'a MockClock<N>, N>;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        MockSleep {
            clock: *self,
            deadline,
            slot: None,
        }
    }
}

/// A [`MockClock`] reached through an owning pointer (an `Arc<MockClock>` in a std test, an
/// `Rc`, a `&'static`): a [`Clock`] and [`Sleep`] whose sleeps own a clone of the pointer, so
/// a policy or a tower service on it can be `'static` without leaking the clock. Derefs to the
/// clock, so `advance` and `set` read as on the clock itself.
///
/// ```
/// use bulwark::{Clock, Instant, MockClock, Sleep, mock};
/// use bulwark::mock::Owned;
/// use core::time::Duration;
/// use std::sync::Arc;
///
/// let clock = Owned(Arc::new(MockClock::new()));
/// let sleeper = clock.clone(); // shares the clock
/// let nap = sleeper.sleep(Duration::from_secs(5)); // owns its pointer: `'static`
/// fn is_static<T: 'static>(_: &T) {}
/// is_static(&nap);
/// mock::run(&clock, nap).unwrap();
/// assert_eq!(sleeper.now(), Instant::from_secs(5));
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(sleeper.now(), Instant::from_secs(6));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Owned<P>(pub P);

impl<P: Deref> Deref for Owned<P> {
    type Target = P::Target;

    fn deref(&self) -> &P::Target {
        &self.0
    }
}

impl<P: Deref<Target = MockClock<N>>, const N: usize> Clock for Owned<P> {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

impl<P: Deref<Target = MockClock<N>> + Clone, const N: usize> Sleep for Owned<P> {
    type Sleep = MockSleep<P, N>;

    fn sleep_until(&self, deadline: Instant) -> MockSleep<P, N> {
        MockSleep {
            clock: self.0.clone(),
            deadline,
            slot: None,
        }
    }
}

impl<const N: usize> MockClock<N> {
    /// Completes once the clock reads `deadline` or later: [`Sleep::sleep_until`] on `&self`.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// let clock = MockClock::new();
    /// mock::run(&clock, clock.sleep_until(Instant::from_secs(3))).unwrap();
    /// assert_eq!(clock.now(), Instant::from_secs(3));
    /// ```
    pub fn sleep_until(&self, deadline: Instant) -> MockSleep<&Self, N> {
        Sleep::sleep_until(&self, deadline)
    }

    /// Completes after `d` has passed on this clock: [`Sleep::sleep`] on `&self`.
    ///
    /// ```
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// mock::run(&clock, clock.sleep(Duration::from_millis(5))).unwrap();
    /// assert_eq!(clock.now(), Instant::from_millis(5));
    /// ```
    pub fn sleep(&self, d: Duration) -> MockSleep<&Self, N> {
        Sleep::sleep(&self, d)
    }
}

impl<const N: usize> fmt::Debug for MockClock<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

/// The future of [`MockClock`]'s [`Sleep::sleep_until`], holding the clock through `P` (a
/// `&MockClock`, or the pointer of an [`Owned`]). Dropping it frees its waker slot.
///
/// # Panics
///
/// When polled (pending) with a waker other than [`run`]'s while all `N` slots of its clock
/// are taken: see [`MockClock`]. The message names `N` and how to raise it.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, MockClock, Sleep};
/// use core::{future::Future, pin::pin, task::{Context, Poll, Waker}};
/// let clock = MockClock::new();
/// let mut s = pin!(clock.sleep_until(Instant::from_nanos(10)));
/// let mut cx = Context::from_waker(Waker::noop());
/// assert_eq!(s.as_mut().poll(&mut cx), Poll::Pending);
/// clock.set(Instant::from_nanos(10));
/// assert_eq!(s.as_mut().poll(&mut cx), Poll::Ready(()));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct MockSleep<P: Deref<Target = MockClock<N>>, const N: usize = DEFAULT_SLOTS> {
    clock: P,
    deadline: Instant,
    slot: Option<usize>,
}

// Nothing in a sleep is pinned: the pointer to the clock is only read through.
impl<P: Deref<Target = MockClock<N>>, const N: usize> Unpin for MockSleep<P, N> {}

impl<P: Deref<Target = MockClock<N>>, const N: usize> Future for MockSleep<P, N> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let clock: &MockClock<N> = &this.clock;
        let deadline = this.deadline;
        let mut slot = this.slot;
        // The time check happens under the slot lock: a concurrent `set`/`advance` stores the
        // new time *before* taking the lock to wake, so either we see the new time here, or
        // we register first and its `wake_due` finds our waker. No wake-up is lost.
        let outcome = clock.slots.lock(|slots| {
            if clock.now() >= deadline {
                if let Some(i) = slot.take() {
                    slots[i] = None;
                }
                return Registered::Ready;
            }
            match slot {
                Some(i) => match &mut slots[i] {
                    Some((_, w)) if w.will_wake(cx.waker()) => {}
                    s => *s = Some((deadline, cx.waker().clone())),
                },
                None => match slots.iter().position(Option::is_none) {
                    Some(i) => {
                        slots[i] = Some((deadline, cx.waker().clone()));
                        slot = Some(i);
                    }
                    // `run` re-polls its whole future after every time jump, so a sleep
                    // polled with its waker needs no slot: remembering the deadline is enough.
                    None if cx.waker().will_wake(&counting_waker()) => {
                        let _ = clock
                            .overflow
                            .fetch_min(deadline.as_nanos(), Ordering::AcqRel);
                    }
                    // Any other waker would never be called: refuse, outside the lock.
                    None => return Registered::Refused,
                },
            }
            Registered::Pending
        });
        this.slot = slot;
        match outcome {
            Registered::Ready => Poll::Ready(()),
            Registered::Pending => Poll::Pending,
            Registered::Refused => {
                // Release: pairs with the Acquire load in `wake_due`, which fails the test's
                // next `advance`/`set` too, in case an executor swallows this task's panic.
                clock.refused.store(true, Ordering::Release);
                slots_full(N)
            }
        }
    }
}

/// Fails the test's own thread too: a sleep was refused a slot on a task whose panic an
/// executor (tokio, async-std) may have caught, and moving time on would leave it asleep.
#[cold]
#[track_caller]
fn refused_earlier(n: usize) -> ! {
    panic!(
        "MockClock: a sleep on this clock found all {n} waker slots taken and could never be \
         woken (its task panicked); give the clock a slot for every sleep that waits at once, \
         e.g. `MockClock::<{more}>::with_slots()`",
        more = n.saturating_mul(2).max(1),
    )
}

/// What a [`MockSleep`] poll found under the slot lock.
enum Registered {
    Ready,
    Pending,
    /// Every slot is taken and the waker is not [`run`]'s: nothing could ever wake it.
    Refused,
}

/// The loud failure of a sleep that cannot register its waker (never while the slot lock is
/// held, so the other sleeps can still be dropped while the panic unwinds).
#[cold]
#[track_caller]
fn slots_full(n: usize) -> ! {
    panic!(
        "MockClock: all {n} waker slots are taken, so this sleep could never be woken \
         (only `mock::run` can drive more sleeps than slots); give the clock a slot for every \
         sleep that waits at once, e.g. `MockClock::<{more}>::with_slots()`",
        more = n.saturating_mul(2).max(1),
    )
}

impl<P: Deref<Target = MockClock<N>>, const N: usize> Drop for MockSleep<P, N> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.clock.slots.lock(|slots| slots[i] = None);
        }
    }
}

/// [`run`] found the future pending with nothing left to wake it: no sleep is waiting on the
/// clock and no waker was called. On a single-future runner that is a deadlock.
///
/// ```
/// use bulwark::{MockClock, mock};
/// let clock = MockClock::new();
/// let err = mock::run(&clock, core::future::pending::<()>()).unwrap_err();
/// assert_eq!(err, mock::Stalled);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stalled;

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future is pending and nothing can wake it (no sleep is waiting)")
    }
}

impl core::error::Error for Stalled {}

/// Counts every wake of a waker made by [`run`]. One counter for all runners: a wake from
/// another thread's runner only costs this runner an extra poll, never a missed wake. Never
/// loom's atomic: a `static` needs a const constructor, and the runner is not what loom models.
static WAKES: StaticAtomicUsize = StaticAtomicUsize::new(0);

fn counting_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(core::ptr::null(), &VTABLE)
    }
    fn wake(_: *const ()) {
        // Release: pairs with the Acquire loads in `run`, so a runner that sees the new count
        // also sees what the waking side did before waking.
        WAKES.fetch_add(1, Ordering::Release);
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the vtable functions never read the data pointer (it is null), they are all
    // thread-safe (an atomic increment or nothing), and `clone` returns a waker with the same
    // vtable, so every contract of `RawWakerVTable` holds for any number of clones on any
    // thread, for any lifetime.
    unsafe { Waker::from_raw(RawWaker::new(core::ptr::null(), &VTABLE)) }
}

/// Drives `fut` to completion on `clock`: polls it, and whenever it is pending and nothing
/// woke it, moves the clock to the earliest sleep deadline and polls again.
///
/// # Errors
///
/// [`Stalled`] when the future is pending, nothing woke it and no sleep waits on the clock.
///
/// # Examples
///
/// ```
/// use bulwark::{Clock, Instant, MockClock, Sleep, mock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let out = mock::run(&clock, async {
///     clock.sleep(Duration::from_secs(3600)).await;
///     "an hour later"
/// });
/// assert_eq!(out, Ok("an hour later"));
/// assert_eq!(clock.now(), Instant::from_secs(3600));
/// ```
pub fn run<F: Future, const N: usize>(clock: &MockClock<N>, fut: F) -> Result<F::Output, Stalled> {
    let waker = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = core::pin::pin!(fut);
    loop {
        // Acquire: pairs with the Release increment in `wake`.
        let before = WAKES.load(Ordering::Acquire);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if WAKES.load(Ordering::Acquire) != before {
            continue; // woken while polling: poll again before moving time
        }
        match clock.next_deadline() {
            Some(at) => clock.set(at.max(clock.now())),
            None => return Err(Stalled),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`join`].
    ///
    /// ```
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let j: mock::Join<_, _> = mock::join(async { 1 }, async { 2 });
    /// assert_eq!(mock::run(&clock, j), Ok((1, 2)));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Join<A: Future, B: Future> {
        #[pin]
        a: A,
        #[pin]
        b: B,
        ra: Option<A::Output>,
        rb: Option<B::Output>,
    }
}

/// Runs two futures concurrently on one task and yields both outputs: enough to stage a
/// race (two callers, a caller and a canceller) under [`run`] without an executor or alloc.
///
/// # Examples
///
/// ```
/// use bulwark::{Clock, Instant, MockClock, Sleep, mock};
/// use core::time::Duration;
/// let clock = MockClock::new();
/// let slow = async { clock.sleep(Duration::from_secs(2)).await; clock.now() };
/// let fast = async { clock.sleep(Duration::from_secs(1)).await; clock.now() };
/// let (a, b) = mock::run(&clock, mock::join(slow, fast)).unwrap();
/// assert_eq!((a, b), (Instant::from_secs(2), Instant::from_secs(1)));
/// ```
pub fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a,
        b,
        ra: None,
        rb: None,
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.ra.is_none()
            && let Poll::Ready(v) = this.a.poll(cx)
        {
            *this.ra = Some(v);
        }
        if this.rb.is_none()
            && let Poll::Ready(v) = this.b.poll(cx)
        {
            *this.rb = Some(v);
        }
        match (this.ra.take(), this.rb.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                *this.ra = a;
                *this.rb = b;
                Poll::Pending
            }
        }
    }
}

impl<A: Future, B: Future> fmt::Debug for Join<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("a_done", &self.ra.is_some())
            .field("b_done", &self.rb.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use core::pin::pin;

    #[test]
    fn sleeps_wake_in_deadline_order_under_run() {
        let clock = MockClock::new();
        let order = run(&clock, async {
            let mut log = [0u64; 3];
            for (slot, secs) in log.iter_mut().zip([5, 1, 3]) {
                clock.sleep(Duration::from_secs(secs)).await;
                *slot = clock.now().as_nanos() / 1_000_000_000;
            }
            log
        })
        .unwrap();
        assert_eq!(order, [5, 6, 9]);
    }

    #[test]
    fn dropped_sleep_frees_its_slot() {
        let clock: MockClock<1> = MockClock::with_slots();
        let cx = &mut Context::from_waker(Waker::noop());
        {
            let mut s = pin!(clock.sleep_until(Instant::from_secs(1)));
            assert!(s.as_mut().poll(cx).is_pending());
            assert_eq!(clock.next_deadline(), Some(Instant::from_secs(1)));
        }
        assert_eq!(clock.next_deadline(), None);
        let mut s = pin!(clock.sleep_until(Instant::from_secs(2)));
        assert!(s.as_mut().poll(cx).is_pending());
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(2)));
    }

    #[test]
    fn overflowing_sleeps_still_complete_under_run() {
        // Two sleeps at once on a clock with one slot: the second overflows, and `run` still
        // finishes both at their own instants.
        let clock: MockClock<1> = MockClock::with_slots();
        let a = async {
            clock.sleep_until(Instant::from_secs(2)).await;
            clock.now()
        };
        let b = async {
            clock.sleep_until(Instant::from_secs(1)).await;
            clock.now()
        };
        let (ta, tb) = run(&clock, join(a, b)).unwrap();
        assert_eq!((ta, tb), (Instant::from_secs(2), Instant::from_secs(1)));
    }

    #[test]
    fn set_backwards_then_forwards_wakes_once_due() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(10));
        let cx = &mut Context::from_waker(Waker::noop());
        let mut s = pin!(clock.sleep_until(Instant::from_secs(12)));
        assert!(s.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_secs(3)); // backwards: still pending
        assert!(s.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_secs(12));
        assert!(s.as_mut().poll(cx).is_ready());
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn advance_saturates() {
        let clock = MockClock::new();
        clock.set(Instant::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Instant::MAX);
    }

    #[test]
    fn stalled_is_reported_not_hung() {
        let clock = MockClock::new();
        assert_eq!(run(&clock, core::future::pending::<u8>()), Err(Stalled));
    }

    /// A task of a foreign (multi-task) executor: its own waker, which records the wake.
    struct Task(core::sync::atomic::AtomicBool);
    impl std::task::Wake for Task {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, core::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Polls `tasks` sleeps of 1 s, each from its own task (its own waker), moves the clock
    /// past them and returns how many tasks were woken.
    fn sleeping_tasks_woken<const N: usize>(clock: &MockClock<N>, tasks: usize) -> usize {
        use std::{boxed::Box, sync::Arc, vec::Vec};
        let mut sleeps: Vec<_> = (0..tasks)
            .map(|_| {
                let task = Arc::new(Task(core::sync::atomic::AtomicBool::new(false)));
                (Box::pin(clock.sleep_until(Instant::from_secs(1))), task)
            })
            .collect();
        for (s, task) in &mut sleeps {
            let waker = Waker::from(task.clone());
            assert!(
                s.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        clock.advance(Duration::from_secs(1));
        sleeps
            .iter()
            .filter(|(_, t)| t.0.load(core::sync::atomic::Ordering::SeqCst))
            .count()
    }

    #[test]
    fn forty_sleeping_tasks_are_all_woken_or_fail_loudly_naming_the_capacity() {
        // Regression (issue 11, item 10): 40 tasks sleeping on a clock with 32 slots; 32
        // woke and 8 never did, silently. Either every task wakes, or the test fails loudly
        // with a message naming the capacity and how to raise it.
        let clock = MockClock::new();
        let outcome = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            sleeping_tasks_woken(&clock, 40)
        }));
        match outcome {
            Ok(woken) => assert_eq!(woken, 40, "only {woken} of 40 sleeping tasks woke"),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<std::string::String>()
                    .map(|s| s.as_str())
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("");
                assert!(
                    msg.contains("32 waker slots") && msg.contains("with_slots"),
                    "the panic must name the capacity and how to raise it: {msg:?}"
                );
            }
        }
    }

    #[test]
    fn a_refused_sleep_fails_the_next_advance_too() {
        // An executor may catch the refused task's panic; the thread moving time must still
        // fail, not leave that task asleep forever.
        let clock: MockClock<1> = MockClock::with_slots();
        let refused = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            sleeping_tasks_woken(&clock, 2)
        }));
        assert!(refused.is_err(), "the second sleep must be refused");
        let advance = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            clock.advance(Duration::from_secs(1))
        }));
        let msg = advance.expect_err("advance after a refusal must panic");
        let msg = msg.downcast_ref::<std::string::String>().unwrap();
        assert!(
            msg.contains("all 1 waker slots") && msg.contains("with_slots"),
            "{msg}"
        );
    }

    #[test]
    fn forty_sleeping_tasks_all_wake_on_a_clock_with_enough_slots() {
        let clock: MockClock<40> = MockClock::with_slots();
        assert_eq!(sleeping_tasks_woken(&clock, 40), 40);
    }

    #[test]
    fn waker_wakes_across_threads() {
        // A sleep registered on one thread is woken by `advance` on another.
        let clock = MockClock::new();
        let waker = counting_waker();
        let cx = &mut Context::from_waker(&waker);
        let mut s = pin!(clock.sleep_until(Instant::from_secs(1)));
        assert!(s.as_mut().poll(cx).is_pending());
        let before = WAKES.load(Ordering::Acquire);
        std::thread::scope(|sc| {
            sc.spawn(|| clock.advance(Duration::from_secs(1)));
        });
        assert!(WAKES.load(Ordering::Acquire) > before);
        assert!(s.as_mut().poll(cx).is_ready());
    }
}
