//! The bulkhead semaphores: `QueueSemaphore` (try_take, waits through `poll_take` polled and
//! dropped (cancelled) at random points, both overflow policies) against a plain model, and
//! `AtomicSemaphore`.
//!
//! Invariants, after every step:
//! * permits free + permits held = capacity;
//! * waiters counted by the semaphore = futures parked in the model, never above `Q`;
//! * every answer (a permit, pending, `Full`, `Shed`) is the model's;
//! * no lost wake-up: while a permit is free, every parked waiter has been woken since its
//!   last poll; a waiter shed by a newcomer is woken;
//! * after dropping everything, every permit is free and nobody waits.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arbitrary::Arbitrary;
use bulwark::bulkhead::{
    AtomicSemaphore, Overflow, QueueError, QueueSemaphore, QueueWaiter, Semaphore, TrySemaphore,
};
use bulwark_fuzz::Flag;
use libfuzzer_sys::fuzz_target;

const Q: usize = 3;
const MAX_OPS: usize = 256;
const MAX_FUTURES: usize = 12;

/// The one place that builds the semaphores: zero or more than `u32::MAX` permits is a typed
/// error (`None` here), never a panic.
fn queue_semaphore(capacity: usize, overflow: Overflow) -> Option<QueueSemaphore<Q>> {
    QueueSemaphore::<Q>::with_overflow(capacity, overflow).ok()
}

fn atomic_semaphore(capacity: usize) -> Option<AtomicSemaphore> {
    AtomicSemaphore::new(capacity).ok()
}

#[derive(Arbitrary, Debug)]
enum Op {
    TryAcquire,
    NewFuture,
    Poll(u8),
    DropFuture(u8),
    DropPermit(u8),
    AtomicTry,
    AtomicDrop(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    atomic_capacity: u8,
    drop_oldest: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    /// Made, never polled.
    Start,
    /// Parked with this age (smaller is older).
    Parked(u64),
    /// Shed from its wait slot by a newcomer: its next poll says so.
    Shed,
}

/// A permit taken from a semaphore, given back on drop (what a bulkhead's permit does).
struct Held<'a, S: TrySemaphore>(&'a S);

impl<S: TrySemaphore> std::fmt::Debug for Held<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

impl<S: TrySemaphore> Drop for Held<'_, S> {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

type QueuePermit<'a> = Held<'a, QueueSemaphore<Q>>;

/// A wait for a permit: `poll_take` with a pinned waiter, cancelled on drop (what a bulkhead's
/// acquire future does).
struct Wait<'a> {
    sem: &'a QueueSemaphore<Q>,
    waiter: Pin<Box<QueueWaiter>>,
    done: bool,
}

impl<'a> Future for Wait<'a> {
    type Output = Result<QueuePermit<'a>, QueueError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sem = self.sem;
        let r = std::task::ready!(sem.poll_take(self.waiter.as_mut(), cx));
        self.done = true;
        Poll::Ready(r.map(|()| Held(sem)))
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.sem.cancel(self.waiter.as_mut());
        }
    }
}

struct Fut<'a> {
    fut: Pin<Box<Wait<'a>>>,
    model: Model,
    flag: Arc<Flag>,
    waker: std::task::Waker,
}

