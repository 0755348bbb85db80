//! Retry's configuration: a `const` builder, checked by [`Config::validate`].

use core::time::Duration;

use super::backoff::{Backoff, Builtin, Jitter, JitterBase};
use super::error::ConfigError;

/// Retry configuration: a `const` builder, checked by [`Retry::new`](super::Retry::new) (or
/// [`Config::validate`]).
///
/// | setting | default |
/// |---|---|
/// | [`max_attempts`](Config::max_attempts) (the first call counts) | 3 |
/// | [`max_elapsed`](Config::max_elapsed) (from the first attempt's start) | none |
/// | [`backoff`](Config::backoff) | exponential, 100 ms × 2, capped at 10 s |
/// | [`jitter`](Config::jitter) | [`Jitter::Full`]: uniform in `[0, d]` |
/// | [`jitter_base`](Config::jitter_base) | [`JitterBase::Capped`]: jitter around the capped delay (resilience4j: around the uncapped one) |
/// | [`max_retry_after`](Config::max_retry_after) (cap on a hint from the error) | 60 s |
/// | [`seed`](Config::seed) | none: each failing call takes a fresh seed from [`rng::next_seed`](crate::rng::next_seed) (OS entropy once a std adapter builds its clock) |
///
/// # Why full jitter by default
///
/// Clients that failed together (a downstream blip) must not retry together. The default
/// spreads each delay uniformly over `[0, d]` ("Full Jitter"): in the simulations of AWS's
/// "Exponential Backoff and Jitter" study it made the fewest calls and finished contended
/// work soonest, with decorrelated jitter close and equal jitter (which keeps half the delay)
/// doing more work; the AWS SDKs retry the same way. A retry may thus come sooner than the
/// backoff's delay, never later. Choose [`Jitter::None`] for exact delays.
///
/// # Examples
///
/// ```
/// use bulwark::retry::{Backoff, Config, Jitter};
/// use core::time::Duration;
///
/// let cfg = Config::new()
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(30))
///     .backoff(Backoff::exponential(Duration::from_millis(200)).max(Duration::from_secs(5)))
///     .jitter(Jitter::Full)
///     .max_retry_after(Duration::from_secs(20))
///     .seed(42);
/// assert_eq!(cfg.validate(), Ok(()));
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

One key per builder method, named as the method; durations are [text](crate::duration)
(`"30s"`), the backoff and jitter are written as [`Backoff`] and [`Jitter`] say. Omitted
settings keep the defaults above; an unknown key is an error naming it; the whole is checked
by [`Config::validate`], whose error names the setting.

```
use bulwark::retry::{Backoff, Config, Jitter, JitterBase};
use core::time::Duration;

let config: Config = toml::from_str(r#"
    max_attempts = 4
    max_elapsed = "30s"
    backoff = { exponential = "200ms", max = "5s" }
    jitter = "equal"
    jitter_base = "uncapped"
    max_retry_after = "20s"
    seed = 7
"#).unwrap();
let ms = Duration::from_millis;
assert_eq!(config, Config::new()
    .max_attempts(4)
    .max_elapsed(ms(30_000))
    .backoff(Backoff::exponential(ms(200)).max(ms(5_000)))
    .jitter(Jitter::Equal)
    .jitter_base(JitterBase::Uncapped)
    .max_retry_after(ms(20_000))
    .seed(7));

let err = toml::from_str::<Config>("max_attempts = 0").unwrap_err();
assert!(err.message().contains("max_attempts must be at least 1"));
```
"##
)]
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Config<D = Builtin> {
    pub(crate) max_attempts: u32,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) backoff: Backoff<D>,
    pub(crate) jitter: Jitter,
    pub(crate) jitter_base: JitterBase,
    pub(crate) max_hint: Duration,
    /// Meaningful when `seed_set`.
    pub(crate) seed: u64,
    /// Was [`Config::seed`] called (reproducible), or does each call take a fresh seed?
    pub(crate) seed_set: bool,
}

/// Every setting; a [custom](Backoff::custom) backoff's function shows as `custom`.
impl<D> core::fmt::Debug for Config<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("max_attempts", &self.max_attempts)
            .field("max_elapsed", &self.max_elapsed)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .field("jitter_base", &self.jitter_base)
            .field("max_hint", &self.max_hint)
            .field("seed", &self.explicit_seed())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults in the table above.
    ///
    /// ```
    /// let cfg = bulwark::retry::Config::new();
    /// assert_eq!(cfg.validate(), Ok(()));
    /// ```
    pub const fn new() -> Config {
        Config {
            max_attempts: 3,
            max_elapsed: None,
            backoff: Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(10)),
            jitter: Jitter::Full,
            jitter_base: JitterBase::Capped,
            max_hint: Duration::from_secs(60),
            seed: 0,
            seed_set: false,
        }
    }
}

