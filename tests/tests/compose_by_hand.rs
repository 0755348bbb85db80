//! The pipeline is built only from public pieces: retry ▸ circuit breaker ▸ keyed rate
//! limiter composed by hand (`retry::Call`, `admission::Permit`, `timeout::timeout_within`, a
//! classifier that turns a breaker's `retry_at` into a failure's `retry_after` hint) gives exactly the
//! pipeline's outcomes and instants on a mock-clock outage.
//!
//! The scenario: a downstream healthy until 1 s, then hanging (past the attempt timeout)
//! until 3 s, then failing fast until 6 s, then healthy again; eleven calls for two keys at
//! literal instants. Each side runs on its own `MockClock` with its own breaker and limiter.

use core::cell::Cell;
use core::future::Future;
use core::time::Duration;

use bulwark::admission::{Outcome, Permit};
use bulwark::circuit_breaker::{self, CircuitBreaker, State};
use bulwark::pipeline::{Error, Pipeline};
use bulwark::rate_limiter::{self, Denied, Keyed, KeyedRateLimiter};
use bulwark::retry::{self, Backoff, Jitter, Retry, Verdict};
use bulwark::timeout::{Deadline, Elapsed, timeout_within};
use bulwark::{Clock, Instant, MockClock, mock};

// ===== the configuration both sides share =====

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(1);

/// 3 attempts, 100 ms apart, no jitter (exact instants).
fn retry_config() -> retry::Config {
    retry::Config::new()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .jitter(Jitter::None)
}

/// Opens on the 3rd failure in a row, for 1 s, then 2 s, then 4 s (consecutive openings);
/// one probe, whose success closes.
fn breaker_config() -> circuit_breaker::Config {
    circuit_breaker::Config::new()
        .consecutive_failures(3)
        .open_for(Duration::from_secs(1))
        .open_growth(2, Duration::from_secs(4))
        .half_open(1, 1)
}

/// Per key: one token every 100 ms, burst 1.
fn limiter_config() -> rate_limiter::Config {
    rate_limiter::Config::with_period(Duration::from_millis(100)).burst(1)
}

type Table<'c> = KeyedRateLimiter<Key, &'c MockClock, 4>;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    A,
    B,
}

// ===== the downstream =====

/// The downstream's own error.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Down;

/// What the downstream does with a call, by the instant the call starts.
fn behaviour_at(t: Instant) -> Duration {
    let ms = t.as_millis();
    if (1_000..3_000).contains(&ms) {
        HANG
    } else if (3_000..6_000).contains(&ms) {
        FAIL_AFTER
    } else {
        OK_AFTER
    }
}

/// Healthy: answers `Ok` after 20 ms.
const OK_AFTER: Duration = Duration::from_millis(20);
/// Failing: answers `Err(Down)` after 10 ms.
const FAIL_AFTER: Duration = Duration::from_millis(10);
/// Hanging: would answer after 10 s, far past the attempt timeout.
const HANG: Duration = Duration::from_secs(10);

/// The downstream on one clock, counting the calls that actually reach it.
struct Downstream<'c> {
    clock: &'c MockClock,
    calls: Cell<u32>,
}

impl<'c> Downstream<'c> {
    fn new(clock: &'c MockClock) -> Self {
        Downstream {
            clock,
            calls: Cell::new(0),
        }
    }

    /// One call: counted when made (only admitted attempts make one).
    fn call(&self) -> impl Future<Output = Result<u32, Down>> + 'c {
        self.calls.set(self.calls.get() + 1);
        let n = self.calls.get();
        let clock = self.clock;
        let after = behaviour_at(clock.now());
        async move {
            clock.sleep(after).await;
            if after == FAIL_AFTER {
                Err(Down)
            } else {
                Ok(n)
            }
        }
    }
}

// ===== the log =====

/// A call's result, side-independent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Res {
    Ok(u32),
    Down,
    /// Cut by its attempt timeout, at this instant.
    AttemptTimeout(Instant),
    /// Cut by the call's total timeout, at this instant.
    Timeout(Instant),
    CircuitOpen(Option<Instant>),
    RateLimited(Instant),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: Key,
    called_at: Instant,
    result: Res,
    returned_at: Instant,
    /// Calls that reached the downstream during this call.
    downstream_calls: u32,
    /// The breaker's state once the call returned.
    breaker: State,
}

