//! Per-key limiters in a fixed-capacity table: [`KeyedMachine`] and [`KeyedRateLimiter`].

use core::fmt;
use core::hash::Hash;
use core::ops::Range;

use super::config::Config;
use super::error::{ConfigError, Denied};
use super::shared::RateLimiter;
use super::state::{Gcra, admit_parts, parts};
use crate::lock::{RawLock, SpinLock, lock_init};
use crate::rng::hash_of;
use crate::sync::{AtomicU64, CachePadded, Ordering, UnsafeCell, const_fn};
use crate::time::{Clock, Instant};

/// How many slots a key may live in: the table is cut into sets of `PROBE` consecutive slots
/// (the last one shorter when `N` is not a multiple), and a key lives in the set its hash
/// picks.
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
    /// Last use (ns): the order of least-recently-used eviction, and a floor for time in the
    /// set (see [`Scan::latest`]).
    stamp: u64,
}

/// The slots of the set `hash` picks, in a table of `n` slots cut into sets of [`PROBE`].
const fn set_of(hash: u64, n: usize) -> Range<usize> {
    let sets = n.div_ceil(PROBE) as u64;
    // `n > 0` (checked by the constructors), so `sets > 0`; `% 1` keeps a `const fn` total.
    set_range((hash % if sets == 0 { 1 } else { sets }) as usize, n)
}

/// The slots of set `s` (the last set is shorter when `n` is not a multiple of [`PROBE`]).
const fn set_range(s: usize, n: usize) -> Range<usize> {
    let start = s * PROBE;
    let end = if start + PROBE < n { start + PROBE } else { n };
    start..end
}

/// One set of entries, as the algorithm below reaches it: the machine's own slice, or the
/// shared table's cells under the set's lock.
trait Set<K> {
    /// Slots in the set.
    fn len(&self) -> usize;
    /// Runs `f` on slot `i` (`i < len()`).
    fn get<R>(&self, i: usize, f: impl FnOnce(Option<&Entry<K>>) -> R) -> R;
    /// Runs `f` on slot `i` (`i < len()`), which it may change.
    fn update<R>(&mut self, i: usize, f: impl FnOnce(&mut Option<Entry<K>>) -> R) -> R;
}

impl<K> Set<K> for [Option<Entry<K>>] {
    fn len(&self) -> usize {
        self.len()
    }
    fn get<R>(&self, i: usize, f: impl FnOnce(Option<&Entry<K>>) -> R) -> R {
        f(self[i].as_ref())
    }
    fn update<R>(&mut self, i: usize, f: impl FnOnce(&mut Option<Entry<K>>) -> R) -> R {
        f(&mut self[i])
    }
}

/// What one pass over a set found for a key.
struct Scan {
    /// The key's slot.
    hit: Option<usize>,
    /// The first empty slot.
    empty: Option<usize>,
    /// The entry whose bucket is full soonest (lowest TAT), and that TAT.
    soonest: Option<(u64, usize)>,
    /// The least recently used entry, and its stamp.
    oldest: Option<(u64, usize)>,
    /// `now`, or the latest use of an entry seen, if later: an instant earlier than that is
    /// read as it ("no time passed"), so that an entry evicted as refilled never comes back
    /// with a full bucket when the clock steps back (every eviction leaves behind an entry
    /// stamped at least at its instant).
    latest: u64,
}

/// Looks for `key` in `set`, stopping at it.
fn scan<K: Eq>(set: &(impl Set<K> + ?Sized), key: &K, hash: u64, now: u64) -> Scan {
    let mut s = Scan {
        hit: None,
        empty: None,
        soonest: None,
        oldest: None,
        latest: now,
    };
    for i in 0..set.len() {
        let hit = set.get(i, |slot| match slot {
            Some(e) if e.hash == hash && e.key == *key => true,
            Some(e) => {
                s.latest = s.latest.max(e.stamp);
                if s.soonest.is_none_or(|(t, _)| e.tat < t) {
                    s.soonest = Some((e.tat, i));
                }
                if s.oldest.is_none_or(|(t, _)| e.stamp < t) {
                    s.oldest = Some((e.stamp, i));
                }
                false
            }
            None => {
                s.empty.get_or_insert(i);
                false
            }
        });
        if hit {
            s.hit = Some(i);
            break;
        }
    }
    s
}

