//! The client side: write the caller's remaining time on outgoing requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::timeout::Deadline;
use bulwark::{Instant, Sleep};
use bulwark_tokio::TokioClock;
use http::header::HeaderName;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::header::{
    ENVOY_EXPECTED_TIMEOUT_MS, GRPC_TIMEOUT, format_grpc_timeout, format_millis,
    parse_grpc_timeout, parse_millis,
};
use crate::response::{expired_response, is_grpc};

/// How a header carries the remaining time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Format {
    Grpc,
    Millis,
}

#[derive(Debug)]
struct Settings {
    headers: Vec<(HeaderName, Format)>,
    timeout: Option<Duration>,
}

/// Writes the time a request has left on it: for the callee to read (with
/// [`DeadlineLayer`](crate::DeadlineLayer), tonic, Envoy, grpc-go, ...).
///
/// The request's deadline is the earliest of
///
/// * the [`Deadline`] in its extensions (a handler under [`DeadlineLayer`](crate::DeadlineLayer)
///   passes its own on: `req.extensions_mut().insert(deadline)`; in tonic,
///   `tonic::Request::extensions_mut()`),
/// * this layer's [`timeout`](PropagateDeadlineLayer::timeout), counted from the call,
/// * a value of a header this layer writes that is already on the request (tonic writes
///   `grpc-timeout` for `Request::set_timeout`); a value it cannot read is replaced.
///
/// With no deadline the request goes out unchanged. Otherwise each header this layer writes
/// is set to the remaining time, rounded **up** to the header's unit. A request whose
/// deadline has already passed is **not sent**: the layer answers at once, as the callee
/// would have, with `grpc-status: 4` (`DEADLINE_EXCEEDED`) for a gRPC request and
/// `504 Gateway Timeout` otherwise (as Envoy answers when its own timeout fires). A request
/// still unanswered at its deadline gets the same answer then, and its call is dropped (the
/// cancellation): a gRPC client sees `DEADLINE_EXCEEDED`, as gRPC specifies, where tonic's
/// channel alone reports `CANCELLED`.
///
/// Clones share one configuration (an `Arc`).
///
/// # Examples
///
/// ```
/// use bulwark::timeout::Deadline;
/// use bulwark_http::PropagateDeadlineLayer;
/// use std::time::Duration;
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let echo = service_fn(|req: http::Request<()>| async move {
///     let sent = req.headers().get("grpc-timeout").cloned();
///     Ok::<_, ()>(http::Response::new(sent))
/// });
/// let client = tower::Layer::layer(&PropagateDeadlineLayer::grpc(), echo);
///
/// let mut req = http::Request::new(());
/// let now = bulwark::Clock::now(&bulwark_tokio::TokioClock::new());
/// req.extensions_mut().insert(Deadline::after(now, Duration::from_millis(300)));
/// let resp = client.clone().oneshot(req).await.unwrap();
/// assert_eq!(resp.body().as_ref().unwrap(), "300000u");
///
/// // No deadline: nothing written.
/// assert_eq!(client.oneshot(http::Request::new(())).await.unwrap().body(), &None);
/// # }
/// ```
#[derive(Debug)]
pub struct PropagateDeadlineLayer<C = TokioClock> {
    settings: Arc<Settings>,
    clock: C,
}

impl PropagateDeadlineLayer<TokioClock> {
    /// Writes `grpc-timeout` (for gRPC clients: tonic's `Channel`), on [`TokioClock`].
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("grpc-timeout").cloned()))
    /// });
    /// let layer = PropagateDeadlineLayer::grpc().timeout(Duration::from_secs(2));
    /// // tonic's Request::set_timeout(5 s) wrote 5S; the layer's 2 s is earlier.
    /// let req = http::Request::builder().header("grpc-timeout", "5S").body(()).unwrap();
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(req).await.unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "2000000u");
    /// # }
    /// ```
    pub fn grpc() -> Self {
        Self::with_clock(TokioClock::new(), GRPC_TIMEOUT, Format::Grpc)
    }

    /// Writes `x-envoy-expected-rq-timeout-ms` (milliseconds), on [`TokioClock`].
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("x-envoy-expected-rq-timeout-ms").cloned()))
    /// });
    /// let layer = PropagateDeadlineLayer::envoy().timeout(Duration::from_micros(1500));
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "2"); // rounded up
    /// # }
    /// ```
    pub fn envoy() -> Self {
        Self::millis(ENVOY_EXPECTED_TIMEOUT_MS)
    }

    /// Writes `name` as milliseconds, on [`TokioClock`].
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("x-timeout-ms").cloned()))
    /// });
    /// let layer = PropagateDeadlineLayer::millis(http::HeaderName::from_static("x-timeout-ms"))
    ///     .timeout(Duration::from_secs(1));
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "1000");
    /// # }
    /// ```
    pub fn millis(name: HeaderName) -> Self {
        Self::with_clock(TokioClock::new(), name, Format::Millis)
    }
}

