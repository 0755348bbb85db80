//! Waiting for tokens: [`RateLimiter::acquire`].

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::config::{Config, Waiting};
use super::error::Denied;
use super::sharded::{ShardHint, ShardReservation, ShardedRateLimiter};
use super::shared::RateLimiter;
use super::state::Reservation;
use crate::rng::jitter;
use crate::sync::Ordering;
use crate::time::{Instant, Sleep, duration_to_nanos};

/// What [`Acquire`] waits on: [`RateLimiter`] and [`ShardedRateLimiter`] (sealed: its
/// methods are the limiters' own, hidden).
///
/// ```
/// use bulwark::rate_limiter::{Bucket, Config, RateLimiter, ShardedRateLimiter};
/// use bulwark::MockClock;
/// fn waits<B: Bucket<C>, C: bulwark::Sleep>(_: &B) {}
/// let clock = MockClock::new();
/// waits(&RateLimiter::new(Config::per_second(2), &clock).unwrap());
/// waits(&ShardedRateLimiter::<_, 2>::new(Config::per_second(2), &clock).unwrap());
/// ```
pub trait Bucket<C: Sleep>: sealed::Sealed {
    /// Tokens taken ahead of their instant ([`Waiting::Reserve`]).
    type Reserved: Copy;
    #[doc(hidden)]
    fn bucket_clock(&self) -> &C;
    #[doc(hidden)]
    fn bucket_config(&self) -> Config;
    #[doc(hidden)]
    fn take_at(&self, n: u32, now: Instant) -> Result<(), Denied>;
    #[doc(hidden)]
    fn reserve_at(&self, n: u32, now: Instant, until: Instant) -> Result<Self::Reserved, Denied>;
    #[doc(hidden)]
    fn due(r: &Self::Reserved) -> Instant;
    #[doc(hidden)]
    fn hand_back(&self, r: Self::Reserved);
    #[doc(hidden)]
    fn next_salt(&self) -> u64;
}

mod sealed {
    pub trait Sealed {}
    impl<C> Sealed for super::RateLimiter<C> {}
    impl<C, const N: usize, H> Sealed for super::ShardedRateLimiter<C, N, H> {}
}

impl<C: Sleep> Bucket<C> for RateLimiter<C> {
    type Reserved = Reservation;
    fn bucket_clock(&self) -> &C {
        &self.clock
    }
    fn bucket_config(&self) -> Config {
        self.config()
    }
    fn take_at(&self, n: u32, now: Instant) -> Result<(), Denied> {
        self.try_acquire_at(n, now)
    }
    fn reserve_at(&self, n: u32, now: Instant, until: Instant) -> Result<Reservation, Denied> {
        RateLimiter::reserve_at(self, n, now, until)
    }
    fn due(r: &Reservation) -> Instant {
        r.due()
    }
    fn hand_back(&self, r: Reservation) {
        self.cancel(r);
    }
    fn next_salt(&self) -> u64 {
        // Relaxed: the salt only spreads jitter; no data is published with it.
        self.salt.fetch_add(1, Ordering::Relaxed)
    }
}

impl<C: Sleep, const N: usize, H: ShardHint> Bucket<C> for ShardedRateLimiter<C, N, H> {
    type Reserved = ShardReservation;
    fn bucket_clock(&self) -> &C {
        self.clock()
    }
    fn bucket_config(&self) -> Config {
        self.config()
    }
    fn take_at(&self, n: u32, now: Instant) -> Result<(), Denied> {
        self.try_acquire_at(n, now)
    }
    fn reserve_at(&self, n: u32, now: Instant, until: Instant) -> Result<ShardReservation, Denied> {
        ShardedRateLimiter::reserve_at(self, n, now, until)
    }
    fn due(r: &ShardReservation) -> Instant {
        r.due()
    }
    fn hand_back(&self, r: ShardReservation) {
        self.cancel(r);
    }
    fn next_salt(&self) -> u64 {
        ShardedRateLimiter::next_salt(self)
    }
}

