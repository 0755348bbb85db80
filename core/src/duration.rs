//! Durations as a person writes them: `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"500us"`, `"0s"`.
//!
//! The text form of every duration in a configuration file (feature `serde`), also usable on
//! its own (a command-line argument, an environment variable). No allocation: [`parse`] reads
//! a `&str`, [`Text`] writes through [`Display`](core::fmt::Display).
//!
//! # Syntax
//!
//! A decimal number, optionally with a fraction, then a unit, optionally after spaces:
//!
//! | unit | meaning |
//! |---|---|
//! | `h` | hours |
//! | `m` | minutes |
//! | `s` | seconds |
//! | `ms` | milliseconds |
//! | `us` (or `µs`) | microseconds |
//! | `ns` | nanoseconds |
//!
//! `"1.5s"`, `"0.25h"` and `"10 ms"` are fine; the unit is never optional (`"0"` and a bare
//! integer are refused: a number alone would be milliseconds to one reader and seconds to
//! another). A value finer than a nanosecond (`"1.0000000005s"`) or above
//! [`Duration::MAX`] is refused rather than rounded.
//!
//! [`Text`] writes the shortest exact form: of a whole number of hours or minutes, and of a
//! decimal of seconds, milliseconds or microseconds at least 1 in that unit, or of
//! nanoseconds, the shortest string; on a tie, the larger unit (`"1.5s"`, `"100ms"`, `"90s"`,
//! `"2m"`, `"90m"`, `"500us"`, `"0s"`). What it writes, [`parse`] reads back exactly.
//!
//! # Examples
//!
//! ```
//! use bulwark::duration::{self, Text};
//! use core::time::Duration;
//!
//! assert_eq!(duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
//! assert_eq!(duration::parse("2m"), Ok(Duration::from_secs(120)));
//! assert_eq!(Text(Duration::from_millis(1500)).to_string(), "1.5s");
//! assert_eq!(Text(Duration::from_millis(100)).to_string(), "100ms");
//! assert!(duration::parse("10 parsecs").is_err());
//! ```

use core::fmt::{self, Write};
use core::str::FromStr;
use core::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// [`Duration::MAX`] in nanoseconds.
const MAX_NANOS: u128 = u64::MAX as u128 * NANOS_PER_SEC + (NANOS_PER_SEC - 1);

/// The units, largest first: the name written, and nanoseconds per unit.
const UNITS: [(&str, u128); 6] = [
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a string is not a duration (see the [syntax](self#syntax)).
///
/// ```
/// use bulwark::duration::{ParseError, parse};
/// assert_eq!(parse("10 parsecs"), Err(ParseError::UnknownUnit));
/// assert_eq!(parse("250"), Err(ParseError::NoUnit));
/// assert_eq!(
///     ParseError::UnknownUnit.to_string(),
///     "unknown unit (use h, m, s, ms, us or ns)"
/// );
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The string is empty (or only spaces).
    Empty,
    /// It does not start with a decimal number (`"ms"`, `".5s"`, `"-1s"`, `"1.s"`).
    NoNumber,
    /// A number without a unit (`"250"`).
    NoUnit,
    /// The unit is not one of `h`, `m`, `s`, `ms`, `us`, `µs`, `ns`.
    UnknownUnit,
    /// The value is not a whole number of nanoseconds (`"0.5ns"`).
    SubNanosecond,
    /// The value is above [`Duration::MAX`] (about 584 billion years).
    TooLarge,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty",
            ParseError::NoNumber => "it must start with a number, such as 250ms or 1.5s",
            ParseError::NoUnit => "a unit is needed after the number (h, m, s, ms, us or ns)",
            ParseError::UnknownUnit => "unknown unit (use h, m, s, ms, us or ns)",
            ParseError::SubNanosecond => "finer than a nanosecond",
            ParseError::TooLarge => "too large for a Duration",
        })
    }
}

impl core::error::Error for ParseError {}

