//! The discrete-event engine: one queue of timed events, the mock clock set to each event's
//! instant, and every simulated request a real [`bulwark::pipeline::Call`] future polled by
//! hand.
//!
//! Why futures: the policy under test is [`Pipeline`] itself, the code users ship, not a
//! re-implementation of its decisions. The simulator gives it two things:
//!
//! * a [`Sleep`] whose sleeps are events in the simulator's queue ([`SimClock`]; it reads
//!   the [`MockClock`] the breaker, limiter and bulkhead read too), so a retry's backoff and an
//!   attempt's timeout wake the call at the right simulated instant;
//! * an operation whose future sends the attempt to the downstream model and completes when
//!   the model's answer event is processed ([`DownstreamCall`]). An attempt cut by its
//!   timeout is dropped, and the downstream goes on serving it: nobody tells a server that
//!   its caller left, which is how retry storms hurt.
//!
//! Every future is polled with a no-op waker: the engine knows which request an event belongs
//! to (the task index set while it polls, and stored in each event), so nothing needs waking.

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
#[cfg(test)]
use std::collections::BinaryHeap;
use std::collections::VecDeque;

use bulwark::admission::{Admit, Outcome};
use bulwark::bulkhead::{AtomicSemaphore, Bulkhead};
use bulwark::circuit_breaker::{self, CircuitBreaker, CountWindow, NoWindow, State, TimeWindow};
use bulwark::pipeline::{self, Pipeline};
use bulwark::rate_limiter::RateLimiter;
use bulwark::retry::{Budget, Operation, RetryBudget};
use bulwark::{Clock, Instant, MockClock, Sleep};

use crate::downstream::Model;
use crate::metrics::{Metrics, RunResult};
use crate::policy::{Policy, Window};
use crate::rng::Rng;
use crate::scenario::{Clients, Scenario};

/// The clock of a run: no sleep ever registers with it (the simulator's sleeps are events),
/// so it needs no waker slots.
pub type SimMockClock = MockClock<0>;

/// How long answers still in flight at the end of the arrivals are awaited.
const DRAIN: Duration = Duration::from_secs(60);

/// Events at one instant after which no new request is sent (plus 100 per closed-loop
/// client, who may all start together): a closed loop with instant answers and no think time
/// would otherwise never let time advance.
const STALL_EVENTS: u64 = 1_000_000;

// ===== events =====

/// What the downstream answered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Ok,
    /// Served, and failed.
    Failed,
    /// Refused: the queue was full.
    Overloaded,
    /// Refused: the downstream is down.
    Refused,
    /// OCC: another call committed first.
    Conflict,
}

/// The error a simulated attempt returns: what the downstream said.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The request was served and failed (a 500).
    Failed,
    /// The downstream's queue was full (a 503 "overloaded").
    Overloaded,
    /// The downstream refused the connection (a hard outage).
    Refused,
    /// Optimistic concurrency: another writer committed first (a 409).
    Conflict,
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SimError::Failed => "downstream failed",
            SimError::Overloaded => "downstream overloaded",
            SimError::Refused => "connection refused",
            SimError::Conflict => "write conflict",
        })
    }
}

impl std::error::Error for SimError {}

#[derive(Copy, Clone, Debug)]
pub(crate) enum Kind {
    /// The next request of an open-loop source (`u32::MAX`) or of closed-loop client `n`.
    Arrival { client: u32 },
    /// A sleep of task `task` (generation `generation`) is due.
    Timer { task: u32, generation: u32 },
    /// The downstream answers request `req` of task `task`; `server`: the replica whose slot
    /// it held.
    Reply {
        task: u32,
        req: u64,
        reply: Reply,
        server: Option<u32>,
        started: u64,
    },
    /// A phase begins or ends.
    Phase,
}

