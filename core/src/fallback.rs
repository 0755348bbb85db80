//! Fallback chains: primary, then secondary, then a stale cached value, then a default.
//!
//! A chain is a value built with [`fallback`] and `or*` steps, awaited directly. Each step
//! receives the error of the step before it (the reason it failed), and a predicate decides
//! which errors fall through at all: an open circuit or a timeout may fall back, a caller
//! error should come straight back. Every step has the same `Result<T, E>` type, so one error
//! type carries the whole chain (map your errors into it). Nothing is boxed or allocated: a
//! chain is one nested, named future.
//!
//! # Examples
//!
//! ```
//! use bulwark::classify::Verdict;
//! use bulwark::fallback::{Stale, fallback};
//! use bulwark::{MockClock, mock};
//! use core::time::Duration;
//!
//! #[derive(Debug, PartialEq)]
//! enum Error { Down, NotFound }
//!
//! let clock = MockClock::new();
//! let cache: Stale<_> = Stale::new();
//! // Only "down" falls back; a "not found" is the answer (the one classification: see
//! // `bulwark::classify`).
//! let down = |r: &Result<u32, Error>| if matches!(r, Err(Error::Down)) { Verdict::FAILURE } else { Verdict::Ignore };
//! let price = |up: bool| {
//!     fallback(move || async move { if up { Ok(42) } else { Err(Error::Down) } })
//!         .refresh(&cache, &clock) // a success refreshes the stale copy
//!         .or_if(down, |_| async { Err(Error::Down) }) // secondary down too
//!         .or_stale(&cache, &clock, Duration::from_secs(60))
//!         .or_value(0)
//! };
//! assert_eq!(mock::run(&clock, price(true).into_future()).unwrap(), Ok(42));
//! assert_eq!(mock::run(&clock, price(false).into_future()).unwrap(), Ok(42)); // stale
//! clock.advance(Duration::from_secs(61));
//! assert_eq!(mock::run(&clock, price(false).into_future()).unwrap(), Ok(0)); // too old: default
//! # use core::future::IntoFuture;
//! ```

use core::fmt;
use core::future::{Future, IntoFuture, Ready, ready};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use crate::classify::{Classify, ErrorsAreFailures};
use crate::lock::{Mutex, RawLock, SpinLock};
use crate::sync::const_fn;
use crate::time::{Clock, Instant};

/// Starts a chain with the primary operation.
///
/// ```
/// use bulwark::{MockClock, fallback::fallback, mock};
/// use core::future::IntoFuture;
/// let clock = MockClock::new();
/// let chain = fallback(|| async { Err::<u8, &str>("primary down") })
///     .or(|why| async move { assert_eq!(why, "primary down"); Ok(2) });
/// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(2));
/// ```
pub fn fallback<F, Fut>(primary: F) -> Fallback<Primary<F>>
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    Fallback {
        step: Primary(primary),
    }
}

/// A fallback chain under construction; await it (it is [`IntoFuture`]).
///
/// ```
/// use bulwark::{MockClock, fallback::fallback, mock};
/// use core::future::IntoFuture;
/// let clock = MockClock::new();
/// let out = mock::run(&clock, fallback(|| async { Ok::<_, ()>(1) }).or_value(9).into_future());
/// assert_eq!(out.unwrap(), Ok(1));
/// ```
#[derive(Debug)]
#[must_use = "a fallback chain does nothing until awaited"]
pub struct Fallback<S> {
    step: S,
}

/// A link of a chain: something that starts a future. Implemented by the chain's own types.
///
/// ```
/// use bulwark::fallback::{Step, fallback};
/// use core::future::IntoFuture;
/// fn starts<S: Step>(_: &bulwark::fallback::Fallback<S>) {}
/// let chain = fallback(|| async { Ok::<u8, ()>(1) });
/// starts(&chain);
/// # let _ = chain.into_future();
/// ```
pub trait Step {
    /// What the step's future yields.
    type Output;
    /// The step's future.
    type Future: Future<Output = Self::Output>;
    /// Starts the step.
    fn start(self) -> Self::Future;
}

