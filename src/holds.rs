//! The PHP layer's side of core's `session`: this process's session (PHP
//! serves one request at a time), core errors turned into PHP exceptions,
//! and the fail-open notice reported as PHP's E_WARNING.

use std::time::Duration;

use ext_php_rs::exception::PhpException;
use ext_php_rs::flags::ErrorType;
use redis_lock_core::session::Session;
pub use redis_lock_core::session::{Acquired, Handle, HoldId, Locker};
use redis_lock_core::{Kind, Wait};

use crate::exceptions::from_core;

/// This process's session.
pub fn session() -> &'static Session {
    Session::process()
}

/// Acquires `name` for `token` as `locker` says, registering the hold (the
/// callers that release it themselves: `waitAndExecute`, `RedisMutex`).
pub fn acquire(
    locker: &Locker,
    name: &[u8],
    token: &str,
    ttl: Duration,
    wait: Wait,
) -> Result<Acquired, PhpException> {
    let acquired = session().acquire(locker, Kind::Exclusive, name, token, ttl, wait, true);
    report_open();
    acquired.map_err(|e| from_core(&e))
}

/// `handle` takes `kind` (see [`Handle::take`]).
pub fn take(handle: &Handle, kind: Kind, wait: Wait) -> Result<bool, PhpException> {
    let taken = handle.take(session(), kind, wait);
    report_open();
    taken.map_err(|e| from_core(&e))
}

/// The request ends (see [`Session::end_request`]).
pub fn end_request() {
    session().end_request();
}

/// With `on_unavailable = open`, the first hold of a request granted
/// without Redis is said once, as an E_WARNING.
fn report_open() {
    if let Some(err) = session().take_open_notice() {
        ext_php_rs::error::php_error(
            &ErrorType::Warning,
            &format!("redis_lock: {err}; on_unavailable=open, so locks are granted without Redis while it is unreachable (warned once per request)"),
        );
    }
}
