//! The multi kind: several names held together by one owner token, all or
//! none, over either exclusive kind (one node's `exclusive`, Redlock's
//! `quorum`). The engine waits for it as for any kind; what is its own is
//! one attempt over all the names and which name its waiter waits on.
//!
//! # One attempt
//! Where one node holds every name (`Capabilities::atomic_multi`), one
//! script takes them all or none (`kinds::all`). Elsewhere (a cluster,
//! Redlock) the names are taken one by one in sorted order, each by its own
//! kind's attempt; at the first name someone else holds, everything this
//! attempt took is given back, so a failed attempt leaves nothing held.
//! Either way the names are the plain locks' keys: a name held by a plain
//! lock blocks a multi-lock and the other way round.
//!
//! # Waiting
//! A caller that may wait registers as an ordinary waiter of the one name it
//! found held (in the same attempt, by that name's kind), and the engine
//! waits for that name's grant: the release that frees it grants it to this
//! caller, in arrival order with the name's other waiters. The next attempt
//! keeps the granted name and takes the rest. If another name is held by
//! then, the granted one is given back too (to its next waiter) and the
//! caller waits on the new one, leaving the queue of any other: a multi-lock
//! never waits while holding a name, so callers that name the same locks in
//! different orders cannot deadlock.
//!
//! One by one is not atomic: while such an attempt runs, another caller may
//! find one of its names held for that moment (and, if it does not wait,
//! report it held).

use std::cell::Cell;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::backend::{Backend, HoldKeys};
use crate::client::LockClient;
use crate::engine::{self, Grant, HoldKind};
use crate::error::{Error, Result};
use crate::kinds::all::AllNames;
use crate::kinds::exclusive::ExclusiveHold;
use crate::kinds::quorum::QuorumHold;
use crate::orphans::{self, Undo};
use crate::redlock::Redlock;
use crate::scripts::Invocation;
use crate::stats::Stats;
use crate::vocab::{AcquireOutcome, Attempt, Wait, WAIT_RETRY_PAUSE};

/// A multi-lock being acquired: one hold of kind `K` per name, in sorted
/// order, and what its waiter must remember between attempts.
pub(crate) struct MultiHold<'a, K> {
    names: Vec<K>,
    /// The one-script take, where one node holds every name.
    all: Option<AllNames<'a>>,
    token: &'a str,
    ttl: Duration,
    /// Where multi-locks are counted (not as locks of their own names).
    stats: &'a Mutex<Stats>,
    /// The name a grant gave this caller, held while the others are taken.
    granted: Cell<Option<usize>>,
    /// The name this caller is registered as a waiter of.
    waiting_on: Cell<Option<usize>>,
    /// The last attempt took every name in one script.
    took_all_at_once: Cell<bool>,
}

impl LockClient {
    /// Takes all of `names` (sorted, none repeated) for `token` with `ttl`,
    /// all or none, waiting as `wait` says; counted in `stats`.
    pub fn acquire_all(
        &self,
        names: &[Vec<u8>],
        token: &str,
        ttl: Duration,
        wait: Wait,
        stats: &Mutex<Stats>,
    ) -> Result<AcquireOutcome> {
        let node = &self.node;
        let holds = names
            .iter()
            .map(|name| ExclusiveHold {
                node,
                fencing: self.fencing,
                keys: self.keys(name),
                token,
            })
            .collect();
        let all = node.capabilities.atomic_multi.then(|| AllNames {
            node,
            keys: names.iter().map(|name| self.keys(name)).collect(),
            token,
        });
        let hold = MultiHold::new(holds, all, token, ttl, stats)?;
        engine::acquire(node, &hold, ttl, wait)
    }
}

impl Redlock {
    /// Takes all of `names` (sorted, none repeated) for `token` with `ttl`
    /// on a majority of the masters, one by one, all or none, waiting as
    /// `wait` says; counted in `stats`.
    pub fn acquire_all(
        &self,
        names: &[Vec<u8>],
        token: &str,
        ttl: Duration,
        wait: Wait,
        stats: &Mutex<Stats>,
    ) -> Result<AcquireOutcome> {
        let holds = names
            .iter()
            .map(|name| QuorumHold::new(self, self.keys(name), token, ttl))
            .collect();
        let hold = MultiHold::new(holds, None, token, ttl, stats)?;
        engine::acquire(self, &hold, ttl, wait)
    }
}

