//! The PHP layer's side of core's `session`: this process's session (PHP
//! serves one request at a time), core errors turned into PHP exceptions,
//! and the fail-open notice told to the application (`report`).

use std::time::Duration;

use ext_php_rs::exception::PhpException;
use redis_lock_core::session::Session;
pub use redis_lock_core::session::{Acquired, Handle, HoldId, Locker};
use redis_lock_core::{Kind, Wait};

use crate::exceptions::from_core;
use crate::report::{Outcome, Reporter};

/// This process's session.
pub fn session() -> &'static Session {
    Session::process()
}

/// Acquires `name` for `token` as `locker` says, registering the hold (the
/// callers that release it themselves: `waitAndExecute`, `RedisMutex`);
/// `ttl` None: the default TTL, watched as `Watchdog::renews` says.
pub fn acquire(
    reporter: &Reporter,
    locker: &Locker,
    name: &[u8],
    token: &str,
    ttl: Option<Duration>,
    wait: Wait,
) -> Result<Acquired, PhpException> {
    let renew_for = locker.watchdog.renews(ttl.is_some());
    let ttl = ttl.unwrap_or(locker.default_ttl);
    let acquired = session().acquire(
        locker,
        Kind::Exclusive,
        name,
        token,
        ttl,
        wait,
        true,
        renew_for,
    );
    report_open(reporter);
    acquired.map_err(|e| from_core(&e))
}

/// `handle` takes `kind` (see [`Handle::take`]).
pub fn take(
    reporter: &Reporter,
    handle: &Handle,
    kind: Kind,
    wait: Wait,
) -> Result<bool, PhpException> {
    let taken = handle.take(session(), kind, wait);
    report_open(reporter);
    taken.map_err(|e| from_core(&e))
}

/// The request ends (see [`Session::end_request`]).
pub fn end_request() {
    session().end_request();
    crate::report::new_request();
}

/// With `on_unavailable = open`, the first hold of a request granted
/// without Redis is told once (see `report`).
fn report_open(reporter: &Reporter) {
    if let Some(err) = session().take_open_notice() {
        reporter.tell(
            Outcome::GrantedOpen,
            &format!("{err}; on_unavailable=open, so locks are granted without Redis while it is unreachable (told once per request)"),
        );
    }
}
