//! One Redis connection per DSN per process, opened lazily, kept across calls
//! (and so across PHP requests), never used after `fork()` by the child.
//!
//! A connection is checked out for one operation and checked back in only
//! when the operation ended cleanly. One on which a command failed or timed
//! out mid-reply is dropped: a late reply left in its socket would otherwise
//! be read as the answer to the next command (phpredis issue 614).

use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use redis::cluster::ClusterConnection;
use redis::{Connection, ConnectionLike, RedisError};
use rustc_hash::FxHashMap;

use crate::cluster::NodeConnection;
use crate::connect::open;
pub use crate::connect::Target;
use crate::dsn::Dsn;
use crate::error::{Error, Result};

/// One server's connection, or a cluster client with its node connections.
enum Con {
    Single(Connection),
    Cluster(Box<ClusterConnection<NodeConnection>>),
}

struct Pooled {
    con: Con,
    pid: u32,
    read_timeout: Option<Duration>,
}

/// Each DSN's [`PoolEntry`], keyed by DSN text.
#[derive(Default)]
pub struct Pool {
    entries: Mutex<FxHashMap<String, Arc<PoolEntry>>>,
}

/// One DSN's entry in a pool: its idle connection, if any (None while it is
/// checked out), and what its server was found to offer. A client looks its
/// entry up once, when it is made, so that a command costs no look-up by
/// DSN text.
#[derive(Default)]
pub struct PoolEntry {
    idle: Mutex<Option<Pooled>>,
    /// Found out on first use; a fork's child inherits them (same server).
    pub(crate) server: ServerFacts,
}

/// What a server offers beyond Redis 7.0's commands, or lacks of them.
#[derive(Default)]
pub(crate) struct ServerFacts {
    /// Its compare-and-delete, as `release` encodes it (0: not known yet).
    pub(crate) native_delete: AtomicU8,
    /// It refused `SET … NX GET` as a syntax error (Redis before 7.0): every
    /// acquire goes through the script.
    pub(crate) no_set_nx_get: AtomicBool,
}

static GLOBAL: Lazy<Arc<Pool>> = Lazy::new(|| Arc::new(Pool::default()));

impl Pool {
    /// The process-wide pool that the PHP classes share.
    pub fn global() -> Arc<Pool> {
        Arc::clone(&GLOBAL)
    }

    /// `dsn`'s entry in this pool, made on first use.
    pub fn entry(&self, dsn: &Dsn) -> Arc<PoolEntry> {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.get(dsn.as_str()) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(PoolEntry::default());
        entries.insert(dsn.as_str().to_owned(), Arc::clone(&entry));
        entry
    }

    /// [`PoolEntry::run`] on `target`'s entry.
    pub fn run<T>(
        &self,
        target: &Target,
        read_timeout: Duration,
        op: impl FnMut(&mut dyn ConnectionLike) -> std::result::Result<T, RedisError>,
    ) -> Result<T> {
        self.entry(&target.dsn).run(target, read_timeout, op)
    }

    /// Whether this process holds a working connection to `dsn` (one that
    /// failed is never kept).
    pub fn is_connected(&self, dsn: &Dsn) -> bool {
        let entry = self.entries.lock().get(dsn.as_str()).cloned();
        entry.is_some_and(|entry| entry.is_connected())
    }
}

