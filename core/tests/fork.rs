//! fork() while another thread (the watchdog's, in PHP) holds the
//! process-wide mutexes: the child must not hang on them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use redis_lock_core::token::new_token;
use redis_lock_core::{AcquireOutcome, Dsn, LockClient, Wait};

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn _exit(code: i32) -> !;
}
const WNOHANG: i32 = 1;
const SIGKILL: i32 = 9;

#[test]
fn a_child_forked_while_a_thread_holds_the_process_mutexes_takes_and_releases_locks() {
    let redis = RedisServer::start();
    // The process-wide pool and metrics, as the PHP layer uses them.
    let client = LockClient::new(
        Dsn::parse(&redis.dsn()).unwrap(),
        common::options(Duration::from_millis(500)),
    );
    let ttl = Duration::from_secs(10);
    let warm = new_token();
    assert!(matches!(
        client.acquire(b"warm", &warm, ttl, Wait::No).unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    assert!(client.release(b"warm", &warm, None).unwrap());

    // Held for longer than the parent waits: a child that waited for them
    // would still be waiting when the parent gives up on it.
    let holder = redis_lock_core::fork::hold_process_mutexes_for(Duration::from_secs(4));
    // SAFETY: the child runs only the lock cycle below and leaves by _exit.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let t = new_token();
        let ok = matches!(
            client.acquire(b"child", &t, ttl, Wait::No),
            Ok(AcquireOutcome::Acquired(_))
        ) && client.release(b"child", &t, None).unwrap_or(false);
        // SAFETY: ends the child without running the parent's test harness.
        unsafe { _exit(if ok { 0 } else { 1 }) }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        if unsafe { waitpid(pid, &mut status, WNOHANG) } == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe {
                kill(pid, SIGKILL);
                waitpid(pid, &mut status, 0);
            }
            panic!("the child hung on a mutex another thread held at the fork");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let exited_ok = status & 0x7f == 0 && (status >> 8) & 0xff == 0;
    assert!(exited_ok, "the child's lock cycle failed (status {status})");
    holder.join().unwrap();
}

/// A renewal that only says the hold is still there: the test below is
/// about the watchdog's threads, not about what they send.
struct StillHeld;

impl redis_lock_core::watchdog::Renew for StillHeld {
    fn renew(&self, _ttl: Duration) -> redis_lock_core::Result<bool> {
        Ok(true)
    }
}

/// Waits up to 3 s for child `pid`; kills it and returns false if it is
/// still running then.
fn exits_within_3s(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        if unsafe { waitpid(pid, &mut status, WNOHANG) } == pid {
            return status & 0x7f == 0 && (status >> 8) & 0xff == 0;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe {
                kill(pid, SIGKILL);
                waitpid(pid, &mut status, 0);
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// fork() while a watchdog thread sleeps between renewals, as in PHP between
/// requests: the child starts watchdogs of its own (glibc gives their
/// threads the stack of the parent's, which does not exist in the child)
/// and stops them. While a watchdog slept on a parking_lot condvar, the
/// sleeping parent thread stayed queued in parking_lot's process-wide
/// parking table in the child; a child thread queued at the same address
/// made that queue a loop, and the child's stop walked it for ever (seen in
/// PHPUnit: a forked worker at 100 % CPU in `Condvar::notify_all_slow` for
/// 14 minutes).
#[test]
fn a_child_forked_while_a_watchdog_thread_sleeps_starts_and_stops_its_own() {
    use redis_lock_core::watchdog::Watchdog;
    use std::sync::Arc;
    let watch = |w: &Arc<Watchdog>| {
        w.watch(
            Arc::new(StillHeld),
            Duration::from_secs(60),
            Duration::from_secs(3600),
            Instant::now(),
        )
        .is_ok()
    };
    // In a process of one thread, as PHP is: a child of this test, which
    // then plays the PHP process whose watchdog thread sleeps.
    // SAFETY: the child runs the scenario below and leaves by _exit().
    let php = unsafe { fork() };
    assert!(php >= 0, "fork failed");
    if php == 0 {
        let parent = Watchdog::new();
        let mut failed = 0;
        if watch(&parent) {
            // The thread asleep until its hold is due (in 20 s).
            std::thread::sleep(Duration::from_millis(100));
            for _ in 0..20 {
                // SAFETY: the child only starts and stops watchdogs, then _exit()s.
                let pid = unsafe { fork() };
                if pid == 0 {
                    // One after another, each kept (so each at a new
                    // address, and so in another slot of the parking table),
                    // as PHP makes a new one in each forked child.
                    let mut ok = true;
                    let mut kept = Vec::new();
                    for _ in 0..32 {
                        let w = Watchdog::new();
                        ok &= watch(&w);
                        std::thread::sleep(Duration::from_millis(2));
                        w.stop();
                        kept.push(w);
                    }
                    // SAFETY: ends the child.
                    unsafe { _exit(if ok { 0 } else { 1 }) }
                }
                if pid < 0 || !exits_within_3s(pid) {
                    failed += 1;
                }
            }
        } else {
            failed = 100;
        }
        // SAFETY: ends the child without running the test harness; the
        // exit code says how many of its children hung or failed.
        unsafe { _exit(failed) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { waitpid(php, &mut status, 0) }, php);
    assert_eq!(
        status & 0x7f,
        0,
        "the PHP-like process was killed (status {status})"
    );
    let failed = (status >> 8) & 0xff;
    assert_eq!(failed, 0, "{failed} of 20 children hung or failed");
}
