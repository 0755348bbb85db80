//! The pure state machine, and the transition functions the shared form reuses.

use core::time::Duration;

use super::config::{Config, HalfOpenVerdict, Policy};
use super::error::{ConfigError, Rejected, SnapshotError};
use super::window::{Rules, Sample, Window, WindowStats, rate_trips};
use super::{Metrics, Outcome, Snapshot, State};
use crate::time::{Instant, duration_to_nanos};

// ===== the control word =====
//
// The control state packs into one u64 so the shared form can CAS it whole. The counters
// of closed and half-open never live at once, so they share the payload bits:
//
// | bits   | field    | meaning                                                   |
// |--------|----------|-----------------------------------------------------------|
// | 0..3   | state    | a `code` below                                            |
// | 3..8   | openings | consecutive openings, saturating at 31 (open-time growth) |
// | 8..32  | payload  | closed and the other states: `consec` in 8..24, consecutive |
// |        |          | failures (saturating); half-open: `probes` in flight 8..14,  |
// |        |          | `ho_done` probes judged 14..20, of those `ho_bad` failed     |
// |        |          | 20..26 and `ho_slow` slow 26..32 (each <= MAX_PROBES = 63)  |
// | 32..64 | gen      | generation: +1 on every state change                      |
//
// The generation is 32 bits: a ticket's outcome is counted only in the generation that
// admitted it, so a stale outcome could be mistaken for a current one only after exactly
// 2^32 state changes while it was held (at a thousand state changes a second, 50 days).

pub(crate) const CLOSED: u8 = 0;
pub(crate) const OPEN: u8 = 1;
pub(crate) const HALF_OPEN: u8 = 2;
pub(crate) const FORCED_OPEN: u8 = 3;
pub(crate) const DISABLED: u8 = 4;
pub(crate) const METRICS_ONLY: u8 = 5;
/// Shared form only: the word says Open but the open-until instant is still being written
/// by the thread that tripped the breaker. Read as Open.
pub(crate) const OPENING: u8 = 6;

pub(crate) const MAX_OPENINGS: u8 = 31;
/// The most half-open probes (and successes to close) a breaker can be configured with: each
/// half-open counter has 6 bits of the control word.
pub(crate) const MAX_PROBES: u8 = 63;

pub(crate) fn state_code(s: State) -> u8 {
    match s {
        State::Closed => CLOSED,
        State::Open => OPEN,
        State::HalfOpen => HALF_OPEN,
        State::ForcedOpen => FORCED_OPEN,
        State::Disabled => DISABLED,
        State::MetricsOnly => METRICS_ONLY,
    }
}

