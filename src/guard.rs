//! Keeps Rust panics from reaching PHP as anything but a `LockException`.
//!
//! ext-php-rs already stops a panic at the FFI boundary, but reports it as a
//! PHP `\Error`; the API promises that whatever goes wrong inside the
//! extension is a `RedisLock\LockException`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ext_php_rs::prelude::*;

use crate::exceptions::lock_error;

/// Runs the body of a PHP method, turning a panic into a `LockException`.
///
/// Unwind safety: a panic can only leave behind the state of this extension's
/// own objects, whose locks are `parking_lot` mutexes (no poisoning) and whose
/// holds live in the registry, which stays consistent (entries are inserted
/// and removed whole).
pub fn guard<T>(body: impl FnOnce() -> PhpResult<T>) -> PhpResult<T> {
    let body = || {
        inject_panic();
        body()
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(lock_error(format!(
            "internal error in redis_lock: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

/// Test builds (feature `panic-injection`, used by the PHPUnit suite's debug
/// build) panic here when `REDIS_LOCK_INJECT_PANIC` is set, so the suite can
/// prove the conversion; release builds compile it away.
#[cfg(feature = "panic-injection")]
#[allow(clippy::panic)]
fn inject_panic() {
    if std::env::var_os("REDIS_LOCK_INJECT_PANIC").is_some() {
        panic!("injected panic");
    }
}

#[cfg(not(feature = "panic-injection"))]
fn inject_panic() {}
