//! A panicking operation counts as a failure where the platform can tell (issue 15 item 5):
//! resilience4j records an exception thrown by the decorated call as a failed call; a Rust
//! panic is its counterpart. The std adapters set the core's panic probe; these tests set it
//! themselves.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bulwark::admission::Call;
use bulwark::admission::set_panic_probe;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config, Counters, State};
use bulwark::classify::ErrorsAreFailures;
use bulwark::{MockClock, mock};

#[test]
fn a_panicking_call_is_a_failure_and_the_panic_goes_on() {
    set_panic_probe(std::thread::panicking);
    let clock = MockClock::new();
    let breaker = CircuitBreaker::new(Config::new().consecutive_failures(2), &clock)
        .unwrap()
        .with_events(Counters::new());
    for n in 1..=2u32 {
        let out = catch_unwind(AssertUnwindSafe(|| {
            mock::run(
                &clock,
                breaker.call(|| async {
                    if n > 0 {
                        panic!("bug {n}");
                    }
                    Ok::<(), ()>(())
                }),
            )
        }));
        let payload = out.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(&*format!("bug {n}"))
        );
        if n == 1 {
            assert_eq!(breaker.metrics().consecutive_failures, 1);
            assert_eq!(breaker.state(), State::Closed);
        }
    }
    // Two panics in a row are two failures: the breaker opened on the second.
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.events().snapshot().failures, 2);
}

#[test]
fn a_panicking_call_gives_its_bulkhead_slot_back() {
    set_panic_probe(std::thread::panicking);
    let clock = MockClock::new();
    let bulkhead = Bulkhead::new(BulkheadConfig::new(1), &clock).unwrap();
    let out = catch_unwind(AssertUnwindSafe(|| {
        mock::run(
            &clock,
            Call::new(&bulkhead, ErrorsAreFailures, || async {
                panic!("bug") as Result<(), ()>
            }),
        )
    }));
    assert!(out.is_err());
    assert_eq!(bulkhead.metrics().in_use, 0);
    let ok = mock::run(
        &clock,
        Call::new(&bulkhead, ErrorsAreFailures, || async { Ok::<_, ()>(7) }),
    )
    .unwrap();
    assert_eq!(ok, Ok(7));
}
