//! A pipeline's retry hooks fire inside a `PipelineLayer`: a retry in the layer can be seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulwark::circuit_breaker::{CircuitBreaker, Config as Breaker};
use bulwark::pipeline::{Error, Judged, Pipeline};
use bulwark::retry::{Backoff, Config, Counters, Finish, Hooks, Jitter, Totals};
use bulwark_tokio::TokioClock;
use bulwark_tokio::tower::PipelineLayer;
use tower::{Layer, ServiceExt, service_fn};

/// Counts the retries caused by an open breaker, and the last way a call ended.
#[derive(Default)]
struct Causes {
    open: AtomicU32,
    finish: std::sync::Mutex<Option<(u32, Finish)>>,
}

impl<T, E> Hooks<Judged<T>, Judged<Error<E>>> for Causes {
    fn on_retry(&self, _: u32, _: Duration, out: &Result<Judged<T>, Judged<Error<E>>>) {
        if matches!(
            out,
            Err(Judged {
                value: Error::CircuitOpen(_),
                ..
            })
        ) {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_finish(&self, attempts: u32, finish: Finish) {
        *self.finish.lock().unwrap() = Some((attempts, finish));
    }
}

#[tokio::test(start_paused = true)]
async fn pipeline_layer_reports_each_retry_to_its_hooks() {
    let clock = TokioClock::new();
    let breaker = Arc::new(
        CircuitBreaker::new(
            Breaker::new()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(1)),
            clock,
        )
        .unwrap(),
    );
    let cfg = Config::new()
        .max_attempts(4)
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .jitter(Jitter::None);
    let pipeline = Pipeline::new(clock, cfg)
        .unwrap()
        .breaker(Arc::clone(&breaker))
        .hooks((Counters::new(), Causes::default()));
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let layer = PipelineLayer::new(pipeline);
    let svc = layer.layer(service_fn(move |()| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move { if n < 2 { Err("503") } else { Ok(n) } }
    }));
    let t0 = tokio::time::Instant::now();
    // Two failures open the breaker; the third attempt is rejected and waits out the open
    // second (the breaker's retry instant); the fourth is the probe, and succeeds.
    assert_eq!(svc.oneshot(()).await.unwrap(), 2);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
    let (counters, causes) = layer.policy().retry().hooks();
    assert_eq!(
        counters.snapshot(),
        Totals {
            attempts: 4,
            retries: 3,
            budget_denials: 0
        }
    );
    assert_eq!(causes.open.load(Ordering::Relaxed), 1);
    assert_eq!(*causes.finish.lock().unwrap(), Some((4, Finish::Success)));
}
