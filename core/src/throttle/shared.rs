//! The shared, lock-free form: [`AdaptiveThrottle`].

use core::fmt;

use super::config::Config;
use super::error::{ConfigError, Throttled};
use super::state::{
    COUNT_MAX, TAG_BITS, TAG_MASK, draw, expected, hit_per_million, pack, reject_per_million,
    unpack,
};
use crate::admission::{Admit, Outcome};
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Clock, Instant};

/// An adaptive client-side throttle shared by every caller (`&self`, `Sync`, lock-free, no
/// allocation), over a window of `N` time buckets (12 by default: 10 s each over the default
/// 2 minutes). An [`Admit`] gate: its ticket is `()`, its rejection [`Throttled`]; record each
/// call's outcome (a success is a request the backend accepted).
///
/// # Memory ordering and encoding
///
/// Each bucket is one `AtomicU64`: the low 20 bits of its epoch (the bucket's number since the
/// clock's origin) and two 22-bit counts, changed by a CAS loop, so no count is ever lost or
/// double-reset. The counts publish nothing, so every access is Relaxed. Encoding limits:
/// counts saturate at 4 194 303 requests per bucket, and a bucket left untouched for a
/// multiple of 2^20 buckets (121 days with 10 s buckets) could be read as current: both are
/// stated, neither changes a decision by more than one window's worth.
///
/// ```
/// use bulwark::admission::{Admit, Outcome, Permit};
/// use bulwark::throttle::{AdaptiveThrottle, Config};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), &clock).unwrap();
/// Permit::try_new(&t).unwrap().success(); // admitted and accepted
/// assert_eq!(t.counts(), (1, 1));
/// assert_eq!(t.reject_per_million(), 0);
/// ```
pub struct AdaptiveThrottle<C, const N: usize = 12> {
    buckets: [AtomicU64; N],
    bucket_ns: u64,
    k_milli: u32,
    seed: u64,
    decisions: AtomicU64,
    clock: C,
}

impl<C: Clock, const N: usize> AdaptiveThrottle<C, N> {
    /// A throttle for `cfg` reading time from `clock`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::throttle::{AdaptiveThrottle, Config, ConfigError};
    /// let clock = bulwark::MockClock::new();
    /// assert_eq!(AdaptiveThrottle::<_, 4>::new(Config::new().k(500), &clock).err(), Some(ConfigError::KBelowOne));
    /// ```
    pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
        cfg.validate::<N>()?;
        Ok(AdaptiveThrottle {
            buckets: crate::sync::atomic_array!(AtomicU64, 0, N),
            bucket_ns: cfg.bucket_nanos::<N>(),
            k_milli: cfg.k_milli,
            seed: match cfg.seed {
                Some(s) => s,
                None => crate::rng::next_seed(),
            },
            decisions: AtomicU64::new(0),
            clock,
        })
    }

    /// Requests and accepts in the window now.
    ///
    /// ```
    /// use bulwark::admission::Outcome;
    /// use bulwark::throttle::{AdaptiveThrottle, Config};
    /// let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// t.record_outcome(Outcome::Failure);
    /// assert_eq!(t.counts(), (1, 0));
    /// ```
    pub fn counts(&self) -> (u64, u64) {
        self.counts_at(self.clock.now())
    }

    /// The local refusal probability now, in parts per million.
    ///
    /// ```
    /// use bulwark::admission::Outcome;
    /// use bulwark::throttle::{AdaptiveThrottle, Config};
    /// let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// (0..3).for_each(|_| t.record_outcome(Outcome::Failure));
    /// assert_eq!(t.reject_per_million(), 750_000); // 3 / 4
    /// ```
    pub fn reject_per_million(&self) -> u32 {
        let (req, acc) = self.counts();
        reject_per_million(req, acc, self.k_milli)
    }

    /// Counts a call's outcome now (what [`Admit::record`] does).
    ///
    /// ```
    /// use bulwark::admission::Outcome;
    /// use bulwark::throttle::{AdaptiveThrottle, Config};
    /// let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// t.record_outcome(Outcome::Success);
    /// t.record_outcome(Outcome::Ignored);
    /// assert_eq!(t.counts(), (1, 1));
    /// ```
    pub fn record_outcome(&self, outcome: Outcome) {
        let accepted = match outcome {
            Outcome::Success => 1,
            Outcome::Failure => 0,
            Outcome::Ignored => return,
        };
        self.count(self.clock.now(), accepted);
    }

    /// Admits a request now or refuses it locally ([`Admit::try_admit`] without the trait).
    ///
    /// # Errors
    ///
    /// [`Throttled`].
    ///
    /// ```
    /// use bulwark::throttle::{AdaptiveThrottle, Config};
    /// let t: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// assert!(t.try_acquire().is_ok()); // nothing refused yet
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&self) -> Result<(), Throttled> {
        let now = self.clock.now();
        let (req, acc) = self.counts_at(now);
        let p = reject_per_million(req, acc, self.k_milli);
        if p == 0 {
            return Ok(());
        }
        // Relaxed: distinct draws, nothing published.
        let k = self.decisions.fetch_add(1, Ordering::Relaxed);
        if hit_per_million(draw(self.seed, k), u64::from(p)) {
            self.count(now, 0);
            return Err(Throttled {
                reject_per_million: p,
            });
        }
        Ok(())
    }

    fn counts_at(&self, now: Instant) -> (u64, u64) {
        let e = now.as_nanos() / self.bucket_ns;
        let (mut req, mut acc) = (0, 0);
        for (i, b) in self.buckets.iter().enumerate() {
            // Relaxed: counts only (see the type's docs).
            let (tag, r, a) = unpack(b.load(Ordering::Relaxed));
            if tag == expected(e, i, N) & TAG_MASK {
                req += r;
                acc += a;
            }
        }
        (req, acc)
    }

    fn count(&self, now: Instant, accepted: u64) {
        let e = now.as_nanos() / self.bucket_ns;
        let b = &self.buckets[(e % N as u64) as usize];
        // Relaxed (load and CAS): the word's own modification order is all that matters.
        let mut cur = b.load(Ordering::Relaxed);
        loop {
            let (tag, r, a) = unpack(cur);
            let (r, a) = if cur != 0 && tag == e & TAG_MASK {
                (r, a)
            } else if cur != 0 && tag.wrapping_sub(e) & TAG_MASK < 1 << (TAG_BITS - 1) {
                return; // a later epoch owns this slot: the sample is older than the window
            } else {
                (0, 0)
            };
            let next = pack(e, (r + 1).min(COUNT_MAX), (a + accepted).min(COUNT_MAX));
            match b.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
}

impl<C: Clock, const N: usize> Admit for AdaptiveThrottle<C, N> {
    type Ticket = ();
    type Rejected = Throttled;

    #[inline]
    fn try_admit(&self) -> Result<(), Throttled> {
        self.try_acquire()
    }

    #[inline]
    fn record(&self, _: (), outcome: Outcome) {
        self.record_outcome(outcome);
    }

    #[inline]
    fn release(&self, _: ()) {}
}

impl<C, const N: usize> fmt::Debug for AdaptiveThrottle<C, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("buckets", &N)
            .field("k_milli", &self.k_milli)
            .finish_non_exhaustive()
    }
}
