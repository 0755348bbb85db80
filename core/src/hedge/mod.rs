//! Hedging: start the call; if it has not answered after a delay, start a second copy, and so
//! on up to `N` copies in all (the first and `N − 1` hedges); take the first acceptable answer
//! and drop the others. Cuts the tail latency a slow replica or a lost packet causes, for at
//! most `N` times the load on the slow calls only.
//!
//! * [`Config`]: each hedge after a [`Delay`]: fixed, or a percentile of recent
//!   latencies ([`Latencies`], a lock-free histogram the hedge keeps itself, for a percentile
//!   delay only), clamped.
//! * [`Machine`]: the pure schedule: when the next copy starts, given when the call started,
//!   how many copies run and how many failed.
//! * [`Hedge`]: the shared form (`&self`), holding the clock, the classifier (which answers
//!   are acceptable: [`classify`](crate::classify)) and a [`RetryBudget`](crate::retry::RetryBudget):
//!   each hedge takes a token, so hedges and retries sharing one budget cannot exceed it
//!   together.
//! * [`Call`]: the async form, [`Hedge::call`]: every copy is polled inside the one future, in
//!   a fixed array (no spawn, no heap); a copy whose answer is not acceptable lets the next
//!   one start at once; the losers are dropped (cancelled) when the winner answers.
//!
//! # Examples
//!
//! ```
//! use bulwark::hedge::{Config, Delay, Hedge};
//! use bulwark::{Clock, Instant, MockClock, Sleep, mock};
//! use core::cell::Cell;
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! // Two copies: the first, and one hedge 50 ms later.
//! let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(Duration::from_millis(50))), &clock).unwrap();
//! let copy = Cell::new(0);
//! let out = mock::run(&clock, hedge.call(|| {
//!     copy.set(copy.get() + 1);
//!     let (n, clock) = (copy.get(), &clock);
//!     // The first copy is slow (1 s), the hedge answers in 10 ms.
//!     async move {
//!         clock.sleep(Duration::from_millis(if n == 1 { 1_000 } else { 10 })).await;
//!         Ok::<_, ()>(n)
//!     }
//! }));
//! assert_eq!(out.unwrap(), Ok(2)); // the hedge won
//! assert_eq!(clock.now(), Instant::from_millis(60)); // 50 ms delay + 10 ms
//! ```

mod config;
mod future;
mod latencies;
mod shared;
mod state;

pub use config::{Config, ConfigError, Delay};
pub use future::Call;
pub use latencies::Latencies;
pub use shared::Hedge;
pub use state::{Machine, Next};
