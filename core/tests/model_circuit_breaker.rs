//! Model test: the pure machine, the shared lock-free form and a naive reference model agree
//! on random sequences of (advance, acquire, settle, drop, reset, force-open, open-for and
//! half-open by hand). The machine
//! and the shared form run one driver over one state type, so this compares its two stores
//! (plain fields behind `&mut`, the encoded atomic word behind `&self`) with each other and
//! with a model written without either.

use std::collections::VecDeque;

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, HalfOpenLimit, Machine, Outcome, Permit, State, Ticket,
    TransitionError,
};
use bulwark::{Clock, Instant, MockClock};
use core::time::Duration;
use proptest::prelude::*;

const N: usize = 6;

#[derive(Clone, Debug)]
struct Params {
    consecutive: Option<u32>,
    failure_rate: Option<u8>,
    slow: Option<(u64, u8)>, // (threshold ms, percent)
    minimum_calls: u32,
    open_ms: u64,
    /// The open-time growth `growth / divisor` (at least 1).
    growth: u32,
    divisor: u32,
    max_ms: u64,
    probes: u32,
    successes: u32,
    /// gobreaker's `MaxRequests`: probes counted per half-open episode, not in flight.
    per_episode: bool,
    max_half_open_ms: Option<u64>,
}

impl Params {
    fn config(&self) -> Config {
        let mut c = Config::new()
            .minimum_calls(self.minimum_calls)
            .open_for(Duration::from_millis(self.open_ms))
            .open_growth_ratio(
                self.growth,
                self.divisor,
                Duration::from_millis(self.max_ms),
            )
            .half_open(self.probes, self.successes);
        if self.per_episode {
            c = c.half_open_limit(HalfOpenLimit::PerEpisode);
        }
        if let Some(n) = self.consecutive {
            c = c.consecutive_failures(n);
        }
        if let Some(p) = self.failure_rate {
            c = c.failure_rate(p);
        }
        if let Some((ms, p)) = self.slow {
            c = c.slow_calls(Duration::from_millis(ms), p);
        }
        if let Some(ms) = self.max_half_open_ms {
            c = c.max_half_open(Duration::from_millis(ms));
        }
        c
    }

    /// Is a half-open breaker that began at `since` (its first probe) past its maximum time?
    fn half_open_expired(&self, since: u64, now: u64) -> bool {
        self.max_half_open_ms
            .is_some_and(|ms| now >= since + ms * 1_000_000)
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        proptest::option::of(1u32..5),
        proptest::option::of(1u8..=100),
        proptest::option::of((1u64..50, 1u8..=100)),
        1u32..=N as u32,
        (0u64..100, (0u32..4, 1u32..3), 0u64..400),
        (1u32..4, 1u32..4, any::<bool>()),
        proptest::option::of(1u64..200),
    )
        .prop_filter("needs a trip policy", |(c, f, s, ..)| {
            c.is_some() || f.is_some() || s.is_some()
        })
        .prop_map(
            |(
                consecutive,
                failure_rate,
                slow,
                minimum_calls,
                (open_ms, (extra_growth, divisor), extra),
                (probes, successes, per_episode),
                max_half_open_ms,
            )| {
                Params {
                    consecutive,
                    failure_rate,
                    slow,
                    minimum_calls,
                    open_ms,
                    growth: divisor + extra_growth,
                    divisor,
                    max_ms: open_ms + extra,
                    probes,
                    successes,
                    // A per-episode limit needs no more successes than probes.
                    per_episode: per_episode && successes <= probes,
                    max_half_open_ms,
                }
            },
        )
}

#[path = "support/breaker_ops.rs"]
mod breaker_ops;
use breaker_ops::Op;

/// Sequences with time moving in milliseconds.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    breaker_ops::ops(0u64..120, 120)
}

/// The reference: the documented rules, written the plain way.
#[derive(Debug, PartialEq, Clone, Copy)]
enum MState {
    Closed,
    Open,
    HalfOpen,
    ForcedOpen,
}

struct Model {
    p: Params,
    state: MState,
    epoch: u64,
    consec: u32,
    window: VecDeque<(bool, bool)>,
    until: u64,
    openings: u32,
    probes: u32,
    ok: u32,
}

#[derive(Debug, Clone, Copy)]
struct MTicket {
    epoch: u64,
    probe: bool,
    started: u64,
}

impl Model {
    fn new(p: Params) -> Self {
        Model {
            p,
            state: MState::Closed,
            epoch: 0,
            consec: 0,
            window: VecDeque::new(),
            until: 0,
            openings: 0,
            probes: 0,
            ok: 0,
        }
    }