/// Takes `n` tokens for `key` from `set`, judged by `T` and `b·T`: the one admission of the
/// keyed machine and the keyed shared form. Returns the answer, and whether a key with
/// tokens spent was evicted to make room.
fn acquire_in<K: Eq + Clone>(
    set: &mut (impl Set<K> + ?Sized),
    key: &K,
    hash: u64,
    n: u32,
    now: u64,
    (t, len): (u64, u64),
) -> (Result<(), Denied>, bool) {
    if n == 0 {
        return (Ok(()), false); // takes nothing, always passes (as `gcra`)
    }
    let s = scan(set, key, hash, now);
    if let Some(i) = s.hit {
        let answer = set.update(i, |slot| match slot {
            Some(e) => {
                // Time never runs back for a key.
                e.stamp = e.stamp.max(now);
                e.tat = admit_parts(e.tat, e.stamp, n, t, len)?;
                Ok(())
            }
            None => Ok(()), // unreachable: the lock or `&mut` held since the scan
        });
        return (answer, false);
    }
    // A key not in the table has a full bucket.
    let tat = match admit_parts(0, s.latest, n, t, len) {
        Ok(tat) => tat,
        Err(e) => return (Err(e), false),
    };
    let (i, lossy) = match (s.empty, s.soonest, s.oldest) {
        (Some(i), _, _) => (i, false),
        (None, Some((refilled, i)), _) if refilled <= s.latest => (i, false),
        (None, _, Some((_, i))) => (i, true),
        // Unreachable (a set has at least one slot); answer by not remembering rather than
        // by panicking.
        (None, _, None) => return (Ok(()), false),
    };
    set.update(i, |slot| {
        *slot = Some(Entry {
            key: key.clone(),
            hash,
            tat,
            stamp: s.latest,
        })
    });
    (Ok(()), lossy)
}

/// Tokens free for `key` in `set` at `now` (the burst for a key not there).
fn available_in<K: Eq>(
    set: &(impl Set<K> + ?Sized),
    key: &K,
    hash: u64,
    now: u64,
    g: &Gcra,
) -> u32 {
    let s = scan(set, key, hash, now);
    let (tat, at) = match s.hit {
        Some(i) => set.get(i, |e| e.map_or((0, now), |e| (e.tat, e.stamp.max(now)))),
        None => (0, s.latest),
    };
    g.available(tat, at)
}

