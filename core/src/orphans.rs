//! Acquires whose outcome is unknown ("orphans"): the command timed out, or
//! the connection broke after it was sent, so the lock may be set under the
//! acquire's token, or a waiter's registration may still be granted it.
//! Rather than leave such a lock held until its TTL, this process releases
//! it, where it is still the token's, once the server answers again: after
//! the next acquire on that server, and at PHP request shutdown for servers
//! it is connected to again.
//!
//! The same registry keeps holds whose release could not be sent (a request
//! end that found the server unavailable, `release_all`), semaphore permits
//! among them, and Redlock's, whose orphans span its masters: those are
//! released only by that deployment's later acquires, which ask every
//! master anyway (see `redlock`).

use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::error::Result;
use crate::keys::LockKeys;
use crate::plain_holds;
use crate::pool::{Pool, Target};
use crate::release::release_kind_on;
use crate::vocab::Kind;

/// Orphans kept for clean-up at most; more than that are left to their TTL.
const MAX_ORPHANS: usize = 1024;
/// Orphans released per clean-up, so that one call after a long outage does
/// not pay for all of them.
const ORPHANS_PER_CLEAN_UP: usize = 16;

/// An acquire whose outcome is unknown, or a hold whose release could not
/// be sent.
pub(crate) struct Orphan {
    /// The deployment it lives on, as [`crate::Locks::server`] names it.
    server: String,
    /// Its one node, where it lives on one: a request end releases it when
    /// the pool is connected there again. None: Redlock's masters.
    target: Option<Target>,
    /// The lock's main key: what `forget` and `clean_up_lock` match on.
    lock: Vec<u8>,
    undo: Undo,
    token: String,
    pid: u32,
    gone_by: Instant,
}

/// How an orphan is released (also how the engine gives back a hold that
/// too few replicas confirmed).
pub(crate) enum Undo {
    /// A lock or a read lock: by the release script of its kind.
    Lock(Kind, LockKeys),
    /// Another kind of hold (a semaphore's permit): its own release, which
    /// answers whether the hold was still there.
    Release(Box<dyn Fn() -> crate::error::Result<bool> + Send>),
    /// Several holds at once (a multi-lock's names), each by its own undo.
    Many(Vec<Undo>),
}

impl Undo {
    /// Releases `token`'s hold now: 1 if it was still set (any of them, for
    /// [`Undo::Many`]), 0 if not. `node`: the pool and node it lives on,
    /// which a lock's release needs (None: Redlock's, spread over masters,
    /// whose undo is a [`Undo::Release`]).
    pub(crate) fn run(&self, node: Option<(&Pool, &Target)>, token: &str) -> Result<i64> {
        match (self, node) {
            (Undo::Lock(kind, keys), Some((pool, target))) => {
                // Released by its script: no longer a plain `SET NX` hold.
                plain_holds::forget(target, keys, token);
                release_kind_on(*kind, &pool.entry(&target.dsn), target, keys, token)
            }
            (Undo::Lock(..), None) => Ok(0), // never made: a lock's undo needs its node
            (Undo::Release(release), _) => release().map(i64::from),
            (Undo::Many(all), node) => {
                // Every one, also after one failed: the first error is kept
                // (the orphan stays for later; releasing twice finds nothing).
                let mut any = 0;
                let mut first_error = None;
                for undo in all {
                    match undo.run(node, token) {
                        Ok(n) => any = any.max(n),
                        Err(err) => {
                            first_error.get_or_insert(err);
                        }
                    }
                }
                first_error.map_or(Ok(any), Err)
            }
        }
    }
}

pub(crate) static ORPHANS: Lazy<Mutex<Vec<Orphan>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_lazy(&ORPHANS) };
}

/// Remembers that `token`'s acquire of the hold whose main key is `lock`,
/// on `target`'s node, may have left it taken (or that its release could
/// not be sent), for at most `ttl`: `undo` releases it once the server
/// answers again, where it is still `token`'s.
pub(crate) fn remember(target: &Target, lock: &[u8], undo: Undo, token: &str, ttl: Duration) {
    push(target.dsn.as_str(), Some(target), lock, undo, token, ttl);
}

