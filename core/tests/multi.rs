//! Multi-locks against a real Redis: all or none, plain locks and
//! multi-locks exclude each other, eight threads naming the same locks in
//! different orders finish with exact counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use parking_lot::Mutex;
use redis_lock_core::multi::{encode, MultiLocks};
use redis_lock_core::token::new_token;
use redis_lock_core::{AcquireOutcome, Locks, Stats, Wait};

const TTL: Duration = Duration::from_secs(10);

fn multi(redis: &RedisServer) -> MultiLocks {
    MultiLocks::new(&redis.client(false), Arc::new(Mutex::new(Stats::new())))
}

#[test]
fn all_or_none() {
    let redis = RedisServer::start();
    let plain = redis.client(false);
    let m = multi(&redis);
    let names = encode(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let blocker = new_token();
    assert!(matches!(
        plain.acquire(b"c", &blocker, TTL, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    let t = new_token();
    let mut raw = redis.raw();
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query::<()>(&mut raw)
        .unwrap();
    assert_eq!(
        m.acquire(&names, &t, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut raw)
        .unwrap();
    assert!(
        !stats.contains("cmdstat_set:") && !stats.contains("cmdstat_del:"),
        "on one node a failed multi-lock takes nothing, not even for a moment: {stats}"
    );
    assert!(
        !plain.is_locked(b"a").unwrap() && !plain.is_locked(b"b").unwrap(),
        "none held"
    );
    assert!(plain.release(b"c", &blocker, None).unwrap());
    assert!(matches!(
        m.acquire(&names, &t, TTL, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    assert_eq!(
        plain.acquire(b"b", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(m.refresh(&names, &t, TTL).unwrap());
    assert!(m.release(&names, &t, None).unwrap());
    assert!(!m.is_locked(&names).unwrap());
}

#[test]
fn eight_threads_in_different_orders_count_exactly() {
    let redis = RedisServer::start();
    let total = common::count_under_multi_locks(|| multi(&redis), &redis, 30);
    assert_eq!(total, 8 * 30 * 3);
}

#[test]
fn an_acquire_with_an_unknown_outcome_leaves_no_name_held_until_its_ttl() {
    // The server stalls with the one-node multi-lock script sent: the call
    // fails, and the server takes every name when it runs again. The next
    // call that finds the server answering gives them back, long before
    // their TTL (60 s).
    let redis = RedisServer::start();
    let m = multi(&redis);
    let plain = redis.client(false);
    let names = encode(&[b"a".to_vec(), b"b".to_vec()]);
    let warm = new_token();
    assert!(matches!(
        m.acquire(&names, &warm, TTL, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    assert!(m.release(&names, &warm, None).unwrap());
    redis.signal("-STOP");
    let lost = m.acquire(&names, &new_token(), Duration::from_secs(60), Wait::No);
    redis.signal("-CONT");
    let err = lost.unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    assert!(
        common::eventually(|| plain.is_locked(b"a").unwrap() && plain.is_locked(b"b").unwrap()),
        "the server ran the script once it was let go"
    );
    let probe = new_token();
    assert!(matches!(
        plain.acquire(b"probe", &probe, TTL, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    assert!(
        !plain.is_locked(b"a").unwrap() && !plain.is_locked(b"b").unwrap(),
        "the names were given back"
    );
}

/// With `replicas`, a multi-lock taken in one script on one node is
/// confirmed by the replicas as a single lock is, and given back, every
/// name, when they do not confirm it.
#[test]
fn with_replicas_a_multi_lock_is_confirmed_or_given_back() {
    let master = RedisServer::start();
    let replica = RedisServer::start();
    common::attach_replica(&master, &replica);
    let timeout = Duration::from_millis(500);
    let client = redis_lock_core::LockClient::with_pool(
        Arc::new(redis_lock_core::Pool::default()),
        Arc::new(Mutex::new(Stats::new())),
        redis_lock_core::Dsn::parse(&master.dsn()).unwrap(),
        redis_lock_core::ClientOptions {
            prefix: b"test:".to_vec(),
            connect_timeout: timeout,
            timeout,
            fencing: false,
            replicas: 1,
        },
    );
    let m = MultiLocks::new(&client, Arc::new(Mutex::new(Stats::new())));
    let names = encode(&[b"a".to_vec(), b"b".to_vec()]);
    let t = new_token();
    assert!(matches!(
        m.acquire(&names, &t, TTL, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    let on_replica: Option<String> = redis::cmd("GET")
        .arg("test:{b}")
        .query(&mut replica.raw())
        .unwrap();
    assert_eq!(
        on_replica.as_deref(),
        Some(t.as_str()),
        "on the replica when acquire returns"
    );
    assert!(m.release(&names, &t, None).unwrap());

    replica.signal("-STOP");
    let refused = m.acquire(&names, &new_token(), TTL, Wait::No);
    replica.signal("-CONT");
    let err = refused.unwrap_err();
    assert!(err.to_string().contains("replicas confirmed"), "{err}");
    for name in ["a", "b"] {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("test:{{{name}}}"))
            .query(&mut master.raw())
            .unwrap();
        assert_eq!(exists, 0, "{name} given back");
    }
}
