//! A lock-free latency histogram for percentile delays.

use core::fmt;
use core::time::Duration;

use crate::sync::{AtomicU32, Ordering};
use crate::time::duration_to_nanos;

/// Buckets: 4 exact (0–3 ns), then 4 per power of two up to 2^40 ns (18 min; longer
/// latencies count in the last bucket): at most 25 % above the true value.
const BUCKETS: usize = 4 + 39 * 4;
/// Every this many samples, all counts halve: recent latencies weigh most.
const DECAY_EVERY: u32 = 2_048;
/// A percentile needs this many samples.
const MIN_SAMPLES: u32 = 16;

fn bucket(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let octave = (63 - ns.leading_zeros()).min(40) as usize; // 2 ..= 40
    if octave == 40 {
        return BUCKETS - 1;
    }
    let sub = ((ns >> (octave - 2)) & 3) as usize;
    4 + (octave - 2) * 4 + sub
}

/// The largest latency bucket `i` holds.
fn upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let octave = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    ((4 + sub) << (octave - 2)) + (1 << (octave - 2)) - 1
}

/// Recent latencies, for a percentile: 160 log-linear buckets (4 per power of two, so a
/// percentile reads at most 25 % high), each an `AtomicU32`; every 2 048 samples all counts
/// halve, so old latencies fade. `&self`, lock-free, no allocation; Relaxed throughout (counts
/// only).
///
/// ```
/// use bulwark::hedge::Latencies;
/// use core::time::Duration;
/// let l = Latencies::new();
/// assert_eq!(l.percentile(500), None); // too few samples
/// for ms in 1..=100 {
///     l.record(Duration::from_millis(ms));
/// }
/// let p90 = l.percentile(900).unwrap();
/// assert!(p90 >= Duration::from_millis(90) && p90 <= Duration::from_millis(113));
/// ```
pub struct Latencies {
    counts: [AtomicU32; BUCKETS],
    samples: AtomicU32,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// No samples.
    ///
    /// ```
    /// assert_eq!(bulwark::hedge::Latencies::new().percentile(990), None);
    /// ```
    pub fn new() -> Self {
        Latencies {
            counts: crate::sync::atomic_array!(AtomicU32, 0, BUCKETS),
            samples: AtomicU32::new(0),
        }
    }

    /// Counts one latency.
    ///
    /// ```
    /// use bulwark::hedge::Latencies;
    /// use core::time::Duration;
    /// let l = Latencies::new();
    /// (0..16).for_each(|_| l.record(Duration::from_micros(3)));
    /// assert!(l.percentile(500).unwrap() >= Duration::from_micros(3));
    /// ```
    pub fn record(&self, latency: Duration) {
        let i = bucket(duration_to_nanos(latency));
        // Relaxed: counts only.
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        if self.samples.fetch_add(1, Ordering::Relaxed) + 1 == DECAY_EVERY {
            for c in &self.counts {
                let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n / 2));
            }
            self.samples.fetch_sub(DECAY_EVERY, Ordering::Relaxed);
        }
    }

    /// The `per_mille` percentile (`990` is the p99), as the upper edge of its bucket; `None`
    /// below 16 samples.
    ///
    /// ```
    /// use bulwark::hedge::Latencies;
    /// use core::time::Duration;
    /// let l = Latencies::new();
    /// (0..20).for_each(|_| l.record(Duration::from_millis(8)));
    /// assert_eq!(l.percentile(0), l.percentile(1000)); // one bucket
    /// ```
    pub fn percentile(&self, per_mille: u16) -> Option<Duration> {
        let mut counts = [0u32; BUCKETS];
        let mut total = 0u64;
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
            total += u64::from(*c);
        }
        if total < u64::from(MIN_SAMPLES) {
            return None;
        }
        let target = (total * u64::from(per_mille.min(1_000)))
            .div_ceil(1_000)
            .max(1);
        let mut seen = 0;
        for (i, &c) in counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= target {
                return Some(Duration::from_nanos(upper(i)));
            }
        }
        Some(Duration::from_nanos(upper(BUCKETS - 1)))
    }
}

impl fmt::Debug for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latencies")
            .field("p50", &self.percentile(500))
            .field("p99", &self.percentile(990))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_upper_edges_bound_them() {
        let mut last = 0;
        for ns in (0..100_000u64).chain([1 << 39, (1 << 40) - 1, 1 << 40, u64::MAX]) {
            let i = bucket(ns);
            assert!(i >= last || ns >= 1 << 40, "{ns}");
            last = i;
            assert!(i < BUCKETS);
            if ns < 1 << 40 {
                assert!(
                    upper(i) >= ns && upper(i) <= ns + ns / 4 + 1,
                    "{ns} -> {}",
                    upper(i)
                );
            }
        }
    }
}
