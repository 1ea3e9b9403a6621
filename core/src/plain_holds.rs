//! This process's locks taken by a plain `SET NX`, released the cheap way
//! (see `release`). Every other hold (granted to a waiter, taken by the
//! acquire script, resumed from an owner token by another process) is
//! released by the release script, which stores its answer for a re-send.
//!
//! The record keeps when the lock expires at the earliest (the time the
//! acquire or the last refresh was sent plus its TTL; the server starts the
//! TTL later), which tells what a re-sent release's "not ours any more"
//! means (see `release`, "Re-sends").

use std::time::Instant;

use foldhash::HashMap;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::keys::LockKeys;
use crate::pool::Target;

/// Records kept at most; more holds than that (or holds never released and
/// long expired) are released through the script, which is always right.
const MAX_RECORDS: usize = 4096;

/// The DSN, the owner token and the lock key, as one byte string (one
/// allocation per look-up; the two lengths keep it unambiguous).
type Key = Vec<u8>;

pub(crate) static HOLDS: Lazy<Mutex<HashMap<Key, Instant>>> = Lazy::new(Mutex::default);

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_lazy(&HOLDS) };
}

fn key(target: &Target, keys: &LockKeys, token: &str) -> Key {
    let dsn = target.dsn.as_str().as_bytes();
    let mut key = Vec::with_capacity(16 + dsn.len() + token.len() + keys.lock.len());
    key.extend_from_slice(&(dsn.len() as u64).to_le_bytes());
    key.extend_from_slice(dsn);
    key.extend_from_slice(&(token.len() as u64).to_le_bytes());
    key.extend_from_slice(token.as_bytes());
    key.extend_from_slice(&keys.lock);
    key
}

/// Records that `token` took the lock by a plain `SET NX`, which then
/// expires no earlier than `expires`.
pub fn remember(target: &Target, keys: &LockKeys, token: &str, expires: Instant) {
    let mut holds = HOLDS.lock();
    if holds.len() >= MAX_RECORDS {
        let now = Instant::now();
        holds.retain(|_, e| *e > now);
        if holds.len() >= MAX_RECORDS {
            return;
        }
    }
    holds.insert(key(target, keys, token), expires);
}

/// `token` holds the lock by other means now (a grant, the acquire script).
pub fn forget(target: &Target, keys: &LockKeys, token: &str) {
    let mut holds = HOLDS.lock();
    if !holds.is_empty() {
        holds.remove(&key(target, keys, token));
    }
}

/// A refresh of `token`'s hold succeeded: it expires no earlier than `expires`.
pub fn extend(target: &Target, keys: &LockKeys, token: &str, expires: Instant) {
    if let Some(e) = HOLDS.lock().get_mut(&key(target, keys, token)) {
        *e = expires;
    }
}

/// Removes and returns the record of `token`'s plain hold, if there is one.
pub fn take(target: &Target, keys: &LockKeys, token: &str) -> Option<Instant> {
    let mut holds = HOLDS.lock();
    if holds.is_empty() {
        return None;
    }
    holds.remove(&key(target, keys, token))
}
