//! The read kind: many readers or one writer on the same name (see
//! `shared` and [`scripts::ACQUIRE_READ`]).

use std::time::Instant;

use crate::backend::HoldKeys;
use crate::engine::{Grant, HoldKind};
use crate::error::Result;
use crate::keys::LockKeys;
use crate::kinds::exclusive::granted;
use crate::node::Node;
use crate::orphans::Undo;
use crate::plain_holds;
use crate::scripts::{self, Invocation};
use crate::vocab::{Attempt, Kind};

/// The read kind: readers listed in `<lock>:readers`, the lock key holding
/// `\0r` while any reader holds it.
pub(crate) struct ReadHold<'a> {
    pub(crate) keys: LockKeys,
    pub(crate) token: &'a str,
}

impl HoldKeys for ReadHold<'_> {
    fn token(&self) -> &str {
        self.token
    }

    fn main_key(&self) -> &[u8] {
        &self.keys.lock
    }

    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        scripts::REFRESH_READ
            .key(&self.keys.lock)
            .key(self.keys.readers())
            .arg(self.token)
            .arg(ttl_ms)
    }

    fn undo(&self) -> Undo {
        Undo::Lock(Kind::Shared, self.keys.clone())
    }
}

impl HoldKind<Node> for ReadHold<'_> {
    /// Registers the caller as a waiter when it must wait and `wait_ms` > 0.
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
            scripts::ACQUIRE_READ
                .key(&keys.lock)
                .key(keys.waiters())
                .key(keys.queue())
                .key(keys.wake(token))
                .key(keys.readers())
                .key(keys.fence())
                .arg(token)
                .arg(ttl_ms)
                .arg(wait_ms)
                .arg(if registered { "1" } else { "0" })
                .invoke(con)
        })?;
        // Readers have no fencing token.
        Ok(match node.attempt_from(&reply, "read acquire")? {
            Attempt::Acquired(_) => Attempt::Acquired(None),
            held => held,
        })
    }

    fn metric_kind(&self) -> crate::metrics::Kind {
        crate::metrics::Kind::Read
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    fn granted(&self, node: &Node, _popped: &redis::Value) -> Grant {
        granted(node, &self.keys, self.token);
        Grant::Held(None)
    }

    fn on_acquired(&self, node: &Node) {
        node.stats.lock().record_read_acquired();
        // A writer demoted to a reader holds no plain lock now.
        plain_holds::forget(&node.target, &self.keys, self.token);
    }
}
