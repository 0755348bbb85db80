//! loom model checks of the shared circuit breaker: every interleaving of a few concurrent
//! callers keeps the invariants.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_circuit_breaker`
#![cfg(loom)]

use bulwark::admission::Admit;
use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, Events, State, TimeWindow, Transition,
};
use bulwark::{Clock, Instant};
use core::time::Duration;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

/// A clock that stands still at 100 s: time is not what these tests vary.
struct Still;
impl Clock for Still {
    fn now(&self) -> Instant {
        Instant::from_secs(100)
    }
}

#[derive(Default)]
struct Count {
    opened: AtomicUsize,
    closed: AtomicUsize,
}
impl Events for Count {
    fn on_state_change(&self, t: Transition) {
        match t.to {
            State::Open => self.opened.fetch_add(1, Ordering::SeqCst),
            State::Closed => self.closed.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
}

#[test]
fn concurrent_failures_trip_exactly_once_and_publish_the_open_time() {
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(2)
            .open_for(Duration::from_secs(5));
        let b = Arc::new(
            CircuitBreaker::new(cfg, Still)
                .unwrap()
                .with_events(Count::default()),
        );
        let permits_ok: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                loom::thread::spawn(move || match b.try_acquire() {
                    Ok(p) => {
                        p.failure();
                        true
                    }
                    Err(_) => false,
                })
            })
            .collect();
        let admitted = permits_ok
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&a| a)
            .count();
        assert_eq!(admitted, 2, "both callers were admitted while closed");
        assert_eq!(b.state(), State::Open);
        // Never left "opening": the open time is published with the right instant.
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.retry_at, Some(Instant::from_secs(105)));
        assert_eq!(
            b.events().opened.load(Ordering::SeqCst),
            1,
            "one trip, one event"
        );
    });
}

#[test]
fn half_open_admits_exactly_the_probe_limit() {
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::ZERO)
            .half_open(1, 1);
        let b = Arc::new(CircuitBreaker::new(cfg, Still).unwrap());
        b.try_acquire().unwrap().failure(); // open, with no time to wait
        let probes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (b, probes) = (b.clone(), probes.clone());
                loom::thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        if p.is_probe() {
                            probes.fetch_add(1, Ordering::SeqCst);
                        } else {
                            // Only after the probe closed the breaker.
                            assert_eq!(b.state(), State::Closed);
                        }
                        p.success();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // One probe got through and closed the breaker; the other caller was either rejected
        // (probe slot taken) or came after the close and passed as a normal call.
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        assert_eq!(b.state(), State::Closed);
    });
}

#[test]
fn dropped_probe_gives_the_slot_back_under_contention() {
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::ZERO)
            .half_open(1, 1);
        let b = Arc::new(CircuitBreaker::new(cfg, Still).unwrap());
        b.try_acquire().unwrap().failure();
        let probe = b.try_acquire().unwrap();
        let b2 = b.clone();
        let t = loom::thread::spawn(move || b2.try_acquire().map(|p| p.is_probe()).ok());
        drop(probe); // cancelled
        // The other caller was rejected (slot still taken) or got the freed slot as a probe;
        // its permit was dropped unrecorded at the end of its closure either way.
        if let Some(probe) = t.join().unwrap() {
            assert!(probe);
        }
        assert_eq!(b.state(), State::HalfOpen);
        assert!(
            b.try_acquire().unwrap().is_probe(),
            "the slot is free after every drop"
        );
    });
}

#[test]
fn reset_racing_a_trip_never_wedges() {
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5));
        let b = Arc::new(
            CircuitBreaker::new(cfg, Still)
                .unwrap()
                .with_events(Count::default()),
        );
        let permit_b = b.clone();
        let t = loom::thread::spawn(move || {
            if let Ok(p) = permit_b.try_acquire() {
                p.failure();
            }
        });
        b.reset();
        t.join().unwrap();
        match b.state() {
            State::Closed => assert!(b.try_acquire().is_ok()),
            State::Open => assert_eq!(
                b.try_acquire().unwrap_err().retry_at,
                Some(Instant::from_secs(105))
            ),
            other => panic!("wedged in {other:?}"),
        }
    });
}

