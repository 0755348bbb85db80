//! tower middleware: each bulwark pattern as a `Layer` + `Service`.
//!
//! Every clone of a service (and every service a layer builds) shares one state through an
//! `Arc`: clone a service a hundred times for a hundred connections and there is still one
//! breaker. [`ServiceBuilderExt`] adds the layers to a `tower::ServiceBuilder`.
//!
//! | layer | state | rejection (boxed) |
//! |---|---|---|
//! | [`CircuitBreakerLayer`], [`BulkheadLayer`], [`RateLimitLayer`] ([`GateLayer`]) | the gate | the gate's own: [`Rejected`](bulwark::circuit_breaker::Rejected), [`BulkheadFull`](bulwark::bulkhead::BulkheadFull), [`RateLimited`](bulwark::rate_limiter::RateLimited) |
//! | [`KeyedRateLimitLayer`], [`KeyedCircuitBreakerLayer`] ([`KeyedLayer`]) | a table of gates, one per key of the request | the same types as the plain gates |
//! | [`RetryLayer`] | the policy (and its budget) | what the last attempt got |
//! | [`TimeoutLayer`] | none | [`Elapsed`](bulwark::timeout::Elapsed) |
//! | [`PipelineLayer`] | the pipeline and its stages | the stage's own rejection or timeout |
//! | [`HedgeLayer`] | the hedge (its latencies, its budget) | what the first copy got, when every copy failed |
//! | [`FaultLayer`] | the fault injector (switchable at run time) | [`Injected`](bulwark::fault::Injected) |
//!
//! Errors become tower's `BoxError` only here, at the edge. Nobody needs to downcast them:
//! a [`RetryLayer`] outside a gate finds the rejection ([`rejection`]) and waits until its
//! retry instant or answers at once by the pipeline's rule ([`Rejections`]); a
//! [`TimeoutLayer`] outside a retry tells it when the call's time is up; and with the `axum`
//! feature, `bulwark_tokio::axum` turns each one into its HTTP answer.

mod builder;
mod fault;
mod gate;
mod handle;
mod hedge;
mod keyed;
mod retry;

pub use builder::ServiceBuilderExt;
pub use fault::{FaultFuture, FaultLayer, FaultService};
pub use gate::{
    AdaptiveLimitLayer, BulkheadLayer, BulkheadService, CircuitBreakerLayer, CircuitBreakerService,
    GateFuture, GateLayer, GateService, RateLimitLayer, RateLimitService, ShardedRateLimitLayer,
    ThrottleLayer,
};
pub use handle::Handle;
pub use hedge::{HedgeFuture, HedgeLayer, HedgeService};
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
