//! The two wire formats of a caller's remaining time: gRPC's `grpc-timeout` and a plain count
//! of milliseconds (Envoy's `x-envoy-expected-rq-timeout-ms`, or a header you name).

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
use http::header::HeaderName;

/// `grpc-timeout`: the caller's remaining time, as gRPC sends it (`100m`, `5S`, `1H`).
///
/// ```
/// let mut req = http::Request::new(());
/// req.headers_mut().insert(bulwark_http::GRPC_TIMEOUT, http::HeaderValue::from_static("5S"));
/// assert_eq!(req.headers()["grpc-timeout"], "5S");
/// ```
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// `x-envoy-expected-rq-timeout-ms`: the time Envoy will wait for the response, in
/// milliseconds.
///
/// ```
/// assert_eq!(bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS.as_str(), "x-envoy-expected-rq-timeout-ms");
/// ```
pub const ENVOY_EXPECTED_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");

/// The most digits gRPC allows in a `grpc-timeout` value.
///
/// ```
/// use bulwark_http::{GRPC_TIMEOUT_MAX_DIGITS, parse_grpc_timeout};
/// assert!(parse_grpc_timeout(&[b"9".repeat(GRPC_TIMEOUT_MAX_DIGITS), b"n".to_vec()].concat()).is_ok());
/// assert!(parse_grpc_timeout(&[b"9".repeat(GRPC_TIMEOUT_MAX_DIGITS + 1), b"n".to_vec()].concat()).is_err());
/// ```
pub const GRPC_TIMEOUT_MAX_DIGITS: usize = 8;

const GRPC_MAX_VALUE: u128 = 99_999_999;

/// The units of `grpc-timeout`, finest first, with their length in nanoseconds.
const GRPC_UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// Why a timeout header's value was not understood.
///
/// ```
/// use bulwark_http::{HeaderError, parse_grpc_timeout};
/// let e = parse_grpc_timeout(b"123456789m").unwrap_err();
/// assert_eq!(e, HeaderError::TooManyDigits { digits: 9 });
/// assert_eq!(e.to_string(), "grpc-timeout has 9 digits; at most 8 are allowed");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderError {
    /// The value is empty (or only a unit, with no digits).
    Empty,
    /// A byte that is not an ASCII digit where a digit was expected (at this byte offset).
    NotADigit {
        /// Byte offset of the offending byte.
        at: usize,
    },
    /// A `grpc-timeout` value with more than [`GRPC_TIMEOUT_MAX_DIGITS`] digits.
    TooManyDigits {
        /// How many digits it had.
        digits: usize,
    },
    /// A `grpc-timeout` value whose last byte is a digit: the unit is missing.
    MissingUnit,
    /// A `grpc-timeout` unit other than `H`, `M`, `S`, `m`, `u`, `n`.
    UnknownUnit {
        /// The byte found where the unit should be.
        unit: u8,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Empty => f.write_str("timeout header is empty"),
            HeaderError::NotADigit { at } => {
                write!(f, "timeout header has a non-digit at byte {at}")
            }
            HeaderError::TooManyDigits { digits } => write!(
                f,
                "grpc-timeout has {digits} digits; at most {GRPC_TIMEOUT_MAX_DIGITS} are allowed"
            ),
            HeaderError::MissingUnit => {
                f.write_str("grpc-timeout has no unit (one of H, M, S, m, u, n)")
            }
            HeaderError::UnknownUnit { unit } => write!(
                f,
                "grpc-timeout unit {:?} is not one of H, M, S, m, u, n",
                char::from(*unit)
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Reads a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H` hours, `M` minutes, `S`
/// seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds), nothing else (no sign, no
/// spaces). Zero is accepted (a deadline that has already passed). The largest value,
/// `99999999H`, is about 11 400 years and fits a [`Duration`]: nothing here can overflow.
///
/// # Errors
///
/// [`HeaderError`] naming what is wrong; never a panic, whatever the bytes.
///
/// # Examples
///
/// ```
/// use bulwark_http::{HeaderError, parse_grpc_timeout};
/// use std::time::Duration;
/// assert_eq!(parse_grpc_timeout(b"250m"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_grpc_timeout(b"2H"), Ok(Duration::from_secs(7200)));
/// assert_eq!(parse_grpc_timeout(b"10x"), Err(HeaderError::UnknownUnit { unit: b'x' }));
/// assert_eq!(parse_grpc_timeout(b"10"), Err(HeaderError::MissingUnit));
/// ```
pub fn parse_grpc_timeout(value: &[u8]) -> Result<Duration, HeaderError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(HeaderError::Empty);
    };
    if unit.is_ascii_digit() {
        return Err(HeaderError::MissingUnit);
    }
    if digits.is_empty() {
        return Err(HeaderError::Empty);
    }
    if digits.len() > GRPC_TIMEOUT_MAX_DIGITS {
        return Err(HeaderError::TooManyDigits {
            digits: digits.len(),
        });
    }
    let n = parse_digits(digits)?;
    let per: u64 = match unit {
        b'H' => 3_600,
        b'M' => 60,
        b'S' => 1,
        b'm' => return Ok(Duration::from_millis(n)),
        b'u' => return Ok(Duration::from_micros(n)),
        b'n' => return Ok(Duration::from_nanos(n)),
        unit => return Err(HeaderError::UnknownUnit { unit }),
    };
    // n < 10^8 and per <= 3600: the product is below 3.6 * 10^11, far from u64::MAX.
    Ok(Duration::from_secs(n.saturating_mul(per)))
}

