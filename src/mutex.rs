//! `RedisLock\RedisMutex`: per-key locks held by one object, the shape a
//! WordPress plugin or a script uses.

use std::sync::Arc;

use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};
use foldhash::HashMap;
use parking_lot::Mutex;
use redis_lock_core::session::Held;
use redis_lock_core::token::new_token;
use redis_lock_core::{Kind, Ownership, Wait};

use crate::args::{self, Param};
use crate::callback;
use crate::exceptions::{from_core, not_acquired};
use crate::guard::guard;
use crate::holds::{self, session, Handle, Locker};
use crate::report::Reporter;
use crate::settings::Settings;

/// A per-key mutex: `acquire($key)` … `release($key)`, or `synchronized($key, $fn)`.
///
/// Each acquire stores a fresh 128-bit owner token, so only this object can
/// release or extend what it acquired. Locks still held are released when
/// the object is destroyed and at the end of the request. Not reentrant:
/// acquiring a key this object already holds returns false.
#[php_class]
#[php(name = "RedisLock\\RedisMutex")]
pub struct RedisMutex {
    locker: Arc<Locker>,
    /// Where outcomes that are not exceptions are told (`logger`).
    reporter: Reporter,
    /// A handle per key held, each with its own owner token.
    holds: Mutex<HashMap<Vec<u8>, Arc<Handle>>>,
}

#[php_impl]
impl RedisMutex {
    /// @param string|array|null $dsn null: the redis_lock.dsn ini value; redis://,
    ///                         rediss://, unix://, redis-sentinel://, redis-cluster://,
    ///                         redlock://; or a list of single-server DSNs (Redlock)
    /// @param array   $options overrides of the redis_lock.* ini entries (prefix, ttl,
    ///                         connect_timeout, timeout, on_unavailable, fencing, replicas,
    ///                         watchdog, watchdog_max), and logger: a PSR-3 logger told of
    ///                         outcomes that are not exceptions (a fail-open grant, a failed
    ///                         release after a callback), else error_log(). watchdog:
    ///                         'auto' (default) renews, every third of their TTL, the locks
    ///                         taken without a TTL of their own; true every lock; false none
    /// @throws \ValueError on an invalid DSN or option; nothing is connected yet
    pub fn __construct(dsn: Option<&Zval>, options: Option<&ZendHashTable>) -> PhpResult<Self> {
        guard(|| {
            let s = Settings::resolve("RedisLock\\RedisMutex::__construct", dsn, options)?;
            Ok(RedisMutex {
                locker: Arc::new(Locker {
                    client: s.client,
                    default_ttl: s.ttl,
                    fail_open: s.fail_open,
                    watchdog: s.watchdog,
                }),
                reporter: s.reporter,
                holds: Mutex::default(),
            })
        })
    }

