//! Opening one connection within a deadline: the handshake bounded as a
//! whole, for the pool, the Sentinel lookup and the cluster client alike.

use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionInfo, RedisConnectionInfo, RedisError};

use crate::dsn::Dsn;
use crate::error::Error;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server.
    pub dsn: Dsn,
    /// Limit for establishing a connection (TCP/unix connect plus AUTH/SELECT;
    /// for a Sentinel DSN also asking the Sentinels and checking the master's ROLE).
    pub connect_timeout: Duration,
    /// Limit for one command's reply.
    pub timeout: Duration,
}

/// Why [`open`] gave up.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The deadline passed before the handshake ended.
    OutOfTime,
    /// No connection, or it broke or timed out.
    Io(RedisError),
    /// The server refused AUTH or SELECT (WRONGPASS, NOAUTH, ERR …): it
    /// cannot be used as configured.
    Refused(RedisError),
}

impl OpenError {
    pub(crate) fn into_error(self, redacted: &str, connect_timeout: Duration) -> Error {
        match self {
            OpenError::OutOfTime => Error::Timeout {
                dsn: redacted.to_owned(),
                after: connect_timeout,
            },
            OpenError::Io(e) => Error::from_redis(redacted, &e, connect_timeout),
            OpenError::Refused(e) => Error::Unavailable {
                dsn: redacted.to_owned(),
                detail: e.to_string(),
            },
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::OutOfTime => f.write_str("no time left"),
            OpenError::Io(e) if e.is_timeout() => f.write_str("no answer in time"),
            OpenError::Io(e) | OpenError::Refused(e) => write!(f, "{e}"),
        }
    }
}

/// Connects to `info`'s address and authenticates and selects its database
/// as `info` says, all before `deadline`. The write timeout is left at
/// what is left of the deadline; the caller sets its own.
///
/// redis-rs's own handshake (CLIENT SETINFO, AUTH, SELECT) reads each reply
/// with the whole timeout, so a stalled server would cost one timeout per
/// setup command. The handshake is therefore done here, each command bounded
/// by what is left of one deadline.
pub(crate) fn open(
    info: &ConnectionInfo,
    deadline: Instant,
) -> std::result::Result<Connection, OpenError> {
    let settings = info.redis_settings();
    let mut con = connect_bare(info, deadline)?;
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
        bound_by(&con, deadline)?;
        cmd.query::<()>(&mut con).map_err(|e| match e.code() {
            Some(_) => OpenError::Refused(e),
            None => OpenError::Io(e),
        })?;
    }
    Ok(con)
}

/// A connection to `info`'s address with no handshake at all (no AUTH, no
/// SELECT, no CLIENT SETINFO), made before `deadline`, its reads and writes
/// bounded by what is left of it.
pub(crate) fn connect_bare(
    info: &ConnectionInfo,
    deadline: Instant,
) -> std::result::Result<Connection, OpenError> {
    let left = time_left(deadline)?;
    // As hiredis and phpredis do: with Nagle on, a command written while
    // earlier data is still unacknowledged would wait for that ACK.
    let bare = info
        .clone()
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name())
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let con = Client::open(bare)
        .and_then(|client| client.get_connection_with_timeout(left))
        .map_err(OpenError::Io)?;
    bound_by(&con, deadline)?;
    Ok(con)
}

/// Bounds the next reads and writes on `con` by what is left of `deadline`.
pub(crate) fn bound_by(con: &Connection, deadline: Instant) -> std::result::Result<(), OpenError> {
    let left = time_left(deadline)?;
    con.set_read_timeout(Some(left)).map_err(OpenError::Io)?;
    con.set_write_timeout(Some(left)).map_err(OpenError::Io)
}

fn time_left(deadline: Instant) -> std::result::Result<Duration, OpenError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(OpenError::OutOfTime);
    }
    Ok(left)
}