/// Writes a duration as a `grpc-timeout` value: in the finest unit whose count fits in eight
/// digits, rounded **up** to that unit (so the callee never sees more time than the caller
/// has left rounded down to nothing: 1 ns stays `1n`; 100 000 000 ns becomes `100000u`).
/// Durations beyond `99999999H` are written as `99999999H`.
///
/// ```
/// use bulwark_http::format_grpc_timeout;
/// use std::time::Duration;
/// assert_eq!(format_grpc_timeout(Duration::from_millis(25)), "25000000n");
/// assert_eq!(format_grpc_timeout(Duration::from_millis(250)), "250000u"); // 9 digits of ns: µs
/// assert_eq!(format_grpc_timeout(Duration::from_millis(150_000)), "150000m");
/// assert_eq!(format_grpc_timeout(Duration::from_secs(3_000_000_000)), "50000000M");
/// assert_eq!(format_grpc_timeout(Duration::ZERO), "0n");
/// ```
pub fn format_grpc_timeout(d: Duration) -> HeaderValue {
    let nanos = d.as_nanos();
    let (unit, count) = GRPC_UNITS
        .iter()
        .map(|&(unit, len)| (unit, nanos.div_ceil(len)))
        .find(|&(_, count)| count <= GRPC_MAX_VALUE)
        .unwrap_or((b'H', GRPC_MAX_VALUE));
    let mut text = count.to_string();
    text.push(char::from(unit));
    // Digits and an ASCII letter are always a valid header value.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999H"))
}

/// Reads a count of milliseconds (`x-envoy-expected-rq-timeout-ms` and other headers of
/// that form): ASCII digits only. A count too large for a `u64` is capped at `u64::MAX`
/// milliseconds (about 585 million years) rather than rejected.
///
/// # Errors
///
/// [`HeaderError::Empty`] or [`HeaderError::NotADigit`]; never a panic.
///
/// ```
/// use bulwark_http::{HeaderError, parse_millis};
/// use std::time::Duration;
/// assert_eq!(parse_millis(b"1500"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_millis(b"99999999999999999999999"), Ok(Duration::from_millis(u64::MAX)));
/// assert_eq!(parse_millis(b"-5"), Err(HeaderError::NotADigit { at: 0 }));
/// ```
pub fn parse_millis(value: &[u8]) -> Result<Duration, HeaderError> {
    if value.is_empty() {
        return Err(HeaderError::Empty);
    }
    parse_digits(value).map(Duration::from_millis)
}

