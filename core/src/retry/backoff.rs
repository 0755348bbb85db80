//! Backoff (how long to wait before each retry) and jitter (how to spread it).

use core::fmt;
use core::time::Duration;

use super::error::ConfigError;
use crate::rng::RandomSource;
use crate::time::duration_to_nanos;

/// The function of a [custom](Backoff::custom) backoff: the delay before retry `n` (1 = the
/// first retry). Every `Fn(u32) -> Duration` closure is one, capturing ones included; the
/// backoff (and the [`Config`](super::Config) and [`Retry`](super::Retry) holding it) owns it.
///
/// ```
/// use bulwark::retry::BackoffFn;
/// use core::time::Duration;
///
/// let unit = Duration::from_millis(250); // read at start-up, say
/// let f = move |n: u32| unit * n;
/// assert_eq!(f.delay(3), Duration::from_millis(750));
/// ```
pub trait BackoffFn {
    /// The delay before retry `n` (1 = the first retry). It should not panic.
    fn delay(&self, n: u32) -> Duration;
}

impl<F: Fn(u32) -> Duration + ?Sized> BackoffFn for F {
    #[inline]
    fn delay(&self, n: u32) -> Duration {
        self(n)
    }
}

/// The function type of a backoff without one: one of the built-in curves
/// ([`constant`](Backoff::constant), [`linear`](Backoff::linear),
/// [`exponential`](Backoff::exponential)). It has no values, so a `Backoff<Builtin>` (plain
/// `Backoff`) costs nothing for the custom case, is `Copy`, comparable, and has a file form.
///
/// ```
/// use bulwark::retry::{Backoff, Builtin};
/// use core::time::Duration;
/// let b: Backoff<Builtin> = Backoff::constant(Duration::from_secs(1));
/// assert_eq!(b, Backoff::constant(Duration::from_secs(1)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {}

impl BackoffFn for Builtin {
    fn delay(&self, _: u32) -> Duration {
        match *self {}
    }
}

#[derive(Copy, Clone)]
enum Kind<D> {
    Constant(Duration),
    Linear { initial: Duration, step: Duration },
    Exponential { initial: Duration, growth: Ratio },
    Custom(D),
}

/// An exponential backoff's growth factor `num / den`, kept in lowest terms (so `6/4` and
/// `3/2` are the same factor and an integer factor has `den == 1`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Ratio {
    num: u32,
    den: u32,
}

/// `1` in the Q32.32 fixed point of [`Ratio::power`].
const ONE_Q32: u128 = 1 << 32;
/// One half in Q32.32, to round to the nearest.
const HALF_Q32: u128 = 1 << 31;
/// A factor of 2^64 in Q32.32: any delay of 1 ns or more times it saturates a `u64`.
const SATURATED_Q32: u128 = 1 << 96;

impl Ratio {
    const fn new(num: u32, den: u32) -> Ratio {
        let (mut a, mut b) = (num, den);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        match a {
            0 => Ratio { num, den }, // 0/0: left as is, rejected by `validate`
            g => Ratio {
                num: num / g,
                den: den / g,
            },
        }
    }

