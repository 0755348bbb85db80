//! [`bulwark`] on async-std and smol: a [`Clock`] and [`Sleep`] over `async-io`.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052; its successor is smol). Both run
//! their timers on async-io, so this adapter is built on async-io alone and works under
//! either runtime.
//!
//! ```
//! use bulwark::{Clock, Sleep};
//! use bulwark_async_std::AsyncIoClock;
//! use std::time::Duration;
//!
//! let clock = AsyncIoClock::new();
//! smol::block_on(async {
//!     let t0 = clock.now();
//!     clock.sleep(Duration::ZERO).await;
//!     assert!(clock.now() >= t0);
//! });
//! ```
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use bulwark;
use bulwark::{Clock, Instant, Sleep};

mod semaphore;
pub use semaphore::{AsyncLockSemaphore, AsyncLockWaiter};

/// A clock over `std::time::Instant` whose sleeps are async-io timers. Every `AsyncIoClock`
/// of a process has the same origin (the moment the first one was made), so an instant read
/// from one means the same on any other: instants of two clocks cannot be mixed up.
///
/// On Linux its [coarse reading](Clock::now_coarse) is the kernel's tick-granular
/// `CLOCK_MONOTONIC_COARSE` (the clock `std::time::Instant` reads, as of the last tick: a
/// few milliseconds behind at most, at a fraction of the cost); elsewhere it is `now()`.
///
/// ```
/// use bulwark::Clock;
/// let clock = bulwark_async_std::AsyncIoClock::new();
/// assert!(clock.now() < bulwark::Instant::from_secs(60));
/// assert!(clock.now_coarse() <= clock.now());
/// ```
#[derive(Copy, Clone, Debug)]
pub struct AsyncIoClock {
    origin: std::time::Instant,
    /// `CLOCK_MONOTONIC` in nanoseconds, read just after `origin`: the origin of the coarse
    /// readings. Being read after it, it makes coarse readings lag `now()`, never lead it.
    #[cfg(target_os = "linux")]
    monotonic_origin: u64,
    /// The resolution of `CLOCK_MONOTONIC_COARSE` (one kernel tick) plus a microsecond for
    /// the gap between reading `origin` and `monotonic_origin`, in nanoseconds.
    #[cfg(target_os = "linux")]
    coarse_lag: u64,
}

#[cfg(target_os = "linux")]
fn monotonic_nanos(id: rustix::time::ClockId) -> u64 {
    timespec_nanos(rustix::time::clock_gettime(id))
}

#[cfg(target_os = "linux")]
fn timespec_nanos(t: rustix::time::Timespec) -> u64 {
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Offers bulwark's default jitter seed ([`bulwark::rng`]) a value from OS entropy, once per
/// process (the random keys the standard library seeds `HashMap`s with, mixed with the process
/// id), so default-seeded retries, breakers and limiters of different processes do not jitter
/// in lockstep. A seed set with [`bulwark::rng::set_default_seed`] wins.
fn seed_from_os_entropy() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        bulwark::rng::offer_default_seed(h.finish());
    });
}

impl AsyncIoClock {
    /// The process's clock (a cheap `Copy` handle; every one reads the same instants). The
    /// first call in the process fixes the origin and offers bulwark's default jitter seed a
    /// value from OS entropy.
    ///
    /// ```
    /// use bulwark::Instant;
    /// let a = bulwark_async_std::AsyncIoClock::new();
    /// let b = bulwark_async_std::AsyncIoClock::new(); // made later: the same origin
    /// assert_eq!(a.to_std(Instant::ZERO), b.to_std(Instant::ZERO));
    /// ```
    pub fn new() -> Self {
        static BASE: std::sync::OnceLock<AsyncIoClock> = std::sync::OnceLock::new();
        *BASE.get_or_init(Self::first)
    }

    /// The first clock of the process: its origin is now.
    fn first() -> Self {
        seed_from_os_entropy();
        // A panicking operation counts as a failure on the permit it held.
        bulwark::admission::set_panic_probe(std::thread::panicking);
        let origin = std::time::Instant::now();
        AsyncIoClock {
            origin,
            #[cfg(target_os = "linux")]
            monotonic_origin: monotonic_nanos(rustix::time::ClockId::Monotonic),
            #[cfg(target_os = "linux")]
            coarse_lag: timespec_nanos(rustix::time::clock_getres(
                rustix::time::ClockId::MonotonicCoarse,
            ))
            .saturating_add(1_000),
        }
    }

