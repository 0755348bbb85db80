//! Lock strategies, chosen by the user: how the few types that must lock keep callers apart.
//!
//! Most of bulwark is lock-free. Four types are not, because their state does not fit one
//! atomic word: a [`QueueSemaphore`]'s wait slots, a [`KeyedRateLimiter`]'s table, a
//! [`Pool`]'s connection slots and a [`Stale`] cache. Each holds its lock for a short, bounded
//! moment (a few slots scanned, a value moved or cloned; never across an `.await`, never while
//! a waker runs). Which lock is right depends on where the type is used, so it is a type
//! parameter `L: `[`RawLock`] (the idea of embassy-sync's `RawMutex`), defaulting to
//! [`SpinLock`]:
//!
//! | `L` | `Sync` | usable from an interrupt handler | cost when free |
//! |---|---|---|---|
//! | [`SpinLock`] (default) | yes | **no** | one compare-and-swap, one store |
//! | `CriticalSectionLock` (feature `critical-section`) | yes | **yes** | one critical section (on a single-core MCU: interrupts off) |
//! | [`LocalLock`] | **no**: one thread only | no (it cannot be shared) | one flag |
//!
//! A spin lock is not interrupt-safe: an interrupt that arrives while its own thread holds
//! the lock, and then asks for it, spins forever, since the holder cannot run again until the
//! interrupt returns. A critical section keeps interrupts (and, on multi-core chips, the other
//! cores) out while it is held, so the interrupt never finds the lock taken. Firmware that
//! shares one of these types with an interrupt handler picks `CriticalSectionLock`; servers
//! and firmware tasks keep the default.
//!
//! No lock here is re-entrant: locking again from inside the locked region (a key's `Hash`
//! calling back into its own limiter, say) never runs the inner region; [`SpinLock`] spins
//! forever, the others panic.
//!
//! [`QueueSemaphore`]: crate::bulkhead::QueueSemaphore
//! [`KeyedRateLimiter`]: crate::rate_limiter::KeyedRateLimiter
//! [`Pool`]: crate::pool::Pool
//! [`Stale`]: crate::fallback::Stale
//!
//! # Examples
//!
//! The same keyed limiter with each strategy that needs no feature:
//!
//! ```
//! use bulwark::lock::{LocalLock, SpinLock};
//! use bulwark::rate_limiter::{Config, KeyedRateLimiter};
//! use bulwark::MockClock;
//!
//! static CLOCK: MockClock = MockClock::new();
//! // The default: shared between threads (a `static` needs `Sync`).
//! static PER_IP: Result<KeyedRateLimiter<[u8; 4], &MockClock, 64>, bulwark::rate_limiter::ConfigError> =
//!     KeyedRateLimiter::new(Config::per_second(1), &CLOCK);
//! let spin: &KeyedRateLimiter<[u8; 4], &MockClock, 64, SpinLock> = PER_IP.as_ref().unwrap();
//! assert!(spin.try_acquire(&[10, 0, 0, 1]).is_ok());
//!
//! // One thread only: not `Sync`, so it cannot be a `static` or be shared.
//! let local: KeyedRateLimiter<u8, _, 8, LocalLock> =
//!     KeyedRateLimiter::new(Config::per_second(1), &CLOCK).unwrap();
//! assert!(local.try_acquire(&1).is_ok() && local.try_acquire(&1).is_err());
//! ```
//!
//! A [`LocalLock`] container is not `Sync`, so it cannot be shared between threads:
//!
//! ```compile_fail,E0277
//! use bulwark::lock::{LocalLock, Mutex};
//! fn shared<T: Sync>(_: &T) {}
//! shared(&Mutex::<LocalLock, u32>::new(0));
//! ```
//!
//! ```compile_fail,E0277
//! use bulwark::fallback::Stale;
//! use bulwark::lock::LocalLock;
//! static LAST: Stale<u16, LocalLock> = Stale::new(); // a `static` must be `Sync`
//! ```

