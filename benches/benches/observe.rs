//! Observability's cost: the same call with no hooks, with `bulwark-observe`'s tracing hooks
//! and with its metrics hooks, in one run.
//!
//! `cargo bench -p bulwark-benches --bench observe`
//!
//! * `observe/breaker closed_success`: one successful call through a closed breaker (the row
//!   `breaker/closed_success` / `bulwark consecutive` measures without hooks), with
//!   `TracingHooks` (no subscriber; a subscriber that keeps nothing but is interested in every
//!   level) and `MetricsHooks` (no recorder; a `metrics-util` debugging recorder, whose
//!   counters are atomics).
//! * `observe/tower breaker layer`: the same breaker as a tower `CircuitBreakerLayer`, one
//!   ready call per iteration on a current-thread runtime, without and with `MetricsHooks`
//!   on the breaker, and with an `ObserveLayer` around it as well (a span, a duration
//!   histogram, the outcome counter).
//! * `observe/metrics per pattern`: for every pattern, one call without hooks and the same
//!   call reporting to `MetricsHooks` on a recorder whose handles are atomics (registered
//!   before the run): the breaker (its `Events`), retry (its `Hooks`), a timeout
//!   (`instrument`), a bulkhead and a rate limiter (`Observed`), one key of a keyed limiter
//!   (`Observed` over `Keyed`), a pool checkout (`acquired` inside `instrument`), a fallback
//!   chain that falls back once (`fell_back`), and the whole core pipeline (its retry hooks,
//!   the breaker's events, the observed limiter and bulkhead, and `instrument` around the
//!   call). The difference of each pair is the added cost per call.
//!
//! Instruction counts: with `OBSERVE_CALLGRIND_CALLS=N` in the environment the binary runs
//! no benchmark but `N` closed-breaker calls in each of five functions — hooks `()`,
//! `TracingHooks` without a subscriber, `MetricsHooks` without a recorder, `MetricsHooks`
//! on the atomic recorder, `TracingHooks` with a subscriber of every level — then each pair
//! of `observe/metrics per pattern`, `N` calls per `measure` (it prints their labels in
//! order), for callgrind:
//!
//! ```text
//! cargo bench -p bulwark-benches --bench observe --no-run
//! OBSERVE_CALLGRIND_CALLS=100000 valgrind --tool=callgrind --dump-after='observe::measure' \
//!     --callgrind-out-file=observe.cg target/release/deps/observe-<hash> > labels.txt
//! callgrind_annotate --inclusive=yes observe.cg.1 | grep 'observe::breaker_'   # the five breakers
//! callgrind_annotate --inclusive=yes observe.cg.K | grep 'observe::measure \['  # the K-th label
//! ```
//!
//! Measured 2026-11-30 (bulwark 5ae80da + this branch, N = 100 000, instructions per call):
//! breaker 64 (no hooks), 87 (tracing, no subscriber), 114 (metrics, no recorder), 123
//! (metrics, atomic recorder), 213 (tracing, a subscriber of every level); per pattern, no
//! hooks → `MetricsHooks`: breaker 74 → 120, retry 15 → 121, timeout 11 → 221, bulkhead
//! 16 → 180, limiter 34 → 143, keyed limiter key 114 → 228, pool checkout 233 → 660,
//! fallback 11 → 69, core pipeline 400 → 1107 (the README's Observability section has the
//! times of one run beside them). Session 12, the keyed limiter's table locked per set of
//! slots: keyed limiter key 127 → 243.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulwark::MockClock;
use bulwark::admission::Permit;
use bulwark::bulkhead::{Bulkhead, Config as BulkheadConfig, QueueSemaphore};
use bulwark::circuit_breaker::{CircuitBreaker, Config, Events};
use bulwark::fallback::fallback;
use bulwark::pipeline::Pipeline;
use bulwark::pool::{Config as PoolConfig, Manager, Pool};
use bulwark::rate_limiter::{Config as LimiterConfig, Keyed, KeyedRateLimiter, RateLimiter};
use bulwark::retry::{Config as RetryConfig, Retry};
use bulwark::timeout::timeout;
use bulwark::{Clock, Instant};
use bulwark_benches::ready;
use bulwark_observe::{
    MetricsHooks, ObserveLayer, Observed, Pattern, TracingHooks, acquired, fell_back, instrument,
};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::CircuitBreakerLayer;
use criterion::{Criterion, criterion_group};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::debugging::DebuggingRecorder;
use tower::{Layer, Service, ServiceExt, service_fn};

