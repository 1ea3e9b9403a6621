//! Counting semaphores against a real Redis: the limit under concurrent
//! threads, arrival order, permits freed by their TTL, re-sent scripts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RedisServer, ReplyDropper};
use parking_lot::Mutex;
use redis_lock_core::semaphore::Semaphores;
use redis_lock_core::token::new_token;
use redis_lock_core::Ownership;
use redis_lock_core::{AcquireOutcome, ClientOptions, Dsn, Pool, Stats, Wait};

const TTL: Duration = Duration::from_secs(10);

fn semaphores_for(dsn: &str, stats: Arc<Mutex<Stats>>) -> Semaphores {
    Semaphores::with_pool(
        Arc::new(Pool::default()),
        stats,
        Dsn::parse(dsn).unwrap(),
        ClientOptions {
            prefix: b"test:".to_vec(),
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_millis(500),
            fencing: false,
            replicas: 0,
        },
    )
}

fn semaphores(redis: &RedisServer) -> Semaphores {
    semaphores_for(&redis.dsn(), Arc::new(Mutex::new(Stats::new())))
}

fn acquired(o: AcquireOutcome) -> bool {
    matches!(o, AcquireOutcome::Acquired(_))
}

fn waiting(raw: &mut redis::Connection, name: &str) -> usize {
    redis::cmd("ZCARD")
        .arg(format!("test:{{{name}}}:sem:waiters"))
        .query(raw)
        .unwrap()
}

/// Waits until `n` waiters are registered on `name`.
fn until_waiting(raw: &mut redis::Connection, name: &str, n: usize) {
    assert!(
        common::eventually(|| waiting(raw, name) == n),
        "{n} waiters expected"
    );
}

