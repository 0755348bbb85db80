//! The server side: read the caller's remaining time into the request's [`Deadline`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::timeout::{Deadline, Elapsed, Timeout, timeout_at};
use bulwark::{Instant, Sleep};
use bulwark_tokio::TokioClock;
use http::header::HeaderName;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::header::{
    ENVOY_EXPECTED_TIMEOUT_MS, GRPC_TIMEOUT, HeaderError, parse_grpc_timeout, parse_millis,
};
use crate::response::{expired_response, is_grpc};

/// A timeout header of the request that could not be read; put into the request's
/// extensions beside the [`Deadline`] (the first such header only), so a handler can log or
/// refuse it. The header itself is ignored.
///
/// ```
/// use bulwark_http::{HeaderError, InvalidTimeoutHeader, GRPC_TIMEOUT};
/// let e = InvalidTimeoutHeader { header: GRPC_TIMEOUT, error: HeaderError::MissingUnit };
/// assert_eq!(e.to_string(), "ignored grpc-timeout: grpc-timeout has no unit (one of H, M, S, m, u, n)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTimeoutHeader {
    /// The header's name.
    pub header: HeaderName,
    /// What was wrong with its value.
    pub error: HeaderError,
}

impl std::fmt::Display for InvalidTimeoutHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ignored {}: {}", self.header, self.error)
    }
}

impl std::error::Error for InvalidTimeoutHeader {}

/// The caller's [`Deadline`] of a request (from its extensions), or [`Deadline::NONE`].
///
/// ```
/// use bulwark::{Instant, timeout::Deadline};
/// let mut req = http::Request::new(());
/// assert_eq!(bulwark_http::deadline(req.extensions()), Deadline::NONE);
/// req.extensions_mut().insert(Deadline::at(Instant::from_secs(3)));
/// assert_eq!(bulwark_http::deadline(req.extensions()), Deadline::at(Instant::from_secs(3)));
/// ```
pub fn deadline(extensions: &http::Extensions) -> Deadline {
    extensions.get::<Deadline>().copied().unwrap_or_default()
}

#[derive(Debug)]
struct Settings {
    grpc: bool,
    millis: Vec<HeaderName>,
    own_timeout: Option<Duration>,
    enforce: bool,
}

impl Settings {
    /// The earliest deadline of the headers read, and the first header that could not be read.
    fn read(&self, headers: &HeaderMap, now: Instant) -> (Deadline, Option<InvalidTimeoutHeader>) {
        let mut deadline = Deadline::NONE;
        let mut invalid = None;
        let grpc_name = GRPC_TIMEOUT;
        let grpc = self
            .grpc
            .then_some((&grpc_name, parse_grpc_timeout as fn(_) -> _));
        let millis = self.millis.iter().map(|h| (h, parse_millis as fn(_) -> _));
        for (name, parse) in grpc.into_iter().chain(millis) {
            for value in headers.get_all(name) {
                match parse(value.as_bytes()) {
                    Ok(d) => deadline = deadline.min(Deadline::after(now, d)),
                    Err(error) => {
                        invalid.get_or_insert(InvalidTimeoutHeader {
                            header: name.clone(),
                            error,
                        });
                    }
                }
            }
        }
        if let Some(own) = self.own_timeout {
            deadline = deadline.min(Deadline::after(now, own));
        }
        (deadline, invalid)
    }
}

