//! loom checks of the hedge's shared state, its latency histogram. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_hedge`.
#![cfg(loom)]

use bulwark::hedge::Latencies;
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;

/// Latencies recorded at once from two threads are all counted: with 16 samples (the least a
/// percentile needs) split between the threads, the median is the one latency they share.
#[test]
fn concurrent_records_are_all_counted() {
    loom::model(|| {
        let l = Arc::new(Latencies::new());
        for _ in 0..14 {
            l.record(Duration::from_millis(7));
        }
        assert_eq!(l.percentile(500), None); // 14 samples
        let other = {
            let l = l.clone();
            thread::spawn(move || l.record(Duration::from_millis(7)))
        };
        l.record(Duration::from_millis(7));
        other.join().unwrap();
        let p = l.percentile(500).expect("16 samples");
        assert!(p >= Duration::from_millis(7) && p < Duration::from_millis(8));
    });
}