/// [`remember`] for a hold spread over several servers (Redlock's masters,
/// `server` naming them): `undo` (a [`Undo::Release`]) answers an error
/// until every one of them has answered its release.
pub(crate) fn remember_spread(server: &str, lock: &[u8], undo: Undo, token: &str, ttl: Duration) {
    push(server, None, lock, undo, token, ttl);
}

fn push(
    server: &str,
    target: Option<&Target>,
    lock: &[u8],
    undo: Undo,
    token: &str,
    ttl: Duration,
) {
    let mut orphans = ORPHANS.lock();
    let now = Instant::now();
    orphans.retain(|o| o.gone_by > now);
    let known = orphans
        .iter()
        .any(|o| o.lock == lock && o.token == token && o.server == server);
    if orphans.len() < MAX_ORPHANS && !known {
        orphans.push(Orphan {
            server: server.to_owned(),
            target: target.cloned(),
            lock: lock.to_vec(),
            undo,
            token: token.to_owned(),
            pid: crate::pid::current(),
            gone_by: now + ttl,
        });
    }
}

/// `token` now holds the hold whose main key is `lock` after all (an
/// acquire with the same token succeeded): its orphan is live again, not to
/// be freed.
pub(crate) fn forget(server: &str, lock: &[u8], token: &str) {
    take(|o| o.server == server && o.lock == lock && o.token == token);
}

/// Releases this process's orphans of the hold whose main key is `lock` on
/// deployment `server` (see [`crate::Locks::server`]); true if one was still set.
pub(crate) fn clean_up_lock(pool: &Pool, server: &str, lock: &[u8]) -> bool {
    let mine = take(|o| o.server == server && o.lock == lock);
    !mine.is_empty() && release(pool, mine) > 0
}

/// Releases this process's orphans on deployment `server` (called once it
/// has answered: a stalled server must not cost a second timeout).
pub(crate) fn clean_up_server(pool: &Pool, server: &str) {
    let _ = release(pool, take(|o| o.server == server));
}

/// Deletes, where they are still set under their token, the locks of
/// acquires whose outcome was unknown, so none stays orphaned until its TTL.
/// Called at PHP request shutdown; only for servers this process is
/// connected to again, so that a request ending while Redis is down does
/// not wait on a connect.
pub fn clean_up_all(pool: &Pool) {
    let _ = release(
        pool,
        take(|o| o.target.as_ref().is_some_and(|t| pool.is_connected(&t.dsn))),
    );
}

/// Removes and returns the orphans `wanted` selects.
fn take(wanted: impl Fn(&Orphan) -> bool) -> Vec<Orphan> {
    let mut orphans = ORPHANS.lock();
    if orphans.is_empty() {
        return Vec::new();
    }
    let (taken, rest) = orphans.drain(..).partition(|o| wanted(o));
    *orphans = rest;
    taken
}

/// Releases `orphans`, a few at most (the rest are kept for later); returns
/// how many were still set and are now deleted.
fn release(pool: &Pool, orphans: Vec<Orphan>) -> usize {
    if orphans.is_empty() {
        return 0; // the common case: no clock read
    }
    let pid = crate::pid::current();
    let now = Instant::now();
    let mut later = Vec::new();
    let mut attempts = 0;
    let mut failed = false;
    let mut deleted = 0;
    for orphan in orphans {
        if orphan.pid != pid || orphan.gone_by <= now {
            continue; // another process's, or expired by itself already
        }
        // After a failure the server is likely still down: keep the rest.
        if failed || attempts == ORPHANS_PER_CLEAN_UP {
            later.push(orphan);
            continue;
        }
        attempts += 1;
        let node = orphan.target.as_ref().map(|target| (pool, target));
        let released = orphan.undo.run(node, &orphan.token);
        match released {
            Ok(1) => deleted += 1,
            Ok(_) => {}
            Err(_) => {
                failed = true;
                later.push(orphan);
            }
        }
    }
    if !later.is_empty() {
        ORPHANS.lock().extend(later);
    }
    deleted
}