/// Reads a duration written as in the [syntax](self#syntax): a number, a fraction if needed,
/// and a unit (`"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"500us"`, `"0s"`).
///
/// # Errors
///
/// [`ParseError`] saying what is wrong; nothing is rounded.
///
/// ```
/// use bulwark::duration::{ParseError, parse};
/// use core::time::Duration;
/// assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
/// assert_eq!(parse(" 10 ms "), Ok(Duration::from_millis(10)));
/// assert_eq!(parse("0.25h"), Ok(Duration::from_secs(900)));
/// assert_eq!(parse("0s"), Ok(Duration::ZERO));
/// assert_eq!(parse("1.0000000005s"), Err(ParseError::SubNanosecond));
/// ```
pub fn parse(s: &str) -> Result<Duration, ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let bytes = s.as_bytes();
    let int_end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    if int_end == 0 {
        return Err(ParseError::NoNumber);
    }
    let (mut number_end, mut fraction) = (int_end, "");
    if bytes.get(int_end) == Some(&b'.') {
        let rest = &s[int_end + 1..];
        let len = rest
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(ParseError::NoNumber);
        }
        fraction = rest[..len].trim_end_matches('0');
        number_end = int_end + 1 + len;
    }
    let unit = s[number_end..].trim_start();
    if unit.is_empty() {
        return Err(ParseError::NoUnit);
    }
    let per_unit = match unit {
        "µs" => 1_000,
        _ => match UNITS.iter().find(|(name, _)| *name == unit) {
            Some(&(_, n)) => n,
            None => return Err(ParseError::UnknownUnit),
        },
    };
    // The number as an integer `mantissa / 10^fraction.len()`, in u128 (checked).
    let mut mantissa: u128 = 0;
    for b in s[..int_end].bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(b - b'0')))
            .ok_or(ParseError::TooLarge)?;
    }
    let scaled = mantissa.checked_mul(per_unit).ok_or(ParseError::TooLarge)?;
    let divisor = u32::try_from(fraction.len())
        .ok()
        .and_then(|n| 10u128.checked_pow(n));
    let nanos = match divisor {
        Some(d) if scaled % d == 0 => scaled / d,
        Some(_) => return Err(ParseError::SubNanosecond),
        // More than 38 significant fraction digits: finer than a nanosecond in every unit.
        None => return Err(ParseError::SubNanosecond),
    };
    if nanos > MAX_NANOS {
        return Err(ParseError::TooLarge);
    }
    Ok(Duration::new(
        (nanos / NANOS_PER_SEC) as u64,
        (nanos % NANOS_PER_SEC) as u32,
    ))
}

/// Writes a duration in the shortest exact form [`parse`] reads back (see the
/// [module](self)): `"1.5s"`, `"100ms"`, `"2m"`, `"0s"`. With the `serde` feature it also
/// serializes to, and deserializes from, that string.
///
/// ```
/// use bulwark::duration::{Text, parse};
/// use core::time::Duration;
/// for d in [Duration::from_millis(250), Duration::from_secs(5400), Duration::MAX] {
///     assert_eq!(parse(&Text(d).to_string()), Ok(d));
/// }
/// assert_eq!(Text(Duration::from_secs(5400)).to_string(), "90m");
/// assert_eq!(Text(Duration::from_nanos(1_500)).to_string(), "1.5us");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Text(pub Duration);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Buf::shortest(self.0).as_str())
    }
}

/// Room for the longest form: 20 digits, a point, 9 digits and a unit.
const BUF_LEN: usize = 40;

/// [`parse`], for `str::parse` and argument parsers.
///
/// ```
/// use bulwark::duration::Text;
/// use core::time::Duration;
/// let t: Text = "250ms".parse().unwrap();
/// assert_eq!(t, Text(Duration::from_millis(250)));
/// assert!("250".parse::<Text>().is_err());
/// ```
impl FromStr for Text {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Text, ParseError> {
        parse(s).map(Text)
    }
}

/// A duration written on the stack.
struct Buf {
    bytes: [u8; BUF_LEN],
    len: usize,
}

