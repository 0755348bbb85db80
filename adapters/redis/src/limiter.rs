//! [`RedisRateLimiter`]: the shared GCRA, its self-protection and its degradation.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark::admission::{Outcome, Permit};
use bulwark::circuit_breaker::CircuitBreaker;
use bulwark::rate_limiter::{Denied, Gcra, InsufficientCapacity, KeyedRateLimiter, RateLimited};
use bulwark::{Clock, Instant, Sleep};
use bulwark_tokio::TokioClock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::alarm::Alarms;
use crate::config::{Config, Degradation, Event, TimeSource};
use crate::error::{Cause, ConfigError, Error};
use crate::script::{self, Reply};
use redis::Value;

/// How many keys the local fallback ([`Degradation::Local`]) remembers: a fixed table of the
/// core's keyed limiter, built only when that degradation is chosen. Beyond it, the least
/// recently used spent key is forgotten (and may get one extra burst while degraded).
///
/// ```
/// assert_eq!(bulwark_redis::LOCAL_KEYS, 1024);
/// ```
pub const LOCAL_KEYS: usize = 1024;

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Counts of answers ([`RedisRateLimiter::totals`]): who answered the checks.
///
/// ```
/// let t = bulwark_redis::Totals { redis: 3, degraded: 1 };
/// assert_eq!(t.redis + t.degraded, 4);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Checks Redis answered (a pass, a rejection, or an error reply such as a key of
    /// another type).
    pub redis: u64,
    /// Checks the [`Degradation`] answered (Redis unreachable, slow, or its breaker open).
    pub degraded: u64,
}

/// A rate limit shared by every instance of a fleet, kept in Redis (or Valkey) by one Lua
/// GCRA script: the same answers as the core's
/// [`KeyedRateLimiter`](bulwark::rate_limiter::KeyedRateLimiter), for every process that
/// uses the same Redis and key prefix.
///
/// * **One round trip per check**: `EVALSHA` of a script loaded once (`SCRIPT LOAD`, again
///   after a `NOSCRIPT` answer, e.g. after a restart or `SCRIPT FLUSH`) on one multiplexed
///   connection that reconnects ([`ConnectionManager`]).
/// * **Same semantics as the core**: per key, take `n`; a rejection carries the exact
///   earliest instant it would pass; `n` above the burst is its own error and asks nothing of
///   Redis; `n = 0` passes; an idle key accrues at most the burst. Each key lives in Redis
///   until its bucket is full again (`SET … PX`), so Redis holds only the keys in use.
/// * **Time**: Redis `TIME` by default ([`TimeSource::Server`]), or the local clock
///   ([`TimeSource::Caller`], for tests on a [`MockClock`](bulwark::MockClock)).
/// * **Self-protection**: every check is bounded by a bulwark timeout and passes a bulwark
///   circuit breaker; when Redis cannot answer the [`Degradation`] answers (fail open, fail
///   closed, or an in-process share of the quota), and an [`Event`] reports the switch and
///   the recovery ([`on_event`](RedisRateLimiter::on_event),
///   [`is_degraded`](RedisRateLimiter::is_degraded)).
///
/// Clones share everything (one `Arc`).
///
/// # The admission trait
///
/// The core's [`Admit`](bulwark::admission::Admit) is synchronous (a gate answers without
/// waiting), so a check that needs a network round trip cannot implement it. The Redis
/// limiter offers the same vocabulary as an async pair instead —
/// [`try_acquire`](RedisRateLimiter::try_acquire) never waits for tokens,
/// [`acquire`](RedisRateLimiter::acquire) waits up to the limit's max wait — and its
/// [`Error`] implements [`RetryHint`](bulwark::admission::RetryHint), so a retry around it
/// reads the same hint as around any gate. In a tower stack use
/// [`RedisRateLimitLayer`](crate::RedisRateLimitLayer). In a
/// [`Pipeline`](bulwark::pipeline::Pipeline), check first in the operation and classify the
/// rejection: [`Verdict::Ignore`](bulwark::classify::Verdict::Ignore) answers it at once
/// (load shedding, as the pipeline answers a saturated in-process limiter by default);
/// `Verdict::Failure { retry_after: Some(r.retry_after) }` makes the pipeline's retry wait
/// it out within its deadline.
///
/// ```no_run
/// use bulwark::classify::Verdict;
/// use bulwark::pipeline::Pipeline;
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark::retry::Config as Retry;
/// use bulwark_redis::{Config, Error, RedisRateLimiter};
/// use bulwark_tokio::TokioClock;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
/// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(50))).unwrap();
/// let pipeline = Pipeline::new(TokioClock::new(), Retry::new().max_attempts(3))
///     .unwrap()
///     .classify(|r: &Result<u32, Error>| match r {
///         Ok(_) => Verdict::Success,
///         Err(Error::RateLimited(_) | Error::InsufficientCapacity(_)) => Verdict::Ignore,
///         Err(_) => Verdict::FAILURE,
///     });
/// let answer = pipeline
///     .call(|| async {
///         limiter.try_acquire("user:42", 1).await?;
///         Ok::<u32, Error>(42) // the operation itself
///     })
///     .await;
/// # let _ = answer;
/// # }
/// ```
///
/// # Examples
///
/// ```no_run
/// use bulwark::rate_limiter::Config as Limit;
/// use bulwark_redis::{Config, Degradation, RedisRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limit = Limit::per_second(100).burst(20);
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let limiter = RedisRateLimiter::new(
///     client,
///     Config::new(limit).degradation(Degradation::local_share(limit, 8)?),
/// )?;
/// limiter.on_event(|e| eprintln!("{e}"));
/// match limiter.try_acquire("user:42", 1).await {
///     Ok(()) => { /* serve */ }
///     Err(e) => eprintln!("{e}; retry after {:?}", e.retry_after()),
/// }
/// # Ok(())
/// # }
/// ```
pub struct RedisRateLimiter<C = TokioClock> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    conn: ConnectionManager,
    script: redis::Script,
    gcra: Gcra,
    max_wait: Duration,
    prefix: String,
    time: TimeSource,
    slack_ms: u64,
    timeout: Duration,
    /// The timers of the checks' timeouts.
    alarms: Alarms,
    clock: C,
    breaker: CircuitBreaker<C>,
    degradation: Degradation,
    local: Option<Box<KeyedRateLimiter<String, C, LOCAL_KEYS>>>,
    degraded: AtomicBool,
    hook: Mutex<Option<Hook>>,
    redis_answers: AtomicU64,
    degraded_answers: AtomicU64,
}

