//! Bounded concurrency on tokio: many operations, at most `K` in flight, on the current task.
//!
//! Thin async fns over [`bulwark::bounded::Limit`]: nothing is spawned, the operations run
//! inside the caller's future (so they may borrow), and dropping it cancels them all. For a
//! fixed array of inputs with outputs in order, use [`Limit::all`] directly.
//!
//! ```
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let t0 = tokio::time::Instant::now();
//! let mut pages = [None; 10];
//! let n = bulwark_tokio::bounded::collect_bounded::<3, _, _, _>(0..10u64, |i| async move {
//!     tokio::time::sleep(Duration::from_secs(1)).await; // a 1 s "request"
//!     i * 100
//! }, &mut pages)
//! .await;
//! assert_eq!(n, 10);
//! assert_eq!(pages[7], Some(700));
//! assert_eq!(t0.elapsed(), Duration::from_secs(4)); // ceil(10 / 3) rounds of 1 s
//! # }
//! ```

use std::future::Future;

pub use bulwark::bounded::{All, Bounded, Discard, InOrder, IntoSlice, Limit, Outputs};

/// Runs `op` on every input, at most `K` at a time, and returns how many ran.
///
/// ```
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let t0 = tokio::time::Instant::now();
/// let n = bulwark_tokio::bounded::for_each_bounded::<4, _, _, _>(0..8, |_| async {
///     tokio::time::sleep(Duration::from_millis(500)).await;
/// })
/// .await;
/// assert_eq!(n, 8);
/// assert_eq!(t0.elapsed(), Duration::from_secs(1));
/// # }
/// ```
pub async fn for_each_bounded<const K: usize, It, F, Fut>(inputs: It, op: F) -> usize
where
    It: IntoIterator,
    F: FnMut(It::Item) -> Fut,
    Fut: Future,
{
    Limit::<K>::for_each(inputs, op).await
}

/// Runs `op` on the first `out.len()` inputs, at most `K` at a time, storing each output at
/// its input's index in `out`; returns how many were stored.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut out = [None; 3];
/// let n = bulwark_tokio::bounded::collect_bounded::<2, _, _, _>(["a", "b", "c", "d"], |s| async move {
///     s.len()
/// }, &mut out)
/// .await;
/// assert_eq!((n, out), (3, [Some(1), Some(1), Some(1)]));
/// # }
/// ```
pub async fn collect_bounded<const K: usize, It, F, Fut>(
    inputs: It,
    op: F,
    out: &mut [Option<Fut::Output>],
) -> usize
where
    It: IntoIterator,
    F: FnMut(It::Item) -> Fut,
    Fut: Future,
{
    Limit::<K>::collect_into(inputs, op, out).await
}
