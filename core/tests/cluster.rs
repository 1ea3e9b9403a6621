//! Locks on a Redis (or Valkey) Cluster: six servers (three masters, three
//! replicas) on loopback, made a cluster with `redis-cli --cluster create`,
//! then a manual failover, a killed master and a slot migration under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_cluster_port, free_port, server_binary, server_command};
use parking_lot::Mutex;
use redis_lock_core::{AcquireOutcome, ClientOptions, Dsn, LockClient, Pool, Stats, Wait};

struct Node {
    port: u16,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    nodes: Vec<Node>,
    dir: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli_binary() -> String {
    if server_binary().ends_with("valkey-server") {
        "valkey-cli".to_owned()
    } else {
        "redis-cli".to_owned()
    }
}

fn admin(port: u16) -> redis::Connection {
    let con = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    con
}

fn try_cmd<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_connection_with_timeout(Duration::from_millis(500))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    cmd.query(&mut con)
}

#[derive(Debug, Clone)]
struct NodeLine {
    id: String,
    port: u16,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

fn cluster_nodes(port: u16) -> redis::RedisResult<Vec<NodeLine>> {
    let text: String = try_cmd(port, redis::cmd("CLUSTER").arg("NODES"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let addr = f[1].split('@').next()?;
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            let flags = f[2];
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|x| (x, x)),
                })
                .collect();
            Some(NodeLine {
                id: f[0].to_owned(),
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail") && !flags.contains("pfail")
                    || flags.contains("fail?")
                    || flags.contains("noaddr"),
                slots,
            })
        })
        .collect())
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "redis-lock-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_cluster_port();
            let child = server_command(port, &dir)
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "1000"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            nodes.push(Node { port, child });
        }
        let cluster = Cluster { nodes, dir };
        for node in &cluster.nodes {
            assert!(
                eventually_for(Duration::from_secs(10), || try_cmd::<String>(
                    node.port,
                    &redis::cmd("PING")
                )
                .is_ok()),
                "node {} did not start",
                node.port
            );
        }
        let mut create = Command::new(cli_binary());
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
        assert!(
            eventually_for(Duration::from_secs(20), || cluster_ok(&ports)),
            "cluster_state did not become ok"
        );
        assert!(
            eventually_for(Duration::from_secs(20), || slot_map_agreed(&ports)),
            "the nodes did not agree on one slot map: {:?}",
            ports.iter().map(|&p| slot_map(p)).collect::<Vec<_>>()
        );
        // Replicas in sync, so that a manual failover can start at once: each
        // master's replica acknowledges a write of a key in its slots. (Not
        // FLUSHALL: it kills the RDB child of a sync under way, and sent
        // again and again it keeps a replica from ever syncing.)
        for node in cluster_nodes(ports[0]).unwrap().iter().filter(|n| n.master) {
            let key = (0..)
                .map(|i| format!("redis-lock-test:ready:{i}"))
                .find(|key| {
                    let slot = key_slot(node.port, key);
                    node.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
                })
                .unwrap();
            let mut incr = redis::cmd("INCR");
            incr.arg(&key);
            assert!(
                common::replicas_acknowledge(node.port, 1, &incr, Duration::from_secs(30)),
                "the replica of master {} did not acknowledge",
                node.port
            );
        }
        cluster
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    fn dsn(&self) -> String {
        let hosts: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis-cluster://{}", hosts.join(","))
    }

    fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).unwrap();
        let _ = node.child.kill(); // SIGKILL
        let _ = node.child.wait();
    }
}

/// Every live port in `ports` says cluster_state:ok and all slots are served.
fn cluster_ok(ports: &[u16]) -> bool {
    ports.iter().all(|&p| {
        try_cmd::<String>(p, redis::cmd("CLUSTER").arg("INFO")).is_ok_and(|info| {
            info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
        })
    })
}

/// The slot map as the node on `port` sees it: (first slot, last slot, the
/// master's port) for each range, sorted; None while it does not answer.
fn slot_map(port: u16) -> Option<Vec<(u16, u16, u16)>> {
    let nodes = cluster_nodes(port).ok()?;
    let mut map: Vec<(u16, u16, u16)> = nodes
        .iter()
        .filter(|n| n.master && !n.failed)
        .flat_map(|n| n.slots.iter().map(move |&(a, b)| (a, b, n.port)))
        .collect();
    map.sort_unstable();
    Some(map)
}