/// The event queue: a radix heap of FIFO buckets, for instants that never go back.
///
/// Events pop in order of their instant, and events of one instant in the order they were
/// scheduled (the order a binary heap on `(instant, insertion number)` gives, without the
/// number). A run only ever schedules at or after the instant being processed, which is what
/// a radix heap needs. Instants are read as 11 digits of 6 bits: bucket `now` holds the
/// events at `last` (the instant last popped); bucket `(l, d)` those whose instant first
/// differs from `last` at digit `l`, where it is `d`. Popping takes from `now`; when it is
/// empty, the lowest non-empty bucket is spread, around its earliest instant (the new `last`),
/// over the levels below it, which are empty. So an event moves at most once per level below
/// its own (4 for 20 ms ahead, 5 for 1 s), and every bucket stays in scheduling order: a
/// bucket only receives events after those it holds (pushes come later; a spread fills
/// empty buckets).
///
/// A binary heap of `(instant, insertion number)` spent a fifth of a run's instructions on
/// sifting through an outage's thousands of pending replies and timers (`cargo bench -p
/// bulwark-benches --bench sim`, callgrind); one bucket per bit (a binary radix heap) moved
/// each event up to 30 times and missed the cache doing it.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The instant last popped: no event is earlier.
    last: u64,
    /// The events at `last`, in scheduling order.
    now: VecDeque<Entry>,
    /// `later[l * 64 + d]`: bucket `(l, d)`, in scheduling order.
    later: Vec<Vec<Entry>>,
    /// Bit `d` of `full[l]`: bucket `(l, d)` is not empty.
    full: [u64; LEVELS],
    /// The events' payloads, where the entries point, so that spreading moves 16 bytes.
    payloads: Vec<Kind>,
    /// Free places in `payloads`.
    free: Vec<u32>,
}

/// A queued event: its instant and where its payload is.
#[derive(Copy, Clone, Debug)]
struct Entry {
    at: u64,
    slot: u32,
}

/// Digits of 6 bits in a `u64`.
const LEVELS: usize = 11;

impl Default for Queue {
    fn default() -> Self {
        Queue {
            last: 0,
            now: VecDeque::new(),
            later: (0..LEVELS * 64).map(|_| Vec::new()).collect(),
            full: [0; LEVELS],
            payloads: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl Queue {
    /// Schedules `kind` at `at` (an instant before the last one popped counts as that one:
    /// the run never schedules in the past).
    #[inline]
    pub(crate) fn push(&mut self, at: u64, kind: Kind) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.payloads[i as usize] = kind;
                i
            }
            None => {
                self.payloads.push(kind);
                (self.payloads.len() - 1) as u32
            }
        };
        self.put(Entry {
            at: at.max(self.last),
            slot,
        });
    }

    /// Into `now`, or the bucket of the highest digit where its instant differs from `last`.
    #[inline]
    fn put(&mut self, e: Entry) {
        match e.at ^ self.last {
            0 => self.now.push_back(e),
            x => {
                let level = (63 - x.leading_zeros() as usize) / 6;
                let digit = (e.at >> (6 * level)) as usize & 63;
                self.later[level * 64 + digit].push(e);
                self.full[level] |= 1 << digit;
            }
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<(u64, Kind)> {
        if self.now.is_empty() {
            self.spread();
        }
        let e = self.now.pop_front()?;
        self.free.push(e.slot);
        Some((e.at, self.payloads[e.slot as usize]))
    }

    /// Spreads the lowest non-empty bucket around its earliest instant (the new `last`).
    /// Nothing when the queue is empty.
    fn spread(&mut self) {
        let Some(level) = self.full.iter().position(|&m| m != 0) else {
            return;
        };
        let digit = self.full[level].trailing_zeros() as usize;
        self.full[level] &= !(1 << digit);
        let mut events = core::mem::take(&mut self.later[level * 64 + digit]);
        self.last = events.iter().fold(u64::MAX, |m, e| m.min(e.at));
        for e in events.drain(..) {
            self.put(e);
        }
        // Keep the allocation for the bucket's next events.
        self.later[level * 64 + digit] = events;
    }
}

// ===== the world the futures see =====

#[derive(Debug, Default)]
struct Mailbox {
    /// The request the task's running attempt waits for (0: none).
    req: u64,
    reply: Option<Reply>,
    /// Bumped when the task slot is reused: stale timers are ignored.
    generation: u32,
}

/// The breaker's state changes, as its [`Events`](circuit_breaker::Events) report them.
#[derive(Debug, Default)]
pub struct BreakerLog(RefCell<Vec<(Instant, State)>>);

impl circuit_breaker::Events for BreakerLog {
    fn on_state_change(&self, t: circuit_breaker::Transition) {
        self.0.borrow_mut().push((t.at, t.to));
    }
}

/// Everything the futures of a run share: the clock, the event queue, the downstream model
/// and the mailboxes of the requests.
#[derive(Debug)]
pub struct World {
    clock: SimMockClock,
    queue: RefCell<Queue>,
    /// The task being polled.
    current: Cell<u32>,
    mail: RefCell<Vec<Mailbox>>,
    model: RefCell<Model>,
    next_req: Cell<u64>,
    breaker_log: BreakerLog,
}

/// The pipeline's clock and sleep: reads the run's [`MockClock`]; a sleep is an event in the
/// run's queue that re-polls the request that made it.
#[derive(Copy, Clone, Debug)]
pub struct SimClock<'w>(&'w World);

impl Clock for SimClock<'_> {
    #[inline]
    fn now(&self) -> Instant {
        self.0.clock.now()
    }
}

