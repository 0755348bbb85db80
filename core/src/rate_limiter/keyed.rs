//! Per-key limiters in a fixed-capacity table: [`KeyedMachine`] and [`KeyedRateLimiter`].

use core::fmt;
use core::hash::Hash;

use super::config::Config;
use super::error::{ConfigError, Denied};
use super::state::{Gcra, gcra};
use crate::lock::{Mutex, RawLock, SpinLock};
use crate::rng::hash_of;
use crate::sync::const_fn;
use crate::time::{Clock, Instant};

/// How many consecutive slots, from the one the key hashes to, a key may live in.
///
/// ```
/// assert_eq!(bulwark::rate_limiter::PROBE, 8);
/// ```
pub const PROBE: usize = 8;

#[derive(Clone, Debug)]
struct Entry<K> {
    key: K,
    hash: u64,
    tat: u64,
    /// Last use, for least-recently-used eviction.
    stamp: u64,
}

/// One GCRA limiter per key, `N` keys at most, as a pure `&mut self` machine.
///
/// Every key gets the same [`Config`]. A key lives in one of the [`PROBE`] slots starting at
/// its hash (FNV-1a, finished with splitmix64; `core::hash::Hash`, no `std`). A key that is
/// not in the table is a full bucket, so an entry whose bucket is full again (its theoretical
/// arrival time is past) carries no information: it is evicted first, at no loss. Only when
/// all the key's slots hold partly-spent buckets is the least recently used of them evicted;
/// that key then forgets its debt and may get up to one extra burst. Those evictions are
/// counted ([`lossy_evictions`](KeyedMachine::lossy_evictions)): size `N` (about twice the
/// keys active within one burst period) so that it stays at zero. An instant earlier than
/// the latest one seen is read as that latest one (no time passed), so a clock that steps
/// back never brings an evicted key back with a full bucket.
///
/// # Memory
///
/// Fixed, never grows: `N × size_of::<Option<(K, u64, u64, u64)>>()` plus a few words
/// (`size_of::<KeyedMachine<K, N>>()` says it exactly; for `K = u32`, `N = 64` that is
/// about 2 KiB). Lookups touch at most [`PROBE`] slots.
///
/// # Examples
///
/// ```
/// use bulwark::Instant;
/// use bulwark::rate_limiter::{Config, KeyedMachine};
///
/// let mut m: KeyedMachine<&str, 16> = KeyedMachine::new(Config::per_second(1)).unwrap();
/// let t = Instant::ZERO;
/// assert!(m.try_acquire(&"alice", t).is_ok());
/// assert!(m.try_acquire(&"alice", t).is_err());
/// assert!(m.try_acquire(&"bob", t).is_ok()); // keys are independent
/// assert_eq!(m.len(), 2);
/// assert!(core::mem::size_of::<KeyedMachine<u32, 64>>() <= 64 * 40 + 64);
/// ```
pub struct KeyedMachine<K, const N: usize> {
    gcra: Gcra,
    entries: [Option<Entry<K>>; N],
    stamp: u64,
    lossy: u64,
    /// The latest instant seen (ns). An earlier `now` is read as this one ("no time
    /// passed"): an entry evicted as refilled at a later instant must not come back with a
    /// full bucket when the clock steps back.
    latest: u64,
}

impl<K: Hash + Eq + Clone, const N: usize> KeyedMachine<K, N> {
    /// An empty table.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a configuration that cannot run, or `N = 0`
    /// ([`ConfigError::ZeroCapacity`]).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ConfigError, KeyedMachine};
    /// assert!(KeyedMachine::<u8, 4>::new(Config::per_second(1)).is_ok());
    /// assert_eq!(KeyedMachine::<u8, 0>::new(Config::per_second(1)).err(), Some(ConfigError::ZeroCapacity));
    /// ```
    pub const fn new(cfg: Config) -> Result<Self, ConfigError> {
        match Self::validate(cfg) {
            Ok(gcra) => Ok(Self::with_gcra(gcra)),
            Err(e) => Err(e),
        }
    }

    const fn validate(cfg: Config) -> Result<Gcra, ConfigError> {
        if N == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        cfg.gcra()
    }

