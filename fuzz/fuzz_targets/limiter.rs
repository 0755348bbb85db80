//! The GCRA rate limiter: the pure `Machine` against the shared `RateLimiter` on one
//! `MockClock`, and the keyed limiter (`KeyedMachine` and `KeyedRateLimiter`) against one
//! `Machine` per key, with time moving forward, far forward and backward.
//!
//! Invariants:
//! * the machine and the shared form agree on every answer, `available()` and `tat()`; the
//!   keyed machine and the keyed shared form agree on every answer;
//! * admitted cells never exceed `burst + max_now / period` since the start (per key for the
//!   keyed limiter, while it has evicted no key lossily and time never stepped back);
//! * a rejection's `retry_at` is after `now`, and honest: the same request at `retry_at` with
//!   no other traffic passes (checked on a clone of the machine);
//! * asking for more than the burst is `InsufficientCapacity` and takes nothing;
//! * an invalid configuration is the same typed `ConfigError` from every constructor;
//! * a change of quota at run time (`reconfigure`, through `&self` on the shared forms) gives
//!   every form the same answer, changes nothing when refused, and from then on admits no more
//!   than the new burst plus what the new rate refilled since the change.
#![no_main]

use arbitrary::Arbitrary;
use bulwark::rate_limiter::{
    Config, ConfigError, Denied, KeyedMachine, KeyedRateLimiter, Machine, RateLimiter,
};
use bulwark::{Instant, MockClock};
use bulwark_fuzz::{Count, Dur, SmallStep};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const MAX_OPS: usize = 256;
const KEYS: u8 = 6;
const TABLE: usize = 4;

/// How the configuration is built (constructors are being reworked: keep the calls here).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Rate {
    PerSecond(u32),
    PerMinute(u32),
    Per(u32, Dur),
    Period(Dur),
    PeriodMillis(u16),
}

#[derive(Arbitrary, Debug)]
struct Params {
    rate: Rate,
    burst: Option<Count>,
}

/// The one place that builds a [`Config`].
fn config(p: &Params) -> Config {
    let c = match p.rate {
        Rate::PerSecond(r) => Config::per_second(r),
        Rate::PerMinute(r) => Config::per_minute(r),
        Rate::Per(r, d) => Config::per(r, d.0),
        Rate::Period(d) => Config::with_period(d.0),
        Rate::PeriodMillis(ms) => Config::with_period(Duration::from_millis(ms as u64)),
    };
    match p.burst {
        Some(b) => c.burst(b.0),
        None => c,
    }
}

/// The one place that builds the limiters (their constructors may become fallible or change
/// shape; a signature change is a one-line fix here).
fn build<'c>(
    cfg: Config,
    clock: &'c MockClock,
) -> Result<
    (
        Machine,
        RateLimiter<&'c MockClock>,
        KeyedMachine<u8, TABLE>,
        KeyedRateLimiter<u8, &'c MockClock, TABLE>,
    ),
    ConfigError,
