//! The pure circuit-breaker `Machine` and the shared `CircuitBreaker` side by side on one
//! `MockClock`, driven by arbitrary (possibly invalid) configurations and operations.
//!
//! Invariants, checked after every operation:
//! * the two forms agree: admission (probe or not, the rejection and its `retry_at`), state,
//!   metrics, snapshots and restore results;
//! * probes in flight never exceed the configured number; under the default verdict a free
//!   probe slot admits;
//! * `retry_at` is honest: a rejection from the open state names an instant after `now` at
//!   which, with nothing else happening, a call is admitted (checked on both forms by moving
//!   the clock there); forced open carries none; a full half-open carries `now`;
//! * the window holds exactly the outcomes an independent oracle says are live (count window:
//!   the last `N`; time window: a sample at epoch `e0` is live while `epoch(now) - e0 < N`),
//!   emptied when the breaker closes again, enters metrics-only or disabled, on reset and on
//!   restore;
//! * the attached `Counters` count what the driver did;
//! * invalid configurations give the same typed `ConfigError` from both constructors,
//!   arbitrary snapshot bytes give a typed `SnapshotError` or a snapshot both forms restore
//!   alike; nothing panics.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use bulwark::admission::Admit;
use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, Counters, HalfOpenVerdict, Machine, NoWindow, Outcome,
    Permit, Snapshot, State, Ticket, TimeWindow, Totals, Window,
};
use bulwark::{Clock, Instant, MockClock};
use bulwark_fuzz::{Count, Dur, Percent, SmallStep, Span, nanos};
use libfuzzer_sys::fuzz_target;

const COUNT_N: usize = 5;
const TIME_N: usize = 4;
/// Operations per input and tickets held at once: bounded work per execution.
const MAX_OPS: usize = 256;
const MAX_HELD: usize = 24;

#[derive(Arbitrary, Debug)]
struct Params {
    consecutive: Option<Count>,
    failure_rate: Option<Percent>,
    slow: Option<(Span, Percent)>,
    minimum_calls: Count,
    time_window: Span,
    open_for: Span,
    growth: Option<(Count, Span)>,
    jitter: Option<Percent>,
    probes: Count,
    successes: Count,
    rate_verdict: bool,
    max_half_open: Option<Span>,
    seed: u64,
}

