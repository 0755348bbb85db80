//! Sliding windows of call outcomes: none, the last `N` calls, or `N` time buckets.
//!
//! The arithmetic lives in pure functions over plain words; the machine keeps the words in
//! plain fields and the shared form in atomics, updated around the same functions.

use core::fmt;
use core::time::Duration;

use super::config::Config;
use super::error::{ConfigError, Field};
use crate::sync::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, atomic_array};
use crate::time::{Instant, duration_to_nanos};

/// Counts of the calls currently in a window.
///
/// Below the window's minimum number of calls a rate is not yet known: the percentages are
/// `None` until `calls` reaches `minimum_calls` (and with no calls at all).
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::WindowStats;
/// let s = WindowStats { calls: 10, failures: 5, slow: 1, minimum_calls: 5 };
/// assert_eq!(s.failure_percent(), Some(50));
/// assert_eq!(s.slow_percent(), Some(10));
/// let early = WindowStats { calls: 1, failures: 1, slow: 0, minimum_calls: 5 };
/// assert_eq!(early.failure_percent(), None); // one call of the five needed: not known yet
/// assert_eq!(WindowStats::default().failure_percent(), None); // no calls: not known
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WindowStats {
    /// Calls recorded (successes and failures; ignored outcomes are not recorded).
    pub calls: u32,
    /// Of those, failures.
    pub failures: u32,
    /// Of those, slow calls (successful or not).
    pub slow: u32,
    /// The calls the window must hold before its rates are known
    /// ([`Config::minimum_calls`]).
    pub minimum_calls: u32,
}

impl WindowStats {
    /// The failure rate in whole percent (rounded down); `None` while fewer than
    /// `minimum_calls` calls (or none) are in the window.
    ///
    /// ```
    /// use bulwark::circuit_breaker::WindowStats;
    /// assert_eq!(WindowStats { calls: 3, failures: 1, slow: 0, minimum_calls: 3 }.failure_percent(), Some(33));
    /// assert_eq!(WindowStats { calls: 2, failures: 1, slow: 0, minimum_calls: 3 }.failure_percent(), None);
    /// ```
    pub fn failure_percent(&self) -> Option<u32> {
        self.percent(self.failures)
    }

    /// The slow-call rate in whole percent (rounded down); `None` while fewer than
    /// `minimum_calls` calls (or none) are in the window.
    ///
    /// ```
    /// use bulwark::circuit_breaker::WindowStats;
    /// assert_eq!(WindowStats { calls: 4, failures: 0, slow: 1, minimum_calls: 1 }.slow_percent(), Some(25));
    /// ```
    pub fn slow_percent(&self) -> Option<u32> {
        self.percent(self.slow)
    }

    /// The failure rate in basis points, hundredths of a percent (rounded down): 1 failure
    /// in 3 calls is 3333 (33.33 %, where [`failure_percent`](WindowStats::failure_percent)
    /// says 33), what resilience4j's `getFailureRate()` charts as the float 33.333332. `None`
    /// while the rate is not known. Integer arithmetic, as every rate here.
    ///
    /// ```
    /// use bulwark::circuit_breaker::WindowStats;
    /// let s = WindowStats { calls: 3, failures: 1, slow: 2, minimum_calls: 3 };
    /// assert_eq!((s.failure_basis_points(), s.slow_basis_points()), (Some(3333), Some(6666)));
    /// assert_eq!(WindowStats { minimum_calls: 4, ..s }.failure_basis_points(), None);
    /// ```
    pub fn failure_basis_points(&self) -> Option<u32> {
        self.basis_points(self.failures)
    }

    /// The slow-call rate in basis points (rounded down), as
    /// [`failure_basis_points`](WindowStats::failure_basis_points) gives the failure rate;
    /// resilience4j's `getSlowCallRate()`. `None` while the rate is not known.
    ///
    /// ```
    /// use bulwark::circuit_breaker::WindowStats;
    /// let s = WindowStats { calls: 7, failures: 0, slow: 1, minimum_calls: 1 };
    /// assert_eq!(s.slow_basis_points(), Some(1428)); // 14.28 %
    /// ```
    pub fn slow_basis_points(&self) -> Option<u32> {
        self.basis_points(self.slow)
    }

    /// Is the rate known (at least `minimum_calls` calls, and at least one)?
    ///
    /// ```
    /// use bulwark::circuit_breaker::WindowStats;
    /// assert!(!WindowStats { calls: 4, failures: 4, slow: 0, minimum_calls: 5 }.is_known());
    /// ```
    pub fn is_known(&self) -> bool {
        self.calls > 0 && self.calls >= self.minimum_calls
    }

    fn percent(&self, count: u32) -> Option<u32> {
        self.basis_points(count).map(|bp| bp / 100)
    }

    fn basis_points(&self, count: u32) -> Option<u32> {
        self.is_known()
            .then(|| (count as u64 * 10_000 / self.calls as u64) as u32)
    }
}

/// The timed figures of the calls currently in a window, what dashboards chart beside the
/// rates: slow calls split by outcome (resilience4j's `getNumberOfSlowSuccessfulCalls()` and
/// `getNumberOfSlowFailedCalls()`) and the sum and maximum of the calls' durations.
///
/// Calls are timed only when the breaker has a slow-call policy ([`Config::slow_calls`]) or
/// is asked to ([`Config::record_durations`]); otherwise every figure is zero. Durations
/// are kept in whole microseconds (rounded down), each call's saturating at `u32::MAX` µs
/// (71 min 34 s). A [`TimeWindow`] bucket keeps its slow failures up to 65 535 and its
/// duration sum up to 2^48 µs (8.9 years); a [`CountWindow`] its sum up to 2^43 µs (101
/// days). A window that has no calls (or a breaker without one) reports zeros.
///
/// # Examples
///
/// ```
/// use bulwark::{Instant, circuit_breaker::{CallTimes, Config, CountWindow, Machine}};
/// use core::time::Duration;
/// let cfg = Config::new().slow_calls(Duration::from_millis(100), 100).minimum_calls(3);
/// let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
/// let ms = Instant::from_millis;
/// for (ok, took) in [(true, 150), (false, 120), (true, 30)] {
///     let t = m.try_acquire(ms(0)).unwrap();
///     if ok { m.on_success(t, ms(took)) } else { m.on_failure(t, ms(took)) }
/// }
/// let times = m.metrics(ms(150)).times;
/// assert_eq!(times, CallTimes {
///     slow_successes: 1,
///     slow_failures: 1,
///     total: Duration::from_millis(300),
///     max: Duration::from_millis(150),
/// });
/// assert_eq!(times.average(3), Some(Duration::from_millis(100)));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CallTimes {
    /// Calls in the window that succeeded but took the slow-call threshold or longer.
    pub slow_successes: u32,
    /// Calls in the window that failed and took the slow-call threshold or longer.
    pub slow_failures: u32,
    /// The sum of the durations of the calls in the window.
    pub total: Duration,
    /// The longest call in the window.
    pub max: Duration,
}