/// A tower layer for servers: reads the caller's remaining time from the request's headers,
/// puts the resulting [`Deadline`] into the request's extensions for the handler (and a
/// bulwark retry or pipeline under it: `retry.call_with_deadline(deadline, ..)`), and answers
/// for the handler when the deadline passes first.
///
/// | header | format | read by default |
/// |---|---|---|
/// | `grpc-timeout` | 1–8 digits and a unit `H M S m u n` ([`parse_grpc_timeout`](crate::parse_grpc_timeout)) | yes |
/// | `x-envoy-expected-rq-timeout-ms` | milliseconds ([`parse_millis`](crate::parse_millis)) | yes |
/// | any you name with [`millis_header`](DeadlineLayer::millis_header) | milliseconds | – |
///
/// The rules:
///
/// * The deadline is the **earliest** of every header read, of the server's own
///   [`max_timeout`](DeadlineLayer::max_timeout), and of a [`Deadline`] an outer layer
///   already put into the extensions. No header and no own timeout: no deadline is inserted.
/// * A header whose value cannot be read is **ignored**, never a panic or a rejection: the
///   request goes on under the other headers and the server's own timeout, and the first
///   such header is put into the extensions as an [`InvalidTimeoutHeader`].
/// * A zero timeout is a deadline that has already passed (see the enforcement below; a
///   bulwark retry under it makes its first attempt only if that attempt is ready at once).
/// * **Enforced** by default: when the deadline passes before the service answers, the
///   service's future is dropped (the cancellation) and the layer answers itself: a gRPC
///   request (`content-type: application/grpc…`) gets `grpc-status: 4`
///   (`DEADLINE_EXCEEDED`), any other request `504 Gateway Timeout`. Turn it off with
///   [`enforce(false)`](DeadlineLayer::enforce) to only read the deadline.
///
/// tonic's own server also reads `grpc-timeout` and, when its timer fires first, answers
/// `CANCELLED`; a handler that runs a bulwark retry under this deadline answers
/// `DEADLINE_EXCEEDED` itself, before either timer fires.
///
/// Clones share one configuration (an `Arc`).
///
/// # Examples
///
/// ```
/// use bulwark::timeout::Deadline;
/// use bulwark_http::DeadlineLayer;
/// use std::time::Duration;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let svc = ServiceBuilder::new()
///     .layer(DeadlineLayer::new().max_timeout(Duration::from_secs(10)))
///     .service(service_fn(|req: http::Request<()>| async move {
///         let deadline = bulwark_http::deadline(req.extensions());
///         let left = deadline.remaining(bulwark::Clock::now(&bulwark_tokio::TokioClock::new()));
///         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{left:?}")))
///     }));
/// let req = http::Request::builder().header("grpc-timeout", "250m").body(()).unwrap();
/// let resp = svc.clone().oneshot(req).await.unwrap();
/// assert_eq!(resp.body(), "Some(250ms)");
///
/// // A garbled header is ignored; the server's own 10 s applies.
/// let req = http::Request::builder().header("grpc-timeout", "soon").body(()).unwrap();
/// assert_eq!(svc.oneshot(req).await.unwrap().body(), "Some(10s)");
/// # }
/// ```
#[derive(Debug)]
pub struct DeadlineLayer<C = TokioClock> {
    settings: Arc<Settings>,
    clock: C,
}

impl DeadlineLayer<TokioClock> {
    /// Reads `grpc-timeout` and `x-envoy-expected-rq-timeout-ms` on [`TokioClock`], no own
    /// timeout, enforced.
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let never = service_fn(|_: http::Request<()>| std::future::pending::<Result<http::Response<String>, ()>>());
    /// let svc = tower::Layer::layer(&DeadlineLayer::new(), never);
    /// let req = http::Request::builder().header("x-envoy-expected-rq-timeout-ms", "50").body(()).unwrap();
    /// assert_eq!(svc.oneshot(req).await.unwrap().status(), 504);
    /// # }
    /// ```
    pub fn new() -> Self {
        DeadlineLayer {
            settings: Arc::new(Settings {
                grpc: true,
                millis: vec![ENVOY_EXPECTED_TIMEOUT_MS],
                own_timeout: None,
                enforce: true,
            }),
            clock: TokioClock::new(),
        }
    }
}

