//! Each bulwark tower layer beside tower-resilience's layer for the same pattern (the peer a
//! tokio user would pick): circuit breaker, bulkhead, rate limiter, retry, time limiter, fault
//! injection (configured but off), hedging (a hedge not needed) and the adaptive concurrency
//! limit (AIMD); the adaptive throttle, which no peer has, beside the bare service only; the
//! keyed breaker beside the plain one, the keyed and the sharded limiter layers beside the
//! plain limiter. On one thread and on two threads calling clones
//! of one service (shared state), on current-thread runtimes, driven two ways: each call in its
//! own `block_on` (its future moved by value into the runtime), and the calls one after another
//! in one task, as a server's connection task drives them. A bare service row gives the floor
//! every layer pays.
//!
//! `cargo bench -p bulwark-benches --bench tower`

use std::hint::black_box;
use std::time::Duration;

use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config as AdaptiveConfig};
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig};
use bulwark::circuit_breaker::{CircuitBreaker, Config as BreakerConfig};
use bulwark::fault::{Config as FaultConfig, Injector};
use bulwark::hedge::{Config as HedgeConfig, Delay, Hedge};
use bulwark::rate_limiter::{
    Config as LimiterConfig, KeyedRateLimiter, RateLimiter, ShardedRateLimiter,
};
use bulwark::retry::{Config as RetryConfig, Retry};
use bulwark::throttle::{AdaptiveThrottle, Config as ThrottleConfig};
use bulwark_benches::two_threads_each;
use bulwark_tokio::tower::{
    AdaptiveLimitLayer, BulkheadLayer, CircuitBreakerLayer, FaultLayer, HedgeLayer,
    KeyedCircuitBreaker, KeyedCircuitBreakerLayer, KeyedRateLimitLayer, RateLimitLayer, RetryLayer,
    ShardedRateLimitLayer, ThrottleLayer, TimeoutLayer,
};
use bulwark_tokio::{ThreadHint, TokioClock};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

/// A current-thread runtime with timers, as each benchmark thread uses.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The leaf every stack wraps: answers at once.
fn leaf() -> impl Service<u32, Response = u32, Error = std::io::Error, Future: Send> + Clone + Send
{
    service_fn(|x: u32| async move { Ok::<u32, std::io::Error>(black_box(x)) })
}

/// How calls are driven: each in its own `block_on` (the future, built inside an async block,
/// is moved by value into tokio's `block_on` before it runs), or one after another inside one
/// task, as a server's connection task drives its requests (each future is built in place in
/// the task's state and never moved).
#[derive(Copy, Clone)]
enum Driver {
    BlockOnEach,
    InOneTask,
}

impl Driver {
    fn group(self) -> &'static str {
        match self {
            Driver::BlockOnEach => "ready call (block_on each)",
            Driver::InOneTask => "ready calls in one task",
        }
    }
}

/// One ready call through `svc`, awaited.
async fn one_call<S>(svc: &mut S)
where
    S: Service<u32>,
    S::Error: std::fmt::Debug,
{
    black_box(svc.ready().await.unwrap().call(black_box(7)).await).unwrap();
}

/// `n` calls through `svc` as `driver` says, on `rt`.
fn drive<S>(driver: Driver, rt: &Runtime, svc: &mut S, n: u64)
where
    S: Service<u32>,
    S::Error: std::fmt::Debug,
{
    match driver {
        Driver::BlockOnEach => (0..n).for_each(|_| rt.block_on(one_call(svc))),
        Driver::InOneTask => rt.block_on(async {
            for _ in 0..n {
                one_call(svc).await;
            }
        }),
    }
}

