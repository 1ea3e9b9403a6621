//! One node as the lock kinds reach it: a server, a Sentinel service's
//! master or a cluster (the pool picks the connection kind from the DSN),
//! with the metrics its acquires count in, and what the deployment can do
//! ([`Capabilities`]) so that no kind asks "is this a cluster?".

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::backend::{Backend, HoldKeys};
use crate::dsn::Dsn;
use crate::error::{Error, Result};
use crate::orphans::{self, Undo};
use crate::pool::{Pool, PoolEntry, Target};
use crate::stats::Stats;
use crate::vocab::ClientOptions;
use crate::vocab::{millis, Attempt};

/// What a deployment can do, asked by the kinds instead of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Any set of keys can be changed in one script (one server): a
    /// multi-lock takes all its names in one step. A cluster's keys of
    /// different names may live on different nodes.
    pub atomic_multi: bool,
    /// A lock taken by a plain `SET NX` may be released by a plain
    /// compare-and-delete (`release::plain`), whose re-send is told apart by
    /// the time it was sent. A cluster client re-sends on its own (a
    /// redirection, a failover) at times the caller does not see, so there
    /// every release goes through the call-marked script.
    pub plain_release: bool,
}

impl Capabilities {
    /// What a node reached through `dsn` can do.
    pub fn of(dsn: &Dsn) -> Capabilities {
        let cluster = dsn.cluster().is_some();
        Capabilities {
            atomic_multi: !cluster,
            plain_release: !cluster,
        }
    }
}

/// One node, its connection pool entry and the metrics its operations count in.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) pool: Arc<Pool>,
    /// `target`'s entry in `pool`, looked up once.
    pub(crate) entry: Arc<PoolEntry>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) target: Target,
    /// How many replicas must hold a new hold before an acquire reports it.
    pub(crate) replicas: u32,
    pub(crate) capabilities: Capabilities,
}

impl Node {
    pub(crate) fn new(
        pool: Arc<Pool>,
        stats: Arc<Mutex<Stats>>,
        dsn: Dsn,
        options: &ClientOptions,
    ) -> Node {
        Node {
            entry: pool.entry(&dsn),
            pool,
            stats,
            capabilities: Capabilities::of(&dsn),
            target: Target {
                dsn,
                connect_timeout: options.connect_timeout,
                timeout: options.timeout,
            },
            replicas: options.replicas,
        }
    }

    /// The same node on another pool (the watchdog's own).
    pub(crate) fn on_pool(&self, pool: Arc<Pool>) -> Node {
        Node {
            entry: pool.entry(&self.target.dsn),
            pool,
            ..self.clone()
        }
    }

    /// The same node, counted in other metrics.
    pub(crate) fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Node {
        Node {
            stats,
            ..self.clone()
        }
    }

    /// The node's DSN, as given: its identity (see [`crate::Locks::server`]).
    pub(crate) fn server(&self) -> &str {
        self.target.dsn.as_str()
    }

    /// Runs `op` within the command timeout (see [`PoolEntry::run`]: `op`
    /// may be sent twice).
    pub(crate) fn run<T>(
        &self,
        op: impl FnMut(&mut dyn redis::ConnectionLike) -> std::result::Result<T, redis::RedisError>,
    ) -> Result<T> {
        self.entry.run(&self.target, self.target.timeout, op)
    }

    /// An acquire script's reply read as an attempt: `{1, fence}` taken
    /// (the fencing token, or anything where the script keeps none),
    /// `{0, ms}` held by someone else whose hold ends in `ms`. Any other
    /// shape is a protocol error naming `script`.
    pub(crate) fn attempt_from(&self, reply: &[i64], script: &str) -> Result<Attempt> {
        match reply {
            [1, fence] => Ok(Attempt::Acquired(Some(*fence))),
            [0, pttl_ms] => Ok(Attempt::Held { pttl_ms: *pttl_ms }),
            other => Err(Error::Protocol {
                dsn: self.target.dsn.redacted().to_owned(),
                detail: format!("{script} script returned {other:?}"),
            }),
        }
    }

    /// Blocks on a waiter's wake list for at most `block`; never re-sent
    /// (see [`PoolEntry::pop_wake`]).
    pub(crate) fn pop_wake(&self, key: &[u8], block: Duration) -> Result<Option<redis::Value>> {
        self.entry.pop_wake(&self.target, key, block)
    }
}

impl Backend for Node {
    fn server(&self) -> &str {
        Node::server(self)
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn stats(&self) -> &Mutex<Stats> {
        &self.stats
    }

    fn pop_wake(&self, key: &[u8], block: Duration) -> Result<Option<redis::Value>> {
        Node::pop_wake(self, key, block)
    }

    fn remember_orphan(&self, lock: &[u8], undo: Undo, token: &str, ttl: Duration) {
        orphans::remember(&self.target, lock, undo, token, ttl);
    }

    fn release_now(&self, undo: &Undo, token: &str) -> Result<i64> {
        undo.run(Some((Backend::pool(self), &self.target)), token)
    }

    /// Waits until `replicas` replicas hold the hold just taken; if fewer
    /// confirm, gives it back and fails, within the command timeout.
    ///
    /// WAIT returns as soon as enough replicas acknowledge (the master asks
    /// them at once), but its timeout is only checked on the server's cron
    /// tick (hz 10: every 100 ms; WAIT 450 answered after 0.55 s on Redis
    /// 7.0), so it is given the timeout less two ticks, and at least a
    /// quarter of it.
    fn confirm_replicas(&self, hold: &dyn HoldKeys, ttl: Duration) -> Result<()> {
        let wanted = self.replicas;
        if wanted == 0 {
            return Ok(());
        }
        let timeout = self.target.timeout;
        let within = timeout
            .saturating_sub(Duration::from_millis(200))
            .max(timeout / 4)
            .max(Duration::from_millis(1));
        // WAIT counts the replicas that have every earlier write of *this*
        // connection, and the hold may have been set by another one (a
        // grant by a release): so first a write of our own, the
        // owner-checked TTL reset, in the same op so that a re-sent op
        // re-does both.
        let mut refresh = hold.refresh_call(millis(ttl));
        let confirmed = self.entry.run(&self.target, timeout * 2, |con| {
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
                dsn: self.target.dsn.redacted().to_owned(),
                wanted,
                confirmed,
                within,
            },
            Err(err) => err,
        };
        let undo = hold.undo();
        if self.release_now(&undo, hold.token()).is_err() {
            orphans::remember(&self.target, hold.main_key(), undo, hold.token(), ttl);
        }
        Err(failure)
    }
}