/// The first link: the primary operation.
///
/// ```
/// let _chain: bulwark::fallback::Fallback<bulwark::fallback::Primary<_>> =
///     bulwark::fallback::fallback(|| async { Ok::<u8, ()>(1) });
/// ```
#[derive(Debug)]
pub struct Primary<F>(F);

impl<F: FnOnce() -> Fut, Fut: Future> Step for Primary<F> {
    type Output = Fut::Output;
    type Future = Fut;
    fn start(self) -> Fut {
        (self.0)()
    }
}

/// A link that runs `next` with the error of `first` when `when` says so.
///
/// ```
/// use bulwark::{MockClock, fallback::fallback, mock};
/// use core::future::IntoFuture;
/// let clock = MockClock::new();
/// let chain = fallback(|| async { Err::<u8, u8>(1) }).or(|e| async move { Ok(e + 1) }); // an `Or` link
/// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(2));
/// ```
#[derive(Debug)]
pub struct Or<S, G, P> {
    first: S,
    next: G,
    when: P,
}

impl<S, G, P, T, E, Fut> Step for Or<S, G, P>
where
    S: Step<Output = Result<T, E>>,
    G: FnOnce(E) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    P: Classify<T, E>,
{
    type Output = Result<T, E>;
    type Future = OrFuture<S::Future, G, Fut, P>;
    fn start(self) -> Self::Future {
        OrFuture {
            state: OrState::First {
                fut: self.first.start(),
                next: Some((self.next, self.when)),
            },
        }
    }
}

pin_project! {
    #[project = OrProj]
    enum OrState<A, G, B, P> {
        First { #[pin] fut: A, next: Option<(G, P)> },
        Second { #[pin] fut: B },
    }
}

pin_project! {
    /// The future of one `or` link: the step before it, then (maybe) the fallback.
    ///
    /// ```
    /// use bulwark::{MockClock, fallback::fallback, mock};
    /// use core::future::IntoFuture;
    /// let clock = MockClock::new();
    /// let fut = fallback(|| async { Err::<u8, ()>(()) }).or_value(3).into_future(); // an `OrFuture`
    /// assert_eq!(mock::run(&clock, fut).unwrap(), Ok(3));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct OrFuture<A, G, B, P> {
        #[pin]
        state: OrState<A, G, B, P>,
    }
}

impl<A, G, B, P, T, E> Future for OrFuture<A, G, B, P>
where
    A: Future<Output = Result<T, E>>,
    G: FnOnce(E) -> B,
    B: Future<Output = Result<T, E>>,
    P: Classify<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                OrProj::First { fut, next } => {
                    let result = core::task::ready!(fut.poll(cx));
                    // Only an error the classifier calls a failure falls back (an `Ok`, even
                    // one judged a failure, is returned: the next step takes an error).
                    let falls_back =
                        matches!(next, Some((_, when)) if when.classify(&result).is_failure());
                    let err = match result {
                        Ok(v) => return Poll::Ready(Ok(v)),
                        Err(e) => e,
                    };
                    match next.take() {
                        Some((g, _)) if falls_back => {
                            // Replacing the pinned state drops the finished first future in
                            // place; the fallback starts with the reason it is needed.
                            this.state.set(OrState::Second { fut: g(err) });
                        }
                        _ => return Poll::Ready(Err(err)),
                    }
                }
                OrProj::Second { fut } => return fut.poll(cx),
            }
        }
    }
}

impl<A, G, B, P> fmt::Debug for OrFuture<A, G, B, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrFuture").finish_non_exhaustive()
    }
}

/// A link that copies every success into a [`Stale`] cache.
///
/// ```
/// use bulwark::{MockClock, fallback::{Stale, fallback}};
/// let clock = MockClock::new();
/// let cache: Stale<u8> = Stale::new();
/// let _chain = fallback(|| async { Ok::<u8, ()>(1) }).refresh(&cache, &clock); // a `Refresh` link
/// ```
#[derive(Debug)]
pub struct Refresh<'a, S, T, C, L = SpinLock> {
    first: S,
    cache: &'a Stale<T, L>,
    clock: C,
}

