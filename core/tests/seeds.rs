//! Jitter seeds (issue 11, item 3): an explicit seed is reproducible and means the same thing
//! through the machine and the wrapper; without one, instances do not share a sequence.
//! (Different *processes* are checked in `bulwark-tokio`'s `tests/seeds_across_processes.rs`,
//! where a std adapter's clock seeds from OS entropy.)

use core::cell::RefCell;
use core::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::{Backoff, Config, Decision, Hooks, Jitter, Retry, RetryState};
use bulwark::timeout::Deadline;
use bulwark::{Clock, Instant, MockClock, mock};

/// Records the delay before each retry.
#[derive(Default)]
struct Delays(RefCell<Vec<Duration>>);

impl<T, E> Hooks<T, E> for Delays {
    fn on_retry(&self, _attempt: u32, delay: Duration, _outcome: &Result<T, E>) {
        self.0.borrow_mut().push(delay);
    }
}

fn jittered() -> Config {
    Config::new()
        .max_attempts(8)
        .backoff(Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(30)))
        .jitter(Jitter::Full)
}

/// The delays of `calls` calls through one policy, each failing every attempt.
fn call_delays(cfg: Config, calls: usize) -> Vec<Vec<Duration>> {
    let clock = MockClock::new();
    let delays = Delays::default();
    let retry = Retry::new(cfg, &clock).unwrap().with_hooks(&delays);
    (0..calls)
        .map(|_| {
            let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") })).unwrap();
            assert!(out.is_err());
            delays.0.take()
        })
        .collect()
}

/// The delays `RetryState::new(_, seed)` plans for attempts that all fail.
fn machine_delays(cfg: &Config, seed: u64) -> Vec<Duration> {
    let mut s = RetryState::new(Instant::ZERO, seed);
    let mut now = Instant::ZERO;
    let mut out = Vec::new();
    loop {
        s.start_attempt();
        match s.decide(cfg, now, None, Deadline::NONE) {
            Decision::Retry { delay, at } => {
                out.push(delay);
                now = at;
            }
            Decision::Stop(_) => return out,
        }
    }
}

#[test]
fn explicit_seed_gives_the_same_delays_through_retry_state_and_retry_call() {
    for seed in [0, 7, 0x5EED, u64::MAX] {
        let cfg = jittered().seed(seed);
        let through_call = call_delays(cfg, 1).remove(0);
        assert_eq!(through_call.len(), 7);
        assert_eq!(through_call, machine_delays(&cfg, seed), "seed {seed}");
    }
}

#[test]
fn explicit_seed_is_reproducible_and_calls_of_one_policy_differ() {
    let cfg = jittered().seed(42);
    let a = call_delays(cfg, 3);
    assert_eq!(
        a,
        call_delays(cfg, 3),
        "same seed, same delays for every call"
    );
    assert_ne!(a[0], a[1]);
    assert_ne!(a[1], a[2]);
    assert_ne!(a, call_delays(jittered().seed(43), 3));
}

#[test]
fn default_seeded_retry_policies_do_not_share_a_sequence() {
    // Two policies built from the same default config (no seed), as two services in one
    // process would be: their first calls must not jitter alike.
    let a = call_delays(jittered(), 2);
    let b = call_delays(jittered(), 2);
    assert_ne!(a[0], b[0]);
    assert_ne!(a[0], a[1]);
}

#[test]
fn default_retry_config_is_jittered_within_the_backoff() {
    // Full jitter: each delay uniform in [0, d] of the default backoff (100 ms x 2).
    let runs: Vec<Vec<Duration>> = (0..20)
        .map(|_| call_delays(Config::new(), 1).remove(0))
        .collect();
    for r in &runs {
        assert_eq!(r.len(), 2);
        assert!(r[0] <= Duration::from_millis(100) && r[1] <= Duration::from_millis(200));
    }
    assert!(runs.iter().any(|r| r[0] != Duration::from_millis(100)));
    assert!(runs.windows(2).any(|w| w[0] != w[1]));
}

/// When a breaker that opens for 10 s ± 50 % on its first failure lets calls through again.
fn breaker_open_until(cfg: BreakerConfig) -> Instant {
    let clock = MockClock::new();
    let b = CircuitBreaker::new(cfg, &clock).unwrap();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap_err().retry_at.unwrap()
}

fn jittered_breaker() -> BreakerConfig {
    BreakerConfig::new()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .open_jitter(50)
}

#[test]
fn default_seeded_breakers_open_for_different_times() {
    let a = breaker_open_until(jittered_breaker());
    let b = breaker_open_until(jittered_breaker());
    assert_ne!(a, b);
    for t in [a, b] {
        assert!(
            t >= Instant::from_secs(5) && t <= Instant::from_secs(15),
            "{t:?}"
        );
    }
}

#[test]
fn explicit_breaker_seed_is_reproducible() {
    let cfg = jittered_breaker().seed(9);
    assert_eq!(breaker_open_until(cfg), breaker_open_until(cfg));
    // And the breaker reports the configuration it was given, seed or none.
    let clock = MockClock::new();
    for cfg in [cfg, jittered_breaker()] {
        assert_eq!(CircuitBreaker::new(cfg, &clock).unwrap().config(), cfg);
    }
}

/// When a waiting caller of a limiter with 1 s of wake-up jitter got its token.
fn limiter_wake(cfg: LimiterConfig) -> Instant {
    let clock = MockClock::new();
    let cfg = cfg
        .max_wait(Duration::from_secs(10))
        .jitter(Duration::from_secs(1));
    let l = RateLimiter::new(cfg, &clock).unwrap();
    mock::run(&clock, async {
        l.acquire(1).await.unwrap(); // the one token
        l.acquire(1).await.unwrap(); // due at 1 s, woken up to 1 s later
    })
    .unwrap();
    clock.now()
}

#[test]
fn default_seeded_rate_limiters_wake_at_different_times() {
    let a = limiter_wake(LimiterConfig::per_second(1));
    let b = limiter_wake(LimiterConfig::per_second(1));
    assert_ne!(a, b);
    let c = LimiterConfig::per_second(1).seed(5);
    assert_eq!(limiter_wake(c), limiter_wake(c));
}
