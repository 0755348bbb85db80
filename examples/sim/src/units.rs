//! Durations as a person reads them in a report. (Files and the command line write them
//! as the core reads them: [`bulwark::duration`].)

use core::time::Duration;

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