impl<'w> Sleep for SimClock<'w> {
    type Sleep = SimSleep<'w>;
    #[inline]
    fn sleep_until(&self, at: Instant) -> SimSleep<'w> {
        SimSleep {
            world: self.0,
            at,
            registered: false,
        }
    }
}

/// A sleep of the simulation: due when the run's clock reaches its instant.
#[derive(Debug)]
pub struct SimSleep<'w> {
    world: &'w World,
    at: Instant,
    registered: bool,
}

impl Future for SimSleep<'_> {
    type Output = ();
    #[inline]
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let w = self.world;
        if w.clock.now() >= self.at {
            return Poll::Ready(());
        }
        if !self.registered {
            let task = w.current.get();
            let generation = w.mail.borrow()[task as usize].generation;
            w.queue
                .borrow_mut()
                .push(self.at.as_nanos(), Kind::Timer { task, generation });
            self.registered = true;
        }
        Poll::Pending
    }
}

/// One attempt sent to the downstream model: pending until the model answers.
#[derive(Debug)]
pub struct DownstreamCall<'w> {
    world: &'w World,
    task: u32,
    req: u64,
}

impl Future for DownstreamCall<'_> {
    type Output = Result<(), SimError>;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        let w = self.world;
        let task = self.task as usize;
        if self.req == 0 {
            let req = w.next_req.get() + 1;
            w.next_req.set(req);
            self.req = req;
            {
                let mut mail = w.mail.borrow_mut();
                mail[task].req = req;
                mail[task].reply = None;
            }
            let now = w.clock.now().as_nanos();
            w.model
                .borrow_mut()
                .submit(now, self.task, req, &mut w.queue.borrow_mut());
            return Poll::Pending;
        }
        let mut mail = w.mail.borrow_mut();
        let m = &mut mail[task];
        if m.req != self.req {
            return Poll::Pending;
        }
        match m.reply.take() {
            None => Poll::Pending,
            Some(r) => {
                m.req = 0;
                Poll::Ready(match r {
                    Reply::Ok => Ok(()),
                    Reply::Failed => Err(SimError::Failed),
                    Reply::Overloaded => Err(SimError::Overloaded),
                    Reply::Refused => Err(SimError::Refused),
                    Reply::Conflict => Err(SimError::Conflict),
                })
            }
        }
    }
}

impl Drop for DownstreamCall<'_> {
    fn drop(&mut self) {
        if self.req != 0
            && let Ok(mut mail) = self.world.mail.try_borrow_mut()
        {
            let m = &mut mail[self.task as usize];
            if m.req == self.req {
                // Abandoned (an attempt timeout): the answer, when it comes, is nobody's.
                m.req = 0;
                m.reply = None;
            }
        }
    }
}

/// The operation a simulated request runs: each attempt is a [`DownstreamCall`].
#[derive(Debug)]
pub struct SimOp<'w> {
    world: &'w World,
    task: u32,
}

impl<'w> Operation for SimOp<'w> {
    type Future = DownstreamCall<'w>;
    #[inline]
    fn attempt(&mut self) -> DownstreamCall<'w> {
        DownstreamCall {
            world: self.world,
            task: self.task,
            req: 0,
        }
    }
}

// ===== the gates =====

/// A gate a policy may leave out: admits everything when `None`, so every policy is the same
/// [`Pipeline`] type.
#[derive(Debug)]
pub struct OptGate<G>(pub Option<G>);

impl<G: Admit> Admit for OptGate<G> {
    type Ticket = Option<G::Ticket>;
    type Rejected = G::Rejected;

    #[inline]
    fn try_admit(&self) -> Result<Self::Ticket, G::Rejected> {
        match &self.0 {
            Some(g) => g.try_admit().map(Some),
            None => Ok(None),
        }
    }

