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

use crate::dsn::Dsn;
use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::orphans;
use crate::packed::Packed;
use crate::plain_holds;
use crate::pool::{Pool, PoolEntry, Target};
use crate::release::{self, force_release_script, release_kind_on, release_on};
use crate::scripts::{self, is_marked_own};
use crate::stats::Stats;
use crate::vocab::{
    millis, AcquireOutcome, Attempt, ClientOptions, Hold, Kind, Ownership, Wait, FOREVER_SLICE,
    WAIT_RETRY_PAUSE, WAIT_SLACK,
};

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
    pub(crate) pool: Arc<Pool>,
    /// `target`'s entry in `pool`, looked up once.
    pub(crate) entry: Arc<PoolEntry>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) target: Target,
    prefix: Vec<u8>,
    fencing: bool,
    replicas: u32,
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
            entry: pool.entry(&dsn),
            pool,
            stats,
            target: Target {
                dsn,
                connect_timeout: options.connect_timeout,
                timeout: options.timeout,
            },
            prefix: options.prefix,
            fencing: options.fencing,
            replicas: options.replicas,
        }
    }

    /// The same client on another pool (the watchdog's own, so that its
    /// renewals never take a connection a caller is using).
    pub fn on_pool(&self, pool: Arc<Pool>) -> LockClient {
        LockClient {
            entry: pool.entry(&self.target.dsn),
            pool,
            ..self.clone()
        }
    }

    /// The same, counted in other metrics.
    pub fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> LockClient {
        LockClient {
            stats,
            ..self.clone()
        }
    }

    /// The server this client talks to.
    pub fn dsn(&self) -> &Dsn {
        &self.target.dsn
    }

    /// The Redis keys of lock `name`.
    /// The server's DSN, as given: see [`crate::Locks::server`].
    pub fn server(&self) -> &str {
        self.target.dsn.as_str()
    }

    /// Remembers `token`'s `kind` hold of `name` for a later release (see
    /// [`crate::Locks::release_later`]).
    pub fn release_later(&self, kind: Kind, name: &[u8], token: &str, ttl: Duration) {
        plain_holds::forget(&self.target, &self.keys(name), token);
        orphans::remember(&self.target, kind, self.keys(name), token, ttl);
    }

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
        self.acquire_kind(Kind::Exclusive, name, token, ttl, wait)
    }

    /// Takes a read lock on `name` for `token`: shared with other readers,
    /// never with a writer; waits as `wait` says (see `scripts`,
    /// [`scripts::ACQUIRE_READ`]).
    pub fn acquire_read(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        self.acquire_kind(Kind::Shared, name, token, ttl, wait)
    }

    fn acquire_kind(
        &self,
        kind: Kind,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let keys = self.keys(name);
        match self.acquire_inner(kind, &keys, token, ttl, wait) {
            Ok(outcome) => {
                let acquired = matches!(outcome, AcquireOutcome::Acquired(_));
                if acquired && kind == Kind::Shared {
                    self.stats.lock().record_read_acquired();
                    // A writer demoted to a reader holds no plain lock now.
                    plain_holds::forget(&self.target, &keys, token);
                }
                if acquired {
                    // An earlier failed acquire with this token (a Lock object
                    // keeps its owner) left an orphan of this very hold: it
                    // is live again, not to be freed.
                    orphans::forget(&self.target, &keys, token);
                }
                // Only once the server has answered: a stalled server must not
                // cost a second timeout on top of the caller's own.
                orphans::clean_up_server(&self.pool, &self.target);
                if acquired && self.replicas > 0 {
                    self.confirm_replicas(kind, keys, token, ttl)?;
                }
                Ok(outcome)
            }
            Err(err) => {
                // An acquire sent, or a wait registered, before the failure may
                // have left the lock set (or later granted) under this token.
                if err.outcome_unknown() {
                    orphans::remember(&self.target, kind, keys, token, ttl);
                }
                Err(err)
            }
        }
    }

    fn acquire_inner(
        &self,
        kind: Kind,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let start = Instant::now();
        let ttl_ms = millis(ttl);
        let deadline = wait.deadline_from(start);
        let mut cleared_own_orphan = false;
        let mut registered = false;
        let mut first = true;
        loop {
            // The first attempt goes out as the acquire starts: no second clock read.
            let now = if std::mem::take(&mut first) {
                start
            } else {
                Instant::now()
            };
            let left = deadline.map(|d| d.saturating_duration_since(now));
            let will_wait = left.is_none_or(|l| !l.is_zero());
            let wait_ms = millis(match left {
                _ if !will_wait => Duration::ZERO,
                Some(left) => left + WAIT_SLACK,
                None => FOREVER_SLICE + WAIT_SLACK,
            });
            let was_registered = registered;
            registered |= will_wait;
            let attempt = match kind {
                Kind::Exclusive => self.attempt(keys, token, ttl_ms, wait_ms, was_registered, now),
                Kind::Shared => self.attempt_read(keys, token, ttl_ms, wait_ms, was_registered),
            };
            let pttl_ms = match attempt? {
                Attempt::Acquired(fence) => return Ok(self.acquired(start, fence)),
                Attempt::Held { pttl_ms } => pttl_ms,
            };
            // The holder may be this process's own earlier acquire whose
            // reply was lost; the server just answered, so clear it now
            // rather than report a conflict with ourselves.
            if !cleared_own_orphan && orphans::clean_up_lock(&self.pool, &self.target, keys) {
                cleared_own_orphan = true;
                continue;
            }
            if !will_wait {
                return Ok(if matches!(wait, Wait::For(d) if !d.is_zero()) {
                    self.stats.lock().record_timeout();
                    AcquireOutcome::TimedOut
                } else {
                    self.stats.lock().record_conflict();
                    AcquireOutcome::Conflicted
                });
            }
            if pttl_ms == -2 {
                continue; // gone already (cannot happen within one script): try again
            }
            let mut block = left.unwrap_or(FOREVER_SLICE).min(FOREVER_SLICE);
            if pttl_ms > 0 {
                block = block.min(Duration::from_millis(pttl_ms.unsigned_abs()));
            }
            match self.wait_for_grant(keys, token, block) {
                Ok(Some(fence)) => {
                    let fence = (kind == Kind::Exclusive && self.fencing).then_some(fence);
                    return Ok(self.acquired(start, fence));
                }
                Ok(None) => {}
                // The wait was cut short with an answer, not lost: a failover
                // demoted the server (UNBLOCKED), the slot is moving, … The
                // next attempt (to the lock's master now) finds the lock ours
                // if a grant landed, or waits again with the time left.
                Err(Error::Server { code, .. })
                    if Error::transient_code(&code) && left.is_none_or(|l| !l.is_zero()) =>
                {
                    std::thread::sleep(WAIT_RETRY_PAUSE.min(left.unwrap_or(WAIT_RETRY_PAUSE)));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits until `replicas` replicas hold the lock that `token` has just
    /// taken; if fewer confirm, gives it back and fails, within `timeout`.
    ///
    /// WAIT returns as soon as enough replicas acknowledge (the master asks
    /// them at once), but its timeout is only checked on the server's cron
    /// tick (hz 10: every 100 ms; WAIT 450 answered after 0.55 s on Redis
    /// 7.0), so it is given `timeout` less two ticks, and at least a quarter
    /// of `timeout`.
    fn confirm_replicas(
        &self,
        kind: Kind,
        keys: LockKeys,
        token: &str,
        ttl: Duration,
    ) -> Result<()> {
        let wanted = self.replicas;
        let timeout = self.target.timeout;
        let within = timeout
            .saturating_sub(Duration::from_millis(200))
            .max(timeout / 4)
            .max(Duration::from_millis(1));
        // WAIT counts the replicas that have every earlier write of *this*
        // connection, and the lock may have been set by another one (a grant
        // by a release): so first a write of our own, the owner-checked TTL
        // reset, in the same op so that a re-sent op re-does both.
        let confirmed = self.entry.run(&self.target, timeout * 2, |con| {
            let still_ours: i64 = match kind {
                Kind::Exclusive => scripts::REFRESH.key(&keys.lock),
                Kind::Shared => scripts::REFRESH_READ.key(&keys.lock).key(keys.readers()),
            }
            .arg(token)
            .arg(millis(ttl))
            .invoke(con)?;
            let replicas: i64 = redis::cmd("WAIT")
                .arg(wanted)
                .arg(millis(within))
                .query(con)?;
            Ok(if still_ours == 1 { replicas } else { 0 })
        });
        let failure = match confirmed {
            Ok(n) if n >= i64::from(wanted) => return Ok(()),
            Ok(confirmed) => Error::NotReplicated {
                dsn: self.target.dsn.redacted().to_owned(),
                wanted,
                confirmed,
                within,
            },
            Err(err) => err,
        };
        plain_holds::forget(&self.target, &keys, token);
        if release_kind_on(kind, &self.entry, &self.target, &keys, token).is_err() {
            orphans::remember(&self.target, kind, keys, token, ttl);
        }
        Err(failure)
    }

    pub(crate) fn acquired(&self, start: Instant, fence: Option<i64>) -> AcquireOutcome {
        let acquired_at = Instant::now();
        self.stats
            .lock()
            .record_acquired(acquired_at.saturating_duration_since(start));
        AcquireOutcome::Acquired(Hold { fence, acquired_at })
    }

    /// Deletes lock `name` if `token` still holds it. False when it had
    /// expired or been taken over: the other holder's lock is left alone.
    pub fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let keys = self.keys(name);
        let plain = plain_holds::take(&self.target, &keys, token)
            .filter(|_| self.target.dsn.cluster().is_none());
        let released = match plain {
            Some(expires) => release::plain(&self.entry, &self.target, &keys, token, expires)?,
            None => release_on(&self.entry, &self.target, &keys, token)? == 1,
        };
        self.stats
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
        if self.target.dsn.cluster().is_some() {
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
            plain_holds::extend(&self.target, &keys, token, sent + ttl);
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
        let mut force_release = force_release_script(&self.keys(name), &self.target);
        let deleted: i64 = self.run(|con| force_release.invoke(con))?;
        Ok(deleted == 1)
    }

    /// One attempt at a write lock, sent at `now` (see `acquire_inner`);
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
        let no_set_nx_get = &self.entry.server.no_set_nx_get;
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
                plain_holds::forget(&self.target, keys, token);
                Ok(Attempt::Acquired(self.fencing.then_some(*fence)))
            }
            [0, pttl_ms] => {
                self.recently_contended(keys, now, true);
                Ok(Attempt::Held { pttl_ms: *pttl_ms })
            }
            other => Err(Error::Protocol {
                dsn: self.target.dsn.redacted().to_owned(),
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
                    &self.target,
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

    /// Blocks until a release grants this waiter the lock (its fencing
    /// token, -1 without fencing) or `block` passes (None).
    fn wait_for_grant(&self, keys: &LockKeys, token: &str, block: Duration) -> Result<Option<i64>> {
        let popped: Option<i64> = self
            .entry
            .pop_wake(&self.target, &keys.wake(token), block)?;
        if popped.is_some() {
            plain_holds::forget(&self.target, keys, token);
            self.recently_contended(keys, Instant::now(), true);
        }
        Ok(popped)
    }

    /// Whether this process found lock `keys` held within `CONTENDED_FOR`
    /// of `now`; `now_held`: it just did (remembered, and true).
    fn recently_contended(&self, keys: &LockKeys, now: Instant, now_held: bool) -> bool {
        let mut key = Vec::with_capacity(self.target.dsn.as_str().len() + 1 + keys.lock.len());
        key.extend_from_slice(self.target.dsn.as_str().as_bytes());
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
        self.entry.run(&self.target, self.target.timeout, op)
    }
}
