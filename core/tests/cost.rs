//! What an uncontended lock cycle sends to Redis, and the waiters mark that
//! keeps grants reaching waiters when the holder's release is the cheap one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{client_for, eventually, RedisServer, ReplyDropper};
use redis_lock_core::token::new_token;
use redis_lock_core::Ownership;
use redis_lock_core::{AcquireOutcome, Wait};

const TTL: Duration = Duration::from_secs(10);

fn acquired(o: AcquireOutcome) -> bool {
    matches!(o, AcquireOutcome::Acquired(_))
}

fn command_stats(raw: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("commandstats").query(raw).unwrap()
}

fn reset_stats(raw: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(raw).unwrap();
}

/// The native compare-and-delete this server has, as commandstats names it.
fn native_delete(raw: &mut redis::Connection) -> Option<&'static str> {
    ["delifeq", "delex"].into_iter().find(|c| {
        let info: Vec<redis::Value> = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(*c)
            .query(raw)
            .unwrap();
        !matches!(info.first(), None | Some(redis::Value::Nil))
    })
}

#[test]
fn a_wait_on_a_free_lock_registers_nothing_and_a_cycle_is_two_commands() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let mut raw = redis.raw();
    // The first release finds out which release command the server has.
    let t = new_token();
    assert!(acquired(c.acquire(b"warm", &t, TTL, Wait::No).unwrap()));
    assert!(c.release(b"warm", &t, None).unwrap());

    reset_stats(&mut raw);
    let t = new_token();
    let wait = Wait::For(Duration::from_secs(2));
    assert!(acquired(c.acquire(b"k", &t, TTL, wait).unwrap()));
    let stats = command_stats(&mut raw);
    assert!(stats.contains("cmdstat_set:calls=1,"), "{stats}");
    assert!(
        !stats.contains("cmdstat_evalsha"),
        "a free lock needs no script: {stats}"
    );
    for key in ["test:{k}:waiters", "test:{k}:queue"] {
        let exists: i64 = redis::cmd("EXISTS").arg(key).query(&mut raw).unwrap();
        assert_eq!(exists, 0, "{key}: nothing registered");
    }
    assert!(c.release(b"k", &t, None).unwrap());
    let stats = command_stats(&mut raw);
    let release = match native_delete(&mut raw) {
        Some(native) => format!("cmdstat_{native}:calls=1,"),
        None => "cmdstat_evalsha:calls=1,".to_owned(),
    };
    assert!(stats.contains(&release), "released by {release}: {stats}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg("test:{k}")
        .query(&mut raw)
        .unwrap();
    assert_eq!(exists, 0);
    let markers: Vec<String> = redis::cmd("KEYS").arg("test:*").query(&mut raw).unwrap();
    assert_eq!(markers, Vec::<String>::new(), "no release marker written");
}

#[test]
fn a_waiter_on_a_plainly_taken_lock_is_granted_by_the_holders_release() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let mut raw = redis.raw();
    for round in 0..3 {
        let holder = new_token();
        assert!(acquired(c.acquire(b"k", &holder, TTL, Wait::No).unwrap()));
        let waiter_token = new_token();
        let waiter = {
            let (c, t) = (redis.client(false), waiter_token.clone());
            std::thread::spawn(move || {
                c.acquire(b"k", &t, TTL, Wait::For(Duration::from_secs(5)))
                    .unwrap()
            })
        };
        assert!(
            eventually(|| redis::cmd("LLEN")
                .arg("test:{k}:queue")
                .query::<i64>(&mut raw)
                .unwrap()
                == 1),
            "round {round}: the waiter registers"
        );
        let released_at = Instant::now();
        assert!(c.release(b"k", &holder, None).unwrap());
        // Granted by the release: a caller right after it finds it held.
        assert_eq!(
            c.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
            AcquireOutcome::Conflicted
        );
        assert!(acquired(waiter.join().unwrap()));
        assert!(
            released_at.elapsed() < Duration::from_secs(2),
            "granted by the release, not left to the TTL"
        );
        let owner: String = redis::cmd("GET").arg("test:{k}").query(&mut raw).unwrap();
        assert_eq!(owner, waiter_token, "granted to the waiter");
        assert!(c.release(b"k", &waiter_token, None).unwrap());
        assert!(!c.is_locked(b"k").unwrap());
    }
}