pub(crate) fn code_state(c: u8) -> Option<State> {
    Some(match c {
        CLOSED => State::Closed,
        OPEN | OPENING => State::Open,
        HALF_OPEN => State::HalfOpen,
        FORCED_OPEN => State::ForcedOpen,
        DISABLED => State::Disabled,
        METRICS_ONLY => State::MetricsOnly,
        _ => return None,
    })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Ctrl {
    pub(crate) state: u8,
    pub(crate) openings: u8,
    pub(crate) generation: u32,
    /// Half-open: probes in flight.
    pub(crate) probes: u8,
    /// Half-open: probes that ended with an outcome (rate verdict: all of them; first
    /// failure: the successes).
    pub(crate) ho_done: u8,
    /// Half-open: of those, failures (rate verdict).
    pub(crate) ho_bad: u8,
    /// Half-open: of those, slow ones (rate verdict with a slow-call policy).
    pub(crate) ho_slow: u8,
    /// Closed: consecutive failures (saturating).
    pub(crate) consec: u16,
}

const SIX: u64 = 0b11_1111;

impl Ctrl {
    #[inline]
    pub(crate) const fn pack(self) -> u64 {
        let payload = if self.state == HALF_OPEN {
            (self.probes as u64 & SIX)
                | (self.ho_done as u64 & SIX) << 6
                | (self.ho_bad as u64 & SIX) << 12
                | (self.ho_slow as u64 & SIX) << 18
        } else {
            self.consec as u64
        };
        (self.state as u64 & 0b111)
            | (self.openings as u64 & 0b1_1111) << 3
            | payload << 8
            | (self.generation as u64) << 32
    }

    #[inline]
    pub(crate) const fn unpack(w: u64) -> Ctrl {
        let state = (w & 0b111) as u8;
        let payload = w >> 8 & 0xFF_FFFF;
        let half_open = state == HALF_OPEN;
        Ctrl {
            state,
            openings: (w >> 3 & 0b1_1111) as u8,
            generation: (w >> 32) as u32,
            probes: if half_open { (payload & SIX) as u8 } else { 0 },
            ho_done: if half_open {
                (payload >> 6 & SIX) as u8
            } else {
                0
            },
            ho_bad: if half_open {
                (payload >> 12 & SIX) as u8
            } else {
                0
            },
            ho_slow: if half_open {
                (payload >> 18 & SIX) as u8
            } else {
                0
            },
            consec: if half_open { 0 } else { payload as u16 },
        }
    }

    pub(crate) fn public_state(self) -> State {
        code_state(self.state).unwrap_or(State::Closed)
    }

    /// The same breaker in state `code`, one generation later, with the per-state counters
    /// cleared.
    #[inline]
    pub(crate) fn enter(self, code: u8) -> Ctrl {
        Ctrl {
            state: code,
            openings: self.openings,
            generation: self.generation.wrapping_add(1),
            ..Ctrl::default()
        }
    }

    /// Opening: one more consecutive opening (saturating).
    #[inline]
    pub(crate) fn trip(self, code: u8) -> Ctrl {
        Ctrl {
            openings: (self.openings + 1).min(MAX_OPENINGS),
            ..self.enter(code)
        }
    }

    /// Closing: the open-time growth starts over.
    #[inline]
    pub(crate) fn close(self) -> Ctrl {
        Ctrl {
            openings: 0,
            ..self.enter(CLOSED)
        }
    }
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

/// Does admitting in this state read `until`? (Open, and half-open with a maximum time, where
/// it holds the instant half-open began.)
#[inline]
pub(crate) const fn admit_reads_until(code: u8, p: &Policy) -> bool {
    code == OPEN || (code == HALF_OPEN && p.limits_half_open())
}

/// Has a half-open breaker outlived its maximum time? `since` is the instant half-open began:
/// its first probe's admission.
#[inline]
pub(crate) const fn half_open_expired(p: &Policy, since: Instant, now: Instant) -> bool {
    p.limits_half_open() && now.as_nanos() >= p.half_open_end(since).as_nanos()
}

/// Does admitting in this state let the call through without changing anything? (Closed,
/// disabled, metrics-only: [`admit`] answers `(Admit::Pass, c)`.)
#[inline]
pub(crate) const fn passes_unchanged(code: u8) -> bool {
    matches!(code, CLOSED | DISABLED | METRICS_ONLY)
}

/// Admission: the decision and the next control word. `until` is the end of the (last) open
/// time. A half-open breaker past its maximum time re-opens here: the returned state is
/// `OPEN` with a new generation, and the rejection carries the new open time's end.
#[inline(always)]
pub(crate) fn admit(c: Ctrl, p: &Policy, now: Instant, until: Instant) -> (Admit, Ctrl) {
    match c.state {
        CLOSED | DISABLED | METRICS_ONLY => (Admit::Pass, c),
        OPEN if now >= until => (
            Admit::Probe,
            Ctrl {
                probes: 1,
                ..c.enter(HALF_OPEN)
            },
        ),
        OPEN => (
            Admit::Reject(Rejected {
                retry_at: Some(until),
            }),
            c,
        ),
        OPENING => {
            // The thread that tripped the breaker is writing `until` right now; it will be
            // about `now + open time` (ours and its `now` differ by the race window).
            let d = p.open_duration(c.openings, c.generation as u64);
            (
                Admit::Reject(Rejected {
                    retry_at: Some(now.saturating_add(Duration::from_nanos(d))),
                }),
                c,
            )
        }
        HALF_OPEN if half_open_expired(p, until, now) => {
            let next = c.trip(OPEN);
            (
                Admit::Reject(Rejected {
                    retry_at: Some(open_until(next, p, now)),
                }),
                next,
            )
        }
        HALF_OPEN => {
            let taken = match p.verdict {
                HalfOpenVerdict::FirstFailure => c.probes,
                HalfOpenVerdict::Rate => c.probes + c.ho_done,
            };
            if taken < p.probes {
                (
                    Admit::Probe,
                    Ctrl {
                        probes: c.probes + 1,
                        ..c
                    },
                )
            } else {
                // Every probe slot is taken: a call could pass as soon as one ends, which may
                // be at once. `now` is the honest earliest instant; retry policies add their
                // own backoff to it.
                (
                    Admit::Reject(Rejected {
                        retry_at: Some(now),
                    }),
                    c,
                )
            }
        }
        _ => (Admit::Reject(Rejected { retry_at: None }), c), // forced open
    }
}

/// Does a recorded outcome in this state go into the window?
#[inline]
pub(crate) const fn records_window(code: u8) -> bool {
    matches!(code, CLOSED | METRICS_ONLY)
}

/// Settling a call: the next control word after the call admitted in generation `generation`
/// (as a probe or not) ended with `outcome`. `stats` is the window after recording it. The
/// returned state is `OPEN` for a trip; the shared form substitutes `OPENING`. `rules` are
/// the rate settings of a breaker with a window; `expired`: the breaker is half-open past
/// its maximum time (see [`half_open_expired`]), so a probe's end re-opens it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn settle(
    c: Ctrl,
    p: &Policy,
    rules: Option<&Rules>,
    generation: u32,
    probe: bool,
    outcome: Outcome,
    slow: bool,
    stats: WindowStats,
    expired: bool,
) -> Ctrl {
    if c.generation != generation {
        return c; // late: the breaker changed state since this call was admitted
    }
    match (c.state, probe) {
        (CLOSED, false) => match outcome {
            Outcome::Ignored => c,
            Outcome::Success if c.consec == 0 && !rate_trips(rules, stats) => c,
            Outcome::Success if rate_trips(rules, stats) => c.trip(OPEN),
            Outcome::Success => Ctrl { consec: 0, ..c },
            Outcome::Failure => {
                let consec = c.consec.saturating_add(1);
                let by_count = p.consecutive_failures != 0 && consec >= p.consecutive_failures;
                if by_count || rate_trips(rules, stats) {
                    c.trip(OPEN)
                } else {
                    Ctrl { consec, ..c }
                }
            }
        },
        (HALF_OPEN, true) if expired => c.trip(OPEN),
        (HALF_OPEN, true) => {
            let released = Ctrl {
                probes: c.probes.saturating_sub(1),
                ..c
            };
            let slow = slow && rules.is_some_and(|r| r.slow_rate != 0);
            let failure = match outcome {
                Outcome::Ignored => return released,
                Outcome::Failure => true,
                Outcome::Success => false,
            };
            match p.verdict {
                HalfOpenVerdict::FirstFailure if failure || slow => c.trip(OPEN),
                HalfOpenVerdict::FirstFailure => {
                    let ok = released.ho_done.saturating_add(1);
                    if ok >= p.successes_to_close {
                        c.close()
                    } else {
                        Ctrl {
                            ho_done: ok,
                            ..released
                        }
                    }
                }
                HalfOpenVerdict::Rate => {
                    let next = Ctrl {
                        ho_done: released.ho_done + 1,
                        ho_bad: released.ho_bad + failure as u8,
                        ho_slow: released.ho_slow + slow as u8,
                        ..released
                    };
                    if next.ho_done < p.probes {
                        next
                    } else if rate_verdict_trips(rules, p, next) {
                        c.trip(OPEN)
                    } else {
                        c.close()
                    }
                }
            }
        }
        _ => c, // metrics-only, disabled, forced open: no transitions
    }
}

/// The rate verdict over all of half-open's probes (`c.ho_done` of them): the failure rate
/// and the slow rate are each judged against their own threshold (`>=` trips, as in the
/// closed state; without a failure-rate policy, only all probes failing), and fewer than
/// `successes_to_close` successful probes re-open too.
fn rate_verdict_trips(rules: Option<&Rules>, p: &Policy, c: Ctrl) -> bool {
    let done = c.ho_done as u32;
    let over = |count: u8, percent: u8| percent != 0 && count as u32 * 100 >= percent as u32 * done;
    let failure_rate = match rules {
        Some(r) if r.failure_rate != 0 => r.failure_rate,
        _ => 100,
    };
    let slow_rate = rules.map_or(0, |r| r.slow_rate);
    over(c.ho_bad, failure_rate)
        || over(c.ho_slow, slow_rate)
        || c.ho_done - c.ho_bad < p.successes_to_close
}

/// The end of the open time for a trip into `c` at `now`.
pub(crate) fn open_until(c: Ctrl, p: &Policy, now: Instant) -> Instant {
    now.saturating_add(Duration::from_nanos(
        p.open_duration(c.openings, c.generation as u64),
    ))
}

/// Is a call that started at `started` and ended at `now` slow?
#[inline]
pub(crate) fn is_slow(rules: Option<&Rules>, started: Instant, now: Instant) -> bool {
    rules.is_some_and(|r| {
        r.slow_rate != 0 && now.as_nanos().saturating_sub(started.as_nanos()) >= r.slow_threshold
    })
}

/// Are calls timed (is there a slow-call policy)? Constant `false` without a window.
#[inline(always)]
pub(crate) fn times_calls(rules: Option<&Rules>) -> bool {
    rules.is_some_and(|r| r.slow_rate != 0)
}

// ===== Machine =====

/// The pass a [`Machine`] gives an admitted call: hand it back with the outcome.
///
/// Not `Clone`: each admitted call is settled once. A ticket that is never handed back holds
/// its half-open probe slot: use [`Machine::release`] for a call that was abandoned.
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
/// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
/// let ticket = m.try_acquire(Instant::ZERO).unwrap();
/// assert!(!ticket.is_probe());
/// m.on_success(ticket, Instant::ZERO);
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "hand the ticket back with on_success / on_failure / release"]
pub struct Ticket {
    pub(crate) generation: u32,
    pub(crate) probe: bool,
    pub(crate) started: Instant,
}

