//! Unit tests of the pool on the mock clock.

extern crate std;

use core::cell::Cell;
use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::rc::Rc;

use super::*;
use crate::bulkhead::TrySemaphore;
use crate::mock::{self, MockSleep};
use crate::{Clock, Instant, MockClock};

/// Shared test counters (an `Rc`, so connections can count themselves without borrowing the
/// manager that lives inside the pool).
#[derive(Default)]
struct Counts {
    next_id: Cell<u32>,
    live: Cell<i32>,
    cancelled: Cell<u32>,
    fail: Cell<bool>,
    valid: Cell<bool>,
    broken: Cell<bool>,
}

/// A connection that counts itself live while it exists.
struct Conn {
    id: u32,
    counts: Rc<Counts>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.counts.live.set(self.counts.live.get() - 1);
    }
}

struct TestManager<'c> {
    clock: &'c MockClock,
    delay: Duration,
    counts: Rc<Counts>,
}

struct Connect<'c> {
    counts: Rc<Counts>,
    sleep: MockSleep<&'c MockClock<32>, 32>,
    finished: bool,
}

impl Future for Connect<'_> {
    type Output = Result<Conn, &'static str>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.finished = true;
        let c = &self.counts;
        if c.fail.get() {
            return Poll::Ready(Err("refused"));
        }
        c.next_id.set(c.next_id.get() + 1);
        c.live.set(c.live.get() + 1);
        Poll::Ready(Ok(Conn {
            id: c.next_id.get(),
            counts: c.clone(),
        }))
    }
}

impl Drop for Connect<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.counts.cancelled.set(self.counts.cancelled.get() + 1);
        }
    }
}

impl<'c> Manager for TestManager<'c> {
    type Connection = Conn;
    type Error = &'static str;
    type Connect = Connect<'c>;

    fn connect(&self) -> Connect<'c> {
        Connect {
            counts: self.counts.clone(),
            sleep: self.clock.sleep(self.delay),
            finished: false,
        }
    }

    fn is_valid(&self, _: &mut Conn) -> bool {
        self.counts.valid.get()
    }

    fn has_broken(&self, _: &mut Conn) -> bool {
        self.counts.broken.get()
    }
}

type TestPool<'c, const N: usize> = Pool<TestManager<'c>, QueueSemaphore<4>, &'c MockClock, N>;

fn pool<const N: usize>(
    clock: &MockClock,
    delay_ms: u64,
    cfg: Config,
) -> (TestPool<'_, N>, Rc<Counts>) {
    let counts = Rc::new(Counts::default());
    counts.valid.set(true);
    let m = TestManager {
        clock,
        delay: Duration::from_millis(delay_ms),
        counts: counts.clone(),
    };
    (Pool::queued(m, cfg, clock), counts)
}

fn ready<T>(p: Poll<T>) -> T {
    match p {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("expected Ready"),
    }
}

#[test]
fn sequential_acquires_reuse_one_connection() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<4>(&clock, 5, Config::new());
    mock::run(&clock, async {
        for _ in 0..50 {
            let c = pool.acquire().await.unwrap();
            assert_eq!(c.id, 1);
        }
    })
    .unwrap();
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!((tot.created, tot.discarded, m.idle, m.in_use), (1, 0, 1, 0));
    assert_eq!(counts.live.get(), 1);
    assert_eq!(
        clock.now(),
        Instant::from_millis(5),
        "only the first acquire connected"
    );
}

#[test]
fn held_connections_force_new_ones_up_to_n_then_waiting() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<2>(&clock, 0, Config::new().timeout(Duration::from_secs(1)));
    let cx = &mut Context::from_waker(Waker::noop());
    let a = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    let b = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    assert_eq!((a.id, b.id), (1, 2));
    let mut third = pin!(pool.acquire());
    assert!(third.as_mut().poll(cx).is_pending());
    clock.advance(Duration::from_millis(300));
    assert!(third.as_mut().poll(cx).is_pending());
    drop(b);
    let c = ready(third.as_mut().poll(cx)).unwrap();
    assert_eq!(c.id, 2, "the returned connection is handed to the waiter");
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!((tot.created, tot.waited, m.in_use, m.idle), (2, 1, 2, 0));
    assert_eq!(counts.live.get(), 2);
    drop((a, c));
    assert_eq!(pool.semaphore().available(), 2);
}

#[test]
fn broken_connections_are_closed_not_reused() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<2>(&clock, 0, Config::new());
    let mut c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    c.mark_broken();
    drop(c);
    assert_eq!(counts.live.get(), 0);
    let c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    assert_eq!(c.id, 2);
    c.discard();
    assert_eq!(counts.live.get(), 0);
    // has_broken on return
    counts.broken.set(true);
    drop(mock::run(&clock, pool.acquire()).unwrap().unwrap());
    assert_eq!(counts.live.get(), 0);
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!((tot.created, tot.discarded, m.idle, m.in_use), (3, 3, 0, 0));
}

