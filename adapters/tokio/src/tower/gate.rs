//! Every admission gate as tower middleware: one layer, one service, one response future for
//! the circuit breaker, the rate limiters and the bulkhead (anything that implements
//! [`Admit`]).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulwark::admission::{Admit, Permit};
use bulwark::bulkhead::{AtomicSemaphore, Bulkhead};
use bulwark::circuit_breaker::{
    CircuitBreaker, Classify, ConfiguredOpenTime, ErrorsAreFailures, NoWindow,
};
use bulwark::rate_limiter::{RateLimiter, ShardedRateLimiter};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use super::handle::{Handle, Held};
use crate::{ThreadHint, TokioClock};

/// Puts services behind one shared gate ([`Admit`]): a circuit breaker, a rate limiter, a
/// bulkhead. A call the gate rejects is answered at once with the gate's own rejection,
/// boxed ([`Rejected`](bulwark::circuit_breaker::Rejected),
/// [`RateLimited`](bulwark::rate_limiter::RateLimited),
/// [`BulkheadFull`](bulwark::bulkhead::BulkheadFull): a [`RetryLayer`](super::RetryLayer)
/// outside reads its retry instant, [`rejection`](super::rejection) finds it for your own
/// code, and the `axum` feature answers it); an admitted call holds its permit until
/// its response is ready (or its future is dropped), and `K` judges the response for the gate
/// (it matters to a breaker; a limiter or bulkhead only frees its permit).
///
/// The gate is held through an `Arc`: every service the layer builds, every clone of them and
/// every response future in flight shares it (a future through a [`Handle`](super::Handle)),
/// and it is freed with the last of them.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config};
/// use bulwark_tokio::{TokioClock, tower::CircuitBreakerLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), TokioClock::new()).unwrap();
/// let layer = CircuitBreakerLayer::new(breaker);
/// let svc = layer.layer(service_fn(|n: u32| async move {
///     if n == 0 { Err::<u32, _>("zero") } else { Ok(n) }
/// }));
/// assert_eq!(svc.clone().oneshot(5).await.unwrap(), 5);
/// assert!(svc.clone().oneshot(0).await.is_err()); // trips the breaker
/// let err = svc.oneshot(5).await.unwrap_err();
/// assert!(err.downcast_ref::<bulwark::circuit_breaker::Rejected>().is_some());
/// # }
/// ```
#[derive(Debug)]
pub struct GateLayer<G, K = ErrorsAreFailures> {
    gate: Arc<G>,
    classify: K,
}

/// A circuit breaker as a layer: [`GateLayer`] over a [`CircuitBreaker`] (`O`: its open time,
/// the configured growth or a function of the trip, [`CircuitBreaker::with_open_time`]).
pub type CircuitBreakerLayer<
    C = TokioClock,
    W = NoWindow,
    E = (),
    K = ErrorsAreFailures,
    O = ConfiguredOpenTime,
> = GateLayer<CircuitBreaker<C, W, E, O>, K>;
/// A bulkhead as a layer: [`GateLayer`] over a [`Bulkhead`]. It sheds at once.
pub type BulkheadLayer<S = AtomicSemaphore, C = TokioClock> = GateLayer<Bulkhead<S, C>>;
/// A rate limiter as a layer: [`GateLayer`] over a [`RateLimiter`]. It sheds at once.
pub type RateLimitLayer<C = TokioClock> = GateLayer<RateLimiter<C>>;
/// A rate limiter of `N` shards as a layer: [`GateLayer`] over a [`ShardedRateLimiter`] whose
/// callers each start at their own thread's shard ([`ThreadHint`]). For a multi-thread
/// runtime whose workers all call through one limiter (`N` at least the worker count): its
/// calls then write different cache lines. It sheds at once.
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimited, ShardedRateLimiter};
/// use bulwark_tokio::{ThreadHint, TokioClock, tower::ShardedRateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = ShardedRateLimiter::with_hint(Config::per_second(2), TokioClock::new(), ThreadHint).unwrap();
/// let layer: ShardedRateLimitLayer<2> = ShardedRateLimitLayer::new(limiter);
/// let svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
/// assert_eq!(svc.clone().oneshot(()).await.unwrap(), 1); // this thread's shard
/// assert_eq!(svc.clone().oneshot(()).await.unwrap(), 1); // the other shard's token
/// let err = svc.oneshot(()).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<RateLimited>().unwrap().retry_after.as_secs(), 1);
/// # }
/// ```
pub type ShardedRateLimitLayer<const N: usize, C = TokioClock> =
    GateLayer<ShardedRateLimiter<C, N, ThreadHint>>;
