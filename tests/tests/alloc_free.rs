//! Zero heap allocations per call: a counting global allocator fails the test on any
//! allocation made by this thread inside the measured calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, TimeWindow};
use bulwark::classify::Verdict;
use bulwark::{Clock, MockClock, mock};

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

#[test]
fn retry_on_the_mock_clock_does_not_allocate() {
    use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
    let clock = MockClock::new();
    let clock = &clock;
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(4)
            .backoff(Backoff::exponential(Duration::from_millis(10)))
            .jitter(Jitter::Full),
        clock,
    )
    .unwrap();
    let n = allocations(|| {
        let out = mock::run(clock, async {
            let mut ok = 0u32;
            for i in 0..200u32 {
                // Success at once.
                ok += retry.call(|| async move { Ok::<_, u32>(i) }).await.is_ok() as u32;
                // Two transient failures, then success: two backoff sleeps on the mock clock.
                let mut left = 2;
                let r = retry
                    .call(|| {
                        let fail = left > 0;
                        left -= 1;
                        async move { if fail { Err(i) } else { Ok(i) } }
                    })
                    .await;
                ok += r.is_ok() as u32;
                // Always failing: retries run out.
                ok += retry.call(|| async move { Err::<u32, _>(i) }).await.is_ok() as u32;
            }
            ok
        });
        assert_eq!(out.unwrap(), 400);
    });
    assert_eq!(n, 0, "allocations in 600 retried calls");
}

#[test]
fn timeout_ready_and_elapsed_do_not_allocate() {
    use bulwark::timeout::{Deadline, timeout, timeout_at};
    let clock = MockClock::new();
    let clock = &clock;
    let n = allocations(|| {
        let out = mock::run(clock, async {
            let mut elapsed = 0u32;
            for i in 0..200u32 {
                // Ready at once: no clock read, no timer.
                assert_eq!(
                    timeout(clock, Duration::from_secs(1), async { i }).await,
                    Ok(i)
                );
                // Elapsed: the operation sleeps past the deadline.
                let slow = clock.sleep(Duration::from_millis(50));
                elapsed += timeout(clock, Duration::from_millis(10), slow)
                    .await
                    .is_err() as u32;
                // Finishes in time, after a real wait.
                let quick = clock.sleep(Duration::from_millis(5));
                assert!(
                    timeout(clock, Duration::from_millis(10), quick)
                        .await
                        .is_ok()
                );
                let d = Deadline::after(clock.now(), Duration::from_millis(1));
                elapsed += timeout_at(clock, d, core::future::pending::<()>())
                    .await
                    .is_err() as u32;
            }
            elapsed
        });
        assert_eq!(out.unwrap(), 400);
    });
    assert_eq!(n, 0, "allocations in 800 timeouts");
}

#[test]
fn bulkhead_try_acquire_and_waiting_acquire_do_not_allocate() {
    use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore, Rejected};
    let clock = MockClock::new();
    let clock = &clock;
    let atomic = Bulkhead::new(BulkheadConfig::new(2), clock).unwrap();
    let queued: Bulkhead<QueueSemaphore<4>, _> = Bulkhead::queued(
        BulkheadConfig::new(1).max_wait(Duration::from_millis(100)),
        clock,
    )
    .unwrap();
    let n = allocations(|| {
        for _ in 0..1_000 {
            let a = atomic.try_acquire().unwrap();
            let b = atomic.try_acquire().unwrap();
            assert!(atomic.try_acquire().is_err());
            drop((a, b));
        }
        let out = mock::run(clock, async {
            let mut timed_out = 0u32;
            for _ in 0..200 {
                // Free: at once.
                let held = queued.acquire().await.unwrap();
                // Full: waits the whole max wait on the mock clock, then times out.
                timed_out += (queued.acquire().await.unwrap_err() == Rejected::Timeout) as u32;
                // Full, freed while waiting: the waiter gets the permit.
                let (got, ()) = mock::join(queued.acquire(), async {
                    clock.sleep(Duration::from_millis(10)).await;
                    drop(held);
                })
                .await;
                drop(got.unwrap());
            }
            timed_out
        });
        assert_eq!(out.unwrap(), 200);
    });
    assert_eq!(n, 0, "allocations in bulkhead acquires");
}