impl Ticket {
    /// `true` if this call is a half-open probe.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// assert!(!t.is_probe());
    /// # m.release(t);
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The pure circuit breaker: `&mut self`, no clock, no atomics. `now` is an argument of every
/// call that needs time; an instant earlier than a previous one is read as "no time passed".
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
/// use core::time::Duration;
///
/// let mut m = Machine::<NoWindow>::new(
///     Config::new().consecutive_failures(2).open_for(Duration::from_secs(5)),
/// )
/// .unwrap();
/// let t0 = Instant::from_secs(1);
/// for _ in 0..2 {
///     let ticket = m.try_acquire(t0).unwrap();
///     m.on_failure(ticket, t0);
/// }
/// assert_eq!(m.state(), State::Open);
/// assert_eq!(m.try_acquire(t0).unwrap_err().retry_at, Some(Instant::from_secs(6)));
///
/// let probe = m.try_acquire(Instant::from_secs(6)).unwrap();
/// assert!(probe.is_probe());
/// assert_eq!(m.state(), State::HalfOpen);
/// m.on_success(probe, Instant::from_secs(6));
/// assert_eq!(m.state(), State::Closed);
/// ```
#[derive(Debug)]
pub struct Machine<W: Window = super::NoWindow> {
    policy: Policy,
    rules: W::Rules,
    ctrl: Ctrl,
    until: Instant,
    window: W::State,
}

impl<W: Window> Machine<W> {
    /// A closed breaker.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration the breaker cannot run with.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, ConfigError, Machine, NoWindow};
    /// assert_eq!(Machine::<NoWindow>::new(Config::new().failure_rate(50)).unwrap_err(), ConfigError::NoWindow);
    /// ```
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        let (policy, rules) = validate::<W>(&cfg)?;
        Ok(Machine {
            policy,
            rules,
            ctrl: Ctrl::default(),
            until: Instant::ZERO,
            window: W::new_state(),
        })
    }

