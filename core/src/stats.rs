//! This process's lock metrics, as `LockManager::stats()` reports them;
//! each record also counts in the host's metrics (`metrics`), labelled
//! with the kind of hold, unless the record is [`Stats::uncounted`] (a
//! multi-lock's names, counted once as the multi-lock).

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::metrics::{self, AcquireResult, Kind, ReleaseResult};

/// Times are recorded in microseconds, up to an hour, to 2 significant digits
/// (within 1 %): a histogram then takes 27 KB rather than 190 KB, and a record
/// touches less memory on a worker's hot path.
const MAX_MICROS: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 2;

/// Counters and latency histograms. Reset in a child after `fork()`, so each
/// worker reports only its own work.
pub struct Stats {
    pid: u32,
    /// Whether records also count in the host's metrics.
    host: bool,
    acquired: u64,
    read_acquired: u64,
    conflicts: u64,
    timeouts: u64,
    releases: u64,
    releases_lost: u64,
    open_grants: u64,
    unreleased_after_callback: u64,
    wait: Option<Histogram<u64>>,
    hold: Option<Histogram<u64>>,
}

/// Summary of one latency distribution, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// Counters of one process's watchdog (see `watchdog`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchdogCounters {
    /// Successful renewals.
    pub renewals: u64,
    /// Holds whose renewal found the lock gone, or failed until its TTL ran out.
    pub lost: u64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Successful acquisitions.
    pub acquired: u64,
    /// Of `acquired`, how many were read locks.
    pub read_acquired: u64,
    /// Attempts that found the lock held and did not wait (or waited forever in vain).
    pub conflicts: u64,
    /// Bounded waits that ran out.
    pub timeouts: u64,
    /// Releases that removed the caller's lock.
    pub releases: u64,
    /// Releases that found the lock expired or taken over by someone else.
    pub releases_lost: u64,
    /// Holds granted without Redis under `on_unavailable = open` (counted
    /// with the locks', whatever their kind).
    pub open_grants: u64,
    /// Releases that failed after a callback run under the lock returned
    /// (counted with the locks', whatever their kind).
    pub unreleased_after_callback: u64,
    /// Renewals by this process's watchdog that kept a lock.
    pub watchdog_renewals: u64,
    /// Watched locks the watchdog found gone, or could not renew before
    /// their TTL ran out.
    pub watchdog_lost: u64,
    /// Time from the start of an acquire to having the lock.
    pub wait: Summary,
    /// Time from having the lock to releasing it.
    pub hold: Summary,
}

