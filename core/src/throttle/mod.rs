//! Adaptive client-side throttling (Google SRE, "Handling Overload"): when a backend has been
//! refusing requests, a client refuses a share of its own requests locally, before they cost
//! the backend anything, with probability
//!
//! ```text
//! max(0, (requests − K × accepts) / (requests + 1))
//! ```
//!
//! over a sliding time window, where `requests` counts every request the client made or
//! refused itself and `accepts` those the backend answered successfully. With `K = 2` (the
//! default) a client lets through about twice what the backend accepts, so the backend still
//! sees enough traffic to show it has recovered; a lower `K` throttles harder.
//!
//! * [`Machine`]: the pure `&mut self` form (outcomes and decisions at instants you pass).
//! * [`AdaptiveThrottle`]: the shared form, `&self`, lock-free: a window of `N` time buckets,
//!   each one atomic word (its epoch and both counts); an [`Admit`](crate::admission::Admit)
//!   gate, so it goes into a [`Pipeline`](crate::pipeline::Pipeline) or a tower gate layer like
//!   a breaker.
//! * [`Call`]: the async form, [`AdaptiveThrottle::call`]: refused locally, or the operation
//!   runs and its answer is counted (the one [`admission::Call`](crate::admission::Call)).
//! * [`RetryThrottling`]: gRPC's `retryThrottling` (a token count that gates retries and
//!   hedges), a [`RetryBudget`](crate::retry::RetryBudget).
//!
//! Decisions are seeded (the `k`-th decision draws the `k`-th number of the seed's stream), so
//! a test on the mock clock sees the same refusals every run.
//!
//! # Examples
//!
//! ```
//! use bulwark::admission::{Admit, Outcome};
//! use bulwark::throttle::{AdaptiveThrottle, Config};
//! use bulwark::MockClock;
//!
//! let clock = MockClock::new();
//! let throttle: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new().seed(1), &clock).unwrap();
//! // The backend refuses everything for a while: 100 failures, no accept.
//! for _ in 0..100 {
//!     throttle.record_outcome(Outcome::Failure);
//! }
//! // Now the client refuses locally with probability (100 − 0) / 101 ≈ 99 %.
//! assert_eq!(throttle.reject_per_million(), 990_099);
//! let refused = (0..1000).filter(|_| throttle.try_admit().is_err()).count();
//! assert!(refused > 950);
//! ```

mod config;
mod error;
mod future;
mod retry;
mod shared;
mod state;

pub use config::Config;
pub use error::{ConfigError, Throttled};
pub use future::{Call, Error};
pub use retry::RetryThrottling;
pub use shared::AdaptiveThrottle;
pub use state::{Machine, reject_per_million};
