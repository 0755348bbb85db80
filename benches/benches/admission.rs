//! Admission control side by side: the rate limiter and the keyed limiter against governor,
//! the bulkhead against tokio's and async-lock's semaphores; one thread, and two threads
//! hammering one instance. The keyed limiter locks its table, so it runs with each lock
//! strategy (`bulwark::lock`): the default spin lock, a critical section (the host's `std`
//! implementation: one global mutex) and, on one thread, `LocalLock`.
//! Every group has a floor: a relaxed `AtomicU64::fetch_add` on one shared word, the least a
//! shared admission check can cost.
//!
//! `cargo bench -p bulwark-benches --bench admission -- --warm-up-time 1 --measurement-time 2`

use core::hint::black_box;
use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::time::Instant as StdInstant;

use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore};
use bulwark::lock::{CriticalSectionLock, LocalLock};
use bulwark::rate_limiter::{Config, KeyedRateLimiter, RateLimiter, ShardedRateLimiter};
use bulwark::{Clock, Instant, MockClock};
use bulwark_benches::two_threads;
use bulwark_tokio::ThreadHint;
use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::{FakeRelativeClock, MonotonicClock};
use governor::{Quota, RateLimiter as Governor};

/// The floor's name in every group (`benches/report.sh` looks for it).
const FLOOR: &str = "floor: relaxed fetch_add";

/// The floor of a limiter on a real clock: the bench's `StdClock` read, then one relaxed
/// `fetch_add` on one shared word (`benches/report.sh`, `benches/contention.sh`).
const CLOCK_FLOOR: &str = "floor: std clock read + relaxed fetch_add";

/// Shards of the sharded limiter's rows: one per core of the machine the README's table ran on
/// (as many as threads calling at once).
const SHARDS: usize = 2;

/// The sharded limiter's row (`benches/report.sh`, `benches/contention.sh`).
const SHARDED_STD: &str = "bulwark_sharded_stdclock_admit";

/// `std::time::Instant` as a bulwark clock (what an adapter would do).
struct StdClock(StdInstant);
impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

fn limiter(c: &mut Criterion) {
    // Always admits (1 ns period, burst u32::MAX): the admitting path, CAS included.
    let ours_cfg = Config::with_period(Duration::from_nanos(1)).burst(u32::MAX);
    let gov_quota = Quota::with_period(Duration::from_nanos(1))
        .unwrap()
        .allow_burst(NonZeroU32::MAX);
    // Always rejects (1 token an hour, spent): the read-only rejecting path.
    let ours_deny = Config::per_minute(1).burst(1);
    let gov_deny = Quota::per_minute(NonZeroU32::new(1).unwrap());

    let mut g = c.benchmark_group("limiter_check_1thread");
    let floor = AtomicU64::new(0);
    g.bench_function(FLOOR, |b| b.iter(|| floor.fetch_add(1, Ordering::Relaxed)));
    let mock = MockClock::new();
    let ours = RateLimiter::new(ours_cfg, &mock).unwrap();
    g.bench_function("bulwark_mockclock_admit", |b| {
        b.iter(|| black_box(ours.try_acquire().is_ok()))
    });
    let fake = FakeRelativeClock::default();
    let gov = Governor::direct_with_clock(gov_quota, fake.clone());
    g.bench_function("governor_fakeclock_admit", |b| {
        b.iter(|| black_box(gov.check().is_ok()))
    });
    let ours_d = RateLimiter::new(ours_deny, &mock).unwrap();
    let _ = ours_d.try_acquire();
    g.bench_function("bulwark_mockclock_reject", |b| {
        b.iter(|| black_box(ours_d.try_acquire().is_ok()))
    });
    let gov_d = Governor::direct_with_clock(gov_deny, fake.clone());
    let _ = gov_d.check();
    g.bench_function("governor_fakeclock_reject", |b| {
        b.iter(|| black_box(gov_d.check().is_ok()))
    });
    let ours_std = RateLimiter::new(ours_cfg, StdClock(StdInstant::now())).unwrap();
    g.bench_function("bulwark_stdclock_admit", |b| {
        b.iter(|| black_box(ours_std.try_acquire().is_ok()))
    });
    let sharded_std: ShardedRateLimiter<_, SHARDS, _> =
        ShardedRateLimiter::with_hint(ours_cfg, StdClock(StdInstant::now()), ThreadHint).unwrap();
    g.bench_function(SHARDED_STD, |b| {
        b.iter(|| black_box(sharded_std.try_acquire().is_ok()))
    });
    let gov_std = Governor::direct_with_clock(gov_quota, MonotonicClock);
    g.bench_function("governor_monotonicclock_admit", |b| {
        b.iter(|| black_box(gov_std.check().is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("limiter_check_2threads");
    g.bench_function(FLOOR, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(floor.fetch_add(1, Ordering::Relaxed));
            })
        })
    });
    g.bench_function("bulwark_mockclock_admit", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(ours.try_acquire().is_ok());
            })
        })
    });
    g.bench_function("governor_fakeclock_admit", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(gov.check().is_ok());
            })
        })
    });
    g.bench_function("bulwark_stdclock_admit", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(ours_std.try_acquire().is_ok());
            })
        })
    });
    // The least any limiter can cost here that reads the same clock and then writes one
    // shared word: the clock read keeps each core from making several writes in a row, so
    // every call waits for the word's cache line to come back from the other core.
    let std_clock = StdClock(StdInstant::now());
    g.bench_function(CLOCK_FLOOR, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(floor.fetch_add(std_clock.now().as_nanos() | 1, Ordering::Relaxed));
            })
        })
    });
    g.bench_function(SHARDED_STD, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(sharded_std.try_acquire().is_ok());
            })
        })
    });
    g.bench_function("governor_monotonicclock_admit", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(gov_std.check().is_ok());
            })
        })
    });
    g.finish();
}

