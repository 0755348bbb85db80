//! Scenario 1, tasks only: a flaky I2C sensor read through a circuit breaker, a retry with
//! exponential backoff and a rate limiter, on an I2C bus (a bulkhead of one permit) that a
//! display task also uses.
//!
//! The sensor NACKs every read that ends in [300 ms, 900 ms). A read holds the bus for
//! 10 ms; the first round starts at 10 ms (start-up is over by then, however slow the core).
//! The display holds the bus for 30 ms every 250 ms from 140 ms. Every decision depends only
//! on the tick clock, no two tasks want the bus in the same tick, and nothing slow (a host
//! call, formatting) runs while the instants are made, so the timeline is the same on every
//! run.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use bulwark::bulkhead::Bulkhead;
use bulwark::circuit_breaker::{
    CircuitBreaker, Config as BreakerConfig, Counters, Error, NoWindow, State,
};
use bulwark::rate_limiter::{Config as LimiterConfig, ConfigError, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::{Clock, Sleep};
use bulwark_embassy::{EmbassyClock, EmbassySemaphore};
use embassy_sync::blocking_mutex::CriticalSectionMutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::lazy_lock::LazyLock;
use embassy_sync::signal::Signal;

use crate::timeline::{self, Event};
use crate::{check, fail_now};

/// Reads that end in this window (ms since boot) are NACKed.
pub const NACK_FROM: u64 = 300;
pub const NACK_UNTIL: u64 = 900;
const READ: Duration = Duration::from_millis(10);
const ROUNDS: usize = 12;
/// The first round, in ms since boot.
const START_MS: u64 = 10;
const OPEN_FOR: Duration = Duration::from_millis(300);
/// The limiter's period (5 reads a second, no burst).
const PERIOD_MS: u64 = 200;

static CLOCK: EmbassyClock = EmbassyClock;

type Breaker = CircuitBreaker<EmbassyClock, NoWindow, Counters>;
type BusSemaphore = EmbassySemaphore<CriticalSectionRawMutex, 2>;

static BUS_PERMITS: BusSemaphore = EmbassySemaphore::new(1);
/// The I2C bus: one transfer at a time; a caller waits at most 40 ms for it.
static BUS: Bulkhead<&BusSemaphore, EmbassyClock> =
    Bulkhead::with_semaphore(&BUS_PERMITS, Duration::from_millis(40), EmbassyClock);
/// Set while someone holds the bus: a second holder would be a bulkhead bug.
static BUS_HELD: AtomicBool = AtomicBool::new(false);
static BUS_OVERLAP: AtomicBool = AtomicBool::new(false);

static LIMITER: Result<RateLimiter<EmbassyClock>, ConfigError> = RateLimiter::new(
    LimiterConfig::per_second(5)
        .burst(1)
        .max_wait(Duration::from_secs(1)),
    EmbassyClock,
);

static BREAKER: LazyLock<Breaker> = LazyLock::new(|| {
    let cfg = BreakerConfig::new()
        .consecutive_failures(2)
        .open_for(OPEN_FOR);
    match CircuitBreaker::new(cfg, EmbassyClock) {
        Ok(b) => b.with_events(Counters::new()),
        Err(_) => fail_now("sensor breaker config"),
    }
});

static RETRY: LazyLock<Retry<EmbassyClock>> = LazyLock::new(|| {
    let cfg = RetryConfig::new()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(5)))
        .jitter(Jitter::None);
    match Retry::new(cfg, EmbassyClock) {
        Ok(r) => r,
        Err(_) => fail_now("sensor retry config"),
    }
});

/// The sensor task is done; the display stops at its next turn.
static DONE: Signal<CriticalSectionRawMutex, ()> = Signal::new();
static STOP_DISPLAY: AtomicBool = AtomicBool::new(false);
static DISPLAY_DONE: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn ms() -> u64 {
    CLOCK.now().as_millis()
}

