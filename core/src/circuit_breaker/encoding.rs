//! The shared form's encoding of a [`Breaker`]: one `u64` control word the
//! [`CircuitBreaker`](super::CircuitBreaker) updates by CAS, and a second word for the one
//! instant a phase holds.
//!
//! The counters of closed and half-open never live at once, so they share the payload bits:
//!
//! | bits   | field      | meaning                                                        |
//! |--------|------------|----------------------------------------------------------------|
//! | 0..3   | code       | the phase: a code below                                        |
//! | 3..8   | openings   | consecutive openings, at most [`MAX_OPENINGS`]                 |
//! | 8..32  | payload    | closed: the run of failures in 8..24; half-open: probes in     |
//! |        |            | flight 8..14, judged 14..20, failed 20..26, slow 26..32 (each  |
//! |        |            | at most [`MAX_PROBES`]); metrics-only: the failure rate is at  |
//! |        |            | or over its threshold in 8, the slow rate in 9; others: zero   |
//! | 32..64 | generation | +1 on every change of phase                                    |
//!
//! The instant lives in the second word: the end of the open time (open), the instant
//! half-open began (half-open); other phases leave it as it is.
//!
//! Both words cannot change in one CAS, so a change into open goes through a code that only
//! this encoding has, *opening*: the thread that trips the breaker writes the word with it,
//! then stores the open time's end in the second word, then flips the code to *open* (see
//! [`published`]). A reader that sees *open* sees the instant; a reader that sees *opening*
//! estimates it.
//!
//! # Limits
//!
//! The bit budget bounds what a breaker can be configured with (checked by
//! [`Config`](super::Config) validation, so both forms behave the same): at most
//! [`MAX_PROBES`] half-open probes and successes to close, consecutive openings counted up to
//! [`MAX_OPENINGS`] (the open time stops growing after that many), a run of failures up to
//! 65 535, and a 32-bit generation: a late outcome could be mistaken for a current one only
//! after exactly 2^32 changes of state while its call was running (at a thousand changes a
//! second, 50 days).

use super::State;
use super::state::{Breaker, Phase, Probes};
use super::window::Over;
use crate::time::Instant;

/// Consecutive openings the control word counts (5 bits); the open time stops growing after
/// that many.
pub(crate) const MAX_OPENINGS: u8 = 31;
/// The most half-open probes (and successes to close) a breaker can be configured with: each
/// half-open counter has 6 bits of the control word.
pub(crate) const MAX_PROBES: u8 = 63;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const FORCED_OPEN: u64 = 3;
const DISABLED: u64 = 4;
const METRICS_ONLY: u64 = 5;
/// Open, but the open time's end is still being written by the thread that tripped.
const OPENING: u64 = 6;

const CODE: u64 = 0b111;
const SIX: u64 = 0b11_1111;

#[inline(always)]
const fn code(w: u64) -> u64 {
    w & CODE
}

/// The generation of word `w`.
#[inline(always)]
pub(crate) const fn generation(w: u64) -> u32 {
    (w >> 32) as u32
}

#[inline(always)]
const fn payload(w: u64) -> u64 {
    w >> 8 & 0xFF_FFFF
}

/// Does admission in `w` let a call through without changing anything (closed, disabled,
/// metrics-only)?
#[inline(always)]
pub(crate) const fn passes_unchanged(w: u64) -> bool {
    matches!(code(w), CLOSED | DISABLED | METRICS_ONLY)
}

/// Is `w` open with its open time published?
#[inline(always)]
pub(crate) const fn is_open(w: u64) -> bool {
    code(w) == OPEN
}

/// Is `w` disabled (outcomes are not reported)?
#[inline(always)]
pub(crate) const fn is_disabled(w: u64) -> bool {
    code(w) == DISABLED
}

/// Would a success of a call admitted in `generation` change `w`? Only by clearing a run of
/// failures in the closed state of its own generation.
#[inline(always)]
pub(crate) const fn success_clears_failures(w: u64, generation: u32) -> bool {
    code(w) == CLOSED && self::generation(w) == generation && payload(w) != 0
}

/// The public state of `w` (opening reads as open).
pub(crate) const fn state(w: u64) -> State {
    match code(w) {
        CLOSED => State::Closed,
        HALF_OPEN => State::HalfOpen,
        FORCED_OPEN => State::ForcedOpen,
        DISABLED => State::Disabled,
        METRICS_ONLY => State::MetricsOnly,
        _ => State::Open, // OPEN, OPENING (no other code is ever written)
    }
}

/// What the second word means for a control word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Second {
    /// Nothing this phase reads.
    Unused,
    /// The instant of the phase (open: its end; half-open: its start).
    Published,
    /// Still being written for a trip into open with `openings` in `generation`.
    Opening { openings: u8, generation: u32 },
}

/// What [`decode`] needs of the second word for `w`.
#[inline]
pub(crate) const fn second(w: u64) -> Second {
    match code(w) {
        OPEN | HALF_OPEN => Second::Published,
        OPENING => Second::Opening {
            openings: openings(w),
            generation: generation(w),
        },
        _ => Second::Unused,
    }
}

const fn openings(w: u64) -> u8 {
    (w >> 3 & 0b1_1111) as u8
}

