//! Calling user callbacks from under a lock.

use ext_php_rs::error::Error;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, Zval};

use crate::exceptions::lock_error;
use crate::report::{Outcome, Reporter};

/// Calls `callback` with no arguments.
///
/// When it throws (or calls `exit()`, which PHP 8 implements as an internal
/// exception), the exception is left pending in the engine and an `Err` is
/// returned: the caller releases its lock and returns the `Err`, whose own
/// throw is a no-op while an exception is pending, so the original one
/// reaches PHP code unchanged.
pub fn call(callback: &ZendCallable) -> PhpResult<Zval> {
    match callback.try_call(vec![]) {
        Ok(value) => Ok(value),
        Err(Error::ExceptionPending { .. }) => Err(lock_error("the callback threw".into())),
        Err(err) => Err(lock_error(format!(
            "the callback could not be called: {err}"
        ))),
    }
}

/// Runs `callback` while a lock is held, then `release`s the lock whatever
/// happened, and returns the callback's value.
///
/// When the callback throws, its exception is what the caller sees. When the
/// callback succeeded but the release failed (Redis went away meanwhile), the
/// work was done under a valid lock: the value is returned, and `reporter`
/// tells (not PHP's error handler, which a framework turns into an
/// exception) that the lock will only go when its TTL runs out, rather than
/// a failure being reported for work that happened.
pub fn run_then_release(
    reporter: &Reporter,
    callback: &ZendCallable,
    release: impl FnOnce() -> Result<bool, redis_lock_core::Error>,
) -> PhpResult<Zval> {
    let result = call(callback);
    let released = release();
    let value = result?;
    if let Err(err) = released {
        redis_lock_core::Stats::global()
            .lock()
            .record_unreleased_after_callback();
        reporter.tell(
            Outcome::UnreleasedAfterCallback,
            &format!("the lock could not be released after the callback ({err}); it expires when its TTL runs out"),
        );
    }
    Ok(value)
}
