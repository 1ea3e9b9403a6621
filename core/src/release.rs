//! The release of a lock this process took by a plain `SET NX` (see
//! `plain_holds` and `scripts`, "The waiters mark"): what an uncontended
//! cycle costs Redis is mostly here.
//!
//! Where the server has a native compare-and-delete (Valkey 9's `DELIFEQ`,
//! Redis 8.4's `DELEX key IFEQ value`) the release is that one command. It
//! misses when a waiter marked the lock (or the lock is not ours any more),
//! and [`scripts::RELEASE`] then runs and grants the lock to the waiter.
//! Elsewhere [`scripts::PLAIN_RELEASE`] runs: a GET and a DEL, like the
//! classic compare-and-delete; it answers -1 for a marked lock, and
//! [`scripts::RELEASE`] then runs. Not used on a cluster: there waiters do
//! not mark the lock (a release during a slot migration must be refused
//! before anything changed, which the one release script does), and every
//! release is [`scripts::RELEASE`].
//!
//! Which command a server has is found out on its first such release and
//! kept with its connection (`PoolEntry`): a server that answers "unknown command" is served by the
//! script from then on; any other error (LOADING, READONLY, …) is the
//! caller's and changes nothing.
//!
//! # Re-sends
//! Neither path stores its answer (that would cost a write per release). A
//! re-send (the pool sends again after a broken connection, which may be
//! after Redis ran the first send) that finds the lock no longer ours cannot
//! tell from Redis whether the first send freed it or the lock had expired
//! before. The client can: the lock was taken by this process and could not
//! have expired before the time `plain_holds` keeps, so before then the
//! first send is what freed it. (A force release by someone else in the
//! same instant as the broken reply would be reported as ours.) A re-send
//! never acts twice: it finds the lock gone or someone else's.

use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::packed::Packed;
use crate::pool::{PoolEntry, Target};
use crate::scripts;
use crate::token::new_token;
use crate::vocab::{millis, Kind};

/// The compare-and-delete a server offers (kept in its `ServerFacts` as
/// the discriminant; 0 there: not known yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Native {
    /// Valkey 9: `DELIFEQ key value`.
    DelIfEq = 1,
    /// Redis 8.4: `DELEX key IFEQ value`.
    DelEx = 2,
    /// Neither: the script `PLAIN_RELEASE`.
    Script = 3,
}

impl Native {
    fn from_u8(found: u8) -> Option<Native> {
        match found {
            1 => Some(Native::DelIfEq),
            2 => Some(Native::DelEx),
            3 => Some(Native::Script),
            _ => None,
        }
    }
}

/// Releases `token`'s plainly taken lock: true if it held it (now freed or
/// granted on). `expires`: when the lock expires at the earliest.
pub fn plain(
    entry: &PoolEntry,
    target: &Target,
    keys: &LockKeys,
    token: &str,
    expires: Instant,
) -> Result<bool> {
    let found = &entry.server.native_delete;
    let known = Native::from_u8(found.load(Ordering::Relaxed));
    // Not known yet: the newest first, the script last.
    let mut trying = known.unwrap_or(Native::DelIfEq);
    let mut resent = false;
    let deleted = loop {
        match send(entry, target, keys, token, trying, &mut resent) {
            Ok(deleted) => {
                if known != Some(trying) {
                    found.store(trying as u8, Ordering::Relaxed);
                }
                break deleted;
            }
            // Only a server that does not have the command moves on (one
            // known to have had it was replaced by an older one behind the
            // same DSN: the script from now on).
            Err(Error::Server { code, detail, .. })
                if trying != Native::Script && is_unknown_command(&code, &detail) =>
            {
                trying = match (known, trying) {
                    (None, Native::DelIfEq) => Native::DelEx,
                    _ => Native::Script,
                };
            }
            Err(err) => return Err(err),
        }
    };
    if deleted == 1 {
        return Ok(true);
    }
    // Missed. PLAIN_RELEASE says whether the lock is ours and marked; a
    // native delete does not, and RELEASE (with its own call marker) tells.
    let maybe_marked = deleted == -1 || trying != Native::Script;
    if maybe_marked && release_on(entry, target, keys, token)? == 1 {
        return Ok(true);
    }
    // A re-send that found the lock gone while it could not yet have
    // expired: the first send freed it.
    Ok(resent && Instant::now() < expires)
}