    /// The configuration it runs with. The machine stores a compact form, so settings its
    /// window kind does not use (the rate settings, for [`NoWindow`](super::NoWindow)) read
    /// as their defaults, and durations of `u64::MAX` nanoseconds or more as [`Duration::MAX`].
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{Config, Machine, NoWindow};
    /// let cfg = Config::new().consecutive_failures(2);
    /// assert_eq!(Machine::<NoWindow>::new(cfg).unwrap().config(), cfg);
    /// ```
    pub fn config(&self) -> Config {
        Config::from_parts(&self.policy, W::rate_rules(&self.rules))
    }

    /// The state. An open breaker whose time is up stays [`State::Open`] until a call
    /// arrives (the transition to half-open is lazy: no timer runs).
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{Config, Machine, NoWindow, State};
    /// let m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2)).unwrap();
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn state(&self) -> State {
        self.ctrl.public_state()
    }

    /// Asks to make a call at `now`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open (with the instant it could pass), forced open, or
    /// half-open with every probe slot taken.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert!(m.try_acquire(Instant::ZERO).is_err());
    /// ```
    pub fn try_acquire(&mut self, now: Instant) -> Result<Ticket, Rejected> {
        let (decision, next) = admit(self.ctrl, &self.policy, now, self.until);
        if decision == Admit::Probe && self.ctrl.state == OPEN {
            // Half-open begins with this first probe: its maximum time counts from here.
            self.until = self.until.max(now);
        }
        if let Admit::Reject(Rejected {
            retry_at: Some(until),
        }) = decision
            && next.generation != self.ctrl.generation
        {
            self.until = until; // re-opened: half-open past its maximum time
        }
        self.ctrl = next;
        match decision {
            Admit::Pass | Admit::Probe => Ok(Ticket {
                generation: next.generation,
                probe: decision == Admit::Probe,
                started: now,
            }),
            Admit::Reject(r) => Err(r),
        }
    }

    /// The call of `ticket` succeeded at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_success(t, Instant::from_millis(3));
    /// # assert_eq!(m.state(), bulwark::circuit_breaker::State::Closed);
    /// ```
    pub fn on_success(&mut self, ticket: Ticket, now: Instant) {
        self.record(ticket, Outcome::Success, now)
    }

    /// The call of `ticket` failed at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state(), State::Open);
    /// ```
    pub fn on_failure(&mut self, ticket: Ticket, now: Instant) {
        self.record(ticket, Outcome::Failure, now)
    }

    /// Abandons the call of `ticket` without an outcome (cancelled): a probe slot is given
    /// back, nothing is recorded.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.release(t);
    /// assert_eq!(m.metrics(Instant::ZERO).window.calls, 0);
    /// ```
    pub fn release(&mut self, ticket: Ticket) {
        self.ctrl = settle(
            self.ctrl,
            &self.policy,
            W::rate_rules(&self.rules),
            ticket.generation,
            ticket.probe,
            Outcome::Ignored,
            false,
            WindowStats::default(),
            false,
        );
    }