    /// `initial × (num/den)^k` in nanoseconds, saturating at `u64::MAX`. An integer factor is
    /// exact; a fraction is computed in Q32.32 fixed point by squaring (no floats), exact for
    /// factors such as 3/2 while `k ≤ 32` and within 2^-32 per step otherwise, rounded to
    /// the nearest nanosecond.
    fn grow(self, initial: u64, k: u32) -> u64 {
        if self.den == 1 {
            let factor = (self.num as u64).checked_pow(k).unwrap_or(u64::MAX);
            return initial.saturating_mul(factor);
        }
        let Some(den) = core::num::NonZeroU128::new(self.den as u128) else {
            return initial; // 0/0 (an unvalidated config): no growth
        };
        let f = self.power(((self.num as u128) << 32) / den, k);
        match (initial as u128).checked_mul(f) {
            Some(p) => u64::try_from(p.saturating_add(HALF_Q32) >> 32).unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }

    /// `base^k` for a Q32.32 `base`, saturating at [`SATURATED_Q32`].
    fn power(self, mut base: u128, mut k: u32) -> u128 {
        // Overflow of a product of two values below 2^96 means a factor above 2^64: saturated.
        let mul = |a: u128, b: u128| {
            a.checked_mul(b).map_or(SATURATED_Q32, |p| {
                (p.saturating_add(HALF_Q32) >> 32).min(SATURATED_Q32)
            })
        };
        let mut acc = ONE_Q32;
        while k > 0 {
            if k & 1 == 1 {
                acc = mul(acc, base);
            }
            k >>= 1;
            if k > 0 {
                base = mul(base, base);
            }
        }
        acc
    }
}

/// How long to wait before retry number `n` (1 = the first retry), before jitter. Every
/// delay saturates at the cap ([`Backoff::max`]); nothing overflows, whatever `n` is.
///
/// | kind | delay before retry `n` |
/// |---|---|
/// | [`constant(d)`](Backoff::constant) | `d` |
/// | [`linear(initial, step)`](Backoff::linear) | `initial + (n - 1) × step` |
/// | [`exponential(initial)`](Backoff::exponential) | `initial × multiplier^(n - 1)` (multiplier 2 unless [set](Backoff::multiplier), a [fraction](Backoff::multiplier_ratio) such as 3/2 allowed) |
/// | [`custom(f)`](Backoff::custom) | `f(n)` |
///
/// then `min(.., max)`. The cap defaults to unbounded; a cap below the first delay simply caps
/// every delay (as Polly's `MaxDelay`).
///
/// # Examples
///
/// ```
/// use bulwark::retry::Backoff;
/// use core::time::Duration;
///
/// // The classic table: 1 s, 2 s, 4 s, 8 s, ... capped at 30 s.
/// let b = Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(30));
/// let secs: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
/// assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
/// assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

An inline table: exactly one of `constant`, `linear` (with `step`) or `exponential` (with
an optional `multiplier`, default 2: a whole number, or a decimal as text such as `"1.5"`),
each the first delay as [text](crate::duration), and an optional cap `max` (default
unbounded). A [custom](Backoff::custom) backoff (a function) has no file form: only a plain
`Backoff` (`Backoff<Builtin>`) is `Serialize` and `Deserialize`.

```
use bulwark::retry::Backoff;
use core::time::Duration;

#[derive(serde::Deserialize, Debug)]
struct Policy { backoff: Backoff }
let ms = Duration::from_millis;
for (text, want) in [
    (r#"backoff = { constant = "250ms" }"#, Backoff::constant(ms(250))),
    (r#"backoff = { linear = "100ms", step = "50ms", max = "1s" }"#,
     Backoff::linear(ms(100), ms(50)).max(ms(1000))),
    (r#"backoff = { exponential = "100ms", max = "10s" }"#,
     Backoff::exponential(ms(100)).max(ms(10_000))),
    (r#"backoff = { exponential = "1s", multiplier = 3 }"#,
     Backoff::exponential(ms(1000)).multiplier(3)),
    (r#"backoff = { exponential = "500ms", multiplier = "1.5" }"#,
     Backoff::exponential(ms(500)).multiplier_ratio(3, 2)),
] {
    assert_eq!(toml::from_str::<Policy>(text).unwrap().backoff, want);
}
let err = toml::from_str::<Policy>(r#"backoff = { constant = "1s", step = "1s" }"#);
assert!(err.unwrap_err().message().contains("step"));
```

A custom backoff does not compile where a file form is needed:

```compile_fail
use bulwark::retry::{Backoff, Config};
use core::time::Duration;
let cfg = Config::new().backoff(Backoff::custom(|n| Duration::from_secs(n.into())));
let _ = toml::to_string(&cfg); // `Config<{closure}>` is not `Serialize`
```
"##
)]
#[derive(Copy, Clone)]
pub struct Backoff<D = Builtin> {
    kind: Kind<D>,
    max: Duration,
}

impl<D> fmt::Debug for Backoff<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Backoff");
        match &self.kind {
            Kind::Constant(c) => d.field("constant", c),
            Kind::Linear { initial, step } => d.field("linear", initial).field("step", step),
            Kind::Exponential { initial, growth } => d
                .field("exponential", initial)
                .field("multiplier", &(growth.num, growth.den)),
            Kind::Custom(_) => d.field("custom", &"fn(u32) -> Duration"),
        };
        d.field("max", &self.max).finish()
    }
}

/// Equal when of the same kind with the same delays and cap (multipliers compared as
/// fractions: `6/4 == 3/2`); two [custom](Backoff::custom) backoffs when their functions are
/// equal (closures are not comparable, so only built-in curves and comparable function types
/// such as `fn(u32) -> Duration` are).
impl<D: PartialEq> PartialEq for Backoff<D> {
    fn eq(&self, other: &Backoff<D>) -> bool {
        let kinds = match (&self.kind, &other.kind) {
            (Kind::Constant(a), Kind::Constant(b)) => a == b,
            (
                Kind::Linear { initial, step },
                Kind::Linear {
                    initial: i2,
                    step: s2,
                },
            ) => initial == i2 && step == s2,
            (
                Kind::Exponential { initial, growth },
                Kind::Exponential {
                    initial: i2,
                    growth: g2,
                },
            ) => initial == i2 && growth == g2,
            (Kind::Custom(a), Kind::Custom(b)) => a == b,
            _ => false,
        };
        kinds && self.max == other.max
    }
}

impl<D: Eq> Eq for Backoff<D> {}

