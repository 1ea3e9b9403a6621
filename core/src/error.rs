//! The one error type of the lock logic.

use std::time::Duration;

/// Everything that can go wrong below the PHP layer.
///
/// Every variant that involves a server names it by its redacted DSN (no
/// password), so messages can be shown to users and logged as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The DSN could not be parsed or uses an unsupported form.
    #[error("invalid DSN \"{dsn}\": {reason}")]
    InvalidDsn {
        /// The DSN as given, with any password masked.
        dsn: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No connection could be made, or it broke and could not be re-made.
    #[error("Redis at {dsn} is unavailable: {detail}")]
    Unavailable {
        /// Redacted DSN.
        dsn: String,
        /// The underlying cause.
        detail: String,
    },

    /// A connect or a command did not complete in time; the connection was dropped.
    #[error("Redis at {dsn} did not answer within {} ms", .after.as_millis())]
    Timeout {
        /// Redacted DSN.
        dsn: String,
        /// The limit that ran out.
        after: Duration,
    },

    /// Redis answered with an error (for example a key of the wrong type).
    #[error("Redis at {dsn} answered with an error: {detail}")]
    Server {
        /// Redacted DSN.
        dsn: String,
        /// The error's code, its first word: `ERR`, `WRONGTYPE`, `LOADING`,
        /// `READONLY`, … (see [`Error::is_unavailable`]).
        code: String,
        /// The server's error text.
        detail: String,
    },

    /// Fewer replicas than the `replicas` option asks for confirmed a lock
    /// within the timeout; the lock was given back.
    #[error(
        "Redis at {dsn}: only {confirmed} of {wanted} replicas confirmed the lock within {} ms; it was given back",
        .within.as_millis()
    )]
    NotReplicated {
        /// Redacted DSN.
        dsn: String,
        /// The `replicas` option.
        wanted: u32,
        /// How many replicas had it.
        confirmed: i64,
        /// The limit that ran out.
        within: Duration,
    },

    /// Redlock: fewer than a majority of the masters answered, so whether
    /// the lock is held cannot be known.
    #[error("Redlock over {dsn}: only {answered} of {total} masters answered, {needed} needed ({detail})")]
    NoQuorum {
        /// The masters, redacted.
        dsn: String,
        /// How many answered.
        answered: usize,
        /// The majority.
        needed: usize,
        /// How many masters there are.
        total: usize,
        /// Each failing master's error.
        detail: String,
    },

    /// The deployment cannot do what was asked (read locks over Redlock, …).
    #[error("redis_lock: {what}")]
    Unsupported {
        /// What is not supported, and with what.
        what: String,
    },

    /// Something inside the extension failed (the watchdog thread could not
    /// be started, …): not a fault of Redis.
    #[error("redis_lock: {detail}")]
    Internal {
        /// What failed.
        detail: String,
    },

    /// Redis answered with something the scripts never return.
    #[error("unexpected reply from Redis at {dsn}: {detail}")]
    Protocol {
        /// Redacted DSN.
        dsn: String,
        /// What was received.
        detail: String,
    },
}

impl Error {
    /// True when Redis could not be reached, did not answer, or answered that
    /// it cannot serve writes for now: the cases that `on_unavailable = open`
    /// treats as "no lock service" and that PHP sees as `ConnectionException`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::NoQuorum { .. } => true,
            Error::Server { code, .. } => TRANSIENT_CODES.contains(&code.as_str()),
            Error::InvalidDsn { .. }
            | Error::Protocol { .. }
            | Error::NotReplicated { .. }
            | Error::Internal { .. }
            | Error::Unsupported { .. } => false,
        }
    }

    /// True when a command may or may not have run: it was sent, and the
    /// connection broke or the reply did not come in time. A server's error
    /// answer is not such a case: the command was refused.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::NoQuorum { .. }
        )
    }

    /// Whether a server error code is one of those that say "not now" (see
    /// [`Error::is_unavailable`]).
    pub fn transient_code(code: &str) -> bool {
        TRANSIENT_CODES.contains(&code)
    }

    /// The server's error code, for [`Error::Server`].
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Error::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Classifies a redis-rs error seen while talking to `dsn`.
    pub(crate) fn from_redis(dsn: &str, err: &redis::RedisError, timeout: Duration) -> Self {
        let dsn = dsn.to_owned();
        if err.is_timeout() {
            Error::Timeout {
                dsn,
                after: timeout,
            }
        } else if let Some(code) = err.code() {
            // Codes redis-rs has no kind for (WRONGTYPE, BUSY, …) are server
            // answers too, not a broken connection.
            Error::Server {
                dsn,
                code: code.to_owned(),
                detail: err.to_string(),
            }
        } else if matches!(
            err.kind(),
            redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse
        ) {
            Error::Protocol {
                dsn,
                detail: err.to_string(),
            }
        } else {
            Error::Unavailable {
                dsn,
                detail: err.to_string(),
            }
        }
    }
}

/// Server error codes that say "not now" rather than "never": a server still
/// loading its data, a replica (or a master demoted by a failover) refusing
/// writes, a cluster slot in migration or without a master, a script running
/// too long, a blocked command (BLPOP) cut short because its server stopped
/// being a master or stopped serving the slot (UNBLOCKED). They are faults
/// to report and retry later; nothing about the server's abilities may be
/// concluded from them.
const TRANSIENT_CODES: [&str; 7] = [
    "LOADING",
    "READONLY",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MASTERDOWN",
    "BUSY",
    "UNBLOCKED",
];

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
