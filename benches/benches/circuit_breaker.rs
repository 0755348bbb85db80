//! Circuit breaker: bulwark side by side with recloser and failsafe, in one run.
//!
//! `cargo bench -p bulwark-benches --bench circuit_breaker`
//!
//! * `closed_success`: one successful call through a closed breaker (the hot path). The floor
//!   is a relaxed atomic increment, the least a shared breaker can do per call.
//! * `open_rejection`: one call rejected by an open breaker, every breaker reading the real
//!   system clock (`std::time::Instant`) as recloser and failsafe do. The floors are that
//!   clock read alone, bare and as bulwark's `Clock` (an `elapsed()` since an origin). Then
//!   bulwark on `AsyncIoClock`, whose coarse reading of the same monotonic clock
//!   (`CLOCK_MONOTONIC_COARSE` on Linux) is what an open breaker checks, with that read's floor.
//! * `closed_success_2_threads`: the same hot path on two threads at once, on one breaker
//!   instance.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config, CountWindow};
use bulwark::{Clock, Instant};
use bulwark_benches::two_threads;
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;

/// bulwark's clock over `std::time::Instant`: the same clock kind the peers use.
struct StdClock(std::time::Instant);
impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

fn std_clock() -> StdClock {
    StdClock(std::time::Instant::now())
}

fn ok() -> Result<u32, u32> {
    Ok(black_box(7))
}

fn err() -> Result<u32, u32> {
    Err(black_box(7))
}

fn closed_success(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker/closed_success");
    let floor = AtomicU64::new(0);
    g.bench_function("floor: relaxed fetch_add", |b| {
        b.iter(|| floor.fetch_add(1, Ordering::Relaxed))
    });

    let consecutive =
        CircuitBreaker::new(Config::new().consecutive_failures(5), std_clock()).unwrap();
    g.bench_function("bulwark consecutive", |b| {
        b.iter(|| consecutive.call_sync(ok))
    });

    let windowed = CircuitBreaker::with_window(
        Config::new().failure_rate(50).minimum_calls(100),
        CountWindow::<100>,
        std_clock(),
    )
    .unwrap();
    g.bench_function("bulwark count window 100", |b| {
        b.iter(|| windowed.call_sync(ok))
    });

    let recloser = recloser::Recloser::custom().closed_len(100).build();
    g.bench_function("recloser ring 100", |b| b.iter(|| recloser.call(ok)));

    let failsafe = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(Duration::from_secs(30)),
        ))
        .build();
    g.bench_function("failsafe consecutive", |b| b.iter(|| failsafe.call(ok)));
    g.finish();
}

fn open_rejection(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker/open_rejection");
    let long = Duration::from_secs(3600);
    // The clock read every open breaker must make (is the open time up?): the floor here.
    g.bench_function("floor: std Instant::now()", |b| {
        b.iter(std::time::Instant::now)
    });
    let clock = std_clock();
    g.bench_function("floor: bulwark StdClock::now()", |b| b.iter(|| clock.now()));

    let bulwark = CircuitBreaker::new(
        Config::new().consecutive_failures(1).open_for(long),
        std_clock(),
    )
    .unwrap();
    let _ = bulwark.call_sync(err);
    g.bench_function("bulwark", |b| b.iter(|| bulwark.call_sync(ok)));

    let coarse = bulwark_async_std::AsyncIoClock::new();
    g.bench_function("floor: AsyncIoClock::now_coarse()", |b| {
        b.iter(|| coarse.now_coarse())
    });
    let on_coarse =
        CircuitBreaker::new(Config::new().consecutive_failures(1).open_for(long), coarse).unwrap();
    let _ = on_coarse.call_sync(err);
    assert!(on_coarse.call_sync(ok).unwrap_err().is_rejected());
    g.bench_function("bulwark, AsyncIoClock (coarse open check)", |b| {
        b.iter(|| on_coarse.call_sync(ok))
    });

    let recloser = recloser::Recloser::custom()
        .closed_len(1)
        .open_wait(long)
        .build();
    let _ = recloser.call(err);
    let _ = recloser.call(err);
    assert!(matches!(recloser.call(ok), Err(recloser::Error::Rejected)));
    g.bench_function("recloser", |b| b.iter(|| recloser.call(ok)));

    let failsafe = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(long),
        ))
        .build();
    let _ = failsafe.call(err);
    assert!(matches!(failsafe.call(ok), Err(failsafe::Error::Rejected)));
    g.bench_function("failsafe", |b| b.iter(|| failsafe.call(ok)));
    g.finish();
}

/// Both threads run `call` on the same instance (see [`two_threads`]).
fn contended(c: &mut Criterion, name: &str, call: &(dyn Fn() + Sync)) {
    c.bench_function(name, |b| b.iter_custom(|n| two_threads(n, call)));
}

fn closed_success_contended(c: &mut Criterion) {
    let floor = AtomicU64::new(0);
    let inc = || {
        floor.fetch_add(1, Ordering::Relaxed);
    };
    contended(
        c,
        "breaker/closed_success_2_threads/floor: relaxed fetch_add",
        &inc,
    );

    let bulwark = CircuitBreaker::new(Config::new().consecutive_failures(5), std_clock()).unwrap();
    let call = || {
        let _ = black_box(bulwark.call_sync(ok));
    };
    contended(
        c,
        "breaker/closed_success_2_threads/bulwark consecutive",
        &call,
    );

    let recloser = recloser::Recloser::custom().closed_len(100).build();
    let call = || {
        let _ = black_box(recloser.call(ok));
    };
    contended(
        c,
        "breaker/closed_success_2_threads/recloser ring 100",
        &call,
    );

    let failsafe = failsafe::Config::new().build();
    let call = || {
        let _ = black_box(failsafe.call(ok));
    };
    contended(
        c,
        "breaker/closed_success_2_threads/failsafe default",
        &call,
    );
}

criterion_group!(
    benches,
    closed_success,
    open_rejection,
    closed_success_contended
);
criterion_main!(benches);
