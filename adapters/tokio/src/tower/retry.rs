//! Timeout, retry and the whole pipeline as tower middleware.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::pipeline::{self, BreakerStage, BulkheadStage, LimiterStage, Pipeline, Transient};
use bulwark::retry::{self, Classify, Hooks, Operation, Retry, RetryBudget};
#[cfg(doc)]
use bulwark::timeout::Elapsed;
use bulwark::timeout::{Deadline, Timeout, timeout};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use crate::TokioClock;

// ===== one attempt: a clone of the service, made ready, called =====

/// One request to a clone of a service: the [`Operation`] retry and the pipeline repeat.
/// Needs `Svc: Clone` and `Req: Clone` (each attempt sends its own copy).
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A RetryService hands retry an `Attempts` of (service clone, request clone) per call.
/// let layer = bulwark_tokio::tower::RetryLayer::leak(Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap());
/// let svc = layer.layer(service_fn(|s: String| async move { Ok::<_, std::io::Error>(s.len()) }));
/// assert_eq!(svc.oneshot("four".to_string()).await.unwrap(), 4);
/// # }
/// ```
#[derive(Debug)]
pub struct Attempts<Svc, Req> {
    svc: Svc,
    req: Req,
}

impl<Svc, Req> Attempts<Svc, Req> {
    /// Attempts of `req` against clones of `svc`: hand it to
    /// [`Retry::call_operation`] or [`Pipeline::call`] to drive a tower service by hand.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use bulwark::timeout::Deadline;
    /// use bulwark_tokio::{TokioClock, tower::Attempts};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let retry = Retry::new(Config::new(), TokioClock::global()).unwrap();
    /// let svc = tower::service_fn(|s: &'static str| async move { Ok::<_, ()>(s.len()) });
    /// assert_eq!(retry.call_operation(Deadline::NONE, Attempts::new(svc, "four")).await, Ok(4));
    /// # }
    /// ```
    pub fn new(svc: Svc, req: Req) -> Self {
        Attempts { svc, req }
    }
}

impl<Svc, Req> Operation for Attempts<Svc, Req>
where
    Svc: Service<Req> + Clone,
    Req: Clone,
{
    type Future = ReadyCall<Svc, Req>;
    fn attempt(&mut self) -> ReadyCall<Svc, Req> {
        ReadyCall {
            svc: self.svc.clone(),
            req: Some(self.req.clone()),
            fut: None,
        }
    }
}

pin_project! {
    /// Waits for a service to be ready, then calls it (tower's `oneshot`, named).
    ///
    /// ```
    /// use bulwark::retry::Operation;
    /// use bulwark_tokio::tower::{Attempts, ReadyCall};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut attempts = Attempts::new(tower::service_fn(|n: u8| async move { Ok::<_, ()>(n * 2) }), 21);
    /// let call: ReadyCall<_, _> = attempts.attempt(); // each attempt of a retry is one of these
    /// assert_eq!(call.await, Ok(42));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ReadyCall<Svc: Service<Req>, Req> {
        svc: Svc,
        req: Option<Req>,
        #[pin]
        fut: Option<Svc::Future>,
    }
}

impl<Svc: Service<Req>, Req> Future for ReadyCall<Svc, Req> {
    type Output = Result<Svc::Response, Svc::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.req.is_some() {
            std::task::ready!(this.svc.poll_ready(cx))?;
            if let Some(req) = this.req.take() {
                this.fut.set(Some(this.svc.call(req)));
            }
        }
        match this.fut.as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Pending, // polled after completion
        }
    }
}

impl<Svc: Service<Req>, Req> std::fmt::Debug for ReadyCall<Svc, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyCall")
            .field("called", &self.req.is_none())
            .finish_non_exhaustive()
    }
}

/// Takes the service that `poll_ready` prepared and leaves a fresh clone in its place (the
/// usual tower move for middleware that calls its inner service from a future).
fn take_ready<Svc: Clone>(svc: &mut Svc) -> Svc {
    let fresh = svc.clone();
    std::mem::replace(svc, fresh)
}

// ===== timeout =====

