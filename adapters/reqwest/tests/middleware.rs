//! The middleware against local axum servers on 127.0.0.1 that script 503s, `Retry-After`
//! and stalls. Everything runs on tokio's paused clock: backoff, `Retry-After` waits and
//! attempt timeouts take no wall time and are measured exactly (loopback I/O is ready as
//! soon as it is written, so the clock only jumps while every task waits on a timer).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::response::{IntoResponse, Response};
use bulwark::Clock;
use bulwark::circuit_breaker::{Config as Breaker, State};
use bulwark::retry::{Backoff, Budget, Config, Jitter};
use bulwark::timeout::Deadline;
use bulwark_reqwest::{Error, GaveUp, HostBreakers, Resilience};
use bulwark_tokio::TokioClock;
use reqwest_middleware::ClientWithMiddleware;
use tokio::time::Instant;

/// What the server does for one request.
#[derive(Clone, Debug)]
enum Step {
    Status(u16),
    StatusRetryAfter(u16, String),
    Stall,
}

#[derive(Default)]
struct Script {
    plan: Mutex<VecDeque<Step>>,
    /// When each request arrived.
    hits: Mutex<Vec<Instant>>,
    /// The `x-envoy-expected-rq-timeout-ms` of each request.
    timeouts: Mutex<Vec<Option<String>>>,
    /// Once the plan is used up: this step for every request (200 if none).
    then: Mutex<Option<Step>>,
}

