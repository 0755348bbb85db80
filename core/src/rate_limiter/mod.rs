//! Rate limiter: a token bucket as GCRA in one atomic word; per-key limiters in a fixed table.
//!
//! A bucket holds up to `burst` tokens and refills one token every `period` (the emission
//! interval `T`). The Generic Cell Rate Algorithm keeps the whole bucket in one number, the
//! *theoretical arrival time* (TAT): the instant the bucket is full again.
//!
//! ```text
//! take n at now:   new_tat = max(tat, now) + n·T
//!                  pass  ⇔  new_tat − burst·T ≤ now        (else retry at new_tat − burst·T)
//! ```
//!
//! No timer, no task: tokens refill by arithmetic on the next call. An idle limiter accrues
//! at most the burst. A rejection carries the exact instant the call would pass
//! ([`RateLimited::retry_at`]); asking for more than the burst is its own error
//! ([`InsufficientCapacity`]) and takes nothing.
//!
//! Layers, each usable on its own:
//!
//! * [`gcra`]: the pure step function; [`Machine`]: `&mut self`, `now` is an argument.
//! * [`RateLimiter`]: `&self`, `Sync`, lock-free: a CAS loop around [`gcra`] on one `AtomicU64`.
//! * [`RateLimiter::acquire`]: waits for tokens up to a max wait, with seeded jitter.
//! * [`ShardedRateLimiter`]: `N` of those, for many cores calling one limiter at once (each
//!   caller writes its own shard's cache line; never more generous than one limiter).
//! * [`KeyedMachine`] / [`KeyedRateLimiter`]: one bucket per key, `N` keys, fixed memory.
//!
//! Rate, burst and waits can be changed at run time, through `&self` and lock-free for the
//! shared form ([`RateLimiter::reconfigure`], [`Machine::reconfigure`],
//! [`KeyedRateLimiter::reconfigure`]): the theoretical arrival time is kept (what was spent
//! stays spent, measured in time) and every later call is judged, whole, against the new
//! quota. [`rescale`] is the other choice, keeping the number of tokens in use, for a
//! [`Machine`] you own.
//!
//! # Examples
//!
//! ```
//! use bulwark::rate_limiter::{Config, RateLimiter};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let limiter = RateLimiter::new(
//!     Config::per_second(10).burst(5).max_wait(Duration::from_millis(250)),
//!     &clock,
//! )
//! .unwrap();
//!
//! // A burst of 5 passes at once, the 6th is told exactly when it could pass.
//! for _ in 0..5 {
//!     limiter.try_acquire().unwrap();
//! }
//! assert_eq!(limiter.try_acquire().unwrap_err().retry_at, Instant::from_millis(100));
//!
//! // Or wait for it (up to 250 ms).
//! mock::run(&clock, async {
//!     limiter.acquire(2).await.unwrap();
//!     assert_eq!(clock.now(), Instant::from_millis(200));
//!     // 3 tokens would only be free at 500 ms: past the max wait, so it fails at once.
//!     assert!(limiter.acquire(3).await.is_err());
//! })
//! .unwrap();
//! ```

/// A limiter as a gate ([`Admit`](crate::admission::Admit)): admission takes one token
/// (`try_acquire`); there is nothing to record or release. One body for every limiter with a
/// `try_acquire`; the doc comment before the call is the impl's.
macro_rules! admit_one_token {
    ($(#[$doc:meta])* [$($generics:tt)*] $limiter:ty) => {
        $(#[$doc])*
        impl<$($generics)*> crate::admission::Admit for $limiter {
            type Ticket = ();
            type Rejected = RateLimited;
            const RECORDS: bool = false;

            #[inline]
            fn try_admit(&self) -> Result<(), RateLimited> {
                self.try_acquire()
            }

            #[inline]
            fn record(&self, _: (), _: crate::admission::Outcome) {}

            #[inline]
            fn release(&self, _: ()) {}
        }
    };
}

mod compact;
mod config;
mod error;
mod future;
mod keyed;
mod sharded;
mod shared;
mod state;

pub use compact::ConstRateLimiter;
pub use config::{Config, MAX_RATE_ERROR_PER_MILLE, Waiting};
pub use error::{ConfigError, Denied, InsufficientCapacity, Quota, RateLimited};
pub use future::{Acquire, Bucket};
pub use keyed::{Keyed, KeyedMachine, KeyedRateLimiter, PROBE};
pub use sharded::{ShardHint, ShardReservation, ShardedRateLimiter, StackHint};
pub use shared::RateLimiter;
pub use state::{Gcra, Machine, Reservation, gcra, rescale, reserve};
