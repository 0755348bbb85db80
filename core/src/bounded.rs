//! Bounded concurrency: run many operations with at most `K` in flight, results in input
//! order, without allocation.
//!
//! The seeds' `fetch_all(urls, max_concurrent)`: [`Limit::all`] takes an array of `N` inputs
//! and an operation, keeps at most `K` of the operation's futures running in a fixed array
//! of `K` slots inside the returned future, and yields `[output; N]` in input order whatever
//! order they finish in. [`Limit::collect_into`] takes any iterator and writes results into a
//! caller's `&mut [Option<T>]`; [`Limit::for_each`] just drives them. Everything runs inside
//! the one future (no spawning): dropping it cancels every operation in flight.
//!
//! # Examples
//!
//! ```
//! use bulwark::bounded::Limit;
//! use bulwark::{Clock, Instant, MockClock, Sleep, mock};
//! use core::time::Duration;
//!
//! let clock = MockClock::new();
//! // Ten "requests" of 1 s each, at most 3 at a time: 4 rounds, 4 s.
//! let urls: [u64; 10] = core::array::from_fn(|i| i as u64);
//! let bodies = mock::run(&clock, Limit::<3>::all(urls, |url| {
//!     let clock = &clock;
//!     async move {
//!         clock.sleep(Duration::from_secs(1)).await;
//!         url * 100
//!     }
//! }))
//! .unwrap();
//! assert_eq!(bodies, core::array::from_fn(|i| i as u64 * 100));
//! assert_eq!(clock.now(), Instant::from_secs(4));
//! ```

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// At most `K` operations in flight. A namespace for the constructors, so the limit is the
/// only thing a caller spells out: `Limit::<4>::all(inputs, op)`. `K = 0` is a compile error.
///
/// ```
/// use bulwark::bounded::Limit;
/// use bulwark::{MockClock, mock};
/// let clock = MockClock::new();
/// let squares = mock::run(&clock, Limit::<2>::all([1, 2, 3], |x| async move { x * x })).unwrap();
/// assert_eq!(squares, [1, 4, 9]);
/// ```
///
/// No operation could ever start under a limit of zero, so it does not compile:
///
/// ```compile_fail
/// use bulwark::bounded::Limit;
/// use bulwark::{MockClock, mock};
/// let clock = MockClock::new();
/// let _ = mock::run(&clock, Limit::<0>::all([1, 2, 3], |x| async move { x }));
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct Limit<const K: usize>;

impl<const K: usize> Limit<K> {
    /// Runs `op` on each of the `N` inputs, at most `K` at a time; completes with the `N`
    /// outputs in input order.
    ///
    /// ```
    /// use bulwark::bounded::Limit;
    /// use bulwark::{MockClock, Sleep, mock};
    /// use core::time::Duration;
    /// let clock = MockClock::new();
    /// // The later inputs finish first; the results are still in input order.
    /// let out = mock::run(&clock, Limit::<3>::all([30u64, 20, 10], |ms| {
    ///     let clock = &clock;
    ///     async move { clock.sleep(Duration::from_millis(ms)).await; ms }
    /// }))
    /// .unwrap();
    /// assert_eq!(out, [30, 20, 10]);
    /// ```
    pub fn all<I, F, Fut, const N: usize>(inputs: [I; N], op: F) -> All<I, F, Fut, K, N>
    where
        F: FnMut(I) -> Fut,
        Fut: Future,
    {
        Limit::<K>::run(inputs, op, InOrder::new())
    }

