//! Timeout, retry and the whole pipeline as tower middleware.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::Clock;
use bulwark::admission::Admit;
use bulwark::classify::{ErrorsAreFailures, Verdict};
use bulwark::pipeline::{self, Judged, Pipeline, Rejection, Waits};
use bulwark::retry::{self, Classify, Hooks, Operation, Retry, RetryBudget};
#[cfg(doc)]
use bulwark::timeout::Elapsed;
use bulwark::timeout::{Deadline, Timeout, timeout};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use super::handle::{Handle, Held};
use crate::TokioClock;

// ===== one attempt: a clone of the service, made ready, called =====

/// One request sent to a service once per attempt: the [`Operation`] retry, the pipeline and
/// hedging repeat. Needs `Svc: Clone` and `Req: Clone`: each attempt sends its own copy of the
/// request, and every attempt but a ready service's first goes to a clone of the service,
/// made ready before it is called.
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A RetryService hands retry an `Attempts` of (the ready service, the request) per call.
/// let layer = bulwark_tokio::tower::RetryLayer::new(Retry::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|s: String| async move { Ok::<_, std::io::Error>(s.len()) }));
/// assert_eq!(svc.oneshot("four".to_string()).await.unwrap(), 4);
/// # }
/// ```
#[derive(Debug)]
pub struct Attempts<Svc, Req> {
    svc: Svc,
    req: Req,
    /// `svc` has answered `poll_ready` and has not been called since: the first attempt
    /// calls it as it is.
    ready: bool,
}

impl<Svc, Req> Attempts<Svc, Req> {
    /// Attempts of `req` against `svc`, which has not been made ready: each attempt, the
    /// first too, sends to a clone of `svc` once that clone is ready. Hand it to
    /// [`Retry::call_operation`] or [`Pipeline::call`] to drive a tower service by hand.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use bulwark::timeout::Deadline;
    /// use bulwark_tokio::{TokioClock, tower::Attempts};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let retry = Retry::new(Config::new(), TokioClock::new()).unwrap();
    /// let svc = tower::service_fn(|s: &'static str| async move { Ok::<_, ()>(s.len()) });
    /// assert_eq!(retry.call_operation(Deadline::NONE, Attempts::new(svc, "four")).await, Ok(4));
    /// # }
    /// ```
    pub fn new(svc: Svc, req: Req) -> Self {
        Attempts {
            svc,
            req,
            ready: false,
        }
    }

    /// Attempts of `req` against `svc`, which has just answered `poll_ready` with
    /// `Ready(Ok(()))`: the first attempt calls `svc` itself, on the readiness its caller
    /// obtained (a permit tower's concurrency limit took, say); later attempts send to clones
    /// made ready in turn. What the retry, pipeline and hedge services build on each call.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use bulwark::timeout::Deadline;
    /// use bulwark_tokio::{TokioClock, tower::Attempts};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let retry = Retry::new(Config::new(), TokioClock::new()).unwrap();
    /// // One permit: a clone of this service would wait for it while `svc` holds it.
    /// let mut svc = ServiceBuilder::new().concurrency_limit(1).service(service_fn(|n: u32| async move { Ok::<_, ()>(n + 1) }));
    /// svc.ready().await.unwrap();
    /// assert_eq!(retry.call_operation(Deadline::NONE, Attempts::ready(svc, 41)).await, Ok(42));
    /// # }
    /// ```
    pub fn ready(svc: Svc, req: Req) -> Self {
        Attempts {
            svc,
            req,
            ready: true,
        }
    }
}

impl<Svc, Req> Operation for Attempts<Svc, Req>
where
    Svc: Service<Req> + Clone,
    Req: Clone,
{
    type Future = ReadyCall<Svc, Req>;
    fn attempt(&mut self) -> ReadyCall<Svc, Req> {
        let step = if std::mem::take(&mut self.ready) {
            // The caller's readiness is spent here, on the first attempt.
            Step::Sent {
                fut: self.svc.call(self.req.clone()),
            }
        } else {
            Step::Readying {
                svc: self.svc.clone(),
                req: self.req.clone(),
            }
        };
        ReadyCall { step }
    }
}