/// Every node in `ports` knows all the others (no handshake left) and sees
/// the same slot map, covering all 16384 slots: what a client that asks any
/// node, and is redirected to any other, needs.
fn slot_map_agreed(ports: &[u16]) -> bool {
    let maps: Vec<Option<Vec<(u16, u16, u16)>>> = ports.iter().map(|&p| slot_map(p)).collect();
    let Some(Some(first)) = maps.first() else {
        return false;
    };
    let covered: u32 = first.iter().map(|&(a, b, _)| u32::from(b - a) + 1).sum();
    let known = ports.iter().all(|&p| {
        try_cmd::<String>(p, redis::cmd("CLUSTER").arg("INFO"))
            .is_ok_and(|info| info.contains(&format!("cluster_known_nodes:{}", ports.len())))
    });
    covered == 16384 && known && maps.iter().all(|m| m.as_ref() == Some(first))
}

fn eventually_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn key_slot(port: u16, key: &str) -> u16 {
    try_cmd(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).unwrap()
}

/// The live master that `port`'s view says serves `slot`.
fn owner(port: u16, slot: u16) -> Option<NodeLine> {
    cluster_nodes(port)
        .ok()?
        .into_iter()
        .find(|n| n.master && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
}

fn lock_client(dsn: &str, timeout: Duration) -> LockClient {
    LockClient::with_pool(
        Arc::new(Pool::default()),
        Arc::new(Mutex::new(Stats::new())),
        Dsn::parse(dsn).unwrap(),
        ClientOptions {
            prefix: b"test:".to_vec(),
            connect_timeout: timeout,
            timeout,
            fencing: true,
            replicas: 0,
        },
    )
}

fn counter_client(ports: &[u16]) -> redis::cluster::ClusterConnection {
    let nodes: Vec<String> = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    redis::cluster::ClusterClientBuilder::new(nodes)
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(1))
        .retries(8)
        .min_retry_wait(50)
        .max_retry_wait(300)
        .build()
        .unwrap()
        .get_connection()
        .unwrap()
}

fn counter_key(name: &str) -> String {
    format!("test:{{{name}}}:counter")
}

/// Lock names whose slots are spread over the three masters, `per` each.
fn names_on_masters(port: u16, per: usize) -> Vec<(String, u16)> {
    let mut by_master: HashMap<String, Vec<(String, u16)>> = HashMap::new();
    let mut i = 0;
    while by_master.len() < 3 || by_master.values().any(|v| v.len() < per) {
        let name = format!("n{i}");
        i += 1;
        let slot = key_slot(port, &format!("test:{{{name}}}"));
        let master = owner(port, slot).unwrap().id;
        let list = by_master.entry(master).or_default();
        if list.len() < per {
            list.push((name, slot));
        }
    }
    by_master.into_values().flatten().collect()
}

