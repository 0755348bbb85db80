//! The pool on real TCP connections: a tokio echo server on 127.0.0.1, a `Manager` over
//! `tokio::net::TcpStream`, and connect counts that show the reuse. Loopback only, no sleeps.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulwark::pool::{Config, Manager, Pool, QueueSemaphore};
use bulwark_tokio::TokioClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Opens TCP connections to `addr`, counting them.
struct TcpManager {
    addr: SocketAddr,
    connects: AtomicUsize,
}

impl Manager for TcpManager {
    type Connection = TcpStream;
    type Error = io::Error;
    // `TcpStream::connect` is an `async fn` (unnameable): the user side boxes it; the
    // pool itself never allocates.
    type Connect = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

    fn connect(&self) -> Self::Connect {
        self.connects.fetch_add(1, Ordering::Relaxed);
        Box::pin(TcpStream::connect(self.addr))
    }

    /// An idle connection the server has closed reads as end-of-file: not valid.
    fn is_valid(&self, conn: &mut TcpStream) -> bool {
        let mut probe = [0u8; 1];
        matches!(conn.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

type TcpPool = Pool<TcpManager, QueueSemaphore<64>, TokioClock, 4>;

/// An echo server that counts accepted connections. A line `quit\n` closes the connection
/// after echoing it.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if sock.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if buf[..n].ends_with(b"quit\n") {
                        return; // closes the connection
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn pool(addr: SocketAddr) -> TcpPool {
    let manager = TcpManager {
        addr,
        connects: AtomicUsize::new(0),
    };
    Pool::queued(
        manager,
        Config::new().timeout(Duration::from_secs(10)),
        TokioClock::new(),
    )
}

/// One request/response on a pooled connection.
async fn round_trip(pool: &TcpPool, msg: &str) -> String {
    let mut conn = pool.acquire().await.expect("a connection");
    conn.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    conn.read_exact(&mut buf).await.unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let (addr, accepted) = echo_server().await;
    let pool = pool(addr);
    for i in 0..50 {
        let msg = format!("ping {i}\n");
        assert_eq!(round_trip(&pool, &msg).await, msg);
    }
    assert_eq!(pool.manager().connects.load(Ordering::Relaxed), 1);
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!((tot.created, m.idle, m.in_use, tot.discarded), (1, 1, 0, 0));
    drop(pool);
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_open_more_than_four() {
    let (addr, accepted) = echo_server().await;
    let pool = Arc::new(pool(addr));
    let mut tasks = Vec::new();
    for t in 0..32 {
        let pool = pool.clone();
        // Spawned on a multi-threaded runtime: the acquire future and the guard are `Send`.
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let msg = format!("task {t} request {i}\n");
                assert_eq!(round_trip(&pool, &msg).await, msg);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let connects = pool.manager().connects.load(Ordering::Relaxed);
    assert!((1..=4).contains(&connects), "{connects} connects");
    assert!(accepted.load(Ordering::Relaxed) <= 4);
    let m = pool.metrics();
    let tot = pool.totals();
    assert_eq!(m.in_use, 0);
    assert_eq!(tot.created as usize, connects);
    assert!(m.idle <= 4);
}

#[tokio::test]
async fn a_connection_closed_by_the_server_is_replaced() {
    let (addr, accepted) = echo_server().await;
    let pool = pool(addr);
    {
        let mut conn = pool.acquire().await.unwrap();
        conn.write_all(b"quit\n").await.unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.unwrap(); // echo, then end-of-file
        assert_eq!(buf, b"quit\n");
    } // returned to the pool: `has_broken` is cheap and does not probe
    assert_eq!(pool.metrics().idle, 1);
    // Checkout validation reads end-of-file: discarded, and a new connection is opened.
    assert_eq!(round_trip(&pool, "hello\n").await, "hello\n");
    assert_eq!(pool.manager().connects.load(Ordering::Relaxed), 2);
    assert_eq!(pool.totals().discarded, 1);
    assert_eq!(accepted.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_connection_marked_broken_is_not_reused() {
    let (addr, _accepted) = echo_server().await;
    let pool = pool(addr);
    let mut conn = pool.acquire().await.unwrap();
    conn.write_all(b"half a req").await.unwrap(); // no answer read: state unknown
    conn.mark_broken();
    drop(conn);
    assert_eq!(round_trip(&pool, "fresh\n").await, "fresh\n");
    assert_eq!(pool.manager().connects.load(Ordering::Relaxed), 2);
}
