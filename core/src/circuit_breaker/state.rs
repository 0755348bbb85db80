//! The breaker's state as a Rust type, and its transitions, written once.
//!
//! [`Breaker`] is what a breaker knows: its [`Phase`] (with the counters and the instant that
//! phase needs), how many times in a row it has opened, and its generation. The transitions
//! are pure functions from one `Breaker` to the next; the [`driver`](super::driver) runs them
//! against a store: plain fields in the [`Machine`](super::Machine), one packed atomic word
//! (its [`encoding`](super::encoding)) in the [`CircuitBreaker`](super::CircuitBreaker).

use core::time::Duration;

use super::config::{Config, HalfOpenVerdict, Policy};
use super::encoding::MAX_OPENINGS;
use super::error::{ConfigError, Rejected, SnapshotError, TransitionError};
use super::open_time::{Cause, OpenTime, longest, open_nanos};
use super::window::{CallTimes, Over, Rules, Window, WindowStats, rate_trips};
use super::{Metrics, Outcome, Snapshot, State};
use crate::time::{Instant, duration_to_nanos};

/// The state of a breaker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Breaker {
    pub(crate) phase: Phase,
    /// Consecutive openings (drives open-time growth): +1 on every trip, saturating at
    /// [`MAX_OPENINGS`]; back to 0 when the breaker closes.
    pub(crate) openings: u8,
    /// +1 on every change of phase: an outcome counts only in the generation that admitted
    /// its call (a late outcome is dropped).
    pub(crate) generation: u32,
}

/// Where a breaker is, with what that place needs to decide.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Calls pass; `failures` in a row so far (saturating).
    Closed { failures: u16 },
    /// Calls are rejected until `until`; the first call at or after it is a probe.
    Open { until: Instant },
    /// Probes decide. `since`: when half-open began, its first probe's admission (the
    /// maximum time counts from here).
    HalfOpen { since: Instant, probes: Probes },
    /// Forced open by hand.
    ForcedOpen,
    /// Forced closed by hand: nothing is measured.
    Disabled,
    /// Everything passes; outcomes are measured and reported, nothing trips. `over`: which
    /// rates the window was at or over their threshold at the last outcome (so a crossing is
    /// reported once).
    MetricsOnly { over: Over },
}

/// The half-open phase's count of its probes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Probes {
    /// Probes admitted and not yet ended.
    pub(crate) in_flight: u8,
    /// Probes that ended with an outcome. Under the first-failure verdict all of them
    /// succeeded (a failure re-opens at once).
    pub(crate) judged: u8,
    /// Of those, failures (rate verdict).
    pub(crate) failed: u8,
    /// Of those, slow ones (rate verdict with a slow-call policy).
    pub(crate) slow: u8,
}

impl Probes {
    /// The probes that ended, with one more ending `failed` and/or `slow` (a first failure),
    /// as the cause of a trip from half-open.
    fn cause(&self, failed: bool, slow: bool) -> Cause {
        let ended = failed || slow;
        Cause {
            from: State::HalfOpen,
            consecutive_failures: 0,
            window: WindowStats {
                calls: self.judged as u32 + ended as u32,
                failures: self.failed as u32 + failed as u32,
                slow: self.slow as u32 + slow as u32,
                minimum_calls: 1,
            },
        }
    }
}

/// A mode chosen by hand.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    ForcedOpen,
    Disabled,
    MetricsOnly,
}

/// A transition asked for by hand.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Manual {
    /// Open until `until` (an instant already past: the next call probes).
    Open { until: Instant },
    /// Half-open at `now`: the next call is a probe.
    HalfOpen { now: Instant },
}

/// What an admission decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// A normal call (closed, disabled, metrics-only).
    Pass,
    /// A half-open probe.
    Probe,
    Reject(Rejected),
}

/// How an admitted call ended, as [`Breaker::settle`] needs it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct End {
    /// The generation that admitted the call.
    pub(crate) generation: u32,
    pub(crate) probe: bool,
    pub(crate) outcome: Outcome,
    /// It took at least the slow-call threshold.
    pub(crate) slow: bool,
    /// The window after recording it (empty when it was not recorded).
    pub(crate) stats: WindowStats,
}