/// An adaptive concurrency limit ([`bulwark::adaptive`]) as a layer: a [`GateLayer`] whose
/// rejection is the bulkhead's [`BulkheadFull`](bulwark::bulkhead::BulkheadFull), and each
/// call's round trip moves the limit.
///
/// ```
/// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark_tokio::{TokioClock, tower::AdaptiveLimitLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(1).min(1), TokioClock::new()).unwrap();
/// let layer = AdaptiveLimitLayer::new(limit);
/// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
/// let first = svc.ready().await.unwrap().call(()); // holds the only slot
/// let second = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// assert!(second.downcast_ref::<BulkheadFull>().is_some());
/// assert_eq!(first.await.unwrap(), 1);
/// assert_eq!(layer.gate().limit(), 2); // the limit was fully used: +1
/// # }
/// ```
pub type AdaptiveLimitLayer<C = TokioClock> = GateLayer<bulwark::adaptive::AdaptiveLimit<C>>;

/// An adaptive client-side throttle ([`bulwark::throttle`]) as a layer: a [`GateLayer`] whose
/// rejection is [`Throttled`](bulwark::throttle::Throttled).
///
/// ```
/// use bulwark::throttle::{AdaptiveThrottle, Config};
/// use bulwark_tokio::{TokioClock, tower::ThrottleLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer: ThrottleLayer = ThrottleLayer::new(AdaptiveThrottle::new(Config::new().seed(1), TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|()| async { Err::<(), _>(std::io::Error::other("503")) }));
/// for _ in 0..50 {
///     let _ = svc.clone().oneshot(()).await; // the backend refuses everything
/// }
/// let refused = (0..20).filter(|_| layer.gate().try_acquire().is_err()).count();
/// assert!(refused > 15); // now most calls are refused locally
/// # }
/// ```
pub type ThrottleLayer<C = TokioClock, const N: usize = 12> =
    GateLayer<bulwark::throttle::AdaptiveThrottle<C, N>>;
/// The service of a [`CircuitBreakerLayer`].
pub type CircuitBreakerService<
    Svc,
    C = TokioClock,
    W = NoWindow,
    E = (),
    K = ErrorsAreFailures,
    O = ConfiguredOpenTime,
> = GateService<Svc, CircuitBreaker<C, W, E, O>, K>;
/// The service of a [`BulkheadLayer`].
pub type BulkheadService<Svc, S = AtomicSemaphore, C = TokioClock> =
    GateService<Svc, Bulkhead<S, C>>;
/// The service of a [`RateLimitLayer`].
pub type RateLimitService<Svc, C = TokioClock> = GateService<Svc, RateLimiter<C>>;

impl<G> GateLayer<G> {
    /// A layer around `gate`; errors of the inner service are failures (for a breaker).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
    /// use bulwark_tokio::{TokioClock, tower::BulkheadLayer};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let layer = BulkheadLayer::new(Bulkhead::new(Config::new(1), TokioClock::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>("ok") }));
    /// let first = svc.ready().await.unwrap().call(()); // holds the only permit until done
    /// let second = svc.ready().await.unwrap().call(()).await.unwrap_err();
    /// assert!(second.downcast_ref::<BulkheadFull>().is_some());
    /// assert_eq!(first.await.unwrap(), "ok");
    /// assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), "ok"); // permit back
    /// # }
    /// ```
    pub fn new(gate: G) -> Self {
        Self::shared(Arc::new(gate))
    }

    /// A layer around a gate already shared (with another layer, or with code that reads its
    /// state).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::RateLimitLayer};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let limiter = Arc::new(RateLimiter::new(Config::per_second(10), TokioClock::new()).unwrap());
    /// let layer = RateLimitLayer::shared(Arc::clone(&limiter));
    /// assert!(Arc::ptr_eq(layer.gate(), &limiter));
    /// # }
    /// ```
    pub fn shared(gate: Arc<G>) -> Self {
        GateLayer {
            gate,
            classify: ErrorsAreFailures,
        }
    }
}

