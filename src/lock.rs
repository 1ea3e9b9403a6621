//! `RedisLock\Lock`: one named lock with a fixed owner token, as Laravel's
//! `Cache::lock()` and Symfony's `LockFactory::createLock()` hand out.

use std::sync::Arc;
use std::time::Duration;

use ext_php_rs::binary::Binary;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, Zval};
use redis_lock_core::Ownership;
use redis_lock_core::{Kind, Wait};

use crate::args::{self, Param};
use crate::callback;
use crate::exceptions::{from_core, not_acquired};
use crate::guard::guard;
use crate::holds::{self, session, Handle, Locker};
use crate::report::Reporter;

/// A named lock owned by one token (`owner()`).
///
/// Made by `LockManager::createLock()` or `restoreLock()`. With `$autoRelease`
/// (the default of createLock) it is released when the object is destroyed
/// and at the end of the request; a restored lock never is.
#[php_class]
#[php(name = "RedisLock\\Lock")]
pub struct Lock {
    handle: Handle,
    /// Where outcomes that are not exceptions are told.
    reporter: Reporter,
}

impl Lock {
    /// A lock object; nothing is sent to Redis yet.
    pub fn new(
        locker: Arc<Locker>,
        name: Vec<u8>,
        token: String,
        ttl: Option<Duration>,
        auto_release: bool,
        reporter: Reporter,
    ) -> Self {
        Lock {
            reporter,
            handle: Handle::new(locker, name, token, ttl, auto_release),
        }
    }

    /// Takes `kind`; the other kind held by this owner is promoted (read to
    /// write) or demoted (write to read) by the same call, in Redis (see the
    /// core's read locks): the hold this Lock keeps becomes the new kind.
    fn take(&self, kind: Kind, wait: Wait) -> PhpResult<bool> {
        holds::take(&self.reporter, &self.handle, kind, wait)
    }

    /// Releases with the core error (see `release`).
    fn release_core(&self) -> Result<bool, redis_lock_core::Error> {
        self.handle.release(session())
    }

    fn ownership(&self) -> PhpResult<Ownership> {
        self.handle.ownership(session()).map_err(|e| from_core(&e))
    }
}

#[php_impl]
impl Lock {
    /// Takes the lock. A Lock holding a read lock is promoted when it is the
    /// only reader, with no one let in between (else false, or a wait with
    /// `$blocking`: promoted once the other readers leave).
    ///
    /// @param bool $blocking false: try once; true: wait until acquired (woken on release)
    /// @return bool whether this Lock now holds it
    #[php(defaults(blocking = false))]
    pub fn acquire(&self, blocking: bool) -> PhpResult<bool> {
        guard(|| {
            self.take(
                Kind::Exclusive,
                if blocking { Wait::Forever } else { Wait::No },
            )
        })
    }

    /// Takes a read lock: shared with other readers, never with a writer
    /// (`acquire()`). A writer that waits is served before readers that come
    /// after it; waits are woken, in order. A Lock holding the write lock is
    /// demoted to a reader, and the readers queued at the head come in.
    ///
    /// @param bool $blocking false: try once; true: wait until acquired (woken on release)
    /// @return bool whether this Lock now holds a read lock
    #[php(defaults(blocking = false))]
    pub fn acquire_read(&self, blocking: bool) -> PhpResult<bool> {
        guard(|| {
            self.take(
                Kind::Shared,
                if blocking { Wait::Forever } else { Wait::No },
            )
        })
    }

    /// Waits up to `$seconds` for the lock (woken on release).
    ///
    /// Without `$callback` returns true once held. With it, runs it under the
    /// lock, releases, and returns what it returned. If the release then fails (Redis went
    /// away), the value is still returned and the failure told to the
    /// `logger` option (else `error_log()`), never as a PHP warning: the
    /// lock expires by its TTL.
    ///
    /// @param int|float $seconds
    /// @throws \RedisLock\LockTimeoutException if not acquired within $seconds
    pub fn block(&self, seconds: &Zval, callback: Option<ZendCallable>) -> PhpResult<Zval> {
        guard(|| {
            let wait = args::wait(
                Some(seconds),
                Param::new("RedisLock\\Lock::block", 1, "seconds"),
                Duration::ZERO,
            )?;
            if !self.take(Kind::Exclusive, Wait::For(wait))? {
                return Err(not_acquired(self.handle.name(), Some(wait)));
            }
            let Some(callback) = callback else {
                let mut yes = Zval::new();
                yes.set_bool(true);
                return Ok(yes);
            };
            callback::run_then_release(&self.reporter, &callback, || self.release_core())
        })
    }

    /// Releases the lock (write or read, whichever this owner holds) if this
    /// owner still holds it.
    ///
    /// @return bool false if it had expired or is held by another owner (left alone)
    pub fn release(&self) -> PhpResult<bool> {
        guard(|| self.release_core().map_err(|e| from_core(&e)))
    }

    /// Sets a new TTL, only while this owner holds the lock. With the
    /// `watchdog` option, the background renewal uses this TTL from now on.
    ///
    /// @param int|float|null $ttl seconds; null: the lock's TTL
    pub fn refresh(&self, ttl: Option<&Zval>) -> PhpResult<bool> {
        guard(|| {
            let ttl = args::ttl(
                ttl,
                Param::new("RedisLock\\Lock::refresh", 1, "ttl"),
                self.handle.ttl(),
            )?;
            self.handle
                .refresh(session(), ttl)
                .map_err(|e| from_core(&e))
        })
    }

    /// Whether this owner holds the lock now (asks Redis).
    pub fn is_acquired(&self) -> PhpResult<bool> {
        guard(|| Ok(matches!(self.ownership()?, Ownership::Mine { .. })))
    }

    /// Whether this Lock acquired the lock and has since lost it to its TTL.
    pub fn is_expired(&self) -> PhpResult<bool> {
        guard(|| {
            if self.handle.held(session()).is_none() {
                return Ok(false);
            }
            Ok(matches!(self.ownership()?, Ownership::NotMine))
        })
    }

    /// Seconds left before the lock expires.
    ///
    /// @return ?float null when this owner does not hold it
    pub fn get_remaining_lifetime(&self) -> PhpResult<Option<f64>> {
        guard(|| {
            Ok(match self.ownership()? {
                Ownership::Mine { remaining: Some(r) } => Some(r.as_secs_f64()),
                Ownership::Mine { remaining: None } => None,
                Ownership::NotMine => None,
            })
        })
    }

    /// The owner token (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it); pass it to
    /// `LockManager::restoreLock()` to act on this lock from another process.
    pub fn owner(&self) -> String {
        self.handle.token().to_owned()
    }

    /// The lock name.
    pub fn name(&self) -> Binary<u8> {
        Binary::from(self.handle.name().to_vec())
    }

    /// The fencing token of the current hold: strictly increasing per name
    /// across all workers.
    ///
    /// @return ?int null when not held or fencing is off
    pub fn fencing_token(&self) -> Option<i64> {
        self.handle.held(session()).and_then(|h| h.fence)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.handle.end(session());
    }
}
