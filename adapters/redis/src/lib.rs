//! A fleet-wide rate limit on Redis or Valkey: bulwark's GCRA as one Lua script, with the
//! same answers as the in-process [`KeyedRateLimiter`](bulwark::rate_limiter::KeyedRateLimiter),
//! and bulwark's own patterns protecting it.
//!
//! When a service runs on many machines, a per-process limiter multiplies the quota by the
//! number of instances. [`RedisRateLimiter`] keeps one bucket per key in Redis, so the whole
//! fleet shares it:
//!
//! * one round trip per check: `EVALSHA` of a script loaded once (reloaded on `NOSCRIPT`), on
//!   one multiplexed connection that reconnects; no Redis module, so managed Redis and Valkey
//!   work;
//! * the core's semantics exactly: take `n`; a rejection carries the earliest instant the call
//!   would pass; more than the burst is its own error; an idle key accrues at most the burst;
//!   keys expire when their bucket is full again, so Redis holds only the keys in use;
//! * Redis `TIME` as the clock, so instances with skewed clocks agree ([`TimeSource`]);
//! * a bulwark timeout and circuit breaker around every Redis call, and a [`Degradation`]
//!   when Redis cannot answer: fail open, fail closed, or a local in-process limiter with this
//!   instance's share of the quota; an [`Event`] on the switch and on the recovery;
//! * a tower layer keyed by a request key ([`RedisRateLimitLayer`]).
//!
//! # The script's arithmetic
//!
//! ```text
//! new_tat  = max(tat, now) + n·T          pass ⇔ new_tat − b·T ≤ now
//! ```
//!
//! Lua numbers are doubles, exact only up to 2⁵³; nanoseconds since the Unix epoch are about
//! 2⁶⁰. The script holds every instant and duration as two exact numbers (whole seconds,
//! and the nanoseconds below them) and only adds, subtracts and compares them; `n·T` and
//! `b·T` are multiplied in Rust (`u64`). So the whole range of the core's instants (0 to
//! 2⁶⁴ − 1 ns) is exact, including the core's "never" past its end, and the conformance
//! test compares the answers with the core's bit for bit. The key holds the theoretical
//! arrival time as a decimal number of nanoseconds (`GET` it to look).
//!
//! # Servers
//!
//! Tested against Redis 7 (`redis-server` started by the tests). The script touches one key
//! per call, so it is valid on Redis Cluster too, but this crate connects to one node (a
//! primary, a proxy, or a managed endpoint) through redis-rs's `ConnectionManager`. Valkey
//! speaks the same protocol and scripting API; it was not part of the test runs. Redis
//! before 5 needs the script's `redis.replicate_commands()` (called there automatically);
//! Redis 7 and Valkey skip it.
//!
//! # Examples
//!
//! ```no_run
//! use bulwark::rate_limiter::Config as Limit;
//! use bulwark_redis::{Config, Degradation, Error, RedisRateLimiter};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 100 requests a second per user across the fleet, bursts of 20; 8 instances, so each
//! // keeps an eighth of that when Redis is down.
//! let limit = Limit::per_second(100).burst(20);
//! let cfg = Config::new(limit)
//!     .prefix("api:user:")
//!     .timeout(Duration::from_millis(20))
//!     .degradation(Degradation::local_share(limit, 8)?);
//! let limiter = RedisRateLimiter::new(redis::Client::open("redis://127.0.0.1/")?, cfg)?;
//! limiter.on_event(|e| eprintln!("{e}")); // "rate limit degraded: …" / "… recovered …"
//!
//! match limiter.try_acquire("42", 1).await {
//!     Ok(()) => println!("serve"),
//!     Err(Error::RateLimited(r)) => println!("429, Retry-After: {} s", r.retry_after.as_secs() + 1),
//!     Err(e) => println!("503: {e}"),
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub use bulwark;
pub use redis;

mod alarm;
mod config;
mod error;
mod limiter;
mod script;
mod tower;

pub use config::{Config, Degradation, Event, MAX_EXPIRY_SLACK, TimeSource};
pub use error::{Cause, ConfigError, Error};
pub use limiter::{LOCAL_KEYS, RedisRateLimiter, Totals};
pub use tower::{RedisRateLimitFuture, RedisRateLimitLayer, RedisRateLimitService};