impl<G, K> GateLayer<G, K> {
    /// The same layer with `classify` judging each response for the gate (the one
    /// [classification](bulwark::classify): success, failure or ignore).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State, Verdict};
    /// use bulwark_tokio::{TokioClock, tower::CircuitBreakerLayer};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), TokioClock::new()).unwrap();
    /// // A 404 is the caller's mistake: it does not count against the downstream.
    /// let layer = CircuitBreakerLayer::new(b).classify(|r: &Result<(), &str>| match r {
    ///     Err("not found") => Verdict::Ignore,
    ///     Err(_) => Verdict::FAILURE,
    ///     Ok(()) => Verdict::Success,
    /// });
    /// let svc = layer.layer(service_fn(|()| async { Err::<(), &str>("not found") }));
    /// let _ = svc.oneshot(()).await;
    /// assert_eq!(layer.gate().state(), State::Closed);
    /// # }
    /// ```
    pub fn classify<K2>(self, classify: K2) -> GateLayer<G, K2> {
        GateLayer {
            gate: self.gate,
            classify,
        }
    }

    /// The gate.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::new(CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap());
    /// assert_eq!(layer.gate().state(), State::Closed);
    /// # }
    /// ```
    pub fn gate(&self) -> &Arc<G> {
        &self.gate
    }
}

impl<G, K: Clone> Clone for GateLayer<G, K> {
    fn clone(&self) -> Self {
        GateLayer {
            gate: Arc::clone(&self.gate),
            classify: self.classify.clone(),
        }
    }
}

impl<Svc, G, K: Clone> Layer<Svc> for GateLayer<G, K> {
    type Service = GateService<Svc, G, K>;
    fn layer(&self, inner: Svc) -> Self::Service {
        GateService {
            inner,
            gate: Held::new(Arc::clone(&self.gate)),
            classify: self.classify.clone(),
        }
    }
}

/// A service behind a shared gate. Built by [`GateLayer`]; clones share the gate.
///
/// Readiness is the inner service's: the gate is asked in `call`, so a rejection costs the
/// inner service nothing.
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimited, RateLimiter};
/// use bulwark_tokio::{TokioClock, tower::RateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer = RateLimitLayer::new(RateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
/// assert_eq!(svc.clone().oneshot(()).await.unwrap(), 1);
/// let err = svc.oneshot(()).await.unwrap_err();
/// assert!(err.downcast_ref::<RateLimited>().is_some()); // the clone shared the token bucket
/// # }
/// ```
#[derive(Debug)]
pub struct GateService<Svc, G, K = ErrorsAreFailures> {
    inner: Svc,
    gate: Held<G>,
    classify: K,
}

impl<Svc, G, K> GateService<Svc, G, K> {
    /// The gate.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::new(CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap());
    /// let svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
    /// assert_eq!(svc.gate().state(), State::Closed);
    /// # }
    /// ```
    pub fn gate(&self) -> &Arc<G> {
        self.gate.shared()
    }

    /// The inner service.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::new(CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap());
    /// let mut svc = layer.layer(vec![1u8]);
    /// assert_eq!(svc.get_ref().len(), 1);
    /// svc.get_mut().push(2);
    /// assert_eq!(svc.into_inner(), vec![1, 2]);
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Svc {
        &self.inner
    }

    /// The inner service, mutably (see [`get_ref`](GateService::get_ref)).
    pub fn get_mut(&mut self) -> &mut Svc {
        &mut self.inner
    }

    /// The inner service, unwrapped (see [`get_ref`](GateService::get_ref)).
    pub fn into_inner(self) -> Svc {
        self.inner
    }
}