impl Script {
    fn hits(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn gaps(&self) -> Vec<Duration> {
        let h = self.hits.lock().unwrap();
        h.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

struct Server {
    url: String,
    script: Arc<Script>,
}

async fn server(plan: Vec<Step>, then: Option<Step>) -> Server {
    let script = Arc::new(Script {
        plan: Mutex::new(plan.into()),
        hits: Mutex::default(),
        timeouts: Mutex::default(),
        then: Mutex::new(then),
    });
    let s = Arc::clone(&script);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let s = Arc::clone(&s);
        async move {
            s.hits.lock().unwrap().push(Instant::now());
            let sent = headers.get("x-envoy-expected-rq-timeout-ms");
            let sent = sent.map(|v| v.to_str().unwrap().to_owned());
            s.timeouts.lock().unwrap().push(sent);
            let step = s.plan.lock().unwrap().pop_front();
            let step = step.or_else(|| s.then.lock().unwrap().clone());
            match step {
                None => "ok".into_response(),
                Some(Step::Status(code)) => status(code).into_response(),
                Some(Step::StatusRetryAfter(code, after)) => {
                    (status(code), [("retry-after", after)]).into_response()
                }
                Some(Step::Stall) => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Response::new("too late".into())
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        url: format!("http://{addr}/"),
        script,
    }
}

fn status(code: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(code).unwrap()
}

fn retry(attempts: u32, backoff: Duration) -> Config {
    Config::new()
        .max_attempts(attempts)
        .backoff(Backoff::constant(backoff))
        .jitter(Jitter::None)
}

/// A client that ignores proxy settings from the environment (the tests are hermetic).
fn client(policy: Resilience) -> ClientWithMiddleware {
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    reqwest_middleware::ClientBuilder::new(plain)
        .with(policy)
        .build()
}

/// The middleware's own error inside reqwest-middleware's.
fn ours(e: &reqwest_middleware::Error) -> &Error {
    match e {
        reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<Error>().unwrap(),
        other => panic!("not the middleware's error: {other:?}"),
    }
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn transient_statuses_are_retried_with_backoff_until_success() {
    let srv = server(
        vec![Step::Status(503), Step::Status(502), Step::Status(500)],
        None,
    )
    .await;
    let c = client(Resilience::new(retry(4, 100 * MS)).unwrap());
    let resp = c.get(&srv.url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(srv.script.hits(), 4);
    for gap in srv.script.gaps() {
        assert!(gap >= 100 * MS && gap < 110 * MS, "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn when_retries_run_out_the_last_transient_response_is_returned() {
    let srv = server(vec![], Some(Step::Status(503))).await;
    let c = client(Resilience::new(retry(3, 10 * MS)).unwrap());
    let resp = c.get(&srv.url).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(srv.script.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn other_statuses_are_returned_at_once() {
    for code in [400, 404, 409, 501, 505] {
        let srv = server(vec![Step::Status(code)], None).await;
        let c = client(Resilience::new(retry(3, 10 * MS)).unwrap());
        assert_eq!(c.get(&srv.url).send().await.unwrap().status(), code);
        assert_eq!(srv.script.hits(), 1, "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_waited_out() {
    let srv = server(vec![Step::StatusRetryAfter(503, "2".into())], None).await;
    let c = client(Resilience::new(retry(3, 10 * MS)).unwrap());
    assert_eq!(c.get(&srv.url).send().await.unwrap().status(), 200);
    let gaps = srv.script.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= 2000 * MS && gaps[0] < 2010 * MS, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_waited_out() {
    // The date is wall-clock time to whole seconds: 3 s from now is between 2 and 3 s away.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    let srv = server(vec![Step::StatusRetryAfter(429, at)], None).await;
    let c = client(Resilience::new(retry(3, 10 * MS)).unwrap());
    assert_eq!(c.get(&srv.url).send().await.unwrap().status(), 200);
    let gaps = srv.script.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= 1900 * MS && gaps[0] <= 3010 * MS, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_max_retry_after() {
    let srv = server(vec![Step::StatusRetryAfter(503, "3600".into())], None).await;
    let cfg = retry(3, 10 * MS).max_retry_after(Duration::from_secs(5));
    let c = client(Resilience::new(cfg).unwrap());
    assert_eq!(c.get(&srv.url).send().await.unwrap().status(), 200);
    let gaps = srv.script.gaps();
    assert!(gaps[0] >= 5000 * MS && gaps[0] < 5010 * MS, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_times_out_and_the_next_one_is_made() {
    let srv = server(vec![Step::Stall], None).await;
    let policy = Resilience::new(retry(3, 50 * MS))
        .unwrap()
        .attempt_timeout(200 * MS);
    let c = client(policy);
    let t0 = Instant::now();
    assert_eq!(c.get(&srv.url).send().await.unwrap().status(), 200);
    let took = t0.elapsed();
    assert!(took >= 250 * MS && took < 300 * MS, "{took:?}");
    assert_eq!(srv.script.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn stalls_to_the_end_give_up_with_the_timeout_as_the_cause() {
    let srv = server(vec![], Some(Step::Stall)).await;
    let policy = Resilience::new(retry(3, 50 * MS))
        .unwrap()
        .attempt_timeout(200 * MS);
    let err = client(policy).get(&srv.url).send().await.unwrap_err();
    let Error::GaveUp {
        why,
        attempts,
        last,
    } = ours(&err)
    else {
        panic!("{err:?}")
    };
    assert_eq!((*why, *attempts), (GaveUp::Attempts, 3));
    assert!(
        matches!(ours(last.as_ref().unwrap()), Error::AttemptTimedOut { after } if *after == 200 * MS)
    );
    assert_eq!(srv.script.hits(), 3);
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts (no attempts left): attempt timed out after 200 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_error_is_retried() {
    // A port nothing listens on: connections are refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let err = client(Resilience::new(retry(3, 10 * MS)).unwrap())
        .get(&url)
        .send()
        .await
        .unwrap_err();
    let Error::GaveUp {
        why,
        attempts,
        last,
    } = ours(&err)
    else {
        panic!("{err:?}")
    };
    assert_eq!((*why, *attempts), (GaveUp::Attempts, 3));
    let Some(reqwest_middleware::Error::Reqwest(last)) = last.as_deref() else {
        panic!("{last:?}")
    };
    assert!(last.is_connect(), "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_cannot_be_cloned_is_sent_once_and_not_retried() {
    let srv = server(vec![Step::Status(503)], None).await;
    let c = client(Resilience::new(retry(3, 10 * MS)).unwrap());
    let stream = || {
        let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("a "), Ok("stream")];
        reqwest::Body::wrap_stream(Chunks(chunks.into_iter()))
    };
    let err = c.post(&srv.url).body(stream()).send().await.unwrap_err();
    assert!(
        matches!(ours(&err), Error::BodyNotCloneable { status: Some(s), .. } if *s == 503),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot be cloned"), "{err}");
    assert_eq!(srv.script.hits(), 1, "sent once");
    // The same body succeeding is answered as usual.
    assert_eq!(
        c.post(&srv.url)
            .body(stream())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(srv.script.hits(), 2);
}

/// A stream of ready chunks.
struct Chunks<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for Chunks<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_for_one_host_and_leaves_another_alone() {
    let bad = server(vec![], Some(Step::Status(503))).await;
    let good = server(vec![], None).await;
    let hosts = Arc::new(
        HostBreakers::new(
            8,
            Breaker::new()
                .consecutive_failures(3)
                .open_for(Duration::from_secs(30)),
        )
        .unwrap(),
    );
    let c = client(
        Resilience::new(retry(3, 10 * MS))
            .unwrap()
            .breakers(Arc::clone(&hosts)),
    );
    // Three attempts, three 503s: the third failure opens the breaker; the last 503 is returned.
    assert_eq!(c.get(&bad.url).send().await.unwrap().status(), 503);
    assert_eq!(bad.script.hits(), 3);
    let bad_host = bad.url.trim_start_matches("http://").trim_end_matches('/');
    assert_eq!(hosts.state(bad_host), Some(State::Open));

    // The next call is rejected without reaching the server.
    let err = c.get(&bad.url).send().await.unwrap_err();
    let Error::BreakerOpen { host, retry_after } = ours(&err) else {
        panic!("{err:?}")
    };
    assert_eq!(host, bad_host);
    assert!(
        retry_after.is_some_and(|d| d <= Duration::from_secs(30) && d > Duration::from_secs(29))
    );
    assert_eq!(bad.script.hits(), 3);

    // Another host is unaffected.
    assert_eq!(c.get(&good.url).send().await.unwrap().status(), 200);
    assert_eq!(good.script.hits(), 1);
    let good_host = good.url.trim_start_matches("http://").trim_end_matches('/');
    assert_eq!(hosts.state(good_host), Some(State::Closed));

    // After the open time, one probe goes through; its success closes the breaker.
    tokio::time::sleep(Duration::from_secs(30)).await;
    *bad.script.then.lock().unwrap() = None;
    assert_eq!(c.get(&bad.url).send().await.unwrap().status(), 200);
    assert_eq!(bad.script.hits(), 4);
    assert_eq!(hosts.state(bad_host), Some(State::Closed));
}

#[tokio::test(start_paused = true)]
async fn two_clients_share_one_retry_budget() {
    let srv = server(vec![Step::Status(200)], Some(Step::Status(503))).await;
    // Each success earns a whole retry, at most one is kept, no free floor.
    let budget = Arc::new(Budget::new(100, 0, 1).unwrap());
    let policy = || {
        Resilience::new(retry(5, 10 * MS))
            .unwrap()
            .budget(Arc::clone(&budget))
    };
    let (one, two) = (client(policy()), client(policy()));
    assert_eq!(one.get(&srv.url).send().await.unwrap().status(), 200); // earns one retry
    // Client one spends it: two attempts, then the budget says no.
    assert_eq!(one.get(&srv.url).send().await.unwrap().status(), 503);
    assert_eq!(srv.script.hits(), 3);
    // Client two finds the shared budget empty: one attempt only.
    assert_eq!(two.get(&srv.url).send().await.unwrap().status(), 503);
    assert_eq!(srv.script.hits(), 4);
    assert_eq!(budget.denied(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_callers_deadline_bounds_the_retries() {
    let srv = server(vec![], Some(Step::Status(503))).await;
    let c = client(Resilience::new(retry(10, 100 * MS)).unwrap());
    let t0 = Instant::now();
    let deadline = Deadline::after(TokioClock::new().now(), 250 * MS);
    let resp = c
        .get(&srv.url)
        .with_extension(deadline)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // Attempts at 0, 100 and 200 ms; one at 300 ms would be past the deadline.
    assert_eq!(srv.script.hits(), 3);
    assert!(t0.elapsed() < 250 * MS, "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_total_timeout_is_sent_as_the_time_left_on_each_attempt() {
    let srv = server(vec![Step::Status(503), Step::Status(503)], None).await;
    let policy = Resilience::new(retry(5, 100 * MS))
        .unwrap()
        .total_timeout(Duration::from_secs(1))
        .send_deadline(bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS);
    assert_eq!(
        client(policy).get(&srv.url).send().await.unwrap().status(),
        200
    );
    let sent = srv.script.timeouts.lock().unwrap().clone();
    let want = ["1000", "900", "800"].map(|s| Some(s.to_owned()));
    assert_eq!(sent, want);

    // No deadline: nothing written.
    let policy = Resilience::new(retry(5, 100 * MS))
        .unwrap()
        .send_deadline(bulwark_http::ENVOY_EXPECTED_TIMEOUT_MS);
    assert_eq!(
        client(policy).get(&srv.url).send().await.unwrap().status(),
        200
    );
    assert_eq!(srv.script.timeouts.lock().unwrap().last(), Some(&None));
}

#[tokio::test(start_paused = true)]
async fn a_total_timeout_drops_a_stalled_attempt_at_the_deadline() {
    let srv = server(vec![], Some(Step::Stall)).await;
    let policy = Resilience::new(retry(5, 100 * MS))
        .unwrap()
        .attempt_timeout(Duration::from_secs(10))
        .total_timeout(300 * MS);
    let t0 = Instant::now();
    let err = client(policy).get(&srv.url).send().await.unwrap_err();
    let took = t0.elapsed();
    assert!(took >= 300 * MS && took < 305 * MS, "{took:?}");
    let Error::GaveUp { why, attempts, .. } = ours(&err) else {
        panic!("{err:?}")
    };
    assert_eq!((*why, *attempts), (GaveUp::Deadline, 1));
}

#[tokio::test(start_paused = true)]
async fn only_the_attempt_timeout_counts_against_the_host() {
    let srv = server(vec![], Some(Step::Stall)).await;
    let bad_host = srv
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let hosts = Arc::new(HostBreakers::new(4, Breaker::new().consecutive_failures(1)).unwrap());
    // Cut short by the caller's own (total) timeout: the host is not blamed.
    let impatient = Resilience::new(retry(3, 10 * MS))
        .unwrap()
        .total_timeout(100 * MS)
        .breakers(Arc::clone(&hosts));
    let err = client(impatient).get(&srv.url).send().await.unwrap_err();
    assert!(
        matches!(
            ours(&err),
            Error::GaveUp {
                why: GaveUp::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hosts.state(&bad_host), Some(State::Closed));
    // The attempt's own timeout is the host's fault: the breaker opens, and the retry that
    // follows is rejected by it without reaching the server.
    let hits = srv.script.hits();
    let patient = Resilience::new(retry(3, 10 * MS))
        .unwrap()
        .attempt_timeout(50 * MS)
        .breakers(Arc::clone(&hosts));
    let err = client(patient).get(&srv.url).send().await.unwrap_err();
    assert!(matches!(ours(&err), Error::BreakerOpen { .. }), "{err:?}");
    assert_eq!(hosts.state(&bad_host), Some(State::Open));
    assert_eq!(srv.script.hits(), hits + 1);
}
