//! The exclusive lock over a quorum of independent masters: the kind that
//! Redlock's backend (`redlock`) holds, its attempt the majority rule.

use std::cell::Cell;
use std::time::{Duration, Instant};

use redis::Value;

use crate::backend::HoldKeys;
use crate::engine;
use crate::engine::{Grant, HoldKind};
use crate::error::Result;
use crate::keys::LockKeys;
use crate::orphans::Undo;
use crate::redlock::{drift, release_call, Redlock};
use crate::scripts::{self, is_marked_own, Invocation};
use crate::token::new_token;
use crate::vocab::{millis, AcquireOutcome, Attempt, Wait};

/// The exclusive lock over a quorum of masters: one attempt is the SET on
/// every master, the majority and validity rule, the give-back of what a
/// failed attempt took, and the registration on the home master (see
/// "Waiting"). What it must remember between attempts is kept here.
pub(crate) struct QuorumHold<'a> {
    pub(crate) redlock: &'a Redlock,
    pub(crate) keys: LockKeys,
    pub(crate) token: &'a str,
    pub(crate) ttl: Duration,
    /// The home master this waiter is queued on.
    queued_on: Cell<Option<usize>>,
    /// Whether the last attempt queued it (else its wait is a pause).
    queued_now: Cell<bool>,
    /// When the last wait on the home master began.
    blocked_at: Cell<Option<Instant>>,
    /// When the wait that ended in a grant began.
    granted_since: Cell<Option<Instant>>,
    /// When that grant was popped.
    woken_at: Cell<Option<Instant>>,
    /// The last registration found the lock free on the home master.
    free_at_home: Cell<bool>,
    /// When the hold's TTL began on the masters.
    since: Cell<Option<Instant>>,
}

impl Redlock {
    /// Takes lock `name` for `token` on a majority of the masters, waiting
    /// as `wait` says (see "Waiting"): the engine's wait over this
    /// deployment's quorum attempt (`kinds::quorum`).
    pub fn acquire(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let hold = QuorumHold::new(self, self.keys(name), token, ttl);
        engine::acquire(self, &hold, ttl, wait)
    }
}

impl<'a> QuorumHold<'a> {
    /// `token`'s acquire of lock `keys` with `ttl` on `redlock`'s masters.
    pub(crate) fn new(redlock: &'a Redlock, keys: LockKeys, token: &'a str, ttl: Duration) -> Self {
        QuorumHold {
            redlock,
            keys,
            token,
            ttl,
            queued_on: Cell::new(None),
            queued_now: Cell::new(false),
            blocked_at: Cell::new(None),
            granted_since: Cell::new(None),
            woken_at: Cell::new(None),
            free_at_home: Cell::new(false),
            since: Cell::new(None),
        }
    }
}

impl HoldKeys for QuorumHold<'_> {
    fn token(&self) -> &str {
        self.token
    }

    fn main_key(&self) -> &[u8] {
        &self.keys.lock
    }

    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        scripts::REFRESH
            .key(&self.keys.lock)
            .arg(self.token)
            .arg(ttl_ms)
    }

    /// On every master (see [`Redlock::release_everywhere`]).
    fn undo(&self) -> Undo {
        let (redlock, owner, keys) = (
            self.redlock.clone(),
            self.token.to_owned(),
            self.keys.clone(),
        );
        Undo::Release(Box::new(move || redlock.release_everywhere(&keys, &owner)))
    }
}

