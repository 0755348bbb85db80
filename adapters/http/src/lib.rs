//! Deadlines over the wire for [`bulwark`]: the caller's remaining time travels in a header
//! (gRPC's `grpc-timeout`, Envoy's `x-envoy-expected-rq-timeout-ms`, or one you name), and
//! each hop turns it back into a [`Deadline`] that its own retries and timeouts respect.
//!
//! * Server side, [`DeadlineLayer`]: reads the headers into the request's [`Deadline`]
//!   (extensions), takes the earlier of that and the server's own timeout, and answers
//!   `DEADLINE_EXCEEDED` (gRPC) or `504` (HTTP) when the deadline passes first. A handler
//!   hands the deadline to a bulwark retry: `retry.call_with_deadline(deadline, op)` or
//!   `retry::Call::new(Arc::clone(&policy), deadline, op)`, which stops retrying before the
//!   caller gives up instead of making attempts nobody waits for. A
//!   [`Pipeline`](bulwark::pipeline::Pipeline) has no caller-deadline entry point yet (only
//!   its own total timeout): bound its call with
//!   [`timeout_at`](bulwark::timeout::timeout_at)`(clock, deadline, pipeline.call(op))`, which
//!   cuts it at the deadline but does not stop its retries early.
//! * Client side, [`PropagateDeadlineLayer`]: writes the remaining time on outgoing
//!   requests (tonic's `Channel`, a hyper client), and does not send a request whose
//!   deadline has passed.
//! * The formats, for other clients ([`parse_grpc_timeout`], [`format_grpc_timeout`],
//!   [`parse_millis`], [`format_millis`]): typed [`HeaderError`]s, never a panic.
//!
//! Both layers are generic over `http::Request<B>` / `http::Response<B>` (any body with a
//! `Default`, as tonic's, axum's and hyper's have), and over the clock ([`TokioClock`] by
//! default, so tokio's paused time drives them in tests).
//!
//! ```
//! use bulwark::retry::{Backoff, Config, Error, Jitter, Retry};
//! use bulwark_http::DeadlineLayer;
//! use bulwark_tokio::TokioClock;
//! use std::{sync::Arc, time::Duration};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = TokioClock::new();
//! let policy = Arc::new(Retry::new(
//!     Config::new().max_attempts(10).backoff(Backoff::constant(Duration::from_millis(100))).jitter(Jitter::None),
//!     clock,
//! ).unwrap());
//! let server = ServiceBuilder::new().layer(DeadlineLayer::new()).service(service_fn(move |req: http::Request<()>| {
//!     let policy = Arc::clone(&policy);
//!     async move {
//!         let deadline = bulwark_http::deadline(req.extensions());
//!         // A downstream that always fails: retry until the caller's deadline says stop.
//!         let out = policy.call_with_deadline(deadline, || async { Err::<(), _>("down") }).await;
//!         let attempts = out.unwrap_err().attempts();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(attempts))
//!     }
//! }));
//! let t0 = tokio::time::Instant::now();
//! let req = http::Request::builder().header("grpc-timeout", "250m").body(()).unwrap();
//! let attempts = *server.oneshot(req).await.unwrap().body();
//! assert_eq!(attempts, 3); // at 0, 100 and 200 ms; not the ten the policy allows
//! assert_eq!(t0.elapsed(), Duration::from_millis(200)); // answered before the caller's 250 ms
//! # }
//! ```
//!
//! [`Deadline`]: bulwark::timeout::Deadline
//! [`TokioClock`]: bulwark_tokio::TokioClock
#![forbid(unsafe_code)]

mod client;
mod header;
mod response;
mod server;

pub use client::{PropagateDeadline, PropagateDeadlineLayer, PropagateFuture};
pub use header::{
    ENVOY_EXPECTED_TIMEOUT_MS, GRPC_TIMEOUT, GRPC_TIMEOUT_MAX_DIGITS, HeaderError,
    format_grpc_timeout, format_millis, parse_grpc_timeout, parse_millis,
};
pub use server::{DeadlineFuture, DeadlineLayer, DeadlineService, InvalidTimeoutHeader, deadline};