pin_project! {
    /// One attempt of [`Attempts`]: a clone of the service made ready, then called (tower's
    /// `oneshot`, named), or a call already sent on a service its caller made ready.
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
        #[pin]
        step: Step<Svc, Req, Svc::Future>,
    }
}

pin_project! {
    /// Where a [`ReadyCall`] is.
    #[project = StepProj]
    #[project_replace = StepReplace]
    enum Step<Svc, Req, F> {
        // Waiting for the service's readiness; then the request is sent.
        Readying { svc: Svc, req: Req },
        Sent { #[pin] fut: F },
        // Only between taking `Readying` apart and setting `Sent`.
        Empty,
    }
}

impl<Svc: Service<Req>, Req> Future for ReadyCall<Svc, Req> {
    type Output = Result<Svc::Response, Svc::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut step = self.project().step;
        if let StepProj::Readying { svc, .. } = step.as_mut().project() {
            std::task::ready!(svc.poll_ready(cx))?;
            if let StepReplace::Readying { mut svc, req } =
                step.as_mut().project_replace(Step::Empty)
            {
                step.set(Step::Sent { fut: svc.call(req) });
            }
        }
        match step.project() {
            StepProj::Sent { fut } => fut.poll(cx),
            _ => Poll::Pending, // unreachable: `Empty` never outlives this poll
        }
    }
}

impl<Svc: Service<Req>, Req> std::fmt::Debug for ReadyCall<Svc, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyCall")
            .field("sent", &matches!(self.step, Step::Sent { .. }))
            .finish_non_exhaustive()
    }
}

/// Takes the service that `poll_ready` prepared and leaves a fresh clone in its place (the
/// usual tower move for middleware that calls its inner service from a future).
pub(super) fn take_ready<Svc: Clone>(svc: &mut Svc) -> Svc {
    let fresh = svc.clone();
    std::mem::replace(svc, fresh)
}

// ===== timeout =====

/// Bounds every call of the inner service by a duration on tokio's clock; a call that runs
/// over fails with [`Elapsed`] (boxed) and its future is dropped.
///
/// A [`RetryLayer`] or [`PipelineLayer`] inside it (a total timeout around retries) reads the
/// bound when the call is made, and never waits for a retry that would start at or after it:
/// it answers with what it has at once rather than sleep into a timeout.
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
        // A retry layer inside learns how long this call may take (see `within`).
        let fut = within(self.limit, || self.inner.call(req));
        TimeoutFuture {
            inner: timeout(TokioClock, self.limit, fut),
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
        inner: Timeout<TokioClock, F>,
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

// ===== how long a call may take, handed from a timeout layer to a retry layer inside =====

thread_local! {
    /// While a [`TimeoutService`] calls its inner service: how long the call may take (the
    /// tightest of the timeouts around it). A service's `call` is synchronous, so the value
    /// is seen exactly by the services the timeout's own `call` reaches, and by nothing
    /// polled later.
    static BUDGET: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Puts the previous budget back, even if the inner `call` panics.
struct Restore(Option<Duration>);

impl Drop for Restore {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.0));
    }
}

/// Runs `f` (an inner service's `call`) with the budget cut to `limit`.
fn within<R>(limit: Duration, f: impl FnOnce() -> R) -> R {
    let outer = BUDGET.with(|b| {
        let outer = b.get();
        b.set(Some(outer.map_or(limit, |o| o.min(limit))));
        outer
    });
    let _restore = Restore(outer);
    f()
}

/// The budget set by the timeouts around the `call` being made, if any.
#[inline]
fn budget() -> Option<Duration> {
    BUDGET.with(std::cell::Cell::get)
}

// ===== a gate's rejection, read from an error =====