    /// Takes the lock on `$key`.
    ///
    /// @param string         $key  non-empty, at most 1024 bytes, binary-safe
    /// @param int|float|null $ttl  seconds; null: the configured ttl
    /// @param int|float      $wait seconds to wait, woken on release; 0 tries once
    /// @return bool true if this object now holds the lock
    /// @throws \RedisLock\ConnectionException when Redis is unreachable (on_unavailable=closed)
    pub fn acquire(&self, key: &Zval, ttl: Option<&Zval>, wait: Option<&Zval>) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(key, Param::new("RedisLock\\RedisMutex::acquire", 1, "key"))?;
            let ttl = args::given_ttl(ttl, Param::new("RedisLock\\RedisMutex::acquire", 2, "ttl"))?;
            let wait = args::wait(
                wait,
                Param::new("RedisLock\\RedisMutex::acquire", 3, "wait"),
                std::time::Duration::ZERO,
            )?;
            Ok(self.take(name, ttl, wait)?.is_some())
        })
    }

    /// Releases the lock on `$key`.
    ///
    /// @return bool true only if this object still owned it (false if it had
    ///              expired and been taken by someone else, whose lock is left alone)
    pub fn release(&self, key: &Zval) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(key, Param::new("RedisLock\\RedisMutex::release", 1, "key"))?;
            let handle = self.holds.lock().remove(&name);
            match handle {
                Some(handle) => handle.release(session()).map_err(|e| from_core(&e)),
                None => Ok(false),
            }
        })
    }

    /// Sets a new TTL on `$key`, only while this object still owns it. With
    /// the `watchdog` option, the background renewal uses this TTL from now on.
    ///
    /// @param int|float|null $ttl seconds; null: the configured ttl
    pub fn extend(&self, key: &Zval, ttl: Option<&Zval>) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(key, Param::new("RedisLock\\RedisMutex::extend", 1, "key"))?;
            let ttl = args::ttl(
                ttl,
                Param::new("RedisLock\\RedisMutex::extend", 2, "ttl"),
                self.locker.default_ttl,
            )?;
            let Some(handle) = self.handle(&name) else {
                return Ok(false);
            };
            if handle.held(session()).is_none() {
                return Ok(false);
            }
            handle.refresh(session(), ttl).map_err(|e| from_core(&e))
        })
    }

    /// Whether anyone holds `$key`.
    pub fn is_locked(&self, key: &Zval) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(key, Param::new("RedisLock\\RedisMutex::isLocked", 1, "key"))?;
            self.locker
                .client
                .is_locked(&name)
                .map_err(|e| from_core(&e))
        })
    }

    /// The fencing token of this object's current hold of `$key`.
    ///
    /// @return ?int null when not held by this object or fencing is off
    pub fn fencing_token(&self, key: &Zval) -> PhpResult<Option<i64>> {
        guard(|| {
            let name = args::name(
                key,
                Param::new("RedisLock\\RedisMutex::fencingToken", 1, "key"),
            )?;
            Ok(self
                .handle(&name)
                .and_then(|h| h.held(session()))
                .and_then(|h| h.fence))
        })
    }

    /// Runs `$fn` while holding `$key` and releases it afterwards, also when
    /// `$fn` throws (the exception then reaches the caller unchanged).
    /// If the release then fails (Redis went
    /// away), the value is still returned and the failure told to the
    /// `logger` option (else `error_log()`), never as a PHP warning: the
    /// lock expires by its TTL.
    ///
    /// @param int|float|null $ttl  seconds; null: the configured ttl
    /// @param int|float      $wait seconds to wait, woken on release
    /// @return mixed what `$fn` returns
    /// @throws \RedisLock\LockConflictedException if held elsewhere and $wait is 0
    /// @throws \RedisLock\LockTimeoutException if still held elsewhere after $wait
    pub fn synchronized(
        &self,
        key: &Zval,
        callback: ZendCallable,
        ttl: Option<&Zval>,
        wait: Option<&Zval>,
    ) -> PhpResult<Zval> {
        guard(|| {
            const FUNC: &str = "RedisLock\\RedisMutex::synchronized";
            let name = args::name(key, Param::new(FUNC, 1, "key"))?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 3, "ttl"))?;
            let wait = args::wait(wait, Param::new(FUNC, 4, "wait"), std::time::Duration::ZERO)?;
            let Some(handle) = self.take(name.clone(), ttl, wait)? else {
                return Err(not_acquired(&name, (!wait.is_zero()).then_some(wait)));
            };
            // The callback may call this object again: no Rust lock is held across it.
            callback::run_then_release(&self.reporter, &callback, || {
                let mut holds = self.holds.lock();
                if holds.get(&name).is_some_and(|h| Arc::ptr_eq(h, &handle)) {
                    holds.remove(&name);
                }
                drop(holds);
                handle.release(session())
            })
        })
    }
}

impl RedisMutex {
    /// Acquires and records the hold; None when held elsewhere.
    fn take(
        &self,
        name: Vec<u8>,
        ttl: Option<std::time::Duration>,
        wait: std::time::Duration,
    ) -> PhpResult<Option<Arc<Handle>>> {
        // Copied out first so the guard is not held across the Redis call below.
        if let Some(existing) = self.handle(&name) {
            match existing.held(session()) {
                // Still ours as far as we know: not reentrant.
                Some(held) if held.phantom || still_ours(&held) => return Ok(None),
                _ => existing.forget(session()),
            }
        }
        let wait = if wait.is_zero() {
            Wait::No
        } else {
            Wait::For(wait)
        };
        let handle = Handle::new(
            Arc::clone(&self.locker),
            name.clone(),
            new_token(),
            ttl,
            true,
        );
        let handle = Arc::new(handle);
        if !holds::take(&self.reporter, &handle, Kind::Exclusive, wait)? {
            return Ok(None);
        }
        self.holds.lock().insert(name, Arc::clone(&handle));
        Ok(Some(handle))
    }

    fn handle(&self, name: &[u8]) -> Option<Arc<Handle>> {
        self.holds.lock().get(name).cloned()
    }
}

fn still_ours(held: &Held) -> bool {
    // An error here means Redis is unreachable; treat it as still ours so a
    // second acquire does not report success it cannot prove.
    !matches!(
        held.client.ownership(&held.name, &held.token),
        Ok(Ownership::NotMine)
    )
}

impl Drop for RedisMutex {
    fn drop(&mut self) {
        for (_, handle) in self.holds.get_mut().drain() {
            handle.end(session());
        }
    }
}
