//! The connection pool: checkout (try_acquire, acquire futures polled and dropped at random
//! points), return, mark broken, discard, reap, time moving, with a mock manager whose
//! connects succeed, fail or hang and whose connections go bad at random.
//!
//! Invariants, after every step:
//! * connections alive = idle + in use = created - discarded, and in use + idle <= N;
//! * in use = guards held; the semaphore's free permits + permits held (guards and futures
//!   that hold a slot) = N;
//! * after dropping every guard and future: nothing in use, every permit free; after dropping
//!   the pool: no connection alive.
#![no_main]

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use bulwark::bulkhead::TrySemaphore;
use bulwark::pool::{Config, Error, Manager, Pool, PooledConnection, QueueSemaphore};
use bulwark::{Instant, MockClock};
use bulwark_fuzz::{SmallStep, Span};
use libfuzzer_sys::fuzz_target;

const N: usize = 3;
const Q: usize = 2;
const MAX_OPS: usize = 256;
const MAX_FUTURES: usize = 8;

/// A connection that counts itself alive.
struct Conn {
    alive: Rc<Cell<i64>>,
    bad: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.alive.set(self.alive.get() - 1);
    }
}

#[derive(Clone, Copy, Debug, Arbitrary, PartialEq)]
enum Mode {
    Ok,
    Fail,
    Hang,
}

struct Mgr {
    alive: Rc<Cell<i64>>,
    /// Shared with the connect futures, which read it when polled.
    mode: Rc<Cell<Mode>>,
    /// New connections go bad (is_valid false / has_broken true).
    bad: Rc<Cell<bool>>,
}

/// A connect in flight: reads the manager's current mode each time it is polled (the future
/// owns handles to the manager's cells, not a borrow of the manager).
struct Connect {
    alive: Rc<Cell<i64>>,
    mode: Rc<Cell<Mode>>,
    bad: Rc<Cell<bool>>,
}

impl Future for Connect {
    type Output = Result<Conn, ()>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        let m = &*self;
        match m.mode.get() {
            Mode::Ok => {
                m.alive.set(m.alive.get() + 1);
                Poll::Ready(Ok(Conn {
                    alive: m.alive.clone(),
                    bad: m.bad.get(),
                }))
            }
            Mode::Fail => Poll::Ready(Err(())),
            Mode::Hang => Poll::Pending,
        }
    }
}

impl Manager for Mgr {
    type Connection = Conn;
    type Error = ();
    type Connect = Connect;
    fn connect(&self) -> Connect {
        Connect {
            alive: self.alive.clone(),
            mode: self.mode.clone(),
            bad: self.bad.clone(),
        }
    }
    fn is_valid(&self, c: &mut Conn) -> bool {
        !c.bad
    }
    fn has_broken(&self, c: &mut Conn) -> bool {
        c.bad
    }
}

type P<'c> = Pool<Mgr, QueueSemaphore<Q>, &'c MockClock, N>;

/// The one place that builds the pool (semaphore constructors may change).
fn pool(mgr: Mgr, cfg: Config, clock: &MockClock) -> P<'_> {
    Pool::queued(mgr, cfg, clock)
}

#[derive(Arbitrary, Debug)]
enum Op {
    TryAcquire,
    NewAcquire,
    Poll(u8),
    DropFuture(u8),
    Return(u8),
    MarkBroken(u8),
    Discard(u8),
    Mode(Mode),
    Bad(bool),
    Advance(SmallStep),
    Back(SmallStep),
    Reap,
}

#[derive(Arbitrary, Debug)]
struct Input {
    timeout: Span,
    max_lifetime: Option<Span>,
    max_idle: Option<Span>,
    ops: Vec<Op>,
}

