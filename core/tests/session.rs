//! A request's holds (core `session`), as the PHP classes use them through
//! their handles: request end, fail-open, the watchdog, forks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RedisServer;
use redis_lock_core::session::{Handle, Locker, Session, Watchdog};
use redis_lock_core::token::new_token;
use redis_lock_core::{Kind, Ownership, Wait};

const TTL: Duration = Duration::from_secs(30);

fn locker(server: &RedisServer, fail_open: bool, watchdog: Watchdog) -> Arc<Locker> {
    locker_on(&server.dsn(), fail_open, watchdog)
}

fn locker_on(dsn: &str, fail_open: bool, watchdog: Watchdog) -> Arc<Locker> {
    Arc::new(Locker {
        client: Arc::new(common::client_for(dsn, false, Duration::from_millis(300))),
        default_ttl: TTL,
        fail_open,
        watchdog,
    })
}

fn handle(locker: &Arc<Locker>, name: &str, auto_release: bool) -> Handle {
    Handle::new(
        Arc::clone(locker),
        name.as_bytes().to_vec(),
        new_token(),
        Some(TTL),
        auto_release,
    )
}

fn stored(server: &RedisServer, name: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("test:{{{name}}}"))
        .query(&mut server.raw())
        .unwrap()
}

#[test]
fn a_request_end_releases_the_auto_release_holds_and_leaves_the_others_set() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = locker(&redis, false, Watchdog::Off);
    let (auto, kept) = (
        handle(&locker, "auto", true),
        handle(&locker, "kept", false),
    );
    assert!(auto.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(kept.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert_eq!(stored(&redis, "auto").as_deref(), Some(auto.token()));

    let released = session.end_request();
    assert_eq!(released.released, 1);
    assert_eq!(stored(&redis, "auto"), None, "released at request end");
    assert_eq!(stored(&redis, "kept").as_deref(), Some(kept.token()));
    // The session has forgotten both: the handles hold nothing now.
    assert!(auto.held(&session).is_none() && kept.held(&session).is_none());
}

#[test]
fn taking_again_replaces_the_hold_and_one_release_frees_it() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = locker(&redis, false, Watchdog::Off);
    let lock = handle(&locker, "k", true);
    assert!(lock.take(&session, Kind::Shared, Wait::No).unwrap());
    let first = lock.hold_id().unwrap();
    // The sole reader is promoted: one hold, of the new kind.
    assert!(lock.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(session.get(first).is_none(), "the old hold is forgotten");
    assert_eq!(lock.held(&session).unwrap().kind, Kind::Exclusive);
    assert!(lock.release(&session).unwrap());
    assert_eq!(stored(&redis, "k"), None);
    assert_eq!(session.end_request().released, 0, "nothing left to release");
}

#[test]
fn a_handle_without_a_hold_acts_on_what_its_owner_token_holds() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = locker(&redis, false, Watchdog::Off);
    let owner = handle(&locker, "r", true);
    assert!(owner.take(&session, Kind::Shared, Wait::No).unwrap());
    // Another object, restored from the owner token (restoreLock).
    let restored = Handle::new(
        Arc::clone(&locker),
        b"r".to_vec(),
        owner.token().to_owned(),
        Some(TTL),
        false,
    );
    assert!(matches!(
        restored.ownership(&session).unwrap(),
        Ownership::Mine { .. }
    ));
    assert!(restored.refresh(&session, Duration::from_secs(60)).unwrap());
    assert!(
        restored.release(&session).unwrap(),
        "the read lock, by token"
    );
    assert!(!owner.release(&session).unwrap(), "gone already");
}