/// Writes a duration as whole milliseconds, rounded up (1 µs left is `1`, not `0`).
///
/// ```
/// use bulwark_http::format_millis;
/// use std::time::Duration;
/// assert_eq!(format_millis(Duration::from_micros(1_500)), "2");
/// assert_eq!(format_millis(Duration::ZERO), "0");
/// ```
pub fn format_millis(d: Duration) -> HeaderValue {
    let ms = d.as_nanos().div_ceil(1_000_000).min(u128::from(u64::MAX));
    HeaderValue::from(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// ASCII digits to a `u64`, saturating.
fn parse_digits(digits: &[u8]) -> Result<u64, HeaderError> {
    let mut n: u64 = 0;
    for (at, &b) in digits.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(HeaderError::NotADigit { at });
        }
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_table() {
        let ok: &[(&[u8], Duration)] = &[
            (b"1n", Duration::from_nanos(1)),
            (b"0n", Duration::ZERO),
            (b"0H", Duration::ZERO),
            (b"00000001S", Duration::from_secs(1)),
            (b"99999999n", Duration::from_nanos(99_999_999)),
            (b"99999999u", Duration::from_micros(99_999_999)),
            (b"99999999m", Duration::from_millis(99_999_999)),
            (b"99999999S", Duration::from_secs(99_999_999)),
            (b"99999999M", Duration::from_secs(99_999_999 * 60)),
            (b"99999999H", Duration::from_secs(99_999_999 * 3600)),
            (b"3M", Duration::from_secs(180)),
            (b"250m", Duration::from_millis(250)),
        ];
        for &(text, want) in ok {
            assert_eq!(
                parse_grpc_timeout(text),
                Ok(want),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let bad: &[(&[u8], HeaderError)] = &[
            (b"", HeaderError::Empty),
            (b"S", HeaderError::Empty),
            (b"100", HeaderError::MissingUnit),
            (b"100000000n", HeaderError::TooManyDigits { digits: 9 }),
            (
                b"18446744073709551616S",
                HeaderError::TooManyDigits { digits: 20 },
            ),
            (b"10s", HeaderError::UnknownUnit { unit: b's' }),
            (b"10h", HeaderError::UnknownUnit { unit: b'h' }),
            (b"1.5S", HeaderError::NotADigit { at: 1 }),
            (b"+5S", HeaderError::NotADigit { at: 0 }),
            (b"-5S", HeaderError::NotADigit { at: 0 }),
            (b" 5S", HeaderError::NotADigit { at: 0 }),
            (b"5 S", HeaderError::NotADigit { at: 1 }),
            (b"5S ", HeaderError::NotADigit { at: 1 }),
            (b"\xff\xfeS", HeaderError::NotADigit { at: 0 }),
            (b"12\xe2\x82\xacm", HeaderError::NotADigit { at: 2 }),
        ];
        for &(text, want) in bad {
            assert_eq!(
                parse_grpc_timeout(text),
                Err(want),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn grpc_timeout_format_table() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            // One past eight digits of nanoseconds: rounded up to microseconds.
            (Duration::from_nanos(100_000_000), "100000u"),
            (Duration::from_nanos(100_000_001), "100001u"),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(100_000_000), "1666667M"),
            (Duration::from_secs(99_999_999 * 60 + 1), "1666667H"),
            (Duration::from_secs(99_999_999 * 3600), "99999999H"),
            (Duration::from_secs(99_999_999 * 3600 + 1), "99999999H"),
            (Duration::MAX, "99999999H"),
        ];
        for &(d, want) in cases {
            assert_eq!(format_grpc_timeout(d), want, "{d:?}");
        }
    }

    #[test]
    fn grpc_timeout_round_trip_never_shrinks_and_fits_eight_digits() {
        let mut d = Duration::from_nanos(1);
        while d < Duration::from_secs(99_999_999 * 3600) {
            let text = format_grpc_timeout(d);
            assert!(text.len() <= GRPC_TIMEOUT_MAX_DIGITS + 1, "{text:?}");
            let back = parse_grpc_timeout(text.as_bytes()).unwrap();
            assert!(back >= d, "{d:?} -> {text:?} -> {back:?}");
            // Rounding up adds less than one unit, and a unit is chosen only when the next
            // finer one (at most 1000 times finer) needed more than 99 999 999 of itself.
            assert!(
                back - d <= d / 99_999 + Duration::from_nanos(1),
                "{d:?} -> {back:?}"
            );
            d = d * 3 + Duration::from_nanos(7);
        }
    }

    #[test]
    fn millis_table() {
        assert_eq!(parse_millis(b"0"), Ok(Duration::ZERO));
        assert_eq!(parse_millis(b"15000"), Ok(Duration::from_secs(15)));
        assert_eq!(
            parse_millis(b"18446744073709551615"),
            Ok(Duration::from_millis(u64::MAX))
        );
        assert_eq!(
            parse_millis(b"18446744073709551616"),
            Ok(Duration::from_millis(u64::MAX))
        );
        assert_eq!(parse_millis(b""), Err(HeaderError::Empty));
        assert_eq!(parse_millis(b"12ms"), Err(HeaderError::NotADigit { at: 2 }));
        assert_eq!(parse_millis(b"1e3"), Err(HeaderError::NotADigit { at: 1 }));
        assert_eq!(parse_millis(b" 1"), Err(HeaderError::NotADigit { at: 0 }));
        assert_eq!(format_millis(Duration::from_nanos(1)), "1");
        assert_eq!(format_millis(Duration::from_millis(250)), "250");
        assert_eq!(format_millis(Duration::MAX), u64::MAX.to_string().as_str());
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(HeaderError::Empty.to_string(), "timeout header is empty");
        assert_eq!(
            HeaderError::UnknownUnit { unit: b's' }.to_string(),
            "grpc-timeout unit 's' is not one of H, M, S, m, u, n"
        );
        assert_eq!(
            HeaderError::NotADigit { at: 3 }.to_string(),
            "timeout header has a non-digit at byte 3"
        );
    }
}
