//! Footprint: the `size_of` of each primitive, asserted so a change that grows one is seen in
//! review. The same table is in the README ("Footprint") and the crate docs.
//!
//! The numbers are for 64-bit targets (a `&MockClock` is one pointer); on 32-bit targets the
//! clock reference and `usize` fields shrink.
#![cfg(target_pointer_width = "64")]

use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, QueueSemaphore};
use bulwark::circuit_breaker::{
    self, CircuitBreaker, CountWindow, Counters, Machine, NoWindow, TimeWindow,
};
use bulwark::rate_limiter::{self, RateLimiter};
use bulwark::retry::{self, Budget, Retry};
use bulwark::timeout::Deadline;
use bulwark::{Instant, MockClock};

type Clock<'a> = &'a MockClock;

#[test]
fn time() {
    assert_eq!(size_of::<Instant>(), 8);
    assert_eq!(size_of::<Deadline>(), 16);
}

#[test]
fn circuit_breaker() {
    // The builder holds `Duration`s (and the open-time growth as a ratio of two `u32`s); the
    // breaker stores a validated compact form of it.
    assert_eq!(size_of::<circuit_breaker::Config>(), 128);
    // A consecutive-failure breaker fits one cache line: the compact configuration (40) + the
    // control word and the open-until instant (16) + the clock (8). No window, no totals.
    assert_eq!(size_of::<CircuitBreaker<Clock<'_>>>(), 64);
    // The same with the runtime clocks: both are zero-sized (one origin per process), which
    // leaves room.
    assert_eq!(
        size_of::<CircuitBreaker<bulwark_embassy::EmbassyClock>>(),
        56
    );
    assert_eq!(size_of::<CircuitBreaker<bulwark_tokio::TokioClock>>(), 56);
    // Placed on a line boundary it occupies exactly that line.
    #[repr(align(64))]
    struct OneLine<'a>(#[allow(dead_code)] CircuitBreaker<Clock<'a>>);
    assert_eq!(size_of::<OneLine<'_>>(), 64);
    // Totals are opt-in events: five `u64` counters.
    assert_eq!(size_of::<Counters>(), 40);
    assert_eq!(
        size_of::<CircuitBreaker<Clock<'_>, NoWindow, Counters>>(),
        104
    );
    // A window adds its rate settings (32) and five bytes per slot (the outcome, `AtomicU8`,
    // and the call's duration for `CallTimes`, `AtomicU32`) plus its heads and counters, or
    // its buckets, and the two words of the settings that change at run time (16). Issue 15
    // items 6 (the timed figures) and 12 (run-time thresholds) grew them from 128 / 216 / 168.
    assert_eq!(size_of::<CircuitBreaker<Clock<'_>, CountWindow<16>>>(), 232);
    assert_eq!(
        size_of::<CircuitBreaker<Clock<'_>, CountWindow<100>>>(),
        648
    );
    // A time window: its buckets (8 bytes each, and 16 for the timed figures) and the
    // highest epoch seen.
    assert_eq!(size_of::<CircuitBreaker<Clock<'_>, TimeWindow<8>>>(), 312);
    assert_eq!(size_of::<Machine<NoWindow>>(), 64);
}

#[test]
fn rate_limiter() {
    // The one state word alone on its 64-byte cache line (64) + the settings in two versions,
    // as atomics so that `reconfigure` works through `&self` (122: per version the GCRA
    // constants 20, the rate as given 16, waits 16, seed 8, flags 1) + their version (8) +
    // clock (8) + the jitter salt of waiting callers (8) = 210, rounded up to 64-byte
    // alignment. The config itself is 56 (the rate as given, waits as u64 ns, the seed).
    assert_eq!(size_of::<rate_limiter::Config>(), 56);
    assert_eq!(size_of::<RateLimiter<Clock<'_>>>(), 256);
    assert_eq!(core::mem::align_of::<RateLimiter<Clock<'_>>>(), 64);
    // Sharded: one limiter per shard (its clock is zero-sized: the sharded limiter reads
    // its own once per call) + the whole quota for errors (12) + the change flag (1) +
    // clock (8), rounded up to 64-byte alignment; the default hint is zero-sized.
    assert_eq!(
        size_of::<rate_limiter::ShardedRateLimiter<Clock<'_>, 2>>(),
        2 * 256 + 64
    );
    assert_eq!(
        size_of::<rate_limiter::ShardedRateLimiter<Clock<'_>, 4>>(),
        4 * 256 + 64
    );
    // The pure machine: GCRA constants + the theoretical arrival time.
    assert_eq!(size_of::<rate_limiter::Machine>(), 32);
    // The rate in the type: the state word and the clock (the 16-byte limiter).
    assert_eq!(
        size_of::<rate_limiter::ConstRateLimiter<Clock<'_>, 1_000_000, 10>>(),
        16
    );
}

#[test]
fn bulkhead() {
    assert_eq!(size_of::<AtomicSemaphore>(), 16);
    // Semaphore 16, max wait (ns, atomic so it can change through &self) 8, three u64 counters, clock.
    assert_eq!(size_of::<Bulkhead<AtomicSemaphore, Clock<'_>>>(), 56);
    assert!(size_of::<Bulkhead<QueueSemaphore<8>, Clock<'_>>>() > 56); // the wait slots
}

#[test]
fn retry() {
    // The backoff grew a fixed-point ratio and the jitter's base (issue 15).
    assert_eq!(size_of::<retry::Config>(), 104);
    assert_eq!(size_of::<Retry<Clock<'_>>>(), 120);
    assert_eq!(size_of::<Budget>(), 48);
}

#[test]
fn mock_clock() {
    // Fixed-capacity waker slots: the price of an allocation-free, `static`-able test clock.
    assert_eq!(size_of::<MockClock>(), 800);
}
