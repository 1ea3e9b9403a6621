//! The lock operations every deployment offers, so that the PHP layer (and
//! any other caller) never asks whether it talks to one server or five.
//!
//! One server, a Sentinel master and a cluster are all served by
//! [`LockClient`] (its pool picks the connection kind from the DSN); N
//! independent masters by [`Redlock`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::LockClient;
use crate::dsn::Deployment;
use crate::error::{Error, Result};
use crate::inspect::Inspect;
use crate::pool::Pool;
use crate::redlock::Redlock;
use crate::stats::Stats;
use crate::vocab::{AcquireOutcome, ClientOptions, Kind, Ownership, Wait};
use parking_lot::Mutex;

/// Acquire, release, refresh and the reads of named locks.
pub trait Locks: Send + Sync {
    /// Takes lock `name` for `token` with `ttl`, waiting as `wait` says. A
    /// held lock is an `Ok` outcome; errors are faults.
    fn acquire(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome>;
    /// Frees lock `name` if `token` holds it (granting it to the next
    /// waiter); false when it had expired or been taken over.
    fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool>;
    /// Sets a new TTL on lock `name` if `token` still holds it.
    fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool>;
    /// Whether `token` holds lock `name`, and for how long still.
    fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership>;
    /// Whether anyone holds lock `name`.
    fn is_locked(&self, name: &[u8]) -> Result<bool>;
    /// Frees lock `name` whoever holds it.
    fn force_release(&self, name: &[u8]) -> Result<bool>;
    /// The read locks of the same names, where the deployment has them (one
    /// node: their readers' set and queue need its atomic scripts). Callers
    /// use the `*_read` methods of `dyn Locks`, which say what a deployment
    /// without them answers.
    fn read_locks(&self) -> Option<&dyn ReadLocks> {
        None
    }
    /// Where this client's locks live, as one text (DSNs as given): a
    /// request end gives up, for the rest of its releases, on a server that
    /// failed as unavailable once (see `release_all`).
    fn server(&self) -> &str;
    /// Remembers `token`'s `kind` hold of `name`, whose release could not be
    /// sent now, to be released where it is still `token`'s once the server
    /// answers again (the next acquire on it, or a request end that finds it
    /// connected), for at most `ttl`: as the locks of acquires whose outcome
    /// was unknown are (`orphans`).
    fn release_later(&self, kind: Kind, name: &[u8], token: &str, ttl: Duration);
    /// The same operations on another pool (the watchdog's own, so that its
    /// renewals never take a connection a caller is using).
    fn on_pool(&self, pool: Arc<Pool>) -> Arc<dyn Locks>;
    /// The same operations counted in other metrics (a multi-lock's names
    /// are not locks of their own in `stats()`).
    fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Arc<dyn Locks>;
    /// What the host's metrics count a hold of `kind` here as.
    fn metrics_kind(&self, kind: Kind) -> crate::metrics::Kind {
        match kind {
            Kind::Exclusive => crate::metrics::Kind::Lock,
            Kind::Shared => crate::metrics::Kind::Read,
        }
    }
    /// Multi-locks over the same names, where the deployment has them (its
    /// locks are exclusive ones that the multi kind can take together).
    fn all_locks(&self) -> Option<&dyn AllLocks> {
        None
    }
    /// What Redis says about a lock now, where the deployment answers it
    /// (one node and Redlock: a `LockManager`'s deployments).
    fn inspector(&self) -> Option<&dyn Inspect> {
        None
    }
}

/// Several names taken together, all or none (see `kinds::multi`).
pub trait AllLocks {
    /// Takes all of `names` (sorted, none repeated) for `token` with `ttl`,
    /// waiting as `wait` says; counted in `stats`. A held name is an `Ok`
    /// outcome; errors are faults.
    fn acquire_all(
        &self,
        names: &[Vec<u8>],
        token: &str,
        ttl: Duration,
        wait: Wait,
        stats: &Mutex<Stats>,
    ) -> Result<AcquireOutcome>;
}

/// Read locks: many readers or one writer on the same name (see `shared`).
pub trait ReadLocks: Send + Sync {
    /// Takes a read lock on `name` (shared with readers, not with a writer).
    fn acquire_read(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome>;
    /// Gives up `token`'s read lock on `name`.
    fn release_read(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool>;
    /// Sets a new TTL on `token`'s read lock on `name`.
    fn refresh_read(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool>;
    /// Whether `token` holds a read lock on `name`, and for how long still.
    fn read_ownership(&self, name: &[u8], token: &str) -> Result<Ownership>;
}

/// The read-lock operations on any deployment: taking one where there are
/// none (Redlock) is refused; with none ever taken, there is none to
/// release, refresh or own.
impl dyn Locks + '_ {
    /// Takes a read lock on `name`; `Error::Unsupported` without read locks.
    pub fn acquire_read(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        match self.read_locks() {
            Some(read) => read.acquire_read(name, token, ttl, wait),
            None => Err(Error::Unsupported {
                what: "read locks are not supported with Redlock, semaphores or multi-locks \
                       (readers and their queue are kept on one node, for one name)"
                    .to_owned(),
            }),
        }
    }
    /// Gives up `token`'s read lock on `name`: false without read locks.
    pub fn release_read(&self, name: &[u8], token: &str, at: Option<Instant>) -> Result<bool> {
        self.read_locks()
            .map_or(Ok(false), |read| read.release_read(name, token, at))
    }
    /// Sets a new TTL on `token`'s read lock: false without read locks.
    pub fn refresh_read(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        self.read_locks()
            .map_or(Ok(false), |read| read.refresh_read(name, token, ttl))
    }
    /// Whether `token` holds a read lock on `name`: not without read locks.
    pub fn read_ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        self.read_locks().map_or(Ok(Ownership::NotMine), |read| {
            read.read_ownership(name, token)
        })
    }
}

/// The lock operations of `deployment`, on the process-wide pool and metrics.
pub fn open(deployment: Deployment, options: ClientOptions) -> Arc<dyn Locks> {
    match deployment {
        Deployment::One(dsn) => Arc::new(LockClient::new(dsn, options)),
        Deployment::Redlock(masters) => Arc::new(Redlock::new(masters, options)),
    }
}

macro_rules! delegate_locks {
    ($type:ty) => {
        fn acquire(
            &self,
            name: &[u8],
            token: &str,
            ttl: Duration,
            wait: Wait,
        ) -> Result<AcquireOutcome> {
            <$type>::acquire(self, name, token, ttl, wait)
        }
        fn release(&self, name: &[u8], token: &str, at: Option<Instant>) -> Result<bool> {
            <$type>::release(self, name, token, at)
        }
        fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
            <$type>::refresh(self, name, token, ttl)
        }
        fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
            <$type>::ownership(self, name, token)
        }
        fn is_locked(&self, name: &[u8]) -> Result<bool> {
            <$type>::is_locked(self, name)
        }
        fn force_release(&self, name: &[u8]) -> Result<bool> {
            <$type>::force_release(self, name)
        }
        fn server(&self) -> &str {
            <$type>::server(self)
        }
        fn release_later(&self, kind: Kind, name: &[u8], token: &str, ttl: Duration) {
            <$type>::release_later(self, kind, name, token, ttl)
        }
        fn on_pool(&self, pool: Arc<Pool>) -> Arc<dyn Locks> {
            Arc::new(<$type>::on_pool(self, pool))
        }
        fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Arc<dyn Locks> {
            Arc::new(<$type>::with_stats(self, stats))
        }
    };
}

