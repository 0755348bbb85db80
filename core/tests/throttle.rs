//! Adaptive throttling: the machine and the shared form agree step by step; the SRE formula
//! holds a flooded backend near K × what it accepts; the window slides; the throttle works as
//! a pipeline gate; gRPC's retry throttling stops retries at half its tokens; the async form
//! refuses as the machine does and counts every answer.
#![cfg(not(loom))]

use core::time::Duration;

use bulwark::admission::{Admit, Outcome};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::retry::{Backoff, Config as RetryConfig, Jitter, Retry};
use bulwark::throttle::{
    self, AdaptiveThrottle, Config, Machine, RetryThrottling, Throttled, reject_per_million,
};
use bulwark::{Clock, Instant, MockClock, mock};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Record(u8),
    Admit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..30_000).prop_map(Op::Advance),
        (0u8..3).prop_map(Op::Record),
        Just(Op::Admit),
    ]
}

proptest! {
    #[test]
    fn machine_and_shared_form_agree(seed: u64, k in 1_000u32..4_000, ops in prop::collection::vec(op(), 1..400)) {
        let cfg = Config::new().k(k).window(Duration::from_secs(60)).seed(seed);
        let clock = MockClock::new();
        let shared: AdaptiveThrottle<_, 6> = AdaptiveThrottle::new(cfg, &clock).unwrap();
        let mut machine: Machine<6> = Machine::new(cfg).unwrap();
        for op in ops {
            let now = clock.now();
            match op {
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Record(o) => {
                    let o = [Outcome::Success, Outcome::Failure, Outcome::Ignored][o as usize];
                    shared.record_outcome(o);
                    machine.record(now, o);
                }
                Op::Admit => prop_assert_eq!(shared.try_admit(), machine.try_admit(now)),
            }
            prop_assert_eq!(shared.counts(), machine.counts(clock.now()));
        }
    }
}

/// A backend that accepts at most 100 requests a second, flooded with 1 000 a second: with
/// K = 2 the throttle lets about 200 a second through (twice what is accepted); without it,
/// all 1 000 arrive.
#[test]
fn a_flooded_backend_sees_about_k_times_what_it_accepts() {
    let clock = MockClock::new();
    let throttle: AdaptiveThrottle<_> =
        AdaptiveThrottle::new(Config::new().seed(7), &clock).unwrap();
    let (mut reached, mut accepted_this_second) = (0u64, 0u64);
    let mut reached_last_minute = 0u64;
    for ms in 0..180_000u64 {
        clock.set(Instant::from_millis(ms));
        if ms % 1_000 == 0 {
            accepted_this_second = 0;
        }
        if throttle.try_admit().is_ok() {
            reached += 1;
            if ms >= 120_000 {
                reached_last_minute += 1;
            }
            let accepted = accepted_this_second < 100;
            accepted_this_second += u64::from(accepted);
            throttle.record_outcome(if accepted {
                Outcome::Success
            } else {
                Outcome::Failure
            });
        }
        // 1 000 requests a second: one each millisecond.
    }
    let per_second = reached_last_minute as f64 / 60.0;
    assert!(
        (180.0..230.0).contains(&per_second),
        "{per_second} requests/s reached the backend"
    );
    assert!(reached < 180_000 / 2);
}

#[test]
fn the_window_slides_and_a_clock_going_back_is_harmless() {
    let clock = MockClock::new();
    let t: AdaptiveThrottle<_, 4> = AdaptiveThrottle::new(
        Config::new().window(Duration::from_secs(40)).seed(1),
        &clock,
    )
    .unwrap();
    (0..10).for_each(|_| t.record_outcome(Outcome::Failure));
    clock.set(Instant::from_secs(25));
    (0..5).for_each(|_| t.record_outcome(Outcome::Success));
    assert_eq!(t.counts(), (15, 5));
    clock.set(Instant::from_secs(45)); // the first bucket (0–10 s) has left the window
    assert_eq!(t.counts(), (5, 5));
    clock.set(Instant::from_secs(5)); // backwards: an old slot, now owned by a later epoch
    t.record_outcome(Outcome::Failure);
    clock.set(Instant::from_secs(45));
    assert_eq!(t.counts(), (5, 5)); // the late sample was dropped, nothing else lost
    clock.set(Instant::from_secs(400));
    assert_eq!(t.counts(), (0, 0));
    assert!(t.try_admit().is_ok());
}

