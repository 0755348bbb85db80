//! A firmware-style embassy task reading a flaky sensor through a circuit breaker, a retry
//! and a rate limiter: the code a microcontroller would run, here on embassy's std executor
//! with the mock time driver (time moves 1 ms per executor turn, so the run is instant and
//! prints the same every time).
//!
//! On a real board the only differences are the executor (`embassy_executor::main` for the
//! chip) and the time driver (the HAL's). The policies are `static`s built on first use
//! (`LazyLock`: `embassy_sync::lazy_lock::LazyLock` on a chip, as the QEMU firmware in
//! `tests/firmware` does), `#![no_std]` and allocation-free.
//!
//! `cargo run -p bulwark-examples --bin embassy_sensor`

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bulwark::circuit_breaker::{
    CircuitBreaker, Config as BreakerConfig, Counters, Error, NoWindow,
};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Retry};
use bulwark::{Clock, Sleep};
use bulwark_embassy::EmbassyClock;
use embassy_executor::Executor;
use embassy_time::MockDriver;

static CLOCK: EmbassyClock = EmbassyClock;
static DONE: AtomicBool = AtomicBool::new(false);

type Breaker = CircuitBreaker<&'static EmbassyClock, NoWindow, Counters>;
type Policy = Retry<&'static EmbassyClock>;
type Limiter = RateLimiter<&'static EmbassyClock>;

static BREAKER: LazyLock<Breaker> = LazyLock::new(|| {
    CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(2)
            .open_for(Duration::from_millis(300)),
        &CLOCK,
    )
    .expect("a valid breaker configuration")
    .with_events(Counters::new())
});
static RETRY: LazyLock<Policy> = LazyLock::new(|| {
    Retry::new(
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::exponential(Duration::from_millis(5))),
        &CLOCK,
    )
    .expect("a valid retry configuration")
});
static LIMITER: LazyLock<Limiter> = LazyLock::new(|| {
    RateLimiter::new(
        LimiterConfig::per_second(5)
            .burst(1)
            .max_wait(Duration::from_secs(1)),
        &CLOCK,
    )
    .expect("a valid limiter configuration")
});

/// An I2C sensor that drops off the bus from 300 ms to 900 ms; a read takes 10 ms.
async fn read_sensor() -> Result<u16, &'static str> {
    CLOCK.sleep(Duration::from_millis(10)).await;
    let t = CLOCK.now().as_millis();
    if (300..900).contains(&t) {
        Err("i2c nack")
    } else {
        Ok(812 + (t % 7) as u16)
    }
}

#[embassy_executor::task]
async fn sensor_task(breaker: &'static Breaker, retry: &'static Policy, limiter: &'static Limiter) {
    for _ in 0..16 {
        // The radio may send at most 5 readings a second; the task waits for its slot.
        let _ = limiter.acquire(1).await;
        let t = CLOCK.now().as_millis();
        match breaker.call(|| retry.call(read_sensor)).await {
            Ok(v) => println!("{t:>5} ms  reading {v}"),
            Err(Error::Rejected(r)) => {
                let at = r.retry_at.map_or(0, |t| t.as_millis());
                println!("{t:>5} ms  sensor isolated (breaker open until {at} ms)");
            }
            Err(Error::Inner(e)) => println!("{t:>5} ms  read failed after retries: {e:?}"),
        }
        CLOCK.sleep(Duration::from_millis(50)).await;
    }
    DONE.store(true, Ordering::SeqCst);
}

#[embassy_executor::task]
async fn ticker() {
    loop {
        embassy_futures::yield_now().await;
    }
}

fn main() {
    let (breaker, retry, limiter) = (&*BREAKER, &*RETRY, &*LIMITER);
    println!("embassy sensor task (mock time): sensor off the bus from 300 ms to 900 ms\n");
    // The executor runs for the rest of the program and needs `&'static mut`: embassy's std
    // idiom leaks it once (a `StaticCell` on a chip).
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| {
            spawner.spawn(sensor_task(breaker, retry, limiter).expect("one sensor task"));
            spawner.spawn(ticker().expect("one ticker"));
        },
        || {
            if DONE.load(Ordering::SeqCst) {
                return true;
            }
            MockDriver::get().advance(embassy_time::Duration::from_millis(1));
            false
        },
    );
    let t = breaker.events().snapshot();
    println!(
        "\nbreaker: {:?}; {} reads ok, {} failed, {} rejected",
        breaker.state(),
        t.successes,
        t.failures,
        t.rejected
    );
}