impl PoolEntry {
    /// Runs `op` on this process's connection to `target`, connecting first
    /// if there is none. `read_timeout` bounds the reply (a blocking command
    /// passes its own block time plus the command timeout).
    ///
    /// A pooled connection found broken before any reply is replaced once and
    /// `op` run again: that is the idle connection that a Redis restart or an
    /// idle timeout closed. A freshly made connection is not retried. The
    /// break may also come after Redis ran the command, so every `op` must be
    /// safe to run twice (see `scripts`, "Safe to run twice").
    ///
    /// On a cluster (`redis-cluster://`), the cluster client follows
    /// redirections and reconnects to nodes itself, and the whole of `op`,
    /// with all its re-sends, is bounded by `read_timeout` from its start
    /// (see `cluster`); a pooled cluster client that failed without a reply
    /// (its slot map may name a master that died) is replaced once within
    /// that time.
    pub fn run<T>(
        &self,
        target: &Target,
        read_timeout: Duration,
        mut op: impl FnMut(&mut dyn ConnectionLike) -> std::result::Result<T, RedisError>,
    ) -> Result<T> {
        let mut retried = false;
        let mut op_deadline = None;
        loop {
            let (mut pooled, fresh) = self.checkout(target, op_deadline)?;
            let result = match &mut pooled.con {
                Con::Single(con) => {
                    if pooled.read_timeout != Some(read_timeout) {
                        if let Err(e) = con.set_read_timeout(Some(read_timeout)) {
                            return Err(Error::from_redis(target.dsn.redacted(), &e, read_timeout));
                        }
                        pooled.read_timeout = Some(read_timeout);
                    }
                    op(con)
                }
                Con::Cluster(con) => {
                    let deadline =
                        *op_deadline.get_or_insert_with(|| Instant::now() + read_timeout);
                    crate::cluster::with_deadline(deadline, || op(con.as_mut()))
                }
            };
            match result {
                Ok(value) => {
                    self.checkin(pooled);
                    return Ok(value);
                }
                Err(e) if e.code().is_some() => {
                    // A complete error reply was read: the stream is in step.
                    let err = Error::from_redis(target.dsn.redacted(), &e, read_timeout);
                    let rediscover =
                        target.dsn.sentinel().is_some() || target.dsn.cluster().is_some();
                    if rediscover && err.is_unavailable() {
                        // READONLY (a master demoted by a failover),
                        // MASTERDOWN, CLUSTERDOWN, LOADING …: this may no
                        // longer be the master, or the slot map may be stale.
                        // Dropping the connection makes the next call ask the
                        // Sentinels, or the cluster's seeds, again.
                        drop(pooled);
                    } else {
                        self.checkin(pooled);
                    }
                    return Err(err);
                }
                Err(e) => {
                    drop(pooled);
                    let time_left = op_deadline.is_none_or(|d| d > Instant::now());
                    let stale = !fresh && !retried && !e.is_timeout() && is_broken(&e) && time_left;
                    if stale {
                        retried = true;
                        continue;
                    }
                    return Err(Error::from_redis(target.dsn.redacted(), &e, read_timeout));
                }
            }
        }
    }

    /// `BLPOP key block` (a waiter's wait for its grant): the popped value,
    /// or None when `block` ran out. `block` is at least a millisecond
    /// (`BLPOP 0` would block for ever) and the reply may take `timeout`
    /// more.
    ///
    /// Never sent twice: where [`PoolEntry::run`] would re-send (a pooled
    /// connection broke before the reply), the first BLPOP may have popped
    /// the grant and lost its answer, and a second would block for the whole
    /// of `block` while the caller already holds what it waits for. None is
    /// answered instead: the caller's next attempt finds the grant, or
    /// registers and waits again.
    pub(crate) fn pop_wake<T: redis::FromRedisValue>(
        &self,
        target: &Target,
        key: &[u8],
        block: Duration,
    ) -> Result<Option<T>> {
        let block = block.max(Duration::from_millis(1));
        let seconds = format!("{:.3}", block.as_secs_f64());
        let mut sent = false;
        let popped: Option<(Vec<u8>, T)> = self.run(target, block + target.timeout, |con| {
            if std::mem::replace(&mut sent, true) {
                return Ok(None);
            }
            redis::cmd("BLPOP").arg(key).arg(&seconds).query(con)
        })?;
        Ok(popped.map(|(_, value)| value))
    }

    /// Whether this process's connection is here (not checked out).
    fn is_connected(&self) -> bool {
        let pid = crate::pid::current();
        self.idle.lock().as_ref().is_some_and(|p| p.pid == pid)
    }

