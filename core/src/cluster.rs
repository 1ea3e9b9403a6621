//! Redis Cluster: a `redis-cluster://` DSN is served by redis-rs's own sync
//! cluster client (`ClusterConnection`), which keeps the slot map, routes
//! each command by its key, follows MOVED and ASK, reconnects to nodes and
//! re-sends after I/O errors and TRYAGAIN / CLUSTERDOWN / READONLY.
//!
//! The lock logic does not know about the cluster: all keys of a lock share
//! one hash slot (see `keys`), so each script runs on the one node serving
//! it, and the pool hands the same operations a `ClusterConnection` instead
//! of a `Connection`.
//!
//! # One deadline per operation
//! redis-rs re-sends a command after a timeout or a broken connection, up to
//! `retries` times, each attempt with the full read timeout, and sleeps
//! between attempts after TRYAGAIN and the like: left alone, one call could
//! take many timeouts. Each operation therefore gets one deadline (the
//! pool's read timeout from its start, see [`with_deadline`]), and the
//! node connections that the cluster client makes are [`NodeConnection`]s,
//! which bound every connect, write and read by what is left of it and fail
//! at once when nothing is left. Retry sleeps are capped at
//! [`MAX_RETRY_WAIT`], the only overrun past the deadline.
//!
//! A node connection on which a command failed without a complete reply
//! (timeout, broken) is never used again: it answers with a broken-pipe
//! error, which makes the cluster client reconnect (a late reply left in its
//! socket would otherwise be read as the answer to the next command).
//!
//! Re-sends are safe: every script acts once per call (see `scripts`).

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClientBuilder, ClusterConnection, Connect};
use redis::{
    Cmd, Connection, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisError, RedisResult,
    Value,
};

use crate::connect::{open, OpenError, Target};
use crate::dsn::ClusterDsn;
use crate::error::{Error, Result};

/// Attempts of one command by the cluster client after the first (MOVED,
/// ASK, reconnects, TRYAGAIN …), all within the operation's deadline.
const RETRIES: u32 = 6;
/// Shortest sleep before re-sending after TRYAGAIN, CLUSTERDOWN, …
const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);
/// Longest such sleep; redis-rs does not stop a sleep at the deadline.
pub const MAX_RETRY_WAIT: Duration = Duration::from_millis(100);

thread_local! {
    /// The deadline of the operation running on this thread, if any.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` as the bound of every node connect, write and
/// read that the cluster client makes on this thread.
pub(crate) fn with_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

fn out_of_time() -> RedisError {
    RedisError::from(io::Error::new(
        io::ErrorKind::TimedOut,
        "the operation's time ran out",
    ))
}

/// The cluster client for `target`, connected to the first seed that
/// answers and to every node of its slot map, all before `deadline`.
pub(crate) fn connect(
    target: &Target,
    cluster: &ClusterDsn,
    deadline: Instant,
) -> Result<ClusterConnection<NodeConnection>> {
    let redacted = target.dsn.redacted();
    let settings = target.dsn.connection_info().redis_settings();
    let scheme = if cluster.tls { "rediss" } else { "redis" };
    let mut seeds = Vec::with_capacity(cluster.seeds.len());
    for (host, port) in &cluster.seeds {
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let info = format!("{scheme}://{address}")
            .into_connection_info()
            .map_err(|e| Error::from_redis(redacted, &e, target.connect_timeout))?;
        let mut redis = info.redis_settings().clone();
        if let Some(user) = settings.username() {
            redis = redis.set_username(user);
        }
        if let Some(password) = settings.password() {
            redis = redis.set_password(password);
        }
        seeds.push(info.set_redis_settings(redis));
    }
    let max_wait = MAX_RETRY_WAIT
        .min(target.timeout / 4)
        .max(MIN_RETRY_WAIT + Duration::from_millis(1));
    let client = ClusterClientBuilder::new(seeds)
        .retries(RETRIES)
        .min_retry_wait(millis(MIN_RETRY_WAIT))
        .max_retry_wait(millis(max_wait))
        .connection_timeout(target.connect_timeout)
        .response_timeout(target.timeout)
        .build()
        .map_err(|e| Error::InvalidDsn {
            dsn: redacted.to_owned(),
            reason: e.to_string(),
        })?;
    let con = with_deadline(deadline, || {
        client.get_generic_connection::<NodeConnection>()
    })
    .map_err(|e| Error::from_redis(redacted, &e, target.connect_timeout))?;
    Ok(con)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A connection to one cluster node, bounded by the current operation's
/// deadline (see the module documentation).
pub struct NodeConnection {
    con: Connection,
    /// A command failed on it without a complete reply.
    broken: bool,
}

impl NodeConnection {
    /// Bounds the next write and read by what is left of the deadline.
    fn bound(&self) -> RedisResult<()> {
        if self.broken {
            return Err(RedisError::from(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection dropped after an incomplete reply",
            )));
        }
        if let Some(deadline) = deadline() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(out_of_time());
            }
            self.con.set_read_timeout(Some(left))?;
            self.con.set_write_timeout(Some(left))?;
        }
        Ok(())
    }

    fn note<T>(&mut self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result {
            if e.code().is_none() {
                self.broken = true;
            }
        }
        result
    }
}

impl Connect for NodeConnection {
    fn connect<T>(info: T, timeout: Option<Duration>) -> RedisResult<Self>
    where
        T: IntoConnectionInfo,
    {
        let info: ConnectionInfo = info.into_connection_info()?;
        let now = Instant::now();
        let mut until = now + timeout.unwrap_or(Duration::from_secs(1));
        if let Some(deadline) = deadline() {
            until = until.min(deadline);
        }
        let con = open(&info, until).map_err(|e| match e {
            OpenError::OutOfTime => out_of_time(),
            OpenError::Io(e) | OpenError::Refused(e) => e,
        })?;
        Ok(NodeConnection { con, broken: false })
    }

    fn send_packed_command(&mut self, cmd: &[u8]) -> RedisResult<()> {
        self.bound()?;
        let result = self.con.send_packed_command(cmd);
        self.note(result)
    }

    fn set_write_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.con.set_write_timeout(dur)
    }

    fn set_read_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.con.set_read_timeout(dur)
    }

    fn recv_response(&mut self) -> RedisResult<Value> {
        self.bound()?;
        let result = self.con.recv_response();
        self.note(result)
    }
}

impl ConnectionLike for NodeConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.bound()?;
        let result = self.con.req_packed_command(cmd);
        self.note(result)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.bound()?;
        let result = self.con.req_command(cmd);
        self.note(result)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.bound()?;
        let result = self.con.req_packed_commands(cmd, offset, count);
        self.note(result)
    }

    fn get_db(&self) -> i64 {
        self.con.get_db()
    }

    fn check_connection(&mut self) -> bool {
        if self.bound().is_err() {
            return false;
        }
        let ok = self.con.check_connection();
        if !ok {
            self.broken = true;
        }
        ok
    }

    fn is_open(&self) -> bool {
        !self.broken && self.con.is_open()
    }
}
