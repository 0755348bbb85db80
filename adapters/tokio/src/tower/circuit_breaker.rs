//! The circuit breaker as tower middleware.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulwark::Clock;
use bulwark::circuit_breaker::{
    CircuitBreaker, Classify, ErrorsAreFailures, Events, NoWindow, Rejected, Ticket, Window,
};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use crate::TokioClock;

/// Wraps services in a [`CircuitBreakerService`] sharing one breaker.
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
pub struct CircuitBreakerLayer<C = TokioClock, W: Window = NoWindow, E = (), K = ErrorsAreFailures>
{
    breaker: Arc<CircuitBreaker<C, W, E>>,
    classify: K,
}

impl<C, W: Window, E> CircuitBreakerLayer<C, W, E> {
    /// A layer around `breaker`; errors of the inner service are failures.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap();
    /// let _layer = bulwark_tokio::tower::CircuitBreakerLayer::new(b);
    /// # }
    /// ```
    pub fn new(breaker: CircuitBreaker<C, W, E>) -> Self {
        Self::shared(Arc::new(breaker))
    }

    /// A layer around a breaker that is already shared (to read its metrics elsewhere, or to
    /// put one breaker in front of several services).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = Arc::new(CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap());
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::shared(b.clone());
    /// assert!(Arc::ptr_eq(layer.breaker(), &b));
    /// # }
    /// ```
    pub fn shared(breaker: Arc<CircuitBreaker<C, W, E>>) -> Self {
        CircuitBreakerLayer {
            breaker,
            classify: ErrorsAreFailures,
        }
    }
}

impl<C, W: Window, E, K> CircuitBreakerLayer<C, W, E, K> {
    /// The same layer with `classify` deciding what each response means (for example an HTTP
    /// 503 response as a failure, a 404 error as ignored).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, Outcome};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap();
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::new(b)
    ///     .classify(|r: &Result<u16, std::io::Error>| match r {
    ///         Ok(503) | Err(_) => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///     });
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn classify<K2>(self, classify: K2) -> CircuitBreakerLayer<C, W, E, K2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }

    /// The shared breaker.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(3), bulwark_tokio::TokioClock::new()).unwrap();
    /// let layer = bulwark_tokio::tower::CircuitBreakerLayer::new(b);
    /// assert_eq!(layer.breaker().state(), State::Closed);
    /// # }
    /// ```
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C, W, E>> {
        &self.breaker
    }
}

impl<C, W: Window, E, K: Clone> Clone for CircuitBreakerLayer<C, W, E, K> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S, C, W: Window, E, K: Clone> Layer<S> for CircuitBreakerLayer<C, W, E, K> {
    type Service = CircuitBreakerService<S, C, W, E, K>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// A service behind a circuit breaker. Built by [`CircuitBreakerLayer`].
///
/// # `poll_ready`
///
/// Readiness is the inner service's; the breaker is asked in `call`, and a rejection is an
/// immediate error response, not backpressure. Reserving in `poll_ready` would let a caller
/// that polls readiness and never calls hold a half-open probe slot indefinitely, and an open
/// breaker should fail fast rather than make callers wait.
///
/// # Cancellation
///
/// Dropping the response future abandons the call: nothing is recorded and a half-open probe
/// slot is given back.
///
/// ```
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, Counters};
/// use bulwark_tokio::tower::CircuitBreakerLayer;
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let b = CircuitBreaker::new(Config::new().consecutive_failures(2), bulwark_tokio::TokioClock::new())
///     .unwrap()
///     .with_events(Counters::new()); // opt-in totals
/// let svc = CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Err::<(), _>("down") }));
/// for _ in 0..100 {
///     let _ = svc.clone().oneshot(()).await; // 100 clones, one breaker
/// }
/// let totals = svc.breaker().events().snapshot();
/// assert_eq!((totals.failures, totals.rejected), (2, 98));
/// # }
/// ```
#[derive(Debug)]
pub struct CircuitBreakerService<
    S,
    C = TokioClock,
    W: Window = NoWindow,
    E = (),
    K = ErrorsAreFailures,
