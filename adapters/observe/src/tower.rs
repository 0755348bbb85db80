//! tower: [`ObserveLayer`] around any service, and [`Observed`] as a keyed gate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulwark::admission::{Permit, RetryHint};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::{BoxError, KeyedGate};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Instrumented, Observed, Observer, Pattern, Signal, instrument};

/// Observes every call of the services it wraps, as [`instrument`] does: a span per call,
/// [`Signal::Finished`] with the outcome read from the error (the core's rejections and
/// timeouts are found in tower's `BoxError`) and the duration on the tokio clock, and the
/// waiting gauge while the call is pending. Outside a `PipelineLayer` or `RetryLayer` it
/// observes calls (give the pattern of what it wraps); inside a retry layer, with
/// [`Pattern::Attempt`], each attempt.
///
/// The observer is shared through an `Arc` by every service the layer builds.
///
/// # Examples
///
/// ```
/// use bulwark_observe::{CallOutcome, ObserveLayer, Observer, Pattern, Signal};
/// use bulwark_tokio::tower::TimeoutLayer;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// #[derive(Default)]
/// struct Last(Mutex<Option<Signal>>);
/// impl Observer for Last {
///     fn on_signal(&self, s: Signal) { *self.0.lock().unwrap() = Some(s) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer = ObserveLayer::new(Pattern::Timeout, Last::default());
/// let svc = ServiceBuilder::new()
///     .layer(layer.clone())
///     .layer(TimeoutLayer::new(Duration::from_millis(300)))
///     .service(service_fn(|()| async {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         Ok::<_, std::io::Error>(())
///     }));
/// assert!(svc.oneshot(()).await.is_err());
/// assert_eq!(
///     *layer.observer().0.lock().unwrap(),
///     Some(Signal::Finished { pattern: Pattern::Timeout, outcome: CallOutcome::TimedOut, duration: Duration::from_millis(300) })
/// );
/// # }
/// ```
#[derive(Debug)]
pub struct ObserveLayer<O> {
    pattern: Pattern,
    observer: Arc<O>,
}

impl<O> ObserveLayer<O> {
    /// A layer observing calls as calls of `pattern`, reporting to `observer`.
    ///
    /// ```
    /// use bulwark_observe::{ObserveLayer, Pattern};
    /// let layer = ObserveLayer::new(Pattern::Pipeline, ());
    /// assert_eq!(layer.pattern(), Pattern::Pipeline);
    /// ```
    pub fn new(pattern: Pattern, observer: O) -> Self {
        Self::shared(pattern, Arc::new(observer))
    }

    /// A layer reporting to an observer already shared.
    ///
    /// ```
    /// use bulwark_observe::{ObserveLayer, Pattern};
    /// use std::sync::Arc;
    /// let observer = Arc::new(());
    /// let layer = ObserveLayer::shared(Pattern::Attempt, Arc::clone(&observer));
    /// assert!(Arc::ptr_eq(layer.observer(), &observer));
    /// ```
    pub fn shared(pattern: Pattern, observer: Arc<O>) -> Self {
        ObserveLayer { pattern, observer }
    }

    /// The pattern its calls are reported as.
    ///
    /// ```
    /// use bulwark_observe::{ObserveLayer, Pattern};
    /// assert_eq!(ObserveLayer::new(Pattern::Bulkhead, ()).pattern(), Pattern::Bulkhead);
    /// ```
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The observer.
    ///
    /// ```
    /// use bulwark_observe::{ObserveLayer, Pattern};
    /// assert_eq!(**ObserveLayer::new(Pattern::Retry, 5u8).observer(), 5);
    /// ```
    pub fn observer(&self) -> &Arc<O> {
        &self.observer
    }
}

impl<O> Clone for ObserveLayer<O> {
    fn clone(&self) -> Self {
        ObserveLayer {
            pattern: self.pattern,
            observer: Arc::clone(&self.observer),
        }
    }
}

impl<S, O> Layer<S> for ObserveLayer<O> {
    type Service = ObserveService<S, O>;
    fn layer(&self, inner: S) -> ObserveService<S, O> {
        ObserveService {
            inner,
            pattern: self.pattern,
            observer: Arc::clone(&self.observer),
        }
    }
}