/// bulwark's clock over `std::time::Instant` (as in the circuit breaker bench).
struct StdClock(std::time::Instant);
impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

fn breaker<E: Events>(
    events: E,
) -> CircuitBreaker<StdClock, bulwark::circuit_breaker::NoWindow, E> {
    CircuitBreaker::new(
        Config::new().consecutive_failures(5),
        StdClock(std::time::Instant::now()),
    )
    .unwrap()
    .with_events(events)
}

fn ok() -> Result<u32, u32> {
    Ok(black_box(7))
}

/// A subscriber interested in everything that keeps nothing: every event is built and
/// handed over, the cost a real subscriber adds on top of its own work.
struct Everything;
impl tracing::Subscriber for Everything {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        black_box(event);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn breaker_closed(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe/breaker closed_success");
    let plain = breaker(());
    g.bench_function("no hooks", |b| b.iter(|| plain.call_sync(ok)));

    let traced = breaker(TracingHooks::new("bench"));
    g.bench_function("tracing hooks, no subscriber", |b| {
        b.iter(|| traced.call_sync(ok))
    });
    tracing::subscriber::with_default(Everything, || {
        g.bench_function("tracing hooks, subscriber of every level", |b| {
            b.iter(|| traced.call_sync(ok))
        });
    });

    let counted = breaker(MetricsHooks::new("bench"));
    g.bench_function("metrics hooks, no recorder", |b| {
        b.iter(|| counted.call_sync(ok))
    });
    let recorder = DebuggingRecorder::new();
    let recorded = breaker(MetricsHooks::new("bench"));
    // The series is registered (with this recorder) by its first use.
    metrics::with_local_recorder(&recorder, || recorded.call_sync(ok)).unwrap();
    g.bench_function("metrics hooks, debugging recorder", |b| {
        b.iter(|| recorded.call_sync(ok))
    });
    g.finish();
}

fn tower_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let clock = TokioClock::new();
    let leaf = || service_fn(|x: u32| async move { Ok::<u32, std::io::Error>(black_box(x)) });
    let recorder = DebuggingRecorder::new();
    let mut g = c.benchmark_group("observe/tower breaker layer, ready call (block_on each)");

    let mut plain = CircuitBreakerLayer::new(
        CircuitBreaker::new(Config::new().consecutive_failures(5), clock).unwrap(),
    )
    .layer(leaf());
    g.bench_function("no hooks", |b| {
        b.iter(|| {
            black_box(rt.block_on(async { plain.ready().await.unwrap().call(7).await })).unwrap()
        })
    });

    let mut counted = CircuitBreakerLayer::new(
        CircuitBreaker::new(Config::new().consecutive_failures(5), clock)
            .unwrap()
            .with_events(MetricsHooks::new("bench")),
    )
    .layer(leaf());
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async { counted.ready().await.unwrap().call(7).await })
    })
    .unwrap();
    g.bench_function("metrics hooks on the breaker", |b| {
        b.iter(|| {
            black_box(rt.block_on(async { counted.ready().await.unwrap().call(7).await })).unwrap()
        })
    });

    let hooks = Arc::new((TracingHooks::new("bench"), MetricsHooks::new("bench")));
    let mut observed = ObserveLayer::shared(Pattern::CircuitBreaker, Arc::clone(&hooks)).layer(
        CircuitBreakerLayer::new(
            CircuitBreaker::new(Config::new().consecutive_failures(5), clock)
                .unwrap()
                .with_events(MetricsHooks::new("bench")),
        )
        .layer(leaf()),
    );
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async { observed.ready().await.unwrap().call(7).await })
    })
    .unwrap();
    g.bench_function(
        "metrics hooks + ObserveLayer (tracing + metrics, no subscriber)",
        |b| {
            b.iter(|| {
                black_box(rt.block_on(async { observed.ready().await.unwrap().call(7).await }))
                    .unwrap()
            })
        },
    );
    g.finish();
}

/// Consumes a call's output where the optimizer cannot see it (and drops it: a guard goes
/// back to its pool or bulkhead).
fn sink<T>(out: T) {
    drop(black_box(out));
}

/// A histogram that counts what it records (no buffer to grow over a long run).
struct Recorded(AtomicU64);
impl HistogramFn for Recorded {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A recorder whose handles are atomics: what an exporter's handles cost at least, and
/// nothing that grows (the debugging recorder keeps every histogram sample).
struct Atomics;
impl Recorder for Atomics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Recorded(AtomicU64::new(0))))
    }
}

