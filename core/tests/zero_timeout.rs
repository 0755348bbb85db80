//! One meaning of a zero timeout (issue 11, item 13), tokio's: the operation is polled first;
//! ready at its first poll, it completes; pending, it is cut at once. Checked for `timeout`,
//! `timeout_at` with a `Deadline`, retry under a passed deadline, and the pipeline's total
//! and attempt timeouts.

use core::cell::Cell;
use core::future::{pending, ready};
use core::time::Duration;

use bulwark::pipeline::{Error as PipelineError, Pipeline};
use bulwark::retry::{Config, Error as RetryError, Retry};
use bulwark::timeout::{Deadline, Elapsed, timeout, timeout_at};
use bulwark::{Clock, Instant, MockClock, mock};

const ZERO: Duration = Duration::ZERO;

fn clock_at_5s() -> MockClock {
    let clock = MockClock::new();
    clock.set(Instant::from_secs(5));
    clock
}

#[test]
fn zero_timeout_lets_a_ready_operation_complete_and_cuts_a_pending_one() {
    let clock = clock_at_5s();
    assert_eq!(
        mock::run(&clock, timeout(&clock, ZERO, ready(1))).unwrap(),
        Ok(1)
    );
    let cut = mock::run(&clock, timeout(&clock, ZERO, pending::<()>())).unwrap();
    assert_eq!(
        cut,
        Err(Elapsed {
            deadline: Instant::from_secs(5),
            timeout: Some(Duration::ZERO),
        })
    );
    assert_eq!(clock.now(), Instant::from_secs(5));
}

#[test]
fn passed_deadline_lets_a_ready_operation_complete_and_cuts_a_pending_one() {
    let clock = clock_at_5s();
    for d in [
        Deadline::after(clock.now(), ZERO),
        Deadline::at(Instant::from_secs(1)),
    ] {
        assert_eq!(
            mock::run(&clock, timeout_at(&clock, d, ready(2))).unwrap(),
            Ok(2)
        );
        let cut = mock::run(&clock, timeout_at(&clock, d, pending::<()>())).unwrap();
        assert_eq!(
            cut,
            Err(Elapsed {
                deadline: d.instant().unwrap(),
                timeout: None,
            })
        );
    }
    assert_eq!(clock.now(), Instant::from_secs(5));
}

#[test]
fn retry_under_a_passed_deadline_lets_a_ready_first_attempt_complete() {
    let clock = clock_at_5s();
    let retry = Retry::new(Config::new(), &clock).unwrap();
    let passed = Deadline::after(clock.now(), ZERO);
    let calls = Cell::new(0);
    let op = || {
        calls.set(calls.get() + 1);
        ready(Ok::<_, ()>(3))
    };
    let out = mock::run(&clock, retry.call_with_deadline(passed, op)).unwrap();
    assert_eq!(out, Ok(3));
    assert_eq!(calls.get(), 1);
    // A ready failure is returned, not retried: no retry starts at or after the deadline.
    let out = mock::run(
        &clock,
        retry.call_with_deadline(passed, || ready(Err::<(), _>("down"))),
    )
    .unwrap();
    assert_eq!(
        out,
        Err(RetryError::DeadlineExceeded {
            last: Some("down"),
            attempts: 1
        })
    );
    // A pending first attempt is dropped at once.
    let out = mock::run(
        &clock,
        retry.call_with_deadline(passed, pending::<Result<(), ()>>),
    )
    .unwrap();
    assert_eq!(
        out,
        Err(RetryError::DeadlineExceeded {
            last: None,
            attempts: 1
        })
    );
    assert_eq!(clock.now(), Instant::from_secs(5));
}

#[test]
fn pipeline_total_timeout_zero_lets_a_ready_operation_complete() {
    let clock = clock_at_5s();
    let p = Pipeline::new(&clock, Config::new())
        .unwrap()
        .total_timeout(ZERO);
    let calls = Cell::new(0);
    let out = mock::run(
        &clock,
        p.call(|| {
            calls.set(calls.get() + 1);
            ready(Ok::<_, ()>(4))
        }),
    )
    .unwrap();
    assert_eq!(out, Ok(4));
    assert_eq!(calls.get(), 1);
}

#[test]
fn pipeline_total_timeout_zero_cuts_a_pending_operation_at_once() {
    let clock = clock_at_5s();
    let p = Pipeline::new(&clock, Config::new())
        .unwrap()
        .total_timeout(ZERO);
    let calls = Cell::new(0);
    let out = mock::run(
        &clock,
        p.call(|| {
            calls.set(calls.get() + 1);
            pending::<Result<(), ()>>()
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        Err(PipelineError::Timeout(Elapsed {
            deadline: Instant::from_secs(5),
            timeout: None,
        }))
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(clock.now(), Instant::from_secs(5));
}

#[test]
fn pipeline_attempt_timeout_zero_lets_a_ready_operation_complete_and_cuts_a_pending_one() {
    let clock = clock_at_5s();
    let p = Pipeline::new(&clock, Config::new().max_attempts(1))
        .unwrap()
        .attempt_timeout(ZERO);
    assert_eq!(
        mock::run(&clock, p.call(|| ready(Ok::<_, ()>(5)))).unwrap(),
        Ok(5)
    );
    let out = mock::run(&clock, p.call(pending::<Result<(), ()>>)).unwrap();
    assert_eq!(
        out,
        Err(PipelineError::AttemptTimeout(Elapsed {
            deadline: Instant::from_secs(5),
            timeout: Some(Duration::ZERO),
        }))
    );
    assert_eq!(clock.now(), Instant::from_secs(5));
}
