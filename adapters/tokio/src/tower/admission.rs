//! Bulkhead and rate limiter as tower middleware: both shed at once with a typed error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulwark::Clock;
use bulwark::bulkhead::{Bulkhead, TrySemaphore};
use bulwark::rate_limiter::RateLimiter;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;

pin_project! {
    #[project = StateProj]
    enum State<F, G> {
        Running { #[pin] fut: F, guard: G },
        Rejected { error: Option<BoxError> },
    }
}

pin_project! {
    /// The response future of [`BulkheadService`] and [`RateLimitService`]: the inner call
    /// with what admitted it (a bulkhead permit, held until the call ends or the future is
    /// dropped), or the rejection.
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::BulkheadLayer::leak(Bulkhead::new(Config::new(1), bulwark_tokio::TokioClock::new()).unwrap());
    /// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(5) }));
    /// let fut: bulwark_tokio::tower::Admitted<_, _> = svc.ready().await.unwrap().call(());
    /// assert_eq!(fut.await.unwrap(), 5);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Admitted<F, G> {
        #[pin]
        state: State<F, G>,
    }
}

impl<F, G> Admitted<F, G> {
    fn running(fut: F, guard: G) -> Self {
        Admitted {
            state: State::Running { fut, guard },
        }
    }
    fn rejected(error: BoxError) -> Self {
        Admitted {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, G, T, E> Future for Admitted<F, G>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { fut, .. } => fut.poll(cx).map_err(Into::into),
            StateProj::Rejected { error } => match error.take() {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending, // polled after completion
            },
        }
    }
}

impl<F, G> std::fmt::Debug for Admitted<F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let admitted = matches!(self.state, State::Running { .. });
        f.debug_struct("Admitted")
            .field("admitted", &admitted)
            .finish_non_exhaustive()
    }
}

// ===== bulkhead =====

/// Puts services behind one [`Bulkhead`]: a call that finds no free permit is shed at once
/// with [`BulkheadFull`](bulwark::bulkhead::BulkheadFull).
///
/// The bulkhead is `&'static` because the response future holds its permit for the whole
/// call: keep it in a `static`, or [`leak`](BulkheadLayer::leak) one at start-up.
///
/// # Examples
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
/// use bulwark_tokio::{TokioClock, tower::BulkheadLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer = BulkheadLayer::leak(Bulkhead::new(Config::new(1), TokioClock::new()).unwrap());
/// let mut svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>("ok") }));
/// let first = svc.ready().await.unwrap().call(()); // holds the only permit until done
/// let second = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// assert!(second.downcast_ref::<BulkheadFull>().is_some());
/// assert_eq!(first.await.unwrap(), "ok");
/// assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), "ok"); // permit back
/// # }
/// ```
#[derive(Debug)]
pub struct BulkheadLayer<S: 'static, C: 'static> {
    bulkhead: &'static Bulkhead<S, C>,
}

impl<S, C> BulkheadLayer<S, C> {
    /// A layer over a bulkhead that lives for the whole program.
    ///
    /// ```
    /// use bulwark::bulkhead::{AtomicSemaphore, Bulkhead, Config};
    /// use bulwark::MockClock;
    /// static CLOCK: MockClock = MockClock::new();
    /// static PAYMENTS: Result<Bulkhead<AtomicSemaphore, &MockClock>, bulwark::bulkhead::ConfigError> =
    ///     Bulkhead::new(Config::new(10), &CLOCK);
    /// let _layer = bulwark_tokio::tower::BulkheadLayer::new(PAYMENTS.as_ref().unwrap());
    /// ```
    pub fn new(bulkhead: &'static Bulkhead<S, C>) -> Self {
        BulkheadLayer { bulkhead }
    }

    /// A layer over `bulkhead`, moved to the heap once and never freed (one allocation at
    /// start-up, none per call).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::BulkheadLayer::leak(Bulkhead::new(Config::new(10), bulwark_tokio::TokioClock::new()).unwrap());
    /// assert_eq!(layer.bulkhead().metrics().max, 10);
    /// # }
    /// ```
    pub fn leak(bulkhead: Bulkhead<S, C>) -> Self {
        Self::new(Box::leak(Box::new(bulkhead)))
    }

    /// The bulkhead.
    ///
    /// ```
    /// # use bulwark::bulkhead::{Bulkhead, Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = bulwark_tokio::tower::BulkheadLayer::leak(Bulkhead::new(Config::new(2), bulwark_tokio::TokioClock::new()).unwrap());
    /// assert_eq!(layer.bulkhead().metrics().in_use, 0);
    /// # }
    /// ```
    pub fn bulkhead(&self) -> &'static Bulkhead<S, C> {
        self.bulkhead
    }
}

impl<S, C> Clone for BulkheadLayer<S, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, C> Copy for BulkheadLayer<S, C> {}

impl<Svc, S, C> Layer<Svc> for BulkheadLayer<S, C> {
    type Service = BulkheadService<Svc, S, C>;
    fn layer(&self, inner: Svc) -> Self::Service {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead,
        }
    }
}

