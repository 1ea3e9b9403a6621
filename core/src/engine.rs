//! The wait engine: how every kind of hold is acquired, on every backend.
//!
//! A kind ([`HoldKind`], in `kinds`: the exclusive lock, the read lock, the
//! semaphore permit, the exclusive lock over a quorum of masters, and the
//! multi-lock's names all or none over either exclusive kind) supplies its
//! keys, its attempt and how it reads a grant; a backend ([`Backend`]: one node, `node`, or Redlock's
//! masters) says where holds live, where their orphans are kept and whether
//! replicas confirm them. Everything about waiting is here, once:
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
//! - replica confirmation, where the backend asks for it (a node's `WAIT`,
//!   see `node`), giving the hold back when too few replicas confirm it.
//!
//! See `client` ("How a wait ends") for why the grant is pushed onto a
//! list and what that buys.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::backend::{Backend, HoldKeys};
use crate::error::{Error, Result};
use crate::metrics::Kind;
use crate::orphans;
use crate::stats::Stats;
use crate::vocab::{
    millis, AcquireOutcome, Attempt, Hold, Wait, FOREVER_SLICE, WAIT_RETRY_PAUSE, WAIT_SLACK,
};

/// What a popped grant gives a waiter.
pub(crate) enum Grant {
    /// The hold is the waiter's now, with its fencing token if the kind
    /// keeps one.
    Held(Option<i64>),
    /// The grant is not the hold yet (Redlock: granted on the home master,
    /// set on the others by the releaser): attempt again at once.
    AttemptAgain,
}

