//! A tonic client and server on 127.0.0.1: the client's deadline travels in `grpc-timeout`,
//! [`DeadlineLayer`] turns it into the server handler's `Deadline`, and the handler's bulwark
//! retry gives up in time. Runs on tokio's paused clock (loopback I/O is ready as soon as it
//! is written, so the clock only jumps while every task waits on a timer).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bulwark::Clock;
use bulwark::retry::{self, Backoff, Config, Jitter, Retry};
use bulwark::timeout::Deadline;
use bulwark_http::{DeadlineLayer, PropagateDeadlineLayer};
use bulwark_tokio::TokioClock;
use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The one message of this service: a `u32`, four bytes big-endian.
#[derive(Copy, Clone, Debug, Default)]
struct U32Codec;

impl Codec for U32Codec {
    type Encode = u32;
    type Decode = u32;
    type Encoder = U32Codec;
    type Decoder = U32Codec;
    fn encoder(&mut self) -> Self::Encoder {
        U32Codec
    }
    fn decoder(&mut self) -> Self::Decoder {
        U32Codec
    }
}

impl Encoder for U32Codec {
    type Item = u32;
    type Error = Status;
    fn encode(&mut self, item: u32, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_u32(item);
        Ok(())
    }
}

impl Decoder for U32Codec {
    type Item = u32;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<u32>, Status> {
        if src.remaining() < 4 {
            return Err(Status::invalid_argument("a u32 is four bytes"));
        }
        Ok(Some(src.get_u32()))
    }
}

/// The request: how many attempts of the flaky downstream fail before one succeeds
/// (`HANG`: the handler never answers). The response: the attempts the server made.
const HANG: u32 = u32::MAX;
const ATTEMPT_WORK: Duration = Duration::from_millis(10);
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_ATTEMPTS: u32 = 10;

#[derive(Clone)]
struct Flaky {
    policy: Arc<Retry<TokioClock>>,
    attempts: Arc<AtomicU32>,
}

impl tonic::server::NamedService for Flaky {
    const NAME: &'static str = "test.Flaky";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Flaky {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move { Ok(tonic::server::Grpc::new(U32Codec).unary(handler, req).await) })
    }
}

impl tonic::server::UnaryService<u32> for Flaky {
    type Response = u32;
    type Future = BoxFuture<Result<tonic::Response<u32>, Status>>;

    fn call(&mut self, req: tonic::Request<u32>) -> Self::Future {
        // What DeadlineLayer read from grpc-timeout.
        let deadline = req
            .extensions()
            .get::<Deadline>()
            .copied()
            .unwrap_or_default();
        let fail_first = *req.get_ref();
        let me = self.clone();
        Box::pin(async move {
            if fail_first == HANG {
                std::future::pending::<()>().await;
            }
            let attempts = &me.attempts;
            let out = retry::Call::new(Arc::clone(&me.policy), deadline, || async move {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(ATTEMPT_WORK).await;
                if n > fail_first {
                    Ok(n)
                } else {
                    Err("downstream unavailable")
                }
            })
            .await;
            match out {
                Ok(n) => Ok(tonic::Response::new(n)),
                Err(retry::Error::DeadlineExceeded { attempts, .. }) => {
                    Err(Status::deadline_exceeded(format!(
                        "gave up after {attempts} attempts: the caller's deadline is near"
                    )))
                }
                Err(e) => Err(Status::unavailable(e.to_string())),
            }
        })
    }
}

struct Loopback {
    attempts: Arc<AtomicU32>,
    client: tonic::client::Grpc<bulwark_http::PropagateDeadline<tonic::transport::Channel>>,
}

async fn start() -> Loopback {
    let policy = Retry::new(
        Config::new()
            .max_attempts(MAX_ATTEMPTS)
            .backoff(Backoff::constant(BACKOFF))
            .jitter(Jitter::None),
        TokioClock::new(),
    )
    .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let svc = Flaky {
        policy: Arc::new(policy),
        attempts: Arc::clone(&attempts),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(DeadlineLayer::new())
            .add_service(svc)
            .serve_with_incoming(incoming),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = tower_layer::Layer::layer(&PropagateDeadlineLayer::grpc(), channel);
    Loopback {
        attempts,
        client: tonic::client::Grpc::new(client),
    }
}

impl Loopback {
    /// Calls the server with `fail_first`, under a deadline `budget` from now.
    async fn call(&mut self, fail_first: u32, budget: Duration) -> Result<u32, Status> {
        let mut req = tonic::Request::new(fail_first);
        req.extensions_mut()
            .insert(Deadline::after(TokioClock::new().now(), budget));
        self.client
            .ready()
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/test.Flaky/Work");
        let resp = self.client.unary(req, path, U32Codec).await?;
        Ok(resp.into_inner())
    }
}

#[tokio::test(start_paused = true)]
async fn with_time_enough_the_server_retries_to_success() {
    let mut lo = start().await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(lo.call(3, Duration::from_secs(5)).await.unwrap(), 4);
    assert_eq!(lo.attempts.load(Ordering::SeqCst), 4);
    // Four attempts of 10 ms and three backoffs of 100 ms.
    let took = t0.elapsed();
    assert!(took >= 4 * ATTEMPT_WORK + 3 * BACKOFF, "{took:?}");
    assert!(
        took < 4 * ATTEMPT_WORK + 3 * BACKOFF + Duration::from_millis(20),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_client_deadline_stops_the_server_retry_before_it() {
    let mut lo = start().await;
    let t0 = tokio::time::Instant::now();
    let budget = Duration::from_millis(250);
    let status = lo.call(1_000, budget).await.unwrap_err();
    let took = t0.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("gave up after 3 attempts"),
        "{status:?}"
    );
    // Attempts at 0, 110 and 220 ms; a fourth at 330 ms would be past the 250 ms deadline,
    // so the server answers at 230 ms instead of making all ten attempts (about 1.4 s).
    assert_eq!(lo.attempts.load(Ordering::SeqCst), 3);
    assert!(took < budget, "answered after {took:?}");
    assert!(took >= 3 * ATTEMPT_WORK + 2 * BACKOFF, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_outlives_the_deadline_is_answered_deadline_exceeded() {
    let mut lo = start().await;
    let t0 = tokio::time::Instant::now();
    let status = lo.call(HANG, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(320), "{took:?}");
    assert_eq!(lo.attempts.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_is_not_sent() {
    let mut lo = start().await;
    let status = lo.call(0, Duration::ZERO).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        lo.attempts.load(Ordering::SeqCst),
        0,
        "the server saw no call"
    );
}