    /// The std instant that `t` stands for (`None` past what the platform can represent).
    ///
    /// ```
    /// use bulwark::{Clock, Instant};
    /// let clock = bulwark_async_std::AsyncIoClock::new();
    /// assert!(clock.to_std(Instant::ZERO).is_some());
    /// ```
    pub fn to_std(&self, t: Instant) -> Option<std::time::Instant> {
        self.origin.checked_add(t.since_origin())
    }
}

impl Default for AsyncIoClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for AsyncIoClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(bulwark::time::duration_to_nanos(self.origin.elapsed()))
    }

    #[cfg(target_os = "linux")]
    fn now_coarse(&self) -> Instant {
        let t = monotonic_nanos(rustix::time::ClockId::MonotonicCoarse);
        Instant::from_nanos(t.saturating_sub(self.monotonic_origin))
    }

    #[cfg(target_os = "linux")]
    fn coarse_lag(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.coarse_lag)
    }
}

impl Sleep for AsyncIoClock {
    type Sleep = AsyncIoSleep;

    fn sleep_until(&self, deadline: Instant) -> AsyncIoSleep {
        AsyncIoSleep {
            // A deadline past what std can represent never comes: a timer that never fires.
            timer: self
                .to_std(deadline)
                .map_or_else(async_io::Timer::never, async_io::Timer::at),
        }
    }
}

/// The future of [`AsyncIoClock`]'s [`Sleep::sleep_until`].
///
/// ```
/// use bulwark::{Instant, Sleep};
/// let clock = bulwark_async_std::AsyncIoClock::new();
/// async_std::task::block_on(clock.sleep_until(Instant::ZERO)); // already due: at once
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct AsyncIoSleep {
    timer: async_io::Timer,
}

impl Future for AsyncIoSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    #[test]
    fn due_sleeps_complete_at_once_under_both_runtimes() {
        let clock = AsyncIoClock::new();
        async_std::task::block_on(clock.sleep_until(Instant::ZERO));
        smol::block_on(clock.sleep_until(Instant::ZERO));
    }

    #[test]
    fn future_deadline_is_pending_and_unrepresentable_never_fires() {
        let clock = AsyncIoClock::new();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut far = pin!(clock.sleep_until(clock.now() + std::time::Duration::from_secs(3600)));
        assert!(far.as_mut().poll(cx).is_pending());
        let mut never = pin!(clock.sleep_until(Instant::MAX));
        assert!(never.as_mut().poll(cx).is_pending());
    }

    #[test]
    fn coarse_readings_never_lead_the_precise_clock() {
        let clock = AsyncIoClock::new();
        for _ in 0..10_000 {
            let coarse = clock.now_coarse();
            let now = clock.now();
            assert!(coarse <= now, "{coarse:?} > {now:?}");
            // Behind by a kernel tick at most; a second is a bound no machine comes near.
            assert!(now - coarse < std::time::Duration::from_secs(1));
            assert!(clock.coarse_lag() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn a_breaker_on_the_coarse_clock_admits_at_its_retry_instant() {
        use bulwark::circuit_breaker::{CircuitBreaker, Config};
        let clock = AsyncIoClock::new();
        // Open for no time at all: its end is now, so a coarse reading (a tick behind) alone
        // would still say "open"; the precise one near the end admits the probe at once.
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(std::time::Duration::ZERO);
        let b = CircuitBreaker::new(cfg, clock).unwrap();
        b.try_acquire().unwrap().failure();
        assert!(b.try_acquire().unwrap().is_probe());
        // Open for an hour: rejected on the coarse reading, with the precise instant.
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(std::time::Duration::from_secs(3600));
        let b = CircuitBreaker::new(cfg, clock).unwrap();
        b.try_acquire().unwrap().failure();
        let at = b.try_acquire().unwrap_err().retry_at.unwrap();
        assert!(at > clock.now() + std::time::Duration::from_secs(3590));
    }
}