fuzz_target!(|inp: Input| {
    let alive = Rc::new(Cell::new(0i64));
    let clock = MockClock::new();
    let mut cfg = Config::new().timeout(inp.timeout.0);
    if let Some(d) = inp.max_lifetime {
        cfg = cfg.max_lifetime(d.0);
    }
    if let Some(d) = inp.max_idle {
        cfg = cfg.max_idle(d.0);
    }
    let mgr = Mgr {
        alive: alive.clone(),
        mode: Rc::new(Cell::new(Mode::Ok)),
        bad: Rc::new(Cell::new(false)),
    };
    let pool = pool(mgr, cfg, &clock);
    run(&pool, &clock, &inp, &alive);
    drop(pool);
    assert_eq!(alive.get(), 0, "connections outlived the pool");
});

fn run(pool: &P<'_>, clock: &MockClock, inp: &Input, alive: &Rc<Cell<i64>>) {
    let mut guards: Vec<PooledConnection<&P<'_>, Mgr, QueueSemaphore<Q>, &MockClock, N>> =
        Vec::new();
    let mut futs = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut now = Instant::ZERO;
    for op in inp.ops.iter().take(MAX_OPS) {
        match op {
            Op::TryAcquire => match pool.try_acquire() {
                Ok(g) => guards.push(g),
                Err(e) => {
                    let _ = e.to_string();
                }
            },
            Op::NewAcquire => {
                if futs.len() < MAX_FUTURES {
                    futs.push(Box::pin(pool.acquire()));
                }
            }
            Op::Poll(i) => {
                if !futs.is_empty() {
                    let i = *i as usize % futs.len();
                    match futs[i].as_mut().poll(&mut cx) {
                        Poll::Ready(Ok(g)) => {
                            guards.push(g);
                            drop(futs.remove(i));
                        }
                        Poll::Ready(Err(e)) => {
                            assert!(matches!(
                                e,
                                Error::Timeout | Error::Connect(()) | Error::QueueFull
                            ));
                            drop(futs.remove(i));
                        }
                        Poll::Pending => {}
                    }
                }
            }
            Op::DropFuture(i) => {
                if !futs.is_empty() {
                    let i = *i as usize % futs.len();
                    drop(futs.remove(i));
                }
            }
            Op::Return(i) => {
                if !guards.is_empty() {
                    let i = *i as usize % guards.len();
                    drop(guards.remove(i));
                }
            }
            Op::MarkBroken(i) => {
                if !guards.is_empty() {
                    let i = *i as usize % guards.len();
                    guards[i].mark_broken();
                    assert!(guards[i].is_marked_broken());
                }
            }
            Op::Discard(i) => {
                if !guards.is_empty() {
                    let i = *i as usize % guards.len();
                    guards.remove(i).discard();
                }
            }
            Op::Mode(m) => pool.manager().mode.set(*m),
            Op::Bad(b) => pool.manager().bad.set(*b),
            Op::Advance(d) => {
                now = now + d.0;
                clock.set(now);
            }
            Op::Back(d) => {
                now = now - d.0;
                clock.set(now);
            }
            Op::Reap => {
                let _ = pool.reap();
            }
        }
        let m = pool.metrics();
        assert_eq!(m.capacity, N);
        assert_eq!(m.in_use, guards.len(), "in use vs guards held");
        assert!(m.in_use + m.idle <= N, "{m:?}");
        assert_eq!(
            alive.get(),
            (m.in_use + m.idle) as i64,
            "alive vs in use + idle: {m:?}"
        );
        let t = pool.totals();
        assert_eq!(
            t.created as i64 - t.discarded as i64,
            alive.get(),
            "created - discarded: {t:?}"
        );
        // Slots held by futures: those that have a permit (connecting). At least the guards.
        let free = pool.semaphore().available();
        assert!(
            free + guards.len() <= N,
            "free {free} + guards {} > {N}",
            guards.len()
        );
    }
    drop(futs);
    drop(guards);
    let m = pool.metrics();
    assert_eq!(
        m.in_use, 0,
        "checked out after everything was returned: {m:?}"
    );
    assert_eq!(pool.semaphore().available(), N, "permits leaked");
    assert_eq!(alive.get(), m.idle as i64);
}
