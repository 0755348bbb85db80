//! Links and runs bulwark with no `std` and no allocator. Exit code 0 means every check
//! inside passed; see Cargo.toml for what a failed build means.
#![no_std]
#![no_main]

mod rt;
#[cfg(feature = "serde")]
mod serde_check;

use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow, Machine, State, TimeWindow};
use bulwark::{Clock, Instant, MockClock, mock};
use core::time::Duration;

#[cfg(feature = "deliberate-alloc")]
extern crate alloc;

static CLOCK: MockClock = MockClock::new();

fn entry() -> i32 {
    // The shared breaker, its async call on the mock clock, and both windows.
    let cfg = Config::new()
        .consecutive_failures(2)
        .open_for(Duration::from_secs(5));
    let Ok(breaker) = CircuitBreaker::new(cfg, &CLOCK) else {
        return 1;
    };
    let outcome = mock::run(&CLOCK, async {
        for _ in 0..2 {
            let _ = breaker.call(|| async { Err::<(), u8>(1) }).await;
        }
        let rejected = breaker.call(|| async { Ok::<u8, u8>(0) }).await.is_err();
        CLOCK.sleep(Duration::from_secs(5)).await;
        let probed = breaker.call(|| async { Ok::<u8, u8>(7) }).await;
        (rejected, probed, breaker.state())
    });
    if outcome != Ok((true, Ok(7), State::Closed)) || CLOCK.now() != Instant::from_secs(5) {
        return 2;
    }
    let Ok(mut m) = Machine::<CountWindow<8>>::new(Config::new().failure_rate(50).minimum_calls(2))
    else {
        return 3;
    };
    for _ in 0..2 {
        let Ok(t) = m.try_acquire(Instant::ZERO) else {
            return 4;
        };
        m.on_failure(t, Instant::ZERO);
    }
    if m.state() != State::Open {
        return 5;
    }
    let tw = Config::new()
        .failure_rate(50)
        .time_window(Duration::from_secs(10));
    let Ok(timed) = CircuitBreaker::with_window(tw, TimeWindow::<10>, &CLOCK) else {
        return 6;
    };
    if let Ok(p) = timed.try_acquire() {
        p.success();
    }
    if timed.metrics().window.calls != 1 {
        return 7;
    }
    let other = other_patterns();
    if other != 0 {
        return 10 + other;
    }
    if pool_and_bounded() != 0 {
        return 40;
    }
    let locks = lock_strategies();
    if locks != 0 {
        return 50 + locks;
    }
    #[cfg(feature = "serde")]
    {
        let configs = serde_check::configs();
        if configs != 0 {
            return 60 + configs;
        }
    }
    #[cfg(feature = "deliberate-alloc")]
    {
        let v = alloc::vec![1u8, 2, 3];
        return v.iter().map(|&x| x as i32).sum::<i32>() - 6;
    }
    #[allow(unreachable_code)]
    0
}

/// Retry, timeout, bulkhead, rate limiter, fallback and the pipeline, each actually called
/// (code that is never referenced is never linked, and would prove nothing).
fn other_patterns() -> i32 {
    use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore};
    use bulwark::fallback::{Stale, fallback};
    use bulwark::pipeline::Pipeline;
    use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
    use bulwark::retry::{Backoff, Budget, Config as RetryConfig, Jitter, Retry};
    use bulwark::timeout::timeout;
    use core::future::IntoFuture;

    static CLOCK2: MockClock = MockClock::new();
    let Ok(retry) = Retry::new(
        RetryConfig::new()
            .max_attempts(4)
            .backoff(Backoff::exponential(Duration::from_secs(1)))
            .jitter(Jitter::Full),
        &CLOCK2,
    ) else {
        return 1;
    };
    let Ok(budget) = Budget::new(20, 10, 10) else {
        return 2;
    };
    let retry = retry.with_budget(&budget);
    let Ok(limiter) = RateLimiter::new(
        LimiterConfig::per_second(10).max_wait(Duration::from_secs(1)),
        &CLOCK2,
    ) else {
        return 3;
    };
    let Ok(bulkhead) = Bulkhead::<QueueSemaphore<2>, _>::queued(
        BulkheadConfig::new(1).max_wait(Duration::from_secs(1)),
        &CLOCK2,
    ) else {
        return 4;
    };
    let Ok(pipeline) = Pipeline::new(&CLOCK2, RetryConfig::new().max_attempts(2)) else {
        return 5;
    };
    let pipeline = pipeline
        .limiter(&limiter)
        .bulkhead(&bulkhead)
        .attempt_timeout(Duration::from_secs(1));
    let cache: Stale<_> = Stale::new();
    let out = mock::run(&CLOCK2, async {
        let mut n = 0u32;
        let r = retry
            .call(|| {
                n += 1;
                let k = n;
                async move { if k < 3 { Err(k) } else { Ok(k) } }
            })
            .await;
        let t = timeout(
            &CLOCK2,
            Duration::from_millis(5),
            CLOCK2.sleep(Duration::from_secs(1)),
        )
        .await;
        let l = limiter.acquire(1).await.is_ok();
        let p = bulkhead.acquire().await.is_ok();
        let piped = pipeline.call(|| async { Ok::<u8, u8>(9) }).await;
        let f = fallback(|| async { Err::<u8, u8>(1) })
            .refresh(&cache, &CLOCK2)
            .or_value(7)
            .into_future()
            .await;
        (r, t.is_err(), l, p, piped, f)
    });
    match out {
        Ok((Ok(3), true, true, true, Ok(9), Ok(7))) => 0,
        Ok((Ok(3), true, true, true, Ok(9), _)) => 20,
        Ok((Ok(3), true, true, true, _, _)) => 21,
        Ok((Ok(3), true, true, _, _, _)) => 22,
        Ok((Ok(3), true, _, _, _, _)) => 23,
        Ok((Ok(3), _, _, _, _, _)) => 24,
        Ok(_) => 25,
        Err(_) => 26,
    }
}

