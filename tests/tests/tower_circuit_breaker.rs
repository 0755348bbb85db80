//! The circuit breaker as tower middleware on tokio's paused time.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bulwark::Clock;
use bulwark::circuit_breaker::{CircuitBreaker, Config, Counters, Rejected, State};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::CircuitBreakerLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

#[tokio::test(start_paused = true)]
async fn trips_rejects_with_retry_instant_and_recovers_on_paused_time() {
    let clock = TokioClock::new();
    let t0 = clock.now(); // paused time: the failures below take no time
    let cfg = Config::new()
        .consecutive_failures(2)
        .open_for(Duration::from_secs(30));
    let layer = CircuitBreakerLayer::new(CircuitBreaker::new(cfg, clock).unwrap());
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = healthy.clone();
    let mut svc = layer.layer(service_fn(move |req: u32| {
        let up = h.load(std::sync::atomic::Ordering::SeqCst);
        async move { if up { Ok(req) } else { Err("503") } }
    }));

    for _ in 0..2 {
        let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(err.to_string(), "503");
    }
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    let rejected = err.downcast_ref::<Rejected>().expect("a breaker rejection");
    assert_eq!(rejected.retry_at, Some(t0 + Duration::from_secs(30)));

    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await; // virtual
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7); // the probe
    assert_eq!(svc.gate().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_breaker() {
    let cfg = Config::new().consecutive_failures(3);
    let breaker = CircuitBreaker::new(cfg, TokioClock::new())
        .unwrap()
        .with_events(Counters::new());
    let svc =
        CircuitBreakerLayer::new(breaker).layer(service_fn(|()| async { Err::<(), _>("down") }));
    let clones: Vec<_> = (0..100).map(|_| svc.clone()).collect();
    for c in clones {
        let _ = c.oneshot(()).await;
    }
    let t = svc.gate().events().snapshot();
    assert_eq!(
        (t.failures, t.rejected, svc.gate().state()),
        (3, 97, State::Open)
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_response_future_gives_the_probe_slot_back() {
    let cfg = Config::new()
        .consecutive_failures(1)
        .open_for(Duration::ZERO);
    let mut svc = CircuitBreakerLayer::new(CircuitBreaker::new(cfg, TokioClock::new()).unwrap())
        .layer(service_fn(|slow: bool| async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Err::<(), _>("down")
        }));
    let _ = svc.ready().await.unwrap().call(false).await; // open
    {
        let mut probe = pin!(svc.ready().await.unwrap().call(true));
        assert!(
            probe
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        assert_eq!(svc.gate().state(), State::HalfOpen);
        let busy = svc.ready().await.unwrap().call(false).await.unwrap_err();
        // Every probe slot is taken: a call may pass as soon as the probe ends.
        let now = svc.gate().clock().now();
        assert_eq!(
            busy.downcast_ref::<Rejected>(),
            Some(&Rejected::new(Some(now), now))
        );
    } // the probe is cancelled
    let probe = svc.ready().await.unwrap().call(false);
    assert!(
        matches!(poll_once(probe), Poll::Ready(Err(_))),
        "a new probe was admitted and failed"
    );
    // Re-opened, with no open time: the next call is a probe again, which is what `state()`
    // reports (the time-driven state).
    assert_eq!(svc.gate().snapshot().state, State::Open);
    assert_eq!(svc.gate().state(), State::HalfOpen);
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    pin!(f)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}
