//! Checks per second and latency of the Redis limiter beside a bare `PING` on the same
//! connection (the floor: one round trip), and the pipelined batch mode.
//!
//! `cargo test -p bulwark-redis --release --test bench -- --ignored --nocapture` (CI runs it
//! in its redis step). It prints the check's cost beside a PING (issue 18's goal: at most
//! 1.5×) and fails when a check costs more than 1.35 × the same script called by hand at the
//! median: what a second round trip per check, or a slow wrapper, would break.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark::rate_limiter::Config as Limit;
use bulwark_redis::{Config, Degradation, RedisRateLimiter};
use support::server;

/// The p-th percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture (CI's redis step does)"]
async fn checks_cost_one_round_trip() {
    let Some(server) = server() else { return };
    // A limit that never limits: every check runs the whole script and writes its key.
    let limit = Limit::per_second(1_000_000).burst(1_000_000);
    let limiter = RedisRateLimiter::new(
        server.client(),
        Config::new(limit).degradation(Degradation::FailClosed),
    )
    .unwrap();
    limiter.preload().await.unwrap();
    let mut conn = limiter.connection();
    const N: usize = 5_000;

    // Sequential latency, one request in flight: a PING, the script called by hand (EVALSHA,
    // no timeout, breaker or decoding) and a check, interleaved so that all three see the
    // same load on a shared machine.
    let sha = redis::Script::new(include_str!("../src/gcra.lua"))
        .get_hash()
        .to_owned();
    let (mut ping, mut raw, mut check) = (
        Vec::with_capacity(N),
        Vec::with_capacity(N),
        Vec::with_capacity(N),
    );
    for i in 0..N + 500 {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        let p = t.elapsed();
        let t = Instant::now();
        let _: redis::Value = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(format!("raw{}", i % 64))
            .arg(0)
            .arg(1_000)
            .arg(1_000)
            .arg(0)
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
        let r = t.elapsed();
        let t = Instant::now();
        limiter
            .try_acquire(&format!("k{}", i % 64), 1)
            .await
            .unwrap();
        let c = t.elapsed();
        if i >= 500 {
            // after a warm-up
            ping.push(p);
            raw.push(r);
            check.push(c);
        }
    }
    ping.sort();
    raw.sort();
    check.sort();

    // Throughput: 32 tasks on the one multiplexed connection.
    let tasks = 32;
    let per_task = 1_000;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let mut conn = limiter.connection();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let ping_rate = (tasks * per_task) as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut conn = limiter.connection();
        let sha = sha.clone();
        handles.push(tokio::spawn(async move {
            let key = format!("rawt{t}");
            for _ in 0..per_task {
                let _: redis::Value = redis::cmd("EVALSHA")
                    .arg(&sha)
                    .arg(1)
                    .arg(&key)
                    .arg(0)
                    .arg(1_000)
                    .arg(1_000)
                    .arg(0)
                    .arg(0)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let raw_rate = (tasks * per_task) as f64 / started.elapsed().as_secs_f64();
    let limiter = Arc::new(limiter);
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let limiter = Arc::clone(&limiter);
        handles.push(tokio::spawn(async move {
            let key = format!("t{t}");
            for _ in 0..per_task {
                limiter.try_acquire(&key, 1).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let check_rate = (tasks * per_task) as f64 / started.elapsed().as_secs_f64();

    // Batches of 100 checks, one pipeline each.
    let batch: Vec<(String, u32)> = (0..100).map(|i| (format!("b{i}"), 1)).collect();
    let started = Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        for r in limiter.try_acquire_many(&batch).await {
            r.unwrap();
        }
    }
    let batch_rate = (rounds * batch.len()) as f64 / started.elapsed().as_secs_f64();

    println!();
    println!("| {N} sequential round trips | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| PING | {:.0} µs | {:.0} µs |",
        micros(pct(&ping, 0.5)),
        micros(pct(&ping, 0.99))
    );
    println!(
        "| EVALSHA by hand | {:.0} µs | {:.0} µs |",
        micros(pct(&raw, 0.5)),
        micros(pct(&raw, 0.99))
    );
    println!(
        "| try_acquire | {:.0} µs | {:.0} µs |",
        micros(pct(&check, 0.5)),
        micros(pct(&check, 0.99))
    );
    println!();
    println!("| throughput | per second |");
    println!("|---|---|");
    println!("| PING, {tasks} tasks on one connection | {ping_rate:.0} |");
    println!("| EVALSHA by hand, {tasks} tasks on one connection | {raw_rate:.0} |");
    println!("| try_acquire, {tasks} tasks on one connection | {check_rate:.0} |");
    println!("| try_acquire_many, batches of 100, one task | {batch_rate:.0} |");
    let ratio = micros(pct(&check, 0.5)) / micros(pct(&ping, 0.5));
    let overhead = micros(pct(&check, 0.5)) / micros(pct(&raw, 0.5));
    println!(
        "\ncheck / PING at the median: {ratio:.2}× (goal ≤ 1.5×; on loopback the rest is the script's own time in Redis: TIME, GET and SET from Lua)"
    );
    println!("check / EVALSHA by hand at the median: {overhead:.2}× (timeout, breaker, encoding)");
    // The guard: one round trip per check, and little around it. A second round trip would
    // add a whole PING (over 1.5× the script alone).
    assert!(
        overhead <= 1.35,
        "a check costs {overhead:.2}× the bare script call at the median"
    );
}