/// One GCRA limiter per key, `N` keys at most, as a pure `&mut self` machine.
///
/// Every key gets the same [`Config`]. The table is cut into sets of [`PROBE`] slots, and a
/// key lives in the set its hash picks (FNV-1a, finished with splitmix64; `core::hash::Hash`,
/// no `std`). A key that is not in the table is a full bucket, so an entry whose bucket is
/// full again (its theoretical arrival time is past) carries no information: it is evicted
/// first, at no loss. Only when every slot of the key's set holds a partly-spent bucket is
/// the least recently used of them evicted; that key then forgets its debt and may get up to
/// one extra burst. Those evictions are counted
/// ([`lossy_evictions`](KeyedMachine::lossy_evictions)): size `N` (about twice the keys
/// active within one burst period) so that it stays at zero. An instant earlier than a key's
/// last use, or than the latest use in its set when it is inserted, is read as that one (no
/// time passed), so a clock that steps back never brings an evicted key back with a full
/// bucket.
///
/// # Memory
///
/// Fixed, never grows: `N × size_of::<Option<(K, u64, u64, u64)>>()` plus a few words
/// (`size_of::<KeyedMachine<K, N>>()` says it exactly; for `K = u32`, `N = 64` that is
/// about 2.5 KiB). A call reads at most [`PROBE`] slots.
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
    lossy: u64,
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
        match validate::<N>(cfg) {
            Ok(gcra) => Ok(KeyedMachine {
                gcra,
                entries: [const { None }; N],
                lossy: 0,
            }),
            Err(e) => Err(e),
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
        let hash = hash_of(key);
        let set = &mut self.entries[set_of(hash, N)];
        let g = (self.gcra.t, self.gcra.len);
        let (answer, lossy) = acquire_in(set, key, hash, n, now.as_nanos(), g);
        self.lossy = self.lossy.saturating_add(lossy as u64);
        answer
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
        let set = &self.entries[set_of(hash, N)];
        available_in(set, key, hash, now.as_nanos(), &self.gcra)
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

/// `cfg` checked for a table of `N` slots.
const fn validate<const N: usize>(cfg: Config) -> Result<Gcra, ConfigError> {
    if N == 0 {
        return Err(ConfigError::ZeroCapacity);
    }
    cfg.gcra()
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

/// One slot of the shared table: an entry, and a lock that only the first slot of each set
/// uses (it guards the whole set), beside that slot's entry, so that a call on a key in its
/// set's first slot moves one cache line.
struct Slot<K, L> {
    lock: L,
    entry: UnsafeCell<Option<Entry<K>>>,
}

/// The shared table: `N` slots in sets of [`PROBE`]; each set's entries are reached only
/// through [`Table::lock_set`], under the lock of the set's first slot.
struct Table<K, L, const N: usize> {
    slots: CachePadded<[Slot<K, L>; N]>,
}

// SAFETY: an entry is reached only inside `lock_set`, under the lock of its set's first slot
// (sets do not overlap: `set_range` cuts `0..N` into fixed ranges, and each range starts at its
// own first slot). By `RawLock`'s contract one closure runs under that lock at a time, each
// happening-before the next, so the entries of a set pass from one thread to another one at
// a time: sound when `K` may be sent. A `!Sync` `L` gives a `!Sync` table.
unsafe impl<K: Send, L: RawLock + Sync, const N: usize> Sync for Table<K, L, N> {}

/// A set of the shared table, held locked (built only inside [`Table::lock_set`]).
struct Locked<'a, K, L>(&'a [Slot<K, L>]);

impl<K, L> Set<K> for Locked<'_, K, L> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get<R>(&self, i: usize, f: impl FnOnce(Option<&Entry<K>>) -> R) -> R {
        // SAFETY: `Locked` exists only inside `lock_set`, under the set's lock (see `Table`):
        // no other reference to this entry exists while `f` runs, and `f` cannot keep it.
        self.0[i].entry.with_mut(|p| f(unsafe { &*p }.as_ref()))
    }
    fn update<R>(&mut self, i: usize, f: impl FnOnce(&mut Option<Entry<K>>) -> R) -> R {
        // SAFETY: as in `get`.
        self.0[i].entry.with_mut(|p| f(unsafe { &mut *p }))
    }
}

impl<K, L: RawLock, const N: usize> Table<K, L, N> {
    const_fn! {
        fn new() -> Self {
            Table { slots: CachePadded::new(slots::<K, L, N>()) }
        }
    }

