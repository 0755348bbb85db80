//! loom checks of the sharded rate limiter: callers on different shards, taking from each
//! other's when their own is empty. Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2
//! cargo test -p bulwark --release --test loom_rate_limiter_sharded`.
#![cfg(loom)]

use std::cell::Cell;

use bulwark::rate_limiter::{Config, ConfigError, ShardHint, ShardedRateLimiter};
use bulwark::{Clock, Instant};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::thread;

/// A clock the test moves.
struct Shared(Arc<AtomicU64>);
impl Clock for Shared {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

loom::thread_local! {
    static HOME: Cell<usize> = Cell::new(0);
}

/// Each loom thread names its own shard (`HOME`), as `ThreadHint` does on `std`.
struct Home;
impl ShardHint for Home {
    fn shard(&self) -> usize {
        HOME.with(Cell::get)
    }
}

/// Two threads, each starting on its own shard, four calls on one and one on the other, time
/// standing still: the two shards' four tokens are admitted, exactly (the busy thread takes
/// the other shard's spare tokens; without that it would get two), whoever takes whose.
#[test]
fn callers_on_their_own_shards_admit_exactly_the_burst() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l: Arc<ShardedRateLimiter<_, 2, Home>> = Arc::new(
            ShardedRateLimiter::with_hint(Config::per_second(1).burst(4), Shared(clock), Home)
                .unwrap(),
        );
        let ok = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = [(0, 4), (1, 1)]
            .into_iter()
            .map(|(home, calls)| {
                let (l, ok) = (l.clone(), ok.clone());
                thread::spawn(move || {
                    HOME.with(|h| h.set(home));
                    for _ in 0..calls {
                        if l.try_acquire().is_ok() {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::SeqCst), 4);
        assert_eq!(l.available(), 0);
        // Each shard refills a token every 2 s.
        assert_eq!(l.try_acquire().unwrap_err().retry_at, Instant::from_secs(2));
    });
}

/// A change of the quota while a caller takes tokens: the call is judged by one shard's
/// settings, old or new, and a second change at the same time is refused, whole.
#[test]
fn a_change_while_calls_and_another_change_run() {
    loom::model(|| {
        let clock = Arc::new(AtomicU64::new(0));
        let l: Arc<ShardedRateLimiter<_, 2, Home>> = Arc::new(
            ShardedRateLimiter::with_hint(Config::per_second(2), Shared(clock), Home).unwrap(),
        );
        let changes: Vec<_> = [4u32, 6]
            .into_iter()
            .map(|rate| {
                let l = l.clone();
                thread::spawn(move || l.reconfigure(Config::per_second(rate)))
            })
            .collect();
        let caller = {
            let l = l.clone();
            thread::spawn(move || l.try_acquire_n(1).is_ok())
        };
        let results: Vec<_> = changes.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(caller.join().unwrap(), "a token was free under every quota");
        // At least one change applied; one that did not said so.
        assert!(results.iter().any(Result::is_ok));
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(ConfigError::Busy)));
        }
        let burst = l.config().burst_size();
        assert!(burst == 4 || burst == 6);
        assert_eq!(l.quota().burst, burst);
        assert_eq!(l.config(), Config::per_second(burst));
    });
}
