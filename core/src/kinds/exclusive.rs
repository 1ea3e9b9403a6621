//! The exclusive kind: one holder, the lock key holding its owner token.
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
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::backend::HoldKeys;
use crate::engine::{Grant, HoldKind};
use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::node::Node;
use crate::orphans::Undo;
use crate::packed::Packed;
use crate::plain_holds;
use crate::scripts::{self, is_marked_own, Invocation};
use crate::vocab::{Attempt, Kind};

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

/// The exclusive kind: one holder, the lock key holding its token (see
/// `scripts`).
pub(crate) struct ExclusiveHold<'a> {
    pub(crate) node: &'a Node,
    /// Whether acquires draw a fencing token.
    pub(crate) fencing: bool,
    pub(crate) keys: LockKeys,
    pub(crate) token: &'a str,
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
        self.try_once(ttl_ms, wait_ms, registered, now)
    }

    fn metric_kind(&self) -> crate::metrics::Kind {
        crate::metrics::Kind::Lock
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    /// The grant is the fencing token (-1 without fencing).
    fn granted(&self, node: &Node, popped: &redis::Value) -> Grant {
        granted(node, &self.keys, self.token);
        let fence = redis::from_redis_value_ref::<i64>(popped).ok();
        Grant::Held(fence.filter(|_| self.fencing))
    }
}

impl ExclusiveHold<'_> {
    /// One attempt at a write lock, sent at `now` (see `engine`);
    /// a waiting caller (`wait_ms` > 0) is registered when it finds it held.
    fn try_once(
        &self,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt> {
        let (keys, token) = (&self.keys, self.token);
        // A caller not yet registered as a waiter first tries the plain
        // command: a free lock then costs Redis one SET, and a waiter
        // registers nothing. Only when the lock is held does a caller that
        // will wait go on to the script, which registers it (or, for a
        // caller that registered before, leaves the waiters).
        let plain = !registered
            && !self.fencing
            && (wait_ms == 0 || !recently_contended(self.node, keys, now, false));
        // A server that refuses `SET … NX GET` as a syntax error (Redis
        // before 7.0) is served by the script from then on. Any other error
        // (a replica's READONLY, LOADING, …) is reported and leaves the fast
        // path on.
        let no_set_nx_get = &self.node.entry.server.no_set_nx_get;
        if plain && !no_set_nx_get.load(Ordering::Relaxed) {
            match self.attempt_plain(ttl_ms, now) {
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
        let reply: Vec<i64> = self.node.run(|con| {
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
        Ok(match self.node.attempt_from(&reply, "acquire")? {
            Attempt::Acquired(fence) => {
                plain_holds::forget(&self.node.target, keys, token);
                Attempt::Acquired(fence.filter(|_| self.fencing))
            }
            held => {
                recently_contended(self.node, keys, now, true);
                held
            }
        })
    }

    /// An acquire without fencing as one plain command, which costs Redis
    /// less than the script. `GET` returns the previous value: our own token
    /// means a retried send whose first reply was lost, or a caller that
    /// holds it already, so it is ours. None: our own token with the waiters
    /// mark, whose hold may have ended (see `scripts`, "A holder that
    /// dies"): the script decides.
    /// `now`: a time before it is sent (the lock expires no earlier than
    /// that plus its TTL).
    fn attempt_plain(&self, ttl_ms: u64, now: Instant) -> Result<Option<Attempt>> {
        let (keys, token) = (&self.keys, self.token);
        let sent = now;
        let previous: Option<Vec<u8>> = self.node.run(|con| {
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
                recently_contended(self.node, keys, now, true);
                Some(Attempt::Held { pttl_ms: 0 })
            }
        })
    }
}

/// A release granted `token` the lock on `keys` (a waiter, or a reader
/// for whom the read kind waited): whatever `plain_holds` knew of an
/// earlier hold is stale, and the lock is contended.
pub(crate) fn granted(node: &Node, keys: &LockKeys, token: &str) {
    plain_holds::forget(&node.target, keys, token);
    recently_contended(node, keys, Instant::now(), true);
}

/// Whether this process found lock `keys` held within `CONTENDED_FOR`
/// of `now`; `now_held`: it just did (remembered, and true).
fn recently_contended(node: &Node, keys: &LockKeys, now: Instant, now_held: bool) -> bool {
    let dsn = node.target.dsn.as_str();
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
