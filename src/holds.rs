//! Locks this process holds, and the acquire/release policy shared by the
//! PHP classes.
//!
//! The registry, not the PHP objects, is the record of what is still held,
//! because objects are not always destroyed: after a fatal error PHP runs no
//! destructors, but request shutdown still empties the registry. An object
//! keeps only the id of its entry. Entries remember the pid that acquired
//! them: after `fork()` the child sees the parent's entries in its copy of
//! memory and must neither release nor report them as its own.
//!
//! With the `watchdog` option, a hold is also given to this process's
//! watchdog (core `watchdog`), which renews it in the background until it
//! leaves the registry here: every path out (release, forget, request end)
//! unwatches it first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext_php_rs::exception::PhpException;
use ext_php_rs::flags::ErrorType;
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use redis_lock_core::release_all::{release_all, release_one, GivenUp, Pending};
use redis_lock_core::watchdog::{self, LockRenewal, WatchId};
use redis_lock_core::{AcquireOutcome, Kind, Locks, Wait};
use rustc_hash::FxHashMap;

use crate::exceptions::from_core;

/// Identifies one hold in the registry.
pub type HoldId = u64;

/// One lock held by this process.
#[derive(Clone)]
pub struct Held {
    /// Who to release it with.
    pub client: Arc<dyn Locks>,
    /// The lock name (without prefix).
    pub name: Vec<u8>,
    /// The owner token it is stored under.
    pub token: String,
    /// A write (exclusive) or a read hold.
    pub kind: Kind,
    /// Its fencing token, when fencing is on.
    pub fence: Option<i64>,
    /// When it was had.
    pub acquired_at: Instant,
    /// Its TTL (the last one set by its owner): how long a release that
    /// could not be sent is remembered for later at most.
    pub ttl: Duration,
    /// Granted without Redis under `on_unavailable = open`: nothing to release.
    pub phantom: bool,
    /// Release at request end (false for a `Lock` made with `$autoRelease = false`).
    pub auto_release: bool,
    /// Its entry in this process's watchdog, when watched.
    pub watch: Option<WatchId>,
    pid: u32,
}

