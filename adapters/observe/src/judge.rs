//! [`Judge`]: how an observed call ended, read from its error.

use bulwark::bulkhead::{self, BulkheadFull};
use bulwark::rate_limiter::{Denied, RateLimited};
use bulwark::timeout::Elapsed;
use bulwark::{circuit_breaker, pipeline, pool, retry, timeout};

use crate::CallOutcome;

/// How an [`instrument`](crate::instrument)ed call ended, read from its error (an `Ok` is a
/// [`CallOutcome::Success`]). Implemented for the core's errors and tower's boxed error; a
/// call whose error is the operation's own is a [`CallOutcome::Failure`] — implement it for
/// your error type to say more.
///
/// ```
/// use bulwark::pipeline::Error;
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Error::<()>::BulkheadFull(BulkheadFull).judge(), CallOutcome::Shed);
/// assert_eq!(Error::Operation("503").judge(), CallOutcome::Failure);
/// ```
pub trait Judge {
    /// The outcome this error means.
    fn judge(&self) -> CallOutcome;
}

/// An operation's own error: a failure.
///
/// ```
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!("down".judge(), CallOutcome::Failure);
/// ```
impl Judge for &str {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Failure
    }
}

/// An operation's own error: a failure.
///
/// ```
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(std::io::Error::other("reset").judge(), CallOutcome::Failure);
/// ```
impl Judge for std::io::Error {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Failure
    }
}

/// An error that says nothing more: a failure.
///
/// ```
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(().judge(), CallOutcome::Failure);
/// ```
impl Judge for () {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Failure
    }
}

/// Never happens.
///
/// ```
/// use bulwark_observe::Judge;
/// let never: Result<(), std::convert::Infallible> = Ok(());
/// assert!(never.is_ok());
/// ```
impl Judge for std::convert::Infallible {
    fn judge(&self) -> CallOutcome {
        match *self {}
    }
}

/// A timeout: timed out.
///
/// ```
/// use bulwark::{Instant, timeout::Elapsed};
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Elapsed { deadline: Instant::ZERO, timeout: None }.judge(), CallOutcome::TimedOut);
/// ```
impl Judge for Elapsed {
    fn judge(&self) -> CallOutcome {
        CallOutcome::TimedOut
    }
}

/// Timed out, or the operation's own error judged.
///
/// ```
/// use bulwark::timeout::Error;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Error::Inner("down").judge(), CallOutcome::Failure);
/// ```
impl<E: Judge> Judge for timeout::Error<E> {
    fn judge(&self) -> CallOutcome {
        match self {
            timeout::Error::Elapsed(_) => CallOutcome::TimedOut,
            timeout::Error::Inner(e) => e.judge(),
        }
    }
}

/// The layer that answered: rejected (open breaker), shed (limiter, bulkhead), timed out, or
/// the operation's own error judged.
///
/// ```
/// use bulwark::pipeline::Error;
/// use bulwark::{Instant, timeout::Elapsed};
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Error::<&str>::Timeout(Elapsed { deadline: Instant::ZERO, timeout: None }).judge(), CallOutcome::TimedOut);
/// ```
impl<E: Judge> Judge for pipeline::Error<E> {
    fn judge(&self) -> CallOutcome {
        match self {
            pipeline::Error::Operation(e) => e.judge(),
            pipeline::Error::CircuitOpen(_) => CallOutcome::Rejected,
            pipeline::Error::RateLimited(_) | pipeline::Error::BulkheadFull(_) => CallOutcome::Shed,
            pipeline::Error::AttemptTimeout(_) | pipeline::Error::Timeout(_) => {
                CallOutcome::TimedOut
            }
            _ => CallOutcome::Failure,
        }
    }
}

/// The last error judged (a failure when there was none).
///
/// ```
/// use bulwark::retry::Error;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Error::Exhausted { last: "503", attempts: 3 }.judge(), CallOutcome::Failure);
/// ```
impl<E: Judge> Judge for retry::Error<E> {
    fn judge(&self) -> CallOutcome {
        match self {
            retry::Error::Exhausted { last, .. } | retry::Error::BudgetExhausted { last, .. } => {
                last.judge()
            }
            retry::Error::Permanent { error, .. } => error.judge(),
            retry::Error::DeadlineExceeded {
                last: Some(last), ..
            } => last.judge(),
            _ => CallOutcome::TimedOut,
        }
    }
}

