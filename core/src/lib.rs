#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod rng;
pub(crate) mod sync;

pub mod circuit_breaker;
pub mod mock;
pub mod retry;
pub mod time;
pub mod timeout;

pub use mock::MockClock;
pub use time::{Clock, Instant, Sleep};