static GLOBAL: Lazy<Arc<Mutex<Stats>>> = Lazy::new(|| Arc::new(Mutex::new(Stats::new())));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_shared(&GLOBAL, Stats::new) };
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty metrics for this process.
    pub fn new() -> Self {
        Stats {
            pid: crate::pid::current(),
            host: true,
            acquired: 0,
            read_acquired: 0,
            conflicts: 0,
            timeouts: 0,
            releases: 0,
            releases_lost: 0,
            open_grants: 0,
            unreleased_after_callback: 0,
            // Construction only fails for invalid bounds, which are constant.
            wait: Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS).ok(),
            hold: Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS).ok(),
        }
    }

    /// Metrics whose records do not count in the host's (a multi-lock's
    /// names: the multi-lock counts once).
    pub fn uncounted() -> Self {
        Stats {
            host: false,
            ..Stats::new()
        }
    }

    /// The process-wide metrics.
    pub fn global() -> Arc<Mutex<Stats>> {
        Arc::clone(&GLOBAL)
    }

    fn for_this_process(&mut self) -> &mut Self {
        if self.pid != crate::pid::current() {
            *self = Stats {
                host: self.host,
                ..Stats::new()
            };
        }
        self
    }

    /// Records a successful acquire of `kind` after waiting `wait`
    /// (`could_wait`: the caller allowed a wait).
    pub fn record_acquired(&mut self, kind: Kind, wait: Duration, could_wait: bool) {
        let s = self.for_this_process();
        s.acquired += 1;
        record(&mut s.wait, wait);
        s.host(|| metrics::acquire(kind, AcquireResult::Acquired, could_wait.then_some(wait)));
    }

    /// Counts a read lock among the acquires (after [`Stats::record_acquired`]).
    pub fn record_read_acquired(&mut self) {
        self.for_this_process().read_acquired += 1;
    }

    /// Records an acquire of `kind` that found the hold taken and did not wait.
    pub fn record_conflict(&mut self, kind: Kind) {
        let s = self.for_this_process();
        s.conflicts += 1;
        s.host(|| metrics::acquire(kind, AcquireResult::Conflicted, None));
    }

    /// Records a bounded wait of `kind` that ran out after `waited`.
    pub fn record_timeout(&mut self, kind: Kind, waited: Duration) {
        let s = self.for_this_process();
        s.timeouts += 1;
        s.host(|| metrics::acquire(kind, AcquireResult::Timeout, Some(waited)));
    }

    /// Records an acquire of `kind` that failed (host metrics only):
    /// `unavailable` when Redis could not be reached or serve it.
    pub fn record_acquire_error(
        &mut self,
        kind: Kind,
        unavailable: bool,
        waited: Option<Duration>,
    ) {
        self.host(|| {
            metrics::acquire(kind, AcquireResult::Error, waited);
            if unavailable {
                metrics::unavailable();
            }
        });
    }

    /// An acquire of `kind` starts or stops waiting for `key` (host metrics
    /// only: the waiting gauge, and the most waited-for keys).
    pub fn record_waiting(&mut self, kind: Kind, key: &[u8], starts: bool) {
        self.host(|| {
            metrics::waiting(kind, starts);
            if starts {
                metrics::name_waited(key);
            }
        });
    }

    /// Records how a release of `kind` ended: released (true), the hold
    /// already gone (false), or an error; `held`: how long it was held, if
    /// this process took it (the host's "held now" gauge then goes down).
    pub fn record_release(
        &mut self,
        kind: Kind,
        outcome: &crate::error::Result<bool>,
        held: Option<Duration>,
    ) {
        let s = self.for_this_process();
        let result = match outcome {
            Ok(true) => {
                s.releases += 1;
                ReleaseResult::Released
            }
            Ok(false) => {
                s.releases_lost += 1;
                ReleaseResult::Lost
            }
            Err(_) => ReleaseResult::Error,
        };
        if let (Some(held), true) = (held, result != ReleaseResult::Error) {
            record(&mut s.hold, held);
        }
        // A release of a hold this process did not take (`held` None: a
        // restored owner token, tried as a lock and then as a read lock)
        // that found nothing lost nothing of anyone's it knows of.
        if held.is_none() && result == ReleaseResult::Lost {
            return;
        }
        s.host(|| {
            metrics::release(kind, result, held);
            if outcome.as_ref().is_err_and(|e| e.is_unavailable()) {
                metrics::unavailable();
            }
        });
    }

    fn host(&self, count: impl FnOnce()) {
        if self.host {
            count();
        }
    }

    /// Records a hold granted without Redis under `on_unavailable = open`.
    pub fn record_open_grant(&mut self) {
        self.for_this_process().open_grants += 1;
    }

    /// Records a release that failed after a callback run under the lock
    /// had returned (the lock then ends at its TTL).
    pub fn record_unreleased_after_callback(&mut self) {
        self.for_this_process().unreleased_after_callback += 1;
    }

    /// The current values, with `watchdog`'s counters (this process's:
    /// `watchdog::counters()`).
    pub fn snapshot(&mut self, watchdog: WatchdogCounters) -> StatsSnapshot {
        let s = self.for_this_process();
        StatsSnapshot {
            acquired: s.acquired,
            read_acquired: s.read_acquired,
            conflicts: s.conflicts,
            timeouts: s.timeouts,
            releases: s.releases,
            releases_lost: s.releases_lost,
            open_grants: s.open_grants,
            unreleased_after_callback: s.unreleased_after_callback,
            watchdog_renewals: watchdog.renewals,
            watchdog_lost: watchdog.lost,
            wait: summarize(s.wait.as_ref()),
            hold: summarize(s.hold.as_ref()),
        }
    }
}

fn record(h: &mut Option<Histogram<u64>>, d: Duration) {
    if let Some(h) = h {
        let micros = u64::try_from(d.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        h.saturating_record(micros);
    }
}

fn summarize(h: Option<&Histogram<u64>>) -> Summary {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Summary::default();
    };
    let secs = |micros: u64| micros as f64 / 1e6;
    Summary {
        count: h.len(),
        mean: h.mean() / 1e6,
        p50: secs(h.value_at_quantile(0.5)),
        p99: secs(h.value_at_quantile(0.99)),
        max: secs(h.max()),
    }
}
