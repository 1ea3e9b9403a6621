//! `RedisLock\Semaphore`: one permit of a named counting semaphore (at most
//! `limit` holders at once), with a fixed owner token.
//!
//! A permit is held, released at request end and failed open exactly like a
//! lock: the object's [`Locker`] acquires through core's `Permits`, which
//! the hold registry (`holds`) releases like any lock.

use std::sync::Arc;
use std::time::Duration;

use ext_php_rs::binary::Binary;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, Zval};
use redis_lock_core::{Kind, Ownership, Wait};

use crate::args::{self, Param};
use crate::callback;
use crate::exceptions::{conflicted, from_core, timed_out};
use crate::guard::guard;
use crate::holds::{self, session, Handle, Locker};
use crate::report::Reporter;

/// The highest `$limit` of a semaphore.
pub const MAX_LIMIT: i64 = 1_000_000;

/// A permit of the semaphore `name()`: at most `limit()` holders at once
/// across all workers, each permit with its own TTL.
///
/// Made by `LockManager::createSemaphore()`. With `$autoRelease` (the
/// default) the permit is released when the object is destroyed and at the
/// end of the request.
#[php_class]
#[php(name = "RedisLock\\Semaphore")]
pub struct Semaphore {
    handle: Handle,
    /// Where outcomes that are not exceptions are told.
    reporter: Reporter,
    limit: u32,
}

impl Semaphore {
    /// A semaphore object; nothing is sent to Redis yet. `locker` acquires
    /// permits of `limit`.
    pub fn new(
        locker: Arc<Locker>,
        name: Vec<u8>,
        limit: u32,
        token: String,
        ttl: Option<Duration>,
        auto_release: bool,
        reporter: Reporter,
    ) -> Self {
        Semaphore {
            reporter,
            handle: Handle::new(locker, name, token, ttl, auto_release),
            limit,
        }
    }

    /// Takes a permit; acquiring again while holding renews the same permit.
    fn take(&self, wait: Wait) -> PhpResult<bool> {
        holds::take(&self.reporter, &self.handle, Kind::Exclusive, wait)
    }

    fn release_core(&self) -> Result<bool, redis_lock_core::Error> {
        self.handle.release(session())
    }

    fn ownership(&self) -> PhpResult<Ownership> {
        self.handle.ownership(session()).map_err(|e| from_core(&e))
    }

    fn full(&self, waited: Option<Duration>) -> PhpException {
        let shown = String::from_utf8_lossy(self.handle.name());
        match waited {
            None => conflicted(format!(
                "Semaphore \"{shown}\" has all its {} permits taken",
                self.limit
            )),
            Some(waited) => timed_out(format!(
                "Semaphore \"{shown}\" had no free permit within {} s",
                waited.as_secs_f64()
            )),
        }
    }
}

#[php_impl]
impl Semaphore {
    /// Takes a permit.
    ///
    /// @param bool $blocking false: try once; true: wait until one is had (woken in arrival order)
    /// @return bool whether this Semaphore now holds a permit
    #[php(defaults(blocking = false))]
    pub fn acquire(&self, blocking: bool) -> PhpResult<bool> {
        guard(|| self.take(if blocking { Wait::Forever } else { Wait::No }))
    }

    /// Waits up to `$seconds` for a permit (woken in arrival order).
    ///
    /// Without `$callback` returns true once held. With it, runs it holding
    /// the permit, releases, and returns what it returned (if the release
    /// then fails, the value is still returned and the failure told to the
    /// `logger` option, else `error_log()`: the permit expires by its TTL).
    ///
    /// @param int|float $seconds
    /// @throws \RedisLock\LockTimeoutException if no permit was had within $seconds
    pub fn block(&self, seconds: &Zval, callback: Option<ZendCallable>) -> PhpResult<Zval> {
        guard(|| {
            let wait = args::wait(
                Some(seconds),
                Param::new("RedisLock\\Semaphore::block", 1, "seconds"),
                Duration::ZERO,
            )?;
            if !self.take(Wait::For(wait))? {
                return Err(self.full(if wait.is_zero() { None } else { Some(wait) }));
            }
            let Some(callback) = callback else {
                let mut yes = Zval::new();
                yes.set_bool(true);
                return Ok(yes);
            };
            callback::run_then_release(&self.reporter, &callback, || self.release_core())
        })
    }

    /// Gives the permit back (to the first waiter, if any).
    ///
    /// @return bool false if it had expired or was not held
    pub fn release(&self) -> PhpResult<bool> {
        guard(|| self.release_core().map_err(|e| from_core(&e)))
    }

    /// Sets a new TTL on the permit, only while this Semaphore holds it.
    ///
    /// @param int|float|null $ttl seconds; null: the semaphore's TTL
    pub fn refresh(&self, ttl: Option<&Zval>) -> PhpResult<bool> {
        guard(|| {
            let ttl = args::ttl(
                ttl,
                Param::new("RedisLock\\Semaphore::refresh", 1, "ttl"),
                self.handle.ttl(),
            )?;
            self.handle
                .refresh(session(), ttl)
                .map_err(|e| from_core(&e))
        })
    }

    /// Whether this Semaphore holds a permit now (asks Redis).
    pub fn is_acquired(&self) -> PhpResult<bool> {
        guard(|| Ok(matches!(self.ownership()?, Ownership::Mine { .. })))
    }

    /// Seconds left before the permit expires.
    ///
    /// @return ?float null when this Semaphore holds no permit
    pub fn get_remaining_lifetime(&self) -> PhpResult<Option<f64>> {
        guard(|| {
            Ok(match self.ownership()? {
                Ownership::Mine { remaining } => remaining.map(|r| r.as_secs_f64()),
                Ownership::NotMine => None,
            })
        })
    }

    /// The owner token of this Semaphore's permit (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it).
    pub fn owner(&self) -> String {
        self.handle.token().to_owned()
    }

    /// The semaphore's name.
    pub fn name(&self) -> Binary<u8> {
        Binary::from(self.handle.name().to_vec())
    }

    /// At most this many holders at once.
    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        self.handle.end(session());
    }
}

/// Reads a `$limit`: an int from 1 to [`MAX_LIMIT`].
pub fn limit(zv: &Zval, param: Param) -> Result<u32, PhpException> {
    let n = zv
        .long()
        .filter(|_| zv.is_long())
        .ok_or_else(|| param.wrong_type("int", zv))?;
    if n < 1 {
        return Err(param.invalid("must be greater than 0"));
    }
    if n > MAX_LIMIT {
        return Err(param.invalid("must be at most 1000000"));
    }
    u32::try_from(n).map_err(|_| param.invalid("must be at most 1000000"))
}
