//! Retry decisions (`RetryState::decide` over `Backoff` and `Jitter`) with arbitrary, possibly
//! invalid configurations, outcomes, hints, instants and deadlines; and the `Budget`.
//!
//! Invariants:
//! * an invalid configuration is a typed `ConfigError` (and `decide` still never panics);
//! * attempts never exceed `max_attempts`; `Stop::MaxAttempts` exactly when they are used up;
//! * a retry's delay is within the jitter's documented band and never above the cap
//!   (`Backoff::max`); a hint replaces it, cut to `max_retry_after`; `at = now + delay`;
//! * a retry never starts at or after the deadline, nor later than `max_elapsed` after the
//!   first attempt; without jitter a stop for either is justified;
//! * the same seed gives the same decisions;
//! * the budget matches a plain model: never negative, never above its cap, floor grants per
//!   second at most `min_per_sec`, denials counted.
#![no_main]

use arbitrary::Arbitrary;
use bulwark::Instant;
use bulwark::retry::{
    Backoff, Budget, Config, ConfigError, Decision, Jitter, RetryBudget, RetryState, Stop,
};
use bulwark::timeout::Deadline;
use bulwark_fuzz::{Count, Dur, Edgy, SmallStep, Span, nanos};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const MAX_STEPS: usize = 64;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Constant(Span),
    Linear(Span, Span),
    Exponential(Span, Option<Count>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum J {
    None,
    Full,
    Equal,
    Decorrelated,
    Proportional(u8),
}

#[derive(Arbitrary, Debug)]
struct Params {
    max_attempts: Count,
    max_elapsed: Option<Span>,
    kind: Kind,
    cap: Option<Span>,
    jitter: J,
    max_retry_after: Option<Span>,
    seed: u64,
}

impl Params {
    fn backoff(&self) -> Backoff {
        let b = match self.kind {
            Kind::Constant(d) => Backoff::constant(d.0),
            Kind::Linear(i, s) => Backoff::linear(i.0, s.0),
            Kind::Exponential(i, m) => match m {
                Some(m) => Backoff::exponential(i.0).multiplier(m.0),
                None => Backoff::exponential(i.0),
            },
        };
        match self.cap {
            Some(c) => b.max(c.0),
            None => b,
        }
    }

    fn jitter(&self) -> Jitter {
        match self.jitter {
            J::None => Jitter::None,
            J::Full => Jitter::Full,
            J::Equal => Jitter::Equal,
            J::Decorrelated => Jitter::Decorrelated,
            J::Proportional(p) => Jitter::Proportional(p),
        }
    }

    /// The one place that builds a retry [`Config`] (its API is being reworked).
    fn config(&self) -> Config {
        let mut c = Config::new()
            .max_attempts(self.max_attempts.0)
            .backoff(self.backoff())
            .jitter(self.jitter())
            .seed(self.seed);
        if let Some(d) = self.max_elapsed {
            c = c.max_elapsed(d.0);
        }
        if let Some(d) = self.max_retry_after {
            c = c.max_retry_after(d.0);
        }
        c
    }
}

/// The one place that makes a [`RetryState`] (jitter seeding is being reworked).
fn state(started: Instant, p: &Params) -> RetryState {
    RetryState::new(started, p.seed)
}

#[derive(Arbitrary, Debug)]
struct Step {
    /// How long the attempt ran before its outcome.
    ran: SmallStep,
    hint: Option<Dur>,
    /// Start the next attempt earlier than planned (a clock that stepped back) or later.
    skew: Option<(bool, SmallStep)>,
}

#[derive(Arbitrary, Debug)]
enum BudgetOp {
    Deposit,
    Withdraw,
    Advance(SmallStep),
    Back(SmallStep),
}

#[derive(Arbitrary, Debug)]
struct Input {
    params: Params,
    start: Edgy,
    deadline: Option<Span>,
    steps: Vec<Step>,
    budget: (u16, u16, u32),
    budget_ops: Vec<BudgetOp>,
}

fuzz_target!(|inp: Input| {
    retry(&inp);
    budget(&inp);
});

fn retry(inp: &Input) {
    let p = &inp.params;
    let cfg = p.config();
    let valid = cfg.validate();
    let backoff = p.backoff();
    let cap = nanos(backoff.cap());
    let expected_err = if p.max_attempts.0 == 0 {
        Some(ConfigError::ZeroAttempts)
    } else if matches!(p.kind, Kind::Exponential(_, Some(Count(0)))) {
        Some(ConfigError::ZeroMultiplier)
    } else if matches!(p.kind, Kind::Exponential(d, _) if d.0.is_zero()) {
        Some(ConfigError::ZeroInitialDelay)
    } else if p.max_retry_after.is_some_and(|d| d.0.is_zero()) {
        Some(ConfigError::ZeroMaxRetryAfter)
    } else if matches!(p.jitter, J::Proportional(x) if x > 100) {
        Some(ConfigError::PercentOutOfRange)
    } else {
        None
    };
    assert_eq!(valid.err(), expected_err, "validation of {cfg:?}");
    if let Err(e) = valid {
        let _ = e.to_string();
    }

    let started = Instant::from_nanos(inp.start.0);
    let deadline = match inp.deadline {
        Some(d) => Deadline::after(started, d.0),
        None => Deadline::NONE,
    };
    let max_hint = nanos(p.max_retry_after.map_or(Duration::from_secs(60), |d| d.0));
    let mut s = state(started, p);
    let mut twin = state(started, p);
    let mut now = started;
    let mut prev: Option<u64> = None;
    for step in inp.steps.iter().take(MAX_STEPS) {
        s.start_attempt();
        twin.start_attempt();
        let attempts = s.attempts();
        if valid.is_ok() {
            assert!(attempts <= p.max_attempts.0, "attempt {attempts} started");
        }
        now = now + step.ran.0;
        let hint = step.hint.map(|h| h.0);
        let d = s.decide(&cfg, now, hint, deadline);
        assert_eq!(
            d,
            twin.decide(&cfg, now, hint, deadline),
            "same seed, other decision"
        );
        match d {
            Decision::Stop(why) => {
                assert_eq!(why == Stop::MaxAttempts, attempts >= p.max_attempts.0);
                // Without jitter the delay is known: the stop must be justified.
                let planned = match hint {
                    Some(h) => Some(nanos(h).min(max_hint)),
                    None if matches!(p.jitter, J::None) => {
                        Some(nanos(backoff.delay(attempts)).min(cap))
                    }
                    None => None,
                };
                if let Some(delay) = planned {
                    let at = now + Duration::from_nanos(delay);
                    match why {
                        Stop::MaxAttempts => {}
                        Stop::MaxElapsed => {
                            let max = p.max_elapsed.expect("no max_elapsed").0;
                            assert!(at - started > max, "stopped early: {at:?}");
                        }
                        Stop::Deadline => assert!(!deadline.allows(at), "stopped early: {at:?}"),
                    }
                }
                break;
            }
            Decision::Retry { delay, at } => {
                assert!(attempts < p.max_attempts.0);
                assert_eq!(at, now + delay, "at != now + delay");
                assert!(
                    deadline.allows(at),
                    "retry at {at:?} overshoots {deadline:?}"
                );
                if let Some(max) = p.max_elapsed {
                    assert!(at - started <= max.0, "retry at {at:?} past max_elapsed");
                }
                let dn = nanos(delay);
                match hint {
                    Some(h) => assert_eq!(dn, nanos(h).min(max_hint), "hint"),
                    None => {
                        assert!(dn <= cap, "delay {dn} above the cap {cap}");
                        let raw = nanos(backoff.delay(attempts));
                        assert!(raw <= cap);
                        let base = nanos(backoff.delay(1));
                        let (lo, hi) = match p.jitter {
                            J::None => (raw, raw),
                            J::Full => (0, raw),
                            J::Equal => (raw / 2, raw),
                            J::Decorrelated => {
                                let pv = prev.unwrap_or(base).max(base);
                                (base.min(cap), pv.saturating_mul(3).min(cap))
                            }
                            J::Proportional(x) => {
                                let span = (raw as u128 * x.min(100) as u128 / 100) as u64;
                                ((raw - span).min(cap), raw.saturating_add(span).min(cap))
                            }
                        };
                        assert!(
                            (lo..=hi).contains(&dn),
                            "delay {dn} outside [{lo}, {hi}] for {:?}",
                            p.jitter
                        );
                    }
                }
                prev = Some(dn);
                now = at;
            }
        }
        if let Some((earlier, d)) = step.skew {
            now = if earlier { now - d.0 } else { now + d.0 };
        }
    }
}

fn budget(inp: &Input) {
    let (percent, floor, max_tokens) = inp.budget;
    let percent = percent % 1100; // mostly valid, sometimes above 1000
    let floor = floor % 4;
    let max_tokens = max_tokens % 6;
    let b = match Budget::new(percent, floor, max_tokens) {
        Ok(b) => b,
        Err(e) => {
            assert!(percent > 1000);
            assert_eq!(e, ConfigError::PercentOutOfRange);
            return;
        }
    };
    assert!(percent <= 1000);
    // The model, in thousandths of a token.
    let (deposit, max) = (percent as u64 * 10, max_tokens as u64 * 1_000);
    let mut balance = 0u64;
    let (mut sec, mut used) = (0u64, 0u64);
    let mut denied = 0u64;
    let mut now = Instant::ZERO;
    for op in inp.budget_ops.iter().take(MAX_STEPS * 2) {
        match op {
            BudgetOp::Deposit => {
                b.deposit();
                balance = (balance + deposit).min(max);
            }
            BudgetOp::Withdraw => {
                let s = now.as_nanos() / 1_000_000_000;
                if s > sec {
                    (sec, used) = (s, 0);
                }
                let want = if used < floor as u64 {
                    used += 1;
                    true
                } else if balance >= 1_000 {
                    balance -= 1_000;
                    true
                } else {
                    denied += 1;
                    false
                };
                assert_eq!(b.try_withdraw(now), want, "withdraw at {now:?}");
            }
            BudgetOp::Advance(d) => now = now + d.0,
            BudgetOp::Back(d) => now = now - d.0,
        }
        assert_eq!(b.tokens(), balance / 1_000, "tokens");
        assert!(b.tokens() <= max_tokens as u64);
        assert_eq!(b.denied(), denied, "denied");
    }
}