    const fn with_gcra(gcra: Gcra) -> Self {
        KeyedMachine {
            gcra,
            entries: [const { None }; N],
            stamp: 0,
            lossy: 0,
            latest: 0,
        }
    }

    /// Takes one token for `key` at `now`.
    ///
    /// # Errors
    ///
    /// [`Denied`] as [`try_acquire_n`](KeyedMachine::try_acquire_n).
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let mut m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(2).burst(1)).unwrap();
    /// m.try_acquire(&7, Instant::ZERO).unwrap();
    /// assert_eq!(m.try_acquire(&7, Instant::ZERO).unwrap_err().retry_at(), Some(Instant::from_millis(500)));
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&mut self, key: &K, now: Instant) -> Result<(), Denied> {
        self.try_acquire_n(key, 1, now)
    }

    /// Takes `n` tokens for `key` at `now`, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied`]: limited until an instant, or `n` above the burst (nothing taken, nothing
    /// inserted).
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, Denied, KeyedMachine};
    /// let mut m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(5)).unwrap();
    /// assert!(m.try_acquire_n(&1, 5, Instant::ZERO).is_ok());
    /// assert!(matches!(m.try_acquire_n(&2, 6, Instant::ZERO), Err(Denied::InsufficientCapacity(_))));
    /// assert_eq!(m.len(), 1);
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&mut self, key: &K, n: u32, now: Instant) -> Result<(), Denied> {
        let now = now.as_nanos().max(self.latest);
        self.latest = now;
        let hash = hash_of(key);
        let start = (hash % N as u64) as usize;
        self.stamp = self.stamp.wrapping_add(1);
        let stamp = self.stamp;
        let mut empty = None;
        let mut refilled = None;
        let mut lru: Option<(u64, usize)> = None;
        for i in 0..PROBE.min(N) {
            let idx = (start + i) % N;
            match &mut self.entries[idx] {
                Some(e) if e.hash == hash && e.key == *key => {
                    e.stamp = stamp;
                    e.tat = gcra(e.tat, now, n, &self.gcra)?;
                    return Ok(());
                }
                Some(e) => {
                    if e.tat <= now {
                        refilled.get_or_insert(idx);
                    }
                    if lru.is_none_or(|(s, _)| e.stamp < s) {
                        lru = Some((e.stamp, idx));
                    }
                }
                None => {
                    empty.get_or_insert(idx);
                }
            }
        }
        // A key not in the table has a full bucket.
        let tat = gcra(0, now, n, &self.gcra)?;
        if tat <= now {
            return Ok(()); // n = 0: nothing to remember
        }
        let slot = match (empty, refilled, lru) {
            (Some(i), _, _) | (None, Some(i), _) => i,
            (None, None, Some((_, i))) => {
                self.lossy = self.lossy.saturating_add(1);
                i
            }
            // Unreachable with N > 0 (the window has at least one slot); answer by not
            // remembering rather than by panicking.
            (None, None, None) => return Ok(()),
        };
        self.entries[slot] = Some(Entry {
            key: key.clone(),
            hash,
            tat,
            stamp,
        });
        Ok(())
    }

    /// Tokens free for `key` at `now` (the burst for a key not in the table).
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let mut m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(5)).unwrap();
    /// m.try_acquire_n(&1, 2, Instant::ZERO).unwrap();
    /// assert_eq!((m.available(&1, Instant::ZERO), m.available(&2, Instant::ZERO)), (3, 5));
    /// ```
    pub fn available(&self, key: &K, now: Instant) -> u32 {
        let hash = hash_of(key);
        let start = (hash % N as u64) as usize;
        let tat = (0..PROBE.min(N))
            .filter_map(|i| self.entries[(start + i) % N].as_ref())
            .find(|e| e.hash == hash && e.key == *key)
            .map_or(0, |e| e.tat);
        self.gcra.available(tat, now.as_nanos().max(self.latest))
    }

    /// Number of keys in the table (including ones whose bucket is full again).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(5)).unwrap();
    /// assert!(m.is_empty() && m.len() == 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    /// `true` when no key is in the table.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(5)).unwrap();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// Evictions of keys whose bucket was not full again (each may have let one extra burst
    /// through for that key). Zero when `N` is large enough.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let mut m: KeyedMachine<u32, 1> = KeyedMachine::new(Config::per_second(1)).unwrap();
    /// m.try_acquire(&1, Instant::ZERO).unwrap();
    /// m.try_acquire(&2, Instant::ZERO).unwrap(); // key 1 is still spent: lossy
    /// m.try_acquire(&3, Instant::from_secs(5)).unwrap(); // key 2 is full again: free
    /// assert_eq!(m.lossy_evictions(), 1);
    /// ```
    pub fn lossy_evictions(&self) -> u64 {
        self.lossy
    }

    /// Changes rate and burst for every key, keeping each key's theoretical arrival time, as
    /// the shared limiter does ([`RateLimiter::reconfigure`](super::RateLimiter::reconfigure)):
    /// what was spent stays spent; later calls are judged against the new quota.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]; the table is then unchanged.
    ///
    /// ```
    /// use bulwark::Instant;
    /// use bulwark::rate_limiter::{Config, KeyedMachine};
    /// let mut m: KeyedMachine<u32, 8> = KeyedMachine::new(Config::per_second(5)).unwrap();
    /// m.try_acquire_n(&1, 2, Instant::ZERO).unwrap(); // full again at 400 ms
    /// m.reconfigure(Config::per_second(10)).unwrap(); // 100 ms a token: 4 in use
    /// assert_eq!(m.available(&1, Instant::ZERO), 6);
    /// ```
    pub fn reconfigure(&mut self, cfg: Config) -> Result<(), ConfigError> {
        self.gcra = cfg.gcra()?;
        Ok(())
    }
}

