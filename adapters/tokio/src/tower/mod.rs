//! tower middleware: each bulwark pattern as a `Layer` + `Service`.
//!
//! Every clone of a service (and every service a layer builds) shares one state through an
//! `Arc`: clone a service a hundred times for a hundred connections and there is still one
//! breaker. Errors become tower's `BoxError` only here, at the edge: a rejection is the core's
//! own error type, boxed, so `err.downcast_ref::<bulwark::circuit_breaker::Rejected>()` finds it.

mod builder;
mod gate;
mod keyed;
mod retry;

pub use builder::ServiceBuilderExt;
pub use gate::{
    BulkheadLayer, BulkheadService, CircuitBreakerLayer, CircuitBreakerService, GateFuture,
    GateLayer, GateService, RateLimitLayer, RateLimitService,
};
pub use keyed::{
    KeyedCircuitBreaker, KeyedCircuitBreakerLayer, KeyedGate, KeyedLayer, KeyedRateLimitLayer,
    KeyedService,
};
pub use retry::{
    Attempts, PipelineFuture, PipelineLayer, PipelineService, PolicyLayer, PolicyService,
    ReadyCall, Rejections, RetryFuture, RetryLayer, RetryService, TimeoutFuture, TimeoutLayer,
    TimeoutService, TokioPipeline, TokioRetry, rejection,
};

/// tower's boxed error: what the services here return.
///
/// ```
/// let e: bulwark_tokio::tower::BoxError = Box::new(bulwark::bulkhead::BulkheadFull);
/// assert!(e.downcast_ref::<bulwark::bulkhead::BulkheadFull>().is_some());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
