//! The critical-section lock strategy (`bulwark::lock::CriticalSectionLock`, feature
//! `critical-section`) on the host: the types that lock, shared by threads through
//! critical-section's `std` implementation (one global lock), with totals that any overlap
//! of two locked regions, or a lost wake-up, would break.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use bulwark::bulkhead::{QueueSemaphore, QueueWaiter, Semaphore, TrySemaphore};
use bulwark::fallback::Stale;
use bulwark::lock::CriticalSectionLock as Cs;
use bulwark::pool::{Config as PoolConfig, Manager, Pool};
use bulwark::rate_limiter::{Config, ConfigError, Keyed, KeyedRateLimiter};
use bulwark::{Instant, MockClock, mock};

/// Wakes a parked thread.
struct Unpark(Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Parks that ran out their timeout: a waiter that was never woken (a lost wake-up).
static LOST_WAKEUPS: AtomicU64 = AtomicU64::new(0);

/// Waits for a permit of `sem` through `poll_take`, parking the thread between polls.
fn take_waiting<const Q: usize>(sem: &QueueSemaphore<Q, Cs>) {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let cx = &mut Context::from_waker(&waker);
    let mut waiter = pin!(QueueWaiter::default());
    loop {
        match sem.poll_take(waiter.as_mut(), cx) {
            Poll::Ready(r) => return r.expect("the queue has a slot per thread"),
            Poll::Pending => {
                // The timeout keeps a lost wake-up from hanging the test; it is counted.
                const PATIENCE: Duration = Duration::from_secs(2);
                let parked = std::time::Instant::now();
                thread::park_timeout(PATIENCE);
                if parked.elapsed() >= PATIENCE {
                    LOST_WAKEUPS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

static CLOCK: MockClock = MockClock::new();
/// `const`-built and `Sync`: a `static`, as firmware would keep it.
static PER_KEY: Result<KeyedRateLimiter<u32, &MockClock, 16, Cs>, ConfigError> =
    KeyedRateLimiter::new(Config::per_second(1).burst(10), &CLOCK);

#[test]
fn keyed_limiter_with_the_critical_section_lock_admits_exactly_the_burst_from_two_threads() {
    let limiter = PER_KEY.as_ref().unwrap();
    let admitted = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..2_000u32 {
                    // 4 keys, 10 tokens each, time frozen: 40 admissions in all, whoever wins.
                    let gate = Keyed::new(limiter, i % 4);
                    if bulwark::admission::Admit::try_admit(&gate).is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::Relaxed), 40);
    assert_eq!(limiter.available(&0), 0);
    assert_eq!(limiter.lossy_evictions(), 0);
}

#[test]
fn queue_semaphore_with_the_critical_section_lock_is_a_mutex_across_two_waiting_threads() {
    // One permit: holders are mutually exclusive, so a non-atomic increment (load, then
    // store) under the permit loses no update; waiters park and are woken by the releaser.
    static SEM: Result<QueueSemaphore<2, Cs>, bulwark::bulkhead::ConfigError> =
        QueueSemaphore::new(1);
    let sem = SEM.as_ref().unwrap();
    // First, deterministically: a thread waits while this one holds the permit, and is woken
    // by the give-back.
    assert!(sem.try_take());
    thread::scope(|s| {
        let waiter = s.spawn(|| take_waiting(sem));
        while sem.waiting() == 0 {
            thread::yield_now();
        }
        sem.give_back();
        waiter.join().unwrap();
    });
    assert_eq!((sem.available(), sem.waiting()), (0, 0));
    sem.give_back(); // the waiter's permit
    // Then both threads race for it.
    let counter = AtomicU64::new(0);
    const ROUNDS: u64 = 5_000;
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    take_waiting(sem);
                    let v = counter.load(Ordering::Relaxed);
                    std::hint::black_box(());
                    counter.store(v + 1, Ordering::Relaxed);
                    sem.give_back();
                }
            });
        }
    });
    assert_eq!(counter.load(Ordering::Relaxed), 2 * ROUNDS);
    assert_eq!((sem.available(), sem.waiting()), (1, 0));
    assert_eq!(LOST_WAKEUPS.load(Ordering::Relaxed), 0);
}

#[test]
fn queue_semaphore_with_the_critical_section_lock_counts_permits_from_two_threads() {
    let sem: QueueSemaphore<4, Cs> = QueueSemaphore::new(3).unwrap();
    let taken = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    if sem.try_take() {
                        taken.fetch_add(1, Ordering::Relaxed);
                        assert!(sem.available() <= 2);
                        sem.give_back();
                    }
                }
            });
        }
    });
    assert!(taken.load(Ordering::Relaxed) > 0);
    assert_eq!(sem.available(), 3);
}

#[test]
fn stale_cache_with_the_critical_section_lock_never_tears_a_value() {
    // A writer stores pairs (n, n); a reader must never see a pair written halfway.
    static LAST: Stale<(u64, u64), Cs> = Stale::new();
    thread::scope(|s| {
        s.spawn(|| {
            for n in 0..20_000u64 {
                LAST.put((n, n), Instant::from_millis(n));
            }
        });
        s.spawn(|| {
            for _ in 0..20_000 {
                if let Some((a, b)) = LAST.get(Instant::ZERO, Duration::MAX) {
                    assert_eq!(a, b);
                }
            }
        });
    });
    assert_eq!(
        LAST.get(Instant::ZERO, Duration::MAX),
        Some((19_999, 19_999))
    );
}

/// Connections are serial numbers; at most 2 are ever opened.
struct Serials(AtomicU64);
impl Manager for Serials {
    type Connection = u64;
    type Error = ();
    type Connect = std::future::Ready<Result<u64, ()>>;
    fn connect(&self) -> Self::Connect {
        std::future::ready(Ok(self.0.fetch_add(1, Ordering::Relaxed)))
    }
}

#[test]
fn pool_with_the_critical_section_lock_hands_out_at_most_its_slots_from_two_threads() {
    // `Pool::queued` takes the same lock for its slots and its semaphore; `const`, so static.
    static POOL_CLOCK: MockClock = MockClock::new();
    static POOL: Pool<Serials, QueueSemaphore<4, Cs>, &MockClock, 2, Cs> =
        Pool::queued(Serials(AtomicU64::new(0)), PoolConfig::new(), &POOL_CLOCK);
    let uses = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..2_000 {
                    let conn = mock::run(&POOL_CLOCK, POOL.acquire()).unwrap().unwrap();
                    assert!(*conn < 2, "a third connection was opened");
                    uses.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let (m, created) = (POOL.metrics(), POOL.totals().created);
    assert_eq!(uses.load(Ordering::Relaxed), 4_000);
    assert!(
        created <= 2 && m.in_use == 0 && m.idle == created as usize,
        "{m:?}, created {created}"
    );
}

#[test]
fn the_types_that_lock_are_sync_with_the_critical_section_lock() {
    fn sync<T: Sync>() {}
    sync::<KeyedRateLimiter<u32, &MockClock, 16, Cs>>();
    sync::<QueueSemaphore<4, Cs>>();
    sync::<Stale<u64, Cs>>();
    sync::<Pool<Serials, QueueSemaphore<4, Cs>, &MockClock, 2, Cs>>();
    sync::<bulwark::lock::Mutex<Cs, std::cell::Cell<u8>>>();
}