impl<'a, S, T, E, C, L> Step for Refresh<'a, S, T, C, L>
where
    S: Step<Output = Result<T, E>>,
    T: Clone,
    C: Clock,
    L: RawLock,
{
    type Output = Result<T, E>;
    type Future = RefreshFuture<'a, S::Future, T, C, L>;
    fn start(self) -> Self::Future {
        RefreshFuture {
            fut: self.first.start(),
            cache: self.cache,
            clock: self.clock,
        }
    }
}

pin_project! {
    /// The future of [`Fallback::refresh`].
    ///
    /// ```
    /// use bulwark::{Clock, MockClock, fallback::{Stale, fallback}, mock};
    /// use core::{future::IntoFuture, time::Duration};
    /// let clock = MockClock::new();
    /// let cache: Stale<_> = Stale::new();
    /// let fut = fallback(|| async { Ok::<u8, ()>(4) }).refresh(&cache, &clock).into_future();
    /// assert_eq!(mock::run(&clock, fut).unwrap(), Ok(4));
    /// assert_eq!(cache.get(clock.now(), Duration::ZERO), Some(4));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct RefreshFuture<'a, F, T, C, L = SpinLock> {
        #[pin]
        fut: F,
        cache: &'a Stale<T, L>,
        clock: C,
    }
}

impl<F, T, E, C, L> Future for RefreshFuture<'_, F, T, C, L>
where
    F: Future<Output = Result<T, E>>,
    T: Clone,
    C: Clock,
    L: RawLock,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let this = self.project();
        let out = core::task::ready!(this.fut.poll(cx));
        if let Ok(v) = &out {
            this.cache.put(v.clone(), this.clock.now());
        }
        Poll::Ready(out)
    }
}

impl<F, T, C, L> fmt::Debug for RefreshFuture<'_, F, T, C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshFuture").finish_non_exhaustive()
    }
}

impl<S: Step> Fallback<S> {
    /// On any error, run `next` with it.
    ///
    /// ```
    /// use bulwark::{MockClock, fallback::fallback, mock};
    /// use core::future::IntoFuture;
    /// let clock = MockClock::new();
    /// let chain = fallback(|| async { Err::<u8, u8>(1) }).or(|e| async move { Err(e + 1) }).or(|e| async move { Ok(e * 10) });
    /// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(20));
    /// ```
    pub fn or<G>(self, next: G) -> Fallback<Or<S, G, ErrorsAreFailures>> {
        Fallback {
            step: Or {
                first: self.step,
                next,
                when: ErrorsAreFailures,
            },
        }
    }

    /// When `when` (the one [classification](crate::classify) of every pattern) judges the
    /// error a failure, run `next` with it; otherwise (ignored) return the error as is.
    ///
    /// ```
    /// use bulwark::{MockClock, classify::Verdict, fallback::fallback, mock};
    /// use core::future::IntoFuture;
    /// let clock = MockClock::new();
    /// // A 404 is the caller's problem: no fallback.
    /// let server_side = |r: &Result<&str, u16>| match r {
    ///     Err(500..) => Verdict::FAILURE,
    ///     Err(_) => Verdict::Ignore,
    ///     Ok(_) => Verdict::Success,
    /// };
    /// let chain = fallback(|| async { Err::<&str, u16>(404) }).or_if(server_side, |_| async { Ok("cached") });
    /// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Err(404));
    /// ```
    pub fn or_if<P, G>(self, when: P, next: G) -> Fallback<Or<S, G, P>> {
        Fallback {
            step: Or {
                first: self.step,
                next,
                when,
            },
        }
    }