/// Bounds every call of the inner service by a duration on tokio's clock; a call that runs
/// over fails with [`Elapsed`] (boxed) and its future is dropped.
///
/// # Examples
///
/// ```
/// use bulwark_tokio::tower::TimeoutLayer;
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let svc = TimeoutLayer::new(Duration::from_millis(100)).layer(service_fn(|d: u64| async move {
///     tokio::time::sleep(Duration::from_millis(d)).await;
///     Ok::<_, std::io::Error>(d)
/// }));
/// assert_eq!(svc.clone().oneshot(50).await.unwrap(), 50);
/// let err = svc.oneshot(500).await.unwrap_err();
/// assert!(err.downcast_ref::<bulwark::timeout::Elapsed>().is_some());
/// # }
/// ```
#[derive(Copy, Clone, Debug)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// A layer bounding each call by `limit`.
    ///
    /// ```
    /// let _layer = bulwark_tokio::tower::TimeoutLayer::new(std::time::Duration::from_secs(1));
    /// ```
    pub fn new(limit: Duration) -> Self {
        TimeoutLayer { limit }
    }
}

impl<Svc> Layer<Svc> for TimeoutLayer {
    type Service = TimeoutService<Svc>;
    fn layer(&self, inner: Svc) -> TimeoutService<Svc> {
        TimeoutService {
            inner,
            limit: self.limit,
        }
    }
}

/// A service whose calls are bounded in time. Built by [`TimeoutLayer`].
///
/// Readiness is the inner service's. The timer is armed only once the inner future is first
/// pending: a response that is ready at once costs no timer.
///
/// ```
/// use bulwark_tokio::tower::TimeoutLayer;
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = TimeoutLayer::new(std::time::Duration::from_secs(1)).layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
/// assert_eq!(svc.oneshot(()).await.unwrap(), 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TimeoutService<Svc> {
    inner: Svc,
    limit: Duration,
}

impl<Svc, Req> Service<Req> for TimeoutService<Svc>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<Svc::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture {
            inner: timeout(TokioClock::global(), self.limit, self.inner.call(req)),
        }
    }
}

pin_project! {
    /// The response future of [`TimeoutService`].
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = bulwark_tokio::tower::TimeoutLayer::new(std::time::Duration::from_secs(1)).layer(service_fn(|()| async { Ok::<_, std::io::Error>(2) }));
    /// let fut: bulwark_tokio::tower::TimeoutFuture<_> = svc.ready().await.unwrap().call(());
    /// assert_eq!(fut.await.unwrap(), 2);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: Timeout<'static, TokioClock, F>,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match std::task::ready!(self.project().inner.poll(cx)) {
            Ok(r) => r.map_err(Into::into),
            Err(elapsed) => Err(Box::new(elapsed)),
        })
    }
}

impl<F> std::fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutFuture").finish_non_exhaustive()
    }
}

// ===== retry =====

/// The policy of a [`RetryLayer`]: a [`Retry`] on the process-wide tokio clock.
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _policy: bulwark_tokio::tower::TokioRetry = Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap();
/// # }
/// ```
pub type TokioRetry<K = retry::ErrorsAreTransient, H = (), B = ()> =
    Retry<&'static TokioClock, K, H, B>;

/// Retries calls of the inner service by a [`Retry`] policy. Each attempt sends its own clone
/// of the request to its own clone of the service, so both must be `Clone`.
///
/// The policy is `&'static` because response futures borrow it: keep it in a `static`, or
/// [`leak`](RetryLayer::leak) one at start-up (one allocation, none per call).
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Backoff, Config, Retry};
/// use bulwark_tokio::{TokioClock, tower::RetryLayer};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// static CALLS: AtomicU32 = AtomicU32::new(0);
/// let policy = Retry::new(
///     Config::new().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(10))),
///     TokioClock::global(),
/// )
/// .unwrap();
/// let svc = RetryLayer::leak(policy).layer(service_fn(|req: &'static str| async move {
///     if CALLS.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok(req) }
/// }));
/// assert_eq!(svc.oneshot("hello").await.unwrap(), "hello");
/// assert_eq!(CALLS.load(Ordering::SeqCst), 3);
/// # }
/// ```
#[derive(Debug)]
pub struct RetryLayer<K: 'static = retry::ErrorsAreTransient, H: 'static = (), B: 'static = ()> {
    retry: &'static TokioRetry<K, H, B>,
}

