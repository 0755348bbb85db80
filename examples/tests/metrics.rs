//! `/metrics` of the axum server, scraped through a scripted outage on tokio's paused time:
//! the downstream answers, fails until the breaker opens, the open breaker answers at once,
//! then heals and the probe closes the breaker. Every counter and the breaker's state gauge
//! are read back from the Prometheus text and compared with exact values.
//!
//! The recorder is this test's own, set as the thread's default (`set_default_local_recorder`):
//! no other test in the process can take it or write to it. The router is driven as a tower
//! service (no network), so every request shares the limiter's one unspecified client key.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bulwark::retry::Jitter;
use bulwark_examples::server::{Script, Settings, prometheus, router};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// One scrape: `name{label="value",...}` (labels sorted by name) to its value. Comment lines
/// are left out.
type Scrape = BTreeMap<String, f64>;

/// Reads the Prometheus text format, as far as the exporter writes it: `name{labels} value`
/// or `name value` per line.
fn parse(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let value: f64 = value.parse().expect("a number");
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        out.insert(key, value);
    }
    out
}

async fn call(app: &Router, req: Request<Body>) -> (u16, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn price(app: &Router) -> u16 {
    call(app, Request::get("/price").body(Body::empty()).unwrap())
        .await
        .0
}

async fn set(app: &Router, what: &str) {
    let req = Request::post(format!("/downstream/{what}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(app, req).await.0, 200);
}

async fn scrape(app: &Router) -> Scrape {
    let (status, text) = call(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    parse(&text)
}

/// `name{labels}` with the labels given in any order, as `parse` keys them.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

fn read(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.get(&key(name, labels)).copied()
}

/// The breaker's state gauge: the one state at 1, every other at 0.
fn state(scrape: &Scrape) -> Vec<(&'static str, f64)> {
    [
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
        "metrics_only",
    ]
    .into_iter()
    .filter_map(|s| {
        let v = read(
            scrape,
            "bulwark_circuit_breaker_state",
            &[("name", "downstream"), ("state", s)],
        )?;
        (v != 0.0).then_some((s, v))
    })
    .collect()
}

const DS: (&str, &str) = ("name", "downstream");

/// A series (name and labels) and the value it must read.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

#[tokio::test(start_paused = true)]
async fn metrics_follow_a_scripted_outage() {
    let recorder = prometheus().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let exact = Settings {
        jitter: Jitter::None,
        ..Settings::DEFAULT
    };
    let app = router(exact, Script::default(), recorder.handle());

    // Before any call: the breaker's gauge already reads closed.
    assert_eq!(state(&scrape(&app).await), [("closed", 1.0)]);

    // Three calls answered (50 ms each).
    for _ in 0..3 {
        assert_eq!(price(&app).await, 200);
    }
    // The outage: two calls of two failed attempts each (5 ms, 20 ms backoff, 5 ms) open the
    // breaker on the fourth failure; the next call is answered at once by the open breaker.
    set(&app, "fail").await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(price(&app).await, 502);
    assert_eq!(price(&app).await, 502);
    assert_eq!(t0.elapsed(), Duration::from_millis(60));
    assert_eq!(price(&app).await, 503);
    assert_eq!(t0.elapsed(), Duration::from_millis(60));
    let open = scrape(&app).await;
    assert_eq!(state(&open), [("open", 1.0)]);

    // Healed; once the open time is up, the probe closes the breaker.
    set(&app, "ok").await;
    tokio::time::advance(exact.open_for).await;
    assert_eq!(price(&app).await, 200);
    let healed = scrape(&app).await;
    assert_eq!(state(&healed), [("closed", 1.0)]);

    let breaker = "bulwark_circuit_breaker_calls_total";
    let transitions = "bulwark_circuit_breaker_transitions_total";
    let retry = "bulwark_retry_calls_total";
    let calls = "bulwark_calls_total";
    let expect_open: &[Expected] = &[
        (breaker, &[DS, ("outcome", "success")], 3.0),
        (breaker, &[DS, ("outcome", "failure")], 4.0),
        (breaker, &[DS, ("outcome", "rejected")], 1.0),
        (transitions, &[DS, ("from", "closed"), ("to", "open")], 1.0),
        (retry, &[DS, ("kind", "successful_without_retry")], 3.0),
        (retry, &[DS, ("kind", "failed_with_retry")], 2.0),
        (retry, &[DS, ("kind", "failed_without_retry")], 1.0),
        ("bulwark_retry_attempts_total", &[DS], 8.0),
        (
            "bulwark_bulkhead_calls_total",
            &[DS, ("outcome", "permitted")],
            7.0,
        ),
        ("bulwark_bulkhead_in_flight", &[DS], 0.0),
        (
            "bulwark_rate_limiter_calls_total",
            &[("name", "per_client"), ("outcome", "permitted")],
            6.0,
        ),
        (
            calls,
            &[DS, ("pattern", "timeout"), ("outcome", "success")],
            3.0,
        ),
        (
            calls,
            &[DS, ("pattern", "timeout"), ("outcome", "failure")],
            2.0,
        ),
        (
            calls,
            &[DS, ("pattern", "timeout"), ("outcome", "rejected")],
            1.0,
        ),
        (
            calls,
            &[DS, ("pattern", "attempt"), ("outcome", "success")],
            3.0,
        ),
        (
            calls,
            &[DS, ("pattern", "attempt"), ("outcome", "failure")],
            4.0,
        ),
    ];
    for (name, labels, value) in expect_open {
        assert_eq!(
            read(&open, name, labels),
            Some(*value),
            "{}",
            key(name, labels)
        );
    }
    let expect_healed: &[Expected] = &[
        (breaker, &[DS, ("outcome", "success")], 4.0),
        (breaker, &[DS, ("outcome", "failure")], 4.0),
        (breaker, &[DS, ("outcome", "rejected")], 1.0),
        (transitions, &[DS, ("from", "closed"), ("to", "open")], 1.0),
        (
            transitions,
            &[DS, ("from", "open"), ("to", "half_open")],
            1.0,
        ),
        (
            transitions,
            &[DS, ("from", "half_open"), ("to", "closed")],
            1.0,
        ),
        (retry, &[DS, ("kind", "successful_without_retry")], 4.0),
        ("bulwark_retry_attempts_total", &[DS], 9.0),
        (
            "bulwark_bulkhead_calls_total",
            &[DS, ("outcome", "permitted")],
            8.0,
        ),
        (
            "bulwark_rate_limiter_calls_total",
            &[("name", "per_client"), ("outcome", "permitted")],
            7.0,
        ),
        (
            calls,
            &[DS, ("pattern", "timeout"), ("outcome", "success")],
            4.0,
        ),
        ("bulwark_attempt_duration_seconds_count", &[DS], 8.0),
        (
            "bulwark_call_duration_seconds_count",
            &[DS, ("pattern", "timeout")],
            7.0,
        ),
        (
            "bulwark_call_duration_seconds_sum",
            &[DS, ("pattern", "timeout")],
            // 4 answered calls of 50 ms, 2 failed calls of 30 ms, 1 rejected at once.
            0.26,
        ),
        (
            "bulwark_call_duration_seconds_bucket",
            &[DS, ("pattern", "timeout"), ("le", "0.025")],
            1.0,
        ),
        (
            "bulwark_call_duration_seconds_bucket",
            &[DS, ("pattern", "timeout"), ("le", "0.05")],
            7.0,
        ),
        (
            "bulwark_retry_call_attempts_bucket",
            &[DS, ("le", "1")],
            5.0,
        ),
    ];
    for (name, labels, value) in expect_healed {
        let got = read(&healed, name, labels);
        assert!(
            got.is_some_and(|g| (g - value).abs() < 1e-9),
            "{}: {got:?}, want {value}",
            key(name, labels)
        );
    }
}
