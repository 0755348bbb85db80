//! Fault injection (chaos): fail, slow down or void a share of calls on purpose, to see what
//! the rest of a system does when this dependency misbehaves, before it does so for real.
//!
//! Three faults, each at its own [`Rate`], drawn independently for every call:
//!
//! * **abort**: the call is not made; the caller gets [`Injected::Aborted`] (a downstream
//!   that refuses or is unreachable);
//! * **delay**: the call is made after a delay drawn uniformly from a range (a slow network
//!   or a slow downstream);
//! * **replace**: the call is made, then its outcome is thrown away and the caller gets
//!   [`Injected::Replaced`] (a response lost after the downstream did the work: tests that
//!   retries are safe to repeat).
//!
//! A delay combines with either failure (the failure comes after the delay); an abort wins
//! over a replacement.
//!
//! * [`Machine`]: the pure `&mut self` form, one [`Fault`] per [`decide`](Machine::decide).
//! * [`Injector`]: the shared form, `&self`, lock-free; [`set`](Injector::set) switches its
//!   rates at run time (from an admin endpoint, a test, a feature flag) and
//!   [`disable`](Injector::disable) turns it off. **Off by default and free when off**: an
//!   injector made from [`Config::new`] or disabled costs one atomic load per call and never
//!   draws a random number.
//! * [`Call`]: the async form, [`Injector::call`]: waits the delay on the injector's
//!   [`Sleep`](crate::Sleep), then runs the operation, unless the fault says otherwise.
//!
//! Draws are seeded: with [`Config::seed`], the `k`-th decision of a machine and of an injector
//! is the same in every run (the injector counts its decisions atomically, so with several
//! threads the order of calls decides which call gets which draw).
//!
//! # Examples
//!
//! ```
//! use bulwark::fault::{Config, Error, Injected, Injector, Rate};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! let chaos = Injector::new(Config::new(), &clock).unwrap();
//! // Off: every call goes through untouched.
//! assert_eq!(mock::run(&clock, chaos.call(|| async { Ok::<_, ()>(1) })).unwrap(), Ok(1));
//!
//! // Switched on at run time: every call now waits 200 ms and then is refused.
//! chaos
//!     .set(Config::new().abort(Rate::percent(100)).delay(Rate::percent(100), Duration::from_millis(200), Duration::from_millis(200)))
//!     .unwrap();
//! let out = mock::run(&clock, chaos.call(|| async { Ok::<_, ()>(1) })).unwrap();
//! assert_eq!(out, Err(Error::Injected(Injected::Aborted)));
//! assert_eq!(clock.now(), Instant::from_millis(200));
//! assert_eq!(chaos.totals().aborted, 1);
//! ```

mod config;
mod error;
mod future;
mod shared;
mod state;

pub use config::{Config, Rate};
pub use error::{ConfigError, Error, Injected};
pub use future::Call;
pub use shared::{Injector, Totals};
pub use state::{Fault, Machine};