/// The gate rejection an error is, or wraps: a circuit breaker's
/// [`Rejected`](bulwark::circuit_breaker::Rejected), a limiter's
/// [`RateLimited`](bulwark::rate_limiter::RateLimited) (or a keyed limiter's
/// [`Denied`](bulwark::rate_limiter::Denied)), a [`BulkheadFull`](bulwark::bulkhead::BulkheadFull),
/// or a pipeline [`Rejection`]; found in the error itself or anywhere down its `source()`
/// chain. What the [`RetryLayer`] and the axum error handler read from a layer's `BoxError`,
/// so nobody downcasts by hand.
///
/// ```
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark::pipeline::Rejection;
/// use bulwark_tokio::tower::{BoxError, rejection};
/// let e: BoxError = Box::new(BulkheadFull);
/// assert_eq!(rejection(&*e), Some(Rejection::BulkheadFull(BulkheadFull)));
/// let other: BoxError = "downstream said no".into();
/// assert_eq!(rejection(&*other), None);
/// ```
pub fn rejection(err: &(dyn std::error::Error + 'static)) -> Option<Rejection> {
    use bulwark::bulkhead::BulkheadFull;
    use bulwark::circuit_breaker::Rejected;
    use bulwark::rate_limiter::{Denied, RateLimited};
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<Rejected>() {
            return Some(Rejection::CircuitOpen(*r));
        }
        if let Some(r) = e.downcast_ref::<RateLimited>() {
            return Some(Rejection::RateLimited(*r));
        }
        if let Some(r) = e.downcast_ref::<BulkheadFull>() {
            return Some(Rejection::BulkheadFull(*r));
        }
        if let Some(r) = e.downcast_ref::<bulwark::throttle::Throttled>() {
            return Some(Rejection::Throttled(*r));
        }
        if let Some(r) = e.downcast_ref::<Rejection>() {
            return Some(*r);
        }
        if let Some(d) = e.downcast_ref::<Denied>() {
            return Some(Rejection::from(*d));
        }
        next = e.source();
    }
    None
}

/// [`rejection`] for an error of any type: a `BoxError` (what tower layers return), or a
/// rejection type itself.
fn rejection_in<E: 'static>(err: &E) -> Option<Rejection> {
    let any: &dyn std::any::Any = err;
    if let Some(boxed) = any.downcast_ref::<BoxError>() {
        return rejection(&**boxed);
    }
    if let Some(boxed) = any.downcast_ref::<Box<dyn std::error::Error + Send>>() {
        return rejection(&**boxed);
    }
    if let Some(boxed) = any.downcast_ref::<Box<dyn std::error::Error>>() {
        return rejection(&**boxed);
    }
    if let Some(r) = any.downcast_ref::<Rejection>() {
        return Some(*r);
    }
    use bulwark::bulkhead::BulkheadFull;
    use bulwark::circuit_breaker::Rejected;
    use bulwark::rate_limiter::{Denied, RateLimited};
    if let Some(r) = any.downcast_ref::<Rejected>() {
        return Some(Rejection::CircuitOpen(*r));
    }
    if let Some(r) = any.downcast_ref::<RateLimited>() {
        return Some(Rejection::RateLimited(*r));
    }
    if let Some(r) = any.downcast_ref::<BulkheadFull>() {
        return Some(Rejection::BulkheadFull(*r));
    }
    if let Some(r) = any.downcast_ref::<bulwark::throttle::Throttled>() {
        return Some(Rejection::Throttled(*r));
    }
    any.downcast_ref::<Denied>().map(|d| Rejection::from(*d))
}

