//! The one place atomics come from: `loom` under `cfg(loom)`, `portable-atomic` with the
//! `portable-atomic` feature or on targets without 64-bit atomics, `core::sync::atomic`
//! otherwise. All other modules import from here.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(all(
    not(loom),
    any(feature = "portable-atomic", not(target_has_atomic = "64"))
))]
pub(crate) use portable_atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(all(not(loom), not(feature = "portable-atomic"), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

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

/// The cell behind [`lock::Mutex`](crate::lock::Mutex): loom's (which checks that accesses
/// never overlap) under `cfg(loom)`, a thin wrapper of `core`'s with the same `with_mut`
/// otherwise.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(v))
    }
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A value alone on its 64-byte cache line, so that writes to it do not evict its neighbours
/// from other cores' caches (false sharing), and reads of the neighbours do not pull it away
/// from the core writing it. On 64-bit targets; no padding on 32-bit ones (microcontrollers:
/// one core, or no data cache to share). 64 rather than crossbeam's 128 on x86-64: the
/// adjacent-line prefetcher only fetches the pair, it does not invalidate it, and 128 would
/// double the limiter's size for that second-order effect.
#[cfg_attr(target_pointer_width = "64", repr(align(64)))]
#[derive(Debug, Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> CachePadded<T> {
    pub(crate) const fn new(v: T) -> Self {
        CachePadded(v)
    }
}