/// The service of an [`ObserveLayer`]: the inner service's answers, its errors boxed.
///
/// ```
/// use bulwark_observe::{ObserveLayer, Pattern};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = ObserveLayer::new(Pattern::Pipeline, ()).layer(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n + 1) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct ObserveService<S, O> {
    inner: S,
    pattern: Pattern,
    observer: Arc<O>,
}

impl<S: Clone, O> Clone for ObserveService<S, O> {
    fn clone(&self) -> Self {
        ObserveService {
            inner: self.inner.clone(),
            pattern: self.pattern,
            observer: Arc::clone(&self.observer),
        }
    }
}

impl<S, O, Req> Service<Req> for ObserveService<S, O>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    O: Observer,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Instrumented<Arc<O>, TokioClock, Boxed<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fut = Boxed {
            fut: self.inner.call(req),
        };
        instrument(self.pattern, Arc::clone(&self.observer), TokioClock, fut)
    }
}

pin_project! {
    /// The inner service's future with its error boxed (the [`ObserveService`]'s future runs
    /// it [`instrument`]ed).
    ///
    /// ```
    /// use bulwark_observe::{ObserveLayer, Pattern};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = ObserveLayer::new(Pattern::Pipeline, ()).layer(service_fn(|()| async { Err::<(), _>(std::io::Error::other("down")) }));
    /// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    /// assert_eq!(err.to_string(), "down");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Boxed<F> {
        #[pin]
        fut: F,
    }
}

impl<F, T, E> Future for Boxed<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx).map_err(Into::into)
    }
}

/// A keyed table of gates (a `KeyedRateLimiter`, a `KeyedCircuitBreaker`) that reports each
/// admission and rejection of any key to its observer, under the table's one policy name
/// (keys are not labels: their number is unbounded). The key's own gate hears how the call
/// ended, as before, and only it: for a limiter table that is all there is (a token is spent
/// on admission), but a `KeyedCircuitBreaker`'s calls are reported admitted or rejected,
/// not how they ended (its per-key breakers carry no events of their own; the permit the
/// table hands out cannot be re-wrapped from here): put an [`ObserveLayer`] with
/// [`Pattern::CircuitBreaker`] around the keyed layer for every call's outcome.
///
/// ```
/// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
/// use bulwark_observe::{Observed, Observer, Pattern, Signal};
/// use bulwark_tokio::{TokioClock, tower::KeyedGate};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// #[derive(Default)]
/// struct Shed(AtomicU32);
/// impl Observer for Shed {
///     fn on_signal(&self, s: Signal) {
///         if let Signal::Rejected { .. } = s { self.0.fetch_add(1, Ordering::Relaxed); }
///     }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let table: KeyedRateLimiter<&str, _, 8> = KeyedRateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap();
/// let per_tenant = Observed::new(Pattern::RateLimiter, table, Shed::default());
/// per_tenant.admit_key(&"acme").unwrap().success();
/// assert!(per_tenant.admit_key(&"acme").is_err());
/// assert!(per_tenant.admit_key(&"globex").is_ok());
/// assert_eq!(per_tenant.observer().0.load(Ordering::Relaxed), 1);
/// # }
/// ```
impl<Key, T, O> KeyedGate<Key> for Observed<T, O>
where
    T: KeyedGate<Key>,
    T::Rejected: RetryHint,
    O: Observer,
{
    type Owner = T::Owner;
    type Rejected = T::Rejected;

    fn admit_key(&self, key: &Key) -> Result<Permit<T::Owner>, T::Rejected> {
        let pattern = self.pattern;
        match self.gate.admit_key(key) {
            Ok(permit) => {
                self.observer.on_signal(Signal::Admitted { pattern });
                Ok(permit)
            }
            Err(rejected) => {
                let retry_at = rejected.retry_at();
                self.observer
                    .on_signal(Signal::Rejected { pattern, retry_at });
                Err(rejected)
            }
        }
    }
}