/// A manual open racing a trip: either it comes first (and the trip's failure, admitted
/// before it, is late), or after (it replaces the trip's open time), or it finds the trip
/// publishing and reports `Busy`, changing nothing. In every case the open time the breaker
/// publishes is the one of whoever opened it last: never the loser's late write.
#[test]
fn manual_open_racing_a_trip_publishes_the_winners_open_time() {
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5));
        let b = Arc::new(CircuitBreaker::new(cfg, Still).unwrap());
        let ticket = b.try_admit().unwrap();
        let tripper = b.clone();
        let t = loom::thread::spawn(move || {
            tripper.record(ticket, bulwark::circuit_breaker::Outcome::Failure);
        });
        let manual = b.open_for(Duration::from_secs(60));
        t.join().unwrap();
        let retry_at = b.try_acquire().unwrap_err().retry_at;
        match manual {
            // The manual open came last, or first (and the trip's outcome was late).
            Ok(()) => assert_eq!(retry_at, Some(Instant::from_secs(160))),
            Err(e) => {
                assert_eq!(e, bulwark::circuit_breaker::TransitionError::Busy);
                assert_eq!(retry_at, Some(Instant::from_secs(105)));
            }
        }
    });
}

/// Two failures racing in metrics-only both see the failure rate over its threshold; the
/// crossing is reported exactly once (by the caller whose CAS remembered it).
#[test]
fn a_rate_crossing_racing_in_metrics_only_is_reported_once() {
    #[derive(Default)]
    struct Crossings(AtomicUsize);
    impl Events for Crossings {
        fn on_rate_exceeded(
            &self,
            _: bulwark::circuit_breaker::Exceeded,
            _: bulwark::circuit_breaker::WindowStats,
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    loom::model(|| {
        let cfg = Config::new().failure_rate(50).minimum_calls(1);
        let b = Arc::new(
            CircuitBreaker::with_window(cfg, CountWindow::<4>, Still)
                .unwrap()
                .with_events(Crossings::default()),
        );
        b.metrics_only();
        let other = b.clone();
        let t = loom::thread::spawn(move || other.try_acquire().unwrap().failure());
        b.try_acquire().unwrap().failure();
        t.join().unwrap();
        assert_eq!(b.events().0.load(Ordering::SeqCst), 1);
        assert_eq!(b.state(), State::MetricsOnly);
    });
}

#[test]
fn window_totals_stay_exact_under_concurrent_records() {
    loom::model(|| {
        let cfg = Config::new().failure_rate(100).minimum_calls(3);
        let b = Arc::new(CircuitBreaker::with_window(cfg, CountWindow::<4>, Still).unwrap());
        let threads: Vec<_> = [true, false]
            .into_iter()
            .map(|fail| {
                let b = b.clone();
                loom::thread::spawn(move || {
                    let p = b.try_acquire().unwrap();
                    if fail { p.failure() } else { p.success() }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let w = b.metrics().window;
        assert_eq!((w.calls, w.failures), (2, 1));
        assert_eq!(b.state(), State::Closed);
    });
}

#[test]
fn same_outcome_shortcut_stays_exact_when_a_slot_is_raced() {
    loom::model(|| {
        // One slot: both threads write it (a wrap race). The success finds a success there
        // and takes the no-write shortcut; the failure swaps.
        let cfg = Config::new().consecutive_failures(5);
        let b = Arc::new(CircuitBreaker::with_window(cfg, CountWindow::<1>, Still).unwrap());
        b.try_acquire().unwrap().success();
        let threads: Vec<_> = [true, false]
            .into_iter()
            .map(|fail| {
                let b = b.clone();
                loom::thread::spawn(move || {
                    let p = b.try_acquire().unwrap();
                    if fail { p.failure() } else { p.success() }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.metrics().window.calls, 1);
        // The totals describe the slot, whichever write landed last: replacing it with a
        // success leaves exactly one success.
        b.try_acquire().unwrap().success();
        let w = b.metrics().window;
        assert_eq!((w.calls, w.failures), (1, 0));
    });
}

/// A clock the test moves by hand.
struct Manual(loom::sync::atomic::AtomicU64);
impl Clock for Manual {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn half_open_expiry_racing_the_late_probe_reopens_once_and_publishes_the_open_time() {
    use bulwark::circuit_breaker::Outcome;
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .max_half_open(Duration::from_secs(1));
        let clock = Manual(loom::sync::atomic::AtomicU64::new(0));
        let b = Arc::new(
            CircuitBreaker::new(cfg, clock)
                .unwrap()
                .with_events(Count::default()),
        );
        b.try_acquire().unwrap().failure(); // open until 5 s
        let secs = |s: u64| s * 1_000_000_000;
        b.clock().0.store(secs(5), Ordering::SeqCst);
        let probe = b.try_admit().unwrap(); // half-open
        b.clock().0.store(secs(6), Ordering::SeqCst); // past its maximum time
        let late = {
            let b = b.clone();
            loom::thread::spawn(move || b.record(probe, Outcome::Success))
        };
        let caller = {
            let b = b.clone();
            loom::thread::spawn(move || b.try_acquire().map(|_| ()).unwrap_err())
        };
        late.join().unwrap();
        let rejected = caller.join().unwrap();
        // Whoever saw the expiry first re-opened; the other found it open (or opening).
        assert_eq!(b.state(), State::Open);
        assert_eq!(rejected.retry_at, Some(Instant::from_secs(11)));
        assert_eq!(
            b.try_acquire().unwrap_err().retry_at,
            Some(Instant::from_secs(11))
        );
        assert_eq!(
            b.events().opened.load(Ordering::SeqCst),
            2,
            "trip + one re-opening"
        );
        assert_eq!(
            b.events().closed.load(Ordering::SeqCst),
            0,
            "the late success never closed it"
        );
    });
}

#[test]
fn a_caller_racing_a_trip_sees_the_open_time_it_was_published_with() {
    use bulwark::circuit_breaker::Outcome;
    loom::model(|| {
        let cfg = Config::new()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5));
        let b = Arc::new(CircuitBreaker::new(cfg, Still).unwrap());
        let ticket = b.try_admit().unwrap();
        let trip = {
            let b = b.clone();
            loom::thread::spawn(move || b.record(ticket, Outcome::Failure))
        };
        // Closed: admitted (a plain call); opening: rejected with an estimate; open (the
        // fast path): rejected with the published instant, never read as zero (which would
        // wrongly make this call a probe).
        match b.try_acquire() {
            Ok(permit) => assert!(!permit.is_probe(), "probed an open breaker"),
            Err(r) => assert_eq!(r.retry_at, Some(Instant::from_secs(105))),
        }
        trip.join().unwrap();
    });
}

loom::thread_local! {
    static THREAD_NOW: core::cell::Cell<u64> = core::cell::Cell::new(0);
}

/// A clock each thread sets for itself: the reading a recorder takes is fixed, only the
/// interleaving of the window's atomics varies.
struct PerThread;
impl Clock for PerThread {
    fn now(&self) -> Instant {
        Instant::from_nanos(THREAD_NOW.with(|t| t.get()))
    }
}

/// A recorder reads 1 s while another advances the window to 65 538 s, where the 16-bit tag
/// of 1 s is still "inside" the window. Either the early sample is placed before the advance
/// (and swept or taken back: it expired long ago), or it is recorded after it and counts as
/// the latest epoch (a reading below the latest is "no time passed"). Never may it survive
/// in its own, aliased bucket: seen at 65 538 s (age 1 by tag) but gone at 65 541 s, where a
/// sample of 65 538 s would still count.
#[test]
fn a_time_window_sample_racing_an_advance_past_the_tag_wrap_never_comes_back() {
    loom::model(|| {
        const S: u64 = 1_000_000_000;
        let cfg = Config::new()
            .failure_rate(100)
            .minimum_calls(10)
            .time_window(Duration::from_secs(4));
        let b = Arc::new(CircuitBreaker::with_window(cfg, TimeWindow::<4>, PerThread).unwrap());
        let late = 65_538 * S;
        let early = {
            let b = b.clone();
            loom::thread::spawn(move || {
                THREAD_NOW.with(|t| t.set(S));
                b.try_acquire().unwrap().failure();
            })
        };
        let recent = {
            let b = b.clone();
            loom::thread::spawn(move || {
                THREAD_NOW.with(|t| t.set(late));
                b.try_acquire().unwrap().success();
            })
        };
        early.join().unwrap();
        recent.join().unwrap();
        let at = |secs: u64| {
            THREAD_NOW.with(|t| t.set(secs * S));
            let w = b.metrics().window;
            (w.calls, w.failures)
        };
        let (now, later) = (at(65_538), at(65_541));
        assert!(
            matches!((now, later), ((1, 0), (1, 0)) | ((2, 1), (2, 1))),
            "at 65 538 s {now:?}, at 65 541 s {later:?}"
        );
        assert_eq!(
            at(65_542),
            (0, 0),
            "everything expires one window after 65 538 s"
        );
    });
}
