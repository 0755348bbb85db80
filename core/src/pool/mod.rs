//! Connection pool: at most `N` connections, opened lazily, reused while healthy.
//!
//! A [`Pool`] hands out [`PooledConnection`] guards. Connections are opened by a user
//! [`Manager`] (an async `connect` with a named future, so `Send` can be required), checked on
//! checkout ([`Manager::is_valid`]) and on return ([`Manager::has_broken`]), and closed when a
//! caller marks them broken, or past the max lifetime / max idle time read from the pool's
//! [`Clock`](crate::Clock). No allocation: the `N` slots are a fixed array in the pool.
//!
//! * [`Pool::acquire`] waits up to a timeout for a free slot (through the core's
//!   [`Semaphore`](crate::bulkhead::Semaphore), raced against a [`Sleep`](crate::Sleep)
//!   deadline, like the bulkhead) and for the connect.
//! * [`Pool::try_acquire`] never waits: an idle connection now, or a typed error.
//! * Dropping the guard returns the connection; dropping a waiting or connecting `acquire`
//!   future gives everything back. No path leaks a slot.
//!
//! # Examples
//!
//! ```
//! use bulwark::pool::{Config, Error, Manager, Pool, QueueSemaphore};
//! use bulwark::{Clock, Instant, MockClock, mock};
//! use core::cell::Cell;
//! use core::time::Duration;
//!
//! /// Opens "connections" (serial numbers) after 10 ms of simulated handshake.
//! struct Slow<'c> { clock: &'c MockClock, opened: Cell<u32> }
//! impl<'c> Manager for Slow<'c> {
//!     type Connection = u32;
//!     type Error = ();
//!     type Connect = Handshake<'c>;
//!     fn connect(&self) -> Handshake<'c> {
//!         self.opened.set(self.opened.get() + 1);
//!         Handshake { sleep: self.clock.sleep(Duration::from_millis(10)), id: self.opened.get() }
//!     }
//! }
//! struct Handshake<'a> { sleep: bulwark::mock::MockSleep<&'a bulwark::MockClock<32>, 32>, id: u32 }
//! impl core::future::Future for Handshake<'_> {
//!     type Output = Result<u32, ()>;
//!     fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context<'_>) -> core::task::Poll<Result<u32, ()>> {
//!         let id = self.id;
//!         core::pin::Pin::new(&mut self.sleep).poll(cx).map(|()| Ok(id))
//!     }
//! }
//!
//! let clock = MockClock::new();
//! let pool: Pool<Slow<'_>, QueueSemaphore<4>, _, 2> = Pool::queued(
//!     Slow { clock: &clock, opened: Cell::new(0) },
//!     Config::new().timeout(Duration::from_millis(100)).max_idle(Duration::from_secs(60)),
//!     &clock,
//! );
//! mock::run(&clock, async {
//!     let a = pool.acquire().await.unwrap(); // connects: 10 ms
//!     assert_eq!((*a, clock.now()), (1, Instant::from_millis(10)));
//!     let mut b = pool.acquire().await.unwrap(); // the second slot
//!     assert_eq!(*b, 2);
//!     // Both slots held: a third caller waits out its 100 ms.
//!     assert_eq!(pool.acquire().await.map(drop), Err(Error::Timeout));
//!     b.mark_broken(); // closed on drop, not reused
//!     drop((a, b));
//!     assert_eq!(*pool.acquire().await.unwrap(), 1); // reused at once
//! })
//! .unwrap();
//! let t = pool.totals();
//! assert_eq!((t.created, t.discarded, t.timed_out, pool.metrics().idle), (2, 1, 1, 1));
//! ```

mod config;
mod error;
mod future;
mod guard;
mod manager;
mod shared;

pub use crate::bulkhead::QueueSemaphore;
pub use config::Config;
pub use error::{ConfigError, Error, TryAcquireError};
pub use future::{Acquire, PoolAcquire, Slots};
pub use guard::PooledConnection;
pub use manager::Manager;
pub use shared::{Metrics, Pool, Totals};

#[cfg(all(test, not(loom)))]
mod tests;