/// Runs `svc` on one thread, or on two threads each with its own runtime and a clone of
/// `svc` (clones share the layer's state).
fn bench<S>(one: &mut BenchmarkGroup<'_, WallTime>, driver: Driver, two: bool, name: &str, svc: &S)
where
    S: Service<u32> + Clone + Send,
    S::Error: std::fmt::Debug,
{
    one.bench_function(name, |b| {
        b.iter_custom(|n| {
            if two {
                let state = [(runtime(), svc.clone()), (runtime(), svc.clone())];
                two_threads_each(1, state, &|(rt, svc)| drive(driver, rt, svc, n))
            } else {
                let (rt, mut mine) = (runtime(), svc.clone());
                let start = std::time::Instant::now();
                drive(driver, &rt, &mut mine, n);
                start.elapsed()
            }
        })
    });
}

/// One group per driver and thread count: the bare leaf as the floor, then `rows`.
fn groups(
    c: &mut Criterion,
    pattern: &str,
    mut rows: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, Driver, bool),
) {
    for driver in [Driver::BlockOnEach, Driver::InOneTask] {
        for two in [false, true] {
            let threads = if two { ", 2 threads" } else { "" };
            let mut g = c.benchmark_group(format!("tower/{pattern}, {}{threads}", driver.group()));
            bench(&mut g, driver, two, "bare service", &leaf());
            rows(&mut g, driver, two);
            g.finish();
        }
    }
}

/// One pattern: bulwark's layer and tower-resilience's around the same leaf, side by side,
/// with the bare leaf as the floor, on one thread and then on two.
fn pair<A, B>(c: &mut Criterion, pattern: &str, ours: A, theirs: B)
where
    A: Service<u32> + Clone + Send,
    A::Error: std::fmt::Debug,
    B: Service<u32> + Clone + Send,
    B::Error: std::fmt::Debug,
{
    groups(c, pattern, |g, driver, two| {
        bench(g, driver, two, "bulwark", &ours);
        bench(g, driver, two, "tower-resilience", &theirs);
    });
}