impl Backoff {
    /// The same delay before every retry. A zero delay is allowed and means "retry at once",
    /// with no wait (jitter cannot lengthen it): for failures an immediate retry can fix, such
    /// as a stale pooled connection replaced by a fresh one. It gives a struggling downstream
    /// no relief, so pair it with a small `max_attempts`.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// assert_eq!(Backoff::constant(Duration::from_millis(50)).delay(9), Duration::from_millis(50));
    /// ```
    pub const fn constant(d: Duration) -> Backoff {
        Backoff {
            kind: Kind::Constant(d),
            max: Duration::MAX,
        }
    }

    /// `initial`, then `step` more before each further retry.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::linear(Duration::from_millis(100), Duration::from_millis(50));
    /// assert_eq!(b.delay(3), Duration::from_millis(200));
    /// ```
    pub const fn linear(initial: Duration, step: Duration) -> Backoff {
        Backoff {
            kind: Kind::Linear { initial, step },
            max: Duration::MAX,
        }
    }

    /// `initial`, multiplied by 2 (see [`multiplier`](Backoff::multiplier) and
    /// [`multiplier_ratio`](Backoff::multiplier_ratio)) before each further retry. A zero
    /// `initial` never grows: the policy rejects it ([`ConfigError::ZeroInitialDelay`]).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::exponential(Duration::from_millis(100));
    /// assert_eq!(b.delay(4), Duration::from_millis(800));
    /// ```
    pub const fn exponential(initial: Duration) -> Backoff {
        Backoff {
            kind: Kind::Exponential {
                initial,
                growth: Ratio { num: 2, den: 1 },
            },
            max: Duration::MAX,
        }
    }

    /// The whole growth factor of an exponential backoff (default 2; ignored by the other
    /// kinds). For a fractional one, see [`multiplier_ratio`](Backoff::multiplier_ratio).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::exponential(Duration::from_secs(1)).multiplier(3);
    /// assert_eq!(b.delay(3), Duration::from_secs(9));
    /// ```
    pub const fn multiplier(self, multiplier: u32) -> Backoff {
        self.multiplier_ratio(multiplier, 1)
    }

    /// A fractional growth factor `num / den` of an exponential backoff (ignored by the other
    /// kinds): 1.5 is `(3, 2)`, 1.0001 is `(10_001, 10_000)`. Computed in integer fixed point,
    /// no floats, saturating; rounded to the nearest nanosecond. A factor below 1 or a zero `den`
    /// is rejected by the policy ([`ConfigError::MultiplierBelowOne`],
    /// [`ConfigError::ZeroMultiplier`]).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// // resilience4j's default growth, ×1.5: 500 ms, 750 ms, 1125 ms, 1687.5 ms.
    /// let b = Backoff::exponential(Duration::from_millis(500)).multiplier_ratio(3, 2);
    /// assert_eq!(b.delay(4), Duration::from_micros(1_687_500));
    /// ```
    pub const fn multiplier_ratio(mut self, num: u32, den: u32) -> Backoff {
        if let Kind::Exponential { initial, .. } = self.kind {
            self.kind = Kind::Exponential {
                initial,
                growth: Ratio::new(num, den),
            };
        }
        self
    }
}

impl<D> Backoff<D> {
    /// A delay computed by `f` from the retry number (1 = the first retry): any
    /// `Fn(u32) -> Duration`, capturing closures included. The backoff owns `f` (and so do the
    /// [`Config`](super::Config) and [`Retry`](super::Retry) it goes into: no `'static`, no
    /// allocation); `f` should not panic. The [cap](Backoff::max) and the jitter apply to its
    /// delays as to the built-in curves'. A custom backoff has no file form.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// // Fibonacci-ish, in tenths of a second, capped at 400 ms.
    /// let b = Backoff::custom(|n| Duration::from_millis([100, 100, 200, 300, 500][(n as usize - 1).min(4)]))
    ///     .max(Duration::from_millis(400));
    /// assert_eq!(b.delay(4), Duration::from_millis(300));
    /// assert_eq!(b.delay(5), Duration::from_millis(400));
    ///
    /// // A capturing closure: the unit read at start-up, owned by the backoff.
    /// let unit = Duration::from_millis(250);
    /// let b = Backoff::custom(move |n: u32| unit * n);
    /// assert_eq!(b.delay(3), Duration::from_millis(750));
    /// ```
    pub const fn custom(f: D) -> Backoff<D>
    where
        D: BackoffFn,
    {
        Backoff {
            kind: Kind::Custom(f),
            max: Duration::MAX,
        }
    }

    /// The cap: no delay exceeds it, jitter included (default: unbounded). A cap below the
    /// first delay is allowed and caps every delay.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::linear(Duration::from_secs(1), Duration::from_secs(1)).max(Duration::from_secs(3));
    /// assert_eq!(b.delay(10), Duration::from_secs(3));
    /// assert_eq!(b.cap(), Duration::from_secs(3));
    /// // Below the first delay: every delay is the cap.
    /// let b = Backoff::constant(Duration::from_secs(5)).max(Duration::from_secs(1));
    /// assert_eq!(b.delay(1), Duration::from_secs(1));
    /// ```
    pub const fn max(mut self, cap: Duration) -> Backoff<D> {
        self.max = cap;
        self
    }