impl<C: Sleep, const N: usize, H: ShardHint> ShardedRateLimiter<C, N, H> {
    /// Takes `n` tokens from one shard, waiting for them up to the configured
    /// [`max_wait`](super::Config::max_wait): as [`RateLimiter::acquire`], each attempt
    /// trying the caller's shard first, then the others, and sleeping until the earliest
    /// instant one of them has the tokens.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::acquire`]; `n` above a shard's burst is
    /// [`Denied::InsufficientCapacity`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, ShardedRateLimiter};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    ///
    /// let clock = MockClock::new();
    /// let cfg = Config::per_second(2).max_wait(Duration::from_secs(2));
    /// let l = ShardedRateLimiter::<_, 2>::new(cfg, &clock).unwrap();
    /// mock::run(&clock, async {
    ///     l.acquire(1).await.unwrap(); // at once, from one shard
    ///     l.acquire(1).await.unwrap(); // at once, from the other
    ///     l.acquire(1).await.unwrap(); // each shard refills a token a second
    ///     assert_eq!(clock.now(), Instant::from_secs(1));
    /// })
    /// .unwrap();
    /// ```
    pub fn acquire(&self, n: u32) -> Acquire<&Self, C> {
        Acquire::new(self, n)
    }
}

impl<C: Sleep> RateLimiter<C> {
    /// Takes `n` tokens, waiting for them up to the configured
    /// [`max_wait`](super::Config::max_wait).
    ///
    /// When tokens are short, the future sleeps (through the clock's [`Sleep`]) until the
    /// exact instant they are due plus a seeded jitter in `[0, jitter]`, never past the max
    /// wait, then tries again. If the tokens are due only after the max wait the future fails
    /// at once with that instant: waiting could not help. No timer or task is involved
    /// beyond the one sleep. With [`Waiting::Reserve`](super::Waiting::Reserve) the tokens are
    /// taken at the first poll for the instant they are due, and the future sleeps once,
    /// until then: waiters are served in order of arrival.
    ///
    /// # Errors
    ///
    /// [`Denied::RateLimited`] with the instant the tokens would be free, when that is past
    /// the max wait (measured from the first poll); [`Denied::InsufficientCapacity`] when `n`
    /// is above the burst.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops its sleep; it holds no tokens until it completes with `Ok`
    /// ([`Waiting::Retry`](super::Waiting::Retry)). A reserving waiter dropped before its
    /// instant hands its tokens back if no caller has taken tokens since
    /// ([`RateLimiter::cancel`]); otherwise they stay spent.
    ///
    /// # Examples
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    ///
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(1).max_wait(Duration::from_secs(2)), &clock).unwrap();
    /// mock::run(&clock, async {
    ///     l.acquire(1).await.unwrap();          // at once
    ///     l.acquire(1).await.unwrap();          // sleeps 1 s
    ///     assert_eq!(clock.now(), Instant::from_secs(1));
    /// })
    /// .unwrap();
    /// ```
    pub fn acquire(&self, n: u32) -> Acquire<&Self, C> {
        Acquire::new(self, n)
    }
}

pin_project! {
    /// The future of [`RateLimiter::acquire`].
    ///
    /// ```
    /// use bulwark::rate_limiter::{Config, RateLimiter};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let l = RateLimiter::new(Config::per_second(1), &clock).unwrap();
    /// let fut = l.acquire(1);
    /// fn is_send<T: Send>(_: &T) {}
    /// is_send(&fut);
    /// assert!(mock::run(&clock, fut).unwrap().is_ok());
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Acquire<R, C>
    where
        R: Deref,
        R::Target: Bucket<C>,
        C: Sleep,
    {
        limiter: R,
        n: u32,
        deadline: Option<Instant>,
        salt: u64,
        attempt: u64,
        // The tokens taken ahead of their instant, until it comes (`Waiting::Reserve`).
        reserved: Option<<R::Target as Bucket<C>>::Reserved>,
        #[pin]
        sleep: Option<C::Sleep>,
    }

    impl<R, C> PinnedDrop for Acquire<R, C>
    where
        R: Deref,
        R::Target: Bucket<C>,
        C: Sleep,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(r) = this.reserved.take() {
                this.limiter.hand_back(r);
            }
        }
    }
}

