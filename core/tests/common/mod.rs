//! A real redis-server on a free loopback port, stopped when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis_lock_core::{ClientOptions, Dsn, LockClient, Pool, Stats};

pub struct RedisServer {
    pub port: u16,
    child: Child,
    /// The server's own working directory: a replica writes the RDB of its
    /// full sync there, and a server started in a directory with a dump.rdb
    /// loads it (or, a Valkey given a newer Redis's RDB, exits).
    dir: std::path::PathBuf,
}

/// Ports handed out in this test process. The tests run as parallel threads,
/// and the kernel may hand a just-freed port (a probe listener dropped, a
/// server stopped to be restarted on the same port) to a second test, which
/// would then share, or kill, the first test's server.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port that no other test of this process has been given.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if PORTS.lock().insert(port) {
            return port;
        }
    }
}

/// A free port for a cluster node: it also listens on the port + 10000, so
/// the port must be at most 55535 (the kernel hands out up to 60999).
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55535 {
            return port;
        }
    }
}

/// The test servers' command line: `port` on loopback, working directory
/// `dir`, nothing persisted; callers add what their kind of server needs.
pub fn server_command(port: u16, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.arg("--dir")
        .arg(dir)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"]);
    cmd
}

/// The server binary the tests run against: `REDIS_LOCK_TEST_SERVER`, else
/// redis-server (valkey-server takes the same arguments).
pub fn server_binary() -> String {
    std::env::var("REDIS_LOCK_TEST_SERVER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "redis-server".to_owned())
}

impl RedisServer {
    pub fn start() -> Self {
        // Another process on this machine may take the port first; a server
        // that exits on every port has another problem.
        for _ in 0..20 {
            if let Some(server) = Self::try_start_on(free_port()) {
                return server;
            }
        }
        panic!("{} exited on 20 ports in a row", server_binary());
    }

    pub fn start_on(port: u16) -> Self {
        Self::try_start_on(port)
            .unwrap_or_else(|| panic!("port {port} is taken by another process"))
    }

    /// None when our redis-server could not have the port.
    fn try_start_on(port: u16) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "redis-lock-core-test-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = server_command(port, &dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} must be installed: {e}", server_binary()));
        let mut server = RedisServer { port, child, dir };
        // Ready once a real handshake, PING and INFO succeed (a bare TCP
        // connect can succeed before, or against someone else's server; INFO
        // alone answers while a server is still loading a dump, when PING and
        // every lock command get -LOADING); and whoever answers must be the
        // server we started.
        let ours = format!("process_id:{}", server.pid());
        let deadline = Instant::now() + Duration::from_secs(10);
        let info = loop {
            let info: redis::RedisResult<String> = redis::Client::open(server.dsn())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut con| {
                    redis::cmd("PING").query::<String>(&mut con)?;
                    redis::cmd("INFO").arg("server").query(&mut con)
                });
            if let Ok(info) = info {
                break info;
            }
            if server.child.try_wait().unwrap().is_some() {
                return None; // exited: the port is in use
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start",
                server_binary()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        info.lines().any(|l| l.trim() == ours).then_some(server)
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

/// The tests' client options: prefix `test:`, `timeout` for connecting and
/// for each command, no fencing, no replicas.
pub fn options(timeout: Duration) -> ClientOptions {
    ClientOptions {
        prefix: b"test:".to_vec(),
        connect_timeout: timeout,
        timeout,
        fencing: false,
        replicas: 0,
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
            replicas: 0,
        },
    )
}

/// Makes `replica` a replica of `master` and returns once it has
/// acknowledged a write the master made after the link came up: the state in
/// which a `WAIT` for one replica answers at once. `state=online` on the
/// master and `master_link_status:up` on the replica are not enough: on
/// redis-server 7.0 both can show while the replica has acknowledged nothing,
/// and a `WAIT 1 300` then answers 0 after the whole 300 ms.
pub fn attach_replica(master: &RedisServer, replica: &RedisServer) {
    start_replication(master, replica);
    let mut probe = redis::cmd("INCR");
    probe.arg("redis-lock-test:replication-probe");
    assert!(
        replicas_acknowledge(master.port, 1, &probe, Duration::from_secs(20)),
        "the replica on {} did not acknowledge its master {} within 20 s",
        replica.port,
        master.port
    );
}

/// Makes `replica` a replica of `master` and returns at once (see
/// [`attach_replica`] for one that waits until it acknowledges).
pub fn start_replication(master: &RedisServer, replica: &RedisServer) {
    // The first sync would otherwise wait 5 s for more replicas to join.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync-delay")
        .arg("0")
        .query(&mut master.raw())
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut replica.raw())
        .unwrap();
}