impl<D> Config<D> {
    /// Attempts in all, the first call included: 3 = 1 call + 2 retries; 1 = no retries.
    ///
    /// ```
    /// # use bulwark::retry::Config;
    /// let cfg = Config::new().max_attempts(1);
    /// # let _ = cfg;
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Config<D> {
        self.max_attempts = n;
        self
    }

    /// The attempts in all set by [`max_attempts`](Config::max_attempts), the first call
    /// included (3 by default).
    ///
    /// ```
    /// use bulwark::retry::Config;
    /// assert_eq!(Config::new().attempt_limit(), 3);
    /// assert_eq!(Config::new().max_attempts(1).attempt_limit(), 1); // no retries
    /// ```
    pub const fn attempt_limit(&self) -> u32 {
        self.max_attempts
    }

    /// Do not start an attempt later than `d` after the first one started.
    ///
    /// ```
    /// # use bulwark::retry::Config;
    /// let cfg = Config::new().max_elapsed(core::time::Duration::from_secs(10));
    /// # let _ = cfg;
    /// ```
    pub const fn max_elapsed(mut self, d: Duration) -> Config<D> {
        self.max_elapsed = Some(d);
        self
    }

    /// The backoff: a built-in curve, or a [custom](Backoff::custom) function the config then
    /// owns (its type becomes the config's `D`).
    ///
    /// ```
    /// use bulwark::retry::{Backoff, Config};
    /// use core::time::Duration;
    /// let cfg = Config::new().backoff(Backoff::constant(Duration::from_secs(1)));
    /// assert_eq!(cfg.backoff_curve().delay(5), Duration::from_secs(1));
    ///
    /// let unit = Duration::from_millis(300);
    /// let cfg = Config::new().backoff(Backoff::custom(move |n: u32| unit * n * n));
    /// assert_eq!(cfg.backoff_curve().delay(3), Duration::from_millis(2700));
    /// ```
    pub fn backoff<D2>(self, backoff: Backoff<D2>) -> Config<D2> {
        Config {
            max_attempts: self.max_attempts,
            max_elapsed: self.max_elapsed,
            backoff,
            jitter: self.jitter,
            jitter_base: self.jitter_base,
            max_hint: self.max_hint,
            seed: self.seed,
            seed_set: self.seed_set,
        }
    }

    /// The backoff set by [`backoff`](Config::backoff).
    ///
    /// ```
    /// use bulwark::retry::Config;
    /// use core::time::Duration;
    /// // The default: 100 ms × 2, capped at 10 s.
    /// assert_eq!(Config::new().backoff_curve().delay(2), Duration::from_millis(200));
    /// ```
    pub const fn backoff_curve(&self) -> &Backoff<D> {
        &self.backoff
    }

    /// The jitter.
    ///
    /// ```
    /// # use bulwark::retry::{Config, Jitter};
    /// let cfg = Config::new().jitter(Jitter::Decorrelated);
    /// assert_ne!(cfg, Config::new()); // the default is full jitter
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Config<D> {
        self.jitter = jitter;
        self
    }

    /// Which delay the jitter is drawn around: the capped one (default) or the uncapped one,
    /// the cap applied last (resilience4j's order; see [`JitterBase`]).
    ///
    /// ```
    /// use bulwark::retry::{Config, JitterBase};
    /// let cfg = Config::new().jitter_base(JitterBase::Uncapped);
    /// assert_ne!(cfg, Config::new());
    /// ```
    pub const fn jitter_base(mut self, base: JitterBase) -> Config<D> {
        self.jitter_base = base;
        self
    }

    /// The longest delay a hint from the outcome ([`Verdict::RetryAfter`](super::Verdict),
    /// e.g. an HTTP `Retry-After`) may ask for; longer hints are cut to it. Must be above
    /// zero ([`ConfigError::ZeroMaxRetryAfter`]): a zero cap would retry at once whatever the
    /// server asked.
    ///
    /// ```
    /// # use bulwark::retry::Config;
    /// let cfg = Config::new().max_retry_after(core::time::Duration::from_secs(5));
    /// # let _ = cfg;
    /// ```
    pub const fn max_retry_after(mut self, d: Duration) -> Config<D> {
        self.max_hint = d;
        self
    }