impl<K: 'static, H: 'static, B: 'static> RetryLayer<K, H, B> {
    /// A layer over a policy that lives for the whole program.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use std::sync::OnceLock;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// static POLICY: OnceLock<bulwark_tokio::tower::TokioRetry> = OnceLock::new();
    /// let policy = POLICY.get_or_init(|| Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap());
    /// let _layer = bulwark_tokio::tower::RetryLayer::new(policy);
    /// # }
    /// ```
    pub fn new(retry: &'static TokioRetry<K, H, B>) -> Self {
        RetryLayer { retry }
    }

    /// A layer over `retry`, moved to the heap once and never freed.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::leak(Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap());
    /// let _policy = layer.retry();
    /// # }
    /// ```
    pub fn leak(retry: TokioRetry<K, H, B>) -> Self {
        Self::new(Box::leak(Box::new(retry)))
    }

    /// The policy.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::leak(Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap());
    /// assert!(layer.retry().config().validate().is_ok());
    /// # }
    /// ```
    pub fn retry(&self) -> &'static TokioRetry<K, H, B> {
        self.retry
    }
}

impl<K: 'static, H: 'static, B: 'static> Clone for RetryLayer<K, H, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: 'static, H: 'static, B: 'static> Copy for RetryLayer<K, H, B> {}

impl<Svc, K: 'static, H: 'static, B: 'static> Layer<Svc> for RetryLayer<K, H, B> {
    type Service = RetryService<Svc, K, H, B>;
    fn layer(&self, inner: Svc) -> Self::Service {
        RetryService {
            inner,
            retry: self.retry,
        }
    }
}

/// A service whose calls are retried. Built by [`RetryLayer`].
///
/// Readiness is the inner service's; the service made ready is the one the first attempt
/// calls, and each retry waits for a fresh clone to be ready.
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = bulwark_tokio::tower::RetryLayer::leak(Retry::new(Config::new().max_attempts(2), bulwark_tokio::TokioClock::global()).unwrap());
/// let svc = layer.layer(service_fn(|()| async { Err::<(), _>("down") }));
/// assert_eq!(svc.oneshot(()).await.unwrap_err().to_string(), "down");
/// # }
/// ```
#[derive(Debug)]
pub struct RetryService<
    Svc,
    K: 'static = retry::ErrorsAreTransient,
    H: 'static = (),
    B: 'static = (),
> {
    inner: Svc,
    retry: &'static TokioRetry<K, H, B>,
}

impl<Svc: Clone, K: 'static, H: 'static, B: 'static> Clone for RetryService<Svc, K, H, B> {
    fn clone(&self) -> Self {
        RetryService {
            inner: self.inner.clone(),
            retry: self.retry,
        }
    }
}

impl<Svc, Req, K, H, B> Service<Req> for RetryService<Svc, K, H, B>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    K: Classify<Svc::Response, Svc::Error> + 'static,
    H: Hooks<Svc::Response, Svc::Error> + 'static,
    B: RetryBudget + 'static,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = RetryFuture<Svc, Req, K, H, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let attempts = Attempts {
            svc: take_ready(&mut self.inner),
            req,
        };
        RetryFuture {
            inner: self.retry.call_operation(Deadline::NONE, attempts),
        }
    }
}

pin_project! {
    /// The response future of [`RetryService`].
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::leak(Retry::new(Config::new(), bulwark_tokio::TokioClock::global()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(3) }));
    /// let fut: bulwark_tokio::tower::RetryFuture<_, _, _, _, _> = svc.ready().await.unwrap().call(());
    /// assert_eq!(fut.await.unwrap(), 3);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<Svc, Req, K, H, B>
    where
        Svc: Service<Req>,
        K: 'static,
        H: 'static,
        B: 'static,
    {
        #[pin]
        inner: retry::Call<'static, &'static TokioClock, K, H, B, Attempts<Svc, Req>, ReadyCall<Svc, Req>>,
    }
}

impl<Svc, Req, K, H, B> Future for RetryFuture<Svc, Req, K, H, B>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    K: Classify<Svc::Response, Svc::Error> + 'static,
    H: Hooks<Svc::Response, Svc::Error> + 'static,
    B: RetryBudget + 'static,
{
    type Output = Result<Svc::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(self.project().inner.poll(cx));
        Poll::Ready(out.map_err(|e| match e {
            retry::Error::Exhausted { last, .. } | retry::Error::BudgetExhausted { last, .. } => {
                last.into()
            }
            retry::Error::Permanent { error, .. } => error.into(),
            retry::Error::DeadlineExceeded {
                last: Some(last), ..
            } => last.into(),
            other => format!("retry stopped after {} attempts", other.attempts()).into(),
        }))
    }
}