impl<'a, K: HoldKeys> MultiHold<'a, K> {
    fn new(
        names: Vec<K>,
        all: Option<AllNames<'a>>,
        token: &'a str,
        ttl: Duration,
        stats: &'a Mutex<Stats>,
    ) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::Internal {
                detail: "a multi-lock without names".to_owned(),
            });
        }
        Ok(MultiHold {
            names,
            all,
            token,
            ttl,
            stats,
            granted: Cell::new(None),
            waiting_on: Cell::new(None),
            took_all_at_once: Cell::new(false),
        })
    }

    /// Gives back the names at `taken`, now; one whose release fails is
    /// remembered for a later release, and after a server found unavailable
    /// so are the rest, without asking it again (one timeout, not one per
    /// name).
    fn give_back<B: Backend>(&self, backend: &B, taken: &[usize]) {
        let mut unavailable = false;
        for &i in taken {
            let name = &self.names[i];
            if !unavailable {
                match backend.release_now(&name.undo(), self.token) {
                    Ok(_) => continue,
                    Err(err) => unavailable = err.is_unavailable(),
                }
            }
            backend.remember_orphan(name.main_key(), name.undo(), self.token, self.ttl);
        }
    }
}

impl<K> MultiHold<'_, K> {
    /// One pass over the names, registering nowhere new: Ok(None) when
    /// every one is the caller's now; else the name someone else holds, its
    /// holder's TTL, and whether this pass already kept (or, not waiting
    /// any more, left) the caller's place in its queue. `taken`: what the
    /// caller holds now.
    fn pass<B: Backend>(
        &self,
        backend: &B,
        ttl_ms: u64,
        wait_ms: u64,
        waiting_on: Option<usize>,
        now: Instant,
        taken: &mut Vec<usize>,
    ) -> Result<Option<(usize, i64, bool)>>
    where
        K: HoldKind<B>,
    {
        if let Some(all) = &self.all {
            return Ok(all.take(ttl_ms)?.map(|i| (i, 0, false)).or_else(|| {
                self.took_all_at_once.set(true);
                None
            }));
        }
        for (i, name) in self.names.iter().enumerate() {
            if taken.contains(&i) {
                continue; // granted
            }
            // The name it is queued on keeps its place (or is left, when
            // the caller will not wait any more); the others are tried once.
            let queued = waiting_on == Some(i);
            let wait_ms = if queued { wait_ms } else { 0 };
            match name.attempt(backend, ttl_ms, wait_ms, queued, now) {
                Ok(Attempt::Acquired(_)) => taken.push(i),
                Ok(Attempt::Held { pttl_ms }) => return Ok(Some((i, pttl_ms, queued))),
                Err(err) => {
                    if err.outcome_unknown() {
                        taken.push(i); // the failed attempt may have taken it
                    }
                    return Err(err);
                }
            }
        }
        Ok(None)
    }

    /// Leaves the queue of name `i`, which this caller no longer waits on;
    /// a grant that landed meanwhile is given back.
    fn leave<B: Backend>(&self, backend: &B, i: usize, ttl_ms: u64, now: Instant)
    where
        K: HoldKind<B>,
    {
        let name = &self.names[i];
        match name.attempt(backend, ttl_ms, 0, true, now) {
            Ok(Attempt::Acquired(_)) => self.give_back(backend, &[i]),
            Ok(Attempt::Held { .. }) => {}
            // The registration ends at its deadline; a grant by then is
            // released once the server answers.
            Err(_) => backend.remember_orphan(name.main_key(), name.undo(), self.token, self.ttl),
        }
        name.give_up(backend);
    }
}

impl<K: HoldKeys> HoldKeys for MultiHold<'_, K> {
    fn token(&self) -> &str {
        self.token
    }

    /// The first name's: this process's orphans of the multi-lock are
    /// remembered under it.
    fn main_key(&self) -> &[u8] {
        self.names[0].main_key()
    }

    /// The first name's owner-checked TTL reset: where one script took
    /// every name, a write of the caller's own after which `WAIT` covers
    /// the whole script's writes too (one master replicates its writes in
    /// order).
    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        self.names[0].refresh_call(ttl_ms)
    }

    /// Every name released.
    fn undo(&self) -> Undo {
        Undo::Many(self.names.iter().map(HoldKeys::undo).collect())
    }
}

