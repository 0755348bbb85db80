//! Zero heap allocations per call through the full pipeline (and through a fallback around
//! it), with a counting global allocator that sees every allocation this thread makes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::IntoFuture;
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::fallback::fallback;
use bulwark::pipeline::{Error, Pipeline};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig};
use bulwark::{MockClock, Sleep, mock};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; the counter is a const-initialised thread-local
// `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn control_the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(Box::new(1u64)))) >= 1);
}

#[test]
fn full_pipeline_calls_do_not_allocate() {
    let clock = &MockClock::new();
    let breaker = CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(3)
            .open_for(Duration::from_millis(300)),
        clock,
    )
    .unwrap();
    let limiter = RateLimiter::new(LimiterConfig::per_second(1000).burst(50), clock).unwrap();
    let bulkhead = Bulkhead::new(BulkheadConfig::new(4), clock).unwrap();
    let pipeline = Pipeline::new(
        clock,
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(10))),
    )
    .unwrap()
    .breaker(&breaker)
    .limiter(&limiter)
    .bulkhead(&bulkhead)
    .total_timeout(Duration::from_secs(1))
    .attempt_timeout(Duration::from_millis(50));

    let n = allocations(|| {
        let outcomes = mock::run(clock, async {
            let mut ok = 0u32;
            for i in 0..500u32 {
                // Successes, slow attempts (cut by the attempt timeout), failures (retried),
                // and an open breaker along the way.
                let r = pipeline
                    .call(|| async move {
                        match i % 7 {
                            0 => {
                                clock.sleep(Duration::from_millis(80)).await;
                                Ok(i)
                            }
                            1 | 2 => Err("503"),
                            _ => Ok(i),
                        }
                    })
                    .await;
                ok += r.is_ok() as u32;
                let with_fallback = fallback(|| pipeline.call(|| async { Err::<u32, _>("down") }))
                    .or(|_: Error<&str>| async { Ok(0) })
                    .into_future()
                    .await;
                ok += with_fallback.is_ok() as u32;
            }
            ok
        });
        assert!(outcomes.unwrap() > 0);
    });
    assert_eq!(n, 0, "allocations in 1000 pipeline calls");
}
