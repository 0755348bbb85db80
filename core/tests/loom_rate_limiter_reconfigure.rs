//! loom checks of changing a shared rate limiter's quota at run time, through `&self`, while
//! calls are in flight (issue 15, item 12). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p bulwark --release --test loom_rate_limiter_reconfigure`.
#![cfg(loom)]

use bulwark::rate_limiter::{Config, ConfigError, Quota, RateLimiter};
use bulwark::{Clock, Instant};
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;

/// Time stands still at zero: every admission below is a burst.
struct Frozen;
impl Clock for Frozen {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}

const S: u64 = 1_000_000_000;

/// 1 s a token, burst 2 (a 2 s bucket).
fn old() -> Config {
    Config::with_period(Duration::from_secs(1)).burst(2)
}

/// 4 s a token, burst 1 (a 4 s bucket).
fn new() -> Config {
    Config::with_period(Duration::from_secs(4)).burst(1)
}

/// Calls racing a change never pass beyond either quota: at one instant, from a full bucket,
/// at most 2 tokens (the larger burst), and the TAT accounts for each admission under the
/// quota that judged it. A torn read — the old period with the new bucket (1 s a token in a
/// 4 s bucket) — would pass a third call.
#[test]
fn calls_racing_a_change_never_exceed_either_quota() {
    loom::model(|| {
        let l = Arc::new(RateLimiter::new(old(), Frozen).unwrap());
        let caller = {
            let l = l.clone();
            thread::spawn(move || (0..3).filter(|_| l.try_acquire().is_ok()).count())
        };
        l.reconfigure(new()).unwrap();
        let admitted = caller.join().unwrap();
        let tat = l.tat().as_nanos();
        match admitted {
            // Both under the old quota (the new one admits nothing after them).
            2 => assert_eq!(tat, 2 * S),
            // One under the old quota (then the new one refuses), or one under the new.
            1 => assert!(tat == S || tat == 4 * S, "tat {tat}"),
            n => panic!("{n} admitted (tat {tat})"),
        }
        assert_eq!(l.config(), new());
    });
}

/// Two changes at once: one is applied and the other says `Busy` (nothing changed), or both
/// are applied one after the other; a reader in between only ever sees a whole quota.
#[test]
fn concurrent_changes_are_whole_or_busy() {
    loom::model(|| {
        let l = Arc::new(RateLimiter::new(old(), Frozen).unwrap());
        let writer = {
            let l = l.clone();
            thread::spawn(move || l.reconfigure(new()))
        };
        let reader = {
            let l = l.clone();
            thread::spawn(move || l.quota())
        };
        let third = Config::with_period(Duration::from_secs(3)).burst(3);
        let mine = l.reconfigure(third);
        let theirs = writer.join().unwrap();
        let seen = reader.join().unwrap();
        let q = |c: Config| c.gcra().unwrap().quota();
        let whole: [Quota; 3] = [q(old()), q(new()), q(third)];
        assert!(whole.contains(&seen), "torn quota {seen:?}");
        assert!(mine.is_ok() || theirs.is_ok(), "one change always lands");
        for r in [mine, theirs] {
            assert!(matches!(r, Ok(()) | Err(ConfigError::Busy)), "{r:?}");
        }
        let last = l.config();
        assert!(last == new() || last == third, "{last:?}");
    });
}

/// Two changes in a row reuse the first slot while a call may still be reading it: the call
/// still judges by one whole quota. Slot 0 goes from 1 s × 2 (a 2 s bucket) to 2 s × 2 (a 4 s
/// bucket). Judged whole, the calls can only end in the (admitted, TAT) pairs listed (two by
/// the first quota fill 2 s of the 4 s bucket, which then has one 2 s token free); a torn
/// read of the old period with the new bucket (a 1 s token in a 4 s bucket) after two calls
/// by the first quota would end at (3, 3 s).
#[test]
fn a_slot_reused_under_a_reader_is_never_read_torn() {
    loom::model(|| {
        let l = Arc::new(RateLimiter::new(old(), Frozen).unwrap());
        let caller = {
            let l = l.clone();
            thread::spawn(move || (0..4).filter(|_| l.try_acquire().is_ok()).count())
        };
        l.reconfigure(new()).unwrap();
        l.reconfigure(Config::with_period(Duration::from_secs(2)).burst(2))
            .unwrap();
        let admitted = caller.join().unwrap();
        let end = (admitted, l.tat().as_nanos() / S);
        let whole = [(1, 1), (1, 4), (2, 2), (2, 3), (2, 4), (3, 4)];
        assert!(whole.contains(&end), "(admitted, TAT in s) = {end:?}");
    });
}
