//! Redlock over five independent redis-servers on loopback: exact counters
//! under eight contending threads, masters stopped, stalled and restarted
//! without persistence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Delayer, RedisServer};
use parking_lot::Mutex;
use redis_lock_core::redlock::{Redlock, SKIP_AFTER_FAILURE};
use redis_lock_core::token::new_token;
use redis_lock_core::{AcquireOutcome, ClientOptions, Deployment, Error, Pool, Stats, Wait};

const TIMEOUT: Duration = Duration::from_millis(300);
const TTL: Duration = Duration::from_secs(5);

fn masters(n: usize) -> Vec<RedisServer> {
    (0..n).map(|_| RedisServer::start()).collect()
}

fn redlock(servers: &[RedisServer]) -> Redlock {
    let list: Vec<String> = servers.iter().map(RedisServer::dsn).collect();
    redlock_over(&list)
}

fn redlock_over(list: &[String]) -> Redlock {
    let Deployment::Redlock(dsns) = Deployment::parse_list(list).unwrap() else {
        panic!("a list is a Redlock");
    };
    Redlock::with_pool(
        Arc::new(Pool::default()),
        Arc::new(Mutex::new(Stats::new())),
        dsns,
        ClientOptions {
            prefix: b"test:".to_vec(),
            connect_timeout: TIMEOUT,
            timeout: TIMEOUT,
            fencing: false,
            replicas: 0,
        },
    )
}

fn held(o: AcquireOutcome) -> bool {
    matches!(o, AcquireOutcome::Acquired(_))
}

/// How many of `servers` have the lock `name` set.
fn holders(servers: &[RedisServer], name: &str) -> usize {
    servers
        .iter()
        .filter(|s| {
            let exists: i64 = redis::cmd("EXISTS")
                .arg(format!("test:{{{name}}}"))
                .query(&mut s.raw())
                .unwrap();
            exists == 1
        })
        .count()
}

