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
