//! Waiting for a permit: [`Bulkhead::acquire`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use core::ops::Deref;

use super::Events;
use super::error::Rejected;
use super::shared::Bulkhead;
use super::state::{Semaphore, TrySemaphore};
use crate::admission::Permit;
use crate::sync::Ordering;
use crate::time::{Instant, Sleep};

impl<S: Semaphore, C: Sleep, E: Events> Bulkhead<S, C, E> {
    /// Takes a permit, waiting for one up to the max wait.
    ///
    /// A free permit is taken at once. Otherwise, with a zero max wait the call is shed
    /// ([`Rejected::Full`]); else it waits through the semaphore's
    /// [`poll_take`](Semaphore::poll_take), raced against a sleep until `first poll + max wait`.
    /// A permit that frees up at the deadline itself still wins.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`], [`Rejected::QueueFull`], [`Rejected::Shed`],
    /// [`Rejected::Timeout`] (at exactly the deadline), [`Rejected::Closed`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future while it waits leaves the wait queue at once; it holds no permit
    /// until it completes with one.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore, Rejected};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    ///
    /// let clock = MockClock::new();
    /// let b: Bulkhead<QueueSemaphore<4>, _> =
    ///     Bulkhead::queued(Config::new(1).max_wait(Duration::from_millis(100)), &clock).unwrap();
    /// let held = b.try_acquire().unwrap();
    /// let r = mock::run(&clock, b.acquire()).unwrap();
    /// assert_eq!(r.unwrap_err(), Rejected::Timeout);
    /// assert_eq!(clock.now(), Instant::from_millis(100));
    /// drop(held);
    /// assert!(mock::run(&clock, b.acquire()).unwrap().is_ok());
    /// ```
    pub fn acquire(&self) -> Acquire<&Self, S, C, E> {
        Acquire::new(self)
    }
}

pin_project! {
    /// The future of [`Bulkhead::acquire`] (and [`Compartments::acquire`](super::Compartments::acquire)).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let b: Bulkhead<QueueSemaphore<4>, _> = Bulkhead::queued(Config::new(1), &clock).unwrap();
    /// let fut = b.acquire();
    /// fn is_send<T: Send>(_: &T) {}
    /// is_send(&fut);
    /// assert!(mock::run(&clock, fut).unwrap().is_ok());
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Acquire<R, S, C, E = ()>
    where
        R: Deref<Target = Bulkhead<S, C, E>>,
        S: Semaphore,
        C: Sleep,
    {
        bulkhead: Option<R>,
        started: bool,
        waiting: bool,
        // When the wait began and the deadline its sleep is armed for: the deadline follows
        // the bulkhead's `max_wait` if it changes while waiting.
        since: Instant,
        deadline: Instant,
        #[pin]
        waiter: S::Waiter,
        #[pin]
        sleep: Option<C::Sleep>,
    }

    impl<R, S, C, E> PinnedDrop for Acquire<R, S, C, E>
    where
        R: Deref<Target = Bulkhead<S, C, E>>,
        S: Semaphore,
        C: Sleep,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.waiting && let Some(b) = this.bulkhead.as_ref() {
                // Dropped while waiting: leave the queue at once.
                b.sem.cancel(this.waiter);
            }
        }
    }
}

impl<R, S, C, E> Acquire<R, S, C, E>
where
    R: Deref<Target = Bulkhead<S, C, E>>,
    S: Semaphore,
    C: Sleep,
{
    /// A wait for a permit of the bulkhead `bulkhead` points to: what [`Bulkhead::acquire`]
    /// returns, for any owner of the bulkhead (an `Arc`, a `&'static`), so that the future
    /// and the permit it yields can be `'static`.
    ///
    /// ```
    /// use bulwark::bulkhead::{Acquire, Bulkhead, Config, QueueSemaphore};
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    /// let clock = MockClock::new();
    /// let b: Arc<Bulkhead<QueueSemaphore<4>, _>> = Arc::new(Bulkhead::queued(Config::new(1), &clock).unwrap());
    /// let permit = mock::run(&clock, Acquire::new(Arc::clone(&b))).unwrap().unwrap();
    /// assert_eq!(b.metrics().in_use, 1);
    /// drop(permit);
    /// assert_eq!(b.metrics().in_use, 0);
    /// ```
    pub fn new(bulkhead: R) -> Self {
        Self::of(Some(bulkhead))
    }

    pub(super) fn of(bulkhead: Option<R>) -> Self {
        Acquire {
            bulkhead,
            started: false,
            waiting: false,
            since: Instant::ZERO,
            deadline: Instant::ZERO,
            waiter: S::Waiter::default(),
            sleep: None,
        }
    }
}

