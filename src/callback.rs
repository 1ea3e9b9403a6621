//! Calling user callbacks from under a lock.

use ext_php_rs::error::Error;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, Zval};

use crate::exceptions::lock_error;

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
/// happened, and returns the callback's value. When both fail, the
/// callback's exception is the one the caller sees.
pub fn run_then_release(
    callback: &ZendCallable,
    release: impl FnOnce() -> PhpResult<bool>,
) -> PhpResult<Zval> {
    let result = call(callback);
    let released = release();
    let value = result?;
    released?;
    Ok(value)
}
