#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core
)]

pub mod rng;
pub(crate) mod sync;
#[macro_use]
mod hooks;

pub mod admission;
pub mod bounded;
pub mod bulkhead;
pub mod circuit_breaker;
pub mod classify;
pub mod duration;
pub mod fallback;
pub mod lock;
pub mod mock;
pub mod pipeline;
pub mod pool;
pub mod rate_limiter;
pub mod retry;
pub mod time;
pub mod timeout;

pub use mock::MockClock;
pub use time::{Clock, Instant, Sleep};
