//! Cancellation soak: random breaker calls, bulkhead and pool acquires, limiter waits and
//! pipeline calls on one mock clock, polled in random order and dropped at random poll points;
//! after each sequence everything must be idle again: no permit, pool slot, half-open probe or
//! registered sleep left behind.
//!
//! `cargo test -p bulwark-tests --test cancellation_soak` runs a fixed, seeded 10 000
//! sequences; `BULWARK_SOAK_SEQUENCES=1000000` runs more (and `BULWARK_SOAK_SEED` another seed).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use bulwark::MockClock;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig, CountWindow};
use bulwark::pipeline::Pipeline;
use bulwark::pool::{Config as PoolConfig, Manager, Pool};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config as RetryConfig};

/// SplitMix64: the soak's own seeded generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

#[derive(Debug)]
struct Conn;
impl Manager for Conn {
    type Connection = u8;
    type Error = ();
    type Connect = core::future::Ready<Result<u8, ()>>;
    fn connect(&self) -> Self::Connect {
        core::future::ready(Ok(1))
    }
}

const PROBES: u32 = 2;
const MAX_TASKS: usize = 6;

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// What a sequence did: tasks started, finished, and cancelled while pending.
#[derive(Default, Debug)]
struct Tally {
    started: u64,
    finished: u64,
    cancelled: u64,
}

/// Runs one random sequence; `leak` forgets one bulkhead permit (the deliberate-leak control).
/// Returns what was left behind, if anything.
fn sequence(seed: u64, leak: bool, tally: &mut Tally) -> Result<(), String> {
    let mut rng = Rng(seed);
    let clock = MockClock::new();
    let clock = &clock;
    let breaker = CircuitBreaker::with_window(
        BreakerConfig::new()
            .consecutive_failures(3)
            .failure_rate(50)
            .minimum_calls(4)
            .open_for(Duration::from_millis(50))
            .half_open(PROBES, 1),
        CountWindow::<8>,
        clock,
    )
    .unwrap();
    let bulkhead: Bulkhead<QueueSemaphore<8>, _> = Bulkhead::queued(
        BulkheadConfig::new(2).max_wait(Duration::from_millis(30)),
        clock,
    )
    .unwrap();
    let pool: Pool<Conn, QueueSemaphore<8>, _, 2> = Pool::queued(
        Conn,
        PoolConfig::new().timeout(Duration::from_millis(30)),
        clock,
    );
    let limiter = RateLimiter::new(
        LimiterConfig::per_second(100)
            .burst(2)
            .max_wait(Duration::from_millis(40))
            .seed(seed),
        clock,
    )
    .unwrap();
    let pipeline = Pipeline::new(
        clock,
        RetryConfig::new()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .seed(seed),
    )
    .unwrap()
    .breaker(&breaker)
    .limiter(&limiter)
    .bulkhead(&bulkhead)
    .total_timeout(Duration::from_millis(100))
    .attempt_timeout(Duration::from_millis(20));
    let (breaker, bulkhead, pool, limiter, pipeline) =
        (&breaker, &bulkhead, &pool, &limiter, &pipeline);

    let mut cx = Context::from_waker(Waker::noop());
    let mut tasks: Vec<Task<'_>> = Vec::new();
    let steps = 10 + rng.below(40);
    for _ in 0..steps {
        match rng.below(10) {
            0..=3 if tasks.len() < MAX_TASKS => {
                let work = rng.ms(40);
                let fail = rng.below(3) == 0;
                let n = 1 + rng.below(2) as u32;
                let task: Task<'_> = match rng.below(5) {
                    0 => Box::pin(async move {
                        let _ = breaker
                            .call(|| async move {
                                clock.sleep(work).await;
                                if fail { Err(()) } else { Ok(()) }
                            })
                            .await;
                    }),
                    1 => Box::pin(async move {
                        if let Ok(permit) = bulkhead.acquire().await {
                            clock.sleep(work).await;
                            drop(permit);
                        }
                    }),
                    2 => Box::pin(async move {
                        if let Ok(conn) = pool.acquire().await {
                            clock.sleep(work).await;
                            drop(conn);
                        }
                    }),
                    3 => Box::pin(async move {
                        let _ = limiter.acquire(n).await;
                    }),
                    _ => Box::pin(async move {
                        let _ = pipeline
                            .call(|| async move {
                                clock.sleep(work).await;
                                if fail { Err(()) } else { Ok(()) }
                            })
                            .await;
                    }),
                };
                tasks.push(task);
                tally.started += 1;
            }
            0..=6 if !tasks.is_empty() => {
                let i = rng.below(tasks.len() as u64) as usize;
                if tasks[i].as_mut().poll(&mut cx).is_ready() {
                    drop(tasks.swap_remove(i));
                    tally.finished += 1;
                }
            }
            7 if !tasks.is_empty() => {
                let i = rng.below(tasks.len() as u64) as usize;
                drop(tasks.swap_remove(i)); // cancelled at whatever point it reached
                tally.cancelled += 1;
            }
            _ => {
                clock.advance(rng.ms(30));
                let before = tasks.len();
                tasks.retain_mut(|t| t.as_mut().poll(&mut cx).is_pending());
                tally.finished += (before - tasks.len()) as u64;
            }
        }
    }
    // Cancel whatever is still running, in random order.
    while !tasks.is_empty() {
        let i = rng.below(tasks.len() as u64) as usize;
        drop(tasks.swap_remove(i));
        tally.cancelled += 1;
    }
    if leak {
        std::mem::forget(bulkhead.try_acquire().expect("all permits are free again"));
    }

    let mut left = Vec::new();
    if bulkhead.metrics().in_use != 0 || bulkhead.semaphore().waiting() != 0 {
        left.push(format!("bulkhead: {:?}", bulkhead.metrics()));
    }
    let m = pool.metrics();
    if m.in_use != 0 || pool.semaphore().waiting() != 0 {
        left.push(format!("pool: {m:?}"));
    }
    if let Some(at) = clock.next_deadline() {
        left.push(format!("a sleep is still registered, due at {at:?}"));
    }
    // Every probe slot must be free: past any open time, the configured number of probes
    // is admitted (or the breaker is closed and admits anyone).
    clock.advance(Duration::from_secs(60));
    let before = breaker.state();
    let admitted: Vec<_> = (0..PROBES).map(|_| breaker.try_acquire()).collect();
    if admitted.iter().any(Result::is_err) {
        left.push(format!(
            "breaker ({before:?}): a probe slot was not given back"
        ));
    }
    drop(admitted);
    if left.is_empty() {
        Ok(())
    } else {
        Err(left.join("; "))
    }
}

