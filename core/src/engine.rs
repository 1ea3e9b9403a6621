//! The wait engine: how every kind of hold on one node is acquired.
//!
//! A kind ([`HoldKind`]: the exclusive lock of `client`, the read lock of
//! `shared`, the semaphore permit of `semaphore`) supplies its keys, its
//! attempt script and how it reads a grant; everything about waiting is
//! here, once:
//! - the deadline (`Wait::deadline_from`) and the time each attempt
//!   registers the caller as a waiter for;
//! - the woken wait: a `BLPOP` on the waiter's own wake list, never re-sent,
//!   bounded by the time left and by when the holder's hold ends;
//! - a wait cut short by the server (a failover's UNBLOCKED, a slot moving):
//!   a short pause and another attempt;
//! - the rule that a bounded wait that ran out is `TimedOut` and a caller
//!   that did not wait is `Conflicted`;
//! - orphans: this process's own earlier acquire of the same hold, whose
//!   reply was lost, cleared when found holding it; an acquire whose outcome
//!   is unknown remembered for a release once the server answers
//!   (`orphans`);
//! - replica confirmation (`WAIT`), giving the hold back when too few
//!   replicas confirm it.
//!
//! See `client` ("How a wait ends") for why the grant is pushed onto a
//! list and what that buys.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::node::Node;
use crate::orphans::{self, Undo};
use crate::scripts::Invocation;
use crate::vocab::{
    millis, AcquireOutcome, Attempt, Hold, Wait, FOREVER_SLICE, WAIT_RETRY_PAUSE, WAIT_SLACK,
};

/// One hold being acquired on one node: a kind's keys and scripts for one
/// name and owner token. Nothing here waits or retries.
pub(crate) trait HoldKind {
    /// The owner token.
    fn token(&self) -> &str;
    /// The hold's main key: this process's orphans of it are matched on it.
    fn main_key(&self) -> &[u8];
    /// One attempt, sent at `now`. `wait_ms` > 0: a caller that finds the
    /// hold taken is registered as a waiter for that long (in the same
    /// script that saw it taken); `registered`: it was registered by an
    /// earlier attempt (and leaves the waiters when it does not wait now).
    fn attempt(
        &self,
        node: &Node,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt>;
    /// The list this waiter's grant is pushed onto.
    fn wake_key(&self) -> Vec<u8>;
    /// A grant popped from the wake list: the hold is the caller's now;
    /// returns its fencing token, if the kind keeps one.
    fn granted(&self, node: &Node, popped: &redis::Value) -> Option<i64>;
    /// The owner-checked TTL reset: the write of the caller's own that
    /// `WAIT` counts (1: still held).
    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static>;
    /// How the hold is released if it must be given back or was orphaned.
    fn undo(&self) -> Undo;
    /// What the kind does once the hold is the caller's (its own metrics).
    fn on_acquired(&self, _node: &Node) {}
}

/// Acquires `hold` on `node` with `ttl`, waiting as `wait` says.
///
/// A taken hold is an `Ok` outcome; errors are faults. An error whose
/// outcome is unknown (sent, no reply) leaves the hold remembered as an
/// orphan, released once the server answers again.
pub(crate) fn acquire(
    node: &Node,
    hold: &impl HoldKind,
    ttl: Duration,
    wait: Wait,
) -> Result<AcquireOutcome> {
    let outcome = match wait_loop(node, hold, ttl, wait) {
        Ok(outcome) => outcome,
        Err(err) => {
            // An acquire sent, or a wait registered, before the failure may
            // have left the hold taken (or later granted) under the token.
            if err.outcome_unknown() {
                orphans::remember(&node.target, hold.main_key(), hold.undo(), hold.token(), ttl);
            }
            return Err(err);
        }
    };
    let acquired = matches!(outcome, AcquireOutcome::Acquired(_));
    if acquired {
        // An earlier failed acquire with this token (a Lock object keeps
        // its owner) left an orphan of this very hold: it is live again,
        // not to be freed.
        orphans::forget(node.server(), hold.main_key(), hold.token());
        hold.on_acquired(node);
    }
    // Only once the server has answered: a stalled server must not cost a
    // second timeout on top of the caller's own.
    orphans::clean_up_server(&node.pool, node.server());
    if acquired && node.replicas > 0 {
        confirm_replicas(node, hold, ttl)?;
    }
    Ok(outcome)
}

fn wait_loop(
    node: &Node,
    hold: &impl HoldKind,
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
        let ends_in_ms = match hold.attempt(node, ttl_ms, wait_ms, was_registered, now)? {
            Attempt::Acquired(fence) => return Ok(acquired(node, start, fence)),
            Attempt::Held { pttl_ms } => pttl_ms,
        };
        // The holder may be this process's own earlier acquire whose reply
        // was lost; the server just answered, so clear it now rather than
        // report a conflict with ourselves.
        if !cleared_own_orphan && orphans::clean_up_lock(&node.pool, node.server(), hold.main_key()) {
            cleared_own_orphan = true;
            continue;
        }
        if !will_wait {
            return Ok(if matches!(wait, Wait::For(d) if !d.is_zero()) {
                node.stats.lock().record_timeout();
                AcquireOutcome::TimedOut
            } else {
                node.stats.lock().record_conflict();
                AcquireOutcome::Conflicted
            });
        }
        if ends_in_ms == -2 {
            continue; // gone already (cannot happen within one script): try again
        }
        let mut block = left.unwrap_or(FOREVER_SLICE).min(FOREVER_SLICE);
        if ends_in_ms > 0 {
            block = block.min(Duration::from_millis(ends_in_ms.unsigned_abs()));
        }
        match node.pop_wake(&hold.wake_key(), block) {
            Ok(Some(popped)) => {
                let fence = hold.granted(node, &popped);
                return Ok(acquired(node, start, fence));
            }
            Ok(None) => {}
            // The wait was cut short with an answer, not lost: a failover
            // demoted the server (UNBLOCKED), the slot is moving, … The next
            // attempt (to the hold's master now) finds the hold ours if a
            // grant landed, or waits again with the time left.
            Err(Error::Server { code, .. })
                if Error::transient_code(&code) && left.is_none_or(|l| !l.is_zero()) =>
            {
                std::thread::sleep(WAIT_RETRY_PAUSE.min(left.unwrap_or(WAIT_RETRY_PAUSE)));
            }
            Err(err) => return Err(err),
        }
    }
}

