//! The metrics as Prometheus text (exposition format 0.0.4), with the
//! names and labels of api.md "Observability", base units (seconds).

use std::fmt::Write;

use super::table::{Histogram, BOUNDS_MICROS};
use super::{AcquireResult, Kind, ReleaseResult, Snapshot};

/// `snapshot` as Prometheus text.
pub fn prometheus(snapshot: &Snapshot) -> String {
    let s = &snapshot.sums;
    let mut out = String::with_capacity(16 * 1024);
    head(
        &mut out,
        "redis_lock_acquires_total",
        "counter",
        "Lock acquires on this host, by kind of hold and result.",
    );
    for kind in Kind::ALL {
        for result in AcquireResult::ALL {
            let n = s.acquires[kind.index()][result.index()];
            let _ = writeln!(
                out,
                "redis_lock_acquires_total{{kind=\"{}\",result=\"{}\"}} {n}",
                kind.label(),
                result.label()
            );
        }
    }
    head(
        &mut out,
        "redis_lock_releases_total",
        "counter",
        "Releases, by kind and result (lost: the hold was already gone).",
    );
    for kind in Kind::ALL {
        for result in ReleaseResult::ALL {
            let n = s.releases[kind.index()][result.index()];
            let _ = writeln!(
                out,
                "redis_lock_releases_total{{kind=\"{}\",result=\"{}\"}} {n}",
                kind.label(),
                result.label()
            );
        }
    }
    histogram(
        &mut out,
        "redis_lock_wait_seconds",
        "Time from an acquire that could wait to its outcome.",
        &s.wait,
    );
    histogram(
        &mut out,
        "redis_lock_hold_seconds",
        "Time a hold was held, one observation per release.",
        &s.hold,
    );
    for (name, help, values) in [
        ("redis_lock_held", "Holds of live processes now.", &s.held),
        (
            "redis_lock_waiting",
            "Acquires of live processes waiting now.",
            &s.waiting,
        ),
    ] {
        head(&mut out, name, "gauge", help);
        for kind in Kind::ALL {
            let _ = writeln!(
                out,
                "{name}{{kind=\"{}\"}} {}",
                kind.label(),
                values[kind.index()]
            );
        }
    }
    for (name, help, n) in [
        (
            "redis_lock_watchdog_renewals_total",
            "Watchdog renewals that kept a hold.",
            s.watchdog_renewals,
        ),
        (
            "redis_lock_watchdog_lost_total",
            "Watched holds found gone or not renewed in time.",
            s.watchdog_lost,
        ),
        (
            "redis_lock_unavailable_total",
            "Lock commands that found Redis unavailable.",
            s.unavailable,
        ),
    ] {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {n}");
    }
    head(
        &mut out,
        "redis_lock_processes",
        "gauge",
        "Live processes counting in this table.",
    );
    let _ = writeln!(out, "redis_lock_processes {}", s.processes);
    if !snapshot.names.is_empty() {
        head(
            &mut out,
            "redis_lock_name_waits_total",
            "counter",
            "Acquires that waited, for the most waited-for lock keys.",
        );
        for (name, n) in &snapshot.names {
            let _ = writeln!(
                out,
                "redis_lock_name_waits_total{{name=\"{}\"}} {n}",
                escape(name)
            );
        }
    }
    out
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, by_kind: &[Histogram; 4]) {
    head(out, name, "histogram", help);
    for kind in Kind::ALL {
        let h = &by_kind[kind.index()];
        let label = kind.label();
        let mut cumulative = 0u64;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative = cumulative.saturating_add(*n);
            let le = BOUNDS_MICROS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
            let _ = writeln!(
                out,
                "{name}_bucket{{kind=\"{label}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{kind=\"{label}\"}} {}",
            h.sum_micros as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{kind=\"{label}\"}} {cumulative}");
    }
}

/// A label value: UTF-8 (other bytes replaced), `\`, `"` and newlines escaped.
fn escape(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for c in String::from_utf8_lossy(name).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labels_escaped() {
        let mut snap = Snapshot::default();
        snap.sums.wait[0].buckets[0] = 2;
        snap.sums.wait[0].buckets[3] = 1;
        snap.names = vec![(b"a\"b\\c\nd".to_vec(), 3)];
        let text = prometheus(&snap);
        assert!(text.contains("redis_lock_wait_seconds_bucket{kind=\"lock\",le=\"0.0005\"} 2\n"));
        assert!(text.contains("redis_lock_wait_seconds_bucket{kind=\"lock\",le=\"0.005\"} 3\n"));
        assert!(text.contains("redis_lock_wait_seconds_bucket{kind=\"lock\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("redis_lock_wait_seconds_count{kind=\"lock\"} 3\n"));
        assert!(text.contains("redis_lock_name_waits_total{name=\"a\\\"b\\\\c\\nd\"} 3\n"));
    }
}