#[test]
fn at_most_limit_holders_and_each_is_released_once() {
    let redis = RedisServer::start();
    let s = semaphores(&redis);
    let tokens: Vec<String> = (0..4).map(|_| new_token()).collect();
    for t in &tokens[..3] {
        assert!(acquired(s.acquire(b"k", 3, t, TTL, Wait::No).unwrap()));
    }
    assert_eq!(
        s.acquire(b"k", 3, &tokens[3], TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert_eq!(s.holders(b"k").unwrap(), 3);
    assert!(
        acquired(s.acquire(b"k", 3, &tokens[0], TTL, Wait::No).unwrap()),
        "a holder acquiring again keeps its one permit"
    );
    assert_eq!(s.holders(b"k").unwrap(), 3);
    assert!(!s.release(b"k", &tokens[3], None).unwrap(), "not a holder");
    assert!(s.release(b"k", &tokens[1], None).unwrap());
    assert!(
        !s.release(b"k", &tokens[1], None).unwrap(),
        "released already"
    );
    assert!(acquired(
        s.acquire(b"k", 3, &tokens[3], TTL, Wait::No).unwrap()
    ));
    for t in [&tokens[0], &tokens[2], &tokens[3]] {
        assert!(s.release(b"k", t, None).unwrap());
    }
    assert_eq!(s.holders(b"k").unwrap(), 0);
    let mut raw = redis.raw();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    assert!(
        keys.iter().all(|k| k.contains(":call:")),
        "nothing left but release markers: {keys:?}"
    );
}

#[test]
fn eight_threads_never_exceed_the_limit() {
    let redis = RedisServer::start();
    let stats = Arc::new(Mutex::new(Stats::new()));
    let s = Arc::new(semaphores_for(&redis.dsn(), Arc::clone(&stats)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&s);
            let mut raw = redis.raw();
            std::thread::spawn(move || {
                let token = new_token();
                let mut most = 0;
                for _ in 0..40 {
                    assert!(acquired(
                        s.acquire(b"k", 3, &token, TTL, Wait::Forever).unwrap()
                    ));
                    // Shared state changed only inside the critical section.
                    let inside: i64 = redis::cmd("INCR").arg("inside").query(&mut raw).unwrap();
                    most = most.max(inside);
                    std::thread::sleep(Duration::from_millis(1));
                    let _: i64 = redis::cmd("DECR").arg("inside").query(&mut raw).unwrap();
                    assert!(s.release(b"k", &token, None).unwrap());
                }
                most
            })
        })
        .collect();
    let most = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .max()
        .unwrap();
    assert!(most <= 3, "{most} holders at once");
    assert!(most >= 1);
    let snap = stats.lock().snapshot(Default::default());
    assert_eq!(snap.acquired, 320);
    assert_eq!(snap.releases, 320);
    assert_eq!(snap.releases_lost, 0);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let redis = RedisServer::start();
    let s = Arc::new(semaphores(&redis));
    let mut raw = redis.raw();
    let holders: Vec<String> = (0..2).map(|_| new_token()).collect();
    for t in &holders {
        assert!(acquired(s.acquire(b"k", 2, t, TTL, Wait::No).unwrap()));
    }
    let mut waiters = Vec::new();
    for i in 0..6 {
        let s = Arc::clone(&s);
        let mut own = redis.raw();
        waiters.push(std::thread::spawn(move || {
            let token = new_token();
            assert!(acquired(
                s.acquire(b"k", 2, &token, TTL, Wait::For(Duration::from_secs(20)))
                    .unwrap()
            ));
            let _: i64 = redis::cmd("RPUSH")
                .arg("served")
                .arg(i)
                .query(&mut own)
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert!(s.release(b"k", &token, None).unwrap());
        }));
        until_waiting(&mut raw, "k", i + 1);
    }
    // A newcomer that will not wait must not overtake them, even when a
    // permit is free for an instant.
    assert!(s.release(b"k", &holders[0], None).unwrap());
    assert_eq!(
        s.acquire(b"k", 2, &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(s.release(b"k", &holders[1], None).unwrap());
    for w in waiters {
        w.join().unwrap();
    }
    let served: Vec<i64> = redis::cmd("LRANGE")
        .arg("served")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    // Two run at once, so two neighbours may push in either order.
    let mut pairs = served.clone();
    for pair in pairs.chunks_mut(2) {
        pair.sort_unstable();
    }
    assert_eq!(pairs, vec![0, 1, 2, 3, 4, 5], "served {served:?}");
}

#[test]
fn a_dead_holders_permit_frees_at_its_ttl_and_goes_to_the_first_waiter() {
    let redis = RedisServer::start();
    let s = Arc::new(semaphores(&redis));
    let mut raw = redis.raw();
    let dead = new_token();
    assert!(acquired(
        s.acquire(b"k", 1, &dead, Duration::from_millis(400), Wait::No)
            .unwrap()
    ));
    let first = new_token();
    let waiter = {
        let s = Arc::clone(&s);
        let first = first.clone();
        std::thread::spawn(move || {
            s.acquire(b"k", 1, &first, TTL, Wait::For(Duration::from_secs(20)))
                .unwrap()
        })
    };
    until_waiting(&mut raw, "k", 1);
    // Past the dead holder's TTL, a newcomer still queues behind the waiter.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.acquire(b"k", 1, &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(acquired(waiter.join().unwrap()));
    assert!(matches!(
        s.ownership(b"k", &first).unwrap(),
        Ownership::Mine { .. }
    ));
    assert_eq!(s.ownership(b"k", &dead).unwrap(), Ownership::NotMine);
    assert!(!s.release(b"k", &dead, None).unwrap());
    assert!(!s.refresh(b"k", &dead, TTL).unwrap());
}

#[test]
fn a_bounded_wait_times_out_and_leaves_the_queue() {
    let redis = RedisServer::start();
    let stats = Arc::new(Mutex::new(Stats::new()));
    let s = semaphores_for(&redis.dsn(), Arc::clone(&stats));
    let mut raw = redis.raw();
    let holder = new_token();
    assert!(acquired(
        s.acquire(b"k", 1, &holder, TTL, Wait::No).unwrap()
    ));
    let late = new_token();
    assert_eq!(
        s.acquire(b"k", 1, &late, TTL, Wait::For(Duration::from_millis(200)))
            .unwrap(),
        AcquireOutcome::TimedOut
    );
    assert_eq!(waiting(&mut raw, "k"), 0);
    let queued: usize = redis::cmd("LLEN")
        .arg("test:{k}:sem:queue")
        .query(&mut raw)
        .unwrap();
    assert_eq!(queued, 0);
    assert!(s.release(b"k", &holder, None).unwrap());
    assert_eq!(s.holders(b"k").unwrap(), 0, "no grant went to the leaver");
    let snap = stats.lock().snapshot(Default::default());
    assert_eq!(
        (snap.acquired, snap.timeouts, snap.conflicts, snap.releases),
        (1, 1, 0, 1)
    );
}

#[test]
fn refresh_and_ownership_follow_the_permit() {
    let redis = RedisServer::start();
    let s = semaphores(&redis);
    let t = new_token();
    assert!(acquired(
        s.acquire(b"k", 2, &t, Duration::from_millis(300), Wait::No)
            .unwrap()
    ));
    assert!(s.refresh(b"k", &t, Duration::from_secs(5)).unwrap());
    match s.ownership(b"k", &t).unwrap() {
        Ownership::Mine { remaining: Some(r) } => assert!(r > Duration::from_secs(4), "{r:?}"),
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(s.holders(b"k").unwrap(), 1, "the refreshed TTL holds");
    let mut raw = redis.raw();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("test:{k}:sem:permits")
        .query(&mut raw)
        .unwrap();
    assert!(pttl > 4000, "the key lives as long as its permits: {pttl}");
    assert!(!s.refresh(b"k", &new_token(), TTL).unwrap());
}

#[test]
fn force_release_frees_every_permit_for_the_waiters() {
    let redis = RedisServer::start();
    let s = Arc::new(semaphores(&redis));
    let mut raw = redis.raw();
    for _ in 0..2 {
        assert!(acquired(
            s.acquire(b"k", 2, &new_token(), TTL, Wait::No).unwrap()
        ));
    }
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let s = Arc::clone(&s);
            let w = std::thread::spawn(move || {
                s.acquire(
                    b"k",
                    2,
                    &new_token(),
                    TTL,
                    Wait::For(Duration::from_secs(if i < 2 { 20 } else { 1 })),
                )
                .unwrap()
            });
            until_waiting(&mut raw, "k", i + 1);
            w
        })
        .collect();
    assert_eq!(s.force_release(b"k").unwrap(), 2);
    let outcomes: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acquired(outcomes[0]) && acquired(outcomes[1]));
    assert_eq!(outcomes[2], AcquireOutcome::TimedOut, "only two permits");
}

/// Semaphores whose pooled connection goes through `proxy`, scripts loaded.
fn pooled_through(proxy: &ReplyDropper) -> Semaphores {
    let s = semaphores_for(&proxy.dsn(), Arc::new(Mutex::new(Stats::new())));
    let warm = new_token();
    assert!(acquired(
        s.acquire(b"warm", 1, &warm, TTL, Wait::No).unwrap()
    ));
    assert!(s.release(b"warm", &warm, None).unwrap());
    assert_eq!(s.force_release(b"warm").unwrap(), 0);
    s
}

#[test]
fn a_release_whose_reply_was_lost_acts_once_and_reports_it() {
    let redis = RedisServer::start();
    let proxy = ReplyDropper::start(redis.port);
    let mut raw = redis.raw();
    let via_proxy = pooled_through(&proxy);
    let holder = new_token();
    assert!(acquired(
        via_proxy.acquire(b"k", 1, &holder, TTL, Wait::No).unwrap()
    ));
    let direct = Arc::new(semaphores(&redis));
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            let s = Arc::clone(&direct);
            let token = new_token();
            let t = token.clone();
            let w = std::thread::spawn(move || {
                s.acquire(b"k", 1, &t, TTL, Wait::For(Duration::from_secs(20)))
                    .unwrap()
            });
            until_waiting(&mut raw, "k", i + 1);
            (token, w)
        })
        .collect();

    proxy.drop_next_reply();
    assert!(
        via_proxy.release(b"k", &holder, None).unwrap(),
        "the permit was ours and the first run released it"
    );
    let (first, second) = (waiters[0].0.clone(), waiters[1].0.clone());
    assert_eq!(direct.holders(b"k").unwrap(), 1, "granted once");
    assert!(matches!(
        direct.ownership(b"k", &first).unwrap(),
        Ownership::Mine { .. }
    ));
    assert_eq!(waiting(&mut raw, "k"), 1, "the second still waits");
    let mut waiters = waiters.into_iter();
    let (_, w) = waiters.next().unwrap();
    assert!(acquired(w.join().unwrap()));
    assert!(direct.release(b"k", &first, None).unwrap());
    let (_, w) = waiters.next().unwrap();
    assert!(acquired(w.join().unwrap()));
    assert!(direct.release(b"k", &second, None).unwrap());
}