use core::cell::Cell;
use core::fmt;

use crate::sync::{AtomicBool, Ordering, UnsafeCell, const_fn};

/// A lock strategy: a raw lock that runs a closure while it holds the lock.
///
/// Implement it to bring your own lock (a platform's hardware spinlock, a lock that masks
/// only some interrupt priorities); the types that lock in bulwark take it as their `L`
/// parameter through [`Mutex`].
///
/// # Safety
///
/// An implementor promises, for every value `l` of the type:
///
/// * **Exclusion.** While a closure passed to `l.lock` runs, no other closure passed to
///   `l.lock` runs: not on another thread (if the type is `Sync`), not in an interrupt
///   handler, and not nested inside the first (a re-entrant call must panic or never
///   return, not run its closure). [`Mutex`] hands out `&mut` to its value on this promise.
/// * **Ordering.** Everything a closure did happens-before the next closure that runs under
///   `l` (on whichever thread or handler that is).
/// * **Sharing.** If the type is not `Sync`, the promises are needed only within the thread
///   that owns it (a [`Mutex`] over it is not `Sync` either).
/// * [`INIT`](RawLock::INIT) is unlocked.
pub unsafe trait RawLock {
    /// An unlocked lock. A constant, so that the types built on it have `const`
    /// constructors and can live in `static`s.
    #[cfg(not(loom))]
    const INIT: Self;

    /// An unlocked lock (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    #[doc(hidden)]
    fn init() -> Self;

    /// Runs `f` while holding the lock, and releases it when `f` returns or unwinds.
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// A spin lock: one `AtomicBool`, taken with a compare-and-swap, released with a store.
/// The default lock strategy.
///
/// Cheap when free (one CAS, one store) and fine between tasks and threads, where a holder
/// that is preempted runs again. **Not for interrupt handlers:** an interrupt that asks for
/// a lock its own thread holds spins forever (the holder cannot run until the interrupt
/// returns); use `CriticalSectionLock` there. Not re-entrant: locking again from inside the
/// locked region spins forever.
///
/// On targets without compare-and-swap (thumbv6m) the CAS itself comes from `portable-atomic`
/// (feature `portable-atomic-critical-section`), so it takes a short critical section.
///
/// ```
/// use bulwark::lock::{Mutex, SpinLock};
/// static COUNT: Mutex<SpinLock, u32> = Mutex::new(0);
/// COUNT.lock(|n| *n += 1);
/// assert_eq!(COUNT.lock(|n| *n), 1);
/// ```
pub struct SpinLock {
    /// `true` while held. Taken by an Acquire CAS that synchronizes with the Release store of
    /// the previous holder's unlock.
    locked: AtomicBool,
}

/// Gives a [`SpinLock`] back when dropped, so a panicking closure does not leave it held.
struct SpinUnlock<'a>(&'a AtomicBool);

impl Drop for SpinUnlock<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: publishes the holder's writes to the next holder's Acquire CAS.
        self.0.store(false, Ordering::Release);
    }
}

// SAFETY: exclusion: `locked` goes from false to true only by a successful CAS, and only the
// holder (through `SpinUnlock`, after `f` has returned or unwound) stores false again, so at
// most one `f` runs at a time across every thread sharing the lock; a nested call spins on
// its own holder and never runs its `f`. Ordering: the Release store of one holder is read by
// the Acquire CAS of the next. `INIT` is unlocked (false).
unsafe impl RawLock for SpinLock {
    #[cfg(not(loom))]
    const INIT: Self = SpinLock {
        locked: AtomicBool::new(false),
    };

    #[cfg(loom)]
    fn init() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    #[inline]
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        // Acquire on success: synchronizes with the Release store in `SpinUnlock::drop` by the
        // previous holder, so its writes under the lock are visible to us. Relaxed on
        // failure: we only try again.
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            #[cfg(loom)]
            loom::thread::yield_now();
            #[cfg(not(loom))]
            core::hint::spin_loop();
        }
        let _unlock = SpinUnlock(&self.locked);
        f()
    }
}

