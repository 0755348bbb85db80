//! loom checks of the bulkhead's shared forms. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_bulkhead`.
#![cfg(loom)]

use bulwark::bulkhead::{
    AtomicSemaphore, Bulkhead, Config, Overflow, QueueError, QueueSemaphore, QueueWaiter,
    Semaphore, TrySemaphore,
};
use bulwark::{Clock, Instant};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}

/// A wait for a permit through `poll_take`, cancelled if dropped before it got one (what a
/// bulkhead's acquire future does). Resolves to `Ok(())`: one permit is owed back.
struct Wait<'a, const Q: usize> {
    sem: &'a QueueSemaphore<Q>,
    waiter: QueueWaiter,
    done: bool,
}

fn acquire<const Q: usize>(sem: &QueueSemaphore<Q>) -> Wait<'_, Q> {
    Wait {
        sem,
        waiter: QueueWaiter::default(),
        done: false,
    }
}

impl<const Q: usize> Future for Wait<'_, Q> {
    type Output = Result<(), QueueError>;
    fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let r = core::task::ready!(
            this.sem
                .poll_take(core::pin::Pin::new(&mut this.waiter), cx)
        );
        this.done = true;
        Poll::Ready(r)
    }
}

impl<const Q: usize> Drop for Wait<'_, Q> {
    fn drop(&mut self) {
        if !self.done {
            self.sem.cancel(core::pin::Pin::new(&mut self.waiter));
        }
    }
}

/// Holds a permit while checking that no more than `max` are held at once.
fn hold(in_flight: &AtomicUsize, max: usize) {
    let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(n <= max, "{n} in flight, max {max}");
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

#[test]
fn atomic_bulkhead_never_over_capacity_and_returns_every_permit() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::new(Config::new(2), Fixed).unwrap());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (b, f, a) = (b.clone(), in_flight.clone(), admitted.clone());
                thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        a.fetch_add(1, Ordering::SeqCst);
                        hold(&f, 2);
                        drop(p);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            admitted.load(Ordering::SeqCst) >= 2,
            "two permits for three callers"
        );
        let m = b.metrics();
        assert_eq!(m.in_use, 0);
        assert_eq!(b.semaphore().available(), 2);
        assert_eq!(
            b.totals().rejected as usize + admitted.load(Ordering::SeqCst),
            3
        );
    });
}

#[test]
fn queue_waiter_is_woken_by_release() {
    // A lost wake-up would leave the waiter parked forever: loom reports the deadlock.
    loom::model(|| {
        let sem: Arc<QueueSemaphore<2>> = Arc::new(QueueSemaphore::new(1).unwrap());
        assert!(sem.try_take());
        let s2 = sem.clone();
        let waiter = thread::spawn(move || {
            loom::future::block_on(acquire(&s2)).unwrap();
            assert_eq!(s2.available(), 0);
            s2.give_back();
        });
        sem.give_back();
        waiter.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiting(), 0);
    });
}

#[test]
fn queue_two_waiters_one_permit_both_served() {
    loom::model(|| {
        let sem: Arc<QueueSemaphore<2>> = Arc::new(QueueSemaphore::new(1).unwrap());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, f) = (sem.clone(), in_flight.clone());
                thread::spawn(move || {
                    loom::future::block_on(acquire(&s)).unwrap();
                    hold(&f, 1);
                    s.give_back();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((sem.available(), sem.waiting()), (1, 0));
    });
}

#[test]
fn cancelled_waiter_racing_release_leaks_nothing() {
    loom::model(|| {
        let sem: Arc<QueueSemaphore<1>> = Arc::new(QueueSemaphore::new(1).unwrap());
        assert!(sem.try_take());
        let s2 = sem.clone();
        let t = thread::spawn(move || {
            let cx = &mut Context::from_waker(Waker::noop());
            let mut fut = pin!(acquire(&s2));
            // One poll, then cancel: it may or may not have got the permit.
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                r.unwrap();
                s2.give_back();
            }
        });
        sem.give_back();
        t.join().unwrap();
        assert_eq!((sem.available(), sem.waiting()), (1, 0));
    });
}

#[test]
fn drop_oldest_sheds_exactly_one_and_serves_the_other() {
    loom::model(|| {
        let sem: Arc<QueueSemaphore<1>> =
            Arc::new(QueueSemaphore::with_overflow(1, Overflow::DropOldest).unwrap());
        assert!(sem.try_take());
        let shed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, shed) = (sem.clone(), shed.clone());
                thread::spawn(move || match loom::future::block_on(acquire(&s)) {
                    Ok(()) => s.give_back(),
                    Err(QueueError::Shed) => {
                        shed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                })
            })
            .collect();
        sem.give_back();
        for t in threads {
            t.join().unwrap();
        }
        assert!(shed.load(Ordering::SeqCst) <= 1);
        assert_eq!((sem.available(), sem.waiting()), (1, 0));
    });
}

#[test]
fn atomic_semaphore_alone() {
    loom::model(|| {
        let sem = Arc::new(AtomicSemaphore::new(1).unwrap());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, f) = (sem.clone(), in_flight.clone());
                thread::spawn(move || {
                    if s.try_take() {
                        hold(&f, 1);
                        s.give_back();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
    });
}

/// A shrink racing permits given back and a taker: two permits held of two, the limit cut to
/// one while one holder gives back and a third thread tries to take. Never more in use than
/// the limit allowed at the time of the take (a take succeeds only while fewer than the
/// current limit are held), and once everything is given back the semaphore holds exactly the
/// new capacity, free, with no debt left.
#[test]
fn resize_down_drains_without_losing_permits() {
    use bulwark::bulkhead::Resize;
    loom::model(|| {
        let sem = Arc::new(AtomicSemaphore::new(2).unwrap());
        assert!(sem.try_take() && sem.try_take());
        let s1 = sem.clone();
        let shrink = thread::spawn(move || s1.resize(1).unwrap());
        let s2 = sem.clone();
        let holder = thread::spawn(move || s2.give_back());
        let s3 = sem.clone();
        let taker = thread::spawn(move || s3.try_take());
        shrink.join().unwrap();
        holder.join().unwrap();
        let took = taker.join().unwrap();
        sem.give_back(); // the other holder
        if took {
            sem.give_back();
        }
        assert_eq!((sem.capacity(), sem.available(), sem.in_use()), (1, 1, 0));
    });
}

/// A grow racing a shrink on the queued semaphore: whatever the order, the deltas add up to
/// the last capacity set, and every permit comes back.
#[test]
fn concurrent_resizes_add_up() {
    use bulwark::bulkhead::Resize;
    loom::model(|| {
        let sem: Arc<QueueSemaphore<2>> = Arc::new(QueueSemaphore::new(2).unwrap());
        assert!(sem.try_take());
        let s1 = sem.clone();
        let a = thread::spawn(move || s1.resize(1).unwrap());
        let s2 = sem.clone();
        let b = thread::spawn(move || s2.give_back());
        a.join().unwrap();
        b.join().unwrap();
        sem.resize(3).unwrap();
        assert_eq!((sem.capacity(), sem.available(), sem.in_use()), (3, 3, 0));
    });
}