/// The instants transitions are decided at. The machine has one `now` for everything; the
/// shared form reads its clock lazily, coarsely where that cannot change the answer.
pub(crate) trait Now {
    /// The precise instant (read once).
    fn precise(&mut self) -> Instant;
    /// An instant that answers `t >= edge` as the precise one would (a coarse reading far
    /// from `edge`).
    fn near(&mut self, edge: Instant) -> Instant;
    /// Is the state just read still being published by the caller that tripped the breaker
    /// (the shared form's *opening*)? A plain store has no such moment.
    fn publishing(&self) -> bool {
        false
    }
}

impl Now for Instant {
    fn precise(&mut self) -> Instant {
        *self
    }
    fn near(&mut self, _: Instant) -> Instant {
        *self
    }
}

impl Breaker {
    /// A fresh closed breaker.
    pub(crate) const CLOSED: Breaker = Breaker {
        phase: Phase::Closed { failures: 0 },
        openings: 0,
        generation: 0,
    };

    /// The state as the public API names it.
    pub(crate) const fn public(&self) -> State {
        match self.phase {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
            Phase::ForcedOpen => State::ForcedOpen,
            Phase::Disabled => State::Disabled,
            Phase::MetricsOnly { .. } => State::MetricsOnly,
        }
    }

    /// Does an outcome in this phase go into the window?
    pub(crate) const fn records_window(&self) -> bool {
        matches!(self.phase, Phase::Closed { .. } | Phase::MetricsOnly { .. })
    }

    /// The run of failures (closed; 0 elsewhere).
    pub(crate) const fn failures(&self) -> u16 {
        match self.phase {
            Phase::Closed { failures } => failures,
            _ => 0,
        }
    }

    /// The same breaker in `phase`, one generation later.
    fn enter(self, phase: Phase) -> Breaker {
        Breaker {
            phase,
            openings: self.openings,
            generation: self.generation.wrapping_add(1),
        }
    }

    /// Opens at `now` for `cause`: one more consecutive opening, and the open time `open`
    /// gives that opening.
    fn trip(self, p: &Policy, open: &impl OpenTime, cause: Cause, now: Instant) -> Breaker {
        self.open_until(p, open, cause, now).1
    }

    /// [`trip`](Breaker::trip), and the end of the open time it enters.
    fn open_until(
        self,
        p: &Policy,
        open: &impl OpenTime,
        cause: Cause,
        now: Instant,
    ) -> (Instant, Breaker) {
        let openings = self.openings.saturating_add(1).min(MAX_OPENINGS);
        let generation = self.generation.wrapping_add(1);
        let open = open_nanos(p, open, openings, generation as u64, &cause);
        let until = now.saturating_add(Duration::from_nanos(open));
        let phase = Phase::Open { until };
        let next = Breaker {
            phase,
            openings,
            generation,
        };
        (until, next)
    }

    /// Closes: the open-time growth starts over.
    fn close(self) -> Breaker {
        Breaker {
            openings: 0,
            ..self.enter(Phase::Closed { failures: 0 })
        }
    }

    /// The state the next call will find at `now` (the public state, with time applied): an
    /// open breaker whose open time is up is half-open, and a half-open breaker past its
    /// maximum time is open. No transition is made; the next call makes it.
    pub(crate) fn public_at(&self, p: &Policy, now: &mut impl Now) -> State {
        match self.phase {
            Phase::Open { until } if now.near(until) >= until => State::HalfOpen,
            Phase::HalfOpen { since, .. } if p.limits_half_open() => {
                let end = p.half_open_end(since);
                if now.near(end) >= end {
                    State::Open
                } else {
                    State::HalfOpen
                }
            }
            _ => self.public(),
        }
    }

    /// A transition asked for by hand: the next state, or why it is refused (resilience4j's
    /// table of legal transitions: metrics-only never opens, closed never goes half-open).
    /// Half-open is entered as an open time that ends `now`, so the next call is its first
    /// probe and half-open's maximum time counts from that call, as for an open time that
    /// ran out; a breaker already half-open (or open with its time up) is left as it is.
    pub(crate) fn manual(self, to: Manual) -> Result<Breaker, TransitionError> {
        let illegal = |to| {
            Err(TransitionError::Illegal {
                from: self.public(),
                to,
            })
        };
        match (to, self.phase) {
            (Manual::Open { .. }, Phase::MetricsOnly { .. }) => illegal(State::Open),
            (Manual::HalfOpen { .. }, Phase::MetricsOnly { .. } | Phase::Closed { .. }) => {
                illegal(State::HalfOpen)
            }
            (Manual::HalfOpen { .. }, Phase::HalfOpen { .. }) => Ok(self),
            (Manual::HalfOpen { now }, Phase::Open { until }) if until <= now => Ok(self),
            (Manual::HalfOpen { now: until }, _) | (Manual::Open { until }, _) => {
                Ok(self.enter(Phase::Open { until }))
            }
        }
    }