impl fmt::Debug for SpinLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinLock").finish_non_exhaustive()
    }
}

/// Clears a "held" flag when dropped, so a panicking closure does not leave it set.
struct ClearHeld<'a>(&'a Cell<bool>);

impl Drop for ClearHeld<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Marks `held` as held for as long as the returned guard lives; panics if it already was
/// (a re-entrant lock: the outer holder's `&mut` is still alive).
#[inline]
fn hold<'a>(held: &'a Cell<bool>, what: &str) -> ClearHeld<'a> {
    if held.replace(true) {
        reentered(what);
    }
    ClearHeld(held)
}

#[cold]
#[inline(never)]
#[track_caller]
fn reentered(what: &str) -> ! {
    panic!("{what}: locked again from inside its own locked region (locks are not re-entrant)")
}

/// A lock for one thread: a "held" flag, like `RefCell`'s borrow flag. It is not `Sync`,
/// so neither is a [`Mutex`] (or a limiter, semaphore, pool or cache) over it: it can never
/// be reached from two threads or from an interrupt handler (a `static` must be `Sync`).
///
/// For single-threaded executors and tests, where any real lock would be wasted. Locking
/// again from inside the locked region panics.
///
/// ```
/// use bulwark::lock::{LocalLock, Mutex};
/// let m: Mutex<LocalLock, Vec<u8>> = Mutex::new(Vec::new());
/// m.lock(|v| v.push(1));
/// assert_eq!(m.lock(|v| v.len()), 1);
/// ```
///
/// ```should_panic
/// use bulwark::lock::{LocalLock, Mutex};
/// let m: Mutex<LocalLock, u8> = Mutex::new(0);
/// m.lock(|_| m.lock(|_| ())); // panics: not re-entrant
/// ```
pub struct LocalLock {
    held: Cell<bool>,
}

// SAFETY: exclusion: `LocalLock` is not `Sync` (a `Cell`), so every call comes from the one
// thread that can reach it, and an interrupt handler cannot reach it (it would need a `static`,
// which must be `Sync`); on that thread calls are sequential except when nested, and a nested
// call finds `held` set and panics before running its closure. Ordering: one thread, program
// order. `INIT` is not held.
unsafe impl RawLock for LocalLock {
    #[cfg(not(loom))]
    const INIT: Self = LocalLock {
        held: Cell::new(false),
    };

    #[cfg(loom)]
    fn init() -> Self {
        LocalLock {
            held: Cell::new(false),
        }
    }

    #[inline]
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = hold(&self.held, "LocalLock");
        f()
    }
}

impl fmt::Debug for LocalLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLock")
            .field("held", &self.held.get())
            .finish()
    }
}

/// A lock that holds a critical section (the `critical-section` crate): interrupt-safe.
///
/// While it is held, interrupts (on a single-core MCU) and the other cores (on a multi-core
/// one, through the implementation's global lock) are kept out, so **it may be used from
/// interrupt handlers**: a handler never finds it taken. The final binary provides the
/// critical-section implementation (embassy and the cortex-m crates do; `critical-section`'s
/// `std` feature does on a host). The regions bulwark holds it for are short and bounded,
/// but they do add interrupt latency. Locking again from inside the locked region panics
/// (critical sections nest, so without the check the inner region would run).
///
/// ```
/// use bulwark::fallback::Stale;
/// use bulwark::lock::CriticalSectionLock;
/// use bulwark::Instant;
/// use core::time::Duration;
/// // Written by a sensor interrupt, read by the main loop.
/// static LAST_READING: Stale<u16, CriticalSectionLock> = Stale::new();
/// LAST_READING.put(812, Instant::from_secs(1)); // fine from an interrupt handler
/// assert_eq!(LAST_READING.get(Instant::from_secs(2), Duration::from_secs(5)), Some(812));
/// ```
#[cfg(feature = "critical-section")]
#[cfg_attr(docsrs, doc(cfg(feature = "critical-section")))]
pub struct CriticalSectionLock {
    /// Set while a region runs, to refuse a nested (re-entrant) lock. Only touched inside a
    /// critical section, which orders it.
    held: critical_section::Mutex<Cell<bool>>,
}