    /// On any error, answer `value`.
    ///
    /// ```
    /// use bulwark::{MockClock, fallback::fallback, mock};
    /// use core::future::IntoFuture;
    /// let clock = MockClock::new();
    /// let chain = fallback(|| async { Err::<u8, ()>(()) }).or_value(7);
    /// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(7));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn or_value<T, E>(
        self,
        value: T,
    ) -> Fallback<Or<S, impl FnOnce(E) -> Ready<Result<T, E>>, ErrorsAreFailures>>
    where
        S: Step<Output = Result<T, E>>,
    {
        self.or(move |_| ready(Ok(value)))
    }

    /// On any error, answer the cached value if it is at most `max_age` old (read on
    /// `clock`); otherwise pass the error on.
    ///
    /// ```
    /// use bulwark::{Clock, MockClock, fallback::{Stale, fallback}, mock};
    /// use core::{future::IntoFuture, time::Duration};
    /// let clock = MockClock::new();
    /// let cache: Stale<_> = Stale::new();
    /// cache.put(5, clock.now());
    /// let chain = fallback(|| async { Err::<u8, ()>(()) }).or_stale(&cache, &clock, Duration::from_secs(1));
    /// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(5));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn or_stale<'a, T, E, C, L>(
        self,
        cache: &'a Stale<T, L>,
        clock: C,
        max_age: Duration,
    ) -> Fallback<Or<S, impl FnOnce(E) -> Ready<Result<T, E>> + 'a, ErrorsAreFailures>>
    where
        S: Step<Output = Result<T, E>>,
        T: Clone + 'a,
        C: Clock + 'a,
        E: 'a,
        L: RawLock + 'a,
    {
        self.or(move |e| ready(cache.get(clock.now(), max_age).ok_or(e)))
    }

    /// Copies every success of the chain so far into `cache`, stamped with `clock`'s time.
    ///
    /// ```
    /// use bulwark::{Clock, MockClock, fallback::{Stale, fallback}, mock};
    /// use core::{future::IntoFuture, time::Duration};
    /// let clock = MockClock::new();
    /// let cache: Stale<_> = Stale::new();
    /// let chain = fallback(|| async { Ok::<_, ()>(3) }).refresh(&cache, &clock);
    /// assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(3));
    /// assert_eq!(cache.get(clock.now(), Duration::ZERO), Some(3));
    /// ```
    pub fn refresh<T, C, L>(
        self,
        cache: &Stale<T, L>,
        clock: C,
    ) -> Fallback<Refresh<'_, S, T, C, L>> {
        Fallback {
            step: Refresh {
                first: self.step,
                cache,
                clock,
            },
        }
    }
}

impl<S: Step> IntoFuture for Fallback<S> {
    type Output = S::Output;
    type IntoFuture = S::Future;
    fn into_future(self) -> S::Future {
        self.step.start()
    }
}

/// The last good value and when it was stored: the "stale cache" step of a chain.
///
/// Fixed size, no allocation, shareable (`&self`). A lock of strategy `L` (see
/// [`lock`](crate::lock)) guards the value while it is cloned in or out.
///
/// # Interrupt handlers
///
/// With the default [`SpinLock`] do **not** use it from an interrupt handler (an interrupt
/// that spins on a lock its own thread holds never returns). With
/// [`CriticalSectionLock`](crate::lock) (feature `critical-section`) it
/// may be: `Stale<T, CriticalSectionLock>`, e.g. written by a sensor interrupt and read by the
/// main loop. [`LocalLock`](crate::lock::LocalLock) makes it `!Sync` (one thread).
///
/// ```
/// use bulwark::{Instant, fallback::Stale};
/// use core::time::Duration;
/// static LAST_READING: Stale<u16> = Stale::new();
/// LAST_READING.put(812, Instant::from_secs(10));
/// assert_eq!(LAST_READING.get(Instant::from_secs(15), Duration::from_secs(5)), Some(812));
/// assert_eq!(LAST_READING.get(Instant::from_secs(16), Duration::from_secs(5)), None);
/// ```
pub struct Stale<T, L = SpinLock> {
    slot: Mutex<L, Option<(T, Instant)>>,
}

impl<T, L: RawLock> Stale<T, L> {
    const_fn! {
        /// An empty cache.
        ///
        /// ```
        /// let cache: bulwark::fallback::Stale<u8> = bulwark::fallback::Stale::new();
        /// assert_eq!(cache.get(bulwark::Instant::ZERO, core::time::Duration::MAX), None);
        /// ```
        pub fn new() -> Self {
            Stale { slot: Mutex::new(None) }
        }
    }

    /// Stores `value`, stamped `at`.
    ///
    /// ```
    /// let cache: bulwark::fallback::Stale<_> = bulwark::fallback::Stale::new();
    /// cache.put("v1", bulwark::Instant::ZERO);
    /// ```
    pub fn put(&self, value: T, at: Instant) {
        self.slot.lock(|s| *s = Some((value, at)));
    }