/// One send of the plain release; `resent` is set when the pool sent it
/// twice. 1 if it deleted the lock, -1 if the lock is ours with the waiters
/// mark (`PLAIN_RELEASE` only), else 0.
fn send(
    entry: &PoolEntry,
    target: &Target,
    keys: &LockKeys,
    token: &str,
    native: Native,
    resent: &mut bool,
) -> Result<i64> {
    let mut sends = 0;
    let result = entry.run(target, target.timeout, |con| {
        sends += 1;
        match native {
            Native::DelIfEq => Packed::cmd("DELIFEQ", keys.lock.len() + token.len())
                .arg(&keys.lock)
                .arg(token)
                .query(con),
            Native::DelEx => Packed::cmd("DELEX", keys.lock.len() + token.len() + 4)
                .arg(&keys.lock)
                .arg("IFEQ")
                .arg(token)
                .query(con),
            Native::Script => scripts::PLAIN_RELEASE
                .key(&keys.lock)
                .arg(token)
                .invoke(con),
        }
    });
    *resent |= sends > 1;
    result
}

/// An error saying the server does not have the command (or, for DELEX on a
/// server with an older DELEX, not its IFEQ form).
fn is_unknown_command(code: &str, detail: &str) -> bool {
    code == "ERR"
        && (detail.contains("unknown command")
            || detail.contains("syntax error")
            || detail.contains("wrong number of arguments"))
}

/// Runs the release script for `token` (a caller's own release, or an
/// orphan's): 1 if it held the lock, which is now freed or granted on.
///
/// The call id is drawn once, so a re-send by the pool is recognised as the
/// same call (see `scripts`, "Safe to run twice").
pub(crate) fn release_on(
    entry: &PoolEntry,
    target: &Target,
    keys: &LockKeys,
    token: &str,
) -> Result<i64> {
    let mut release = release_script(keys, token, target);
    entry.run(target, target.timeout, |con| release.invoke(con))
}

/// One call of the release script for `token` on `target`, with its own
/// call id (drawn here, once: a re-send of it is the same call).
pub(crate) fn release_script(
    keys: &LockKeys,
    token: &str,
    target: &Target,
) -> scripts::Invocation<'static> {
    scripts::RELEASE
        .key(&keys.lock)
        .key(keys.fence())
        .key(keys.waiters())
        .key(keys.queue())
        .key(keys.call(&new_token()))
        .arg(token)
        .arg(resend_window_ms(target))
}

/// One call of the force-release script on `target`, with its own call id
/// (drawn here, once: a re-send of it is the same call).
pub(crate) fn force_release_script(
    keys: &LockKeys,
    target: &Target,
) -> scripts::Invocation<'static> {
    scripts::FORCE_RELEASE
        .key(&keys.lock)
        .key(keys.fence())
        .key(keys.waiters())
        .key(keys.queue())
        .key(keys.call(&new_token()))
        .arg(resend_window_ms(target))
}

/// Runs the release script of a `kind` hold for `token` (see [`release_on`]).
pub(crate) fn release_kind_on(
    kind: Kind,
    entry: &PoolEntry,
    target: &Target,
    keys: &LockKeys,
    token: &str,
) -> Result<i64> {
    match kind {
        Kind::Exclusive => release_on(entry, target, keys, token),
        Kind::Shared => release_read_on(entry, target, keys, token),
    }
}

/// Runs the read-release script for `token` (a caller's own release, or an
/// orphan's): 1 if it was a reader. The call id is drawn once, so a re-send
/// by the pool is the same call.
pub(crate) fn release_read_on(
    entry: &PoolEntry,
    target: &Target,
    keys: &LockKeys,
    token: &str,
) -> Result<i64> {
    let marker = keys.call(&new_token());
    let window = resend_window_ms(target);
    entry.run(target, target.timeout, |con| {
        scripts::RELEASE_READ
            .key(&keys.lock)
            .key(keys.fence())
            .key(keys.waiters())
            .key(keys.queue())
            .key(&marker)
            .key(keys.readers())
            .arg(token)
            .arg(window)
            .invoke(con)
    })
}

/// How long after a call its re-send can still arrive: the pool re-sends at
/// once after a broken reply (seen within `timeout`), on a new connection
/// (made within `connect_timeout`); a second of margin on top.
pub(crate) fn resend_window_ms(target: &Target) -> u64 {
    millis(target.timeout + target.connect_timeout + Duration::from_secs(1))
}
