//! Observed calls stay allocation-free after warm-up: with `MetricsHooks` on a recorder whose
//! handles do not allocate and `TracingHooks` without a subscriber, a breaker, a pipeline's
//! retry, an observed bulkhead and an instrumented call — and every other pattern's
//! observation: a limiter, one key of a keyed limiter, a waiting bulkhead acquire, a pool
//! checkout, a timeout, a fallback — allocate nothing once each series is registered (a
//! counting global allocator, per thread, fails the test otherwise).
#![cfg(all(feature = "tracing", feature = "metrics"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulwark::bulkhead::{Bulkhead, Config as Bh};
use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
use bulwark::pipeline::Pipeline;
use bulwark::retry::{Backoff, Config, Jitter};
use bulwark::{MockClock, mock};
use bulwark_observe::{MetricsHooks, Observed, Pattern, TracingHooks, instrument};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

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

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

/// A histogram that counts what it records (no buffer to grow).
struct Recorded(AtomicU64);
impl HistogramFn for Recorded {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A recorder whose handles are atomics: registering allocates, updating does not. It keeps
/// the total of every counter it handed out.
#[derive(Default)]
struct Atomics {
    counters: std::sync::Mutex<Vec<Arc<AtomicU64>>>,
}

impl Atomics {
    fn counted(&self) -> u64 {
        let counters = self.counters.lock().unwrap();
        counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Recorder for Atomics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        let c = Arc::new(AtomicU64::new(0));
        self.counters.lock().unwrap().push(Arc::clone(&c));
        Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Recorded(AtomicU64::new(0))))
    }
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn observed_calls_do_not_allocate_after_warm_up() {
    let recorder = Atomics::default();
    let clock = MockClock::new();
    let hooks = (TracingHooks::new("checkout"), MetricsHooks::new("checkout"));
    let breaker = CircuitBreaker::new(Cb::new().consecutive_failures(50), &clock)
        .unwrap()
        .with_events(&hooks);
    let slots = Observed::new(
        Pattern::Bulkhead,
        Bulkhead::new(Bh::new(4), &clock).unwrap(),
        &hooks,
    );
    let retry = Config::new()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .jitter(Jitter::None);
    let pipeline = Pipeline::new(&clock, retry)
        .unwrap()
        .breaker(&breaker)
        .bulkhead(&slots)
        .hooks(&hooks);
    let round = |i: u32| {
        let fail = i.is_multiple_of(4);
        let mut first = true;
        let call = pipeline.call(|| {
            let out = if fail && std::mem::take(&mut first) {
                Err("503")
            } else {
                Ok(i)
            };
            async move { out }
        });
        let out = mock::run(&clock, instrument(Pattern::Pipeline, &hooks, &clock, call));
        assert_eq!(out.unwrap(), Ok(i));
    };
    metrics::with_local_recorder(&recorder, || {
        // Warm-up: each series this test touches is registered here.
        for i in 0..8 {
            round(i);
        }
        let before = recorder.counted();
        let n = allocations(|| {
            for i in 0..1_000 {
                round(i);
            }
        });
        assert_eq!(n, 0, "allocations in 1000 observed pipeline calls");
        // And the calls were counted: per call, an attempt per try, a breaker outcome per
        // attempt, a permitted bulkhead call per attempt, a retry kind and an observed call.
        let (calls, failing) = (1_000u64, 250u64);
        let attempts = calls + failing;
        assert_eq!(recorder.counted() - before, 3 * attempts + 2 * calls);
    });
}

/// A pool whose connections are numbers, opened at once.
struct Numbers;
impl bulwark::pool::Manager for Numbers {
    type Connection = u32;
    type Error = &'static str;
    type Connect = core::future::Ready<Result<u32, &'static str>>;
    fn connect(&self) -> Self::Connect {
        core::future::ready(Ok(1))
    }
}

#[test]
fn every_other_pattern_observed_does_not_allocate_after_warm_up() {
    use bulwark::admission::Permit;
    use bulwark::bulkhead::QueueSemaphore;
    use bulwark::fallback::fallback;
    use bulwark::pool::{Config as PoolConfig, Pool};
    use bulwark::rate_limiter::{Config as Rl, Keyed, KeyedRateLimiter, RateLimiter};
    use bulwark::timeout::timeout;
    use bulwark_observe::{acquired, fell_back};
    use core::future::IntoFuture;

    let recorder = Atomics::default();
    let clock = MockClock::new();
    let hooks = (TracingHooks::new("api"), MetricsHooks::new("api"));
    let rate = || Rl::with_period(Duration::from_nanos(1)).burst(u32::MAX);
    let limiter = Observed::new(
        Pattern::RateLimiter,
        RateLimiter::new(rate(), &clock).unwrap(),
        &hooks,
    );
    let table: KeyedRateLimiter<u32, _, 8> = KeyedRateLimiter::new(rate(), &clock).unwrap();
    let key = Observed::new(Pattern::RateLimiter, Keyed::new(&table, 7), &hooks);
    let slots: Bulkhead<QueueSemaphore<4>, _> = Bulkhead::queued(Bh::new(2), &clock).unwrap();
    let pool: Pool<Numbers, QueueSemaphore<4>, _, 2> =
        Pool::queued(Numbers, PoolConfig::new(), &clock);
    let round = || {
        Permit::try_new(&limiter).unwrap().success();
        Permit::try_new(&key).unwrap().success();
        let wait = acquired(Pattern::Bulkhead, &hooks, slots.acquire());
        let permit = mock::run(&clock, instrument(Pattern::Bulkhead, &hooks, &clock, wait));
        drop(permit.unwrap().unwrap());
        let checkout = acquired(Pattern::Pool, &hooks, pool.acquire());
        let conn = mock::run(&clock, instrument(Pattern::Pool, &hooks, &clock, checkout));
        assert_eq!(**conn.unwrap().unwrap(), 1);
        let limit = timeout(&clock, Duration::from_secs(1), async { Ok::<_, &str>(()) });
        let out = mock::run(&clock, instrument(Pattern::Timeout, &hooks, &clock, limit));
        assert!(out.unwrap().is_ok());
        let chain = fallback(|| async { Err::<&str, _>("down") }).or(fell_back(
            &hooks,
            1,
            |_: &str| async { Ok("cached") },
        ));
        assert_eq!(
            mock::run(&clock, chain.into_future()).unwrap(),
            Ok("cached")
        );
    };
    metrics::with_local_recorder(&recorder, || {
        // Warm-up: each series this test touches is registered here.
        for _ in 0..4 {
            round();
        }
        let before = recorder.counted();
        let n = allocations(|| {
            for _ in 0..1_000 {
                round();
            }
        });
        assert_eq!(n, 0, "allocations in 1000 rounds of observed calls");
        // Per round: 2 permitted limiter calls, a permitted bulkhead and pool call, 3
        // observed calls (bulkhead, pool, timeout) and a fallback.
        assert_eq!(recorder.counted() - before, 1_000 * (2 + 2 + 3 + 1));
    });
}
