//! Per-key gates as tower middleware: a rate limiter or a circuit breaker per key, the key
//! taken from each request by a closure (a route, a client address, a tenant header).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use bulwark::Clock;
use bulwark::admission::{Admit, Permit};
use bulwark::circuit_breaker::{
    CircuitBreaker, Classify, Config, ConfigError, ErrorsAreFailures, NoWindow, Rejected, State,
    Window,
};
use bulwark::lock::RawLock;
use bulwark::rate_limiter::{Denied, KeyedRateLimiter, RateLimited};
use tower_layer::Layer;
use tower_service::Service;

use super::BoxError;
use super::gate::GateFuture;
use crate::TokioClock;

/// A table of gates, one per key: what a [`KeyedLayer`] asks, for the key of each request,
/// to admit the call. Implemented by [`KeyedRateLimiter`] (rejections are
/// [`RateLimited`], the plain limiter's own) and [`KeyedCircuitBreaker`] (rejections are
/// the breaker's [`Rejected`]), so a retry layer, an axum error handler or a status page
/// treats a keyed rejection exactly like a plain one.
///
/// ```
/// use bulwark::rate_limiter::{Config, KeyedRateLimiter, RateLimited};
/// use bulwark_tokio::{TokioClock, tower::KeyedGate};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let per_tenant: KeyedRateLimiter<&str, _, 16> =
///     KeyedRateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap();
/// per_tenant.admit_key(&"acme").unwrap().success();
/// let no: RateLimited = per_tenant.admit_key(&"acme").map(drop).unwrap_err();
/// assert_eq!(no.retry_after, std::time::Duration::from_secs(1));
/// assert!(per_tenant.admit_key(&"globex").is_ok()); // another key, its own bucket
/// # }
/// ```
pub trait KeyedGate<Key> {
    /// How an admitted call holds the gate of its key (an `Arc` of the key's breaker;
    /// nothing, for a limiter whose token is spent on admission).
    type Owner: Deref<Target: Admit>;
    /// Why a call was turned away.
    type Rejected: std::error::Error + Send + Sync + 'static;

    /// Admits a call for `key` now, or rejects it. Never waits.
    ///
    /// # Errors
    ///
    /// [`Self::Rejected`](KeyedGate::Rejected) when the key's gate turns the call away.
    fn admit_key(&self, key: &Key) -> Result<Permit<Self::Owner>, Self::Rejected>;
}

/// The gate that admits everything, held by a call a keyed limiter admitted (its token was
/// spent on admission; there is nothing to give back).
static SPENT: () = ();

/// One token per call for the request's key. A request that asks for more than the burst
/// cannot happen with one token; it would read as [`RateLimited::NEVER`].
impl<Key, C, const N: usize, L> KeyedGate<Key> for KeyedRateLimiter<Key, C, N, L>
where
    Key: Hash + Eq + Clone,
    C: Clock,
    L: RawLock,
{
    type Owner = &'static ();
    type Rejected = RateLimited;

    #[inline]
    fn admit_key(&self, key: &Key) -> Result<Permit<&'static ()>, RateLimited> {
        self.try_acquire(key)
            .map(|()| Permit::from_ticket(&SPENT, ()))
            .map_err(Denied::into_rate_limited)
    }
}

// ===== the keyed circuit breaker =====