/// The connection pool and bounded concurrency, called for real.
fn pool_and_bounded() -> i32 {
    use bulwark::bounded::Limit;
    use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};

    struct Conns;
    impl Manager for Conns {
        type Connection = u32;
        type Error = ();
        type Connect = core::future::Ready<Result<u32, ()>>;
        fn connect(&self) -> Self::Connect {
            core::future::ready(Ok(7))
        }
    }
    static CLOCK3: MockClock = MockClock::new();
    static POOL: Pool<Conns, QueueSemaphore<4>, &MockClock, 2> =
        Pool::queued(Conns, Config::new(), &CLOCK3);
    let out = mock::run(&CLOCK3, async {
        let sum = match POOL.acquire().await {
            Ok(conn) => *conn,
            Err(_) => 0,
        };
        let doubled = Limit::<2>::all([1u32, 2, 3], |x| async move { x * 2 }).await;
        (sum, doubled, POOL.totals().created)
    });
    if out == Ok((7, [2, 4, 6], 1)) { 0 } else { 1 }
}

/// The types that lock, with the lock strategies other than the default spin lock: the
/// one-thread `LocalLock` always, the interrupt-safe `CriticalSectionLock` with
/// `portable-atomic` (where this binary supplies the critical section).
fn lock_strategies() -> i32 {
    use bulwark::bulkhead::{QueueSemaphore, TrySemaphore};
    use bulwark::lock::LocalLock;
    use bulwark::rate_limiter::{Config, KeyedRateLimiter};

    static CLOCK4: MockClock = MockClock::new();
    let Ok(local) = KeyedRateLimiter::<u8, _, 4, LocalLock>::new(Config::per_second(1), &CLOCK4)
    else {
        return 1;
    };
    if local.try_acquire(&1).is_err() || local.try_acquire(&1).is_ok() {
        return 2;
    }
    #[cfg(feature = "portable-atomic")]
    {
        use bulwark::fallback::Stale;
        use bulwark::lock::CriticalSectionLock as Cs;
        use bulwark::rate_limiter::ConfigError;
        static PER_KEY: Result<KeyedRateLimiter<u8, &MockClock, 4, Cs>, ConfigError> =
            KeyedRateLimiter::new(Config::per_second(1), &CLOCK4);
        static LAST: Stale<u16, Cs> = Stale::new();
        static SEM: Result<QueueSemaphore<2, Cs>, bulwark::bulkhead::ConfigError> =
            QueueSemaphore::new(1);
        let (Ok(per_key), Ok(sem)) = (&PER_KEY, &SEM) else {
            return 3;
        };
        if per_key.try_acquire(&1).is_err() || per_key.try_acquire(&1).is_ok() {
            return 4;
        }
        LAST.put(812, Instant::ZERO);
        if LAST.get(Instant::ZERO, Duration::ZERO) != Some(812) {
            return 5;
        }
        if !sem.try_take() || sem.try_take() {
            return 6;
        }
        sem.give_back();
    }
    let local_sem = QueueSemaphore::<2, LocalLock>::new(1);
    match local_sem {
        Ok(s) if s.try_take() => 0,
        _ => 7,
    }
}