    /// Settles the call of `ticket` with `outcome` at `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Outcome, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.record(t, Outcome::Ignored, Instant::ZERO); // neither a success nor a failure
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        let rules = W::rate_rules(&self.rules);
        let slow = is_slow(rules, ticket.started, now);
        let c = self.ctrl;
        let stats = if c.generation == ticket.generation
            && records_window(c.state)
            && outcome != Outcome::Ignored
        {
            W::record(
                &mut self.window,
                &self.rules,
                now,
                Sample {
                    failure: outcome == Outcome::Failure,
                    slow,
                },
            )
        } else {
            WindowStats::default()
        };
        let expired = c.state == HALF_OPEN && half_open_expired(&self.policy, self.until, now);
        let next = settle(
            c,
            &self.policy,
            rules,
            ticket.generation,
            ticket.probe,
            outcome,
            slow,
            stats,
            expired,
        );
        if next.state == OPEN && c.state != OPEN {
            self.until = open_until(next, &self.policy, now);
        }
        if next.state == CLOSED && c.state != CLOSED {
            W::reset(&mut self.window);
        }
        self.ctrl = next;
    }

    /// Forces the breaker open until another mode is chosen; calls are rejected with no
    /// retry instant.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.force_open();
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, None);
    /// ```
    pub fn force_open(&mut self) {
        self.ctrl = self.ctrl.enter(FORCED_OPEN);
    }

    /// Forces the breaker closed: every call passes, nothing is measured.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.disable();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.state(), State::Disabled);
    /// ```
    pub fn disable(&mut self) {
        self.ctrl = self.ctrl.enter(DISABLED);
    }

    /// Lets every call pass while still measuring; never opens.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.metrics_only();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!((m.state(), m.metrics(Instant::ZERO).consecutive_failures), (State::MetricsOnly, 0));
    /// ```
    pub fn metrics_only(&mut self) {
        self.ctrl = self.ctrl.enter(METRICS_ONLY);
    }

    /// Back to a fresh closed breaker (window emptied, open-time growth reset).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// m.force_open();
    /// m.reset();
    /// assert_eq!(m.state(), State::Closed);
    /// ```
    pub fn reset(&mut self) {
        self.ctrl = self.ctrl.close();
        W::reset(&mut self.window);
    }

    /// The state, the run of failures and the window as of `now`.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(2)).unwrap();
    /// let t = m.try_acquire(Instant::ZERO).unwrap();
    /// m.on_failure(t, Instant::ZERO);
    /// assert_eq!(m.metrics(Instant::ZERO).consecutive_failures, 1);
    /// ```
    pub fn metrics(&self, now: Instant) -> Metrics {
        metrics(self.ctrl, W::stats(&self.window, &self.rules, now))
    }

    /// The durable state as of `now` (see [`Snapshot`]).
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, State}};
    /// # let m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
    /// assert_eq!(m.snapshot(Instant::ZERO).state, State::Closed);
    /// ```
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        snapshot(self.ctrl, self.until, now)
    }

    /// Restores a [`Snapshot`] taken earlier (perhaps by another process), at `now` on this
    /// machine's clock. The window starts empty. The time left open is cut to the longest
    /// open time this configuration can give.
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] for a snapshot this breaker could not have written (a run of
    /// failures at or above the threshold, or outside the closed state; time left open in
    /// another state). The breaker is then left as it was.
    ///
    /// ```
    /// # use bulwark::{Instant, circuit_breaker::{Config, Machine, NoWindow, Snapshot, SnapshotError, State}};
    /// # use core::time::Duration;
    /// let cfg = Config::new().consecutive_failures(3).open_for(Duration::from_secs(30));
    /// let mut m = Machine::<NoWindow>::new(cfg).unwrap();
    /// let s = Snapshot { state: State::Open, consecutive_failures: 0, openings: 1, open_remaining: Duration::MAX };
    /// m.restore(s, Instant::ZERO).unwrap();
    /// assert_eq!(m.try_acquire(Instant::ZERO).unwrap_err().retry_at, Some(Instant::from_secs(30)));
    ///
    /// let bad = Snapshot { state: State::Closed, consecutive_failures: 7, openings: 0, open_remaining: Duration::ZERO };
    /// assert_eq!(m.restore(bad, Instant::ZERO), Err(SnapshotError::ConsecutiveFailures));
    /// assert_eq!(m.state(), State::Open); // unchanged
    /// ```
    pub fn restore(&mut self, s: Snapshot, now: Instant) -> Result<(), SnapshotError> {
        let s = checked_snapshot(s, &self.policy)?;
        let (ctrl, until) = restored(self.ctrl, s, now);
        self.ctrl = ctrl;
        self.until = until;
        W::reset(&mut self.window);
        Ok(())
    }
}

/// Validates `cfg` for window `W`; what the breaker stores on success.
pub(crate) fn validate<W: Window>(cfg: &Config) -> Result<(Policy, W::Rules), ConfigError> {
    cfg.validate(W::MEASURES)?;
    Ok((cfg.policy(), W::rules(cfg)?))
}

pub(crate) fn metrics(c: Ctrl, window: WindowStats) -> Metrics {
    Metrics {
        state: c.public_state(),
        consecutive_failures: c.consec as u32,
        window,
    }
}

