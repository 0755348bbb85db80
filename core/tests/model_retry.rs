//! Property tests of retry: the machine against a reference model, and the async wrapper on
//! the mock clock. Delays never exceed the cap, attempts never exceed the limit, and no
//! attempt starts after max-elapsed or at/after the deadline.

use core::cell::RefCell;
use core::time::Duration;

use bulwark::retry::{
    Backoff, Config, Counters, Decision, Error, Jitter, Retry, RetryState, Stop, Verdict,
};
use bulwark::timeout::Deadline;
use bulwark::{Clock, Instant, MockClock, mock};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Kind {
    Constant(u64),
    Linear(u64, u64),
    Exponential(u64, u32),
}

fn kind() -> impl Strategy<Value = Kind> {
    // Milliseconds, from zero to far beyond any cap, so saturation is exercised.
    let ms = prop_oneof![0u64..5_000, Just(u64::MAX / 1_000_000)];
    prop_oneof![
        ms.clone().prop_map(Kind::Constant),
        (ms.clone(), ms.clone()).prop_map(|(a, b)| Kind::Linear(a, b)),
        // An exponential backoff starts above zero (zero never grows: a typed config error).
        (
            ms.prop_map(|a| a.max(1)),
            prop_oneof![1u32..10, Just(u32::MAX)]
        )
            .prop_map(|(a, m)| Kind::Exponential(a, m)),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        (0u8..=100).prop_map(Jitter::Proportional),
    ]
}

fn backoff(k: &Kind, cap_ms: u64) -> Backoff {
    let ms = Duration::from_millis;
    let b = match *k {
        Kind::Constant(d) => Backoff::constant(ms(d)),
        Kind::Linear(a, s) => Backoff::linear(ms(a), ms(s)),
        Kind::Exponential(a, m) => Backoff::exponential(ms(a)).multiplier(m),
    };
    b.max(ms(cap_ms))
}