/// The control word of `b`. Open is written as *opening*: the writer publishes the open
/// time's end, then [`published`] flips it.
#[inline]
pub(crate) const fn encode(b: &Breaker) -> u64 {
    let (code, payload) = match b.phase {
        Phase::Closed { failures } => (CLOSED, failures as u64),
        Phase::Open { .. } => (OPENING, 0),
        Phase::HalfOpen { probes: h, .. } => (
            HALF_OPEN,
            (h.in_flight as u64 & SIX)
                | (h.judged as u64 & SIX) << 6
                | (h.failed as u64 & SIX) << 12
                | (h.slow as u64 & SIX) << 18,
        ),
        Phase::ForcedOpen => (FORCED_OPEN, 0),
        Phase::Disabled => (DISABLED, 0),
        Phase::MetricsOnly { over } => {
            (METRICS_ONLY, over.failure as u64 | (over.slow as u64) << 1)
        }
    };
    code | (b.openings as u64 & 0b1_1111) << 3 | payload << 8 | (b.generation as u64) << 32
}

/// The opening word `w` with its open time published: open.
#[inline]
pub(crate) const fn published(w: u64) -> u64 {
    w & !CODE | OPEN
}

/// The breaker word `w` encodes, with `at` the instant its phase holds (see [`second`]; any
/// value where it is unused). Opening decodes as open until `at`.
#[inline(always)]
pub(crate) const fn decode(w: u64, at: Instant) -> Breaker {
    let p = payload(w);
    let phase = match code(w) {
        CLOSED => Phase::Closed { failures: p as u16 },
        HALF_OPEN => Phase::HalfOpen {
            since: at,
            probes: Probes {
                in_flight: (p & SIX) as u8,
                judged: (p >> 6 & SIX) as u8,
                failed: (p >> 12 & SIX) as u8,
                slow: (p >> 18 & SIX) as u8,
            },
        },
        FORCED_OPEN => Phase::ForcedOpen,
        DISABLED => Phase::Disabled,
        METRICS_ONLY => Phase::MetricsOnly {
            over: Over {
                failure: p & 1 != 0,
                slow: p & 2 != 0,
            },
        },
        _ => Phase::Open { until: at }, // OPEN, OPENING (no other code is ever written)
    };
    Breaker {
        phase,
        openings: openings(w),
        generation: generation(w),
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::super::machine::Ticket;
    use super::super::{CircuitBreaker, Config, Outcome};
    use super::*;
    use crate::MockClock;
    use crate::admission::Admit;

    #[test]
    fn every_phase_round_trips() {
        let at = Instant::from_nanos(0xFEED);
        let phases = [
            Phase::Closed { failures: u16::MAX },
            Phase::Open { until: at },
            Phase::HalfOpen {
                since: at,
                probes: Probes {
                    in_flight: 63,
                    judged: 62,
                    failed: 9,
                    slow: 63,
                },
            },
            Phase::ForcedOpen,
            Phase::Disabled,
            Phase::MetricsOnly {
                over: Over {
                    failure: true,
                    slow: false,
                },
            },
            Phase::MetricsOnly {
                over: Over {
                    failure: false,
                    slow: true,
                },
            },
        ];
        for phase in phases {
            let b = Breaker {
                phase,
                openings: MAX_OPENINGS,
                generation: 0xDEAD_BEEF,
            };
            let w = encode(&b);
            assert_eq!(decode(w, at), b);
            if let Phase::Open { .. } = phase {
                assert_eq!(decode(published(w), at), b);
            }
            assert_eq!(state(w), b.public());
        }
        assert_eq!(
            decode(encode(&Breaker::CLOSED), Instant::ZERO),
            Breaker::CLOSED
        );
        assert_eq!(encode(&Breaker::CLOSED), 0);
    }

    #[test]
    fn open_is_written_opening_until_published() {
        let b = Breaker {
            phase: Phase::Open {
                until: Instant::from_secs(5),
            },
            openings: 3,
            generation: 7,
        };
        let w = encode(&b);
        assert_eq!(
            second(w),
            Second::Opening {
                openings: 3,
                generation: 7
            }
        );
        assert!(!is_open(w));
        assert!(is_open(published(w)));
        assert_eq!(second(published(w)), Second::Published);
    }

    /// A breaker caught between the CAS that tripped it and the publication of its open
    /// time (what another thread sees in that window).
    fn opening(cfg: Config, clock: &MockClock) -> CircuitBreaker<&MockClock> {
        let b = CircuitBreaker::new(cfg, clock).unwrap();
        let tripped = Breaker {
            phase: Phase::Open {
                until: Instant::MAX, // not published: never read
            },
            openings: 1,
            generation: 1,
        };
        b.set_word(encode(&tripped));
        b
    }

    #[test]
    fn an_opening_breaker_rejects_with_an_estimate_of_its_open_time() {
        let clock = MockClock::new();
        clock.advance(Duration::from_secs(7));
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5));
        let b = opening(cfg, &clock);
        assert_eq!(b.state(), State::Open);
        let r = b.try_admit().unwrap_err();
        assert_eq!(r.retry_at, Some(Instant::from_secs(12)));
        assert_eq!(b.snapshot().open_remaining, Duration::from_secs(5));
        // A late outcome changes nothing; a reset wins over the opening.
        b.record(Ticket::new(0, false, Instant::ZERO), Outcome::Failure);
        assert_eq!(b.state(), State::Open);
        b.reset();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn an_opening_breaker_with_no_open_time_still_rejects() {
        let clock = MockClock::new();
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::ZERO);
        let b = opening(cfg, &clock);
        // No probe races the publication: rejected, with a retry a nanosecond on.
        let r = b.try_admit().unwrap_err();
        assert_eq!(r.retry_at, Some(Instant::from_nanos(1)));
        assert_eq!(b.state(), State::Open);
    }
}
