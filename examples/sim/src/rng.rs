//! The simulator's seeded random numbers: SplitMix64 (a 64-bit state, one multiply-xorshift
//! chain per draw) and the few distributions the models need.

/// A small, fast, seeded generator: the same seed gives the same stream on every platform.
///
/// ```
/// use bulwark_sim::rng::Rng;
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.uniform();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    /// The second normal draw of the last Box–Muller pair.
    spare: Option<f64>,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x5851_F42D_4C95_7F2D,
            spare: None,
        }
    }

    /// A generator for the named sub-stream `stream` of `seed`: streams of one seed are
    /// independent of each other (the arrivals do not shift when the downstream draws more).
    ///
    /// ```
    /// use bulwark_sim::rng::Rng;
    /// assert_ne!(Rng::stream(1, 0).next_u64(), Rng::stream(1, 1).next_u64());
    /// ```
    pub fn stream(seed: u64, stream: u64) -> Rng {
        let mut s = Rng::new(seed.wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let _ = s.next_u64();
        Rng::new(s.next_u64())
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (0 never, 1 always).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.uniform() < p)
    }

    /// Exponentially distributed with the given mean.
    ///
    /// ```
    /// use bulwark_sim::rng::Rng;
    /// let mut r = Rng::new(1);
    /// let mean = (0..100_000).map(|_| r.exponential(2.0)).sum::<f64>() / 100_000.0;
    /// assert!((mean - 2.0).abs() < 0.05);
    /// ```
    #[inline]
    pub fn exponential(&mut self, mean: f64) -> f64 {
        // 1 - u is in (0, 1]: the logarithm is finite.
        -mean * (1.0 - self.uniform()).ln()
    }

    /// A standard normal draw (Box–Muller: each pair of uniforms gives two).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (core::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * sin);
        r * cos
    }

    /// Log-normal with the given median and shape `sigma` (0: always the median).
    ///
    /// ```
    /// use bulwark_sim::rng::Rng;
    /// let mut r = Rng::new(3);
    /// let mut v: Vec<f64> = (0..20_001).map(|_| r.log_normal(20.0, 0.5)).collect();
    /// v.sort_by(f64::total_cmp);
    /// assert!((v[10_000] - 20.0).abs() < 0.5); // the median
    /// ```
    #[inline]
    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        if sigma <= 0.0 {
            median
        } else {
            median * (sigma * self.normal()).exp()
        }
    }
}
