//! Redlock: one lock over N independent masters (`redlock://h:p,h:p,…`, or
//! a list of single-server DSNs).
//!
//! # The algorithm
//! An acquire sends `SET <lock> <token> NX PX <ttl> GET` to every master at
//! once and holds the lock when a strict majority (`N/2 + 1`) set it and time
//! is left: validity = TTL − time spent asking − (1 % of TTL + 2 ms for clock
//! drift), measured on a monotonic clock. Otherwise it gives back what it may
//! have taken, on every master. Release, refresh and the reads act on every
//! master and count as done when a majority confirm.
//!
//! # Asking in parallel, without threads
//! Each command is written to every master's connection before any reply is
//! read, so the masters work at the same time and a call costs about one
//! round trip to the slowest of them, not N. Replies are then read in turn,
//! each bounded by what is left of the call's `timeout`: a stalled master
//! delays the call by at most that. A master that failed (no connection, no
//! answer in time) is skipped for [`SKIP_AFTER_FAILURE`], so that with a
//! minority down or stalled the other calls do not each pay for it.
//!
//! # Waiting
//! A queue on every master would not do: each master would grant its own
//! first waiter, and waiters that arrived in different orders at different
//! masters could each be granted a minority (none would hold the lock, and
//! undoing and re-granting could repeat). So waiters queue on one master
//! only, their *home*: the first master of the list that is not left out
//! after a failure, the same for every process. A waiter that finds the
//! lock held registers there ([`scripts::REDLOCK_WAIT`], which also tells
//! the holder's time left) and blocks on its wake list there, as on one
//! node. A release ([`scripts::REDLOCK_RELEASE`]) on the home master grants
//! the lock to the head of that queue, as on one node, and says whom to;
//! the releaser then sets it for that waiter on the other masters it freed
//! (`SET NX`, so a master that someone else took meanwhile is left alone),
//! before its release returns. The woken waiter's next attempt finds its own
//! token on a majority: it holds the lock, with its validity counted from
//! before its wait was granted. A waiter that loses anyway (a newcomer took
//! a majority first) gives back what it holds and queues again at the head.
//! Each block is bounded by the holder's time left and the waiter's, so a
//! holder that died is noticed at its TTL; when the home master cannot be
//! reached, waiters fall back to trying again after a random pause (5 to
//! 50 ms).
//!
//! The waiting itself (deadline, attempts, the woken wait, orphans) is the
//! engine's, as for every kind (`engine`): Redlock is a backend of it (its
//! masters), and the lock over them a kind (`kinds::quorum`, where
//! `Redlock::acquire` is) whose attempt is the majority rule above.
//!
//! # What it does not do
//! No fencing (no counter is monotonic across independent masters: refused
//! when the object is made), no `replicas`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use redis::{Cmd, Value};

use crate::backend::Backend;
use crate::dsn::Dsn;
use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::orphans::{self, Undo};
use crate::pool::{Lease, Pool, Target};
use crate::release::{force_release_script, resend_window_ms};
use crate::scripts::{self, Invocation};
use crate::stats::Stats;
use crate::token::new_token;
use crate::vocab::{ClientOptions, Ownership};

/// How long a master that failed is left out before it is asked again.
pub const SKIP_AFTER_FAILURE: Duration = Duration::from_millis(500);
/// A waiter pauses a random time in this range between attempts.
const RETRY_PAUSE_MS: (u64, u64) = (5, 50);

/// Masters that failed, by DSN, and until when they are left out.
static SKIPPED: Lazy<Mutex<HashMap<String, Instant>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe {
        crate::after_fork::repair_lazy(&SKIPPED);
    }
}

/// Lock operations over N independent masters.
#[derive(Clone)]
pub struct Redlock {
    pub(crate) masters: Vec<Target>,
    pub(crate) pool: Arc<Pool>,
    stats: Arc<Mutex<Stats>>,
    prefix: Vec<u8>,
    shown: String,
    /// The masters' DSNs as given: which orphans are this deployment's.
    id: String,
}

/// One command for one master, and what to send instead on NOSCRIPT, as
/// the bytes written to each master.
pub(crate) struct Request {
    cmd: Vec<u8>,
    on_noscript: Option<Vec<u8>>,
}

