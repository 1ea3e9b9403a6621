//! Redis Sentinel: finding the current master of a `redis-sentinel://` DSN.
//!
//! The lock logic does not know about Sentinel. The pool, when it needs a
//! new connection for such a DSN (first use, or the old one broke or was
//! dropped), calls [`connect_master`]: it asks the Sentinels in turn
//! (`SENTINEL get-master-addr-by-name <service>`), connects to the address
//! named, authenticates and selects the database as the DSN says, and checks
//! with `ROLE` that the node is a master. A node that answers `slave` (a
//! Sentinel that has not yet seen a failover) is not used: the next
//! Sentinel's answer is tried. The pool keys the connection by the DSN text,
//! as for one server; after a failover the old connection breaks (Sentinel
//! kills the clients of a demoted master) or answers READONLY, and the pool
//! drops it (see `Pool::run`), so the next call looks the master up again.
//!
//! All of it, every Sentinel asked and the master's handshake and `ROLE`,
//! fits in one deadline of `connect_timeout`, as a plain connect does. That
//! is why redis-rs's own `Sentinel` / `SentinelClient` are not used: their
//! sync API opens connections with `Client::get_connection()` (no connect
//! timeout) and reads replies with no read timeout, so one stalled Sentinel
//! or master would hang a call with no bound.
//!
//! While other Sentinels remain to be asked, one Sentinel (with the master
//! it names) gets at most half of the time left, so that one stalled
//! Sentinel leaves time for the others. The Sentinel that last named a
//! verified master is asked first the next time.
//!
//! Sentinels are contacted without credentials and without TLS: the DSN's
//! user and password are the master's. The DSN's user must be allowed
//! `ROLE` on the master.
//!
//! Host names (of Sentinels, or a master announced by name) are resolved by
//! the system resolver, which no timeout bounds, as for a plain connect.

use std::collections::HashMap;
use std::time::Instant;

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};

use crate::connect::{bound_by, connect_bare, open, OpenError, Target};
use crate::dsn::SentinelDsn;
use crate::error::{Error, Result};

/// Per DSN text: the index of the Sentinel that last named a verified master.
static PREFERRED: Lazy<Mutex<HashMap<String, usize>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_lazy(&PREFERRED) };
}

/// A connection to the master that the Sentinels of `sentinels` name, with
/// AUTH/SELECT done, verified by `ROLE`, all before `deadline`.
pub(crate) fn connect_master(
    target: &Target,
    sentinels: &SentinelDsn,
    deadline: Instant,
) -> Result<redis::Connection> {
    let redacted = target.dsn.redacted();
    let count = sentinels.sentinels.len();
    let first = PREFERRED
        .lock()
        .get(target.dsn.as_str())
        .copied()
        .filter(|&i| i < count)
        .unwrap_or(0);
    let mut failures: Vec<String> = Vec::new();
    // Masters already tried in this call: several Sentinels usually name
    // the same one, and a master that failed once fails again now.
    let mut tried: Vec<(String, u16)> = Vec::new();
    for n in 0..count {
        let index = (first + n) % count;
        let Some((host, port)) = sentinels.sentinels.get(index) else {
            continue;
        };
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let others_left = n + 1 < count;
        let share = if others_left {
            now + deadline.saturating_duration_since(now) / 2
        } else {
            deadline
        };
        let master = match ask_sentinel(host, *port, &sentinels.service, share) {
            Ok(Some(master)) => master,
            Ok(None) => {
                failures.push(format!(
                    "sentinel {host}:{port} knows no master \"{}\"",
                    sentinels.service
                ));
                continue;
            }
            Err(e) => {
                failures.push(format!("sentinel {host}:{port}: {e}"));
                continue;
            }
        };
        if tried.contains(&master) {
            continue;
        }
        tried.push(master.clone());
        let (master_host, master_port) = &master;
        match open_master(target.dsn.connection_info(), &master, share) {
            Ok(con) => {
                if first != index {
                    PREFERRED
                        .lock()
                        .insert(target.dsn.as_str().to_owned(), index);
                }
                return Ok(con);
            }
            Err(e) => failures.push(format!(
                "master {master_host}:{master_port} (named by sentinel {host}:{port}): {e}"
            )),
        }
    }
    if Instant::now() >= deadline {
        return Err(Error::Timeout {
            dsn: redacted.to_owned(),
            after: target.connect_timeout,
        });
    }
    Err(Error::Unavailable {
        dsn: redacted.to_owned(),
        detail: format!(
            "no master found for \"{}\": {}",
            sentinels.service,
            failures.join("; ")
        ),
    })
}

/// What one Sentinel names as the master of `service`: None when it does
/// not know `service`.
fn ask_sentinel(
    host: &str,
    port: u16,
    service: &str,
    deadline: Instant,
) -> std::result::Result<Option<(String, u16)>, OpenError> {
    let info = (host, port).into_connection_info().map_err(OpenError::Io)?;
    let mut con = connect_bare(&info, deadline)?;
    redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(service)
        .query::<Option<(String, u16)>>(&mut con)
        .map_err(|e| match e.code() {
            Some(_) => OpenError::Refused(e),
            None => OpenError::Io(e),
        })
}

/// Why a node named as master was not used.
enum MasterError {
    Open(OpenError),
    NotMaster(String),
}

impl std::fmt::Display for MasterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterError::Open(e) => write!(f, "{e}"),
            MasterError::NotMaster(role) => write!(f, "its role is \"{role}\", not master"),
        }
    }
}

/// Connects to `master` with the DSN's credentials and database and checks
/// that it is a master.
fn open_master(
    settings: &ConnectionInfo,
    master: &(String, u16),
    deadline: Instant,
) -> std::result::Result<redis::Connection, MasterError> {
    let info = settings
        .clone()
        .set_addr(ConnectionAddr::Tcp(master.0.clone(), master.1));
    let mut con = open(&info, deadline).map_err(MasterError::Open)?;
    bound_by(&con, deadline).map_err(MasterError::Open)?;
    let role = redis::cmd("ROLE").query::<Value>(&mut con).map_err(|e| {
        MasterError::Open(match e.code() {
            Some(_) => OpenError::Refused(e),
            None => OpenError::Io(e),
        })
    })?;
    let role = match role {
        Value::Array(items) => match items.into_iter().next() {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Value::SimpleString(text)) => text,
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    };
    if role == "master" {
        Ok(con)
    } else {
        Err(MasterError::NotMaster(role))
    }
}
