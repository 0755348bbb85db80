//! Issue 15, item 6: the window figures users chart beside the rates: slow successes, slow
//! failures, and the sum and maximum of the call durations, on the machine and the shared
//! form, over count and time windows, with literal instants on the mock clock.

use bulwark::circuit_breaker::{
    CallTimes, CircuitBreaker, Config, CountWindow, Machine, Outcome, TimeWindow, Window,
};
use bulwark::{Instant, MockClock};
use core::time::Duration;

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn cfg() -> Config {
    // 100 ms or longer is slow; thresholds high enough that nothing trips here.
    Config::new()
        .slow_calls(Duration::from_millis(100), 100)
        .failure_rate(100)
        .minimum_calls(3)
        .time_window(Duration::from_secs(4))
}

/// Each call: (start ms, end ms, failed).
type Call = (u64, u64, bool);

fn run_machine<W: Window>(calls: &[Call], at: u64) -> (u32, CallTimes) {
    let mut m = Machine::<W>::new(cfg()).unwrap();
    for &(start, end, failed) in calls {
        let t = m.try_acquire(ms(start)).unwrap();
        let outcome = if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        m.record(t, outcome, ms(end));
    }
    let metrics = m.metrics(ms(at));
    (metrics.window.calls, metrics.times)
}

fn run_shared<W: Window>(window: W, calls: &[Call], at: u64) -> (u32, CallTimes) {
    let clock = MockClock::new();
    let b = CircuitBreaker::with_window(cfg(), window, &clock).unwrap();
    for &(start, end, failed) in calls {
        clock.set(ms(start));
        let p = b.try_acquire().unwrap();
        clock.set(ms(end));
        if failed { p.failure() } else { p.success() }
    }
    clock.set(ms(at));
    let metrics = b.metrics();
    (metrics.window.calls, metrics.times)
}

const CALLS: [Call; 5] = [
    (0, 150, false),   // slow success
    (0, 120, true),    // slow failure
    (200, 230, false), // fast success
    (300, 500, true),  // slow failure, the longest
    (600, 700, false), // exactly the threshold: slow (resilience4j: `>=`)
];

/// resilience4j's `getNumberOfSlowSuccessfulCalls()` counts the successful calls at or over
/// the slow-call threshold and `getNumberOfSlowFailedCalls()` the failed ones; the total
/// duration is the sum over the window (`getTotalDuration` of its snapshot).
#[test]
fn count_window_counts_slow_calls_by_outcome_like_resilience4j() {
    let want = CallTimes {
        slow_successes: 2,
        slow_failures: 2,
        total: Duration::from_millis(150 + 120 + 30 + 200 + 100),
        max: Duration::from_millis(200),
    };
    assert_eq!(run_machine::<CountWindow<10>>(&CALLS, 700), (5, want));
    assert_eq!(run_shared(CountWindow::<10>, &CALLS, 700), (5, want));
    assert_eq!(want.average(5), Some(Duration::from_millis(120)));
}

/// A count window of 3 keeps the figures of the last 3 calls only: the first two (a slow
/// success of 150 ms and a slow failure of 120 ms) are evicted.
#[test]
fn count_window_evicts_the_oldest_call_from_every_figure() {
    let want = CallTimes {
        slow_successes: 1,
        slow_failures: 1,
        total: Duration::from_millis(30 + 200 + 100),
        max: Duration::from_millis(200),
    };
    assert_eq!(run_machine::<CountWindow<3>>(&CALLS, 700), (3, want));
    assert_eq!(run_shared(CountWindow::<3>, &CALLS, 700), (3, want));
    // Two more calls evict the 200 ms slow failure too: the max drops to 100 ms.
    let more = [CALLS.as_slice(), &[(800, 810, false), (900, 905, true)]].concat();
    let want = CallTimes {
        slow_successes: 1,
        slow_failures: 0,
        total: Duration::from_millis(100 + 10 + 5),
        max: Duration::from_millis(100),
    };
    assert_eq!(run_machine::<CountWindow<3>>(&more, 905), (3, want));
    assert_eq!(run_shared(CountWindow::<3>, &more, 905), (3, want));
}

