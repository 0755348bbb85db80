//! The one place atomics come from: `loom` under `cfg(loom)`, `portable-atomic` with the
//! `portable-atomic` feature or on targets without 64-bit atomics, `core::sync::atomic`
//! otherwise. All other modules import from here.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

#[cfg(all(
    not(loom),
    any(feature = "portable-atomic", not(target_has_atomic = "64"))
))]
pub(crate) use portable_atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

#[cfg(all(not(loom), not(feature = "portable-atomic"), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(feature = "portable-atomic"))]
pub(crate) use core::sync::atomic::AtomicUsize as StaticAtomicUsize;
/// An atomic that is never loom's, for `static`s outside the model (loom atomics have no
/// const constructor), such as the mock runner's wake counter.
#[cfg(feature = "portable-atomic")]
pub(crate) use portable_atomic::AtomicUsize as StaticAtomicUsize;

#[cfg(all(not(feature = "portable-atomic"), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::{AtomicBool as StaticAtomicBool, AtomicU64 as StaticAtomicU64};
/// 64-bit and flag atomics that are never loom's, for `static`s outside the model (the
/// process-wide default seed of [`rng`](crate::rng)). From `portable-atomic` where the target
/// has no 64-bit atomics or the feature asks for it.
#[cfg(any(feature = "portable-atomic", not(target_has_atomic = "64")))]
pub(crate) use portable_atomic::{AtomicBool as StaticAtomicBool, AtomicU64 as StaticAtomicU64};

/// Declares a constructor that is `const` except under loom (whose atomics have no `const fn
/// new`). One body serves both.
macro_rules! const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $name $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $name $($rest)*
    };
}
pub(crate) use const_fn;

/// An array of `$n` atomics all holding `$init` (a const expression outside loom).
#[cfg(not(loom))]
macro_rules! atomic_array {
    ($ty:ident, $init:expr, $n:expr) => {
        [const { $crate::sync::$ty::new($init) }; $n]
    };
}
#[cfg(loom)]
macro_rules! atomic_array {
    ($ty:ident, $init:expr, $n:expr) => {
        core::array::from_fn::<_, $n, _>(|_| $crate::sync::$ty::new($init))
    };
}
pub(crate) use atomic_array;

#[cfg(loom)]
use loom::cell::UnsafeCell;

#[cfg(not(loom))]
#[derive(Debug)]
struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    const fn new(v: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(v))
    }
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A minimal spin lock for short critical sections in test support code (the mock clock's
/// waker slots). Not for hot paths and not for interrupt handlers: the patterns themselves
/// are lock-free.
pub(crate) struct SpinMutex<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `lock`, which hands out access to one holder at a
// time (the `locked` flag is taken with an Acquire CAS and released with a Release store), so
// sharing the mutex between threads is sound whenever the value itself may be sent between them.
unsafe impl<T: Send> Sync for SpinMutex<T> {}

impl<T> SpinMutex<T> {
    const_fn! {
        pub(crate) fn new(value: T) -> Self {
            SpinMutex { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
        }
    }

    /// Runs `f` with exclusive access to the value.
    pub(crate) fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // Acquire: synchronizes with the Release store below by the previous holder, so its
        // writes to `value` are visible to us.
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
        // SAFETY: we hold the lock (the CAS above moved `locked` from false to true and only
        // we store false again), so no other reference to the value exists while `f` runs.
        // `f` cannot leak the `&mut` past this call: its lifetime is bound to the closure.
        let r = self.value.with_mut(|p| f(unsafe { &mut *p }));
        // Release: publishes our writes to `value` to the next holder's Acquire CAS.
        self.locked.store(false, Ordering::Release);
        r
    }
}

impl<T> core::fmt::Debug for SpinMutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpinMutex").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn spin_mutex_excludes_across_threads() {
        // A non-atomic read-modify-write under the lock: lost updates would show if two
        // holders ever overlapped.
        let m = Arc::new(SpinMutex::new(0u64));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
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
        assert_eq!(m.lock(|v| *v), 40_000);
    }
}