/// The classifier of a [`RetryLayer`]: a gate's rejection found in the error (a breaker,
/// limiter or bulkhead layer inside the retry layer, see [`rejection`]) is judged by the
/// pipeline's rule ([`Waits::verdict`]: by default an open breaker is waited out until its
/// retry instant, when that fits the call's deadline and the policy's limits, and a
/// saturated limiter or a full bulkhead is answered at once); every other result is judged
/// by `K`, the policy's own classifier.
///
/// `RetryLayer::new` wraps the policy's classifier in it; build one by
/// hand to share a policy between layers ([`PolicyLayer::shared`]).
///
/// ```
/// use bulwark::circuit_breaker::Rejected;
/// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
/// use bulwark::pipeline::Waits;
/// use bulwark::Clock;
/// use bulwark_tokio::{TokioClock, tower::{BoxError, Rejections}};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let now = TokioClock::new().now();
/// let open: BoxError = Box::new(Rejected::new(Some(now + Duration::from_secs(2)), now));
/// let k = Rejections::new(ErrorsAreFailures);
/// assert_eq!(k.classify(&Err::<(), _>(open)), Verdict::failure_after(Duration::from_secs(2)));
/// let k = k.waits(Waits::Nothing);
/// let open: BoxError = Box::new(Rejected::new(Some(now + Duration::from_secs(2)), now));
/// assert_eq!(k.classify(&Err::<(), _>(open)), Verdict::Ignore); // answered at once
/// let down: BoxError = "503".into();
/// assert_eq!(k.classify(&Err::<(), _>(down)), Verdict::FAILURE); // ErrorsAreFailures
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Rejections<K = ErrorsAreFailures> {
    classify: K,
    waits: Waits,
}

impl<K> Rejections<K> {
    /// `classify` for every result that is not a gate's rejection; rejections as
    /// [`Waits::Breaker`] says (the pipeline's default).
    ///
    /// ```
    /// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
    /// let k = bulwark_tokio::tower::Rejections::new(ErrorsAreFailures);
    /// assert_eq!(k.classify(&Ok::<_, std::io::Error>(1)), Verdict::Success);
    /// ```
    pub fn new(classify: K) -> Self {
        Rejections {
            classify,
            waits: Waits::Breaker,
        }
    }

    /// The same classifier, waiting out the rejections `waits` names.
    ///
    /// ```
    /// use bulwark::bulkhead::BulkheadFull;
    /// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
    /// use bulwark::pipeline::Waits;
    /// use bulwark_tokio::tower::{BoxError, Rejections};
    /// let all = Rejections::new(ErrorsAreFailures).waits(Waits::All);
    /// let full: BoxError = Box::new(BulkheadFull);
    /// assert_eq!(all.classify(&Err::<(), _>(full)), Verdict::FAILURE); // retried with the backoff
    /// ```
    pub fn waits(self, waits: Waits) -> Self {
        Rejections { waits, ..self }
    }

    /// The classifier of every other result.
    ///
    /// ```
    /// use bulwark::classify::ErrorsAreFailures;
    /// let k = bulwark_tokio::tower::Rejections::new(ErrorsAreFailures);
    /// let _inner: &ErrorsAreFailures = k.inner();
    /// ```
    pub fn inner(&self) -> &K {
        &self.classify
    }
}

impl<T, E: 'static, K: Classify<T, E>> Classify<T, E> for Rejections<K> {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        if let Err(e) = result
            && let Some(rejected) = rejection_in(e)
        {
            return self.waits.verdict(&rejected, &TokioClock);
        }
        self.classify.classify(result)
    }
}

// ===== a policy shared by every service of a layer =====

/// A layer that runs calls through a policy shared by an `Arc`: a [`Retry`]
/// ([`RetryLayer`]) or a whole [`Pipeline`] ([`PipelineLayer`]). Every service it builds,
/// every clone of them and every response future in flight holds the `Arc` (a future
/// through a [`Handle`](super::Handle)); the policy is freed with the last of them.
///
/// ```
/// use bulwark::classify::ErrorsAreFailures;
/// use bulwark::retry::{Config, Retry};
/// use bulwark_tokio::{TokioClock, tower::{Rejections, RetryLayer}};
/// use std::sync::Arc;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // One policy (and its budget) for two layers: its classifier reads gate rejections.
/// let policy = Arc::new(
///     Retry::new(Config::new(), TokioClock::new()).unwrap().with_classifier(Rejections::new(ErrorsAreFailures)),
/// );
/// let (a, b) = (RetryLayer::shared(Arc::clone(&policy)), RetryLayer::shared(Arc::clone(&policy)));
/// assert!(Arc::ptr_eq(a.policy(), b.policy()));
/// # }
/// ```
#[derive(Debug)]
pub struct PolicyLayer<P> {
    policy: Arc<P>,
}