pub(crate) fn snapshot(c: Ctrl, until: Instant, now: Instant) -> Snapshot {
    let state = c.public_state();
    Snapshot {
        state,
        consecutive_failures: c.consec,
        openings: c.openings,
        open_remaining: if state == State::Open {
            until.saturating_duration_since(now)
        } else {
            Duration::ZERO
        },
    }
}

/// Checks a snapshot against the policy `p` before it is restored: what cannot be true of a
/// snapshot this breaker wrote is rejected, what can be bounded is (the time left open is cut
/// to the longest open time `p` can give, the openings to the counter's 31).
pub(crate) fn checked_snapshot(s: Snapshot, p: &Policy) -> Result<Snapshot, SnapshotError> {
    let closed = s.state == State::Closed;
    if s.consecutive_failures != 0
        && (!closed
            || (p.consecutive_failures != 0 && s.consecutive_failures >= p.consecutive_failures))
    {
        // Outside closed there is no run of failures; in closed, a run at the threshold
        // would have opened the breaker.
        return Err(SnapshotError::ConsecutiveFailures);
    }
    if s.state != State::Open && !s.open_remaining.is_zero() {
        return Err(SnapshotError::OpenRemaining);
    }
    Ok(Snapshot {
        openings: s.openings.min(MAX_OPENINGS),
        open_remaining: s.open_remaining.min(Duration::from_nanos(p.longest_open())),
        ..s
    })
}

/// The control word and open-until instant that a checked `s` restores to, from `c`.
pub(crate) fn restored(c: Ctrl, s: Snapshot, now: Instant) -> (Ctrl, Instant) {
    let code = match s.state {
        State::HalfOpen => OPEN, // probes in flight are not carried over: probe again
        other => state_code(other),
    };
    let mut next = c.enter(code);
    next.openings = s.openings.min(MAX_OPENINGS);
    next.consec = if code == CLOSED {
        s.consecutive_failures
    } else {
        0
    };
    let remaining = if s.state == State::Open {
        duration_to_nanos(s.open_remaining)
    } else {
        0
    };
    (next, now.saturating_add(Duration::from_nanos(remaining)))
}

#[cfg(test)]
mod tests {
    use super::super::{CountWindow, NoWindow, TimeWindow};
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn fail<W: Window>(m: &mut Machine<W>, now: Instant) {
        let t = m.try_acquire(now).unwrap();
        m.on_failure(t, now);
    }

    fn succeed<W: Window>(m: &mut Machine<W>, now: Instant) {
        let t = m.try_acquire(now).unwrap();
        m.on_success(t, now);
    }

    #[test]
    fn ctrl_packs_losslessly() {
        let half_open = Ctrl {
            state: HALF_OPEN,
            openings: 31,
            generation: u32::MAX,
            probes: 63,
            ho_done: 62,
            ho_bad: 9,
            ho_slow: 63,
            consec: 0,
        };
        assert_eq!(Ctrl::unpack(half_open.pack()), half_open);
        for state in [CLOSED, OPEN, OPENING, FORCED_OPEN, DISABLED, METRICS_ONLY] {
            let c = Ctrl {
                state,
                openings: 17,
                generation: 0xDEAD_BEEF,
                consec: 65535,
                ..Ctrl::default()
            };
            assert_eq!(Ctrl::unpack(c.pack()), c);
        }
        assert_eq!(Ctrl::unpack(0), Ctrl::default());
    }