    /// Runs `op` on each input, at most `K` at a time, writing each output to
    /// `out[input index]`; completes with the number of outputs written. At most
    /// `out.len()` inputs are taken from the iterator (the rest are never started).
    ///
    /// ```
    /// use bulwark::bounded::Limit;
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let mut out = [None; 4];
    /// let n = mock::run(&clock, Limit::<2>::collect_into(1..=6, |x| async move { x * 10 }, &mut out)).unwrap();
    /// assert_eq!(n, 4);
    /// assert_eq!(out, [Some(10), Some(20), Some(30), Some(40)]);
    /// ```
    pub fn collect_into<'s, It, F, Fut>(
        inputs: It,
        op: F,
        out: &'s mut [Option<Fut::Output>],
    ) -> Bounded<core::iter::Take<It::IntoIter>, F, Fut, IntoSlice<'s, Fut::Output>, K>
    where
        It: IntoIterator,
        F: FnMut(It::Item) -> Fut,
        Fut: Future,
    {
        let n = out.len();
        Limit::<K>::run(inputs.into_iter().take(n), op, IntoSlice::new(out))
    }

    /// Runs `op` on each input, at most `K` at a time, dropping the outputs; completes with
    /// the number of operations run.
    ///
    /// ```
    /// use bulwark::bounded::Limit;
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// let clock = MockClock::new();
    /// let sum = Cell::new(0);
    /// let n = mock::run(&clock, Limit::<8>::for_each(1..=100, |x| {
    ///     let sum = &sum;
    ///     async move { sum.set(sum.get() + x) }
    /// }))
    /// .unwrap();
    /// assert_eq!((n, sum.get()), (100, 5050));
    /// ```
    pub fn for_each<It, F, Fut>(inputs: It, op: F) -> Bounded<It::IntoIter, F, Fut, Discard, K>
    where
        It: IntoIterator,
        F: FnMut(It::Item) -> Fut,
        Fut: Future,
    {
        Limit::<K>::run(inputs, op, Discard::default())
    }

    /// The general form: runs `op` on each input, at most `K` at a time, handing each output
    /// with its input index to `outputs`.
    ///
    /// ```
    /// use bulwark::bounded::{Discard, Limit};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let n = mock::run(&clock, Limit::<1>::run([(); 3], |()| async {}, Discard::default())).unwrap();
    /// assert_eq!(n, 3);
    /// ```
    pub fn run<It, F, Fut, O>(inputs: It, op: F, outputs: O) -> Bounded<It::IntoIter, F, Fut, O, K>
    where
        It: IntoIterator,
        F: FnMut(It::Item) -> Fut,
        Fut: Future,
        O: Outputs<Fut::Output>,
    {
        const {
            assert!(
                K > 0,
                "at least one operation must be allowed in flight (K > 0)"
            )
        };
        Bounded {
            inputs: inputs.into_iter(),
            op,
            next_index: 0,
            exhausted: false,
            finished: false,
            slots: [const { None }; K],
            index: [0; K],
            out: outputs,
        }
    }
}

/// Where a [`Bounded`] puts each output: told the input's index, in completion order.
///
/// ```
/// use bulwark::bounded::{Limit, Outputs};
/// use bulwark::{MockClock, mock};
/// /// Keeps the sum of the outputs.
/// struct Sum(u32);
/// impl Outputs<u32> for Sum {
///     type Done = u32;
///     fn put(&mut self, _index: usize, v: u32) { self.0 += v }
///     fn finish(&mut self) -> u32 { self.0 }
/// }
/// let clock = MockClock::new();
/// assert_eq!(mock::run(&clock, Limit::<2>::run([1, 2, 3], |x| async move { x }, Sum(0))).unwrap(), 6);
/// ```
pub trait Outputs<T> {
    /// What the [`Bounded`] future completes with.
    type Done;
    /// The operation started for input number `index` completed with `value`. Each index
    /// is put exactly once.
    fn put(&mut self, index: usize, value: T);
    /// Every operation has completed; called once.
    fn finish(&mut self) -> Self::Done;
}

