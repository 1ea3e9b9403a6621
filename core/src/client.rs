//! Acquire, release, refresh and woken waits for named locks.
//!
//! # How a wait ends
//! An acquire without fencing first sends a plain `SET NX` (see `release`
//! for what that buys); only when the lock is held does a caller that will
//! wait send the acquire script, whose attempt, when it finds the lock held,
//! also registers the waiter (in the same script, so atomically with seeing
//! the lock held).
//! The release that comes next grants the lock to the first live waiter in
//! arrival order and pushes onto that waiter's own wake list (see
//! `scripts`); the waiter sits in `BLPOP` on that list and holds the lock as
//! soon as it pops, with no further round trip. A grant that lands between
//! a waiter's failed attempt and its BLPOP stays in the list: no wake-up is
//! lost. Waiters are served in order and none starves; the releaser cannot
//! barge back in.
//!
//! Each BLPOP is bounded by the smaller of the waiter's own time left and
//! the holder's remaining TTL, so a holder that died without releasing is
//! noticed when its TTL runs out, and no waiter overstays its deadline.
//! Pub/sub was the alternative; it needs a second connection per process
//! and its messages are lost when no one is subscribed at that instant.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::backend::HoldKeys;
use crate::dsn::Dsn;
use crate::engine::{self, Grant, HoldKind};
use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::node::Node;
use crate::orphans::{self, Undo};
use crate::packed::Packed;
use crate::plain_holds;
use crate::pool::Pool;
use crate::release::{self, force_release_script, release_on};
use crate::scripts::{self, is_marked_own, Invocation};
use crate::stats::Stats;
use crate::vocab::{millis, AcquireOutcome, Attempt, ClientOptions, Kind, Ownership, Wait};

/// After finding a lock held (or being granted it), a waiting acquire of
/// this process on that lock skips the plain `SET NX` for this long and
/// registers through the script at once: under contention the SET would
/// fail and cost a round trip and a command for nothing.
const CONTENDED_FOR: Duration = Duration::from_secs(1);
/// Locks remembered as contended at most.
const MAX_CONTENDED: usize = 1024;

/// Locks (DSN, NUL, lock key) this process found held, and when.
pub(crate) static CONTENDED: Lazy<Mutex<foldhash::HashMap<Vec<u8>, Instant>>> =
    Lazy::new(Mutex::default);

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_lazy(&CONTENDED) };
}

/// Lock operations against one Redis server with one set of options.
///
/// Cheap to create: connections live in the shared [`Pool`].
#[derive(Clone)]
pub struct LockClient {
    pub(crate) node: Node,
    prefix: Vec<u8>,
    fencing: bool,
}

impl LockClient {
    /// A client on the process-wide pool and metrics.
    pub fn new(dsn: Dsn, options: ClientOptions) -> Self {
        Self::with_pool(Pool::global(), Stats::global(), dsn, options)
    }

    /// A client on the given pool and metrics (tests use their own).
    pub fn with_pool(
        pool: Arc<Pool>,
        stats: Arc<Mutex<Stats>>,
        dsn: Dsn,
        options: ClientOptions,
    ) -> Self {
        LockClient {
            node: Node::new(pool, stats, dsn, &options),
            prefix: options.prefix,
            fencing: options.fencing,
        }
    }

    /// The same client on another pool (the watchdog's own, so that its
    /// renewals never take a connection a caller is using).
    pub fn on_pool(&self, pool: Arc<Pool>) -> LockClient {
        LockClient {
            node: self.node.on_pool(pool),
            ..self.clone()
        }
    }

    /// The same, counted in other metrics.
    pub fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> LockClient {
        LockClient {
            node: self.node.with_stats(stats),
            ..self.clone()
        }
    }

    /// The server this client talks to.
    pub fn dsn(&self) -> &Dsn {
        &self.node.target.dsn
    }

    /// The server's DSN, as given: see [`crate::Locks::server`].
    pub fn server(&self) -> &str {
        self.node.server()
    }

    /// Remembers `token`'s `kind` hold of `name` for a later release (see
    /// [`crate::Locks::release_later`]).
    pub fn release_later(&self, kind: Kind, name: &[u8], token: &str, ttl: Duration) {
        let keys = self.keys(name);
        plain_holds::forget(&self.node.target, &keys, token);
        orphans::remember(
            &self.node.target,
            &keys.lock.clone(),
            Undo::Lock(kind, keys),
            token,
            ttl,
        );
    }

    /// The Redis keys of lock `name`.
    pub fn keys(&self, name: &[u8]) -> LockKeys {
        LockKeys::new(&self.prefix, name)
    }

    /// Takes lock `name` for `token` with `ttl`, waiting as `wait` says.
    ///
    /// Errors only when Redis is unreachable, too slow or answers with an
    /// error; a held lock is an `Ok` outcome.
    pub fn acquire(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let hold = ExclusiveHold {
            client: self,
            keys: self.keys(name),
            token,
        };
        engine::acquire(&self.node, &hold, ttl, wait)
    }