    #[inline]
    fn record(&self, ticket: Self::Ticket, outcome: Outcome) {
        if let (Some(g), Some(t)) = (&self.0, ticket) {
            g.record(t, outcome);
        }
    }

    #[inline]
    fn release(&self, ticket: Self::Ticket) {
        if let (Some(g), Some(t)) = (&self.0, ticket) {
            g.release(t);
        }
    }
}

macro_rules! any_breaker {
    ($($variant:ident => $window:ty),* $(,)?) => {
        /// A circuit breaker with the window its policy asks for (the window size is a const
        /// generic in the core, so each size the files accept is one variant).
        ///
        /// Built once per run and then only borrowed, so the size difference of the
        /// variants (a count window of 1000 calls is a kilobyte) costs nothing.
        #[derive(Debug)]
        #[allow(missing_docs, clippy::large_enum_variant)]
        pub enum AnyBreaker<'w> {
            $($variant(CircuitBreaker<&'w SimMockClock, $window, &'w BreakerLog>),)*
        }

        impl<'w> AnyBreaker<'w> {
            /// The breaker of `cfg` with `window`, on `clock`, reporting to `log`.
            ///
            /// # Errors
            ///
            /// The core's [`circuit_breaker::ConfigError`].
            pub fn new(
                cfg: circuit_breaker::Config,
                window: Window,
                clock: &'w SimMockClock,
                log: &'w BreakerLog,
            ) -> Result<Self, circuit_breaker::ConfigError> {
                Ok(match window {
                    $(w if w == Window::$variant => AnyBreaker::$variant(
                        CircuitBreaker::with_window(cfg, <$window>::default(), clock)?.with_events(log),
                    ),)*
                    // Not reachable: every `Window` has a variant above.
                    _ => AnyBreaker::NoWindow(CircuitBreaker::new(cfg, clock)?.with_events(log)),
                })
            }
        }

        impl Admit for AnyBreaker<'_> {
            type Ticket = circuit_breaker::Ticket;
            type Rejected = circuit_breaker::Rejected;
            #[inline]
            fn try_admit(&self) -> Result<Self::Ticket, Self::Rejected> {
                match self { $(AnyBreaker::$variant(b) => b.try_admit(),)* }
            }
            #[inline]
            fn record(&self, t: Self::Ticket, o: Outcome) {
                match self { $(AnyBreaker::$variant(b) => b.record(t, o),)* }
            }
            #[inline]
            fn release(&self, t: Self::Ticket) {
                match self { $(AnyBreaker::$variant(b) => b.release(t),)* }
            }
        }
    };
}

any_breaker! {
    NoWindow => NoWindow,
    Count10 => CountWindow<10>,
    Count20 => CountWindow<20>,
    Count50 => CountWindow<50>,
    Count100 => CountWindow<100>,
    Count200 => CountWindow<200>,
    Count500 => CountWindow<500>,
    Count1000 => CountWindow<1000>,
    Time10 => TimeWindow<10>,
}

/// A retry budget a policy may leave out (`None`: unlimited).
#[derive(Debug)]
pub struct OptBudget<'p>(pub Option<&'p Budget>);

impl RetryBudget for OptBudget<'_> {
    #[inline]
    fn deposit(&self) {
        if let Some(b) = self.0 {
            b.deposit();
        }
    }
    #[inline]
    fn try_withdraw(&self, now: Instant) -> bool {
        self.0.is_none_or(|b| b.try_withdraw(now))
    }
}

/// The stages every simulated pipeline has (each may admit everything): breaker ▸ limiter ▸
/// bulkhead, the order the core's pipeline docs advise.
pub type Gates<'w, 'p> = (
    (
        ((), &'p OptGate<AnyBreaker<'w>>),
        &'p OptGate<RateLimiter<&'w SimMockClock>>,
    ),
    &'p OptGate<Bulkhead<AtomicSemaphore, &'w SimMockClock>>,
);

/// The pipeline every policy runs as.
pub type SimPipeline<'w, 'p> =
    Pipeline<SimClock<'w>, bulwark::classify::ErrorsAreFailures, OptBudget<'p>, Gates<'w, 'p>>;

/// Why a run could not start: a scenario value out of range, or a policy stage the core's
/// config refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// The scenario field (`scenario.downstream.replicas`) or the policy section (`breaker`,
    /// `retry`, ...).
    pub field: String,
    /// The core's message.
    pub message: String,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for BuildError {}