#[test]
fn rate_limiter_check_and_waiting_acquire_do_not_allocate() {
    use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
    let clock = MockClock::new();
    let clock = &clock;
    let limiter = RateLimiter::new(
        LimiterConfig::per_second(10)
            .burst(2)
            .max_wait(Duration::from_secs(1)),
        clock,
    )
    .unwrap();
    let n = allocations(|| {
        let mut passed = 0u32;
        for _ in 0..1_000 {
            passed += limiter.try_acquire().is_ok() as u32;
            passed += limiter.try_acquire_n(2).is_ok() as u32;
            clock.advance(Duration::from_millis(50));
        }
        assert!(passed > 0);
        let out = mock::run(clock, async {
            for _ in 0..200 {
                limiter.acquire(1).await.unwrap(); // waits up to 100 ms on the mock clock
            }
        });
        assert!(out.is_ok());
    });
    assert_eq!(n, 0, "allocations in limiter checks and waits");
}

#[test]
fn fallback_chain_does_not_allocate() {
    use bulwark::fallback::{Stale, fallback};
    use core::future::IntoFuture;
    let clock = MockClock::new();
    let clock = &clock;
    let cache: Stale<_> = Stale::new();
    let cache = &cache;
    let n = allocations(|| {
        let out = mock::run(clock, async {
            let mut sum = 0u64;
            for i in 0..200u64 {
                let up = i % 3 != 0;
                let chain = fallback(move || async move { if up { Ok(i) } else { Err("down") } })
                    .refresh(cache, clock)
                    .or_if(
                        |r: &Result<u64, &str>| match r {
                            Err("down") => Verdict::FAILURE,
                            _ => Verdict::Ignore,
                        },
                        |_| async { Err("secondary down") },
                    )
                    .or_stale(cache, clock, Duration::from_secs(60))
                    .or_value(0);
                sum += chain.into_future().await.unwrap();
                clock.advance(Duration::from_secs(1));
            }
            sum
        });
        assert!(out.unwrap() > 0);
    });
    assert_eq!(n, 0, "allocations in 200 fallback chains");
}

