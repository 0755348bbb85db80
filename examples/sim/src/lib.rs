//! The bulwark policy simulator: bulwark's real primitives (circuit breaker, retry, retry
//! budget, rate limiter, bulkhead, timeouts, composed by the core's
//! [`Pipeline`](bulwark::pipeline::Pipeline)) for many simulated clients against a
//! simulated downstream with capacity, on the mock clock, deterministic for a seed.
//!
//! * [`scenario`]: who calls, what they call, what happens to it (built-ins and TOML files).
//! * [`policy`]: what the clients wrap their calls in: the core's configs, read from TOML by
//!   the core's own `serde` feature.
//! * [`engine`]: the discrete-event run of one policy on one scenario; every request is a
//!   real [`Pipeline`](bulwark::pipeline::Pipeline) call future.
//! * [`downstream`]: the model of the service being called.
//! * [`metrics`]: the summary and the series a run yields.
//! * [`report`]: the terminal summary, CSV, SVG plots and the HTML page.
//! * [`files`], [`units`], [`rng`]: file errors with lines, durations as people read them,
//!   the seeded random numbers.
//!
//! ```
//! use bulwark_sim::{engine::run, policy::Policy, scenario::Scenario};
//! use core::time::Duration;
//!
//! let mut s = Scenario::builtin("steady").unwrap();
//! s.duration = Duration::from_secs(5);
//! let r = run(&s, &Policy::retry_only(), &mut ()).unwrap();
//! assert!(r.summary.success_rate > 0.99);
//! assert!(r.summary.requests > 7_000); // 1500 req/s for 5 s
//! ```

pub mod downstream;
pub mod engine;
pub mod files;
pub mod metrics;
pub mod policy;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod units;