impl<K, const N: usize> fmt::Debug for KeyedMachine<K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedMachine")
            .field("gcra", &self.gcra)
            .field("capacity", &N)
            .field("lossy_evictions", &self.lossy)
            .finish_non_exhaustive()
    }
}

/// The shared form of [`KeyedMachine`]: `&self`, allocation-free, `Sync` with a `Sync` lock.
///
/// Unlike the single [`RateLimiter`](super::RateLimiter), a table of arbitrary keys cannot be
/// updated with one CAS, so the machine sits behind a lock of strategy `L` (see
/// [`lock`](crate::lock)), held only for one bounded lookup ([`PROBE`] slots, no await, no
/// user code except `K`'s `Hash`/`Eq`/`Clone`).
///
/// # Interrupt handlers
///
/// With the default [`SpinLock`] (cheap for tasks and threads) do **not** use it from an
/// interrupt handler: an interrupt that spins on a lock its own thread holds never returns.
/// With [`CriticalSectionLock`](crate::lock) (feature
/// `critical-section`) it may be used from interrupt handlers:
/// `KeyedRateLimiter<K, C, N, CriticalSectionLock>`. [`LocalLock`](crate::lock::LocalLock)
/// makes it `!Sync` (one thread).
///
/// # Examples
///
/// ```
/// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
/// use bulwark::{Instant, MockClock};
/// use core::time::Duration;
///
/// let clock = MockClock::new();
/// let per_ip: KeyedRateLimiter<[u8; 4], _, 64> =
///     KeyedRateLimiter::new(Config::per_second(1), &clock).unwrap();
/// assert!(per_ip.try_acquire(&[10, 0, 0, 1]).is_ok());
/// assert_eq!(per_ip.try_acquire(&[10, 0, 0, 1]).unwrap_err().retry_at(), Some(Instant::from_secs(1)));
/// assert!(per_ip.try_acquire(&[10, 0, 0, 2]).is_ok());
/// clock.advance(Duration::from_secs(1));
/// assert!(per_ip.try_acquire(&[10, 0, 0, 1]).is_ok());
/// ```
pub struct KeyedRateLimiter<K, C, const N: usize, L = SpinLock> {
    clock: C,
    table: Mutex<L, KeyedMachine<K, N>>,
}

