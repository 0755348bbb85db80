//! Adaptive concurrency limit: a bulkhead whose limit follows the downstream, growing while
//! latency stays low and shrinking when it rises or calls are dropped, by Netflix
//! concurrency-limits' three algorithms, in integer arithmetic (thousandths; no floats, so it
//! runs the same on a microcontroller): [`Algorithm::Aimd`], [`Algorithm::Vegas`] and
//! [`Algorithm::Gradient2`], between a min and a max.
//!
//! * [`Machine`]: the pure form: [`on_sample`](Machine::on_sample) takes one call's round
//!   trip, the calls in flight and whether it was dropped, and moves the limit.
//! * [`AdaptiveLimit`]: the shared form (`&self`, lock-free: the limit, the in-flight count and
//!   each algorithm's figures are atomics, updated by CAS): an
//!   [`Admit`](crate::admission::Admit) gate for the pipeline and the tower gate layer; a
//!   call's [`Permit`](crate::admission::Permit) measures its round trip.
//! * [`Call`]: the async form, [`AdaptiveLimit::call`].
//!
//! A failed call (by the one classifier) counts as dropped: the downstream shed it or timed
//! out.
//!
//! # Examples
//!
//! ```
//! use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
//! use bulwark::admission::{Outcome, Permit};
//! use bulwark::{MockClock, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(10), &clock).unwrap();
//! assert_eq!(limit.limit(), 10);
//! // A dropped call: the limit backs off by 10 %.
//! Permit::try_new(&limit).unwrap().failure();
//! assert_eq!(limit.limit(), 9);
//! ```

mod config;
mod future;
mod shared;
mod state;

pub use config::{Algorithm, Config, ConfigError};
pub use future::{Call, Error};
pub use shared::{AdaptiveLimit, Ticket};
pub use state::Machine;