impl Params {
    fn config(&self) -> Config {
        let mut c = Config::new()
            .minimum_calls(self.minimum_calls.0)
            .time_window(self.time_window.0)
            .open_for(self.open_for.0)
            .half_open(self.probes.0, self.successes.0)
            .seed(self.seed);
        if let Some(n) = self.consecutive {
            c = c.consecutive_failures(n.0);
        }
        if let Some(p) = self.failure_rate {
            c = c.failure_rate(p.0);
        }
        if let Some((t, p)) = self.slow {
            c = c.slow_calls(t.0, p.0);
        }
        if let Some((m, max)) = self.growth {
            c = c.open_growth(m.0, max.0);
        }
        if let Some(p) = self.jitter {
            c = c.open_jitter(p.0);
        }
        if self.rate_verdict {
            c = c.half_open_verdict(HalfOpenVerdict::Rate);
        }
        if let Some(d) = self.max_half_open {
            c = c.max_half_open(d.0);
        }
        c
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    None,
    Count,
    Time,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Out {
    Success,
    Failure,
    Ignored,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(SmallStep),
    AdvanceHuge(Dur),
    Back(SmallStep),
    /// `permit`: the shared form hands out an RAII permit (else a bare ticket);
    /// `then_retry`: after an open rejection, move time to its `retry_at` and call again.
    Acquire {
        permit: bool,
        then_retry: bool,
    },
    Settle(u8, Out),
    Release(u8),
    ForceOpen,
    Disable,
    MetricsOnly,
    Reset,
    SnapshotRestore,
    RestoreBytes([u8; 16]),
    /// A run-time change through `&self` (the shared form) and `&mut` (the machine).
    Set(Setting),
}

#[derive(Arbitrary, Debug)]
enum Setting {
    Rates(Option<Percent>, Option<Percent>, Count),
    Consecutive(Option<Count>),
    OpenFor(Span),
    SlowThreshold(Span),
}

#[derive(Arbitrary, Debug)]
struct Input {
    params: Params,
    kind: Kind,
    start: SmallStep,
    ops: Vec<Op>,
}

/// The shared form's side of an admitted call.
enum Hold<'a, W: Window> {
    Permit(Permit<&'a CircuitBreaker<&'a MockClock, W, &'a Counters>>),
    Ticket(Ticket),
}

struct Held<'a, W: Window> {
    machine: Ticket,
    shared: Hold<'a, W>,
    probe: bool,
    started: Instant,
    /// The driver's generation (state changes) when it was admitted.
    generation: u64,
}

/// What the window should hold, computed independently of the library.
enum Oracle {
    None,
    Count(VecDeque<(bool, bool)>),
    Time {
        bucket: u64,
        latest: u64,
        samples: Vec<(u64, bool, bool)>,
    },
}

impl Oracle {
    fn record(&mut self, now: Instant, failure: bool, slow: bool) {
        match self {
            Oracle::None => {}
            Oracle::Count(q) => {
                if q.len() == COUNT_N {
                    q.pop_front();
                }
                q.push_back((failure, slow));
            }
            Oracle::Time {
                bucket,
                latest,
                samples,
            } => {
                // An instant earlier than the latest epoch recorded reads as that epoch.
                let e = (now.as_nanos() / *bucket).max(*latest);
                *latest = e;
                samples.retain(|s| e - s.0 < TIME_N as u64);
                samples.push((e, failure, slow));
            }
        }
    }

    fn clear(&mut self) {
        match self {
            Oracle::None => {}
            Oracle::Count(q) => q.clear(),
            // A reset does not move time: the latest epoch stays.
            Oracle::Time { samples, .. } => samples.clear(),
        }
    }

    /// (calls, failures, slow) live at `now`.
    fn stats(&self, now: Instant) -> Option<(u32, u32, u32)> {
        let count = |it: &mut dyn Iterator<Item = (bool, bool)>| {
            it.fold((0, 0, 0), |(c, f, s), (fail, slow)| {
                (c + 1, f + fail as u32, s + slow as u32)
            })
        };
        match self {
            Oracle::None => None,
            Oracle::Count(q) => Some(count(&mut q.iter().copied())),
            Oracle::Time {
                bucket,
                latest,
                samples,
            } => {
                let e = (now.as_nanos() / *bucket).max(*latest);
                Some(count(
                    &mut samples
                        .iter()
                        .filter(|s| e - s.0 < TIME_N as u64)
                        .map(|s| (s.1, s.2)),
                ))
            }
        }
    }
}

fuzz_target!(|inp: Input| {
    let cfg = inp.params.config();
    match inp.kind {
        Kind::None => run(NoWindow, cfg, &inp, Oracle::None),
        Kind::Count => run(
            CountWindow::<COUNT_N>,
            cfg,
            &inp,
            Oracle::Count(VecDeque::new()),
        ),
        Kind::Time => {
            let bucket = nanos(inp.params.time_window.0) / TIME_N as u64;
            let oracle = Oracle::Time {
                bucket,
                latest: 0,
                samples: Vec::new(),
            };
            run(TimeWindow::<TIME_N>, cfg, &inp, oracle)
        }
    }
});

fn run<W: Window>(window: W, cfg: Config, inp: &Input, mut oracle: Oracle) {
    let clock = MockClock::new();
    let counters = Counters::new();
    let machine = Machine::<W>::new(cfg);
    let shared = CircuitBreaker::with_window(cfg, window, &clock);
    let (mut m, s) = match (machine, shared) {
        (Ok(m), Ok(s)) => (m, s.with_events(&counters)),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the two constructors disagree on {cfg:?}");
            let _ = a.to_string(); // Display never panics either
            return;
        }
        (a, b) => panic!(
            "one constructor accepts {cfg:?}: machine {:?}, shared {:?}",
            a.err(),
            b.err()
        ),
    };
    assert_eq!(m.config(), s.config());