/// The tower layers on a current-thread tokio runtime with paused time. The runtime, the
/// services and tokio's timer wheel (lazily set up on the first sleep) are built before the
/// measured region.
#[test]
fn tower_layers_success_path_does_not_allocate() {
    use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config as BulkheadConfig};
    use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
    use bulwark_tokio::TokioClock;
    use bulwark_tokio::tower::{BulkheadLayer, CircuitBreakerLayer, RateLimitLayer};
    use tower::{Layer, Service, ServiceExt, service_fn};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = TokioClock::new();
        let echo = service_fn(|x: u32| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(x)
        });
        let breaker = CircuitBreaker::new(Config::new().consecutive_failures(3), clock).unwrap();
        let mut cb = CircuitBreakerLayer::new(breaker).layer(echo);
        let bulkhead = Bulkhead::new(BulkheadConfig::new(1), clock).unwrap();
        let mut bh = BulkheadLayer::new(bulkhead).layer(echo);
        let limiter = RateLimiter::new(LimiterConfig::per_second(1_000), clock).unwrap();
        let mut rl = RateLimitLayer::new(limiter).layer(echo);
        // All three stacked, the way a server would.
        let mut stack = CircuitBreakerLayer::new(
            CircuitBreaker::new(Config::new().consecutive_failures(3), clock).unwrap(),
        )
        .layer(
            RateLimitLayer::new(RateLimiter::new(LimiterConfig::per_second(1_000), clock).unwrap())
                .layer(
                    BulkheadLayer::new(Bulkhead::new(BulkheadConfig::new(4), clock).unwrap())
                        .layer(echo),
                ),
        );
        // Warm-up: tokio's timer wheel and the runtime's queues allocate on first use.
        for i in 0..10 {
            assert_eq!(cb.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(bh.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(rl.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(stack.ready().await.unwrap().call(i).await.unwrap(), i);
        }

        let before = ALLOCS.with(Cell::get);
        for i in 0..500 {
            assert_eq!(cb.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(bh.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(rl.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(stack.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        let n = ALLOCS.with(Cell::get) - before;
        assert_eq!(n, 0, "allocations in 2000 tower calls (success path)");

        // A full bulkhead sheds with `BulkheadFull`, a zero-sized error: boxing it into
        // tower's `BoxError` does not allocate either.
        let held = bh.ready().await.unwrap().call(0);
        let before = ALLOCS.with(Cell::get);
        for _ in 0..100 {
            let e = bh.ready().await.unwrap().call(1).await.unwrap_err();
            assert!(e.downcast_ref::<BulkheadFull>().is_some());
        }
        assert_eq!(ALLOCS.with(Cell::get) - before, 0, "bulkhead rejections");
        drop(held);
    });
}

/// The keyed layers on their steady path: a keyed limiter (the fixed table of the core) and
/// a keyed breaker (the adapter's table) for keys already in their tables, and the retry
/// layer around a gate. A keyed breaker allocates only when it meets a new key.
#[test]
fn keyed_and_retry_layers_steady_path_does_not_allocate() {
    use bulwark::rate_limiter::{Config as LimiterConfig, KeyedRateLimiter};
    use bulwark::retry::{Config as RetryConfig, Retry};
    use bulwark_tokio::TokioClock;
    use bulwark_tokio::tower::{KeyedCircuitBreaker, ServiceBuilderExt};
    use std::sync::Arc;
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = TokioClock::new();
        let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
        let per_key: Arc<KeyedRateLimiter<u32, _, 64>> =
            Arc::new(KeyedRateLimiter::new(LimiterConfig::per_second(1_000_000), clock).unwrap());
        let per_host = Arc::new(
            KeyedCircuitBreaker::new(Config::new().consecutive_failures(3), 64, clock).unwrap(),
        );
        let mut stack = ServiceBuilder::new()
            .bulwark_retry(Retry::new(RetryConfig::new(), clock).unwrap())
            .keyed_circuit_breaker(per_host, |x: &u32| x % 8)
            .keyed_rate_limiter(per_key, |x: &u32| x % 8)
            .service(echo);
        for i in 0..16 {
            assert_eq!(stack.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        let before = ALLOCS.with(Cell::get);
        for i in 0..500 {
            assert_eq!(stack.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        assert_eq!(
            ALLOCS.with(Cell::get) - before,
            0,
            "allocations in 500 keyed calls"
        );
    });
}

/// The one allocating path of the tower layers, pinned down: a breaker or rate-limit
/// rejection carries its retry instant, so boxing it into tower's `BoxError` (a
/// `Box<dyn Error + Send + Sync>`) is one heap allocation per rejected call. The core's own
/// rejections (`try_acquire`, `check`) never allocate.
#[test]
fn tower_rejections_with_a_retry_instant_allocate_one_box_each() {
    use bulwark::rate_limiter::{Config as LimiterConfig, RateLimited, RateLimiter};
    use bulwark_tokio::TokioClock;
    use bulwark_tokio::tower::{CircuitBreakerLayer, RateLimitLayer};
    use tower::{Layer, Service, ServiceExt, service_fn};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = TokioClock::new();
        let ok = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
        let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), clock).unwrap();
        breaker.force_open();
        let mut cb = CircuitBreakerLayer::new(breaker).layer(ok);
        let limiter = RateLimiter::new(LimiterConfig::per_minute(1), clock).unwrap();
        let mut rl = RateLimitLayer::new(limiter).layer(ok);
        rl.ready().await.unwrap().call(0).await.unwrap(); // the only token
        let _ = cb.ready().await.unwrap().call(0).await; // warm-up
        // A service's second call takes the service's own counted reference to its gate
        // (`tower::Handle`): one allocation, once, beside the rejection's box.
        let before = ALLOCS.with(Cell::get);
        let _ = cb.ready().await.unwrap().call(0).await;
        assert_eq!(
            ALLOCS.with(Cell::get) - before,
            2,
            "own reference + one Box"
        );

        let before = ALLOCS.with(Cell::get);
        for _ in 0..100 {
            let e = cb.ready().await.unwrap().call(1).await.unwrap_err();
            assert!(
                e.downcast_ref::<bulwark::circuit_breaker::Rejected>()
                    .is_some()
            );
            let e = rl.ready().await.unwrap().call(1).await.unwrap_err();
            assert!(e.downcast_ref::<RateLimited>().is_some());
        }
        assert_eq!(
            ALLOCS.with(Cell::get) - before,
            200,
            "one Box per rejection"
        );
    });
}

#[test]
fn full_pipeline_calls_do_not_allocate() {
    use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
    use bulwark::circuit_breaker::Config as BreakerConfig;
    use bulwark::fallback::fallback;
    use bulwark::pipeline::{Error, Pipeline};
    use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
    use bulwark::retry::{Backoff, Config as RetryConfig};
    use std::future::IntoFuture;

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

/// Fault injection: the core's async form off, delaying and replacing on the mock clock, and
/// the tower layer off and delaying on paused tokio time, make no allocation. (A refusal
/// through the tower layer boxes its one-byte `Injected`, like any rejection there.)
#[test]
fn fault_injection_does_not_allocate() {
    use bulwark::fault::{Config as FaultConfig, Error, Injected, Injector, Rate};
    use bulwark_tokio::TokioClock;
    use bulwark_tokio::tower::FaultLayer;
    use tower::{Layer, Service, ServiceExt, service_fn};

    let clock = MockClock::new();
    let off = Injector::new(FaultConfig::new(), &clock).unwrap();
    let chaos = Injector::new(
        FaultConfig::new()
            .delay(
                Rate::percent(50),
                Duration::from_millis(1),
                Duration::from_millis(3),
            )
            .replace(Rate::percent(20))
            .seed(8),
        &clock,
    )
    .unwrap();
    let n = allocations(|| {
        for i in 0..200u32 {
            assert_eq!(
                mock::run(&clock, off.call(|| async move { Ok::<_, ()>(i) })).unwrap(),
                Ok(i)
            );
            match mock::run(&clock, chaos.call(|| async move { Ok::<_, ()>(i) })).unwrap() {
                Ok(v) => assert_eq!(v, i),
                Err(e) => assert_eq!(e, Error::Injected(Injected::Replaced)),
            }
        }
    });
    assert_eq!(n, 0, "allocations in 400 fault-injected calls");
    assert!(chaos.totals().delayed > 50 && chaos.totals().replaced > 10);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
        let layer = FaultLayer::new(Injector::new(FaultConfig::new(), TokioClock::new()).unwrap());
        let mut svc = layer.layer(echo);
        for i in 0..10 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        let before = ALLOCS.with(Cell::get);
        for i in 0..200 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        assert_eq!(ALLOCS.with(Cell::get) - before, 0, "fault layer, off");
        let slow = Duration::from_millis(2);
        layer
            .injector()
            .set(FaultConfig::new().delay(Rate::ALWAYS, slow, slow))
            .unwrap();
        let before = ALLOCS.with(Cell::get);
        for i in 0..200 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        assert_eq!(ALLOCS.with(Cell::get) - before, 0, "fault layer, delaying");
    });
}

/// Hedging, adaptive throttling and the adaptive concurrency limit on the mock clock: calls
/// that hedge, that are throttled and that move the limit make no allocation.
#[test]
fn hedge_throttle_and_adaptive_limit_do_not_allocate() {
    use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config as LimitConfig};
    use bulwark::admission::{Admit, Outcome, Permit};
    use bulwark::hedge::{Config as HedgeConfig, Delay, Hedge};
    use bulwark::throttle::{AdaptiveThrottle, Config as ThrottleConfig};

    let clock = MockClock::new();
    let hedge: Hedge<_, 3> = Hedge::new(
        HedgeConfig::new(Delay::Percentile {
            per_mille: 900,
            min: Duration::from_millis(1),
            max: Duration::from_millis(5),
        }),
        &clock,
    )
    .unwrap();
    let throttle: AdaptiveThrottle<_> =
        AdaptiveThrottle::new(ThrottleConfig::new().seed(2), &clock).unwrap();
    let limit = AdaptiveLimit::new(LimitConfig::new(Algorithm::gradient2()), &clock).unwrap();
    let n = allocations(|| {
        for i in 0..200u64 {
            // Every other call's first copy is slow: the hedge starts and wins.
            let out = mock::run(
                &clock,
                hedge.call(|| {
                    let clock = &clock;
                    async move {
                        clock
                            .sleep(Duration::from_millis(if i % 2 == 0 { 50 } else { 2 }))
                            .await;
                        Ok::<_, ()>(i)
                    }
                }),
            );
            assert_eq!(out.unwrap(), Ok(i));
            let _ = throttle.try_admit().map(|()| {
                throttle.record_outcome(if i % 3 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Failure
                })
            });
            let permit = Permit::try_new(&limit).unwrap();
            clock.advance(Duration::from_millis(1));
            permit.record(Outcome::Success);
        }
    });
    assert_eq!(n, 0, "allocations in hedged, throttled and limited calls");
    assert!(throttle.reject_per_million() > 0);
}

