//! The holds of a request: what is held, how it was had, and what a request
//! end releases, with the fail-open and watchdog policy, apart from PHP (the
//! PHP layer keeps one [`Session`], [`Session::process`], and a [`Handle`]
//! per object).
//!
//! The registry, not the objects, is the record of what is still held,
//! because objects are not always destroyed: after a fatal error PHP runs no
//! destructors, but request shutdown still ends the session. An object keeps
//! only a [`Handle`], which names its entry. Entries remember the pid that
//! acquired them: after `fork()` the child sees the parent's entries in its
//! copy of memory and must neither release nor report them as its own.
//!
//! With the `watchdog` option, a hold is also given to this process's
//! watchdog, which renews it in the background until it leaves the
//! registry: every path out (release, forget, request end) unwatches it
//! first.
//!
//! With `fail_open` (`on_unavailable = open`), an acquire that finds Redis
//! unreachable is granted a phantom hold (nothing to release), and the first
//! such grant of a request leaves a notice for the caller to report
//! ([`Session::take_open_notice`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::locks::Locks;
use crate::release_all::{release_all, release_one, GivenUp, Pending, Released};
use crate::vocab::{AcquireOutcome, Kind, Ownership, Wait};
use crate::watchdog::{self, LockRenewal, WatchId};

/// Identifies one hold in a session.
pub type HoldId = u64;

/// One hold of this process.
#[derive(Clone)]
pub struct Held {
    /// Who to release it with.
    pub client: Arc<dyn Locks>,
    /// The lock name (without prefix; a multi-lock's encoded names).
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
    /// Granted without Redis under `fail_open`: nothing to release.
    pub phantom: bool,
    /// Released at request end (false for a `Lock` made with `$autoRelease = false`).
    pub auto_release: bool,
    /// Its entry in this process's watchdog, when watched.
    pub watch: Option<WatchId>,
    pid: u32,
}

impl Held {
    fn pending(&self) -> Pending<'_> {
        Pending {
            client: &*self.client,
            kind: self.kind,
            name: &self.name,
            token: &self.token,
            ttl: self.ttl,
            acquired_at: Some(self.acquired_at),
        }
    }

    /// Stops the watchdog renewing it (before it is released or forgotten).
    fn unwatch(&self) {
        if let (Some(watch), Some(dog)) = (self.watch, watchdog::existing()) {
            dog.unwatch(watch);
        }
    }
}

/// How one configured object acquires: its deployment and its policy.
pub struct Locker {
    /// Lock operations on the configured deployment.
    pub client: Arc<dyn Locks>,
    /// TTL when the caller passes none.
    pub default_ttl: Duration,
    /// `on_unavailable = open`: Redis unreachable grants a phantom hold.
    pub fail_open: bool,
    /// Which holds the watchdog renews.
    pub watchdog: Watchdog,
}

/// Which holds the watchdog renews in the background, and for how long at
/// most after they were acquired (`watchdog_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watchdog {
    /// None (`watchdog => false`).
    Off,
    /// Those taken without a TTL of their own, which live the default TTL
    /// past their holder's last renewal (`watchdog => 'auto'`, the
    /// default: Redisson's model for a lock without a lease time).
    TtlLess(Duration),
    /// Every hold (`watchdog => true`).
    Every(Duration),
}

impl Watchdog {
    /// For how long a hold is renewed, if at all: one whose TTL was given
    /// (`ttl_given`) or not.
    pub fn renews(self, ttl_given: bool) -> Option<Duration> {
        match self {
            Watchdog::Every(max) => Some(max),
            Watchdog::TtlLess(max) if !ttl_given => Some(max),
            Watchdog::TtlLess(_) | Watchdog::Off => None,
        }
    }
}

/// What an acquire came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// Held, under this id.
    Yes(HoldId),
    /// Held by someone else; the caller did not wait.
    Conflicted,
    /// Held by someone else for the whole bounded wait.
    TimedOut,
}

