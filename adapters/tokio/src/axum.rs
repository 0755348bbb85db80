//! axum answers for bulwark's rejections: each one turns into the response a client can act
//! on (feature `axum`).
//!
//! | rejection | status | `Retry-After` |
//! |---|---|---|
//! | circuit breaker open ([`Rejected`]) | 503 Service Unavailable | the breaker's retry instant (none when forced open) |
//! | rate limited ([`RateLimited`]) | 429 Too Many Requests | the limiter's exact pass instant (none for a call that can never pass) |
//! | bulkhead full ([`BulkheadFull`]) | 503 Service Unavailable | none: a slot may free up at any moment |
//! | timed out ([`Elapsed`]) | 504 Gateway Timeout | none |
//! | anything else in a `BoxError` | 500 Internal Server Error | none (the error's text is not sent) |
//!
//! `Retry-After` is in whole seconds, rounded up (RFC 9110 `delay-seconds`: a client that
//! comes back after the advertised wait must find the gate open), and at least 1: a wait of
//! 1.2 s is sent as `2`, and a wait of 0 (a half-open breaker whose probes are all out) or
//! up to one second as `1` — a rejection means "not now", and `0` would invite a retry that
//! the same gate refuses. [`retry_after_secs`] is the rounding.
//!
//! The body is the rejection's own text (`circuit breaker open; retry in 20.0 s`), one line.
//!
//! Two ways in:
//!
//! * Around routes: tower layers return a `BoxError`, which axum needs turned into a
//!   response; [`handle_error`] is the function for axum's `HandleErrorLayer`.
//! * In a handler: [`ErrorResponse`] implements `IntoResponse` for each rejection type and
//!   for a `BoxError` (a newtype: neither axum's trait nor bulwark's types are this crate's),
//!   and `?` converts a `BoxError` into it.
//!
//! A breaker (or retry) around a route must judge responses, not errors: a handler that
//! failed still answers `Ok(response)`. [`ServerErrors`] counts 5xx answers as failures.
//!
//! # Examples
//!
//! ```
//! use axum::{Router, error_handling::HandleErrorLayer, routing::get};
//! use bulwark::rate_limiter::{Config, RateLimiter};
//! use bulwark_tokio::{TokioClock, axum::handle_error, tower::ServiceBuilderExt};
//! use std::sync::Arc;
//! use tower::{ServiceBuilder, ServiceExt};
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let limiter = Arc::new(RateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap());
//! let app: Router = Router::new().route(
//!     "/",
//!     get(|| async { "hello" }).layer(
//!         ServiceBuilder::new()
//!             .layer(HandleErrorLayer::new(handle_error))
//!             .rate_limiter(limiter),
//!     ),
//! );
//! let get = || axum::http::Request::get("/").body(axum::body::Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 200);
//! let no = app.oneshot(get()).await.unwrap();
//! assert_eq!(no.status(), 429);
//! assert_eq!(no.headers()["retry-after"], "1");
//! # }
//! ```

use std::time::Duration;

use axum_core::response::{IntoResponse, Response};
use bulwark::bulkhead::BulkheadFull;
use bulwark::circuit_breaker::Rejected;
use bulwark::classify::{Classify, Verdict};
use bulwark::pipeline::{self, Rejection};
use bulwark::rate_limiter::RateLimited;
use bulwark::timeout::Elapsed;
use http::{HeaderValue, StatusCode, header};

use crate::tower::{BoxError, rejection};

/// A wait as `Retry-After` seconds: whole seconds, rounded up, at least 1 (see the
/// [module](self) docs for why); saturates at `u64::MAX`.
///
/// ```
/// use bulwark_tokio::axum::retry_after_secs;
/// use std::time::Duration;
/// assert_eq!(retry_after_secs(Duration::from_millis(1_200)), 2);
/// assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
/// assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
/// assert_eq!(retry_after_secs(Duration::ZERO), 1);
/// assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let up = if wait.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    };
    up.max(1)
}

