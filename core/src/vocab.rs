//! The words every lock module shares: how long to wait, which kind of
//! hold, what an acquire gives back, who owns a lock, the client options,
//! and the timing of waits. Nothing here knows how a lock is taken.

use std::time::{Duration, Instant};

/// A waiter stays registered this long past its deadline, to cover its last
/// attempt.
pub(crate) const WAIT_SLACK: Duration = Duration::from_millis(100);
/// An unbounded wait blocks in slices of at most this long, registering
/// itself again between them.
pub(crate) const FOREVER_SLICE: Duration = Duration::from_secs(10);
/// Pause before attempting again after a wait that a server cut short.
pub(crate) const WAIT_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Connection and key settings of a lock client (one server, a cluster,
/// a Sentinel service or Redlock's masters).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Prepended to every lock name (`lock:` by default in PHP).
    pub prefix: Vec<u8>,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for one command's reply.
    pub timeout: Duration,
    /// Whether acquires draw a fencing token from the per-name counter.
    pub fencing: bool,
    /// How many replicas of the server must hold a lock before an acquire
    /// reports it (Redis `WAIT`, at most `timeout`); 0: no such wait.
    pub replicas: u32,
}

/// How long an acquire may wait for a held lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Try once.
    No,
    /// Wait at most this long (zero is the same as [`Wait::No`]).
    For(Duration),
    /// Wait until acquired.
    Forever,
}

impl Wait {
    /// When a wait that starts at `start` ends: None for no end, which is
    /// also a wait too long for the clock to express (`Wait::For` of years:
    /// `Instant + Duration` would overflow and panic).
    pub fn deadline_from(self, start: Instant) -> Option<Instant> {
        match self {
            Wait::No => Some(start),
            Wait::For(d) => start.checked_add(d),
            Wait::Forever => None,
        }
    }

    /// Whether the caller allowed any wait at all.
    pub fn may_wait(self) -> bool {
        !matches!(self, Wait::No | Wait::For(Duration::ZERO))
    }
}

/// Which hold an acquire asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The lock alone (`acquire`): a writer.
    Exclusive,
    /// A read lock: shared with other readers, never with a writer.
    Shared,
}

/// What the caller holds after a successful acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The fencing token, when fencing is on.
    pub fence: Option<i64>,
    /// When the lock was had (for hold-time metrics).
    pub acquired_at: Instant,
}

/// The result of an acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// The caller holds the lock.
    Acquired(Hold),
    /// Held by someone else and the caller did not wait.
    Conflicted,
    /// Held by someone else for the whole of a bounded wait.
    TimedOut,
}

/// Who holds a lock, as seen by one owner token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The token holds it; `remaining` is its TTL (None: no expiry).
    Mine {
        /// Time left before it expires.
        remaining: Option<Duration>,
    },
    /// Free, expired, or held under another token.
    NotMine,
}

/// One attempt at a lock: taken (with its fencing token), or held by
/// someone else for `pttl_ms` more (0: not known).
pub(crate) enum Attempt {
    Acquired(Option<i64>),
    Held { pttl_ms: i64 },
}

/// A duration in whole milliseconds, as Redis takes them (saturating).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