/// Rejected by the open breaker, or the operation's own error judged.
///
/// ```
/// use bulwark::circuit_breaker::{Error, Rejected};
/// use bulwark_observe::{CallOutcome, Judge};
/// let forced = Rejected::new(None, bulwark::Instant::ZERO);
/// assert_eq!(Error::<&str>::Rejected(forced).judge(), CallOutcome::Rejected);
/// assert_eq!(Error::Inner("503").judge(), CallOutcome::Failure);
/// ```
impl<E: Judge> Judge for circuit_breaker::Error<E> {
    fn judge(&self) -> CallOutcome {
        match self {
            circuit_breaker::Error::Rejected(_) => CallOutcome::Rejected,
            circuit_breaker::Error::Inner(e) => e.judge(),
        }
    }
}

/// An open breaker's rejection.
///
/// ```
/// use bulwark::circuit_breaker::Rejected;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Rejected::new(None, bulwark::Instant::ZERO).judge(), CallOutcome::Rejected);
/// ```
impl Judge for circuit_breaker::Rejected {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Rejected
    }
}

/// Timed out waiting, shed by a full queue, or the connect error judged.
///
/// ```
/// use bulwark::pool::Error;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Error::<&str>::Timeout.judge(), CallOutcome::TimedOut);
/// assert_eq!(Error::<&str>::QueueFull.judge(), CallOutcome::Shed);
/// ```
impl<E: Judge> Judge for pool::Error<E> {
    fn judge(&self) -> CallOutcome {
        match self {
            pool::Error::Timeout => CallOutcome::TimedOut,
            pool::Error::QueueFull | pool::Error::Shed => CallOutcome::Shed,
            pool::Error::Connect(e) => e.judge(),
            _ => CallOutcome::Failure,
        }
    }
}

/// Shed.
///
/// ```
/// use bulwark::bulkhead::BulkheadFull;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(BulkheadFull.judge(), CallOutcome::Shed);
/// ```
impl Judge for BulkheadFull {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Shed
    }
}

/// Timed out waiting for a permit, or shed.
///
/// ```
/// use bulwark::bulkhead::Rejected;
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Rejected::Timeout.judge(), CallOutcome::TimedOut);
/// assert_eq!(Rejected::Full.judge(), CallOutcome::Shed);
/// ```
impl Judge for bulkhead::Rejected {
    fn judge(&self) -> CallOutcome {
        match self {
            bulkhead::Rejected::Timeout => CallOutcome::TimedOut,
            _ => CallOutcome::Shed,
        }
    }
}

/// Shed.
///
/// ```
/// use bulwark::{Instant, rate_limiter::RateLimited};
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(RateLimited::new(Instant::from_secs(1), Instant::ZERO).judge(), CallOutcome::Shed);
/// ```
impl Judge for RateLimited {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Shed
    }
}

/// Shed.
///
/// ```
/// use bulwark::{Instant, rate_limiter::{Denied, RateLimited}};
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Denied::RateLimited(RateLimited::NEVER).judge(), CallOutcome::Shed);
/// ```
impl Judge for Denied {
    fn judge(&self) -> CallOutcome {
        CallOutcome::Shed
    }
}

/// tower's boxed error: the core's rejection or timeout inside it, found by downcasting;
/// anything else is a failure.
///
/// ```
/// use bulwark_observe::{CallOutcome, Judge};
/// let e: Box<dyn std::error::Error + Send + Sync> = Box::new(bulwark::bulkhead::BulkheadFull);
/// assert_eq!(e.judge(), CallOutcome::Shed);
/// let e: Box<dyn std::error::Error + Send + Sync> = "503".into();
/// assert_eq!(e.judge(), CallOutcome::Failure);
/// ```
impl Judge for Box<dyn std::error::Error + Send + Sync> {
    fn judge(&self) -> CallOutcome {
        let e: &(dyn std::error::Error + 'static) = &**self;
        if e.is::<circuit_breaker::Rejected>() {
            CallOutcome::Rejected
        } else if e.is::<RateLimited>() || e.is::<BulkheadFull>() || e.is::<bulkhead::Rejected>() {
            CallOutcome::Shed
        } else if e.is::<Elapsed>() {
            CallOutcome::TimedOut
        } else {
            CallOutcome::Failure
        }
    }
}

/// A call's output: `Ok` is a success, an `Err` is judged.
///
/// ```
/// use bulwark_observe::{CallOutcome, Judge};
/// assert_eq!(Ok::<u8, &str>(1).judge(), CallOutcome::Success);
/// ```
impl<T, E: Judge> Judge for Result<T, E> {
    fn judge(&self) -> CallOutcome {
        match self {
            Ok(_) => CallOutcome::Success,
            Err(e) => e.judge(),
        }
    }
}
