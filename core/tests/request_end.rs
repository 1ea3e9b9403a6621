//! Releasing many holds at once on a stalled server (what a PHP request end
//! does): one timeout, not one per hold, and the holds released later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RedisServer;
use parking_lot::Mutex;
use redis_lock_core::release_all::{release_all, GivenUp, Pending, Released};
use redis_lock_core::semaphore::{Permits, Semaphores};
use redis_lock_core::token::new_token;
use redis_lock_core::{AcquireOutcome, Dsn, Kind, LockClient, Locks, Pool, Stats, Wait};

const TTL: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_millis(300);

fn acquired(outcome: AcquireOutcome) -> bool {
    matches!(outcome, AcquireOutcome::Acquired(_))
}

#[test]
fn a_stalled_server_is_given_up_once_and_its_holds_are_released_once_it_answers() {
    let stalled = RedisServer::start();
    let healthy = RedisServer::start();
    let pool = Arc::new(Pool::default());
    let stats = Arc::new(Mutex::new(Stats::new()));
    let client = |server: &RedisServer| {
        LockClient::with_pool(
            Arc::clone(&pool),
            Arc::clone(&stats),
            Dsn::parse(&server.dsn()).unwrap(),
            common::options(TIMEOUT),
        )
    };
    let (locks, elsewhere) = (client(&stalled), client(&healthy));
    let semaphores = Arc::new(Semaphores::with_pool(
        Arc::clone(&pool),
        Arc::clone(&stats),
        Dsn::parse(&stalled.dsn()).unwrap(),
        common::options(TIMEOUT),
    ));
    let permits = Permits::new(Arc::clone(&semaphores), 3);

    // 20 locks and a permit on the server about to stall, one lock elsewhere.
    let names: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let tokens: Vec<String> = names.iter().map(|_| new_token()).collect();
    for (name, token) in names.iter().zip(&tokens) {
        assert!(acquired(
            locks
                .acquire(name.as_bytes(), token, TTL, Wait::No)
                .unwrap()
        ));
    }
    let permit = new_token();
    assert!(acquired(
        permits.acquire(b"sem", &permit, TTL, Wait::No).unwrap()
    ));
    let other = new_token();
    assert!(acquired(
        elsewhere.acquire(b"o", &other, TTL, Wait::No).unwrap()
    ));

    stalled.signal("-STOP");
    let start = Instant::now();
    let pending = names
        .iter()
        .zip(&tokens)
        .map(|(name, token)| Pending {
            client: &locks as &dyn Locks,
            kind: Kind::Exclusive,
            name: name.as_bytes(),
            token,
            ttl: TTL,
            acquired_at: None,
        })
        .chain([
            Pending {
                client: &permits,
                kind: Kind::Exclusive,
                name: b"sem",
                token: &permit,
                ttl: TTL,
                acquired_at: None,
            },
            Pending {
                client: &elsewhere,
                kind: Kind::Exclusive,
                name: b"o",
                token: &other,
                ttl: TTL,
                acquired_at: None,
            },
        ]);
    let done = release_all(pending, &mut GivenUp::new());
    let took = start.elapsed();
    stalled.signal("-CONT");
    assert_eq!(
        done,
        Released {
            released: 1,
            lost: 0,
            deferred: 21,
            failed: 0
        }
    );
    // One timeout (0.3 s) and a margin for a loaded machine; one per hold
    // would be 21 x 0.3 s.
    assert!(took < TIMEOUT * 4, "took {took:?}");
    let mut raw = healthy.raw();
    let left: i64 = redis::cmd("EXISTS")
        .arg("test:{o}")
        .query(&mut raw)
        .unwrap();
    assert_eq!(left, 0, "the healthy server's hold was released at once");

    // Once the stalled server answers again, the next calls on it release
    // what was remembered (a few per call), well before the 60 s TTL.
    let mut raw = stalled.raw();
    let held_of = |raw: &mut redis::Connection, names: &[String]| -> i64 {
        let mut exists = redis::cmd("EXISTS");
        for name in names {
            exists.arg(format!("test:{{{name}}}"));
        }
        exists.query(raw).unwrap()
    };
    let held = |raw: &mut redis::Connection| held_of(raw, &names);
    // The first release was sent and timed out: the server may run it once
    // it runs again (Valkey 9's DELIFEQ did, in the sid root), so its
    // outcome is unknown. None of the others was sent.
    assert_eq!(
        held_of(&mut raw, &names[1..]),
        19,
        "not sent while the server was given up"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while held(&mut raw) > 0 || semaphores.holders(b"sem").unwrap() > 0 {
        assert!(Instant::now() < deadline, "{} locks left", held(&mut raw));
        let probe = new_token();
        assert!(acquired(
            locks.acquire(b"probe", &probe, TTL, Wait::No).unwrap()
        ));
        assert!(locks.release(b"probe", &probe, None).unwrap());
    }
}
