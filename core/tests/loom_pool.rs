//! loom check of the pool's slot hand-off (per-slot `SpinMutex`, permits from the
//! semaphore). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test -p bulwark --release --test loom_pool`.
#![cfg(loom)]

use bulwark::bulkhead::TrySemaphore;
use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
use bulwark::{Clock, Instant, Sleep};
use core::future::{Ready, ready};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}
/// Never actually waited on: the connects below are ready at once.
impl Sleep for Fixed {
    type Sleep = Ready<()>;
    fn sleep_until(&self, _: Instant) -> Ready<()> {
        ready(())
    }
}

/// Connections are indices into `in_use` flags: a double hand-out trips the swap.
struct Flags {
    in_use: [AtomicBool; 2],
    next: AtomicUsize,
}

struct Mgr(Arc<Flags>);

impl Manager for Mgr {
    type Connection = usize;
    type Error = ();
    type Connect = Ready<Result<usize, ()>>;
    fn connect(&self) -> Self::Connect {
        ready(Ok(self.0.next.fetch_add(1, Ordering::SeqCst)))
    }
}

#[test]
fn two_threads_never_share_a_connection_and_return_every_slot() {
    loom::model(|| {
        let flags = Arc::new(Flags {
            in_use: [AtomicBool::new(false), AtomicBool::new(false)],
            next: AtomicUsize::new(0),
        });
        let pool: Arc<Pool<Mgr, QueueSemaphore<1>, Fixed, 2>> =
            Arc::new(Pool::queued(Mgr(flags.clone()), Config::new(), Fixed));
        // Seed one idle connection.
        drop(loom::future::block_on(pool.acquire()).unwrap());
        let worker = |pool: Arc<Pool<Mgr, QueueSemaphore<1>, Fixed, 2>>, flags: Arc<Flags>| {
            move || {
                if let Ok(c) = pool.try_acquire() {
                    assert!(
                        !flags.in_use[*c].swap(true, Ordering::SeqCst),
                        "shared connection"
                    );
                    flags.in_use[*c].store(false, Ordering::SeqCst);
                }
            }
        };
        let t = thread::spawn(worker(pool.clone(), flags.clone()));
        worker(pool.clone(), flags.clone())();
        t.join().unwrap();
        assert_eq!(pool.semaphore().available(), 2);
        let m = pool.metrics();
        assert_eq!((m.idle, m.in_use, pool.totals().created), (1, 0, 1));
    });
}