impl<R, C> Acquire<R, C>
where
    R: Deref,
    R::Target: Bucket<C>,
    C: Sleep,
{
    /// A wait for `n` tokens of the limiter `limiter` points to: what
    /// [`RateLimiter::acquire`] returns, for any owner of the limiter (an `Arc`, a
    /// `&'static`), so that the future can be `'static`.
    ///
    /// ```
    /// use bulwark::rate_limiter::{Acquire, Config, RateLimiter};
    /// use bulwark::{Clock, Instant, MockClock, mock};
    /// use core::time::Duration;
    /// use std::sync::Arc;
    /// let clock = MockClock::new();
    /// let l = Arc::new(RateLimiter::new(Config::per_second(1).max_wait(Duration::from_secs(5)), &clock).unwrap());
    /// mock::run(&clock, Acquire::new(Arc::clone(&l), 1)).unwrap().unwrap(); // the burst: at once
    /// mock::run(&clock, Acquire::new(Arc::clone(&l), 1)).unwrap().unwrap(); // the next token
    /// assert_eq!(clock.now(), Instant::from_secs(1));
    /// ```
    pub fn new(limiter: R, n: u32) -> Self {
        Acquire {
            limiter,
            n,
            deadline: None,
            salt: 0,
            attempt: 0,
            reserved: None,
            sleep: None,
        }
    }
}

impl<R, C> Future for Acquire<R, C>
where
    R: Deref,
    R::Target: Bucket<C>,
    C: Sleep,
{
    type Output = Result<(), Denied>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limiter: &R::Target = this.limiter;
        loop {
            if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
                core::task::ready!(sleep.poll(cx));
                this.sleep.set(None);
                if this.reserved.take().is_some() {
                    return Poll::Ready(Ok(())); // the reserved instant has come
                }
            }
            let now = limiter.bucket_clock().now();
            // The settings in force now: a change since the last attempt applies to this one.
            let cfg = limiter.bucket_config();
            if cfg.waiting_mode() == Waiting::Reserve {
                let until = now.saturating_add(cfg.max_wait_time());
                let r = match limiter.reserve_at(*this.n, now, until) {
                    Ok(r) => r,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                let due = <R::Target as Bucket<C>>::due(&r);
                if due <= now {
                    return Poll::Ready(Ok(()));
                }
                *this.reserved = Some(r);
                this.sleep
                    .set(Some(limiter.bucket_clock().sleep_until(due)));
                continue;
            }
            let deadline = match *this.deadline {
                Some(d) => d,
                None => {
                    let d = now.saturating_add(cfg.max_wait_time());
                    *this.deadline = Some(d);
                    // The salt of this call's jitter: with an explicit seed, the limiter's
                    // count of waiting calls (reproducible); without one, a fresh seed.
                    *this.salt = match cfg.jitter_seed() {
                        Some(_) => limiter.next_salt(),
                        None if cfg.jitter_max().is_zero() => 0,
                        None => crate::rng::next_seed(),
                    };
                    d
                }
            };
            let limited = match limiter.take_at(*this.n, now) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(Denied::RateLimited(limited)) => limited,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let retry_at = limited.retry_at;
            if retry_at > deadline {
                return Poll::Ready(Err(Denied::RateLimited(limited)));
            }
            let j = jitter(
                cfg.jitter_seed().unwrap_or(0),
                this.salt.rotate_left(32) ^ *this.attempt,
                duration_to_nanos(cfg.jitter_max()),
            );
            *this.attempt = this.attempt.wrapping_add(1);
            let wake = Instant::from_nanos(retry_at.as_nanos().saturating_add(j)).min(deadline);
            this.sleep
                .set(Some(limiter.bucket_clock().sleep_until(wake)));
        }
    }
}