static HELD: Lazy<Mutex<FxHashMap<HoldId, Held>>> = Lazy::new(Mutex::default);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The servers this request gave up releasing to (destructors and request
/// end; see core `release_all`); forgotten at request end.
static GIVEN_UP: Lazy<Mutex<GivenUp>> = Lazy::new(Mutex::default);
/// Whether this request has already warned that it runs without locks.
static WARNED_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// What an acquire came to.
pub enum Acquired {
    /// Held, under this id.
    Yes(HoldId),
    /// Held by someone else; the caller did not wait.
    Conflicted,
    /// Held by someone else for the whole bounded wait.
    TimedOut,
}

/// The acquire/release policy of one configured object.
pub struct Locker {
    /// Lock operations on the configured server.
    pub client: Arc<dyn Locks>,
    /// TTL when the caller passes none.
    pub default_ttl: Duration,
    /// `on_unavailable = open`.
    pub fail_open: bool,
    /// `watchdog` on: holds are renewed in the background for at most this
    /// long after they were acquired (`watchdog_max`). None: off.
    pub watchdog_max: Option<Duration>,
}

impl Locker {
    /// Acquires `name` for `token`, registering the hold.
    ///
    /// With `fail_open`, Redis being unreachable grants a phantom hold and
    /// raises one E_WARNING per request; otherwise it is a `ConnectionException`.
    pub fn acquire(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
        auto_release: bool,
    ) -> Result<Acquired, PhpException> {
        self.acquire_kind(Kind::Exclusive, name, token, ttl, wait, auto_release)
    }

    /// [`Locker::acquire`] of a write (exclusive) or a read lock.
    pub fn acquire_kind(
        &self,
        kind: Kind,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
        auto_release: bool,
    ) -> Result<Acquired, PhpException> {
        let outcome = match kind {
            Kind::Exclusive => self.client.acquire(name, token, ttl, wait),
            Kind::Shared => self.client.acquire_read(name, token, ttl, wait),
        };
        let (fence, acquired_at, phantom) = match outcome {
            Ok(AcquireOutcome::Acquired(hold)) => (hold.fence, hold.acquired_at, false),
            Ok(AcquireOutcome::Conflicted) => return Ok(Acquired::Conflicted),
            Ok(AcquireOutcome::TimedOut) => return Ok(Acquired::TimedOut),
            Err(err) if self.fail_open && err.is_unavailable() => {
                warn_unavailable(&err);
                (None, Instant::now(), true)
            }
            Err(err) => return Err(from_core(&err)),
        };
        let watch = match self.watchdog_max {
            Some(max) if !phantom => match self.watch(kind, name, token, ttl, max, acquired_at) {
                Ok(watch) => Some(watch),
                Err(err) => {
                    // The caller asked for a renewed lock and cannot have one:
                    // give it back rather than hold it unrenewed.
                    let _ = release_kind(&*self.client, kind, name, token, None);
                    return Err(from_core(&err));
                }
            },
            _ => None,
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let held = Held {
            client: Arc::clone(&self.client),
            name: name.to_vec(),
            token: token.to_owned(),
            kind,
            fence,
            acquired_at,
            ttl,
            phantom,
            auto_release,
            watch,
            pid: redis_lock_core::pid::current(),
        };
        HELD.lock().insert(id, held);
        Ok(Acquired::Yes(id))
    }
}

impl Locker {
    /// Gives the `kind` lock `name` of `token` to this process's watchdog.
    fn watch(
        &self,
        kind: Kind,
        name: &[u8],
        token: &str,
        ttl: Duration,
        max: Duration,
        acquired_at: Instant,
    ) -> Result<WatchId, redis_lock_core::Error> {
        let dog = watchdog::for_this_process();
        let renewal = LockRenewal::new(
            self.client.on_pool(dog.pool()),
            kind,
            name.to_vec(),
            token.to_owned(),
        );
        dog.watch(Arc::new(renewal), ttl, max, acquired_at)
    }
}

/// The hold `id` is about to get a new TTL (its owner refreshes or extends
/// it): the watchdog renews to that from now on. Call before the refresh
/// (see `Watchdog::retime`).
pub fn retime(id: HoldId, ttl: Duration) {
    let watch = {
        let mut held = HELD.lock();
        let held = held
            .get_mut(&id)
            .filter(|h| h.pid == redis_lock_core::pid::current());
        held.and_then(|h| {
            h.ttl = ttl;
            h.watch
        })
    };
    if let (Some(watch), Some(dog)) = (watch, watchdog::existing()) {
        dog.retime(watch, ttl);
    }
}

/// The hold `id`, if this process still has it.
pub fn get(id: HoldId) -> Option<Held> {
    HELD.lock()
        .get(&id)
        .filter(|h| h.pid == redis_lock_core::pid::current())
        .cloned()
}

/// Releases hold `id`: true only if this process still owned the lock.
pub fn release(id: HoldId) -> Result<bool, PhpException> {
    release_core(id).map_err(|e| from_core(&e))
}

/// [`release`] with the core error, for callers that report it themselves.
pub fn release_core(id: HoldId) -> Result<bool, redis_lock_core::Error> {
    match take(id) {
        Some(held) => release_held(&held),
        None => Ok(false),
    }
}

/// Releases hold `id` from a destructor: errors are swallowed, there is no
/// one to throw them to. A server found unavailable is given up for the
/// rest of the request (destructors and request end): what cannot be sent
/// is remembered and released once the server answers again.
pub fn release_quietly(id: HoldId) {
    if let Some(held) = take(id) {
        if !held.phantom {
            release_one(pending(&held), &mut GIVEN_UP.lock());
        }
    }
}

fn pending(held: &Held) -> Pending<'_> {
    Pending {
        client: &*held.client,
        kind: held.kind,
        name: &held.name,
        token: &held.token,
        ttl: held.ttl,
        acquired_at: Some(held.acquired_at),
    }
}

/// Forgets hold `id` without touching Redis (the lock was found gone).
pub fn forget(id: HoldId) {
    let _ = take(id);
}

/// Request shutdown: releases this process's auto-release holds and forgets
/// the rest (holds inherited from a parent, and `autoRelease = false` locks,
/// whose objects die with the request).
///
/// A server that fails as unavailable is given up after its first failed
/// release: its other holds are remembered and released once it answers
/// again (core `release_all`), so a stalled Redis costs a request end one
/// `timeout`, not one per hold.
pub fn end_request() {
    let drained: Vec<Held> = HELD.lock().drain().map(|(_, h)| h).collect();
    let pid = redis_lock_core::pid::current();
    let mine: Vec<&Held> = drained.iter().filter(|h| h.pid == pid).collect();
    // Also the holds kept past their objects (`autoRelease = false`): no
    // one is left in this process to release them, so they are not renewed
    // past the request either.
    for held in &mine {
        unwatch(held);
    }
    let mut given_up = GIVEN_UP.lock();
    release_all(
        mine.iter()
            .filter(|h| h.auto_release && !h.phantom)
            .map(|h| pending(h)),
        &mut given_up,
    );
    given_up.clear();
    WARNED_UNAVAILABLE.store(false, Ordering::Relaxed);
}

fn take(id: HoldId) -> Option<Held> {
    let mut map = HELD.lock();
    if map.get(&id)?.pid != redis_lock_core::pid::current() {
        return None; // the parent's, seen through fork()
    }
    let held = map.remove(&id)?;
    drop(map);
    unwatch(&held);
    Some(held)
}

/// Stops the watchdog renewing `held` (before it is released or forgotten).
fn unwatch(held: &Held) {
    if let (Some(watch), Some(dog)) = (held.watch, watchdog::existing()) {
        dog.unwatch(watch);
    }
}

fn release_held(held: &Held) -> Result<bool, redis_lock_core::Error> {
    if held.phantom {
        return Ok(true);
    }
    release_kind(
        &*held.client,
        held.kind,
        &held.name,
        &held.token,
        Some(held.acquired_at),
    )
}

/// Releases a write or a read hold.
pub fn release_kind(
    client: &dyn Locks,
    kind: Kind,
    name: &[u8],
    token: &str,
    acquired_at: Option<Instant>,
) -> Result<bool, redis_lock_core::Error> {
    match kind {
        Kind::Exclusive => client.release(name, token, acquired_at),
        Kind::Shared => client.release_read(name, token, acquired_at),
    }
}

fn warn_unavailable(err: &redis_lock_core::Error) {
    if !WARNED_UNAVAILABLE.swap(true, Ordering::Relaxed) {
        ext_php_rs::error::php_error(
            &ErrorType::Warning,
            &format!("redis_lock: {err}; on_unavailable=open, so locks are granted without Redis while it is unreachable (warned once per request)"),
        );
    }
}
