//! [`bulwark`] on tokio: a [`Clock`] and [`Sleep`] over `tokio::time`.
//!
//! The clock reads `tokio::time::Instant`, so `tokio::time::pause()` and
//! `#[tokio::test(start_paused = true)]` drive bulwark's timers in your tests.
//!
//! ```
//! use bulwark_tokio::TokioClock;
//! use bulwark::{Clock, Sleep};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = TokioClock::new();
//! let t0 = clock.now();
//! clock.sleep(Duration::from_secs(60)).await; // virtual time: instant
//! assert_eq!(clock.now() - t0, Duration::from_secs(60));
//! # }
//! ```
#![forbid(unsafe_code)]

pub use bulwark;
use bulwark::{Clock, Instant, Sleep};

pub mod bounded;
mod semaphore;
#[cfg(feature = "tower")]
pub mod tower;

pub use semaphore::{TokioAcquire, TokioPermit, TokioSemaphore};

/// A clock over `tokio::time::Instant`. Its origin is the moment it was created.
///
/// ```
/// use bulwark::Clock;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = bulwark_tokio::TokioClock::new();
/// assert_eq!(clock.now(), bulwark::Instant::ZERO);
/// # }
/// ```
#[derive(Copy, Clone, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

/// Offers bulwark's default jitter seed ([`bulwark::rng`]) a value from OS entropy, once per
/// process (the random keys the standard library seeds `HashMap`s with, mixed with the process
/// id), so default-seeded retries, breakers and limiters of different processes do not jitter
/// in lockstep. Every clock constructor of this crate calls it; a seed set explicitly with
/// [`bulwark::rng::set_default_seed`] wins.
fn seed_from_os_entropy() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        bulwark::rng::offer_default_seed(h.finish());
    });
}

impl TokioClock {
    /// A clock whose origin is now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _clock = bulwark_tokio::TokioClock::new();
    /// # }
    /// ```
    pub fn new() -> Self {
        seed_from_os_entropy();
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// A clock shared by the whole process, for the tower layers whose response futures
    /// must not borrow from anything shorter-lived. Only differences of its readings mean
    /// anything: its origin is set back (a day, or as far as the platform's monotonic clock
    /// allows) from the first call.
    ///
    /// Why set back: with paused time each runtime has its own virtual clock, starting at
    /// the real instant the runtime was built, and a clock reads [`Instant::ZERO`] for any
    /// tokio instant before its origin. An origin taken at the first call could be after the
    /// start of another test's runtime, whose timers would then fire late by the gap. (A
    /// runtime paused more than a day before the first call would still read zero; readings
    /// start near one day, so treat them as instants, not as time since start.)
    ///
    /// ```
    /// use bulwark::{Clock, Sleep};
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let a = bulwark_tokio::TokioClock::global();
    /// assert!(std::ptr::eq(a, bulwark_tokio::TokioClock::global()));
    /// let t0 = a.now();
    /// a.sleep(Duration::from_millis(10)).await;
    /// assert_eq!(a.now() - t0, Duration::from_millis(10));
    /// # }
    /// ```
    pub fn global() -> &'static TokioClock {
        static GLOBAL: std::sync::OnceLock<TokioClock> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| {
            seed_from_os_entropy();
            let now = tokio::time::Instant::now();
            let origin = [86_400, 3_600, 60, 1, 0]
                .into_iter()
                .find_map(|s| now.checked_sub(core::time::Duration::from_secs(s)))
                .unwrap_or(now);
            TokioClock { origin }
        })
    }

    /// The tokio instant that `t` stands for.
    ///
    /// ```
    /// use bulwark::Clock;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let clock = bulwark_tokio::TokioClock::new();
    /// assert_eq!(clock.to_tokio(clock.now()), tokio::time::Instant::now());
    /// # }
    /// ```
    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        // Saturate far in the future: tokio's own instant cannot represent 584 years.
        self.origin
            .checked_add(t.since_origin())
            .unwrap_or_else(|| self.origin + core::time::Duration::from_secs(86_400 * 365 * 30))
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        let d = tokio::time::Instant::now().saturating_duration_since(self.origin);
        Instant::from_nanos(bulwark::time::duration_to_nanos(d))
    }
}

impl Sleep for TokioClock {
    type Sleep<'a> = tokio::time::Sleep;

    fn sleep_until(&self, deadline: Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(self.to_tokio(deadline))
    }
}