/// One hold being acquired: a kind's keys and scripts for one name and
/// owner token, on backend `B`. Nothing here waits or retries.
pub(crate) trait HoldKind<B: Backend>: HoldKeys {
    /// One attempt, sent at `now`. `wait_ms` > 0: a caller that finds the
    /// hold taken is registered as a waiter for that long (in the same
    /// script that saw it taken); `registered`: it was registered by an
    /// earlier attempt (and leaves the waiters when it does not wait now).
    ///
    /// `Held { pttl_ms: -2 }`: free by now, attempt again at once.
    fn attempt(
        &self,
        backend: &B,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt>;
    /// The list this waiter's grant is pushed onto.
    fn wake_key(&self) -> Vec<u8>;
    /// What the host's metrics count this hold as.
    fn metric_kind(&self) -> Kind;
    /// Blocks until a grant lands on this waiter's wake list (popped) or
    /// `block` passes (None).
    fn wait_for_grant(&self, backend: &B, block: Duration) -> Result<Option<redis::Value>> {
        backend.pop_wake(&self.wake_key(), block)
    }
    /// A grant popped from the wake list.
    fn granted(&self, backend: &B, popped: &redis::Value) -> Grant;
    /// When the hold's TTL began, if before the attempt that reported it
    /// (Redlock: before the grant that set it on the masters).
    fn held_since(&self) -> Option<Instant> {
        None
    }
    /// What the kind does once the hold is the caller's (its own metrics).
    fn on_acquired(&self, _backend: &B) {}
    /// The acquire ends without the hold: what the kind leaves behind
    /// (Redlock: its place in the home master's queue).
    fn give_up(&self, _backend: &B) {}
    /// The metrics this hold's acquires count in: the backend's, unless the
    /// kind keeps its own (multi-locks).
    fn stats<'s>(&'s self, backend: &'s B) -> &'s Mutex<Stats> {
        backend.stats()
    }
    /// Has replicas confirm the hold just taken, where the backend asks for
    /// it; gives it back when too few do.
    fn confirm_replicas(&self, backend: &B, ttl: Duration) -> Result<()>
    where
        Self: Sized,
    {
        backend.confirm_replicas(self, ttl)
    }
}

/// Acquires `hold` on `node` with `ttl`, waiting as `wait` says.
///
/// A taken hold is an `Ok` outcome; errors are faults. An error whose
/// outcome is unknown (sent, no reply) leaves the hold remembered as an
/// orphan, released once the server answers again.
pub(crate) fn acquire<B: Backend>(
    backend: &B,
    hold: &impl HoldKind<B>,
    ttl: Duration,
    wait: Wait,
) -> Result<AcquireOutcome> {
    let start = Instant::now();
    let outcome = match wait_loop(backend, hold, ttl, wait, start) {
        Ok(outcome) => outcome,
        Err(err) => {
            hold.stats(backend).lock().record_acquire_error(
                hold.metric_kind(),
                err.is_unavailable(),
                wait.may_wait().then(|| start.elapsed()),
            );
            hold.give_up(backend);
            // An acquire sent, or a wait registered, before the failure may
            // have left the hold taken (or later granted) under the token.
            if err.outcome_unknown() {
                backend.remember_orphan(hold.main_key(), hold.undo(), hold.token(), ttl);
            }
            return Err(err);
        }
    };
    let acquired = matches!(outcome, AcquireOutcome::Acquired(_));
    if acquired {
        // An earlier failed acquire with this token (a Lock object keeps
        // its owner) left an orphan of this very hold: it is live again,
        // not to be freed.
        orphans::forget(backend.server(), hold.main_key(), hold.token());
        hold.on_acquired(backend);
    } else {
        hold.give_up(backend);
    }
    // Only once the server has answered: a stalled server must not cost a
    // second timeout on top of the caller's own.
    orphans::clean_up_server(backend.pool(), backend.server());
    if acquired {
        if let Err(err) = hold.confirm_replicas(backend, ttl) {
            // Given back: no longer among this process's holds.
            let held = match &outcome {
                AcquireOutcome::Acquired(h) => Some(h.acquired_at.elapsed()),
                _ => None,
            };
            hold.stats(backend)
                .lock()
                .record_release(hold.metric_kind(), &Ok(true), held);
            return Err(err);
        }
    }
    Ok(outcome)
}

fn wait_loop<B: Backend>(
    backend: &B,
    hold: &impl HoldKind<B>,
    ttl: Duration,
    wait: Wait,
    start: Instant,
) -> Result<AcquireOutcome> {
    let ttl_ms = millis(ttl);
    let deadline = wait.deadline_from(start);
    let mut cleared_own_orphan = false;
    let mut registered = false;
    let mut first = true;
    let waiting = Waiting {
        backend,
        hold,
        started: std::cell::Cell::new(false),
    };
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
        let ends_in_ms = match hold.attempt(backend, ttl_ms, wait_ms, was_registered, now)? {
            Attempt::Acquired(fence) => return Ok(acquired(backend, hold, start, wait, fence)),
            Attempt::Held { pttl_ms } => pttl_ms,
        };
        // The holder may be this process's own earlier acquire whose reply
        // was lost; the server just answered, so clear it now rather than
        // report a conflict with ourselves.
        if !cleared_own_orphan
            && orphans::clean_up_lock(backend.pool(), backend.server(), hold.main_key())
        {
            cleared_own_orphan = true;
            continue;
        }
        if !will_wait {
            return Ok(if matches!(wait, Wait::For(d) if !d.is_zero()) {
                hold.stats(backend)
                    .lock()
                    .record_timeout(hold.metric_kind(), now.saturating_duration_since(start));
                AcquireOutcome::TimedOut
            } else {
                hold.stats(backend)
                    .lock()
                    .record_conflict(hold.metric_kind());
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
        waiting.start();
        match hold.wait_for_grant(backend, block) {
            Ok(Some(popped)) => match hold.granted(backend, &popped) {
                Grant::Held(fence) => return Ok(acquired(backend, hold, start, wait, fence)),
                Grant::AttemptAgain => {}
            },
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
fn acquired<B: Backend>(
    backend: &B,
    hold: &impl HoldKind<B>,
    start: Instant,
    wait: Wait,
    fence: Option<i64>,
) -> AcquireOutcome {
    let now = Instant::now();
    hold.stats(backend).lock().record_acquired(
        hold.metric_kind(),
        now.saturating_duration_since(start),
        wait.may_wait(),
    );
    let acquired_at = hold.held_since().map_or(now, |since| since.min(now));
    AcquireOutcome::Acquired(Hold { fence, acquired_at })
}

/// An acquire counted among the waiting (host metrics) from its first wait
/// on, until it ends however it ends.
struct Waiting<'a, B: Backend, H: HoldKind<B>> {
    backend: &'a B,
    hold: &'a H,
    started: std::cell::Cell<bool>,
}

impl<B: Backend, H: HoldKind<B>> Waiting<'_, B, H> {
    fn start(&self) {
        if !self.started.replace(true) {
            let key = self.hold.main_key();
            let kind = self.hold.metric_kind();
            self.hold
                .stats(self.backend)
                .lock()
                .record_waiting(kind, key, true);
        }
    }
}

impl<B: Backend, H: HoldKind<B>> Drop for Waiting<'_, B, H> {
    fn drop(&mut self) {
        if self.started.get() {
            let kind = self.hold.metric_kind();
            let key = self.hold.main_key();
            self.hold
                .stats(self.backend)
                .lock()
                .record_waiting(kind, key, false);
        }
    }
}
