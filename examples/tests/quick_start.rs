//! The README's quick start for a tokio service, verbatim in its body: it must compile and
//! serve (and hold nothing but `Arc`s: no leak).

use std::convert::Infallible;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[rustfmt::skip] // the block below is the README's, as written there
#[tokio::test(start_paused = true)]
async fn the_readme_quick_start_builds_a_working_service() -> Result<(), Error> {
    use tower::ServiceExt;
    let my_downstream = tower::service_fn(|req: u32| async move { Ok::<_, Infallible>(req + 1) });
    // ---- README: Quick start (the block between these lines) ----
    use std::{sync::Arc, time::Duration};
    use bulwark::{circuit_breaker::{CircuitBreaker, Config as Breaker}, pipeline::Pipeline, retry::Config as Retry};
    use bulwark_tokio::{TokioClock, tower::PipelineLayer};

    let clock = TokioClock::new();
    let breaker = Arc::new(CircuitBreaker::new(Breaker::new().consecutive_failures(5), clock)?);
    let policy = Pipeline::new(clock, Retry::new().max_attempts(3))?
        .breaker(Arc::clone(&breaker))          // any gate, through &, Arc or &'static
        .attempt_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_secs(1));
    let client = tower::ServiceBuilder::new()
        .layer(PipelineLayer::new(policy))      // clones share the pipeline; nothing leaked
        .service(my_downstream);
    // ---- end of the README block ----
    assert_eq!(client.clone().oneshot(41).await?, 42);
    assert_eq!(breaker.state(), bulwark::circuit_breaker::State::Closed);
    drop(client);
    assert_eq!(Arc::strong_count(&breaker), 1, "the layer's pipeline was freed with the service");
    Ok(())
}

#[test]
fn the_readme_block_is_the_one_tested_here() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let block = &readme[start..];
    let block = &block[block.find("```rust").expect("a code block")..];
    let block = &block[block.find('\n').unwrap() + 1..];
    let block = &block[..block.find("```").expect("the block's end")];
    let here = include_str!("quick_start.rs");
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        assert!(here.contains(line), "README line not in the test: {line}");
    }
    assert!(
        block.lines().count() <= 15,
        "the quick start must fit in 15 lines"
    );
}