impl<P> PolicyLayer<P> {
    /// A layer over a policy already shared (with another layer, or with code that reads its
    /// state).
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let p = Arc::new(Pipeline::new(bulwark_tokio::TokioClock::new(), Config::new()).unwrap());
    /// let layer = bulwark_tokio::tower::PipelineLayer::shared(Arc::clone(&p));
    /// assert_eq!(Arc::strong_count(&p), 2);
    /// # drop(layer);
    /// # }
    /// ```
    pub fn shared(policy: Arc<P>) -> Self {
        PolicyLayer { policy }
    }

    /// The policy.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::new(Retry::new(Config::new().max_attempts(2), bulwark_tokio::TokioClock::new()).unwrap());
    /// assert_eq!(layer.policy().config().validate(), Ok(()));
    /// # }
    /// ```
    pub fn policy(&self) -> &Arc<P> {
        &self.policy
    }
}

impl<P> Clone for PolicyLayer<P> {
    fn clone(&self) -> Self {
        PolicyLayer {
            policy: Arc::clone(&self.policy),
        }
    }
}

impl<Svc, P> Layer<Svc> for PolicyLayer<P> {
    type Service = PolicyService<Svc, P>;
    fn layer(&self, inner: Svc) -> Self::Service {
        PolicyService {
            inner,
            policy: Held::new(Arc::clone(&self.policy)),
        }
    }
}

/// A service whose calls run through a shared policy. Built by [`PolicyLayer`]; clones share
/// the policy (and its budget, breaker, limiter...).
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = bulwark_tokio::tower::RetryLayer::new(Retry::new(Config::new().max_attempts(2), bulwark_tokio::TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x + 1) }));
/// assert_eq!(svc.policy().config().validate(), Ok(()));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct PolicyService<Svc, P> {
    inner: Svc,
    policy: Held<P>,
}

impl<Svc, P> PolicyService<Svc, P> {
    /// The policy.
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::new(Pipeline::new(bulwark_tokio::TokioClock::new(), Config::new()).unwrap());
    /// let svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
    /// assert!(std::sync::Arc::ptr_eq(svc.policy(), layer.policy()));
    /// # }
    /// ```
    pub fn policy(&self) -> &Arc<P> {
        self.policy.shared()
    }
}

impl<Svc: Clone, P> Clone for PolicyService<Svc, P> {
    fn clone(&self) -> Self {
        PolicyService {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
        }
    }
}

// ===== retry =====

/// The policy of a [`RetryLayer`]: a [`Retry`] on the tokio clock.
///
/// ```
/// use bulwark::retry::{Config, Retry};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _policy: bulwark_tokio::tower::TokioRetry = Retry::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap();
/// # }
/// ```
pub type TokioRetry<K = ErrorsAreFailures, H = (), B = ()> = Retry<TokioClock, K, H, B>;

/// Retries calls of the inner service by a [`Retry`] policy: [`PolicyLayer`] over a
/// [`TokioRetry`]. Each attempt sends its own clone
/// of the request to its own clone of the service, so both must be `Clone`.
///
/// The policy is shared through an `Arc`: every service the layer builds, every clone of them
/// and every response future in flight holds one, and the policy is freed with the last.
///
/// Composed by hand with the gates, it cooperates with them as the [`Pipeline`] does: a
/// gate's rejection found in an error ([`rejection`]) is waited out until its retry instant
/// or answered at once, by the pipeline's rule ([`Rejections`], [`Waits`]); the deadline is
/// the policy's own limits (`max_elapsed`, `max_retry_after`) and the tightest
/// [`TimeoutLayer`] around the retry layer, which tells it the call's bound when the call is
/// made: no retry is planned to start at or after it.
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Backoff, Config, Retry};
/// use bulwark_tokio::{TokioClock, tower::RetryLayer};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let calls = Arc::new(AtomicU32::new(0));
/// let policy = Retry::new(
///     Config::new().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(10))),
///     TokioClock::new(),
/// )
/// .unwrap();
/// let seen = Arc::clone(&calls);
/// let svc = RetryLayer::new(policy).layer(service_fn(move |req: &'static str| {
///     let n = seen.fetch_add(1, Ordering::SeqCst);
///     async move { if n < 2 { Err("flaky") } else { Ok(req) } }
/// }));
/// assert_eq!(svc.oneshot("hello").await.unwrap(), "hello");
/// assert_eq!(calls.load(Ordering::SeqCst), 3);
/// # }
/// ```
pub type RetryLayer<K = ErrorsAreFailures, H = (), B = ()> =
    PolicyLayer<TokioRetry<Rejections<K>, H, B>>;