impl<K: Hash + Eq + Clone, C: Clock, const N: usize, L: RawLock> KeyedRateLimiter<K, C, N, L> {
    const_fn! {
        /// An empty table reading time from `clock`.
        ///
        /// # Errors
        ///
        /// As [`KeyedMachine::new`].
        ///
        /// ```
        /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
        /// use bulwark::MockClock;
        /// let clock = MockClock::new();
        /// assert!(KeyedRateLimiter::<u64, _, 0>::new(Config::per_second(1), &clock).is_err());
        /// ```
        pub fn new(cfg: Config, clock: C) -> Result<Self, ConfigError> {
            let m = match KeyedMachine::<K, N>::validate(cfg) {
                Ok(gcra) => KeyedMachine::with_gcra(gcra),
                Err(e) => {
                    // As in `RateLimiter::new`: a `const fn` cannot drop `C`.
                    core::mem::forget(clock);
                    return Err(e);
                }
            };
            Ok(KeyedRateLimiter { clock, table: Mutex::new(m) })
        }
    }

    /// Takes one token for `key` now.
    ///
    /// # Errors
    ///
    /// [`Denied`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(1), &clock).unwrap();
    /// assert!(l.try_acquire(&1).is_ok() && l.try_acquire(&1).is_err());
    /// ```
    #[doc(alias = "check")]
    pub fn try_acquire(&self, key: &K) -> Result<(), Denied> {
        self.try_acquire_n(key, 1)
    }

    /// Takes `n` tokens for `key` now, all or none.
    ///
    /// # Errors
    ///
    /// [`Denied`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// assert!(l.try_acquire_n(&1, 3).is_ok() && l.try_acquire_n(&1, 1).is_err());
    /// ```
    #[doc(alias = "check_n")]
    pub fn try_acquire_n(&self, key: &K, n: u32) -> Result<(), Denied> {
        let now = self.clock.now();
        self.table.lock(|m| m.try_acquire_n(key, n, now))
    }

    /// Tokens free for `key` now.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// assert_eq!(l.available(&9), 3);
    /// ```
    pub fn available(&self, key: &K) -> u32 {
        let now = self.clock.now();
        self.table.lock(|m| m.available(key, now))
    }

    /// See [`KeyedMachine::lossy_evictions`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// assert_eq!(l.lossy_evictions(), 0);
    /// ```
    pub fn lossy_evictions(&self) -> u64 {
        self.table.lock(|m| m.lossy_evictions())
    }

    /// Changes rate and burst for every key, keeping each key's theoretical arrival time (see
    /// [`KeyedMachine::reconfigure`]). `&self`: the table's lock makes the change atomic for
    /// callers.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]; the table is then unchanged.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// l.reconfigure(Config::per_second(10)).unwrap();
    /// assert_eq!(l.available(&1), 10);
    /// ```
    pub fn reconfigure(&self, cfg: Config) -> Result<(), ConfigError> {
        self.table.lock(|m| m.reconfigure(cfg))
    }
}

impl<K, C, const N: usize, L> fmt::Debug for KeyedRateLimiter<K, C, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

/// One key of a [`KeyedRateLimiter`], as a gate ([`Admit`](crate::admission::Admit)): what a
/// pipeline stage or a tower layer holds for the key of the request at hand. Generic over how
/// it reaches the table (`&KeyedRateLimiter`, or an owner such as an `Arc`).
///
/// ```
/// use bulwark::admission::{Permit, RetryHint};
/// use bulwark::rate_limiter::{Config, Keyed, KeyedRateLimiter};
/// use bulwark::{Instant, MockClock};
/// let clock = MockClock::new();
/// let per_user: KeyedRateLimiter<u32, _, 8> = KeyedRateLimiter::new(Config::per_second(1), &clock).unwrap();
/// let alice = Keyed::new(&per_user, 1);
/// Permit::try_new(&alice).unwrap().success();
/// assert_eq!(Permit::try_new(&alice).map(drop).unwrap_err().retry_at(), Some(Instant::from_secs(1)));
/// assert!(Permit::try_new(&Keyed::new(&per_user, 2)).is_ok()); // another key, its own tokens
/// ```
#[derive(Clone, Debug)]
pub struct Keyed<R, K> {
    limiter: R,
    key: K,
}

impl<R, K> Keyed<R, K> {
    /// The gate for `key` of the table `limiter` points to.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Keyed, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let t: KeyedRateLimiter<&str, _, 4> = KeyedRateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(*Keyed::new(&t, "tenant-a").key(), "tenant-a");
    /// ```
    pub fn new(limiter: R, key: K) -> Self {
        Keyed { limiter, key }
    }