fn bulkhead(c: &mut Criterion) {
    let clock = MockClock::new();
    let ours = Bulkhead::new(BulkheadConfig::new(64), &clock).unwrap();
    let queued: Bulkhead<QueueSemaphore<8>, _> =
        Bulkhead::queued(BulkheadConfig::new(64), &clock).unwrap();
    let tokio_sem = tokio::sync::Semaphore::new(64);
    let al_sem = async_lock::Semaphore::new(64);

    let floor = AtomicU64::new(0);
    let mut g = c.benchmark_group("bulkhead_try_acquire_release_1thread");
    g.bench_function(FLOOR, |b| b.iter(|| floor.fetch_add(1, Ordering::Relaxed)));
    g.bench_function("bulwark_atomic", |b| {
        b.iter(|| drop(black_box(ours.try_acquire())))
    });
    g.bench_function("bulwark_queue", |b| {
        b.iter(|| drop(black_box(queued.try_acquire())))
    });
    g.bench_function("tokio_semaphore", |b| {
        b.iter(|| drop(black_box(tokio_sem.try_acquire())))
    });
    g.bench_function("async_lock_semaphore", |b| {
        b.iter(|| drop(black_box(al_sem.try_acquire())))
    });
    g.finish();

    let mut g = c.benchmark_group("bulkhead_try_acquire_release_2threads");
    g.bench_function(FLOOR, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(floor.fetch_add(1, Ordering::Relaxed));
            })
        })
    });
    g.bench_function("bulwark_atomic", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| drop(black_box(ours.try_acquire()))))
    });
    g.bench_function("bulwark_queue", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| drop(black_box(queued.try_acquire()))))
    });
    g.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| drop(black_box(tokio_sem.try_acquire()))))
    });
    g.bench_function("async_lock_semaphore", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| drop(black_box(al_sem.try_acquire()))))
    });
    g.finish();
}

fn keyed(c: &mut Criterion) {
    // Always admits (1 ns period, burst u32::MAX), one key of a 64-key table: its set's lock, one
    // hash, one probe, one GCRA update.
    let cfg = Config::with_period(Duration::from_nanos(1)).burst(u32::MAX);
    let quota = Quota::with_period(Duration::from_nanos(1))
        .unwrap()
        .allow_burst(NonZeroU32::MAX);
    let mock = MockClock::new();
    let spin: KeyedRateLimiter<u32, _, 64> = KeyedRateLimiter::new(cfg, &mock).unwrap();
    let cs: KeyedRateLimiter<u32, _, 64, CriticalSectionLock> =
        KeyedRateLimiter::new(cfg, &mock).unwrap();
    let local: KeyedRateLimiter<u32, _, 64, LocalLock> = KeyedRateLimiter::new(cfg, &mock).unwrap();
    let gov = Governor::dashmap_with_clock(quota, FakeRelativeClock::default());
    let key = 7u32;

    let floor = AtomicU64::new(0);
    let mut g = c.benchmark_group("keyed_limiter_check_1thread");
    g.bench_function(FLOOR, |b| b.iter(|| floor.fetch_add(1, Ordering::Relaxed)));
    g.bench_function("bulwark_keyed_spin", |b| {
        b.iter(|| black_box(spin.try_acquire(black_box(&key)).is_ok()))
    });
    g.bench_function("bulwark_keyed_critical_section", |b| {
        b.iter(|| black_box(cs.try_acquire(black_box(&key)).is_ok()))
    });
    g.bench_function("bulwark_keyed_local", |b| {
        b.iter(|| black_box(local.try_acquire(black_box(&key)).is_ok()))
    });
    g.bench_function("governor_keyed_dashmap", |b| {
        b.iter(|| black_box(gov.check_key(black_box(&key)).is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("keyed_limiter_check_2threads");
    g.bench_function(FLOOR, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(floor.fetch_add(1, Ordering::Relaxed));
            })
        })
    });
    g.bench_function("bulwark_keyed_spin", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(spin.try_acquire(&key).is_ok());
            })
        })
    });
    g.bench_function("bulwark_keyed_critical_section", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(cs.try_acquire(&key).is_ok());
            })
        })
    });
    g.bench_function("governor_keyed_dashmap", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(gov.check_key(&key).is_ok());
            })
        })
    });
    g.finish();
}

criterion_group!(benches, limiter, keyed, bulkhead);
criterion_main!(benches);
