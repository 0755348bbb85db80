//! The errors the middleware adds to reqwest's.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

/// Why the retries stopped.
///
/// ```
/// use bulwark_reqwest::GaveUp;
/// assert_eq!(GaveUp::Budget.to_string(), "the shared retry budget is spent");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GaveUp {
    /// The policy's `max_attempts` or `max_elapsed`.
    Attempts,
    /// The shared retry budget denied the retry.
    Budget,
    /// The next attempt would not start before the caller's deadline.
    Deadline,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GaveUp::Attempts => "no attempts left",
            GaveUp::Budget => "the shared retry budget is spent",
            GaveUp::Deadline => "the caller's deadline is near",
        })
    }
}

/// What [`Resilience`](crate::Resilience) returns, inside
/// `reqwest_middleware::Error::Middleware`, beside reqwest's own errors (passed through
/// unchanged when they are not worth a retry). Find it with `downcast_ref`:
///
/// ```
/// use bulwark_reqwest::Error;
/// let e = reqwest_middleware::Error::middleware(Error::BreakerOpen {
///     host: "api.test:443".into(),
///     retry_after: Some(std::time::Duration::from_secs(3)),
/// });
/// let reqwest_middleware::Error::Middleware(inner) = &e else { unreachable!() };
/// assert!(matches!(inner.downcast_ref::<Error>(), Some(Error::BreakerOpen { .. })));
/// assert_eq!(e.to_string(), "circuit breaker for api.test:443 is open; not sent (retry in 3 s)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The host's circuit breaker is open: the request was not sent.
    BreakerOpen {
        /// The host (`host:port`).
        host: String,
        /// When the breaker lets a probe through, if known (`None` when forced open).
        retry_after: Option<Duration>,
    },
    /// An attempt took longer than its timeout (or than the caller's deadline) and was
    /// dropped.
    AttemptTimedOut {
        /// How long the attempt ran.
        after: Duration,
    },
    /// Transient failures to the end: the last one is the source.
    GaveUp {
        /// Why no further attempt was made.
        why: GaveUp,
        /// Attempts made (the first counts).
        attempts: u32,
        /// The last attempt's error; `None` when the caller's deadline had passed before the
        /// request and its first attempt was not ready at once.
        last: Option<Box<reqwest_middleware::Error>>,
    },
    /// The request's body cannot be cloned (a stream), so it was sent once; its failure was
    /// transient and would have been retried.
    BodyNotCloneable {
        /// The transient status the one attempt got (`None`: it failed without a response,
        /// see `last`).
        status: Option<StatusCode>,
        /// The one attempt's error, when it failed without a response.
        last: Option<Box<reqwest_middleware::Error>>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BreakerOpen { host, retry_after } => {
                write!(f, "circuit breaker for {host} is open; not sent")?;
                match retry_after {
                    Some(d) => write!(f, " (retry in {} s)", d.as_secs_f64().ceil()),
                    None => f.write_str(" (forced open)"),
                }
            }
            Error::AttemptTimedOut { after } => {
                write!(f, "attempt timed out after {} ms", after.as_millis())
            }
            Error::GaveUp {
                why,
                attempts,
                last: Some(last),
            } => write!(f, "gave up after {attempts} attempts ({why}): {last}"),
            Error::GaveUp {
                why, last: None, ..
            } => write!(f, "gave up before the first attempt completed ({why})"),
            Error::BodyNotCloneable { status, last } => {
                f.write_str("not retried: the request body cannot be cloned (a stream) and was sent once; it failed with ")?;
                match (status, last) {
                    (Some(s), _) => write!(f, "status {s}"),
                    (None, Some(e)) => write!(f, "{e}"),
                    (None, None) => f.write_str("a transient error"),
                }
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::GaveUp { last: Some(e), .. } | Error::BodyNotCloneable { last: Some(e), .. } => {
                Some(&**e)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        let timed_out = reqwest_middleware::Error::middleware(Error::AttemptTimedOut {
            after: Duration::from_millis(200),
        });
        let e = Error::GaveUp {
            why: GaveUp::Attempts,
            attempts: 3,
            last: Some(Box::new(timed_out)),
        };
        assert_eq!(
            e.to_string(),
            "gave up after 3 attempts (no attempts left): attempt timed out after 200 ms"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::BodyNotCloneable {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            last: None,
        };
        assert_eq!(
            e.to_string(),
            "not retried: the request body cannot be cloned (a stream) and was sent once; it failed with status 503 Service Unavailable"
        );
        let e = Error::GaveUp {
            why: GaveUp::Deadline,
            attempts: 1,
            last: None,
        };
        assert_eq!(
            e.to_string(),
            "gave up before the first attempt completed (the caller's deadline is near)"
        );
        let e = Error::BreakerOpen {
            host: "h:80".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "circuit breaker for h:80 is open; not sent (forced open)"
        );
    }
}