impl CallTimes {
    /// The mean duration of `calls` calls (the window's [`WindowStats::calls`]), rounded down
    /// to the microsecond; `None` for no calls.
    ///
    /// ```
    /// use bulwark::circuit_breaker::CallTimes;
    /// use core::time::Duration;
    /// let t = CallTimes { total: Duration::from_millis(10), ..CallTimes::default() };
    /// assert_eq!(t.average(4), Some(Duration::from_micros(2_500)));
    /// assert_eq!(t.average(0), None);
    /// ```
    pub fn average(&self, calls: u32) -> Option<Duration> {
        (calls != 0).then(|| Duration::from_micros(self.total.as_micros() as u64 / calls as u64))
    }

    /// Figures from raw microsecond counts.
    const fn from_micros(slow: u32, slow_failures: u32, total: u64, max: u32) -> CallTimes {
        CallTimes {
            slow_successes: slow.saturating_sub(slow_failures),
            slow_failures,
            total: Duration::from_micros(total),
            max: Duration::from_micros(max as u64),
        }
    }
}

/// One recorded outcome (an implementation detail of [`Window`]).
#[doc(hidden)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

/// The rate settings of a breaker with a window (an implementation detail of [`Window`]):
/// what a [`Config`] says about rates, validated, in the form the breaker stores.
#[doc(hidden)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Nanoseconds; `u64::MAX`: no call is slow.
    pub(crate) slow_threshold: u64,
    /// The window's span in nanoseconds (time windows).
    pub(crate) span: u64,
    /// The length of one bucket in nanoseconds (time windows; 0 for count windows).
    pub(crate) bucket: u64,
    /// The settings that can change at run time, and two fixed flags: see
    /// [`rates_word`](Rules::rates_word). One word, so that the shared form puts its run-time
    /// value in place with one move, and the rules stay 32 bytes.
    rates: u64,
}

/// In [`Rules::rates_word`]: time every call ([`Config::record_durations`]).
const DURATIONS: u64 = 1 << 48;
/// In [`Rules::rates_word`]: calls are timed (a slow-call policy, or [`DURATIONS`]), kept as
/// one flag because both forms test it on every admission and every outcome (README row
/// "breaker closed path, count window 100 vs recloser ring 100": testing the two settings
/// cost 6 instructions a call). Fixed for the breaker's life.
const TIMED: u64 = 1 << 49;

impl Rules {
    /// The rules of a validated `cfg`, with `bucket` the time window's bucket length.
    const fn new(cfg: &Config, bucket: u64) -> Rules {
        Rules {
            slow_threshold: duration_to_nanos(cfg.slow_threshold),
            span: duration_to_nanos(cfg.time_window),
            bucket,
            rates: cfg.minimum_calls as u64
                | (match cfg.failure_rate {
                    Some(p) => p,
                    None => 0,
                } as u64)
                    << 32
                | (match cfg.slow_rate {
                    Some(p) => p,
                    None => 0,
                } as u64)
                    << 40
                | if cfg.record_durations { DURATIONS } else { 0 }
                | if cfg.slow_rate.is_some() || cfg.record_durations {
                    TIMED
                } else {
                    0
                },
        }
    }
}

impl Rules {
    /// The settings that can change at run time through `&self` (minimum calls, the failure
    /// and slow rates) as one word: minimum calls in bits 0..32, the failure rate in 32..40,
    /// the slow rate in 40..48; and the fixed flags [`DURATIONS`] and [`TIMED`].
    const fn rates_word(&self) -> u64 {
        self.rates
    }

    /// Time every call ([`Config::record_durations`]).
    pub(crate) const fn durations(&self) -> bool {
        self.rates & DURATIONS != 0
    }

    /// Are calls timed (a slow-call policy or [`Config::record_durations`])?
    #[inline(always)]
    pub(crate) const fn timed(&self) -> bool {
        self.rates & TIMED != 0
    }

    /// [`Config::minimum_calls`].
    #[inline(always)]
    pub(crate) const fn minimum_calls(&self) -> u32 {
        self.rates as u32
    }

    /// Percent; 0: the policy is off.
    #[inline(always)]
    pub(crate) const fn failure_rate(&self) -> u8 {
        (self.rates >> 32) as u8
    }

    /// Percent; 0: the policy is off.
    #[inline(always)]
    pub(crate) const fn slow_rate(&self) -> u8 {
        (self.rates >> 40) as u8
    }

    /// These rules with the rates of `word` (see [`rates_word`](Rules::rates_word)) and the
    /// slow-call threshold `slow_threshold`.
    #[inline(always)]
    const fn with_live(self, word: u64, slow_threshold: u64) -> Rules {
        Rules {
            rates: word,
            slow_threshold,
            ..self
        }
    }
}

/// The run-time settings of a shared window ([`Rules::rates_word`] and the slow-call
/// threshold): written whole by one store each, so a decision never sees half a change.
#[doc(hidden)]
#[derive(Debug)]
pub(crate) struct Live {
    rates: AtomicU64,
    slow_threshold: AtomicU64,
}

impl Live {
    fn new() -> Live {
        Live {
            rates: AtomicU64::new(0),
            slow_threshold: AtomicU64::new(0),
        }
    }

    /// `r` with the run-time settings.
    #[inline(always)]
    fn rules(&self, r: &Rules) -> Rules {
        // Acquire: pairs with the Release stores of `store`. Each word is a whole setting,
        // so one load of it is a consistent view of that change.
        let rates = self.rates.load(Ordering::Acquire);
        let threshold = self.slow_threshold.load(Ordering::Acquire);
        r.with_live(rates, threshold)
    }

    /// Publishes the run-time settings of `r` that `what` names, each word by one store (so
    /// changes of the rates and of the threshold never undo each other).
    fn store(&self, r: &Rules, what: LiveSetting) {
        // Release: a decision that loads the new value (Acquire, in `rules`) sees everything
        // the changing thread did before. No other data is published with it.
        if what != LiveSetting::Rates {
            self.slow_threshold
                .store(r.slow_threshold, Ordering::Release);
        }
        if what != LiveSetting::SlowThreshold {
            self.rates.store(r.rates_word(), Ordering::Release);
        }
    }
}

/// Which run-time setting a change publishes.
#[doc(hidden)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LiveSetting {
    /// Both (when the breaker is built).
    All,
    /// Minimum calls, failure rate, slow rate.
    Rates,
    /// The slow-call threshold.
    SlowThreshold,
}

/// Which rates of a window are at or over their thresholds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Over {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Over {
    /// The rates of `s` at or over their thresholds in `rules`: `>=` the threshold, and only
    /// once the window holds `minimum_calls` (below that the rate is not yet known). None
    /// without a window.
    #[inline]
    pub(crate) fn of(rules: Option<&Rules>, s: WindowStats) -> Over {
        match rules {
            Some(r) if s.calls >= r.minimum_calls() => Over {
                failure: over(s.failures, r.failure_rate(), s.calls),
                slow: over(s.slow, r.slow_rate(), s.calls),
            },
            _ => Over::default(),
        }
    }
}

