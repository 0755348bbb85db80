//! Bad input the retry and rate limiter builders used to accept (issue 11, item 12): each is
//! either rejected when the policy is built, with an error naming the field, or given a
//! documented meaning.

use core::time::Duration;

use bulwark::rate_limiter::{self, RateLimiter};
use bulwark::retry::{Backoff, Config, ConfigError, Jitter, Retry};
use bulwark::{Clock, Instant, MockClock, mock};

#[test]
fn exponential_backoff_with_a_zero_initial_delay_is_rejected() {
    // 0 × 2^n is 0 for ever: a backoff that never backs off.
    let clock = MockClock::new();
    let cfg = Config::new().backoff(Backoff::exponential(Duration::ZERO));
    let err = Retry::new(cfg, &clock).unwrap_err();
    assert_eq!(err, ConfigError::ZeroInitialDelay);
    assert!(err.to_string().contains("backoff"), "{err}");
    // Any positive initial delay is fine.
    let cfg = Config::new().backoff(Backoff::exponential(Duration::from_nanos(1)));
    assert!(Retry::new(cfg, &clock).is_ok());
}

#[test]
fn max_retry_after_zero_is_rejected() {
    // A zero cap used to turn a server's "Retry-After: 30" into an immediate retry.
    let clock = MockClock::new();
    let err = Retry::new(Config::new().max_retry_after(Duration::ZERO), &clock).unwrap_err();
    assert_eq!(err, ConfigError::ZeroMaxRetryAfter);
    assert!(err.to_string().contains("max_retry_after"), "{err}");
}

#[test]
fn constant_zero_backoff_means_retry_at_once() {
    // Defined, not rejected: a zero constant delay retries without waiting (documented on
    // `Backoff::constant`), jitter or not.
    let clock = MockClock::new();
    for jitter in [Jitter::None, Jitter::Full, Jitter::Decorrelated] {
        let cfg = Config::new()
            .max_attempts(4)
            .backoff(Backoff::constant(Duration::ZERO))
            .jitter(jitter);
        let retry = Retry::new(cfg, &clock).unwrap();
        let out = mock::run(&clock, retry.call(|| async { Err::<(), _>("busy") })).unwrap();
        assert_eq!(out.unwrap_err().attempts(), 4);
        assert_eq!(clock.now(), Instant::ZERO);
    }
}

#[test]
fn rate_limiter_jitter_longer_than_the_bucket_is_rejected() {
    // jitter(MAX) with max_wait(MAX) used to put a waiting caller to sleep for centuries.
    let clock = MockClock::new();
    let cfg = rate_limiter::Config::per_second(10)
        .max_wait(Duration::MAX)
        .jitter(Duration::MAX);
    let err = RateLimiter::new(cfg, &clock).unwrap_err();
    assert_eq!(err, rate_limiter::ConfigError::JitterTooLong);
    assert!(err.to_string().contains("jitter"), "{err}");
    // Up to the bucket's length (burst × period = 1 s here) is fine, and bounds the sleep.
    let cfg = cfg.jitter(Duration::from_secs(1));
    let l = RateLimiter::new(cfg, &clock).unwrap();
    mock::run(&clock, async {
        for _ in 0..11 {
            l.acquire(1).await.unwrap();
        }
    })
    .unwrap();
    assert!(
        clock.now() <= Instant::from_millis(1_100),
        "{:?}",
        clock.now()
    );
}
