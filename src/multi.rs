//! `RedisLock\MultiLock`: several named locks held together, all or none,
//! with one owner token (see core's `multi` for how it is taken without
//! deadlock).
//!
//! A multi-lock is held, renewed, released at request end and failed open
//! like a lock: its [`Locker`] acquires through core's `MultiLocks`, and the
//! hold registry (`holds`) keeps it under its encoded names.

use std::sync::Arc;
use std::time::Duration;

use ext_php_rs::binary::Binary;
use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};
use redis_lock_core::{Kind, Ownership, Wait};

use crate::args::{self, Param};
use crate::callback;
use crate::exceptions::{conflicted, from_core, timed_out};
use crate::guard::guard;
use crate::holds::{self, session, Handle, Locker};
use crate::report::Reporter;

/// The locks `names()`, held together under one owner token.
///
/// Made by `LockManager::createMultiLock()`. With `$autoRelease` (the
/// default) it is released when the object is destroyed and at the end of
/// the request.
#[php_class]
#[php(name = "RedisLock\\MultiLock")]
pub struct MultiLock {
    /// Its name is the encoded names (core `multi::encode`).
    handle: Handle,
    /// Where outcomes that are not exceptions are told.
    reporter: Reporter,
    names: Vec<Vec<u8>>,
}

impl MultiLock {
    /// A multi-lock object; nothing is sent to Redis yet. `locker`'s client
    /// is a `MultiLocks`.
    pub fn new(
        locker: Arc<Locker>,
        names: Vec<Vec<u8>>,
        token: String,
        ttl: Option<Duration>,
        auto_release: bool,
        reporter: Reporter,
    ) -> Self {
        let encoded = redis_lock_core::multi::encode(&names);
        MultiLock {
            reporter,
            handle: Handle::new(locker, encoded, token, ttl, auto_release),
            names,
        }
    }

    fn take(&self, wait: Wait) -> PhpResult<bool> {
        holds::take(&self.reporter, &self.handle, Kind::Exclusive, wait)
    }

    fn release_core(&self) -> Result<bool, redis_lock_core::Error> {
        self.handle.release(session())
    }

    fn ownership(&self) -> PhpResult<Ownership> {
        self.handle.ownership(session()).map_err(|e| from_core(&e))
    }

    fn shown(&self) -> String {
        self.names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
            .join("\", \"")
    }
}

#[php_impl]
impl MultiLock {
    /// Takes all the locks, or none.
    ///
    /// @param bool $blocking false: try once; true: wait until all are held (woken by the
    ///                       release of the name it waits for)
    /// @return bool whether this MultiLock now holds all its locks
    #[php(defaults(blocking = false))]
    pub fn acquire(&self, blocking: bool) -> PhpResult<bool> {
        guard(|| self.take(if blocking { Wait::Forever } else { Wait::No }))
    }

    /// Waits up to `$seconds` for all the locks.
    ///
    /// Without `$callback` returns true once held. With it, runs it holding
    /// them, releases, and returns what it returned.
    ///
    /// @param int|float $seconds
    /// @throws \RedisLock\LockTimeoutException if not all were had within $seconds
    pub fn block(&self, seconds: &Zval, callback: Option<ZendCallable>) -> PhpResult<Zval> {
        guard(|| {
            let wait = args::wait(
                Some(seconds),
                Param::new("RedisLock\\MultiLock::block", 1, "seconds"),
                Duration::ZERO,
            )?;
            if !self.take(Wait::For(wait))? {
                return Err(if wait.is_zero() {
                    conflicted(format!("Locks \"{}\" are not all free", self.shown()))
                } else {
                    timed_out(format!(
                        "Locks \"{}\" were not all free within {} s",
                        self.shown(),
                        wait.as_secs_f64()
                    ))
                });
            }
            let Some(callback) = callback else {
                let mut yes = Zval::new();
                yes.set_bool(true);
                return Ok(yes);
            };
            callback::run_then_release(&self.reporter, &callback, || self.release_core())
        })
    }

    /// Releases all the locks this owner still holds.
    ///
    /// @return bool true only if it still held every one of them
    pub fn release(&self) -> PhpResult<bool> {
        guard(|| self.release_core().map_err(|e| from_core(&e)))
    }

    /// Sets a new TTL on every lock, while this owner holds them.
    ///
    /// @param int|float|null $ttl seconds; null: the multi-lock's TTL
    /// @return bool true only if every lock was still held and is refreshed
    pub fn refresh(&self, ttl: Option<&Zval>) -> PhpResult<bool> {
        guard(|| {
            let ttl = args::ttl(
                ttl,
                Param::new("RedisLock\\MultiLock::refresh", 1, "ttl"),
                self.handle.ttl(),
            )?;
            self.handle
                .refresh(session(), ttl)
                .map_err(|e| from_core(&e))
        })
    }

    /// Whether this owner holds every one of the locks now (asks Redis).
    pub fn is_acquired(&self) -> PhpResult<bool> {
        guard(|| Ok(matches!(self.ownership()?, Ownership::Mine { .. })))
    }

    /// Seconds left before the first of the locks expires.
    ///
    /// @return ?float null when this owner does not hold them all
    pub fn get_remaining_lifetime(&self) -> PhpResult<Option<f64>> {
        guard(|| {
            Ok(match self.ownership()? {
                Ownership::Mine { remaining } => remaining.map(|r| r.as_secs_f64()),
                Ownership::NotMine => None,
            })
        })
    }

    /// The lock names, sorted.
    ///
    /// @return list<string>
    pub fn names(&self) -> PhpResult<ZBox<ZendHashTable>> {
        let mut sorted = self.names.clone();
        sorted.sort();
        let mut out = ZendHashTable::new();
        for name in sorted {
            out.push(Binary::from(name))?;
        }
        Ok(out)
    }

    /// The owner token (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it).
    pub fn owner(&self) -> String {
        self.handle.token().to_owned()
    }
}

impl Drop for MultiLock {
    fn drop(&mut self) {
        self.handle.end(session());
    }
}

/// Reads a `$names` argument: a non-empty array of distinct, valid lock
/// names (as `args::name`).
pub fn names(zv: &Zval, param: Param) -> Result<Vec<Vec<u8>>, PhpException> {
    let list = zv.array().ok_or_else(|| param.wrong_type("array", zv))?;
    if list.is_empty() {
        return Err(param.invalid("must not be empty"));
    }
    let mut names: Vec<Vec<u8>> = Vec::with_capacity(list.len());
    for (key, value) in list.iter() {
        let Some(name) = value.zend_str() else {
            return Err(crate::exceptions::type_error(format!(
                "{}(): Argument #{} (${}) must contain only strings, {} given at key {}",
                param.func,
                param.pos,
                param.name,
                args::type_name(value),
                key
            )));
        };
        let name = name.as_bytes().to_vec();
        if name.is_empty() {
            return Err(param.invalid(&format!("must not contain an empty name (key {key})")));
        }
        if name.len() > args::MAX_NAME_BYTES {
            return Err(param.invalid(&format!(
                "must not contain a name longer than 1024 bytes (key {key})"
            )));
        }
        if names.contains(&name) {
            return Err(param.invalid(&format!(
                "must not contain a name twice (\"{}\")",
                String::from_utf8_lossy(&name)
            )));
        }
        names.push(name);
    }
    Ok(names)
}