    fn acquire(&mut self, now: u64) -> Result<MTicket, Option<u64>> {
        match self.state {
            MState::Closed => Ok(MTicket {
                epoch: self.epoch,
                probe: false,
                started: now,
            }),
            MState::Open if now >= self.until => {
                self.state = MState::HalfOpen;
                self.until = now; // half-open begins: its maximum time counts from here
                self.epoch += 1;
                self.probes = 1;
                self.ok = 0;
                Ok(MTicket {
                    epoch: self.epoch,
                    probe: true,
                    started: now,
                })
            }
            MState::Open => Err(Some(self.until)),
            MState::HalfOpen if self.p.half_open_expired(self.until, now) => {
                self.open(now);
                Err(Some(self.until))
            }
            MState::HalfOpen
                if self.probes + if self.p.per_episode { self.ok } else { 0 } < self.p.probes =>
            {
                self.probes += 1;
                Ok(MTicket {
                    epoch: self.epoch,
                    probe: true,
                    started: now,
                })
            }
            // Every probe slot taken: a call may pass as soon as a probe ends.
            MState::HalfOpen => Err(Some(now)),
            MState::ForcedOpen => Err(None),
        }
    }

    fn open(&mut self, now: u64) {
        self.openings = (self.openings + 1).min(31);
        // In nanoseconds: the fraction is rounded down to the nanosecond.
        let max = self.p.max_ms * 1_000_000;
        let mut d = (self.p.open_ms * 1_000_000).min(max);
        for _ in 1..self.openings {
            d = (d * self.p.growth as u64 / self.p.divisor as u64).min(max);
        }
        self.until = now + d;
        self.state = MState::Open;
        self.epoch += 1;
        self.consec = 0;
    }

    /// Closing by hand: a fresh closed breaker only has its window emptied.
    fn reset(&mut self) {
        if self.state == MState::Closed && self.consec == 0 {
            self.window.clear();
        } else {
            self.close();
        }
    }

    /// Opening by hand until `until`: a new period; the openings are not advanced.
    fn open_until(&mut self, until: u64) {
        self.state = MState::Open;
        self.until = until;
        self.epoch += 1;
        self.consec = 0;
    }

    /// Half-open by hand: an open time that ends `now`; illegal from closed; nothing to do
    /// when already half-open or when the open time is up.
    fn half_open(&mut self, now: u64) -> Result<(), State> {
        match self.state {
            MState::Closed => Err(State::Closed),
            MState::HalfOpen => Ok(()),
            MState::Open if self.until <= now => Ok(()),
            MState::Open | MState::ForcedOpen => {
                self.open_until(now);
                Ok(())
            }
        }
    }

    /// What the next call at `now` finds.
    fn public_at(&self, now: u64) -> State {
        match self.state {
            MState::Open if now >= self.until => State::HalfOpen,
            MState::HalfOpen if self.p.half_open_expired(self.until, now) => State::Open,
            _ => self.public(),
        }
    }

    fn close(&mut self) {
        self.state = MState::Closed;
        self.epoch += 1;
        self.openings = 0;
        self.consec = 0;
        self.window.clear();
    }

    fn settle(&mut self, t: MTicket, o: Outcome, now: u64) {
        if t.epoch != self.epoch {
            return;
        }
        let slow = self
            .p
            .slow
            .is_some_and(|(ms, _)| now.saturating_sub(t.started) >= ms * 1_000_000);
        match (self.state, t.probe) {
            (MState::Closed, false) => {
                if o == Outcome::Ignored {
                    return;
                }
                let fail = o == Outcome::Failure;
                if self.window.len() == N {
                    self.window.pop_front();
                }
                self.window.push_back((fail, slow));
                self.consec = if fail { self.consec + 1 } else { 0 };
                let calls = self.window.len() as u64;
                let fails = self.window.iter().filter(|w| w.0).count() as u64;
                let slows = self.window.iter().filter(|w| w.1).count() as u64;
                let by_rate = calls >= self.p.minimum_calls as u64
                    && (self
                        .p
                        .failure_rate
                        .is_some_and(|r| fails * 100 >= r as u64 * calls)
                        || self
                            .p
                            .slow
                            .is_some_and(|(_, r)| slows * 100 >= r as u64 * calls));
                if self.p.consecutive.is_some_and(|n| self.consec >= n) || by_rate {
                    self.open(now);
                }
            }
            (MState::HalfOpen, true) if self.p.half_open_expired(self.until, now) => self.open(now),
            (MState::HalfOpen, true) => match o {
                Outcome::Ignored => self.probes -= 1,
                Outcome::Failure => self.open(now),
                Outcome::Success if slow => self.open(now),
                Outcome::Success => {
                    self.probes -= 1;
                    self.ok += 1;
                    if self.ok >= self.p.successes {
                        self.close();
                    }
                }
            },
            _ => {}
        }
    }

    fn drop_ticket(&mut self, t: MTicket) {
        if t.probe && t.epoch == self.epoch && self.state == MState::HalfOpen {
            self.probes -= 1;
        }
    }