/// The holds of one request (PHP: of the process, one request at a time).
#[derive(Default)]
pub struct Session {
    held: Mutex<HashMap<HoldId, Held>>,
    next_id: AtomicU64,
    /// The servers this request gave up releasing to (see `release_all`).
    given_up: Mutex<GivenUp>,
    /// Whether this request has been granted a phantom hold yet, and the
    /// notice of the first, until the caller takes it.
    open: Mutex<(bool, Option<Error>)>,
}

static PROCESS: Lazy<Session> = Lazy::new(Session::new);

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// This process's session: the PHP layer's, which serves one request
    /// at a time.
    pub fn process() -> &'static Session {
        &PROCESS
    }

    /// Acquires `kind` of `name` for `token` as `locker` says, registering
    /// the hold. Errors are faults; a fault that finds Redis unavailable,
    /// under `fail_open`, is a phantom hold instead.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        locker: &Locker,
        kind: Kind,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
        auto_release: bool,
        renew_for: Option<Duration>,
    ) -> Result<Acquired> {
        let outcome = match kind {
            Kind::Exclusive => locker.client.acquire(name, token, ttl, wait),
            Kind::Shared => locker.client.acquire_read(name, token, ttl, wait),
        };
        let (fence, acquired_at, phantom) = match outcome {
            Ok(AcquireOutcome::Acquired(hold)) => (hold.fence, hold.acquired_at, false),
            Ok(AcquireOutcome::Conflicted) => return Ok(Acquired::Conflicted),
            Ok(AcquireOutcome::TimedOut) => return Ok(Acquired::TimedOut),
            Err(err) if locker.fail_open && err.is_unavailable() => {
                crate::stats::Stats::global().lock().record_open_grant();
                let mut open = self.open.lock();
                if !std::mem::replace(&mut open.0, true) {
                    open.1 = Some(err);
                }
                (None, Instant::now(), true)
            }
            Err(err) => return Err(err),
        };
        let watch = match renew_for {
            Some(max) if !phantom => {
                match watch(locker, kind, name, token, ttl, max, acquired_at) {
                    Ok(watch) => Some(watch),
                    Err(err) => {
                        // The caller asked for a renewed lock and cannot have
                        // one: give it back rather than hold it unrenewed.
                        let _ = release_kind(&*locker.client, kind, name, token, None);
                        return Err(err);
                    }
                }
            }
            _ => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let held = Held {
            client: Arc::clone(&locker.client),
            name: name.to_vec(),
            token: token.to_owned(),
            kind,
            fence,
            acquired_at,
            ttl,
            phantom,
            auto_release,
            watch,
            pid: crate::pid::current(),
        };
        self.held.lock().insert(id, held);
        Ok(Acquired::Yes(id))
    }

    /// The first phantom hold of this request's cause, once: the caller
    /// reports it (PHP: one E_WARNING per request).
    pub fn take_open_notice(&self) -> Option<Error> {
        self.open.lock().1.take()
    }

    /// Hold `id` is about to get a new TTL (its owner refreshes or extends
    /// it): the watchdog renews to that from now on. Call before the
    /// refresh (see `Watchdog::retime`).
    pub fn retime(&self, id: HoldId, ttl: Duration) {
        let watch = {
            let mut held = self.held.lock();
            let held = held.get_mut(&id).filter(|h| h.pid == crate::pid::current());
            held.and_then(|h| {
                h.ttl = ttl;
                h.watch
            })
        };
        if let (Some(watch), Some(dog)) = (watch, watchdog::existing()) {
            dog.retime(watch, ttl);
        }
    }

    /// Hold `id`, if this process still has it.
    pub fn get(&self, id: HoldId) -> Option<Held> {
        self.held
            .lock()
            .get(&id)
            .filter(|h| h.pid == crate::pid::current())
            .cloned()
    }

    /// This process's hold of `token` on lock `name` on `server` (see
    /// [`crate::Locks::server`]), other than `except`: what a handle made
    /// for the same owner token (`restoreLock()`: Symfony's store makes one
    /// per call) holds.
    pub fn find(
        &self,
        server: &str,
        name: &[u8],
        token: &str,
        except: Option<HoldId>,
    ) -> Option<HoldId> {
        let pid = crate::pid::current();
        self.held
            .lock()
            .iter()
            .find(|(id, h)| {
                Some(**id) != except
                    && h.pid == pid
                    && h.token == token
                    && h.name == name
                    && h.client.server() == server
            })
            .map(|(id, _)| *id)
    }

    /// Releases hold `id`: true only if this process still owned it.
    pub fn release(&self, id: HoldId) -> Result<bool> {
        match self.take(id) {
            Some(held) if held.phantom => Ok(true),
            Some(held) => release_kind(
                &*held.client,
                held.kind,
                &held.name,
                &held.token,
                Some(held.acquired_at),
            ),
            None => Ok(false),
        }
    }

    /// Releases hold `id` with no one to report to (a destructor): a server
    /// found unavailable is given up for the rest of the request, and what
    /// cannot be sent is released once it answers again.
    pub fn release_quietly(&self, id: HoldId) {
        if let Some(held) = self.take(id) {
            if !held.phantom {
                release_one(held.pending(), &mut self.given_up.lock());
            }
        }
    }

    /// Forgets hold `id` without touching Redis (it was found gone, or
    /// replaced by a new hold of the same owner).
    pub fn forget(&self, id: HoldId) {
        let _ = self.take(id);
    }

    /// The request ends: releases this process's auto-release holds and
    /// forgets the rest (holds inherited from a parent, and holds kept past
    /// their objects, whose objects die with the request).
    ///
    /// A server that fails as unavailable is given up after its first
    /// failed release: its other holds are remembered and released once it
    /// answers again (`release_all`), so a stalled Redis costs a request end
    /// one `timeout`, not one per hold.
    pub fn end_request(&self) -> Released {
        let drained: Vec<Held> = self.held.lock().drain().map(|(_, h)| h).collect();
        let pid = crate::pid::current();
        let mine: Vec<&Held> = drained.iter().filter(|h| h.pid == pid).collect();
        // Also the holds kept past their objects: no one is left in this
        // process to release them, so they are not renewed past the request.
        for held in &mine {
            held.unwatch();
        }
        let mut given_up = self.given_up.lock();
        let released = release_all(
            mine.iter()
                .filter(|h| h.auto_release && !h.phantom)
                .map(|h| h.pending()),
            &mut given_up,
        );
        given_up.clear();
        *self.open.lock() = (false, None);
        released
    }

    fn take(&self, id: HoldId) -> Option<Held> {
        let mut map = self.held.lock();
        if map.get(&id)?.pid != crate::pid::current() {
            return None; // the parent's, seen through fork()
        }
        let held = map.remove(&id)?;
        drop(map);
        held.unwatch();
        Some(held)
    }
}