impl<Svc: Service<Req>, Req, K: 'static, H: 'static, B: 'static> std::fmt::Debug
    for RetryFuture<Svc, Req, K, H, B>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").finish_non_exhaustive()
    }
}

// ===== the pipeline =====

/// A [`Pipeline`] on the process-wide tokio clock, with `'static` parts.
///
/// ```
/// use bulwark::{pipeline::Pipeline, retry::Config};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _p: bulwark_tokio::tower::TokioPipeline = Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap();
/// # }
/// ```
pub type TokioPipeline<P = pipeline::AllTransient, B = (), CB = (), RL = (), BH = ()> =
    Pipeline<'static, TokioClock, P, B, CB, RL, BH>;

/// Runs every call of the inner service through a [`Pipeline`] (timeouts, retry, breaker,
/// limiter, bulkhead). Rejections are the core's own errors, boxed: downcast to
/// [`Rejected`](bulwark::circuit_breaker::Rejected),
/// [`RateLimited`](bulwark::rate_limiter::RateLimited),
/// [`BulkheadFull`](bulwark::bulkhead::BulkheadFull) or [`Elapsed`].
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb};
/// use bulwark::pipeline::Pipeline;
/// use bulwark::retry::Config;
/// use bulwark_tokio::{TokioClock, tower::PipelineLayer};
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::global();
/// let breaker = Box::leak(Box::new(CircuitBreaker::new(Cb::new().consecutive_failures(2), clock).unwrap()));
/// let pipeline = Pipeline::new(clock, Config::new().max_attempts(2))
///     .unwrap()
///     .breaker(&*breaker)
///     .total_timeout(Duration::from_secs(1)) // too short to wait out the 30 s open time
///     .attempt_timeout(Duration::from_millis(200));
/// let svc = PipelineLayer::leak(pipeline).layer(service_fn(|()| async { Err::<(), _>("503") }));
/// assert_eq!(svc.clone().oneshot(()).await.unwrap_err().to_string(), "503"); // 2 attempts: opens
/// let err = svc.oneshot(()).await.unwrap_err();
/// assert!(err.downcast_ref::<bulwark::circuit_breaker::Rejected>().is_some());
/// # }
/// ```
#[derive(Debug)]
pub struct PipelineLayer<
    P: 'static = pipeline::AllTransient,
    B: 'static = (),
    CB: 'static = (),
    RL: 'static = (),
    BH: 'static = (),
> {
    pipeline: &'static TokioPipeline<P, B, CB, RL, BH>,
}

impl<P: 'static, B: 'static, CB: 'static, RL: 'static, BH: 'static>
    PipelineLayer<P, B, CB, RL, BH>
{
    /// A layer over a pipeline that lives for the whole program.
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let p: &'static _ = Box::leak(Box::new(Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap()));
    /// let _layer = bulwark_tokio::tower::PipelineLayer::new(p);
    /// # }
    /// ```
    pub fn new(pipeline: &'static TokioPipeline<P, B, CB, RL, BH>) -> Self {
        PipelineLayer { pipeline }
    }

    /// A layer over `pipeline`, moved to the heap once and never freed.
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::leak(Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap());
    /// let _p = layer.pipeline();
    /// # }
    /// ```
    pub fn leak(pipeline: TokioPipeline<P, B, CB, RL, BH>) -> Self {
        Self::new(Box::leak(Box::new(pipeline)))
    }

    /// The pipeline.
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::leak(Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap());
    /// println!("{:?}", layer.pipeline());
    /// # }
    /// ```
    pub fn pipeline(&self) -> &'static TokioPipeline<P, B, CB, RL, BH> {
        self.pipeline
    }
}

