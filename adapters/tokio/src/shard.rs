//! [`ThreadHint`]: each thread its own shard of a [`ShardedRateLimiter`].
//!
//! [`ShardedRateLimiter`]: bulwark::rate_limiter::ShardedRateLimiter

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use bulwark::rate_limiter::ShardHint;

/// The calling thread's shard of a [`ShardedRateLimiter`]: each thread is given the next
/// index the first time it asks, and keeps it. Threads that call at the same time (a tokio
/// runtime's workers, say) are thus on different shards as long as there are at least as
/// many shards as threads, which [`StackHint`](bulwark::rate_limiter::StackHint) only makes
/// likely. One thread-local read per call.
///
/// ```
/// use bulwark::rate_limiter::{Config, ShardHint, ShardedRateLimiter};
/// use bulwark::MockClock;
/// use bulwark_tokio::ThreadHint;
///
/// let here = ThreadHint.shard();
/// let there = std::thread::spawn(|| ThreadHint.shard()).join().unwrap();
/// assert_ne!(here, there);
/// assert_eq!(ThreadHint.shard(), here); // kept
///
/// let clock = MockClock::new();
/// let l: ShardedRateLimiter<_, 2, ThreadHint> =
///     ShardedRateLimiter::with_hint(Config::per_second(4), &clock, ThreadHint).unwrap();
/// assert!(l.try_acquire().is_ok());
/// ```
///
/// [`ShardedRateLimiter`]: bulwark::rate_limiter::ShardedRateLimiter
#[derive(Copy, Clone, Debug, Default)]
pub struct ThreadHint;

/// The index the next thread to ask is given.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's index; `usize::MAX` until it first asks.
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

impl ShardHint for ThreadHint {
    #[inline]
    fn shard(&self) -> usize {
        INDEX.with(|index| {
            let mine = index.get();
            if mine != usize::MAX {
                return mine;
            }
            // Relaxed: only the distinct values matter; the counter orders nothing else.
            // Masked, so that no thread is ever given the "not yet" value.
            let mine = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            index.set(mine);
            mine
        })
    }
}