    /// The cap set by [`max`](Backoff::max).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// assert_eq!(Backoff::constant(Duration::ZERO).cap(), Duration::MAX);
    /// ```
    pub const fn cap(&self) -> Duration {
        self.max
    }

    /// The delay before retry number `n` (1 = the first retry; 0 is read as 1), capped.
    /// Delays are whole nanoseconds below 2^64 (584 years): larger ones saturate there.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::exponential(Duration::from_secs(1)).multiplier(u32::MAX);
    /// assert_eq!(b.delay(1_000), Duration::from_nanos(u64::MAX)); // saturates, never overflows
    /// ```
    pub fn delay(&self, n: u32) -> Duration
    where
        D: BackoffFn,
    {
        Duration::from_nanos(self.delay_nanos(n))
    }

    /// [`delay`](Backoff::delay) in nanoseconds (saturating at `u64::MAX`).
    pub(crate) fn delay_nanos(&self, n: u32) -> u64
    where
        D: BackoffFn,
    {
        self.uncapped_nanos(n).min(duration_to_nanos(self.max))
    }

    /// The delay before retry `n` before the cap, in nanoseconds (saturating at `u64::MAX`).
    pub(crate) fn uncapped_nanos(&self, n: u32) -> u64
    where
        D: BackoffFn,
    {
        let k = n.max(1) - 1; // growth steps
        match &self.kind {
            Kind::Constant(d) => duration_to_nanos(*d),
            Kind::Linear { initial, step } => duration_to_nanos(*initial)
                .saturating_add(duration_to_nanos(*step).saturating_mul(k as u64)),
            Kind::Exponential { initial, growth } => growth.grow(duration_to_nanos(*initial), k),
            Kind::Custom(f) => duration_to_nanos(f.delay(n.max(1))),
        }
    }

    /// Checks the backoff (see [`ConfigError`]).
    pub(crate) const fn validate(&self) -> Result<(), ConfigError> {
        if let Kind::Exponential { initial, growth } = &self.kind {
            if growth.num == 0 || growth.den == 0 {
                return Err(ConfigError::ZeroMultiplier);
            }
            if growth.num < growth.den {
                return Err(ConfigError::MultiplierBelowOne);
            }
            if initial.is_zero() {
                return Err(ConfigError::ZeroInitialDelay);
            }
        }
        Ok(())
    }
}

/// How a backoff delay is randomised, so that many clients that failed together do not retry
/// together. Deterministic for a given seed ([`Config::seed`](super::Config::seed)).
///
/// With `d` the backoff delay, `base` its first delay, `cap` its [cap](Backoff::max) and
/// `prev` the previous delay (`base` before the first retry):
///
/// | jitter | delay |
/// |---|---|
/// | [`None`](Jitter::None) | `d` |
/// | [`Full`](Jitter::Full) | uniform in `[0, d]` |
/// | [`Equal`](Jitter::Equal) | `d/2` + uniform in `[0, d/2]` |
/// | [`Decorrelated`](Jitter::Decorrelated) | uniform in `[base, 3 × prev]` (AWS; the backoff's growth is not used) |
/// | [`Proportional(p)`](Jitter::Proportional) | uniform in `[d − p %, d + p %]` (the classic ±20 %: `Proportional(20)`) |
/// | [`Additive(t)`](Jitter::Additive) | `d` + uniform in `[0, d × t / 1000]` (tower's `ExponentialBackoff`) |
///
/// The result is capped at `cap` in every case. `d` is the capped backoff delay unless
/// [`Config::jitter_base`](super::Config::jitter_base) says
/// [`Uncapped`](super::JitterBase::Uncapped) (resilience4j's order: jitter around the uncapped
/// delay, the cap last). The default is [`Full`](Jitter::Full) (why:
/// [`Config`](super::Config#why-full-jitter-by-default)).
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::retry::{Backoff, Config, Decision, Jitter, RetryState};
/// use bulwark::timeout::Deadline;
/// use core::time::Duration;
///
/// let cfg = Config::new()
///     .max_attempts(10)
///     .backoff(Backoff::constant(Duration::from_secs(10)))
///     .jitter(Jitter::Proportional(20));
/// let mut state = RetryState::new(Instant::ZERO, 7);
/// state.start_attempt();
/// match state.decide(&cfg, Instant::ZERO, None, Deadline::NONE) {
///     Decision::Retry { delay, .. } => {
///         assert!(delay >= Duration::from_secs(8) && delay <= Duration::from_secs(12))
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[cfg_attr(
    feature = "serde",
    doc = r##"
# In a file (feature `serde`)

`"none"`, `"full"`, `"equal"`, `"decorrelated"`, or `{ proportional = 20 }` (0 ..= 100,
checked when read).

```
use bulwark::retry::Jitter;

#[derive(serde::Deserialize, Debug)]
struct Policy { jitter: Jitter }
let p: Policy = toml::from_str(r#"jitter = "decorrelated""#).unwrap();
assert_eq!(p.jitter, Jitter::Decorrelated);
let p: Policy = toml::from_str("jitter = { proportional = 20 }").unwrap();
assert_eq!(p.jitter, Jitter::Proportional(20));
assert!(toml::from_str::<Policy>("jitter = { proportional = 150 }").is_err());
let p: Policy = toml::from_str("jitter = { additive = 500 }").unwrap();
assert_eq!(p.jitter, Jitter::Additive(500));
```
"##
)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The backoff delay as is.
    None,
    /// Uniform in `[0, d]` (the default).
    #[default]
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped.
    Decorrelated,
    /// Uniform in `d ± percent %` (0 ..= 100).
    Proportional(u8),
    /// `d` plus uniform in `[0, d × thousandths / 1000]`, capped (0 ..= 100 000, tower's
    /// `ExponentialBackoff` jitter of 0.0 ..= 100.0 in thousandths: 0.5 is `Additive(500)`).
    Additive(u32),
}

