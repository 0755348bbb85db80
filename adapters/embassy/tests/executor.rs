//! The policies in embassy tasks, on embassy's std executor with the mock time driver: the
//! same code a firmware task runs, with time moved by hand (1 ms per executor turn).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, State};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::{Clock, Sleep};
use bulwark_embassy::EmbassyClock;
use embassy_executor::Executor;
use embassy_time::MockDriver;

static CLOCK: EmbassyClock = EmbassyClock;
static LOG: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());
static DONE: AtomicBool = AtomicBool::new(false);

type Breaker = CircuitBreaker<&'static EmbassyClock>;
type Policy = Retry<&'static EmbassyClock>;

static BREAKER: LazyLock<Breaker> = LazyLock::new(|| {
    CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(2)
            .open_for(Duration::from_millis(250)),
        &CLOCK,
    )
    .unwrap()
});
static RETRY: LazyLock<Policy> = LazyLock::new(|| {
    Retry::new(
        RetryConfig::new()
            .max_attempts(2)
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .jitter(Jitter::None), // exact times, asserted below
        &CLOCK,
    )
    .unwrap()
});

fn log(what: &'static str) {
    LOG.lock().unwrap().push((what, CLOCK.now().as_millis()));
}

/// A sensor that is unplugged from 100 ms to 400 ms; each read takes 10 ms.
async fn read_sensor() -> Result<u16, ()> {
    CLOCK.sleep(Duration::from_millis(10)).await;
    let t = CLOCK.now().as_millis();
    if (100..400).contains(&t) {
        Err(())
    } else {
        Ok(812)
    }
}

#[embassy_executor::task]
async fn sensor_task(breaker: &'static Breaker, retry: &'static Policy) {
    for _ in 0..8 {
        let out = breaker.call(|| retry.call(read_sensor)).await;
        log(match out {
            Ok(_) => "reading",
            Err(e) if e.is_rejected() => "breaker open",
            Err(_) => "sensor failed",
        });
        CLOCK.sleep(Duration::from_millis(100)).await;
    }
    DONE.store(true, Ordering::SeqCst);
}

/// Keeps the executor polling, so that `run_until` can move the mock time between turns.
#[embassy_executor::task]
async fn ticker() {
    loop {
        embassy_futures::yield_now().await;
    }
}

#[test]
fn sensor_task_trips_and_recovers_on_the_embassy_executor() {
    MockDriver::get().reset();
    let (breaker, retry) = (&*BREAKER, &*RETRY);
    // The executor runs for the rest of the test and needs `&'static mut`: embassy's std
    // idiom leaks it once (a `StaticCell` on a chip).
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| {
            spawner.spawn(sensor_task(breaker, retry).unwrap());
            spawner.spawn(ticker().unwrap());
        },
        || {
            if DONE.load(Ordering::SeqCst) {
                return true;
            }
            MockDriver::get().advance(embassy_time::Duration::from_millis(1));
            false
        },
    );
    let log = LOG.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            ("reading", 10),
            ("sensor failed", 135), // 110: fail, 5 ms back-off, 125: fail
            ("sensor failed", 260), // the second failure in a row opens the breaker (until 510)
            ("breaker open", 360),
            ("breaker open", 460),
            ("reading", 570), // the half-open probe at 560 succeeds and closes it
            ("reading", 680),
            ("reading", 790),
        ]
    );
    assert_eq!(breaker.state(), State::Closed);
}
