//! The pool's configuration: how long to wait for a connection and how long connections live.

use core::time::Duration;

use crate::time::Instant;

/// How long a caller may wait for a connection, and how long connections may live.
///
/// Defaults: a 30 s timeout (r2d2's and bb8's), no max lifetime, no max idle time.
///
/// ```
/// use bulwark::pool::Config;
/// use core::time::Duration;
/// const DB: Config = Config::new()
///     .timeout(Duration::from_secs(2))
///     .max_lifetime(Duration::from_secs(1800))
///     .max_idle(Duration::from_secs(600));
/// assert_eq!(DB.timeout_duration(), Duration::from_secs(2));
/// assert_eq!(DB.max_idle_duration(), Some(Duration::from_secs(600)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    timeout: Duration,
    max_lifetime: Option<Duration>,
    max_idle: Option<Duration>,
}

impl Config {
    /// The defaults: a 30 s timeout, connections live and idle forever.
    ///
    /// ```
    /// use bulwark::pool::Config;
    /// assert_eq!(Config::new().max_lifetime_duration(), None);
    /// assert_eq!(Config::new(), Config::default());
    /// ```
    pub const fn new() -> Config {
        Config {
            timeout: Duration::from_secs(30),
            max_lifetime: None,
            max_idle: None,
        }
    }

    /// How long [`super::Pool::acquire`] may take in all: waiting for a free slot *and* opening a
    /// connection. Zero: never wait (a free slot with no idle connection still connects, but
    /// a connect that does not complete on its first poll times out).
    ///
    /// ```
    /// use bulwark::pool::Config;
    /// use core::time::Duration;
    /// assert!(Config::new().timeout(Duration::ZERO).timeout_duration().is_zero());
    /// ```
    pub const fn timeout(mut self, d: Duration) -> Config {
        self.timeout = d;
        self
    }

    /// Connections older than `d` (since they were opened) are discarded when they come back
    /// or are found idle, never handed out.
    ///
    /// ```
    /// use bulwark::pool::Config;
    /// use core::time::Duration;
    /// let c = Config::new().max_lifetime(Duration::from_secs(60));
    /// assert_eq!(c.max_lifetime_duration(), Some(Duration::from_secs(60)));
    /// ```
    pub const fn max_lifetime(mut self, d: Duration) -> Config {
        self.max_lifetime = Some(d);
        self
    }

    /// Connections idle for `d` or longer are discarded instead of handed out.
    ///
    /// ```
    /// use bulwark::pool::Config;
    /// use core::time::Duration;
    /// let c = Config::new().max_idle(Duration::from_secs(5));
    /// assert_eq!(c.max_idle_duration(), Some(Duration::from_secs(5)));
    /// ```
    pub const fn max_idle(mut self, d: Duration) -> Config {
        self.max_idle = Some(d);
        self
    }

    /// The acquire timeout.
    ///
    /// ```
    /// use core::time::Duration;
    /// assert_eq!(bulwark::pool::Config::new().timeout_duration(), Duration::from_secs(30));
    /// ```
    pub const fn timeout_duration(&self) -> Duration {
        self.timeout
    }

    /// The max lifetime, if any.
    ///
    /// ```
    /// assert_eq!(bulwark::pool::Config::new().max_lifetime_duration(), None);
    /// ```
    pub const fn max_lifetime_duration(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// The max idle time, if any.
    ///
    /// ```
    /// assert_eq!(bulwark::pool::Config::new().max_idle_duration(), None);
    /// ```
    pub const fn max_idle_duration(&self) -> Option<Duration> {
        self.max_idle
    }

    /// Whether a connection opened at `created` and last returned at `last_used` may still
    /// be used at `now`. Both limits expire exactly at their length (`>=`).
    pub(super) fn fresh(&self, created: Instant, last_used: Instant, now: Instant) -> bool {
        let lifetime_ok = match self.max_lifetime {
            Some(max) => now.saturating_duration_since(created) < max,
            None => true,
        };
        let idle_ok = match self.max_idle {
            Some(max) => now.saturating_duration_since(last_used) < max,
            None => true,
        };
        lifetime_ok && idle_ok
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}