/// A circuit breaker per key, in a table of fixed capacity: one breaker per downstream host,
/// route or tenant, so that one bad key does not open the circuit for all.
///
/// Every key's breaker has the same [`Config`] (and window kind `W`). A key seen for the
/// first time gets a fresh closed breaker. The table holds at most `capacity` breakers
/// (its memory bound: `capacity` entries of a key, an `Arc` of a breaker and a use stamp);
/// when it is full, a new key takes the place of an evicted one:
///
/// 1. the least recently used breaker that lets every call through (closed, disabled or
///    metrics-only): what it loses is a partial run of failures (or a partly filled
///    window), which the new key's calls will measure again;
/// 2. failing that, the least recently used open breaker whose open time is over (its next
///    call would be a probe; nobody has called since);
/// 3. **never** a breaker that is open within its open time, half-open or forced open: it
///    holds the one fact that matters, that its downstream is failing. When every breaker in
///    the table is such a one, the new key shares the **overflow breaker** (one breaker, same
///    configuration, for every key that does not fit) until a place frees up, and
///    [`overflows`](KeyedCircuitBreaker::overflows) counts it.
///
/// Size the capacity above the number of keys that can fail at once and the overflow
/// breaker stays unused. A call in flight on an evicted breaker keeps it alive (its permit
/// holds an `Arc`); its outcome is recorded there and dropped with it.
///
/// A read lock and a hash lookup per call for a known key, and a write of its use stamp
/// unless it already is the most recently used; a write lock, and a scan of the table when
/// it is full, for a new key.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, State};
/// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let per_host = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 64, TokioClock::new()).unwrap();
/// per_host.breaker(&"a.example").try_acquire().unwrap().failure();
/// assert_eq!(per_host.state(&"a.example"), Some(State::Open));
/// assert!(per_host.breaker(&"b.example").try_acquire().is_ok()); // b is not a
/// assert_eq!(per_host.state(&"c.example"), None); // never seen
/// # }
/// ```
pub struct KeyedCircuitBreaker<Key, C = TokioClock, W: Window = NoWindow> {
    config: Config,
    window: W,
    clock: C,
    capacity: usize,
    table: RwLock<HashMap<Key, Entry<C, W>>>,
    overflow: Arc<CircuitBreaker<C, W>>,
    /// The latest use stamp handed out, for least-recently-used eviction: the most recently
    /// used entry holds it. Relaxed: an ordering of uses that is only approximately the
    /// real one (two calls racing) evicts a slightly different entry, nothing worse.
    tick: AtomicU64,
    evictions: AtomicU64,
    overflows: AtomicU64,
}

struct Entry<C, W: Window> {
    breaker: Arc<CircuitBreaker<C, W>>,
    used: AtomicU64,
}

impl<Key: Hash + Eq + Clone, C: Clock + Clone> KeyedCircuitBreaker<Key, C> {
    /// A table of at most `capacity` breakers without a window (consecutive failures), each
    /// configured by `config`, reading time from `clock`. A capacity of 0 sends every key to
    /// the overflow breaker (one breaker for all).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration a breaker cannot run with.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, ConfigError};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ok = KeyedCircuitBreaker::<u32>::new(Config::new().consecutive_failures(3), 8, TokioClock::new());
    /// assert_eq!(ok.unwrap().capacity(), 8);
    /// let bad = KeyedCircuitBreaker::<u32>::new(Config::new(), 8, TokioClock::new());
    /// assert_eq!(bad.err(), Some(ConfigError::NoTripPolicy));
    /// # }
    /// ```
    pub fn new(config: Config, capacity: usize, clock: C) -> Result<Self, ConfigError> {
        Self::with_window(config, NoWindow, capacity, clock)
    }
}

impl<Key: Hash + Eq + Clone, C: Clock + Clone, W: Window + Clone> KeyedCircuitBreaker<Key, C, W> {
    /// A table of at most `capacity` breakers measuring rates over `window`
    /// ([`CountWindow`](bulwark::circuit_breaker::CountWindow),
    /// [`TimeWindow`](bulwark::circuit_breaker::TimeWindow)).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration a breaker cannot run with.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, CountWindow, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::with_window(
    ///     Config::new().failure_rate(50).minimum_calls(2), CountWindow::<10>, 16, TokioClock::new(),
    /// ).unwrap();
    /// t.breaker(&1).try_acquire().unwrap().success();
    /// t.breaker(&1).try_acquire().unwrap().failure(); // 50 % of 2 calls
    /// assert_eq!(t.state(&1), Some(State::Open));
    /// # }
    /// ```
    pub fn with_window(
        config: Config,
        window: W,
        capacity: usize,
        clock: C,
    ) -> Result<Self, ConfigError> {
        let overflow = Arc::new(CircuitBreaker::with_window(
            config,
            window.clone(),
            clock.clone(),
        )?);
        Ok(KeyedCircuitBreaker {
            config,
            window,
            clock,
            capacity,
            table: RwLock::new(HashMap::with_capacity(capacity.min(4096))),
            overflow,
            tick: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
        })
    }

    /// The breaker of `key`: its own (made now if the key is new, evicting another as the
    /// type's docs say when the table is full), or the overflow breaker.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(2), 4, TokioClock::new()).unwrap();
    /// assert!(Arc::ptr_eq(&t.breaker(&"x"), &t.breaker(&"x"))); // one breaker per key
    /// assert!(!Arc::ptr_eq(&t.breaker(&"x"), &t.breaker(&"y")));
    /// assert_eq!(t.len(), 2);
    /// # }
    /// ```
    pub fn breaker(&self, key: &Key) -> Arc<CircuitBreaker<C, W>> {
        self.tracked(key).unwrap_or_else(|| {
            self.overflows.fetch_add(1, Ordering::Relaxed);
            Arc::clone(&self.overflow)
        })
    }

