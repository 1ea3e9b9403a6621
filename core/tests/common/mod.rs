//! A real redis-server on a free loopback port, stopped when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis_lock_core::{ClientOptions, Dsn, LockClient, Pool, Stats};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { port, child }
    }

    pub fn dsn(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
    }

    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.dsn())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn client(&self, fencing: bool) -> LockClient {
        client_for(&self.dsn(), fencing, Duration::from_millis(500))
    }
}

pub fn client_for(dsn: &str, fencing: bool, timeout: Duration) -> LockClient {
    LockClient::with_pool(
        Arc::new(Pool::default()),
        Arc::new(Mutex::new(Stats::new())),
        Dsn::parse(dsn).unwrap(),
        ClientOptions {
            prefix: b"test:".to_vec(),
            connect_timeout: timeout,
            timeout,
            fencing,
        },
    )
}

/// Whether `check` becomes true within 2 s (for effects Redis applies asynchronously).
pub fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