/// The async form of the adaptive gates (the one `admission::Call`) on the mock clock: calls
/// admitted, answered after a sleep, refused locally and refused at the limit make no
/// allocation.
#[test]
fn adaptive_limit_and_throttle_calls_do_not_allocate() {
    use bulwark::adaptive::{self, AdaptiveLimit, Algorithm, Config as LimitConfig};
    use bulwark::admission::Permit;
    use bulwark::bulkhead::BulkheadFull;
    use bulwark::throttle::{self, AdaptiveThrottle, Config as ThrottleConfig};

    let clock = MockClock::new();
    let throttle: AdaptiveThrottle<_> =
        AdaptiveThrottle::new(ThrottleConfig::new().seed(2), &clock).unwrap();
    let cfg = LimitConfig::new(Algorithm::vegas())
        .initial(4)
        .min(1)
        .max(4);
    let limit = AdaptiveLimit::new(cfg, &clock).unwrap();
    let slow = || async {
        clock.sleep(Duration::from_millis(3)).await;
        Ok::<_, &str>(())
    };
    let mut throttled = 0;
    let n = allocations(|| {
        for i in 0..200u32 {
            let fails = i % 3 != 0;
            let out = mock::run(
                &clock,
                throttle.call(|| async move { if fails { Err("503") } else { Ok(i) } }),
            )
            .unwrap();
            throttled += u32::from(matches!(out, Err(throttle::Error::Rejected(_))));
            assert_eq!(mock::run(&clock, limit.call(slow)).unwrap(), Ok(()));
            // Every slot held (the limit is at most 4): the call is refused at the limit.
            let held: [_; 4] = core::array::from_fn(|_| Permit::try_new(&limit).ok());
            let out = mock::run(&clock, limit.call(slow)).unwrap();
            assert_eq!(out, Err(adaptive::Error::Rejected(BulkheadFull)));
            drop(held);
        }
    });
    assert_eq!(n, 0, "allocations in 600 adaptive calls");
    assert!(throttled > 50, "{throttled}");
}