/// The reference: the un-jittered delay before retry `n`, in u128 nanoseconds, capped.
fn reference_delay(k: &Kind, cap_ms: u64, n: u32) -> u128 {
    let ms = |x: u64| x as u128 * 1_000_000;
    let d = match *k {
        Kind::Constant(d) => ms(d),
        Kind::Linear(a, s) => ms(a) + ms(s) * (n as u128 - 1),
        Kind::Exponential(a, m) => {
            let mut d = ms(a);
            for _ in 1..n {
                d = d.saturating_mul(m as u128);
                if d > u64::MAX as u128 {
                    break;
                }
            }
            d
        }
    };
    d.min(ms(cap_ms)).min(u64::MAX as u128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn machine_respects_every_limit(
        k in kind(),
        cap_ms in 0u64..120_000,
        j in jitter(),
        max_attempts in 1u32..25,
        max_elapsed_ms in proptest::option::of(0u64..600_000),
        deadline_ms in proptest::option::of(0u64..600_000),
        // Above zero: a zero cap is a typed config error (ConfigError::ZeroMaxRetryAfter).
        max_hint_ms in 1u64..100_000,
        // Per attempt: how long it ran (ms) and an optional Retry-After hint (ms).
        steps in proptest::collection::vec((0u64..20_000, proptest::option::of(0u64..200_000)), 30),
        seed in any::<u64>(),
        start_ms in 0u64..1_000_000,
    ) {
        let k_cap = cap_ms.max(match k { Kind::Constant(d) | Kind::Linear(d, _) | Kind::Exponential(d, _) => d });
        let mut cfg = Config::new()
            .max_attempts(max_attempts)
            .backoff(backoff(&k, k_cap))
            .jitter(j)
            .max_retry_after(Duration::from_millis(max_hint_ms))
            .seed(seed);
        if let Some(me) = max_elapsed_ms {
            cfg = cfg.max_elapsed(Duration::from_millis(me));
        }
        prop_assert!(cfg.validate().is_ok());
        let start = Instant::from_millis(start_ms);
        let deadline = match deadline_ms {
            Some(d) => Deadline::at(start + Duration::from_millis(d)),
            None => Deadline::NONE,
        };
        let cap = Duration::from_millis(k_cap);
        let mut s = RetryState::new(start, seed);
        let mut now = start;
        for (i, &(ran_ms, hint_ms)) in steps.iter().enumerate() {
            s.start_attempt();
            prop_assert!(s.attempts() <= max_attempts);
            now += Duration::from_millis(ran_ms);
            let hint = hint_ms.map(Duration::from_millis);
            match s.decide(&cfg, now, hint, deadline) {
                Decision::Retry { delay, at } => {
                    prop_assert_eq!(at, now + delay);
                    match hint {
                        Some(h) => prop_assert_eq!(delay, h.min(Duration::from_millis(max_hint_ms))),
                        None => {
                            prop_assert!(delay <= cap, "{delay:?} > cap {cap:?}");
                            if j == Jitter::None {
                                let n = i as u32 + 1;
                                prop_assert_eq!(delay.as_nanos(), reference_delay(&k, k_cap, n));
                            }
                        }
                    }
                    if let Some(me) = max_elapsed_ms {
                        prop_assert!(at - start <= Duration::from_millis(me));
                    }
                    prop_assert!(!deadline.is_expired(at));
                    prop_assert!(s.attempts() < max_attempts);
                    now = at;
                }
                Decision::Stop(Stop::MaxAttempts) => {
                    prop_assert_eq!(s.attempts(), max_attempts);
                    break;
                }
                Decision::Stop(Stop::MaxElapsed) => {
                    prop_assert!(max_elapsed_ms.is_some());
                    break;
                }
                Decision::Stop(Stop::Deadline) => {
                    prop_assert!(deadline.instant().is_some());
                    break;
                }
            }
        }
    }

    #[test]
    fn async_retry_never_passes_its_limits(
        k in kind(),
        cap_ms in 1u64..60_000,
        j in jitter(),
        max_attempts in 1u32..12,
        max_elapsed_ms in proptest::option::of(0u64..300_000),
        deadline_ms in proptest::option::of(0u64..300_000),
        // Per attempt: Ok/Err and retryable or not.
        outcomes in proptest::collection::vec((any::<bool>(), 0u8..10), 12),
        seed in any::<u64>(),
    ) {
        let k_cap = cap_ms.max(match k { Kind::Constant(d) | Kind::Linear(d, _) | Kind::Exponential(d, _) => d });
        let mut cfg = Config::new()
            .max_attempts(max_attempts)
            .backoff(backoff(&k, k_cap))
            .jitter(j)
            .seed(seed);
        if let Some(me) = max_elapsed_ms {
            cfg = cfg.max_elapsed(Duration::from_millis(me));
        }
        let clock = MockClock::new();
        clock.set(Instant::from_secs(1_000));
        let start = clock.now();
        let deadline = match deadline_ms {
            Some(d) => Deadline::at(start + Duration::from_millis(d)),
            None => Deadline::NONE,
        };
        // (ok, retryable): Err with retryable = false is permanent; Ok with retryable is "try later".
        let counters = Counters::new();
        let retry = Retry::new(cfg, &clock).unwrap().with_hooks(&counters).with_classifier(|r: &Result<u8, u8>| {
            let code = match r { Ok(c) | Err(c) => *c };
            if code < 7 { Verdict::FAILURE } else { Verdict::Ignore }
        });
        let starts = RefCell::new(Vec::new());
        let out = mock::run(&clock, retry.call_with_deadline(deadline, || {
            let mut s = starts.borrow_mut();
            s.push(clock.now());
            let (ok, code) = outcomes[(s.len() - 1).min(outcomes.len() - 1)];
            core::future::ready(if ok { Ok(code) } else { Err(code) })
        })).unwrap();
        let starts = starts.into_inner();
        let n = starts.len() as u32;
        prop_assert!(n <= max_attempts);
        let end = clock.now();
        if let Some(me) = max_elapsed_ms {
            prop_assert!(end - start <= Duration::from_millis(me));
        }
        if let Some(d) = deadline.instant() {
            prop_assert!(n == 0 || end < d, "ended at {end:?}, deadline {d:?}");
        }
        for w in starts.windows(2) {
            prop_assert!(w[1] - w[0] <= Duration::from_millis(k_cap));
        }
        match out {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.attempts(), n),
        }
        if let Err(Error::Permanent { error, .. }) = out {
            prop_assert!(error >= 7);
        }
        let m = counters.snapshot();
        prop_assert_eq!(m.attempts, n as u64);
        prop_assert_eq!(m.retries, n.saturating_sub(1) as u64);
    }
}