fn limiter() -> &'static RateLimiter<EmbassyClock> {
    match &LIMITER {
        Ok(l) => l,
        Err(_) => fail_now("sensor limiter config"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorError {
    Nack,
    BusBusy,
}

#[derive(Clone, Copy, Default)]
struct Attempt {
    round: usize,
    /// Called by the retry.
    begin: u64,
    /// Got the bus.
    got: u64,
    /// The read ended.
    end: u64,
    ok: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Reading,
    Failed,
    Rejected { retry_at: u64 },
}

struct Trace {
    attempts: [Attempt; 3 * ROUNDS],
    n: usize,
    round: usize,
}

type BusPermit = bulwark::admission::Permit<&'static Bulkhead<&'static BusSemaphore, EmbassyClock>>;

/// Takes the bus (waiting up to the bulkhead's 40 ms) and notes whether it was free.
async fn take_bus() -> Result<BusPermit, SensorError> {
    let permit = BUS.acquire().await.map_err(|_| SensorError::BusBusy)?;
    if BUS_HELD.load(Ordering::Relaxed) {
        BUS_OVERLAP.store(true, Ordering::Relaxed);
    }
    BUS_HELD.store(true, Ordering::Relaxed);
    Ok(permit)
}

fn give_bus(permit: BusPermit) {
    BUS_HELD.store(false, Ordering::Relaxed);
    drop(permit);
}

/// One read of the simulated sensor: the bus for 10 ms, then ACK or NACK by the clock.
async fn read_sensor(trace: &RefCell<Trace>) -> Result<u16, SensorError> {
    let begin = ms();
    let bus = take_bus().await?;
    let got = ms();
    CLOCK.sleep(READ).await;
    let end = ms();
    give_bus(bus);
    let ok = !(NACK_FROM..NACK_UNTIL).contains(&end);
    let mut t = trace.borrow_mut();
    let round = t.round;
    let i = t.n;
    if i < t.attempts.len() {
        t.attempts[i] = Attempt {
            round,
            begin,
            got,
            end,
            ok,
        };
        t.n += 1;
    }
    if ok {
        Ok(800 + (end % 13) as u16)
    } else {
        timeline::record(Event::Nack { begin, got, end });
        Err(SensorError::Nack)
    }
}

#[embassy_executor::task]
pub async fn display() {
    let mut next = 140;
    while !STOP_DISPLAY.load(Ordering::Relaxed) {
        CLOCK.sleep_until(bulwark::Instant::from_millis(next)).await;
        match take_bus().await {
            Ok(bus) => {
                let from = ms();
                CLOCK.sleep(Duration::from_millis(30)).await;
                give_bus(bus);
                timeline::record(Event::Display { from, until: ms() });
            }
            Err(_) => timeline::record(Event::DisplaySkipped { at: ms() }),
        }
        next += 250;
    }
    DISPLAY_DONE.signal(());
}

#[embassy_executor::task]
pub async fn sensor() {
    let trace = RefCell::new(Trace {
        attempts: [Attempt::default(); 3 * ROUNDS],
        n: 0,
        round: 0,
    });
    let mut starts = [0u64; ROUNDS];
    let mut outcomes = [Outcome::Reading; ROUNDS];
    let mut limiter_errors = 0;
    CLOCK
        .sleep_until(bulwark::Instant::from_millis(START_MS))
        .await;
    for round in 0..ROUNDS {
        if limiter().acquire(1).await.is_err() {
            limiter_errors += 1;
        }
        let t = ms();
        starts[round] = t;
        trace.borrow_mut().round = round;
        let result = BREAKER
            .get()
            .call(|| RETRY.get().call(|| read_sensor(&trace)))
            .await;
        outcomes[round] = match result {
            Ok(v) => {
                timeline::record(Event::Reading {
                    t,
                    round,
                    value: v,
                    done: ms(),
                });
                Outcome::Reading
            }
            Err(Error::Rejected(r)) => {
                let at = r.retry_at.map_or(u64::MAX, |i| i.as_millis());
                timeline::record(Event::Rejected {
                    t,
                    round,
                    until: at,
                });
                Outcome::Rejected { retry_at: at }
            }
            Err(Error::Inner(e)) => {
                timeline::record(Event::Failed {
                    t,
                    round,
                    error: e,
                    at: ms(),
                });
                Outcome::Failed
            }
        };
        CLOCK.sleep(Duration::from_millis(50)).await;
    }
    STOP_DISPLAY.store(true, Ordering::Relaxed);
    let run = Run {
        trace: trace.into_inner(),
        starts,
        outcomes,
        limiter_errors,
    };
    RESULT.lock(|r| r.replace(Some(run)));
    DONE.signal(());
}

/// What the sensor task saw, checked once its timeline is printed.
struct Run {
    trace: Trace,
    starts: [u64; ROUNDS],
    outcomes: [Outcome; ROUNDS],
    limiter_errors: u32,
}

static RESULT: CriticalSectionMutex<RefCell<Option<Run>>> =
    CriticalSectionMutex::new(RefCell::new(None));

/// Waits for the sensor task to finish, and the display after it.
pub async fn finished() {
    DONE.wait().await;
    DISPLAY_DONE.wait().await;
}

/// Checks the run of the sensor task.
pub fn check() {
    let Some(run) = RESULT.lock(|r| r.borrow_mut().take()) else {
        fail_now("sensor: no result");
    };
    let Run {
        trace,
        starts,
        outcomes,
        limiter_errors,
    } = &run;
    let limiter_errors = *limiter_errors;
    let attempts = &trace.attempts[..trace.n];

    // The peripheral model: NACK exactly inside its window.
    let model_ok = attempts
        .iter()
        .all(|a| a.ok != (NACK_FROM..NACK_UNTIL).contains(&a.end));
    check!(
        model_ok,
        "sensor: every read in [300, 900) ms NACKed, every other read ACKed"
    );

    // Rate limiter: 5 a second with no burst, so rounds start 200 ms apart at least (less
    // one tick: a round's start is read just after its token was granted).
    let min_gap = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    check!(
        limiter_errors == 0 && min_gap >= PERIOD_MS - 1,
        "limiter: {ROUNDS} rounds, none refused, 200 ms apart at least (closest {min_gap} ms)"
    );

    // Retry: attempt k+1 of a call is made the backoff after attempt k failed: 5 ms, then
    // 10 ms (exponential, no jitter), give or take the tick the clock was read in; never
    // more than 3 attempts a call.
    let mut backoffs_ok = true;
    let mut retried = 0;
    for w in attempts.windows(2) {
        if w[0].round == w[1].round {
            let k = attempts
                .iter()
                .filter(|a| a.round == w[0].round && a.begin <= w[0].begin)
                .count() as u32;
            let expected = 5u64 << (k - 1);
            let gap = w[1].begin - w[0].end;
            retried += 1;
            backoffs_ok &= !w[0].ok && (expected..=expected + 1).contains(&gap);
        }
    }
    let per_round_ok = (0..ROUNDS).all(|r| attempts.iter().filter(|a| a.round == r).count() <= 3);
    check!(
        backoffs_ok && per_round_ok && retried == 4,
        "retry: 4 retries, each 5 ms then 10 ms (+1 tick at most) after the failed attempt, at most 3 attempts a call"
    );

    // The reads of rounds 2 and 3 end in the NACK window, so both calls fail (3 attempts
    // each) and the second trips the breaker. Round 3's third attempt is made at 645 ms, but
    // the display holds the bus from 640 to 670 ms: it waits 25 ms for it (the bulkhead) and
    // fails at 680 ms, which opens the breaker until 980 ms. Round 4 (810 ms, the limiter's
    // next slot) is rejected; round 5 (1010 ms) probes, the sensor is back, the breaker
    // closes. Instants are allowed one tick of slack.
    use Outcome::{Failed as F, Reading as R};
    let shape: [Outcome; ROUNDS] = core::array::from_fn(|r| match outcomes[r] {
        Outcome::Rejected { .. } => Outcome::Rejected { retry_at: 0 },
        o => o,
    });
    let x = Outcome::Rejected { retry_at: 0 };
    check!(
        shape == [R, R, F, F, x, R, R, R, R, R, R, R],
        "breaker: rounds 0-1 read, 2-3 fail after 3 attempts each, 4 is rejected, 5-11 read"
    );
    let waited = attempts
        .iter()
        .find(|a| a.round == 3 && a.got > a.begin)
        .map(|a| a.got - a.begin);
    check!(
        waited.is_some_and(|w| (25..=26).contains(&w)),
        "bus bulkhead: round 3's last attempt waited 25 ms for the display ({waited:?} ms)"
    );
    let opened_at = attempts
        .iter()
        .filter(|a| a.round == 3)
        .map(|a| a.end)
        .max()
        .unwrap_or(0);
    let retry_at = match outcomes[4] {
        Outcome::Rejected { retry_at } => retry_at,
        _ => 0,
    };
    let open_ms = OPEN_FOR.as_millis() as u64;
    check!(
        (680..=681).contains(&opened_at)
            && (opened_at + open_ms..=opened_at + open_ms + 1).contains(&retry_at)
            && starts[4] < retry_at
            && starts[5] >= retry_at,
        "breaker: opened at {opened_at} ms (expected 680), open until {retry_at} ms (300 ms later); round 5 at {} ms probed",
        starts[5]
    );
    let reads = outcomes.iter().filter(|o| **o == Outcome::Reading).count() as u64;
    let failed = outcomes.iter().filter(|o| **o == Outcome::Failed).count() as u64;
    let rejected = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Rejected { .. }))
        .count() as u64;
    let totals = BREAKER.get().events().snapshot();
    check!(
        (totals.successes, totals.failures, totals.rejected) == (reads, failed, rejected)
            && (reads, failed, rejected) == (9, 2, 1),
        "breaker totals: {} ok, {} failed, {} rejected (expected 9, 2, 1)",
        totals.successes,
        totals.failures,
        totals.rejected
    );
    check!(
        BREAKER.get().state() == State::Closed,
        "breaker: closed at the end"
    );

    // Bulkhead: the sensor and the display never held the bus together; the sensor waited
    // for the display three times (rounds 2, 3 and 7).
    let bus = BUS.totals();
    check!(
        !BUS_OVERLAP.load(Ordering::Relaxed) && bus.waited == 3 && bus.timed_out == 0,
        "bus bulkhead: one holder at a time, {} waits, none timed out",
        bus.waited
    );
}