fn layers(c: &mut Criterion) {
    // Built inside a runtime: tower-resilience's layers and bulwark's tokio clock may read
    // tokio time when they are made.
    let setup = runtime();
    let _guard = setup.enter();
    let clock = TokioClock::new();

    // Circuit breaker: closed, every call succeeds and is recorded.
    let ours = CircuitBreakerLayer::new(
        CircuitBreaker::new(BreakerConfig::new().consecutive_failures(5), clock).unwrap(),
    );
    let theirs = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .build()
        .unwrap();
    pair(
        c,
        "circuit breaker",
        ours.layer(leaf()),
        theirs.layer(leaf()),
    );

    // The keyed breaker layer beside the plain one: a breaker per key of the request
    // (`req % 64`, a table of 256; every request here is 7: a known key's path).
    let keyed = KeyedCircuitBreakerLayer::new(
        KeyedCircuitBreaker::new(BreakerConfig::new().consecutive_failures(5), 256, clock).unwrap(),
        |req: &u32| *req % 64,
    );
    groups(c, "keyed circuit breaker", |g, driver, two| {
        bench(g, driver, two, "bulwark", &ours.layer(leaf()));
        bench(g, driver, two, "bulwark keyed", &keyed.layer(leaf()));
    });

    // Bulkhead: 64 concurrent calls, never full here.
    let ours = BulkheadLayer::new(Bulkhead::new(BulkheadConfig::new(64), clock).unwrap());
    let theirs = tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(64)
        .build()
        .unwrap();
    pair(c, "bulkhead", ours.layer(leaf()), theirs.layer(leaf()));

    // Rate limiter: a limit no run reaches (the admitting path).
    let ours = RateLimitLayer::new(
        RateLimiter::new(
            LimiterConfig::with_period(Duration::from_nanos(1)).burst(u32::MAX),
            clock,
        )
        .unwrap(),
    );
    let theirs = tower_resilience::ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(usize::MAX / 2)
        .refresh_period(Duration::from_secs(1))
        .build()
        .unwrap();
    pair(c, "rate limiter", ours.layer(leaf()), theirs.layer(leaf()));

    // The keyed limiter layer beside the plain one (issue 14: within 2x of it): the same
    // never-reached limit per key, the key taken from the request (`req % 64`, a table of 256;
    // every request here is 7: a known key's path: its set's lock and a lookup in that set).
    let keyed = KeyedRateLimitLayer::new(
        KeyedRateLimiter::<u32, TokioClock, 256>::new(
            LimiterConfig::with_period(Duration::from_nanos(1)).burst(u32::MAX),
            clock,
        )
        .unwrap(),
        |req: &u32| *req % 64,
    );
    groups(c, "keyed rate limiter", |g, driver, two| {
        bench(g, driver, two, "bulwark", &ours.layer(leaf()));
        bench(g, driver, two, "bulwark keyed", &keyed.layer(leaf()));
    });

    // The sharded limiter layer beside the plain one: two shards, each thread its own.
    let sharded: ShardedRateLimitLayer<2> = ShardedRateLimitLayer::new(
        ShardedRateLimiter::with_hint(
            LimiterConfig::with_period(Duration::from_nanos(1)).burst(u32::MAX),
            clock,
            ThreadHint,
        )
        .unwrap(),
    );
    groups(c, "sharded rate limiter", |g, driver, two| {
        bench(g, driver, two, "bulwark", &ours.layer(leaf()));
        bench(g, driver, two, "bulwark sharded", &sharded.layer(leaf()));
    });

    // Retry: three attempts allowed, the first succeeds.
    let ours = RetryLayer::new(Retry::new(RetryConfig::new().max_attempts(3), clock).unwrap());
    let theirs = tower_resilience::retry::RetryLayer::<u32, u32, std::io::Error>::builder()
        .max_attempts(3)
        .build();
    pair(c, "retry", ours.layer(leaf()), theirs.layer(leaf()));

    // Timeout: 1 s, never reached.
    let ours = TimeoutLayer::new(Duration::from_secs(1));
    let theirs = tower_resilience::timelimiter::TimeLimiterLayer::builder()
        .timeout_duration(Duration::from_secs(1))
        .build();
    pair(c, "timeout", ours.layer(leaf()), theirs.layer(leaf()));

    // Fault injection, configured but off (rates 0): what every call pays for having it.
    let ours = FaultLayer::new(Injector::new(FaultConfig::new(), clock).unwrap());
    let theirs = tower_resilience::chaos::ChaosLayer::builder()
        .latency_rate(0.0)
        .min_latency(Duration::from_millis(1))
        .max_latency(Duration::from_millis(2))
        .build();
    pair(
        c,
        "fault injection (off)",
        ours.layer(leaf()),
        theirs.layer(leaf()),
    );

    // Hedging: two copies in all, the hedge after 100 ms, never reached (the leaf answers at
    // once): the price of a hedged call that needs no hedge.
    let ours = HedgeLayer::new(
        Hedge::<_, 2>::new(
            HedgeConfig::new(Delay::Fixed(Duration::from_millis(100))),
            clock,
        )
        .unwrap(),
    );
    let theirs = tower_resilience::hedge::HedgeLayer::new(Duration::from_millis(100));
    // tower-resilience's hedge needs a `Clone` error: a leaf whose error is a `String`.
    let leaf = || service_fn(|x: u32| async move { Ok::<u32, String>(black_box(x)) });
    pair(
        c,
        "hedge (not needed)",
        ours.layer(leaf()),
        theirs.layer(leaf()),
    );

    // Adaptive concurrency limit (AIMD, far from its limit): admission plus the round-trip
    // sample that moves the limit.
    let ours = AdaptiveLimitLayer::new(
        AdaptiveLimit::new(
            AdaptiveConfig::new(Algorithm::aimd())
                .initial(100)
                .max(1_000),
            clock,
        )
        .unwrap(),
    );
    let theirs = tower_resilience::adaptive::AdaptiveLimiterLayer::new(
        tower_resilience::adaptive::Aimd::builder()
            .initial_limit(100)
            .max_limit(1_000)
            .build()
            .unwrap(),
    );
    pair(
        c,
        "adaptive limit (AIMD)",
        ours.layer(leaf()),
        theirs.layer(leaf()),
    );

    // Adaptive client-side throttling (Google SRE): no peer has it; beside the bare service.
    let ours: ThrottleLayer =
        ThrottleLayer::new(AdaptiveThrottle::new(ThrottleConfig::new(), clock).unwrap());
    groups(c, "adaptive throttle", |g, driver, two| {
        bench(g, driver, two, "bulwark", &ours.layer(leaf()));
    });
}

criterion_group!(benches, layers);
criterion_main!(benches);
