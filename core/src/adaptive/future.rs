//! The async form: [`AdaptiveLimit::call`], the gate's [`admission::Call`].

use super::shared::AdaptiveLimit;
use crate::admission;
use crate::bulkhead::BulkheadFull;
use crate::time::Clock;

/// The outcome of an [`AdaptiveLimit::call`]: refused at the limit
/// ([`Rejected`](admission::Error::Rejected)`(`[`BulkheadFull`]`)`: the operation was not
/// called), or the operation's own error ([`Inner`](admission::Error::Inner)).
///
/// ```
/// use bulwark::adaptive::Error;
/// use bulwark::bulkhead::BulkheadFull;
/// assert_eq!(Error::<&str>::Rejected(BulkheadFull).to_string(), "bulkhead full");
/// assert_eq!(Error::Inner("503").into_inner(), Some("503"));
/// ```
pub type Error<E> = admission::Error<BulkheadFull, E>;

/// The future of [`AdaptiveLimit::call`]: the one async form of every gate,
/// [`admission::Call`], over an adaptive limit.
///
/// ```
/// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Call, Config};
/// use bulwark::classify::ErrorsAreFailures;
/// use bulwark::{MockClock, mock};
/// use std::sync::Arc;
/// let clock = MockClock::new();
/// let limit = Arc::new(AdaptiveLimit::new(Config::new(Algorithm::vegas()), &clock).unwrap());
/// // An owner of the limit (here an Arc): a future that borrows nothing.
/// let call: Call<Arc<_>, _, _, _> = Call::new(Arc::clone(&limit), ErrorsAreFailures, || async { Ok::<_, ()>(1) });
/// assert_eq!(limit.in_flight(), 0); // nothing is admitted before the first poll
/// assert_eq!(mock::run(&clock, call).unwrap(), Ok(1));
/// assert_eq!(limit.in_flight(), 0);
/// ```
pub type Call<R, F, Fut, K> = admission::Call<R, F, Fut, K>;

impl<C: Clock> AdaptiveLimit<C> {
    crate::admission::gate_calls! {
        /// Runs `op` if the limit has room, measuring its round trip; every `Err` counts as
        /// dropped (see [`call_with`](AdaptiveLimit::call_with) to judge results yourself).
        ///
        /// # Cancellation
        ///
        /// Dropping the future gives the call's slot back and takes no sample.
        ///
        /// # Errors
        ///
        /// [`Rejected`](admission::Error::Rejected)`(`[`BulkheadFull`]`)` at the limit (the
        /// operation is not called), or [`Inner`](admission::Error::Inner) with the operation's
        /// own error.
        ///
        /// ```
        /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config, Error};
        /// use bulwark::{MockClock, mock};
        /// let clock = MockClock::new();
        /// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(10), &clock).unwrap();
        /// assert_eq!(mock::run(&clock, limit.call(|| async { Err::<(), _>("503") })).unwrap(), Err(Error::Inner("503")));
        /// assert_eq!(limit.limit(), 9); // dropped: backed off
        /// ```
        call;

        /// Runs `op` if the limit has room, `classify` judging its result: a
        /// [failure](crate::classify::Verdict::Failure) counts as dropped, an ignored result
        /// takes no sample.
        ///
        /// # Errors
        ///
        /// As [`call`](AdaptiveLimit::call).
        ///
        /// ```
        /// use bulwark::adaptive::{AdaptiveLimit, Algorithm, Config};
        /// use bulwark::classify::Verdict;
        /// use bulwark::{MockClock, mock};
        /// let clock = MockClock::new();
        /// let limit = AdaptiveLimit::new(Config::new(Algorithm::aimd()).initial(10), &clock).unwrap();
        /// // A 404 says nothing about the downstream's load: no sample, the limit stays.
        /// let classify = |r: &Result<(), u16>| if r == &Err(404) { Verdict::Ignore } else { Verdict::FAILURE };
        /// let _ = mock::run(&clock, limit.call_with(classify, || async { Err(404) })).unwrap();
        /// assert_eq!(limit.limit(), 10);
        /// ```
        call_with;
    }
}