/// A pool whose connections are numbers, opened at once.
struct Numbers;
impl Manager for Numbers {
    type Connection = u32;
    type Error = &'static str;
    type Connect = core::future::Ready<Result<u32, &'static str>>;
    fn connect(&self) -> Self::Connect {
        core::future::ready(Ok(1))
    }
}

/// What runs each pair of [`pattern_pairs`]: `label`, the call without hooks, the same call
/// reporting to `MetricsHooks`.
type PairRunner<'r> = &'r mut dyn FnMut(&str, &mut dyn FnMut(), &mut dyn FnMut());

/// Runs the observed call once under the atomic recorder: its series are registered then
/// (the hooks keep the handles).
fn register(observed: &mut dyn FnMut()) {
    metrics::with_local_recorder(&Atomics, observed);
}

fn per_pattern(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe/metrics per pattern");
    pattern_pairs(&mut |label, call, observed| {
        g.bench_function(format!("{label}, no hooks"), |b| b.iter(&mut *call));
        register(observed);
        g.bench_function(format!("{label}, MetricsHooks"), |b| b.iter(&mut *observed));
    });
    g.finish();
}

/// Every pattern's pair: its call without hooks and with `MetricsHooks`, given to `run`.
fn pattern_pairs(run: PairRunner<'_>) {
    let clock = MockClock::new();
    let hooks = MetricsHooks::new("bench");
    let ok = || async { Ok::<u32, ()>(black_box(7)) };

    let plain = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap();
    let counted = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock)
        .unwrap()
        .with_events(&hooks);
    run(
        "circuit breaker call",
        &mut (|| sink(plain.call_sync(|| Ok::<u32, u32>(black_box(7))))),
        &mut (|| sink(counted.call_sync(|| Ok::<u32, u32>(black_box(7))))),
    );

    let retry = Retry::new(RetryConfig::new().max_attempts(3), &clock).unwrap();
    let retry_counted = Retry::new(RetryConfig::new().max_attempts(3), &clock)
        .unwrap()
        .with_hooks(&hooks);
    run(
        "retry, success at once",
        &mut (|| sink(ready(retry.call(ok)))),
        &mut (|| sink(ready(retry_counted.call(ok)))),
    );

    let limit = Duration::from_secs(1);
    run(
        "timeout, ready future",
        &mut (|| sink(ready(timeout(&clock, limit, ok())))),
        &mut (|| {
            let call = timeout(&clock, limit, ok());
            sink(ready(instrument(Pattern::Timeout, &hooks, &clock, call)))
        }),
    );

    let bulkhead = Bulkhead::new(BulkheadConfig::new(64), &clock).unwrap();
    let slots = Observed::new(
        Pattern::Bulkhead,
        Bulkhead::new(BulkheadConfig::new(64), &clock).unwrap(),
        &hooks,
    );
    run(
        "bulkhead try_acquire + success",
        &mut (|| Permit::try_new(&bulkhead).unwrap().success()),
        &mut (|| Permit::try_new(&slots).unwrap().success()),
    );

    // The mock clock never moves here: a burst of u32::MAX outlasts any run.
    let rate = || LimiterConfig::with_period(Duration::from_nanos(1)).burst(u32::MAX);
    let limiter = RateLimiter::new(rate(), &clock).unwrap();
    let limited = Observed::new(
        Pattern::RateLimiter,
        RateLimiter::new(rate(), &clock).unwrap(),
        &hooks,
    );
    run(
        "rate limiter admit",
        &mut (|| Permit::try_new(&limiter).unwrap().success()),
        &mut (|| Permit::try_new(&limited).unwrap().success()),
    );

    let table: KeyedRateLimiter<u32, _, 64> = KeyedRateLimiter::new(rate(), &clock).unwrap();
    let counted_table: KeyedRateLimiter<u32, _, 64> =
        KeyedRateLimiter::new(rate(), &clock).unwrap();
    let key = Keyed::new(&table, 7);
    let counted_key = Observed::new(Pattern::RateLimiter, Keyed::new(&counted_table, 7), &hooks);
    run(
        "keyed rate limiter admit, one key",
        &mut (|| Permit::try_new(&key).unwrap().success()),
        &mut (|| Permit::try_new(&counted_key).unwrap().success()),
    );

    let pool: Pool<Numbers, QueueSemaphore<4>, _, 4> =
        Pool::queued(Numbers, PoolConfig::new(), &clock);
    run(
        "pool checkout + return",
        &mut (|| sink(ready(pool.acquire()))),
        &mut (|| {
            let checkout = acquired(Pattern::Pool, &hooks, pool.acquire());
            sink(ready(instrument(Pattern::Pool, &hooks, &clock, checkout)))
        }),
    );

    run(
        "fallback chain, falls back once",
        &mut (|| {
            let chain = fallback(|| async { Err::<u32, ()>(()) }).or(|()| ok());
            sink(ready(core::future::IntoFuture::into_future(chain)))
        }),
        &mut (|| {
            let chain =
                fallback(|| async { Err::<u32, ()>(()) }).or(fell_back(&hooks, 1, |()| ok()));
            sink(ready(core::future::IntoFuture::into_future(chain)))
        }),
    );

    let breaker = CircuitBreaker::new(Config::new().consecutive_failures(5), &clock).unwrap();
    let full = Pipeline::new(&clock, RetryConfig::new().max_attempts(3))
        .unwrap()
        .breaker(&breaker)
        .limiter(&limiter)
        .bulkhead(&bulkhead)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(1));
    let observed_full = Pipeline::new(&clock, RetryConfig::new().max_attempts(3))
        .unwrap()
        .breaker(&counted)
        .limiter(&limited)
        .bulkhead(&slots)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(1))
        .hooks(&hooks);
    run(
        "core full pipeline",
        &mut (|| sink(ready(full.call(ok)))),
        &mut (|| {
            let call = observed_full.call(ok);
            sink(ready(instrument(Pattern::Pipeline, &hooks, &clock, call)))
        }),
    );
}

