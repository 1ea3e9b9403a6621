//! `RedisLock\LockManager`: makes `Lock`s and runs callbacks under them.

// PHP named arguments take the Rust parameter names: `$autoRelease`, `$maxWait`.
#![allow(non_snake_case)]

use std::sync::Arc;
use std::time::Duration;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};
use redis_lock_core::inspect::Inspection;
use redis_lock_core::token::new_token;
use redis_lock_core::{Kind, Permits, Semaphores, Wait};

use crate::args::{self, Param};
use crate::callback;
use crate::exceptions::{from_core, lock_error, not_acquired};
use crate::guard::guard;
use crate::holds::{self, Acquired, Locker};
use crate::lock::Lock;
use crate::multi::MultiLock;
use crate::report::Reporter;
use crate::semaphore::{self, Semaphore};
use crate::settings::Settings;
use redis_lock_core::multi::MultiLocks;

/// Named locks for applications, as Laravel's `Cache::lock()` and Symfony's
/// `LockFactory` offer them.
#[php_class]
#[php(name = "RedisLock\\LockManager")]
pub struct LockManager {
    locker: Arc<Locker>,
    /// None with Redlock (see `Semaphores::for_deployment`).
    semaphores: Option<Arc<Semaphores>>,
    /// Where outcomes that are not exceptions are told (`logger`).
    reporter: Reporter,
}

