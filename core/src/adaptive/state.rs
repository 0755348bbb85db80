//! The pure form: the three algorithms as functions of the figures they keep, and the
//! `&mut self` [`Machine`].

use super::config::{Algorithm, Config, ConfigError};

/// `log10(n)` in thousandths for `n` = 1 ..= 10.
const LOG10: [u64; 11] = [0, 0, 301, 477, 602, 699, 778, 845, 903, 954, 1_000];

/// `log10(x)` in thousandths, for `x` in thousandths (`x ≥ 1000`): the integer part from the
/// number of digits, the fraction from a table of `log10(1 ..= 10)` interpolated linearly
/// (monotone, within 0.03 of the true value). `log10(limit)` is all Vegas needs of a
/// logarithm.
pub(super) const fn log10_milli(x_milli: u64) -> u64 {
    let x = if x_milli < 1_000 { 1_000 } else { x_milli };
    let digits = (x / 1_000).ilog10();
    let decade = 10u64.pow(digits) * 1_000;
    // The mantissa in thousandths: 1000 ..= 9999.
    let m = x / (decade / 1_000);
    let i = (m / 1_000) as usize;
    let frac = m % 1_000;
    digits as u64 * 1_000 + LOG10[i] + (LOG10[i + 1] - LOG10[i]) * frac / 1_000
}

/// The new limit (thousandths) after one sample: `rtt_ns` the call's round trip, `inflight`
/// the calls in flight when it started, `dropped` whether it failed. `rtt_noload` (Vegas) and
/// `long_rtt` (Gradient2, nanoseconds) are the algorithm's figures, updated in place.
pub(super) fn next_limit(
    algorithm: Algorithm,
    limit: u64,
    rtt_ns: u64,
    inflight: u64,
    dropped: bool,
    rtt_noload: &mut u64,
    long_rtt: &mut u64,
) -> u64 {
    match algorithm {
        Algorithm::Aimd { backoff_per_mille } => {
            if dropped {
                limit * u64::from(backoff_per_mille) / 1_000
            } else if inflight * 2 * 1_000 >= limit {
                limit + 1_000
            } else {
                limit
            }
        }
        Algorithm::Vegas { alpha, beta } => {
            let rtt = rtt_ns.max(1);
            if *rtt_noload == 0 || rtt < *rtt_noload {
                *rtt_noload = rtt;
                return limit;
            }
            let log = log10_milli(limit).max(1_000);
            if dropped {
                return limit.saturating_sub(log);
            }
            if inflight * 2 * 1_000 < limit {
                return limit; // app-limited: the limit is not what holds calls back
            }
            // Queued calls (thousandths): limit × (1 − no-load / rtt).
            let queue = limit - limit * *rtt_noload / rtt;
            if queue <= log {
                limit + u64::from(beta) * log
            } else if queue < u64::from(alpha) * log {
                limit + log
            } else if queue > u64::from(beta) * log {
                limit.saturating_sub(log)
            } else {
                limit
            }
        }
        Algorithm::Gradient2 {
            smoothing_per_mille,
            tolerance_per_mille,
            long_window,
            queue,
        } => {
            let short = rtt_ns.max(1);
            // The long-term average: an exponential average over `long_window` samples
            // (weight 2 / (window + 1)), seeded with the first sample.
            let w = u128::from(long_window) + 1;
            *long_rtt = if *long_rtt == 0 {
                short
            } else {
                ((u128::from(*long_rtt) * (w - 2) + u128::from(short) * 2) / w) as u64
            };
            // After a spike, let the long average come down faster.
            if *long_rtt / short > 2 {
                *long_rtt = *long_rtt * 95 / 100;
            }
            if !dropped && inflight * 2 * 1_000 < limit {
                return limit; // app-limited
            }
            // gradient = clamp(tolerance × long / short, ½, 1), in thousandths.
            let g = (u128::from(tolerance_per_mille) * u128::from(*long_rtt) / u128::from(short))
                .clamp(500, 1_000) as u64;
            let target = limit * g / 1_000 + u64::from(queue) * 1_000;
            let s = u64::from(smoothing_per_mille);
            (limit * (1_000 - s) + target * s) / 1_000
        }
    }
}

/// The pure `&mut self` adaptive limit: the limit after each sample, between the bounds.
///
/// ```
/// use bulwark::adaptive::{Algorithm, Config, Machine};
/// let mut m = Machine::new(Config::new(Algorithm::aimd()).initial(10)).unwrap();
/// m.on_sample(1_000_000, 10, false); // a full limit, an answer: +1
/// assert_eq!(m.limit(), 11);
/// m.on_sample(1_000_000, 11, true); // dropped: × 0.9
/// assert_eq!(m.limit(), 9);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    cfg: Config,
    limit_milli: u64,
    rtt_noload: u64,
    long_rtt: u64,
}

impl Machine {
    /// A machine starting at the config's initial limit.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, ConfigError, Machine};
    /// assert_eq!(Machine::new(Config::new(Algorithm::vegas()).min(0)).err(), Some(ConfigError::Bounds));
    /// ```
    pub fn new(cfg: Config) -> Result<Machine, ConfigError> {
        cfg.validate()?;
        Ok(Machine {
            cfg,
            limit_milli: u64::from(cfg.initial) * 1_000,
            rtt_noload: 0,
            long_rtt: 0,
        })
    }

    /// The limit now (whole calls).
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, Machine};
    /// assert_eq!(Machine::new(Config::new(Algorithm::gradient2())).unwrap().limit(), 20);
    /// ```
    pub fn limit(&self) -> u32 {
        (self.limit_milli / 1_000) as u32
    }

    /// One call's sample: its round trip in nanoseconds, the calls in flight when it started
    /// (itself included) and whether it was dropped.
    ///
    /// ```
    /// use bulwark::adaptive::{Algorithm, Config, Machine};
    /// let mut m = Machine::new(Config::new(Algorithm::aimd()).initial(1).min(1)).unwrap();
    /// m.on_sample(5, 1, true);
    /// assert_eq!(m.limit(), 1); // never below the min
    /// ```
    pub fn on_sample(&mut self, rtt_ns: u64, inflight: u32, dropped: bool) {
        let next = next_limit(
            self.cfg.algorithm,
            self.limit_milli,
            rtt_ns,
            u64::from(inflight),
            dropped,
            &mut self.rtt_noload,
            &mut self.long_rtt,
        );
        self.limit_milli = clamp(&self.cfg, next);
    }
}

/// `limit` (thousandths) within the config's bounds.
pub(super) const fn clamp(cfg: &Config, limit: u64) -> u64 {
    let lo = cfg.min as u64 * 1_000;
    let hi = cfg.max as u64 * 1_000;
    if limit < lo {
        lo
    } else if limit > hi {
        hi
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log10_is_close_and_monotone() {
        let mut last = 0;
        for x in 1..=100_000u64 {
            let l = log10_milli(x * 1_000);
            assert!(l >= last);
            last = l;
            let exact = (x as f64).log10() * 1_000.0;
            assert!((l as f64 - exact).abs() <= 30.0, "{x}: {l} vs {exact}");
        }
    }
}
