//! [`bulwark`] for reqwest: a [`reqwest_middleware`] middleware, [`Resilience`], that retries
//! transient failures (honouring `Retry-After`), keeps a circuit breaker per host
//! ([`HostBreakers`]) and draws its retries from a [`Budget`] shared across clients.
//!
//! | failure | retried | counts against the host's breaker |
//! |---|---|---|
//! | status 408, 429 | yes, after `Retry-After` when given | no (the host answered) |
//! | status 500, 502, 503, 504 | yes, after `Retry-After` when given | yes |
//! | connection error, reqwest timeout | yes | yes |
//! | attempt timeout ([`Resilience::attempt_timeout`]) | yes | yes |
//! | cut short by the caller's deadline or the [total timeout](Resilience::total_timeout) | no time is left | no (ignored) |
//! | any other status | no: returned as is | no (a success) |
//! | any other error (a bad URL, a body error, another middleware's error) | no: returned as is | no (ignored) |
//! | breaker open for the host | no: [`Error::BreakerOpen`] at once, nothing sent | – |
//!
//! When the retries run out on a transient *status*, that response is returned (`Ok`); on
//! an *error*, [`Error::GaveUp`] with the last error as its source. A request whose body
//! cannot be cloned (`Request::try_clone` is `None`: a stream) is sent once; if it fails in a
//! way that would have been retried, the answer is [`Error::BodyNotCloneable`] saying so.
//!
//! The caller's deadline: a [`Deadline`] in the request's extensions
//! (`reqwest_middleware::RequestBuilder::with_extension`; a server under
//! [`bulwark_http::DeadlineLayer`] finds its caller's there), and the
//! [`total_timeout`](Resilience::total_timeout), bound the retries and each attempt;
//! [`send_deadline`](Resilience::send_deadline) tells the callee how long is left.
//!
//! ```no_run
//! use bulwark::circuit_breaker::Config as Breaker;
//! use bulwark::retry::{Budget, Config as Retry};
//! use bulwark_reqwest::{HostBreakers, Resilience};
//! use std::{sync::Arc, time::Duration};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let budget = Arc::new(Budget::new(20, 5, 100)?); // shared by every client below
//! let breakers = Arc::new(HostBreakers::new(64, Breaker::new().consecutive_failures(5))?);
//! let policy = Resilience::new(Retry::new().max_attempts(3))?
//!     .attempt_timeout(Duration::from_secs(2))
//!     .budget(Arc::clone(&budget))
//!     .breakers(Arc::clone(&breakers));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(policy).build();
//! let body = client.get("http://127.0.0.1:8080/items").send().await?.text().await?;
//! # let _ = body; Ok(()) }
//! ```
//!
//! The tests in `tests/middleware.rs` run it against a local axum server that scripts 503s,
//! `Retry-After` and stalls, on tokio's paused clock.
//!
//! [`Budget`]: bulwark::retry::Budget
#![forbid(unsafe_code)]

mod breakers;
mod error;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulwark::Clock;
use bulwark::admission::{Outcome, Permit};
use bulwark::circuit_breaker::Rejected;
use bulwark::retry::{self, Budget, Classify, RetryBudget, Verdict};
use bulwark::timeout::{Deadline, timeout_within};
use bulwark::{Instant, retry::Retry};
use bulwark_tokio::TokioClock;
use http::Extensions;
use http::header::{HeaderMap, HeaderName, RETRY_AFTER};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

pub use breakers::{HostBreaker, HostBreakers, HostBreakersError};
pub use error::{Error, GaveUp};