/// A time window of 4 buckets of 1 s: the figures of a call leave the window with its
/// bucket (the call ending at 150 ms is in bucket [0 s, 1 s), gone at 4 s).
#[test]
fn time_window_figures_expire_with_their_bucket() {
    let calls = [
        (0, 150, false),      // bucket 0: slow success
        (1_000, 1_400, true), // bucket 1: slow failure, 400 ms
        (2_000, 2_050, false),
    ];
    let all = CallTimes {
        slow_successes: 1,
        slow_failures: 1,
        total: Duration::from_millis(600),
        max: Duration::from_millis(400),
    };
    assert_eq!(run_machine::<TimeWindow<4>>(&calls, 3_999), (3, all));
    assert_eq!(run_shared(TimeWindow::<4>, &calls, 3_999), (3, all));
    let later = CallTimes {
        slow_successes: 0,
        slow_failures: 1,
        total: Duration::from_millis(450),
        max: Duration::from_millis(400),
    };
    assert_eq!(run_machine::<TimeWindow<4>>(&calls, 4_000), (2, later));
    assert_eq!(run_shared(TimeWindow::<4>, &calls, 4_000), (2, later));
    let last = CallTimes {
        total: Duration::from_millis(50),
        max: Duration::from_millis(50),
        ..CallTimes::default()
    };
    assert_eq!(run_machine::<TimeWindow<4>>(&calls, 5_000), (1, last));
    assert_eq!(run_shared(TimeWindow::<4>, &calls, 5_000), (1, last));
    assert_eq!(
        run_shared(TimeWindow::<4>, &calls, 6_000),
        (0, CallTimes::default())
    );
    // A bucket reused four buckets later starts from zero, figures included.
    let reused = [calls.as_slice(), &[(8_000, 8_070, false)]].concat();
    let fresh = CallTimes {
        total: Duration::from_millis(70),
        max: Duration::from_millis(70),
        ..CallTimes::default()
    };
    assert_eq!(run_machine::<TimeWindow<4>>(&reused, 8_070), (1, fresh));
    assert_eq!(run_shared(TimeWindow::<4>, &reused, 8_070), (1, fresh));
}

/// Without a slow-call policy calls are not timed (no clock reads on the closed path) and
/// the figures stay zero, unless `record_durations` asks for them.
#[test]
fn durations_need_timing() {
    let plain = Config::new().failure_rate(100);
    let mut m = Machine::<CountWindow<4>>::new(plain).unwrap();
    let t = m.try_acquire(ms(0)).unwrap();
    m.on_success(t, ms(250));
    assert_eq!(m.metrics(ms(250)).times, CallTimes::default());

    let clock = MockClock::new();
    let b = CircuitBreaker::with_window(plain.record_durations(true), CountWindow::<4>, &clock)
        .unwrap();
    let p = b.try_acquire().unwrap();
    clock.set(ms(250));
    p.success();
    assert_eq!(
        b.metrics().times,
        CallTimes {
            total: Duration::from_millis(250),
            max: Duration::from_millis(250),
            ..CallTimes::default()
        }
    );
    assert_eq!(
        b.config(),
        plain.record_durations(true),
        "the setting reads back"
    );
}

/// Entering metrics-only (or closing) starts from an empty window: the timed figures too.
#[test]
fn entering_a_measuring_mode_empties_the_figures() {
    for reset in [true, false] {
        let clock = MockClock::new();
        let b = CircuitBreaker::with_window(cfg(), CountWindow::<4>, &clock).unwrap();
        let p = b.try_acquire().unwrap();
        clock.set(ms(300));
        p.failure();
        assert_eq!(b.metrics().times.slow_failures, 1);
        if reset {
            b.force_open();
            b.reset();
        } else {
            b.metrics_only();
        }
        assert_eq!(b.metrics().times, CallTimes::default());
        let p = b.try_acquire().unwrap();
        clock.set(ms(340));
        p.success();
        assert_eq!(b.metrics().times.total, Duration::from_millis(40));
    }
}

/// Durations are whole microseconds (rounded down); a call longer than `u32::MAX` µs counts
/// as that long.
#[test]
fn durations_round_down_to_microseconds_and_saturate() {
    let mut m = Machine::<CountWindow<4>>::new(cfg()).unwrap();
    let t = m.try_acquire(Instant::from_nanos(0)).unwrap();
    m.on_success(t, Instant::from_nanos(1_999));
    let t = m.try_acquire(Instant::from_secs(10)).unwrap();
    m.on_success(t, Instant::from_secs(10 + 100_000));
    let times = m.metrics(Instant::from_secs(100_010)).times;
    assert_eq!(times.max, Duration::from_micros(u32::MAX as u64));
    assert_eq!(times.total, Duration::from_micros(u32::MAX as u64 + 1));
}