    /// Admission: the decision and the next state. A half-open breaker past its maximum time
    /// re-opens here, and the rejection carries the new open time's end.
    #[inline]
    pub(crate) fn admit(
        self,
        p: &Policy,
        open: &impl OpenTime,
        now: &mut impl Now,
    ) -> (Admit, Breaker) {
        match self.phase {
            Phase::Closed { .. } | Phase::Disabled | Phase::MetricsOnly { .. } => {
                (Admit::Pass, self)
            }
            Phase::Open { until } => {
                let t = now.near(until);
                if t < until {
                    return (Admit::Reject(Rejected::new(Some(until), t)), self);
                }
                let probes = Probes {
                    in_flight: 1,
                    judged: 0,
                    failed: 0,
                    slow: 0,
                };
                let phase = Phase::HalfOpen { since: t, probes };
                (Admit::Probe, self.enter(phase))
            }
            Phase::HalfOpen { since, probes: h } => {
                let t = if p.limits_half_open() {
                    let end = p.half_open_end(since);
                    let t = now.near(end);
                    if t >= end {
                        let cause = h.cause(false, false);
                        let (until, next) = self.open_until(p, open, cause, t);
                        return (Admit::Reject(Rejected::new(Some(until), t)), next);
                    }
                    t
                } else {
                    now.precise()
                };
                let taken = if p.counts_ended_probes() {
                    h.in_flight + h.judged
                } else {
                    h.in_flight
                };
                if taken < p.probes() {
                    let in_flight = h.in_flight + 1;
                    let next = Probes { in_flight, ..h };
                    (Admit::Probe, self.with_probes(next))
                } else {
                    // Every probe slot is taken: a call could pass as soon as one ends, which
                    // may be at once. `t` is the honest earliest instant; retry policies add
                    // their own backoff to it.
                    (Admit::Reject(Rejected::new(Some(t), t)), self)
                }
            }
            Phase::ForcedOpen => (Admit::Reject(Rejected::new(None, Instant::ZERO)), self),
        }
    }

    /// Settling a call: the state after the call `end` describes ended. `rules` are the rate
    /// settings of a breaker with a window.
    #[inline]
    pub(crate) fn settle(
        self,
        p: &Policy,
        open: &impl OpenTime,
        rules: Option<&Rules>,
        end: End,
        now: &mut impl Now,
    ) -> Breaker {
        if end.generation != self.generation {
            return self; // late: the breaker changed state since this call was admitted
        }
        match (self.phase, end.probe) {
            (Phase::Closed { failures }, false) => match end.outcome {
                Outcome::Ignored => self,
                Outcome::Success if rate_trips(rules, end.stats) => {
                    let cause = Cause {
                        from: State::Closed,
                        consecutive_failures: 0,
                        window: end.stats,
                    };
                    self.trip(p, open, cause, now.precise())
                }
                Outcome::Success => Breaker {
                    phase: Phase::Closed { failures: 0 },
                    ..self
                },
                Outcome::Failure => {
                    let failures = failures.saturating_add(1);
                    let by_count =
                        p.consecutive_failures != 0 && failures >= p.consecutive_failures;
                    if by_count || rate_trips(rules, end.stats) {
                        let cause = Cause {
                            from: State::Closed,
                            consecutive_failures: failures,
                            window: end.stats,
                        };
                        self.trip(p, open, cause, now.precise())
                    } else {
                        Breaker {
                            phase: Phase::Closed { failures },
                            ..self
                        }
                    }
                }
            },
            (Phase::HalfOpen { since, probes }, true) => {
                self.judge(since, probes, (p, open), rules, end, now)
            }
            // Remember which rates are over, so that crossing a threshold is reported once.
            (Phase::MetricsOnly { .. }, false) if end.outcome != Outcome::Ignored => Breaker {
                phase: Phase::MetricsOnly {
                    over: Over::of(rules, end.stats),
                },
                ..self
            },
            _ => self, // open, forced open, disabled, metrics-only: no transitions
        }
    }

