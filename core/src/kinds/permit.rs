//! The permit kind: one of at most `limit` holders of a semaphore (see
//! `semaphore`).

use std::time::{Duration, Instant};

use crate::backend::HoldKeys;
use crate::engine;
use crate::engine::{Grant, HoldKind};
use crate::error::Result;
use crate::node::Node;
use crate::orphans::Undo;
use crate::scripts::Invocation;
use crate::semaphore::{SemaphoreKeys, Semaphores, ACQUIRE, REFRESH};
use crate::vocab::{AcquireOutcome, Attempt, Wait};

/// The permit kind: a holder's token in the permits' sorted set, at most
/// `limit` of them.
pub(crate) struct PermitHold<'a> {
    pub(crate) semaphores: &'a Semaphores,
    pub(crate) keys: SemaphoreKeys,
    pub(crate) limit: u32,
    pub(crate) token: &'a str,
}

impl Semaphores {
    /// Takes a permit of `name` (at most `limit` holders) for `token` with
    /// `ttl`, waiting as `wait` says, in arrival order. No free permit is an
    /// `Ok` outcome; errors are faults.
    pub fn acquire(
        &self,
        name: &[u8],
        limit: u32,
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let hold = PermitHold {
            semaphores: self,
            keys: self.keys(name),
            limit,
            token,
        };
        engine::acquire(&self.node, &hold, ttl, wait)
    }
}

impl HoldKeys for PermitHold<'_> {
    fn token(&self) -> &str {
        self.token
    }

    fn main_key(&self) -> &[u8] {
        &self.keys.permits
    }

    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        REFRESH.key(&self.keys.permits).arg(self.token).arg(ttl_ms)
    }

    fn undo(&self) -> Undo {
        self.semaphores.undo(self.keys.clone(), self.token)
    }
}

impl HoldKind<Node> for PermitHold<'_> {
    /// The reply's second item, while no permit is free, is when the first
    /// permit expires (ms from now): the wait ends then at the latest.
    fn attempt(
        &self,
        node: &Node,
        ttl_ms: u64,
        wait_ms: u64,
        registered: bool,
        _now: Instant,
    ) -> Result<Attempt> {
        let (keys, token) = (&self.keys, self.token);
        let reply: Vec<i64> = node.run(|con| {
            ACQUIRE
                .key(&keys.permits)
                .key(&keys.waiters)
                .key(&keys.queue)
                .key(keys.wake(token))
                .arg(token)
                .arg(self.limit)
                .arg(ttl_ms)
                .arg(wait_ms)
                .arg(if registered { "1" } else { "0" })
                .invoke(con)
        })?;
        // Permits have no fencing token.
        Ok(match node.attempt_from(&reply, "semaphore acquire")? {
            Attempt::Acquired(_) => Attempt::Acquired(None),
            held => held,
        })
    }

    fn metric_kind(&self) -> crate::metrics::Kind {
        crate::metrics::Kind::Semaphore
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    fn granted(&self, _node: &Node, _popped: &redis::Value) -> Grant {
        Grant::Held(None)
    }
}