#[test]
fn invalid_idle_connections_are_replaced_on_checkout() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<2>(&clock, 0, Config::new());
    drop(mock::run(&clock, pool.acquire()).unwrap().unwrap());
    counts.valid.set(false);
    assert_eq!(pool.try_acquire().err(), Some(TryAcquireError::NoIdle));
    assert_eq!(counts.live.get(), 0, "the invalid one was closed");
    let c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    assert_eq!(c.id, 2);
    assert_eq!(pool.totals().discarded, 1);
}

#[test]
fn max_lifetime_and_max_idle_expire_exactly() {
    let clock = MockClock::new();
    let cfg = Config::new()
        .max_lifetime(Duration::from_secs(100))
        .max_idle(Duration::from_secs(10));
    let (pool, counts) = pool::<1>(&clock, 0, cfg);
    drop(mock::run(&clock, pool.acquire()).unwrap().unwrap()); // id 1 at t=0
    clock.set(Instant::from_nanos(9_999_999_999));
    drop(pool.try_acquire().unwrap()); // idle 9.999 s: still fresh; returned at that instant
    clock.advance(Duration::from_secs(10)); // idle exactly 10 s: stale
    assert_eq!(pool.try_acquire().err(), Some(TryAcquireError::NoIdle));
    assert_eq!(counts.live.get(), 0);
    // Lifetime: a connection returned after 100 s of life is closed on return.
    clock.set(Instant::from_secs(1_000));
    let c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    assert_eq!(c.created_at(), Instant::from_secs(1_000));
    clock.set(Instant::from_secs(1_100));
    drop(c);
    assert_eq!((pool.metrics().idle, counts.live.get()), (0, 0));
    assert_eq!(pool.totals().discarded, 2);
}

#[test]
fn cancelled_connect_frees_the_slot_and_drops_the_attempt() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<1>(&clock, 50, Config::new());
    let cx = &mut Context::from_waker(Waker::noop());
    {
        let mut fut = pin!(pool.acquire());
        assert!(fut.as_mut().poll(cx).is_pending());
        assert_eq!(
            pool.semaphore().available(),
            0,
            "the connect holds the slot"
        );
    }
    assert_eq!(counts.cancelled.get(), 1);
    assert_eq!(pool.semaphore().available(), 1);
    assert_eq!(counts.live.get(), 0);
    let c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    assert_eq!(c.id, 1);
}

#[test]
fn connect_error_is_typed_and_frees_the_slot() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<1>(&clock, 1, Config::new());
    counts.fail.set(true);
    let r = mock::run(&clock, pool.acquire()).unwrap();
    assert_eq!(r.map(|c| c.id).unwrap_err(), Error::Connect("refused"));
    assert_eq!(pool.semaphore().available(), 1);
    assert_eq!(pool.totals().connect_failed, 1);
    counts.fail.set(false);
    assert!(mock::run(&clock, pool.acquire()).unwrap().is_ok());
}

#[test]
fn slow_connect_times_out_at_the_deadline() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<1>(
        &clock,
        500,
        Config::new().timeout(Duration::from_millis(200)),
    );
    let (r, at) = mock::run(&clock, async {
        (pool.acquire().await.map(|c| c.id), clock.now())
    })
    .unwrap();
    assert_eq!(r, Err(Error::Timeout));
    assert_eq!(at, Instant::from_millis(200));
    assert_eq!(counts.cancelled.get(), 1);
    assert_eq!(pool.semaphore().available(), 1);
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!((tot.timed_out, tot.created, m.in_use), (1, 0, 0));
}

#[test]
fn dropped_waiter_leaves_the_queue() {
    let clock = MockClock::new();
    let (pool, _counts) = pool::<1>(&clock, 0, Config::new());
    let cx = &mut Context::from_waker(Waker::noop());
    let held = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    {
        let mut w = pin!(pool.acquire());
        assert!(w.as_mut().poll(cx).is_pending());
        assert_eq!(pool.semaphore().waiting(), 1);
    }
    assert_eq!(pool.semaphore().waiting(), 0);
    drop(held);
    assert_eq!(pool.semaphore().available(), 1);
}

