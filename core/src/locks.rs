//! The lock operations every deployment offers, so that the PHP layer (and
//! any other caller) never asks whether it talks to one server or five.
//!
//! One server, a Sentinel master and a cluster are all served by
//! [`LockClient`] (its pool picks the connection kind from the DSN); N
//! independent masters by [`Redlock`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{AcquireOutcome, ClientOptions, LockClient, Ownership, Wait};
use crate::dsn::Deployment;
use crate::error::Result;
use crate::redlock::Redlock;

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
        impl Locks for $type {
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
        }
    };
}

delegate_locks!(LockClient);
delegate_locks!(Redlock);
