//! The async form: [`Hedge::call`] and its [`Call`] future.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::config::Delay;
use super::shared::Hedge;
use super::state::{Machine, Next};
use crate::classify::{Classify, Verdict};
use crate::retry::{Operation, RetryBudget};
use crate::time::{Instant, Sleep};

impl<S: Sleep, const N: usize, K, B: RetryBudget> Hedge<S, N, K, B> {
    /// Runs `op` (a closure, or any [`Operation`]) hedged: the first copy at once, each further one after the delay (or at once
    /// when a copy's answer is not acceptable), if the budget has a token for it; returns the
    /// first acceptable answer and drops (cancels) every other copy, or, when every copy
    /// failed, the first copy's answer (the primary's: what the call would have returned
    /// unhedged).
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops every copy still running.
    ///
    /// ```
    /// use bulwark::hedge::{Config, Delay, Hedge};
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// let hedge: Hedge<_, 3> = Hedge::new(Config::new(Delay::Fixed(Duration::from_millis(10))), &clock).unwrap();
    /// let copies = Cell::new(0);
    /// // Every copy fails at once: each failure starts the next copy at once; then the
    /// // primary's answer is the call's.
    /// let out = mock::run(&clock, hedge.call(|| { copies.set(copies.get() + 1); let n = copies.get(); async move { Err::<(), _>(n) } }));
    /// assert_eq!((out.unwrap(), copies.get()), (Err(1), 3));
    /// ```
    pub fn call<F, Fut, T, E>(&self, op: F) -> Call<&Self, S, N, K, B, F, Fut>
    where
        F: Operation<Future = Fut>,
        Fut: Future<Output = Result<T, E>>,
        K: Classify<T, E>,
    {
        Call::new(self, op)
    }
}

/// The future of [`Hedge::call`], for any owner of the hedge (`&`, `Arc`, `&'static`) through
/// [`Call::new`]. The copies live in a fixed array of `N` slots inside it.
///
/// # Pinning
///
/// The copies and the timer are pinned in place (structural pinning of their slots): a copy
/// never moves between its first poll and its drop. The call is `Unpin` only when the copies'
/// futures and the sleep are.
///
/// ```
/// use bulwark::hedge::{Call, Config, Delay, Hedge};
/// use bulwark::{MockClock, mock};
/// use std::sync::Arc;
/// let clock = MockClock::new();
/// let hedge: Arc<Hedge<_, 2>> = Arc::new(Hedge::new(Config::new(Delay::Fixed(core::time::Duration::ZERO)), &clock).unwrap());
/// let call = Call::new(Arc::clone(&hedge), || async { Ok::<_, ()>(4) });
/// assert_eq!(mock::run(&clock, call).unwrap(), Ok(4));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Call<R, S: Sleep, const N: usize, K, B, F, Fut: Future> {
    hedge: R,
    op: F,
    machine: Machine<N>,
    /// No further hedge: the budget said no.
    denied: bool,
    /// Structurally pinned: the running copies, when each started and whether it is the
    /// primary (the first copy).
    slots: [Option<(Fut, Instant, bool)>; N],
    /// Structurally pinned: the sleep until the next copy is due, and its deadline.
    timer: Option<(S::Sleep, Instant)>,
    /// The answer returned when every copy fails: the primary's once it has failed, until
    /// then the first failed hedge's.
    last: Option<Fut::Output>,
    _policy: core::marker::PhantomData<fn() -> (K, B)>,
}

impl<R, S, const N: usize, K, B, F, Fut> Call<R, S, N, K, B, F, Fut>
where
    R: Deref<Target = Hedge<S, N, K, B>>,
    S: Sleep,
    Fut: Future,
{
    /// A hedged call of `op` through the hedge `hedge` points to.
    ///
    /// ```
    /// use bulwark::hedge::{Call, Config, Delay, Hedge};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let hedge: Hedge<_, 2> = Hedge::new(Config::new(Delay::Fixed(core::time::Duration::ZERO)), &clock).unwrap();
    /// assert_eq!(mock::run(&clock, Call::new(&hedge, || async { Ok::<_, ()>(1) })).unwrap(), Ok(1));
    /// ```
    pub fn new(hedge: R, op: F) -> Self {
        Call {
            hedge,
            op,
            machine: Machine::new(),
            denied: false,
            slots: core::array::from_fn(|_| None),
            timer: None,
            last: None,
            _policy: core::marker::PhantomData,
        }
    }
}

