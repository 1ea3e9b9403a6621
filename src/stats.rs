//! `LockManager::stats()` as a PHP array.

use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::ZendHashTable;
use redis_lock_core::stats::Summary;
use redis_lock_core::{Semaphores, Stats, StatsSnapshot};

/// `stats()`: the locks' figures at the top level, each other kind's under
/// its own key (`semaphore`).
pub fn all() -> PhpResult<ZBox<ZendHashTable>> {
    let watchdog = redis_lock_core::watchdog::counters();
    let mut out = to_array(Stats::global().lock().snapshot(watchdog))?;
    out.insert(
        "semaphore",
        to_array(Semaphores::global_stats().lock().snapshot(watchdog))?,
    )?;
    out.insert(
        "multi",
        to_array(
            redis_lock_core::multi::MultiLocks::global_stats()
                .lock()
                .snapshot(watchdog),
        )?,
    )?;
    Ok(out)
}

/// The snapshot as `['acquired' => int, …, 'wait' => ['count' => …], 'hold' => […]]`.
pub fn to_array(s: StatsSnapshot) -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    for (key, value) in [
        ("acquired", s.acquired),
        ("read_acquired", s.read_acquired),
        ("conflicts", s.conflicts),
        ("timeouts", s.timeouts),
        ("releases", s.releases),
        ("releases_lost", s.releases_lost),
        ("open_grants", s.open_grants),
        ("unreleased_after_callback", s.unreleased_after_callback),
        ("watchdog_renewals", s.watchdog_renewals),
        ("watchdog_lost", s.watchdog_lost),
    ] {
        out.insert(key, i64::try_from(value).unwrap_or(i64::MAX))?;
    }
    out.insert("wait", summary(s.wait)?)?;
    out.insert("hold", summary(s.hold)?)?;
    Ok(out)
}

fn summary(s: Summary) -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    out.insert("count", i64::try_from(s.count).unwrap_or(i64::MAX))?;
    out.insert("mean", s.mean)?;
    out.insert("p50", s.p50)?;
    out.insert("p99", s.p99)?;
    out.insert("max", s.max)?;
    Ok(out)
}