impl<B: Backend, K: HoldKind<B>> HoldKind<B> for MultiHold<'_, K> {
    fn attempt(
        &self,
        backend: &B,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        now: Instant,
    ) -> Result<Attempt> {
        self.took_all_at_once.set(false);
        let waiting_on = self.waiting_on.take().filter(|_| registered);
        let mut taken: Vec<usize> = self.granted.take().into_iter().collect();
        let pass = self.pass(backend, ttl_ms, wait_ms, waiting_on, now, &mut taken);
        let (held, mut pttl_ms, queue_kept) = match pass {
            Ok(None) => return Ok(Attempt::Acquired(None)),
            Ok(Some(held)) => held,
            Err(err) => {
                // An unknown outcome is the engine's to remember (every
                // name, by `undo`); else what this caller holds goes back.
                if !err.outcome_unknown() {
                    self.give_back(backend, &taken);
                }
                return Err(err);
            }
        };
        // Everything back first, and only then queued on the held name:
        // a caller that queued while holding a name could hand that name
        // to a waiter that holds the one it queued on, and the two would
        // swap them for ever.
        self.give_back(backend, &taken);
        if let Some(old) = waiting_on {
            if old != held || (wait_ms == 0 && !queue_kept) {
                self.leave(backend, old, ttl_ms, now);
            }
        }
        if wait_ms > 0 && !queue_kept {
            let queued = waiting_on == Some(held);
            match self.names[held].attempt(backend, ttl_ms, wait_ms, queued, now)? {
                // Freed since: kept, and the rest taken at once.
                Attempt::Acquired(_) => {
                    self.granted.set(Some(held));
                    return Ok(Attempt::Held { pttl_ms: -2 });
                }
                Attempt::Held { pttl_ms: pttl } => pttl_ms = pttl,
            }
        }
        if wait_ms > 0 {
            self.waiting_on.set(Some(held));
        }
        Ok(Attempt::Held { pttl_ms })
    }

    fn metric_kind(&self) -> crate::metrics::Kind {
        crate::metrics::Kind::Multi
    }

    fn wake_key(&self) -> Vec<u8> {
        let waiting_on = self.waiting_on.get().unwrap_or(0);
        self.names[waiting_on].wake_key()
    }

    /// On the name this caller waits on, by its kind.
    fn wait_for_grant(&self, backend: &B, block: Duration) -> Result<Option<redis::Value>> {
        match self.waiting_on.get() {
            Some(i) => self.names[i].wait_for_grant(backend, block),
            None => {
                std::thread::sleep(block.min(WAIT_RETRY_PAUSE));
                Ok(None)
            }
        }
    }

    /// That name is the caller's (or, over Redlock, about to be): the next
    /// attempt takes the rest.
    fn granted(&self, backend: &B, popped: &redis::Value) -> Grant {
        if let Some(i) = self.waiting_on.get() {
            if let Grant::Held(_) = self.names[i].granted(backend, popped) {
                self.waiting_on.set(None);
                self.granted.set(Some(i));
            }
        }
        Grant::AttemptAgain
    }

    /// Each name's own orphans are live again too, and each kind does what
    /// it does once held.
    fn on_acquired(&self, backend: &B) {
        for name in &self.names {
            orphans::forget(backend.server(), name.main_key(), self.token);
            name.on_acquired(backend);
        }
    }

    /// A name granted to this caller is given back (an acquire that ran out
    /// just as it was freed), and each kind leaves what it left behind.
    fn give_up(&self, backend: &B) {
        if let Some(granted) = self.granted.take() {
            self.give_back(backend, &[granted]);
        }
        for name in &self.names {
            name.give_up(backend);
        }
    }

    fn stats<'s>(&'s self, _backend: &'s B) -> &'s Mutex<Stats> {
        self.stats
    }

    /// Where one script took every name, as one hold; else name by name
    /// (they may live on different nodes), all given back when one is not
    /// confirmed.
    fn confirm_replicas(&self, backend: &B, ttl: Duration) -> Result<()> {
        if self.took_all_at_once.get() {
            return backend.confirm_replicas(self, ttl);
        }
        for name in &self.names {
            if let Err(err) = backend.confirm_replicas(name, ttl) {
                let all: Vec<usize> = (0..self.names.len()).collect();
                self.give_back(backend, &all);
                return Err(err);
            }
        }
        Ok(())
    }
}
