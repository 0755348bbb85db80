//! Classification: the one judgement every pattern asks of a call's result.
//!
//! A circuit breaker, a retry policy, the pipeline and a fallback chain all need to know the
//! same thing about a result: did the downstream do its job ([`Verdict::Success`]), did it
//! fail — which a breaker counts and a retry may repeat, possibly after a delay the downstream
//! asked for ([`Verdict::Failure`]) — or is the result nobody's business but the caller's (a
//! "not found", a validation error: [`Verdict::Ignore`], neither counted nor retried)?
//! [`Classify`] answers it once, and every pattern takes the same classifier; closures
//! `Fn(&Result<T, E>) -> Verdict` are classifiers.
//!
//! | verdict | breaker | retry | pipeline | fallback |
//! |---|---|---|---|---|
//! | `Success` | success | returned | success, returned | returned |
//! | `Failure { retry_after }` | failure | retried (after `retry_after` when given) | failure, retried | an `Err` falls back |
//! | `Ignore` | not recorded | returned (an `Err` as permanent) | not recorded, returned | returned |
//!
//! # Examples
//!
//! ```
//! use bulwark::classify::{Classify, Verdict};
//! use core::time::Duration;
//!
//! enum Reply { Fine, Busy { retry_after_secs: u64 } }
//! let http = |r: &Result<Reply, u16>| match r {
//!     Ok(Reply::Fine) => Verdict::Success,
//!     // A 503 with Retry-After comes back as a value: still a failure, with a hint.
//!     Ok(Reply::Busy { retry_after_secs }) => Verdict::failure_after(Duration::from_secs(*retry_after_secs)),
//!     Err(400..=499) => Verdict::Ignore, // the caller's mistake
//!     Err(_) => Verdict::FAILURE,
//! };
//! assert_eq!(http.classify(&Err(404)), Verdict::Ignore);
//! assert_eq!(http.classify(&Ok(Reply::Busy { retry_after_secs: 2 })).retry_after(), Some(Duration::from_secs(2)));
//! ```

use core::time::Duration;

use crate::admission::Outcome;

/// What a call's result means: the answer of a [`Classify`].
///
/// ```
/// use bulwark::classify::Verdict;
/// use bulwark::admission::Outcome;
/// assert_eq!(Verdict::FAILURE.outcome(), Outcome::Failure);
/// assert!(Verdict::FAILURE.is_failure() && !Verdict::Ignore.is_failure());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// The downstream did its job.
    Success,
    /// The downstream failed: a breaker counts it, a retry may repeat the call — after
    /// `retry_after` when the downstream said when (a Retry-After hint), else after its
    /// backoff.
    Failure {
        /// How long the downstream asked the caller to wait, if it did.
        retry_after: Option<Duration>,
    },
    /// Neither: the caller's own business (not counted, not retried).
    Ignore,
}

impl Verdict {
    /// A failure without a hint.
    ///
    /// ```
    /// use bulwark::classify::Verdict;
    /// assert_eq!(Verdict::FAILURE, Verdict::Failure { retry_after: None });
    /// ```
    pub const FAILURE: Verdict = Verdict::Failure { retry_after: None };

    /// A failure after which the downstream asked to wait `d`.
    ///
    /// ```
    /// use bulwark::classify::Verdict;
    /// use core::time::Duration;
    /// let v = Verdict::failure_after(Duration::from_secs(3));
    /// assert_eq!(v.retry_after(), Some(Duration::from_secs(3)));
    /// ```
    pub const fn failure_after(d: Duration) -> Verdict {
        Verdict::Failure {
            retry_after: Some(d),
        }
    }

    /// `true` for [`Verdict::Failure`].
    ///
    /// ```
    /// assert!(!bulwark::classify::Verdict::Success.is_failure());
    /// ```
    pub const fn is_failure(self) -> bool {
        matches!(self, Verdict::Failure { .. })
    }

    /// The hint of a failure, if any.
    ///
    /// ```
    /// assert_eq!(bulwark::classify::Verdict::Ignore.retry_after(), None);
    /// ```
    pub const fn retry_after(self) -> Option<Duration> {
        match self {
            Verdict::Failure { retry_after } => retry_after,
            _ => None,
        }
    }

    /// What a gate records for it ([`Outcome::Ignored`] for [`Verdict::Ignore`]).
    ///
    /// ```
    /// use bulwark::{admission::Outcome, classify::Verdict};
    /// assert_eq!(Verdict::Ignore.outcome(), Outcome::Ignored);
    /// assert_eq!(Verdict::Success.outcome(), Outcome::Success);
    /// ```
    pub const fn outcome(self) -> Outcome {
        match self {
            Verdict::Success => Outcome::Success,
            Verdict::Failure { .. } => Outcome::Failure,
            Verdict::Ignore => Outcome::Ignored,
        }
    }
}

/// Judges a call's result. Closures `Fn(&Result<T, E>) -> Verdict` are classifiers; the
/// default of every pattern is [`ErrorsAreFailures`].
///
/// ```
/// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
/// let not_found_is_fine = |r: &Result<(), u16>| match r {
///     Err(404) => Verdict::Ignore,
///     Err(_) => Verdict::FAILURE,
///     Ok(()) => Verdict::Success,
/// };
/// assert_eq!(not_found_is_fine.classify(&Err(404)), Verdict::Ignore);
/// assert_eq!(Classify::<(), u16>::classify(&ErrorsAreFailures, &Err(404)), Verdict::FAILURE);
/// ```
pub trait Classify<T, E> {
    /// The verdict on `result`.
    fn classify(&self, result: &Result<T, E>) -> Verdict;

    /// What a retry hands back when its attempts run out while `result`, the last outcome,
    /// is still judged a failure: by default the result as it is (a retryable `Ok` comes back
    /// as `Ok`). [`Retry::fail_after_max_attempts`](crate::retry::Retry::fail_after_max_attempts)
    /// turns such an `Ok` into an error (resilience4j's `failAfterMaxAttempts`).
    ///
    /// ```
    /// use bulwark::classify::{Classify, ErrorsAreFailures};
    /// let last: Result<u16, &str> = Ok(503);
    /// assert_eq!(ErrorsAreFailures.exhausted(last), Ok(503));
    /// ```
    #[inline]
    fn exhausted(&self, result: Result<T, E>) -> Result<T, E> {
        result
    }
}

/// The default classifier: `Ok` is a success, every `Err` a failure.
///
/// ```
/// use bulwark::classify::{Classify, ErrorsAreFailures, Verdict};
/// assert_eq!(Classify::<u8, ()>::classify(&ErrorsAreFailures, &Ok(1)), Verdict::Success);
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct ErrorsAreFailures;

impl<T, E> Classify<T, E> for ErrorsAreFailures {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        match result {
            Ok(_) => Verdict::Success,
            Err(_) => Verdict::FAILURE,
        }
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> Verdict> Classify<T, E> for F {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        self(result)
    }
}
