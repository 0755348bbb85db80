//! Zero heap allocations per call: a counting global allocator fails the test on any
//! allocation made by this thread inside the measured calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, TimeWindow};
use bulwark::{MockClock, Sleep, mock};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` unchanged; the counter is a const-initialised
// thread-local `Cell`, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread made while running `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    // The control: if this fails, a zero below proves nothing.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn circuit_breaker_calls_do_not_allocate() {
    let clock = MockClock::new();
    let cfg = Config::new()
        .consecutive_failures(3)
        .failure_rate(50)
        .slow_calls(Duration::from_millis(100), 80)
        .open_for(Duration::from_secs(1));
    let plain = CircuitBreaker::new(Config::new().consecutive_failures(3), &clock).unwrap();
    let counted = CircuitBreaker::with_window(cfg, CountWindow::<16>, &clock).unwrap();
    let timed = CircuitBreaker::with_window(cfg, TimeWindow::<8>, &clock).unwrap();

    let n = allocations(|| {
        for i in 0..1_000u32 {
            let fail = i % 3 == 0;
            let _ = plain.call_sync(|| if fail { Err(i) } else { Ok(i) });
            let _ = counted.call_sync(|| if fail { Err(i) } else { Ok(i) });
            let _ = timed.call_sync(|| if fail { Err(i) } else { Ok(i) });
            if let Ok(p) = counted.try_acquire() {
                drop(p); // cancelled
            }
            clock.advance(Duration::from_millis(7)); // through open, half-open, closed
        }
        let _ = plain.metrics();
        let _ = counted.snapshot().to_bytes();
    });
    assert_eq!(n, 0, "allocations in 1000 rounds of breaker calls");
}

#[test]
fn async_breaker_call_on_the_mock_clock_does_not_allocate() {
    let clock = MockClock::new();
    let clock = &clock;
    let breaker = CircuitBreaker::new(Config::new().consecutive_failures(2), clock).unwrap();
    let n = allocations(|| {
        let out = mock::run(clock, async {
            let mut ok = 0;
            for i in 0..200u32 {
                let r = breaker
                    .call(|| async move {
                        clock.sleep(Duration::from_millis(10)).await;
                        if i % 5 == 0 { Err(i) } else { Ok(i) }
                    })
                    .await;
                ok += r.is_ok() as u32;
            }
            ok
        });
        assert!(out.unwrap() > 0);
    });
    assert_eq!(n, 0, "allocations in 200 async breaker calls");
}