impl Buf {
    const fn new() -> Buf {
        Buf {
            bytes: [0; BUF_LEN],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// `d` in `unit` (`per_unit` nanoseconds), if that form is allowed: a whole number of
    /// hours or minutes, a decimal of at least 1 of the smaller units.
    fn in_unit(nanos: u128, name: &str, per_unit: u128) -> Option<Buf> {
        let (whole, part) = (nanos / per_unit, nanos % per_unit);
        let decimal = per_unit <= NANOS_PER_SEC;
        if (decimal && whole == 0 && nanos != 0) || (!decimal && part != 0) {
            return None;
        }
        let mut b = Buf::new();
        let written = (|| {
            write!(b, "{whole}")?;
            if part != 0 {
                // `per_unit` is a power of ten here: the fraction to its width, trimmed.
                let width = per_unit.ilog10() as usize;
                let mut digits = Buf::new();
                write!(digits, "{part:0width$}")?;
                write!(b, ".{}", digits.as_str().trim_end_matches('0'))?;
            }
            b.write_str(name)
        })();
        written.ok().map(|()| b)
    }

    /// The shortest exact form; on a tie, the larger unit.
    fn shortest(d: Duration) -> Buf {
        let nanos = d.as_nanos();
        if nanos == 0 {
            let mut b = Buf::new();
            let _ = b.write_str("0s");
            return b;
        }
        let mut best: Option<Buf> = None;
        for &(name, per_unit) in &UNITS {
            if let Some(b) = Buf::in_unit(nanos, name, per_unit)
                && best.as_ref().is_none_or(|x| b.len < x.len)
            {
                best = Some(b);
            }
        }
        // Nanoseconds always qualify.
        best.unwrap_or_else(Buf::new)
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use core::fmt;
    use core::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Buf, Text, parse};

    impl Serialize for Text {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(Buf::shortest(self.0).as_str())
        }
    }

    struct TextVisitor;

    impl Visitor<'_> for TextVisitor {
        type Value = Text;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration with a unit, such as \"250ms\", \"1.5s\" or \"2m\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
            match parse(v) {
                Ok(d) => Ok(Text(d)),
                Err(e) => Err(E::custom(format_args!("invalid duration {v:?}: {e}"))),
            }
        }
    }

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
            deserializer.deserialize_str(TextVisitor)
        }
    }

    /// Serializes `d` as its [`Text`]: for `#[serde(with = "bulwark::duration")]` on a
    /// `Duration` field of your own types.
    ///
    /// ```
    /// use core::time::Duration;
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Scenario {
    ///     #[serde(with = "bulwark::duration")]
    ///     length: Duration,
    /// }
    /// let s: Scenario = toml::from_str(r#"length = "10m""#).unwrap();
    /// assert_eq!(s, Scenario { length: Duration::from_secs(600) });
    /// assert_eq!(toml::to_string(&s).unwrap(), "length = \"10m\"\n");
    /// ```
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        Text(*d).serialize(serializer)
    }

    /// Deserializes a [`Text`] duration: for `#[serde(with = "bulwark::duration")]`.
    ///
    /// ```
    /// use core::time::Duration;
    /// #[derive(serde::Deserialize)]
    /// struct Probe {
    ///     #[serde(with = "bulwark::duration")]
    ///     every: Duration,
    /// }
    /// let p: Probe = serde_json::from_str(r#"{ "every": "1.5s" }"#).unwrap();
    /// assert_eq!(p.every, Duration::from_millis(1500));
    /// let e = serde_json::from_str::<Probe>(r#"{ "every": "10 parsecs" }"#).err().unwrap();
    /// assert!(e.to_string().starts_with("invalid duration \"10 parsecs\": unknown unit"));
    /// ```
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Text::deserialize(deserializer).map(|t| t.0)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use serde_impls::{deserialize, serialize};

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Duration) -> Buf {
        Buf::shortest(d)
    }

    #[test]
    fn parses_every_unit_and_fraction() {
        let ms = Duration::from_millis;
        let cases = [
            ("250ms", ms(250)),
            ("1.5s", ms(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.50000000000000000000000000000000000000000000s", ms(1500)),
            ("0.5m", Duration::from_secs(30)),
            ("10 ms", ms(10)),
            ("18446744073709551615.999999999s", Duration::MAX),
        ];
        for (s, d) in cases {
            assert_eq!(parse(s), Ok(d), "{s}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        use ParseError::*;
        let cases = [
            ("", Empty),
            ("  ", Empty),
            ("ms", NoNumber),
            (".5s", NoNumber),
            ("-1s", NoNumber),
            ("1.s", NoNumber),
            ("250", NoUnit),
            ("10 parsecs", UnknownUnit),
            ("1sec", UnknownUnit),
            ("1s2", UnknownUnit),
            ("0.5ns", SubNanosecond),
            ("1.0000000001s", SubNanosecond),
            ("18446744073709551616s", TooLarge),
            ("999999999999999999999999999999999999999999h", TooLarge),
        ];
        for (s, e) in cases {
            assert_eq!(parse(s), Err(e), "{s}");
        }
    }

    #[test]
    fn writes_the_shortest_exact_form() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_micros(500), "500us"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(1001), "1.001s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(5400), "90m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(36 * 3600), "36h"),
            (Duration::new(1, 1), "1.000000001s"),
            (Duration::MAX, "18446744073709551615.999999999s"),
        ];
        for (d, s) in cases {
            assert_eq!(text(d).as_str(), s);
            assert_eq!(parse(s), Ok(d));
        }
    }

    #[test]
    fn round_trips_across_magnitudes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = Duration::new(x >> (x % 64), (x % 1_000_000_000) as u32);
            for d in [d, Duration::from_nanos(x % 10_000_000_000)] {
                assert_eq!(parse(text(d).as_str()), Ok(d), "{d:?}");
            }
        }
    }
}
