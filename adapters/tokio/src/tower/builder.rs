//! `ServiceBuilder` methods for bulwark's layers.

use std::sync::Arc;
use std::time::Duration;

use bulwark::admission::Admit;
use tower::ServiceBuilder;
use tower_layer::Stack;

use bulwark::fault::Injector;

use super::{
    FaultLayer, GateLayer, KeyedLayer, PipelineLayer, RetryLayer, TimeoutLayer, TokioPipeline,
    TokioRetry,
};
use crate::TokioClock;

/// bulwark's layers as `tower::ServiceBuilder` methods, outermost first as with tower's own.
/// Each takes the shared state (an `Arc` of a breaker, limiter, bulkhead or table, so a
/// status page can keep a handle) or the policy, and adds the layer that holds it; every
/// service built from the stack, and every clone, shares it.
///
/// Three names differ from the pattern's: tower's `ServiceBuilder` has `retry`, `timeout`
/// and `rate_limit` methods of its own (behind its `retry`, `timeout` and `limit`
/// features), and a method of the type itself always wins over a trait's, so extension
/// methods of those names would turn into tower's as soon as any crate in the build enabled
/// those features. Hence [`bulwark_retry`](ServiceBuilderExt::bulwark_retry),
/// [`bulwark_timeout`](ServiceBuilderExt::bulwark_timeout) and
/// [`rate_limiter`](ServiceBuilderExt::rate_limiter).
///
/// # Examples
///
/// A retry outside a breaker, under a total timeout: the retry reads the open breaker's
/// retry instant from its rejection and, as that is past the timeout, answers at once.
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config as Cb, Rejected};
/// use bulwark::retry::{Config, Retry};
/// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
/// use std::{sync::Arc, time::Duration};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// let breaker = Arc::new(CircuitBreaker::new(Cb::new().consecutive_failures(2).open_for(Duration::from_secs(30)), clock).unwrap());
/// let svc = ServiceBuilder::new()
///     .bulwark_timeout(Duration::from_secs(1))
///     .bulwark_retry(Retry::new(Config::new().max_attempts(3), clock).unwrap())
///     .circuit_breaker(Arc::clone(&breaker))
///     .service(service_fn(|()| async { Err::<(), _>("503") }));
/// let t0 = tokio::time::Instant::now();
/// let err = svc.oneshot(()).await.unwrap_err(); // two failures open it; the third attempt is rejected
/// assert!(err.downcast_ref::<Rejected>().is_some());
/// assert!(t0.elapsed() < Duration::from_secs(1)); // it did not sleep into the timeout
/// # }
/// ```
pub trait ServiceBuilderExt<L>: Sized {
    /// Adds a circuit breaker ([`GateLayer`], [`CircuitBreakerLayer`](super::CircuitBreakerLayer)).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::Arc;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(1), TokioClock::new()).unwrap());
    /// let svc = ServiceBuilder::new().circuit_breaker(Arc::clone(&b)).service(service_fn(|()| async { Err::<(), _>("down") }));
    /// let _ = svc.oneshot(()).await;
    /// assert_eq!(b.state(), State::Open);
    /// # }
    /// ```
    fn circuit_breaker<G: Admit>(self, breaker: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>>;

    /// Adds a rate limiter that sheds at once ([`GateLayer`], [`RateLimitLayer`](super::RateLimitLayer)).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::Arc;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let l = Arc::new(RateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap());
    /// let svc = ServiceBuilder::new().rate_limiter(l).service(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
    /// assert!(svc.clone().oneshot(()).await.is_ok());
    /// assert!(svc.oneshot(()).await.is_err()); // the clone spent the only token
    /// # }
    /// ```
    fn rate_limiter<G: Admit>(self, limiter: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>>;

    /// Adds a bulkhead that sheds at once ([`GateLayer`], [`BulkheadLayer`](super::BulkheadLayer)).
    ///
    /// ```
    /// use bulwark::bulkhead::{Bulkhead, BulkheadFull, Config};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::Arc;
    /// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let h = Arc::new(Bulkhead::new(Config::new(1), TokioClock::new()).unwrap());
    /// let mut svc = ServiceBuilder::new().bulkhead(Arc::clone(&h)).service(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
    /// let running = svc.ready().await.unwrap().call(());
    /// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    /// assert!(err.downcast_ref::<BulkheadFull>().is_some());
    /// running.await.unwrap();
    /// assert_eq!(h.metrics().in_use, 0);
    /// # }
    /// ```
    fn bulkhead<G: Admit>(self, bulkhead: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>>;

    /// Adds a rate limiter per key ([`KeyedLayer`], [`KeyedRateLimitLayer`](super::KeyedRateLimitLayer)):
    /// `key` takes the key from each request.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::Arc;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let per_user: Arc<KeyedRateLimiter<u32, _, 64>> =
    ///     Arc::new(KeyedRateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap());
    /// let svc = ServiceBuilder::new()
    ///     .keyed_rate_limiter(per_user, |user: &u32| *user)
    ///     .service(service_fn(|user: u32| async move { Ok::<_, std::io::Error>(user) }));
    /// assert!(svc.clone().oneshot(1).await.is_ok());
    /// assert!(svc.clone().oneshot(1).await.is_err());
    /// assert!(svc.oneshot(2).await.is_ok());
    /// # }
    /// ```
    fn keyed_rate_limiter<T, F>(
        self,
        table: Arc<T>,
        key: F,
    ) -> ServiceBuilder<Stack<KeyedLayer<T, F>, L>>;

    /// Adds a circuit breaker per key ([`KeyedLayer`], [`KeyedCircuitBreakerLayer`](super::KeyedCircuitBreakerLayer)):
    /// `key` takes the key from each request.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::{KeyedCircuitBreaker, ServiceBuilderExt}};
    /// use std::sync::Arc;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let per_host = Arc::new(KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 64, TokioClock::new()).unwrap());
    /// let svc = ServiceBuilder::new()
    ///     .keyed_circuit_breaker(Arc::clone(&per_host), |host: &&'static str| *host)
    ///     .service(service_fn(|host: &'static str| async move { if host == "down" { Err("503") } else { Ok(()) } }));
    /// let _ = svc.clone().oneshot("down").await;
    /// let _ = svc.oneshot("up").await;
    /// assert_eq!((per_host.state(&"down"), per_host.state(&"up")), (Some(State::Open), Some(State::Closed)));
    /// # }
    /// ```
    fn keyed_circuit_breaker<T, F>(
        self,
        table: Arc<T>,
        key: F,
    ) -> ServiceBuilder<Stack<KeyedLayer<T, F>, L>>;

    /// Adds a retry ([`RetryLayer`]) by `policy`; it reads rejections of the gates inside it
    /// (see [`Rejections`](super::Rejections)).
    ///
    /// ```
    /// use bulwark::retry::{Backoff, Config, Jitter, Retry};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// use std::time::Duration;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&calls);
    /// let policy = Retry::new(Config::new().backoff(Backoff::constant(Duration::from_millis(10))).jitter(Jitter::None), TokioClock::new()).unwrap();
    /// let svc = ServiceBuilder::new().bulwark_retry(policy).service(service_fn(move |()| {
    ///     let n = seen.fetch_add(1, Ordering::SeqCst);
    ///     async move { if n == 0 { Err("flaky") } else { Ok(n) } }
    /// }));
    /// assert_eq!(svc.oneshot(()).await.unwrap(), 1);
    /// assert_eq!(calls.load(Ordering::SeqCst), 2);
    /// # }
    /// ```
    fn bulwark_retry<K, H, B>(
        self,
        policy: TokioRetry<K, H, B>,
    ) -> ServiceBuilder<Stack<RetryLayer<K, H, B>, L>>;

    /// Adds a timeout ([`TimeoutLayer`]); a retry layer inside plans no retry past it.
    ///
    /// ```
    /// use bulwark::timeout::Elapsed;
    /// use bulwark_tokio::tower::ServiceBuilderExt;
    /// use std::time::Duration;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let svc = ServiceBuilder::new()
    ///     .bulwark_timeout(Duration::from_millis(100))
    ///     .service(service_fn(|()| std::future::pending::<Result<(), std::io::Error>>()));
    /// assert!(svc.oneshot(()).await.unwrap_err().downcast_ref::<Elapsed>().is_some());
    /// # }
    /// ```
    fn bulwark_timeout(self, limit: Duration) -> ServiceBuilder<Stack<TimeoutLayer, L>>;

    /// Adds a whole pipeline ([`PipelineLayer`]).
    ///
    /// ```
    /// use bulwark::{pipeline::Pipeline, retry::Config};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let p = Pipeline::new(TokioClock::new(), Config::new()).unwrap();
    /// let svc = ServiceBuilder::new().pipeline(p).service(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }));
    /// assert_eq!(svc.oneshot(7).await.unwrap(), 7);
    /// # }
    /// ```
    fn pipeline<K, B, G, H>(
        self,
        pipeline: TokioPipeline<K, B, G, H>,
    ) -> ServiceBuilder<Stack<PipelineLayer<K, B, G, H>, L>>;

    /// Adds fault injection through a shared injector ([`FaultLayer`]), off until switched on.
    ///
    /// ```
    /// use bulwark::fault::{Config, Injected, Injector, Rate};
    /// use bulwark_tokio::{TokioClock, tower::ServiceBuilderExt};
    /// use std::sync::Arc;
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let chaos = Arc::new(Injector::new(Config::new(), TokioClock::new()).unwrap());
    /// let svc = ServiceBuilder::new()
    ///     .fault_injection(Arc::clone(&chaos))
    ///     .service(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }));
    /// assert_eq!(svc.clone().oneshot(7).await.unwrap(), 7);
    /// chaos.set(Config::new().abort(Rate::ALWAYS)).unwrap();
    /// assert_eq!(svc.oneshot(7).await.unwrap_err().downcast_ref::<Injected>(), Some(&Injected::Aborted));
    /// # }
    /// ```
    fn fault_injection(
        self,
        injector: Arc<Injector<TokioClock>>,
    ) -> ServiceBuilder<Stack<FaultLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn circuit_breaker<G: Admit>(self, breaker: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>> {
        self.layer(GateLayer::shared(breaker))
    }

    fn rate_limiter<G: Admit>(self, limiter: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>> {
        self.layer(GateLayer::shared(limiter))
    }

    fn bulkhead<G: Admit>(self, bulkhead: Arc<G>) -> ServiceBuilder<Stack<GateLayer<G>, L>> {
        self.layer(GateLayer::shared(bulkhead))
    }

    fn keyed_rate_limiter<T, F>(
        self,
        table: Arc<T>,
        key: F,
    ) -> ServiceBuilder<Stack<KeyedLayer<T, F>, L>> {
        self.layer(KeyedLayer::shared(table, key))
    }

    fn keyed_circuit_breaker<T, F>(
        self,
        table: Arc<T>,
        key: F,
    ) -> ServiceBuilder<Stack<KeyedLayer<T, F>, L>> {
        self.layer(KeyedLayer::shared(table, key))
    }

    fn bulwark_retry<K, H, B>(
        self,
        policy: TokioRetry<K, H, B>,
    ) -> ServiceBuilder<Stack<RetryLayer<K, H, B>, L>> {
        self.layer(RetryLayer::new(policy))
    }

    fn bulwark_timeout(self, limit: Duration) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        self.layer(TimeoutLayer::new(limit))
    }

    fn pipeline<K, B, G, H>(
        self,
        pipeline: TokioPipeline<K, B, G, H>,
    ) -> ServiceBuilder<Stack<PipelineLayer<K, B, G, H>, L>> {
        self.layer(PipelineLayer::new(pipeline))
    }
    fn fault_injection(
        self,
        injector: Arc<Injector<TokioClock>>,
    ) -> ServiceBuilder<Stack<FaultLayer, L>> {
        self.layer(FaultLayer::shared(injector))
    }
}
