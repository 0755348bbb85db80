//! Durations as people write them in files and on the command line: `250ms`, `20s`, `1.5s`,
//! `2m`, `90us`.

use core::time::Duration;

/// Parses a duration: a number (integer or decimal) followed by `ns`, `us`, `µs`, `ms`, `s`,
/// `m` or `h`.
///
/// # Errors
///
/// A message saying what was expected.
///
/// ```
/// use bulwark_sim::units::parse_duration;
/// use core::time::Duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("fast").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "`{s}` is not a duration: write e.g. `250ms`, `20s`, `2m`"
        ));
    }
    let unit_ns: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "" => {
            return Err(format!(
                "`{s}` has no unit: write e.g. `250ms`, `20s`, `2m`"
            ));
        }
        other => {
            return Err(format!(
                "`{other}` is not a time unit (ns, us, ms, s, m, h) in `{s}`"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. `250ms`, `20s`, `2m`"))?;
    let ns = n * unit_ns;
    if !ns.is_finite() || ns < 0.0 || ns > u64::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_nanos(ns.round() as u64))
}

/// A duration as a person reads it: `0 s`, `850 µs`, `12.3 ms`, `4.25 s`, `3 min 20 s`.
///
/// ```
/// use bulwark_sim::units::human;
/// use core::time::Duration;
/// assert_eq!(human(Duration::from_micros(12_340)), "12.3 ms");
/// assert_eq!(human(Duration::from_millis(4_250)), "4.25 s");
/// ```
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if d.is_zero() {
        "0 s".to_string()
    } else if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e7 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns < 60e9 {
        format!("{:.2} s", ns / 1e9)
    } else {
        let s = d.as_secs();
        format!("{} min {} s", s / 60, s % 60)
    }
}