/// Eight threads, each with its own pool (as eight PHP workers), add one to a
/// counter on a sixth server by GET then SET, under the lock, `rounds` times
/// each, while `during` runs. Returns the counter and the number of
/// increments acknowledged by a release.
fn contend(
    servers: &[RedisServer],
    data: &RedisServer,
    rounds: usize,
    during: impl FnOnce(),
) -> (i64, usize) {
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let r = redlock(servers);
            let mut counter = data.raw();
            std::thread::spawn(move || {
                let mut done = 0;
                let mut rounds_left = rounds;
                while rounds_left > 0 {
                    let t = new_token();
                    match r.acquire(b"counter", &t, TTL, Wait::For(Duration::from_secs(10))) {
                        Ok(AcquireOutcome::Acquired(_)) => {}
                        Ok(other) => panic!("a 10 s wait ended with {other:?}"),
                        Err(e) if e.is_unavailable() => continue, // a fault: try again
                        Err(e) => panic!("{e}"),
                    }
                    let n: i64 = redis::cmd("GET")
                        .arg("n")
                        .query::<Option<i64>>(&mut counter)
                        .unwrap()
                        .unwrap_or(0);
                    redis::cmd("SET")
                        .arg("n")
                        .arg(n + 1)
                        .query::<()>(&mut counter)
                        .unwrap();
                    rounds_left -= 1;
                    if r.release(b"counter", &t, None).unwrap_or(false) {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    during();
    let done = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let n: i64 = redis::cmd("GET")
        .arg("n")
        .query::<Option<i64>>(&mut data.raw())
        .unwrap()
        .unwrap_or(0);
    (n, done)
}

#[test]
fn a_majority_holds_it_and_only_the_owner_releases() {
    let servers = masters(5);
    let (a, b) = (redlock(&servers), redlock(&servers));
    assert_eq!(a.quorum(), 3);
    let (ta, tb) = (new_token(), new_token());
    assert!(held(a.acquire(b"k", &ta, TTL, Wait::No).unwrap()));
    assert_eq!(holders(&servers, "k"), 5);
    assert_eq!(
        b.acquire(b"k", &tb, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(b.is_locked(b"k").unwrap());
    assert!(!b.release(b"k", &tb, None).unwrap(), "not the owner");
    assert!(a.refresh(b"k", &ta, TTL).unwrap());
    assert!(!b.refresh(b"k", &tb, TTL).unwrap());
    assert!(a.release(b"k", &ta, None).unwrap());
    assert_eq!(holders(&servers, "k"), 0);
    assert!(!a.is_locked(b"k").unwrap());
    // force_release deletes whoever holds it, everywhere.
    assert!(held(b.acquire(b"k", &tb, TTL, Wait::No).unwrap()));
    assert!(a.force_release(b"k").unwrap());
    assert_eq!(holders(&servers, "k"), 0);
}

#[test]
fn a_minority_held_by_someone_else_is_given_back() {
    let servers = masters(5);
    let r = redlock(&servers);
    // Another owner holds the lock on three masters: a majority is impossible.
    for s in &servers[..3] {
        redis::cmd("SET")
            .arg("test:{k}")
            .arg("other")
            .query::<()>(&mut s.raw())
            .unwrap();
    }
    let t = new_token();
    assert_eq!(
        r.acquire(b"k", &t, TTL, Wait::For(Duration::from_millis(200)))
            .unwrap(),
        AcquireOutcome::TimedOut
    );
    // The two it did get were undone.
    assert_eq!(holders(&servers, "k"), 3);
    assert!(r.is_locked(b"k").unwrap());
}

#[test]
fn eight_contending_threads_count_exactly() {
    let servers = masters(5);
    let data = RedisServer::start();
    let (n, done) = contend(&servers, &data, 200, || {});
    assert_eq!(n, 1600);
    assert_eq!(done, 1600, "every release confirmed by a majority");
    assert_eq!(
        holders(&servers, "counter"),
        0,
        "no lock left behind on any master: {}",
        left_behind(&servers, "counter")
    );
}

/// What each master keeps of lock `name` (value, TTL left), its queue
/// and its freed marker: what a failed "nothing left behind" shows.
fn left_behind(servers: &[RedisServer], name: &str) -> String {
    let lock = format!("test:{{{name}}}");
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut con = s.raw();
            let value: Option<Vec<u8>> = redis::cmd("GET").arg(&lock).query(&mut con).unwrap();
            let pttl: i64 = redis::cmd("PTTL").arg(&lock).query(&mut con).unwrap();
            let queue: Vec<String> = redis::cmd("LRANGE")
                .arg(format!("{lock}:queue"))
                .arg(0)
                .arg(-1)
                .query(&mut con)
                .unwrap_or_default();
            format!(
                "master {i}: {:?} pttl {pttl} queue {queue:?}",
                value.map(|v| String::from_utf8_lossy(&v).into_owned())
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn two_masters_down_it_still_works_three_down_it_fails_within_the_timeout() {
    let mut servers = masters(5);
    let r = redlock(&servers);
    let t = new_token();
    assert!(held(r.acquire(b"warm", &t, TTL, Wait::No).unwrap()));
    assert!(r.release(b"warm", &t, None).unwrap());
    drop(servers.pop());
    drop(servers.pop());
    let t = new_token();
    assert!(held(r.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    assert!(r.release(b"k", &t, None).unwrap());
    let stopped = servers.pop().unwrap();
    stopped.signal("-STOP"); // slow, not dead: its answer never comes
    let start = Instant::now();
    let err = r.acquire(b"k", &new_token(), TTL, Wait::No).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::NoQuorum {
                answered: 2,
                needed: 3,
                total: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_unavailable(), "a ConnectionException in PHP");
    assert!(took < TIMEOUT + Duration::from_millis(200), "{took:?}");
    assert_eq!(
        holders(&servers, "k"),
        0,
        "nothing left held on the two alive"
    );
    stopped.signal("-CONT");
}

#[test]
fn a_stalled_master_delays_no_call_past_its_timeout() {
    let servers = masters(5);
    let data = RedisServer::start();
    let (n, _) = contend(&servers, &data, 100, || {
        std::thread::sleep(Duration::from_millis(300));
        servers[1].signal("-STOP");
        // Every call made meanwhile is checked below, through its duration.
        let r = redlock(&servers);
        let until = Instant::now() + Duration::from_secs(2);
        let mut slowest = Duration::ZERO;
        while Instant::now() < until {
            let start = Instant::now();
            let _ = r.is_locked(b"counter").unwrap();
            slowest = slowest.max(start.elapsed());
        }
        servers[1].signal("-CONT");
        assert!(
            slowest < TIMEOUT + Duration::from_millis(200),
            "slowest call {slowest:?} with a {TIMEOUT:?} timeout"
        );
    });
    assert_eq!(n, 800);
}

#[test]
fn a_failed_master_is_left_out_for_a_while_then_asked_again() {
    let servers = masters(3);
    let r = redlock(&servers);
    assert!(!r.is_locked(b"k").unwrap());
    servers[0].signal("-STOP");
    let start = Instant::now();
    assert!(!r.is_locked(b"k").unwrap());
    assert!(
        start.elapsed() >= TIMEOUT,
        "the first call waits for the stalled master"
    );
    let start = Instant::now();
    assert!(!r.is_locked(b"k").unwrap());
    assert!(start.elapsed() < TIMEOUT, "the next ones leave it out");
    servers[0].signal("-CONT");
    std::thread::sleep(SKIP_AFTER_FAILURE);
    let t = new_token();
    assert!(held(r.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    assert_eq!(
        holders(&servers, "k"),
        3,
        "asked again once the pause is over"
    );
}

/// A failed acquire gives back only what its SET may have taken: a master
/// left out after a failure, or one that answered with another owner, is not
/// asked to undo. (Asking again a master whose pause ended during the call
/// cost a call another connect_timeout at the moment of a network cut.)
#[test]
fn a_failed_acquire_undoes_only_where_its_set_went() {
    let servers = masters(3);
    let r = redlock(&servers);
    servers[0].signal("-STOP");
    assert!(!r.is_locked(b"k").unwrap(), "two of three answered");
    servers[0].signal("-CONT");
    // Another owner holds it on the two others.
    for s in &servers[1..] {
        redis::cmd("SET")
            .arg("test:{k}")
            .arg("other")
            .query::<()>(&mut s.raw())
            .unwrap();
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query::<()>(&mut s.raw())
            .unwrap();
    }
    assert_eq!(
        r.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    for s in &servers[1..] {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut s.raw())
            .unwrap();
        let sent: Vec<&str> = stats
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| l.split([':', '|']).next())
            // The test's own: CONFIG RESETSTAT, INFO, and CLIENT SETINFO (redis-rs on connect).
            .filter(|c| !["config", "info", "client"].contains(c))
            .collect();
        assert_eq!(sent, ["set"], "the SET only, no undo: {stats}");
    }
    // Once the pause is over the SET reaches the first master too, and is
    // undone there.
    std::thread::sleep(SKIP_AFTER_FAILURE);
    assert_eq!(
        r.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert_eq!(holders(&servers, "k"), 2, "the other owner's two only");
}

/// The delayed-restart rule (README): a master that lost its data must stay
/// away for at least the longest TTL. If three of five come back empty at
/// once, a second owner gets a majority while the first still holds the lock;
/// kept away for the TTL, the first's lock has expired before anyone can.
#[test]
fn masters_restarted_without_persistence_must_stay_away_for_a_ttl() {
    let mut servers = masters(5);
    let (a, b) = (redlock(&servers), redlock(&servers));
    let ta = new_token();
    assert!(held(a.acquire(b"k", &ta, TTL, Wait::No).unwrap()));
    // One restarted at once: four still hold it, so it stays exclusive.
    let port = servers[0].port;
    drop(servers.remove(0));
    servers.insert(0, RedisServer::start_on(port));
    assert_eq!(
        b.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    // Two more restarted at once: the rule is broken and so is the lock.
    for i in 1..3 {
        let port = servers[i].port;
        drop(servers.remove(i));
        servers.insert(i, RedisServer::start_on(port));
    }
    std::thread::sleep(SKIP_AFTER_FAILURE);
    let tb = new_token();
    assert!(
        held(b.acquire(b"k", &tb, TTL, Wait::No).unwrap()),
        "three empty masters make a second majority"
    );
    assert!(b.release(b"k", &tb, None).unwrap());
    assert!(
        !a.release(b"k", &ta, None).unwrap(),
        "the first owner's lock was lost: only two masters still had it"
    );
}

#[test]
fn dsn_forms_and_bad_input() {
    match Deployment::parse("redlock://:pw@127.0.0.1:1,127.0.0.1:2,[::1]:3/2").unwrap() {
        Deployment::Redlock(m) => {
            assert_eq!(m.len(), 3);
            assert_eq!(m[0].redacted(), "redis://:***@127.0.0.1:1/2");
            assert_eq!(m[2].redacted(), "redis://:***@[::1]:3/2");
        }
        Deployment::One(_) => panic!("redlock:// is a Redlock"),
    }
    for bad in [
        "redlock://",
        "redlock://:pw@",
        "redlock://h",
        "redlock://h:0",
        "redlock://h:99999",
        "redlock://h:1,",
        "redlock://h:1,h:1",
        "redlock://h:1/x",
        "redlock://h:1?x=1",
        "redlock://redis://h:1",
    ] {
        let err = Deployment::parse(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidDsn { .. }), "{bad}: {err}");
    }
    let err = Deployment::parse("redlock://:s3cret@h").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    let empty: [&str; 0] = [];
    for bad in [
        &empty[..],
        &["redis://h:1", "redis-cluster://h:2"][..],
        &["redis://h:1", "redis-sentinel://h:2/m"][..],
        &["redis://h:1", "redlock://h:2,h:3"][..],
        &["redis://h:1", "redis://h:1/3"][..],
        &["redis://h:1", "nonsense"][..],
    ] {
        let err = Deployment::parse_list(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidDsn { .. }), "{bad:?}: {err}");
    }
    let err = Deployment::parse_list(&["redis://:s3cret@h:1", "redis-cluster://h:2"]).unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn a_release_hands_the_lock_to_the_queued_waiter_not_back_to_the_releaser() {
    let servers = masters(5);
    let holder = redlock(&servers);
    let t = new_token();
    assert!(held(holder.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    let waiter = {
        let r = redlock(&servers);
        std::thread::spawn(move || {
            let start = Instant::now();
            let out = r
                .acquire(b"k", &new_token(), TTL, Wait::For(Duration::from_secs(5)))
                .unwrap();
            (out, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // queued and blocked
    assert!(holder.release(b"k", &t, None).unwrap());
    // The releaser tries to take it straight back, as a busy worker loop does.
    assert_eq!(
        holder.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "the release set it for the waiter on every master"
    );
    let (out, waited) = waiter.join().unwrap();
    assert!(held(out));
    assert!(
        waited < Duration::from_secs(1),
        "woken by the release: {waited:?}"
    );
    assert_eq!(holders(&servers, "k"), 5);
}

/// The releaser's second step (setting the lock for the waiter its release
/// granted, on the other masters) can reach a master after the waiter has
/// already taken the lock, used it and released it: the releaser's process
/// was descheduled, its release reached that master late. That step must
/// not set the lock again for a waiter that is done with it.
#[test]
fn a_late_hand_on_does_not_set_the_lock_again_for_a_waiter_done_with_it() {
    let servers = masters(3);
    let late = Delayer::start(servers[2].port);
    let holder = redlock_over(&[servers[0].dsn(), servers[1].dsn(), late.dsn()]);
    let t = new_token();
    assert!(held(holder.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    let waiter = {
        let r = redlock(&servers);
        std::thread::spawn(move || {
            let w = new_token();
            let out = r
                .acquire(b"k", &w, TTL, Wait::For(Duration::from_secs(5)))
                .unwrap();
            // Done at once, long before the release reaches the third master.
            let released = r.release(b"k", &w, None).unwrap();
            (out, released)
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // queued and blocked
    late.delay(Duration::from_millis(150));
    assert!(holder.release(b"k", &t, None).unwrap());
    let (out, released) = waiter.join().unwrap();
    assert!(held(out), "granted by the release");
    assert!(released);
    std::thread::sleep(Duration::from_millis(400)); // anything still in flight lands
    assert_eq!(
        holders(&servers, "k"),
        0,
        "nothing left behind: {}",
        left_behind(&servers, "k")
    );
}

#[test]
fn waiters_are_woken_in_arrival_order() {
    let servers = masters(5);
    let holder = redlock(&servers);
    let t = new_token();
    assert!(held(holder.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (r, order) = (redlock(&servers), order.clone());
            let waiter = std::thread::spawn(move || {
                let t = new_token();
                let out = r
                    .acquire(b"k", &t, TTL, Wait::For(Duration::from_secs(5)))
                    .unwrap();
                assert!(held(out));
                order.lock().push(i);
                std::thread::sleep(Duration::from_millis(30));
                assert!(r.release(b"k", &t, None).unwrap());
            });
            std::thread::sleep(Duration::from_millis(150)); // in turn
            waiter
        })
        .collect();
    assert!(holder.release(b"k", &t, None).unwrap());
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(*order.lock(), [0, 1, 2]);
    assert_eq!(holders(&servers, "k"), 0);
}

/// Multi-locks over Redlock take their names one by one (each on a majority
/// of the masters) and wait, queued on the one name found held, under the
/// same engine as a single lock: eight threads naming three of four names
/// in their own orders all finish, with exact counts.
#[test]
fn multi_locks_in_different_orders_over_the_masters_count_exactly() {
    use redis_lock_core::multi::MultiLocks;

    let servers = masters(3);
    let total = common::count_under_multi_locks(
        || MultiLocks::new(&redlock(&servers), Arc::new(Mutex::new(Stats::new()))),
        &servers[0],
        15,
    );
    assert_eq!(total, 8 * 15 * 3);
    for server in &servers {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("test:{*}")
            .query(&mut server.raw())
            .unwrap();
        assert!(keys.is_empty(), "left behind: {keys:?}");
    }
}
