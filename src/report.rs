//! Lock outcomes that are not exceptions, told to the application: a hold
//! granted without Redis (`on_unavailable = open`) and a release that failed
//! after a callback had returned its value.
//!
//! They go to the PSR-3 logger given as the `logger` option (its
//! `warning($message, $context)`), else to `error_log()`; once per request
//! and kind. Never through PHP's error handler: Laravel's and Symfony's turn
//! warnings into exceptions, which would lose the callback's value and make
//! "fail open" fail closed.

use std::cell::Cell;

use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};

/// What is being told.
#[derive(Clone, Copy)]
pub enum Outcome {
    /// A hold was granted without Redis under `on_unavailable = open`.
    GrantedOpen,
    /// A release failed after the callback run under the lock returned.
    UnreleasedAfterCallback,
}

impl Outcome {
    fn bit(self) -> u8 {
        match self {
            Outcome::GrantedOpen => 1,
            Outcome::UnreleasedAfterCallback => 2,
        }
    }

    /// The `event` of the logger's context.
    fn event(self) -> &'static str {
        match self {
            Outcome::GrantedOpen => "granted_open",
            Outcome::UnreleasedAfterCallback => "unreleased_after_callback",
        }
    }
}

thread_local! {
    /// The outcomes told in this request (bits of [`Outcome::bit`]).
    static TOLD: Cell<u8> = const { Cell::new(0) };
}

/// A new request: every outcome may be told once again.
pub fn new_request() {
    TOLD.with(|told| told.set(0));
}

/// Where a `LockManager` or `RedisMutex` and the objects it makes tell
/// outcomes: the `logger` option's object, or `error_log()`.
#[derive(Default)]
pub struct Reporter {
    logger: Option<Zval>,
}

impl Clone for Reporter {
    fn clone(&self) -> Self {
        Reporter {
            logger: self.logger.as_ref().map(Zval::shallow_clone),
        }
    }
}

impl Reporter {
    /// Tells the logger `logger` (an object with a `warning()` method,
    /// checked by the settings), or `error_log()` when None.
    pub fn new(logger: Option<Zval>) -> Self {
        Reporter { logger }
    }

    /// Tells `outcome`, described by `message`, unless it was told in this
    /// request already. A logger that fails (other than by throwing, which
    /// the caller's PHP code then sees) leaves the message to `error_log()`.
    pub fn tell(&self, outcome: Outcome, message: &str) {
        let first = TOLD.with(|told| {
            let seen = told.get();
            told.set(seen | outcome.bit());
            seen & outcome.bit() == 0
        });
        if !first {
            return;
        }
        let text = format!("redis_lock: {message}");
        if let Some(logger) = &self.logger {
            let mut context = ZendHashTable::new();
            if context.insert("event", outcome.event()).is_ok() {
                match logger.try_call_method("warning", vec![&text, &context]) {
                    Ok(_) | Err(ext_php_rs::error::Error::ExceptionPending { .. }) => return,
                    Err(_) => {}
                }
            }
        }
        if let Ok(error_log) = ZendCallable::try_from_name("error_log") {
            let _ = error_log.try_call(vec![&text]);
        }
    }
}
