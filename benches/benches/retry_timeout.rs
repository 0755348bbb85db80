//! Retry and timeout overhead, side by side with backon, tokio-retry and tokio's timeout.
//!
//! Everything runs inside one tokio current-thread runtime; each sample awaits the call
//! `iters` times in a loop inside a single `block_on`, so the runtime's own entry cost is not
//! measured. The operation always succeeds at once: what is measured is the wrapper.
//!
//! `retry_success_2threads`: two threads calling through one shared retry policy (bulwark's
//! `Retry` is one `&self` instance; backon and tokio-retry build their policy per call), each
//! call polled once with no runtime (a ready call never touches a timer). A timeout has no
//! shared instance (only the clock), so it has no two-thread group.
//!
//! `cargo bench -p bulwark-benches --bench retry_timeout -- --warm-up-time 1 --measurement-time 2`

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use backon::{ExponentialBuilder, Retryable};
use bulwark::retry::{Config, Retry};
use bulwark_benches::{ready, two_threads};
use bulwark_tokio::TokioClock;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` awaits of `f()` inside one `block_on`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        start.elapsed()
    })
}

async fn op(x: u64) -> Result<u64, &'static str> {
    Ok(black_box(x))
}

fn retry(c: &mut Criterion) {
    let rt = runtime();
    let clock = rt.block_on(async { TokioClock::new() });
    let policy = Retry::new(Config::new(), clock).unwrap();
    if std::env::var_os("BULWARK_BENCH_SIZES").is_some() {
        rt.block_on(async {
            let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(100).take(2);
            eprintln!(
                "future sizes: bulwark retry {} B, tokio-retry {} B, bulwark timeout {} B, tokio timeout {} B",
                size_of_val(&policy.call(|| op(1))),
                size_of_val(&tokio_retry::Retry::start(strategy, || op(1))),
                size_of_val(&bulwark::timeout::timeout(&clock, Duration::from_secs(1), op(2))),
                size_of_val(&tokio::time::timeout(Duration::from_secs(1), op(2))),
            );
        });
    }
    let mut g = c.benchmark_group("retry_success");
    g.bench_function("bare", |b| b.iter_custom(|n| timed(&rt, n, || op(1))));
    g.bench_function("bulwark", |b| {
        b.iter_custom(|n| timed(&rt, n, || policy.call(|| op(1))))
    });
    g.bench_function("backon", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || {
                (|| op(1)).retry(ExponentialBuilder::default().with_max_times(2))
            })
        })
    });
    g.bench_function("tokio-retry", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || {
                let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(100).take(2);
                tokio_retry::Retry::start(strategy, || op(1))
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("retry_success_2threads");
    g.bench_function("bulwark", |b| {
        b.iter_custom(|n| {
            two_threads(n, &|| {
                black_box(ready(policy.call(|| op(1)))).unwrap();
            })
        })
    });
    g.bench_function("backon", |b| {
        b.iter_custom(|n| {
            two_threads(n, &|| {
                let call = (|| op(1)).retry(ExponentialBuilder::default().with_max_times(2));
                black_box(ready(call)).unwrap();
            })
        })
    });
    g.bench_function("tokio-retry", |b| {
        b.iter_custom(|n| {
            two_threads(n, &|| {
                let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(100).take(2);
                black_box(ready(tokio_retry::Retry::start(strategy, || op(1)))).unwrap();
            })
        })
    });
    g.finish();
}

fn timeout(c: &mut Criterion) {
    let rt = runtime();
    let clock = rt.block_on(async { TokioClock::new() });
    let d = Duration::from_secs(1);
    let mut g = c.benchmark_group("timeout_ready");
    g.bench_function("bare", |b| b.iter_custom(|n| timed(&rt, n, || op(2))));
    g.bench_function("bulwark", |b| {
        b.iter_custom(|n| timed(&rt, n, || bulwark::timeout::timeout(&clock, d, op(2))))
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| timed(&rt, n, || tokio::time::timeout(d, op(2))))
    });
    g.finish();
}

criterion_group!(benches, retry, timeout);
criterion_main!(benches);