/// Gives the `kind` lock `name` of `token` to this process's watchdog.
fn watch(
    locker: &Locker,
    kind: Kind,
    name: &[u8],
    token: &str,
    ttl: Duration,
    max: Duration,
    acquired_at: Instant,
) -> Result<WatchId> {
    let dog = watchdog::for_this_process();
    let renewal = LockRenewal::new(
        locker.client.on_pool(dog.pool()),
        kind,
        name.to_vec(),
        token.to_owned(),
    );
    dog.watch(Arc::new(renewal), ttl, max, acquired_at)
}

/// Releases a write or a read hold.
pub fn release_kind(
    client: &dyn Locks,
    kind: Kind,
    name: &[u8],
    token: &str,
    acquired_at: Option<Instant>,
) -> Result<bool> {
    match kind {
        Kind::Exclusive => client.release(name, token, acquired_at),
        Kind::Shared => client.release_read(name, token, acquired_at),
    }
}

/// One object's hold: a `Lock`, a `MultiLock`, a `Semaphore`, one key of a
/// `RedisMutex`. It names its entry in the session; what it holds is the
/// session's to say.
///
/// A handle made for an owner token this process did not acquire with (a
/// restored lock) has no entry: it acts on whatever that token holds, of
/// either kind.
pub struct Handle {
    locker: Arc<Locker>,
    name: Vec<u8>,
    token: String,
    ttl: Mutex<Duration>,
    /// For how long after an acquire the watchdog renews its hold (None:
    /// not renewed): see [`Watchdog::renews`].
    renew_for: Option<Duration>,
    auto_release: bool,
    hold: Mutex<Option<HoldId>>,
    /// The process that made it: a `fork()` child has a copy, whose
    /// parent's hold it must not release by the owner token they share.
    pid: u32,
}