    /// This process's connection to `target`, or a new one (true). A new
    /// cluster client is made within `within`, when given, as well as within
    /// `connect_timeout`.
    fn checkout(&self, target: &Target, within: Option<Instant>) -> Result<(Pooled, bool)> {
        let pid = crate::pid::current();
        let existing = self.idle.lock().take();
        if let Some(pooled) = existing {
            if pooled.pid == pid {
                return Ok((pooled, false));
            }
            // Inherited across fork(): the socket is the parent's. Closing it
            // here would be harmless to the parent, but a redis-rs drop may
            // write to it in future versions; forgetting it costs one fd.
            std::mem::forget(pooled);
        }
        Ok((connect(target, pid, within)?, true))
    }

    fn checkin(&self, pooled: Pooled) {
        // Concurrent users (threads in tests) may have made a second
        // connection; keep one.
        self.idle.lock().get_or_insert(pooled);
    }
}

/// A single server's connection checked out of the pool by a caller that
/// drives it itself: Redlock writes a command to every master before it
/// reads any reply (see `redlock`). Give it back with [`Pool::give_back`]
/// only when every reply sent on it was read; otherwise drop it.
pub(crate) struct Lease {
    pooled: Pooled,
    /// Made for this call rather than taken from the pool.
    pub(crate) fresh: bool,
}

impl Lease {
    /// The connection, its reads bounded by `read_timeout`.
    pub(crate) fn connection(
        &mut self,
        read_timeout: Duration,
    ) -> std::result::Result<&mut Connection, RedisError> {
        let Con::Single(con) = &mut self.pooled.con else {
            // Redlock's masters are single-server DSNs (checked when parsed).
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "a cluster connection cannot be leased",
            )));
        };
        if self.pooled.read_timeout != Some(read_timeout) {
            con.set_read_timeout(Some(read_timeout))?;
            self.pooled.read_timeout = Some(read_timeout);
        }
        Ok(con)
    }
}

impl Pool {
    /// This process's connection to the single server `target`, or a new
    /// one made within `connect_timeout`.
    pub(crate) fn lease(&self, target: &Target) -> Result<Lease> {
        let (pooled, fresh) = self.entry(&target.dsn).checkout(target, None)?;
        Ok(Lease { pooled, fresh })
    }

    /// Returns a leased connection whose replies were all read.
    pub(crate) fn give_back(&self, target: &Target, lease: Lease) {
        self.entry(&target.dsn).checkin(lease.pooled);
    }
}

/// Opens a connection, spending at most `connect_timeout` in all (and, for
/// a cluster, no time past `within`): for a `redis-sentinel://` DSN, that
/// includes asking the Sentinels for the master and checking its role (see
/// `sentinel`); for a `redis-cluster://` DSN, reading the slot map from a
/// seed and connecting to the nodes (see `cluster`).
fn connect(target: &Target, pid: u32, within: Option<Instant>) -> Result<Pooled> {
    let redacted = target.dsn.redacted();
    let mut deadline = Instant::now() + target.connect_timeout;
    if let Some(cluster) = target.dsn.cluster() {
        if let Some(within) = within {
            deadline = deadline.min(within);
        }
        return Ok(Pooled {
            con: Con::Cluster(Box::new(crate::cluster::connect(
                target, cluster, deadline,
            )?)),
            pid,
            read_timeout: None,
        });
    }
    let con = match target.dsn.sentinel() {
        None => open(target.dsn.connection_info(), deadline)
            .map_err(|e| e.into_error(redacted, target.connect_timeout))?,
        Some(sentinels) => crate::sentinel::connect_master(target, sentinels, deadline)?,
    };
    con.set_write_timeout(Some(target.timeout))
        .map_err(|e| Error::from_redis(redacted, &e, target.connect_timeout))?;
    Ok(Pooled {
        con: Con::Single(con),
        pid,
        read_timeout: None,
    })
}

fn is_broken(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error()
}