impl<C> Clone for RedisRateLimiter<C> {
    fn clone(&self) -> Self {
        RedisRateLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for RedisRateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.inner.prefix)
            .field("gcra", &self.inner.gcra)
            .field("time", &self.inner.time)
            .field("degradation", &self.inner.degradation)
            .field("degraded", &self.inner.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter<TokioClock> {
    /// A limiter on `client`'s server, with the tokio clock for its breaker, its local
    /// fallback and the retry instants it reports. Connects lazily: building it needs no
    /// server (a server that is down at start-up is a degradation, not a start-up failure).
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field at fault.
    ///
    /// ```
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let client = redis::Client::open("redis://127.0.0.1:1/").unwrap(); // nothing listens
    /// let limiter = RedisRateLimiter::new(client.clone(), Config::new(Limit::per_second(10))).unwrap();
    /// assert!(limiter.try_acquire("k", 1).await.is_ok()); // fails open by default
    /// assert!(limiter.is_degraded());
    /// let bad = RedisRateLimiter::new(client, Config::new(Limit::per_second(0)));
    /// assert_eq!(bad.unwrap_err().field(), "limit");
    /// # }
    /// ```
    pub fn new(client: redis::Client, cfg: Config) -> Result<Self, ConfigError> {
        Self::with_clock(client, cfg, TokioClock::new())
    }
}

impl<C: Clock + Clone> RedisRateLimiter<C> {
    /// A limiter whose local clock is `clock`: it times the breaker around Redis, runs the
    /// local fallback, and is "now" for [`TimeSource::Caller`]. Retry instants in its errors
    /// are on this clock. Connects lazily; must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field at fault (`client` outside a tokio runtime).
    ///
    /// ```
    /// use bulwark::MockClock;
    /// use bulwark::rate_limiter::Config as Limit;
    /// use bulwark_redis::{Config, RedisRateLimiter, TimeSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// static CLOCK: MockClock = MockClock::new();
    /// let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let cfg = Config::new(Limit::per_second(10)).time(TimeSource::Caller);
    /// let limiter = RedisRateLimiter::with_clock(client, cfg, &CLOCK).unwrap();
    /// # let _ = limiter;
    /// # }
    /// ```
    pub fn with_clock(client: redis::Client, cfg: Config, clock: C) -> Result<Self, ConfigError> {
        let gcra = cfg.checked()?;
        // redis-rs spawns its connection tasks on the current runtime (and would panic
        // without one).
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::new(
                "client",
                "the limiter must be built within a tokio runtime",
            ));
        }
        let breaker = CircuitBreaker::new(cfg.breaker, clock.clone())
            .map_err(|e| ConfigError::new("breaker", e))?;
        let local = match cfg.degradation {
            Degradation::Local(limit) => Some(Box::new(
                KeyedRateLimiter::new(limit, clock.clone())
                    .map_err(|e| ConfigError::new("degradation", e))?,
            )),
            _ => None,
        };
        // Connection attempts are bounded by the check's timeout; one attempt per check
        // (redis-rs's own reconnect backoff would outlive it), no response timeout of its
        // own (the check's timeout is the one bound).
        let manager = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(cfg.timeout))
            .set_response_timeout(None);
        let conn = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| ConfigError::new("client", e))?;
        Ok(RedisRateLimiter {
            inner: Arc::new(Inner {
                conn,
                script: redis::Script::new(script::SOURCE),
                gcra,
                max_wait: cfg.limit.max_wait_time(),
                prefix: cfg.prefix,
                time: cfg.time,
                // Whole milliseconds, rounded up; at most a year (checked).
                slack_ms: u64::try_from(cfg.expiry_slack.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(u64::MAX),
                timeout: cfg.timeout,
                alarms: Alarms::default(),
                clock,
                breaker,
                degradation: cfg.degradation,
                local,
                degraded: AtomicBool::new(false),
                hook: Mutex::new(None),
                redis_answers: AtomicU64::new(0),
                degraded_answers: AtomicU64::new(0),
            }),
        })
    }

    /// Calls `hook` on every switch to degraded ([`Event::Degraded`], with its cause) and
    /// back ([`Event::Recovered`]); replaces an earlier hook. The hook runs inside the check
    /// that noticed the switch: keep it short (log, count, set a flag).
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, Event, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// limiter.on_event(move |e: &Event| tx.send(e.clone()).unwrap());
    /// let _ = limiter.try_acquire("k", 1).await; // nothing listens on port 1
    /// assert!(matches!(rx.try_recv(), Ok(Event::Degraded(_))));
    /// # }
    /// ```
    pub fn on_event(&self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        let mut slot = self
            .inner
            .hook
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(Arc::new(hook));
    }

    /// Whether checks are answered by the degradation now (the last check could not reach
    /// Redis, or its breaker is open).
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// assert!(!limiter.is_degraded()); // nothing known yet
    /// # }
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Acquire)
    }

    /// How many checks Redis answered and how many the degradation answered since the
    /// limiter was built (`n = 0` and above-burst checks ask nobody and count in neither).
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter, Totals};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// let _ = limiter.try_acquire("k", 1).await; // nothing listens on port 1
    /// assert_eq!(limiter.totals(), Totals { redis: 0, degraded: 1 });
    /// # }
    /// ```
    pub fn totals(&self) -> Totals {
        Totals {
            redis: self.inner.redis_answers.load(Ordering::Relaxed),
            degraded: self.inner.degraded_answers.load(Ordering::Relaxed),
        }
    }

    /// The limiter's local clock.
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// assert_eq!(*limiter.clock(), bulwark_tokio::TokioClock::new());
    /// # }
    /// ```
    pub fn clock(&self) -> &C {
        &self.inner.clock
    }

    /// The limiter's connection: a clone of its [`ConnectionManager`] (the same
    /// multiplexed connection, reconnecting), for a health check or a `PING` beside the
    /// checks. Commands sent on it are not guarded by the limiter's timeout or breaker.
    ///
    /// ```no_run
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// let pong: String = redis::cmd("PING").query_async(&mut limiter.connection()).await.unwrap();
    /// assert_eq!(pong, "PONG");
    /// # }
    /// ```
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The Redis key that holds `key`'s bucket: the prefix, then the key.
    ///
    /// ```
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10)).prefix("api:")).unwrap();
    /// assert_eq!(limiter.redis_key("user:7"), "api:user:7");
    /// # }
    /// ```
    pub fn redis_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + key.len());
        k.push_str(&self.inner.prefix);
        k.push_str(key);
        k
    }

    /// Loads the script into Redis now (`SCRIPT LOAD`), so the first check costs one round
    /// trip: a readiness probe for start-up. Checks load it themselves when Redis answers
    /// `NOSCRIPT`, so calling this is optional.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis cannot be reached within the timeout,
    /// [`Error::Redis`] when it refuses.
    ///
    /// ```no_run
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(10))).unwrap();
    /// limiter.preload().await.expect("Redis is up");
    /// # }
    /// ```
    pub async fn preload(&self) -> Result<(), Error> {
        let mut conn = self.inner.conn.clone();
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(script::SOURCE);
        let load = cmd.query_async::<String>(&mut conn);
        match bulwark::timeout::timeout(TokioClock::new(), self.inner.timeout, load).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if unavailable(&e) => {
                Err(Error::Unavailable(Cause::Unreachable(e.to_string())))
            }
            Ok(Err(e)) => Err(Error::Redis(e.to_string())),
            Err(_) => Err(Error::Unavailable(Cause::Timeout(self.inner.timeout))),
        }
    }

    /// Takes `n` tokens for `key` now, all or none, in one round trip. Never waits for
    /// tokens (only, at most the timeout, for Redis).
    ///
    /// `n = 0` passes and `n` above the burst is [`Error::InsufficientCapacity`], both
    /// without asking Redis (as the core). When Redis cannot answer, the
    /// [`Degradation`] answers.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] with the exact instant the call would pass (on the local
    /// clock), [`Error::InsufficientCapacity`], [`Error::Unavailable`] (failing closed),
    /// [`Error::Redis`] (Redis refused the script: a key of another type, say).
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the request; if Redis already ran the script the tokens
    /// are taken.
    ///
    /// ```no_run
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, Error, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(2))).unwrap();
    /// assert!(limiter.try_acquire("k", 2).await.is_ok());
    /// assert!(matches!(limiter.try_acquire("k", 1).await, Err(Error::RateLimited(_))));
    /// assert!(matches!(limiter.try_acquire("k", 3).await, Err(Error::InsufficientCapacity(_))));
    /// # }
    /// ```
    pub async fn try_acquire(&self, key: &str, n: u32) -> Result<(), Error> {
        let inner = &*self.inner;
        if let Some(answer) = self.without_redis(n) {
            return answer;
        }
        let permit = match Permit::try_new(&inner.breaker) {
            Ok(p) => p,
            Err(r) => return self.degrade(key, n, breaker_open(r)),
        };
        let now = self.now_arg();
        let args = self.args(n, now);
        let key_in_redis = self.redis_key(key);
        let call = self.eval(&key_in_redis, &args);
        match bulwark::timeout::timeout(&inner.alarms, inner.timeout, call).await {
            Ok(Ok(reply)) => {
                permit.success();
                inner.redis_answers.fetch_add(1, Ordering::Relaxed);
                self.set_degraded(false, None);
                self.answer(&reply, now)
            }
            Ok(Err(e)) if unavailable(&e) => {
                permit.failure();
                self.degrade(key, n, Cause::Unreachable(e.to_string()))
            }
            Ok(Err(e)) => {
                // Redis is up and answered: nothing for the breaker to count.
                permit.record(Outcome::Ignored);
                inner.redis_answers.fetch_add(1, Ordering::Relaxed);
                self.set_degraded(false, None);
                Err(Error::Redis(e.to_string()))
            }
            Err(_elapsed) => {
                permit.failure();
                self.degrade(key, n, Cause::Timeout(inner.timeout))
            }
        }
    }

    /// The answer of a check Redis need not see: `n = 0` passes, `n` above the burst never
    /// can (as the core, which checks in that order).
    fn without_redis(&self, n: u32) -> Option<Result<(), Error>> {
        let burst = self.inner.gcra.burst();
        if n == 0 {
            Some(Ok(()))
        } else if n > burst {
            Some(Err(Error::InsufficientCapacity(InsufficientCapacity {
                requested: n,
                burst,
            })))
        } else {
            None
        }
    }

    /// "Now" to send: the local clock's reading for caller time, nothing for server time.
    fn now_arg(&self) -> Option<u64> {
        match self.inner.time {
            TimeSource::Server => None,
            TimeSource::Caller => Some(self.inner.clock.now().as_nanos()),
        }
    }

    /// The script's arguments for `n` tokens (`0 < n ≤ b`).
    fn args(&self, n: u32, now: Option<u64>) -> script::Args {
        let g = &self.inner.gcra;
        // n ≤ b and b·T fits u64 (checked by the config), so n·T does too.
        let inc = g.emission_interval_nanos().saturating_mul(u64::from(n));
        let len = g
            .emission_interval_nanos()
            .saturating_mul(u64::from(g.burst()));
        script::args(now, inc, len, self.inner.slack_ms)
    }

    /// `EVALSHA <sha> 1 <key> <args…>`.
    fn evalsha(&self, key: &str, args: &script::Args) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.inner.script.get_hash()).arg(1).arg(key);
        args.write_to(&mut cmd);
        cmd
    }

    /// Takes tokens for many keys in one round trip (a pipeline of the same script):
    /// for bulk callers (a batch job, a gateway that checks several limits per request).
    /// The answers are in the order of `checks`, each as
    /// [`try_acquire`](RedisRateLimiter::try_acquire) would give it had the checks been made
    /// one after the other (with caller time, all at the one instant read for the batch;
    /// with server time, each at Redis's clock when it runs); the breaker counts the batch
    /// as one call.
    /// Redis runs each check atomically, but other clients' checks may run between two of
    /// a batch's.
    ///
    /// ```no_run
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let limiter = RedisRateLimiter::new(client, Config::new(Limit::per_second(1))).unwrap();
    /// let answers = limiter.try_acquire_many(&[("a", 1), ("b", 1), ("a", 1)]).await;
    /// assert!(answers[0].is_ok() && answers[1].is_ok() && answers[2].is_err());
    /// # }
    /// ```
    pub async fn try_acquire_many<K: AsRef<str>>(
        &self,
        checks: &[(K, u32)],
    ) -> Vec<Result<(), Error>> {
        let inner = &*self.inner;
        let mut out: Vec<Option<Result<(), Error>>> =
            checks.iter().map(|(_, n)| self.without_redis(*n)).collect();
        let asks: Vec<usize> = (0..checks.len()).filter(|&i| out[i].is_none()).collect();
        if !asks.is_empty() {
            let degrade_all = |out: &mut Vec<Option<Result<(), Error>>>, cause: Cause| {
                for &i in &asks {
                    let (key, n) = &checks[i];
                    out[i] = Some(self.degrade(key.as_ref(), *n, cause.clone()));
                }
            };
            match Permit::try_new(&inner.breaker) {
                Err(r) => degrade_all(&mut out, breaker_open(r)),
                Ok(permit) => {
                    let now = self.now_arg();
                    let keys: Vec<String> = asks
                        .iter()
                        .map(|&i| self.redis_key(checks[i].0.as_ref()))
                        .collect();
                    let args: Vec<script::Args> =
                        asks.iter().map(|&i| self.args(checks[i].1, now)).collect();
                    let call = self.eval_many(&keys, &args);
                    match bulwark::timeout::timeout(&inner.alarms, inner.timeout, call).await {
                        Ok(Ok(replies)) => {
                            permit.success();
                            inner
                                .redis_answers
                                .fetch_add(asks.len() as u64, Ordering::Relaxed);
                            self.set_degraded(false, None);
                            for (&i, reply) in asks.iter().zip(replies) {
                                let (key, n) = &checks[i];
                                out[i] = Some(match reply {
                                    Ok(r) => self.answer(&r, now),
                                    Err(e) if unavailable(&e) => self.degrade(
                                        key.as_ref(),
                                        *n,
                                        Cause::Unreachable(e.to_string()),
                                    ),
                                    Err(e) => Err(Error::Redis(e.to_string())),
                                });
                            }
                        }
                        Ok(Err(e)) if unavailable(&e) => {
                            permit.failure();
                            degrade_all(&mut out, Cause::Unreachable(e.to_string()));
                        }
                        Ok(Err(e)) => {
                            permit.record(Outcome::Ignored);
                            inner
                                .redis_answers
                                .fetch_add(asks.len() as u64, Ordering::Relaxed);
                            self.set_degraded(false, None);
                            for &i in &asks {
                                out[i] = Some(Err(Error::Redis(e.to_string())));
                            }
                        }
                        Err(_elapsed) => {
                            permit.failure();
                            degrade_all(&mut out, Cause::Timeout(inner.timeout));
                        }
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Err(Error::Redis(String::from("no answer for this check"))))
            })
            .collect()
    }

    /// One pipeline of `EVALSHA`s; the ones answered `NOSCRIPT` (they did not run) again
    /// after `SCRIPT LOAD`. A connection that failed earlier is retried once.
    async fn eval_many(
        &self,
        keys: &[String],
        args: &[script::Args],
    ) -> Result<Vec<redis::RedisResult<Value>>, RedisError> {
        let mut conn = self.inner.conn.clone();
        let pipeline = |which: &mut dyn Iterator<Item = usize>| {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for i in which {
                pipe.add_command(self.evalsha(&keys[i], &args[i]));
            }
            pipe
        };
        let mut reconnected = false;
        let mut results = loop {
            let pipe = pipeline(&mut (0..keys.len()));
            match pipe
                .query_async::<Vec<redis::RedisResult<Value>>>(&mut conn)
                .await
            {
                Ok(r) => break r,
                Err(e) if (e.is_io_error() || e.is_connection_dropped()) && !reconnected => {
                    reconnected = true;
                }
                Err(e) => return Err(e),
            }
        };
        let missing: Vec<usize> = (0..results.len())
            .filter(|&i| {
                matches!(&results[i], Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
            })
            .collect();
        if !missing.is_empty() {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script::SOURCE)
                .query_async::<String>(&mut conn)
                .await?;
            let pipe = pipeline(&mut missing.iter().copied());
            let again = pipe
                .query_async::<Vec<redis::RedisResult<Value>>>(&mut conn)
                .await?;
            for (i, r) in missing.into_iter().zip(again) {
                results[i] = r;
            }
        }
        if results.len() != keys.len() {
            return Err(RedisError::from((
                ErrorKind::Client,
                "the pipeline answered a different number of checks",
            )));
        }
        Ok(results)
    }

    /// `EVALSHA`; on `NOSCRIPT`, `SCRIPT LOAD` and `EVALSHA` again. A connection that failed
    /// earlier is retried once (the connection manager reconnects on the first failure and
    /// the second attempt waits for that), all within the caller's timeout.
    async fn eval(&self, key: &str, args: &script::Args) -> Result<Value, RedisError> {
        let inner = &*self.inner;
        let mut conn = inner.conn.clone();
        let mut reconnected = false;
        let mut reloaded = false;
        loop {
            match self
                .evalsha(key, args)
                .query_async::<Value>(&mut conn)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) && !reloaded => {
                    reloaded = true;
                    redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(script::SOURCE)
                        .query_async::<String>(&mut conn)
                        .await?;
                }
                Err(e) if (e.is_io_error() || e.is_connection_dropped()) && !reconnected => {
                    reconnected = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The script's answer as the core's.
    fn answer(&self, reply: &Value, sent_now: Option<u64>) -> Result<(), Error> {
        let wait = match script::decode(reply) {
            Some(Reply::Pass) => return Ok(()),
            Some(Reply::Wait(wait)) => Some(wait),
            Some(Reply::Never) => None,
            None => {
                return Err(Error::Redis(String::from(
                    "the rate-limit script answered out of range (another script under its SHA?)",
                )));
            }
        };
        let limited = match (sent_now, wait) {
            // Caller time: the instants are the local clock's, exactly as the core's (the
            // script computed `at - now` exactly, and `at` fits u64).
            (Some(now), Some(wait)) => RateLimited::new(
                Instant::from_nanos(now.saturating_add(wait)),
                Instant::from_nanos(now),
            ),
            (Some(now), None) => {
                RateLimited::new(Instant::from_nanos(u64::MAX), Instant::from_nanos(now))
            }
            (None, None) => RateLimited::NEVER,
            // Server time: the wait Redis computed, from the local reading at the answer.
            (None, Some(wait)) => {
                let local = self.inner.clock.now();
                RateLimited::new(local.saturating_add(Duration::from_nanos(wait)), local)
            }
        };
        // Judged against this limiter's quota, as the core's limiters say.
        Err(Error::RateLimited(if limited == RateLimited::NEVER {
            limited
        } else {
            limited.with_quota(self.inner.gcra.quota())
        }))
    }

    /// Answers a check by the degradation, reporting the switch if this is one.
    fn degrade(&self, key: &str, n: u32, cause: Cause) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.degraded_answers.fetch_add(1, Ordering::Relaxed);
        self.set_degraded(true, Some(&cause));
        match inner.degradation {
            Degradation::FailOpen => Ok(()),
            Degradation::FailClosed => Err(Error::Unavailable(cause)),
            Degradation::Local(_) => {
                let Some(local) = &inner.local else {
                    // Built with the limiter whenever the degradation is local.
                    return Err(Error::Unavailable(cause));
                };
                match local.try_acquire_n(&key.to_owned(), n) {
                    Ok(()) => Ok(()),
                    Err(Denied::RateLimited(r)) => Err(Error::RateLimited(r)),
                    // Within the shared burst but above this instance's share of it: it
                    // would pass once Redis is back.
                    Err(Denied::InsufficientCapacity(_)) => Err(Error::Unavailable(cause)),
                }
            }
        }
    }

    fn set_degraded(&self, degraded: bool, cause: Option<&Cause>) {
        let inner = &*self.inner;
        // Cheap read first: the flag changes only on a switch.
        if inner.degraded.load(Ordering::Acquire) == degraded {
            return;
        }
        if inner.degraded.swap(degraded, Ordering::AcqRel) == degraded {
            return; // another check reported this switch
        }
        let hook = inner
            .hook
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            let event = match cause {
                Some(c) if degraded => Event::Degraded(c.clone()),
                _ => Event::Recovered,
            };
            hook(&event);
        }
    }
}