/// The calls: (instant in ms, key). Each starts after the previous one returned.
const STEPS: &[(u64, Key)] = &[
    (0, Key::A),     // healthy
    (50, Key::B),    // healthy
    (100, Key::B),   // B's second call within its 100 ms period: rate limited
    (1_000, Key::A), // hang ×3: attempt timeouts, the breaker opens (1 s)
    (1_850, Key::B), // waits for the probe at 2.8 s; the total timeout cuts it at 2.85 s
    (2_900, Key::A), // probe hangs: attempt timeout, re-opens (2 s); waiting does not fit
    (3_300, Key::B), // open until 5.1 s, past the deadline: rejected at once
    (5_050, Key::A), // waits for the probe at 5.1 s; it fails: re-opens (4 s)
    (9_200, Key::B), // recovered: the probe succeeds and closes
    (9_300, Key::A), // healthy
    (9_350, Key::A), // A's second call within its period: rate limited
];

/// Runs `STEPS`, each call through `call(key)` at its literal instant.
fn drive(
    clock: &MockClock,
    downstream: &Downstream<'_>,
    breaker_state: impl Fn() -> State,
    mut call: impl FnMut(Key) -> Res,
) -> Vec<Entry> {
    STEPS
        .iter()
        .map(|&(ms, key)| {
            let called_at = Instant::from_millis(ms);
            assert!(
                clock.now() <= called_at,
                "step at {ms} ms overlaps the one before"
            );
            clock.set(called_at);
            let before = downstream.calls.get();
            let result = call(key);
            Entry {
                key,
                called_at,
                result,
                returned_at: clock.now(),
                downstream_calls: downstream.calls.get() - before,
                breaker: breaker_state(),
            }
        })
        .collect()
}

// ===== side 1: the pipeline =====

fn through_pipeline() -> Vec<Entry> {
    let clock = MockClock::new();
    let downstream = Downstream::new(&clock);
    let breaker = CircuitBreaker::new(breaker_config(), &clock).unwrap();
    let table: Table<'_> = KeyedRateLimiter::new(limiter_config(), &clock).unwrap();
    let (gate_a, gate_b) = (Keyed::new(&table, Key::A), Keyed::new(&table, Key::B));
    let pipeline = |gate| {
        Pipeline::new(&clock, retry_config())
            .unwrap()
            .breaker(&breaker)
            .limiter(gate)
            .attempt_timeout(ATTEMPT_TIMEOUT)
            .total_timeout(TOTAL_TIMEOUT)
    };
    let (a, b) = (pipeline(&gate_a), pipeline(&gate_b));
    drive(
        &clock,
        &downstream,
        || breaker.state(),
        |key| {
            let p = match key {
                Key::A => &a,
                Key::B => &b,
            };
            match mock::run(&clock, p.call(|| downstream.call())).unwrap() {
                Ok(n) => Res::Ok(n),
                Err(Error::Operation(Down)) => Res::Down,
                Err(Error::AttemptTimeout(e)) => Res::AttemptTimeout(e.deadline),
                Err(Error::Timeout(e)) => Res::Timeout(e.deadline),
                Err(Error::CircuitOpen(r)) => Res::CircuitOpen(r.retry_at),
                Err(Error::RateLimited(r)) => Res::RateLimited(r.retry_at),
                Err(e) => panic!("no such layer here: {e:?}"),
            }
        },
    )
}

// ===== side 2: by hand, from the public pieces =====

/// What one hand-made attempt can end with.
#[derive(Copy, Clone, Debug)]
enum HandError {
    Down,
    CircuitOpen(circuit_breaker::Rejected),
    RateLimited(Denied),
    AttemptTimeout(Elapsed),
    Timeout(Elapsed),
}