/// The outputs of [`Limit::all`]: `N` optional values, completed as `[T; N]` in input order.
/// Only [`Limit::all`] builds one (it fills every index before it finishes), so finishing
/// with a missing value cannot happen.
///
/// ```
/// use bulwark::{MockClock, Sleep, bounded::Limit, mock};
/// use core::time::Duration;
/// let clock = MockClock::new();
/// // The slower first input still lands first: results are in input order.
/// let out = mock::run(&clock, Limit::<2>::all([30u64, 10], |ms| {
///     let clock = &clock;
///     async move { clock.sleep(Duration::from_millis(ms)).await; ms }
/// }));
/// assert_eq!(out.unwrap(), [30, 10]);
/// ```
pub struct InOrder<T, const N: usize> {
    values: [Option<T>; N],
}

impl<T, const N: usize> InOrder<T, N> {
    /// Empty (only [`Limit::all`] builds one).
    pub(crate) const fn new() -> Self {
        InOrder {
            values: [const { None }; N],
        }
    }
}

impl<T, const N: usize> Outputs<T> for InOrder<T, N> {
    type Done = [T; N];

    fn put(&mut self, index: usize, value: T) {
        if let Some(v) = self.values.get_mut(index) {
            *v = Some(value);
        }
    }

    /// Never short of a value: an `InOrder` is only built by [`Limit::all`], whose
    /// [`Bounded`] puts every index of its `N`-array input exactly once before `finish`.
    fn finish(&mut self) -> [T; N] {
        let values = core::mem::replace(&mut self.values, [const { None }; N]);
        values.map(|v| match v {
            Some(v) => v,
            None => unreachable!("bounded: finish before every index was put"),
        })
    }
}

impl<T, const N: usize> fmt::Debug for InOrder<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self.values.iter().filter(|v| v.is_some()).count();
        f.debug_struct("InOrder")
            .field("done", &done)
            .field("of", &N)
            .finish()
    }
}

/// The outputs of [`Limit::collect_into`]: `out[index] = Some(value)`; completes with the
/// number written.
///
/// ```
/// use bulwark::bounded::{IntoSlice, Outputs};
/// let mut buf = [None, None];
/// let mut o = IntoSlice::new(&mut buf);
/// o.put(1, 'x');
/// o.put(9, 'y'); // out of range: dropped
/// assert_eq!(o.finish(), 1);
/// assert_eq!(buf, [None, Some('x')]);
/// ```
pub struct IntoSlice<'s, T> {
    out: &'s mut [Option<T>],
    written: usize,
}

impl<'s, T> IntoSlice<'s, T> {
    /// Writes into `out`.
    ///
    /// ```
    /// let mut buf: [Option<u8>; 1] = [None];
    /// let _o = bulwark::bounded::IntoSlice::new(&mut buf);
    /// ```
    pub fn new(out: &'s mut [Option<T>]) -> Self {
        IntoSlice { out, written: 0 }
    }
}

impl<T> Outputs<T> for IntoSlice<'_, T> {
    type Done = usize;

    fn put(&mut self, index: usize, value: T) {
        if let Some(v) = self.out.get_mut(index) {
            *v = Some(value);
            self.written += 1;
        }
    }

    fn finish(&mut self) -> usize {
        self.written
    }
}

impl<T> fmt::Debug for IntoSlice<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoSlice")
            .field("len", &self.out.len())
            .field("written", &self.written)
            .finish()
    }
}

/// The outputs of [`Limit::for_each`]: dropped; completes with how many there were.
///
/// ```
/// use bulwark::bounded::{Discard, Outputs};
/// let mut d = Discard::default();
/// d.put(0, "ignored");
/// assert_eq!(Outputs::<&str>::finish(&mut d), 1);
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct Discard {
    count: usize,
}

impl<T> Outputs<T> for Discard {
    type Done = usize;

    fn put(&mut self, _index: usize, value: T) {
        drop(value);
        self.count += 1;
    }

    fn finish(&mut self) -> usize {
        self.count
    }
}

