//! Model test of the connection pool: random acquire / try / poll / drop / broken / cancel /
//! fail / invalidate / time steps on the mock clock, checked after every step against a
//! reference model of which connections are idle, held and closed.
//!
//! Invariants: never more than `N` connections alive or held; a connection is never handed
//! to two holders, never handed out after it was closed, marked broken, or went stale; a held
//! connection is never closed under its holder; every live connection is either held or idle
//! in a slot; `try_acquire` fails with `NoIdle` exactly when the model has no fresh, valid idle
//! connection; at the end every slot permit and wait slot is back.
#![cfg(not(loom))]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bulwark::bulkhead::TrySemaphore;
use bulwark::mock::MockSleep;
use bulwark::pool::{
    Acquire, Config, Error, Manager, Pool, PooledConnection, QueueSemaphore, TryAcquireError,
};
use bulwark::{Clock, Instant, MockClock};
use proptest::prelude::*;

#[derive(Default)]
struct Counts {
    next_id: Cell<u32>,
    live: Cell<i32>,
    fail: Cell<bool>,
    valid: Cell<bool>,
    closed: RefCell<Vec<u32>>,
}

struct Conn {
    id: u32,
    counts: Rc<Counts>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.counts.live.set(self.counts.live.get() - 1);
        self.counts.closed.borrow_mut().push(self.id);
    }
}

struct M<'c> {
    clock: &'c MockClock,
    counts: Rc<Counts>,
}

struct Connect<'c> {
    counts: Rc<Counts>,
    sleep: MockSleep<&'c MockClock<32>, 32>,
}

impl Future for Connect<'_> {
    type Output = Result<Conn, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let c = &self.counts;
        if c.fail.get() {
            return Poll::Ready(Err(()));
        }
        c.next_id.set(c.next_id.get() + 1);
        c.live.set(c.live.get() + 1);
        Poll::Ready(Ok(Conn {
            id: c.next_id.get(),
            counts: c.clone(),
        }))
    }
}

impl<'c> Manager for M<'c> {
    type Connection = Conn;
    type Error = ();
    type Connect = Connect<'c>;
    fn connect(&self) -> Connect<'c> {
        Connect {
            counts: self.counts.clone(),
            sleep: self.clock.sleep(Duration::from_millis(3)),
        }
    }
    fn is_valid(&self, _: &mut Conn) -> bool {
        self.counts.valid.get()
    }
}

const N: usize = 3;
const Q: usize = 2;
type P<'c> = Pool<M<'c>, QueueSemaphore<Q>, &'c MockClock, N>;
type Shared<'c> = Pool<M<'c>, QueueSemaphore<Q>, &'c MockClock, N>;
type Guard<'p, 'c> = PooledConnection<&'p Shared<'c>, M<'c>, QueueSemaphore<Q>, &'c MockClock, N>;

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Try,
    PollAll,
    Drop(usize),
    Broken(usize),
    Cancel(usize),
    Advance(u64),
    Fail(bool),
    Valid(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        2 => Just(Op::Try),
        4 => Just(Op::PollAll),
        3 => (0usize..6).prop_map(Op::Drop),
        1 => (0usize..6).prop_map(Op::Broken),
        1 => (0usize..6).prop_map(Op::Cancel),
        3 => (0u64..40).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Fail),
        1 => prop::bool::weighted(0.8).prop_map(Op::Valid),
    ]
}

/// What the model knows of one idle connection.
#[derive(Clone, Copy, Debug)]
struct IdleConn {
    created: Instant,
    last_used: Instant,
}

struct Model {
    lifetime: Duration,
    max_idle: Duration,
    /// Held by a guard: id -> created.
    held: BTreeMap<u32, Instant>,
    idle: BTreeMap<u32, IdleConn>,
    closed: BTreeSet<u32>,
    max_id: u32,
}

impl Model {
    fn fresh(&self, c: IdleConn, now: Instant) -> bool {
        now - c.created < self.lifetime && now - c.last_used < self.max_idle
    }

    /// A guard for `id` appeared (from `acquire` or `try_acquire`) at `now`.
    fn handed_out(&mut self, id: u32, now: Instant) -> Result<(), TestCaseError> {
        prop_assert!(
            !self.held.contains_key(&id),
            "connection {id} handed to two holders"
        );
        prop_assert!(
            !self.closed.contains(&id),
            "closed connection {id} handed out"
        );
        if id <= self.max_id {
            let Some(c) = self.idle.remove(&id) else {
                return Err(TestCaseError::fail(format!("reused {id} was not idle")));
            };
            prop_assert!(self.fresh(c, now), "stale connection {id} handed out");
            self.held.insert(id, c.created);
        } else {
            prop_assert_eq!(id, self.max_id + 1, "ids are consecutive");
            self.max_id = id;
            self.held.insert(id, now);
        }
        Ok(())
    }

