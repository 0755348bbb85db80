//! The bulkhead's configuration: how many calls at once and how long to wait.

use core::time::Duration;

use super::error::ConfigError;
use super::state::Overflow;

/// How many calls may run at once, and how long a call may wait for its turn.
///
/// ```
/// use bulwark::bulkhead::{Config, Overflow};
/// use core::time::Duration;
/// const PAYMENT: Config = Config::new(10)
///     .max_wait(Duration::from_millis(50))
///     .overflow(Overflow::DropOldest);
/// assert_eq!(PAYMENT.max_concurrent(), 10);
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

`max_concurrent` (required), then one key per builder method: `max_wait` (a duration as
[text](crate::duration), default `"0s"`) and `overflow` (`"reject_newest"`, the default, or
`"drop_oldest"`). An unknown key is an error naming it; the whole is checked by
[`Config::validate`].

```
use bulwark::bulkhead::{Config, Overflow};
use core::time::Duration;

let config: Config = toml::from_str(r#"
    max_concurrent = 10
    max_wait = "50ms"
    overflow = "drop_oldest"
"#).unwrap();
assert_eq!(config, Config::new(10).max_wait(Duration::from_millis(50)).overflow(Overflow::DropOldest));
assert!(toml::from_str::<Config>("max_concurrent = 0").is_err());
```
"##
)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) max_concurrent: usize,
    pub(super) max_wait: Duration,
    pub(super) overflow: Overflow,
}

impl Config {
    /// At most `max_concurrent` calls at once; no waiting; [`Overflow::RejectNewest`].
    ///
    /// ```
    /// use bulwark::bulkhead::Config;
    /// assert!(Config::new(5).max_wait_time().is_zero());
    /// ```
    pub const fn new(max_concurrent: usize) -> Config {
        Config {
            max_concurrent,
            max_wait: Duration::ZERO,
            overflow: Overflow::RejectNewest,
        }
    }

    /// How long [`super::Bulkhead::acquire`] may wait for a permit (waiting semaphores only).
    ///
    /// ```
    /// use bulwark::bulkhead::Config;
    /// use core::time::Duration;
    /// assert_eq!(Config::new(1).max_wait(Duration::from_secs(1)).max_wait_time().as_secs(), 1);
    /// ```
    pub const fn max_wait(mut self, d: Duration) -> Config {
        self.max_wait = d;
        self
    }

    /// Who is shed when the wait queue is full ([`super::Bulkhead::queued`] only).
    ///
    /// ```
    /// use bulwark::bulkhead::{Config, Overflow};
    /// assert_eq!(Config::new(1).overflow(Overflow::DropOldest).overflow_policy(), Overflow::DropOldest);
    /// ```
    pub const fn overflow(mut self, o: Overflow) -> Config {
        self.overflow = o;
        self
    }

    /// The limit of concurrent calls.
    ///
    /// ```
    /// assert_eq!(bulwark::bulkhead::Config::new(7).max_concurrent(), 7);
    /// ```
    pub const fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The max wait.
    ///
    /// ```
    /// assert!(bulwark::bulkhead::Config::new(7).max_wait_time().is_zero());
    /// ```
    pub const fn max_wait_time(&self) -> Duration {
        self.max_wait
    }

    /// The overflow policy.
    ///
    /// ```
    /// use bulwark::bulkhead::{Config, Overflow};
    /// assert_eq!(Config::new(7).overflow_policy(), Overflow::RejectNewest);
    /// ```
    pub const fn overflow_policy(&self) -> Overflow {
        self.overflow
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] or [`ConfigError::TooLarge`].
    ///
    /// ```
    /// use bulwark::bulkhead::{Config, ConfigError};
    /// assert_eq!(Config::new(0).validate(), Err(ConfigError::ZeroCapacity));
    /// assert_eq!(Config::new(1).validate(), Ok(()));
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            Err(ConfigError::ZeroCapacity)
        } else if self.max_concurrent as u64 > u32::MAX as u64 {
            Err(ConfigError::TooLarge)
        } else {
            Ok(())
        }
    }
}

/// The file form of [`Config`] (feature `serde`).
#[cfg(feature = "serde")]
mod serde_form {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::{Config, Overflow};
    use crate::duration::Text;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        max_concurrent: usize,
        #[serde(default)]
        max_wait: Text,
        #[serde(default)]
        overflow: Overflow,
    }

    impl Serialize for Config {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Form {
                max_concurrent: self.max_concurrent,
                max_wait: Text(self.max_wait),
                overflow: self.overflow,
            }
            .serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Config {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
            let f = Form::deserialize(deserializer)?;
            let c = Config::new(f.max_concurrent)
                .max_wait(f.max_wait.0)
                .overflow(f.overflow);
            match c.validate() {
                Ok(()) => Ok(c),
                Err(e) => Err(de::Error::custom(e)),
            }
        }
    }
}
