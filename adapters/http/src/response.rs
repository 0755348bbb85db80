//! The answer given in place of a service whose deadline passed.

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

/// `grpc-status`: 4 is `DEADLINE_EXCEEDED`.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Is this a gRPC request (`content-type: application/grpc`, `application/grpc+proto`, ...)?
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A gRPC trailers-only `DEADLINE_EXCEEDED` answer, or an HTTP `504 Gateway Timeout`, with an
/// empty body.
pub(crate) fn expired_response<B: Default>(grpc: bool) -> Response<B> {
    let mut resp = Response::new(B::default());
    if grpc {
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(GRPC_STATUS, HeaderValue::from_static("4"));
        h.insert(GRPC_MESSAGE, HeaderValue::from_static("deadline exceeded"));
    } else {
        *resp.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    }
    resp
}