impl<C> PropagateDeadlineLayer<C> {
    fn with_clock(clock: C, name: HeaderName, format: Format) -> Self {
        PropagateDeadlineLayer {
            settings: Arc::new(Settings {
                headers: vec![(name, format)],
                timeout: None,
            }),
            clock,
        }
    }

    /// The same layer on another clock (the [`Deadline`]s in requests must be this clock's).
    ///
    /// ```
    /// use bulwark::{Instant, MockClock, timeout::Deadline};
    /// use bulwark_http::PropagateDeadlineLayer;
    /// use tower::{ServiceExt, service_fn};
    /// static CLOCK: MockClock = MockClock::new();
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("grpc-timeout").cloned()))
    /// });
    /// let client = tower::Layer::layer(&PropagateDeadlineLayer::grpc().on_clock(&CLOCK), echo);
    /// CLOCK.set(Instant::from_secs(10));
    /// let mut req = http::Request::new(());
    /// req.extensions_mut().insert(Deadline::at(Instant::from_secs(12)));
    /// let sent = bulwark::mock::run(&CLOCK, client.oneshot(req)).unwrap().unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "2000000u");
    /// ```
    pub fn on_clock<C2>(self, clock: C2) -> PropagateDeadlineLayer<C2> {
        PropagateDeadlineLayer {
            settings: self.settings,
            clock,
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut copy = Settings {
            headers: self.settings.headers.clone(),
            timeout: self.settings.timeout,
        };
        f(&mut copy);
        self.settings = Arc::new(copy);
        self
    }

    /// Every request gets at most `d` from the moment it is called (and no more than its own
    /// deadline).
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("grpc-timeout").cloned()))
    /// });
    /// let layer = PropagateDeadlineLayer::grpc().timeout(Duration::from_millis(40));
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "40000000n");
    /// # }
    /// ```
    pub fn timeout(self, d: Duration) -> Self {
        self.edit(|s| s.timeout = Some(d))
    }

    /// Also writes `grpc-timeout`.
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     let h = req.headers();
    ///     let sent = format!("{:?} {:?}", h["grpc-timeout"], h["x-envoy-expected-rq-timeout-ms"]);
    ///     Ok::<_, ()>(http::Response::new(sent))
    /// });
    /// let layer = PropagateDeadlineLayer::envoy().also_grpc().timeout(Duration::from_secs(3));
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(sent.body(), r#""3000000u" "3000""#);
    /// # }
    /// ```
    pub fn also_grpc(self) -> Self {
        self.edit(|s| s.headers.push((GRPC_TIMEOUT, Format::Grpc)))
    }

    /// Also writes `name` as milliseconds.
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// use std::time::Duration;
    /// use tower::{ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let echo = service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, ()>(http::Response::new(req.headers().get("x-deadline-ms").cloned()))
    /// });
    /// let layer = PropagateDeadlineLayer::grpc()
    ///     .also_millis(http::HeaderName::from_static("x-deadline-ms"))
    ///     .timeout(Duration::from_millis(5));
    /// let sent = tower::Layer::layer(&layer, echo).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(sent.body().as_ref().unwrap(), "5");
    /// # }
    /// ```
    pub fn also_millis(self, name: HeaderName) -> Self {
        self.edit(|s| s.headers.push((name, Format::Millis)))
    }
}

