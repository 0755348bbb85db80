//! The circuit breaker against a simulated flaky service, on the mock clock.
//!
//! Three minutes of traffic (a request every 250 ms) hit a service that is healthy, then down
//! for a minute (slow timeouts), then healthy again. The breaker's state changes are printed as
//! they happen, with their instants, then the totals. Time is simulated: the run takes
//! milliseconds and prints the same thing every time.
//!
//! `cargo run -p bulwark-examples --bin simulator`

use std::cell::RefCell;
use std::time::Duration;

use bulwark::circuit_breaker::{
    CircuitBreaker, Config, CountWindow, Counters, Error, Events, Rejected, Transition,
};
use bulwark::{Clock, Instant, MockClock, mock};

/// The service: healthy with rare errors, an outage from 30 s to 90 s, healthy again after.
struct FlakyService {
    rng: RefCell<u64>,
}

#[derive(Debug)]
enum ServiceError {
    Unavailable,
}

impl FlakyService {
    fn roll(&self) -> u64 {
        let mut s = self.rng.borrow_mut();
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 100
    }

    /// One request at the clock's current instant: how long it takes, and whether it works.
    async fn request(&self, clock: &MockClock) -> Result<&'static str, ServiceError> {
        let t = clock.now().as_millis();
        let down = (30_000..90_000).contains(&t);
        let (latency_ms, fails) = if down {
            (2_000, true)
        } else {
            (40 + self.roll(), self.roll() < 3)
        };
        clock.sleep(Duration::from_millis(latency_ms)).await;
        if fails {
            Err(ServiceError::Unavailable)
        } else {
            Ok("200 OK")
        }
    }
}

/// Prints every state change as it happens.
struct Timeline;
impl Events for Timeline {
    fn on_state_change(&self, t: Transition) {
        println!("{:>9}  {:?} -> {:?}", secs(t.at), t.from, t.to);
    }
}

fn secs(t: Instant) -> String {
    format!("{:.3}s", t.as_nanos() as f64 / 1e9)
}

#[derive(Default, Debug)]
struct Totals {
    ok: u32,
    failed: u32,
    rejected: u32,
    waited_ms: u64,
    spared_ms: u64,
}

fn main() {
    let clock = MockClock::new();
    let config = Config::new()
        .consecutive_failures(5)
        .failure_rate(50)
        .slow_calls(Duration::from_secs(1), 80)
        .minimum_calls(10)
        .open_for(Duration::from_secs(5))
        .open_growth(2, Duration::from_secs(20))
        .half_open(2, 2);
    let breaker = CircuitBreaker::with_window(config, CountWindow::<20>, &clock)
        .expect("a valid configuration")
        .with_events((Timeline, Counters::new()));
    let service = FlakyService {
        rng: RefCell::new(42),
    };

    println!("bulwark circuit breaker simulator: a request every 250 ms for 180 s (mock clock)");
    println!("service: healthy, DOWN from 30 s to 90 s (2 s timeouts), healthy again\n");
    println!("{:>9}  transition", "instant");

    let totals = mock::run(&clock, async {
        let mut totals = Totals::default();
        let mut next = Instant::ZERO;
        while next < Instant::from_secs(180) {
            clock.sleep_until(next).await;
            let started = clock.now();
            match breaker.call(|| service.request(&clock)).await {
                Ok(_) => totals.ok += 1,
                Err(Error::Inner(ServiceError::Unavailable)) => totals.failed += 1,
                Err(Error::Rejected(Rejected { .. })) => {
                    totals.rejected += 1;
                    totals.spared_ms += 2_000; // a timeout the caller did not sit through
                }
            }
            totals.waited_ms += clock.now().saturating_duration_since(started).as_millis() as u64;
            next = next.max(clock.now()) + Duration::from_millis(250);
        }
        totals
    })
    .expect("the simulation never stalls");

    let counted = breaker.events().1.snapshot();
    println!("\ntotals after {}:", secs(clock.now()));
    println!("  requests answered ok        {:>5}", totals.ok);
    println!("  requests failed             {:>5}", totals.failed);
    println!("  rejected fast by breaker    {:>5}", totals.rejected);
    println!("  slow calls recorded         {:>5}", counted.slow);
    println!(
        "  time spent waiting on calls {:>6.1}s",
        totals.waited_ms as f64 / 1e3
    );
    println!(
        "  timeouts spared to callers  {:>6.1}s",
        totals.spared_ms as f64 / 1e3
    );
    println!("  final state                 {:?}", breaker.state());
}