/// A plain-text answer with `status`, the rejection's text, and `Retry-After` when a wait
/// is known.
fn answer(status: StatusCode, wait: Option<Duration>, text: &dyn std::fmt::Display) -> Response {
    let mut response = (status, format!("{text}\n")).into_response();
    if let Some(wait) = wait {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        );
    }
    response
}

/// The answer to a circuit breaker's, limiter's or bulkhead's rejection (the table in the
/// [module](self) docs).
fn rejection_response(r: &Rejection) -> Response {
    match r {
        Rejection::CircuitOpen(r) => ErrorResponse(*r).into_response(),
        Rejection::RateLimited(r) => ErrorResponse(*r).into_response(),
        Rejection::BulkheadFull(r) => ErrorResponse(*r).into_response(),
        // `Rejection` is non-exhaustive: a gate added later is at least a 503.
        other => answer(StatusCode::SERVICE_UNAVAILABLE, None, other),
    }
}

/// The answer to any error a bulwark layer returns (the table in the [module](self) docs):
/// a rejection found in it or down its `source()` chain, a timeout, or else a 500 that does
/// not show the error's text.
///
/// ```
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark_tokio::{axum::error_response, tower::BoxError};
/// let e: BoxError = Box::new(BulkheadFull);
/// assert_eq!(error_response(&*e).status(), 503);
/// let other: BoxError = "secret detail".into();
/// assert_eq!(error_response(&*other).status(), 500);
/// ```
pub fn error_response(err: &(dyn std::error::Error + 'static)) -> Response {
    if let Some(r) = rejection(err) {
        return rejection_response(&r);
    }
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(elapsed) = e.downcast_ref::<Elapsed>() {
            return ErrorResponse(*elapsed).into_response();
        }
        next = e.source();
    }
    answer(StatusCode::INTERNAL_SERVER_ERROR, None, &"internal error")
}

/// The function for axum's `HandleErrorLayer`: the answer to an error of the layers below
/// it ([`error_response`]).
///
/// ```
/// use axum::{Router, error_handling::HandleErrorLayer, routing::get};
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark_tokio::{TokioClock, axum::handle_error, tower::ServiceBuilderExt};
/// use std::sync::Arc;
/// use tower::{ServiceBuilder, ServiceExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(1), TokioClock::new()).unwrap());
/// breaker.force_open();
/// let app: Router = Router::new().route("/", get(|| async { "hello" }).layer(
///     ServiceBuilder::new().layer(HandleErrorLayer::new(handle_error)).circuit_breaker(breaker),
/// ));
/// let res = app.oneshot(axum::http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 503);
/// assert!(res.headers().get("retry-after").is_none()); // forced open: no instant is known
/// # }
/// ```
pub async fn handle_error(err: BoxError) -> Response {
    error_response(&*err)
}

/// An error as an axum response: `IntoResponse` for each of bulwark's rejections, for a
/// timeout, for a pipeline's error and for a `BoxError` from a layer (the table in the
/// [module](self) docs). A newtype because neither axum's `IntoResponse` nor bulwark's
/// error types belong to this crate.
///
/// A handler returns `Result<T, ErrorResponse>` and uses `?` on a layered service's
/// `BoxError`:
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark_tokio::{TokioClock, axum::ErrorResponse, tower::ServiceBuilderExt};
/// use std::sync::Arc;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// let breaker = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(1), clock).unwrap());
/// let client = ServiceBuilder::new()
///     .circuit_breaker(breaker)
///     .service(service_fn(|()| async { Err::<&str, _>("upstream 500") }));
///
/// async fn handler(client: impl tower::Service<(), Response = &'static str, Error = bulwark_tokio::tower::BoxError>) -> Result<&'static str, ErrorResponse> {
///     Ok(client.oneshot(()).await?)
/// }
/// assert_eq!(handler(client.clone()).await.into_response().status(), 500); // its own error
/// let open = handler(client).await.into_response(); // the failure opened the breaker
/// assert_eq!(open.status(), 503);
/// assert_eq!(open.headers()["retry-after"], "30"); // the default open time
/// # }
/// ```
#[derive(Debug)]
pub struct ErrorResponse<E = BoxError>(pub E);