    let p = &inp.params;
    let probes = p.probes.0 as usize;
    // The slow-call policy as configured, and as run-time changes move it.
    let mut slow_policy = p.slow.map(|(t, pct)| (nanos(t.0), pct.0));
    let slow_of = |policy: Option<(u64, u8)>| policy.filter(|(_, pct)| *pct != 0).map(|(t, _)| t);
    let mut slow_threshold = slow_of(slow_policy);
    let first_failure_unlimited = !p.rate_verdict && p.max_half_open.is_none();

    let mut now = Instant::ZERO + inp.start.0;
    clock.set(now);
    let mut held: Vec<Held<'_, W>> = Vec::new();
    let mut generation: u64 = 0;
    let mut want = Totals::default();

    for op in inp.ops.iter().take(MAX_OPS) {
        let before = m.state();
        // Calls that change the mode by hand always start a new generation.
        let mut bumped = false;
        match op {
            Op::Advance(d) => now = now + d.0,
            Op::AdvanceHuge(d) => now = now + d.0,
            Op::Back(d) => now = now - d.0,
            Op::Acquire { permit, then_retry } => {
                if held.len() >= MAX_HELD {
                    continue;
                }
                let live = held
                    .iter()
                    .filter(|h| h.probe && h.generation == generation)
                    .count();
                let a = m.try_acquire(now);
                let b = if *permit {
                    s.try_acquire().map(Hold::Permit)
                } else {
                    s.try_admit().map(Hold::Ticket)
                };
                match (a, b) {
                    (Ok(t), Ok(h)) => {
                        let sp = match &h {
                            Hold::Permit(p) => p.is_probe(),
                            Hold::Ticket(t) => t.is_probe(),
                        };
                        assert_eq!(t.is_probe(), sp, "probe or not");
                        let probe = t.is_probe();
                        if probe {
                            assert!(matches!(before, State::Open | State::HalfOpen));
                        } else {
                            assert!(before.admits_all(), "{before:?} admitted a normal call");
                        }
                        let gen_after = if m.state() != before {
                            generation + 1
                        } else {
                            generation
                        };
                        held.push(Held {
                            machine: t,
                            shared: h,
                            probe,
                            started: now,
                            generation: gen_after,
                        });
                    }
                    (Err(x), Err(y)) => {
                        assert_eq!(x, y, "rejections differ");
                        want.rejected += 1;
                        let _ = x.to_string();
                        match m.state() {
                            State::ForcedOpen => assert_eq!(x.retry_at, None),
                            State::HalfOpen => {
                                assert_eq!(x.retry_at, Some(now), "a full half-open");
                                if before == State::HalfOpen && first_failure_unlimited {
                                    assert!(
                                        live >= probes,
                                        "rejected with {live} of {probes} probes in flight"
                                    );
                                }
                            }
                            State::Open => {
                                let t = x.retry_at.expect("an open rejection names an instant");
                                if before == State::Open {
                                    // Still open: its time is not up, or it would have admitted.
                                    assert!(t > now, "retry_at {t:?} not after now {now:?}");
                                } else {
                                    // Re-opened by this call (half-open past its maximum).
                                    assert!(t >= now, "retry_at {t:?} before now {now:?}");
                                }
                                if *then_retry {
                                    // Nothing else happens: at `t` a call passes (a probe).
                                    if m.state() != before {
                                        generation += 1; // half-open re-opened by this call
                                    }
                                    now = t;
                                    clock.set(now);
                                    let a = m.try_acquire(now).unwrap_or_else(|r| {
                                        panic!("machine: retry_at {t:?} dishonest: {r:?}")
                                    });
                                    let b = s.try_admit().unwrap_or_else(|r| {
                                        panic!("shared: retry_at {t:?} dishonest: {r:?}")
                                    });
                                    assert!(a.is_probe() && b.is_probe());
                                    generation += 1; // open -> half-open
                                    held.push(Held {
                                        machine: a,
                                        shared: Hold::Ticket(b),
                                        probe: true,
                                        started: now,
                                        generation,
                                    });
                                    check(&m, &s, &oracle, now, generation, &held, probes);
                                    continue;
                                }
                            }
                            other => panic!("rejected in state {other:?}"),
                        }
                    }
                    (a, b) => panic!(
                        "admission differs: machine {:?}, shared {:?}",
                        a.map(|t| t.is_probe()),
                        b.map(|_| ()).err()
                    ),
                }
            }
            Op::Settle(i, out) => {
                if held.is_empty() {
                    continue;
                }
                let h = held.remove(*i as usize % held.len());
                let outcome = match out {
                    Out::Success => Outcome::Success,
                    Out::Failure => Outcome::Failure,
                    Out::Ignored => Outcome::Ignored,
                };
                if before != State::Disabled {
                    match outcome {
                        Outcome::Success => want.successes += 1,
                        Outcome::Failure => want.failures += 1,
                        Outcome::Ignored => want.ignored += 1,
                    }
                }
                let slow = slow_threshold
                    .is_some_and(|t| now.as_nanos().saturating_sub(h.started.as_nanos()) >= t);
                if slow && before != State::Disabled && outcome != Outcome::Ignored {
                    want.slow += 1;
                }
                if h.generation == generation
                    && matches!(before, State::Closed | State::MetricsOnly)
                    && outcome != Outcome::Ignored
                {
                    oracle.record(now, outcome == Outcome::Failure, slow);
                }
                m.record(h.machine, outcome, now);
                match h.shared {
                    Hold::Permit(p) => p.record(outcome),
                    Hold::Ticket(t) => s.record(t, outcome),
                }
            }
            Op::Release(i) => {
                if held.is_empty() {
                    continue;
                }
                let h = held.remove(*i as usize % held.len());
                m.release(h.machine);
                match h.shared {
                    Hold::Permit(p) => drop(p),
                    Hold::Ticket(t) => s.release(t),
                }
            }
            Op::ForceOpen => {
                m.force_open();
                s.force_open();
                bumped = true;
            }
            Op::Disable => {
                m.disable();
                s.disable();
                oracle.clear(); // entering disabled measures afresh
                bumped = true;
            }
            Op::MetricsOnly => {
                m.metrics_only();
                s.metrics_only();
                oracle.clear(); // entering metrics-only measures afresh
                bumped = true;
            }
            Op::Set(setting) => {
                // The same answer from both forms; a refused change changes nothing.
                let config = (m.config(), s.config());
                let (a, b) = match setting {
                    Setting::Rates(f, r, n) => (
                        m.set_rate_thresholds(f.map(|p| p.0), r.map(|p| p.0), n.0),
                        s.set_rate_thresholds(f.map(|p| p.0), r.map(|p| p.0), n.0),
                    ),
                    Setting::Consecutive(n) => (
                        m.set_consecutive_failures(n.map(|c| c.0)),
                        s.set_consecutive_failures(n.map(|c| c.0)),
                    ),
                    Setting::OpenFor(d) => (m.set_open_for(d.0), s.set_open_for(d.0)),
                    Setting::SlowThreshold(d) => {
                        (m.set_slow_threshold(d.0), s.set_slow_threshold(d.0))
                    }
                };
                assert_eq!(a, b, "run-time change answers differ for {setting:?}");
                if a.is_ok() {
                    match (setting, &mut slow_policy) {
                        (Setting::SlowThreshold(d), Some((t, _))) => *t = nanos(d.0),
                        (Setting::Rates(_, Some(r), _), Some((_, pct))) => *pct = r.0,
                        _ => {}
                    }
                    slow_threshold = slow_of(slow_policy);
                }
                if a.is_err() {
                    assert_eq!((m.config(), s.config()), config, "a refused change changed");
                }
                assert_eq!(m.config(), s.config(), "configs differ after {setting:?}");
            }
            Op::Reset => {
                // Idempotent: a breaker already fresh (closed, no run of failures, no
                // openings to forget) keeps its generation, and its calls in flight still
                // count; the window is emptied either way.
                let snap = m.snapshot(now);
                let fresh = m.state() == State::Closed
                    && snap.consecutive_failures == 0
                    && snap.openings == 0;
                m.reset();
                s.reset();
                oracle.clear();
                bumped = !fresh;
            }
            Op::SnapshotRestore => {
                let snap = m.snapshot(now);
                assert_eq!(snap, s.snapshot(), "snapshots differ");
                assert_eq!(Snapshot::from_bytes(&snap.to_bytes()), Ok(snap));
                let (a, b) = (m.restore(snap, now), s.restore(snap));
                assert_eq!(a, Ok(()), "a breaker's own snapshot must restore: {snap:?}");
                assert_eq!(b, Ok(()));
                let want_state = match snap.state {
                    State::HalfOpen => State::Open,
                    st => st,
                };
                assert_eq!(m.state(), want_state);
                assert_eq!(
                    m.metrics(now).consecutive_failures,
                    snap.consecutive_failures as u32
                );
                oracle.clear();
                bumped = true;
            }
            Op::RestoreBytes(bytes) => match Snapshot::from_bytes(bytes) {
                Ok(snap) => {
                    assert_eq!(Snapshot::from_bytes(&snap.to_bytes()), Ok(snap));
                    let (a, b) = (m.restore(snap, now), s.restore(snap));
                    assert_eq!(a, b, "restore of {snap:?} differs");
                    if let Err(e) = a {
                        let _ = e.to_string();
                    } else {
                        oracle.clear();
                        bumped = true;
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            },
        }
        clock.set(now);
        let after = m.state();
        if bumped || after != before {
            generation += 1;
        }
        if after == State::Closed && before != State::Closed && !bumped {
            oracle.clear(); // closed again after half-open: measured afresh
        }
        check(&m, &s, &oracle, now, generation, &held, probes);
        assert_eq!(counters.snapshot(), want, "counters");
    }

    // Give everything back; nothing may be left holding a probe slot.
    for h in held.drain(..) {
        m.release(h.machine);
        match h.shared {
            Hold::Permit(p) => drop(p),
            Hold::Ticket(t) => s.release(t),
        }
    }
    // `state()` of the shared form is time-driven (an open breaker whose time is up reads
    // half-open): the machine's counterpart is `state_at(now)`.
    assert_eq!(m.state_at(now), s.state());
    assert_eq!(m.metrics(now), s.metrics());
}

fn check<W: Window>(
    m: &Machine<W>,
    s: &CircuitBreaker<&MockClock, W, &Counters>,
    oracle: &Oracle,
    now: Instant,
    generation: u64,
    held: &[Held<'_, W>],
    probes: usize,
) {
    assert_eq!(s.clock().now(), now);
    assert_eq!(m.state_at(now), s.state(), "states differ");
    let metrics = m.metrics(now);
    assert_eq!(metrics, s.metrics(), "metrics differ");
    assert_eq!(metrics.state, m.state_at(now));
    if let Some((calls, failures, slow)) = oracle.stats(now) {
        let w = metrics.window;
        assert_eq!(
            (w.calls, w.failures, w.slow),
            (calls, failures, slow),
            "window vs oracle at {now:?}"
        );
    }
    if m.state() == State::HalfOpen {
        let live = held
            .iter()
            .filter(|h| h.probe && h.generation == generation)
            .count();
        assert!(live <= probes, "{live} probes in flight, {probes} allowed");
    }
}
