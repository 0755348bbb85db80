//! The error of a call through a gate: [`Error`].

use core::fmt;

/// The error of a call made through a gate ([`Call`](super::Call)): the gate rejected it with
/// its own rejection `X` (the operation never ran), or the operation ran and failed with its
/// own error `E`, passed through unchanged.
///
/// Each pattern that wraps a call in a gate names it for its rejection:
/// [`adaptive::Error`](crate::adaptive::Error) (`X` = [`BulkheadFull`](crate::bulkhead::BulkheadFull)),
/// [`throttle::Error`](crate::throttle::Error) (`X` = [`Throttled`](crate::throttle::Throttled)).
///
/// # Examples
///
/// ```
/// use bulwark::admission::Error;
/// use bulwark::bulkhead::BulkheadFull;
/// let full: Error<BulkheadFull, &str> = Error::Rejected(BulkheadFull);
/// assert!(full.is_rejected());
/// assert_eq!(full.to_string(), "bulkhead full");
/// let failed: Error<BulkheadFull, &str> = Error::Inner("503");
/// assert_eq!(failed.to_string(), "503");
/// assert_eq!(failed.into_inner(), Some("503"));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<X, E> {
    /// The gate did not let the call through; the operation never ran.
    Rejected(X),
    /// The operation ran and returned this error.
    Inner(E),
}

impl<X, E> Error<X, E> {
    /// `true` for [`Error::Rejected`].
    ///
    /// ```
    /// use bulwark::admission::Error;
    /// assert!(!Error::<(), _>::Inner(1).is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }

    /// The operation's own error, if that is what this is.
    ///
    /// ```
    /// use bulwark::admission::Error;
    /// assert_eq!(Error::<(), _>::Inner(7).into_inner(), Some(7));
    /// assert_eq!(Error::<_, u8>::Rejected(()).into_inner(), None);
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) => None,
        }
    }
}

impl<X: fmt::Display, E: fmt::Display> fmt::Display for Error<X, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

impl<X, E> core::error::Error for Error<X, E>
where
    X: core::error::Error + 'static,
    E: core::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Rejected(r) => Some(r),
            Error::Inner(e) => Some(e),
        }
    }
}