/// The future of [`Limit::all`]: `[Fut::Output; N]` in input order.
///
/// ```
/// use bulwark::bounded::{All, Limit};
/// use bulwark::{MockClock, mock};
/// use core::future::{Ready, ready};
/// let clock = MockClock::new();
/// let f: All<u8, fn(u8) -> Ready<u8>, Ready<u8>, 2, 3> = Limit::<2>::all([1, 2, 3], ready as fn(u8) -> Ready<u8>);
/// assert_eq!(mock::run(&clock, f).unwrap(), [1, 2, 3]);
/// ```
pub type All<I, F, Fut, const K: usize, const N: usize> =
    Bounded<core::array::IntoIter<I, N>, F, Fut, InOrder<<Fut as Future>::Output, N>, K>;

/// Runs the futures an operation makes from each input, at most `K` at a time, in a fixed
/// array of `K` slots inside this future; hands each output to `O` with its input index.
/// Built by [`Limit`].
///
/// # Cancellation
///
/// Dropping it drops every operation in flight (cancelling them) and starts no more.
///
/// # Pinning
///
/// The operations' futures are pinned in place in their slots (structural pinning of the
/// slot array): a `!Unpin` future (an `async` block holding a borrow across an `.await`)
/// never moves from its first poll until it is dropped, in its slot. The struct is `Unpin`
/// only when those futures are.
///
/// ```
/// use bulwark::bounded::Limit;
/// use bulwark::{MockClock, mock};
/// let clock = MockClock::new();
/// let fut = Limit::<4>::all([1u8, 2], |x| async move { x + 1 });
/// assert!(format!("{fut:?}").starts_with("Bounded"));
/// assert_eq!(mock::run(&clock, fut).unwrap(), [2, 3]);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Bounded<It, F, Fut, O, const K: usize> {
    inputs: It,
    op: F,
    next_index: usize,
    exhausted: bool,
    finished: bool,
    /// Structurally pinned: see `poll`.
    slots: [Option<Fut>; K],
    /// The input index of the future in the slot of the same number.
    index: [usize; K],
    out: O,
}

impl<It, F, Fut, O, const K: usize> Bounded<It, F, Fut, O, K> {
    /// Operations running now (a snapshot).
    ///
    /// ```
    /// use bulwark::bounded::Limit;
    /// let fut = Limit::<4>::all([1u8, 2], |x| async move { x });
    /// assert_eq!(fut.in_flight(), 0); // nothing starts before the first poll
    /// ```
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Operations started so far.
    ///
    /// ```
    /// use bulwark::bounded::Limit;
    /// let fut = Limit::<4>::all([1u8, 2], |x| async move { x });
    /// assert_eq!(fut.started(), 0);
    /// ```
    pub fn started(&self) -> usize {
        self.next_index
    }
}

impl<It, F, Fut, O, const K: usize> Future for Bounded<It, F, Fut, O, K>
where
    It: Iterator,
    F: FnMut(It::Item) -> Fut,
    Fut: Future,
    O: Outputs<Fut::Output>,
{
    type Output = O::Done;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Done> {
        // SAFETY: structural pinning of `slots` (and of nothing else). What Pin requires of
        // us, point by point:
        // 1. The futures in `slots` are never moved: this module never moves a slot's value
        //    out (no `take`, `swap`, `replace` on a `Some`), only writes `Some` into a slot
        //    that holds `None` and writes `None` over a `Some`, which drops the future in
        //    place, as `Pin::set` does.
        // 2. `Bounded` has no `Drop` impl that could move them, is not `repr(packed)`, and
        //    its auto `Unpin` requires `Fut: Unpin` (through `[Option<Fut>; K]`), so safe code
        //    cannot move a `Bounded` holding `!Unpin` futures after pinning it.
        // 3. The drop guarantee holds: a future is dropped in its slot (by the `None` write or
        //    by the array's own drop glue) before its memory is reused or freed.
        // The other fields are not pinned: they are only used through `&mut`, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if this.finished {
            return Poll::Pending; // polled after completion
        }
        loop {
            let mut completed = false;
            for i in 0..K {
                if this.slots[i].is_none() && !this.exhausted {
                    match this.inputs.next() {
                        Some(input) => {
                            this.index[i] = this.next_index;
                            this.next_index = this.next_index.saturating_add(1);
                            this.slots[i] = Some((this.op)(input));
                        }
                        None => this.exhausted = true,
                    }
                }
                if let Some(fut) = this.slots[i].as_mut() {
                    // SAFETY: `fut` lives in `slots[i]`, which is structurally pinned (see
                    // above): it stays at this address until it is dropped in place.
                    let fut = unsafe { Pin::new_unchecked(fut) };
                    if let Poll::Ready(v) = fut.poll(cx) {
                        this.slots[i] = None;
                        this.out.put(this.index[i], v);
                        completed = true;
                    }
                }
            }
            if this.exhausted && this.slots.iter().all(Option::is_none) {
                this.finished = true;
                return Poll::Ready(this.out.finish());
            }
            if !completed {
                return Poll::Pending;
            }
            // A slot freed up: start the next input at once (no wake-up needed).
        }
    }
}

