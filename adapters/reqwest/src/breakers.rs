//! A circuit breaker per host, in a table of fixed capacity.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark::circuit_breaker::{CircuitBreaker, Config, ConfigError, State};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::KeyedCircuitBreaker;
use reqwest::Url;

/// One host's breaker, as [`HostBreakers`] hands it out.
///
/// ```
/// use bulwark::circuit_breaker::{Config, State};
/// use bulwark_reqwest::{HostBreaker, HostBreakers};
/// use std::sync::Arc;
/// let hosts = HostBreakers::new(4, Config::new().consecutive_failures(2)).unwrap();
/// let b: Arc<HostBreaker> = hosts.breaker_for(&"http://h.test/".parse().unwrap()).unwrap();
/// b.force_open();
/// assert_eq!(hosts.state("h.test:80"), Some(State::ForcedOpen));
/// ```
pub type HostBreaker = CircuitBreaker<TokioClock>;

/// Why a [`HostBreakers`] table could not be built.
///
/// ```
/// use bulwark::circuit_breaker::Config;
/// use bulwark_reqwest::{HostBreakers, HostBreakersError};
/// let e = HostBreakers::new(0, Config::new()).unwrap_err();
/// assert_eq!(e, HostBreakersError::ZeroCapacity);
/// assert_eq!(e.to_string(), "a host breaker table needs room for at least one host");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostBreakersError {
    /// A capacity of zero.
    ZeroCapacity,
    /// The breaker configuration is invalid.
    Config(ConfigError),
}

impl fmt::Display for HostBreakersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostBreakersError::ZeroCapacity => {
                f.write_str("a host breaker table needs room for at least one host")
            }
            HostBreakersError::Config(e) => write!(f, "invalid breaker configuration: {e}"),
        }
    }
}

impl std::error::Error for HostBreakersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostBreakersError::Config(e) => Some(e),
            HostBreakersError::ZeroCapacity => None,
        }
    }
}

/// A circuit breaker for each host a client calls (host = the URL's host and port,
/// `127.0.0.1:8080`, `api.example.com:443`), all with one configuration, in a table of
/// fixed capacity: the memory bound is `capacity` breakers, whatever the client calls.
///
/// A [`KeyedCircuitBreaker`] keyed by host, whose eviction rule it follows:
///
/// **Overflow rule.** When the table is full and a new host comes, the least recently used
/// host whose breaker lets every call through (closed) is evicted: its breaker had nothing
/// to remember. Failing that, the least recently used open breaker whose open time is over
/// and that nobody has called since (its next call would be a probe). A breaker open within
/// its open time, or half-open, is never forgotten to make room: when every host in the
/// table is such a one, the new host goes **untracked**, its calls pass without a breaker
/// (rather than share one with other hosts), and [`untracked`](HostBreakers::untracked)
/// counts them.
///
/// A read lock and a hash lookup per call for a known host; the write lock only for a new
/// one. Never held across a call.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{Config, State};
/// use bulwark_reqwest::HostBreakers;
/// let hosts = HostBreakers::new(2, Config::new().consecutive_failures(1)).unwrap();
/// let a: reqwest::Url = "http://a.test/x".parse().unwrap();
/// let b: reqwest::Url = "http://b.test/".parse().unwrap();
/// let c: reqwest::Url = "http://c.test/".parse().unwrap();
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// hosts.breaker_for(&a).unwrap().try_acquire().unwrap().failure(); // a.test opens
/// hosts.breaker_for(&b).unwrap();
/// assert_eq!(hosts.state("a.test:80"), Some(State::Open));
/// hosts.breaker_for(&c).unwrap(); // full: b.test (closed) makes room, a.test stays
/// assert_eq!(hosts.state("b.test:80"), None);
/// assert_eq!(hosts.state("a.test:80"), Some(State::Open));
/// # });
/// ```
pub struct HostBreakers {
    table: KeyedCircuitBreaker<String, TokioClock>,
    untracked: AtomicU64,
}