#[test]
fn an_acquire_whose_reply_was_lost_takes_one_permit() {
    let redis = RedisServer::start();
    let proxy = ReplyDropper::start(redis.port);
    let via_proxy = pooled_through(&proxy);
    let t = new_token();
    proxy.drop_next_reply();
    assert!(acquired(
        via_proxy.acquire(b"k", 2, &t, TTL, Wait::No).unwrap()
    ));
    assert_eq!(via_proxy.holders(b"k").unwrap(), 1);
    assert!(acquired(
        via_proxy
            .acquire(b"k", 2, &new_token(), TTL, Wait::No)
            .unwrap()
    ));
    assert_eq!(
        via_proxy
            .acquire(b"k", 2, &new_token(), TTL, Wait::No)
            .unwrap(),
        AcquireOutcome::Conflicted
    );
}

#[test]
fn an_acquire_with_an_unknown_outcome_does_not_lose_a_permit_until_its_ttl() {
    // The server stalls with the acquire sent: the call fails, and the
    // server takes the permit when it runs again. The next call that finds
    // the server answering gives it back, long before its TTL (60 s).
    let redis = RedisServer::start();
    let s = semaphores(&redis);
    let warm = new_token();
    assert!(acquired(
        s.acquire(b"warm", 1, &warm, TTL, Wait::No).unwrap()
    ));
    assert!(s.release(b"warm", &warm, None).unwrap());
    redis.signal("-STOP");
    let lost = s.acquire(b"k", 1, &new_token(), Duration::from_secs(60), Wait::No);
    redis.signal("-CONT");
    let err = lost.unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    assert!(
        common::eventually(|| s.holders(b"k").unwrap() == 1),
        "the server ran the acquire once it was let go"
    );
    // Any call that finds the server answering cleans up.
    assert!(acquired(
        s.acquire(b"other", 1, &new_token(), TTL, Wait::No).unwrap()
    ));
    assert_eq!(
        s.holders(b"k").unwrap(),
        0,
        "the orphaned permit was given back"
    );
    assert!(acquired(
        s.acquire(b"k", 1, &new_token(), TTL, Wait::No).unwrap()
    ));
}