#[test]
fn an_unreachable_server_under_fail_open_grants_phantom_holds_and_says_so_once_a_request() {
    let port = common::free_port();
    let dsn = format!("redis://127.0.0.1:{port}");
    let session = Session::new();
    let open = locker_on(&dsn, true, Watchdog::Off);
    let (a, b) = (handle(&open, "a", true), handle(&open, "b", true));
    assert!(a.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(b.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(a.is_phantom(&session));
    let notice = session
        .take_open_notice()
        .expect("the first phantom is said");
    assert!(notice.is_unavailable(), "{notice}");
    assert!(session.take_open_notice().is_none(), "once a request");
    assert!(matches!(
        a.ownership(&session).unwrap(),
        Ownership::Mine { remaining: None }
    ));
    assert!(a.refresh(&session, TTL).unwrap());
    assert!(a.release(&session).unwrap(), "nothing to release");
    // Released (as Symfony's Lock asks right after): not held, no error.
    assert_eq!(a.ownership(&session).unwrap(), Ownership::NotMine);
    session.end_request();
    assert!(b.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(
        session.take_open_notice().is_some(),
        "said again in the next request"
    );

    // Fail closed: the fault is the caller's.
    let closed = locker_on(&dsn, false, Watchdog::Off);
    let err = handle(&closed, "c", true)
        .take(&session, Kind::Exclusive, Wait::No)
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(session.take_open_notice().is_none());
    assert!(handle(&closed, "c", true)
        .ownership(&session)
        .unwrap_err()
        .is_unavailable());
}

/// The default (`watchdog => 'auto'`): a hold taken without a TTL of its
/// own lives the default TTL past its holder's last renewal; one given a
/// TTL lives exactly that.
#[test]
fn by_default_only_holds_without_a_ttl_of_their_own_are_renewed() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = Arc::new(Locker {
        client: Arc::new(common::client_for(
            &redis.dsn(),
            false,
            Duration::from_millis(300),
        )),
        default_ttl: Duration::from_millis(300),
        fail_open: false,
        watchdog: Watchdog::TtlLess(Duration::from_secs(30)),
    });
    let make = |name: &str, ttl: Option<Duration>| {
        Handle::new(
            Arc::clone(&locker),
            name.as_bytes().to_vec(),
            new_token(),
            ttl,
            true,
        )
    };
    let (watched, exact) = (make("w", None), make("e", Some(Duration::from_millis(300))));
    assert!(watched.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(exact.take(&session, Kind::Exclusive, Wait::No).unwrap());
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(
        stored(&redis, "w").as_deref(),
        Some(watched.token()),
        "renewed past three TTLs"
    );
    assert_eq!(stored(&redis, "e"), None, "expired at its own TTL");
    assert!(watched.release(&session).unwrap());
    assert!(!exact.release(&session).unwrap());
}

#[test]
fn a_watched_hold_is_renewed_until_its_handle_releases_it() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = locker(&redis, false, Watchdog::Every(Duration::from_secs(30)));
    let lock = Handle::new(
        Arc::clone(&locker),
        b"w".to_vec(),
        new_token(),
        Some(Duration::from_millis(300)),
        true,
    );
    assert!(lock.take(&session, Kind::Exclusive, Wait::No).unwrap());
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(
        stored(&redis, "w").as_deref(),
        Some(lock.token()),
        "renewed past three TTLs"
    );
    // A refresh retimes the renewal: the watchdog renews to 5 s from now on.
    assert!(lock.refresh(&session, Duration::from_secs(5)).unwrap());
    assert_eq!(lock.held(&session).unwrap().ttl, Duration::from_secs(5));
    assert!(lock.release(&session).unwrap());
    let other = new_token();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        // No renewal sets it again after the release.
        assert_eq!(stored(&redis, "w"), None);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(matches!(
        locker.client.acquire(b"w", &other, TTL, Wait::No).unwrap(),
        redis_lock_core::AcquireOutcome::Acquired(_)
    ));
}

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

#[test]
fn a_forked_child_neither_releases_nor_reports_its_parents_holds() {
    let redis = RedisServer::start();
    let session = Session::new();
    let locker = locker(&redis, false, Watchdog::Off);
    let lock = handle(&locker, "parent", true);
    assert!(lock.take(&session, Kind::Exclusive, Wait::No).unwrap());
    let _ = redis_lock_core::pid::current(); // the pid cache and its fork handler
                                             // SAFETY: the child runs only the calls below and leaves by _exit.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child's copy of the handle names the parent's hold: twice
        // (the second without an entry, which a restored handle would
        // release by token), then as a destructor and a request end would.
        let first = lock.release(&session);
        let second = lock.release(&session);
        let held = lock.held(&session).is_some();
        lock.end(&session);
        let ended = session.end_request();
        let ok = matches!(first, Ok(false))
            && matches!(second, Ok(false))
            && !held
            && ended.released == 0;
        // SAFETY: ends the child without running the parent's test harness.
        unsafe { _exit(if ok { 0 } else { 1 }) }
    }
    let mut status = -1;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0, "the child saw the parent's hold as its own");
    assert_eq!(stored(&redis, "parent").as_deref(), Some(lock.token()));
    assert!(
        lock.release(&session).unwrap(),
        "still the parent's to release"
    );
}

/// Symfony's store makes a handle per call for one owner token
/// (`restoreLock()`): each acts on what the others took, phantoms included,
/// and a release through one leaves no entry behind.
#[test]
fn handles_for_one_owner_token_share_its_hold() {
    let session = Session::new();
    let restored = |locker: &Arc<Locker>, token: &str| {
        Handle::new(
            Arc::clone(locker),
            b"k".to_vec(),
            token.to_owned(),
            Some(TTL),
            false,
        )
    };

    // Redis unreachable, fail-open: the phantom outlives the handle that took it.
    let open = locker_on(
        &format!("redis://127.0.0.1:{}", common::free_port()),
        true,
        Watchdog::Off,
    );
    let first = restored(&open, "t1");
    assert!(first.take(&session, Kind::Exclusive, Wait::No).unwrap());
    first.end(&session);
    let second = restored(&open, "t1");
    assert!(second.is_phantom(&session));
    assert!(second.refresh(&session, TTL).unwrap());
    assert!(second.release(&session).unwrap());
    assert_eq!(second.ownership(&session).unwrap(), Ownership::NotMine);

    // A real hold: taken through one handle, released through another.
    let redis = RedisServer::start();
    let real = locker(&redis, false, Watchdog::Off);
    let taker = restored(&real, "t2");
    assert!(taker.take(&session, Kind::Exclusive, Wait::No).unwrap());
    let again = restored(&real, "t2");
    assert!(again.take(&session, Kind::Exclusive, Wait::No).unwrap());
    assert!(
        taker.held(&session).is_none(),
        "one hold for the token, the new one"
    );
    assert!(restored(&real, "t2").release(&session).unwrap());
    assert!(
        again.held(&session).is_none(),
        "released through the session"
    );
    assert_eq!(stored(&redis, "k"), None);
}
