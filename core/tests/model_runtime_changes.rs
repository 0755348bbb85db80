//! Model test (issue 15, items 6 and 12): the machine and the shared form agree step by step
//! on random sequences that change the thresholds at run time between calls (rate
//! thresholds, slow-call threshold, consecutive failures, open time), including the errors
//! of the changes they refuse, the window figures (`Metrics::times`) and the open times.

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, Machine, Outcome, Permit, TimeWindow, Window,
};
use bulwark::{Clock, MockClock};
use core::time::Duration;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Acquire,
    Settle(usize, Outcome),
    Drop(usize),
    SetRates(Option<u8>, Option<u8>, u32),
    SetSlowThreshold(u64),
    SetConsecutive(Option<u32>),
    SetOpenFor(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Ignored)
    ];
    prop_oneof![
        4 => (0u64..40).prop_map(Op::Advance),
        6 => Just(Op::Acquire),
        6 => (0usize..4, outcome).prop_map(|(i, o)| Op::Settle(i, o)),
        1 => (0usize..4).prop_map(Op::Drop),
        1 => (
            proptest::option::of(0u8..=101),
            proptest::option::of(1u8..=100),
            0u32..8
        )
            .prop_map(|(f, s, m)| Op::SetRates(f, s, m)),
        1 => (0u64..30).prop_map(Op::SetSlowThreshold),
        1 => proptest::option::of(0u32..5).prop_map(Op::SetConsecutive),
        1 => (0u64..200).prop_map(Op::SetOpenFor),
    ]
}

fn config(growth: bool) -> Config {
    let c = Config::new()
        .consecutive_failures(3)
        .failure_rate(50)
        .slow_calls(Duration::from_millis(10), 80)
        .minimum_calls(3)
        .open_for(Duration::from_millis(50))
        .half_open(2, 1)
        .time_window(Duration::from_millis(100));
    if growth {
        c.open_growth(2, Duration::from_millis(150))
    } else {
        c
    }
}

fn agree<W: Window + Default>(growth: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cfg = config(growth);
    let clock = MockClock::new();
    let mut machine = Machine::<W>::new(cfg).unwrap();
    let shared = CircuitBreaker::with_window(cfg, W::default(), &clock).unwrap();
    let mut held = Vec::new();
    for op in ops {
        let now = clock.now();
        match op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Op::Acquire => match (machine.try_acquire(now), Permit::try_new(&shared)) {
                (Ok(t), Ok(p)) => {
                    prop_assert_eq!(t.is_probe(), p.is_probe());
                    held.push((t, p));
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "admission: {:?} / {:?}", a, b.is_ok()),
            },
            Op::Settle(i, o) if i < held.len() => {
                let (t, p) = held.remove(i);
                machine.record(t, o, now);
                p.record(o);
            }
            Op::Drop(i) if i < held.len() => {
                let (t, p) = held.remove(i);
                machine.release(t);
                drop(p);
            }
            Op::Settle(..) | Op::Drop(..) => {}
            Op::SetRates(f, s, m) => prop_assert_eq!(
                machine.set_rate_thresholds(f, s, m),
                shared.set_rate_thresholds(f, s, m)
            ),
            Op::SetSlowThreshold(ms) => {
                let d = Duration::from_millis(ms);
                prop_assert_eq!(machine.set_slow_threshold(d), shared.set_slow_threshold(d))
            }
            Op::SetConsecutive(n) => prop_assert_eq!(
                machine.set_consecutive_failures(n),
                shared.set_consecutive_failures(n)
            ),
            Op::SetOpenFor(ms) => {
                let d = Duration::from_millis(ms);
                prop_assert_eq!(machine.set_open_for(d), shared.set_open_for(d))
            }
        }
        let now = clock.now();
        prop_assert_eq!(machine.config(), shared.config());
        prop_assert_eq!(machine.state_at(now), shared.state());
        prop_assert_eq!(machine.metrics(now), shared.metrics());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn machine_and_shared_form_agree_across_run_time_changes_count_window(
        growth in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        agree::<CountWindow<6>>(growth, ops)?;
    }

    #[test]
    fn machine_and_shared_form_agree_across_run_time_changes_time_window(
        growth in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        agree::<TimeWindow<4>>(growth, ops)?;
    }
}