impl From<Cmd> for Request {
    fn from(cmd: Cmd) -> Self {
        Request {
            cmd: cmd.get_packed_command(),
            on_noscript: None,
        }
    }
}

impl From<Invocation<'_>> for Request {
    fn from(call: Invocation<'_>) -> Self {
        let (evalsha, eval) = call.commands();
        Request {
            cmd: evalsha,
            on_noscript: Some(eval),
        }
    }
}

/// What the masters answered to one request: one entry per master.
pub(crate) struct Answers {
    pub(crate) each: Vec<Result<Value>>,
    /// Whether the request was written to each master. One it was not
    /// written to (left out, not asked, no connection) cannot have run it.
    pub(crate) sent: Vec<bool>,
}

impl Answers {
    /// The answers that came, as `T`; unexpected shapes are failures.
    pub(crate) fn replies<T: redis::FromRedisValue>(&self) -> impl Iterator<Item = T> + '_ {
        self.each
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .filter_map(|v| redis::from_redis_value_ref(v).ok())
    }

    pub(crate) fn answered(&self) -> usize {
        self.each.iter().filter(|a| a.is_ok()).count()
    }

    pub(crate) fn all_answered(&self) -> bool {
        self.answered() == self.each.len()
    }

    /// Every master's failure, in order.
    fn errors(&self) -> String {
        self.each
            .iter()
            .filter_map(|a| a.as_ref().err())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Redlock {
    /// Redlock over `masters`, on the process-wide pool and metrics.
    pub fn new(masters: Vec<Dsn>, options: ClientOptions) -> Self {
        Self::with_pool(Pool::global(), Stats::global(), masters, options)
    }

    /// Redlock over `masters`, on the given pool and metrics (tests).
    pub fn with_pool(
        pool: Arc<Pool>,
        stats: Arc<Mutex<Stats>>,
        masters: Vec<Dsn>,
        options: ClientOptions,
    ) -> Self {
        let shown = format!(
            "redlock[{}]",
            masters
                .iter()
                .map(Dsn::redacted)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let id = masters
            .iter()
            .map(Dsn::as_str)
            .collect::<Vec<_>>()
            .join(",");
        Redlock {
            id,
            masters: masters
                .into_iter()
                .map(|dsn| Target {
                    dsn,
                    connect_timeout: options.connect_timeout,
                    timeout: options.timeout,
                })
                .collect(),
            pool,
            stats,
            prefix: options.prefix,
            shown,
        }
    }

    /// The same masters on another pool.
    pub fn on_pool(&self, pool: Arc<Pool>) -> Redlock {
        Redlock {
            pool,
            ..self.clone()
        }
    }

    /// The same, counted in other metrics.
    pub fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Redlock {
        Redlock {
            stats,
            ..self.clone()
        }
    }

    /// How many masters make a majority.
    pub fn quorum(&self) -> usize {
        self.masters.len() / 2 + 1
    }

    pub(crate) fn keys(&self, name: &[u8]) -> LockKeys {
        LockKeys::new(&self.prefix, name)
    }

    /// The master waiters queue on: the first not left out after a failure.
    pub(crate) fn home(&self) -> Option<usize> {
        let now = Instant::now();
        let skipped = SKIPPED.lock();
        self.masters.iter().position(|t| {
            skipped
                .get(t.dsn.as_str())
                .is_none_or(|until| *until <= now)
        })
    }

    /// Registers `token` as a waiter on master `home` (see
    /// [`scripts::REDLOCK_WAIT`]): the holder's time left there, or -2 when
    /// the lock is free there.
    pub(crate) fn register(
        &self,
        home: usize,
        keys: &LockKeys,
        token: &str,
        ttl_ms: u64,
        wait_ms: u64,
        front: bool,
    ) -> Result<i64> {
        let target = &self.masters[home];
        self.pool
            .entry(&target.dsn)
            .run(target, target.timeout, |con| {
                scripts::REDLOCK_WAIT
                    .key(&keys.lock)
                    .key(keys.waiters())
                    .key(keys.queue())
                    .arg(token)
                    .arg(ttl_ms)
                    .arg(wait_ms)
                    .arg(if front { "1" } else { "0" })
                    .invoke(con)
            })
    }

    /// Takes `token` off the queue on master `home`; a failure leaves the
    /// entry to its deadline, where every release skips it.
    pub(crate) fn leave(&self, home: usize, keys: &LockKeys, token: &str, ttl_ms: u64) {
        let _ = self.register(home, keys, token, ttl_ms, 0, false);
    }

    /// The random pause of a waiter that cannot wait on its home master,
    /// at most `left`.
    pub(crate) fn pause(&self, left: Duration) {
        std::thread::sleep(left.min(random_pause()));
    }

    /// Releases lock `name` of `token` on every master; true when a majority
    /// held it under `token`.
    pub fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let released = self.release_on_masters(name, token);
        self.stats.lock().record_release(
            crate::metrics::Kind::Lock,
            &released,
            acquired_at.map(|t| t.elapsed()),
        );
        released
    }

    fn release_on_masters(&self, name: &[u8], token: &str) -> Result<bool> {
        let keys = self.keys(name);
        // One call id for every master: each keeps its own marker.
        let call = keys.call(&new_token());
        let answers = self.ask_quorum(|target| release_call(&keys, token, &call, target).into())?;
        let replies: Vec<Option<Released>> = answers
            .each
            .iter()
            .map(|a| a.as_ref().ok().and_then(Released::read))
            .collect();
        let released = replies.iter().flatten().filter(|r| r.released).count() >= self.quorum();
        // A waiter queued on the home master was granted it there: set it
        // for that waiter on the masters this release freed.
        let grant = replies.iter().flatten().find_map(|r| r.grant.clone());
        if let Some((waiter, ttl_ms)) = grant {
            let freed_here: Vec<bool> = replies
                .iter()
                .map(|r| r.as_ref().is_some_and(|r| r.released && r.grant.is_none()))
                .collect();
            if freed_here.contains(&true) {
                let _ = self.ask(&freed_here, |_| {
                    scripts::REDLOCK_PASS
                        .key(&keys.lock)
                        .key(keys.freed())
                        .key(keys.gone(&waiter))
                        .arg(&call)
                        .arg(&waiter)
                        .arg(ttl_ms)
                        .into()
                });
            }
        }
        Ok(released)
    }

    /// Sets a new TTL where `token` still holds lock `name`; true when a
    /// majority did, in less than the TTL.
    pub fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        let keys = self.keys(name);
        let asked_at = Instant::now();
        let answers = self.ask_quorum(|_| {
            scripts::REFRESH
                .key(&keys.lock)
                .arg(token)
                .arg(millis(ttl))
                .into()
        })?;
        let refreshed = answers.replies::<i64>().filter(|n| *n == 1).count();
        Ok(refreshed >= self.quorum() && asked_at.elapsed() + drift(ttl) < ttl)
    }

    /// Whether `token` holds lock `name` on a majority, and for how long that
    /// majority lasts.
    pub fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        let keys = self.keys(name);
        let answers = self.ask_quorum(|_| scripts::OWNED_TTL.key(&keys.lock).arg(token).into())?;
        // Time left on each master that holds it (None: no expiry), longest
        // first; the majority lasts as long as its shortest member.
        let mut left: Vec<Option<u64>> = answers
            .replies::<i64>()
            .filter(|ms| *ms >= -1)
            .map(|ms| u64::try_from(ms).ok())
            .collect();
        left.sort_by(|a, b| b.map_or(u64::MAX, |v| v).cmp(&a.map_or(u64::MAX, |v| v)));
        Ok(match left.get(self.quorum() - 1) {
            None => Ownership::NotMine,
            Some(ms) => Ownership::Mine {
                remaining: ms.map(Duration::from_millis),
            },
        })
    }

    /// Whether a majority of the masters hold lock `name`.
    pub fn is_locked(&self, name: &[u8]) -> Result<bool> {
        let keys = self.keys(name);
        let answers = self.ask_quorum(|_| redis::cmd("EXISTS").arg(&keys.lock).clone().into())?;
        Ok(answers.replies::<i64>().filter(|n| *n == 1).count() >= self.quorum())
    }

    /// Deletes lock `name` on every master, whoever holds it; true when a
    /// majority had it.
    pub fn force_release(&self, name: &[u8]) -> Result<bool> {
        let keys = self.keys(name);
        let answers = self.ask_quorum(|target| force_release_script(&keys, target).into())?;
        Ok(answers.replies::<i64>().filter(|n| *n == 1).count() >= self.quorum())
    }

    /// The masters' DSNs as given: see [`crate::Locks::server`].
    pub fn server(&self) -> &str {
        &self.id
    }

    /// Remembers `token`'s lock `name` for a later release on every master
    /// (see [`crate::Locks::release_later`]); Redlock has no read locks, so
    /// `_kind` is always exclusive.
    pub fn release_later(
        &self,
        _kind: crate::vocab::Kind,
        name: &[u8],
        token: &str,
        ttl: Duration,
    ) {
        self.remember_orphan(&self.keys(name), token, ttl);
    }

    /// Remembers that `token` may hold lock `keys` on some masters without
    /// knowing it: an acquire whose answers did not all come, or whose undo
    /// did not reach every master. A lost answer can still be applied later
    /// (a partition heals and TCP delivers the SET), so such a lock could
    /// block its name until its TTL; later acquires on these masters
    /// release it on every master (core `orphans`).
    pub(crate) fn remember_orphan(&self, keys: &LockKeys, token: &str, ttl: Duration) {
        let (redlock, owner, lock) = (self.clone(), token.to_owned(), keys.clone());
        let undo = Undo::Release(Box::new(move || redlock.release_everywhere(&lock, &owner)));
        orphans::remember_spread(&self.id, &keys.lock, undo, token, ttl);
    }

    /// An orphan's release on every master: true if one still held it; an
    /// error (it stays remembered) until every master has answered.
    pub(crate) fn release_everywhere(&self, keys: &LockKeys, token: &str) -> Result<bool> {
        let call = keys.call(&new_token());
        let answers = self.ask_all(|target| release_call(keys, token, &call, target).into());
        if !answers.all_answered() {
            return Err(self.no_quorum(&answers));
        }
        Ok(answers
            .each
            .iter()
            .filter_map(|a| a.as_ref().ok().and_then(Released::read))
            .any(|r| r.released))
    }

    /// [`Self::ask_all`], failing when fewer than a majority answered.
    pub(crate) fn ask_quorum(&self, request: impl Fn(&Target) -> Request) -> Result<Answers> {
        let answers = self.ask_all(request);
        if answers.answered() < self.quorum() {
            return Err(self.no_quorum(&answers));
        }
        Ok(answers)
    }

    pub(crate) fn no_quorum(&self, answers: &Answers) -> Error {
        Error::NoQuorum {
            dsn: self.shown.clone(),
            answered: answers.answered(),
            needed: self.quorum(),
            total: self.masters.len(),
            detail: answers.errors(),
        }
    }

    /// Sends each master its request, all before reading any reply; each
    /// master's answer (a server error answer is an `Err`, as a failure to
    /// reach it is).
    pub(crate) fn ask_all(&self, request: impl Fn(&Target) -> Request) -> Answers {
        self.ask(&vec![true; self.masters.len()], request)
    }

    /// [`Self::ask_all`] for the masters marked in `asked` only; the others
    /// get an `Unavailable` answer, and no connection is made to them.
    pub(crate) fn ask(&self, asked: &[bool], request: impl Fn(&Target) -> Request) -> Answers {
        let requests: Vec<Request> = self.masters.iter().map(&request).collect();
        let (mut leases, left_out) = self.leases(Instant::now(), asked);
        let mut sent = vec![false; self.masters.len()];
        // The replies' time starts once the connections are there: a master
        // that takes its whole `connect_timeout` to fail must not eat the
        // `timeout` of the others (a call ends within both, in sum).
        let sent_at = Instant::now();
        // Write to all, the first master last: a release that wakes a
        // waiter there (see "Waiting") has reached the others before it.
        for (((target, lease), req), sent) in self
            .masters
            .iter()
            .zip(&mut leases)
            .zip(&requests)
            .zip(&mut sent)
            .rev()
        {
            if let Ok(con) = lease {
                match send(con, &req.cmd, target.timeout) {
                    Ok(()) => *sent = true,
                    Err(e) => {
                        *lease = Err(Error::from_redis(target.dsn.redacted(), &e, target.timeout));
                    }
                }
            }
        }
        // …then read each reply within what is left of the call's timeout.
        let answers = self
            .masters
            .iter()
            .zip(leases)
            .zip(&requests)
            .zip(left_out)
            .map(|(((target, lease), req), left_out)| {
                let answer = lease.and_then(|lease| self.answer(target, lease, req, sent_at));
                // A master left out is asked again when its pause ends.
                if !left_out && answer.as_ref().is_err_and(Error::outcome_unknown) {
                    SKIPPED.lock().insert(
                        target.dsn.as_str().to_owned(),
                        Instant::now() + SKIP_AFTER_FAILURE,
                    );
                }
                answer
            })
            .collect();
        Answers {
            each: answers,
            sent,
        }
    }

    /// Reads `target`'s reply to `req`, sent on `lease` at `sent_at`. A
    /// pooled connection found broken (a restart or an idle timeout closed
    /// it) is replaced once and `req` sent again, as `Pool::run` does: every
    /// request is safe to run twice.
    fn answer(
        &self,
        target: &Target,
        mut lease: Lease,
        req: &Request,
        sent_at: Instant,
    ) -> Result<Value> {
        let deadline = sent_at + target.timeout;
        let shown = target.dsn.redacted();
        match receive(&mut lease, req, deadline) {
            Ok(value) => {
                self.pool.give_back(target, lease);
                Ok(value)
            }
            // A complete error answer: the connection is in step.
            Err(e) if e.code().is_some() => {
                self.pool.give_back(target, lease);
                Err(Error::from_redis(shown, &e, target.timeout))
            }
            // Only a connection the server closed (a restart, an idle
            // timeout: EOF, reset) is worth a new one; an unreachable
            // master (a partition) would cost another connect_timeout.
            Err(e) if !lease.fresh && e.is_connection_dropped() => {
                drop(lease);
                let mut fresh = self.pool.lease(target)?;
                let again = send(&mut fresh, &req.cmd, target.timeout)
                    .and_then(|()| receive(&mut fresh, req, deadline));
                match again {
                    Ok(value) => {
                        self.pool.give_back(target, fresh);
                        Ok(value)
                    }
                    Err(e) => Err(Error::from_redis(shown, &e, target.timeout)),
                }
            }
            Err(e) => Err(Error::from_redis(shown, &e, target.timeout)),
        }
    }

    /// A connection to each master: pooled ones as they are; missing ones
    /// made at the same time (threads: a connect cannot be split into a
    /// write and a later read), so that two unreachable masters cost one
    /// `connect_timeout`, not two. Masters in [`SKIPPED`] and those not
    /// `asked` get an error (and true in the second list).
    fn leases(&self, now: Instant, asked: &[bool]) -> (Vec<Result<Lease>>, Vec<bool>) {
        let skipped: Vec<bool> = {
            let mut skipped = SKIPPED.lock();
            skipped.retain(|_, until| *until > now);
            self.masters
                .iter()
                .zip(asked)
                .map(|(t, asked)| !asked || skipped.contains_key(t.dsn.as_str()))
                .collect()
        };
        let to_connect: Vec<bool> = self
            .masters
            .iter()
            .zip(&skipped)
            .map(|(t, skipped)| !skipped && !self.pool.is_connected(&t.dsn))
            .collect();
        let in_threads = to_connect.iter().filter(|c| **c).count() > 1;
        std::thread::scope(|scope| {
            let connecting: Vec<_> = self
                .masters
                .iter()
                .zip(&to_connect)
                .map(|(target, connect)| {
                    (in_threads && *connect).then(|| scope.spawn(move || self.pool.lease(target)))
                })
                .collect();
            let leases = self
                .masters
                .iter()
                .zip(&skipped)
                .zip(asked)
                .zip(connecting)
                .map(
                    |(((target, skipped), asked), thread)| match (*skipped, thread) {
                        (true, _) => Err(Error::Unavailable {
                            dsn: target.dsn.redacted().to_owned(),
                            detail: if *asked {
                                format!(
                                    "left out for {} ms after a failure",
                                    SKIP_AFTER_FAILURE.as_millis()
                                )
                            } else {
                                "not asked".to_owned()
                            },
                        }),
                        (false, Some(thread)) => thread.join().unwrap_or_else(|_| {
                            Err(Error::Unavailable {
                                dsn: target.dsn.redacted().to_owned(),
                                detail: "the connecting thread panicked".to_owned(),
                            })
                        }),
                        (false, None) => self.pool.lease(target),
                    },
                )
                .collect();
            (leases, skipped)
        })
    }
}

