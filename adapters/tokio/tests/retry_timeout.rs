//! bulwark's retry and timeout on tokio's paused clock, inside `tokio::spawn` (so the
//! futures are `Send` with tokio's own `Sleep`).

use core::time::Duration;

use bulwark::Clock;
use bulwark::retry::{Backoff, Config, Error, Jitter, Retry};
use bulwark::timeout::{Deadline, Elapsed, timeout, timeout_at};
use bulwark_tokio::TokioClock;

#[tokio::test(start_paused = true)]
async fn retry_schedule_on_paused_tokio_time() {
    let handle = tokio::spawn(async {
        let clock = TokioClock::new();
        let t0 = clock.now();
        let retry = Retry::new(
            Config::new()
                .jitter(Jitter::None)
                .max_attempts(5)
                .backoff(Backoff::exponential(Duration::from_secs(1))),
            clock,
        )
        .unwrap();
        let mut starts = Vec::new();
        let out = retry
            .call(|| {
                starts.push(clock.now() - t0);
                async { Err::<(), _>("down") }
            })
            .await;
        (out, starts)
    });
    let (out, starts) = handle.await.unwrap();
    assert_eq!(
        out,
        Err(Error::Exhausted {
            last: "down",
            attempts: 5
        })
    );
    assert_eq!(starts, [0, 1, 3, 7, 15].map(Duration::from_secs));
}

#[tokio::test(start_paused = true)]
async fn retry_stops_before_the_deadline_on_tokio() {
    let clock = TokioClock::new();
    let retry = Retry::new(
        Config::new()
            .jitter(Jitter::None)
            .max_attempts(10)
            .backoff(Backoff::constant(Duration::from_secs(3))),
        clock,
    )
    .unwrap();
    let t0 = clock.now();
    let deadline = Deadline::after(t0, Duration::from_secs(10));
    let out = retry
        .call_with_deadline(deadline, || async { Err::<(), _>(503) })
        .await;
    assert_eq!(
        out,
        Err(Error::DeadlineExceeded {
            last: Some(503),
            attempts: 4
        })
    );
    assert_eq!(clock.now() - t0, Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn timeout_on_tokio_fires_at_the_exact_instant() {
    let out = tokio::spawn(async {
        let clock = TokioClock::new();
        let t0 = clock.now();
        let slow = tokio::time::sleep(Duration::from_secs(60));
        let r = timeout(clock, Duration::from_millis(1_500), slow).await;
        (r, t0, clock.now())
    })
    .await
    .unwrap();
    let (r, t0, end) = out;
    assert_eq!(
        (r, end - t0),
        (
            Err(Elapsed {
                deadline: t0 + Duration::from_millis(1_500),
                timeout: Some(Duration::from_millis(1_500)),
            }),
            Duration::from_millis(1_500)
        )
    );
    let clock = TokioClock::new();
    assert_eq!(
        timeout_at(&clock, clock.now(), async { 7 }).await,
        Ok(7),
        "a ready future completes even at an expired deadline"
    );
}