    fn public(&self) -> State {
        match self.state {
            MState::Closed => State::Closed,
            MState::Open => State::Open,
            MState::HalfOpen => State::HalfOpen,
            MState::ForcedOpen => State::ForcedOpen,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn machine_shared_form_and_model_agree(p in params(), ops in ops()) {
        let clock = MockClock::new();
        let mut machine = Machine::<CountWindow<N>>::new(p.config()).unwrap();
        let shared = CircuitBreaker::with_window(p.config(), CountWindow::<N>, &clock).unwrap();
        let mut model = Model::new(p.clone());
        type Shared<'a> = CircuitBreaker<&'a MockClock, CountWindow<N>, ()>;
        let mut held: Vec<(Ticket, Permit<&Shared<'_>>, MTicket)> = Vec::new();

        let all = ops.clone();
        for op in ops {
            let now = clock.now();
            match op {
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Acquire => {
                    let a = machine.try_acquire(now);
                    let b = shared.try_acquire();
                    let c = model.acquire(now.as_nanos());
                    match (a, b, c) {
                        (Ok(t), Ok(pm), Ok(mt)) => {
                            prop_assert_eq!(t.is_probe(), mt.probe);
                            prop_assert_eq!(pm.is_probe(), mt.probe);
                            held.push((t, pm, mt));
                        }
                        (Err(x), Err(y), Err(z)) => {
                            prop_assert_eq!(x, y, "{:?}", all);
                            prop_assert_eq!(x.retry_at, z.map(Instant::from_nanos));
                        }
                        (a, b, c) => prop_assert!(false, "disagree on admission: {:?} / {:?} / {:?}", a, b.map(|p| p.is_probe()), c),
                    }
                }
                Op::Settle(i, o) if i < held.len() => {
                    let (t, pm, mt) = held.remove(i);
                    machine.record(t, o, now);
                    pm.record(o);
                    model.settle(mt, o, now.as_nanos());
                }
                Op::Drop(i) if i < held.len() => {
                    let (t, pm, mt) = held.remove(i);
                    machine.release(t);
                    drop(pm);
                    model.drop_ticket(mt);
                }
                Op::Settle(..) | Op::Drop(..) => {}
                Op::Reset => {
                    machine.reset();
                    shared.reset();
                    model.reset();
                }
                Op::ForceOpen => {
                    machine.force_open();
                    shared.force_open();
                    model.state = MState::ForcedOpen;
                    model.epoch += 1;
                    model.consec = 0;
                }
                Op::OpenFor(ms) => {
                    let d = Duration::from_millis(ms);
                    prop_assert_eq!(machine.open_for(d, now), Ok(()));
                    prop_assert_eq!(shared.open_for(d), Ok(()));
                    model.open_until(now.as_nanos() + ms * 1_000_000);
                }
                Op::HalfOpen => {
                    let want = model.half_open(now.as_nanos()).map_err(|from| {
                        TransitionError::Illegal { from, to: State::HalfOpen }
                    });
                    prop_assert_eq!(machine.half_open(now), want);
                    prop_assert_eq!(shared.half_open(), want);
                }
            }
            let now = clock.now();
            prop_assert_eq!(machine.state(), model.public());
            prop_assert_eq!(machine.state_at(now), model.public_at(now.as_nanos()));
            prop_assert_eq!(shared.state(), model.public_at(now.as_nanos()));
            let (mm, sm) = (machine.metrics(now), shared.metrics());
            prop_assert_eq!(mm, sm);
            prop_assert_eq!(mm.consecutive_failures, model.consec);
            if model.state == MState::Closed {
                prop_assert_eq!(mm.window.calls as usize, model.window.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Time windows have no naive model here; the machine and the shared form must still
    /// agree step by step, including bucket expiry as time advances.
    #[test]
    fn machine_and_shared_form_agree_on_time_windows(p in params(), ops in ops()) {
        use bulwark::circuit_breaker::TimeWindow;
        let cfg = p.config().time_window(Duration::from_millis(200));
        let clock = MockClock::new();
        let mut machine = Machine::<TimeWindow<4>>::new(cfg).unwrap();
        let shared = CircuitBreaker::with_window(cfg, TimeWindow::<4>, &clock).unwrap();
        let mut held = Vec::new();
        for op in ops {
            let now = clock.now();
            match op {
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Acquire => match (machine.try_acquire(now), shared.try_acquire()) {
                    (Ok(t), Ok(pm)) => {
                        prop_assert_eq!(t.is_probe(), pm.is_probe());
                        held.push((t, pm));
                    }
                    (Err(x), Err(y)) => prop_assert_eq!(x, y),
                    (a, b) => prop_assert!(false, "disagree: {:?} / {:?}", a, b.map(|p| p.is_probe())),
                },
                Op::Settle(i, o) if i < held.len() => {
                    let (t, pm) = held.remove(i);
                    machine.record(t, o, now);
                    pm.record(o);
                }
                Op::Drop(i) if i < held.len() => {
                    let (t, pm) = held.remove(i);
                    machine.release(t);
                    drop(pm);
                }
                Op::Settle(..) | Op::Drop(..) => {}
                Op::Reset => {
                    machine.reset();
                    shared.reset();
                }
                Op::ForceOpen => {
                    machine.force_open();
                    shared.force_open();
                }
                Op::OpenFor(ms) => {
                    let d = Duration::from_millis(ms);
                    prop_assert_eq!(machine.open_for(d, now), shared.open_for(d));
                }
                Op::HalfOpen => prop_assert_eq!(machine.half_open(now), shared.half_open()),
            }
            prop_assert_eq!(machine.metrics(clock.now()), shared.metrics());
        }
    }
}