impl HoldKind<Redlock> for QuorumHold<'_> {
    fn attempt(
        &self,
        redlock: &Redlock,
        ttl_ms: u64,
        wait_ms: u64,
        _registered: bool,
        _now: Instant,
    ) -> Result<Attempt> {
        let (keys, token, ttl) = (&self.keys, self.token, self.ttl);
        self.queued_now.set(false);
        let asked_at = Instant::now();
        let answers = redlock.ask_all(|_| {
            redis::cmd("SET")
                .arg(&keys.lock)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .arg("GET")
                .clone()
                .into()
        });
        // Per master: whether the SET may have taken the lock for `token`
        // (it did, or it was sent and its answer is unknown).
        let mut may_hold = answers.sent.clone();
        let (mut set, mut held) = (0, 0);
        for (answer, may_hold) in answers.each.iter().zip(&mut may_hold) {
            match answer
                .as_ref()
                .map(redis::from_redis_value_ref::<Option<Vec<u8>>>)
            {
                // Ours already: a re-send, or an earlier call's leftover.
                Ok(Ok(None)) => set += 1,
                Ok(Ok(Some(v))) if v == token.as_bytes() || is_marked_own(&v, token) => set += 1,
                Ok(Ok(Some(_))) => {
                    held += 1;
                    *may_hold = false;
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        let spent = asked_at.elapsed() + drift(ttl);
        if set >= redlock.quorum() && spent < ttl {
            self.give_up(redlock); // off the queue, if on it
                                   // The TTL runs from when the masters were asked, or from before
                                   // the grant that set it on them.
            let since = self
                .granted_since
                .take()
                .map_or(asked_at, |g| g.min(asked_at));
            self.since.set(Some(since));
            return Ok(Attempt::Acquired(None));
        }
        // Granted on the home master, and the releaser's step on the others
        // (its release, then the hand-on) has not landed everywhere yet:
        // the grant holds meanwhile, so try again shortly rather than give
        // it back.
        if let Some(woken) = self.woken_at.get().filter(|_| set >= 1 && held > 0) {
            if woken.elapsed() < redlock.masters[0].timeout {
                std::thread::sleep(Duration::from_millis(1));
                return Ok(Attempt::Held { pttl_ms: -2 });
            }
        }
        self.woken_at.set(None);
        let lost_a_grant = self.granted_since.take().is_some();
        // Not held: give back whatever this attempt took, or may have taken
        // where the answer was lost. Only those masters: one the SET never
        // reached (left out, unreachable) is not asked again, which would
        // cost it another connect_timeout.
        if may_hold.contains(&true) {
            let undone = redlock.ask(&may_hold, |target| {
                release_call(keys, token, &keys.call(&new_token()), target).into()
            });
            if undone.answered() < may_hold.iter().filter(|m| **m).count() {
                redlock.remember_orphan(keys, token, ttl);
            }
        }
        if set + held < redlock.quorum() {
            return Err(redlock.no_quorum(&answers));
        }
        if wait_ms == 0 {
            return Ok(Attempt::Held { pttl_ms: 0 });
        }
        // Wait on the home master, woken by a release (see "Waiting").
        let registered = redlock.home().map(|home| {
            let at_home = redlock.register(home, keys, token, ttl_ms, wait_ms, lost_a_grant);
            (home, at_home)
        });
        Ok(match registered {
            // Free there now: at once, unless it was so last time too (the
            // other masters disagree: a holder's leftovers).
            Some((_, Ok(-2))) if !self.free_at_home.replace(true) => Attempt::Held { pttl_ms: -2 },
            Some((home, Ok(pttl_ms))) if pttl_ms != -2 => {
                self.free_at_home.set(false);
                self.queued_on.set(Some(home));
                self.queued_now.set(true);
                Attempt::Held { pttl_ms }
            }
            // No home master to wait on: the wait is a pause.
            _ => {
                self.free_at_home.set(false);
                Attempt::Held { pttl_ms: 0 }
            }
        })
    }

    fn metric_kind(&self) -> crate::metrics::Kind {
        crate::metrics::Kind::Lock
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    /// On the master this waiter queued on; where it could not queue, a
    /// random pause (as after a failed wait there).
    fn wait_for_grant(&self, redlock: &Redlock, block: Duration) -> Result<Option<Value>> {
        let home = self.queued_on.get().filter(|_| self.queued_now.get());
        let Some(home) = home else {
            redlock.pause(block);
            return Ok(None);
        };
        let target = &redlock.masters[home];
        self.blocked_at.set(Some(Instant::now()));
        let popped = redlock
            .pool
            .entry(&target.dsn)
            .pop_wake(target, &self.wake_key(), block);
        popped.or_else(|_| {
            redlock.pause(block);
            Ok(None)
        })
    }

    /// Granted on the home master (the release took it off the queue); the
    /// next attempt finds its token on a majority.
    fn granted(&self, _redlock: &Redlock, _popped: &Value) -> Grant {
        self.granted_since.set(self.blocked_at.get());
        self.woken_at.set(Some(Instant::now()));
        self.queued_on.set(None);
        Grant::AttemptAgain
    }

    fn held_since(&self) -> Option<Instant> {
        self.since.get()
    }

    /// Off the home master's queue; a failure leaves the entry to its
    /// deadline, where every release skips it.
    fn give_up(&self, redlock: &Redlock) {
        if let Some(home) = self.queued_on.take() {
            redlock.leave(home, &self.keys, self.token, millis(self.ttl));
        }
    }
}