/// A service whose calls are retried by a [`Retry`] policy: the service of a [`RetryLayer`].
pub type RetryService<Svc, K = ErrorsAreFailures, H = (), B = ()> =
    PolicyService<Svc, TokioRetry<Rejections<K>, H, B>>;

impl<K, H, B> RetryLayer<K, H, B> {
    /// A layer retrying by `policy`, its classifier wrapped in [`Rejections`]: a gate's
    /// rejection from a layer inside is waited out or answered at once as [`Waits::Breaker`]
    /// says (the pipeline's default); everything else is judged by the policy's classifier.
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::new(Retry::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
    /// let svc = layer.layer(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n + 1) }));
    /// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
    /// # }
    /// ```
    pub fn new(policy: TokioRetry<K, H, B>) -> Self {
        Self::with_waits(policy, Waits::Breaker)
    }

    /// `RetryLayer::new`, waiting out the rejections `waits` names ([`Waits::All`]:
    /// also a limiter's retry instant and a full bulkhead; [`Waits::Nothing`]: none).
    ///
    /// ```
    /// use bulwark::pipeline::Waits;
    /// use bulwark::rate_limiter::{Config as Rl, RateLimiter};
    /// use bulwark::retry::{Config, Retry};
    /// use bulwark_tokio::{TokioClock, tower::{RateLimitLayer, RetryLayer}};
    /// use std::time::Duration;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let clock = TokioClock::new();
    /// let svc = ServiceBuilder::new()
    ///     .layer(RetryLayer::with_waits(Retry::new(Config::new(), clock).unwrap(), Waits::All))
    ///     .layer(RateLimitLayer::new(RateLimiter::new(Rl::per_second(1).burst(1), clock).unwrap()))
    ///     .service(service_fn(|()| async { Ok::<_, std::io::Error>("ok") }));
    /// let t0 = tokio::time::Instant::now();
    /// svc.clone().oneshot(()).await.unwrap();
    /// svc.oneshot(()).await.unwrap(); // waits for the next token instead of failing
    /// assert_eq!(t0.elapsed(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn with_waits(policy: TokioRetry<K, H, B>, waits: Waits) -> Self {
        Self::shared(Arc::new(
            policy.map_classifier(|k| Rejections::new(k).waits(waits)),
        ))
    }
}

impl<Svc, Req, K, H, B> Service<Req> for PolicyService<Svc, TokioRetry<Rejections<K>, H, B>>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError> + 'static,
    Req: Clone,
    K: Classify<Svc::Response, Svc::Error>,
    H: Hooks<Svc::Response, Svc::Error>,
    B: RetryBudget,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = RetryFuture<Svc, Req, K, H, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined into the caller, as the pipeline's `call` is (below), so that the 184-byte
    // future is built in place: returned from an outlined call it was built there and copied
    // out (the tower bench row "retry": 269 instructions above the bare service with the
    // copy, 238 without).
    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        let attempts = Attempts::ready(take_ready(&mut self.inner), req);
        // Under a timeout layer: no retry is planned to start at or after its end.
        // One constructor for both cases: the future is built once, in place.
        let (deadline, start) = match budget() {
            None => (Deadline::NONE, None),
            Some(limit) => {
                let now = TokioClock.now();
                (Deadline::at(now.saturating_add(limit)), Some(now))
            }
        };
        RetryFuture {
            inner: retry::Call::starting(self.policy.for_call(), deadline, attempts, start),
        }
    }
}

