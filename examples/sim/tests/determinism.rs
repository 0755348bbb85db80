//! Same seed, same numbers; another seed, other numbers.

use core::time::Duration;

use bulwark_sim::engine::run;
use bulwark_sim::policy::Policy;
use bulwark_sim::report::{series_csv, summary_text};
use bulwark_sim::scenario::Scenario;

fn report(seed: u64) -> (String, String) {
    let mut s = Scenario::builtin("flapping").unwrap();
    s.duration = Duration::from_secs(15);
    s.seed = seed;
    let policies = Policy::defaults();
    let results: Vec<_> = policies
        .iter()
        .map(|p| run(&s, p, &mut ()).unwrap())
        .collect();
    (
        summary_text(&s, &policies, &results),
        series_csv(&policies, &results),
    )
}

#[test]
fn the_same_seed_gives_the_same_summary_and_series() {
    let (a, a_csv) = report(7);
    let (b, b_csv) = report(7);
    assert_eq!(a, b);
    assert_eq!(a_csv, b_csv);
}

#[test]
fn another_seed_gives_other_numbers() {
    let (a, a_csv) = report(7);
    let (b, b_csv) = report(8);
    assert_ne!(a, b);
    assert_ne!(a_csv, b_csv);
    // The same shape, though: the same policies, the same number of rows.
    assert_eq!(a_csv.lines().count(), b_csv.lines().count());
}