/// Whether, within `limit`, `replicas` replicas of the master on `port`
/// acknowledge a write made on it: `write` is sent, then the master's
/// replication offset read, and the replicas' acknowledged offsets (INFO
/// replication on the master) compared with it, again until enough have it.
/// A bare `WAIT` is not enough: while the master's offset is still 0 (no
/// write propagated yet) it counts every online replica at once, and on
/// redis-server 7.0 a replica can then go on acknowledging offset 0 for
/// about a second (its first acknowledgement waits for its cron tick).
/// `write` must be a write the master propagates: a `SET`/`INCR` of a key it
/// serves (a cluster master serves only its own slots). Not `FLUSHALL`: it
/// kills the RDB child of a sync under way, so sent again and again it keeps
/// a replica from ever syncing.
pub fn replicas_acknowledge(
    port: u16,
    replicas: usize,
    write: &redis::Cmd,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let acked: redis::RedisResult<bool> =
            redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut con| {
                    con.set_read_timeout(Some(Duration::from_secs(2)))?;
                    write.query::<redis::Value>(&mut con)?;
                    let info: String = redis::cmd("INFO").arg("replication").query(&mut con)?;
                    let wanted = replication_field(&info, "master_repl_offset").unwrap_or(0);
                    // Asks the replicas for their offsets and waits for them a little.
                    let _: i64 = redis::cmd("WAIT").arg(replicas).arg(100).query(&mut con)?;
                    let info: String = redis::cmd("INFO").arg("replication").query(&mut con)?;
                    let holding = info
                        .lines()
                        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                        .filter_map(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")))
                        .filter_map(|o| o.trim().parse::<u64>().ok())
                        .filter(|&o| o >= wanted)
                        .count();
                    Ok(wanted > 0 && holding >= replicas)
                });
        if acked.unwrap_or(false) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number after `field:` in an INFO reply.
fn replication_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy on loopback in front of a server, for faults a test needs at
/// one point of a connection: it can drop the next reply and cut the
/// connection (the command has then run on the server, but the client sees
/// a broken connection and does not know it), and it can hold what clients
/// send for a while before passing it on, in order (a client whose commands
/// reach the server late, as when its process is descheduled between
/// writing to several servers).
pub struct Proxy {
    pub port: u16,
    drop_next: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

/// The proxy as the tests that drop a reply name it.
pub type ReplyDropper = Proxy;
/// The proxy as the tests that delay commands name it.
pub type Delayer = Proxy;

impl Proxy {
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let drop_next = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (flag, delay) = (Arc::clone(&drop_next), Arc::clone(&delay_ms));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let (from_client, to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let delay = Arc::clone(&delay);
                std::thread::spawn(move || {
                    forward(from_client, to_server, |_| {
                        let ms = delay.load(Ordering::SeqCst);
                        if ms > 0 {
                            std::thread::sleep(Duration::from_millis(ms));
                        }
                        true
                    })
                });
                let flag = Arc::clone(&flag);
                // A dropped reply is lost with the connection.
                std::thread::spawn(move || {
                    forward(server, client, |_| !flag.swap(false, Ordering::SeqCst))
                });
            }
        });
        Proxy {
            port,
            drop_next,
            delay_ms,
        }
    }

    pub fn dsn(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The next reply that any connection through the proxy receives is not
    /// passed on, and that connection is closed.
    pub fn drop_next_reply(&self) {
        self.drop_next.store(true, Ordering::SeqCst);
    }

    /// From now on, what clients send reaches the server `delay` late.
    pub fn delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

/// Copies `from` to `to` chunk by chunk while `pass` says so, then closes
/// both.
fn forward(mut from: TcpStream, mut to: TcpStream, mut pass: impl FnMut(&[u8]) -> bool) {
    let mut buf = [0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !pass(&buf[..n]) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// The Sentinel binary matching [`server_binary`]: valkey-sentinel when the
/// server is valkey-server and valkey-sentinel is installed, else
/// redis-sentinel.
pub fn sentinel_binary() -> String {
    let valkey = server_binary().ends_with("valkey-server")
        && Command::new("valkey-sentinel")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if valkey {
        "valkey-sentinel"
    } else {
        "redis-sentinel"
    }
    .to_owned()
}

/// The holder's token in a stored lock value: without the waiters mark and
/// the end of the hold that follows it (see the `scripts` module).
pub fn holder_of(value: &str) -> &str {
    match value.rfind("\0w") {
        Some(at) if value[at + 2..].bytes().all(|b| b.is_ascii_digit()) => &value[..at],
        _ => value,
    }
}

/// Eight threads, each with the multi-lock `make` gives it, take three of
/// the four names w, x, y, z for `rounds` rounds, in their own orders
/// (half of them reversed), blocking for at most 30 s, and add one per name
/// to a counter on `counters` while they hold them. Returns the sum of the
/// counters: 8 * `rounds` * 3 when no update was lost and every acquire
/// succeeded.
pub fn count_under_multi_locks(
    make: impl Fn() -> redis_lock_core::multi::MultiLocks,
    counters: &RedisServer,
    rounds: usize,
) -> i64 {
    use redis_lock_core::multi::encode;
    use redis_lock_core::{AcquireOutcome, Locks, Wait};

    let all: Vec<Vec<u8>> = [b"w", b"x", b"y", b"z"]
        .iter()
        .map(|n| n.to_vec())
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|w| {
            let m = make();
            let mut raw = counters.raw();
            let all = all.clone();
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let mut names = all.clone();
                    names.remove((i + w) % 4);
                    if w % 2 == 1 {
                        names.reverse();
                    }
                    let encoded = encode(&names);
                    let t = redis_lock_core::token::new_token();
                    let ttl = Duration::from_secs(10);
                    let got = m
                        .acquire(&encoded, &t, ttl, Wait::For(Duration::from_secs(30)))
                        .unwrap();
                    assert!(
                        matches!(got, AcquireOutcome::Acquired(_)),
                        "worker {w}, round {i}: {got:?}"
                    );
                    for name in &names {
                        let key = [b"n:".as_slice(), name].concat();
                        let v: Option<i64> = redis::cmd("GET").arg(&key).query(&mut raw).unwrap();
                        redis::cmd("SET")
                            .arg(&key)
                            .arg(v.unwrap_or(0) + 1)
                            .query::<()>(&mut raw)
                            .unwrap();
                    }
                    assert!(m.release(&encoded, &t, None).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut raw = counters.raw();
    all.iter()
        .map(|n| {
            let v: Option<i64> = redis::cmd("GET")
                .arg([b"n:".as_slice(), n].concat())
                .query(&mut raw)
                .unwrap();
            v.unwrap_or(0)
        })
        .sum()
}