macro_rules! all_locks {
    ($type:ty) => {
        impl AllLocks for $type {
            fn acquire_all(
                &self,
                names: &[Vec<u8>],
                token: &str,
                ttl: Duration,
                wait: Wait,
                stats: &Mutex<Stats>,
            ) -> Result<AcquireOutcome> {
                <$type>::acquire_all(self, names, token, ttl, wait, stats)
            }
        }
    };
}
all_locks!(LockClient);
all_locks!(Redlock);

impl Locks for LockClient {
    delegate_locks!(LockClient);

    fn all_locks(&self) -> Option<&dyn AllLocks> {
        Some(self)
    }

    fn inspector(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    fn read_locks(&self) -> Option<&dyn ReadLocks> {
        Some(self)
    }
}

impl ReadLocks for LockClient {
    fn acquire_read(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        LockClient::acquire_read(self, name, token, ttl, wait)
    }
    fn release_read(&self, name: &[u8], token: &str, at: Option<Instant>) -> Result<bool> {
        LockClient::release_read(self, name, token, at)
    }
    fn refresh_read(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        LockClient::refresh_read(self, name, token, ttl)
    }
    fn read_ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        LockClient::read_ownership(self, name, token)
    }
}

/// Read locks are not offered over Redlock: the readers' set and the queue
/// would have to agree across independent masters.
impl Locks for Redlock {
    delegate_locks!(Redlock);

    fn all_locks(&self) -> Option<&dyn AllLocks> {
        Some(self)
    }

    fn inspector(&self) -> Option<&dyn Inspect> {
        Some(self)
    }
}
