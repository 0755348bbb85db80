//! loom checks of the default lock strategy, `lock::SpinLock`, through `lock::Mutex`, with
//! two negative controls: locks that break `RawLock`'s contract (no exclusion; exclusion
//! without Acquire/Release) must be caught. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_lock`.
#![cfg(loom)]

use bulwark::lock::{Mutex, RawLock, SpinLock};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// Two threads each bump both halves of a pair under the lock; loom's cell checks that no two
/// accesses overlap and that each holder sees the previous holder's writes.
fn two_bumpers<L: RawLock + Send + Sync + 'static>() {
    loom::model(|| {
        let m = Arc::new(Mutex::<L, (u32, u32)>::new((0, 0)));
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                m.lock(|v| {
                    v.0 += 1;
                    v.1 += 1;
                })
            })
        };
        m.lock(|v| {
            v.0 += 1;
            v.1 += 1;
        });
        other.join().unwrap();
        assert_eq!(m.lock(|v| *v), (2, 2));
    });
}

#[test]
fn spin_lock_excludes_and_hands_writes_to_the_next_holder() {
    two_bumpers::<SpinLock>();
}

/// Breaks the exclusion promise: runs every closure at once.
struct NoLock;
// SAFETY: none; a deliberately broken lock, to show the check above would catch one.
unsafe impl RawLock for NoLock {
    fn init() -> Self {
        NoLock
    }
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

#[test]
#[should_panic(expected = "Causality violation")]
fn a_lock_without_exclusion_is_caught() {
    two_bumpers::<NoLock>();
}

/// Excludes, but with Relaxed orderings: breaks the ordering promise (a holder may not see
/// the previous holder's writes).
struct RelaxedSpin(AtomicBool);
// SAFETY: none; a deliberately broken lock, to show the check above would catch one.
unsafe impl RawLock for RelaxedSpin {
    fn init() -> Self {
        RelaxedSpin(AtomicBool::new(false))
    }
    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        while self
            .0
            .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            thread::yield_now();
        }
        let r = f();
        self.0.store(false, Ordering::Relaxed);
        r
    }
}

#[test]
#[should_panic(expected = "Causality violation")]
fn a_lock_without_acquire_release_is_caught() {
    two_bumpers::<RelaxedSpin>();
}