pin_project! {
    /// The response future of [`RetryService`]: `'static` whenever the service, request and
    /// policy types are (it owns a [`Handle`](super::Handle) of the policy).
    ///
    /// ```
    /// use bulwark::retry::{Config, Retry};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::RetryLayer::new(Retry::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(3) }));
    /// let fut = svc.ready().await.unwrap().call(());
    /// assert_eq!(tokio::spawn(fut).await.unwrap().unwrap(), 3);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<Svc, Req, K, H, B>
    where
        Svc: Service<Req>,
    {
        #[pin]
        inner: retry::Call<Handle<TokioRetry<Rejections<K>, H, B>>, TokioClock, Rejections<K>, H, B, Attempts<Svc, Req>, ReadyCall<Svc, Req>>,
    }
}

impl<Svc, Req, K, H, B> Future for RetryFuture<Svc, Req, K, H, B>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError> + 'static,
    Req: Clone,
    K: Classify<Svc::Response, Svc::Error>,
    H: Hooks<Svc::Response, Svc::Error>,
    B: RetryBudget,
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

impl<Svc: Service<Req>, Req, K, H, B> std::fmt::Debug for RetryFuture<Svc, Req, K, H, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").finish_non_exhaustive()
    }
}

// ===== the pipeline =====

/// A [`Pipeline`] on the tokio clock.
///
/// ```
/// use bulwark::{pipeline::Pipeline, retry::Config};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _p: bulwark_tokio::tower::TokioPipeline = Pipeline::new(bulwark_tokio::TokioClock::new(), Config::new()).unwrap();
/// # }
/// ```
pub type TokioPipeline<P = ErrorsAreFailures, B = (), G = (), H = ()> =
    Pipeline<TokioClock, P, B, G, H>;

/// Runs every call of the inner service through a [`Pipeline`] (timeouts, retry, admission
/// stages): [`PolicyLayer`] over a [`TokioPipeline`]. The pipeline is shared through an `Arc`; so are its stages, when they are held
/// through `Arc`s (a breaker shared with a status endpoint, say). Rejections are the core's
/// own errors, boxed: downcast to [`Rejected`](bulwark::circuit_breaker::Rejected),
/// [`RateLimited`](bulwark::rate_limiter::RateLimited),
/// [`BulkheadFull`](bulwark::bulkhead::BulkheadFull) or [`Elapsed`].
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb, State};
/// use bulwark::pipeline::Pipeline;
/// use bulwark::retry::Config;
/// use bulwark_tokio::{TokioClock, tower::PipelineLayer};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// let breaker = Arc::new(CircuitBreaker::new(Cb::new().consecutive_failures(2), clock).unwrap());
/// let pipeline = Pipeline::new(clock, Config::new().max_attempts(2))
///     .unwrap()
///     .breaker(Arc::clone(&breaker))
///     .total_timeout(Duration::from_secs(1)) // too short to wait out the 30 s open time
///     .attempt_timeout(Duration::from_millis(200));
/// let svc = PipelineLayer::new(pipeline).layer(service_fn(|()| async { Err::<(), _>("503") }));
/// assert_eq!(svc.clone().oneshot(()).await.unwrap_err().to_string(), "503"); // 2 attempts: opens
/// assert_eq!(breaker.state(), State::Open);
/// let err = svc.oneshot(()).await.unwrap_err();
/// assert!(err.downcast_ref::<bulwark::circuit_breaker::Rejected>().is_some());
/// # }
/// ```
pub type PipelineLayer<K = ErrorsAreFailures, B = (), G = (), H = ()> =
    PolicyLayer<TokioPipeline<K, B, G, H>>;

impl<K, B, G, H> PipelineLayer<K, B, G, H> {
    /// A layer running every call through `pipeline`.
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::new(Pipeline::new(bulwark_tokio::TokioClock::new(), Config::new()).unwrap());
    /// let svc = layer.layer(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n * 2) }));
    /// assert_eq!(svc.oneshot(21).await.unwrap(), 42);
    /// # }
    /// ```
    pub fn new(pipeline: TokioPipeline<K, B, G, H>) -> Self {
        Self::shared(Arc::new(pipeline))
    }
}

