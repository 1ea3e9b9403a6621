//! `RedisLock\Metrics`: the host's lock metrics (`redis_lock_core::metrics`)
//! as an array or as Prometheus text, and their settings from php.ini.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::ZendHashTable;
use redis_lock_core::metrics::{self, AcquireResult, Config, Histogram, Kind, Mode, ReleaseResult};

use crate::guard::guard;
use crate::ini;

/// The figures of every process on this host that loads the extension
/// (`redis_lock.metrics = host`), or of this process alone.
#[php_class]
#[php(name = "RedisLock\\Metrics")]
pub struct Metrics;

#[php_impl]
impl Metrics {
    /// This host's lock metrics, all processes together (api.md "Observability"):
    /// `mode` ('host', 'process' or 'off') and `shm` (the segment, in host mode);
    /// `acquires` and `releases` by kind ('lock', 'read', 'multi', 'semaphore') and
    /// result; `wait_seconds` and `hold_seconds` by kind (count, sum, p50, p95, p99,
    /// max; the percentiles estimated from the histogram's buckets); `held` and
    /// `waiting` by kind (now, live processes only); `watchdog_renewals`,
    /// `watchdog_lost`, `unavailable`, `processes`; and `names`: the most
    /// waited-for lock keys with their waits, most first.
    ///
    /// @return array<string, mixed>
    pub fn snapshot() -> PhpResult<ZBox<ZendHashTable>> {
        guard(|| {
            log_warning();
            to_array(&metrics::snapshot())
        })
    }

    /// The same figures as Prometheus text (exposition format 0.0.4), for a
    /// `/metrics` endpoint: `redis_lock_acquires_total{kind,result}`, …
    pub fn prometheus() -> PhpResult<String> {
        guard(|| {
            log_warning();
            Ok(metrics::prometheus(&metrics::snapshot()))
        })
    }
}

/// What was wrong with the metrics' php.ini values, told once per process.
static INI_PROBLEM: OnceLock<String> = OnceLock::new();
static INI_PROBLEM_TOLD: AtomicBool = AtomicBool::new(false);

/// Module start-up: how this process counts, from php.ini. A value that is
/// not understood leaves the default, and the error log says so (php.ini
/// has no caller to throw to).
pub fn configure() {
    let mode_text = String::from_utf8_lossy(&ini::get("metrics")).into_owned();
    let shm = String::from_utf8_lossy(&ini::get("metrics_shm")).into_owned();
    let names_text = String::from_utf8_lossy(&ini::get("metrics_names")).into_owned();
    let mut problems = Vec::new();
    let mode = Mode::parse(&mode_text).unwrap_or_else(|| {
        problems.push(format!(
            "redis_lock.metrics must be host, process or off, not {mode_text:?}: host is used"
        ));
        Mode::Host
    });
    let names = match names_text.trim().parse::<usize>() {
        Ok(n) if n <= metrics::names::ENTRIES => n,
        _ => {
            problems.push(format!(
                "redis_lock.metrics_names must be 0 to {}, not {names_text:?}: 20 is used",
                metrics::names::ENTRIES
            ));
            20
        }
    };
    if !problems.is_empty() {
        let _ = INI_PROBLEM.set(format!("redis_lock: {}", problems.join("; ")));
    }
    metrics::configure(Config {
        mode,
        shm: Some(shm).filter(|s| !s.is_empty()),
        names,
    });
}

/// Request start-up: opens the table (once per process), so that what was
/// wrong with the segment is logged at once, not in the middle of a lock call.
pub fn start_request() {
    metrics::open();
    log_warning();
}

/// Logs what was wrong with the host segment, once per process, with
/// `error_log()`: never as a PHP warning, which frameworks turn into exceptions.
fn log_warning() {
    if let Some(problem) = INI_PROBLEM.get() {
        if !INI_PROBLEM_TOLD.swap(true, Ordering::Relaxed) {
            error_log(problem);
        }
    }
    if let Some(warning) = metrics::take_warning() {
        error_log(&warning);
    }
}

fn error_log(message: &str) {
    if let Ok(error_log) = ext_php_rs::types::ZendCallable::try_from_name("error_log") {
        let _ = error_log.try_call(vec![&message]);
    }
}

fn to_array(s: &metrics::Snapshot) -> PhpResult<ZBox<ZendHashTable>> {
    let sums = &s.sums;
    let mut out = ZendHashTable::new();
    out.insert("mode", s.mode.label())?;
    match &s.shm {
        Some(shm) => out.insert("shm", shm.as_str())?,
        None => out.insert("shm", ())?,
    }
    let mut acquires = ZendHashTable::new();
    let mut releases = ZendHashTable::new();
    let mut wait = ZendHashTable::new();
    let mut hold = ZendHashTable::new();
    let mut held = ZendHashTable::new();
    let mut waiting = ZendHashTable::new();
    for kind in Kind::ALL {
        let k = kind.index();
        let mut a = ZendHashTable::new();
        for r in AcquireResult::ALL {
            a.insert(r.label(), int(sums.acquires[k][r.index()]))?;
        }
        acquires.insert(kind.label(), a)?;
        let mut r = ZendHashTable::new();
        for result in ReleaseResult::ALL {
            r.insert(result.label(), int(sums.releases[k][result.index()]))?;
        }
        releases.insert(kind.label(), r)?;
        wait.insert(kind.label(), histogram(&sums.wait[k])?)?;
        hold.insert(kind.label(), histogram(&sums.hold[k])?)?;
        held.insert(kind.label(), int(sums.held[k]))?;
        waiting.insert(kind.label(), int(sums.waiting[k]))?;
    }
    out.insert("acquires", acquires)?;
    out.insert("releases", releases)?;
    out.insert("wait_seconds", wait)?;
    out.insert("hold_seconds", hold)?;
    out.insert("held", held)?;
    out.insert("waiting", waiting)?;
    out.insert("watchdog_renewals", int(sums.watchdog_renewals))?;
    out.insert("watchdog_lost", int(sums.watchdog_lost))?;
    out.insert("unavailable", int(sums.unavailable))?;
    out.insert("processes", int(sums.processes))?;
    let mut names = ZendHashTable::new();
    for (name, waits) in &s.names {
        names.insert(String::from_utf8_lossy(name).as_ref(), int(*waits))?;
    }
    out.insert("names", names)?;
    Ok(out)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn histogram(h: &Histogram) -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    out.insert("count", int(h.count()))?;
    out.insert("sum", h.sum_micros as f64 / 1e6)?;
    for (key, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        out.insert(key, h.quantile(q))?;
    }
    out.insert("max", h.max_micros as f64 / 1e6)?;
    Ok(out)
}
