//! Helpers shared by the example programs (`src/bin/`), and the axum server they and the
//! tests run ([`server`]).

use std::time::Duration;

/// Parses a command-line duration: `5s`, `1.5s`, `250ms` or a bare number of seconds, at most
/// a day.
///
/// # Errors
///
/// A message naming the text when it is not such a duration.
///
/// ```
/// use bulwark_examples::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 86_400.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!("{s:?} is not a duration (5s, 1.5s, 250ms)")),
    }
}

pub mod server;