impl Handle {
    /// A handle for `name` (a multi-lock's encoded names) under `token`;
    /// nothing is sent yet.
    ///
    /// `ttl` None: the locker's default TTL, and renewed by the watchdog
    /// under [`Watchdog::TtlLess`] (as under [`Watchdog::Every`]).
    pub fn new(
        locker: Arc<Locker>,
        name: Vec<u8>,
        token: String,
        ttl: Option<Duration>,
        auto_release: bool,
    ) -> Handle {
        let renew_for = locker.watchdog.renews(ttl.is_some());
        Handle {
            ttl: Mutex::new(ttl.unwrap_or(locker.default_ttl)),
            renew_for,
            locker,
            name,
            token,
            auto_release,
            hold: Mutex::new(None),
            pid: crate::pid::current(),
        }
    }

    /// The lock name as it is stored.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The owner token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The TTL the next acquire or refresh without one uses.
    pub fn ttl(&self) -> Duration {
        *self.ttl.lock()
    }

    /// How this handle acquires.
    pub fn locker(&self) -> &Locker {
        &self.locker
    }

    /// Its entry in the session, if it has one.
    pub fn hold_id(&self) -> Option<HoldId> {
        *self.hold.lock()
    }

    /// Takes `kind`. An owner that holds already renews its hold, or (the
    /// other kind of a read lock) is promoted or demoted by the same call
    /// in Redis: one hold either way, the new one.
    pub fn take(&self, session: &Session, kind: Kind, wait: Wait) -> Result<bool> {
        let ttl = self.ttl();
        match session.acquire(
            &self.locker,
            kind,
            &self.name,
            &self.token,
            ttl,
            wait,
            self.auto_release,
            self.renew_for,
        )? {
            Acquired::Yes(id) => {
                // The owner's earlier hold, through this handle or another
                // one for the same token: replaced by this one.
                let old = self.hold.lock().replace(id);
                if let Some(old) = old.or_else(|| self.find_in(session, Some(id))) {
                    session.forget(old);
                }
                Ok(true)
            }
            Acquired::Conflicted | Acquired::TimedOut => Ok(false),
        }
    }

    /// What the session holds for this handle now: its own entry, else
    /// the one of another handle for the same owner token.
    pub fn held(&self, session: &Session) -> Option<Held> {
        session.get(self.entry(session)?)
    }

    /// Its entry in `session`, else the entry of another handle for the
    /// same owner token (see [`Session::find`]).
    fn entry(&self, session: &Session) -> Option<HoldId> {
        self.hold_id().or_else(|| self.find_in(session, None))
    }

    fn find_in(&self, session: &Session, except: Option<HoldId>) -> Option<HoldId> {
        session.find(self.locker.client.server(), &self.name, &self.token, except)
    }

    /// Whether it holds a phantom (granted without Redis).
    pub fn is_phantom(&self, session: &Session) -> bool {
        self.held(session).is_some_and(|h| h.phantom)
    }

