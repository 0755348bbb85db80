//! The async form: [`AdaptiveThrottle::call`], the gate's [`admission::Call`].

use super::error::Throttled;
use super::shared::AdaptiveThrottle;
use crate::admission;
use crate::time::Clock;

/// The outcome of an [`AdaptiveThrottle::call`]: refused locally
/// ([`Rejected`](admission::Error::Rejected)`(`[`Throttled`]`)`: the operation was not
/// called), or the operation's own error ([`Inner`](admission::Error::Inner)).
///
/// ```
/// use bulwark::throttle::{Error, Throttled};
/// let refused: Error<&str> = Error::Rejected(Throttled { reject_per_million: 500_000 });
/// assert!(refused.is_rejected());
/// assert_eq!(Error::Inner("503").into_inner(), Some("503"));
/// ```
pub type Error<E> = admission::Error<Throttled, E>;

/// The future of [`AdaptiveThrottle::call`]: the one async form of every gate,
/// [`admission::Call`], over an adaptive throttle.
///
/// ```
/// use bulwark::classify::ErrorsAreFailures;
/// use bulwark::throttle::{AdaptiveThrottle, Call, Config};
/// use bulwark::{MockClock, mock};
/// use std::sync::Arc;
/// let clock = MockClock::new();
/// let throttle: Arc<AdaptiveThrottle<_>> = Arc::new(AdaptiveThrottle::new(Config::new(), &clock).unwrap());
/// // An owner of the throttle (here an Arc): a future that borrows nothing.
/// let call: Call<Arc<_>, _, _, _> = Call::new(Arc::clone(&throttle), ErrorsAreFailures, || async { Ok::<_, ()>(1) });
/// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
/// assert_eq!(throttle.counts(), (1, 1)); // one request, accepted
/// ```
pub type Call<R, F, Fut, K> = admission::Call<R, F, Fut, K>;

impl<C: Clock, const N: usize> AdaptiveThrottle<C, N> {
    crate::admission::gate_calls! {
        /// Runs `op` unless the throttle refuses it locally, and counts its answer: `Ok` as a
        /// request the backend accepted, `Err` as one it did not (see
        /// [`call_with`](AdaptiveThrottle::call_with) to judge results yourself). A refused call
        /// counts as a request not accepted, as the SRE formula wants.
        ///
        /// # Cancellation
        ///
        /// Dropping the future before the answer counts nothing.
        ///
        /// # Errors
        ///
        /// [`Rejected`](admission::Error::Rejected)`(`[`Throttled`]`)` when refused locally (the
        /// operation is not called), or [`Inner`](admission::Error::Inner) with the operation's
        /// own error.
        ///
        /// ```
        /// use bulwark::throttle::{AdaptiveThrottle, Config, Error, Throttled};
        /// use bulwark::{MockClock, mock};
        /// let clock = MockClock::new();
        /// let throttle: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new().seed(4), &clock).unwrap();
        /// // The backend refuses every call; each one that reaches it is counted, and the
        /// // throttle starts refusing locally with probability requests / (requests + 1).
        /// let mut reached = 0;
        /// let refused = loop {
        ///     let call = throttle.call(|| { reached += 1; async { Err::<(), _>("503") } });
        ///     match mock::run(&clock, call).unwrap() {
        ///         Err(Error::Rejected(throttled)) => break throttled,
        ///         other => assert_eq!(other, Err(Error::Inner("503"))),
        ///     }
        /// };
        /// // With this seed the third call is refused, at 2 / 3, without reaching the backend.
        /// assert_eq!((reached, refused), (2, Throttled { reject_per_million: 666_666 }));
        /// assert_eq!(throttle.counts(), (3, 0)); // the local refusal is a request not accepted
        /// ```
        call;

        /// Runs `op` unless the throttle refuses it locally, `classify` judging its answer: a
        /// [success](crate::classify::Verdict::Success) is a request the backend accepted, a
        /// failure one it did not, and an ignored answer is not counted at all.
        ///
        /// # Errors
        ///
        /// As [`call`](AdaptiveThrottle::call).
        ///
        /// ```
        /// use bulwark::classify::Verdict;
        /// use bulwark::throttle::{AdaptiveThrottle, Config};
        /// use bulwark::{MockClock, mock};
        /// let clock = MockClock::new();
        /// let throttle: AdaptiveThrottle<_> = AdaptiveThrottle::new(Config::new(), &clock).unwrap();
        /// // A 404 is an answer the backend gave: accepted; a 503 is a refusal.
        /// let http = |r: &Result<u16, ()>| if r == &Ok(503) { Verdict::FAILURE } else { Verdict::Success };
        /// for status in [200, 404, 503] {
        ///     let _ = mock::run(&clock, throttle.call_with(http, || async move { Ok(status) })).unwrap();
        /// }
        /// assert_eq!(throttle.counts(), (3, 2));
        /// ```
        call_with;
    }
}
