//! Without an explicit seed, two processes of the same binary must not jitter alike (issue 11,
//! item 3: a fleet restarted together retried in lockstep). This test runs its own binary
//! twice as child processes; each prints the jitter its default-seeded primitives draw (retry
//! delays, a breaker's open time, a rate limiter's wake-up), and the parent compares them.
//! A program on the tokio adapter builds a `TokioClock`, which seeds from OS entropy.

use std::process::Command;
use std::time::Duration;

use bulwark_tokio::bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark_tokio::bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark_tokio::bulwark::retry::{Config, Hooks, Retry};
use bulwark_tokio::bulwark::{Clock, MockClock, mock};

const CHILD: &str = "BULWARK_SEEDS_CHILD";
const TEST: &str = "default_seeded_jitter_differs_between_processes";

struct Delays(std::cell::RefCell<Vec<u128>>);

impl<T, E> Hooks<T, E> for Delays {
    fn on_retry(&self, _attempt: u32, delay: Duration, _outcome: &Result<T, E>) {
        self.0.borrow_mut().push(delay.as_nanos());
    }
}

/// What a child prints: the jitter of each default-seeded primitive, in nanoseconds.
fn draws() -> String {
    // A program on this adapter builds its clock first; that offers the OS entropy. The
    // primitives then run on the mock clock, so their draws are the only thing that varies.
    let _ = bulwark_tokio::TokioClock::new();
    let clock = MockClock::new();
    // Retry with the default config (full jitter, no seed): four calls, all failing.
    let delays = Delays(Default::default());
    let retry = Retry::new(Config::new().max_attempts(4), &clock)
        .unwrap()
        .with_hooks(&delays);
    for _ in 0..4 {
        let _ = mock::run(&clock, retry.call(|| async { Err::<(), _>("down") }));
    }
    // A breaker opening for 10 s ± 50 %.
    let breaker = CircuitBreaker::new(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10))
            .open_jitter(50),
        &clock,
    )
    .unwrap();
    breaker.try_acquire().unwrap().failure();
    let open_until = breaker.try_acquire().unwrap_err().retry_at.unwrap();
    // A waiting caller of a rate limiter with 1 s of wake-up jitter.
    let limiter = RateLimiter::new(
        LimiterConfig::per_second(1)
            .max_wait(Duration::from_secs(10))
            .jitter(Duration::from_secs(1)),
        &clock,
    )
    .unwrap();
    let before = clock.now();
    mock::run(&clock, async {
        limiter.acquire(1).await.unwrap();
        limiter.acquire(1).await.unwrap();
    })
    .unwrap();
    let woke = clock.now().saturating_duration_since(before);
    format!(
        "retry={:?};breaker={};limiter={}",
        delays.0.borrow(),
        open_until.as_nanos(),
        woke.as_nanos()
    )
}

fn run_child() -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.split_once("DRAWS ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no DRAWS line in {stdout}"))
        .to_owned()
}

#[test]
fn default_seeded_jitter_differs_between_processes() {
    if std::env::var_os(CHILD).is_some() {
        println!("DRAWS {}", draws());
        return;
    }
    let (a, b) = (run_child(), run_child());
    let fields = |s: &str| s.split(';').map(str::to_owned).collect::<Vec<_>>();
    let (fa, fb) = (fields(&a), fields(&b));
    assert_eq!(fa.len(), 3, "{a}");
    for (x, y) in fa.iter().zip(&fb) {
        assert_ne!(x, y, "two processes drew the same jitter:\n{a}\n{b}");
    }
}
