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

#[cfg(feature = "axum")]
pub mod axum;
pub mod bounded;
mod semaphore;
mod shard;
#[cfg(feature = "tower")]
pub mod tower;

pub use semaphore::{TokioSemaphore, TokioWaiter};
pub use shard::ThreadHint;

/// A clock over `tokio::time::Instant`, with one origin for the whole process.
///
/// Every `TokioClock` reads the same instants: a retry instant a breaker reports on one clock
/// means the same on any other, so instants from different `TokioClock`s cannot be mixed up.
/// It is a zero-sized `Copy` handle: hold it by value, never behind a reference, and a
/// future that waits on it borrows nothing.
///
/// Only differences of its readings mean anything. The origin is set back (a day, or as far
/// as the platform's monotonic clock allows) from the first reading in the process. Why set
/// back: with paused time each tokio runtime has its own virtual clock, starting at the real
/// instant the runtime was built, and a clock reads [`Instant::ZERO`] for any tokio instant
/// before its origin. An origin taken at the first reading could be after the start of
/// another test's runtime, whose timers would then fire late by the gap.
///
/// ```
/// use bulwark::{Clock, Sleep};
/// use bulwark_tokio::TokioClock;
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (a, b) = (TokioClock::new(), TokioClock::new());
/// let t0 = a.now();
/// a.sleep(Duration::from_millis(10)).await;
/// assert_eq!(b.now() - t0, Duration::from_millis(10)); // one origin: b agrees with a
/// assert_eq!(std::mem::size_of::<TokioClock>(), 0);
/// # }
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TokioClock;

/// Offers bulwark's default jitter seed ([`bulwark::rng`]) a value from OS entropy, once per
/// process (the random keys the standard library seeds `HashMap`s with, mixed with the process
/// id), so default-seeded retries, breakers and limiters of different processes do not jitter
/// in lockstep. A seed set with [`bulwark::rng::set_default_seed`] wins.
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
    /// The process's tokio clock (the type is a zero-sized handle; all are the same clock).
    /// The first call in the process also offers bulwark's default jitter seed a value from OS
    /// entropy.
    ///
    /// ```
    /// use bulwark::Clock;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let clock = bulwark_tokio::TokioClock::new();
    /// assert!(clock.now() <= bulwark_tokio::TokioClock::new().now());
    /// # }
    /// ```
    pub fn new() -> Self {
        let _ = origin();
        TokioClock
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
        let origin = origin();
        // Saturate far in the future: tokio's own instant cannot represent 584 years.
        origin
            .checked_add(t.since_origin())
            .unwrap_or_else(|| origin + core::time::Duration::from_secs(86_400 * 365 * 30))
    }
}

/// The process-wide origin of [`TokioClock`]: set back from the first reading (see the type's
/// docs for why), fixed from then on.
fn origin() -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(|| {
        seed_from_os_entropy();
        // A panicking operation counts as a failure on the permit it held.
        bulwark::admission::set_panic_probe(std::thread::panicking);
        let now = tokio::time::Instant::now();
        [86_400, 3_600, 60, 1, 0]
            .into_iter()
            .find_map(|s| now.checked_sub(core::time::Duration::from_secs(s)))
            .unwrap_or(now)
    })
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        let d = tokio::time::Instant::now().saturating_duration_since(origin());
        Instant::from_nanos(bulwark::time::duration_to_nanos(d))
    }
}

impl Sleep for TokioClock {
    type Sleep = tokio::time::Sleep;

    fn sleep_until(&self, deadline: Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(self.to_tokio(deadline))
    }
}