fn build_err(field: &str, e: impl core::fmt::Display) -> BuildError {
    BuildError {
        field: field.to_string(),
        message: e.to_string(),
    }
}

/// `config`, with `seed` unless it has its own.
fn seeded(config: circuit_breaker::Config, seed: u64) -> circuit_breaker::Config {
    match config.explicit_seed() {
        Some(_) => config,
        None => config.seed(seed),
    }
}

/// A policy's primitives, built on a run's clock.
#[derive(Debug)]
pub struct Primitives<'w> {
    /// The circuit breaker, if any.
    pub breaker: OptGate<AnyBreaker<'w>>,
    /// The rate limiter, if any.
    pub limiter: OptGate<RateLimiter<&'w SimMockClock>>,
    /// The bulkhead, if any.
    pub bulkhead: OptGate<Bulkhead<AtomicSemaphore, &'w SimMockClock>>,
    /// The retry budget, if any.
    pub budget: Option<Budget>,
}

impl<'w> Primitives<'w> {
    /// Builds `policy`'s primitives on `clock`, with `log` for the breaker's state changes;
    /// `seed` makes the breaker's open-time jitter and the limiter's jitter reproducible (a
    /// config's own seed wins).
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the section whose core config was refused.
    pub fn build(
        policy: &Policy,
        clock: &'w SimMockClock,
        log: &'w BreakerLog,
        seed: u64,
    ) -> Result<Self, BuildError> {
        let breaker = match &policy.breaker {
            Some(b) => Some(
                AnyBreaker::new(seeded(b.config, seed), b.window, clock, log)
                    .map_err(|e| build_err("breaker", e))?,
            ),
            None => None,
        };
        let limiter = match &policy.limiter {
            Some(cfg) => {
                let cfg = match cfg.jitter_seed() {
                    Some(_) => *cfg,
                    None => cfg.seed(seed ^ 0x5A5A),
                };
                Some(RateLimiter::new(cfg, clock).map_err(|e| build_err("limiter", e))?)
            }
            None => None,
        };
        let bulkhead = match &policy.bulkhead {
            Some(cfg) => Some(Bulkhead::new(*cfg, clock).map_err(|e| build_err("bulkhead", e))?),
            None => None,
        };
        let budget = match &policy.budget {
            Some(b) => Some(
                Budget::new(b.retry_percent, b.min_per_second, b.max_tokens)
                    // The only value `Budget::new` refuses.
                    .map_err(|e| build_err("budget.retry_percent", e))?,
            ),
            None => None,
        };
        Ok(Primitives {
            breaker: OptGate(breaker),
            limiter: OptGate(limiter),
            bulkhead: OptGate(bulkhead),
            budget,
        })
    }

    /// The pipeline of `policy` over these primitives: the core's [`Pipeline`], built from
    /// its public builder exactly as a user would.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for a retry config the core refuses.
    pub fn pipeline<'p>(
        &'p self,
        policy: &Policy,
        clock: SimClock<'w>,
        seed: u64,
    ) -> Result<SimPipeline<'w, 'p>, BuildError> {
        let retry = match policy.retry.explicit_seed() {
            Some(_) => policy.retry,
            None => policy.retry.seed(seed),
        };
        let p = Pipeline::new(clock, retry)
            .map_err(|e| build_err("retry", e))?
            .budget(OptBudget(self.budget.as_ref()))
            .breaker(&self.breaker)
            .limiter(&self.limiter)
            .bulkhead(&self.bulkhead)
            .waits(policy.waits);
        let p = match policy.attempt_timeout {
            Some(d) => p.attempt_timeout(d),
            None => p,
        };
        Ok(match policy.total_timeout {
            Some(d) => p.total_timeout(d),
            None => p,
        })
    }
}

// ===== the run =====

struct Task<F> {
    fut: Pin<Box<Option<F>>>,
    started: u64,
    client: u32,
}

/// How a request ended, for the metrics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// It succeeded.
    Success,
    /// The downstream's error came back (after the retries, if any).
    Failed,
    /// The circuit breaker rejected it.
    CircuitOpen,
    /// The rate limiter rejected it.
    RateLimited,
    /// The bulkhead was full.
    BulkheadFull,
    /// The last attempt timed out.
    AttemptTimeout,
    /// The total timeout ended it.
    Timeout,
    /// Still running when the run ended.
    Unfinished,
}

