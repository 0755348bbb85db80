//! Hedging as a tower layer: [`HedgeLayer`] over a shared [`Hedge`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pin_project_lite::pin_project;
use std::task::{Context, Poll};

use bulwark::classify::{Classify, ErrorsAreFailures};
use bulwark::hedge::{self, Hedge};
use bulwark::retry::RetryBudget;
use tower_layer::Layer;
use tower_service::Service;

use super::handle::{Handle, Held};
use super::{Attempts, BoxError, ReadyCall};
use crate::TokioClock;

/// Hedges the calls of the inner service by a shared [`Hedge`] of `N` copies (see
/// [`bulwark::hedge`]): each copy sends its own clone of the request to its own clone of the
/// service, so both must be `Clone`; the first acceptable answer wins and the other copies are
/// dropped. The hedge (its latencies and budget) is shared through an `Arc`.
///
/// ```
/// use bulwark::hedge::{Config, Delay, Hedge};
/// use bulwark_tokio::{TokioClock, tower::HedgeLayer};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(Duration::from_millis(50))), TokioClock::new()).unwrap();
/// let copies = Arc::new(AtomicU32::new(0));
/// let seen = Arc::clone(&copies);
/// let svc = HedgeLayer::new(hedge).layer(service_fn(move |x: u32| {
///     let n = seen.fetch_add(1, Ordering::SeqCst);
///     async move {
///         // The first copy is stuck for a second; the hedge answers in 5 ms.
///         tokio::time::sleep(Duration::from_millis(if n == 0 { 1_000 } else { 5 })).await;
///         Ok::<_, std::io::Error>((x, n))
///     }
/// }));
/// let start = tokio::time::Instant::now();
/// assert_eq!(svc.oneshot(7).await.unwrap(), (7, 1));
/// assert_eq!(start.elapsed(), Duration::from_millis(55));
/// # }
/// ```
#[derive(Debug)]
pub struct HedgeLayer<const N: usize, K = ErrorsAreFailures, B = ()> {
    hedge: Arc<Hedge<TokioClock, N, K, B>>,
}

impl<const N: usize, K, B> Clone for HedgeLayer<N, K, B> {
    fn clone(&self) -> Self {
        HedgeLayer {
            hedge: Arc::clone(&self.hedge),
        }
    }
}

impl<const N: usize, K, B> HedgeLayer<N, K, B> {
    /// A layer around `hedge`.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(std::time::Duration::from_millis(5))), bulwark_tokio::TokioClock::new()).unwrap();
    /// let layer = bulwark_tokio::tower::HedgeLayer::new(hedge);
    /// assert_eq!(layer.hedge().delay(), std::time::Duration::from_millis(5));
    /// ```
    pub fn new(hedge: Hedge<TokioClock, N, K, B>) -> Self {
        Self::shared(Arc::new(hedge))
    }

    /// A layer around a hedge already shared.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use std::sync::Arc;
    /// let hedge: Arc<Hedge<_, 2>> = Arc::new(Hedge::new(Config::new(Delay::Fixed(std::time::Duration::ZERO)), bulwark_tokio::TokioClock::new()).unwrap());
    /// let layer = bulwark_tokio::tower::HedgeLayer::shared(Arc::clone(&hedge));
    /// assert!(Arc::ptr_eq(layer.hedge(), &hedge));
    /// ```
    pub fn shared(hedge: Arc<Hedge<TokioClock, N, K, B>>) -> Self {
        HedgeLayer { hedge }
    }

    /// The hedge: its delay and latencies.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(std::time::Duration::ZERO)), bulwark_tokio::TokioClock::new()).unwrap();
    /// assert_eq!(bulwark_tokio::tower::HedgeLayer::new(hedge).hedge().latencies().percentile(500), None);
    /// ```
    pub fn hedge(&self) -> &Arc<Hedge<TokioClock, N, K, B>> {
        &self.hedge
    }
}

impl<Svc, const N: usize, K, B> Layer<Svc> for HedgeLayer<N, K, B> {
    type Service = HedgeService<Svc, N, K, B>;

    fn layer(&self, inner: Svc) -> Self::Service {
        HedgeService {
            inner,
            hedge: Held::new(Arc::clone(&self.hedge)),
        }
    }
}

/// A service whose calls are hedged: the service of a [`HedgeLayer`].
///
/// ```
/// use bulwark::hedge::{Config, Delay, Hedge};
/// use bulwark_tokio::{TokioClock, tower::HedgeLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(std::time::Duration::ZERO)), TokioClock::new()).unwrap();
/// let svc = HedgeLayer::new(hedge).layer(service_fn(|x: u8| async move { Err::<u8, _>(std::io::Error::other("down")) }));
/// assert_eq!(svc.oneshot(1).await.unwrap_err().to_string(), "down"); // both copies failed
/// # }
/// ```
#[derive(Debug)]
pub struct HedgeService<Svc, const N: usize, K = ErrorsAreFailures, B = ()> {
    inner: Svc,
    hedge: Held<Hedge<TokioClock, N, K, B>>,
}

impl<Svc: Clone, const N: usize, K, B> Clone for HedgeService<Svc, N, K, B> {
    fn clone(&self) -> Self {
        HedgeService {
            inner: self.inner.clone(),
            hedge: self.hedge.clone(),
        }
    }
}

impl<Svc, Req, const N: usize, K, B> Service<Req> for HedgeService<Svc, N, K, B>
where
    Svc: Service<Req> + Clone,
    Svc::Error: Into<BoxError>,
    Req: Clone,
    K: Classify<Svc::Response, Svc::Error>,
    B: RetryBudget,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = HedgeFuture<
        hedge::Call<
            Handle<Hedge<TokioClock, N, K, B>>,
            TokioClock,
            N,
            K,
            B,
            Attempts<Svc, Req>,
            ReadyCall<Svc, Req>,
        >,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        HedgeFuture {
            inner: hedge::Call::new(
                self.hedge.for_call(),
                Attempts::ready(super::retry::take_ready(&mut self.inner), req),
            ),
        }
    }
}

pin_project! {
    /// The response future of a [`HedgeService`]: the hedged copies, the winner's answer.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use bulwark_tokio::{TokioClock, tower::HedgeLayer};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(std::time::Duration::ZERO)), TokioClock::new()).unwrap();
    /// let svc = HedgeLayer::new(hedge).layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x * 2) }));
    /// assert_eq!(tokio::spawn(svc.oneshot(4)).await.unwrap().unwrap(), 8);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct HedgeFuture<C> {
        #[pin]
        inner: C,
    }
}

impl<C, T, E> Future for HedgeFuture<C>
where
    C: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map_err(Into::into)
    }
}

impl<C> std::fmt::Debug for HedgeFuture<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HedgeFuture").finish_non_exhaustive()
    }
}
