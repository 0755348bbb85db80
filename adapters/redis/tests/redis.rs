//! bulwark-redis against a real `redis-server` (started by each test on a free port).
//!
//! No real sleeps: time is a `MockClock` (caller-supplied time) wherever the answer depends
//! on it; the only waiting is for a server to answer PING after it starts, and the one
//! concurrency test that measures real time on purpose.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark::circuit_breaker::Config as Breaker;
use bulwark::mock::Owned;
use bulwark::rate_limiter::{Config as Limit, Denied, InsufficientCapacity, Machine, RateLimited};
use bulwark::{Clock, Instant, MockClock};
use bulwark_redis::{
    Cause, Config, Degradation, Error, Event, RedisRateLimitLayer, RedisRateLimiter, TimeSource,
    Totals,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use support::{RedisServer, free_port, server};
use tower::{Layer, ServiceExt, service_fn};

/// A mock clock for a limiter that lives past the test's stack frame (tower services, spawned
/// tasks): shared through an `Arc`, freed with the last handle.
type Clk = Owned<Arc<MockClock>>;

fn mock_clock() -> Clk {
    Owned(Arc::new(MockClock::new()))
}

/// A limiter on `client` with caller time read from `clock`.
/// The core's rejection until `at`, judged at `now` against `limit`: what the Redis
/// limiter must answer too.
fn core_limited(at: Instant, now: Instant, limit: Limit) -> RateLimited {
    RateLimited::new(at, now).with_quota(limit.gcra().unwrap().quota())
}

fn caller_limiter(client: redis::Client, cfg: Config, clock: Clk) -> RedisRateLimiter<Clk> {
    RedisRateLimiter::with_clock(client, cfg.time(TimeSource::Caller), clock.clone()).unwrap()
}

/// Records every event.
fn record_events<C: Clock + Clone>(l: &RedisRateLimiter<C>) -> Arc<Mutex<Vec<Event>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    l.on_event(move |e| sink.lock().unwrap().push(e.clone()));
    events
}

/// Asserts that a PTTL read `lost` after the check that set the key is the TTL `want` (ms)
/// minus at most the real time that passed (a loaded machine may stall between the two).
fn assert_ttl(ttl: i64, want: i64, lost: Duration) {
    let lost = i64::try_from(lost.as_millis()).unwrap_or(i64::MAX);
    assert!(
        ttl <= want && ttl >= want - lost - 1,
        "PTTL {ttl} ms, want {want} ms less at most the {lost} ms that passed"
    );
}

fn closed_port_client() -> redis::Client {
    redis::Client::open(format!("redis://127.0.0.1:{}/", free_port())).unwrap()
}