    /// Releases what it holds: true only if it still held it. Without an
    /// entry of its own, the entry of another handle for the same owner
    /// token (a phantom among them), else whatever this owner token holds in
    /// Redis, of either kind; but never in a `fork()` child of the process
    /// that made the handle: the token is
    /// the parent's too.
    pub fn release(&self, session: &Session) -> Result<bool> {
        let id = self.hold.lock().take();
        let forked = self.pid != crate::pid::current();
        match id.or_else(|| (!forked).then(|| self.find_in(session, None)).flatten()) {
            Some(id) => session.release(id),
            None if forked => Ok(false),
            None => {
                let client = &*self.locker.client;
                Ok(client.release(&self.name, &self.token, None)?
                    || client.release_read(&self.name, &self.token, None)?)
            }
        }
    }

    /// A new TTL, only while it holds (the watchdog renews to it from now
    /// on); a phantom is refreshed without Redis.
    pub fn refresh(&self, session: &Session, ttl: Duration) -> Result<bool> {
        let held = self.held(session);
        if held.as_ref().is_some_and(|h| h.phantom) {
            return Ok(true);
        }
        // Before the refresh: no renewal to the old TTL may land after it.
        if let Some(id) = self.entry(session) {
            session.retime(id, ttl);
        }
        let client = &*self.locker.client;
        let (name, token) = (&self.name[..], &self.token[..]);
        let refreshed = match held.map(|h| h.kind) {
            Some(Kind::Shared) => client.refresh_read(name, token, ttl)?,
            Some(Kind::Exclusive) => client.refresh(name, token, ttl)?,
            None => client.refresh(name, token, ttl)? || client.refresh_read(name, token, ttl)?,
        };
        if refreshed {
            *self.ttl.lock() = ttl;
        }
        Ok(refreshed)
    }

    /// Whether this owner holds it, and for how long still (asks Redis; a
    /// phantom is held with no end; under fail-open with Redis unreachable,
    /// a hold not granted to it is not held).
    pub fn ownership(&self, session: &Session) -> Result<Ownership> {
        let held = self.held(session);
        if held.as_ref().is_some_and(|h| h.phantom) {
            return Ok(Ownership::Mine { remaining: None });
        }
        let client = &*self.locker.client;
        let (name, token) = (&self.name[..], &self.token[..]);
        match held.map(|h| h.kind) {
            Some(Kind::Shared) => client.read_ownership(name, token),
            Some(Kind::Exclusive) => client.ownership(name, token),
            None => {
                let asked = client.ownership(name, token).and_then(|mine| match mine {
                    Ownership::NotMine => client.read_ownership(name, token),
                    mine => Ok(mine),
                });
                match asked {
                    // Under fail-open, with Redis unreachable, a hold this
                    // process was not granted (not even a phantom one: one
                    // just released, say) is not held, rather than an error:
                    // Symfony's Lock asks right after its release.
                    Err(err) if self.locker.fail_open && err.is_unavailable() => {
                        Ok(Ownership::NotMine)
                    }
                    asked => asked,
                }
            }
        }
    }

    /// Forgets its hold without touching Redis (found gone).
    pub fn forget(&self, session: &Session) {
        if let Some(id) = self.hold.lock().take() {
            session.forget(id);
        }
    }

    /// The object is gone: releases its hold (auto-release) with no one to
    /// report to, or forgets it (a `Lock` made with `$autoRelease = false`:
    /// it stays set until its TTL, or until its restored owner releases it).
    /// A phantom of such a lock is kept until the request ends: only the
    /// session knows it, and a handle restored for its owner token acts on
    /// it (Symfony's store makes one per call).
    pub fn end(&self, session: &Session) {
        if let Some(id) = self.hold.lock().take() {
            if self.auto_release {
                session.release_quietly(id);
            } else if !session.get(id).is_some_and(|h| h.phantom) {
                session.forget(id);
            }
        }
    }
}