impl HostBreakers {
    /// A table for at most `capacity` hosts, each breaker built from `config`.
    ///
    /// # Errors
    ///
    /// [`HostBreakersError::ZeroCapacity`], or the breaker's own [`ConfigError`].
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::HostBreakers;
    /// let hosts = HostBreakers::new(64, Config::new().consecutive_failures(5)).unwrap();
    /// assert_eq!((hosts.capacity(), hosts.len()), (64, 0));
    /// ```
    pub fn new(capacity: usize, config: Config) -> Result<Self, HostBreakersError> {
        if capacity == 0 {
            return Err(HostBreakersError::ZeroCapacity);
        }
        Ok(HostBreakers {
            table: KeyedCircuitBreaker::new(config, capacity, TokioClock::new())
                .map_err(HostBreakersError::Config)?,
            untracked: AtomicU64::new(0),
        })
    }

    /// The key of `url`'s host: `host:port` (the scheme's default port when none is given).
    ///
    /// ```
    /// use bulwark_reqwest::HostBreakers;
    /// let url: reqwest::Url = "https://user@Example.com/path?q".parse().unwrap();
    /// assert_eq!(HostBreakers::key(&url).as_deref(), Some("example.com:443"));
    /// assert_eq!(HostBreakers::key(&"data:text/plain,hi".parse().unwrap()), None);
    /// ```
    pub fn key(url: &Url) -> Option<String> {
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        Some(format!("{host}:{port}"))
    }

    /// The breaker of `url`'s host, added to the table if it is new (see the overflow rule
    /// in the [type docs](HostBreakers)); `None` for a URL without a host, or an untracked
    /// host.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::HostBreakers;
    /// use std::sync::Arc;
    /// let hosts = HostBreakers::new(8, Config::new().consecutive_failures(5)).unwrap();
    /// let one = hosts.breaker_for(&"http://h.test/a".parse().unwrap()).unwrap();
    /// let two = hosts.breaker_for(&"http://h.test/b".parse().unwrap()).unwrap();
    /// assert!(Arc::ptr_eq(&one, &two)); // one breaker per host
    /// ```
    pub fn breaker_for(&self, url: &Url) -> Option<Arc<HostBreaker>> {
        self.breaker_for_host(&Self::key(url)?)
    }

    /// [`breaker_for`](HostBreakers::breaker_for) by the host's key (`host:port`, as
    /// [`key`](HostBreakers::key) writes it), for a caller that already holds it.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::HostBreakers;
    /// use std::sync::Arc;
    /// let hosts = HostBreakers::new(8, Config::new().consecutive_failures(5)).unwrap();
    /// let by_url = hosts.breaker_for(&"http://h.test/a".parse().unwrap()).unwrap();
    /// assert!(Arc::ptr_eq(&by_url, &hosts.breaker_for_host("h.test:80").unwrap()));
    /// ```
    pub fn breaker_for_host(&self, host: &str) -> Option<Arc<HostBreaker>> {
        let breaker = self.table.tracked(host);
        if breaker.is_none() {
            // Relaxed: a statistic.
            self.untracked.fetch_add(1, Ordering::Relaxed);
        }
        breaker
    }

    /// The state of `host`'s breaker (`host:port`, as [`key`](HostBreakers::key) writes it),
    /// if the table holds it.
    ///
    /// ```
    /// use bulwark::circuit_breaker::{Config, State};
    /// use bulwark_reqwest::HostBreakers;
    /// let hosts = HostBreakers::new(8, Config::new().consecutive_failures(5)).unwrap();
    /// assert_eq!(hosts.state("h.test:80"), None);
    /// hosts.breaker_for(&"http://h.test/".parse().unwrap());
    /// assert_eq!(hosts.state("h.test:80"), Some(State::Closed));
    /// ```
    pub fn state(&self, host: &str) -> Option<State> {
        self.table.state(host)
    }

