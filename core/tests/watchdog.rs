//! The watchdog against a real Redis: renewal, `max`, lost locks, an
//! unreachable server. Bounds on time are generous (the machine is shared).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RedisServer;
use redis_lock_core::token::new_token;
use redis_lock_core::watchdog::{LockRenewal, Watchdog};
use redis_lock_core::Ownership;
use redis_lock_core::{AcquireOutcome, LockClient, Wait};

const TTL: Duration = Duration::from_millis(300);
const HOUR: Duration = Duration::from_secs(3600);

fn take(c: &LockClient, name: &[u8], token: &str, ttl: Duration) -> Instant {
    match c.acquire(name, token, ttl, Wait::No).unwrap() {
        AcquireOutcome::Acquired(hold) => hold.acquired_at,
        other => panic!("not acquired: {other:?}"),
    }
}

fn renewal(c: &LockClient, dog: &Watchdog, name: &[u8], token: &str) -> Arc<LockRenewal> {
    Arc::new(LockRenewal::new(
        Arc::new(c.on_pool(dog.pool())),
        redis_lock_core::Kind::Exclusive,
        name.to_vec(),
        token.to_owned(),
    ))
}

/// Waits up to `limit` for `check`.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn keeps_a_lock_past_its_ttl_until_unwatched() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let dog = Watchdog::new();
    let token = new_token();
    let at = take(&c, b"k", &token, TTL);
    let id = dog
        .watch(renewal(&c, &dog, b"k", &token), TTL, HOUR, at)
        .unwrap();
    std::thread::sleep(TTL * 4);
    assert!(matches!(
        c.ownership(b"k", &token).unwrap(),
        Ownership::Mine { .. }
    ));
    assert!(dog.counters().renewals >= 3, "{:?}", dog.counters());
    dog.unwatch(id);
    assert_eq!(dog.watched(), 0);
    assert!(
        within(TTL * 10, || !c.is_locked(b"k").unwrap()),
        "an unwatched lock expires by its TTL"
    );
    assert_eq!(dog.counters().lost, 0);
    dog.stop();
}

#[test]
fn stops_at_max_without_counting_a_loss() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let dog = Watchdog::new();
    let token = new_token();
    let at = take(&c, b"k", &token, TTL);
    let max = Duration::from_millis(1200);
    dog.watch(renewal(&c, &dog, b"k", &token), TTL, max, at)
        .unwrap();
    assert!(within(max + TTL * 10, || !c.is_locked(b"k").unwrap()));
    // A lock renewed until `max` outlives several TTLs (slowness only adds).
    assert!(at.elapsed() > max, "gone after {:?}", at.elapsed());
    assert_eq!(dog.watched(), 0);
    assert_eq!(dog.counters().lost, 0);
    assert!(dog.counters().renewals >= 3);
    dog.stop();
}

#[test]
fn a_lock_found_gone_is_counted_lost_and_not_taken_back() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let dog = Watchdog::new();
    let token = new_token();
    let at = take(&c, b"k", &token, TTL);
    dog.watch(renewal(&c, &dog, b"k", &token), TTL, HOUR, at)
        .unwrap();
    assert!(c.force_release(b"k").unwrap());
    let other = new_token();
    take(&c, b"k", &other, Duration::from_secs(30));
    assert!(within(TTL * 10, || dog.counters().lost == 1));
    assert_eq!(dog.watched(), 0);
    assert!(matches!(
        c.ownership(b"k", &other).unwrap(),
        Ownership::Mine { .. }
    ));
    dog.stop();
}

#[test]
fn an_unreachable_server_loses_the_lock_once_its_ttl_has_passed() {
    let redis = RedisServer::start();
    let c = common::client_for(&redis.dsn(), false, Duration::from_millis(100));
    let dog = Watchdog::new();
    let token = new_token();
    let ttl = Duration::from_millis(600);
    let at = take(&c, b"k", &token, ttl);
    dog.watch(renewal(&c, &dog, b"k", &token), ttl, HOUR, at)
        .unwrap();
    redis.signal("-STOP");
    let stopped = Instant::now();
    let lost = within(ttl * 10, || dog.counters().lost == 1);
    redis.signal("-CONT");
    assert!(lost, "failing renewals give up once the TTL has passed");
    assert!(stopped.elapsed() >= ttl / 3, "not before: it kept trying");
    assert_eq!(dog.watched(), 0);
    dog.stop();
}

#[test]
fn retimed_holds_are_renewed_to_their_new_ttl() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let dog = Watchdog::new();
    let token = new_token();
    let at = take(&c, b"k", &token, TTL);
    let id = dog
        .watch(renewal(&c, &dog, b"k", &token), TTL, HOUR, at)
        .unwrap();
    // As the PHP layer does: retime first, so no renewal to the old TTL lands after.
    dog.retime(id, Duration::from_secs(30));
    assert!(c.refresh(b"k", &token, Duration::from_secs(30)).unwrap());
    std::thread::sleep(TTL * 3);
    match c.ownership(b"k", &token).unwrap() {
        Ownership::Mine {
            remaining: Some(left),
        } => assert!(left > Duration::from_secs(20), "{left:?}"),
        other => panic!("{other:?}"),
    }
    dog.stop();
}

#[test]
fn a_stopped_watchdog_refuses_new_holds() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let dog = Watchdog::new();
    dog.stop();
    let token = new_token();
    let at = take(&c, b"k", &token, TTL);
    assert!(dog
        .watch(renewal(&c, &dog, b"k", &token), TTL, HOUR, at)
        .is_err());
}
