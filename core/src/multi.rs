//! Multi-locks: several names held together, all or none, as one lock of
//! the lock layer.
//!
//! How a multi-lock is taken, and waited for, is the multi kind's
//! (`kinds::multi`) under the wait engine: one script where one node holds
//! every name, else one by one in sorted order, all or none, and a waiter
//! queued on the one name it found held.
//!
//! A multi-lock travels through the lock layer (hold registry, watchdog,
//! fail-open) as one lock whose "name" is its names [`encode`]d, served by
//! [`MultiLocks`], a [`Locks`] over the deployment's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::locks::Locks;
use crate::pool::Pool;
use crate::stats::Stats;
use crate::vocab::{AcquireOutcome, Kind, Ownership, Wait};

/// Several names as one byte string: each as a 4-byte big-endian length
/// and its bytes, in sorted order.
pub fn encode(names: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted: Vec<&Vec<u8>> = names.iter().collect();
    sorted.sort();
    let mut out = Vec::new();
    for name in sorted {
        let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(name);
    }
    out
}

/// The names of an [`encode`]d multi-lock.
pub fn decode(encoded: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bad = || Error::Internal {
        detail: "a multi-lock's names are malformed".to_owned(),
    };
    let mut names = Vec::new();
    let mut rest = encoded;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
        if tail.len() < len {
            return Err(bad());
        }
        names.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if names.is_empty() {
        return Err(bad());
    }
    Ok(names)
}

/// This process's multi-lock metrics (`stats()['multi']`).
/// How long names whose release could not be sent are remembered for a
/// later release when their TTL is not known here: a release is
/// owner-checked, so remembering one too long costs at most a command that
/// finds nothing; the registry is bounded (`orphans`).
const LATER_AT_MOST: Duration = Duration::from_secs(3600);

static GLOBAL_STATS: Lazy<Arc<Mutex<Stats>>> = Lazy::new(|| Arc::new(Mutex::new(Stats::new())));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_shared(&GLOBAL_STATS, Stats::new) };
}

/// Multi-locks over a deployment's [`Locks`]; each "name" is [`encode`]d.
pub struct MultiLocks {
    /// The deployment, with metrics of its own: the names a multi-lock takes
    /// one by one are not locks of their own in `stats()`.
    names: Arc<dyn Locks>,
    /// Where multi-locks are counted.
    stats: Arc<Mutex<Stats>>,
}

impl MultiLocks {
    /// The process-wide multi-lock metrics.
    pub fn global_stats() -> Arc<Mutex<Stats>> {
        Arc::clone(&GLOBAL_STATS)
    }

    /// Multi-locks over `locks` (whose per-name metrics go to a private
    /// [`Stats`]), counted in `stats`.
    pub fn new(locks: &dyn Locks, stats: Arc<Mutex<Stats>>) -> Self {
        MultiLocks {
            names: locks.with_stats(Arc::new(Mutex::new(Stats::uncounted()))),
            stats,
        }
    }
}

impl MultiLocks {
    /// Releases every name (see `release` below), uncounted.
    fn release_names(&self, encoded: &[u8], token: &str) -> Result<bool> {
        let mut all = true;
        let mut first_error = None;
        // Last name first: the waiter that the first name is handed to (it
        // waited on that one) then finds the others free already.
        let names: Vec<Vec<u8>> = decode(encoded)?.into_iter().rev().collect();
        for (i, name) in names.iter().enumerate() {
            match self.names.release(name, token, None) {
                Ok(released) => all &= released,
                Err(err) if err.is_unavailable() => {
                    for rest in &names[i..] {
                        self.names
                            .release_later(Kind::Exclusive, rest, token, LATER_AT_MOST);
                    }
                    return Err(err);
                }
                Err(err) => {
                    all = false;
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        Ok(all)
    }
}

impl Locks for MultiLocks {
    fn acquire(
        &self,
        encoded: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        let names = decode(encoded)?;
        let all = self.names.all_locks().ok_or_else(|| Error::Unsupported {
            what: "multi-locks over this deployment".to_owned(),
        })?;
        all.acquire_all(&names, token, ttl, wait, &self.stats)
    }

    /// Releases every name, also after one failed: an error other than
    /// "unavailable" on one name leaves the others to be released (the
    /// first error is returned at the end). A server found unavailable is
    /// not asked again for the names after: they, and the name that failed,
    /// are remembered for a later release (`release_later`), so one stalled
    /// server costs one timeout, not one per name.
    fn release(&self, encoded: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let released = self.release_names(encoded, token);
        self.stats.lock().record_release(
            crate::metrics::Kind::Multi,
            &released,
            acquired_at.map(|t| t.elapsed()),
        );
        released
    }

    fn server(&self) -> &str {
        self.names.server()
    }

    fn release_later(&self, _kind: Kind, encoded: &[u8], token: &str, ttl: Duration) {
        for name in decode(encoded).unwrap_or_default() {
            self.names.release_later(Kind::Exclusive, &name, token, ttl);
        }
    }

    fn refresh(&self, encoded: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        let mut all = true;
        for name in decode(encoded)? {
            all &= self.names.refresh(&name, token, ttl)?;
        }
        Ok(all)
    }

    fn ownership(&self, encoded: &[u8], token: &str) -> Result<Ownership> {
        let mut least: Option<Option<Duration>> = None;
        for name in decode(encoded)? {
            match self.names.ownership(&name, token)? {
                Ownership::NotMine => return Ok(Ownership::NotMine),
                Ownership::Mine { remaining } => {
                    least = Some(match (least.flatten(), remaining) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    });
                }
            }
        }
        Ok(match least {
            Some(remaining) => Ownership::Mine { remaining },
            None => Ownership::NotMine,
        })
    }

    fn is_locked(&self, encoded: &[u8]) -> Result<bool> {
        for name in decode(encoded)? {
            if self.names.is_locked(&name)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn force_release(&self, encoded: &[u8]) -> Result<bool> {
        let mut any = false;
        for name in decode(encoded)? {
            any |= self.names.force_release(&name)?;
        }
        Ok(any)
    }

    fn on_pool(&self, pool: Arc<Pool>) -> Arc<dyn Locks> {
        Arc::new(MultiLocks {
            names: self.names.on_pool(pool),
            stats: Arc::clone(&self.stats),
        })
    }

    fn metrics_kind(&self, _kind: Kind) -> crate::metrics::Kind {
        crate::metrics::Kind::Multi
    }

    fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Arc<dyn Locks> {
        Arc::new(MultiLocks {
            names: Arc::clone(&self.names),
            stats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_sorted() {
        let names = vec![b"b".to_vec(), b"a\0x".to_vec(), Vec::new()];
        let decoded = decode(&encode(&names)).unwrap_or_default();
        assert_eq!(decoded, vec![Vec::new(), b"a\0x".to_vec(), b"b".to_vec()]);
        assert!(decode(b"").is_err());
        assert!(decode(&[0, 0, 0, 5, b'a']).is_err());
    }
}
