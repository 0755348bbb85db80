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
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// A clock shared by the whole process (its origin is the first call), for the tower
    /// layers whose response futures must not borrow from anything shorter-lived.
    ///
    /// ```
    /// use bulwark::Clock;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let a = bulwark_tokio::TokioClock::global();
    /// assert!(std::ptr::eq(a, bulwark_tokio::TokioClock::global()));
    /// assert!(a.now() < bulwark::Instant::from_secs(3600));
    /// # }
    /// ```
    pub fn global() -> &'static TokioClock {
        static GLOBAL: std::sync::OnceLock<TokioClock> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(TokioClock::new)
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