    /// The breaker of `key` if the table holds it or can make room for it (as
    /// [`breaker`](KeyedCircuitBreaker::breaker) does), or `None` where `breaker` would
    /// answer with the overflow breaker: for a caller that lets such a key's calls through
    /// untracked rather than share one breaker between keys. Counts no overflow. Takes any
    /// borrowed form of the key (a `&str` for a `String` key), owned only if it is added.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 1, TokioClock::new()).unwrap();
    /// t.tracked(&1).unwrap().try_acquire().unwrap().failure(); // key 1 opens, and keeps its place
    /// assert!(t.tracked(&2).is_none());
    /// assert_eq!((t.state(&1), t.overflows()), (Some(State::Open), 0));
    /// # }
    /// ```
    pub fn tracked<Q>(&self, key: &Q) -> Option<Arc<CircuitBreaker<C, W>>>
    where
        Key: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = Key> + ?Sized,
    {
        {
            let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = table.get(key) {
                self.touch(e);
                return Some(Arc::clone(&e.breaker));
            }
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = table.get(key) {
            // Another call inserted it between the two locks.
            self.touch(e);
            return Some(Arc::clone(&e.breaker));
        }
        // Cannot fail: the configuration was validated when the overflow breaker was built.
        // Built before anything is evicted all the same, so that a failure loses no entry.
        let breaker =
            CircuitBreaker::with_window(self.config, self.window.clone(), self.clock.clone())
                .ok()?;
        if table.len() >= self.capacity {
            let old = self.victim(&table)?;
            table.remove::<Key>(&old);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        let breaker = Arc::new(breaker);
        table.insert(
            key.to_owned(),
            Entry {
                breaker: Arc::clone(&breaker),
                used: AtomicU64::new(self.tick.fetch_add(1, Ordering::Relaxed) + 1),
            },
        );
        Some(breaker)
    }

    /// Marks `e` the most recently used entry. An entry that already is (the one key of a
    /// hot path, called again and again) is only read: calls on it write no word that
    /// every call of the table shares.
    #[inline]
    fn touch(&self, e: &Entry<C, W>) {
        if e.used.load(Ordering::Relaxed) != self.tick.load(Ordering::Relaxed) {
            e.used.store(
                self.tick.fetch_add(1, Ordering::Relaxed) + 1,
                Ordering::Relaxed,
            );
        }
    }

    /// The entry to evict for a new key, if one may go (see the type's docs).
    fn victim(&self, table: &HashMap<Key, Entry<C, W>>) -> Option<Key> {
        table
            .iter()
            .filter_map(|(key, e)| {
                // The stored state (`state()` would report an open breaker whose time is up
                // as half-open, what its next call finds): no probe of it is in flight.
                let stored = e.breaker.snapshot();
                let tier = match stored.state {
                    s if s.admits_all() => 0,
                    State::Open if stored.open_remaining.is_zero() => 1,
                    _ => return None,
                };
                Some(((tier, e.used.load(Ordering::Relaxed)), key))
            })
            .min_by_key(|&(rank, _)| rank)
            .map(|(_, key)| key.clone())
    }

    /// The state of `key`'s breaker, or `None` for a key the table does not hold (never
    /// seen, evicted, or sharing the overflow breaker). Looked up by any borrowed form of
    /// the key (a `&str` for a `String` key), as a `HashMap` is.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::<String>::new(Config::new().consecutive_failures(3), 4, TokioClock::new()).unwrap();
    /// assert_eq!(t.state("a.example"), None);
    /// drop(t.breaker(&"a.example".to_string()));
    /// assert_eq!(t.state("a.example"), Some(State::Closed)); // a `&str` finds a `String` key
    /// # }
    /// ```
    pub fn state<Q>(&self, key: &Q) -> Option<State>
    where
        Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.get(key).map(|e| e.breaker.state())
    }

    /// Every key the table holds, with its breaker's state (in no particular order): for a
    /// status page.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 4, TokioClock::new()).unwrap();
    /// t.breaker(&"down").try_acquire().unwrap().failure();
    /// t.breaker(&"up").try_acquire().unwrap().success();
    /// let mut states = t.states();
    /// states.sort_by_key(|&(k, _)| k);
    /// assert_eq!(states, [("down", State::Open), ("up", State::Closed)]);
    /// # }
    /// ```
    pub fn states(&self) -> Vec<(Key, State)> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table
            .iter()
            .map(|(k, e)| (k.clone(), e.breaker.state()))
            .collect()
    }
}

