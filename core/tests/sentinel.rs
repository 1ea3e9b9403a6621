//! Locks through `redis-sentinel://`: one master, two replicas and three
//! Sentinels, real processes on loopback; a failover while calls run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client_for, free_port, sentinel_binary, RedisServer};
use parking_lot::Mutex;
use redis_lock_core::token::new_token;
use redis_lock_core::{AcquireOutcome, Error, Wait};

const SERVICE: &str = "locks";
const TIMEOUT: Duration = Duration::from_millis(500);
const TTL: Duration = Duration::from_secs(10);

/// A Sentinel process, killed when dropped.
struct Sentinel {
    port: u16,
    child: Child,
}

impl Sentinel {
    fn start(dir: &std::path::Path, master_port: u16) -> Self {
        loop {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 3000\n\
                     sentinel parallel-syncs {SERVICE} 2\n",
                    dir = dir.display()
                ),
            )
            .unwrap();
            let child = Command::new(sentinel_binary())
                .arg(&conf)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{} must be installed: {e}", sentinel_binary()));
            let mut sentinel = Sentinel { port, child };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if sentinel.query::<String>(&mut redis::cmd("PING")).is_ok() {
                    return sentinel;
                }
                if sentinel.child.try_wait().unwrap().is_some() {
                    break; // exited: the port is in use; try another
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not start",
                    sentinel_binary()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
        let mut con = redis::Client::open(("127.0.0.1", self.port))?
            .get_connection_with_timeout(Duration::from_secs(1))?;
        con.set_read_timeout(Some(Duration::from_secs(1)))?;
        cmd.query(&mut con)
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// `SENTINEL master <service>` as field → value.
    fn master_state(&self) -> Vec<(String, String)> {
        let flat: Vec<String> = self
            .query(redis::cmd("SENTINEL").arg("master").arg(SERVICE))
            .unwrap_or_default();
        flat.chunks(2)
            .filter(|kv| kv.len() == 2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole deployment; every process is stopped and the config directory
/// removed when dropped, also when a test fails.
struct Deployment {
    sentinels: Vec<Sentinel>,
    replicas: Vec<RedisServer>,
    master: RedisServer,
    dir: PathBuf,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.sentinels.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn role(port: u16) -> String {
    let role: redis::RedisResult<redis::Value> = redis::Client::open(("127.0.0.1", port))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(300)))
        .and_then(|mut con| {
            con.set_read_timeout(Some(Duration::from_millis(300)))?;
            redis::cmd("ROLE").query(&mut con)
        });
    match role {
        Ok(redis::Value::Array(items)) => match items.first() {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Deployment {
    fn start() -> Self {
        let master = RedisServer::start();
        let replicas: Vec<RedisServer> = (0..2)
            .map(|_| {
                let replica = RedisServer::start();
                common::start_replication(&master, &replica);
                replica
            })
            .collect();
        let dir = std::env::temp_dir().join(format!(
            "redis-lock-sentinel-{}-{}",
            std::process::id(),
            master.port
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut deployment = Deployment {
            sentinels: Vec::new(),
            replicas,
            master,
            dir,
        };
        for _ in 0..3 {
            let sentinel = Sentinel::start(&deployment.dir, deployment.master.port);
            deployment.sentinels.push(sentinel);
        }
        // In sync: both replicas acknowledge a write (`master_link_status:up`
        // can show before a replica acknowledges anything).
        let mut probe = redis::cmd("INCR");
        probe.arg("redis-lock-test:replication-probe");
        assert!(
            common::replicas_acknowledge(
                deployment.master.port,
                2,
                &probe,
                Duration::from_secs(20)
            ),
            "the replicas did not acknowledge their master's writes"
        );
        wait_until(
            "the sentinels know each other and the replicas",
            Duration::from_secs(15),
            || {
                deployment.sentinels.iter().all(|s| {
                    let state = s.master_state();
                    let get = |k: &str| state.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
                    get("flags") == Some("master")
                        && get("num-slaves") == Some("2")
                        && get("num-other-sentinels") == Some("2")
                })
            },
        );
        deployment
    }

    fn dsn(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis-sentinel://{}/{SERVICE}", hosts.join(","))
    }
}

fn fence_of(outcome: AcquireOutcome) -> i64 {
    match outcome {
        AcquireOutcome::Acquired(hold) => hold.fence.expect("fencing is on"),
        other => panic!("not acquired: {other:?}"),
    }
}

#[test]
fn locks_through_sentinel_survive_a_failover() {
    let setup_started = Instant::now();
    let d = Deployment::start();
    println!(
        "deployment ready in {:.1} s",
        setup_started.elapsed().as_secs_f64()
    );
    let dsn = d.dsn();

    // (1) Locks work through the Sentinel DSN, contention across clients.
    let (a, b) = (
        client_for(&dsn, true, TIMEOUT),
        client_for(&dsn, true, TIMEOUT),
    );
    let (ta, tb) = (new_token(), new_token());
    let first = fence_of(a.acquire(b"k", &ta, TTL, Wait::No).unwrap());
    assert_eq!(
        b.acquire(b"k", &tb, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(a.release(b"k", &ta, None).unwrap());
    let second = fence_of(b.acquire(b"k", &tb, TTL, Wait::No).unwrap());
    assert!(second > first, "{second} > {first}");
    assert!(b.release(b"k", &tb, None).unwrap());
    let mut last = second;
    for _ in 0..5 {
        let t = new_token();
        let fence = fence_of(a.acquire(b"k", &t, TTL, Wait::No).unwrap());
        assert!(fence > last, "{fence} > {last}");
        last = fence;
        assert!(a.release(b"k", &t, None).unwrap());
    }
    // The lock lives on the master the Sentinels name.
    let stored: i64 = redis::cmd("GET")
        .arg("test:{k}:fence")
        .query(&mut d.master.raw())
        .unwrap();
    assert_eq!(stored, last);

    // A stalled Sentinel (the first one, asked first) is given at most half
    // of connect_timeout; the next one answers.
    d.sentinels[0].signal("-STOP");
    let fresh = client_for(&dsn, false, TIMEOUT);
    let started = Instant::now();
    let outcome = fresh.acquire(b"stall", &new_token(), TTL, Wait::No);
    let took = started.elapsed();
    d.sentinels[0].signal("-CONT");
    assert!(
        matches!(outcome, Ok(AcquireOutcome::Acquired(_))),
        "{outcome:?}"
    );
    assert!(took < TIMEOUT + Duration::from_millis(200), "{took:?}");

    // A stalled master (briefly, well under down-after-milliseconds): a
    // pooled connection times out and is dropped; a new one, through the
    // Sentinels, the master's ROLE unanswered, ends within connect_timeout.
    d.master.signal("-STOP");
    let stalled = Instant::now();
    let pooled = a.acquire(b"stall2", &new_token(), TTL, Wait::No);
    let pooled_took = stalled.elapsed();
    let started = Instant::now();
    let fresh = client_for(&dsn, false, TIMEOUT).acquire(b"stall2", &new_token(), TTL, Wait::No);
    let fresh_took = started.elapsed();
    d.master.signal("-CONT");
    assert!(matches!(&pooled, Err(Error::Timeout { .. })), "{pooled:?}");
    assert!(matches!(&fresh, Err(e) if e.is_unavailable()), "{fresh:?}");
    println!(
        "stalled master: pooled call {:.3} s ({:?}), new connection {:.3} s ({:?})",
        pooled_took.as_secs_f64(),
        pooled.err().map(|e| e.to_string()),
        fresh_took.as_secs_f64(),
        fresh.err().map(|e| e.to_string())
    );
    assert!(
        pooled_took < TIMEOUT + Duration::from_millis(150),
        "{pooled_took:?}"
    );
    assert!(
        fresh_took < TIMEOUT + Duration::from_millis(150),
        "{fresh_took:?}"
    );

    // An unknown service: unavailable, at once.
    let wrong = client_for(&dsn.replace(SERVICE, "nosuch"), false, TIMEOUT);
    match wrong.acquire(b"k", &new_token(), TTL, Wait::No) {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.to_string().contains("knows no master"), "{e}")
        }
        other => panic!("{other:?}"),
    }

    // The master turned into a replica behind the Sentinels' back (as a
    // demoted master is): READONLY; the connection is dropped, the next call
    // asks again and refuses the node because ROLE says slave.
    let t = new_token();
    fence_of(a.acquire(b"k", &t, TTL, Wait::No).unwrap()); // a pooled connection again
    assert!(a.release(b"k", &t, None).unwrap());
    let dead = free_port();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(dead)
        .query(&mut d.master.raw())
        .unwrap();
    let t = new_token();
    match a.acquire(b"k", &t, TTL, Wait::No) {
        Err(e) => {
            assert_eq!(e.server_code(), Some("READONLY"), "{e}");
            assert!(e.is_unavailable());
        }
        other => panic!("{other:?}"),
    }
    match a.acquire(b"k", &t, TTL, Wait::No) {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.to_string().contains("not master"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut d.master.raw())
        .unwrap();
    // A new token: the failed attempts left `t` as an orphan, which the
    // next successful acquire releases.
    let t = new_token();
    let fence = fence_of(a.acquire(b"k", &t, TTL, Wait::No).unwrap());
    assert!(fence > last);
    assert!(a.release(b"k", &t, None).unwrap());

    // (2) A fencing token that both replicas hold, then the failover.
    let t = new_token();
    let before = fence_of(a.acquire(b"fenced", &t, TTL, Wait::No).unwrap());
    assert!(a.release(b"fenced", &t, None).unwrap());
    // A write made after the fencing counter's, acknowledged by both: they
    // hold the counter too (the replication stream is in order). A WAIT on
    // a connection that wrote nothing would count them whatever they hold.
    let mut probe = redis::cmd("INCR");
    probe.arg("redis-lock-test:replication-probe");
    assert!(
        common::replicas_acknowledge(d.master.port, 2, &probe, Duration::from_secs(5)),
        "both replicas hold the fencing counter"
    );

    struct Call {
        started: Instant,
        took: Duration,
        acquired: bool,
    }
    let calls: Arc<Mutex<Vec<Call>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (calls, errors, stop, killed_at) = (
                Arc::clone(&calls),
                Arc::clone(&errors),
                Arc::clone(&stop),
                Arc::clone(&killed_at),
            );
            let c = client_for(&dsn, false, TIMEOUT);
            std::thread::spawn(move || {
                let mut ok_after_kill = 0;
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) || ok_after_kill >= 20 {
                        break;
                    }
                    let name = format!("w{w}-{i}");
                    let t = new_token();
                    for acquire in [true, false] {
                        let started = Instant::now();
                        let result = if acquire {
                            c.acquire(name.as_bytes(), &t, Duration::from_secs(2), Wait::No)
                                .map(|o| matches!(o, AcquireOutcome::Acquired(_)))
                        } else {
                            c.release(name.as_bytes(), &t, None).map(|_| false)
                        };
                        let took = started.elapsed();
                        let acquired = matches!(result, Ok(true));
                        if let Err(e) = &result {
                            if !e.is_unavailable() {
                                errors.lock().push(format!("not an unavailable error: {e}"));
                            }
                        }
                        calls.lock().push(Call {
                            started,
                            took,
                            acquired,
                        });
                        if acquired && killed_at.lock().is_some_and(|k| started > k) {
                            ok_after_kill += 1;
                        }
                        if result.is_err() {
                            std::thread::sleep(Duration::from_millis(20));
                            break; // next name
                        }
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(300));
    d.master.signal("-KILL");
    let kill = Instant::now();
    *killed_at.lock() = Some(kill);
    let give_up = kill + Duration::from_secs(20);
    while !workers.iter().all(|w| w.is_finished()) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }

    let calls = calls.lock();
    let errors = errors.lock();
    assert!(errors.is_empty(), "{:?}", *errors);
    let max = calls.iter().map(|c| c.took).max().unwrap();
    let before_kill = calls.iter().filter(|c| c.started < kill).count();
    let failed = calls
        .iter()
        .filter(|c| c.started >= kill && !c.acquired)
        .count();
    let recovered = calls
        .iter()
        .filter(|c| c.started >= kill && c.acquired)
        .map(|c| c.started + c.took)
        .min()
        .expect("locks work again after the failover");
    let failover = recovered.duration_since(kill);
    println!(
        "calls: {} ({before_kill} before the kill, {failed} after it without an acquire); \
         slowest call {:.3} s; first acquire {:.2} s after the kill; new master role check: {}",
        calls.len(),
        max.as_secs_f64(),
        failover.as_secs_f64(),
        d.replicas
            .iter()
            .map(|r| format!("{}={}", r.port, role(r.port)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // A call is one try of the old connection, at most one connect (all
    // Sentinels and the master within connect_timeout) and one command
    // within timeout.
    assert!(
        max < TIMEOUT * 2 + Duration::from_millis(300),
        "slowest call {max:?}"
    );
    assert!(failover < Duration::from_secs(15), "{failover:?}");
    assert!(before_kill > 0);

    // The new master has the counter: the next token is greater.
    let t = new_token();
    let after = fence_of(a.acquire(b"fenced", &t, TTL, Wait::No).unwrap());
    assert!(after > before, "{after} > {before}");
    assert!(d.replicas.iter().any(|r| role(r.port) == "master"));
}