    /// Deletes lock `name` if `token` still holds it. False when it had
    /// expired or been taken over: the other holder's lock is left alone.
    pub fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let keys = self.keys(name);
        let node = &self.node;
        let plain = plain_holds::take(&node.target, &keys, token)
            .filter(|_| node.capabilities.plain_release);
        let released = match plain {
            Some(expires) => release::plain(&node.entry, &node.target, &keys, token, expires)?,
            None => release_on(&node.entry, &node.target, &keys, token)? == 1,
        };
        node.stats
            .lock()
            .record_release(released, acquired_at.map(|t| t.elapsed()));
        Ok(released)
    }

    /// Takes all of `names` for `token` in one script (see
    /// [`scripts::ACQUIRE_ALL`]); None on a cluster, where they may live in
    /// different slots.
    pub fn acquire_all(
        &self,
        names: &[Vec<u8>],
        token: &str,
        ttl: Duration,
    ) -> Option<Result<Option<usize>>> {
        if !self.node.capabilities.atomic_multi {
            return None;
        }
        let mut call = scripts::ACQUIRE_ALL.key(&self.keys(&names[0]).lock);
        for name in &names[1..] {
            call = call.key(&self.keys(name).lock);
        }
        let mut call = call.arg(token).arg(millis(ttl));
        Some(self.run(|con| call.invoke::<i64>(con)).map(|held| {
            usize::try_from(held)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .filter(|i| *i < names.len())
        }))
    }

    /// Sets a new TTL on lock `name` if `token` still holds it.
    pub fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        let keys = self.keys(name);
        let sent = Instant::now();
        let refreshed: i64 = self.run(|con| {
            scripts::REFRESH
                .key(&keys.lock)
                .arg(token)
                .arg(millis(ttl))
                .invoke(con)
        })?;
        if refreshed == 1 {
            plain_holds::extend(&self.node.target, &keys, token, sent + ttl);
        }
        Ok(refreshed == 1)
    }

    /// Whether `token` holds lock `name`, and for how long still.
    pub fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        let keys = self.keys(name);
        let pttl: i64 =
            self.run(|con| scripts::OWNED_TTL.key(&keys.lock).arg(token).invoke(con))?;
        Ok(match pttl {
            -3 | -2 => Ownership::NotMine,
            -1 => Ownership::Mine { remaining: None },
            ms => Ownership::Mine {
                remaining: Some(Duration::from_millis(ms.unsigned_abs())),
            },
        })
    }

    /// Whether anyone holds lock `name`.
    pub fn is_locked(&self, name: &[u8]) -> Result<bool> {
        let keys = self.keys(name);
        let exists: i64 = self.run(|con| redis::cmd("EXISTS").arg(&keys.lock).query(con))?;
        Ok(exists == 1)
    }

    /// Deletes lock `name` whoever holds it, granting it to the next waiter.
    pub fn force_release(&self, name: &[u8]) -> Result<bool> {
        let mut force_release = force_release_script(&self.keys(name), &self.node.target);
        let deleted: i64 = self.run(|con| force_release.invoke(con))?;
        Ok(deleted == 1)
    }

    /// One attempt at a write lock, sent at `now` (see `engine`);
    /// a waiting caller (`wait_ms` > 0) is registered when it finds it held.
    fn attempt(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt> {
        // A caller not yet registered as a waiter first tries the plain
        // command: a free lock then costs Redis one SET, and a waiter
        // registers nothing. Only when the lock is held does a caller that
        // will wait go on to the script, which registers it (or, for a
        // caller that registered before, leaves the waiters).
        let plain = !registered
            && !self.fencing
            && (wait_ms == 0 || !self.recently_contended(keys, now, false));
        // A server that refuses `SET … NX GET` as a syntax error (Redis
        // before 7.0) is served by the script from then on. Any other error
        // (a replica's READONLY, LOADING, …) is reported and leaves the fast
        // path on.
        let no_set_nx_get = &self.node.entry.server.no_set_nx_get;
        if plain && !no_set_nx_get.load(Ordering::Relaxed) {
            match self.attempt_plain(keys, token, ttl_ms, now) {
                Err(Error::Server { code, detail, .. })
                    if code == "ERR" && detail.contains("syntax error") =>
                {
                    no_set_nx_get.store(true, Ordering::Relaxed)
                }
                Ok(Some(Attempt::Held { .. }) | None) if wait_ms > 0 => {}
                // Our own token, marked: whether our hold is still live is
                // the script's to say.
                Ok(None) => {}
                Ok(Some(attempt)) => return Ok(attempt),
                Err(err) => return Err(err),
            }
        }
        let fencing = if self.fencing { "1" } else { "0" };
        let reply: Vec<i64> = self.run(|con| {
            scripts::ACQUIRE
                .key(&keys.lock)
                .key(keys.fence())
                .key(keys.waiters())
                .key(keys.queue())
                .key(keys.wake(token))
                .arg(token)
                .arg(ttl_ms)
                .arg(fencing)
                .arg(wait_ms)
                .arg(if registered { "1" } else { "0" })
                .invoke(con)
        })?;
        match reply.as_slice() {
            [1, fence] => {
                plain_holds::forget(&self.node.target, keys, token);
                Ok(Attempt::Acquired(self.fencing.then_some(*fence)))
            }
            [0, pttl_ms] => {
                self.recently_contended(keys, now, true);
                Ok(Attempt::Held { pttl_ms: *pttl_ms })
            }
            other => Err(Error::Protocol {
                dsn: self.node.target.dsn.redacted().to_owned(),
                detail: format!("acquire script returned {other:?}"),
            }),
        }
    }

    /// An acquire without fencing as one plain command, which costs Redis
    /// less than the script. `GET` returns the previous value: our own token
    /// means a retried send whose first reply was lost, or a caller that
    /// holds it already, so it is ours. None: our own token with the waiters
    /// mark, whose hold may have ended (see `scripts`, "A holder that
    /// dies"): the script decides.
    /// `now`: a time before it is sent (the lock expires no earlier than
    /// that plus its TTL).
    fn attempt_plain(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl_ms: u64,
        now: Instant,
    ) -> Result<Option<Attempt>> {
        let sent = now;
        let previous: Option<Vec<u8>> = self.run(|con| {
            Packed::cmd("SET", keys.lock.len() + token.len() + 32)
                .arg(&keys.lock)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .arg("GET")
                .query(con)
        })?;
        Ok(match previous {
            None => {
                plain_holds::remember(
                    &self.node.target,
                    keys,
                    token,
                    sent + Duration::from_millis(ttl_ms),
                );
                Some(Attempt::Acquired(None))
            }
            // Our own token: a re-send whose first send took it, or a caller
            // that holds it already, perhaps by a grant, whose release must
            // go through the script: what `plain_holds` knows of it stays as
            // it is.
            Some(value) if value == token.as_bytes() => Some(Attempt::Acquired(None)),
            Some(value) if is_marked_own(&value, token) => None,
            // Read: the caller may be the one reader, promoted by the script.
            Some(value) if value.starts_with(b"\0r") => None,
            // Not waiting: the holder's TTL is not needed.
            Some(_) => {
                self.recently_contended(keys, now, true);
                Some(Attempt::Held { pttl_ms: 0 })
            }
        })
    }

    /// A release granted `token` the lock on `keys` (a waiter, or a reader
    /// for whom the read kind waited): whatever `plain_holds` knew of an
    /// earlier hold is stale, and the lock is contended.
    pub(crate) fn granted(&self, keys: &LockKeys, token: &str) {
        plain_holds::forget(&self.node.target, keys, token);
        self.recently_contended(keys, Instant::now(), true);
    }

    /// Whether this process found lock `keys` held within `CONTENDED_FOR`
    /// of `now`; `now_held`: it just did (remembered, and true).
    fn recently_contended(&self, keys: &LockKeys, now: Instant, now_held: bool) -> bool {
        let dsn = self.node.target.dsn.as_str();
        let mut key = Vec::with_capacity(dsn.len() + 1 + keys.lock.len());
        key.extend_from_slice(dsn.as_bytes());
        key.push(0);
        key.extend_from_slice(&keys.lock);
        let mut contended = CONTENDED.lock();
        if !now_held {
            return contended
                .get(&key)
                .is_some_and(|at| now < *at + CONTENDED_FOR);
        }
        if contended.len() >= MAX_CONTENDED {
            contended.retain(|_, at| now < *at + CONTENDED_FOR);
        }
        if contended.len() < MAX_CONTENDED {
            contended.insert(key, now);
        }
        true
    }

    pub(crate) fn run<T>(
        &self,
        op: impl FnMut(&mut dyn redis::ConnectionLike) -> std::result::Result<T, redis::RedisError>,
    ) -> Result<T> {
        self.node.run(op)
    }
}

/// The exclusive kind: one holder, the lock key holding its token (see
/// `scripts`).
struct ExclusiveHold<'a> {
    client: &'a LockClient,
    keys: LockKeys,
    token: &'a str,
}

impl HoldKeys for ExclusiveHold<'_> {
    fn token(&self) -> &str {
        self.token
    }

    fn main_key(&self) -> &[u8] {
        &self.keys.lock
    }

    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        scripts::REFRESH
            .key(&self.keys.lock)
            .arg(self.token)
            .arg(ttl_ms)
    }

    fn undo(&self) -> Undo {
        Undo::Lock(Kind::Exclusive, self.keys.clone())
    }
}

impl HoldKind<Node> for ExclusiveHold<'_> {
    fn attempt(
        &self,
        _node: &Node,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt> {
        self.client
            .attempt(&self.keys, self.token, ttl_ms, wait_ms, registered, now)
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    /// The grant is the fencing token (-1 without fencing).
    fn granted(&self, _node: &Node, popped: &redis::Value) -> Grant {
        self.client.granted(&self.keys, self.token);
        let fence = redis::from_redis_value_ref::<i64>(popped).ok();
        Grant::Held(fence.filter(|_| self.client.fencing))
    }
}