/// The most [`Jitter::Additive`] takes: 100 × the delay (tower's bound).
const MAX_ADDITIVE: u32 = 100_000;

impl Jitter {
    /// Applies the jitter to `d` (nanoseconds); `base`, `cap`, `prev` as in the table.
    pub(crate) fn apply<R: RandomSource + ?Sized>(
        self,
        d: u64,
        base: u64,
        cap: u64,
        prev: u64,
        rng: &mut R,
    ) -> u64 {
        let j = match self {
            Jitter::None => d,
            Jitter::Full => rng.up_to(d),
            Jitter::Equal => d / 2 + rng.up_to(d - d / 2),
            Jitter::Decorrelated => rng.between(base, prev.max(base).saturating_mul(3)),
            Jitter::Proportional(p) => {
                let span = (d as u128 * p.min(100) as u128 / 100) as u64;
                rng.between(d - span, d.saturating_add(span))
            }
            Jitter::Additive(t) => {
                let span = (d as u128 * t.min(MAX_ADDITIVE) as u128 / 1000).min(u64::MAX as u128);
                d.saturating_add(rng.up_to(span as u64))
            }
        };
        j.min(cap)
    }

    pub(crate) const fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Jitter::Proportional(p) if *p > 100 => Err(ConfigError::PercentOutOfRange),
            Jitter::Additive(t) if *t > MAX_ADDITIVE => Err(ConfigError::PercentOutOfRange),
            _ => Ok(()),
        }
    }
}

/// Which delay [jitter](Jitter) is drawn around: the capped backoff delay (the default), or
/// the uncapped one (resilience4j's `IntervalFunction.ofExponentialRandomBackoff`, which
/// randomizes the uncapped interval and caps last). The cap bounds the result either way.
///
/// The two differ once the backoff reaches its cap: around the capped delay, ±20 % of a 10 s
/// cap is drawn in `[8 s, 10 s]` (capped), so retries at the cap stay spread; around the
/// uncapped delay, a 40 s delay ±20 % is `[32 s, 48 s]`, capped to exactly 10 s.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::retry::{Backoff, Config, Decision, Jitter, JitterBase, RetryState};
/// use bulwark::timeout::Deadline;
/// use core::time::Duration;
///
/// let cfg = Config::new()
///     .max_attempts(10)
///     .backoff(Backoff::exponential(Duration::from_secs(10)).multiplier(4).max(Duration::from_secs(10)))
///     .jitter(Jitter::Proportional(20));
/// let delay = |cfg: &Config| {
///     let mut state = RetryState::new(Instant::ZERO, 7);
///     state.start_attempt();
///     state.start_attempt(); // the second retry: 40 s before the cap
///     match state.decide(cfg, Instant::ZERO, None, Deadline::NONE) {
///         Decision::Retry { delay, .. } => delay,
///         other => panic!("{other:?}"),
///     }
/// };
/// let around_cap = delay(&cfg);
/// assert!(around_cap >= Duration::from_secs(8) && around_cap <= Duration::from_secs(10));
/// assert_eq!(delay(&cfg.jitter_base(JitterBase::Uncapped)), Duration::from_secs(10));
/// ```
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum JitterBase {
    /// Around the capped delay (the default): retries at the cap stay spread.
    #[default]
    Capped,
    /// Around the uncapped delay, the cap last (resilience4j's order).
    Uncapped,
}

/// The file forms of [`Backoff`] and [`Jitter`] (feature `serde`).
#[cfg(feature = "serde")]
mod serde_form {
    use core::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::{Backoff, Jitter, Kind};
    use crate::duration::Text;