impl From<BoxError> for ErrorResponse {
    fn from(e: BoxError) -> Self {
        ErrorResponse(e)
    }
}

/// [`error_response`].
impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        error_response(&*self.0)
    }
}

/// 503, with `Retry-After` unless forced open.
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::{Instant, circuit_breaker::Rejected};
/// use bulwark_tokio::axum::ErrorResponse;
/// let r = Rejected::new(Some(Instant::from_millis(4_500)), Instant::ZERO);
/// let res = ErrorResponse(r).into_response();
/// assert_eq!(res.status(), 503);
/// assert_eq!(res.headers()["retry-after"], "5"); // 4.5 s, rounded up
/// ```
impl IntoResponse for ErrorResponse<Rejected> {
    fn into_response(self) -> Response {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            self.0.retry_after(),
            &self.0,
        )
    }
}

/// 429, with `Retry-After` unless the call can never pass.
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::{Instant, rate_limiter::RateLimited};
/// use bulwark_tokio::axum::ErrorResponse;
/// let res = ErrorResponse(RateLimited::new(Instant::from_millis(250), Instant::ZERO)).into_response();
/// assert_eq!(res.status(), 429);
/// assert_eq!(res.headers()["retry-after"], "1"); // 250 ms, rounded up
/// assert!(ErrorResponse(RateLimited::NEVER).into_response().headers().get("retry-after").is_none());
/// ```
impl IntoResponse for ErrorResponse<RateLimited> {
    fn into_response(self) -> Response {
        let wait = (self.0 != RateLimited::NEVER).then_some(self.0.retry_after);
        answer(StatusCode::TOO_MANY_REQUESTS, wait, &self.0)
    }
}

/// 503, no `Retry-After`.
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark_tokio::axum::ErrorResponse;
/// let res = ErrorResponse(BulkheadFull).into_response();
/// assert_eq!(res.status(), 503);
/// assert!(res.headers().get("retry-after").is_none());
/// ```
impl IntoResponse for ErrorResponse<BulkheadFull> {
    fn into_response(self) -> Response {
        answer(StatusCode::SERVICE_UNAVAILABLE, None, &self.0)
    }
}

/// 504.
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::{Instant, timeout::Elapsed};
/// use bulwark_tokio::axum::ErrorResponse;
/// assert_eq!(ErrorResponse(Elapsed { deadline: Instant::ZERO, timeout: None }).into_response().status(), 504);
/// ```
impl IntoResponse for ErrorResponse<Elapsed> {
    fn into_response(self) -> Response {
        answer(StatusCode::GATEWAY_TIMEOUT, None, &"timed out")
    }
}

/// A gate's rejection, as its own type would answer.
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::{bulkhead::BulkheadFull, pipeline::Rejection};
/// use bulwark_tokio::axum::ErrorResponse;
/// assert_eq!(ErrorResponse(Rejection::BulkheadFull(BulkheadFull)).into_response().status(), 503);
/// ```
impl IntoResponse for ErrorResponse<Rejection> {
    fn into_response(self) -> Response {
        rejection_response(&self.0)
    }
}

