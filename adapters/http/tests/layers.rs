//! The two layers over plain `http` services, on tokio's paused clock.

use std::convert::Infallible;
use std::time::Duration;

use bulwark::Clock;
use bulwark::timeout::Deadline;
use bulwark_http::{DeadlineLayer, HeaderError, InvalidTimeoutHeader, PropagateDeadlineLayer};
use bulwark_tokio::TokioClock;
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

/// A handler that reports what the layer gave it: the time left and any invalid header.
fn report() -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|req: http::Request<()>| async move {
        let left = bulwark_http::deadline(req.extensions()).remaining(TokioClock::new().now());
        let invalid = req
            .extensions()
            .get::<InvalidTimeoutHeader>()
            .map(|e| e.error);
        Ok(http::Response::new(format!("{left:?} {invalid:?}")))
    })
}

fn hang() -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|_: http::Request<()>| std::future::pending())
}

fn request(headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder();
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn server_takes_the_earliest_readable_deadline() {
    let layer = DeadlineLayer::new()
        .millis_header(http::HeaderName::from_static("x-timeout-ms"))
        .max_timeout(Duration::from_secs(30));
    let svc = layer.layer(report());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "Some(30s) None"),
        (&[("grpc-timeout", "5S")], "Some(5s) None"),
        (
            &[
                ("grpc-timeout", "5S"),
                ("x-envoy-expected-rq-timeout-ms", "200"),
            ],
            "Some(200ms) None",
        ),
        (
            &[("x-timeout-ms", "70"), ("grpc-timeout", "1M")],
            "Some(70ms) None",
        ),
        (&[("grpc-timeout", "1H")], "Some(30s) None"), // the server's own limit
        (&[("grpc-timeout", "0n")], "Some(0ns) None"),
        // Garbage is ignored (and reported); the readable header still counts.
        (
            &[("grpc-timeout", "5 S"), ("x-timeout-ms", "900")],
            "Some(900ms) Some(NotADigit { at: 1 })",
        ),
        (
            &[("grpc-timeout", "123456789m")],
            "Some(30s) Some(TooManyDigits { digits: 9 })",
        ),
        (
            &[("x-envoy-expected-rq-timeout-ms", "")],
            "Some(30s) Some(Empty)",
        ),
        (&[("grpc-timeout", "99999999H")], "Some(30s) None"),
    ];
    for (headers, want) in cases {
        let resp = svc.clone().oneshot(request(headers)).await.unwrap();
        assert_eq!(resp.body(), want, "{headers:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn server_without_headers_or_own_timeout_sets_no_deadline() {
    let svc = DeadlineLayer::new().layer(report());
    let resp = svc.clone().oneshot(request(&[])).await.unwrap();
    assert_eq!(resp.body(), "None None");
    // An outer layer's deadline is kept, and the earlier one wins.
    let mut req = request(&[("grpc-timeout", "10S")]);
    req.extensions_mut().insert(Deadline::after(
        TokioClock::new().now(),
        Duration::from_secs(2),
    ));
    assert_eq!(svc.oneshot(req).await.unwrap().body(), "Some(2s) None");
}

#[tokio::test(start_paused = true)]
async fn server_answers_deadline_exceeded_for_grpc_and_504_for_http() {
    let svc = DeadlineLayer::new().layer(hang());
    let t0 = Instant::now();
    let grpc = request(&[
        ("grpc-timeout", "150m"),
        ("content-type", "application/grpc+proto"),
    ]);
    let resp = svc.clone().oneshot(grpc).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(150));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["grpc-status"], "4");
    assert_eq!(resp.headers()["content-type"], "application/grpc");

    let t0 = Instant::now();
    let plain = request(&[("x-envoy-expected-rq-timeout-ms", "40")]);
    let resp = svc.oneshot(plain).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(40));
    assert_eq!(resp.status(), 504);
    assert!(resp.headers().get("grpc-status").is_none());
}

#[tokio::test(start_paused = true)]
async fn client_writes_remaining_time_and_answers_at_the_deadline() {
    let echo = service_fn(|req: http::Request<()>| async move {
        let h = req.headers();
        let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
        Ok::<_, Infallible>(http::Response::new(format!(
            "{:?} {:?}",
            get("grpc-timeout"),
            get("x-envoy-expected-rq-timeout-ms")
        )))
    });
    let layer = PropagateDeadlineLayer::grpc().also_millis(bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS);
    let svc = layer.layer(echo);
    let now = TokioClock::new().now();
    let with = |d: Duration, headers: &[(&str, &str)]| {
        let mut req = request(headers);
        req.extensions_mut().insert(Deadline::after(now, d));
        req
    };
    let cases = [
        (
            with(Duration::from_millis(1500), &[]),
            r#"Some("1500000u") Some("1500")"#,
        ),
        // A header already there that says less wins; one that cannot be read is replaced.
        (
            with(Duration::from_secs(9), &[("grpc-timeout", "20m")]),
            r#"Some("20000000n") Some("20")"#,
        ),
        (
            with(Duration::from_secs(9), &[("grpc-timeout", "bogus")]),
            r#"Some("9000000u") Some("9000")"#,
        ),
        (
            request(&[("x-envoy-expected-rq-timeout-ms", "bogus")]),
            r#"None Some("bogus")"#,
        ),
        (request(&[]), "None None"),
    ];
    for (req, want) in cases {
        assert_eq!(svc.clone().oneshot(req).await.unwrap().body(), want);
    }

    // A call still pending at its deadline is answered (and dropped) then.
    let slow = PropagateDeadlineLayer::envoy()
        .timeout(Duration::from_millis(80))
        .layer(hang());
    let t0 = Instant::now();
    let resp = slow.oneshot(request(&[])).await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), t0.elapsed()),
        (504, Duration::from_millis(80))
    );
}

#[test]
fn invalid_header_reads_well() {
    let e = InvalidTimeoutHeader {
        header: bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS,
        error: HeaderError::NotADigit { at: 0 },
    };
    assert_eq!(
        e.to_string(),
        "ignored x-envoy-expected-rq-timeout-ms: timeout header has a non-digit at byte 0"
    );
}