    /// One optional key per builder argument; [`Form::backoff`] checks the combination.
    #[derive(Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Form {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        constant: Option<Text>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        linear: Option<Text>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<Text>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exponential: Option<Text>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multiplier: Option<Multiplier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<Text>,
    }

    impl Form {
        fn backoff<E: de::Error>(self) -> Result<Backoff, E> {
            let kinds = [&self.constant, &self.linear, &self.exponential]
                .iter()
                .filter(|k| k.is_some())
                .count();
            if kinds != 1 {
                return Err(E::custom(
                    "backoff: give exactly one of constant, linear or exponential",
                ));
            }
            if self.step.is_some() && self.linear.is_none() {
                return Err(E::custom("backoff: step goes with linear"));
            }
            if self.multiplier.is_some() && self.exponential.is_none() {
                return Err(E::custom("backoff: multiplier goes with exponential"));
            }
            let b = match (self.constant, self.linear, self.exponential) {
                (Some(d), _, _) => Backoff::constant(d.0),
                (_, Some(initial), _) => match self.step {
                    Some(step) => Backoff::linear(initial.0, step.0),
                    None => return Err(E::custom("backoff: linear needs a step")),
                },
                (_, _, Some(initial)) => {
                    let Multiplier(num, den) = self.multiplier.unwrap_or(Multiplier(2, 1));
                    Backoff::exponential(initial.0).multiplier_ratio(num, den)
                }
                (None, None, None) => return Err(E::custom("backoff: no kind")),
            };
            let b = b.max(self.max.map_or(Duration::MAX, |t| t.0));
            match b.validate() {
                Ok(()) => Ok(b),
                Err(e) => Err(E::custom(e)),
            }
        }
    }

    impl Serialize for Backoff {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut form = Form {
                max: (self.max != Duration::MAX).then_some(Text(self.max)),
                ..Form::default()
            };
            match self.kind {
                Kind::Constant(d) => form.constant = Some(Text(d)),
                Kind::Linear { initial, step } => {
                    form.linear = Some(Text(initial));
                    form.step = Some(Text(step));
                }
                Kind::Exponential { initial, growth } => {
                    form.exponential = Some(Text(initial));
                    form.multiplier = Some(Multiplier(growth.num, growth.den));
                }
                Kind::Custom(never) => match never {},
            }
            form.serialize(serializer)
        }
    }

    /// A multiplier as written: a whole number (`3`), or text holding a decimal (`"1.5"`,
    /// up to 9 decimals) or a fraction (`"3/2"`). Written back whole, or as a fraction.
    struct Multiplier(u32, u32);

    impl Serialize for Multiplier {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self {
                Multiplier(num, 1) => serializer.serialize_u32(*num),
                Multiplier(num, den) => serializer.collect_str(&format_args!("{num}/{den}")),
            }
        }
    }

    impl<'de> Deserialize<'de> for Multiplier {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Multiplier, D::Error> {
            deserializer.deserialize_any(MultiplierVisitor)
        }
    }

    struct MultiplierVisitor;

    impl de::Visitor<'_> for MultiplierVisitor {
        type Value = Multiplier;
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a whole multiplier, or text such as \"1.5\" or \"3/2\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Multiplier, E> {
            u32::try_from(v)
                .map(|n| Multiplier(n, 1))
                .map_err(|_| E::custom("backoff.multiplier: too large"))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Multiplier, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom("backoff.multiplier must be at least 1")),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Multiplier, E> {
            parse_multiplier(v).ok_or_else(|| {
                E::custom("backoff.multiplier: expected a decimal such as \"1.5\" or a fraction such as \"3/2\"")
            })
        }
    }

    /// `"1.5"` → 15/10, `"3/2"` → 3/2 (reduced later by `multiplier_ratio`).
    fn parse_multiplier(v: &str) -> Option<Multiplier> {
        let digits = |t: &str| -> Option<u32> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        if let Some((n, d)) = v.split_once('/') {
            return Some(Multiplier(digits(n.trim())?, digits(d.trim())?));
        }
        let (whole, frac) = v.trim().split_once('.').unwrap_or((v.trim(), "0"));
        if frac.len() > 9 {
            return None;
        }
        let den = 10u32.pow(frac.len() as u32);
        let num = digits(whole)?
            .checked_mul(den)?
            .checked_add(digits(frac)?)?;
        Some(Multiplier(num, den))
    }

    impl<'de> Deserialize<'de> for Backoff {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Backoff, D::Error> {
            Form::deserialize(deserializer)?.backoff()
        }
    }

    /// [`Jitter`] as written: unit variants as strings, `{ proportional = p }`, `{ additive = t }`.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum JitterForm {
        None,
        Full,
        Equal,
        Decorrelated,
        Proportional(u8),
        Additive(u32),
    }

    impl Serialize for Jitter {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match *self {
                Jitter::None => JitterForm::None,
                Jitter::Full => JitterForm::Full,
                Jitter::Equal => JitterForm::Equal,
                Jitter::Decorrelated => JitterForm::Decorrelated,
                Jitter::Proportional(p) => JitterForm::Proportional(p),
                Jitter::Additive(t) => JitterForm::Additive(t),
            }
            .serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Jitter {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Jitter, D::Error> {
            let j = match JitterForm::deserialize(deserializer)? {
                JitterForm::None => Jitter::None,
                JitterForm::Full => Jitter::Full,
                JitterForm::Equal => Jitter::Equal,
                JitterForm::Decorrelated => Jitter::Decorrelated,
                JitterForm::Proportional(p) => Jitter::Proportional(p),
                JitterForm::Additive(t) => Jitter::Additive(t),
            };
            match j.validate() {
                Ok(()) => Ok(j),
                Err(e) => Err(de::Error::custom(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn table<D: BackoffFn>(b: &Backoff<D>, n: u32) -> [u64; 8] {
        core::array::from_fn(|i| b.delay_nanos(n + i as u32))
    }

    #[test]
    fn every_kind_with_literal_delays() {
        let c = Backoff::constant(Duration::from_millis(250));
        assert_eq!(table(&c, 1), [250 * MS; 8]);
        let l = Backoff::linear(Duration::from_millis(100), Duration::from_millis(100))
            .max(Duration::from_millis(500));
        assert_eq!(
            table(&l, 1),
            [100, 200, 300, 400, 500, 500, 500, 500].map(|x| x * MS)
        );
        let e = Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(60));
        assert_eq!(table(&e, 1), [1, 2, 4, 8, 16, 32, 60, 60].map(|x| x * S));
        let e3 = Backoff::exponential(Duration::from_millis(10)).multiplier(3);
        assert_eq!(table(&e3, 1)[..4], [10 * MS, 30 * MS, 90 * MS, 270 * MS]);
        let e1 = Backoff::exponential(Duration::from_secs(2)).multiplier(1);
        assert_eq!(e1.delay_nanos(u32::MAX), 2 * S);
        let f = Backoff::custom(|n| Duration::from_secs(n as u64 * n as u64));
        assert_eq!(table(&f, 1)[..4], [S, 4 * S, 9 * S, 16 * S]);
        // Retry 0 is read as the first retry.
        assert_eq!(e.delay_nanos(0), S);
    }

    /// resilience4j `IntervalFunction.ofExponentialBackoff(500 ms, 1.5)` (its defaults):
    /// `initial × 1.5^(n-1)`, 500, 750, 1125, 1687.5, 2531.25 ms; and Polly's `MaxDelay`, a cap
    /// that simply caps.
    #[test]
    fn fractional_multiplier_with_literal_delays() {
        let b = Backoff::exponential(Duration::from_millis(500)).multiplier_ratio(3, 2);
        assert_eq!(
            table(&b, 1)[..5],
            [
                500_000_000,
                750_000_000,
                1_125_000_000,
                1_687_500_000,
                2_531_250_000
            ]
        );
        // 6/4 is 3/2.
        assert_eq!(b, b.multiplier_ratio(6, 4));
        assert_eq!(b.multiplier_ratio(4, 2), b.multiplier(2));
        // 1.0001: 1 s × 1.0001^10 000 = e^0.99995 s = 2.71814... s (within 2^-32 per step).
        let slow = Backoff::exponential(Duration::from_secs(1)).multiplier_ratio(10_001, 10_000);
        assert_eq!(slow.delay_nanos(2), 1_000_100_000);
        let d = slow.delay_nanos(10_001);
        assert!((2_718_140_000..=2_718_150_000).contains(&d), "{d}");
        // Saturates, whatever the retry number.
        assert_eq!(b.delay_nanos(u32::MAX), u64::MAX);
        assert_eq!(b.max(Duration::from_secs(2)).delay_nanos(5), 2 * S);
        // Polly: MaxDelay 1 s below a 2 s base delay → every delay is 1 s.
        let capped = Backoff::exponential(Duration::from_secs(2)).max(Duration::from_secs(1));
        assert_eq!(table(&capped, 1), [S; 8]);
    }

    /// A random source that returns the same 64 bits every time, to pin a draw.
    struct Fixed(u64);
    impl RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    /// tower `ExponentialBackoff`: "a random, uniform duration on `[0, base*jitter]` no
    /// greater than `max - base`" added to the base. With the top draw, the whole span;
    /// with the middle draw, half of it; the cap last.
    #[test]
    fn additive_jitter_with_pinned_draws() {
        let d = 10 * S;
        let j = Jitter::Additive(500); // tower's jitter 0.5
        assert_eq!(j.apply(d, S, u64::MAX, 0, &mut Fixed(0)), d);
        assert_eq!(j.apply(d, S, u64::MAX, 0, &mut Fixed(u64::MAX)), 15 * S);
        assert_eq!(
            j.apply(d, S, u64::MAX, 0, &mut Fixed(1 << 63)),
            12_500_000_000
        );
        assert_eq!(j.apply(d, S, 12 * S, 0, &mut Fixed(u64::MAX)), 12 * S);
        assert_eq!(
            Jitter::Additive(100_000).apply(u64::MAX, 0, u64::MAX, 0, &mut Fixed(u64::MAX)),
            u64::MAX
        );
    }

    #[test]
    fn huge_inputs_saturate() {
        let e = Backoff::exponential(Duration::MAX).multiplier(u32::MAX);
        assert_eq!(e.delay_nanos(u32::MAX), u64::MAX);
        let l = Backoff::linear(Duration::MAX, Duration::MAX);
        assert_eq!(l.delay_nanos(u32::MAX), u64::MAX);
        let e = Backoff::exponential(Duration::from_nanos(1)).multiplier(2);
        assert_eq!(e.delay_nanos(64), 1 << 63);
        assert_eq!(e.delay_nanos(65), u64::MAX);
    }

    #[test]
    fn validation() {
        let e = Backoff::exponential(Duration::from_secs(1));
        assert_eq!(e.validate(), Ok(()));
        assert_eq!(e.multiplier(0).validate(), Err(ConfigError::ZeroMultiplier));
        // A cap below the first delay is accepted and caps (Polly's MaxDelay).
        assert_eq!(e.max(Duration::from_millis(1)).validate(), Ok(()));
        assert_eq!(e.max(Duration::from_millis(1)).delay_nanos(1), MS);
        assert_eq!(
            e.multiplier_ratio(3, 0).validate(),
            Err(ConfigError::ZeroMultiplier)
        );
        assert_eq!(
            e.multiplier_ratio(2, 3).validate(),
            Err(ConfigError::MultiplierBelowOne)
        );
        assert_eq!(e.multiplier_ratio(1, 1).validate(), Ok(()));
        assert_eq!(Jitter::Additive(100_000).validate(), Ok(()));
        assert_eq!(
            Jitter::Additive(100_001).validate(),
            Err(ConfigError::PercentOutOfRange)
        );
        assert_eq!(
            Jitter::Proportional(101).validate(),
            Err(ConfigError::PercentOutOfRange)
        );
        assert_eq!(Jitter::Proportional(100).validate(), Ok(()));
    }

    /// Draws `n` jittered delays; asserts every one is in `lo..=hi` and that together they
    /// reach within 5 % of both ends (a real spread, not a constant).
    fn spread(j: Jitter, d: u64, base: u64, cap: u64, prev: u64, lo: u64, hi: u64) {
        let mut rng = Rng::new(42);
        let (mut min, mut max) = (u64::MAX, 0);
        for _ in 0..5_000 {
            let x = j.apply(d, base, cap, prev, &mut rng);
            assert!((lo..=hi).contains(&x), "{j:?}: {x} not in {lo}..={hi}");
            min = min.min(x);
            max = max.max(x);
        }
        let slack = (hi - lo) / 20;
        assert!(
            min <= lo + slack && max >= hi - slack,
            "{j:?}: {min}..{max}"
        );
    }

    #[test]
    fn jitter_distribution_bounds_and_spread() {
        let d = 10 * S;
        assert_eq!(Jitter::None.apply(d, S, u64::MAX, 0, &mut Rng::new(1)), d);
        spread(Jitter::Full, d, S, u64::MAX, 0, 0, d);
        spread(Jitter::Equal, d, S, u64::MAX, 0, d / 2, d);
        spread(Jitter::Proportional(20), d, S, u64::MAX, 0, 8 * S, 12 * S);
        spread(Jitter::Decorrelated, d, S, u64::MAX, 4 * S, S, 12 * S);
        // Decorrelated before any retry: prev = base → [base, 3 base].
        spread(Jitter::Decorrelated, d, S, u64::MAX, 0, S, 3 * S);
        // The cap bounds every kind, jitter included.
        let mut rng = Rng::new(3);
        for j in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::Proportional(100),
        ] {
            for _ in 0..1_000 {
                assert!(j.apply(d, S, 9 * S, 50 * S, &mut rng) <= 9 * S);
            }
        }
    }

    #[test]
    fn jitter_at_extremes_does_not_panic() {
        let mut rng = Rng::new(0);
        for j in [
            Jitter::Additive(0),
            Jitter::Additive(u32::MAX),
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::Proportional(100),
            Jitter::Proportional(255),
        ] {
            for (d, base, prev) in [(0, 0, 0), (u64::MAX, u64::MAX, u64::MAX), (u64::MAX, 0, 1)] {
                let _ = j.apply(d, base, u64::MAX, prev, &mut rng);
            }
        }
    }
}