impl<R, S, C, E> Future for Acquire<R, S, C, E>
where
    R: Deref<Target = Bulkhead<S, C, E>>,
    S: Semaphore,
    C: Sleep,
    E: Events,
{
    type Output = Result<Permit<R>, Rejected>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(b) = this.bulkhead.as_ref() else {
            // No such compartment, or polled after completion.
            return Poll::Ready(Err(Rejected::NoSuchCompartment));
        };
        if !*this.started {
            *this.started = true;
            if b.sem.try_take() {
                return Poll::Ready(admitted(this.bulkhead));
            }
            let max_wait = b.max_wait();
            if max_wait.is_zero() {
                return Poll::Ready(Err(rejected(b, Rejected::Full)));
            }
            // Relaxed: a statistic.
            b.waited.fetch_add(1, Ordering::Relaxed);
            *this.since = b.clock.now();
            *this.deadline = this.since.saturating_add(max_wait);
            *this.waiting = true;
            this.sleep.set(Some(b.clock.sleep_until(*this.deadline)));
        }
        if !*this.waiting {
            return Poll::Pending; // polled after completion
        }
        let deadline = this.since.saturating_add(b.max_wait());
        if deadline != *this.deadline {
            // `max_wait` changed while waiting: the sleep follows it.
            *this.deadline = deadline;
            this.sleep.set(Some(b.clock.sleep_until(deadline)));
        }
        if let Poll::Ready(r) = b.sem.poll_take(this.waiter.as_mut(), cx) {
            *this.waiting = false;
            this.sleep.set(None);
            return Poll::Ready(match r {
                Ok(()) => admitted(this.bulkhead),
                Err(e) => Err(rejected(b, e.into())),
            });
        }
        if let Some(sleep) = this.sleep.as_mut().as_pin_mut()
            && sleep.poll(cx).is_ready()
        {
            b.sem.cancel(this.waiter.as_mut());
            *this.waiting = false;
            this.sleep.set(None);
            // Relaxed: a statistic.
            b.timed_out.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(rejected(b, Rejected::Timeout)));
        }
        Poll::Pending
    }
}

/// The permit for the semaphore permit just taken: moves the owner out of the future (the
/// caller has just read it there, so the error cannot happen).
fn admitted<R, S, C, E>(bulkhead: &mut Option<R>) -> Result<Permit<R>, Rejected>
where
    R: Deref<Target = Bulkhead<S, C, E>>,
    S: TrySemaphore,
    E: Events,
{
    let b = bulkhead.take().ok_or(Rejected::NoSuchCompartment)?;
    b.events.on_permitted();
    Ok(Permit::from_ticket(b, ()))
}

/// Counts and tells a rejection.
fn rejected<S, C, E: Events>(b: &Bulkhead<S, C, E>, why: Rejected) -> Rejected {
    b.count_rejected();
    b.events.on_rejected(why);
    why
}