fn sequences() -> u64 {
    std::env::var("BULWARK_SOAK_SEQUENCES").map_or(10_000, |s| s.parse().expect("a number"))
}

fn base_seed() -> u64 {
    std::env::var("BULWARK_SOAK_SEED").map_or(0x50A4_0000, |s| s.parse().expect("a number"))
}

#[test]
fn every_cancelled_sequence_leaves_everything_idle() {
    let (n, base) = (sequences(), base_seed());
    let mut tally = Tally::default();
    for i in 0..n {
        let seed = base.wrapping_add(i);
        if let Err(left) = sequence(seed, false, &mut tally) {
            panic!("sequence {i} (seed {seed}) left behind: {left}");
        }
    }
    println!("{n} sequences, all idle afterwards: {tally:?}");
    // The soak must really cancel work in flight, and finish some too.
    assert!(tally.cancelled >= n, "{tally:?}");
    assert!(tally.finished >= n, "{tally:?}");
}

/// The control: a sequence that forgets one permit must be caught, or the check above
/// proves nothing.
#[test]
fn a_deliberate_leak_is_caught() {
    let mut tally = Tally::default();
    let caught = (0..200)
        .filter(|&s| sequence(base_seed() + s, true, &mut tally).is_err())
        .count();
    assert_eq!(caught, 200, "every leaked permit must be reported");
}