// SAFETY: exclusion: the closure runs inside `critical_section::with`, and the
// critical-section contract makes all critical sections of a program mutually exclusive
// (threads, cores and interrupt handlers alike) except when nested on one thread; a nested
// call finds `held` set and panics before running its closure. Ordering: `acquire` is at
// least an Acquire and `release` a Release on one location shared by all critical sections,
// so each region happens-before the next. `INIT` is not held. `Sync` (through
// `critical_section::Mutex`), as it may be.
#[cfg(feature = "critical-section")]
unsafe impl RawLock for CriticalSectionLock {
    #[cfg(not(loom))]
    const INIT: Self = CriticalSectionLock {
        held: critical_section::Mutex::new(Cell::new(false)),
    };

    #[cfg(loom)]
    fn init() -> Self {
        CriticalSectionLock {
            held: critical_section::Mutex::new(Cell::new(false)),
        }
    }

    #[inline]
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        critical_section::with(|cs| {
            // Dropped before the critical section ends (also when `f` unwinds).
            let _held = hold(self.held.borrow(cs), "CriticalSectionLock");
            f()
        })
    }
}

#[cfg(feature = "critical-section")]
impl fmt::Debug for CriticalSectionLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriticalSectionLock")
            .finish_non_exhaustive()
    }
}

/// A value behind a lock of strategy `L`: [`lock`](Mutex::lock) runs a closure with
/// `&mut` to it. The building block of the types that lock; usable on its own (put a
/// [`KeyedMachine`](crate::rate_limiter::KeyedMachine) behind any lock you like).
///
/// `Sync` when `L` is `Sync` and `T` is `Send`; `const` to build.
///
/// ```
/// use bulwark::lock::{Mutex, SpinLock};
/// let m: Mutex<SpinLock, [u8; 2]> = Mutex::new([0; 2]);
/// std::thread::scope(|s| {
///     s.spawn(|| m.lock(|a| a[0] += 1));
///     s.spawn(|| m.lock(|a| a[1] += 1));
/// });
/// assert_eq!(m.lock(|a| *a), [1, 1]);
/// ```
pub struct Mutex<L, T> {
    raw: L,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through `lock`, inside `L::lock`, whose contract is that
// one closure runs at a time across every thread and handler sharing a `Sync` lock, with each
// region happening-before the next. So sharing the mutex hands the value from one thread to
// another, one at a time: sound when the value may be sent (`T: Send`). No `T: Sync` is needed
// since no two threads ever hold `&T` at once. A `!Sync` `L` gives a `!Sync` mutex.
unsafe impl<L: RawLock + Sync, T: Send> Sync for Mutex<L, T> {}

impl<L: RawLock, T> Mutex<L, T> {
    const_fn! {
        /// `value`, unlocked.
        ///
        /// ```
        /// use bulwark::lock::{Mutex, SpinLock};
        /// static M: Mutex<SpinLock, Option<u8>> = Mutex::new(None);
        /// assert_eq!(M.lock(|v| v.replace(1)), None);
        /// ```
        pub fn new(value: T) -> Self {
            Mutex { raw: lock_init::<L>(), value: UnsafeCell::new(value) }
        }
    }

