//! One driver for both forms: admission, settling, release, modes and restore, written once
//! against a [`Store`] of the breaker's state (governor's GCRA against its state store).
//!
//! The [`Machine`](super::Machine) stores its [`Breaker`] in a plain field behind `&mut`;
//! the [`CircuitBreaker`](super::CircuitBreaker) in one atomic word behind `&self`, updated
//! by CAS. The transitions are [`Breaker`]'s own pure functions; the store decides only how a
//! new state is committed, and what else happens around a change (publishing the open time,
//! events).

use super::config::PolicySource;
use super::error::{Rejected, SnapshotError, TransitionError};
use super::machine::Ticket;
use super::open_time::OpenTime;
use super::state::{
    Admit, Breaker, End, Manual, Mode, Now, Phase, checked_snapshot, is_slow, times_calls,
};
use super::window::{Over, Sample, Window, WindowStats, rate_trips};
use super::{Exceeded, Outcome, Snapshot};
use crate::time::Instant;

/// Where a breaker's state lives.
pub(crate) trait Store {
    type Window: Window;
    /// How this store reads time.
    type Now: Now;

    /// The state now.
    fn load(&mut self, now: &mut Self::Now) -> Breaker;

    /// Runs `f` on the state and commits the state it returns: at once, or (a store shared
    /// with others) running `f` again on the fresh state when another caller changed it
    /// first. The last value `f` returned, and `(from, to)` if the state changed.
    fn update<R>(
        &mut self,
        now: &mut Self::Now,
        f: impl FnMut(Breaker, &mut Self::Now) -> (R, Breaker),
    ) -> (R, Option<(Breaker, Breaker)>);

    /// Records a sample in the window; the window after it.
    fn record_window(
        &mut self,
        rules: &<Self::Window as Window>::Rules,
        now: &mut Self::Now,
        sample: Sample,
    ) -> WindowStats;

    /// Records the duration of a call just recorded as `sample` (a timed breaker).
    fn record_timed(
        &mut self,
        rules: &<Self::Window as Window>::Rules,
        now: &mut Self::Now,
        sample: Sample,
        micros: u32,
    );

    /// Empties the window.
    fn reset_window(&mut self);

    /// After the change `from` → `to` was committed (and the window emptied on closing).
    fn entered(&mut self, from: Breaker, to: Breaker, now: &mut Self::Now) {
        let _ = (from, to, now);
    }

    /// A call admitted in the state `seen` (a first look) ended with `outcome`.
    fn ended(&mut self, seen: &Breaker, outcome: Outcome, slow: bool) {
        let _ = (seen, outcome, slow);
    }

    /// A call was rejected.
    fn rejected(&mut self, rejected: Rejected, now: &mut Self::Now) {
        let _ = (rejected, now);
    }

    /// A rate of the window crossed its threshold (it was below, or not known, before).
    fn exceeded(&mut self, rate: Exceeded, window: WindowStats) {
        let _ = (rate, window);
    }
}

/// After a committed change: a breaker entering closed (from another state, or a reset),
/// metrics-only or disabled measures afresh (resilience4j builds new metrics for each).
fn changed<S: Store>(s: &mut S, from: Breaker, to: Breaker, now: &mut S::Now) {
    let measures_afresh = matches!(
        to.phase,
        Phase::Closed { .. } | Phase::MetricsOnly { .. } | Phase::Disabled
    );
    if measures_afresh && to.generation != from.generation {
        s.reset_window();
    }
    s.entered(from, to, now);
}

/// Asks to make a call.
#[inline]
pub(crate) fn acquire<S: Store>(
    s: &mut S,
    (p, open): (&impl PolicySource, &impl OpenTime),
    rules: &<S::Window as Window>::Rules,
    now: &mut S::Now,
) -> Result<Ticket, Rejected> {
    let p = &p.policy();
    let ((decision, generation), change) = s.update(now, |c, now| {
        let (decision, next) = c.admit(p, open, now);
        ((decision, next.generation), next)
    });
    if let Some((from, to)) = change {
        changed(s, from, to, now);
    }
    match decision {
        Admit::Pass | Admit::Probe => Ok(Ticket::new(
            generation,
            decision == Admit::Probe,
            if times_calls(S::Window::rate_rules(rules)) {
                now.precise()
            } else {
                Instant::ZERO
            },
        )),
        Admit::Reject(r) => {
            s.rejected(r, now);
            Err(r)
        }
    }
}