    /// A copy of the value if it is at most `max_age` old at `now` (a value stamped later
    /// than `now`, from a clock that stepped back, counts as fresh).
    ///
    /// ```
    /// use bulwark::{Instant, fallback::Stale};
    /// use core::time::Duration;
    /// let cache: Stale<_> = Stale::new();
    /// cache.put(1, Instant::from_secs(5));
    /// assert_eq!(cache.get(Instant::from_secs(1), Duration::ZERO), Some(1));
    /// ```
    pub fn get(&self, now: Instant, max_age: Duration) -> Option<T>
    where
        T: Clone,
    {
        self.slot.lock(|s| match s {
            Some((v, at)) if now.saturating_duration_since(*at) <= max_age => Some(v.clone()),
            _ => None,
        })
    }
}

impl<T, L: RawLock> Default for Stale<T, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, L> fmt::Debug for Stale<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stale").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::classify::Verdict;
    use crate::{MockClock, mock};

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum E {
        Timeout,
        Open,
        BadRequest,
    }

    #[test]
    fn each_step_sees_why_the_previous_failed() {
        let clock = MockClock::new();
        let seen = [core::cell::Cell::new(None), core::cell::Cell::new(None)];
        let chain = fallback(|| async { Err::<u32, E>(E::Timeout) })
            .or(|e| {
                seen[0].set(Some(e));
                async { Err(E::Open) }
            })
            .or(|e| {
                seen[1].set(Some(e));
                async { Ok(3) }
            });
        assert_eq!(mock::run(&clock, chain.into_future()).unwrap(), Ok(3));
        assert_eq!(
            [seen[0].get(), seen[1].get()],
            [Some(E::Timeout), Some(E::Open)]
        );
    }

    #[test]
    fn caller_errors_do_not_fall_back_and_later_steps_never_start() {
        let clock = MockClock::new();
        let mut started = false;
        let transient = |r: &Result<u32, E>| match r {
            Err(E::Timeout | E::Open) => Verdict::FAILURE,
            _ => Verdict::Ignore,
        };
        let chain = fallback(|| async { Err::<u32, E>(E::BadRequest) }).or_if(transient, |_| {
            started = true;
            async { Ok(1) }
        });
        assert_eq!(
            mock::run(&clock, chain.into_future()).unwrap(),
            Err(E::BadRequest)
        );
        assert!(!started);
    }

    #[test]
    fn primary_success_skips_the_rest_and_time_passes_through_steps() {
        let clock = MockClock::new();
        let chain = fallback(|| async {
            clock.sleep(Duration::from_secs(2)).await;
            Err::<Instant, E>(E::Timeout)
        })
        .or(|_| async {
            clock.sleep(Duration::from_secs(1)).await;
            Ok(clock.now())
        });
        assert_eq!(
            mock::run(&clock, chain.into_future()).unwrap(),
            Ok(Instant::from_secs(3))
        );
        let fast = fallback(|| async { Ok::<u8, E>(1) }).or(|_| async { Ok(2) });
        assert_eq!(mock::run(&clock, fast.into_future()).unwrap(), Ok(1));
    }

    #[test]
    fn stale_value_expires_and_clock_backwards_counts_as_fresh() {
        let cache: Stale<u8> = Stale::new();
        assert_eq!(cache.get(Instant::ZERO, Duration::MAX), None::<u8>);
        cache.put(9u8, Instant::from_secs(100));
        assert_eq!(
            cache.get(Instant::from_secs(110), Duration::from_secs(10)),
            Some(9)
        );
        assert_eq!(
            cache.get(Instant::from_secs(111), Duration::from_secs(10)),
            None
        );
        assert_eq!(cache.get(Instant::ZERO, Duration::ZERO), Some(9));
    }

    #[test]
    fn chain_future_is_send_when_its_parts_are() {
        fn is_send<T: Send>(_: &T) {}
        let clock = MockClock::new();
        let cache: Stale<u8> = Stale::new();
        let f = fallback(|| async { Ok::<u8, E>(1) })
            .refresh(&cache, &clock)
            .or_value(0)
            .into_future();
        is_send(&f);
    }
}