impl<Svc: Clone, G, K: Clone> Clone for GateService<Svc, G, K> {
    fn clone(&self) -> Self {
        GateService {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<Svc, Req, G, K> Service<Req> for GateService<Svc, G, K>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
    G: Admit,
    G::Rejected: std::error::Error + Send + Sync + 'static,
    K: Classify<Svc::Response, Svc::Error> + Clone,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = GateFuture<Svc::Future, Handle<G>, G::Rejected, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // A gate that records nothing (a limiter: the token is spent on admission) needs no
        // permit, and so no clone of its `Arc` per call (README row "rate limiter" of the
        // tower-layer table).
        if !G::RECORDS {
            return match self.gate.shared().try_admit() {
                Ok(_) => {
                    GateFuture::admitted_unrecorded(self.inner.call(req), self.classify.clone())
                }
                Err(rejected) => GateFuture::rejected(rejected, self.classify.clone()),
            };
        }
        match Permit::try_new(self.gate.for_call()) {
            Ok(permit) => GateFuture::admitted(self.inner.call(req), permit, self.classify.clone()),
            Err(rejected) => GateFuture::rejected(rejected, self.classify.clone()),
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R, X>
    where
        R: Deref,
        R::Target: Admit,
    {
        Running { #[pin] fut: F, permit: Option<Permit<R>> },
        Rejected { rejected: Option<X> },
    }
}

pin_project! {
    /// The response future of a [`GateService`] (and of a keyed service,
    /// [`KeyedService`](super::KeyedService)): the inner call holding its permit `Permit<R>`
    /// (recorded when the response is ready, given back if the future is dropped first), or
    /// the rejection `X`, boxed when polled. `'static` whenever the inner future and the gate
    /// are.
    ///
    /// # Panics
    ///
    /// When the inner future panics, its permit records a failure (a breaker counts it as it
    /// counts a failed call), then the panic continues to the caller.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::BulkheadLayer::new(Bulkhead::new(Config::new(1), bulwark_tokio::TokioClock::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(5) }));
    /// let fut = svc.ready().await.unwrap().call(());
    /// assert_eq!(layer.gate().metrics().in_use, 1);
    /// assert_eq!(tokio::spawn(fut).await.unwrap().unwrap(), 5);
    /// assert_eq!(layer.gate().metrics().in_use, 0);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct GateFuture<F, R, X, K>
    where
        R: Deref,
        R::Target: Admit,
    {
        #[pin]
        state: State<F, R, X>,
        classify: K,
    }
}

impl<F, R, X, K> GateFuture<F, R, X, K>
where
    R: Deref,
    R::Target: Admit,
{
    /// The inner call `fut`, admitted with `permit`.
    pub(super) fn admitted(fut: F, permit: Permit<R>, classify: K) -> Self {
        GateFuture {
            state: State::Running {
                fut,
                permit: Some(permit),
            },
            classify,
        }
    }

    /// The inner call `fut`, admitted by a gate with nothing to record
    /// ([`Admit::RECORDS`] is `false`).
    pub(super) fn admitted_unrecorded(fut: F, classify: K) -> Self {
        GateFuture {
            state: State::Running { fut, permit: None },
            classify,
        }
    }

    /// A call turned away with `rejected`.
    pub(super) fn rejected(rejected: X, classify: K) -> Self {
        GateFuture {
            state: State::Rejected {
                rejected: Some(rejected),
            },
            classify,
        }
    }
}

impl<F, R, X, K, T, Er> Future for GateFuture<F, R, X, K>
where
    F: Future<Output = Result<T, Er>>,
    Er: Into<BoxError>,
    R: Deref,
    R::Target: Admit,
    X: std::error::Error + Send + Sync + 'static,
    K: Classify<T, Er>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Rejected { rejected } => match rejected.take() {
                Some(r) => Poll::Ready(Err(Box::new(r))),
                None => Poll::Pending, // polled after completion
            },
            StateProj::Running { fut, permit } => {
                // A panic drops the permit while unwinding: a failure (the clock set the
                // core's panic probe).
                let result = std::task::ready!(fut.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(this.classify.classify(&result).outcome());
                }
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}

impl<F, R, X, K> std::fmt::Debug for GateFuture<F, R, X, K>
where
    R: Deref,
    R::Target: Admit,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let admitted = matches!(self.state, State::Running { .. });
        f.debug_struct("GateFuture")
            .field("admitted", &admitted)
            .finish_non_exhaustive()
    }
}