#[php_impl]
impl LockManager {
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
            let s = Settings::resolve("RedisLock\\LockManager::__construct", dsn, options)?;
            Ok(LockManager {
                locker: Arc::new(Locker {
                    client: s.client,
                    default_ttl: s.ttl,
                    fail_open: s.fail_open,
                    watchdog: s.watchdog,
                }),
                semaphores: s.semaphores,
                reporter: s.reporter,
            })
        })
    }

    /// A new lock on `$name` with a fresh owner token; not yet acquired.
    ///
    /// @param string         $name        non-empty, at most 1024 bytes, binary-safe
    /// @param int|float|null $ttl         seconds; null: the configured ttl
    /// @param bool           $autoRelease release when the Lock is destroyed and at request end
    #[php(defaults(autoRelease = true))]
    pub fn create_lock(
        &self,
        name: &Zval,
        ttl: Option<&Zval>,
        autoRelease: bool,
    ) -> PhpResult<Lock> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::createLock";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 2, "ttl"))?;
            Ok(Lock::new(
                Arc::clone(&self.locker),
                name,
                new_token(),
                ttl,
                autoRelease,
                self.reporter.clone(),
            ))
        })
    }

    /// A new multi-lock on all of `$names` with a fresh owner token; not yet
    /// acquired. It holds all of them or none; a name held by a plain Lock
    /// blocks it and the other way round; callers that name the same locks
    /// in any order never deadlock.
    ///
    /// @param array          $names       lock names: non-empty, distinct strings of at most 1024 bytes
    /// @param int|float|null $ttl         seconds each lock lives; null: the configured ttl
    /// @param bool           $autoRelease release when the MultiLock is destroyed and at request end
    #[php(defaults(autoRelease = true))]
    pub fn create_multi_lock(
        &self,
        names: &Zval,
        ttl: Option<&Zval>,
        autoRelease: bool,
    ) -> PhpResult<MultiLock> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::createMultiLock";
            let names = crate::multi::names(names, Param::new(FUNC, 1, "names"))?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 2, "ttl"))?;
            let locker = Locker {
                client: Arc::new(MultiLocks::new(
                    &*self.locker.client,
                    MultiLocks::global_stats(),
                )),
                default_ttl: self.locker.default_ttl,
                fail_open: self.locker.fail_open,
                watchdog: self.locker.watchdog,
            };
            Ok(MultiLock::new(
                Arc::new(locker),
                names,
                new_token(),
                ttl,
                autoRelease,
                self.reporter.clone(),
            ))
        })
    }

    /// A new permit of the semaphore `$name` (at most `$limit` holders at
    /// once) with a fresh owner token; not yet acquired.
    ///
    /// @param string         $name        non-empty, at most 1024 bytes, binary-safe
    /// @param int            $limit       1 to 1000000; callers of one name should agree on it
    /// @param int|float|null $ttl         seconds each permit lives; null: the configured ttl
    /// @param bool           $autoRelease release when the Semaphore is destroyed and at request end
    /// @throws \RedisLock\LockException with a redlock:// DSN or a list of DSNs: semaphores
    ///         need one node's atomic scripts (one server, Sentinel or cluster)
    #[php(defaults(autoRelease = true))]
    pub fn create_semaphore(
        &self,
        name: &Zval,
        limit: &Zval,
        ttl: Option<&Zval>,
        autoRelease: bool,
    ) -> PhpResult<Semaphore> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::createSemaphore";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let limit = semaphore::limit(limit, Param::new(FUNC, 2, "limit"))?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 3, "ttl"))?;
            self.semaphore(FUNC, name, limit, new_token(), ttl, autoRelease)
        })
    }

    /// The permit of semaphore `$name` owned by `$owner` (a
    /// `Semaphore::owner()` from any process), to acquire, release or
    /// refresh it under that token (as the Symfony semaphore store does with
    /// the token it keeps in a Key). Never released automatically.
    ///
    /// @param string         $name  as createSemaphore
    /// @param int            $limit as createSemaphore
    /// @param string         $owner the permit's owner token
    /// @param int|float|null $ttl   seconds, for acquire() and refresh(); null: the configured ttl
    /// @throws \RedisLock\LockException with Redlock, as createSemaphore
    pub fn restore_semaphore(
        &self,
        name: &Zval,
        limit: &Zval,
        owner: &Zval,
        ttl: Option<&Zval>,
    ) -> PhpResult<Semaphore> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::restoreSemaphore";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let limit = semaphore::limit(limit, Param::new(FUNC, 2, "limit"))?;
            let owner = owner_token(owner, Param::new(FUNC, 3, "owner"))?;
            // A restored permit's TTL is its owner's to keep: never watched
            // unless `watchdog` is on.
            let ttl = args::ttl(ttl, Param::new(FUNC, 4, "ttl"), self.locker.default_ttl)?;
            self.semaphore(FUNC, name, limit, owner, Some(ttl), false)
        })
    }

    /// The lock on `$name` as owned by `$owner` (a `Lock::owner()` from any
    /// process), to release or refresh it. Never released automatically.
    pub fn restore_lock(&self, name: &Zval, owner: &Zval) -> PhpResult<Lock> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::restoreLock";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let owner = owner_token(owner, Param::new(FUNC, 2, "owner"))?;
            Ok(Lock::new(
                Arc::clone(&self.locker),
                name,
                owner,
                // Its TTL is its owner's to keep (Symfony's Lock refreshes
                // it): never watched unless `watchdog` is on.
                Some(self.locker.default_ttl),
                false,
                self.reporter.clone(),
            ))
        })
    }

    /// Tries once to take `$name`, runs `$callback` under it, releases (also
    /// when it throws) and returns its value. If the release then fails (Redis went
    /// away), the value is still returned and the failure told to the
    /// `logger` option (else `error_log()`), never as a PHP warning: the
    /// lock expires by its TTL.
    ///
    /// @param int|float|null $ttl seconds; null: the configured ttl
    /// @throws \RedisLock\LockConflictedException when the lock is held
    pub fn execute_with_lock(
        &self,
        name: &Zval,
        callback: ZendCallable,
        ttl: Option<&Zval>,
    ) -> PhpResult<Zval> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::executeWithLock";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 3, "ttl"))?;
            self.run_locked(name, &callback, ttl, Wait::No)
        })
    }

    /// Waits up to `$maxWait` for `$name` (woken on release), runs `$callback`
    /// under it, releases (also when it throws) and returns its value.
    /// If the release then fails (Redis went
    /// away), the value is still returned and the failure told to the
    /// `logger` option (else `error_log()`), never as a PHP warning: the
    /// lock expires by its TTL.
    ///
    /// @param int|float      $maxWait seconds
    /// @param int|float|null $ttl     seconds; null: the configured ttl
    /// @throws \RedisLock\LockTimeoutException when not acquired within $maxWait
    pub fn wait_and_execute(
        &self,
        name: &Zval,
        callback: ZendCallable,
        maxWait: Option<&Zval>,
        ttl: Option<&Zval>,
    ) -> PhpResult<Zval> {
        guard(|| {
            const FUNC: &str = "RedisLock\\LockManager::waitAndExecute";
            let name = args::name(name, Param::new(FUNC, 1, "name"))?;
            let max_wait = args::wait(
                maxWait,
                Param::new(FUNC, 3, "maxWait"),
                Duration::from_secs(10),
            )?;
            let ttl = args::given_ttl(ttl, Param::new(FUNC, 4, "ttl"))?;
            self.run_locked(name, &callback, ttl, Wait::For(max_wait))
        })
    }

    /// Whether anyone holds `$name`.
    pub fn is_locked(&self, name: &Zval) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(
                name,
                Param::new("RedisLock\\LockManager::isLocked", 1, "name"),
            )?;
            self.locker
                .client
                .is_locked(&name)
                .map_err(|e| from_core(&e))
        })
    }

    /// Takes `$name` from whoever holds it (an operator's tool): it is
    /// freed, or given to the next process waiting for it.
    ///
    /// @return bool whether there was a lock to take
    pub fn force_release(&self, name: &Zval) -> PhpResult<bool> {
        guard(|| {
            let name = args::name(
                name,
                Param::new("RedisLock\\LockManager::forceRelease", 1, "name"),
            )?;
            self.locker
                .client
                .force_release(&name)
                .map_err(|e| from_core(&e))
        })
    }

    /// What Redis says about lock `$name` now, for an operator: `locked`,
    /// `kind` (`exclusive`, `read` or null), `owner` (an exclusive hold's
    /// owner token), `holder` (`['host' => string, 'pid' => int]` when this
    /// extension made that token, else null), `ttl` (seconds left, null
    /// when free or without expiry), `waiters`, `readers`, `fencing` (the
    /// last fencing token issued, or null). Read only; over Redlock, what a
    /// majority of the masters agree on.
    ///
    /// @return array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int}
    pub fn inspect(&self, name: &Zval) -> PhpResult<ZBox<ZendHashTable>> {
        guard(|| {
            let name = args::name(
                name,
                Param::new("RedisLock\\LockManager::inspect", 1, "name"),
            )?;
            let inspector = self.locker.client.inspector().ok_or_else(|| {
                lock_error("inspect() is not offered by this deployment".to_owned())
            })?;
            let seen = inspector.inspect(&name).map_err(|e| from_core(&e))?;
            inspection(seen)
        })
    }

    /// This worker process's lock metrics since it started (or forked):
    /// acquired (read_acquired: of them, read locks), conflicts, timeouts,
    /// releases, releases_lost, watchdog_renewals, watchdog_lost (watched
    /// locks found gone or not renewed within their TTL), open_grants (holds
    /// granted without Redis under on_unavailable = open) and
    /// unreleased_after_callback (releases that failed after a callback
    /// returned; these two count every kind at the top level), and wait / hold
    /// time summaries (count, mean, p50, p99, max, in seconds) of its locks;
    /// under `semaphore`, the same figures for semaphore permits.
    ///
    /// @return array<string, int|array<string, int|float|array<string, int|float>>>
    pub fn stats(&self) -> PhpResult<ZBox<ZendHashTable>> {
        guard(crate::stats::all)
    }
}

