//! Hedging on the mock clock: exact start instants, the winner, the losers dropped, a failure
//! starting the next copy at once, budget exhaustion, a budget shared with retries and a
//! percentile delay.
#![cfg(not(loom))]

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Waker};
use core::time::Duration;

use bulwark::hedge::{Config, Delay, Hedge};
use bulwark::retry::{self, Backoff, Budget, Config as RetryConfig, Jitter, Retry, RetryBudget};
use bulwark::throttle::RetryThrottling;
use bulwark::{Clock, Instant, MockClock, mock};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Counts drops of the copies that never finished.
struct OnDrop<'a>(&'a Cell<u32>, bool);
impl Drop for OnDrop<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.set(self.0.get() + 1);
        }
    }
}

#[test]
fn copies_start_a_delay_apart_the_fastest_wins_and_the_others_are_dropped() {
    let clock = MockClock::new();
    let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(MS(50))), &clock).unwrap();
    let starts = RefCell::new(Vec::new());
    let dropped = Cell::new(0);
    let out = mock::run(
        &clock,
        hedge.call(|| {
            let n = starts.borrow().len() as u64;
            starts.borrow_mut().push(clock.now());
            let (clock, dropped) = (&clock, &dropped);
            async move {
                let mut guard = OnDrop(dropped, false);
                clock.sleep(MS(300 - n * 100)).await; // 300, 200, 100 ms
                guard.1 = true;
                Ok::<_, ()>(n)
            }
        }),
    )
    .unwrap();
    assert_eq!(out, Ok(2)); // the third copy: started at 100 ms, done at 200 ms
    assert_eq!(
        *starts.borrow(),
        [
            Instant::ZERO,
            Instant::from_millis(50),
            Instant::from_millis(100)
        ]
    );
    assert_eq!(clock.now(), Instant::from_millis(200));
    assert_eq!(dropped.get(), 2); // the first two were cancelled
    assert_eq!(clock.next_deadline(), None); // and their sleeps given back
}

#[test]
fn a_failed_copy_starts_the_next_at_once_and_all_failing_returns_the_primarys_answer() {
    let clock = MockClock::new();
    let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(MS(50))), &clock).unwrap();
    let starts = RefCell::new(Vec::new());
    let out = mock::run(
        &clock,
        hedge.call(|| {
            let n = starts.borrow().len();
            starts.borrow_mut().push(clock.now());
            let clock = &clock;
            async move {
                clock.sleep(MS(10)).await;
                Err::<(), _>(n)
            }
        }),
    )
    .unwrap();
    assert_eq!(out, Err(0)); // the primary's, not the last copy's (2)
    // Each failure (10 ms after its start) starts the next copy at once, well before 50 ms.
    assert_eq!(
        *starts.borrow(),
        [
            Instant::ZERO,
            Instant::from_millis(10),
            Instant::from_millis(20)
        ]
    );
    assert_eq!(clock.now(), Instant::from_millis(30));
}

#[test]
fn an_empty_budget_means_no_hedge() {
    let clock = MockClock::new();
    let tokens = RetryThrottling::new(2, 1).unwrap(); // one token taken leaves half: refused
    let hedge: Hedge<_, 3, _, _> = Hedge::new(Config::new(Delay::Fixed(MS(10))), &clock)
        .unwrap()
        .with_budget(&tokens);
    let copies = Cell::new(0);
    let out = mock::run(
        &clock,
        hedge.call(|| {
            copies.set(copies.get() + 1);
            let clock = &clock;
            async move {
                clock.sleep(MS(100)).await;
                Ok::<_, ()>(())
            }
        }),
    )
    .unwrap();
    assert_eq!((out, copies.get()), (Ok(()), 1));
    assert_eq!(clock.now(), Instant::from_millis(100));
}

#[test]
fn a_percentile_delay_follows_recent_answers() {
    let clock = MockClock::new();
    let hedge: Hedge<_, 2> = Hedge::new(
        Config::new(Delay::Percentile {
            per_mille: 900,
            min: MS(1),
            max: MS(400),
        }),
        &clock,
    )
    .unwrap();
    // Twenty quick answers (20 ms each, no hedge needed: the max delay is 400 ms).
    for _ in 0..20 {
        let out = mock::run(
            &clock,
            hedge.call(|| {
                let clock = &clock;
                async move {
                    clock.sleep(MS(20)).await;
                    Ok::<_, ()>(())
                }
            }),
        );
        assert_eq!(out.unwrap(), Ok(()));
    }
    let d = hedge.delay();
    assert!(d >= MS(20) && d <= MS(25), "{d:?}"); // p90 of 20 ms, within a bucket
    // Now a slow first copy is hedged after that delay.
    let t0 = clock.now();
    let starts = RefCell::new(Vec::new());
    let _ = mock::run(
        &clock,
        hedge.call(|| {
            starts.borrow_mut().push(clock.now());
            let clock = &clock;
            async move {
                clock.sleep(MS(1_000)).await;
                Ok::<_, ()>(())
            }
        }),
    );
    assert_eq!(starts.borrow()[1] - t0, d);
}

#[test]
fn dropping_the_call_drops_every_copy() {
    let clock = MockClock::new();
    let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(MS(5))), &clock).unwrap();
    let dropped = Cell::new(0);
    {
        let mut call = pin!(hedge.call(|| {
            let (clock, dropped) = (&clock, &dropped);
            async move {
                let _guard = OnDrop(dropped, false);
                clock.sleep(MS(100)).await;
                Ok::<_, ()>(())
            }
        }));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(call.as_mut().poll(cx).is_pending());
        clock.set(Instant::from_millis(5));
        assert!(call.as_mut().poll(cx).is_pending()); // the hedge has started
    }
    assert_eq!(dropped.get(), 2);
    assert_eq!(clock.next_deadline(), None);
}