fn by_hand() -> Vec<Entry> {
    let clock = MockClock::new();
    let downstream = Downstream::new(&clock);
    let breaker = CircuitBreaker::new(breaker_config(), &clock).unwrap();
    let table: Table<'_> = KeyedRateLimiter::new(limiter_config(), &clock).unwrap();
    let (gate_a, gate_b) = (Keyed::new(&table, Key::A), Keyed::new(&table, Key::B));

    // Retry's rules: an open breaker's instant is a Retry-After hint (retry refuses it when
    // it falls past the deadline); operation errors and attempt timeouts are retried with the
    // backoff; a rate-limit rejection, the total timeout and a success are returned.
    let retry = Retry::new(retry_config(), &clock).unwrap().with_classifier(
        |r: &Result<u32, HandError>| match r {
            Ok(_) => Verdict::Success,
            Err(HandError::RateLimited(_) | HandError::Timeout(_)) => Verdict::Ignore,
            Err(HandError::Down | HandError::AttemptTimeout(_)) => Verdict::FAILURE,
            Err(HandError::CircuitOpen(rejected)) => match rejected.wait_time_from(clock.now()) {
                None => Verdict::Ignore, // forced open: no instant to wait for
                Some(d) if d.is_zero() => Verdict::FAILURE,
                Some(d) => Verdict::failure_after(d),
            },
        },
    );

    drive(
        &clock,
        &downstream,
        || breaker.state(),
        |key| {
            let gate = match key {
                Key::A => &gate_a,
                Key::B => &gate_b,
            };
            let total = Deadline::after(clock.now(), TOTAL_TIMEOUT);
            let attempt = || {
                // Breaker, then the key's limiter; a limiter refusal drops the breaker's
                // permit unrecorded (a probe gives its slot back).
                let admitted = Permit::try_new(&breaker)
                    .map_err(HandError::CircuitOpen)
                    .and_then(|b| match Permit::try_new(gate) {
                        Ok(l) => Ok((b, l)),
                        Err(denied) => Err(HandError::RateLimited(denied)),
                    })
                    .map(|permits| {
                        let op = timeout_within(&clock, ATTEMPT_TIMEOUT, total, downstream.call());
                        (permits, op)
                    });
                async move {
                    let ((breaker_permit, limiter_permit), op) = admitted?;
                    let (outcome, result) = match op.await {
                        Ok(Ok(n)) => (Outcome::Success, Ok(n)),
                        Ok(Err(Down)) => (Outcome::Failure, Err(HandError::Down)),
                        // Cut by the caller's deadline: says nothing about the downstream.
                        Err(e) if Some(e.deadline) == total.instant() => {
                            (Outcome::Ignored, Err(HandError::Timeout(e)))
                        }
                        Err(e) => (Outcome::Failure, Err(HandError::AttemptTimeout(e))),
                    };
                    limiter_permit.record(outcome);
                    breaker_permit.record(outcome);
                    result
                }
            };
            let out = mock::run(&clock, retry::Call::new(&retry, total, attempt)).unwrap();
            let last = match out {
                Ok(n) => return Res::Ok(n),
                Err(
                    retry::Error::Exhausted { last, .. }
                    | retry::Error::BudgetExhausted { last, .. }
                    | retry::Error::DeadlineExceeded {
                        last: Some(last), ..
                    },
                ) => last,
                Err(retry::Error::Permanent { error, .. }) => error,
                Err(retry::Error::DeadlineExceeded { last: None, .. }) => {
                    return Res::Timeout(total.instant().unwrap());
                }
                Err(e) => panic!("unexpected retry error: {e:?}"),
            };
            match last {
                HandError::Down => Res::Down,
                HandError::CircuitOpen(r) => Res::CircuitOpen(r.retry_at),
                HandError::RateLimited(d) => Res::RateLimited(d.retry_at().unwrap()),
                HandError::AttemptTimeout(e) => Res::AttemptTimeout(e.deadline),
                HandError::Timeout(e) => Res::Timeout(e.deadline),
            }
        },
    )
}

// ===== the assertions =====

fn ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn entry(log: &[Entry], called_at_ms: u64) -> Entry {
    *log.iter()
        .find(|e| e.called_at == ms(called_at_ms))
        .expect("a step at that instant")
}

