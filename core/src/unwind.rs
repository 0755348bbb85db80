//! A panicking operation is a failure where the platform lets a panic be seen (feature `std`).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// Polls `fut`. With the `std` feature, a panic out of the poll first runs `on_panic` (which
/// records the failure on the permit the caller holds), then goes on unwinding to the caller
/// with its own payload; without it, the panic unwinds straight through (and the permit, dropped
/// by the unwinding, counts the call as abandoned).
#[inline(always)]
pub(crate) fn poll_or_fail<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
    on_panic: impl FnOnce(),
) -> Poll<F::Output> {
    #[cfg(feature = "std")]
    {
        // AssertUnwindSafe: the panic is resumed as soon as `on_panic` has recorded the
        // failure, so nothing the poll touched is used in the state the panic left it in.
        match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                on_panic();
                std::panic::resume_unwind(payload)
            }
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = on_panic;
        fut.poll(cx)
    }
}