impl<Key, C, W: Window> KeyedCircuitBreaker<Key, C, W> {
    /// Keys the table holds now.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 2, TokioClock::new()).unwrap();
    /// for k in 0..5 { drop(t.breaker(&k)); }
    /// assert_eq!((t.len(), t.evictions()), (2, 3)); // closed breakers make room
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// `true` when the table holds no key.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::<u8>::new(Config::new().consecutive_failures(1), 2, TokioClock::new()).unwrap();
    /// assert!(t.is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys the table holds.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::<u8>::new(Config::new().consecutive_failures(1), 32, TokioClock::new()).unwrap();
    /// assert_eq!(t.capacity(), 32);
    /// # }
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Breakers evicted so far to make room for a new key.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 1, TokioClock::new()).unwrap();
    /// drop(t.breaker(&1));
    /// drop(t.breaker(&2)); // 1 was closed: evicted
    /// assert_eq!(t.evictions(), 1);
    /// # }
    /// ```
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Times a new key was sent to the overflow breaker because every breaker in the table
    /// was open, half-open or forced open.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 1, TokioClock::new()).unwrap();
    /// t.breaker(&1).try_acquire().unwrap().failure(); // key 1 is open: it stays
    /// assert!(Arc::ptr_eq(&t.breaker(&2), t.overflow()));
    /// assert_eq!((t.overflows(), t.state(&1)), (1, Some(State::Open)));
    /// # }
    /// ```
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// The breaker shared by the keys that do not fit (see the type's docs).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_tokio::{TokioClock, tower::KeyedCircuitBreaker};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::<u8>::new(Config::new().consecutive_failures(1), 0, TokioClock::new()).unwrap();
    /// t.breaker(&7).try_acquire().unwrap().failure(); // capacity 0: every key overflows
    /// assert_eq!(t.overflow().state(), State::Open);
    /// # }
    /// ```
    pub fn overflow(&self) -> &Arc<CircuitBreaker<C, W>> {
        &self.overflow
    }
}

impl<Key, C, W: Window> std::fmt::Debug for KeyedCircuitBreaker<Key, C, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCircuitBreaker")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("evictions", &self.evictions())
            .field("overflows", &self.overflows())
            .finish_non_exhaustive()
    }
}

/// The breaker of the request's key ([`KeyedCircuitBreaker::breaker`]).
impl<Key, C, W> KeyedGate<Key> for KeyedCircuitBreaker<Key, C, W>
where
    Key: Hash + Eq + Clone,
    C: Clock + Clone,
    W: Window + Clone,
{
    type Owner = Arc<CircuitBreaker<C, W>>;
    type Rejected = Rejected;

    #[inline]
    fn admit_key(&self, key: &Key) -> Result<Permit<Self::Owner>, Rejected> {
        Permit::try_new(self.breaker(key))
    }
}

// ===== the layer and the service =====

/// Puts services behind a shared table of per-key gates ([`KeyedGate`]): a
/// [`KeyedRateLimiter`] or a [`KeyedCircuitBreaker`]. `key` takes the key from each request
/// (`Fn(&Req) -> Key`: a route, a client address, a tenant header). A rejected call is
/// answered at once with the gate's rejection, boxed ([`RateLimited`] or [`Rejected`], the
/// same types a plain limiter or breaker gives); an admitted call holds its key's permit
/// until its response is ready, and `K` judges the response for a breaker.
///
/// The table is held through an `Arc`: every service the layer builds, their clones and the
/// calls in flight share it.
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, KeyedRateLimiter, RateLimited};
/// use bulwark_tokio::{TokioClock, tower::KeyedRateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // One token a second per tenant; the request is (tenant, body).
/// let per_tenant: KeyedRateLimiter<String, _, 64> =
///     KeyedRateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap();
/// let layer = KeyedRateLimitLayer::new(per_tenant, |req: &(String, u32)| req.0.clone());
/// let svc = layer.layer(service_fn(|(_, n): (String, u32)| async move { Ok::<_, std::io::Error>(n) }));
/// assert_eq!(svc.clone().oneshot(("acme".into(), 1)).await.unwrap(), 1);
/// let err = svc.clone().oneshot(("acme".into(), 2)).await.unwrap_err();
/// assert!(err.downcast_ref::<RateLimited>().is_some());
/// assert_eq!(svc.oneshot(("globex".into(), 3)).await.unwrap(), 3); // its own bucket
/// # }
/// ```
pub struct KeyedLayer<T, F, K = ErrorsAreFailures> {
    table: Arc<T>,
    key: F,
    classify: K,
}

