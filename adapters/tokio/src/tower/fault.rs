//! Fault injection as a tower layer: [`FaultLayer`] over a shared [`Injector`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulwark::Sleep;
use bulwark::fault::{Injected, Injector};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use crate::TokioClock;

/// Injects faults into the calls of the inner service by a shared [`Injector`] (see
/// [`bulwark::fault`]): refuses a share of them without calling the inner service, delays a
/// share, and replaces the outcome of a share with an error. The injector is shared through
/// an `Arc` and switchable at run time ([`Injector::set`], [`Injector::disable`]): keep a
/// clone of [`injector`](FaultLayer::injector) behind an admin route. Off by default, and one
/// atomic load per call when off. Injected faults are the boxed [`Injected`].
///
/// A delayed call's inner future is made at once and first polled after the delay.
///
/// ```
/// use bulwark::fault::{Config, Injected, Injector, Rate};
/// use bulwark_tokio::{TokioClock, tower::FaultLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer = FaultLayer::new(Injector::new(Config::new(), TokioClock::new()).unwrap());
/// let svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.clone().oneshot(7).await.unwrap(), 7); // off: untouched
/// layer.injector().set(Config::new().abort(Rate::ALWAYS)).unwrap(); // switched on, shared
/// let err = svc.oneshot(7).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<Injected>(), Some(&Injected::Aborted));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FaultLayer {
    injector: Arc<Injector<TokioClock>>,
}

impl FaultLayer {
    /// A layer around `injector`.
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector};
    /// let layer = bulwark_tokio::tower::FaultLayer::new(Injector::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
    /// assert!(layer.injector().is_off());
    /// ```
    pub fn new(injector: Injector<TokioClock>) -> Self {
        Self::shared(Arc::new(injector))
    }

    /// A layer around an injector already shared (with an admin route, say).
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector};
    /// use std::sync::Arc;
    /// let chaos = Arc::new(Injector::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
    /// let layer = bulwark_tokio::tower::FaultLayer::shared(Arc::clone(&chaos));
    /// assert!(Arc::ptr_eq(layer.injector(), &chaos));
    /// ```
    pub fn shared(injector: Arc<Injector<TokioClock>>) -> Self {
        FaultLayer { injector }
    }

    /// The injector: to switch it, or read its totals.
    ///
    /// ```
    /// use bulwark::fault::{Config, Injector, Rate};
    /// let layer = bulwark_tokio::tower::FaultLayer::new(Injector::new(Config::new(), bulwark_tokio::TokioClock::new()).unwrap());
    /// layer.injector().set(Config::new().replace(Rate::percent(1))).unwrap();
    /// assert!(!layer.injector().is_off());
    /// ```
    pub fn injector(&self) -> &Arc<Injector<TokioClock>> {
        &self.injector
    }
}

impl<Svc> Layer<Svc> for FaultLayer {
    type Service = FaultService<Svc>;

    fn layer(&self, inner: Svc) -> FaultService<Svc> {
        FaultService {
            inner,
            injector: Arc::clone(&self.injector),
        }
    }
}

/// A service whose calls go through a fault [`Injector`]: the service of a [`FaultLayer`].
///
/// ```
/// use bulwark::fault::{Config, Injector, Rate};
/// use bulwark_tokio::{TokioClock, tower::FaultLayer};
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let slow = Config::new().delay(Rate::ALWAYS, Duration::from_millis(300), Duration::from_millis(300));
/// let svc = FaultLayer::new(Injector::new(slow, TokioClock::new()).unwrap())
///     .layer(service_fn(|()| async { Ok::<_, std::io::Error>("late") }));
/// let start = tokio::time::Instant::now();
/// assert_eq!(svc.oneshot(()).await.unwrap(), "late");
/// assert_eq!(start.elapsed(), Duration::from_millis(300));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FaultService<Svc> {
    inner: Svc,
    injector: Arc<Injector<TokioClock>>,
}

impl<Svc, Req> Service<Req> for FaultService<Svc>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = FaultFuture<Svc::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fault = self.injector.decide();
        let sleep = (!fault.delay.is_zero()).then(|| TokioClock::new().sleep(fault.delay));
        let fut = match fault.fail {
            Some(Injected::Aborted) => None, // never called
            _ => Some(self.inner.call(req)),
        };
        FaultFuture {
            sleep,
            fut,
            fail: fault.fail,
        }
    }
}

pin_project! {
    /// The response future of a [`FaultService`]: the delay, if any, then the refusal, the
    /// inner call, or the inner call with its outcome replaced.
    ///
    /// ```
    /// use bulwark::fault::{Config, Injected, Injector, Rate};
    /// use bulwark_tokio::{TokioClock, tower::FaultLayer};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let svc = FaultLayer::new(Injector::new(Config::new().replace(Rate::ALWAYS), TokioClock::new()).unwrap())
    ///     .layer(service_fn(|()| async { Ok::<_, std::io::Error>(1) }));
    /// let err = svc.oneshot(()).await.unwrap_err();
    /// assert_eq!(err.downcast_ref::<Injected>(), Some(&Injected::Replaced));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct FaultFuture<F> {
        #[pin]
        sleep: Option<tokio::time::Sleep>,
        #[pin]
        fut: Option<F>,
        fail: Option<Injected>,
    }
}

impl<F, T, E> Future for FaultFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
            std::task::ready!(sleep.poll(cx));
            this.sleep.set(None);
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Refused (the inner service was never called), or polled after completion.
            return match this.fail.take() {
                Some(fail) => Poll::Ready(Err(Box::new(fail))),
                None => Poll::Pending,
            };
        };
        let out = std::task::ready!(fut.poll(cx));
        this.fut.set(None);
        Poll::Ready(match this.fail.take() {
            Some(fail) => Err(Box::new(fail)),
            None => out.map_err(Into::into),
        })
    }
}
