//! Read locks: many readers or one writer on the same name.
//!
//! A writer is the plain exclusive lock of `client`; readers hold the lock
//! key as `\0r` and are listed in `<lock>:readers` (see
//! [`scripts::ACQUIRE_READ`]). Waits are the exclusive lock's: readers and
//! writers queue in one list in arrival order, a release hands the lock to
//! the next writer or to all readers at the head of the queue at once, and a
//! waiting writer goes before readers that come after it.

use std::time::{Duration, Instant};

use crate::backend::HoldKeys;
use crate::client::LockClient;
use crate::engine::{self, Grant, HoldKind};
use crate::error::{Error, Result};
use crate::keys::LockKeys;
use crate::node::Node;
use crate::orphans::Undo;
use crate::plain_holds;
use crate::release::release_read_on;
use crate::scripts::{self, Invocation};
use crate::vocab::{millis, AcquireOutcome, Attempt, Kind, Ownership, Wait};

impl LockClient {
    /// Takes a read lock on `name` for `token`: shared with other readers,
    /// never with a writer; waits as `wait` says (see
    /// [`scripts::ACQUIRE_READ`]). A writer that holds the lock under
    /// `token` steps down to a reader.
    pub fn acquire_read(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let hold = ReadHold {
            client: self,
            keys: self.keys(name),
            token,
        };
        engine::acquire(&self.node, &hold, ttl, wait)
    }

    /// Gives up `token`'s read lock on `name`: true if it held one. The last
    /// reader to leave hands the lock to whoever waits next.
    pub fn release_read(
        &self,
        name: &[u8],
        token: &str,
        acquired_at: Option<Instant>,
    ) -> Result<bool> {
        let node = &self.node;
        let released = release_read_on(&node.entry, &node.target, &self.keys(name), token)? == 1;
        node.stats
            .lock()
            .record_release(released, acquired_at.map(|t| t.elapsed()));
        Ok(released)
    }

    /// Sets a new TTL on `token`'s read lock on `name`, while it has one.
    pub fn refresh_read(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        let keys = self.keys(name);
        let refreshed: i64 = self.run(|con| {
            scripts::REFRESH_READ
                .key(&keys.lock)
                .key(keys.readers())
                .arg(token)
                .arg(millis(ttl))
                .invoke(con)
        })?;
        Ok(refreshed == 1)
    }

    /// Whether `token` holds a read lock on `name`, and for how long still.
    pub fn read_ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        let keys = self.keys(name);
        let left: i64 = self.run(|con| {
            scripts::OWNED_READ_TTL
                .key(&keys.lock)
                .key(keys.readers())
                .arg(token)
                .invoke(con)
        })?;
        Ok(if left < 0 {
            Ownership::NotMine
        } else {
            Ownership::Mine {
                remaining: Some(Duration::from_millis(left.unsigned_abs())),
            }
        })
    }
}

/// The read kind: readers listed in `<lock>:readers`, the lock key holding
/// `\0r` while any reader holds it.
struct ReadHold<'a> {
    client: &'a LockClient,
    keys: LockKeys,
    token: &'a str,
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
        match reply.as_slice() {
            [1, _] => Ok(Attempt::Acquired(None)),
            [0, pttl_ms] => Ok(Attempt::Held { pttl_ms: *pttl_ms }),
            other => Err(Error::Protocol {
                dsn: node.target.dsn.redacted().to_owned(),
                detail: format!("read acquire script returned {other:?}"),
            }),
        }
    }

    fn wake_key(&self) -> Vec<u8> {
        self.keys.wake(self.token)
    }

    fn granted(&self, _node: &Node, _popped: &redis::Value) -> Grant {
        self.client.granted(&self.keys, self.token);
        Grant::Held(None)
    }

    fn on_acquired(&self, node: &Node) {
        node.stats.lock().record_read_acquired();
        // A writer demoted to a reader holds no plain lock now.
        plain_holds::forget(&node.target, &self.keys, self.token);
    }
}