#[test]
fn cluster_locks_counters_failovers_and_migration() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start();
    let ports = cluster.ports();
    let dsn = cluster.dsn();
    println!("cluster up in {:?}: {dsn}", test_start.elapsed());

    // (1) Names over all three masters, eight workers with their own pools.
    let names: Vec<String> = names_on_masters(ports[0], 2)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|w| {
            let (dsn, names, ports) = (dsn.clone(), names.clone(), ports.clone());
            std::thread::spawn(move || {
                let client = lock_client(&dsn, Duration::from_secs(1));
                let mut counters = counter_client(&ports);
                let token = redis_lock_core::token::new_token();
                for i in 0..200 {
                    let name = &names[(i + w) % names.len()];
                    let outcome = client
                        .acquire(
                            name.as_bytes(),
                            &token,
                            Duration::from_secs(5),
                            Wait::For(Duration::from_secs(5)),
                        )
                        .unwrap();
                    assert!(
                        matches!(outcome, AcquireOutcome::Acquired(_)),
                        "{outcome:?}"
                    );
                    let key = counter_key(name);
                    let v: Option<i64> = redis::cmd("GET").arg(&key).query(&mut counters).unwrap();
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(v.unwrap_or(0) + 1)
                        .exec(&mut counters)
                        .unwrap();
                    assert!(client.release(name.as_bytes(), &token, None).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut counters = counter_client(&ports);
    let mut total = 0;
    let mut phase1: HashMap<String, i64> = HashMap::new();
    for name in &names {
        let v: i64 = redis::cmd("GET")
            .arg(counter_key(name))
            .query(&mut counters)
            .unwrap();
        phase1.insert(name.clone(), v);
        total += v;
    }
    assert_eq!(total, 8 * 200, "counters over {names:?}");
    println!(
        "phase 1: 8 x 200 increments exact over {} names",
        names.len()
    );

    // Woken waits: a blocked acquire returns soon after the release.
    let mut wake_latencies = Vec::new();
    for name in &names {
        let holder = lock_client(&dsn, Duration::from_secs(1));
        assert!(matches!(
            holder
                .acquire(name.as_bytes(), "holder", Duration::from_secs(10), Wait::No)
                .unwrap(),
            AcquireOutcome::Acquired(_)
        ));
        let (dsn2, name2) = (dsn.clone(), name.clone());
        let waiter = std::thread::spawn(move || {
            let client = lock_client(&dsn2, Duration::from_secs(1));
            let outcome = client
                .acquire(
                    name2.as_bytes(),
                    "waiter",
                    Duration::from_secs(10),
                    Wait::For(Duration::from_secs(5)),
                )
                .unwrap();
            assert!(matches!(outcome, AcquireOutcome::Acquired(_)));
            let at = Instant::now();
            client.release(name2.as_bytes(), "waiter", None).unwrap();
            at
        });
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        assert!(holder.release(name.as_bytes(), "holder", None).unwrap());
        let woken = waiter.join().unwrap();
        wake_latencies.push(woken.duration_since(released));
    }
    let max_wake = wake_latencies.iter().max().copied().unwrap_or_default();
    println!("waiters woken within {max_wake:?} of the release");
    assert!(max_wake < Duration::from_millis(200), "{wake_latencies:?}");

    release_during_migration_changes_nothing(&dsn, &ports);

    // (2) The same under a manual failover, a killed master and a slot migration.
    let timeout = Duration::from_secs(1);
    let wait = Duration::from_millis(300);
    let margin = Duration::from_millis(300);
    let hot = names[0].clone();
    let hot_slot = key_slot(ports[0], &format!("test:{{{hot}}}"));
    let stop = Arc::new(AtomicBool::new(false));
    // Per name: the highest fencing token seen and the owner that got it.
    // The same token again is right only for the same owner: a release that
    // failed (unavailable) left its hold, which its next acquire finds.
    let fences: Arc<Mutex<HashMap<String, (i64, String)>>> = Arc::default();
    // (time since start, name) of fencing tokens that did not increase.
    let fence_faults: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let phase2_start = Instant::now();
    // (time since start, name) of every acquire that got the lock.
    let acquired_log: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let error_kinds: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (dsn, names, ports, hot) = (dsn.clone(), names.clone(), ports.clone(), hot.clone());
            let (stop, fences, fence_faults) = (
                Arc::clone(&stop),
                Arc::clone(&fences),
                Arc::clone(&fence_faults),
            );
            let (acquired_log, error_kinds) = (Arc::clone(&acquired_log), Arc::clone(&error_kinds));
            let kind = move |e: &redis_lock_core::Error| {
                let k = match e.server_code() {
                    Some(code) => code.to_owned(),
                    None => format!("{e:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap_or("?")
                        .to_owned(),
                };
                *error_kinds.lock().entry(k).or_default() += 1;
            };
            std::thread::spawn(move || {
                let client = lock_client(&dsn, timeout);
                let mut counters = counter_client(&ports);
                let token = redis_lock_core::token::new_token();
                let mut acked: HashMap<String, i64> = HashMap::new();
                let mut unknown: HashMap<String, i64> = HashMap::new();
                let (mut max_acquire, mut max_release) = (Duration::ZERO, Duration::ZERO);
                let mut bad = Vec::new();
                let mut unavailable = 0;
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    // Every other call on the hot lock.
                    let name = if i % 2 == 0 {
                        &hot
                    } else {
                        &names[i % names.len()]
                    };
                    i += 1;
                    let t = Instant::now();
                    let outcome = client.acquire(
                        name.as_bytes(),
                        &token,
                        Duration::from_secs(3),
                        Wait::For(wait),
                    );
                    let took = t.elapsed();
                    max_acquire = max_acquire.max(took);
                    let hold = match outcome {
                        Ok(AcquireOutcome::Acquired(hold)) => hold,
                        Ok(_) => continue,
                        Err(e) if e.is_unavailable() => {
                            kind(&e);
                            unavailable += 1;
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        Err(e) => {
                            bad.push(format!("acquire: {e}"));
                            continue;
                        }
                    };
                    acquired_log
                        .lock()
                        .push((phase2_start.elapsed(), name.clone()));
                    let fence = hold.fence.unwrap();
                    {
                        let mut fences = fences.lock();
                        let last = fences.entry(name.clone()).or_insert((0, String::new()));
                        if fence < last.0 || (fence == last.0 && last.1 != token) {
                            fence_faults.lock().push((
                                phase2_start.elapsed(),
                                format!("{name}: {fence} after {last:?}"),
                            ));
                        }
                        if fence >= last.0 {
                            *last = (fence, token.clone());
                        }
                    }
                    let key = counter_key(name);
                    if let Ok(v) = redis::cmd("GET")
                        .arg(&key)
                        .query::<Option<i64>>(&mut counters)
                    {
                        match redis::cmd("SET")
                            .arg(&key)
                            .arg(v.unwrap_or(0) + 1)
                            .exec(&mut counters)
                        {
                            Ok(()) => *acked.entry(name.clone()).or_default() += 1,
                            Err(_) => *unknown.entry(name.clone()).or_default() += 1,
                        }
                    }
                    let t = Instant::now();
                    let released = client.release(name.as_bytes(), &token, None);
                    let took = t.elapsed();
                    max_release = max_release.max(took);
                    match released {
                        Ok(_) => {}
                        Err(e) if e.is_unavailable() => {
                            kind(&e);
                            unavailable += 1
                        }
                        Err(e) => bad.push(format!("release: {e}")),
                    }
                }
                (acked, unknown, max_acquire, max_release, bad, unavailable)
            })
        })
        .collect();

    let since = |t: Instant| t.duration_since(phase2_start);
    std::thread::sleep(Duration::from_secs(1));
    // Manual failover of the hot lock's master.
    let hot_master = owner(ports[0], hot_slot).unwrap();
    let all = cluster_nodes(ports[0]).unwrap();
    let replica_port = {
        let text: String = try_cmd(ports[0], redis::cmd("CLUSTER").arg("NODES")).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(&format!(" {} ", hot_master.id)) && l.contains("slave"))
            .expect("a replica of the hot master");
        let id = line.split_whitespace().next().unwrap();
        all.iter().find(|n| n.id == id).unwrap().port
    };
    let failover_at = Instant::now();
    let _: () = try_cmd(replica_port, redis::cmd("CLUSTER").arg("FAILOVER")).unwrap();
    assert!(eventually_for(Duration::from_secs(10), || {
        owner(replica_port, hot_slot).is_some_and(|n| n.port == replica_port)
            && owner(hot_master.port, hot_slot).is_some_and(|n| n.port == replica_port)
    }));
    let manual_done = failover_at.elapsed();
    println!(
        "manual failover {} -> {} done in {manual_done:?} (at {:?})",
        hot_master.port,
        replica_port,
        since(failover_at)
    );

    std::thread::sleep(Duration::from_secs(1));
    // Kill a master that does not serve the hot lock.
    let victim = cluster_nodes(replica_port)
        .unwrap()
        .into_iter()
        .find(|n| n.master && !n.slots.is_empty() && n.port != replica_port)
        .unwrap();
    let victim_slot = victim.slots[0].0;
    let kill_at = Instant::now();
    cluster.kill(victim.port);
    let live: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| p != victim.port)
        .collect();
    assert!(
        eventually_for(Duration::from_secs(15), || {
            cluster_ok(&live)
                && live
                    .iter()
                    .all(|&p| owner(p, victim_slot).is_some_and(|n| n.port != victim.port))
        }),
        "no replica took over from the killed master"
    );
    let recovered_in = kill_at.elapsed();
    println!(
        "killed master {} at {:?}; replica promoted, cluster ok after {recovered_in:?}",
        victim.port,
        since(kill_at)
    );

    std::thread::sleep(Duration::from_secs(1));
    // Move the hot lock's slot to another master, keys and all.
    let src = owner(replica_port, hot_slot).unwrap();
    let dst = cluster_nodes(replica_port)
        .unwrap()
        .into_iter()
        .find(|n| n.master && !n.failed && !n.slots.is_empty() && n.port != src.port)
        .unwrap();
    let migrate_at = Instant::now();
    let _: () = try_cmd(
        dst.port,
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(hot_slot)
            .arg("IMPORTING")
            .arg(&src.id),
    )
    .unwrap();
    let _: () = try_cmd(
        src.port,
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(hot_slot)
            .arg("MIGRATING")
            .arg(&dst.id),
    )
    .unwrap();
    let mut moved = 0;
    let mut src_con = admin(src.port);
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(hot_slot)
            .arg(100)
            .query(&mut src_con)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        moved += keys.len();
        let _: () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(dst.port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE")
            .arg("KEYS")
            .arg(&keys)
            .query(&mut src_con)
            .unwrap();
    }
    for port in [dst.port, src.port] {
        let _: () = try_cmd(
            port,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(hot_slot)
                .arg("NODE")
                .arg(&dst.id),
        )
        .unwrap();
    }
    for &port in &live {
        if port != dst.port && port != src.port {
            let _: redis::RedisResult<()> = try_cmd(
                port,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(hot_slot)
                    .arg("NODE")
                    .arg(&dst.id),
            );
        }
    }
    println!(
        "slot {hot_slot} of lock {hot} moved {} -> {} ({moved} keys) in {:?} (at {:?})",
        src.port,
        dst.port,
        migrate_at.elapsed(),
        since(migrate_at)
    );

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let mut acked: HashMap<String, i64> = HashMap::new();
    let mut unknown: HashMap<String, i64> = HashMap::new();
    let (mut max_acquire, mut max_release) = (Duration::ZERO, Duration::ZERO);
    let mut bad = Vec::new();
    let mut unavailable = 0;
    for w in workers {
        let (a, u, ma, mr, b, un) = w.join().unwrap();
        for (k, v) in a {
            *acked.entry(k).or_default() += v;
        }
        for (k, v) in u {
            *unknown.entry(k).or_default() += v;
        }
        max_acquire = max_acquire.max(ma);
        max_release = max_release.max(mr);
        bad.extend(b);
        unavailable += un;
    }
    assert!(
        bad.is_empty(),
        "calls that failed otherwise than unavailable: {bad:?}"
    );

    // The counters: phase 1 left 8 x 200 spread over `names`.
    let mut counters = counter_client(&live);
    let mut lost = 0;
    let mut phase2_acked = 0;
    for name in &names {
        let now: i64 = redis::cmd("GET")
            .arg(counter_key(name))
            .query::<Option<i64>>(&mut counters)
            .unwrap()
            .unwrap_or(0);
        let before = phase1[name];
        let a = acked.get(name).copied().unwrap_or(0);
        let u = unknown.get(name).copied().unwrap_or(0);
        phase2_acked += a;
        let got = now - before;
        assert!(
            got <= a + u,
            "{name}: {got} increments, {a} acknowledged, {u} unknown"
        );
        if got < a {
            lost += a - got;
        }
    }
    // Recovery: the longest time without a successful acquire on a lock
    // served by the killed master, from the kill on.
    let victim_names: Vec<&String> = names
        .iter()
        .filter(|n| {
            let slot = key_slot(live[0], &format!("test:{{{n}}}"));
            victim.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
        })
        .collect();
    let log = acquired_log.lock().clone();
    let kill_time = since(kill_at);
    let mut recovery = Duration::ZERO;
    for name in &victim_names {
        let mut last = kill_time;
        for (t, n) in log.iter().filter(|(t, n)| n == *name && *t >= kill_time) {
            let _ = n;
            recovery = recovery.max(*t - last);
            last = *t;
        }
    }
    println!(
        "locks on the killed master ({victim_names:?}): first acquire after the kill within {recovery:?}; \
         errors by kind: {:?}",
        error_kinds.lock()
    );
    let faults = fence_faults.lock().clone();
    println!("fencing faults (time since phase start, detail): {faults:?}");
    let before_kill: Vec<_> = faults.iter().filter(|(t, _)| *t < kill_time).collect();
    println!(
        "phase 2: {phase2_acked} acknowledged increments, {lost} lost; {unavailable} unavailable errors; \
         max acquire {max_acquire:?} (bound wait {wait:?} + timeout {timeout:?} + {margin:?}), \
         max release {max_release:?} (bound timeout + {margin:?}); \
         fencing faults {} (none allowed before the kill: {})",
        faults.len(),
        before_kill.len()
    );
    assert!(
        before_kill.is_empty(),
        "fencing tokens went back: {before_kill:?}"
    );
    assert!(max_acquire <= wait + timeout + margin, "{max_acquire:?}");
    assert!(max_release <= timeout + margin, "{max_release:?}");
    assert!(phase2_acked > 100, "too little progress: {phase2_acked}");
    println!("whole test {:?}", test_start.elapsed());
}

/// A release while the lock's slot is being migrated, when every declared
/// key is on the source node (so Redis lets the script start) but the keys
/// it derives (call marker, wake list) are not: the script must refuse with
/// TRYAGAIN before writing anything, not fail half-way with an error.
fn release_during_migration_changes_nothing(dsn: &str, ports: &[u16]) {
    let name = "migrating";
    let lock_key = format!("test:{{{name}}}");
    let slot = key_slot(ports[0], &lock_key);
    let src = owner(ports[0], slot).unwrap();
    let dst = cluster_nodes(ports[0])
        .unwrap()
        .into_iter()
        .find(|n| n.master && !n.slots.is_empty() && n.port != src.port)
        .unwrap();
    let holder = lock_client(dsn, Duration::from_millis(500));
    let AcquireOutcome::Acquired(hold) = holder
        .acquire(name.as_bytes(), "holder", Duration::from_secs(20), Wait::No)
        .unwrap()
    else {
        panic!("not acquired")
    };
    let dsn2 = dsn.to_owned();
    let waiter = std::thread::spawn(move || {
        lock_client(&dsn2, Duration::from_millis(500))
            .acquire(
                name.as_bytes(),
                "waiter",
                Duration::from_secs(20),
                Wait::For(Duration::from_secs(8)),
            )
            .unwrap()
    });
    let mut src_con = admin(src.port);
    assert!(common::eventually(|| redis::cmd("LLEN")
        .arg(format!("{lock_key}:queue"))
        .query::<i64>(&mut src_con)
        .unwrap()
        == 1));
    let setslot = |port: u16, args: &[&str]| {
        let _: () = try_cmd(
            port,
            redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(args),
        )
        .unwrap();
    };
    setslot(dst.port, &["IMPORTING", &src.id]);
    setslot(src.port, &["MIGRATING", &dst.id]);
    let err = holder
        .release(name.as_bytes(), "holder", Some(hold.acquired_at))
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let value: Option<String> = redis::cmd("GET")
        .arg(&lock_key)
        .query(&mut src_con)
        .unwrap();
    assert_eq!(
        value.as_deref().map(common::holder_of),
        Some("holder"),
        "{err}"
    );
    let queued: i64 = redis::cmd("LLEN")
        .arg(format!("{lock_key}:queue"))
        .query(&mut src_con)
        .unwrap();
    assert_eq!(queued, 1, "the waiter is still queued");
    setslot(src.port, &["STABLE"]);
    setslot(dst.port, &["STABLE"]);
    let released = Instant::now();
    assert!(holder
        .release(name.as_bytes(), "holder", Some(hold.acquired_at))
        .unwrap());
    let outcome = waiter.join().unwrap();
    assert!(matches!(outcome, AcquireOutcome::Acquired(h) if h.fence == hold.fence.map(|f| f + 1)));
    println!(
        "release during a migration: {err}; after it, the waiter got the lock {:?} after the release",
        released.elapsed()
    );
}
