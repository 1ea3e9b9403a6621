//! Named locks on one server (also behind a Sentinel service or a cluster):
//! acquire (the exclusive kind, `kinds::exclusive`, under the engine),
//! release, refresh and the reads. Read locks are in `shared`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::dsn::Dsn;
use crate::engine;
use crate::error::Result;
use crate::keys::LockKeys;
use crate::kinds::exclusive::ExclusiveHold;
use crate::node::Node;
use crate::orphans::{self, Undo};
use crate::plain_holds;
use crate::pool::Pool;
use crate::release::{self, force_release_script, release_on};
use crate::scripts;
use crate::stats::Stats;
use crate::vocab::{millis, AcquireOutcome, ClientOptions, Kind, Ownership, Wait};

/// Lock operations against one Redis server with one set of options.
///
/// Cheap to create: connections live in the shared [`Pool`].
#[derive(Clone)]
pub struct LockClient {
    pub(crate) node: Node,
    prefix: Vec<u8>,
    /// Whether acquires draw a fencing token.
    pub(crate) fencing: bool,
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
            node: Node::new(pool, stats, dsn, &options),
            prefix: options.prefix,
            fencing: options.fencing,
        }
    }

    /// The same client on another pool (the watchdog's own, so that its
    /// renewals never take a connection a caller is using).
    pub fn on_pool(&self, pool: Arc<Pool>) -> LockClient {
        LockClient {
            node: self.node.on_pool(pool),
            ..self.clone()
        }
    }

    /// The same, counted in other metrics.
    pub fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> LockClient {
        LockClient {
            node: self.node.with_stats(stats),
            ..self.clone()
        }
    }

    /// The server this client talks to.
    pub fn dsn(&self) -> &Dsn {
        &self.node.target.dsn
    }

    /// The server's DSN, as given: see [`crate::Locks::server`].
    pub fn server(&self) -> &str {
        self.node.server()
    }

    /// Remembers `token`'s `kind` hold of `name` for a later release (see
    /// [`crate::Locks::release_later`]).
    pub fn release_later(&self, kind: Kind, name: &[u8], token: &str, ttl: Duration) {
        let keys = self.keys(name);
        plain_holds::forget(&self.node.target, &keys, token);
        orphans::remember(
            &self.node.target,
            &keys.lock.clone(),
            Undo::Lock(kind, keys),
            token,
            ttl,
        );
    }

    /// The Redis keys of lock `name`.
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
        let hold = ExclusiveHold {
            node: &self.node,
            fencing: self.fencing,
            keys: self.keys(name),
            token,
        };
        engine::acquire(&self.node, &hold, ttl, wait)
    }

    /// Deletes lock `name` if `token` still holds it. False when it had
    /// expired or been taken over: the other holder's lock is left alone.
    pub fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let keys = self.keys(name);
        let node = &self.node;
        let plain = plain_holds::take(&node.target, &keys, token)
            .filter(|_| node.capabilities.plain_release);
        let released = match plain {
            Some(expires) => release::plain(&node.entry, &node.target, &keys, token, expires),
            None => release_on(&node.entry, &node.target, &keys, token).map(|n| n == 1),
        };
        node.stats.lock().record_release(
            crate::metrics::Kind::Lock,
            &released,
            acquired_at.map(|t| t.elapsed()),
        );
        released
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
            plain_holds::extend(&self.node.target, &keys, token, sent + ttl);
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
        let mut force_release = force_release_script(&self.keys(name), &self.node.target);
        let deleted: i64 = self.run(|con| force_release.invoke(con))?;
        Ok(deleted == 1)
    }

    pub(crate) fn run<T>(
        &self,
        op: impl FnMut(&mut dyn redis::ConnectionLike) -> std::result::Result<T, redis::RedisError>,
    ) -> Result<T> {
        self.node.run(op)
    }
}