#[test]
fn as_a_pipeline_gate_it_refuses_without_calling_the_operation() {
    let clock = MockClock::new();
    let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new().seed(3), &clock).unwrap();
    let p = Pipeline::new(&clock, RetryConfig::new().max_attempts(1))
        .unwrap()
        .gate(&t);
    // The backend fails everything: the throttle learns it from the pipeline's own records.
    for _ in 0..200 {
        let _ = mock::run(&clock, p.call(|| async { Err::<(), _>("503") })).unwrap();
    }
    let (req, acc) = t.counts();
    assert_eq!(acc, 0);
    assert!(req >= 200);
    let mut calls = 0;
    let mut refused = 0;
    for _ in 0..100 {
        match mock::run(
            &clock,
            p.call(|| {
                calls += 1;
                async { Err::<(), _>("503") }
            }),
        )
        .unwrap()
        {
            Err(Error::Throttled(Throttled { reject_per_million })) => {
                assert!(reject_per_million > 990_000);
                refused += 1;
            }
            Err(Error::Operation(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused >= 95, "{refused}");
    assert_eq!(calls, 100 - refused);
}

#[test]
fn grpc_retry_throttling_stops_retries_at_half_its_tokens() {
    let clock = MockClock::new();
    let tokens = RetryThrottling::new(4, 500).unwrap();
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(10)
            .backoff(Backoff::constant(Duration::from_millis(1)))
            .jitter(Jitter::None),
        &clock,
    )
    .unwrap()
    .with_budget(&tokens);
    let mut attempts = 0;
    let out = mock::run(
        &clock,
        retry.call(|| {
            attempts += 1;
            async { Err::<(), _>("down") }
        }),
    )
    .unwrap();
    // 4 tokens: failures take them to 3 (retry), 2 (not above half: refused).
    assert_eq!(attempts, 2);
    assert!(out.is_err());
    assert_eq!(tokens.tokens_milli(), 2_000);
}

/// The async form on the mock clock, against the pure machine with the same seed: with the
/// backend down, each call is refused locally exactly when the machine refuses it, at the SRE
/// probability of the counts before it (`requests / (requests + 1)` with no accept), without
/// calling the operation; the few calls that reach the backend are counted as failures and
/// every refusal as a request not accepted. Once the failures have left the window, every call
/// reaches the backend again and each answer is counted as accepted.
#[test]
fn the_async_form_refuses_at_the_sre_probability_and_counts_every_answer() {
    let clock = MockClock::new();
    let cfg = Config::new().seed(11);
    let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(cfg, &clock).unwrap();
    let mut machine: Machine<12> = Machine::new(cfg).unwrap();
    let (mut reached, mut refused) = (0u32, 0u32);
    for i in 0..1_000u64 {
        clock.set(Instant::from_millis(i * 10)); // one call each 10 ms: 10 s, one window
        let (req, acc) = t.counts();
        let expected = machine.try_admit(clock.now());
        let mut called = false;
        let call = t.call(|| {
            called = true;
            async { Err::<(), _>("503") }
        });
        match mock::run(&clock, call).unwrap() {
            Err(throttle::Error::Rejected(refusal)) => {
                assert_eq!(
                    refusal.reject_per_million,
                    reject_per_million(req, acc, 2_000)
                );
                assert_eq!(expected, Err(refusal), "call {i}");
                assert!(!called);
                refused += 1;
            }
            Err(throttle::Error::Inner("503")) => {
                assert_eq!(expected, Ok(()), "call {i}");
                assert!(called);
                machine.record(clock.now(), Outcome::Failure);
                reached += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Σ 1 / (i + 1) ≈ 7.5 calls are expected to reach a backend that accepts nothing.
    assert_eq!((reached, refused), (6, 994)); // this seed
    assert_eq!(t.counts(), (1_000, 0));
    assert_eq!(t.reject_per_million(), 999_000);

    // Two minutes later the failures have left the window: the backend is back.
    clock.set(Instant::from_secs(10 + 120));
    for _ in 0..100 {
        let out = mock::run(&clock, t.call(|| async { Ok::<_, &str>(()) })).unwrap();
        assert_eq!(out, Ok(()));
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(t.counts(), (100, 100)); // every answer counted, as accepted
    assert_eq!(t.reject_per_million(), 0);
}

/// A call dropped before its answer counts nothing; an ignored answer counts nothing.
#[test]
fn the_async_form_counts_nothing_for_a_dropped_call_or_an_ignored_answer() {
    use bulwark::classify::Verdict;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Waker};

    let clock = MockClock::new();
    let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new().seed(1), &clock).unwrap();
    {
        let mut call = pin!(t.call(|| async {
            clock.sleep(Duration::from_secs(1)).await;
            Err::<(), _>("503")
        }));
        assert!(
            call.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
    } // cancelled
    assert_eq!(t.counts(), (0, 0));
    let not_found_is_ignored = |r: &Result<(), u16>| {
        if r == &Err(404) {
            Verdict::Ignore
        } else {
            Verdict::FAILURE
        }
    };
    let out = mock::run(
        &clock,
        t.call_with(not_found_is_ignored, || async { Err(404) }),
    );
    assert_eq!(out.unwrap(), Err(throttle::Error::Inner(404)));
    assert_eq!(t.counts(), (0, 0));
}
