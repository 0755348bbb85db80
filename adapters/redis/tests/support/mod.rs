//! A real `redis-server` for the tests: its own free port on 127.0.0.1, its own temporary
//! directory, no persistence, killed on drop (also when a test panics).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to let the Redis tests pass without a server (CI sets it only when it could not
/// install one, and says so loudly).
pub const SKIP_ENV: &str = "BULWARK_SKIP_REDIS";

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// A server for one test; `None` (the test returns at once, saying so) only when
/// `BULWARK_SKIP_REDIS=1`. Without `redis-server` on the PATH it panics with what to do.
pub fn server() -> Option<RedisServer> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("{SKIP_ENV}=1: this Redis test is SKIPPED");
        return None;
    }
    Some(RedisServer::start())
}

/// A port nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl RedisServer {
    /// Starts a server on a free port (a few tries, should another process take the port
    /// between our probe and the server's bind).
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            if let Some(s) = RedisServer::try_start_on(free_port()) {
                return s;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts a server on `port` (to bring a stopped one back at the same address).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::try_start_on(port)
            .unwrap_or_else(|| panic!("redis-server did not start on port {port}"))
    }

    fn try_start_on(port: u16) -> Option<RedisServer> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bulwark-redis-test-{}-{}-{}",
            std::process::id(),
            port,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temporary directory");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if child.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "\n\n`redis-server` is not on the PATH: the bulwark-redis tests need a real \
                 server.\nInstall it (Debian/Ubuntu: `apt-get install -y redis-server`), or \
                 set {SKIP_ENV}=1 to skip these tests knowingly.\n\n"
            ),
            Err(e) => panic!("could not run redis-server: {e}"),
        };
        let mut server = RedisServer {
            child: Some(child),
            port,
            dir,
        };
        // The only real waiting in these tests: until the server answers PING (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.ping() {
                return Some(server);
            }
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return None; // exited: the port was taken, say
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// `PING` → `+PONG` on a fresh connection.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A redis-rs client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid URL")
    }

    /// Kills the server now (SIGKILL: the way a crashed server goes) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