/// A pipeline's error: each layer's rejection as its own type answers, either timeout 504,
/// and the operation's own error — the downstream failed — 502 Bad Gateway (its text is not
/// sent).
///
/// ```
/// use axum::response::IntoResponse;
/// use bulwark::{Instant, pipeline::Error, rate_limiter::RateLimited, timeout::Elapsed};
/// use bulwark_tokio::axum::ErrorResponse;
/// let status = |e: Error<&str>| ErrorResponse(e).into_response().status().as_u16();
/// assert_eq!(status(Error::Operation("refused")), 502);
/// assert_eq!(status(Error::RateLimited(RateLimited::new(Instant::from_secs(1), Instant::ZERO))), 429);
/// assert_eq!(status(Error::Timeout(Elapsed { deadline: Instant::ZERO, timeout: None })), 504);
/// ```
impl<E> IntoResponse for ErrorResponse<pipeline::Error<E>> {
    fn into_response(self) -> Response {
        match self.0 {
            pipeline::Error::Operation(_) => {
                answer(StatusCode::BAD_GATEWAY, None, &"downstream failed")
            }
            pipeline::Error::CircuitOpen(r) => ErrorResponse(r).into_response(),
            pipeline::Error::RateLimited(r) => ErrorResponse(r).into_response(),
            pipeline::Error::BulkheadFull(r) => ErrorResponse(r).into_response(),
            pipeline::Error::AttemptTimeout(e) | pipeline::Error::Timeout(e) => {
                ErrorResponse(e).into_response()
            }
            // `Error` is non-exhaustive: a layer added later is at least a 503.
            _ => answer(StatusCode::SERVICE_UNAVAILABLE, None, &"unavailable"),
        }
    }
}

/// The classifier for layers around axum routes (or any `http` service): a handler answers
/// `Ok(response)` even when it failed, so judge the status. A 5xx response is a failure — a
/// breaker counts it, a retry repeats it, after its `Retry-After` (delay-seconds) when it has
/// one — and so is an `Err`; every other response is a success (a 4xx is the caller's
/// business, and says the server works).
///
/// ```
/// use axum::{Router, error_handling::HandleErrorLayer, http::StatusCode, routing::get};
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
/// use bulwark_tokio::{TokioClock, axum::{ServerErrors, handle_error}, tower::CircuitBreakerLayer};
/// use std::sync::Arc;
/// use tower::{ServiceBuilder, ServiceExt};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let breaker = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(2), TokioClock::new()).unwrap());
/// let app: Router = Router::new().route("/", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }).layer(
///     ServiceBuilder::new()
///         .layer(HandleErrorLayer::new(handle_error))
///         .layer(CircuitBreakerLayer::shared(Arc::clone(&breaker)).classify(ServerErrors)),
/// ));
/// let get = || axum::http::Request::get("/").body(axum::body::Body::empty()).unwrap();
/// assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 500);
/// assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 500); // the second 500 opens it
/// assert_eq!(breaker.state(), State::Open);
/// assert_eq!(app.oneshot(get()).await.unwrap().status(), 503);
/// # }
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct ServerErrors;

impl<B, E> Classify<http::Response<B>, E> for ServerErrors {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Verdict {
        match result {
            Err(_) => Verdict::FAILURE,
            Ok(r) if r.status().is_server_error() => {
                let hint = r
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match hint {
                    Some(secs) => Verdict::failure_after(Duration::from_secs(secs)),
                    None => Verdict::FAILURE,
                }
            }
            Ok(_) => Verdict::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Result<Response, ()> {
        let mut r = Response::new(axum_core::body::Body::empty());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(v) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        Ok(r)
    }

    #[test]
    fn server_errors_judge_by_status_and_read_retry_after() {
        let k = ServerErrors;
        assert_eq!(k.classify(&response(200, None)), Verdict::Success);
        assert_eq!(k.classify(&response(404, None)), Verdict::Success);
        assert_eq!(k.classify(&response(500, None)), Verdict::FAILURE);
        assert_eq!(
            k.classify(&response(503, Some(" 7 "))),
            Verdict::failure_after(Duration::from_secs(7))
        );
        // An HTTP date (or garbage) is not a delay we can read: a failure without a hint.
        assert_eq!(
            k.classify(&response(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Verdict::FAILURE
        );
        assert_eq!(k.classify(&Err::<Response, _>(())), Verdict::FAILURE);
    }
}