    /// An explicit jitter seed, for reproducible delays (tests, simulations): the same seed
    /// gives the same delays in every run and every process. The first call through a
    /// [`Retry`](super::Retry) whose first attempt fails draws exactly what
    /// [`super::RetryState::new(_, seed)`](super::RetryState::new) draws; later calls (in the order their
    /// first attempts fail) draw from their own streams derived from `seed`.
    ///
    /// Without it (the default), each failing call takes a fresh seed from
    /// [`rng::next_seed`](crate::rng::next_seed): different in every call and, with the `std`
    /// feature or a seed set by the firmware, in every process.
    ///
    /// ```
    /// use bulwark::retry::{Config, Jitter};
    /// let cfg = Config::new().jitter(Jitter::Full).seed(7);
    /// assert_eq!(cfg.explicit_seed(), Some(7));
    /// assert_eq!(Config::new().explicit_seed(), None);
    /// ```
    pub const fn seed(mut self, seed: u64) -> Config<D> {
        self.seed = seed;
        self.seed_set = true;
        self
    }

    /// The seed set by [`seed`](Config::seed), if any.
    ///
    /// ```
    /// assert_eq!(bulwark::retry::Config::new().seed(3).explicit_seed(), Some(3));
    /// ```
    pub const fn explicit_seed(&self) -> Option<u64> {
        if self.seed_set { Some(self.seed) } else { None }
    }

    /// The seed of the `k`-th failing call (0-based) through a policy with this config.
    pub(crate) fn call_seed(&self, k: u64) -> u64 {
        if self.seed_set {
            crate::rng::stream_seed(self.seed, k)
        } else {
            crate::rng::next_seed()
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting: `max_attempts` 0 ([`ZeroAttempts`](ConfigError::ZeroAttempts)),
    /// an exponential backoff with a multiplier of 0 ([`ZeroMultiplier`](ConfigError::ZeroMultiplier))
    /// or below 1 ([`MultiplierBelowOne`](ConfigError::MultiplierBelowOne)) or an initial delay
    /// of 0 ([`ZeroInitialDelay`](ConfigError::ZeroInitialDelay)), a zero
    /// `max_retry_after` ([`ZeroMaxRetryAfter`](ConfigError::ZeroMaxRetryAfter)), or a
    /// proportional jitter above 100 % or an additive one above 100 000 thousandths
    /// ([`PercentOutOfRange`](ConfigError::PercentOutOfRange)). A backoff cap below its first
    /// delay is fine: it caps.
    ///
    /// ```
    /// use bulwark::retry::{Config, ConfigError, Jitter};
    /// assert_eq!(Config::new().jitter(Jitter::Proportional(150)).validate(), Err(ConfigError::PercentOutOfRange));
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        if let Err(e) = self.backoff.validate() {
            return Err(e);
        }
        if self.max_hint.is_zero() {
            return Err(ConfigError::ZeroMaxRetryAfter);
        }
        self.jitter.validate()
    }
}

/// The file form of [`Config`] (feature `serde`): the builder's methods as keys.
#[cfg(feature = "serde")]
mod serde_form {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::{Backoff, Config, Jitter, JitterBase};
    use crate::duration::Text;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Form {
        max_attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_elapsed: Option<Text>,
        backoff: Backoff,
        jitter: Jitter,
        #[serde(skip_serializing_if = "is_capped")]
        jitter_base: JitterBase,
        max_retry_after: Text,
        #[serde(skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    }

    /// The default base is not written.
    fn is_capped(base: &JitterBase) -> bool {
        *base == JitterBase::Capped
    }

    impl Default for Form {
        fn default() -> Self {
            Form::from(&Config::new())
        }
    }

    impl From<&Config> for Form {
        fn from(c: &Config) -> Form {
            Form {
                max_attempts: c.max_attempts,
                max_elapsed: c.max_elapsed.map(Text),
                backoff: c.backoff,
                jitter: c.jitter,
                jitter_base: c.jitter_base,
                max_retry_after: Text(c.max_hint),
                seed: c.explicit_seed(),
            }
        }
    }

    impl Serialize for Config {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Form::from(self).serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Config {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
            let f = Form::deserialize(deserializer)?;
            let mut c = Config::new()
                .max_attempts(f.max_attempts)
                .backoff(f.backoff)
                .jitter(f.jitter)
                .jitter_base(f.jitter_base)
                .max_retry_after(f.max_retry_after.0);
            if let Some(d) = f.max_elapsed {
                c = c.max_elapsed(d.0);
            }
            if let Some(seed) = f.seed {
                c = c.seed(seed);
            }
            match c.validate() {
                Ok(()) => Ok(c),
                Err(e) => Err(de::Error::custom(e)),
            }
        }
    }
}