/// A service whose calls run through a [`Pipeline`]: the service of a [`PipelineLayer`].
pub type PipelineService<Svc, K = ErrorsAreFailures, B = (), G = (), H = ()> =
    PolicyService<Svc, TokioPipeline<K, B, G, H>>;

impl<Svc, Req, P, B, G, H> Service<Req> for PolicyService<Svc, TokioPipeline<P, B, G, H>>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    P: Classify<Svc::Response, Svc::Error>,
    B: RetryBudget,
    G: Admit,
    G::Rejected: Into<Rejection>,
    H: Hooks<Judged<Svc::Response>, Judged<pipeline::Error<Svc::Error>>>,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = PipelineFuture<Svc, Req, P, B, G, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined into the caller, so that the pipeline future is built in place in the
    // caller's future: returned from an outlined call, it was built here and then memcpy'd
    // twice (312 bytes each) on its way into `block_on`'s async block (the tower bench row
    // "bulwark PipelineLayer").
    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        let attempts = Attempts::ready(take_ready(&mut self.inner), req);
        // Under a timeout layer: the earlier of its end and the pipeline's own total timeout
        // bounds the call, so no retry is planned to start at or after it.
        let deadline = match budget() {
            None => Deadline::NONE,
            Some(limit) => Deadline::at(TokioClock.now().saturating_add(limit)),
        };
        PipelineFuture {
            inner: pipeline::Call::within(self.policy.for_call(), deadline, attempts),
        }
    }
}

pin_project! {
    /// The response future of [`PipelineService`]: `'static` whenever the service, request and
    /// pipeline types are (it owns a [`Handle`](super::Handle) of the pipeline).
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::PipelineLayer::new(Pipeline::new(bulwark_tokio::TokioClock::new(), Config::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(5) }));
    /// let fut = svc.ready().await.unwrap().call(());
    /// assert_eq!(tokio::spawn(fut).await.unwrap().unwrap(), 5);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct PipelineFuture<Svc, Req, P, B, G, H = ()>
    where
        Svc: Service<Req>,
        Svc: Clone,
        Req: Clone,
        P: Classify<Svc::Response, Svc::Error>,
        B: RetryBudget,
        G: Admit,
        G::Rejected: Into<Rejection>,
    {
        #[pin]
        inner: pipeline::Call<Handle<TokioPipeline<P, B, G, H>>, TokioClock, P, B, G, Attempts<Svc, Req>, ReadyCall<Svc, Req>, H>,
    }
}

impl<Svc, Req, P, B, G, H> Future for PipelineFuture<Svc, Req, P, B, G, H>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    P: Classify<Svc::Response, Svc::Error>,
    B: RetryBudget,
    G: Admit,
    G::Rejected: Into<Rejection>,
    H: Hooks<Judged<Svc::Response>, Judged<pipeline::Error<Svc::Error>>>,
{
    type Output = Result<Svc::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(self.project().inner.poll(cx));
        Poll::Ready(out.map_err(boxed))
    }
}

/// A pipeline error as a tower `BoxError`: kept out of line, off the ready call's path (15
/// instructions per call in the tower bench row "bulwark PipelineLayer").
#[cold]
#[inline(never)]
fn boxed<E: Into<BoxError>>(e: pipeline::Error<E>) -> BoxError {
    match e {
        pipeline::Error::Operation(e) => e.into(),
        pipeline::Error::CircuitOpen(r) => Box::new(r),
        pipeline::Error::RateLimited(r) => Box::new(r),
        pipeline::Error::BulkheadFull(r) => Box::new(r),
        pipeline::Error::Throttled(r) => Box::new(r),
        pipeline::Error::AttemptTimeout(e) | pipeline::Error::Timeout(e) => Box::new(e),
        _ => "pipeline error".into(),
    }
}

impl<Svc, Req, P, B, G, H> std::fmt::Debug for PipelineFuture<Svc, Req, P, B, G, H>
where
    Svc: Service<Req> + Clone,
    Req: Clone,
    P: Classify<Svc::Response, Svc::Error>,
    B: RetryBudget,
    G: Admit,
    G::Rejected: Into<Rejection>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineFuture").finish_non_exhaustive()
    }
}
