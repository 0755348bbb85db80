//! The shared, lock-free form: [`Injector`].

use core::fmt;

use super::config::Config;
use super::error::{ConfigError, Injected};
use super::state::{Fault, decide, draw};
use crate::sync::{AtomicU64, Ordering};
use crate::time::duration_to_nanos;

/// A fault injector shared by every call through it (`&self`, `Sync`, lock-free, no
/// allocation), switchable at run time.
///
/// `S` is the [`Sleep`](crate::Sleep) delays wait on (for [`call`](Injector::call)); the
/// deciding methods do not use it.
///
/// # Memory ordering
///
/// The three rates are one atomic word, so a call sees either the old rates or the new ones,
/// never a mix; `0` means off, and an off injector does nothing but load that word. The delay
/// range is two more words stored *before* the rates (Relaxed) and published by the rates'
/// Release store: a call whose Acquire load sees the new rates sees the new range too. A call
/// that still sees the old rates may see the new range (harmless: it only moves a delay). The
/// decision counter is a Relaxed `fetch_add`: it hands out distinct draws and publishes nothing.
///
/// ```
/// use bulwark::fault::{Config, Injector, Rate};
/// use bulwark::MockClock;
/// let clock = MockClock::new();
/// let chaos = Injector::new(Config::new().replace(Rate::ALWAYS), &clock).unwrap();
/// assert!(chaos.decide().fail.is_some());
/// chaos.disable();
/// assert!(chaos.decide().is_none());
/// ```
pub struct Injector<S> {
    rates: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
    seed: u64,
    decisions: AtomicU64,
    aborted: AtomicU64,
    replaced: AtomicU64,
    delayed: AtomicU64,
    pub(super) sleeper: S,
}

/// What an [`Injector`] has injected since it was made: counts, never reset (wrapping).
///
/// ```
/// use bulwark::fault::{Config, Injector, Rate};
/// let chaos = Injector::new(Config::new().abort(Rate::ALWAYS), bulwark::MockClock::new()).unwrap();
/// chaos.decide();
/// let t = chaos.totals();
/// assert_eq!((t.decided, t.aborted, t.replaced, t.delayed), (1, 1, 0, 0));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Decisions drawn while on (calls made while off are not counted).
    pub decided: u64,
    /// Calls refused.
    pub aborted: u64,
    /// Calls whose outcome was replaced.
    pub replaced: u64,
    /// Calls delayed.
    pub delayed: u64,
}

impl<S> Injector<S> {
    /// An injector for `cfg`, waiting its delays on `sleeper` (seeded from
    /// [`rng::next_seed`](crate::rng::next_seed) when the config has no seed).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::fault::{Config, ConfigError, Injector, Rate};
    /// let clock = bulwark::MockClock::new();
    /// assert!(Injector::new(Config::new(), &clock).unwrap().is_off());
    /// assert_eq!(Injector::new(Config::new().abort(Rate::percent(200)), &clock).err(), Some(ConfigError::RateAboveAll));
    /// ```
    pub fn new(cfg: Config, sleeper: S) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Injector {
            rates: AtomicU64::new(cfg.word()),
            min_ns: AtomicU64::new(duration_to_nanos(cfg.delay_min)),
            max_ns: AtomicU64::new(duration_to_nanos(cfg.delay_max)),
            seed: match cfg.seed {
                Some(s) => s,
                None => crate::rng::next_seed(),
            },
            decisions: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            sleeper,
        })
    }

    /// The fault of the next call (one atomic load when off).
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector, Machine, Rate};
    /// let cfg = Config::new().abort(Rate::percent(50)).replace(Rate::percent(50)).seed(3);
    /// let chaos = Injector::new(cfg, bulwark::MockClock::new()).unwrap();
    /// let mut machine = Machine::new(cfg).unwrap();
    /// assert!((0..1000).all(|_| chaos.decide() == machine.decide())); // one sequence
    /// ```
    #[inline]
    pub fn decide(&self) -> Fault {
        // Acquire: pairs with the Release store of `set`, so the range read below is at least
        // the one stored with these rates.
        let rates = self.rates.load(Ordering::Acquire);
        if rates == 0 {
            return Fault::NONE;
        }
        self.draw(rates)
    }

    /// The draw of an injector that is on: out of line, so the off path stays one load.
    #[inline(never)]
    fn draw(&self, rates: u64) -> Fault {
        // Relaxed (all four counters): distinct counts, nothing published.
        let k = self.decisions.fetch_add(1, Ordering::Relaxed);
        let fault = decide(
            rates,
            self.min_ns.load(Ordering::Relaxed),
            self.max_ns.load(Ordering::Relaxed),
            draw(self.seed, k),
        );
        match fault.fail {
            Some(Injected::Aborted) => _ = self.aborted.fetch_add(1, Ordering::Relaxed),
            Some(Injected::Replaced) => _ = self.replaced.fetch_add(1, Ordering::Relaxed),
            None => {}
        }
        if !fault.delay.is_zero() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }

    /// Switches to `cfg` (its seed is ignored: the injector keeps its own stream).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run; the injector keeps its rates.
    ///
    /// ```
    /// use bulwark::fault::{Config, ConfigError, Injector, Rate};
    /// let chaos = Injector::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// chaos.set(Config::new().abort(Rate::ALWAYS)).unwrap();
    /// assert!(chaos.decide().fail.is_some());
    /// assert_eq!(chaos.set(Config::new().abort(Rate::percent(101))), Err(ConfigError::RateAboveAll));
    /// assert!(chaos.decide().fail.is_some()); // unchanged
    /// ```
    pub fn set(&self, cfg: Config) -> Result<(), ConfigError> {
        cfg.validate()?;
        // Relaxed: published by the Release store of the rates below.
        self.min_ns
            .store(duration_to_nanos(cfg.delay_min), Ordering::Relaxed);
        self.max_ns
            .store(duration_to_nanos(cfg.delay_max), Ordering::Relaxed);
        // Release: pairs with the Acquire load in `decide`.
        self.rates.store(cfg.word(), Ordering::Release);
        Ok(())
    }

    /// Turns every fault off (until the next [`set`](Injector::set)).
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector, Rate};
    /// let chaos = Injector::new(Config::new().abort(Rate::ALWAYS), bulwark::MockClock::new()).unwrap();
    /// chaos.disable();
    /// assert!(chaos.is_off());
    /// ```
    pub fn disable(&self) {
        // Release: as in `set`.
        self.rates.store(0, Ordering::Release);
    }

    /// Whether nothing is injected now.
    ///
    /// ```
    /// let chaos = bulwark::fault::Injector::new(bulwark::fault::Config::new(), bulwark::MockClock::new()).unwrap();
    /// assert!(chaos.is_off());
    /// ```
    pub fn is_off(&self) -> bool {
        // Relaxed: a snapshot.
        self.rates.load(Ordering::Relaxed) == 0
    }

    /// The counts so far.
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector, Rate};
    /// let chaos = Injector::new(Config::new(), bulwark::MockClock::new()).unwrap();
    /// chaos.decide(); // off: not counted
    /// assert_eq!(chaos.totals().decided, 0);
    /// ```
    pub fn totals(&self) -> Totals {
        // Relaxed: a snapshot of independent counters.
        Totals {
            decided: self.decisions.load(Ordering::Relaxed),
            aborted: self.aborted.load(Ordering::Relaxed),
            replaced: self.replaced.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
        }
    }
}

impl<S> fmt::Debug for Injector<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("off", &self.is_off())
            .field("totals", &self.totals())
            .finish_non_exhaustive()
    }
}