impl<C: Clock + Clone + Sleep> RedisRateLimiter<C> {
    /// Takes `n` tokens for `key`, waiting for them on the local clock up to the limit's
    /// [`max_wait`](bulwark::rate_limiter::Config::max_wait): a rejection whose retry instant
    /// is within the max wait (from the start of the call) sleeps until that instant and
    /// asks again; one beyond it fails at once.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](RedisRateLimiter::try_acquire); [`Error::RateLimited`] when the
    /// tokens would come after the max wait.
    ///
    /// ```no_run
    /// # use bulwark::rate_limiter::Config as Limit;
    /// # use bulwark_redis::{Config, RedisRateLimiter};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// let limit = Limit::per_second(10).burst(1).max_wait(Duration::from_millis(150));
    /// let limiter = RedisRateLimiter::new(client, Config::new(limit)).unwrap();
    /// limiter.acquire("k", 1).await.unwrap();
    /// limiter.acquire("k", 1).await.unwrap(); // waits about 100 ms
    /// # }
    /// ```
    pub async fn acquire(&self, key: &str, n: u32) -> Result<(), Error> {
        let deadline = self.inner.clock.now().saturating_add(self.inner.max_wait);
        loop {
            match self.try_acquire(key, n).await {
                Err(Error::RateLimited(r)) if r.retry_at <= deadline => {
                    self.inner.clock.sleep_until(r.retry_at).await;
                }
                other => return other,
            }
        }
    }
}

/// The cause of a check the breaker turned away.
fn breaker_open(r: bulwark::circuit_breaker::Rejected) -> Cause {
    Cause::BreakerOpen {
        retry_at: r.retry_at,
        retry_after: r.retry_after(),
    }
}

/// Is this failure about Redis's health (degrade), rather than about the request?
fn unavailable(e: &RedisError) -> bool {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return true;
    }
    match e.kind() {
        ErrorKind::Io => true,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        _ => matches!(
            e.code(),
            Some("OOM" | "BUSY" | "LOADING" | "NOREPLICAS" | "MISCONF")
        ),
    }
}