impl<R, S, const N: usize, K, B, F, Fut, T, E> Future for Call<R, S, N, K, B, F, Fut>
where
    R: Deref<Target = Hedge<S, N, K, B>>,
    S: Sleep,
    K: Classify<T, E>,
    B: RetryBudget,
    F: Operation<Future = Fut>,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `slots` and `timer` (and of nothing else), as in
        // `bounded::Bounded`:
        // 1. Their values are never moved: this function only writes `Some` into a `None`,
        //    writes `None` over a `Some` (dropping the value in place, as `Pin::set` does),
        //    or assigns a new timer over the old one (the same: drop in place, then write).
        // 2. `Call` has no `Drop` impl, is not `repr(packed)`, and is `Unpin` only when `Fut`
        //    and `S::Sleep` are (auto trait through the arrays), so safe code cannot move a
        //    pinned `Call` holding `!Unpin` copies.
        // 3. Drop guarantee: a copy or timer is dropped in place before its memory is reused.
        // Every other field is only used through `&mut`, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let hedge: &Hedge<S, N, K, B> = &this.hedge;
        loop {
            // One clock read serves every copy due now and their start instants: a ready call
            // reads the clock twice in all, here and when its answer is in.
            let now = hedge.sleeper.now();
            // Start every copy that is due.
            while let Next::StartAt(at) = this.machine.next()
                && !this.denied
                && at <= now
            {
                // The first copy is the call itself; each hedge takes a budget token.
                if this.machine.copies() > 0 && !hedge.budget.try_withdraw(now) {
                    this.denied = true;
                    break;
                }
                let primary = this.machine.copies() == 0;
                if let Some(slot) = this.slots.iter_mut().find(|s| s.is_none()) {
                    *slot = Some((this.op.attempt(), now, primary));
                }
                this.machine.started(now, hedge.delay());
                this.timer = None;
            }
            // Poll the copies running.
            let mut failed = false;
            for slot in this.slots.iter_mut() {
                let Some((fut, started, primary)) = slot.as_mut() else {
                    continue;
                };
                let (started, primary) = (*started, *primary);
                // SAFETY: `fut` lives in a slot of `slots`, structurally pinned (see above).
                let out = match unsafe { Pin::new_unchecked(fut) }.poll(cx) {
                    Poll::Ready(out) => out,
                    Poll::Pending => continue,
                };
                *slot = None;
                // Not acceptable: a failure. A success or an ignored answer (the caller's own
                // error, say) is the answer.
                if matches!(hedge.classify.classify(&out), Verdict::Failure { .. }) {
                    this.machine.failed(hedge.sleeper.now());
                    if primary || this.last.is_none() {
                        this.last = Some(out);
                    }
                    failed = true;
                    continue;
                }
                // The winner: the others are dropped (cancelled) in place.
                for other in this.slots.iter_mut() {
                    *other = None;
                }
                this.timer = None;
                // Only a percentile delay reads the latencies: a fixed one pays neither the
                // clock read nor the histogram's two shared writes.
                if let Delay::Percentile { .. } = hedge.cfg.delay {
                    let done = hedge.sleeper.now();
                    hedge
                        .latencies
                        .record(done.saturating_duration_since(started));
                }
                hedge.budget.deposit();
                this.denied = true; // polled again after completion: nothing starts
                return Poll::Ready(out);
            }
            if failed {
                continue; // a failure may start the next copy at once
            }
            let running = this.slots.iter().any(Option::is_some);
            if !running && (this.denied || this.machine.next() == Next::GiveUp) {
                this.timer = None;
                return match this.last.take() {
                    Some(out) => Poll::Ready(out),
                    None => Poll::Pending, // polled after completion
                };
            }
            // Wait for a copy or the timer of the next one, armed only now: a call whose
            // first copy answers at once never touches the timer.
            match this.machine.next() {
                Next::StartAt(at) if !this.denied => {
                    if this.timer.as_ref().map(|t| t.1) != Some(at) {
                        this.timer = Some((hedge.sleeper.sleep_until(at), at));
                    }
                }
                _ => this.timer = None,
            }
            if let Some((sleep, _)) = this.timer.as_mut() {
                // SAFETY: the sleep lives in `timer`, structurally pinned (see above).
                if unsafe { Pin::new_unchecked(sleep) }.poll(cx).is_ready() {
                    this.timer = None;
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

impl<R, S: Sleep, const N: usize, K, B, F, Fut: Future> fmt::Debug for Call<R, S, N, K, B, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("machine", &self.machine)
            .field("denied", &self.denied)
            .finish_non_exhaustive()
    }
}

// The pinned slots, where Miri can see them (`.ci/run` runs `hedge::` under Miri): `!Unpin`
// copies that hold a borrow of their own state across an await, moved before the first
// poll, raced to a winner, and dropped mid-flight.
#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;

    use core::cell::Cell;
    use core::time::Duration;

    use crate::hedge::{Config, Delay, Hedge};
    use crate::{Clock, Instant, MockClock, mock};

    #[test]
    fn pinned_copies_race_and_the_losers_drop_in_place() {
        let clock = MockClock::new();
        let hedge: Hedge<_, 3> =
            Hedge::new(Config::new(Delay::Fixed(Duration::from_millis(5))), &clock).unwrap();
        let n = Cell::new(0u64);
        let call = hedge.call(|| {
            n.set(n.get() + 1);
            let (clock, me) = (&clock, n.get());
            async move {
                let local = [me; 4]; // borrowed across the await: the future is !Unpin
                let r = &local;
                clock.sleep(Duration::from_millis(30 - me * 10)).await;
                Ok::<_, ()>(r[3])
            }
        });
        let moved = Box::new(call); // moved before its first poll
        assert_eq!(mock::run(&clock, Box::into_pin(moved)).unwrap(), Ok(3));
        assert_eq!(clock.now(), Instant::from_millis(10)); // third copy: 10 ms + 0 ms left
        let mut call = Box::pin(hedge.call(|| {
            let clock = &clock;
            async move {
                clock.sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(0)
            }
        }));
        let cx = &mut core::task::Context::from_waker(core::task::Waker::noop());
        assert!(call.as_mut().poll(cx).is_pending());
        drop(call);
        assert_eq!(clock.next_deadline(), None);
    }
}