> {
    let m = Machine::new(cfg);
    let s = RateLimiter::new(cfg, clock);
    let km = KeyedMachine::<u8, TABLE>::new(cfg);
    let ks = KeyedRateLimiter::<u8, _, TABLE>::new(cfg, clock);
    match (m, s, km, ks) {
        (Ok(m), Ok(s), Ok(km), Ok(ks)) => Ok((m, s, km, ks)),
        (Err(a), Err(b), Err(c), Err(d)) => {
            assert!(
                a == b && b == c && c == d,
                "constructors disagree on {cfg:?}"
            );
            assert_eq!(Err(a), cfg.gcra().map(|_| ()));
            Err(a)
        }
        (m, s, km, ks) => panic!(
            "constructors disagree on {cfg:?}: {:?} {:?} {:?} {:?}",
            m.err(),
            s.err(),
            km.err(),
            ks.err()
        ),
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(SmallStep),
    AdvanceHuge(Dur),
    Back(SmallStep),
    Check(u8),
    CheckOne,
    Keyed(u8, u8),
    Reconfigure(Params),
}

#[derive(Arbitrary, Debug)]
struct Input {
    params: Params,
    start: SmallStep,
    ops: Vec<Op>,
}

/// A request size: mostly within a small burst, sometimes past it.
fn cells(n: u8, burst: u32) -> u32 {
    match n % 8 {
        0 => 0,
        7 => burst.saturating_add(n as u32 / 8),
        k => k as u32,
    }
}

fuzz_target!(|inp: Input| {
    let cfg = config(&inp.params);
    let clock = MockClock::new();
    let Ok((mut m, s, mut km, ks)) = build(cfg, &clock) else {
        return;
    };
    let g = m.gcra();
    let (mut t, mut burst) = (g.emission_interval_nanos() as u128, g.burst());
    assert!(t > 0 && burst > 0);
    // Cells are counted from the last change of quota; `base` is the earliest instant used
    // since (nanoseconds; a clock stepped back lowers it): each admission adds T to a TAT that
    // never falls, so k cells since need (k - burst) T <= max_now - base.
    let mut base: u128 = 0;
    let mut changed = false;
    let mut per_key: Vec<Machine> = (0..KEYS).map(|_| Machine::new(cfg).unwrap()).collect();
    let mut key_taken = [0u128; KEYS as usize];

    let mut now = Instant::ZERO + inp.start.0;
    let mut max_now = now;
    let mut stepped_back = false;
    let mut taken: u128 = 0;

    for op in inp.ops.iter().take(MAX_OPS) {
        match op {
            Op::Advance(d) => now = now + d.0,
            Op::AdvanceHuge(d) => now = now + d.0,
            Op::Back(d) => {
                let earlier = now - d.0;
                stepped_back |= earlier < now;
                now = earlier;
            }
            Op::Check(n) => {
                clock.set(now);
                let n = cells(*n, burst);
                let before = m.clone();
                let a = m.try_acquire_n(n, now);
                let b = s.try_acquire_n(n);
                assert_eq!(a, b, "machine and shared form differ on check_n({n})");
                match a {
                    Ok(()) => taken += n as u128,
                    Err(e) => {
                        assert_eq!(m, before, "a rejection took something");
                        honest(&before, n, now, e);
                    }
                }
            }
            Op::CheckOne => {
                clock.set(now);
                let before = m.clone();
                let a = m.try_acquire(now);
                let b = s.try_acquire();
                assert_eq!(a, b, "machine and shared form differ on check()");
                match a {
                    Ok(()) => taken += 1,
                    Err(e) => {
                        assert_eq!(m, before, "a rejection took something");
                        honest(&before, 1, now, Denied::RateLimited(e));
                    }
                }
            }
            Op::Reconfigure(p) => {
                let new = config(p);
                let before = (m.clone(), s.tat());
                let a = m.reconfigure(new);
                let b = s.reconfigure(new);
                let c = km.reconfigure(new);
                let d = ks.reconfigure(new);
                let ones: Vec<_> = per_key.iter_mut().map(|one| one.reconfigure(new)).collect();
                assert!(
                    a == b && b == c && c == d,
                    "reconfigure answers differ: {a:?} {b:?} {c:?} {d:?}"
                );
                assert!(ones.iter().all(|o| *o == a));
                assert_eq!(a, new.gcra().map(|_| ()));
                // The theoretical arrival time is kept either way.
                assert_eq!(m.tat(), before.0.tat());
                assert_eq!(s.tat(), before.1);
                match a {
                    Ok(()) => {
                        let g = m.gcra();
                        (t, burst) = (g.emission_interval_nanos() as u128, g.burst());
                        taken = 0;
                        key_taken = [0; KEYS as usize];
                        base = now.as_nanos() as u128;
                        changed = true;
                    }
                    Err(_) => assert_eq!(m, before.0, "a refused change changed the machine"),
                }
            }
            Op::Keyed(k, n) => {
                clock.set(now);
                let k = k % KEYS;
                let n = cells(*n, burst);
                let a = km.try_acquire_n(&k, n, now);
                let b = ks.try_acquire_n(&k, n);
                assert_eq!(a, b, "keyed machine and keyed shared form differ");
                if let Ok(()) = a {
                    key_taken[k as usize] += n as u128;
                }
                let one = per_key[k as usize].try_acquire_n(n, now);
                if km.lossy_evictions() == 0 && !stepped_back {
                    assert_eq!(
                        a, one,
                        "keyed limiter differs from its own machine for key {k}"
                    );
                }
                let saturated = max_now.max(now).as_nanos() as u128 + (burst as u128 + 1) * t
                    >= u64::MAX as u128;
                if km.lossy_evictions() == 0 && !(saturated && changed) {
                    // Even a clock that steps back should never let a key past its rate.
                    let bound = burst as u128
                        + (max_now.max(now).as_nanos() as u128).saturating_sub(base) / t;
                    assert!(
                        key_taken[k as usize] <= bound,
                        "key {k}: {} cells admitted by {max_now:?}, at most {bound}",
                        key_taken[k as usize]
                    );
                }
                assert!(km.len() <= TABLE);
                assert_eq!(km.lossy_evictions(), ks.lossy_evictions());
                assert_eq!(km.available(&k, now), ks.available(&k));
            }
        }
        max_now = max_now.max(now);
        if changed {
            base = base.min(now.as_nanos() as u128);
        }
        clock.set(now);
        assert_eq!(m.tat(), s.tat(), "tat");
        assert_eq!(m.available(now), s.available(), "available");
        assert!(m.available(now) <= burst);
        // Never more than the burst plus what the elapsed time refilled.
        let bound = burst as u128 + (max_now.as_nanos() as u128).saturating_sub(base) / t;
        // At the end of the clock's range the TAT saturates at `Instant::MAX` and every check
        // there passes: only the whole-run bound (huge by then) speaks for it.
        let saturated = max_now.as_nanos() as u128 + (burst as u128 + 1) * t >= u64::MAX as u128;
        assert!(
            taken <= bound || (saturated && changed),
            "{taken} cells admitted by {max_now:?}, at most {bound} (T = {t} ns, burst {burst})"
        );
    }
});

/// A rejection at `now` of `n` cells by a machine in state `m`: typed, consistent, honest.
fn honest(m: &Machine, n: u32, now: Instant, e: Denied) {
    let _ = e.to_string();
    match e {
        Denied::InsufficientCapacity(c) => {
            assert!(n > m.gcra().burst());
            assert_eq!((c.requested, c.burst), (n, m.gcra().burst()));
            assert_eq!(e.retry_at(), None);
        }
        Denied::RateLimited(r) => {
            assert!(n <= m.gcra().burst());
            assert_eq!(e.retry_at(), Some(r.retry_at));
            // `Instant::MAX` is the documented answer when the request would pass the end
            // of the clock's range; otherwise the instant is strictly later than now.
            assert!(
                r.retry_at > now || r.retry_at == Instant::MAX,
                "retry_at {:?} not after {now:?}",
                r.retry_at
            );
            assert_eq!(r.wait_time_from(now), r.retry_at - now);
            if r.retry_at != Instant::MAX {
                // `Instant::MAX` stands for "past the end of the clock": nothing to promise.
                let mut again = m.clone();
                assert_eq!(
                    again.try_acquire_n(n, r.retry_at),
                    Ok(()),
                    "retry_at {:?} dishonest for {n} cells",
                    r.retry_at
                );
            }
        }
    }
}
