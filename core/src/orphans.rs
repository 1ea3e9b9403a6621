//! Acquires whose outcome is unknown ("orphans"): the command timed out, or
//! the connection broke after it was sent, so the lock may be set under the
//! acquire's token, or a waiter's registration may still be granted it.
//! Rather than leave such a lock held until its TTL, this process releases
//! it, where it is still the token's, once the server answers again: after
//! the next acquire on that server, and at PHP request shutdown for servers
//! it is connected to again.
//!
//! Redlock keeps its own list (see `redlock`): its orphans span masters.

use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::client::{release_kind_on, Kind};
use crate::keys::LockKeys;
use crate::pool::{Pool, Target};

/// Orphans kept for clean-up at most; more than that are left to their TTL.
const MAX_ORPHANS: usize = 1024;
/// Orphans released per clean-up, so that one call after a long outage does
/// not pay for all of them.
const ORPHANS_PER_CLEAN_UP: usize = 16;

/// An acquire whose outcome is unknown.
struct Orphan {
    target: Target,
    keys: LockKeys,
    kind: Kind,
    token: String,
    pid: u32,
    gone_by: Instant,
}

static ORPHANS: Lazy<Mutex<Vec<Orphan>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// Remembers that `token`'s acquire of a `kind` hold on `keys` may have left
/// the lock set, for at most `ttl`.
pub(crate) fn remember(target: &Target, kind: Kind, keys: LockKeys, token: &str, ttl: Duration) {
    let mut orphans = ORPHANS.lock();
    let now = Instant::now();
    orphans.retain(|o| o.gone_by > now);
    if orphans.len() < MAX_ORPHANS {
        orphans.push(Orphan {
            target: target.clone(),
            keys,
            kind,
            token: token.to_owned(),
            pid: crate::pid::current(),
            gone_by: now + ttl,
        });
    }
}

/// `token` now holds lock `keys` after all (an acquire with the same token
/// succeeded): its orphan is live again, not to be freed.
pub(crate) fn forget(target: &Target, keys: &LockKeys, token: &str) {
    let dsn = target.dsn.as_str();
    take(|o| o.target.dsn.as_str() == dsn && o.keys.lock == keys.lock && o.token == token);
}

/// Releases this process's orphans on lock `keys` of `target`'s server;
/// true if one was still set.
pub(crate) fn clean_up_lock(pool: &Pool, target: &Target, keys: &LockKeys) -> bool {
    let dsn = target.dsn.as_str();
    let mine = take(|o| o.target.dsn.as_str() == dsn && o.keys.lock == keys.lock);
    !mine.is_empty() && release(pool, mine) > 0
}

/// Releases this process's orphans on `target`'s server (called once the
/// server has answered: a stalled server must not cost a second timeout).
pub(crate) fn clean_up_server(pool: &Pool, target: &Target) {
    let dsn = target.dsn.as_str();
    let _ = release(pool, take(|o| o.target.dsn.as_str() == dsn));
}

/// Deletes, where they are still set under their token, the locks of
/// acquires whose outcome was unknown, so none stays orphaned until its TTL.
/// Called at PHP request shutdown; only for servers this process is
/// connected to again, so that a request ending while Redis is down does
/// not wait on a connect.
pub fn clean_up_all(pool: &Pool) {
    let _ = release(pool, take(|o| pool.is_connected(&o.target.dsn)));
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
        match release_kind_on(
            orphan.kind,
            &pool.entry(&orphan.target.dsn),
            &orphan.target,
            &orphan.keys,
            &orphan.token,
        ) {
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