async fn conn(s: &RedisServer) -> redis::aio::MultiplexedConnection {
    s.client().get_multiplexed_async_connection().await.unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ===== conformance =====

/// One check of a generated sequence: move the clock by `dt` ns (backwards too), then take
/// `n` tokens for key `key`.
#[derive(Clone, Debug)]
struct Step {
    dt: i64,
    key: u8,
    n: u32,
}

fn case() -> impl Strategy<Value = (u64, u32, u64, Vec<Step>, bool)> {
    let period = prop_oneof![
        Just(1u64),
        Just(7),
        Just(1_000_000),
        Just(333_333_334),
        1u64..2_000_000_000,
    ];
    (period, 1u32..=8).prop_flat_map(|(t, burst)| {
        let start = prop_oneof![
            3 => any::<u64>(),
            1 => (0u64..=(u64::from(burst) + 4) * t).prop_map(|back| u64::MAX - back),
            1 => 0u64..=10 * t,
        ];
        let span = i64::try_from(t).unwrap_or(i64::MAX);
        let step = (-span..=span.saturating_mul(3), 0u8..3, 0u32..=burst + 1)
            .prop_map(|(dt, key, n)| Step { dt, key, n });
        (
            Just(t),
            Just(burst),
            start,
            prop::collection::vec(step, 1..40),
            any::<bool>(),
        )
    })
}

/// The core's answer, in the Redis limiter's vocabulary.
fn core_answer(r: Result<(), Denied>) -> Result<(), Error> {
    match r {
        Ok(()) => Ok(()),
        Err(Denied::RateLimited(r)) => Err(Error::RateLimited(r)),
        Err(Denied::InsufficientCapacity(e)) => Err(Error::InsufficientCapacity(e)),
    }
}

#[test]
fn redis_answers_exactly_as_the_core_gcra_for_random_sequences() {
    let Some(server) = server() else { return };
    let rt = runtime();
    let clock = mock_clock();
    let client = server.client();
    let cases = AtomicUsize::new(0);
    // How often each kind of answer came up: the property must have seen all three.
    let seen = Mutex::new([0usize; 3]);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&case(), |(t, burst, start, steps, batched)| {
        let id = cases.fetch_add(1, Ordering::Relaxed);
        let limit = Limit::with_period(Duration::from_nanos(t)).burst(burst);
        // Real time passes while the mock clock jumps: keys must not expire mid-case.
        let cfg = Config::new(limit)
            .prefix(format!("conf:{id}:"))
            .expiry_slack(Duration::from_secs(3600));
        rt.block_on(async {
            let limiter = caller_limiter(client.clone(), cfg, clock.clone());
            let mut reference: HashMap<u8, Machine> = HashMap::new();
            let mut now = start;
            // One check at a time, or (batched) up to four in one pipeline at the instant of
            // the first of them.
            let chunk = if batched { 4 } else { 1 };
            for (c, group) in steps.chunks(chunk).enumerate() {
                now = now.saturating_add_signed(group[0].dt);
                clock.set(Instant::from_nanos(now));
                let keys: Vec<(String, u32)> =
                    group.iter().map(|s| (format!("k{}", s.key), s.n)).collect();
                let got = if batched {
                    limiter.try_acquire_many(&keys).await
                } else {
                    vec![limiter.try_acquire(&keys[0].0, keys[0].1).await]
                };
                prop_assert_eq!(got.len(), group.len());
                for (s, got) in group.iter().zip(got) {
                    let machine = reference
                        .entry(s.key)
                        .or_insert_with(|| Machine::new(limit).unwrap());
                    let want = core_answer(machine.try_acquire_n(s.n, Instant::from_nanos(now)));
                    seen.lock().unwrap()[match &want {
                        Ok(()) => 0,
                        Err(Error::RateLimited(_)) => 1,
                        Err(_) => 2,
                    }] += 1;
                    prop_assert_eq!(
                        &got,
                        &want,
                        "group {} of {:?} (T = {} ns, burst {}, start {}, batched {})",
                        c,
                        steps,
                        t,
                        burst,
                        start,
                        batched
                    );
                }
            }
            prop_assert!(!limiter.is_degraded());
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(cases.load(Ordering::Relaxed), 200);
    let seen = *seen.lock().unwrap();
    assert!(
        seen.iter().all(|&n| n > 100),
        "passes, limits, above-burst: {seen:?}"
    );
}

// ===== keys, time and the script =====

#[tokio::test(flavor = "current_thread")]
async fn caller_time_sets_the_ttl_to_the_refill_and_a_full_key_is_gone() {
    let Some(server) = server() else { return };
    let clock = mock_clock();
    let mut c = conn(&server).await;
    // T = 100 ms, burst 5.
    let limiter = caller_limiter(
        server.client(),
        Config::new(Limit::per_second(10).burst(5)),
        clock.clone(),
    );
    let pttl = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            redis::cmd("PTTL")
                .arg("bulwark:rl:k")
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    let t0 = std::time::Instant::now();
    limiter.try_acquire("k", 3).await.unwrap(); // full again at 300 ms
    assert_ttl(pttl(&mut c).await, 300, t0.elapsed());
    let tat: String = redis::cmd("GET")
        .arg("bulwark:rl:k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(tat, "300000000", "the key holds the TAT in nanoseconds");

    clock.set(Instant::from_millis(100));
    let t0 = std::time::Instant::now();
    limiter.try_acquire("k", 3).await.unwrap(); // TAT 600 ms: 500 ms from now
    let ttl = pttl(&mut c).await;
    assert_ttl(ttl, 500, t0.elapsed());

    // A rejection writes nothing: the TTL only runs down.
    let err = limiter.try_acquire("k", 1).await.unwrap_err();
    assert_eq!(
        err,
        Error::RateLimited(core_limited(
            Instant::from_millis(200),
            Instant::from_millis(100),
            Limit::per_second(10).burst(5)
        ))
    );
    assert!(pttl(&mut c).await <= ttl);

    // One token a millisecond, burst 1: the key lives 1 ms after its bucket is full again.
    let short = caller_limiter(
        server.client(),
        Config::new(Limit::with_period(Duration::from_millis(1))).prefix("short:"),
        clock.clone(),
    );
    short.try_acquire("k", 1).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("short:k")
        .query_async(&mut c)
        .await
        .unwrap();
    // -2: already gone (a loaded machine may take longer than 1 ms to ask).
    assert!(
        ttl == -2 || (0..=1).contains(&ttl),
        "PTTL {ttl}, want at most 1 ms"
    );
    let mut gone = false;
    for _ in 0..100_000 {
        let exists: i64 = redis::cmd("EXISTS")
            .arg("short:k")
            .query_async(&mut c)
            .await
            .unwrap();
        if exists == 0 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the key outlived its 1 ms TTL");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        keys,
        ["bulwark:rl:k"],
        "only the key still refilling is in Redis"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn server_time_is_redis_time() {
    let Some(server) = server() else { return };
    let mut c = conn(&server).await;
    const S: u64 = 1_000_000_000;
    // T = 1 s, burst 5: wide margins for a loaded machine; `lost` bounds the real time that
    // passed between the check and the reads that follow it.
    let limiter =
        RedisRateLimiter::new(server.client(), Config::new(Limit::per_second(1).burst(5))).unwrap();
    let t0 = std::time::Instant::now();
    limiter.try_acquire("k", 3).await.unwrap();
    let tat: u64 = redis::cmd("GET")
        .arg("bulwark:rl:k")
        .query_async(&mut c)
        .await
        .unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("bulwark:rl:k")
        .query_async(&mut c)
        .await
        .unwrap();
    let lost = t0.elapsed();
    let redis_now = secs * S + micros * 1_000;
    // TAT = Redis's clock at the check + 3 s, in Unix nanoseconds (microsecond resolution).
    assert!(
        tat.is_multiple_of(1_000),
        "TIME has microsecond resolution: {tat}"
    );
    let lost_ns = u64::try_from(lost.as_nanos()).unwrap();
    assert!(
        tat <= redis_now + 3 * S && tat + lost_ns >= redis_now + 3 * S,
        "TAT {tat} is not Redis's clock + 3 s (Redis now {redis_now}, {lost:?} passed)"
    );
    assert_ttl(ttl, 3_000, lost);
    // The retry hint is the wait Redis computed, from the local clock's reading.
    limiter.try_acquire("k", 2).await.unwrap();
    let Err(Error::RateLimited(r)) = limiter.try_acquire("k", 1).await else {
        panic!("the sixth token of a burst of 5 must be limited")
    };
    let lost = t0.elapsed();
    assert!(
        r.retry_after <= Duration::from_secs(1) && r.retry_after + lost >= Duration::from_secs(1),
        "retry after {:?}, want 1 s less the {lost:?} that passed",
        r.retry_after
    );
}

#[tokio::test(flavor = "current_thread")]
async fn noscript_reloads_the_script_and_keeps_the_state() {
    let Some(server) = server() else { return };
    let clock = mock_clock();
    let mut c = conn(&server).await;
    let limiter = caller_limiter(
        server.client(),
        Config::new(Limit::per_second(2)),
        clock.clone(),
    );
    limiter.preload().await.unwrap();
    limiter.try_acquire("k", 2).await.unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .unwrap();
    let err = limiter.try_acquire("k", 1).await.unwrap_err();
    assert_eq!(
        err,
        Error::RateLimited(core_limited(
            Instant::from_millis(500),
            Instant::ZERO,
            Limit::per_second(2)
        ))
    );
    let sha = redis::Script::new(include_str!("../src/gcra.lua"))
        .get_hash()
        .to_owned();
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, [1], "reloaded under its SHA");
    assert!(!limiter.is_degraded());
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_is_one_pipeline_that_survives_noscript_and_degrades_whole() {
    let Some(server) = server() else { return };
    let clock = mock_clock();
    let mut c = conn(&server).await;
    let limiter = caller_limiter(
        server.client(),
        Config::new(Limit::per_second(1).burst(2)),
        clock.clone(),
    );
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .unwrap();
    let limited = Err(Error::RateLimited(core_limited(
        Instant::from_secs(1),
        Instant::ZERO,
        Limit::per_second(1).burst(2),
    )));
    let above = Err(Error::InsufficientCapacity(InsufficientCapacity {
        requested: 3,
        burst: 2,
    }));
    assert_eq!(
        limiter
            .try_acquire_many(&[("a", 2), ("b", 1), ("a", 1), ("c", 0), ("c", 3)])
            .await,
        [Ok(()), Ok(()), limited, Ok(()), above]
    );
    assert_eq!(
        limiter.totals(),
        Totals {
            redis: 3,
            degraded: 0
        },
        "three checks went to Redis"
    );
    assert!(limiter.try_acquire_many::<&str>(&[]).await.is_empty());

    // Redis gone: every check of the batch is answered by the degradation, one event.
    let down = RedisRateLimiter::new(
        closed_port_client(),
        Config::new(Limit::per_second(1)).degradation(Degradation::FailClosed),
    )
    .unwrap();
    let events = record_events(&down);
    let answers = down.try_acquire_many(&[("a", 1), ("b", 1), ("c", 0)]).await;
    assert!(matches!(
        answers[0],
        Err(Error::Unavailable(Cause::Unreachable(_)))
    ));
    assert!(matches!(
        answers[1],
        Err(Error::Unavailable(Cause::Unreachable(_)))
    ));
    assert_eq!(answers[2], Ok(()));
    assert_eq!(events.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_key_of_another_type_is_a_redis_error_not_a_degradation() {
    let Some(server) = server() else { return };
    let mut c = conn(&server).await;
    let limiter =
        RedisRateLimiter::new(server.client(), Config::new(Limit::per_second(2))).unwrap();
    let () = redis::cmd("HSET")
        .arg("bulwark:rl:h")
        .arg("f")
        .arg("v")
        .query_async(&mut c)
        .await
        .map(|_: i64| ())
        .unwrap();
    let () = redis::cmd("SET")
        .arg("bulwark:rl:s")
        .arg("not a number")
        .query_async(&mut c)
        .await
        .unwrap();
    let e = limiter.try_acquire("h", 1).await.unwrap_err();
    assert!(
        matches!(&e, Error::Redis(m) if m.contains("WRONGTYPE")),
        "{e}"
    );
    let e = limiter.try_acquire("s", 1).await.unwrap_err();
    assert!(
        matches!(&e, Error::Redis(m) if m.contains("does not hold a GCRA instant")),
        "{e}"
    );
    assert!(!limiter.is_degraded());
    assert_eq!(
        limiter.totals(),
        Totals {
            redis: 2,
            degraded: 0
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn zero_and_above_burst_ask_nobody() {
    // No server needed: nothing is sent.
    let limiter =
        RedisRateLimiter::new(closed_port_client(), Config::new(Limit::per_second(4))).unwrap();
    assert_eq!(limiter.try_acquire("k", 0).await, Ok(()));
    assert_eq!(
        limiter.try_acquire("k", 5).await,
        Err(Error::InsufficientCapacity(InsufficientCapacity {
            requested: 5,
            burst: 4
        }))
    );
    assert_eq!(
        limiter.totals(),
        Totals {
            redis: 0,
            degraded: 0
        }
    );
    assert!(!limiter.is_degraded());
}

// ===== degradation =====

#[tokio::test(flavor = "current_thread")]
async fn fail_open_and_fail_closed_on_a_closed_port_with_one_event() {
    for (mode, open) in [
        (Degradation::FailOpen, true),
        (Degradation::FailClosed, false),
    ] {
        let limiter = RedisRateLimiter::new(
            closed_port_client(),
            Config::new(Limit::per_second(1).burst(1)).degradation(mode),
        )
        .unwrap();
        let events = record_events(&limiter);
        for i in 0..5 {
            let r = limiter.try_acquire("k", 1).await;
            if open {
                assert_eq!(r, Ok(()), "fail open lets call {i} through");
            } else {
                assert!(
                    matches!(r, Err(Error::Unavailable(_))),
                    "fail closed refuses call {i}: {r:?}"
                );
            }
        }
        assert!(limiter.is_degraded());
        assert_eq!(
            limiter.totals(),
            Totals {
                redis: 0,
                degraded: 5
            }
        );
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "one switch, one event: {events:?}");
        assert!(
            matches!(&events[0], Event::Degraded(Cause::Unreachable(_))),
            "{events:?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_local_fallback_keeps_this_instances_share() {
    let clock = mock_clock();
    let fleet = Limit::per_second(10).burst(4); // T = 100 ms
    let cfg = Config::new(fleet)
        .degradation(Degradation::local_share(fleet, 2).unwrap()) // T = 200 ms, burst 2
        .breaker(
            Breaker::new()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(60)),
        );
    let limiter = RedisRateLimiter::with_clock(closed_port_client(), cfg, clock.clone()).unwrap();
    let events = record_events(&limiter);
    limiter.try_acquire("a", 1).await.unwrap();
    limiter.try_acquire("a", 1).await.unwrap();
    assert_eq!(
        limiter.try_acquire("a", 1).await,
        Err(Error::RateLimited(core_limited(
            Instant::from_millis(200),
            Instant::ZERO,
            Limit::per_second(5).burst(2) // this instance's share: T = 200 ms, burst 2
        )))
    );
    limiter.try_acquire("b", 2).await.unwrap(); // keys stay apart
    // Within the fleet's burst but above this instance's share: unavailable, not "never".
    assert!(matches!(
        limiter.try_acquire("c", 3).await,
        Err(Error::Unavailable(_))
    ));
    clock.advance(Duration::from_millis(200));
    limiter.try_acquire("a", 1).await.unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_silent_server_is_a_timeout_and_then_the_breaker_answers() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let hold = Arc::clone(&held);
    let accept = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            hold.lock().unwrap().push(s);
        }
    });
    let clock = mock_clock();
    let timeout = Duration::from_millis(30);
    let cfg = Config::new(Limit::per_second(10))
        .timeout(timeout)
        .degradation(Degradation::FailClosed)
        .breaker(
            Breaker::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(5)),
        );
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let limiter = RedisRateLimiter::with_clock(client, cfg, clock.clone()).unwrap();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert_eq!(
            limiter.try_acquire("k", 1).await,
            Err(Error::Unavailable(Cause::Timeout(timeout)))
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    // Two failures opened the breaker: answered without asking Redis (the cause says so).
    let e = limiter.try_acquire("k", 1).await.unwrap_err();
    assert_eq!(
        e,
        Error::Unavailable(Cause::BreakerOpen {
            retry_at: Some(Instant::from_secs(5)),
            retry_after: Some(Duration::from_secs(5)),
        })
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(
        e.to_string(),
        "the shared rate limit is unavailable and the limiter fails closed: the breaker around \
         Redis is open after recent failures; next probe in 5.0 s"
    );
    accept.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_killed_server_degrades_and_a_restarted_one_recovers() {
    let Some(mut server) = server() else { return };
    let port = server.port();
    let clock = mock_clock();
    let cfg = Config::new(Limit::per_second(1).burst(2))
        .degradation(Degradation::FailClosed)
        .breaker(
            Breaker::new()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(1)),
        );
    let limiter = caller_limiter(server.client(), cfg, clock.clone());
    let events = record_events(&limiter);
    limiter.try_acquire("k", 1).await.unwrap();

    server.stop();
    let e = limiter.try_acquire("k", 1).await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(Cause::Unreachable(_))),
        "{e}"
    );
    let e = limiter.try_acquire("k", 1).await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(Cause::BreakerOpen { .. })),
        "{e}"
    );

    let _server = RedisServer::start_on(port);
    clock.advance(Duration::from_secs(1)); // the breaker lets a probe through
    assert_eq!(
        limiter.try_acquire("k", 2).await,
        Ok(()),
        "the probe reaches the new server"
    );
    assert!(!limiter.is_degraded());
    // The shared limit is back in force (the new server starts empty).
    assert_eq!(
        limiter.try_acquire("k", 1).await,
        Err(Error::RateLimited(core_limited(
            Instant::from_secs(2),
            Instant::from_secs(1),
            Limit::per_second(1).burst(2)
        )))
    );
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Event::Degraded(Cause::Unreachable(_))));
    assert_eq!(events[1], Event::Recovered);
}

// ===== waiting and tower =====

#[tokio::test(flavor = "current_thread")]
async fn acquire_waits_until_the_exact_retry_instant_within_the_max_wait() {
    let Some(server) = server() else { return };
    let clock = mock_clock();
    let limit = Limit::per_second(10)
        .burst(1)
        .max_wait(Duration::from_millis(150));
    let limiter = caller_limiter(server.client(), Config::new(limit), clock.clone());
    limiter.acquire("k", 1).await.unwrap();
    let waiting = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire("k", 1).await }
    });
    let mut registered = false;
    for _ in 0..10_000 {
        if clock.next_deadline().is_some() {
            registered = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(registered, "acquire never went to sleep");
    assert_eq!(clock.next_deadline(), Some(Instant::from_millis(100)));
    clock.advance(Duration::from_millis(100));
    assert_eq!(waiting.await.unwrap(), Ok(()));

    // Past the max wait: fails at once, with the hint.
    let strict = caller_limiter(
        server.client(),
        Config::new(
            Limit::per_second(10)
                .burst(1)
                .max_wait(Duration::from_millis(50)),
        )
        .prefix("strict:"),
        clock.clone(),
    );
    strict.acquire("k", 1).await.unwrap();
    let e = strict.acquire("k", 1).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_millis(100)));
    assert_eq!(clock.next_deadline(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn the_tower_layer_rejects_with_the_retry_hint_and_clones_share_the_limit() {
    let Some(server) = server() else { return };
    let clock = mock_clock();
    let limiter = caller_limiter(
        server.client(),
        Config::new(Limit::per_second(1).burst(1)),
        clock.clone(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let layer = RedisRateLimitLayer::new(limiter, |req: &(&'static str, u32)| req.0);
    let svc = layer.layer(service_fn(move |(_, body): (&'static str, u32)| {
        counted.fetch_add(1, Ordering::Relaxed);
        async move { Ok::<_, std::io::Error>(body * 2) }
    }));
    assert_eq!(svc.clone().oneshot(("alice", 21)).await.unwrap(), 42);
    let err = svc.clone().oneshot(("alice", 1)).await.unwrap_err();
    let got = err
        .downcast_ref::<Error>()
        .expect("the limiter's own error");
    assert_eq!(
        got,
        &Error::RateLimited(core_limited(
            Instant::from_secs(1),
            Instant::ZERO,
            Limit::per_second(1).burst(1)
        ))
    );
    assert_eq!(
        got.retry_after(),
        Some(Duration::from_secs(1)),
        "for a Retry-After header"
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "a rejected request never reaches the service"
    );
    // Another clone of the layer, another key: its own bucket in the same limit.
    let other = layer
        .clone()
        .layer(service_fn(|(_, b): (&'static str, u32)| async move {
            Ok::<_, std::io::Error>(b)
        }));
    assert_eq!(other.clone().oneshot(("bob", 7)).await.unwrap(), 7);
    assert!(
        other.oneshot(("alice", 7)).await.is_err(),
        "alice's bucket is shared by every clone"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(svc.oneshot(("alice", 1)).await.unwrap(), 2);
}

// ===== concurrency on real time =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_hammering_one_key_never_exceed_the_rate() {
    let Some(server) = server() else { return };
    let limit = Limit::per_second(1_000).burst(20); // T = 1 ms
    let admitted = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let run_for = Duration::from_millis(300);
    let mut tasks = Vec::new();
    for _instance in 0..3 {
        // Each instance has its own client and connection, as separate processes would.
        let limiter = RedisRateLimiter::new(
            server.client(),
            Config::new(limit).degradation(Degradation::FailClosed),
        )
        .unwrap();
        limiter.preload().await.unwrap();
        for _task in 0..4 {
            let limiter = limiter.clone();
            let admitted = Arc::clone(&admitted);
            tasks.push(tokio::spawn(async move {
                let mut checks = 0u32;
                while started.elapsed() < run_for {
                    match limiter.try_acquire("hot", 1).await {
                        Ok(()) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::RateLimited(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                    checks += 1;
                }
                checks
            }));
        }
    }
    let mut checks = 0;
    for t in tasks {
        checks += t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let admitted = admitted.load(Ordering::Relaxed) as u128;
    // burst + rate × elapsed, plus one period of slack for checks in flight.
    let bound = 20 + elapsed.as_millis() + 1;
    assert!(
        admitted <= bound,
        "{admitted} admitted in {elapsed:?}: more than {bound}"
    );
    assert!(
        admitted >= 20,
        "only {admitted} of {checks} checks admitted"
    );
    assert!(
        u128::from(checks) > admitted,
        "the limit never limited ({checks} checks)"
    );
}

// ===== faults under load =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_degrades_at_once_and_a_restart_resumes() {
    let Some(mut server) = server() else { return };
    let port = server.port();
    let limit = Limit::per_second(100_000).burst(1_000);
    let timeout = Duration::from_millis(100);
    let cfg = Config::new(limit)
        .timeout(timeout)
        .degradation(Degradation::local_share(limit, 4).unwrap())
        .breaker(
            Breaker::new()
                .consecutive_failures(3)
                .open_for(Duration::from_millis(20)),
        );
    let limiter = RedisRateLimiter::new(server.client(), cfg).unwrap();
    let events = record_events(&limiter);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (limiter, stop, slowest) = (limiter.clone(), Arc::clone(&stop), Arc::clone(&slowest));
        tasks.push(tokio::spawn(async move {
            let key = format!("k{t}");
            while !stop.load(Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let r = limiter.try_acquire(&key, 1).await;
                let took = started.elapsed();
                {
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                }
                // The local share answers while Redis is down: never "unavailable".
                assert!(matches!(r, Ok(()) | Err(Error::RateLimited(_))), "{r:?}");
                tokio::task::yield_now().await;
            }
        }));
    }
    // Waits (yielding, bounded) until `done` holds.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting: {what}"
            );
            tokio::task::yield_now().await;
        }
    }
    until("Redis answers", || limiter.totals().redis >= 200).await;
    server.stop();
    let answered = limiter.totals().redis;
    until("the degradation answers", || {
        limiter.totals().degraded >= 200
    })
    .await;
    assert!(limiter.is_degraded());
    let _server = RedisServer::start_on(port);
    until("Redis answers again", || {
        !limiter.is_degraded() && limiter.totals().redis >= answered + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("no check panicked");
    }
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < timeout + Duration::from_millis(900),
        "a check took {slowest:?}, past its {timeout:?} timeout"
    );
    let events = events.lock().unwrap();
    assert!(events.len() >= 2, "{events:?}");
    assert!(matches!(events[0], Event::Degraded(_)), "{events:?}");
    assert_eq!(events.last(), Some(&Event::Recovered), "{events:?}");
}

#[test]
fn building_outside_a_tokio_runtime_is_a_config_error_not_a_panic() {
    let e =
        RedisRateLimiter::new(closed_port_client(), Config::new(Limit::per_second(1))).unwrap_err();
    assert_eq!(e.field(), "client");
    assert_eq!(
        e.to_string(),
        "invalid bulwark-redis config, field `client`: the limiter must be built within a tokio runtime"
    );
}
