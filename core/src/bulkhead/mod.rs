//! Bulkhead: at most a set number of calls at once; shed or queue the rest.
//!
//! A call takes a [`Permit`] and gives it back when the permit is dropped: when the call
//! ends, fails, panics or its future is cancelled. Permits never leak.
//!
//! * [`Bulkhead::try_acquire`]: a permit now or [`BulkheadFull`]; with [`AtomicSemaphore`]
//!   one lock-free CAS, usable from an interrupt handler. This is the plain "shed when no
//!   permit is free" answer to saturation.
//! * [`Bulkhead::acquire`]: waits up to a max wait through a [`Semaphore`]. The core ships
//!   [`QueueSemaphore`], a bounded wait queue of `Q` fixed waker slots in front of the
//!   permits that, once full, rejects the newest caller or sheds the oldest waiter
//!   ([`Overflow`]): the bounded-queue answer to saturation. Its wait slots sit behind a
//!   [lock strategy](crate::lock) `L`: a spin lock by default (not for interrupt handlers), a
//!   critical section for use from interrupt handlers. Runtime adapters implement
//!   [`Semaphore`] over their runtime's semaphore.
//! * [`Compartments`]: isolated bulkheads per downstream in one fixed array.
//!
//! Every rejection is a typed [`Rejected`]; [`Metrics`] are the gauges (permits in use, the
//! limit), [`Totals`] the counts (rejections, waits, timeouts).
//!
//! The limit and the max wait change at run time through `&self`
//! ([`Bulkhead::set_max_concurrent`] over a [`Resize`] semaphore, [`Bulkhead::set_max_wait`]),
//! keeping every count and permit; calls already waiting see the new settings. [`Events`]
//! tell each call permitted, rejected (and why) and finished ([`Bulkhead::with_events`]).
//!
//! # Where it differs from resilience4j
//!
//! | | bulwark | resilience4j `SemaphoreBulkhead` |
//! |---|---|---|
//! | shrinking the limit below the calls in flight | returns at once; permits given back are retired until the calls in flight fit | `changeConfig` blocks the caller, acquiring the surplus permits |
//! | a waiter when the max wait changes | measures the new wait from when it started | keeps the wait it started with |
//!
//! # Examples
//!
//! ```
//! use bulwark::bulkhead::{Bulkhead, Config, Overflow, QueueSemaphore, Rejected};
//! use bulwark::{Clock, Instant, MockClock, Sleep, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let bulkhead: Bulkhead<QueueSemaphore<8>, _> = Bulkhead::queued(
//!     Config::new(1).max_wait(Duration::from_millis(300)).overflow(Overflow::RejectNewest),
//!     &clock,
//! )
//! .unwrap();
//!
//! mock::run(&clock, async {
//!     let permit = bulkhead.acquire().await.unwrap();
//!     assert_eq!(bulkhead.try_acquire().map(drop).unwrap_err(), bulwark::bulkhead::BulkheadFull);
//!     clock.sleep(Duration::from_millis(100)).await;
//!     drop(permit);
//!     let _again = bulkhead.acquire().await.unwrap();
//!     // Held: the next caller waits 300 ms, then gives up at exactly the deadline.
//!     assert_eq!(bulkhead.acquire().await.unwrap_err(), Rejected::Timeout);
//!     assert_eq!(clock.now(), Instant::from_millis(400));
//! })
//! .unwrap();
//! assert_eq!(bulkhead.totals().timed_out, 1);
//! ```

mod compartments;
mod config;
mod error;
mod future;
mod shared;
mod state;

pub use crate::admission::Permit;
pub use compartments::{CompartmentKey, Compartments};
pub use config::Config;
pub use error::{BulkheadFull, ConfigError, QueueError, Rejected};
pub use future::Acquire;
pub use shared::{Bulkhead, Metrics, Totals};
hooks! {
    /// What a [`Bulkhead`] tells as calls go through it ([`Bulkhead::with_events`]):
    /// resilience4j's bulkhead events `CALL_PERMITTED`, `CALL_REJECTED` and `CALL_FINISHED`.
    /// The one hook convention (`()` for none, `&E` shared, `(A, B)` both); called on the
    /// caller's thread, so keep them short (an interrupt handler's too, with
    /// [`AtomicSemaphore`]).
    ///
    /// ```
    /// use bulwark::bulkhead::{Events, Rejected};
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// struct Rejections(AtomicU32);
    /// impl Events for Rejections {
    ///     fn on_rejected(&self, _why: Rejected) { self.0.fetch_add(1, Ordering::Relaxed); }
    /// }
    /// let r = Rejections(AtomicU32::new(0));
    /// (&r, ()).on_rejected(Rejected::Timeout);
    /// assert_eq!(r.0.load(Ordering::Relaxed), 1);
    /// ```
    pub trait Events {
        /// A call got a permit.
        fn on_permitted(&self);
        /// A call was turned away, for the reason given.
        fn on_rejected(&self, why: Rejected);
        /// A call that held a permit gave it back (it ended, failed, or was dropped).
        fn on_finished(&self);
    }
}

pub use state::{
    AtomicSemaphore, Overflow, QueueSemaphore, QueueWaiter, Resize, Semaphore, TrySemaphore,
};