impl<C: Clone> Clone for PropagateDeadlineLayer<C> {
    fn clone(&self) -> Self {
        PropagateDeadlineLayer {
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

impl<S, C: Clone> Layer<S> for PropagateDeadlineLayer<C> {
    type Service = PropagateDeadline<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateDeadline {
            inner,
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

/// The service [`PropagateDeadlineLayer`] builds.
///
/// ```
/// use bulwark_http::{PropagateDeadline, PropagateDeadlineLayer};
/// let svc: PropagateDeadline<&str> = tower::Layer::layer(&PropagateDeadlineLayer::grpc(), "channel");
/// assert_eq!(*svc.get_ref(), "channel");
/// ```
#[derive(Debug)]
pub struct PropagateDeadline<S, C = TokioClock> {
    inner: S,
    settings: Arc<Settings>,
    clock: C,
}

impl<S, C> PropagateDeadline<S, C> {
    /// The wrapped service.
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// assert_eq!(*tower::Layer::layer(&PropagateDeadlineLayer::grpc(), 1).get_ref(), 1);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// let mut svc = tower::Layer::layer(&PropagateDeadlineLayer::grpc(), 1);
    /// *svc.get_mut() = 2;
    /// assert_eq!(svc.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, by value.
    ///
    /// ```
    /// # use bulwark_http::PropagateDeadlineLayer;
    /// assert_eq!(tower::Layer::layer(&PropagateDeadlineLayer::envoy(), 'c').into_inner(), 'c');
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for PropagateDeadline<S, C> {
    fn clone(&self) -> Self {
        PropagateDeadline {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
            clock: self.clock.clone(),
        }
    }
}

impl Settings {
    /// The request's deadline: its extension, the layer's timeout, and the headers already on it.
    fn deadline(&self, headers: &HeaderMap, ext: Deadline, now: Instant) -> Deadline {
        let mut deadline = ext;
        if let Some(t) = self.timeout {
            deadline = deadline.min(Deadline::after(now, t));
        }
        for (name, format) in &self.headers {
            for value in headers.get_all(name) {
                let read = match format {
                    Format::Grpc => parse_grpc_timeout(value.as_bytes()),
                    Format::Millis => parse_millis(value.as_bytes()),
                };
                if let Ok(d) = read {
                    deadline = deadline.min(Deadline::after(now, d));
                }
            }
        }
        deadline
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for PropagateDeadline<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Sleep,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = PropagateFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let now = self.clock.now();
        let ext = crate::server::deadline(req.extensions());
        let deadline = self.settings.deadline(req.headers(), ext, now);
        let grpc = is_grpc(req.headers());
        let (Some(at), Some(left)) = (deadline.instant(), deadline.remaining(now)) else {
            return PropagateFuture {
                state: State::Sent {
                    fut: self.inner.call(req),
                    sleep: None,
                    grpc,
                },
            };
        };
        if left.is_zero() {
            return PropagateFuture {
                state: State::Expired { grpc },
            };
        }
        let headers = req.headers_mut();
        for (name, format) in &self.settings.headers {
            let value = match format {
                Format::Grpc => format_grpc_timeout(left),
                Format::Millis => format_millis(left),
            };
            headers.insert(name.clone(), value);
        }
        PropagateFuture {
            state: State::Sent {
                fut: self.inner.call(req),
                sleep: Some(self.clock.sleep_until(at)),
                grpc,
            },
        }
    }
}

pin_project! {
    /// The future of [`PropagateDeadline`]: the inner service's answer, or the local
    /// `DEADLINE_EXCEEDED` / `504` once the deadline passes (the inner future is then
    /// dropped, which cancels the call), or at once for a request whose deadline had passed
    /// before it was sent. At the deadline the local answer wins, even over an inner answer
    /// that is ready at the same instant (tonic's channel, which answers `CANCELLED` when its
    /// own copy of the timeout fires).
    ///
    /// ```
    /// use bulwark_http::{PropagateDeadlineLayer, PropagateFuture};
    /// use std::time::Duration;
    /// use tower::{Service, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let layer = PropagateDeadlineLayer::grpc().timeout(Duration::ZERO);
    /// let mut svc = tower::Layer::layer(&layer, service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(String::from("sent")))
    /// }));
    /// let req = http::Request::builder().header("content-type", "application/grpc").body(()).unwrap();
    /// let fut: PropagateFuture<_> = svc.call(req);
    /// let resp = fut.await.unwrap();
    /// assert_eq!(resp.headers()["grpc-status"], "4"); // never sent
    /// assert_eq!(resp.body(), "");
    /// # }
    /// ```
    pub struct PropagateFuture<F, C: Sleep = TokioClock> {
        #[pin]
        state: State<F, C::Sleep>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Sl> {
        // The request was sent; `sleep` ends at its deadline, if it has one.
        Sent { #[pin] fut: F, #[pin] sleep: Option<Sl>, grpc: bool },
        // The deadline had passed: not sent.
        Expired { grpc: bool },
    }
}

impl<F, C, ResBody, E> Future for PropagateFuture<F, C>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    C: Sleep,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { fut, sleep, grpc } => {
                // The deadline first, so that it wins a tie with the inner service's timer.
                if let Some(sleep) = sleep.as_pin_mut()
                    && sleep.poll(cx).is_ready()
                {
                    return Poll::Ready(Ok(expired_response(*grpc)));
                }
                fut.poll(cx)
            }
            StateProj::Expired { grpc } => Poll::Ready(Ok(expired_response(*grpc))),
        }
    }
}

impl<F, C: Sleep> std::fmt::Debug for PropagateFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let expired = matches!(self.state, State::Expired { .. });
        f.debug_struct("PropagateFuture")
            .field("expired", &expired)
            .finish_non_exhaustive()
    }
}