/// The outcome of an acquire that started at `start`, counted.
fn acquired(node: &Node, start: Instant, fence: Option<i64>) -> AcquireOutcome {
    let acquired_at = Instant::now();
    node.stats
        .lock()
        .record_acquired(acquired_at.saturating_duration_since(start));
    AcquireOutcome::Acquired(Hold { fence, acquired_at })
}

/// Waits until `node.replicas` replicas hold the hold just taken; if fewer
/// confirm, gives it back and fails, within the command timeout.
///
/// WAIT returns as soon as enough replicas acknowledge (the master asks them
/// at once), but its timeout is only checked on the server's cron tick (hz
/// 10: every 100 ms; WAIT 450 answered after 0.55 s on Redis 7.0), so it is
/// given the timeout less two ticks, and at least a quarter of it.
fn confirm_replicas(node: &Node, hold: &impl HoldKind, ttl: Duration) -> Result<()> {
    let wanted = node.replicas;
    let timeout = node.target.timeout;
    let within = timeout
        .saturating_sub(Duration::from_millis(200))
        .max(timeout / 4)
        .max(Duration::from_millis(1));
    // WAIT counts the replicas that have every earlier write of *this*
    // connection, and the hold may have been set by another one (a grant by
    // a release): so first a write of our own, the owner-checked TTL reset,
    // in the same op so that a re-sent op re-does both.
    let mut refresh = hold.refresh_call(millis(ttl));
    let confirmed = node.entry.run(&node.target, timeout * 2, |con| {
        let still_ours: i64 = refresh.invoke(con)?;
        let replicas: i64 = redis::cmd("WAIT")
            .arg(wanted)
            .arg(millis(within))
            .query(con)?;
        Ok(if still_ours == 1 { replicas } else { 0 })
    });
    let failure = match confirmed {
        Ok(n) if n >= i64::from(wanted) => return Ok(()),
        Ok(confirmed) => Error::NotReplicated {
            dsn: node.target.dsn.redacted().to_owned(),
            wanted,
            confirmed,
            within,
        },
        Err(err) => err,
    };
    let undo = hold.undo();
    if undo.run(&node.pool, &node.target, hold.token()).is_err() {
        orphans::remember(&node.target, hold.main_key(), undo, hold.token(), ttl);
    }
    Err(failure)
}
