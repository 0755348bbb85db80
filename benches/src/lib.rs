//! Helpers shared by the benchmarks in `benches/benches/`; run them with
//! `cargo bench -p bulwark-benches`.

use std::future::Future;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of two threads at once, each on its own `state` (a clone
/// of one shared service, a runtime, ...); returns the wall time from the first thread's
/// start to the last one's end. One iteration is therefore one call on each thread: compare
/// it only with other two-thread measurements.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let n = AtomicU64::new(0);
/// let _ = bulwark_benches::two_threads_each(1_000, [1, 2], &|k: &mut u64| {
///     n.fetch_add(*k, Ordering::Relaxed);
/// });
/// assert_eq!(n.load(Ordering::Relaxed), 3_000);
/// ```
pub fn two_threads_each<G: Send>(
    iters: u64,
    state: [G; 2],
    op: &(dyn Fn(&mut G) + Sync),
) -> Duration {
    let ready = Barrier::new(2);
    std::thread::scope(|s| {
        let threads = state.map(|mut g| {
            let ready = &ready;
            s.spawn(move || {
                ready.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    op(&mut g);
                }
                // Timed before the state (a runtime, say) is dropped.
                (start, Instant::now(), g)
            })
        });
        let [a, b] = threads.map(|t| t.join().expect("a benchmark thread panicked"));
        a.1.max(b.1).saturating_duration_since(a.0.min(b.0))
    })
}

/// Runs `op` `iters` times on each of two threads at once, both on one shared instance;
/// returns the wall time.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let n = AtomicU64::new(0);
/// let _ = bulwark_benches::two_threads(1_000, &|| {
///     n.fetch_add(1, Ordering::Relaxed);
/// });
/// assert_eq!(n.load(Ordering::Relaxed), 2_000);
/// ```
pub fn two_threads(iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    two_threads_each(iters, [(), ()], &|_| op())
}

/// Polls a future that is expected to be ready at once, with no runtime.
///
/// # Panics
///
/// If the future is pending: the benchmarked call was expected to complete at once.
///
/// ```
/// assert_eq!(bulwark_benches::ready(async { 7 }), 7);
/// ```
#[inline(always)]
pub fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the benchmarked call was expected to complete at once"),
    }
}