#[test]
fn a_waiter_marks_a_plainly_taken_lock_which_stays_the_holders() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let mut raw = redis.raw();
    let holder = new_token();
    assert!(acquired(c.acquire(b"k", &holder, TTL, Wait::No).unwrap()));
    let waiter_token = new_token();
    let waiter = {
        let (c, t) = (redis.client(false), waiter_token.clone());
        std::thread::spawn(move || {
            c.acquire(b"k", &t, TTL, Wait::For(Duration::from_secs(5)))
                .unwrap()
        })
    };
    let marked = format!("{holder}\0w");
    assert!(
        eventually(|| {
            let v: Option<String> = redis::cmd("GET").arg("test:{k}").query(&mut raw).unwrap();
            // The mark, then when the holder's hold ends (see `scripts`).
            v.is_some_and(|v| v.starts_with(&marked) && common::holder_of(&v) == holder)
        }),
        "the waiter marks the lock"
    );
    let pttl: i64 = redis::cmd("PTTL").arg("test:{k}").query(&mut raw).unwrap();
    assert!(pttl > 5_000, "the mark keeps the TTL: {pttl}");
    assert!(c.refresh(b"k", &holder, TTL).unwrap(), "still the holder's");
    assert!(matches!(
        c.ownership(b"k", &holder).unwrap(),
        Ownership::Mine { .. }
    ));
    assert_eq!(
        c.acquire(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(c.release(b"k", &holder, None).unwrap());
    assert!(acquired(waiter.join().unwrap()));
    let owner: String = redis::cmd("GET").arg("test:{k}").query(&mut raw).unwrap();
    assert_eq!(owner, waiter_token, "granted, unmarked");
    assert!(c.release(b"k", &waiter_token, None).unwrap());
    assert!(!c.is_locked(b"k").unwrap());
}

#[test]
fn a_plain_release_frees_only_its_own_lock() {
    // Whatever the server has, a cycle works, and a lock held by someone
    // else is never deleted by the plain release.
    let redis = RedisServer::start();
    let c = redis.client(false);
    let mut raw = redis.raw();
    for _ in 0..3 {
        let t = new_token();
        assert!(acquired(c.acquire(b"k", &t, TTL, Wait::No).unwrap()));
        assert!(c.release(b"k", &t, None).unwrap());
        assert!(!c.release(b"k", &t, None).unwrap(), "released already");
    }
    let mine = new_token();
    assert!(acquired(
        c.acquire(b"k", &mine, Duration::from_millis(100), Wait::No)
            .unwrap()
    ));
    std::thread::sleep(Duration::from_millis(200));
    let theirs = new_token();
    assert!(acquired(c.acquire(b"k", &theirs, TTL, Wait::No).unwrap()));
    assert!(!c.release(b"k", &mine, None).unwrap(), "expired: not mine");
    let owner: String = redis::cmd("GET").arg("test:{k}").query(&mut raw).unwrap();
    assert_eq!(owner, theirs);
}

#[test]
fn a_plain_acquire_and_release_whose_replies_were_lost_are_ours_and_act_once() {
    let redis = RedisServer::start();
    let proxy = ReplyDropper::start(redis.port);
    let mut raw = redis.raw();
    let c = client_for(&proxy.dsn(), false, Duration::from_millis(500));
    let warm = new_token();
    assert!(acquired(c.acquire(b"warm", &warm, TTL, Wait::No).unwrap()));
    assert!(c.release(b"warm", &warm, None).unwrap());

    let t = new_token();
    proxy.drop_next_reply();
    assert!(
        acquired(c.acquire(b"k", &t, TTL, Wait::No).unwrap()),
        "the first send took it; the re-send sees our token"
    );
    let owner: String = redis::cmd("GET").arg("test:{k}").query(&mut raw).unwrap();
    assert_eq!(owner, t);
    assert!(c.release(b"k", &t, None).unwrap());

    // The release of a lock taken by a plain SET: the re-send finds it gone,
    // and the client knows it could not have expired yet.
    let t = new_token();
    assert!(acquired(c.acquire(b"k", &t, TTL, Wait::No).unwrap()));
    proxy.drop_next_reply();
    assert!(
        c.release(b"k", &t, None).unwrap(),
        "the lock was ours and the first send released it"
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("test:{k}")
        .query(&mut raw)
        .unwrap();
    assert_eq!(exists, 0);
    assert!(
        !c.release(b"k", &t, None).unwrap(),
        "a second release is a no-op"
    );

    // Expired before the release was sent: a re-send does not claim it.
    let t = new_token();
    assert!(acquired(
        c.acquire(b"k", &t, Duration::from_millis(50), Wait::No)
            .unwrap()
    ));
    std::thread::sleep(Duration::from_millis(100));
    proxy.drop_next_reply();
    assert!(!c.release(b"k", &t, None).unwrap(), "it had expired");
}
