//! Model tests of the bulkhead: random acquire / wait / poll / drop / cancel / time steps.
//! Never more than `max` permits in flight; the bulkhead's counters match the model after
//! every step; every permit and wait slot is back at the end.
#![cfg(not(loom))]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use bulwark::MockClock;
use bulwark::bulkhead::{
    Bulkhead, Config, Overflow, Permit, QueueSemaphore, Rejected, TrySemaphore,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Try,
    Wait,
    PollAll,
    DropPermit(usize),
    Cancel(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Try),
        3 => Just(Op::Wait),
        2 => Just(Op::PollAll),
        3 => (0usize..8).prop_map(Op::DropPermit),
        1 => (0usize..8).prop_map(Op::Cancel),
        1 => (0u64..200).prop_map(Op::Advance),
    ]
}

type Sem = QueueSemaphore<3>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_over_max_never_leaks(
        max in 1usize..4,
        drop_oldest in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let clock = MockClock::new();
        let overflow = if drop_oldest { Overflow::DropOldest } else { Overflow::RejectNewest };
        let b: Bulkhead<Sem, _> = Bulkhead::queued(
            Config::new(max).max_wait(Duration::from_millis(100)).overflow(overflow),
            &clock,
        )
        .unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut held: Vec<Permit<&Bulkhead<Sem, &MockClock>>> = Vec::new();
        type Wait<'a> = bulwark::bulkhead::Acquire<&'a Bulkhead<Sem, &'a MockClock>, Sem, &'a MockClock>;
        let mut pending: Vec<Pin<Box<Wait<'_>>>> = Vec::new();
        let (mut rejected, mut timed_out) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Try => match b.try_acquire() {
                    Ok(p) => held.push(p),
                    Err(_) => {
                        prop_assert_eq!(held.len(), max, "rejected with a free permit");
                        rejected += 1;
                    }
                },
                Op::Wait => pending.push(Box::pin(b.acquire())),
                Op::PollAll => {}
                Op::DropPermit(i) => {
                    if !held.is_empty() {
                        drop(held.swap_remove(i % held.len()));
                    }
                }
                Op::Cancel(i) => {
                    if !pending.is_empty() {
                        drop(pending.swap_remove(i % pending.len()));
                    }
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            }
            // Poll every pending acquire (as an executor would after wake-ups).
            let mut i = 0;
            while i < pending.len() {
                match pending[i].as_mut().poll(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(r) => {
                        drop(pending.swap_remove(i));
                        match r {
                            Ok(p) => held.push(p),
                            Err(Rejected::Timeout) => { rejected += 1; timed_out += 1; }
                            Err(Rejected::QueueFull | Rejected::Shed) => rejected += 1,
                            Err(e) => prop_assert!(false, "unexpected {:?}", e),
                        }
                    }
                }
            }
            prop_assert!(held.len() <= max, "{} in flight, max {}", held.len(), max);
            let m = b.metrics();
            let tot = b.totals();
            prop_assert_eq!(m.in_use, held.len());
            prop_assert_eq!(tot.rejected, rejected);
            prop_assert_eq!(tot.timed_out, timed_out);
            prop_assert!(b.semaphore().waiting() <= pending.len());
            prop_assert!(b.semaphore().waiting() <= 3);
        }
        drop(pending);
        prop_assert_eq!(b.semaphore().waiting(), 0, "a cancelled waiter kept its slot");
        drop(held);
        prop_assert_eq!(b.semaphore().available(), max, "a permit leaked");
        prop_assert_eq!(b.metrics().in_use, 0);
    }

    #[test]
    fn atomic_bulkhead_counts_exactly(
        max in 1usize..5,
        ops in prop::collection::vec(prop_oneof![Just(None), (0usize..8).prop_map(Some)], 1..100),
    ) {
        let clock = MockClock::new();
        let b = Bulkhead::new(Config::new(max), &clock).unwrap();
        let mut held = Vec::new();
        for op in ops {
            match op {
                None => match b.try_acquire() {
                    Ok(p) => held.push(p),
                    Err(_) => prop_assert_eq!(held.len(), max),
                },
                Some(i) => {
                    if !held.is_empty() {
                        drop(held.swap_remove(i % held.len()));
                    }
                }
            }
            prop_assert_eq!(b.metrics().in_use, held.len());
        }
        drop(held);
        prop_assert_eq!(b.semaphore().available(), max);
    }
}