/// Settles the call of `ticket` with `outcome`.
#[inline]
pub(crate) fn record<S: Store>(
    s: &mut S,
    (p, open): (&impl PolicySource, &impl OpenTime),
    rules: &<S::Window as Window>::Rules,
    ticket: Ticket,
    outcome: Outcome,
    now: &mut S::Now,
) {
    let rate = S::Window::rate_rules(rules);
    let timed = times_calls(rate);
    let slow = timed && is_slow(rate, ticket.started, now.precise());
    let seen = s.load(now);
    s.ended(&seen, outcome, slow);
    let stats = if S::Window::MEASURES
        && seen.generation == ticket.generation()
        && seen.records_window()
        && outcome != Outcome::Ignored
    {
        let failure = outcome == Outcome::Failure;
        let sample = Sample { failure, slow };
        let stats = s.record_window(rules, now, sample);
        if timed {
            record_timed(s, rules, ticket.started, sample, now);
        }
        stats
    } else {
        WindowStats::default()
    };
    // A success in the closed state of its own generation, with no run of failures to clear
    // and no rate that trips, changes nothing: skip computing and committing it (the common
    // case of a healthy windowed breaker; README row "breaker closed path, count window 100
    // vs recloser ring 100").
    if outcome == Outcome::Success
        && !ticket.is_probe()
        && seen.generation == ticket.generation()
        && seen.phase == (Phase::Closed { failures: 0 })
        && !rate_trips(rate, stats)
    {
        return;
    }
    let end = End {
        generation: ticket.generation(),
        probe: ticket.is_probe(),
        outcome,
        slow,
        stats,
    };
    // Read here, past the fast return: the shared form loads its run-time settings.
    let p = &p.policy();
    let ((), change) = s.update(now, |c, now| ((), c.settle(p, open, rate, end, now)));
    if let Some((from, to)) = change {
        crossed(s, rate, from, to, stats);
        changed(s, from, to, now);
    }
}

/// Records the duration of a timed call that started at `started` and was just recorded as
/// `sample`. Out of line: a breaker that does not time calls keeps its closed path as it was
/// (README row "breaker closed path, count window 100 vs recloser ring 100").
#[inline(never)]
fn record_timed<S: Store>(
    s: &mut S,
    rules: &<S::Window as Window>::Rules,
    started: Instant,
    sample: Sample,
    now: &mut S::Now,
) {
    let micros = now.precise().as_nanos().saturating_sub(started.as_nanos()) / 1_000;
    let micros = if micros > u32::MAX as u64 {
        u32::MAX
    } else {
        micros as u32
    };
    s.record_timed(rules, now, sample, micros);
}

/// Reports the rates that the committed change `from` → `to` of a settled call shows crossing
/// their thresholds: once per crossing, by whoever committed it (a trip from closed, or a
/// metrics-only breaker whose remembered rates went over).
fn crossed<S: Store>(
    s: &mut S,
    rules: Option<&super::window::Rules>,
    from: Breaker,
    to: Breaker,
    stats: WindowStats,
) {
    let (before, after) = match (from.phase, to.phase) {
        (Phase::MetricsOnly { over: a }, Phase::MetricsOnly { over: b }) => (a, b),
        (Phase::Closed { .. }, Phase::Open { .. }) => (Over::default(), Over::of(rules, stats)),
        _ => return,
    };
    if after.failure && !before.failure {
        s.exceeded(Exceeded::FailureRate, stats);
    }
    if after.slow && !before.slow {
        s.exceeded(Exceeded::SlowCallRate, stats);
    }
}

/// Abandons the call of `ticket`: a probe gives its slot back.
pub(crate) fn release<S: Store>(s: &mut S, ticket: Ticket, now: &mut S::Now) {
    if ticket.is_probe() {
        let (generation, probe) = (ticket.generation(), true);
        s.update(now, |c, _| ((), c.release(generation, probe)));
    }
}

/// Enters `mode`.
pub(crate) fn force<S: Store>(s: &mut S, mode: Mode, now: &mut S::Now) {
    if let ((), Some((from, to))) = s.update(now, |c, _| ((), c.force(mode))) {
        changed(s, from, to, now);
    }
}

/// Back to a fresh closed breaker; the window is emptied even when the state is already
/// fresh (then nothing else changes, so resetting twice is resetting once).
pub(crate) fn reset<S: Store>(s: &mut S, now: &mut S::Now) {
    match s.update(now, |c, _| ((), c.reset())) {
        ((), Some((from, to))) => changed(s, from, to, now),
        ((), None) => s.reset_window(),
    }
}

/// Makes the transition `to` asked for by hand, if it is legal now.
pub(crate) fn manual<S: Store>(
    s: &mut S,
    to: Manual,
    now: &mut S::Now,
) -> Result<(), TransitionError> {
    let (result, change) = s.update(now, |c, now| {
        if now.publishing() {
            // A trip is publishing its open time: a change into open now could have its
            // open time overwritten by that trip's late write.
            return (Err(TransitionError::Busy), c);
        }
        match c.manual(to) {
            Ok(next) => (Ok(()), next),
            Err(e) => (Err(e), c),
        }
    });
    if let Some((from, to)) = change {
        changed(s, from, to, now);
    }
    result
}

/// Restores `snapshot`, checked against `p`; the window starts empty.
pub(crate) fn restore<S: Store>(
    s: &mut S,
    (p, open): (&impl PolicySource, &impl OpenTime),
    snapshot: Snapshot,
    now: &mut S::Now,
) -> Result<(), SnapshotError> {
    let snapshot = checked_snapshot(snapshot, &p.policy(), open)?;
    let t = now.precise();
    let ((), change) = s.update(now, |c, _| ((), c.restored(snapshot, t)));
    s.reset_window();
    if let Some((from, to)) = change {
        changed(s, from, to, now);
    }
    Ok(())
}