    /// Runs `f` on the set `range` (from [`set_of`]) under its lock.
    #[inline]
    fn lock_set<R>(&self, range: Range<usize>, f: impl FnOnce(&mut Locked<'_, K, L>) -> R) -> R {
        let set = &self.slots.0[range];
        match set.first() {
            Some(head) => head.lock.lock(|| f(&mut Locked(set))),
            // Unreachable: `set_of` never gives an empty range for `N > 0`.
            None => f(&mut Locked(set)),
        }
    }

    /// Runs `f` on every set in turn, each under its lock.
    fn each_set(&self, mut f: impl FnMut(&mut Locked<'_, K, L>)) {
        for s in 0..N.div_ceil(PROBE) {
            self.lock_set(set_range(s, N), &mut f);
        }
    }
}

/// `N` empty slots, unlocked.
#[cfg(not(loom))]
const fn slots<K, L: RawLock, const N: usize>() -> [Slot<K, L>; N] {
    [const {
        Slot {
            lock: lock_init::<L>(),
            entry: UnsafeCell::new(None),
        }
    }; N]
}

#[cfg(loom)]
fn slots<K, L: RawLock, const N: usize>() -> [Slot<K, L>; N] {
    core::array::from_fn(|_| Slot {
        lock: lock_init::<L>(),
        entry: UnsafeCell::new(None),
    })
}

/// The shared form of [`KeyedMachine`]: `&self`, allocation-free, `Sync` with a `Sync` lock.
///
/// Unlike the single [`RateLimiter`](super::RateLimiter), a table of arbitrary keys cannot be
/// updated with one CAS, so each set of [`PROBE`] slots has a lock of strategy `L` (see
/// [`lock`](crate::lock)), held only for one bounded lookup in that set (no await, no user
/// code except `K`'s `Eq` and `Clone`; the key is hashed before). Calls on keys of
/// different sets never wait for each other, and a call on a key in its set's first slot
/// finds the lock and the entry on one cache line. The quota is published as the single
/// limiter publishes its own, and may be changed at run time
/// ([`reconfigure`](KeyedRateLimiter::reconfigure)).
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
/// # Memory
///
/// Fixed, never grows: `N` slots, each an entry (as [`KeyedMachine`]'s) and a lock (48 bytes
/// for `K = u32` and the spin lock), the table aligned to a cache line, plus the published
/// quota (256 bytes on 64-bit targets): for `K = u32`, `N = 64` about 3.3 KiB.
///
/// ```
/// use bulwark::rate_limiter::KeyedRateLimiter;
/// assert!(core::mem::size_of::<KeyedRateLimiter<u32, &bulwark::MockClock, 64>>() <= 64 * 48 + 320);
/// ```
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
    table: Table<K, L, N>,
    /// The quota in force and the clock: a single limiter, whose own token word is never
    /// used, publishes them (its `reconfigure` and `config` serve this table).
    quota: RateLimiter<C>,
    /// Lossy evictions, summed over the sets.
    lossy: AtomicU64,
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
            let gcra = match validate::<N>(cfg) {
                Ok(gcra) => gcra,
                Err(e) => {
                    // As in `RateLimiter::new`: a `const fn` cannot drop `C`.
                    core::mem::forget(clock);
                    return Err(e);
                }
            };
            Ok(KeyedRateLimiter {
                table: Table::new(),
                quota: RateLimiter::checked(&cfg, &gcra, clock),
                lossy: AtomicU64::new(0),
            })
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
        let now = self.quota.clock.now().as_nanos();
        let hash = hash_of(key);
        let g = self.quota.parts_in_force();
        let (answer, lossy) = self
            .table
            .lock_set(set_of(hash, N), |set| acquire_in(set, key, hash, n, now, g));
        if lossy {
            // Relaxed: a count, read on its own; it orders nothing.
            self.lossy.fetch_add(1, Ordering::Relaxed);
        }
        answer
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
        let now = self.quota.clock.now().as_nanos();
        let hash = hash_of(key);
        let (t, len) = self.quota.parts_in_force();
        let g = parts(t, len);
        self.table
            .lock_set(set_of(hash, N), |set| available_in(set, key, hash, now, &g))
    }