impl<R, S, C, E> fmt::Debug for Acquire<R, S, C, E>
where
    R: Deref<Target = Bulkhead<S, C, E>>,
    S: Semaphore,
    C: Sleep,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("started", &self.started)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::{Config, Metrics, Overflow, QueueSemaphore, Rejected, TrySemaphore};
    use super::*;
    use crate::{Clock, Instant, MockClock, mock};
    use core::pin::pin;
    use core::task::Waker;
    use core::time::Duration;

    type Queued<'c, const Q: usize> = Bulkhead<QueueSemaphore<Q>, &'c MockClock>;

    fn queued<const Q: usize>(clock: &MockClock, max: usize, wait_ms: u64) -> Queued<'_, Q> {
        Bulkhead::queued(
            Config::new(max).max_wait(Duration::from_millis(wait_ms)),
            clock,
        )
        .unwrap()
    }

    #[test]
    fn waiter_gets_the_permit_in_time() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 1, 500);
        let held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        clock.advance(Duration::from_millis(499));
        assert!(waiter.as_mut().poll(cx).is_pending());
        drop(held);
        let p = match waiter.as_mut().poll(cx) {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => panic!("permit was freed"),
        };
        assert_eq!(clock.now(), Instant::from_millis(499));
        let m = b.metrics();
        let tot = b.totals();
        assert_eq!(
            (m.in_use, tot.waited, tot.rejected, tot.timed_out),
            (1, 1, 0, 0)
        );
        drop(p);
        assert_eq!(b.metrics().in_use, 0);
    }

    #[test]
    fn permit_freed_at_the_deadline_still_wins() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 1, 500);
        let held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(500));
        drop(held);
        assert!(matches!(waiter.as_mut().poll(cx), Poll::Ready(Ok(_))));
    }

    #[test]
    fn waiter_times_out_at_the_exact_instant() {
        let clock = MockClock::new();
        clock.set(Instant::from_secs(7));
        let b: Queued<'_, 4> = queued(&clock, 1, 250);
        let _held = b.try_acquire().unwrap();
        let (r, at) =
            mock::run(&clock, async { (b.acquire().await.map(drop), clock.now()) }).unwrap();
        assert_eq!(r, Err(Rejected::Timeout));
        assert_eq!(at, Instant::from_millis(7_250));
        assert_eq!(
            b.semaphore().waiting(),
            0,
            "the timed-out waiter left the queue"
        );
        let m = b.metrics();
        let tot = b.totals();
        assert_eq!(
            (m.in_use, tot.waited, tot.rejected, tot.timed_out),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn zero_max_wait_sheds_at_once() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 1, 0);
        let _held = b.try_acquire().unwrap();
        let r = mock::run(&clock, b.acquire()).unwrap();
        assert_eq!(r.map(drop), Err(Rejected::Full));
        assert_eq!(clock.now(), Instant::ZERO);
    }

    #[test]
    fn full_queue_rejects_newest() {
        let clock = MockClock::new();
        let b: Queued<'_, 1> = queued(&clock, 1, 1_000);
        let held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut first = pin!(b.acquire());
        assert!(first.as_mut().poll(cx).is_pending());
        let mut second = pin!(b.acquire());
        assert!(matches!(
            second.as_mut().poll(cx),
            Poll::Ready(Err(Rejected::QueueFull))
        ));
        drop(held);
        assert!(matches!(first.as_mut().poll(cx), Poll::Ready(Ok(_))));
    }

    #[test]
    fn full_queue_drops_oldest() {
        let clock = MockClock::new();
        let b: Queued<'_, 2> = Bulkhead::queued(
            Config::new(1)
                .max_wait(Duration::from_secs(1))
                .overflow(Overflow::DropOldest),
            &clock,
        )
        .unwrap();
        let held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut w1 = pin!(b.acquire());
        let mut w2 = pin!(b.acquire());
        let mut w3 = pin!(b.acquire());
        assert!(w1.as_mut().poll(cx).is_pending());
        assert!(w2.as_mut().poll(cx).is_pending());
        assert!(w3.as_mut().poll(cx).is_pending());
        assert!(matches!(
            w1.as_mut().poll(cx),
            Poll::Ready(Err(Rejected::Shed))
        ));
        assert_eq!(b.semaphore().waiting(), 2);
        drop(held);
        let Poll::Ready(Ok(p2)) = w2.as_mut().poll(cx) else {
            panic!("w2 gets the freed permit")
        };
        assert_eq!(b.semaphore().waiting(), 1);
        assert!(w3.as_mut().poll(cx).is_pending());
        drop(p2);
        assert!(matches!(w3.as_mut().poll(cx), Poll::Ready(Ok(_))));
        assert_eq!(b.totals().rejected, 1);
    }

    #[test]
    fn cancelled_waiter_and_cancelled_holder_free_everything() {
        let clock = MockClock::new();
        let b: Queued<'_, 2> = queued(&clock, 1, 1_000);
        let cx = &mut Context::from_waker(Waker::noop());
        {
            let mut holder = pin!(b.acquire());
            let p = match holder.as_mut().poll(cx) {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => panic!(),
            };
            let mut waiter = pin!(b.acquire());
            assert!(waiter.as_mut().poll(cx).is_pending());
            assert_eq!(b.semaphore().waiting(), 1);
            drop(p);
        } // the waiter is dropped after being woken but before taking the permit
        assert_eq!(b.semaphore().waiting(), 0);
        assert_eq!(b.semaphore().available(), 1);
        assert_eq!(b.metrics().in_use, 0);
    }

    #[test]
    fn release_wakes_a_parked_waiter_under_run() {
        // Two tasks: one holds the permit for 100 ms, the other waits for it.
        let clock = MockClock::new();
        let b: Queued<'_, 2> = queued(&clock, 1, 1_000);
        let at = mock::run(&clock, async {
            let p = b.acquire().await.unwrap();
            let mut waiter = pin!(b.acquire());
            let mut sleep = pin!(clock.sleep(Duration::from_millis(100)));
            core::future::poll_fn(|cx| {
                assert!(waiter.as_mut().poll(cx).is_pending());
                sleep.as_mut().poll(cx)
            })
            .await;
            drop(p);
            let _p2 = waiter.await.unwrap();
            clock.now()
        })
        .unwrap();
        assert_eq!(at, Instant::from_millis(100));
    }

    #[test]
    fn huge_and_zero_configs_are_typed() {
        let clock = MockClock::new();
        assert_eq!(
            Bulkhead::new(Config::new(0), &clock).unwrap_err(),
            super::super::ConfigError::ZeroCapacity
        );
        if usize::BITS > 32 {
            assert_eq!(
                Bulkhead::new(Config::new(usize::MAX), &clock).unwrap_err(),
                super::super::ConfigError::TooLarge
            );
        }
        let b: Queued<'_, 0> = Bulkhead::queued(
            Config::new(u32::MAX as usize).max_wait(Duration::MAX),
            &clock,
        )
        .unwrap();
        assert_eq!(b.metrics().max, u32::MAX as usize);
        let _p = b.try_acquire().unwrap();
        // Q = 0 and max wait ≈ forever: waiting is a queue of zero, rejected at once when full.
        let one: Queued<'_, 0> =
            Bulkhead::queued(Config::new(1).max_wait(Duration::MAX), &clock).unwrap();
        let _h = one.try_acquire().unwrap();
        assert_eq!(
            mock::run(&clock, one.acquire()).unwrap().map(drop),
            Err(Rejected::QueueFull)
        );
        assert_eq!(one.semaphore().available(), 0);
    }

    /// resilience4j `Bulkhead.changeConfig`: a new `maxConcurrentCalls` applies to calls
    /// already waiting. A waiter queued at 0 s behind the one permit is admitted at 0.2 s, when
    /// the limit grows to 2, not when the holder leaves.
    #[test]
    fn a_waiter_in_flight_is_admitted_when_the_limit_grows() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 1, 1_000);
        let _held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        clock.advance(Duration::from_millis(200));
        b.set_max_concurrent(2).unwrap();
        let Poll::Ready(Ok(_admitted)) = waiter.as_mut().poll(cx) else {
            panic!("not admitted when the limit grew");
        };
        assert_eq!(clock.now(), Instant::from_millis(200));
        assert_eq!(b.metrics(), Metrics { in_use: 2, max: 2 });
    }

    /// resilience4j `Bulkhead.changeConfig` with a new `maxWaitDuration`: here a waiter in
    /// flight measures the new wait from when it started. Started at 0 s with 1 s: cut to
    /// 0.2 s at 0.3 s, it is rejected at once, at 0.3 s; another, raised to 2 s at 0.5 s,
    /// waits until 2 s.
    #[test]
    fn a_waiter_in_flight_follows_a_new_max_wait() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 1, 1_000);
        let _held = b.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(300));
        b.set_max_wait(Duration::from_millis(200));
        assert!(matches!(
            waiter.as_mut().poll(cx),
            Poll::Ready(Err(Rejected::Timeout))
        ));
        b.set_max_wait(Duration::from_secs(1));
        // Another, raised at 0.5 s from 1 s to 2 s.
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending()); // started at 0.3 s: until 1.3 s
        clock.set(Instant::from_millis(500));
        b.set_max_wait(Duration::from_secs(2));
        assert!(waiter.as_mut().poll(cx).is_pending()); // now until 2.3 s
        assert_eq!(clock.next_deadline(), Some(Instant::from_millis(2_300)));
        clock.set(Instant::from_millis(2_299));
        assert!(waiter.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(2_300));
        assert!(matches!(
            waiter.as_mut().poll(cx),
            Poll::Ready(Err(Rejected::Timeout))
        ));
    }

    /// Shrinking below the permits in use drains: with 3 held and the limit cut to 1 at
    /// 0 s, a queued waiter is admitted only once a single call is left in flight (the third
    /// release, at 3 s), never on the first two.
    #[test]
    fn shrinking_below_the_permits_in_use_drains() {
        let clock = MockClock::new();
        let b: Queued<'_, 4> = queued(&clock, 3, 10_000);
        let mut held = [(); 3].map(|_| Some(b.try_acquire().unwrap()));
        b.set_max_concurrent(1).unwrap();
        assert_eq!(b.metrics(), Metrics { in_use: 3, max: 1 });
        let cx = &mut Context::from_waker(Waker::noop());
        let mut waiter = pin!(b.acquire());
        assert!(waiter.as_mut().poll(cx).is_pending());
        let mut admitted = None;
        for (k, p) in held.iter_mut().enumerate() {
            clock.set(Instant::from_secs(k as u64 + 1));
            drop(p.take());
            if let Poll::Ready(r) = waiter.as_mut().poll(cx) {
                assert_eq!(k, 2, "admitted at release {k}");
                admitted = Some(r.unwrap());
            }
        }
        assert!(admitted.is_some());
        assert_eq!(clock.now(), Instant::from_secs(3));
        assert_eq!(b.metrics(), Metrics { in_use: 1, max: 1 });
        assert_eq!(
            b.set_max_concurrent(0),
            Err(super::super::ConfigError::ZeroCapacity)
        );
    }

    /// resilience4j's bulkhead events, `CALL_PERMITTED`, `CALL_REJECTED`, `CALL_FINISHED`,
    /// each at its instant: permitted at 0 s; a waiter permitted at 0.1 s when the holder
    /// finishes; a second waiter rejected at 0.6 s (its 0.5 s max wait); a try at 0.6 s
    /// rejected as full; the last permit finished at 0.7 s.
    #[test]
    fn events_are_told_at_their_instants() {
        use super::super::Events;
        use core::cell::{Cell, RefCell};
        #[derive(Clone, Copy, Debug, PartialEq)]
        enum Ev {
            Permitted(u64),
            Rejected(u64, Rejected),
            Finished(u64),
        }
        struct Log<'c> {
            clock: &'c MockClock,
            log: RefCell<[Option<Ev>; 8]>,
            n: Cell<usize>,
        }
        impl Log<'_> {
            fn push(&self, e: Ev) {
                self.log.borrow_mut()[self.n.get()] = Some(e);
                self.n.set(self.n.get() + 1);
            }
            fn ms(&self) -> u64 {
                self.clock.now().as_millis()
            }
        }
        impl Events for Log<'_> {
            fn on_permitted(&self) {
                self.push(Ev::Permitted(self.ms()))
            }
            fn on_rejected(&self, why: Rejected) {
                self.push(Ev::Rejected(self.ms(), why))
            }
            fn on_finished(&self) {
                self.push(Ev::Finished(self.ms()))
            }
        }
        let clock = MockClock::new();
        let log = Log {
            clock: &clock,
            log: RefCell::new([None; 8]),
            n: Cell::new(0),
        };
        let b = queued::<4>(&clock, 1, 500).with_events(&log);
        let cx = &mut Context::from_waker(Waker::noop());
        let held = b.try_acquire().unwrap();
        let mut first = pin!(b.acquire());
        assert!(first.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(100));
        drop(held);
        let Poll::Ready(Ok(admitted)) = first.as_mut().poll(cx) else {
            panic!("the freed permit goes to the waiter");
        };
        let mut second = pin!(b.acquire());
        assert!(second.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(600));
        assert!(matches!(
            second.as_mut().poll(cx),
            Poll::Ready(Err(Rejected::Timeout))
        ));
        assert!(b.try_acquire().is_err());
        clock.set(Instant::from_millis(700));
        drop(admitted);
        assert_eq!(
            log.log.borrow()[..log.n.get()],
            [
                Some(Ev::Permitted(0)),
                Some(Ev::Finished(100)),
                Some(Ev::Permitted(100)),
                Some(Ev::Rejected(600, Rejected::Timeout)),
                Some(Ev::Rejected(600, Rejected::Full)),
                Some(Ev::Finished(700)),
            ]
        );
    }
}