impl End {
    fn of(out: &Result<(), pipeline::Error<SimError>>) -> End {
        match out {
            Ok(()) => End::Success,
            Err(pipeline::Error::Operation(_)) => End::Failed,
            Err(pipeline::Error::CircuitOpen(_)) => End::CircuitOpen,
            Err(pipeline::Error::RateLimited(_)) => End::RateLimited,
            Err(pipeline::Error::BulkheadFull(_)) => End::BulkheadFull,
            Err(pipeline::Error::AttemptTimeout(_)) => End::AttemptTimeout,
            Err(_) => End::Timeout,
        }
    }
}

/// Something to report progress to: called with the number of requests started so far.
pub trait Progress {
    /// `started` requests have arrived so far.
    fn update(&mut self, started: u64);
}

impl Progress for () {
    fn update(&mut self, _: u64) {}
}

impl<F: FnMut(u64)> Progress for F {
    fn update(&mut self, started: u64) {
        self(started)
    }
}

/// The run of one policy on one scenario: builds the world, the primitives and the pipeline,
/// and processes events until the arrivals end and the answers in flight are in (or a minute
/// more has passed).
///
/// # Errors
///
/// [`BuildError`] when the scenario is invalid ([`Scenario::validate`]) or the policy's
/// configuration is refused by the core.
///
/// ```
/// use bulwark_sim::{engine::run, policy::Policy, scenario::Scenario};
/// use core::time::Duration;
/// let mut s = Scenario::builtin("outage").unwrap();
/// s.duration = Duration::from_secs(40);
/// let plain = run(&s, &Policy::no_protection(), &mut ()).unwrap();
/// let guarded = run(&s, &Policy::full_pipeline(), &mut ()).unwrap();
/// // Without protection every request reaches the refusing downstream once; the breaker
/// // keeps most of them away from it during the outage.
/// assert!((plain.summary.amplification - 1.0).abs() < 1e-9);
/// assert!(guarded.summary.downstream_calls < plain.summary.downstream_calls);
///
/// // A scenario out of range is an error, not a panic.
/// s.downstream.replicas = 0;
/// let err = run(&s, &Policy::no_protection(), &mut ()).unwrap_err();
/// assert_eq!(err.field, "scenario.downstream.replicas");
/// ```
pub fn run(
    scenario: &Scenario,
    policy: &Policy,
    progress: &mut dyn Progress,
) -> Result<RunResult, BuildError> {
    scenario.validate().map_err(|(field, message)| BuildError {
        field: format!("scenario.{field}"),
        message,
    })?;
    let bucket_ns = scenario.resolution.as_nanos().max(1) as u64;
    let duration_ns = scenario.duration.as_nanos() as u64;
    let buckets = duration_ns.div_ceil(bucket_ns).max(1) as usize;
    let world = World {
        clock: MockClock::with_slots(),
        queue: RefCell::new(Queue::default()),
        current: Cell::new(0),
        mail: RefCell::new(Vec::new()),
        model: RefCell::new(Model::new(
            scenario.downstream.clone(),
            scenario.phases.clone(),
            scenario.seed,
            bucket_ns,
            buckets,
        )),
        next_req: Cell::new(0),
        breaker_log: BreakerLog::default(),
    };
    let seed = Rng::stream(scenario.seed, 7).next_u64();
    let prims = Primitives::build(policy, &world.clock, &world.breaker_log, seed)?;
    let pipeline = prims.pipeline(policy, SimClock(&world), seed ^ 0xA5A5)?;
    let pipeline = &pipeline;
    let world_ref = &world;
    let mut driver = Driver {
        world: world_ref,
        make: move |task: u32| {
            pipeline::Call::new(
                pipeline,
                SimOp {
                    world: world_ref,
                    task,
                },
            )
        },
        tasks: Vec::new(),
        free: Vec::new(),
        metrics: Metrics::new(scenario, bucket_ns, buckets),
        arrivals: Rng::stream(scenario.seed, 1),
        clients: scenario.clients.clone(),
        client_left: Vec::new(),
        end_ns: duration_ns,
        max_requests: scenario.max_requests,
        stalled: false,
        live: 0,
    };
    driver.run(progress);
    let Driver { metrics, .. } = driver;
    let model = world.model.borrow();
    let log = world.breaker_log.0.borrow();
    Ok(metrics.finish(scenario, policy, &model, &log, prims.breaker.0.is_some()))
}