#[test]
fn full_wait_queue_is_typed() {
    let clock = MockClock::new();
    let counts = Rc::new(Counts::default());
    let m = TestManager {
        clock: &clock,
        delay: Duration::ZERO,
        counts: counts.clone(),
    };
    let pool: Pool<_, QueueSemaphore<1>, _, 1> = Pool::queued(m, Config::new(), &clock);
    let cx = &mut Context::from_waker(Waker::noop());
    let _held = mock::run(&clock, pool.acquire()).unwrap().unwrap();
    let mut w1 = pin!(pool.acquire());
    assert!(w1.as_mut().poll(cx).is_pending());
    let mut w2 = pin!(pool.acquire());
    assert_eq!(
        ready(w2.as_mut().poll(cx)).map(|c| c.id).unwrap_err(),
        Error::QueueFull
    );
}

#[test]
fn panicking_user_code_never_leaks_a_slot() {
    struct Panicky;
    impl Manager for Panicky {
        type Connection = u8;
        type Error = ();
        type Connect = core::future::Ready<Result<u8, ()>>;
        fn connect(&self) -> Self::Connect {
            core::future::ready(Ok(1))
        }
        fn is_valid(&self, c: &mut u8) -> bool {
            assert!(*c != 2, "validation panics");
            true
        }
        fn has_broken(&self, c: &mut u8) -> bool {
            assert!(*c != 3, "has_broken panics");
            false
        }
    }
    let clock = MockClock::new();
    let pool: Pool<Panicky, QueueSemaphore<1>, _, 1> = Pool::queued(Panicky, Config::new(), &clock);
    let caught = |f: &dyn Fn()| std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).is_err();
    // A caller panics while holding the connection: the guard still returns it.
    assert!(caught(&|| {
        let _c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
        panic!("user code");
    }));
    assert_eq!((pool.metrics().idle, pool.semaphore().available()), (1, 1));
    // has_broken panics in the guard's drop: the connection is closed, the slot freed.
    assert!(caught(&|| {
        let mut c = pool.try_acquire().unwrap();
        *c = 3;
    }));
    assert_eq!(
        (
            pool.metrics().idle,
            pool.metrics().in_use,
            pool.semaphore().available()
        ),
        (0, 0, 1)
    );
    // is_valid panics during checkout: the slot is freed by the unwinding future.
    {
        let mut c = mock::run(&clock, pool.acquire()).unwrap().unwrap();
        *c = 2;
    }
    assert!(caught(&|| drop(mock::run(&clock, pool.acquire()))));
    assert_eq!(pool.semaphore().available(), 1);
    assert!(mock::run(&clock, pool.acquire()).unwrap().is_ok());
}

#[test]
fn zero_timeout_never_waits() {
    let clock = MockClock::new();
    let (pool, _counts) = pool::<1>(&clock, 0, Config::new().timeout(Duration::ZERO));
    let held = mock::run(&clock, pool.acquire()).unwrap().unwrap(); // instant connect still works
    let r = mock::run(&clock, pool.acquire()).unwrap();
    assert_eq!(r.map(|c| c.id).unwrap_err(), Error::Timeout);
    assert_eq!(clock.now(), Instant::ZERO);
    drop(held);
}

#[test]
fn reap_closes_stale_idle_connections() {
    let clock = MockClock::new();
    let (pool, counts) = pool::<3>(
        &clock,
        0,
        Config::new().max_lifetime(Duration::from_secs(5)),
    );
    let (a, b) = mock::run(&clock, mock::join(pool.acquire(), pool.acquire())).unwrap();
    drop((a.unwrap(), b.unwrap()));
    assert_eq!((pool.metrics().idle, counts.live.get()), (2, 2));
    clock.advance(Duration::from_secs(5));
    assert_eq!(pool.reap(), 2);
    assert_eq!((pool.metrics().idle, counts.live.get()), (0, 0));
}

/// A semaphore with no permits at all (a runtime adapter's semaphore built with 0).
struct NoPermits;

impl TrySemaphore for NoPermits {
    fn try_take(&self) -> bool {
        false
    }
    fn give_back(&self) {}
    fn available(&self) -> usize {
        0
    }
    fn capacity(&self) -> usize {
        0
    }
}

#[test]
fn pool_over_a_semaphore_with_no_permits_is_refused_not_always_exhausted() {
    let clock = MockClock::new();
    let m = TestManager {
        clock: &clock,
        delay: Duration::ZERO,
        counts: Rc::new(Counts::default()),
    };
    let pool = Pool::<_, _, _, 4>::with_semaphore(m, NoPermits, Config::new(), &clock);
    // Regression (issue 11, item 12): accepted, it answered every acquire with a timeout.
    let err = pool.err();
    assert!(
        err.is_some(),
        "accepted: every acquire would wait out its timeout"
    );
    assert!(matches!(err, Some(ConfigError::NoPermits)));
}
