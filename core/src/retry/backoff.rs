//! Backoff (how long to wait before each retry) and jitter (how to spread it).

use core::time::Duration;

use super::error::ConfigError;
use crate::rng::Rng;
use crate::time::duration_to_nanos;

#[derive(Copy, Clone, Debug)]
enum Kind {
    Constant(Duration),
    Linear { initial: Duration, step: Duration },
    Exponential { initial: Duration, multiplier: u32 },
    Custom(fn(u32) -> Duration),
}

/// How long to wait before retry number `n` (1 = the first retry), before jitter. Every
/// delay saturates at the cap ([`Backoff::max`]); nothing overflows, whatever `n` is.
///
/// | kind | delay before retry `n` |
/// |---|---|
/// | [`constant(d)`](Backoff::constant) | `d` |
/// | [`linear(initial, step)`](Backoff::linear) | `initial + (n - 1) × step` |
/// | [`exponential(initial)`](Backoff::exponential) | `initial × multiplier^(n - 1)` (multiplier 2 unless [set](Backoff::multiplier)) |
/// | [`custom(f)`](Backoff::custom) | `f(n)` |
///
/// then `min(.., max)`. The cap defaults to unbounded.
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
an optional `multiplier`, default 2), each the first delay as [text](crate::duration), and
an optional cap `max` (default unbounded). A [custom](Backoff::custom) backoff has no file
form: serializing one is an error.

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
] {
    assert_eq!(toml::from_str::<Policy>(text).unwrap().backoff, want);
}
let err = toml::from_str::<Policy>(r#"backoff = { constant = "1s", step = "1s" }"#);
assert!(err.unwrap_err().message().contains("step"));
```
"##
)]
#[derive(Copy, Clone, Debug)]
pub struct Backoff {
    kind: Kind,
    max: Duration,
}

/// Equal when of the same kind with the same delays and cap; two [custom](Backoff::custom)
/// backoffs are equal when they are the same function (by address, which the compiler does not
/// promise to keep unique or stable: prefer not to rely on it for custom backoffs).
impl PartialEq for Backoff {
    fn eq(&self, other: &Backoff) -> bool {
        let kinds = match (self.kind, other.kind) {
            (Kind::Constant(a), Kind::Constant(b)) => a == b,
            (
                Kind::Linear { initial, step },
                Kind::Linear {
                    initial: i2,
                    step: s2,
                },
            ) => initial == i2 && step == s2,
            (
                Kind::Exponential {
                    initial,
                    multiplier,
                },
                Kind::Exponential {
                    initial: i2,
                    multiplier: m2,
                },
            ) => initial == i2 && multiplier == m2,
            (Kind::Custom(a), Kind::Custom(b)) => core::ptr::fn_addr_eq(a, b),
            _ => false,
        };
        kinds && self.max == other.max
    }
}

impl Eq for Backoff {}

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

    /// `initial`, multiplied by 2 (see [`multiplier`](Backoff::multiplier)) before each
    /// further retry. A zero `initial` never grows: the policy rejects it
    /// ([`ConfigError::ZeroInitialDelay`]).
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
                multiplier: 2,
            },
            max: Duration::MAX,
        }
    }

    /// A delay computed by `f` from the retry number (1 = the first retry). A plain `fn` or
    /// a closure that captures nothing; it should not panic.
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// // Fibonacci-ish, in tenths of a second.
    /// let b = Backoff::custom(|n| Duration::from_millis([100, 100, 200, 300, 500][(n as usize - 1).min(4)]))
    ///     .max(Duration::from_millis(400));
    /// assert_eq!(b.delay(4), Duration::from_millis(300));
    /// assert_eq!(b.delay(5), Duration::from_millis(400));
    /// ```
    pub const fn custom(f: fn(u32) -> Duration) -> Backoff {
        Backoff {
            kind: Kind::Custom(f),
            max: Duration::MAX,
        }
    }

    /// The growth factor of an exponential backoff (default 2; ignored by the other kinds).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::exponential(Duration::from_secs(1)).multiplier(3);
    /// assert_eq!(b.delay(3), Duration::from_secs(9));
    /// ```
    pub const fn multiplier(mut self, multiplier: u32) -> Backoff {
        if let Kind::Exponential { initial, .. } = self.kind {
            self.kind = Kind::Exponential {
                initial,
                multiplier,
            };
        }
        self
    }

    /// The cap: no delay exceeds it, jitter included (default: unbounded).
    ///
    /// ```
    /// use bulwark::retry::Backoff;
    /// use core::time::Duration;
    /// let b = Backoff::linear(Duration::from_secs(1), Duration::from_secs(1)).max(Duration::from_secs(3));
    /// assert_eq!(b.delay(10), Duration::from_secs(3));
    /// assert_eq!(b.cap(), Duration::from_secs(3));
    /// ```
    pub const fn max(mut self, cap: Duration) -> Backoff {
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
    pub fn delay(&self, n: u32) -> Duration {
        Duration::from_nanos(self.delay_nanos(n))
    }

    /// [`delay`](Backoff::delay) in nanoseconds (saturating at `u64::MAX`).
    pub(crate) fn delay_nanos(&self, n: u32) -> u64 {
        let k = n.max(1) - 1; // growth steps
        let d = match self.kind {
            Kind::Constant(d) => duration_to_nanos(d),
            Kind::Linear { initial, step } => duration_to_nanos(initial)
                .saturating_add(duration_to_nanos(step).saturating_mul(k as u64)),
            Kind::Exponential {
                initial,
                multiplier,
            } => {
                let factor = (multiplier as u64).checked_pow(k).unwrap_or(u64::MAX);
                duration_to_nanos(initial).saturating_mul(factor)
            }
            Kind::Custom(f) => duration_to_nanos(f(n.max(1))),
        };
        d.min(duration_to_nanos(self.max))
    }

    /// Checks the backoff (see [`ConfigError`]).
    pub(crate) const fn validate(&self) -> Result<(), ConfigError> {
        let initial = match self.kind {
            Kind::Constant(d) => d,
            Kind::Linear { initial, .. } => initial,
            Kind::Exponential {
                initial,
                multiplier,
            } => {
                if multiplier == 0 {
                    return Err(ConfigError::ZeroMultiplier);
                }
                if initial.is_zero() {
                    return Err(ConfigError::ZeroInitialDelay);
                }
                initial
            }
            Kind::Custom(_) => Duration::ZERO,
        };
        if duration_to_nanos(self.max) < duration_to_nanos(initial) {
            return Err(ConfigError::MaxBelowInitial);
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
///
/// The result is capped at `cap` in every case. The default is [`Full`](Jitter::Full) (why:
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
}

impl Jitter {
    /// Applies the jitter to `d` (nanoseconds); `base`, `cap`, `prev` as in the table.
    pub(crate) fn apply(self, d: u64, base: u64, cap: u64, prev: u64, rng: &mut Rng) -> u64 {
        let j = match self {
            Jitter::None => d,
            Jitter::Full => rng.up_to(d),
            Jitter::Equal => d / 2 + rng.up_to(d - d / 2),
            Jitter::Decorrelated => rng.between(base, prev.max(base).saturating_mul(3)),
            Jitter::Proportional(p) => {
                let span = (d as u128 * p.min(100) as u128 / 100) as u64;
                rng.between(d - span, d.saturating_add(span))
            }
        };
        j.min(cap)
    }

    pub(crate) const fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Jitter::Proportional(p) if *p > 100 => Err(ConfigError::PercentOutOfRange),
            _ => Ok(()),
        }
    }
}

/// The file forms of [`Backoff`] and [`Jitter`] (feature `serde`).
#[cfg(feature = "serde")]
mod serde_form {
    use core::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

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
        multiplier: Option<u32>,
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
                    Backoff::exponential(initial.0).multiplier(self.multiplier.unwrap_or(2))
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
                Kind::Exponential {
                    initial,
                    multiplier,
                } => {
                    form.exponential = Some(Text(initial));
                    form.multiplier = Some(multiplier);
                }
                Kind::Custom(_) => {
                    return Err(ser::Error::custom(
                        "a custom backoff (a function) cannot be serialized",
                    ));
                }
            }
            form.serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Backoff {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Backoff, D::Error> {
            Form::deserialize(deserializer)?.backoff()
        }
    }

    /// [`Jitter`] as written: unit variants as strings, `{ proportional = p }`.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum JitterForm {
        None,
        Full,
        Equal,
        Decorrelated,
        Proportional(u8),
    }

    impl Serialize for Jitter {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match *self {
                Jitter::None => JitterForm::None,
                Jitter::Full => JitterForm::Full,
                Jitter::Equal => JitterForm::Equal,
                Jitter::Decorrelated => JitterForm::Decorrelated,
                Jitter::Proportional(p) => JitterForm::Proportional(p),
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

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn table(b: &Backoff, n: u32) -> [u64; 8] {
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
        assert_eq!(
            e.max(Duration::from_millis(1)).validate(),
            Err(ConfigError::MaxBelowInitial)
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
