//! The tokio-backed bulkhead semaphore: waiting, FIFO wake-ups, cancellation on paused time.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use bulwark::bulkhead::{Acquire, Bulkhead, Rejected, TrySemaphore};
use bulwark_tokio::{TokioClock, TokioSemaphore};

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_order_as_permits_come_back() {
    // Owned: each spawned task's wait and permit hold an `Arc` of the bulkhead.
    let b = Arc::new(Bulkhead::with_semaphore(
        TokioSemaphore::new(1),
        Duration::from_secs(3600),
        TokioClock::new(),
    ));
    let log = Arc::new(Mutex::new(Vec::new()));
    let t0 = tokio::time::Instant::now();
    let held = b.try_acquire().unwrap();
    let mut tasks = Vec::new();
    for id in 0..3u32 {
        let log = log.clone();
        let b = Arc::clone(&b);
        tasks.push(tokio::spawn(async move {
            let _p = Acquire::new(b).await.unwrap();
            log.lock().unwrap().push((id, t0.elapsed()));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }));
        tokio::task::yield_now().await; // queue them in order
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    let secs: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(id, d)| (*id, d.as_secs()))
        .collect();
    assert_eq!(secs, vec![(0, 1), (1, 2), (2, 3)]);
    assert_eq!(b.semaphore().available(), 1);
    assert_eq!(
        Arc::strong_count(&b),
        1,
        "every task's handle was dropped with it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_woken_waiter_that_is_dropped_passes_the_wake_up_on() {
    let b = Bulkhead::with_semaphore(
        TokioSemaphore::new(1),
        Duration::from_secs(3600),
        TokioClock::new(),
    );
    let held = b.try_acquire().unwrap();
    let cx = &mut Context::from_waker(Waker::noop());
    let mut first = Box::pin(b.acquire());
    assert!(first.as_mut().poll(cx).is_pending());
    let mut second = pin!(b.acquire());
    assert!(second.as_mut().poll(cx).is_pending());
    drop(held); // wakes `first`...
    drop(first); // ...which is cancelled before it takes the permit
    assert!(
        second.as_mut().poll(cx).is_ready(),
        "the permit reached the next waiter"
    );
}

#[tokio::test(start_paused = true)]
async fn bulkhead_over_tokio_times_out_at_the_exact_max_wait() {
    let clock = TokioClock::new();
    let b = Bulkhead::with_semaphore(TokioSemaphore::new(2), Duration::from_millis(250), clock);
    let _a = b.acquire().await.unwrap();
    let _b = b.acquire().await.unwrap();
    let t0 = tokio::time::Instant::now();
    assert_eq!(b.acquire().await.unwrap_err(), Rejected::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_millis(250));
    let m = b.metrics();
    let tot = b.totals();
    assert_eq!((m.in_use, tot.timed_out), (2, 1));
}