impl<R, C> fmt::Debug for Acquire<R, C>
where
    R: Deref,
    R::Target: Bucket<C>,
    C: Sleep,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("n", &self.n)
            .field("deadline", &self.deadline)
            .field("sleeping", &self.sleep.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::Config;
    use super::*;
    use crate::{Clock, MockClock, mock};
    use core::time::Duration;

    #[test]
    fn waits_and_gets_tokens_in_time() {
        let clock = MockClock::new();
        let l = RateLimiter::new(
            Config::per_second(2)
                .burst(1)
                .max_wait(Duration::from_millis(500)),
            &clock,
        )
        .unwrap();
        let at = mock::run(&clock, async {
            l.acquire(1).await.unwrap();
            l.acquire(1).await.unwrap(); // due at exactly 500 ms = the max wait
            clock.now()
        })
        .unwrap();
        assert_eq!(at, Instant::from_millis(500));
    }

    #[test]
    fn fails_at_once_when_due_after_max_wait() {
        let clock = MockClock::new();
        let l = RateLimiter::new(
            Config::per_second(2)
                .burst(1)
                .max_wait(Duration::from_millis(499)),
            &clock,
        )
        .unwrap();
        let (r, at) = mock::run(&clock, async {
            l.acquire(1).await.unwrap();
            (l.acquire(1).await, clock.now())
        })
        .unwrap();
        assert_eq!(
            r,
            Err(Denied::RateLimited(
                super::super::RateLimited::new(Instant::from_millis(500), Instant::ZERO)
                    .with_quota(super::super::Quota {
                        burst: 1,
                        period: Duration::from_millis(500)
                    })
            ))
        );
        assert_eq!(at, Instant::ZERO, "no time wasted waiting");
        assert_eq!(l.available(), 0, "the failed wait took nothing");
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        let run_once = || {
            let clock = MockClock::new();
            let l = RateLimiter::new(
                Config::per_second(10)
                    .burst(1)
                    .max_wait(Duration::from_secs(1))
                    .jitter(Duration::from_millis(5))
                    .seed(42),
                &clock,
            )
            .unwrap();
            mock::run(&clock, async {
                l.acquire(1).await.unwrap();
                l.acquire(1).await.unwrap();
                clock.now()
            })
            .unwrap()
        };
        let a = run_once();
        assert!(a >= Instant::from_millis(100) && a <= Instant::from_millis(105));
        assert_eq!(a, run_once());
    }

    #[test]
    fn jitter_never_passes_the_deadline() {
        let clock = MockClock::new();
        let l = RateLimiter::new(
            Config::per_second(10)
                .burst(1)
                .max_wait(Duration::from_millis(100))
                .jitter(Duration::from_secs(3600)),
            &clock,
        )
        .unwrap();
        let at = mock::run(&clock, async {
            l.acquire(1).await.unwrap();
            l.acquire(1).await.unwrap();
            clock.now()
        })
        .unwrap();
        assert_eq!(at, Instant::from_millis(100));
    }

    #[test]
    fn insufficient_capacity_does_not_wait() {
        let clock = MockClock::new();
        let l = RateLimiter::new(
            Config::per_second(1).max_wait(Duration::from_secs(60)),
            &clock,
        )
        .unwrap();
        let r = mock::run(&clock, l.acquire(2)).unwrap();
        assert!(matches!(r, Err(Denied::InsufficientCapacity(_))));
        assert_eq!(clock.now(), Instant::ZERO);
    }

    /// resilience4j `RateLimiter.reservePermission`: a caller that may wait reserves the next
    /// free cycle; callers arriving together are served one per period, in arrival order,
    /// each woken once at its own instant.
    #[test]
    fn reserving_waiters_are_served_in_order_each_at_its_instant() {
        use super::super::Waiting;
        use core::task::Waker;
        extern crate std;
        use std::boxed::Box;
        let clock = MockClock::new();
        let cfg = Config::per_second(10)
            .burst(2)
            .max_wait(Duration::from_millis(300))
            .waiting(Waiting::Reserve);
        let l = RateLimiter::new(cfg, &clock).unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut w: [_; 5] = core::array::from_fn(|_| Box::pin(l.acquire(1)));
        // The burst of two at once, then 100, 200, 300 ms; a sixth would be due at 400 ms.
        assert!(w[0].as_mut().poll(cx).is_ready());
        assert!(w[1].as_mut().poll(cx).is_ready());
        for f in &mut w[2..] {
            assert!(f.as_mut().poll(cx).is_pending());
        }
        assert_eq!(clock.next_deadline(), Some(Instant::from_millis(100)));
        let late = mock::run(&clock, l.acquire(1)).unwrap();
        assert_eq!(
            late.unwrap_err().retry_at(),
            Some(Instant::from_millis(400)),
            "past the max wait: refused at once, nothing taken"
        );
        for (i, at) in [(2, 100), (3, 200), (4, 300)] {
            clock.set(Instant::from_millis(at - 1));
            assert!(w[i].as_mut().poll(cx).is_pending(), "waiter {i} early");
            clock.set(Instant::from_millis(at));
            assert!(w[i].as_mut().poll(cx).is_ready(), "waiter {i} at {at} ms");
        }
    }

    /// Issue 15 item 12: a waiter in flight judges against the quota in force when it next
    /// tries. Sleeping until 1 s (10 tokens of 1/s spent at 0), it wakes after the rate was
    /// cut to one per 4 s, burst 2 (an 8 s bucket owing 9 s: a token due at 6 s) and sleeps
    /// on; a change back before then lets it through at its next wake.
    #[test]
    fn a_waiter_in_flight_sees_the_new_quota() {
        use core::task::Waker;
        extern crate std;
        use std::boxed::Box;
        let clock = MockClock::new();
        let max_wait = Duration::from_secs(10);
        let l =
            RateLimiter::new(Config::per_second(1).burst(10).max_wait(max_wait), &clock).unwrap();
        l.try_acquire_n(10).unwrap(); // full again at 10 s; next token at 1 s
        let cx = &mut Context::from_waker(Waker::noop());
        let mut w = Box::pin(l.acquire(1));
        assert!(w.as_mut().poll(cx).is_pending());
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(1)));
        let slow = Config::with_period(Duration::from_secs(4))
            .burst(2)
            .max_wait(max_wait);
        l.reconfigure(slow).unwrap();
        clock.set(Instant::from_secs(1));
        assert!(
            w.as_mut().poll(cx).is_pending(),
            "the new quota refuses it at 1 s"
        );
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(6)));
        l.reconfigure(Config::per_second(1).burst(10).max_wait(max_wait))
            .unwrap();
        clock.set(Instant::from_secs(6));
        assert!(w.as_mut().poll(cx).is_ready());
        assert_eq!(l.tat(), Instant::from_secs(11));
    }

    /// A reserving waiter that gives up hands its tokens back when it is the last one to have
    /// taken any; behind a later reservation its tokens stay spent.
    #[test]
    fn dropped_reservation_is_handed_back_only_when_last() {
        use super::super::Waiting;
        use core::task::Waker;
        extern crate std;
        use std::boxed::Box;
        let clock = MockClock::new();
        let cfg = Config::per_second(1)
            .burst(1)
            .max_wait(Duration::from_secs(10))
            .waiting(Waiting::Reserve);
        let l = RateLimiter::new(cfg, &clock).unwrap();
        l.try_acquire().unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut first = Box::pin(l.acquire(1)); // due at 1 s
        let mut second = Box::pin(l.acquire(1)); // due at 2 s
        assert!(first.as_mut().poll(cx).is_pending());
        assert!(second.as_mut().poll(cx).is_pending());
        drop(first); // not the last: stays spent
        assert_eq!(l.tat(), Instant::from_secs(3));
        drop(second); // the last: handed back
        assert_eq!(l.tat(), Instant::from_secs(2));
        assert_eq!(
            l.try_acquire().unwrap_err().retry_at,
            Instant::from_secs(2),
            "the first waiter's token is still spent"
        );
    }
}