    /// A probe of half-open `h` ended.
    fn judge(
        self,
        since: Instant,
        h: Probes,
        (p, open): (&Policy, &impl OpenTime),
        rules: Option<&Rules>,
        end: End,
        now: &mut impl Now,
    ) -> Breaker {
        if p.limits_half_open() {
            // A probe ending after the maximum time re-opens (a late verdict).
            let edge = p.half_open_end(since);
            if now.near(edge) >= edge {
                return self.trip(p, open, h.cause(false, false), now.precise());
            }
        }
        let released = Probes {
            in_flight: h.in_flight.saturating_sub(1),
            ..h
        };
        let slow = end.slow && rules.is_some_and(|r| r.slow_rate() != 0);
        let failure = match end.outcome {
            Outcome::Ignored => return self.with_probes(released),
            Outcome::Failure => true,
            Outcome::Success => false,
        };
        match p.verdict() {
            HalfOpenVerdict::FirstFailure if failure || slow => {
                let cause = released.cause(failure, slow);
                self.trip(p, open, cause, now.precise())
            }
            HalfOpenVerdict::FirstFailure => {
                let judged = released.judged.saturating_add(1);
                if judged >= p.successes_to_close {
                    self.close()
                } else {
                    self.with_probes(Probes { judged, ..released })
                }
            }
            HalfOpenVerdict::Rate => {
                let next = Probes {
                    judged: released.judged + 1,
                    failed: released.failed + failure as u8,
                    slow: released.slow + slow as u8,
                    ..released
                };
                if next.judged < p.probes() {
                    self.with_probes(next)
                } else if rate_verdict_trips(rules, p, next) {
                    self.trip(p, open, next.cause(false, false), now.precise())
                } else {
                    self.close()
                }
            }
        }
    }

    /// The same half-open breaker with `probes` (unchanged in any other phase).
    fn with_probes(self, probes: Probes) -> Breaker {
        match self.phase {
            Phase::HalfOpen { since, .. } => Breaker {
                phase: Phase::HalfOpen { since, probes },
                ..self
            },
            _ => self,
        }
    }

    /// A call admitted in `generation` was abandoned without an outcome: a probe gives its
    /// slot back, nothing else changes.
    pub(crate) fn release(self, generation: u32, probe: bool) -> Breaker {
        match self.phase {
            Phase::HalfOpen { probes: h, .. } if probe && generation == self.generation => self
                .with_probes(Probes {
                    in_flight: h.in_flight.saturating_sub(1),
                    ..h
                }),
            _ => self,
        }
    }

    /// Enters `mode`, whatever the phase.
    pub(crate) fn force(self, mode: Mode) -> Breaker {
        self.enter(match mode {
            Mode::ForcedOpen => Phase::ForcedOpen,
            Mode::Disabled => Phase::Disabled,
            Mode::MetricsOnly => Phase::MetricsOnly {
                over: Over::default(),
            },
        })
    }

    /// Back to a fresh closed breaker (a new generation: calls admitted before are late).
    /// Idempotent: a breaker that is already closed with no run of failures and no openings
    /// to forget is left as it is, and its calls in flight still count.
    pub(crate) fn reset(self) -> Breaker {
        if self.phase == (Phase::Closed { failures: 0 }) && self.openings == 0 {
            return self;
        }
        self.close()
    }

    /// The state a checked snapshot `s` restores to at `now`. Half-open restores open with
    /// no time left: probes in flight are not carried over, so the next call probes again.
    pub(crate) fn restored(self, s: Snapshot, now: Instant) -> Breaker {
        let remaining = Duration::from_nanos(duration_to_nanos(s.open_remaining));
        let phase = match s.state {
            State::Closed => Phase::Closed {
                failures: s.consecutive_failures,
            },
            State::Open | State::HalfOpen => Phase::Open {
                until: now.saturating_add(remaining),
            },
            State::ForcedOpen => Phase::ForcedOpen,
            State::Disabled => Phase::Disabled,
            State::MetricsOnly => Phase::MetricsOnly {
                over: Over::default(),
            },
        };
        Breaker {
            openings: s.openings.min(MAX_OPENINGS),
            ..self.enter(phase)
        }
    }