/// A rate limiter per key as a layer: [`KeyedLayer`] over a [`KeyedRateLimiter`]. It sheds
/// at once.
pub type KeyedRateLimitLayer<Key, F, const N: usize, C = TokioClock, L = bulwark::lock::SpinLock> =
    KeyedLayer<KeyedRateLimiter<Key, C, N, L>, F>;
/// A circuit breaker per key as a layer: [`KeyedLayer`] over a [`KeyedCircuitBreaker`].
pub type KeyedCircuitBreakerLayer<Key, F, C = TokioClock, W = NoWindow, K = ErrorsAreFailures> =
    KeyedLayer<KeyedCircuitBreaker<Key, C, W>, F, K>;

impl<T, F> KeyedLayer<T, F> {
    /// A layer around the table `gates`, keyed by `key`; errors of the inner service are
    /// failures (for a breaker).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, Rejected, State};
    /// use bulwark_tokio::{TokioClock, tower::{KeyedCircuitBreaker, KeyedCircuitBreakerLayer}};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let per_host = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 16, TokioClock::new()).unwrap();
    /// let layer = KeyedCircuitBreakerLayer::new(per_host, |host: &&'static str| *host);
    /// let svc = layer.layer(service_fn(|host: &'static str| async move {
    ///     if host == "down.example" { Err("503") } else { Ok(host.len()) }
    /// }));
    /// assert!(svc.clone().oneshot("down.example").await.is_err()); // opens its breaker
    /// let err = svc.clone().oneshot("down.example").await.unwrap_err();
    /// assert!(err.downcast_ref::<Rejected>().is_some());
    /// assert_eq!(svc.oneshot("up.example").await.unwrap(), 10); // another host: closed
    /// assert_eq!(layer.gates().state(&"down.example"), Some(State::Open));
    /// # }
    /// ```
    pub fn new(gates: T, key: F) -> Self {
        Self::shared(Arc::new(gates), key)
    }

    /// A layer around a table already shared (with another layer, or with a status page).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::KeyedRateLimitLayer};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let table: Arc<KeyedRateLimiter<u32, _, 8>> =
    ///     Arc::new(KeyedRateLimiter::new(Config::per_second(5), TokioClock::new()).unwrap());
    /// let layer = KeyedRateLimitLayer::shared(Arc::clone(&table), |n: &u32| *n % 2);
    /// assert!(Arc::ptr_eq(layer.gates(), &table));
    /// # }
    /// ```
    pub fn shared(gates: Arc<T>, key: F) -> Self {
        KeyedLayer {
            table: gates,
            key,
            classify: ErrorsAreFailures,
        }
    }
}

impl<T, F, K> KeyedLayer<T, F, K> {
    /// The same layer with `classify` judging each response for the key's gate (it matters
    /// to a breaker).
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State, Verdict};
    /// use bulwark_tokio::{TokioClock, tower::{KeyedCircuitBreaker, KeyedCircuitBreakerLayer}};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::new(Config::new().consecutive_failures(1), 4, TokioClock::new()).unwrap();
    /// // A "not found" is the caller's business, not a failure of the key's downstream.
    /// let layer = KeyedCircuitBreakerLayer::new(t, |k: &u8| *k).classify(|r: &Result<(), &str>| match r {
    ///     Err("not found") => Verdict::Ignore,
    ///     Err(_) => Verdict::FAILURE,
    ///     Ok(()) => Verdict::Success,
    /// });
    /// let svc = layer.layer(service_fn(|_: u8| async { Err::<(), _>("not found") }));
    /// let _ = svc.oneshot(1).await;
    /// assert_eq!(layer.gates().state(&1), Some(State::Closed));
    /// # }
    /// ```
    pub fn classify<K2>(self, classify: K2) -> KeyedLayer<T, F, K2> {
        KeyedLayer {
            table: self.table,
            key: self.key,
            classify,
        }
    }

    /// The table of gates.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::KeyedRateLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t: KeyedRateLimiter<u8, _, 8> = KeyedRateLimiter::new(Config::per_second(5), TokioClock::new()).unwrap();
    /// let layer = KeyedRateLimitLayer::new(t, |n: &u8| *n);
    /// assert_eq!(layer.gates().available(&1), 5);
    /// # }
    /// ```
    pub fn gates(&self) -> &Arc<T> {
        &self.table
    }
}

