//! The README's "HTTP and gRPC clients" block, run: a front server reads its caller's
//! deadline, and its reqwest client passes what is left on to the downstream.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use bulwark::circuit_breaker::Config as Breaker;
use bulwark::retry::{Budget, Config as Retry};
use bulwark::timeout::Deadline;
use bulwark_http::{DeadlineLayer, ENVOY_EXPECTED_TIMEOUT_MS};
use bulwark_reqwest::{HostBreakers, Resilience};
use reqwest_middleware::ClientWithMiddleware;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(start_paused = true)]
async fn the_deadline_travels_from_the_caller_through_the_server_to_its_downstream() {
    // The downstream answers with the time its caller said it had left.
    let downstream = serve(axum::Router::new().fallback(
        |headers: axum::http::HeaderMap| async move {
            headers[ENVOY_EXPECTED_TIMEOUT_MS]
                .to_str()
                .unwrap()
                .to_owned()
        },
    ))
    .await;

    // --- the README block ---
    let budget = Arc::new(Budget::new(20, 5, 100).unwrap()); // shared by every client
    let hosts = Arc::new(HostBreakers::new(64, Breaker::new().consecutive_failures(5)).unwrap());
    let plain = reqwest::Client::builder().no_proxy().build().unwrap(); // hermetic test
    let client: ClientWithMiddleware = reqwest_middleware::ClientBuilder::new(plain)
        .with(
            Resilience::new(Retry::new().max_attempts(3))
                .unwrap()
                .attempt_timeout(Duration::from_secs(2))
                .budget(Arc::clone(&budget))
                .breakers(Arc::clone(&hosts))
                .send_deadline(ENVOY_EXPECTED_TIMEOUT_MS), // pass on what is left
        )
        .build();

    async fn handler(
        State((client, url)): State<(ClientWithMiddleware, String)>,
        Extension(deadline): Extension<Deadline>, // what DeadlineLayer read
    ) -> String {
        tokio::time::sleep(Duration::from_millis(100)).await; // some work of our own
        let resp = client
            .get(url)
            .with_extension(deadline)
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }
    let app = axum::Router::new()
        .route("/", axum::routing::get(handler))
        .with_state((client, downstream))
        .layer(DeadlineLayer::new().max_timeout(Duration::from_secs(5)));
    // --- end of the block ---

    let front = serve(app).await;
    let asked = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&front)
        .header("grpc-timeout", "800m")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    // 800 ms asked, 100 ms spent at the front: the downstream is told 700 ms.
    assert_eq!(asked.text().await.unwrap(), "700");
}