    /// Hosts in the table.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::HostBreakers;
    /// let hosts = HostBreakers::new(8, Config::new().consecutive_failures(5)).unwrap();
    /// hosts.breaker_for(&"http://h.test/".parse().unwrap());
    /// assert_eq!(hosts.len(), 1);
    /// assert!(!hosts.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// `true` when no host has been called yet.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// assert!(bulwark_reqwest::HostBreakers::new(1, Config::new().consecutive_failures(5)).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most hosts the table holds.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// assert_eq!(bulwark_reqwest::HostBreakers::new(3, Config::new().consecutive_failures(5)).unwrap().capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Calls that found the table full of failing hosts and went without a breaker.
    ///
    /// ```
    /// use bulwark::circuit_breaker::Config;
    /// use bulwark_reqwest::HostBreakers;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let hosts = HostBreakers::new(1, Config::new().consecutive_failures(1)).unwrap();
    /// hosts.breaker_for(&"http://a.test/".parse().unwrap()).unwrap().try_acquire().unwrap().failure();
    /// assert!(hosts.breaker_for(&"http://b.test/".parse().unwrap()).is_none());
    /// assert_eq!(hosts.untracked(), 1);
    /// # });
    /// ```
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for HostBreakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBreakers")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("untracked", &self.untracked())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn full_table_evicts_least_recently_used_closed_host() {
        let hosts = HostBreakers::new(3, Config::new().consecutive_failures(1)).unwrap();
        for h in ["http://a.test/", "http://b.test/", "http://c.test/"] {
            hosts.breaker_for(&url(h)).unwrap();
        }
        hosts.breaker_for(&url("http://a.test/")).unwrap(); // a is now the most recent
        hosts.breaker_for(&url("http://d.test/")).unwrap(); // evicts b
        assert_eq!(hosts.state("b.test:80"), None);
        for h in ["a.test:80", "c.test:80", "d.test:80"] {
            assert_eq!(hosts.state(h), Some(State::Closed), "{h}");
        }
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts.untracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn open_breakers_are_never_evicted() {
        let hosts = HostBreakers::new(2, Config::new().consecutive_failures(1)).unwrap();
        for h in ["http://a.test/", "http://b.test/"] {
            let b = hosts.breaker_for(&url(h)).unwrap();
            b.try_acquire().unwrap().failure();
        }
        assert!(hosts.breaker_for(&url("http://c.test/")).is_none());
        assert!(hosts.breaker_for(&url("http://c.test/")).is_none());
        assert_eq!(hosts.untracked(), 2);
        assert_eq!(hosts.state("a.test:80"), Some(State::Open));
        assert_eq!(hosts.state("b.test:80"), Some(State::Open));
        assert_eq!(hosts.state("c.test:80"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_host_nobody_probed_after_its_open_time_makes_room() {
        let config = Config::new()
            .consecutive_failures(1)
            .open_for(std::time::Duration::from_secs(10));
        let hosts = HostBreakers::new(2, config).unwrap();
        for h in ["http://a.test/", "http://b.test/"] {
            let b = hosts.breaker_for(&url(h)).unwrap();
            b.try_acquire().unwrap().failure();
        }
        assert!(hosts.breaker_for(&url("http://c.test/")).is_none());
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        // Both open times are over; a.test, the least recently used, goes.
        assert!(hosts.breaker_for(&url("http://c.test/")).is_some());
        assert_eq!(hosts.state("a.test:80"), None);
        assert_eq!(hosts.state("b.test:80"), Some(State::HalfOpen));
        assert_eq!((hosts.len(), hosts.untracked()), (2, 1));
    }

    #[test]
    fn ports_are_part_of_the_host() {
        assert_eq!(
            HostBreakers::key(&url("http://127.0.0.1:8080/")).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            HostBreakers::key(&url("http://[::1]/")).as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            HostBreakers::new(1, Config::new().consecutive_failures(0)).unwrap_err(),
            HostBreakersError::Config(
                CircuitBreaker::new(Config::new().consecutive_failures(0), TokioClock::new())
                    .unwrap_err()
            )
        );
    }
}