/// Writes `cmd` on the leased connection.
/// Redlock's masters as the engine's backend: holds live on a majority of
/// them, waiters' wake lists on the home master, orphans on all of them.
impl Backend for Redlock {
    fn server(&self) -> &str {
        &self.id
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn stats(&self) -> &Mutex<Stats> {
        &self.stats
    }

    /// On the home master, where waiters queue.
    fn pop_wake(&self, key: &[u8], block: Duration) -> Result<Option<Value>> {
        let Some(home) = self.home() else {
            return Ok(None);
        };
        let target = &self.masters[home];
        self.pool.entry(&target.dsn).pop_wake(target, key, block)
    }

    fn remember_orphan(&self, lock: &[u8], undo: Undo, token: &str, ttl: Duration) {
        orphans::remember_spread(&self.id, lock, undo, token, ttl);
    }

    /// On every master: the undo of a hold here is a [`Undo::Release`].
    fn release_now(&self, undo: &Undo, token: &str) -> Result<i64> {
        undo.run(None, token)
    }
}

fn send(lease: &mut Lease, cmd: &[u8], timeout: Duration) -> redis::RedisResult<()> {
    lease.connection(timeout)?.send_packed_command(cmd)
}

/// Reads the reply to `request` by `deadline`; on NOSCRIPT sends the script
/// with its source and reads that reply instead.
fn receive(lease: &mut Lease, request: &Request, deadline: Instant) -> redis::RedisResult<Value> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let con = lease.connection(left)?;
    let value = con.recv_response()?.extract_error();
    match (&value, &request.on_noscript) {
        (Err(e), Some(eval)) if e.code() == Some("NOSCRIPT") => {
            con.send_packed_command(eval)?;
            con.recv_response()?.extract_error()
        }
        _ => value,
    }
}