// ===== instruction counts (callgrind) =====

fn closed_call<E: Events>(
    breaker: &CircuitBreaker<&MockClock, bulwark::circuit_breaker::NoWindow, E>,
) {
    black_box(breaker.call_sync(|| Ok::<u32, u32>(black_box(7)))).unwrap();
}

fn counted_breaker<E: Events>(
    clock: &MockClock,
    events: E,
) -> CircuitBreaker<&MockClock, bulwark::circuit_breaker::NoWindow, E> {
    CircuitBreaker::new(Config::new().consecutive_failures(5), clock)
        .unwrap()
        .with_events(events)
}

#[inline(never)]
fn breaker_no_hooks(n: u64, clock: &MockClock) {
    let b = counted_breaker(clock, ());
    (0..n).for_each(|_| closed_call(&b));
}

#[inline(never)]
fn breaker_tracing_no_subscriber(n: u64, clock: &MockClock) {
    let b = counted_breaker(clock, TracingHooks::new("bench"));
    (0..n).for_each(|_| closed_call(&b));
}

#[inline(never)]
fn breaker_metrics_no_recorder(n: u64, clock: &MockClock) {
    let b = counted_breaker(clock, MetricsHooks::new("bench"));
    (0..n).for_each(|_| closed_call(&b));
}

#[inline(never)]
fn breaker_metrics_atomic_recorder(n: u64, clock: &MockClock) {
    let b = counted_breaker(clock, MetricsHooks::new("bench"));
    metrics::with_local_recorder(&Atomics, || closed_call(&b));
    (0..n).for_each(|_| closed_call(&b));
}

#[inline(never)]
fn breaker_tracing_subscriber(n: u64, clock: &MockClock) {
    let b = counted_breaker(clock, TracingHooks::new("bench"));
    tracing::subscriber::with_default(Everything, || (0..n).for_each(|_| closed_call(&b)));
}

#[inline(never)]
fn measure(n: u64, call: &mut dyn FnMut()) {
    (0..n).for_each(|_| call());
}

criterion_group!(benches, breaker_closed, tower_layer, per_pattern);

fn main() {
    if let Some(n) = std::env::var("OBSERVE_CALLGRIND_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let clock = MockClock::new();
        breaker_no_hooks(n, &clock);
        breaker_tracing_no_subscriber(n, &clock);
        breaker_metrics_no_recorder(n, &clock);
        breaker_metrics_atomic_recorder(n, &clock);
        breaker_tracing_subscriber(n, &clock);
        // Then each pattern's pair, one `measure` each: with `--dump-after=observe::measure`
        // callgrind writes one profile per run, in the order printed here.
        pattern_pairs(&mut |label, call, observed| {
            register(observed);
            measure(n, call);
            println!("{label}, no hooks");
            measure(n, observed);
            println!("{label}, MetricsHooks");
        });
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