    /// A guard for `id` was dropped at `now`, `broken` or not.
    fn returned(&mut self, id: u32, now: Instant, broken: bool) {
        let created = self.held.remove(&id).unwrap();
        if !broken && now - created < self.lifetime {
            self.idle.insert(
                id,
                IdleConn {
                    created,
                    last_used: now,
                },
            );
        }
        // else: the pool closes it; `closed_log` moves it to `closed`.
    }

    fn closed_log(&mut self, counts: &Counts) -> Result<(), TestCaseError> {
        for id in counts.closed.borrow_mut().drain(..) {
            prop_assert!(
                !self.held.contains_key(&id),
                "held connection {id} closed under its holder"
            );
            self.idle.remove(&id);
            self.closed.insert(id);
        }
        Ok(())
    }
}

type Pending<'p, 'c> = Pin<Box<Acquire<&'p Shared<'c>>>>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_over_n_never_leaks(
        lifetime_ms in 20u64..200,
        idle_ms in 10u64..100,
        timeout_ms in 0u64..30,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let clock = MockClock::new();
        let counts = Rc::new(Counts::default());
        counts.valid.set(true);
        let cfg = Config::new()
            .timeout(Duration::from_millis(timeout_ms))
            .max_lifetime(Duration::from_millis(lifetime_ms))
            .max_idle(Duration::from_millis(idle_ms));
        let pool: P<'_> = Pool::queued(M { clock: &clock, counts: counts.clone() }, cfg, &clock);
        let mut model = Model {
            lifetime: Duration::from_millis(lifetime_ms),
            max_idle: Duration::from_millis(idle_ms),
            held: BTreeMap::new(),
            idle: BTreeMap::new(),
            closed: BTreeSet::new(),
            max_id: 0,
        };
        let cx = &mut Context::from_waker(Waker::noop());
        let mut guards: Vec<Guard<'_, '_>> = Vec::new();
        let mut pending: Vec<Pending<'_, '_>> = Vec::new();

        for op in ops {
            match op {
                Op::Acquire => pending.push(Box::pin(pool.acquire())),
                Op::Try => {
                    let now = clock.now();
                    let free = pool.semaphore().available();
                    let fresh_valid = counts.valid.get()
                        && model.idle.values().any(|c| model.fresh(*c, now));
                    match pool.try_acquire() {
                        Ok(g) => {
                            model.closed_log(&counts)?;
                            model.handed_out(g.id, now)?;
                            guards.push(g);
                        }
                        Err(TryAcquireError::Exhausted) => prop_assert_eq!(free, 0),
                        Err(e) => {
                            prop_assert_eq!(e, TryAcquireError::NoIdle);
                            prop_assert!(free > 0);
                            prop_assert!(!fresh_valid, "NoIdle with a fresh valid idle connection");
                        }
                    }
                }
                Op::PollAll => {
                    let mut i = 0;
                    while i < pending.len() {
                        match pending[i].as_mut().poll(cx) {
                            Poll::Pending => i += 1,
                            Poll::Ready(r) => {
                                drop(pending.swap_remove(i));
                                model.closed_log(&counts)?;
                                match r {
                                    Ok(g) => {
                                        model.handed_out(g.id, clock.now())?;
                                        guards.push(g);
                                    }
                                    Err(Error::Timeout | Error::Connect(()) | Error::QueueFull) => {}
                                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                                }
                            }
                        }
                    }
                }
                Op::Drop(i) | Op::Broken(i) => {
                    if !guards.is_empty() {
                        let mut g = guards.swap_remove(i % guards.len());
                        let broken = matches!(op, Op::Broken(_));
                        if broken {
                            g.mark_broken();
                        }
                        let id = g.id;
                        model.returned(id, clock.now(), broken);
                        drop(g);
                    }
                }
                Op::Cancel(i) => {
                    if !pending.is_empty() {
                        drop(pending.swap_remove(i % pending.len()));
                    }
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Fail(f) => counts.fail.set(f),
                Op::Valid(v) => counts.valid.set(v),
            }
            model.closed_log(&counts)?;
            let live = counts.live.get();
            prop_assert!(live >= 0 && live as usize <= N, "{} connections alive", live);
            prop_assert!(guards.len() <= N);
            let m = pool.metrics();
            let tot = pool.totals();
            prop_assert_eq!(m.in_use, guards.len());
            prop_assert_eq!(m.idle + guards.len(), live as usize, "every live connection is idle or held");
            prop_assert_eq!(m.idle, model.idle.len());
            prop_assert!(pool.semaphore().available() + guards.len() <= N);
            prop_assert_eq!(tot.created - tot.discarded, live as u64);
        }
        drop(pending);
        drop(guards);
        prop_assert_eq!(pool.semaphore().available(), N, "a slot leaked");
        prop_assert_eq!(pool.semaphore().waiting(), 0);
        prop_assert_eq!(pool.metrics().in_use, 0);
        prop_assert_eq!(pool.metrics().idle, counts.live.get() as usize);
    }
}
