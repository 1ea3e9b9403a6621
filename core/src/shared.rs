//! Read locks: many readers or one writer on the same name.
//!
//! A writer is the plain exclusive lock of `client`; readers hold the lock
//! key as `\0r` and are listed in `<lock>:readers` (see
//! [`scripts::ACQUIRE_READ`]). Waits are the exclusive lock's: readers and
//! writers queue in one list in arrival order, a release hands the lock to
//! the next writer or to all readers at the head of the queue at once, and a
//! waiting writer goes before readers that come after it.

use std::time::{Duration, Instant};

use crate::client::LockClient;
use crate::engine;
use crate::error::Result;
use crate::kinds::read::ReadHold;
use crate::release::release_read_on;
use crate::scripts::{self};
use crate::vocab::{millis, AcquireOutcome, Ownership, Wait};

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
        let released =
            release_read_on(&node.entry, &node.target, &self.keys(name), token).map(|n| n == 1);
        node.stats.lock().record_release(
            crate::metrics::Kind::Read,
            &released,
            acquired_at.map(|t| t.elapsed()),
        );
        released
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