struct Driver<'w, F, M> {
    world: &'w World,
    make: M,
    tasks: Vec<Task<F>>,
    free: Vec<u32>,
    metrics: Metrics,
    arrivals: Rng,
    clients: Clients,
    /// Closed loop: requests each client may still send.
    client_left: Vec<u64>,
    end_ns: u64,
    max_requests: u64,
    /// Time stopped advancing: no new requests.
    stalled: bool,
    live: u64,
}

impl<'w, F, M> Driver<'w, F, M>
where
    F: Future<Output = Result<(), pipeline::Error<SimError>>>,
    M: FnMut(u32) -> F,
{
    fn schedule(&self, at: u64, kind: Kind) {
        self.world.queue.borrow_mut().push(at, kind);
    }

    fn run(&mut self, progress: &mut dyn Progress) {
        // The first arrivals and the phase boundaries.
        match self.clients.clone() {
            Clients::Open { .. } => self.schedule(0, Kind::Arrival { client: u32::MAX }),
            Clients::Closed {
                clients,
                think,
                requests_per_client,
                start_together,
            } => {
                self.client_left = vec![requests_per_client.unwrap_or(u64::MAX); clients as usize];
                for c in 0..clients {
                    let at = if start_together {
                        0
                    } else {
                        (self.arrivals.uniform() * think.as_nanos() as f64) as u64
                    };
                    self.schedule(at, Kind::Arrival { client: c });
                }
            }
        }
        let bounds = self.world.model.borrow().boundaries();
        for b in bounds {
            self.schedule(b, Kind::Phase);
        }
        let hard_end = self.end_ns.saturating_add(DRAIN.as_nanos() as u64);
        let mut events: u64 = 0;
        let (mut last_at, mut same_instant) = (u64::MAX, 0u64);
        let stall = STALL_EVENTS + 100 * self.client_left.len() as u64;
        loop {
            let Some((at, kind)) = self.world.queue.borrow_mut().pop() else {
                break;
            };
            if at > hard_end {
                break;
            }
            self.world.clock.set(Instant::from_nanos(at));
            if at == last_at {
                same_instant += 1;
                if same_instant > stall {
                    self.stalled = true;
                }
            } else {
                (last_at, same_instant) = (at, 0);
            }
            match kind {
                Kind::Arrival { client } => self.arrive(at, client),
                Kind::Timer { task, generation } => {
                    if self.world.mail.borrow()[task as usize].generation == generation {
                        self.poll(task);
                    }
                }
                Kind::Reply {
                    task,
                    req,
                    reply,
                    server,
                    started,
                } => {
                    let reply = match server {
                        Some(r) => self.world.model.borrow_mut().finish(
                            at,
                            r,
                            reply,
                            started,
                            &mut self.world.queue.borrow_mut(),
                        ),
                        None => reply,
                    };
                    let deliver = {
                        let mut mail = self.world.mail.borrow_mut();
                        let m = &mut mail[task as usize];
                        if m.req == req {
                            m.reply = Some(reply);
                            true
                        } else {
                            false
                        }
                    };
                    if deliver {
                        self.poll(task);
                    }
                }
                Kind::Phase => self
                    .world
                    .model
                    .borrow_mut()
                    .phase_changed(at, &mut self.world.queue.borrow_mut()),
            }
            events += 1;
            if events & 0xFFFF == 0 {
                progress.update(self.metrics.requests);
            }
            if self.live == 0 && at >= self.end_ns {
                break;
            }
        }
        progress.update(self.metrics.requests);
        // Whatever is still running did not finish in time.
        for t in &self.tasks {
            if t.fut.is_some() {
                self.metrics.end(hard_end, t.started, End::Unfinished);
            }
        }
    }

    fn arrive(&mut self, now: u64, client: u32) {
        if now >= self.end_ns {
            return;
        }
        if self.stalled || self.metrics.requests >= self.max_requests {
            self.metrics.truncated = true;
            return;
        }
        if client == u32::MAX {
            // Open loop: the next arrival, at the rate of this instant.
            if let Clients::Open { rate } = self.clients {
                let r = rate * self.world.model.borrow().rate_factor(now);
                let gap = if r > 0.0 {
                    self.arrivals.exponential(1e9 / r) as u64
                } else {
                    // No arrivals now: look again in a millisecond.
                    1_000_000
                };
                self.schedule(now.saturating_add(gap.max(1)), Kind::Arrival { client });
            }
        } else {
            let left = &mut self.client_left[client as usize];
            if *left == 0 {
                return;
            }
            *left -= 1;
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = self.tasks.len() as u32;
                self.tasks.push(Task {
                    fut: Box::pin(None),
                    started: 0,
                    client: 0,
                });
                self.world.mail.borrow_mut().push(Mailbox::default());
                i
            }
        };
        let fut = (self.make)(idx);
        let t = &mut self.tasks[idx as usize];
        t.fut.as_mut().set(Some(fut));
        t.started = now;
        t.client = client;
        self.live += 1;
        self.metrics.start(now);
        self.poll(idx);
    }

    fn poll(&mut self, idx: u32) {
        self.world.current.set(idx);
        let mut cx = Context::from_waker(Waker::noop());
        let t = &mut self.tasks[idx as usize];
        let Some(fut) = t.fut.as_mut().as_pin_mut() else {
            return;
        };
        let Poll::Ready(out) = fut.poll(&mut cx) else {
            return;
        };
        t.fut.as_mut().set(None);
        let (started, client) = (t.started, t.client);
        {
            let mut mail = self.world.mail.borrow_mut();
            let m = &mut mail[idx as usize];
            m.generation = m.generation.wrapping_add(1);
            m.req = 0;
            m.reply = None;
        }
        self.free.push(idx);
        self.live -= 1;
        let now = self.world.clock.now().as_nanos();
        self.metrics.end(now, started, End::of(&out));
        if client != u32::MAX
            && let Clients::Closed { think, .. } = self.clients
        {
            let gap = if think.is_zero() {
                0
            } else {
                self.arrivals.exponential(think.as_nanos() as f64) as u64
            };
            self.schedule(now.saturating_add(gap), Kind::Arrival { client });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue pops what a binary heap on `(instant, insertion number)` pops, for pushes at
    /// or after the last instant popped: ties at one instant, near and far instants (across
    /// every digit), herds of one instant, and instants near `u64::MAX`.
    #[test]
    fn the_queue_pops_in_instant_then_scheduling_order() {
        use core::cmp::Reverse;
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let mut q = Queue::default();
            let mut reference = BinaryHeap::new();
            let (mut now, mut n) = (
                if seed % 5 == 0 {
                    u64::MAX - (1 << 40)
                } else {
                    0
                },
                0u32,
            );
            let mut popped = 0;
            for _ in 0..3_000 {
                let r = rng.next_u64();
                if !r.is_multiple_of(3) {
                    // Push: the same instant, a few ns on, or up to 2^k ns on, k in 0..64.
                    let gap = match r % 4 {
                        0 => 0,
                        1 => r >> 60,
                        _ => rng.next_u64() >> (rng.next_u64() % 64),
                    };
                    let at = now.saturating_add(gap);
                    let herd = if r.is_multiple_of(17) { 50 } else { 1 };
                    for _ in 0..herd {
                        n += 1;
                        q.push(
                            at,
                            Kind::Timer {
                                task: n,
                                generation: 0,
                            },
                        );
                        reference.push(Reverse((at, n)));
                    }
                } else {
                    let want = reference.pop().map(|Reverse(e)| e);
                    let got = q.pop().map(|(at, k)| match k {
                        Kind::Timer { task, .. } => (at, task),
                        _ => (at, 0),
                    });
                    assert_eq!(got, want, "seed {seed}");
                    if let Some((at, _)) = got {
                        now = at;
                        popped += 1;
                    }
                }
            }
            while let Some(Reverse(want)) = reference.pop() {
                let (at, k) = q.pop().unwrap();
                assert!(matches!(k, Kind::Timer { task, .. } if (at, task) == want));
            }
            assert!(q.pop().is_none());
            assert!(popped > 500, "seed {seed}: {popped}");
        }
    }

    /// An instant in the past (never scheduled by a run) counts as the last one popped.
    #[test]
    fn an_instant_in_the_past_counts_as_now() {
        let mut q = Queue::default();
        q.push(100, Kind::Phase);
        q.push(
            200,
            Kind::Timer {
                task: 1,
                generation: 0,
            },
        );
        assert_eq!(q.pop().map(|e| e.0), Some(100));
        q.push(
            50,
            Kind::Timer {
                task: 2,
                generation: 0,
            },
        );
        let (at, k) = q.pop().unwrap();
        assert_eq!(at, 100);
        assert!(matches!(k, Kind::Timer { task: 2, .. }));
        assert_eq!(q.pop().map(|e| e.0), Some(200));
    }
}
