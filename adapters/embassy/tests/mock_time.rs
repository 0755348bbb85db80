//! The adapter on embassy's mock time driver: time moves only when the test advances it.
//! (One test per file would isolate the global driver; these tests reset it and run under one
//! lock instead.)

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, Rejected};
use bulwark::{Clock, Instant, Sleep};
use bulwark_embassy::{EmbassyClock, EmbassySemaphore};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::MockDriver;

static DRIVER: Mutex<()> = Mutex::new(());

/// Polls `f`, advancing the mock driver 1 ms between polls, up to `limit_ms`.
fn drive<F: Future>(f: F, limit_ms: u64) -> Option<F::Output> {
    let mut f = pin!(f);
    let cx = &mut Context::from_waker(Waker::noop());
    for _ in 0..=limit_ms {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Some(v);
        }
        MockDriver::get().advance(embassy_time::Duration::from_millis(1));
    }
    None
}

#[test]
fn sleep_ends_exactly_at_its_deadline() {
    let _g = DRIVER.lock().unwrap();
    MockDriver::get().reset();
    let clock = EmbassyClock;
    drive(clock.sleep(Duration::from_millis(40)), 100).unwrap();
    assert_eq!(clock.now(), Instant::from_millis(40));
    // A past deadline is ready at once (embassy's bare Timer would yield once first).
    assert!(drive(clock.sleep_until(Instant::ZERO), 0).is_some());
}

#[test]
fn bulkhead_wait_succeeds_in_time_or_times_out_at_the_deadline() {
    let _g = DRIVER.lock().unwrap();
    MockDriver::get().reset();
    let sem: EmbassySemaphore<CriticalSectionRawMutex, 4> = EmbassySemaphore::new(1);
    let bulkhead = Bulkhead::with_semaphore(&sem, Duration::from_millis(30), EmbassyClock);
    let held = bulkhead.try_acquire().unwrap();
    // Nobody releases: the waiter gives up at exactly 30 ms.
    assert_eq!(
        drive(bulkhead.acquire(), 100).unwrap().unwrap_err(),
        Rejected::Timeout
    );
    assert_eq!(EmbassyClock.now(), Instant::from_millis(30));
    // Released after 10 ms: the waiter gets the permit then.
    let mut waiter = pin!(bulkhead.acquire());
    let cx = &mut Context::from_waker(Waker::noop());
    assert!(waiter.as_mut().poll(cx).is_pending());
    MockDriver::get().advance(embassy_time::Duration::from_millis(10));
    drop(held);
    assert!(matches!(waiter.as_mut().poll(cx), Poll::Ready(Ok(_))));
    assert_eq!(EmbassyClock.now(), Instant::from_millis(40));
}
