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
mod unwind;
#[macro_use]
mod hooks;

pub mod adaptive;
pub mod admission;
pub mod bounded;
pub mod bulkhead;
pub mod circuit_breaker;
pub mod classify;
pub mod duration;
pub mod fallback;
pub mod fault;
pub mod hedge;
pub mod lock;
pub mod mock;
pub mod pipeline;
pub mod pool;
pub mod rate_limiter;
pub mod retry;
pub mod throttle;
pub mod time;
pub mod timeout;

pub use mock::MockClock;
pub use time::{Clock, Instant, Sleep};

// `defmt::Format` on every public state, error, event and figure (feature `defmt`): a
// derive removed by mistake fails this build, which `.ci/run` makes for thumbv7em.
#[cfg(feature = "defmt")]
const _: () = {
    fn formats<T: defmt::Format>() {}
    #[allow(dead_code)]
    fn all<E: defmt::Format>() {
        formats::<Instant>();
        formats::<duration::ParseError>();
        formats::<mock::Stalled>();
        formats::<admission::Outcome>();
        formats::<classify::Verdict>();
        formats::<circuit_breaker::State>();
        formats::<circuit_breaker::Transition>();
        formats::<circuit_breaker::Totals>();
        formats::<circuit_breaker::Metrics>();
        formats::<circuit_breaker::WindowStats>();
        formats::<circuit_breaker::Rejected>();
        formats::<circuit_breaker::Error<E>>();
        formats::<circuit_breaker::ConfigError>();
        formats::<circuit_breaker::SnapshotError>();
        formats::<rate_limiter::RateLimited>();
        formats::<rate_limiter::InsufficientCapacity>();
        formats::<rate_limiter::Denied>();
        formats::<rate_limiter::ConfigError>();
        formats::<bulkhead::BulkheadFull>();
        formats::<bulkhead::QueueError>();
        formats::<bulkhead::Rejected>();
        formats::<bulkhead::ConfigError>();
        formats::<bulkhead::Metrics>();
        formats::<bulkhead::Totals>();
        formats::<retry::Stop>();
        formats::<retry::Decision>();
        formats::<retry::Totals>();
        formats::<retry::Finish>();
        formats::<retry::Error<E>>();
        formats::<retry::ConfigError>();
        formats::<pool::Error<E>>();
        formats::<pool::TryAcquireError>();
        formats::<pool::ConfigError>();
        formats::<pool::Metrics>();
        formats::<pool::Totals>();
        formats::<timeout::Elapsed>();
        formats::<timeout::Error<E>>();
        formats::<timeout::Deadline>();
        formats::<pipeline::Error<E>>();
        formats::<pipeline::Layer>();
        formats::<pipeline::Rejection>();
        formats::<pipeline::Waits>();
        formats::<fault::Injected>();
        formats::<fault::Error<E>>();
        formats::<fault::ConfigError>();
        formats::<fault::Fault>();
        formats::<fault::Rate>();
        formats::<fault::Totals>();
        formats::<adaptive::ConfigError>();
        formats::<adaptive::Error<E>>();
        formats::<hedge::Next>();
        formats::<hedge::ConfigError>();
        formats::<throttle::Throttled>();
        formats::<throttle::ConfigError>();
        formats::<throttle::Error<E>>();
    }
};