#[test]
fn semaphores_and_locks_of_one_name_are_apart() {
    let redis = RedisServer::start();
    let s = semaphores(&redis);
    let locks = redis.client(false);
    assert!(acquired(
        locks.acquire(b"k", &new_token(), TTL, Wait::No).unwrap()
    ));
    assert!(acquired(
        s.acquire(b"k", 1, &new_token(), TTL, Wait::No).unwrap()
    ));
}

/// A waiter registered by the acquire script itself (as a blocking acquire's
/// first attempt does), without anyone blocking for it: nothing wakes it,
/// so what happens next is the scripts' doing alone.
fn register_waiter(raw: &mut redis::Connection, s: &Semaphores, name: &[u8], token: &str) {
    let keys = s.keys(name);
    let reply: Vec<i64> = redis_lock_core::semaphore::ACQUIRE
        .key(&keys.permits)
        .key(&keys.waiters)
        .key(&keys.queue)
        .key(keys.wake(token))
        .arg(token)
        .arg(1)
        .arg(10_000)
        .arg(10_000)
        .arg("0")
        .invoke(raw)
        .unwrap();
    assert_eq!(reply[0], 0, "registered, not holding");
}

#[test]
fn a_permit_freed_by_its_ttl_goes_to_the_queued_waiter_not_to_a_newcomer() {
    let redis = RedisServer::start();
    let s = semaphores(&redis);
    let mut raw = redis.raw();
    assert!(acquired(
        s.acquire(b"k", 1, &new_token(), Duration::from_millis(200), Wait::No)
            .unwrap()
    ));
    let waiter = new_token();
    register_waiter(&mut raw, &s, b"k", &waiter);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.acquire(b"k", 1, &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "the newcomer does not overtake"
    );
    assert!(matches!(
        s.ownership(b"k", &waiter).unwrap(),
        Ownership::Mine { .. }
    ));
    let woken: Vec<String> = redis::cmd("LRANGE")
        .arg(s.keys(b"k").wake(&waiter))
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(woken.len(), 1, "the waiter is woken with it");
}
