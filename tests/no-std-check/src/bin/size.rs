//! Code size probe: what a firmware pays for a circuit breaker, a retry policy and a rate
//! limiter together, on its own clock and a trivial busy-polling executor (no `MockClock`, no
//! test helpers). Built with the `size` profile (opt-level "z", fat LTO, one codegen unit,
//! panic = "abort"); `benches/footprint.sh` builds it and prints the sizes.
#![no_std]
#![no_main]

#[path = "../rt.rs"]
mod rt;

use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Retry};
use bulwark::{Clock, Instant, Sleep};
use core::future::Future;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

/// A firmware tick counter in milliseconds (a timer interrupt would bump it; here every read
/// advances it, so sleeps end).
static TICKS: AtomicU32 = AtomicU32::new(0);

struct Ticks;

impl Clock for Ticks {
    fn now(&self) -> Instant {
        // Load + store, not `fetch_add`: thumbv6m has no read-modify-write atomics.
        let t = TICKS.load(Ordering::Relaxed);
        TICKS.store(t.wrapping_add(1), Ordering::Relaxed);
        Instant::from_millis(t as u64)
    }
}

struct Until(Instant);

impl Future for Until {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Ticks.now() >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for Ticks {
    type Sleep = Until;
    fn sleep_until(&self, deadline: Instant) -> Until {
        Until(deadline)
    }
}

/// The smallest executor: poll until ready.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn entry() -> i32 {
    let cfg = BreakerConfig::new()
        .consecutive_failures(3)
        .open_for(Duration::from_secs(5));
    let Ok(breaker) = CircuitBreaker::new(cfg, Ticks) else {
        return 1;
    };
    let retry_cfg = RetryConfig::new()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(10)));
    let Ok(retry) = Retry::new(retry_cfg, Ticks) else {
        return 2;
    };
    let Ok(limiter) = RateLimiter::new(LimiterConfig::per_second(100), Ticks) else {
        return 3;
    };
    let input = core::hint::black_box(7u32);
    let out = block_on(retry.call(|| {
        let passed = limiter.try_acquire().is_ok();
        let r = breaker.call_sync(|| if passed { Ok(input) } else { Err(0u32) });
        async move { r }
    }));
    match out {
        Ok(7) => 0,
        _ => 4,
    }
}