    /// Runs `f` with exclusive access to the value, under the lock.
    ///
    /// # Panics
    ///
    /// If `f` panics (the lock is released first), or if `f` locks this mutex again and `L`
    /// refuses re-entry by panicking ([`LocalLock`], `CriticalSectionLock`). With
    /// [`SpinLock`] that re-entry never returns.
    ///
    /// ```
    /// use bulwark::lock::{Mutex, SpinLock};
    /// let m: Mutex<SpinLock, u32> = Mutex::new(1);
    /// assert_eq!(m.lock(|v| { *v += 1; *v }), 2);
    /// ```
    #[inline]
    pub fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.raw.lock(|| {
            // SAFETY: we are inside `L::lock`, so by `RawLock`'s contract no other closure
            // under this lock runs now (another thread, an interrupt handler or a nested
            // call), and the value is reached nowhere else: this `&mut` is the only
            // reference. It cannot outlive the call: `f` gets it for its own duration.
            self.value.with_mut(|p| f(unsafe { &mut *p }))
        })
    }
}

/// `L`'s unlocked value: its constant, or (under loom) its constructor.
#[cfg(not(loom))]
pub(crate) const fn lock_init<L: RawLock>() -> L {
    L::INIT
}

#[cfg(loom)]
pub(crate) fn lock_init<L: RawLock>() -> L {
    L::init()
}

impl<L: fmt::Debug, T> fmt::Debug for Mutex<L, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("lock", &self.raw)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;

    /// A non-atomic read-modify-write under the lock from 4 threads: lost updates would show
    /// if two holders ever overlapped.
    fn excludes_across_threads<L: RawLock + Send + Sync + 'static>() {
        let m = Arc::new(Mutex::<L, u64>::new(0));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..if cfg!(miri) { 50 } else { 10_000 } {
                        m.lock(|v| {
                            let x = *v;
                            core::hint::black_box(());
                            *v = x + 1;
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.lock(|v| *v), if cfg!(miri) { 200 } else { 40_000 });
    }

    /// After `f` panics under the lock, the lock is free again and the value is as `f` left it.
    fn released_on_unwind<L: RawLock>() {
        let m = Mutex::<L, u32>::new(0);
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            m.lock(|v| {
                *v = 7;
                panic!("boom");
            })
        }));
        assert!(r.is_err());
        assert_eq!(m.lock(|v| *v), 7);
    }

    /// Locking again from inside the region panics (and does not run the inner closure,
    /// which would hold a second `&mut`); the lock is usable afterwards.
    fn refuses_reentry<L: RawLock>() {
        let m = Mutex::<L, u32>::new(0);
        let inner_ran = core::cell::Cell::new(false);
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            m.lock(|_outer| m.lock(|_inner| inner_ran.set(true)))
        }));
        let msg = *r.unwrap_err().downcast::<std::string::String>().unwrap();
        assert!(msg.contains("not re-entrant"), "{msg}");
        assert!(!inner_ran.get());
        assert_eq!(m.lock(|v| core::mem::replace(v, 1)), 0);
    }

    #[test]
    fn spin_lock_excludes_across_threads() {
        excludes_across_threads::<SpinLock>();
    }

    #[test]
    fn spin_lock_is_released_when_the_region_panics() {
        released_on_unwind::<SpinLock>();
    }

    #[test]
    fn local_lock_refuses_reentry_and_is_released_on_unwind() {
        refuses_reentry::<LocalLock>();
        released_on_unwind::<LocalLock>();
    }

    #[cfg(feature = "critical-section")]
    #[test]
    fn critical_section_lock_excludes_refuses_reentry_and_is_released_on_unwind() {
        excludes_across_threads::<CriticalSectionLock>();
        refuses_reentry::<CriticalSectionLock>();
        released_on_unwind::<CriticalSectionLock>();
    }

    #[test]
    fn mutex_is_sync_exactly_when_its_lock_is() {
        fn sync<T: Sync>() {}
        fn send<T: Send>() {}
        sync::<Mutex<SpinLock, core::cell::Cell<u8>>>(); // `Send` value is enough
        send::<Mutex<LocalLock, u8>>();
        #[cfg(feature = "critical-section")]
        sync::<Mutex<CriticalSectionLock, core::cell::Cell<u8>>>();
        // `Mutex<LocalLock, _>: !Sync` is a compile-fail doc test in the module docs.
    }
}
