//! Read locks against a real Redis: many readers or one writer, a waiting
//! writer before later readers, readers at the head of the queue granted
//! together, dead readers freed at their TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RedisServer;
use redis_lock_core::token::new_token;
use redis_lock_core::Ownership;
use redis_lock_core::{AcquireOutcome, LockClient, Wait};

const TTL: Duration = Duration::from_secs(10);
const LONG: Wait = Wait::For(Duration::from_secs(10));

fn acquired(o: AcquireOutcome) -> bool {
    matches!(o, AcquireOutcome::Acquired(_))
}

/// Starts a blocking acquire (read or write) in a thread; returns when it is
/// queued (its token is in the waiters set).
fn waiter(
    redis: &RedisServer,
    c: &LockClient,
    read: bool,
) -> (String, std::thread::JoinHandle<AcquireOutcome>) {
    let token = new_token();
    let (c2, t2) = (c.clone(), token.clone());
    let handle = std::thread::spawn(move || {
        if read {
            c2.acquire_read(b"k", &t2, TTL, LONG).unwrap()
        } else {
            c2.acquire(b"k", &t2, TTL, LONG).unwrap()
        }
    });
    let mut raw = redis.raw();
    assert!(common::eventually(|| {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg("test:{k}:waiters")
            .arg(&token)
            .query(&mut raw)
            .unwrap();
        score.is_some()
    }));
    (token, handle)
}

#[test]
fn many_readers_or_one_writer() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let (r1, r2, w) = (new_token(), new_token(), new_token());
    assert!(acquired(c.acquire_read(b"k", &r1, TTL, Wait::No).unwrap()));
    assert!(acquired(c.acquire_read(b"k", &r2, TTL, Wait::No).unwrap()));
    assert!(c.is_locked(b"k").unwrap());
    assert_eq!(
        c.acquire(b"k", &w, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "a writer waits for the readers"
    );
    assert!(matches!(
        c.read_ownership(b"k", &r1).unwrap(),
        Ownership::Mine { remaining: Some(_) }
    ));
    assert_eq!(c.read_ownership(b"k", &w).unwrap(), Ownership::NotMine);
    assert_eq!(
        c.ownership(b"k", &r1).unwrap(),
        Ownership::NotMine,
        "not a writer"
    );
    assert!(
        !c.release(b"k", &r1, None).unwrap(),
        "a writer's release is not a reader's"
    );
    assert!(c.release_read(b"k", &r1, None).unwrap());
    assert!(!c.release_read(b"k", &r1, None).unwrap(), "once");
    assert_eq!(
        c.acquire(b"k", &w, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "one reader left"
    );
    assert!(c.release_read(b"k", &r2, None).unwrap());
    assert!(!c.is_locked(b"k").unwrap(), "the last reader frees it");
    assert!(acquired(c.acquire(b"k", &w, TTL, Wait::No).unwrap()));
    assert_eq!(
        c.acquire_read(b"k", &r1, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "no reader while a writer holds it"
    );
    assert!(c.release(b"k", &w, None).unwrap());
    assert!(acquired(c.acquire_read(b"k", &r1, TTL, Wait::No).unwrap()));
    assert!(c.refresh_read(b"k", &r1, Duration::from_secs(60)).unwrap());
    assert!(!c.refresh_read(b"k", &w, Duration::from_secs(60)).unwrap());
    let pttl: i64 = redis::cmd("PTTL")
        .arg("test:{k}")
        .query(&mut redis.raw())
        .unwrap();
    assert!(
        pttl > 50_000,
        "the lock key lives as long as its longest reader: {pttl}"
    );
    assert!(c.force_release(b"k").unwrap());
    assert!(!c.is_locked(b"k").unwrap());
    assert!(!c.release_read(b"k", &r1, None).unwrap(), "force-released");
    let readers: i64 = redis::cmd("EXISTS")
        .arg("test:{k}:readers")
        .query(&mut redis.raw())
        .unwrap();
    assert_eq!(readers, 0);
}

#[test]
fn a_waiting_writer_goes_before_later_readers_and_queued_readers_enter_together() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let r1 = new_token();
    assert!(acquired(c.acquire_read(b"k", &r1, TTL, Wait::No).unwrap()));
    let (_, writer) = waiter(&redis, &c, false);
    assert_eq!(
        c.acquire_read(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "a reader that comes after a waiting writer does not get in"
    );
    let (r2, second) = waiter(&redis, &c, true);
    let (r3, third) = waiter(&redis, &c, true);
    let (_, writer2) = waiter(&redis, &c, false);
    assert!(c.release_read(b"k", &r1, None).unwrap());
    assert!(
        acquired(writer.join().unwrap()),
        "the writer is granted by the last reader's release"
    );
    // The writer's token is the lock; release it the way its owner would.
    let holder: Vec<u8> = redis::cmd("GET")
        .arg("test:{k}")
        .query(&mut redis.raw())
        .unwrap();
    let holder = String::from_utf8(holder).unwrap();
    let holder = common::holder_of(&holder).to_owned();
    assert!(c.release(b"k", &holder, None).unwrap());
    assert!(acquired(second.join().unwrap()));
    assert!(
        acquired(third.join().unwrap()),
        "both queued readers are granted by one release"
    );
    assert!(!writer2.is_finished(), "the writer behind them still waits");
    assert!(c.release_read(b"k", &r2, None).unwrap());
    assert!(!writer2.is_finished(), "one reader still holds it");
    assert!(c.release_read(b"k", &r3, None).unwrap());
    assert!(acquired(writer2.join().unwrap()));
}

#[test]
fn a_dead_reader_frees_the_lock_at_its_ttl() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let short = Duration::from_millis(400);
    assert!(acquired(
        c.acquire_read(b"k", &new_token(), short, Wait::No).unwrap()
    ));
    let start = Instant::now();
    assert!(acquired(c.acquire(b"k", &new_token(), TTL, LONG).unwrap()));
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "freed at the reader's TTL: {waited:?}"
    );
}

