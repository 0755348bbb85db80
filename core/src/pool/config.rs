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
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

One key per builder method, each a duration as [text](crate::duration): `timeout` (default
`"30s"`), `max_lifetime` and `max_idle` (default: none). An unknown key is an error naming
it.

```
use bulwark::pool::Config;
use core::time::Duration;

let config: Config = toml::from_str(r#"
    timeout = "2s"
    max_lifetime = "30m"
    max_idle = "10m"
"#).unwrap();
let s = Duration::from_secs;
assert_eq!(config, Config::new().timeout(s(2)).max_lifetime(s(1800)).max_idle(s(600)));
assert_eq!(toml::from_str::<Config>("").unwrap(), Config::new());
```
"##
)]
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

/// The file form of [`Config`] (feature `serde`).
#[cfg(feature = "serde")]
mod serde_form {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Config;
    use crate::duration::Text;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Form {
        timeout: Text,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_lifetime: Option<Text>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_idle: Option<Text>,
    }

    impl Default for Form {
        fn default() -> Self {
            Form::from(&Config::new())
        }
    }

    impl From<&Config> for Form {
        fn from(c: &Config) -> Form {
            Form {
                timeout: Text(c.timeout),
                max_lifetime: c.max_lifetime.map(Text),
                max_idle: c.max_idle.map(Text),
            }
        }
    }

    impl Serialize for Config {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Form::from(self).serialize(serializer)
        }
    }

    /// Every value is valid: nothing to check beyond the types.
    impl<'de> Deserialize<'de> for Config {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
            let f = Form::deserialize(deserializer)?;
            let mut c = Config::new().timeout(f.timeout.0);
            if let Some(d) = f.max_lifetime {
                c = c.max_lifetime(d.0);
            }
            if let Some(d) = f.max_idle {
                c = c.max_idle(d.0);
            }
            Ok(c)
        }
    }
}
