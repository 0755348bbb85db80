//! `Instant` and `Deadline` arithmetic near 0 and `u64::MAX`: saturating, exact, monotone,
//! never a panic.
#![no_main]

use arbitrary::Arbitrary;
use bulwark::Instant;
use bulwark::time::duration_to_nanos;
use bulwark::timeout::Deadline;
use bulwark_fuzz::{Dur, Edgy, nanos};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Input {
    a: Edgy,
    b: Edgy,
    d1: Dur,
    d2: Dur,
    millis: Edgy,
    secs: Edgy,
    deadline: Option<Edgy>,
    other: Option<Edgy>,
}

fuzz_target!(|inp: Input| {
    let (a, b) = (Instant::from_nanos(inp.a.0), Instant::from_nanos(inp.b.0));
    let (d1, d2) = (inp.d1.0, inp.d2.0);
    let (n1, n2) = (nanos(d1), nanos(d2));
    let max = u64::MAX as u128;

    assert_eq!(duration_to_nanos(d1), n1);
    assert_eq!(a.as_nanos(), inp.a.0);
    assert_eq!(a.since_origin(), Duration::from_nanos(inp.a.0));
    assert_eq!(a.as_millis(), inp.a.0 / 1_000_000);
    assert_eq!(
        Instant::from_millis(inp.millis.0).as_nanos() as u128,
        (inp.millis.0 as u128 * 1_000_000).min(max)
    );
    assert_eq!(
        Instant::from_secs(inp.secs.0).as_nanos() as u128,
        (inp.secs.0 as u128 * 1_000_000_000).min(max)
    );

    // Saturating, and exactly the saturated value.
    let sum = a.saturating_add(d1);
    assert_eq!(
        sum.as_nanos() as u128,
        (a.as_nanos() as u128 + d1.as_nanos()).min(max)
    );
    assert_eq!(a + d1, sum);
    let mut c = a;
    c += d1;
    assert_eq!(c, sum);
    let diff = a.saturating_sub(d1);
    assert_eq!(
        diff.as_nanos() as u128,
        (a.as_nanos() as u128).saturating_sub(d1.as_nanos())
    );
    assert_eq!(a - d1, diff);

    // Durations between instants: zero (never a panic) when `earlier` is later.
    let since = a.saturating_duration_since(b);
    assert_eq!(
        since,
        Duration::from_nanos(a.as_nanos().saturating_sub(b.as_nanos()))
    );
    assert_eq!(a - b, since);
    assert_eq!(a.checked_duration_since(b), (a >= b).then_some(since));
    assert!(since.is_zero() || a > b);

    // Round trips where nothing saturates.
    if sum != Instant::MAX {
        assert_eq!(sum - a, d1);
        assert_eq!(sum - d1, a);
    }
    assert_eq!(
        sum.saturating_duration_since(a).as_nanos(),
        (sum.as_nanos() - a.as_nanos()) as u128
    );

    // Monotone in both arguments.
    let (lo, hi) = if n1 <= n2 { (d1, d2) } else { (d2, d1) };
    assert!(a + lo <= a + hi);
    assert!(a - lo >= a - hi);
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    assert!(x + d1 <= y + d1);
    assert!(x - d1 <= y - d1);
    assert!(y - x >= y - y && x - y == Duration::ZERO);
    assert!(Instant::ZERO <= a && a <= Instant::MAX);
    assert_eq!(Instant::MAX + d1, Instant::MAX);
    assert_eq!(Instant::ZERO - d1, Instant::ZERO);

    // Deadlines.
    let dl = match inp.deadline {
        Some(t) => Deadline::at(Instant::from_nanos(t.0)),
        None => Deadline::NONE,
    };
    let other = match inp.other {
        Some(t) => Deadline::at(Instant::from_nanos(t.0)),
        None => Deadline::NONE,
    };
    assert_eq!(Deadline::after(a, d1), Deadline::at(sum));
    assert_eq!(
        Deadline::from(inp.deadline.map(|t| Instant::from_nanos(t.0))),
        dl
    );
    match dl.instant() {
        Some(at) => {
            assert_eq!(dl.is_expired(a), a >= at);
            assert_eq!(dl.allows(a), a < at);
            assert_eq!(dl.remaining(a), Some(at - a));
            // Once expired, expired for good (monotone in `now`).
            if dl.is_expired(x) {
                assert!(dl.is_expired(y));
            }
            if !dl.is_expired(y) {
                assert!(!dl.is_expired(x));
            }
            assert_eq!(Deadline::from(at), dl);
        }
        None => {
            assert!(!dl.is_expired(a) && dl.allows(a) && dl.allows(Instant::MAX));
            assert_eq!(dl.remaining(a), None);
        }
    }
    let m = dl.min(other);
    assert_eq!(
        m,
        other.min(dl).instant().map_or(Deadline::NONE, Deadline::at)
    );
    match (dl.instant(), other.instant()) {
        (Some(p), Some(q)) => assert_eq!(m.instant(), Some(p.min(q))),
        (Some(p), None) | (None, Some(p)) => assert_eq!(m.instant(), Some(p)),
        (None, None) => assert_eq!(m, Deadline::NONE),
    }
    // The earlier deadline expires no later than either.
    for now in [a, b, Instant::ZERO, Instant::MAX] {
        assert_eq!(
            m.is_expired(now),
            dl.is_expired(now) || other.is_expired(now)
        );
    }
});