/// A service behind a bulkhead. Built by [`BulkheadLayer`].
///
/// # `poll_ready`
///
/// Readiness is the inner service's. The permit is taken in `call` and a full bulkhead is an
/// immediate error response (load shedding, typically mapped to 503), not backpressure:
/// holding permits from `poll_ready` would let a caller that never calls starve the
/// compartment. For backpressure put `tower::limit::ConcurrencyLimit` in front.
///
/// # Cancellation
///
/// The permit lives in the response future: dropping the future frees it.
///
/// ```
/// use bulwark::bulkhead::{Bulkhead, Config};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = bulwark_tokio::tower::BulkheadLayer::leak(Bulkhead::new(Config::new(1), bulwark_tokio::TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
/// let pending = svc.clone().oneshot(());
/// drop(pending); // never polled, permit never taken
/// assert!(svc.oneshot(()).await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct BulkheadService<Svc, S: 'static, C: 'static> {
    inner: Svc,
    bulkhead: &'static Bulkhead<S, C>,
}

impl<Svc: Clone, S, C> Clone for BulkheadService<Svc, S, C> {
    fn clone(&self) -> Self {
        BulkheadService {
            inner: self.inner.clone(),
            bulkhead: self.bulkhead,
        }
    }
}

impl<Svc, Req, S, C> Service<Req> for BulkheadService<Svc, S, C>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
    S: TrySemaphore + Sync + 'static,
    C: Clock + Sync + 'static,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = Admitted<Svc::Future, bulwark::bulkhead::Permit<'static, S>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.bulkhead.try_acquire() {
            Ok(guard) => Admitted::running(self.inner.call(req), guard),
            Err(full) => Admitted::rejected(Box::new(full)),
        }
    }
}

// ===== rate limiter =====

/// Puts services behind one shared [`RateLimiter`]: a call over the rate is rejected at once
/// with [`RateLimited`](bulwark::rate_limiter::RateLimited), which says when a call would pass.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimited, RateLimiter};
/// use bulwark_tokio::{TokioClock, tower::RateLimitLayer};
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = RateLimiter::new(Config::per_second(2).burst(2), TokioClock::new()).unwrap();
/// let svc = RateLimitLayer::new(limiter).layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
/// assert!(svc.clone().oneshot(()).await.is_ok());
/// assert!(svc.clone().oneshot(()).await.is_ok());
/// let err = svc.clone().oneshot(()).await.unwrap_err();
/// let limited = err.downcast_ref::<RateLimited>().unwrap();
/// assert_eq!(limited.retry_at, bulwark::Instant::from_millis(500));
/// tokio::time::sleep(Duration::from_millis(500)).await;
/// assert!(svc.oneshot(()).await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimitLayer<C> {
    limiter: Arc<RateLimiter<C>>,
}

impl<C> RateLimitLayer<C> {
    /// A layer around `limiter`.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let l = RateLimiter::new(Config::per_second(100), bulwark_tokio::TokioClock::new()).unwrap();
    /// let _layer = bulwark_tokio::tower::RateLimitLayer::new(l);
    /// # }
    /// ```
    pub fn new(limiter: RateLimiter<C>) -> Self {
        Self::shared(Arc::new(limiter))
    }

    /// A layer around a limiter that is already shared.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let l = Arc::new(RateLimiter::new(Config::per_second(100), bulwark_tokio::TokioClock::new()).unwrap());
    /// let layer = bulwark_tokio::tower::RateLimitLayer::shared(l.clone());
    /// assert!(Arc::ptr_eq(layer.limiter(), &l));
    /// # }
    /// ```
    pub fn shared(limiter: Arc<RateLimiter<C>>) -> Self {
        RateLimitLayer { limiter }
    }

    /// The shared limiter.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let l = RateLimiter::new(Config::per_second(100), bulwark_tokio::TokioClock::new()).unwrap();
    /// let layer = bulwark_tokio::tower::RateLimitLayer::new(l);
    /// assert!(layer.limiter().check().is_ok());
    /// # }
    /// ```
    pub fn limiter(&self) -> &Arc<RateLimiter<C>> {
        &self.limiter
    }
}

impl<C> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: self.limiter.clone(),
        }
    }
}

impl<Svc, C> Layer<Svc> for RateLimitLayer<C> {
    type Service = RateLimitService<Svc, C>;
    fn layer(&self, inner: Svc) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// A service behind a rate limiter. Built by [`RateLimitLayer`].
///
/// # `poll_ready`
///
/// Readiness is the inner service's; the token is taken in `call`, so a token is spent only
/// on a request that is really made, and an over-rate request is an immediate error carrying
/// its retry instant (tower's own `RateLimit` instead sleeps in `poll_ready`).
///
/// ```
/// use bulwark::rate_limiter::{Config, RateLimiter};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let l = RateLimiter::new(Config::per_second(1), bulwark_tokio::TokioClock::new()).unwrap();
/// let svc = bulwark_tokio::tower::RateLimitLayer::new(l).layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
/// let clones: Vec<_> = (0..10).map(|_| svc.clone()).collect();
/// let mut passed = 0;
/// for c in clones { passed += c.oneshot(()).await.is_ok() as u32; }
/// assert_eq!(passed, 1); // ten clones, one shared limiter
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimitService<Svc, C> {
    inner: Svc,
    limiter: Arc<RateLimiter<C>>,
}

impl<Svc: Clone, C> Clone for RateLimitService<Svc, C> {
    fn clone(&self) -> Self {
        RateLimitService {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<Svc, Req, C> Service<Req> for RateLimitService<Svc, C>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
    C: Clock,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = Admitted<Svc::Future, ()>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.check() {
            Ok(()) => Admitted::running(self.inner.call(req), ()),
            Err(limited) => Admitted::rejected(Box::new(limited)),
        }
    }
}