/// The statuses retried: 408, 429, 500, 502, 503, 504.
///
/// ```
/// assert!(bulwark_reqwest::TRANSIENT_STATUSES.contains(&reqwest::StatusCode::SERVICE_UNAVAILABLE));
/// assert!(!bulwark_reqwest::TRANSIENT_STATUSES.contains(&reqwest::StatusCode::NOT_IMPLEMENTED));
/// ```
pub const TRANSIENT_STATUSES: [StatusCode; 6] = [
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// The delay a response's `Retry-After` asks for, as of `now`: delay-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`, and the two obsolete date forms). A date in
/// the past is zero; a number of seconds too large for a `u64` is capped at `u64::MAX`
/// seconds. A header that is missing or unreadable is `None` (the retry policy's own
/// backoff applies). The retry policy caps what it waits at its `max_retry_after`.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
/// use std::time::{Duration, SystemTime};
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
/// let mut h = HeaderMap::new();
/// h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
/// assert_eq!(bulwark_reqwest::retry_after(&h, now), Some(Duration::from_secs(7)));
/// h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 09 Sep 2001 01:47:00 GMT"));
/// assert_eq!(bulwark_reqwest::retry_after(&h, now), Some(Duration::from_secs(20)));
/// h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
/// assert_eq!(bulwark_reqwest::retry_after(&h, now), None);
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.bytes().fold(0_u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One attempt's failure, before the middleware turns it into reqwest-middleware's error.
#[derive(Debug)]
enum AttemptError {
    Transport(reqwest_middleware::Error),
    /// The attempt ran this long; `by_caller`: it was the caller's deadline (not the attempt
    /// timeout) that cut it short, which says nothing about the host.
    TimedOut {
        after: Duration,
        by_caller: bool,
    },
    Open(Rejected),
    NotCloneable,
}

impl AttemptError {
    fn into_middleware(self, host: &str) -> reqwest_middleware::Error {
        match self {
            AttemptError::Transport(e) => e,
            AttemptError::TimedOut { after, .. } => {
                reqwest_middleware::Error::middleware(Error::AttemptTimedOut { after })
            }
            AttemptError::Open(r) => reqwest_middleware::Error::middleware(Error::BreakerOpen {
                host: host.to_owned(),
                retry_after: r.retry_after(),
            }),
            AttemptError::NotCloneable => {
                reqwest_middleware::Error::middleware(Error::BodyNotCloneable {
                    status: None,
                    last: None,
                })
            }
        }
    }
}

/// A reqwest error worth another attempt: the connection failed or reqwest's own timeout
/// fired.
fn transient_error(e: &reqwest_middleware::Error) -> bool {
    match e {
        reqwest_middleware::Error::Reqwest(e) => e.is_connect() || e.is_timeout(),
        reqwest_middleware::Error::Middleware(_) => false,
    }
}

/// The retry classifier: the table in the [crate docs](crate).
#[derive(Copy, Clone, Debug, Default)]
struct Transient;

impl Classify<Response, AttemptError> for Transient {
    fn classify(&self, out: &Result<Response, AttemptError>) -> Verdict {
        match out {
            Ok(resp) if TRANSIENT_STATUSES.contains(&resp.status()) => Verdict::Failure {
                retry_after: retry_after(resp.headers(), SystemTime::now()),
            },
            Ok(_) => Verdict::Success,
            Err(AttemptError::TimedOut { .. }) => Verdict::FAILURE,
            Err(AttemptError::Transport(e)) if transient_error(e) => Verdict::FAILURE,
            Err(_) => Verdict::Ignore,
        }
    }
}

/// What an attempt's outcome says about the host's health.
fn health(out: &Result<Response, AttemptError>) -> Outcome {
    match out {
        Ok(resp) => match resp.status() {
            StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Outcome::Failure,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => Outcome::Ignored,
            _ => Outcome::Success,
        },
        Err(AttemptError::TimedOut {
            by_caller: false, ..
        }) => Outcome::Failure,
        Err(AttemptError::Transport(e)) if transient_error(e) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
    }
}

/// A retry budget behind an `Arc` (or none: unlimited).
#[derive(Clone, Debug, Default)]
struct SharedBudget(Option<Arc<Budget>>);

impl RetryBudget for SharedBudget {
    fn deposit(&self) {
        if let Some(b) = &self.0 {
            b.deposit();
        }
    }

    fn try_withdraw(&self, now: Instant) -> bool {
        self.0.as_ref().is_none_or(|b| b.try_withdraw(now))
    }
}

type Policy = Retry<TokioClock, Transient, (), SharedBudget>;

/// The middleware: retry, a breaker per host and a shared retry budget (the table of what
/// is retried is in the [crate docs](crate)).
///
/// Each attempt goes through the host's breaker (when [`breakers`](Resilience::breakers) are
/// set) and its own timeout (when [`attempt_timeout`](Resilience::attempt_timeout) is set),
/// both bounded by the caller's [`Deadline`] if the request's extensions carry one. Inner
/// middlewares see a fresh copy of the extensions on each attempt (of a request whose body
/// can be cloned), so what they write into them does not reach the middlewares outside
/// this one.
///
/// ```
/// use bulwark::retry::Config;
/// use bulwark_reqwest::Resilience;
/// use std::time::Duration;
/// let policy = Resilience::new(Config::new().max_attempts(4)).unwrap()
///     .attempt_timeout(Duration::from_millis(500));
/// assert_eq!(policy.attempt_timeout_value(), Some(Duration::from_millis(500)));
/// ```
#[derive(Debug)]
pub struct Resilience {
    retry: Policy,
    attempt_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    deadline_headers: Vec<HeaderName>,
    breakers: Option<Arc<HostBreakers>>,
}

impl Resilience {
    /// Retries under `config` (its backoff, jitter, `max_attempts`, `max_elapsed` and
    /// `max_retry_after`, the cap on a `Retry-After`), with no breaker, no budget (unlimited)
    /// and no attempt timeout.
    ///
    /// # Errors
    ///
    /// The retry configuration's [`retry::ConfigError`].
    ///
    /// ```
    /// use bulwark::retry::{Config, ConfigError};
    /// use bulwark_reqwest::Resilience;
    /// assert_eq!(Resilience::new(Config::new().max_attempts(0)).unwrap_err(), ConfigError::ZeroAttempts);
    /// ```
    pub fn new(config: retry::Config) -> Result<Self, retry::ConfigError> {
        let retry = Retry::new(config, TokioClock::new())?
            .with_classifier(Transient)
            .with_budget(SharedBudget::default());
        Ok(Resilience {
            retry,
            attempt_timeout: None,
            total_timeout: None,
            deadline_headers: Vec::new(),
            breakers: None,
        })
    }

    /// Each attempt may take at most `d` (and never past the caller's deadline); a slower
    /// one is dropped and counts as a transient failure.
    ///
    /// ```
    /// use bulwark_reqwest::Resilience;
    /// use std::time::Duration;
    /// let p = Resilience::new(Default::default()).unwrap().attempt_timeout(Duration::from_secs(1));
    /// assert_eq!(p.attempt_timeout_value(), Some(Duration::from_secs(1)));
    /// ```
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }

    /// The attempt timeout, if set.
    ///
    /// ```
    /// assert_eq!(bulwark_reqwest::Resilience::new(Default::default()).unwrap().attempt_timeout_value(), None);
    /// ```
    pub fn attempt_timeout_value(&self) -> Option<std::time::Duration> {
        self.attempt_timeout
    }

    /// Every call, retries and backoff included, ends within `d` of its start (or at the
    /// caller's [`Deadline`], if that is earlier): no attempt starts, and no backoff is
    /// planned, past it; a running attempt is dropped at it.
    ///
    /// ```
    /// use bulwark_reqwest::Resilience;
    /// use std::time::Duration;
    /// let p = Resilience::new(Default::default()).unwrap().total_timeout(Duration::from_secs(5));
    /// assert_eq!(p.total_timeout_value(), Some(Duration::from_secs(5)));
    /// ```
    pub fn total_timeout(mut self, d: Duration) -> Self {
        self.total_timeout = Some(d);
        self
    }

    /// The total timeout, if set.
    ///
    /// ```
    /// assert_eq!(bulwark_reqwest::Resilience::new(Default::default()).unwrap().total_timeout_value(), None);
    /// ```
    pub fn total_timeout_value(&self) -> Option<Duration> {
        self.total_timeout
    }

    /// On each attempt, write the time left before the call's deadline (the caller's
    /// [`Deadline`] or the [`total_timeout`](Resilience::total_timeout)) in the header `name`,
    /// as whole milliseconds rounded up: [`bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS`] for a
    /// callee behind Envoy or one reading it with [`bulwark_http::DeadlineLayer`]. Without a
    /// deadline nothing is written.
    ///
    /// ```
    /// use bulwark_reqwest::Resilience;
    /// let p = Resilience::new(Default::default()).unwrap()
    ///     .send_deadline(bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS);
    /// assert_eq!(p.deadline_headers(), [bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS]);
    /// ```
    pub fn send_deadline(mut self, name: HeaderName) -> Self {
        self.deadline_headers.push(name);
        self
    }

    /// The headers [`send_deadline`](Resilience::send_deadline) writes.
    ///
    /// ```
    /// assert!(bulwark_reqwest::Resilience::new(Default::default()).unwrap().deadline_headers().is_empty());
    /// ```
    pub fn deadline_headers(&self) -> &[HeaderName] {
        &self.deadline_headers
    }

    /// Draw retries from `budget`, which any number of clients (and other bulwark retry
    /// policies) may share: a retry storm across all of them is capped at the budget.
    ///
    /// ```
    /// use bulwark::retry::Budget;
    /// use bulwark_reqwest::Resilience;
    /// use std::sync::Arc;
    /// let budget = Arc::new(Budget::new(10, 1, 10).unwrap());
    /// let a = Resilience::new(Default::default()).unwrap().budget(Arc::clone(&budget));
    /// let b = Resilience::new(Default::default()).unwrap().budget(Arc::clone(&budget));
    /// assert_eq!(Arc::strong_count(&budget), 3); // a, b and this one: one budget
    /// # drop((a, b));
    /// ```
    pub fn budget(mut self, budget: Arc<Budget>) -> Self {
        self.retry = self.retry.with_budget(SharedBudget(Some(budget)));
        self
    }

    /// Guard each host with its breaker from `breakers` (a table any number of clients may
    /// share).
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::{HostBreakers, Resilience};
    /// use std::sync::Arc;
    /// let hosts = Arc::new(HostBreakers::new(16, Config::new().consecutive_failures(3)).unwrap());
    /// let p = Resilience::new(Default::default()).unwrap().breakers(Arc::clone(&hosts));
    /// assert!(Arc::ptr_eq(p.host_breakers().unwrap(), &hosts));
    /// ```
    pub fn breakers(mut self, breakers: Arc<HostBreakers>) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// The breaker table, if set.
    ///
    /// ```
    /// assert!(bulwark_reqwest::Resilience::new(Default::default()).unwrap().host_breakers().is_none());
    /// ```
    pub fn host_breakers(&self) -> Option<&Arc<HostBreakers>> {
        self.breakers.as_ref()
    }

    /// One attempt: through the breaker, under the attempt timeout and the deadline.
    async fn attempt(
        &self,
        breaker: Option<Arc<HostBreaker>>,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        deadline: Deadline,
    ) -> Result<Response, AttemptError> {
        let permit = match breaker {
            Some(b) => Some(Permit::try_new(b).map_err(AttemptError::Open)?),
            None => None,
        };
        let clock = TokioClock::new();
        let started = clock.now();
        let mut req = req;
        if let Some(left) = deadline.remaining(started) {
            for name in &self.deadline_headers {
                req.headers_mut()
                    .insert(name.clone(), bulwark_http::format_millis(left));
            }
        }
        let limit = self.attempt_timeout.unwrap_or(Duration::MAX);
        let out = match timeout_within(clock, limit, deadline, next.run(req, extensions)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(AttemptError::Transport(e)),
            Err(_) => {
                let after = clock.now() - started;
                let by_caller = self.attempt_timeout.is_none_or(|t| after < t);
                Err(AttemptError::TimedOut { after, by_caller })
            }
        };
        if let Some(p) = permit {
            p.record(health(&out));
        }
        out
    }
}

#[async_trait::async_trait]
impl Middleware for Resilience {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut deadline = extensions.get::<Deadline>().copied().unwrap_or_default();
        if let Some(total) = self.total_timeout {
            deadline = deadline.min(Deadline::after(TokioClock::new().now(), total));
        }
        let host = HostBreakers::key(req.url());
        let breaker = self
            .breakers
            .as_ref()
            .zip(host.as_deref())
            .and_then(|(t, host)| t.breaker_for_host(host));
        let host = host.unwrap_or_default();

        if req.try_clone().is_none() {
            // A stream body: one attempt, and a typed error if it wanted another.
            let out = self.attempt(breaker, req, extensions, next, deadline).await;
            return match (Transient.classify(&out), out) {
                (Verdict::Failure { .. }, Ok(resp)) => Err(reqwest_middleware::Error::middleware(
                    Error::BodyNotCloneable {
                        status: Some(resp.status()),
                        last: None,
                    },
                )),
                (Verdict::Failure { .. }, Err(e)) => Err(reqwest_middleware::Error::middleware(
                    Error::BodyNotCloneable {
                        status: None,
                        last: Some(Box::new(e.into_middleware(&host))),
                    },
                )),
                (verdict, out) => {
                    if verdict == Verdict::Success {
                        self.retry.budget().deposit(); // a success earns retries all the same
                    }
                    out.map_err(|e| e.into_middleware(&host))
                }
            };
        }

        let shared: &Extensions = extensions;
        let out = self
            .retry
            .call_with_deadline(deadline, || {
                let attempt = req.try_clone();
                let mut ext = shared.clone();
                let breaker = breaker.clone();
                let next = next.clone();
                async move {
                    let req = attempt.ok_or(AttemptError::NotCloneable)?;
                    self.attempt(breaker, req, &mut ext, next, deadline).await
                }
            })
            .await;
        out.map_err(|e| {
            let (why, attempts, last) = match e {
                retry::Error::Permanent { error, .. } => return error.into_middleware(&host),
                retry::Error::Exhausted { last, attempts } => {
                    (GaveUp::Attempts, attempts, Some(last))
                }
                retry::Error::BudgetExhausted { last, attempts } => {
                    (GaveUp::Budget, attempts, Some(last))
                }
                retry::Error::DeadlineExceeded { last, attempts } => {
                    (GaveUp::Deadline, attempts, last)
                }
                _ => (GaveUp::Attempts, e.attempts(), e.into_last()),
            };
            reqwest_middleware::Error::middleware(Error::GaveUp {
                why,
                attempts,
                last: last.map(|l| Box::new(l.into_middleware(&host))),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn after(value: &'static str, now: SystemTime) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static(value));
        retry_after(&h, now)
    }

    #[test]
    fn retry_after_table() {
        // 1994-11-06 08:49:37 UTC, the date RFC 9110 uses in its examples.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let secs = |s| Some(Duration::from_secs(s));
        let cases: &[(&'static str, Option<Duration>)] = &[
            ("0", secs(0)),
            ("1", secs(1)),
            ("120", secs(120)),
            (" 7 ", secs(7)),
            ("007", secs(7)),
            ("18446744073709551615", secs(u64::MAX)),
            ("99999999999999999999999", secs(u64::MAX)), // capped, not an overflow
            ("Sun, 06 Nov 1994 08:49:40 GMT", secs(3)),  // IMF-fixdate
            ("Sunday, 06-Nov-94 08:50:37 GMT", secs(60)), // obsolete RFC 850
            ("Sun Nov  6 08:49:47 1994", secs(10)),      // obsolete asctime
            ("Sun, 06 Nov 1994 08:49:37 GMT", secs(0)),  // now
            ("Sat, 05 Nov 1994 08:49:37 GMT", secs(0)),  // in the past
            ("", None),
            ("-1", None),
            ("+5", None),
            ("1.5", None),
            ("5s", None),
            ("soon", None),
            ("Sun, 06 Nov 1994 25:00:00 GMT", None),
        ];
        for &(value, want) in cases {
            assert_eq!(after(value, now), want, "{value:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff1").unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn transient_statuses_and_their_health() {
        for code in 100..600 {
            let status = StatusCode::from_u16(code).unwrap();
            let resp: Response = http::Response::builder()
                .status(status)
                .body("")
                .unwrap()
                .into();
            let out = Ok(resp);
            let retried = Transient.classify(&out).is_failure();
            assert_eq!(
                retried,
                [408, 429, 500, 502, 503, 504].contains(&code),
                "{code}"
            );
            let want = match code {
                500 | 502 | 503 | 504 => Outcome::Failure,
                408 | 429 => Outcome::Ignored,
                _ => Outcome::Success,
            };
            assert_eq!(health(&out), want, "{code}");
        }
        let cut = Err(AttemptError::TimedOut {
            after: Duration::ZERO,
            by_caller: true,
        });
        assert!(Transient.classify(&cut).is_failure());
        assert_eq!(health(&cut), Outcome::Ignored);
        let slow = Err(AttemptError::TimedOut {
            after: Duration::ZERO,
            by_caller: false,
        });
        assert_eq!(health(&slow), Outcome::Failure);
        let open = Err(AttemptError::Open(Rejected::new(None, Instant::ZERO)));
        assert_eq!(Transient.classify(&open), Verdict::Ignore);
        assert_eq!(health(&open), Outcome::Ignored);
    }
}
