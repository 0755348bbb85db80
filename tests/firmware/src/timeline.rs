//! The sensor scenario's timeline: events recorded as plain values while it runs, formatted
//! and printed after it.
//!
//! Neither is done on the way: a semihosting call stops the core for as long as the host
//! takes (a millisecond or more, on hardware too), and formatting `u64`s is a software
//! division on Cortex-M, a good part of a tick on a Cortex-M0. Either would move the very
//! instants being recorded.

use core::cell::RefCell;

use bulwark::retry;
use embassy_sync::blocking_mutex::CriticalSectionMutex;

use crate::say;
use crate::sensor::SensorError;

/// What happened, in milliseconds since boot.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    Reading {
        t: u64,
        round: usize,
        value: u16,
        done: u64,
    },
    Failed {
        t: u64,
        round: usize,
        error: retry::Error<SensorError>,
        at: u64,
    },
    Rejected {
        t: u64,
        round: usize,
        until: u64,
    },
    Nack {
        begin: u64,
        got: u64,
        end: u64,
    },
    Display {
        from: u64,
        until: u64,
    },
    DisplaySkipped {
        at: u64,
    },
}

const CAPACITY: usize = 48;

struct Log {
    events: [Option<Event>; CAPACITY],
    len: usize,
    dropped: usize,
}

static LOG: CriticalSectionMutex<RefCell<Log>> = CriticalSectionMutex::new(RefCell::new(Log {
    events: [None; CAPACITY],
    len: 0,
    dropped: 0,
}));

/// Records one event (a few stores; counted as dropped when the log is full).
pub fn record(e: Event) {
    LOG.lock(|l| {
        let mut l = l.borrow_mut();
        if l.len < CAPACITY {
            let i = l.len;
            l.events[i] = Some(e);
            l.len += 1;
        } else {
            l.dropped += 1;
        }
    });
}

/// Prints the events in the order they were recorded, and empties the log. `true` if none
/// was dropped.
pub fn print() -> bool {
    let mut i = 0;
    loop {
        let next = LOG.lock(|l| {
            let l = l.borrow();
            if i < l.len { l.events[i] } else { None }
        });
        let Some(e) = next else { break };
        match e {
            Event::Reading {
                t,
                round,
                value,
                done,
            } => {
                say!("{t:>6} ms  round {round:>2} reading {value} (done at {done} ms)")
            }
            Event::Failed {
                t,
                round,
                error,
                at,
            } => {
                say!("{t:>6} ms  round {round:>2} failed after retries: {error:?} (at {at} ms)")
            }
            Event::Rejected { t, round, until } => {
                say!("{t:>6} ms  round {round:>2} rejected: breaker open until {until} ms")
            }
            Event::Nack { begin, got, end } => {
                say!("{end:>6} ms  sensor   read NACK (called at {begin} ms, bus from {got} ms)")
            }
            Event::Display { from, until } => {
                say!("{from:>6} ms  display  refreshed (bus held until {until} ms)")
            }
            Event::DisplaySkipped { at } => say!("{at:>6} ms  display  skipped: bus busy"),
        }
        i += 1;
    }
    LOG.lock(|l| {
        let mut l = l.borrow_mut();
        let complete = l.dropped == 0;
        if !complete {
            say!(
                "(timeline: {} events dropped, the log holds {CAPACITY})",
                l.dropped
            );
        }
        l.len = 0;
        l.dropped = 0;
        complete
    })
}