impl<It, F, Fut, O: fmt::Debug, const K: usize> fmt::Debug for Bounded<It, F, Fut, O, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded")
            .field("limit", &K)
            .field("in_flight", &self.in_flight())
            .field("started", &self.next_index)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use crate::{Clock, Instant, MockClock, mock};
    use core::cell::Cell;
    use core::marker::PhantomPinned;
    use core::pin::pin;
    use core::task::Waker;
    use core::time::Duration;

    /// Counts operations running at once and remembers the most.
    #[derive(Default)]
    struct Gauge {
        now: Cell<usize>,
        max: Cell<usize>,
        dropped_unfinished: Cell<usize>,
    }

    struct Running<'g> {
        g: &'g Gauge,
        finished: bool,
    }

    impl<'g> Running<'g> {
        fn start(g: &'g Gauge) -> Self {
            g.now.set(g.now.get() + 1);
            g.max.set(g.max.get().max(g.now.get()));
            Running { g, finished: false }
        }
    }

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.g.now.set(self.g.now.get() - 1);
            if !self.finished {
                self.g
                    .dropped_unfinished
                    .set(self.g.dropped_unfinished.get() + 1);
            }
        }
    }

    #[test]
    fn never_more_than_k_in_flight_and_results_in_order() {
        let clock = MockClock::new();
        let g = Gauge::default();
        // Durations chosen so completion order differs from input order.
        let ms: [u64; 12] = [50, 10, 40, 30, 20, 60, 5, 5, 70, 15, 25, 35];
        let out = mock::run(
            &clock,
            Limit::<3>::all(ms, |d| {
                let (clock, g) = (&clock, &g);
                async move {
                    let mut r = Running::start(g);
                    clock.sleep(Duration::from_millis(d)).await;
                    r.finished = true;
                    (d, clock.now())
                }
            }),
        )
        .unwrap();
        assert_eq!(g.max.get(), 3);
        assert_eq!(g.now.get(), 0);
        assert_eq!(out.map(|(d, _)| d), ms);
        // Greedy refill: input 3 starts when input 1 (10 ms) ends, at 10 ms, ends at 40 ms.
        assert_eq!(out[3].1, Instant::from_millis(40));
    }

    #[test]
    fn k_larger_than_n_runs_all_at_once() {
        let clock = MockClock::new();
        let g = Gauge::default();
        let out = mock::run(
            &clock,
            Limit::<16>::all([3u64, 1, 2], |d| {
                let (clock, g) = (&clock, &g);
                async move {
                    let mut r = Running::start(g);
                    clock.sleep(Duration::from_secs(d)).await;
                    r.finished = true;
                    d
                }
            }),
        )
        .unwrap();
        assert_eq!(
            (out, g.max.get(), clock.now()),
            ([3, 1, 2], 3, Instant::from_secs(3))
        );
    }

    #[test]
    fn empty_input_completes_at_once() {
        let clock = MockClock::new();
        let out: [u8; 0] =
            mock::run(&clock, Limit::<2>::all([0u8; 0], |x| async move { x })).unwrap();
        assert_eq!(out, []);
        let n = mock::run(
            &clock,
            Limit::<2>::for_each(core::iter::empty::<u8>(), |_| async {}),
        )
        .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn dropping_the_future_cancels_everything_in_flight() {
        let clock = MockClock::new();
        let g = Gauge::default();
        let started = Cell::new(0);
        {
            let mut fut = pin!(Limit::<4>::for_each(0..100u64, |i| {
                let (clock, g, started) = (&clock, &g, &started);
                started.set(started.get() + 1);
                async move {
                    let mut r = Running::start(g);
                    clock.sleep(Duration::from_millis(10 + i)).await;
                    r.finished = true;
                }
            }));
            let cx = &mut Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(cx).is_pending());
            clock.advance(Duration::from_millis(10)); // the first one completes
            assert!(fut.as_mut().poll(cx).is_pending());
            assert_eq!((g.now.get(), fut.in_flight(), fut.started()), (4, 4, 5));
        }
        assert_eq!(g.now.get(), 0);
        assert_eq!(g.dropped_unfinished.get(), 4);
        assert_eq!(started.get(), 5, "nothing starts after the drop");
        assert_eq!(clock.next_deadline(), None, "their sleeps are gone too");
    }

    /// A `!Unpin` future that checks it is polled at the address of its first poll, and
    /// needs `left` more polls (it wakes itself each time, like a yield).
    struct PinnedProbe {
        left: u32,
        addr: Option<usize>,
        polls: u32,
        _pin: PhantomPinned,
    }

    impl Future for PinnedProbe {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            let here = &*self as *const Self as usize;
            // SAFETY: test code; only plain fields are written, nothing pinned is moved.
            let this = unsafe { self.get_unchecked_mut() };
            match this.addr {
                None => this.addr = Some(here),
                Some(a) => assert_eq!(a, here, "a pinned future moved between polls"),
            }
            this.polls += 1;
            if this.left == 0 {
                return Poll::Ready(this.polls);
            }
            this.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn not_unpin_futures_stay_put_between_polls() {
        fn is_unpin<T: Unpin>(_: &T) {}
        let clock = MockClock::new();
        let unpin = Limit::<2>::all([1u8], core::future::ready);
        is_unpin(&unpin); // Unpin futures: the whole thing is Unpin
        let lefts: [u32; 9] = [5, 1, 3, 8, 2, 2, 7, 1, 4];
        let polls = mock::run(
            &clock,
            Limit::<3>::all(lefts, |left| PinnedProbe {
                left,
                addr: None,
                polls: 0,
                _pin: PhantomPinned,
            }),
        )
        .unwrap();
        assert_eq!(polls, lefts.map(|l| l + 1));
    }

    #[test]
    fn collect_into_takes_only_what_fits_and_any_iterator() {
        let clock = MockClock::new();
        let mut out = [None; 3];
        let n = mock::run(
            &clock,
            Limit::<2>::collect_into(
                (0..).map(|i| i * 2),
                |x: u32| async move { x + 1 },
                &mut out,
            ),
        )
        .unwrap();
        assert_eq!((n, out), (3, [Some(1), Some(3), Some(5)]));
    }

    #[test]
    fn polled_after_completion_stays_pending() {
        let mut fut = pin!(Limit::<1>::all([1], core::future::ready));
        let cx = &mut Context::from_waker(Waker::noop());
        assert_eq!(fut.as_mut().poll(cx), Poll::Ready([1]));
        assert!(fut.as_mut().poll(cx).is_pending());
        let _ = MockClock::new().now();
    }
}
