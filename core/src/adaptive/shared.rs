//! The shared, lock-free form: [`AdaptiveLimit`].

use core::fmt;

use super::config::{Config, ConfigError};
use super::state::{clamp, next_limit};
use crate::admission::{Admit, Outcome};
use crate::bulkhead::BulkheadFull;
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Clock, Instant};

/// An adaptive concurrency limit shared by every caller (`&self`, `Sync`, lock-free, no
/// allocation): a bulkhead whose limit moves with each call's round trip. An [`Admit`] gate
/// whose rejection is the bulkhead's [`BulkheadFull`] (so a pipeline, a tower gate layer and
/// the axum answers treat it as a full bulkhead); its [`Ticket`] measures the round trip.
///
/// # Memory ordering
///
/// The in-flight count is taken by a CAS against the limit and given back by a `fetch_sub`
/// (AcqRel, as a semaphore: a call is ordered after the one whose slot it reuses). The limit
/// moves by a CAS loop around the pure algorithm, recomputed when another sample moved it
/// first, so no sample's step is lost. The algorithm's own figures (Vegas's no-load RTT, a
/// `fetch_min`; Gradient2's long-term average, one CAS that yields to a concurrent update)
/// are statistics: Relaxed, and a concurrent update may win over this one.
///
/// ```
/// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
/// use bulwark::admission::{Admit, Permit};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(2).min(1), &clock).unwrap();
/// let a = Permit::try_new(&limit).unwrap();
/// let b = Permit::try_new(&limit).unwrap();
/// assert!(Permit::try_new(&limit).is_err()); // 2 in flight: full
/// a.success(); // the limit was fully used: +1
/// assert_eq!(limit.limit(), 3);
/// drop(b); // abandoned: no sample, the slot is back
/// assert_eq!(limit.in_flight(), 0);
/// ```
pub struct AdaptiveLimit<C> {
    cfg: Config,
    limit_milli: AtomicU64,
    in_flight: AtomicU64,
    rtt_noload: AtomicU64,
    long_rtt: AtomicU64,
    clock: C,
}

/// An admitted call: when it started (if the algorithm times calls) and the calls in flight
/// then (itself included).
///
/// ```
/// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
/// use bulwark::admission::Admit;
/// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()), bulwark::MockClock::new()).unwrap();
/// let ticket = limit.try_admit().unwrap();
/// assert_eq!(ticket.in_flight, 1);
/// limit.release(ticket);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// When the call was admitted, read only for an algorithm that times calls
    /// ([`Algorithm::times_calls`](super::Algorithm::times_calls)); `None` under AIMD.
    pub started: Option<Instant>,
    /// Calls in flight once it was admitted.
    pub in_flight: u32,
}

impl<C: Clock> AdaptiveLimit<C> {
    /// A limit for `cfg` reading time from `clock`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config, ConfigError};
    /// let e = AdaptiveLimit::new(Config::new(Algorithm::vegas()).max(0), bulwark::MockClock::new()).err();
    /// assert_eq!(e, Some(ConfigError::Bounds));
    /// ```
    pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(AdaptiveLimit {
            cfg,
            limit_milli: AtomicU64::new(u64::from(cfg.initial) * 1_000),
            in_flight: AtomicU64::new(0),
            rtt_noload: AtomicU64::new(0),
            long_rtt: AtomicU64::new(0),
            clock,
        })
    }

    /// The limit now (whole calls).
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
    /// let l = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(7), bulwark::MockClock::new()).unwrap();
    /// assert_eq!(l.limit(), 7);
    /// ```
    pub fn limit(&self) -> u32 {
        // Relaxed: a snapshot.
        (self.limit_milli.load(Ordering::Relaxed) / 1_000) as u32
    }

    /// Calls in flight now.
    ///
    /// ```
    /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
    /// let l = AdaptiveLimit::new(Config::new(Algorithm::aimd()), bulwark::MockClock::new()).unwrap();
    /// assert_eq!(l.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u32 {
        // Relaxed: a snapshot.
        self.in_flight.load(Ordering::Relaxed) as u32
    }

    fn sample(&self, ticket: Ticket, dropped: bool) {
        let rtt = match ticket.started {
            Some(started) => duration_ns(self.clock.now(), started),
            None => 0, // an algorithm that does not time calls
        };
        // Relaxed (figures and limit): statistics; the limit's CAS keeps every step.
        let mut limit = self.limit_milli.load(Ordering::Relaxed);
        loop {
            let noload_before = self.rtt_noload.load(Ordering::Relaxed);
            let mut noload = noload_before;
            let long_before = self.long_rtt.load(Ordering::Relaxed);
            let mut long = long_before;
            let next = clamp(
                &self.cfg,
                next_limit(
                    self.cfg.algorithm,
                    limit,
                    rtt,
                    u64::from(ticket.in_flight),
                    dropped,
                    &mut noload,
                    &mut long,
                ),
            );
            if next == limit && noload == noload_before && long == long_before {
                return; // nothing changes: nothing to write (AIMD's usual success)
            }
            match self.limit_milli.compare_exchange_weak(
                limit,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if noload != 0 {
                        self.rtt_noload.fetch_min(noload, Ordering::Relaxed);
                        let _ = self.rtt_noload.compare_exchange(
                            0,
                            noload,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    let _ = self.long_rtt.compare_exchange(
                        long_before,
                        long,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    return;
                }
                Err(now) => limit = now,
            }
        }
    }
}

fn duration_ns(now: Instant, started: Instant) -> u64 {
    now.saturating_duration_since(started)
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64
}

impl<C: Clock> Admit for AdaptiveLimit<C> {
    type Ticket = Ticket;
    type Rejected = BulkheadFull;

    fn try_admit(&self) -> Result<Ticket, BulkheadFull> {
        let limit = self.limit_milli.load(Ordering::Relaxed) / 1_000;
        // AcqRel on success: this call is ordered after the one whose slot it takes (as a
        // semaphore); Relaxed on failure: nothing taken.
        match self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            }) {
            Ok(n) => Ok(Ticket {
                started: self.cfg.algorithm.times_calls().then(|| self.clock.now()),
                in_flight: (n + 1) as u32,
            }),
            Err(_) => Err(BulkheadFull),
        }
    }

    fn record(&self, ticket: Ticket, outcome: Outcome) {
        // AcqRel: pairs with the admission that reuses this slot.
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Outcome::Success => self.sample(ticket, false),
            Outcome::Failure => self.sample(ticket, true),
            Outcome::Ignored => {}
        }
    }

    fn release(&self, _: Ticket) {
        // AcqRel: as in `record`.
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<C> fmt::Debug for AdaptiveLimit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimit")
            .field("cfg", &self.cfg)
            .field("limit_milli", &self.limit_milli.load(Ordering::Relaxed))
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
