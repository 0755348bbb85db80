//! A panicking operation is a failure where the platform can tell (a std adapter says how).

use crate::sync::{Ordering, StaticAtomicUsize};

/// The probe set by [`set_panic_probe`]: `0` for none, otherwise a `fn() -> bool` as an
/// address. Never loom's atomic: a `static` needs a const constructor.
static PROBE: StaticAtomicUsize = StaticAtomicUsize::new(0);

/// Tells the core how to know that the current thread is unwinding from a panic: with a
/// probe set (the std adapters set `std::thread::panicking` when they build their clock), a
/// [`Permit`](crate::admission::Permit) dropped without an outcome *while the thread panics*
/// records a [failure](crate::admission::Outcome::Failure) instead of being abandoned, so a
/// panicking operation counts as a failed call (as resilience4j counts an exception) and the
/// panic goes on to the caller unretried. Without a probe (firmware: the core knows nothing of
/// panics) a permit dropped by a panic is an abandoned call. Only a dropped permit asks the
/// probe: a call that records its outcome never does.
///
/// ```
/// use bulwark::admission::set_panic_probe;
/// use bulwark::circuit_breaker::{CircuitBreaker, Config, State};
/// use bulwark::{MockClock, mock};
///
/// set_panic_probe(std::thread::panicking);
/// let clock = MockClock::new();
/// let breaker = CircuitBreaker::new(Config::new().consecutive_failures(1), &clock).unwrap();
/// let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     mock::run(&clock, breaker.call(|| async { panic!("bug") as Result<(), ()> }))
/// }));
/// assert!(panicked.is_err());
/// assert_eq!(breaker.state(), State::Open); // the panic was a failure
/// ```
pub fn set_panic_probe(probe: fn() -> bool) {
    // Relaxed: the value is a code address, complete in itself; it publishes no data.
    PROBE.store(probe as usize, Ordering::Relaxed);
}

/// Whether the current thread is unwinding, as far as the probe can tell (`false` without one).
#[cold]
pub(crate) fn panicking() -> bool {
    // Relaxed: see `set_panic_probe`.
    match PROBE.load(Ordering::Relaxed) {
        0 => false,
        addr => {
            // SAFETY: `PROBE` holds 0 or a value written by `set_panic_probe`, which only
            // stores a `fn() -> bool` cast to `usize` (a function address, never null, valid
            // for the whole program); casting it back yields that same function pointer.
            let probe: fn() -> bool = unsafe { core::mem::transmute::<usize, fn() -> bool>(addr) };
            probe()
        }
    }
}