/// Eight threads, each a reader most of the time and a writer now and then:
/// inside the lock each adds itself to a count in Redis; no writer ever sees
/// anyone else inside, and readers do overlap.
#[test]
fn eight_threads_never_see_a_writer_with_anyone() {
    let redis = RedisServer::start();
    let overlap = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let c = redis.client(false);
            let mut raw = redis.raw();
            let overlap = Arc::clone(&overlap);
            std::thread::spawn(move || {
                for i in 0..60 {
                    let t = new_token();
                    let write = (i + w) % 10 == 0;
                    let outcome = if write {
                        c.acquire(b"k", &t, TTL, LONG).unwrap()
                    } else {
                        c.acquire_read(b"k", &t, TTL, LONG).unwrap()
                    };
                    assert!(acquired(outcome));
                    let inside: i64 = redis::cmd("INCR").arg("inside").query(&mut raw).unwrap();
                    if write {
                        let writers: i64 =
                            redis::cmd("INCR").arg("writers").query(&mut raw).unwrap();
                        assert_eq!((inside, writers), (1, 1), "a writer is alone");
                    } else {
                        let writers: i64 = redis::cmd("GET")
                            .arg("writers")
                            .query::<Option<i64>>(&mut raw)
                            .unwrap()
                            .unwrap_or(0);
                        assert_eq!(writers, 0, "no reader beside a writer");
                        if inside > 1 {
                            overlap.store(true, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_micros(500));
                    if write {
                        let _: i64 = redis::cmd("DECR").arg("writers").query(&mut raw).unwrap();
                    }
                    let _: i64 = redis::cmd("DECR").arg("inside").query(&mut raw).unwrap();
                    let released = if write {
                        c.release(b"k", &t, None).unwrap()
                    } else {
                        c.release_read(b"k", &t, None).unwrap()
                    };
                    assert!(released);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(overlap.load(Ordering::Relaxed), "readers shared the lock");
    assert!(!redis.client(false).is_locked(b"k").unwrap());
}

#[test]
fn the_only_reader_is_promoted_to_the_write_lock_with_no_one_in_between() {
    let redis = RedisServer::start();
    let c = redis.client(true);
    let r = new_token();
    assert!(acquired(c.acquire_read(b"k", &r, TTL, Wait::No).unwrap()));
    // A writer and a reader queue behind the read lock.
    let (_, writer) = waiter(&redis, &c, false);
    let (_, reader) = waiter(&redis, &c, true);
    let AcquireOutcome::Acquired(hold) = c.acquire(b"k", &r, TTL, Wait::No).unwrap() else {
        panic!("the only reader is promoted")
    };
    assert!(hold.fence.is_some(), "a write hold draws a fencing token");
    assert!(matches!(
        c.ownership(b"k", &r).unwrap(),
        Ownership::Mine { .. }
    ));
    assert_eq!(c.read_ownership(b"k", &r).unwrap(), Ownership::NotMine);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !writer.is_finished() && !reader.is_finished(),
        "no one got in between"
    );
    assert!(c.release(b"k", &r, None).unwrap());
    assert!(acquired(writer.join().unwrap()), "then the queue, in order");
    // (The queued writer's token is the lock: release it as its owner would.)
    let holder: String = redis::cmd("GET")
        .arg("test:{k}")
        .query(&mut redis.raw())
        .unwrap();
    assert!(c.release(b"k", common::holder_of(&holder), None).unwrap());
    assert!(acquired(reader.join().unwrap()));
}

#[test]
fn a_reader_among_others_is_promoted_once_the_others_leave() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let (r1, r2) = (new_token(), new_token());
    assert!(acquired(c.acquire_read(b"k", &r1, TTL, Wait::No).unwrap()));
    assert!(acquired(c.acquire_read(b"k", &r2, TTL, Wait::No).unwrap()));
    assert_eq!(
        c.acquire(b"k", &r1, TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted,
        "another reader holds it: no promotion"
    );
    assert!(
        matches!(c.read_ownership(b"k", &r1).unwrap(), Ownership::Mine { .. }),
        "still a reader"
    );
    // r1 waits for the write lock; a writer comes after it.
    let promoted = {
        let (c, r1) = (c.clone(), r1.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            (c.acquire(b"k", &r1, TTL, LONG).unwrap(), start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let (_, writer) = waiter(&redis, &c, false);
    assert!(!promoted.is_finished());
    std::thread::sleep(Duration::from_millis(150));
    assert!(c.release_read(b"k", &r2, None).unwrap());
    let (out, waited) = promoted.join().unwrap();
    assert!(acquired(out));
    assert!(
        waited < Duration::from_secs(2),
        "woken by the release, not its TTL: {waited:?}"
    );
    assert!(matches!(
        c.ownership(b"k", &r1).unwrap(),
        Ownership::Mine { .. }
    ));
    assert!(!writer.is_finished(), "the writer queued behind waits");
    assert!(c.release(b"k", &r1, None).unwrap());
    assert!(acquired(writer.join().unwrap()));
}

#[test]
fn a_writer_demoted_to_a_reader_lets_in_the_readers_queued_at_the_head() {
    let redis = RedisServer::start();
    let c = redis.client(false);
    let w = new_token();
    assert!(acquired(c.acquire(b"k", &w, TTL, Wait::No).unwrap()));
    let (_, reader1) = waiter(&redis, &c, true);
    let (_, reader2) = waiter(&redis, &c, true);
    let (_, writer) = waiter(&redis, &c, false);
    let (_, late_reader) = waiter(&redis, &c, true);
    assert!(acquired(c.acquire_read(b"k", &w, TTL, Wait::No).unwrap()));
    assert!(matches!(
        c.read_ownership(b"k", &w).unwrap(),
        Ownership::Mine { .. }
    ));
    assert_eq!(c.ownership(b"k", &w).unwrap(), Ownership::NotMine);
    assert!(
        acquired(reader1.join().unwrap()),
        "the readers at the head come in"
    );
    assert!(acquired(reader2.join().unwrap()));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!writer.is_finished(), "the writer after them still waits");
    assert!(
        !late_reader.is_finished(),
        "and so does the reader behind the writer"
    );
    // A fresh reader does not jump the waiting writer either.
    assert_eq!(
        c.acquire_read(b"k", &new_token(), TTL, Wait::No).unwrap(),
        AcquireOutcome::Conflicted
    );
    assert!(c.release_read(b"k", &w, None).unwrap());
}