/// The expected log, worked out from the documented rules (not from either side's output).
fn expected() -> Vec<Entry> {
    use Key::{A, B};
    use State::{Closed, HalfOpen, Open};
    let e = |key, at, result, back, calls, breaker| Entry {
        key,
        called_at: ms(at),
        result,
        returned_at: ms(back),
        downstream_calls: calls,
        breaker,
    };
    vec![
        e(A, 0, Res::Ok(1), 20, 1, Closed),
        e(B, 50, Res::Ok(2), 70, 1, Closed),
        // B's token returns at 50 + 100 ms; answered at once, nothing reaches the downstream.
        e(B, 100, Res::RateLimited(ms(150)), 100, 0, Closed),
        // Attempts at 1000, 1300, 1600 each cut 200 ms later; the third failure opens until 2.8 s.
        e(A, 1_000, Res::AttemptTimeout(ms(1_800)), 1_800, 3, Open),
        // Open until 2.8 s < deadline 2.85 s: waits, probes at 2.8 s; the hanging probe is cut by
        // the total timeout at 2.85 s (before its own at 3.0 s): not recorded, slot given back.
        e(B, 1_850, Res::Timeout(ms(2_850)), 2_850, 1, HalfOpen),
        // Probe at 2.9 s hangs, cut at 3.1 s: re-opens for 2 s (until 5.1 s); the retry at 3.2 s
        // is rejected and 5.1 s is past the deadline 3.9 s: returned.
        e(A, 2_900, Res::CircuitOpen(Some(ms(5_100))), 3_200, 1, Open),
        // Open until 5.1 s, deadline 4.3 s: rejected at once.
        e(B, 3_300, Res::CircuitOpen(Some(ms(5_100))), 3_300, 0, Open),
        // Deadline 6.05 s: rejected at 5.05 s without spending A's token (the breaker comes
        // first; a limiter first would refuse the probe at 5.1 s until 5.15 s), waits until
        // 5.1 s, the probe fails at 5.11 s: re-opens for 4 s (until 9.11 s); the retry at
        // 5.21 s is rejected, 9.11 s is past the deadline: returned.
        e(A, 5_050, Res::CircuitOpen(Some(ms(9_110))), 5_210, 1, Open),
        e(B, 9_200, Res::Ok(9), 9_220, 1, Closed),
        e(A, 9_300, Res::Ok(10), 9_320, 1, Closed),
        e(A, 9_350, Res::RateLimited(ms(9_400)), 9_350, 0, Closed),
    ]
}

#[test]
fn hand_composition_matches_the_pipeline_on_an_outage() {
    let pipeline = through_pipeline();
    let hand = by_hand();
    assert_eq!(
        hand, pipeline,
        "hand composition (left) vs pipeline (right)"
    );
    assert_eq!(pipeline, expected());
}

#[test]
fn the_outage_log_shows_each_rule() {
    let log = by_hand();
    // The rate limit: a key's second call within its period, at once, with the exact instant.
    assert_eq!(entry(&log, 100).result, Res::RateLimited(ms(150)));
    assert_eq!(entry(&log, 100).returned_at, ms(100));
    // The breaker opens on the 3rd attempt timeout in a row, at 1.8 s.
    let tripped = entry(&log, 1_000);
    assert_eq!(
        (
            tripped.downstream_calls,
            tripped.returned_at,
            tripped.breaker
        ),
        (3, ms(1_800), State::Open)
    );
    // An open breaker whose instant fits the deadline is waited out (1.85 s → probe at 2.8 s).
    assert_eq!(entry(&log, 1_850).downstream_calls, 1);
    assert_eq!(entry(&log, 5_050).downstream_calls, 1); // the probe at 5.1 s
    // One whose instant does not fit is answered at once.
    let shed = entry(&log, 3_300);
    assert_eq!(
        (shed.result, shed.returned_at, shed.downstream_calls),
        (Res::CircuitOpen(Some(ms(5_100))), ms(3_300), 0)
    );
    // After the outage, one probe closes it.
    assert_eq!(entry(&log, 9_200).breaker, State::Closed);
}