impl<T, F: Clone, K: Clone> Clone for KeyedLayer<T, F, K> {
    fn clone(&self) -> Self {
        KeyedLayer {
            table: Arc::clone(&self.table),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<T, F, K> std::fmt::Debug for KeyedLayer<T, F, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLayer").finish_non_exhaustive()
    }
}

impl<Svc, T, F: Clone, K: Clone> Layer<Svc> for KeyedLayer<T, F, K> {
    type Service = KeyedService<Svc, T, F, K>;
    fn layer(&self, inner: Svc) -> Self::Service {
        KeyedService {
            inner,
            table: Arc::clone(&self.table),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// A service behind a shared table of per-key gates. Built by [`KeyedLayer`]; clones share
/// the table.
///
/// Readiness is the inner service's: the key's gate is asked in `call`.
///
/// ```
/// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
/// use bulwark_tokio::{TokioClock, tower::KeyedRateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let t: KeyedRateLimiter<u8, _, 8> = KeyedRateLimiter::new(Config::per_second(1).burst(1), TokioClock::new()).unwrap();
/// let svc = KeyedRateLimitLayer::new(t, |n: &u8| *n).layer(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }));
/// let clone = svc.clone();
/// assert_eq!(clone.oneshot(4).await.unwrap(), 4);
/// assert!(svc.clone().oneshot(4).await.is_err()); // the clone spent key 4's token
/// assert_eq!(svc.gates().available(&4), 0);
/// # }
/// ```
pub struct KeyedService<Svc, T, F, K = ErrorsAreFailures> {
    inner: Svc,
    table: Arc<T>,
    key: F,
    classify: K,
}

impl<Svc, T, F, K> KeyedService<Svc, T, F, K> {
    /// The table of gates.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_tokio::{TokioClock, tower::{KeyedCircuitBreaker, KeyedCircuitBreakerLayer}};
    /// use tower::{Layer, service_fn};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = KeyedCircuitBreaker::<u8>::new(Config::new().consecutive_failures(1), 4, TokioClock::new()).unwrap();
    /// let svc = KeyedCircuitBreakerLayer::new(t, |n: &u8| *n).layer(service_fn(|_: u8| async { Ok::<_, std::io::Error>(()) }));
    /// assert!(svc.gates().is_empty());
    /// # }
    /// ```
    pub fn gates(&self) -> &Arc<T> {
        &self.table
    }

    /// The inner service.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark_tokio::{TokioClock, tower::KeyedRateLimitLayer};
    /// use tower::Layer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t: KeyedRateLimiter<u8, _, 8> = KeyedRateLimiter::new(Config::per_second(1), TokioClock::new()).unwrap();
    /// let svc = KeyedRateLimitLayer::new(t, |n: &u8| *n).layer(vec![1u8]);
    /// assert_eq!(svc.get_ref().len(), 1);
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Svc {
        &self.inner
    }
}

impl<Svc: Clone, T, F: Clone, K: Clone> Clone for KeyedService<Svc, T, F, K> {
    fn clone(&self) -> Self {
        KeyedService {
            inner: self.inner.clone(),
            table: Arc::clone(&self.table),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<Svc, T, F, K> std::fmt::Debug for KeyedService<Svc, T, F, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedService").finish_non_exhaustive()
    }
}

impl<Svc, Req, T, F, Key, K> Service<Req> for KeyedService<Svc, T, F, K>
where
    Svc: Service<Req>,
    Svc::Error: Into<BoxError>,
    F: Fn(&Req) -> Key,
    T: KeyedGate<Key>,
    K: Classify<Svc::Response, Svc::Error> + Clone,
{
    type Response = Svc::Response;
    type Error = BoxError;
    type Future = GateFuture<Svc::Future, T::Owner, T::Rejected, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        match self.table.admit_key(&key) {
            Ok(permit) => GateFuture::admitted(self.inner.call(req), permit, self.classify.clone()),
            Err(rejected) => GateFuture::rejected(rejected, self.classify.clone()),
        }
    }
}
