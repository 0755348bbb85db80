//! Random operation sequences for the breaker's model and differential tests (shared by
//! `model_circuit_breaker.rs` and `breaker_regressions.rs`).

use bulwark::circuit_breaker::Outcome;
use proptest::prelude::*;

/// One step of a sequence. `Advance` is in the unit the test chooses.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Advance(u64),
    Acquire,
    Settle(usize, Outcome),
    Drop(usize),
    Reset,
    ForceOpen,
    /// Open by hand for this long (the unit of `Advance`).
    OpenFor(u64),
    /// Half-open by hand.
    HalfOpen,
}

/// Sequences of up to `max_len` steps, time moving by `advance`.
pub(crate) fn ops(
    advance: impl Strategy<Value = u64> + 'static,
    max_len: usize,
) -> impl Strategy<Value = Vec<Op>> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Failure),
        3 => Just(Outcome::Success),
        1 => Just(Outcome::Ignored),
    ];
    let advance = advance.boxed();
    let op = prop_oneof![
        4 => advance.clone().prop_map(Op::Advance),
        6 => Just(Op::Acquire),
        6 => (0usize..4, outcome).prop_map(|(i, o)| Op::Settle(i, o)),
        1 => (0usize..4).prop_map(Op::Drop),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
        1 => advance.prop_map(Op::OpenFor),
        1 => Just(Op::HalfOpen),
    ];
    proptest::collection::vec(op, 1..max_len)
}