    #[test]
    fn consecutive_failures_trip_on_the_nth_and_success_resets() {
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(3)).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(1));
        succeed(&mut m, at(2));
        fail(&mut m, at(3));
        fail(&mut m, at(4));
        assert_eq!(m.state(), State::Closed);
        fail(&mut m, at(5));
        assert_eq!(m.state(), State::Open);
        assert_eq!(
            m.try_acquire(at(6)),
            Err(Rejected {
                retry_at: Some(at(30_005))
            })
        );
    }

    #[test]
    fn count_window_rate_waits_for_minimum_calls() {
        let cfg = Config::new().failure_rate(50).minimum_calls(4);
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(0));
        fail(&mut m, at(0)); // 100 % but only 3 calls: not known yet
        assert_eq!(m.state(), State::Closed);
        succeed(&mut m, at(0)); // 3 of 4 = 75 % >= 50 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn rate_exactly_at_threshold_trips() {
        let cfg = Config::new().failure_rate(50).minimum_calls(2);
        let mut m = Machine::<CountWindow<2>>::new(cfg).unwrap();
        succeed(&mut m, at(0));
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn slow_calls_trip_even_when_successful() {
        let cfg = Config::new()
            .slow_calls(Duration::from_millis(100), 100)
            .minimum_calls(2);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        let t = m.try_acquire(at(0)).unwrap();
        m.on_success(t, at(100)); // exactly the threshold: slow
        let t = m.try_acquire(at(100)).unwrap();
        m.on_success(t, at(150)); // fast
        assert_eq!(m.state(), State::Closed);
        let t = m.try_acquire(at(150)).unwrap();
        m.on_success(t, at(300));
        assert_eq!(m.metrics(at(300)).window.slow, 2);
        assert_eq!(m.state(), State::Closed); // 2 of 3 slow < 100 %
        let cfg = Config::new()
            .slow_calls(Duration::from_millis(100), 60)
            .minimum_calls(3);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        for i in 0..2u64 {
            let t = m.try_acquire(at(i * 1000)).unwrap();
            m.on_success(t, at(i * 1000 + 500));
        }
        succeed(&mut m, at(5000)); // 2 of 3 = 66 % >= 60 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn time_window_forgets_old_failures() {
        let cfg = Config::new()
            .failure_rate(50)
            .minimum_calls(3)
            .time_window(Duration::from_secs(10));
        let mut m = Machine::<TimeWindow<10>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(500));
        // 10 s later both failures have left the window.
        succeed(&mut m, at(10_000));
        succeed(&mut m, at(10_000));
        fail(&mut m, at(10_001));
        assert_eq!(m.state(), State::Closed); // 1 of 3: the two old failures are gone
        fail(&mut m, at(10_002)); // 2 of 4 = 50 %
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn half_open_admits_n_probes_and_needs_m_successes() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .half_open(2, 3);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p1 = m.try_acquire(at(1000)).unwrap();
        let p2 = m.try_acquire(at(1000)).unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(
            m.try_acquire(at(1000)),
            Err(Rejected {
                retry_at: Some(at(1000))
            })
        );
        m.on_success(p1, at(1001));
        let p3 = m.try_acquire(at(1001)).unwrap(); // the slot came back
        m.on_success(p2, at(1002));
        assert_eq!(m.state(), State::HalfOpen);
        m.on_success(p3, at(1003));
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn failed_probe_reopens_with_growing_time() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(2, Duration::from_secs(3));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        assert_eq!(m.try_acquire(at(0)).unwrap_err().retry_at, Some(at(1000)));
        fail(&mut m, at(1000)); // probe fails: 2 s
        assert_eq!(
            m.try_acquire(at(1000)).unwrap_err().retry_at,
            Some(at(3000))
        );
        fail(&mut m, at(3000)); // 4 s, capped at 3 s
        assert_eq!(
            m.try_acquire(at(3000)).unwrap_err().retry_at,
            Some(at(6000))
        );
        succeed(&mut m, at(6000)); // closes: growth starts over
        fail(&mut m, at(7000));
        assert_eq!(
            m.try_acquire(at(7000)).unwrap_err().retry_at,
            Some(at(8000))
        );
    }

    #[test]
    fn half_open_past_its_maximum_time_reopens_and_late_probes_are_dropped() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(2, Duration::from_secs(60))
            .max_half_open(Duration::from_secs(5));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0)); // open until 1 s
        let hung = m.try_acquire(at(1000)).unwrap(); // the probe hangs
        // Its slot is taken (a call may pass once it ends: at once, for all we know);
        // half-open lasts from its first probe, 1 s, until 1 s + 5 s.
        assert_eq!(
            m.try_acquire(at(5999)),
            Err(Rejected {
                retry_at: Some(at(5999))
            })
        );
        // At 6 s the breaker re-opens: the second opening, 2 s.
        assert_eq!(
            m.try_acquire(at(6000)).unwrap_err().retry_at,
            Some(at(8000))
        );
        assert_eq!(m.state(), State::Open);
        m.on_success(hung, at(6500)); // late: dropped
        assert_eq!(m.state(), State::Open);
        // A probe that ends in time decides as usual.
        let p = m.try_acquire(at(8000)).unwrap();
        m.on_success(p, at(12_999)); // half-open until 8 s + 5 s
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn a_probe_ending_after_the_maximum_time_reopens_instead_of_closing() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .max_half_open(Duration::from_secs(5));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(3000)).unwrap(); // the first call comes late: 3 s
        m.on_success(p, at(8000)); // 3 s + 5 s: too late to close
        assert_eq!(m.state(), State::Open);
        assert_eq!(
            m.try_acquire(at(8000)).unwrap_err().retry_at,
            Some(at(9000))
        );
        // Without a maximum, the same slow probe closes the breaker.
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(30_000)).unwrap();
        m.on_success(p, at(3_600_000));
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn config_round_trips_through_the_stored_form() {
        let full = Config::new()
            .consecutive_failures(7)
            .failure_rate(40)
            .slow_calls(Duration::from_millis(250), 70)
            .minimum_calls(5)
            .time_window(Duration::from_secs(9))
            .open_for(Duration::from_secs(3))
            .open_growth(3, Duration::from_secs(100))
            .open_jitter(15)
            .half_open(4, 2)
            .half_open_verdict(HalfOpenVerdict::Rate)
            .max_half_open(Duration::from_secs(20))
            .seed(99);
        assert_eq!(
            Machine::<CountWindow<10>>::new(full).unwrap().config(),
            full
        );
        assert_eq!(Machine::<TimeWindow<3>>::new(full).unwrap().config(), full);
        // Without a window the rate settings are not stored: they read as their defaults.
        let plain = Config::new()
            .consecutive_failures(2)
            .minimum_calls(7)
            .time_window(Duration::from_secs(5));
        assert_eq!(
            Machine::<NoWindow>::new(plain).unwrap().config(),
            Config::new().consecutive_failures(2)
        );
        // Durations of u64::MAX nanoseconds or more read back as Duration::MAX.
        let long = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::MAX);
        assert_eq!(Machine::<NoWindow>::new(long).unwrap().config(), long);
        let past_u64 = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(u64::MAX / 1_000_000_000 + 1));
        let read = Machine::<NoWindow>::new(past_u64).unwrap().config();
        assert_eq!(
            (read.open_base, read.open_max),
            (Duration::MAX, Duration::MAX)
        );
    }

    #[test]
    fn released_probe_gives_its_slot_back() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::ZERO);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let p = m.try_acquire(at(0)).unwrap();
        assert!(m.try_acquire(at(0)).is_err());
        m.release(p);
        let p = m.try_acquire(at(0)).unwrap();
        let t = Ticket {
            generation: p.generation,
            probe: true,
            started: at(0),
        };
        m.record(p, Outcome::Ignored, at(0));
        assert_eq!(m.state(), State::HalfOpen);
        m.on_success(t, at(0)); // hand-built duplicate: probes saturate, no underflow
    }

    #[test]
    fn late_outcomes_are_dropped() {
        let cfg = Config::new().consecutive_failures(1);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        let early = m.try_acquire(at(0)).unwrap();
        fail(&mut m, at(1)); // opens
        m.reset(); // closed again, new generation
        m.on_failure(early, at(2)); // from the old generation: not counted against the new state
        assert_eq!(m.state(), State::Closed);
        assert_eq!(m.metrics(at(2)).consecutive_failures, 0);
    }

    #[test]
    fn rate_verdict_judges_all_probes() {
        let cfg = Config::new()
            .failure_rate(50)
            .minimum_calls(1)
            .open_for(Duration::from_secs(1))
            .half_open(4, 2)
            .half_open_verdict(HalfOpenVerdict::Rate);
        let mut m = Machine::<CountWindow<4>>::new(cfg).unwrap();
        fail(&mut m, at(0));
        let probes: [Ticket; 4] = core::array::from_fn(|_| m.try_acquire(at(1000)).unwrap());
        assert!(m.try_acquire(at(1000)).is_err()); // exactly 4 in all
        let [a, b, c, d] = probes;
        m.on_failure(a, at(1000));
        assert_eq!(m.state(), State::HalfOpen); // the first failure does not decide
        m.on_success(b, at(1000));
        m.on_success(c, at(1000));
        m.on_success(d, at(1000));
        assert_eq!(m.state(), State::Closed); // 1 of 4 < 50 %
    }

    #[test]
    fn clock_backwards_never_wedges() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(10));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(50_000));
        // The clock steps back: still open, same retry instant, no panic.
        assert_eq!(m.try_acquire(at(0)).unwrap_err().retry_at, Some(at(60_000)));
        let p = m.try_acquire(at(60_000)).unwrap();
        m.on_success(p, at(1)); // ends "before" it started: zero duration, not slow
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn huge_instants_saturate() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::MAX);
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, Instant::MAX);
        assert_eq!(m.try_acquire(Instant::MAX).map(|t| t.is_probe()), Ok(true));
    }

    #[test]
    fn modes_and_reset() {
        let mut m = Machine::<NoWindow>::new(Config::new().consecutive_failures(1)).unwrap();
        m.metrics_only();
        fail(&mut m, at(0));
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::MetricsOnly);
        m.force_open();
        assert_eq!(m.try_acquire(at(0)), Err(Rejected { retry_at: None }));
        m.disable();
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Disabled); // a failure changes nothing
        m.reset();
        fail(&mut m, at(0));
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn snapshot_round_trip_keeps_growth_and_remaining_time() {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .open_growth(10, Duration::from_secs(1000));
        let mut m = Machine::<NoWindow>::new(cfg).unwrap();
        fail(&mut m, at(0));
        fail(&mut m, at(1000)); // second opening: 10 s
        let s = Snapshot::from_bytes(&m.snapshot(at(4000)).to_bytes()).unwrap();
        assert_eq!((s.openings, s.open_remaining), (2, Duration::from_secs(7)));
        let mut r = Machine::<NoWindow>::new(cfg).unwrap();
        r.restore(s, at(100)).unwrap();
        assert_eq!(r.try_acquire(at(100)).unwrap_err().retry_at, Some(at(7100)));
        fail(&mut r, at(7100)); // the probe fails: third opening, 100 s
        assert_eq!(
            r.try_acquire(at(7100)).unwrap_err().retry_at,
            Some(at(107_100))
        );
    }
}
