//! The Redis limiter as tower middleware, keyed by a request key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bulwark::Clock;
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::BoxError;
use tower_layer::Layer;
use tower_service::Service;

use crate::RedisRateLimiter;

/// Puts services behind a [`RedisRateLimiter`]: each request takes one token from the
/// bucket of the key `key(&request)` returns (a user id, an API token, a client address). A
/// request the limit rejects is answered at once, without calling the inner service, with
/// the limiter's [`Error`](crate::Error) boxed: downcast it and read
/// [`retry_after`](crate::Error::retry_after) for a `429 Too Many Requests` with a
/// `Retry-After` header.
///
/// Every service the layer builds, and every clone of them, shares one limiter (and its
/// connection, breaker and local fallback).
///
/// # Examples
///
/// ```no_run
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark_redis::{Config, Error, RedisRateLimitLayer, RedisRateLimiter};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
/// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(1))).unwrap();
/// // Requests are (user, body) pairs here; the user is the key.
/// let layer = RedisRateLimitLayer::new(limiter, |req: &(String, String)| req.0.clone());
/// let svc = layer.layer(service_fn(|(_, body): (String, String)| async move {
///     Ok::<_, std::io::Error>(body)
/// }));
/// let ok = svc.clone().oneshot(("alice".into(), "hi".into())).await.unwrap();
/// let err = svc.oneshot(("alice".into(), "again".into())).await.unwrap_err();
/// let limited = err.downcast_ref::<Error>().unwrap();
/// println!("429, Retry-After: {:?}", limited.retry_after());
/// # let _ = ok;
/// # }
/// ```
pub struct RedisRateLimitLayer<F, C = TokioClock> {
    limiter: RedisRateLimiter<C>,
    key: F,
}

impl<F, C> RedisRateLimitLayer<F, C> {
    /// A layer taking one token per request from `limiter`, for the key `key` extracts from
    /// the request.
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimitLayer, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(5))).unwrap();
    /// let layer = RedisRateLimitLayer::new(limiter, |ip: &std::net::IpAddr| ip.to_string());
    /// assert_eq!(layer.limiter().redis_key("10.0.0.1"), "bulwark:rl:10.0.0.1");
    /// # }
    /// ```
    pub fn new(limiter: RedisRateLimiter<C>, key: F) -> Self {
        RedisRateLimitLayer { limiter, key }
    }

    /// The limiter the layer's services share.
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimitLayer, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(5))).unwrap();
    /// let layer = RedisRateLimitLayer::new(limiter, |k: &String| k.clone());
    /// assert!(!layer.limiter().is_degraded());
    /// # }
    /// ```
    pub fn limiter(&self) -> &RedisRateLimiter<C> {
        &self.limiter
    }
}

impl<F: Clone, C> Clone for RedisRateLimitLayer<F, C> {
    fn clone(&self) -> Self {
        RedisRateLimitLayer {
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

impl<F, C> fmt::Debug for RedisRateLimitLayer<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, F: Clone, C> Layer<S> for RedisRateLimitLayer<F, C> {
    type Service = RedisRateLimitService<S, F, C>;
    fn layer(&self, inner: S) -> Self::Service {
        RedisRateLimitService {
            inner,
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

/// A service behind a [`RedisRateLimiter`]; built by [`RedisRateLimitLayer`], clones share
/// the limiter.
///
/// Readiness is the inner service's; the limit is asked in `call`, so a rejected request
/// costs the inner service nothing. The response future is boxed: it owns the limiter's
/// round trip to Redis (a network future already allocates; this adapter is for servers).
pub struct RedisRateLimitService<S, F, C = TokioClock> {
    inner: S,
    limiter: RedisRateLimiter<C>,
    key: F,
}

impl<S: Clone, F: Clone, C> Clone for RedisRateLimitService<S, F, C> {
    fn clone(&self) -> Self {
        RedisRateLimitService {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: fmt::Debug, F, C> fmt::Debug for RedisRateLimitService<S, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// The response future of a [`RedisRateLimitService`].
pub type RedisRateLimitFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, F, K, C, Req> Service<Req> for RedisRateLimitService<S, F, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    F: Fn(&Req) -> K,
    K: Into<String>,
    C: Clock + Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RedisRateLimitFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key: String = (self.key)(&req).into();
        let limiter = self.limiter.clone();
        // The inner service that was polled ready goes into the future; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            limiter.try_acquire(&key, 1).await?;
            inner.call(req).await.map_err(Into::into)
        })
    }
}