impl Default for DeadlineLayer<TokioClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> DeadlineLayer<C> {
    /// The same layer on another clock (the deadlines it inserts are this clock's instants).
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, timeout::Deadline};
    /// use bulwark_http::DeadlineLayer;
    /// use tower::{ServiceExt, service_fn};
    /// static CLOCK: MockClock = MockClock::new();
    /// let svc = tower::Layer::layer(
    ///     &DeadlineLayer::new().on_clock(&CLOCK).enforce(false),
    ///     service_fn(|req: http::Request<()>| async move {
    ///         Ok::<_, ()>(http::Response::new(bulwark_http::deadline(req.extensions())))
    ///     }),
    /// );
    /// CLOCK.set(Instant::from_secs(5));
    /// let req = http::Request::builder().header("grpc-timeout", "2S").body(()).unwrap();
    /// let resp = bulwark::mock::run(&CLOCK, svc.oneshot(req)).unwrap().unwrap();
    /// assert_eq!(*resp.body(), Deadline::at(Instant::from_secs(7)));
    /// ```
    pub fn on_clock<C2>(self, clock: C2) -> DeadlineLayer<C2> {
        DeadlineLayer {
            settings: self.settings,
            clock,
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        // A layer being configured is not shared yet; if it is, the edit goes to a copy.
        let s = &*self.settings;
        let mut copy = Settings {
            grpc: s.grpc,
            millis: s.millis.clone(),
            own_timeout: s.own_timeout,
            enforce: s.enforce,
        };
        f(&mut copy);
        self.settings = Arc::new(copy);
        self
    }

    /// Also reads `name` as a count of milliseconds (your proxy's or your company's header).
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let layer = DeadlineLayer::new().millis_header(http::HeaderName::from_static("x-request-timeout-ms"));
    /// let svc = tower::Layer::layer(&layer, service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(bulwark_http::deadline(req.extensions()).instant().is_some()))
    /// }));
    /// let req = http::Request::builder().header("x-request-timeout-ms", "800").body(()).unwrap();
    /// assert!(svc.oneshot(req).await.unwrap().body());
    /// # }
    /// ```
    pub fn millis_header(self, name: HeaderName) -> Self {
        self.edit(|s| s.millis.push(name))
    }

    /// The server's own limit: a request gets at most `d` (and no more than its caller
    /// says it has left, whichever is earlier).
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let layer = DeadlineLayer::new().max_timeout(Duration::from_secs(1));
    /// let slow = service_fn(|_: http::Request<()>| async {
    ///     tokio::time::sleep(Duration::from_secs(5)).await;
    ///     Ok::<_, ()>(http::Response::new(String::new()))
    /// });
    /// let t0 = tokio::time::Instant::now();
    /// let req = http::Request::builder().header("grpc-timeout", "1H").body(()).unwrap();
    /// assert_eq!(tower::Layer::layer(&layer, slow).oneshot(req).await.unwrap().status(), 504);
    /// assert_eq!(t0.elapsed(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn max_timeout(self, d: Duration) -> Self {
        self.edit(|s| s.own_timeout = Some(d))
    }

    /// Whether the layer answers for the service once the deadline passes (the default) or
    /// only reads it into the extensions.
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let slow = service_fn(|_: http::Request<()>| async {
    ///     tokio::time::sleep(Duration::from_secs(2)).await;
    ///     Ok::<_, ()>(http::Response::new(String::from("late but whole")))
    /// });
    /// let svc = tower::Layer::layer(&DeadlineLayer::new().enforce(false), slow);
    /// let req = http::Request::builder().header("grpc-timeout", "1S").body(()).unwrap();
    /// assert_eq!(svc.oneshot(req).await.unwrap().body(), "late but whole");
    /// # }
    /// ```
    pub fn enforce(self, on: bool) -> Self {
        self.edit(|s| s.enforce = on)
    }
}

impl<C: Clone> Clone for DeadlineLayer<C> {
    fn clone(&self) -> Self {
        DeadlineLayer {
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

impl<S, C: Clone> Layer<S> for DeadlineLayer<C> {
    type Service = DeadlineService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] builds.
///
/// ```
/// use bulwark_http::{DeadlineLayer, DeadlineService};
/// use tower::{ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let svc: DeadlineService<_> = tower::Layer::layer(&DeadlineLayer::new(), service_fn(|_: http::Request<()>| async {
///     Ok::<_, ()>(http::Response::new(String::from("hi")))
/// }));
/// assert_eq!(svc.get_ref().clone().oneshot(http::Request::new(())).await.unwrap().body(), "hi");
/// # }
/// ```
#[derive(Debug)]
pub struct DeadlineService<S, C = TokioClock> {
    inner: S,
    settings: Arc<Settings>,
    clock: C,
}

impl<S, C> DeadlineService<S, C> {
    /// The wrapped service.
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// let svc = tower::Layer::layer(&DeadlineLayer::new(), 7_u8);
    /// assert_eq!(*svc.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// let mut svc = tower::Layer::layer(&DeadlineLayer::new(), 7_u8);
    /// *svc.get_mut() += 1;
    /// assert_eq!(svc.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, by value.
    ///
    /// ```
    /// # use bulwark_http::DeadlineLayer;
    /// assert_eq!(tower::Layer::layer(&DeadlineLayer::new(), "svc").into_inner(), "svc");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for DeadlineService<S, C> {
    fn clone(&self) -> Self {
        DeadlineService {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for DeadlineService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Sleep + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let now = self.clock.now();
        let (read, invalid) = self.settings.read(req.headers(), now);
        let deadline = read.min(deadline(req.extensions()));
        if deadline.instant().is_some() {
            req.extensions_mut().insert(deadline);
        }
        if let Some(invalid) = invalid {
            req.extensions_mut().insert(invalid);
        }
        let grpc = is_grpc(req.headers());
        let limit = if self.settings.enforce {
            deadline
        } else {
            Deadline::NONE
        };
        DeadlineFuture {
            inner: timeout_at(self.clock.clone(), limit, self.inner.call(req)),
            grpc,
        }
    }
}

pin_project! {
    /// The future of [`DeadlineService`]: the service's response, or the layer's own
    /// `DEADLINE_EXCEEDED` / `504` answer once the deadline has passed.
    ///
    /// ```
    /// use bulwark_http::{DeadlineFuture, DeadlineLayer};
    /// use tower::{Service, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut svc = tower::Layer::layer(&DeadlineLayer::new(), service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(String::from("ok")))
    /// }));
    /// let fut: DeadlineFuture<_> = svc.call(http::Request::new(()));
    /// assert_eq!(fut.await.unwrap().body(), "ok");
    /// # }
    /// ```
    pub struct DeadlineFuture<F, C: Sleep = TokioClock> {
        #[pin]
        inner: Timeout<C, F>,
        grpc: bool,
    }
}

impl<F, C, ResBody, E> Future for DeadlineFuture<F, C>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    C: Sleep,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.poll(cx) {
            Poll::Ready(Ok(out)) => Poll::Ready(out),
            Poll::Ready(Err(Elapsed { .. })) => Poll::Ready(Ok(expired_response(*this.grpc))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, C: Sleep> std::fmt::Debug for DeadlineFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineFuture")
            .field("grpc", &self.grpc)
            .finish_non_exhaustive()
    }
}
