//! The full pipeline on a successful call: beside the bare call, and as tower middleware
//! beside a hand-written tower stack (`timeout` + `retry` + `concurrency_limit`).
//!
//! `cargo bench -p bulwark-benches --bench pipeline`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bulwark::MockClock;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::pipeline::Pipeline;
use bulwark::rate_limiter::{Config as LimiterConfig, RateLimiter};
use bulwark::retry::Config as RetryConfig;
use bulwark_benches::{ready, two_threads, two_threads_each};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::PipelineLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn core_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline/core, ready call");
    g.bench_function("bare call", |b| {
        b.iter(|| ready(async { Ok::<u32, ()>(black_box(7)) }))
    });

    let clock = MockClock::new();
    let breaker =
        CircuitBreaker::new(BreakerConfig::new().consecutive_failures(5), &clock).unwrap();
    // The mock clock never moves here, so the burst is all there is: u32::MAX tokens outlast
    // any criterion run (a burst of 1e6 ran out mid-run and the call went pending).
    let limiter = RateLimiter::new(
        LimiterConfig::with_period(Duration::from_nanos(1)).burst(u32::MAX),
        &clock,
    )
    .unwrap();
    let bulkhead = Bulkhead::new(BulkheadConfig::new(64), &clock).unwrap();
    let full = Pipeline::new(&clock, RetryConfig::new().max_attempts(3))
        .unwrap()
        .breaker(&breaker)
        .limiter(&limiter)
        .bulkhead(&bulkhead)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(1));
    g.bench_function("bulwark full pipeline", |b| {
        b.iter(|| ready(full.call(|| async { Ok::<u32, ()>(black_box(7)) })))
    });
    let retry_only = Pipeline::new(&clock, RetryConfig::new().max_attempts(3)).unwrap();
    g.bench_function("bulwark retry only", |b| {
        b.iter(|| ready(retry_only.call(|| async { Ok::<u32, ()>(black_box(7)) })))
    });
    g.finish();

    // Two threads calling through the one pipeline (its breaker, limiter and bulkhead).
    let mut g = c.benchmark_group("pipeline/core, ready call, 2 threads");
    g.bench_function("bulwark full pipeline", |b| {
        b.iter_custom(|n| {
            two_threads(n, &|| {
                black_box(ready(full.call(|| async { Ok::<u32, ()>(black_box(7)) }))).unwrap();
            })
        })
    });
    g.finish();
}

#[derive(Clone)]
struct Attempts(usize);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for Attempts {
    type Future = std::future::Ready<()>;
    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => None,
            Err(_) if self.0 > 1 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            Err(_) => None,
        }
    }
    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn tower_stacks(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut g = c.benchmark_group("pipeline/tower, ready call (block_on each)");
    let leaf = service_fn(|x: u32| async move { Ok::<u32, std::io::Error>(black_box(x)) });

    let mut bare = leaf;
    g.bench_function("bare service", |b| {
        b.iter(|| rt.block_on(async { bare.ready().await.unwrap().call(7).await }))
    });

    let mut tower_stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .retry(Attempts(3))
        .concurrency_limit(64)
        .timeout(Duration::from_secs(1))
        .service(leaf);
    g.bench_function("tower timeout+retry+concurrency_limit", |b| {
        b.iter(|| rt.block_on(async { tower_stack.ready().await.unwrap().call(7).await }))
    });

    let clock = TokioClock::new();
    let breaker =
        Arc::new(CircuitBreaker::new(BreakerConfig::new().consecutive_failures(5), clock).unwrap());
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::new(64), clock).unwrap());
    let pipeline = Pipeline::new(clock, RetryConfig::new().max_attempts(3))
        .unwrap()
        .breaker(breaker)
        .bulkhead(bulkhead)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(1));
    let mut bulwark_stack = ServiceBuilder::new()
        .layer(PipelineLayer::new(pipeline))
        .service(leaf);
    g.bench_function(
        "bulwark PipelineLayer (timeouts+retry+breaker+bulkhead)",
        |b| b.iter(|| rt.block_on(async { bulwark_stack.ready().await.unwrap().call(7).await })),
    );
    g.finish();

    // Two threads, each with its own runtime and a clone of the one service (clones share
    // the concurrency limit / the pipeline's breaker and bulkhead).
    let mut g = c.benchmark_group("pipeline/tower, ready call (block_on each), 2 threads");
    fn per_thread<S: Clone>(svc: &S) -> (tokio::runtime::Runtime, S) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        (rt, svc.clone())
    }
    g.bench_function("tower timeout+retry+concurrency_limit", |b| {
        b.iter_custom(|n| {
            let state = [per_thread(&tower_stack), per_thread(&tower_stack)];
            two_threads_each(n, state, &|(rt, svc)| {
                black_box(rt.block_on(async { svc.ready().await.unwrap().call(7).await })).unwrap();
            })
        })
    });
    g.bench_function(
        "bulwark PipelineLayer (timeouts+retry+breaker+bulkhead)",
        |b| {
            b.iter_custom(|n| {
                let state = [per_thread(&bulwark_stack), per_thread(&bulwark_stack)];
                two_threads_each(n, state, &|(rt, svc)| {
                    black_box(rt.block_on(async { svc.ready().await.unwrap().call(7).await }))
                        .unwrap();
                })
            })
        },
    );
    g.finish();
}

criterion_group!(benches, core_pipeline, tower_stacks);
criterion_main!(benches);