    /// The durable part, as of `now`.
    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            state: self.public(),
            consecutive_failures: self.failures(),
            openings: self.openings,
            open_remaining: match self.phase {
                Phase::Open { until } => until.saturating_duration_since(now),
                _ => Duration::ZERO,
            },
        }
    }

    /// The gauges, with the window's `stats`; `state` as [`public_at`](Breaker::public_at)
    /// gives it.
    pub(crate) fn metrics(&self, state: State, window: WindowStats, times: CallTimes) -> Metrics {
        Metrics {
            state,
            consecutive_failures: self.failures() as u32,
            window,
            times,
        }
    }
}

/// The rate verdict over all of half-open's probes (`h.judged` of them): the failure rate
/// and the slow rate are each judged against their own threshold (`>=` trips, as in the
/// closed state; without a failure-rate policy, only all probes failing), and fewer than
/// `successes_to_close` successful probes re-open too.
fn rate_verdict_trips(rules: Option<&Rules>, p: &Policy, h: Probes) -> bool {
    let judged = h.judged as u32;
    let over =
        |count: u8, percent: u8| percent != 0 && count as u32 * 100 >= percent as u32 * judged;
    let failure_rate = match rules {
        Some(r) if r.failure_rate() != 0 => r.failure_rate(),
        _ => 100,
    };
    let slow_rate = rules.map_or(0, |r| r.slow_rate());
    over(h.failed, failure_rate)
        || over(h.slow, slow_rate)
        || h.judged - h.failed < p.successes_to_close
}

/// Is a call that started at `started` and ended at `now` slow?
#[inline]
pub(crate) fn is_slow(rules: Option<&Rules>, started: Instant, now: Instant) -> bool {
    rules.is_some_and(|r| {
        r.slow_rate() != 0 && now.as_nanos().saturating_sub(started.as_nanos()) >= r.slow_threshold
    })
}

/// Are calls timed (a slow-call policy, or [`Config::record_durations`])? Constant `false`
/// without a window.
#[inline(always)]
pub(crate) fn times_calls(rules: Option<&Rules>) -> bool {
    rules.is_some_and(|r| r.timed())
}

/// The rules of a breaker with rules `old` after a change at run time to `cfg` (the
/// breaker's configuration with the change made): validated as the constructor validates,
/// and whether calls are timed (a slow-call policy) must not change.
pub(crate) fn changed_rules<W: Window>(
    old: &W::Rules,
    cfg: &Config,
) -> Result<W::Rules, ConfigError> {
    cfg.validate(W::MEASURES)?;
    let new = W::rules(cfg)?;
    match (W::rate_rules(old), W::rate_rules(&new)) {
        (Some(a), Some(b)) if (a.slow_rate() == 0) != (b.slow_rate() == 0) => Err(
            ConfigError::FixedAtRunTime(crate::circuit_breaker::Field::SlowRate),
        ),
        _ => Ok(new),
    }
}

/// Validates `cfg` for window `W`; what the breaker stores on success.
pub(crate) fn validate<W: Window>(cfg: &Config) -> Result<(Policy, W::Rules), ConfigError> {
    cfg.validate(W::MEASURES)?;
    Ok((cfg.policy(), W::rules(cfg)?))
}

/// Checks a snapshot against the policy `p` before it is restored: what cannot be true of a
/// snapshot this breaker wrote is rejected, what can be bounded is (the time left open is cut
/// to the longest open time `p` can give, the openings to [`MAX_OPENINGS`]).
pub(crate) fn checked_snapshot(
    s: Snapshot,
    p: &Policy,
    open: &impl OpenTime,
) -> Result<Snapshot, SnapshotError> {
    if s.consecutive_failures != 0 && s.state != State::Closed {
        // Outside closed there is no run of failures. In closed any run is possible: a
        // threshold lowered at run time below the run leaves it there until the next outcome
        // (the next failure trips the breaker, a success clears the run).
        return Err(SnapshotError::ConsecutiveFailures);
    }
    if s.state != State::Open && !s.open_remaining.is_zero() {
        return Err(SnapshotError::OpenRemaining);
    }
    Ok(Snapshot {
        openings: s.openings.min(MAX_OPENINGS),
        open_remaining: s.open_remaining.min(Duration::from_nanos(longest(p, open))),
        ..s
    })
}
