//! What a pool needs to know about its connections: the [`Manager`] trait.

use core::future::Future;

/// Creates and checks the connections of a [`Pool`](super::Pool).
///
/// The connect future is a named associated type (not `-> impl Future`), so generic server
/// code can require `Send` of it, and so the pool's own acquire future stays nameable.
///
/// Compared with the established pools: like r2d2 and bb8 there are two checks, a checkout
/// check ([`is_valid`](Manager::is_valid), r2d2's `is_valid`, deadpool's `recycle`) and a
/// cheap check on return ([`has_broken`](Manager::has_broken)). Unlike bb8 and deadpool the
/// checkout check is synchronous: an asynchronous one would borrow a connection that lives in
/// the acquire future itself, which without a heap makes that future self-referential. A
/// check that needs I/O belongs in the caller's first request (discard the guard with
/// [`PooledConnection::mark_broken`](super::PooledConnection::mark_broken) when it fails).
///
/// # Examples
///
/// ```
/// use bulwark::pool::Manager;
/// use core::future::{Ready, ready};
///
/// /// "Connections" are numbers; odd ones go bad while idle.
/// struct Numbers;
/// impl Manager for Numbers {
///     type Connection = u32;
///     type Error = ();
///     type Connect = Ready<Result<u32, ()>>;
///     fn connect(&self) -> Self::Connect { ready(Ok(7)) }
///     fn is_valid(&self, c: &mut u32) -> bool { *c % 2 == 0 }
/// }
/// let mut c = 8;
/// assert!(Numbers.is_valid(&mut c));
/// assert!(!Numbers.has_broken(&mut c)); // the default: never broken
/// ```
pub trait Manager {
    /// The connection type.
    type Connection;
    /// Why a connect failed; handed to the caller in [`Error::Connect`](super::Error::Connect).
    type Error;
    /// The future of [`connect`](Manager::connect). Dropping it must cancel the attempt. It
    /// borrows nothing from the manager (copy what it needs, such as an address, into it), so
    /// the pool's acquire future can own its pool.
    type Connect: Future<Output = Result<Self::Connection, Self::Error>>;

    /// Opens a new connection.
    fn connect(&self) -> Self::Connect;

    /// Whether an idle connection may still be handed out: called on checkout, before a
    /// caller sees the connection. `false` discards it (and the pool tries the next idle one,
    /// then connects). Default: always valid.
    fn is_valid(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        true
    }

    /// Whether a connection coming back to the pool is unusable: called when a
    /// [`PooledConnection`](super::PooledConnection) is dropped. Must be cheap and must not
    /// block (it runs in a destructor). `true` discards it. Default: never broken.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }
}

impl<M: Manager + ?Sized> Manager for &M {
    type Connection = M::Connection;
    type Error = M::Error;
    type Connect = M::Connect;

    fn connect(&self) -> Self::Connect {
        (**self).connect()
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> bool {
        (**self).is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        (**self).has_broken(conn)
    }
}
