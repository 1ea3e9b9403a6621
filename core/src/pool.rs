//! One Redis connection per DSN per process, opened lazily, kept across calls
//! (and so across PHP requests), never used after `fork()` by the child.
//!
//! A connection is checked out for one operation and checked back in only
//! when the operation ended cleanly. One on which a command failed or timed
//! out mid-reply is dropped: a late reply left in its socket would otherwise
//! be read as the answer to the next command (phpredis issue 614).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, RedisConnectionInfo, RedisError};

use crate::dsn::Dsn;
use crate::error::{Error, Result};

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server.
    pub dsn: Dsn,
    /// Limit for establishing a connection (TCP/unix connect plus AUTH/SELECT).
    pub connect_timeout: Duration,
    /// Limit for one command's reply.
    pub timeout: Duration,
}

struct Pooled {
    con: Connection,
    pid: u32,
    read_timeout: Option<Duration>,
}

/// Open connections, keyed by DSN text.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Pooled>>,
}

static GLOBAL: Lazy<Arc<Pool>> = Lazy::new(|| Arc::new(Pool::default()));

impl Pool {
    /// The process-wide pool that the PHP classes share.
    pub fn global() -> Arc<Pool> {
        Arc::clone(&GLOBAL)
    }

    /// Runs `op` on this process's connection to `target`, connecting first
    /// if there is none. `read_timeout` bounds the reply (a blocking command
    /// passes its own block time plus the command timeout).
    ///
    /// A pooled connection found broken before any reply is replaced once and
    /// `op` run again: that is the idle connection that a Redis restart or an
    /// idle timeout closed. A freshly made connection is not retried. The
    /// break may also come after Redis ran the command, so every `op` must be
    /// safe to run twice (see `scripts`, "Safe to run twice").
    pub fn run<T>(
        &self,
        target: &Target,
        read_timeout: Duration,
        mut op: impl FnMut(&mut Connection) -> std::result::Result<T, RedisError>,
    ) -> Result<T> {
        let mut retried = false;
        loop {
            let (mut pooled, fresh) = self.checkout(target)?;
            if pooled.read_timeout != Some(read_timeout) {
                if let Err(e) = pooled.con.set_read_timeout(Some(read_timeout)) {
                    return Err(Error::from_redis(target.dsn.redacted(), &e, read_timeout));
                }
                pooled.read_timeout = Some(read_timeout);
            }
            match op(&mut pooled.con) {
                Ok(value) => {
                    self.checkin(target, pooled);
                    return Ok(value);
                }
                Err(e) if e.code().is_some() => {
                    // A complete error reply was read: the stream is in step.
                    self.checkin(target, pooled);
                    return Err(Error::from_redis(target.dsn.redacted(), &e, read_timeout));
                }
                Err(e) => {
                    drop(pooled);
                    let stale = !fresh && !retried && !e.is_timeout() && is_broken(&e);
                    if stale {
                        retried = true;
                        continue;
                    }
                    return Err(Error::from_redis(target.dsn.redacted(), &e, read_timeout));
                }
            }
        }
    }

    /// Whether this process holds a working connection to `dsn` (one that
    /// failed is never kept).
    pub fn is_connected(&self, dsn: &Dsn) -> bool {
        let pid = crate::pid::current();
        self.idle
            .lock()
            .get(dsn.as_str())
            .is_some_and(|p| p.pid == pid)
    }

    fn checkout(&self, target: &Target) -> Result<(Pooled, bool)> {
        let pid = crate::pid::current();
        let existing = self.idle.lock().remove(target.dsn.as_str());
        if let Some(pooled) = existing {
            if pooled.pid == pid {
                return Ok((pooled, false));
            }
            // Inherited across fork(): the socket is the parent's. Closing it
            // here would be harmless to the parent, but a redis-rs drop may
            // write to it in future versions; forgetting it costs one fd.
            std::mem::forget(pooled);
        }
        Ok((connect(target, pid)?, true))
    }

    fn checkin(&self, target: &Target, pooled: Pooled) {
        let mut idle = self.idle.lock();
        // Concurrent users (threads in tests) may have made a second
        // connection; keep one.
        idle.entry(target.dsn.as_str().to_owned()).or_insert(pooled);
    }
}

/// Opens a connection, spending at most `connect_timeout` in all.
///
/// redis-rs's own handshake (CLIENT SETINFO, AUTH, SELECT) reads each reply
/// with the whole timeout, so a stalled server would cost one timeout per
/// setup command. The handshake is therefore done here, each command bounded
/// by what is left of one deadline.
fn connect(target: &Target, pid: u32) -> Result<Pooled> {
    let redacted = target.dsn.redacted();
    let deadline = Instant::now() + target.connect_timeout;
    let fail = |e: &RedisError| Error::from_redis(redacted, e, target.connect_timeout);
    let info = target.dsn.connection_info();
    let settings = info.redis_settings();
    // As hiredis and phpredis do: with Nagle on, a command written while
    // earlier data is still unacknowledged would wait for that ACK.
    let bare = info
        .clone()
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name())
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let mut con = Client::open(bare)
        .and_then(|client| client.get_connection_with_timeout(target.connect_timeout))
        .map_err(|e| fail(&e))?;

    let mut handshake: Vec<redis::Cmd> = Vec::new();
    if let Some(password) = settings.password() {
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = settings.username() {
            auth.arg(user);
        }
        handshake.push(auth.arg(password).clone());
    }
    if settings.db() != 0 {
        handshake.push(redis::cmd("SELECT").arg(settings.db()).clone());
    }
    for cmd in handshake {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                dsn: redacted.to_owned(),
                after: target.connect_timeout,
            });
        }
        con.set_read_timeout(Some(left)).map_err(|e| fail(&e))?;
        cmd.query::<()>(&mut con).map_err(|e| match e.code() {
            // A refused AUTH/SELECT (WRONGPASS, NOAUTH, ERR …) means this
            // server cannot be used as configured.
            Some(_) => Error::Unavailable {
                dsn: redacted.to_owned(),
                detail: e.to_string(),
            },
            None => fail(&e),
        })?;
    }
    con.set_write_timeout(Some(target.timeout))
        .map_err(|e| fail(&e))?;
    Ok(Pooled {
        con,
        pid,
        read_timeout: None,
    })
}

fn is_broken(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error()
}