/// Clock drift allowance: 1 % of the TTL plus 2 ms.
pub(crate) fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

fn random_pause() -> Duration {
    let (lo, hi) = RETRY_PAUSE_MS;
    let random = uuid::Uuid::new_v4().as_u128();
    let span = u128::from(hi - lo + 1);
    Duration::from_millis(lo + u64::try_from(random % span).unwrap_or(0))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One call of [`scripts::REDLOCK_RELEASE`] for `token` on `target`, with
/// the call marker `call`. Every release a Redlock sends is this one (its
/// own, an undo, an orphan's): each leaves `<lock>:freed` changed where it
/// released, and `<lock>:gone:<token>` set where it found nothing of
/// `token`'s, so that a hand-on ([`scripts::REDLOCK_PASS`]) of an earlier
/// release never sets the lock again for `token` after it.
pub(crate) fn release_call(
    keys: &LockKeys,
    token: &str,
    call: &[u8],
    target: &Target,
) -> Invocation<'static> {
    scripts::REDLOCK_RELEASE
        .key(&keys.lock)
        .key(keys.fence())
        .key(keys.waiters())
        .key(keys.queue())
        .key(call)
        .key(keys.freed())
        .key(keys.gone(token))
        .arg(token)
        .arg(resend_window_ms(target))
}

/// One master's answer to [`scripts::REDLOCK_RELEASE`].
pub(crate) struct Released {
    /// The caller's lock was there, and is now freed or granted on.
    pub(crate) released: bool,
    /// The waiter it was granted to there, and its TTL (ms).
    pub(crate) grant: Option<(String, u64)>,
}

impl Released {
    /// Reads the script's reply; None for an unexpected shape.
    pub(crate) fn read(value: &Value) -> Option<Released> {
        let Value::Array(items) = value else {
            return None;
        };
        let released: i64 = redis::from_redis_value_ref(items.first()?).ok()?;
        let grant = match items.get(1..3) {
            Some([token, ttl]) => Some((
                redis::from_redis_value_ref(token).ok()?,
                redis::from_redis_value_ref(ttl).ok()?,
            )),
            _ => None,
        };
        Some(Released {
            released: released == 1,
            grant,
        })
    }
}