/// Is `count` of `calls` at or over `percent` (0: the policy is off)?
#[inline(always)]
const fn over(count: u32, percent: u8, calls: u32) -> bool {
    percent != 0 && count as u64 * 100 >= percent as u64 * calls as u64
}

/// Does `stats` open the breaker under `rules`? When any of its rates is [over](Over::of)
/// (short-circuiting: on every recorded success of a windowed breaker, README row "breaker
/// closed path, count window 100 vs recloser ring 100").
#[inline]
pub(crate) fn rate_trips(rules: Option<&Rules>, s: WindowStats) -> bool {
    match rules {
        Some(r) if s.calls >= r.minimum_calls() => {
            over(s.failures, r.failure_rate(), s.calls) || over(s.slow, r.slow_rate(), s.calls)
        }
        _ => false,
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The kind of window a breaker measures rates over: [`NoWindow`], [`CountWindow`] or
/// [`TimeWindow`]. Sealed; its items are implementation details.
///
/// # Examples
///
/// ```
/// use bulwark::circuit_breaker::{CountWindow, NoWindow, TimeWindow, Window};
/// assert!(!<NoWindow as Window>::MEASURES);
/// assert!(<CountWindow<100> as Window>::MEASURES);
/// assert!(<TimeWindow<10> as Window>::MEASURES);
/// ```
pub trait Window: sealed::Sealed {
    /// `false` only for [`NoWindow`].
    const MEASURES: bool;
    /// `true` when samples are placed by time (only [`TimeWindow`]): the clock is read only then.
    const NEEDS_TIME: bool;
    #[doc(hidden)]
    type State: fmt::Debug;
    #[doc(hidden)]
    type Shared: fmt::Debug + Send + Sync;
    /// The rate settings the breaker stores: nothing for [`NoWindow`].
    #[doc(hidden)]
    type Rules: Copy + fmt::Debug + Send + Sync;
    /// Checks what `cfg` asks of this window kind; the rules to store on success.
    #[doc(hidden)]
    fn rules(cfg: &Config) -> Result<Self::Rules, ConfigError>;
    #[doc(hidden)]
    fn rate_rules(r: &Self::Rules) -> Option<&Rules>;
    #[doc(hidden)]
    fn new_state() -> Self::State;
    #[doc(hidden)]
    fn new_shared() -> Self::Shared;
    #[doc(hidden)]
    fn record(w: &mut Self::State, r: &Self::Rules, now: Instant, s: Sample) -> WindowStats;
    #[doc(hidden)]
    fn stats(w: &Self::State, r: &Self::Rules, now: Instant) -> WindowStats;
    #[doc(hidden)]
    fn reset(w: &mut Self::State);
    #[doc(hidden)]
    fn record_shared(w: &Self::Shared, r: &Self::Rules, now: Instant, s: Sample) -> WindowStats;
    #[doc(hidden)]
    fn stats_shared(w: &Self::Shared, r: &Self::Rules, now: Instant) -> WindowStats;
    #[doc(hidden)]
    fn reset_shared(w: &Self::Shared);
    /// The rules a shared window decides with now: `r` with its run-time settings.
    #[doc(hidden)]
    fn live_rules(w: &Self::Shared, r: &Self::Rules) -> Self::Rules;
    /// Publishes the run-time settings of `r` that `what` names.
    #[doc(hidden)]
    fn set_live_rules(w: &Self::Shared, r: &Self::Rules, what: LiveSetting);
    /// Records the duration (`micros`) of a timed call, just recorded as `s`: apart from
    /// [`record`](Window::record), out of line, so that a breaker that does not time calls
    /// does not pay for it.
    #[doc(hidden)]
    fn record_timed(w: &mut Self::State, r: &Self::Rules, now: Instant, s: Sample, micros: u32);
    #[doc(hidden)]
    fn record_timed_shared(w: &Self::Shared, r: &Self::Rules, now: Instant, s: Sample, micros: u32);
    /// The timed figures of the window, whose stats count `slow` slow calls.
    #[doc(hidden)]
    fn times(w: &Self::State, r: &Self::Rules, now: Instant, slow: u32) -> CallTimes;
    #[doc(hidden)]
    fn times_shared(w: &Self::Shared, r: &Self::Rules, now: Instant, slow: u32) -> CallTimes;
}

/// No window: only consecutive failures can open the breaker. Costs nothing.
///
/// ```
/// use bulwark::circuit_breaker::{Config, Machine, NoWindow};
/// assert!(Machine::<NoWindow>::new(Config::new().consecutive_failures(3)).is_ok());
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct NoWindow;

impl sealed::Sealed for NoWindow {}
impl Window for NoWindow {
    const MEASURES: bool = false;
    const NEEDS_TIME: bool = false;
    type State = ();
    type Shared = ();
    type Rules = ();
    fn rules(_: &Config) -> Result<(), ConfigError> {
        Ok(())
    }
    #[inline(always)]
    fn rate_rules(_: &()) -> Option<&Rules> {
        None
    }
    fn new_state() {}
    fn new_shared() {}
    fn record(_: &mut (), _: &(), _: Instant, _: Sample) -> WindowStats {
        WindowStats::default()
    }
    fn stats(_: &(), _: &(), _: Instant) -> WindowStats {
        WindowStats::default()
    }
    fn reset(_: &mut ()) {}
    fn record_shared(_: &(), _: &(), _: Instant, _: Sample) -> WindowStats {
        WindowStats::default()
    }
    fn stats_shared(_: &(), _: &(), _: Instant) -> WindowStats {
        WindowStats::default()
    }
    fn reset_shared(_: &()) {}
    fn live_rules(_: &(), _: &()) {}
    fn set_live_rules(_: &(), _: &(), _: LiveSetting) {}
    fn record_timed(_: &mut (), _: &(), _: Instant, _: Sample, _: u32) {}
    fn record_timed_shared(_: &(), _: &(), _: Instant, _: Sample, _: u32) {}
    fn times(_: &(), _: &(), _: Instant, _: u32) -> CallTimes {
        CallTimes::default()
    }
    fn times_shared(_: &(), _: &(), _: Instant, _: u32) -> CallTimes {
        CallTimes::default()
    }
}

// ===== count window =====

/// The last `N` calls (1 ..= 2^20). Memory: `5 × N` bytes (an outcome code and a duration
/// per call, for [`CallTimes`]) plus four words.
///
/// ```
/// use bulwark::circuit_breaker::{Config, CountWindow, Machine};
/// use bulwark::Instant;
/// let mut m = Machine::<CountWindow<4>>::new(Config::new().failure_rate(50).minimum_calls(4)).unwrap();
/// for fail in [false, true, false] {
///     let t = m.try_acquire(Instant::ZERO).unwrap();
///     if fail { m.on_failure(t, Instant::ZERO) } else { m.on_success(t, Instant::ZERO) }
/// }
/// assert_eq!(m.metrics(Instant::ZERO).window.calls, 3);
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct CountWindow<const N: usize>;

/// Per-slot code: bit 0 recorded, bit 1 failure, bit 2 slow.
const fn slot_code(s: Sample) -> u8 {
    1 | (s.failure as u8) << 1 | (s.slow as u8) << 2
}

/// Totals word: calls in bits 0..21, failures in 21..42, slow in 42..63.
const FIELD: u32 = 21;
const fn code_weight(code: u8) -> u64 {
    (code & 1) as u64 | ((code >> 1 & 1) as u64) << FIELD | ((code >> 2 & 1) as u64) << (2 * FIELD)
}
/// Replaces one slot's contribution `old` by `new` in the totals. Exact per field: the totals
/// always include `old` (it was added when it was written), so no field borrows.
const fn totals_replace(totals: u64, old: u8, new: u8) -> u64 {
    totals
        .wrapping_add(code_weight(new))
        .wrapping_sub(code_weight(old))
}
const fn unpack_totals(t: u64, r: &Rules) -> WindowStats {
    let mask = (1u64 << FIELD) - 1;
    WindowStats {
        calls: (t & mask) as u32,
        failures: (t >> FIELD & mask) as u32,
        slow: (t >> (2 * FIELD) & mask) as u32,
        minimum_calls: r.minimum_calls(),
    }
}

/// 1 if slot code `code` is a slow failure.
const fn slow_failure(code: u8) -> u32 {
    (code & 0b110 == 0b110) as u32
}

/// The machine state of a [`CountWindow`].
#[doc(hidden)]
#[derive(Debug)]
pub struct CountState<const N: usize> {
    slots: [u8; N],
    head: usize,
    totals: u64,
    /// Each slot's call duration in microseconds (0: not timed).
    micros: [u32; N],
    /// The sum of `micros`, and the slow failures among the slots.
    micros_sum: u64,
    slow_failures: u32,
}

/// The shared state of a [`CountWindow`]. The timed figures (`micros`, `micros_sum`,
/// `slow_failures`) are apart from the packed `totals` that decisions read: written only by
/// a record of a timed call (and a reset), never read by a decision.
#[doc(hidden)]
#[derive(Debug)]
pub struct CountShared<const N: usize> {
    slots: [AtomicU8; N],
    head: AtomicUsize,
    totals: AtomicU64,
    micros: [AtomicU32; N],
    /// The next slot of `micros` (its own: a timed call's duration and outcome may land in
    /// different slots when records race, which keeps the figures over the last `N` timed
    /// calls all the same).
    micros_head: AtomicUsize,
    micros_sum: AtomicU64,
    slow_failures: AtomicU32,
    live: Live,
}

impl<const N: usize> sealed::Sealed for CountWindow<N> {}
impl<const N: usize> Window for CountWindow<N> {
    const MEASURES: bool = true;
    const NEEDS_TIME: bool = false;
    type State = CountState<N>;
    type Shared = CountShared<N>;
    type Rules = Rules;

    fn rules(cfg: &Config) -> Result<Rules, ConfigError> {
        if N == 0 {
            return Err(ConfigError::Zero(Field::WindowSize));
        }
        if N > 1 << 20 {
            return Err(ConfigError::TooLarge(Field::WindowSize));
        }
        if cfg.minimum_calls as usize > N {
            return Err(ConfigError::MinimumCallsAboveWindow);
        }
        Ok(Rules::new(cfg, 0))
    }
    #[inline(always)]
    fn rate_rules(r: &Rules) -> Option<&Rules> {
        Some(r)
    }
    fn new_state() -> CountState<N> {
        CountState {
            slots: [0; N],
            head: 0,
            totals: 0,
            micros: [0; N],
            micros_sum: 0,
            slow_failures: 0,
        }
    }
    fn new_shared() -> CountShared<N> {
        CountShared {
            slots: atomic_array!(AtomicU8, 0, N),
            head: AtomicUsize::new(0),
            totals: AtomicU64::new(0),
            micros: atomic_array!(AtomicU32, 0, N),
            micros_head: AtomicUsize::new(0),
            micros_sum: AtomicU64::new(0),
            slow_failures: AtomicU32::new(0),
            live: Live::new(),
        }
    }
    fn record(w: &mut CountState<N>, r: &Rules, _: Instant, s: Sample) -> WindowStats {
        let code = slot_code(s);
        let old = core::mem::replace(&mut w.slots[w.head], code);
        // A call not timed leaves no duration: 0 (a timed one's comes in `record_timed`).
        let old_micros = core::mem::replace(&mut w.micros[w.head], 0);
        w.head = (w.head + 1) % N;
        w.totals = totals_replace(w.totals, old, code);
        w.micros_sum -= old_micros as u64;
        w.slow_failures = w.slow_failures + slow_failure(code) - slow_failure(old);
        unpack_totals(w.totals, r)
    }
    fn stats(w: &CountState<N>, r: &Rules, _: Instant) -> WindowStats {
        unpack_totals(w.totals, r)
    }
    fn reset(w: &mut CountState<N>) {
        *w = Self::new_state();
    }
    #[inline(always)]
    fn live_rules(w: &CountShared<N>, r: &Rules) -> Rules {
        w.live.rules(r)
    }
    fn set_live_rules(w: &CountShared<N>, r: &Rules, what: LiveSetting) {
        w.live.store(r, what)
    }
    fn record_timed(w: &mut CountState<N>, _: &Rules, _: Instant, _: Sample, micros: u32) {
        // The slot `record` just wrote.
        let i = (w.head + N - 1) % N;
        w.micros[i] = micros;
        w.micros_sum += micros as u64;
    }
    fn record_timed_shared(w: &CountShared<N>, _: &Rules, _: Instant, _: Sample, micros: u32) {
        // The timed figures, apart from the decision's totals. Relaxed: they synchronize with
        // nothing (no decision reads them); the swap hands back exactly the value the previous
        // writer of this slot left (or 0 after a reset), whose weight that writer added, so
        // the sum is exact in aggregate whatever the interleaving.
        let i = w.micros_head.fetch_add(1, Ordering::Relaxed) % N;
        let old = w.micros[i].swap(micros, Ordering::Relaxed);
        w.micros_sum
            .fetch_add((micros as u64).wrapping_sub(old as u64), Ordering::Relaxed);
    }
    fn times(w: &CountState<N>, _: &Rules, _: Instant, slow: u32) -> CallTimes {
        let max = w.micros.iter().copied().max().unwrap_or(0);
        CallTimes::from_micros(slow, w.slow_failures, w.micros_sum, max)
    }
    fn times_shared(w: &CountShared<N>, _: &Rules, _: Instant, slow: u32) -> CallTimes {
        // Relaxed: figures for people (no decision reads them); each is exact once the
        // records racing this read have finished (see `record_shared`).
        let max = w
            .micros
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let failures = w.slow_failures.load(Ordering::Relaxed);
        let sum = w.micros_sum.load(Ordering::Relaxed);
        CallTimes::from_micros(slow, failures, sum, max)
    }
    #[inline]
    fn record_shared(w: &CountShared<N>, r: &Rules, _: Instant, s: Sample) -> WindowStats {
        let code = slot_code(s);
        // Relaxed: the index only spreads writers over the slots; each slot is then updated
        // by an atomic swap, so two writers on one slot (after a wrap) still account exactly.
        let i = w.head.fetch_add(1, Ordering::Relaxed) % N;
        // The steady state of a healthy window: the slot already holds this very outcome, so
        // replacing it changes neither the slot nor the totals; a load instead of two writes.
        // (A writer racing us on this slot after a wrap swaps against the same code, so the
        // accounting stays exact.) The totals we return may lag by the writes of records
        // still between their slot swap and their totals update, as any reader's may; each
        // writer judges the totals its own update produced. Acquire: pairs with the AcqRel
        // swaps and totals updates of those writers.
        if w.slots[i].load(Ordering::Acquire) == code {
            return unpack_totals(w.totals.load(Ordering::Acquire), r);
        }
        // AcqRel: the swap hands us exactly the code the previous writer of this slot left,
        // whose weight that writer added to the totals.
        let old = w.slots[i].swap(code, Ordering::AcqRel);
        let delta = slow_failure(code).wrapping_sub(slow_failure(old));
        if delta != 0 {
            // Relaxed: as the durations above, a figure no decision reads.
            w.slow_failures.fetch_add(delta, Ordering::Relaxed);
        }
        let prev = w
            .totals
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(totals_replace(t, old, code))
            })
            .unwrap_or_else(|t| t);
        unpack_totals(totals_replace(prev, old, code), r)
    }
    fn stats_shared(w: &CountShared<N>, r: &Rules, _: Instant) -> WindowStats {
        // Acquire: pairs with the AcqRel updates in `record_shared`.
        unpack_totals(w.totals.load(Ordering::Acquire), r)
    }
    fn reset_shared(w: &CountShared<N>) {
        for slot in &w.slots {
            // Each emptied slot takes its own weight out of the totals: exact even when
            // records race the reset (a racing record is simply kept or cleared whole).
            let old = slot.swap(0, Ordering::AcqRel);
            if old != 0 {
                let _ = w
                    .totals
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                        Some(totals_replace(t, old, 0))
                    });
                if slow_failure(old) != 0 {
                    // Relaxed: see `record_shared`.
                    w.slow_failures.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        for m in &w.micros {
            // Relaxed: see `record_shared`; each duration taken out is subtracted once.
            let old = m.swap(0, Ordering::Relaxed);
            if old != 0 {
                w.micros_sum.fetch_sub(old as u64, Ordering::Relaxed);
            }
        }
    }
}

// ===== time window =====

/// `N` buckets (1 ..= 4096) spanning [`Config::time_window`], aligned to the clock: a sample
/// at `t` counts until the start of the bucket `N` buckets after its own, that is for one
/// window length rounded to the bucket. Memory: `24 × N` bytes (8 for the outcomes, 16 for
/// the [`CallTimes`] of each bucket) plus a word.
///
/// A bucket counts up to 65 535 calls; further calls in the same bucket are not sampled.
///
/// ```
/// use bulwark::circuit_breaker::{Config, Machine, TimeWindow};
/// use bulwark::Instant;
/// use core::time::Duration;
/// let cfg = Config::new().failure_rate(50).time_window(Duration::from_secs(10));
/// let mut m = Machine::<TimeWindow<10>>::new(cfg).unwrap();
/// let t = m.try_acquire(Instant::ZERO).unwrap();
/// m.on_success(t, Instant::ZERO);
/// assert_eq!(m.metrics(Instant::from_secs(9)).window.calls, 1);
/// assert_eq!(m.metrics(Instant::from_secs(10)).window.calls, 0); // expired
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct TimeWindow<const N: usize>;

// Bucket word: epoch tag in bits 0..16, calls 16..32, failures 32..48, slow 48..64.
//
// A bucket's epoch is `now / bucket length`; its slot is `epoch % N`. The tag keeps only the
// low 16 bits of the epoch, so on its own it would alias after 2^16 epochs. The window
// therefore also keeps `latest`, the highest epoch seen (a full u64), and sweeps: whoever moves
// `latest` from `prev` to `e` empties the slots of the epochs `prev + 1 ..= e` (all of them
// for a jump of `N` or more) that hold older samples. Every sample left in a slot is then
// less than `2N` epochs older than `latest` (or is undone, see `TimeWindow::record_shared`),
// so the 16-bit tag arithmetic below is exact at any uptime, `N <= 4096` keeping `2N` far
// below 2^15. An instant earlier than `latest` (a clock that stepped back) is read as
// `latest`: no time passed.
//
// In the shared form the advance publishes `latest` (fetch_max) before it sweeps, so a reader
// that runs between the two after a jump of 2^16 buckets or more may, for that moment, count
// a not-yet-swept bucket whose 16-bit tag happens to match (it is gone once the sweep passes
// it). Recording never keeps such a sample: see `record_shared`.

const fn tag(epoch: u64) -> u16 {
    epoch as u16
}

/// How many epochs `word`'s bucket is older than `epoch` (negative: newer, a racing writer).
const fn tag_age(word: u64, epoch: u64) -> i16 {
    tag(epoch).wrapping_sub(word as u16) as i16
}

const fn bucket_calls(word: u64) -> u16 {
    (word >> 16) as u16
}

const fn sample_weight(s: Sample) -> u64 {
    (1 << 16) | ((s.failure as u64) << 32) | ((s.slow as u64) << 48)
}

/// `word` with sample `s` at `epoch` added. An empty or older bucket restarts at `epoch`; a
/// newer one (a writer that raced ahead) is counted into.
const fn bucket_add(word: u64, epoch: u64, s: Sample) -> u64 {
    let word = if bucket_calls(word) == 0 || tag_age(word, epoch) > 0 {
        tag(epoch) as u64
    } else {
        word
    };
    if bucket_calls(word) == u16::MAX {
        return word; // saturated bucket: further samples are dropped, rates stay in 0..=100 %
    }
    word + sample_weight(s)
}

/// `word` without sample `s`, if it holds one like it.
const fn bucket_sub(word: u64, s: Sample) -> Option<u64> {
    let has = bucket_calls(word) > 0
        && (!s.failure || (word >> 32) as u16 > 0)
        && (!s.slow || (word >> 48) as u16 > 0);
    if has {
        Some(word - sample_weight(s))
    } else {
        None
    }
}

/// Is `word` (a slot's content before an advance from `prev`) older than the window that
/// ends at epoch `e`? Ages are taken from `prev`, which every sample is close to.
const fn stale_after(word: u64, prev: u64, e: u64, n: usize) -> bool {
    if bucket_calls(word) == 0 {
        return false; // nothing to clear
    }
    let age = tag_age(word, prev) as i64;
    // The bucket's epoch is `prev - age`; it is stale when that is at most `e - n`.
    (e as i128 - prev as i128 + age as i128) >= n as i128
}

fn buckets_stats(
    words: impl Iterator<Item = u64>,
    epoch: u64,
    n: usize,
    minimum: u32,
) -> WindowStats {
    let mut s = WindowStats {
        minimum_calls: minimum,
        ..WindowStats::default()
    };
    for w in words {
        let age = tag_age(w, epoch);
        if age >= 0 && (age as usize) < n {
            s.calls += bucket_calls(w) as u32;
            s.failures += (w >> 32) as u16 as u32;
            s.slow += (w >> 48) as u16 as u32;
        }
    }
    s
}

// Timed words, two per bucket beside its bucket word (the `CallTimes` of the bucket), each
// with its own epoch tag in bits 0..16, aged, swept and taken back exactly as the bucket word:
//   peak word: slow failures in 16..32 (saturating), the longest call in µs in 32..64;
//   sum word:  the sum of the calls' durations in µs in 16..64 (saturating at 2^48 - 1).
// A timed word whose fields are all zero is empty (whatever its tag).

const fn timed_empty(word: u64) -> bool {
    word >> 16 == 0
}

/// The timed word `word` ready to count a sample at `epoch`: restarted when empty or older,
/// as it is when newer (a writer that raced ahead).
const fn timed_fresh(word: u64, epoch: u64) -> u64 {
    if timed_empty(word) || tag_age(word, epoch) > 0 {
        tag(epoch) as u64
    } else {
        word
    }
}

/// The peak word with sample `s` at `epoch` added.
const fn peak_add(word: u64, epoch: u64, s: Sample, micros: u32) -> u64 {
    let w = timed_fresh(word, epoch);
    let failures = ((w >> 16) as u16).saturating_add((s.failure && s.slow) as u16);
    let max = if (w >> 32) as u32 > micros {
        (w >> 32) as u32
    } else {
        micros
    };
    (w & 0xffff) | (failures as u64) << 16 | (max as u64) << 32
}

/// The sum word with sample `s` at `epoch` added.
const fn sum_add(word: u64, epoch: u64, micros: u32) -> u64 {
    let w = timed_fresh(word, epoch);
    let sum = (w >> 16).saturating_add(micros as u64);
    let sum = if sum > (1 << 48) - 1 {
        (1 << 48) - 1
    } else {
        sum
    };
    (w & 0xffff) | sum << 16
}

/// [`stale_after`] for a timed word.
const fn timed_stale_after(word: u64, prev: u64, e: u64, n: usize) -> bool {
    !timed_empty(word) && {
        let age = tag_age(word, prev) as i64;
        (e as i128 - prev as i128 + age as i128) >= n as i128
    }
}

/// The [`CallTimes`] of the timed words in the window ending at `epoch`.
fn timed_stats(
    words: impl Iterator<Item = (u64, u64)>,
    epoch: u64,
    n: usize,
    slow: u32,
) -> CallTimes {
    let in_window = |w: u64| {
        let age = tag_age(w, epoch);
        !timed_empty(w) && age >= 0 && (age as usize) < n
    };
    let (mut failures, mut sum, mut max) = (0u32, 0u64, 0u32);
    for (peak, total) in words {
        if in_window(peak) {
            failures += (peak >> 16) as u16 as u32;
            max = max.max((peak >> 32) as u32);
        }
        if in_window(total) {
            sum += total >> 16;
        }
    }
    CallTimes::from_micros(slow, failures, sum, max)
}

/// The machine state of a [`TimeWindow`].
#[doc(hidden)]
#[derive(Debug)]
pub struct TimeState<const N: usize> {
    buckets: [u64; N],
    /// Each bucket's timed words: (peak, sum).
    timed: [(u64, u64); N],
    /// The highest epoch seen.
    latest: u64,
}

/// The shared state of a [`TimeWindow`]. The timed words are apart from the bucket words
/// that decisions read: written only by a record of a timed call, a sweep and a reset.
#[doc(hidden)]
#[derive(Debug)]
pub struct TimeShared<const N: usize> {
    buckets: [AtomicU64; N],
    peaks: [AtomicU64; N],
    sums: [AtomicU64; N],
    /// The highest epoch seen (only grows).
    latest: AtomicU64,
    live: Live,
}

impl<const N: usize> TimeWindow<N> {
    /// The epoch a reading at `now` is placed in, given the highest epoch seen.
    fn epoch(r: &Rules, now: Instant, latest: u64) -> u64 {
        (now.as_nanos() / r.bucket).max(latest)
    }

    /// The window as of epoch `e` (a reading), given the highest epoch recorded.
    fn stats_at(
        words: impl Iterator<Item = u64>,
        r: &Rules,
        now: Instant,
        latest: u64,
    ) -> WindowStats {
        let e = Self::epoch(r, now, latest);
        if e - latest >= N as u64 {
            // Nothing recorded within one window length: every bucket has expired.
            return WindowStats {
                minimum_calls: r.minimum_calls(),
                ..WindowStats::default()
            };
        }
        buckets_stats(words, e, N, r.minimum_calls())
    }

    /// The slots an advance from epoch `prev` to `e` sweeps: those of `prev + 1 ..= e`.
    fn swept(prev: u64, e: u64) -> impl Iterator<Item = usize> {
        (1..=(e - prev).min(N as u64)).map(move |k| ((prev + k) % N as u64) as usize)
    }
}

impl<const N: usize> sealed::Sealed for TimeWindow<N> {}
impl<const N: usize> Window for TimeWindow<N> {
    const MEASURES: bool = true;
    const NEEDS_TIME: bool = true;
    type State = TimeState<N>;
    type Shared = TimeShared<N>;
    type Rules = Rules;

    fn rules(cfg: &Config) -> Result<Rules, ConfigError> {
        if N == 0 {
            return Err(ConfigError::Zero(Field::WindowSize));
        }
        if N > 4096 {
            return Err(ConfigError::TooLarge(Field::WindowSize));
        }
        if cfg.minimum_calls as u64 > N as u64 * u16::MAX as u64 {
            return Err(ConfigError::MinimumCallsAboveWindow);
        }
        let bucket = duration_to_nanos(cfg.time_window) / N as u64;
        if bucket == 0 {
            Err(ConfigError::ZeroWindow)
        } else {
            Ok(Rules::new(cfg, bucket))
        }
    }
    #[inline(always)]
    fn rate_rules(r: &Rules) -> Option<&Rules> {
        Some(r)
    }
    fn new_state() -> TimeState<N> {
        TimeState {
            buckets: [0; N],
            timed: [(0, 0); N],
            latest: 0,
        }
    }
    fn new_shared() -> TimeShared<N> {
        TimeShared {
            buckets: atomic_array!(AtomicU64, 0, N),
            peaks: atomic_array!(AtomicU64, 0, N),
            sums: atomic_array!(AtomicU64, 0, N),
            latest: AtomicU64::new(0),
            live: Live::new(),
        }
    }
    fn record(w: &mut TimeState<N>, r: &Rules, now: Instant, s: Sample) -> WindowStats {
        let e = Self::epoch(r, now, w.latest);
        if e > w.latest {
            for i in Self::swept(w.latest, e) {
                // Every sample here is older than the window ending at `e`.
                w.buckets[i] = 0;
                w.timed[i] = (0, 0);
            }
            w.latest = e;
        }
        let b = &mut w.buckets[(e % N as u64) as usize];
        *b = bucket_add(*b, e, s);
        Self::stats(w, r, now)
    }
    #[inline(always)]
    fn live_rules(w: &TimeShared<N>, r: &Rules) -> Rules {
        w.live.rules(r)
    }
    fn set_live_rules(w: &TimeShared<N>, r: &Rules, what: LiveSetting) {
        w.live.store(r, what)
    }
    fn record_timed(w: &mut TimeState<N>, r: &Rules, now: Instant, s: Sample, micros: u32) {
        // `record` has just placed `s` at this epoch (and swept).
        let e = Self::epoch(r, now, w.latest);
        let i = (e % N as u64) as usize;
        let (peak, sum) = w.timed[i];
        w.timed[i] = (peak_add(peak, e, s, micros), sum_add(sum, e, micros));
    }
    fn record_timed_shared(w: &TimeShared<N>, r: &Rules, now: Instant, s: Sample, micros: u32) {
        // Acquire: pairs with the AcqRel `fetch_max` of the recorder that advanced it (our own
        // `record_shared` just did, if `now` is the newest epoch). A recorder that raced
        // further ahead places this call's figures in its later epoch: they then count a
        // little longer than the call's outcome (a figure for people; no decision reads it).
        let e = Self::epoch(r, now, w.latest.load(Ordering::Acquire));
        let i = (e % N as u64) as usize;
        // AcqRel, as the bucket word: see the sweep in `record_shared`.
        let _ = w.peaks[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
            Some(peak_add(b, e, s, micros))
        });
        let _ = w.sums[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
            Some(sum_add(b, e, micros))
        });
        // Acquire: as above. A recorder that advanced a window or more past `e` meanwhile has
        // swept this slot, perhaps before our writes: a timed word of an expired epoch holds
        // nothing the window counts, empty it whole (its other samples, of the same epoch,
        // have expired too), so no word outlives a sweep and the 16-bit tags stay exact.
        let after = w.latest.load(Ordering::Acquire);
        if after.saturating_sub(e) >= N as u64 {
            for t in [&w.peaks[i], &w.sums[i]] {
                let _ = t.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    (b as u16 == tag(e)).then_some(0)
                });
            }
        }
    }
    fn times(w: &TimeState<N>, r: &Rules, now: Instant, slow: u32) -> CallTimes {
        let e = Self::epoch(r, now, w.latest);
        if e - w.latest >= N as u64 {
            return CallTimes::default();
        }
        timed_stats(w.timed.iter().copied(), e, N, slow)
    }
    fn times_shared(w: &TimeShared<N>, r: &Rules, now: Instant, slow: u32) -> CallTimes {
        // Acquire: pairs with the AcqRel updates of `record_shared`, as `stats_shared`.
        let latest = w.latest.load(Ordering::Acquire);
        let e = Self::epoch(r, now, latest);
        if e - latest >= N as u64 {
            return CallTimes::default();
        }
        let words = w
            .peaks
            .iter()
            .zip(&w.sums)
            .map(|(p, s)| (p.load(Ordering::Acquire), s.load(Ordering::Acquire)));
        timed_stats(words, e, N, slow)
    }
    fn stats(w: &TimeState<N>, r: &Rules, now: Instant) -> WindowStats {
        Self::stats_at(w.buckets.iter().copied(), r, now, w.latest)
    }
    fn reset(w: &mut TimeState<N>) {
        // `latest` stays: a reset does not move time.
        w.buckets = [0; N];
        w.timed = [(0, 0); N];
    }
    fn record_shared(w: &TimeShared<N>, r: &Rules, now: Instant, s: Sample) -> WindowStats {
        // Acquire: pairs with the AcqRel `fetch_max` of the recorder that advanced it.
        let seen = w.latest.load(Ordering::Acquire);
        let e = Self::epoch(r, now, seen);
        if e > seen {
            // AcqRel: `fetch_max` hands out disjoint ranges `prev..e` to advancing recorders,
            // so each slot's sweep is decided once, from the epoch every sample in it is near.
            let prev = w.latest.fetch_max(e, Ordering::AcqRel);
            if prev < e {
                for i in Self::swept(prev, e) {
                    // Clears only what is stale, never a newer sample. Always a write (the
                    // same word when nothing is stale), AcqRel: a recorder whose sample lands
                    // in this slot after the sweep reads this write, so it also sees our
                    // `fetch_max` when it checks `latest` below and takes its sample back;
                    // one whose sample landed before is seen, and cleared, here.
                    let _ = w.buckets[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                        Some(if stale_after(b, prev, e, N) { 0 } else { b })
                    });
                    // The timed words, the same way (AcqRel for the same reason: a timed
                    // record that lands after this write sees our `fetch_max` and takes its
                    // words back below). They take part in no decision.
                    for t in [&w.peaks[i], &w.sums[i]] {
                        let _ = t.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                            Some(if timed_stale_after(b, prev, e, N) {
                                0
                            } else {
                                b
                            })
                        });
                    }
                }
            }
        }
        let slot = &w.buckets[(e % N as u64) as usize];
        // AcqRel CAS loop around the same `bucket_add` as the machine.
        let added = slot
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                let next = bucket_add(b, e, s);
                (next != b).then_some(next)
            })
            .is_ok();
        // Acquire: as above. A recorder that advanced one window or more past `e` while we
        // wrote has swept our slot before our write (see the sweep): take the sample back
        // (it has expired), so no sample outlives a sweep and the 16-bit tags stay exact.
        let after = w.latest.load(Ordering::Acquire);
        if added && after.saturating_sub(e) >= N as u64 {
            let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b as u16 == tag(e)).then(|| bucket_sub(b, s)).flatten()
            });
        }
        Self::stats_at(
            w.buckets.iter().map(|b| b.load(Ordering::Acquire)),
            r,
            now,
            after,
        )
    }
    fn stats_shared(w: &TimeShared<N>, r: &Rules, now: Instant) -> WindowStats {
        // Acquire: pairs with the AcqRel updates of `record_shared`.
        let latest = w.latest.load(Ordering::Acquire);
        let words = w.buckets.iter().map(|b| b.load(Ordering::Acquire));
        Self::stats_at(words, r, now, latest)
    }
    fn reset_shared(w: &TimeShared<N>) {
        for b in w.buckets.iter().chain(&w.peaks).chain(&w.sums) {
            b.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Sample = Sample {
        failure: false,
        slow: false,
    };
    const BAD: Sample = Sample {
        failure: true,
        slow: false,
    };
    const SLOW_BAD: Sample = Sample {
        failure: true,
        slow: true,
    };
    const R: Rules = Rules::new(&Config::new(), 0);

    /// resilience4j's `getFailureRate()` and `getSlowCallRate()` chart 1 failure in 3 calls as
    /// 33.33 %, not 33: the window figures in basis points give the same two decimals, in
    /// the machine and the shared form, while the trip decision keeps comparing whole counts.
    #[test]
    fn rates_in_basis_points_keep_two_decimals_like_resilience4j() {
        use super::super::{CircuitBreaker, Machine, Outcome};
        use crate::MockClock;
        let cfg = Config::new()
            .failure_rate(50)
            .slow_calls(core::time::Duration::from_millis(100), 90)
            .minimum_calls(3);
        let mut m = Machine::<CountWindow<10>>::new(cfg).unwrap();
        let clock = MockClock::new();
        let b = CircuitBreaker::with_window(cfg, CountWindow::<10>, &clock).unwrap();
        let ms = Instant::from_millis;
        for (fail, took) in [(true, 0), (false, 150), (false, 0)] {
            let t = m.try_acquire(ms(0)).unwrap();
            m.record(
                t,
                if fail {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                ms(took),
            );
            clock.set(ms(0));
            let p = b.try_acquire().unwrap();
            clock.set(ms(took));
            if fail { p.failure() } else { p.success() }
        }
        let (a, c) = (m.metrics(ms(150)).window, b.metrics().window);
        assert_eq!(a, c);
        assert_eq!(
            (a.failure_basis_points(), a.slow_basis_points()),
            (Some(3333), Some(3333))
        );
        assert_eq!(
            (a.failure_percent(), a.slow_percent()),
            (Some(33), Some(33))
        );
    }

    #[test]
    fn count_window_keeps_exactly_the_last_n() {
        let mut w = CountWindow::<3>::new_state();
        let t = Instant::ZERO;
        assert_eq!(
            CountWindow::<3>::record(&mut w, &R, t, BAD),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0,
                minimum_calls: 1
            }
        );
        CountWindow::<3>::record(&mut w, &R, t, SLOW_BAD);
        CountWindow::<3>::record(&mut w, &R, t, OK);
        assert_eq!(
            CountWindow::<3>::stats(&w, &R, t),
            WindowStats {
                calls: 3,
                failures: 2,
                slow: 1,
                minimum_calls: 1
            }
        );
        // The 4th call evicts the 1st (a failure).
        assert_eq!(
            CountWindow::<3>::record(&mut w, &R, t, OK),
            WindowStats {
                calls: 3,
                failures: 1,
                slow: 1,
                minimum_calls: 1
            }
        );
        CountWindow::<3>::reset(&mut w);
        assert_eq!(CountWindow::<3>::stats(&w, &R, t).calls, 0);
    }

    #[test]
    fn count_window_shared_matches_machine() {
        let mut m = CountWindow::<5>::new_state();
        let s = CountWindow::<5>::new_shared();
        for i in 0..23u32 {
            let sample = Sample {
                failure: i % 3 == 0,
                slow: i % 4 == 0,
            };
            let a = CountWindow::<5>::record(&mut m, &R, Instant::ZERO, sample);
            let b = CountWindow::<5>::record_shared(&s, &R, Instant::ZERO, sample);
            assert_eq!(a, b);
        }
        CountWindow::<5>::reset_shared(&s);
        assert_eq!(
            CountWindow::<5>::stats_shared(&s, &R, Instant::ZERO).calls,
            0
        );
    }

    #[test]
    fn time_window_expires_per_bucket() {
        // 4 buckets of 1 s.
        let mut w = TimeWindow::<4>::new_state();
        let b = Rules::new(&Config::new(), 1_000_000_000);
        TimeWindow::<4>::record(&mut w, &b, Instant::from_millis(500), BAD);
        TimeWindow::<4>::record(&mut w, &b, Instant::from_millis(1500), OK);
        assert_eq!(
            TimeWindow::<4>::stats(&w, &b, Instant::from_millis(3999)).calls,
            2
        );
        // At 4 s the bucket [0 s, 1 s) leaves the window; at 5 s the next.
        assert_eq!(
            TimeWindow::<4>::stats(&w, &b, Instant::from_secs(4)),
            WindowStats {
                calls: 1,
                failures: 0,
                slow: 0,
                minimum_calls: 1
            }
        );
        assert_eq!(
            TimeWindow::<4>::stats(&w, &b, Instant::from_secs(5)).calls,
            0
        );
        // A reused bucket restarts from zero.
        TimeWindow::<4>::record(&mut w, &b, Instant::from_millis(4100), OK);
        assert_eq!(
            TimeWindow::<4>::stats(&w, &b, Instant::from_millis(4100)),
            WindowStats {
                calls: 2,
                failures: 0,
                slow: 0,
                minimum_calls: 1
            }
        );
    }

    #[test]
    fn time_window_clock_backwards_counts_into_newer_bucket() {
        let mut w = TimeWindow::<4>::new_state();
        let b = Rules::new(&Config::new(), 1_000_000_000);
        TimeWindow::<4>::record(&mut w, &b, Instant::from_secs(9), BAD);
        // 8 s later is bucket 9 % 4 = 1 again, now 4 s back: the newer bucket is kept.
        TimeWindow::<4>::record(&mut w, &b, Instant::from_secs(5), OK);
        assert_eq!(
            TimeWindow::<4>::stats(&w, &b, Instant::from_secs(9)),
            WindowStats {
                calls: 2,
                failures: 1,
                slow: 0,
                minimum_calls: 1
            }
        );
    }

    #[test]
    fn time_bucket_saturates_without_skewing_rates() {
        let mut word = 0;
        for _ in 0..70_000 {
            word = bucket_add(word, 0, BAD);
        }
        let s = buckets_stats([word].into_iter(), 0, 1, 1);
        assert_eq!((s.calls, s.failures), (65_535, 65_535));
    }

    #[test]
    fn rate_trips_at_threshold_and_not_below_minimum() {
        let rules = Rules::new(&Config::new().failure_rate(50).minimum_calls(4), 0);
        assert!(!rate_trips(
            Some(&rules),
            WindowStats {
                calls: 3,
                failures: 3,
                slow: 0,
                minimum_calls: 1
            }
        ));
        assert!(rate_trips(
            Some(&rules),
            WindowStats {
                calls: 4,
                failures: 2,
                slow: 0,
                minimum_calls: 1
            }
        ));
        assert!(!rate_trips(
            Some(&rules),
            WindowStats {
                calls: 5,
                failures: 2,
                slow: 0,
                minimum_calls: 1
            }
        ));
        let slow = Rules::new(
            &Config::new().slow_calls(core::time::Duration::from_secs(1), 100),
            0,
        );
        assert!(rate_trips(
            Some(&slow),
            WindowStats {
                calls: 2,
                failures: 0,
                slow: 2,
                minimum_calls: 1
            }
        ));
        assert!(!rate_trips(
            Some(&slow),
            WindowStats {
                calls: 2,
                failures: 2,
                slow: 1,
                minimum_calls: 1
            }
        ));
        assert!(!rate_trips(
            None,
            WindowStats {
                calls: 2,
                failures: 2,
                slow: 2,
                minimum_calls: 1
            }
        ));
    }
}