    /// Number of keys in the table (including ones whose bucket is full again), counted set
    /// by set (keys inserted meanwhile into a set already counted are missed).
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 16> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// l.try_acquire(&1).unwrap();
    /// l.try_acquire(&2).unwrap();
    /// l.try_acquire(&1).unwrap();
    /// assert_eq!(l.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.table.each_set(|set| {
            n += (0..set.len())
                .filter(|&i| set.get(i, |e| e.is_some()))
                .count();
        });
        n
    }

    /// `true` when no key is in the table.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// assert!(l.is_empty());
    /// l.try_acquire(&1).unwrap();
    /// assert!(!l.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// See [`KeyedMachine::lossy_evictions`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 1> = KeyedRateLimiter::new(Config::per_second(3).burst(1), &clock).unwrap();
    /// l.try_acquire(&1).unwrap();
    /// l.try_acquire(&2).unwrap(); // key 1 is still spent: evicted with its debt
    /// assert_eq!(l.lossy_evictions(), 1);
    /// ```
    pub fn lossy_evictions(&self) -> u64 {
        // Relaxed: see `try_acquire_n`.
        self.lossy.load(Ordering::Relaxed)
    }

    /// The configuration in force.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, KeyedRateLimiter};
    /// use bulwark::MockClock;
    /// let clock = MockClock::new();
    /// let l: KeyedRateLimiter<u8, _, 4> = KeyedRateLimiter::new(Config::per_second(3), &clock).unwrap();
    /// l.reconfigure(Config::per_second(10)).unwrap();
    /// assert_eq!(l.config(), Config::per_second(10));
    /// ```
    pub fn config(&self) -> Config {
        self.quota.config()
    }

    /// Changes rate and burst for every key, keeping each key's theoretical arrival time (see
    /// [`KeyedMachine::reconfigure`]), through `&self`, as
    /// [`RateLimiter::reconfigure`](super::RateLimiter::reconfigure) does: every call judges
    /// by the old quota or the new one, whole.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] (`Busy` while another change is being made); the table is then
    /// unchanged.
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
        self.quota.reconfigure(cfg)
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
            m.try_acquire(&2, Instant::from_millis(1_550)).is_err(),
            "key 2 kept"
        );
        // Now both are spent: key 4 evicts the least recently used (key 3 was used at 1.5 s,
        // key 2 at 1.55 s), so key 3 goes.
        m.try_acquire(&4, Instant::from_millis(1_600)).unwrap();
        assert_eq!(m.lossy_evictions(), 1);
        assert!(m.try_acquire(&2, Instant::from_millis(1_600)).is_err());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn many_keys_never_panic_and_stay_bounded() {
        let mut m: KeyedMachine<u64, 16> = KeyedMachine::new(Config::per_second(3)).unwrap();
        for k in 0..if cfg!(miri) { 500 } else { 10_000u64 } {
            let _ = m.try_acquire_n(&k, (k % 5) as u32, Instant::from_millis(k));
        }
        assert!(m.len() <= 16);
        let _ = m.try_acquire_n(&1, u32::MAX, Instant::MAX);
        assert_eq!(m.try_acquire_n(&99, 0, Instant::ZERO), Ok(()));
    }

    /// Sets have their own locks: a key's `Eq`, run under its set's lock, may call the same
    /// table for a key of another set (with one lock for the table, the `LocalLock` below
    /// would refuse the nested call by panicking), while a key of its own set is refused.
    #[test]
    fn calls_on_keys_of_other_sets_never_wait_for_this_one() {
        extern crate std;
        use crate::lock::LocalLock;
        use core::cell::Cell;

        static CLOCK: crate::MockClock = crate::MockClock::new();
        #[derive(Clone)]
        struct Key(u32);
        impl core::hash::Hash for Key {
            fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
                self.0.hash(h);
            }
        }
        std::thread_local! {
            static TABLE: KeyedRateLimiter<Key, &'static crate::MockClock, 16, LocalLock> =
                KeyedRateLimiter::new(Config::per_second(1).burst(1), &CLOCK).unwrap();
            /// A key the next comparison asks the table for, from inside the lock.
            static NESTED: Cell<Option<u32>> = const { Cell::new(None) };
        }
        impl PartialEq for Key {
            fn eq(&self, other: &Key) -> bool {
                if let Some(k) = NESTED.take() {
                    TABLE.with(|t| assert!(t.try_acquire(&Key(k)).is_ok()));
                }
                self.0 == other.0
            }
        }
        impl Eq for Key {}

        let set = |k: u32| set_of(hash_of(&Key(k)), 16);
        let home = 0;
        let away = (1..).find(|&k| set(k) != set(home)).unwrap();
        let near = (1..).find(|&k| set(k) == set(home)).unwrap();
        TABLE.with(|t| t.try_acquire(&Key(home)).unwrap());
        NESTED.set(Some(away));
        // The second call finds `home`'s entry and compares keys: the nested call on `away`
        // runs under its own set's lock.
        TABLE.with(|t| assert!(t.try_acquire(&Key(home)).is_err()));
        assert_eq!(NESTED.take(), None, "the nested call ran");
        TABLE.with(|t| assert!(t.try_acquire(&Key(away)).is_err(), "and took its token"));
        NESTED.set(Some(near));
        let same_set = std::panic::catch_unwind(|| TABLE.with(|t| t.try_acquire(&Key(home))));
        assert!(same_set.is_err(), "re-entering one set's lock is refused");
        TABLE.with(|t| assert_eq!(t.available(&Key(near)), 1, "and changed nothing"));
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
