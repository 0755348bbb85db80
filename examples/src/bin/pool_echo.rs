//! The connection pool on real TCP: an echo server on 127.0.0.1, a pool of 4 connections to
//! it, 50 sequential requests and then 40 concurrent ones. Prints how many connections were
//! opened (1, then at most 4) and the pool's metrics. Loopback only; exits by itself.
//!
//! `cargo run -p bulwark-examples --bin pool_echo`

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulwark::bounded::Limit;
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
    type Connect = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

    fn connect(&self) -> Self::Connect {
        let n = self.connects.fetch_add(1, Ordering::Relaxed) + 1;
        println!("  [pool] opening connection #{n}");
        Box::pin(TcpStream::connect(self.addr))
    }

    /// An idle connection the server has closed reads as end-of-file: not valid.
    fn is_valid(&self, conn: &mut TcpStream) -> bool {
        let mut probe = [0u8; 1];
        matches!(conn.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

type TcpPool = Pool<TcpManager, QueueSemaphore<64>, TokioClock, 4>;

async fn echo_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = sock.read(&mut buf).await {
                    if sock.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

async fn round_trip(pool: &TcpPool, msg: &str) -> io::Result<String> {
    let mut conn = pool.acquire().await.map_err(io::Error::other)?;
    let result = async {
        conn.write_all(msg.as_bytes()).await?;
        let mut buf = vec![0u8; msg.len()];
        conn.read_exact(&mut buf).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&buf).into_owned())
    }
    .await;
    if result.is_err() {
        conn.mark_broken(); // an I/O error leaves the connection in an unknown state
    }
    result
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let addr = echo_server().await?;
    println!("echo server on {addr}");
    let pool: TcpPool = Pool::queued(
        TcpManager {
            addr,
            connects: AtomicUsize::new(0),
        },
        Config::new()
            .timeout(Duration::from_secs(5))
            .max_idle(Duration::from_secs(60)),
        TokioClock::new(),
    );

    println!("50 sequential requests:");
    for i in 0..50 {
        let reply = round_trip(&pool, &format!("ping {i}\n")).await?;
        if i % 10 == 0 {
            print!("  {reply}");
        }
    }
    println!(
        "  -> connections opened: {}",
        pool.manager().connects.load(Ordering::Relaxed)
    );

    println!("40 requests, 16 at a time, through a pool of 4:");
    let inputs: [usize; 40] = std::array::from_fn(|i| i);
    let replies = Limit::<16>::all(inputs, |i| {
        let pool = &pool;
        async move { round_trip(pool, &format!("job {i}\n")).await }
    })
    .await;
    let ok = replies.iter().filter(|r| r.is_ok()).count();
    println!(
        "  first reply: {}",
        replies[0].as_deref().unwrap_or("error\n").trim_end()
    );
    println!(
        "  last reply:  {}",
        replies[39].as_deref().unwrap_or("error\n").trim_end()
    );
    println!(
        "  -> {ok}/40 ok, connections opened in total: {}",
        pool.manager().connects.load(Ordering::Relaxed)
    );
    println!("metrics: {:?}", pool.metrics());
    Ok(())
}