fuzz_target!(|inp: Input| {
    let capacity = (inp.capacity % 6) as usize;
    let overflow = if inp.drop_oldest {
        Overflow::DropOldest
    } else {
        Overflow::RejectNewest
    };
    let Some(sem) = queue_semaphore(capacity, overflow) else {
        return;
    };
    let atomic_capacity = match inp.atomic_capacity {
        255 => usize::MAX,
        c => (c % 5) as usize,
    };
    let Some(atomic) = atomic_semaphore(atomic_capacity) else {
        return;
    };
    assert_eq!(sem.capacity(), capacity);
    assert_eq!(sem.overflow(), overflow);

    let mut permits: Vec<QueuePermit<'_>> = Vec::new();
    let mut futs: Vec<Fut<'_>> = Vec::new();
    let mut atomic_permits = Vec::new();
    let mut age = 0u64;

    for op in inp.ops.iter().take(MAX_OPS) {
        match op {
            Op::TryAcquire => {
                let free = capacity - permits.len();
                if sem.try_take() {
                    assert!(free > 0);
                    permits.push(Held(&sem));
                } else {
                    assert_eq!(free, 0, "try_take refused with a free permit");
                }
            }
            Op::NewFuture => {
                if futs.len() < MAX_FUTURES {
                    let (flag, waker) = Flag::waker();
                    futs.push(Fut {
                        fut: Box::pin(Wait {
                            sem: &sem,
                            waiter: Box::pin(QueueWaiter::default()),
                            done: false,
                        }),
                        model: Model::Start,
                        flag,
                        waker,
                    });
                }
            }
            Op::Poll(i) => {
                if futs.is_empty() {
                    continue;
                }
                let i = *i as usize % futs.len();
                let free = capacity - permits.len();
                let parked: Vec<(u64, usize)> = futs
                    .iter()
                    .enumerate()
                    .filter_map(|(j, f)| match f.model {
                        Model::Parked(a) => Some((a, j)),
                        _ => None,
                    })
                    .collect();
                let f = &mut futs[i];
                f.flag.clear();
                let mut cx = Context::from_waker(&f.waker);
                let r = f.fut.as_mut().poll(&mut cx);
                match (f.model, r) {
                    (Model::Shed, r) => {
                        assert!(matches!(r, Poll::Ready(Err(QueueError::Shed))), "{r:?}");
                        futs.remove(i);
                    }
                    (_, Poll::Ready(Ok(p))) => {
                        assert!(free > 0, "a permit out of nothing");
                        permits.push(p);
                        futs.remove(i);
                    }
                    (Model::Parked(_), r) => {
                        assert!(free == 0, "parked with a free permit");
                        assert!(r.is_pending(), "a parked waiter failed: {r:?}");
                    }
                    (Model::Start, Poll::Pending) => {
                        assert_eq!(free, 0, "parked with a free permit");
                        if parked.len() == Q {
                            // Full queue: only DropOldest lets a newcomer in, shedding the oldest.
                            assert_eq!(overflow, Overflow::DropOldest, "joined a full queue");
                            let (_, oldest) = *parked.iter().min().unwrap();
                            assert!(futs[oldest].flag.woken(), "the shed waiter was not woken");
                            futs[oldest].model = Model::Shed;
                        }
                        futs[i].model = Model::Parked(age);
                        age += 1;
                    }
                    (Model::Start, Poll::Ready(Err(e))) => {
                        assert_eq!(e, QueueError::Full);
                        assert_eq!(free, 0);
                        assert!(
                            parked.len() == Q && (overflow == Overflow::RejectNewest || Q == 0),
                            "rejected with room in the queue"
                        );
                        futs.remove(i);
                    }
                }
            }
            Op::DropFuture(i) => {
                if !futs.is_empty() {
                    let i = *i as usize % futs.len();
                    futs.remove(i);
                }
            }
            Op::DropPermit(i) => {
                if !permits.is_empty() {
                    let i = *i as usize % permits.len();
                    drop(permits.remove(i));
                }
            }
            Op::AtomicTry => {
                if atomic.try_take() {
                    assert!(atomic_permits.len() < atomic_capacity);
                    let p = Held(&atomic);
                    if atomic_permits.len() < MAX_FUTURES {
                        atomic_permits.push(p);
                    }
                } else {
                    assert_eq!(atomic_permits.len(), atomic_capacity);
                }
            }
            Op::AtomicDrop(i) => {
                if !atomic_permits.is_empty() {
                    let i = *i as usize % atomic_permits.len();
                    drop(atomic_permits.remove(i));
                }
            }
        }
        check(&sem, capacity, &permits, &futs);
        assert_eq!(atomic.available() + atomic_permits.len(), atomic_capacity);
        assert_eq!(atomic.capacity(), atomic_capacity);
    }

    drop(futs);
    drop(permits);
    drop(atomic_permits);
    assert_eq!(sem.available(), capacity, "permits leaked");
    assert_eq!(sem.waiting(), 0, "waiters leaked");
    assert_eq!(atomic.available(), atomic_capacity, "atomic permits leaked");
});

fn check(sem: &QueueSemaphore<Q>, capacity: usize, permits: &[QueuePermit<'_>], futs: &[Fut<'_>]) {
    assert_eq!(
        sem.available() + permits.len(),
        capacity,
        "free + held != capacity"
    );
    let parked = futs
        .iter()
        .filter(|f| matches!(f.model, Model::Parked(_)))
        .count();
    assert_eq!(sem.waiting(), parked, "waiters");
    assert!(parked <= Q);
    if sem.available() > 0 {
        for f in futs {
            if matches!(f.model, Model::Parked(_)) {
                assert!(
                    f.flag.woken(),
                    "a permit is free and a parked waiter sleeps on"
                );
            }
        }
    }
}