    /// The key.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, Keyed, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let t: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(5), &clock).unwrap();
    /// assert_eq!(*Keyed::new(&t, 3).key(), 3);
    /// ```
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<R, K, C, const N: usize, L> crate::admission::Admit for Keyed<R, K>
where
    R: core::ops::Deref<Target = KeyedRateLimiter<K, C, N, L>>,
    K: Hash + Eq + Clone,
    C: Clock,
    L: RawLock,
{
    type Ticket = ();
    type Rejected = Denied;
    const RECORDS: bool = false;

    #[inline]
    fn try_admit(&self) -> Result<(), Denied> {
        self.limiter.try_acquire(&self.key)
    }

    #[inline]
    fn record(&self, _: (), _: crate::admission::Outcome) {}

    #[inline]
    fn release(&self, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_stepping_back_never_lets_an_evicted_key_exceed_its_rate() {
        // Found by the limiter fuzz target: a key evicted as "refilled" at 200 ms came back
        // with a full bucket when the clock stepped back to 0 ms, so 6 cells passed by
        // 200 ms where burst 2 + 200 ms / 100 ms allows 4.
        let cfg = Config::with_period(core::time::Duration::from_millis(100)).burst(2);
        let mut m: KeyedMachine<u8, 4> = KeyedMachine::new(cfg).unwrap();
        let ms = Instant::from_millis;
        let mut admitted = 0;
        admitted += 2 * m.try_acquire_n(&0, 2, ms(0)).is_ok() as u32;
        for other in 1..=4 {
            m.try_acquire_n(&other, 1, ms(200)).unwrap(); // fills the table: key 0 is evicted
        }
        admitted += 2 * m.try_acquire_n(&0, 2, ms(0)).is_ok() as u32;
        admitted += 2 * m.try_acquire_n(&0, 2, ms(200)).is_ok() as u32;
        assert!(
            admitted <= 4,
            "key 0 got {admitted} cells by 200 ms, at most 4 allowed"
        );
    }

    #[test]
    fn refilled_entries_are_evicted_before_spent_ones() {
        let mut m: KeyedMachine<u32, 2> = KeyedMachine::new(Config::per_second(1)).unwrap();
        let t = Instant::from_secs;
        m.try_acquire(&1, t(0)).unwrap(); // full again at 1 s
        m.try_acquire(&2, t(1)).unwrap(); // full again at 2 s
        // At 1.5 s key 1 is refilled, key 2 is not: key 3 takes key 1's slot, losslessly.
        m.try_acquire(&3, Instant::from_millis(1_500)).unwrap();
        assert_eq!(m.lossy_evictions(), 0);
        assert!(
            m.try_acquire(&2, Instant::from_millis(1_500)).is_err(),
            "key 2 kept"
        );
        // Now both are spent: key 4 evicts the least recently used (key 3 was used at 1.5 s,
        // key 2 at 1.5 s after it), so key 3 goes.
        m.try_acquire(&4, Instant::from_millis(1_600)).unwrap();
        assert_eq!(m.lossy_evictions(), 1);
        assert!(m.try_acquire(&2, Instant::from_millis(1_600)).is_err());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn many_keys_never_panic_and_stay_bounded() {
        let mut m: KeyedMachine<u64, 16> = KeyedMachine::new(Config::per_second(3)).unwrap();
        for k in 0..10_000u64 {
            let _ = m.try_acquire_n(&k, (k % 5) as u32, Instant::from_millis(k));
        }
        assert!(m.len() <= 16);
        let _ = m.try_acquire_n(&1, u32::MAX, Instant::MAX);
        assert_eq!(m.try_acquire_n(&99, 0, Instant::ZERO), Ok(()));
    }

    #[test]
    fn shared_form_locks_and_counts() {
        extern crate std;
        use core::sync::atomic::{AtomicU32, Ordering};
        let clock = crate::MockClock::new();
        let l: KeyedRateLimiter<u32, _, 8> =
            KeyedRateLimiter::new(Config::per_second(1).burst(10), &clock).unwrap();
        let ok = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..40 {
                        if l.try_acquire(&(i % 2)).is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), 20);
    }
}