impl<P: 'static, B: 'static, CB: 'static, RL: 'static, BH: 'static> Clone
    for PipelineLayer<P, B, CB, RL, BH>
{
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: 'static, B: 'static, CB: 'static, RL: 'static, BH: 'static> Copy
    for PipelineLayer<P, B, CB, RL, BH>
{
}

impl<Svc, P: 'static, B: 'static, CB: 'static, RL: 'static, BH: 'static> Layer<Svc>
    for PipelineLayer<P, B, CB, RL, BH>
{
    type Service = PipelineService<Svc, P, B, CB, RL, BH>;
    fn layer(&self, inner: Svc) -> Self::Service {
        PipelineService {
            inner,
            pipeline: self.pipeline,
        }
    }
}

/// A service behind a [`Pipeline`]. Built by [`PipelineLayer`]; needs `Svc: Clone` and
/// `Req: Clone` (each attempt sends its own copy).
///
/// Readiness is the inner service's. The admission layers (breaker, limiter, bulkhead) are
/// asked per attempt inside the response future and shed at once; retry waits out the
/// instants they report.
///
/// ```
/// use bulwark::{pipeline::Pipeline, retry::Config};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = bulwark_tokio::tower::PipelineLayer::leak(Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap());
/// let svc = layer.layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n + 1) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct PipelineService<
    Svc,
    P: 'static = pipeline::AllTransient,
    B: 'static = (),
    CB: 'static = (),
    RL: 'static = (),
    BH: 'static = (),
> {
    inner: Svc,
    pipeline: &'static TokioPipeline<P, B, CB, RL, BH>,
}

impl<Svc: Clone, P: 'static, B: 'static, CB: 'static, RL: 'static, BH: 'static> Clone
    for PipelineService<Svc, P, B, CB, RL, BH>
{
    fn clone(&self) -> Self {
        PipelineService {
            inner: self.inner.clone(),
            pipeline: self.pipeline,
        }
    }
}

impl<Svc, Req, P, B, CB, RL, BH> Service<Req> for PipelineService<Svc, P, B, CB, RL, BH>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    P: Transient<Svc::Error> + 'static,
    B: RetryBudget + 'static,
    CB: BreakerStage + 'static,
    RL: LimiterStage + 'static,
    BH: BulkheadStage + 'static,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = PipelineFuture<Svc, Req, P, B, CB, RL, BH>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let attempts = Attempts {
            svc: take_ready(&mut self.inner),
            req,
        };
        PipelineFuture {
            inner: self.pipeline.call(attempts),
        }
    }
}

pin_project! {
    /// The response future of [`PipelineService`].
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::leak(Pipeline::new(bulwark_tokio::TokioClock::global(), Config::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(4) }));
    /// let fut: bulwark_tokio::tower::PipelineFuture<_, _, _, _, _, _, _> = svc.ready().await.unwrap().call(());
    /// assert_eq!(fut.await.unwrap(), 4);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct PipelineFuture<Svc, Req, P, B, CB, RL, BH>
    where
        Svc: Service<Req>,
        Svc: Clone,
        Req: Clone,
        P: Transient<Svc::Error>,
        P: 'static,
        B: RetryBudget,
        B: 'static,
        CB: BreakerStage,
        CB: 'static,
        RL: LimiterStage,
        RL: 'static,
        BH: BulkheadStage,
        BH: 'static,
    {
        #[pin]
        inner: pipeline::Call<'static, 'static, TokioClock, P, B, CB, RL, BH, Attempts<Svc, Req>, ReadyCall<Svc, Req>>,
    }
}

impl<Svc, Req, P, B, CB, RL, BH> Future for PipelineFuture<Svc, Req, P, B, CB, RL, BH>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    P: Transient<Svc::Error> + 'static,
    B: RetryBudget + 'static,
    CB: BreakerStage + 'static,
    RL: LimiterStage + 'static,
    BH: BulkheadStage + 'static,
{
    type Output = Result<Svc::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(self.project().inner.poll(cx));
        Poll::Ready(out.map_err(|e| -> BoxError {
            match e {
                pipeline::Error::Operation(e) => e.into(),
                pipeline::Error::CircuitOpen(r) => Box::new(r),
                pipeline::Error::RateLimited(r) => Box::new(r),
                pipeline::Error::BulkheadFull(r) => Box::new(r),
                pipeline::Error::AttemptTimeout(e) | pipeline::Error::Timeout(e) => Box::new(e),
                _ => "pipeline error".into(),
            }
        }))
    }
}

impl<Svc, Req, P, B, CB, RL, BH> std::fmt::Debug for PipelineFuture<Svc, Req, P, B, CB, RL, BH>
where
    Svc: Service<Req> + Clone,
    Req: Clone,
    P: Transient<Svc::Error> + 'static,
    B: RetryBudget + 'static,
    CB: BreakerStage + 'static,
    RL: LimiterStage + 'static,
    BH: BulkheadStage + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineFuture").finish_non_exhaustive()
    }
}