> {
    inner: S,
    breaker: Arc<CircuitBreaker<C, W, E>>,
    classify: K,
}

impl<S, C, W: Window, E, K> CircuitBreakerService<S, C, W, E, K> {
    /// The shared breaker.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(2), bulwark_tokio::TokioClock::new()).unwrap();
    /// let svc = bulwark_tokio::tower::CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Ok::<_, ()>(()) }));
    /// assert_eq!(svc.breaker().metrics().consecutive_failures, 0);
    /// # }
    /// ```
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C, W, E>> {
        &self.breaker
    }

    /// The inner service.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(2), bulwark_tokio::TokioClock::new()).unwrap();
    /// let svc = bulwark_tokio::tower::CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Ok::<_, ()>(()) }));
    /// let _inner = svc.get_ref();
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(2), bulwark_tokio::TokioClock::new()).unwrap();
    /// let mut svc = bulwark_tokio::tower::CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Ok::<_, ()>(()) }));
    /// let _inner = svc.get_mut();
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    ///
    /// ```
    /// # use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// # use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let b = CircuitBreaker::new(Config::new().consecutive_failures(2), bulwark_tokio::TokioClock::new()).unwrap();
    /// let svc = bulwark_tokio::tower::CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Ok::<_, ()>(()) }));
    /// let _inner = svc.into_inner();
    /// # }
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C, W: Window, E, K: Clone> Clone for CircuitBreakerService<S, C, W, E, K> {
    fn clone(&self) -> Self {
        CircuitBreakerService {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S, Req, C, W, E, K> Service<Req> for CircuitBreakerService<S, C, W, E, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
    W: Window,
    E: Events,
    K: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, W, E, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_ticket() {
            Ok(ticket) => ResponseFuture {
                state: State::Running {
                    inner: self.inner.call(req),
                },
                guard: Some(Guard {
                    breaker: self.breaker.clone(),
                    ticket: Some(ticket),
                }),
                classify: self.classify.clone(),
            },
            Err(rejected) => ResponseFuture {
                state: State::Rejected {
                    rejected: Some(rejected),
                },
                guard: None,
                classify: self.classify.clone(),
            },
        }
    }
}

/// Hands the ticket back when the call is abandoned.
struct Guard<C: Clock, W: Window, E: Events> {
    breaker: Arc<CircuitBreaker<C, W, E>>,
    ticket: Option<Ticket>,
}

impl<C: Clock, W: Window, E: Events> Drop for Guard<C, W, E> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.release(ticket);
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Running { #[pin] inner: F },
        Rejected { rejected: Option<Rejected> },
    }
}

pin_project! {
    /// The response future of [`CircuitBreakerService`].
    ///
    /// ```
    /// use bulwark::circuit_breaker::{CircuitBreaker, Config};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = CircuitBreaker::new(Config::new().consecutive_failures(1), bulwark_tokio::TokioClock::new()).unwrap();
    /// let mut svc = bulwark_tokio::tower::CircuitBreakerLayer::new(b).layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
    /// let fut: bulwark_tokio::tower::ResponseFuture<_, _, _, _, _> = svc.ready().await.unwrap().call(());
    /// assert_eq!(fut.await.unwrap(), 1);
    /// # }
    /// ```
    pub struct ResponseFuture<F, C: Clock, W: Window, E: Events, K> {
        #[pin]
        state: State<F>,
        guard: Option<Guard<C, W, E>>,
        classify: K,
    }
}

impl<F, T, Er, C, W, E, K> Future for ResponseFuture<F, C, W, E, K>
where
    F: Future<Output = Result<T, Er>>,
    Er: Into<BoxError>,
    C: Clock,
    W: Window,
    E: Events,
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
            StateProj::Running { inner } => {
                let result = std::task::ready!(inner.poll(cx));
                if let Some(mut guard) = this.guard.take()
                    && let Some(ticket) = guard.ticket.take()
                {
                    guard
                        .breaker
                        .record(ticket, this.classify.classify(&result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}

impl<F, C: Clock, W: Window, E: Events, K> std::fmt::Debug for ResponseFuture<F, C, W, E, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("admitted", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}