/// A retry around a hedge, both drawing on one budget, the downstream failing every copy at
/// once: hedges and retries together take exactly what the budget grants, whichever asks
/// first. Returns (attempts of the retry, copies started, the retry's error).
fn retried_hedge<B: RetryBudget>(budget: &B) -> (u32, u32, retry::Error<&'static str>) {
    let clock = MockClock::new();
    let hedge: Hedge<_, 3, _, _> = Hedge::new(Config::new(Delay::Fixed(MS(10))), &clock)
        .unwrap()
        .with_budget(budget);
    let retry = Retry::new(
        RetryConfig::new()
            .max_attempts(10)
            .backoff(Backoff::constant(MS(1)))
            .jitter(Jitter::None),
        &clock,
    )
    .unwrap()
    .with_budget(budget);
    let (attempts, copies) = (Cell::new(0), Cell::new(0));
    let out = mock::run(
        &clock,
        retry.call(|| {
            attempts.set(attempts.get() + 1);
            hedge.call(|| {
                copies.set(copies.get() + 1);
                async { Err::<(), _>("down") }
            })
        }),
    )
    .unwrap();
    (attempts.get(), copies.get(), out.unwrap_err())
}

#[test]
fn hedges_and_retries_sharing_a_budget_cannot_exceed_it_together() {
    // Five earned tokens, no floor: five extra copies in all.
    let budget = Budget::new(100, 0, 5).unwrap();
    (0..5).for_each(|_| budget.deposit());
    let (attempts, copies, err) = retried_hedge(&budget);
    // Attempt 1: the copy and two hedges (2 tokens); a retry (1); attempt 2: the copy and two
    // hedges (2); the next retry is denied.
    assert_eq!((attempts, copies), (2, 6));
    let (hedges, retries) = (copies - attempts, attempts - 1);
    assert_eq!((hedges, retries, hedges + retries), (4, 1, 5));
    assert_eq!((budget.tokens(), budget.denied()), (0, 1));
    assert!(matches!(
        err,
        retry::Error::BudgetExhausted {
            last: "down",
            attempts: 2
        }
    ));

    // gRPC's retry throttling as the gate of both: 10 tokens, each hedge or retry takes one
    // and is allowed while more than 5 are left, so 4 in all: 2 hedges, 1 retry, 1 hedge.
    let tokens = RetryThrottling::new(10, 100).unwrap();
    let (attempts, copies, _) = retried_hedge(&tokens);
    assert_eq!((attempts, copies), (2, 5));
    assert_eq!((copies - attempts) + (attempts - 1), 4);
    assert_eq!(tokens.tokens_milli(), 4_000); // the denied hedge and retry took theirs too
}

/// The primary's answer is the call's when every copy fails, even when the primary fails last.
#[test]
fn when_every_copy_fails_the_primarys_answer_wins_even_if_it_comes_last() {
    let clock = MockClock::new();
    let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(MS(10))), &clock).unwrap();
    let copy = Cell::new(0);
    let out = mock::run(
        &clock,
        hedge.call(|| {
            let n = copy.get();
            copy.set(n + 1);
            let clock = &clock;
            async move {
                // The primary fails after 100 ms; each hedge 1 ms after it starts.
                clock.sleep(MS(if n == 0 { 100 } else { 1 })).await;
                Err::<(), _>(n)
            }
        }),
    )
    .unwrap();
    assert_eq!((out, copy.get()), (Err(0), 3));
    assert_eq!(clock.now(), Instant::from_millis(100));
}

/// A clock that counts its readings.
struct Counting<'a>(&'a MockClock, Cell<u32>);

impl Clock for Counting<'_> {
    fn now(&self) -> Instant {
        self.1.set(self.1.get() + 1);
        self.0.now()
    }
}

impl<'a> bulwark::Sleep for Counting<'a> {
    type Sleep = <&'a MockClock as bulwark::Sleep>::Sleep;
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        bulwark::Sleep::sleep_until(&self.0, deadline)
    }
}

/// A call whose first copy answers at once reads the clock once for the copies due (every one
/// due at that instant starts on that reading), and, with a percentile delay, once more for
/// the answer's latency; a fixed delay records no latency.
#[test]
fn a_ready_call_reads_the_clock_once_and_once_more_for_a_percentile() {
    let clock = MockClock::new();
    let p90 = Delay::Percentile {
        per_mille: 900,
        min: Duration::ZERO,
        max: MS(10),
    };
    for (delay, reads) in [
        (Delay::Fixed(MS(10)), 1),
        (Delay::Fixed(Duration::ZERO), 1),
        (p90, 2),
    ] {
        let counting = Counting(&clock, Cell::new(0));
        let hedge: Hedge<_, 3> = Hedge::new(Config::new(delay), &counting).unwrap();
        let started = Cell::new(0);
        let out = mock::run(
            &clock,
            hedge.call(|| {
                started.set(started.get() + 1);
                async { Ok::<_, ()>(1) }
            }),
        )
        .unwrap();
        assert_eq!(out, Ok(1));
        // With no delay every copy is due at once; the first polled answers.
        let all_at_once = delay == Delay::Fixed(Duration::ZERO);
        assert_eq!(started.get(), if all_at_once { 3 } else { 1 });
        assert_eq!(counting.1.get(), reads, "delay {delay:?}");
    }
}