impl LockManager {
    /// A Semaphore object on this manager's deployment.
    fn semaphore(
        &self,
        func: &str,
        name: Vec<u8>,
        limit: u32,
        token: String,
        ttl: Option<Duration>,
        auto_release: bool,
    ) -> PhpResult<Semaphore> {
        let Some(semaphores) = &self.semaphores else {
            return Err(lock_error(format!(
                "{func}(): semaphores are not supported with Redlock: a count kept on \
                 independent masters bounds no holders; use one server, Sentinel or a cluster"
            )));
        };
        let locker = Locker {
            client: Arc::new(Permits::new(Arc::clone(semaphores), limit)),
            default_ttl: self.locker.default_ttl,
            fail_open: self.locker.fail_open,
            // Permits are renewed by the watchdog as locks are.
            watchdog: self.locker.watchdog,
        };
        Ok(Semaphore::new(
            Arc::new(locker),
            name,
            limit,
            token,
            ttl,
            auto_release,
            self.reporter.clone(),
        ))
    }

    fn run_locked(
        &self,
        name: Vec<u8>,
        callback: &ZendCallable,
        ttl: Option<Duration>,
        wait: Wait,
    ) -> PhpResult<Zval> {
        let id = match holds::acquire(&self.reporter, &self.locker, &name, &new_token(), ttl, wait)?
        {
            Acquired::Yes(id) => id,
            Acquired::Conflicted | Acquired::TimedOut => {
                let waited = match wait {
                    Wait::For(d) => Some(d),
                    Wait::No | Wait::Forever => None,
                };
                return Err(not_acquired(&name, waited));
            }
        };
        callback::run_then_release(&self.reporter, callback, || holds::session().release(id))
    }
}

/// An owner token given back by PHP code (`Lock::owner()`, `Semaphore::owner()`).
fn owner_token(owner: &Zval, param: Param) -> PhpResult<String> {
    let bytes = owner
        .zend_str()
        .ok_or_else(|| param.wrong_type("string", owner))?
        .as_bytes();
    let owner =
        String::from_utf8(bytes.to_vec()).map_err(|_| param.invalid("must be an owner token"))?;
    if owner.is_empty() || owner.len() > args::MAX_NAME_BYTES {
        return Err(param.invalid("must be an owner token"));
    }
    // The scripts store markers after a NUL (`\0r`, `\0w`) in values; a
    // token made by this extension never has one.
    if owner.contains('\0') {
        return Err(param.invalid("must be an owner token (it contains a NUL byte)"));
    }
    Ok(owner)
}

/// `inspect()`'s array.
fn inspection(seen: Inspection) -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    out.insert("locked", seen.kind.is_some())?;
    out.insert(
        "kind",
        seen.kind.map(|kind| match kind {
            Kind::Exclusive => "exclusive",
            Kind::Shared => "read",
        }),
    )?;
    out.insert("owner", seen.owner)?;
    let holder = match seen.holder {
        Some(holder) => {
            let mut who = ZendHashTable::new();
            who.insert("host", holder.host)?;
            who.insert("pid", i64::from(holder.pid))?;
            Some(who)
        }
        None => None,
    };
    out.insert("holder", holder)?;
    out.insert("ttl", seen.ttl.map(|ttl| ttl.as_secs_f64()))?;
    out.insert("waiters", i64::try_from(seen.waiters).unwrap_or(i64::MAX))?;
    out.insert("readers", i64::try_from(seen.readers).unwrap_or(i64::MAX))?;
    out.insert("fencing", seen.fence)?;
    Ok(out)
}
