#!/usr/bin/env python3
"""One JSON row of the HTTP benchmark from an ab run (bench/http.sh).

Usage: ab_row.py IMPL ROUND AB_TXT AB_TSV FPM_LOG COUNTER COMMANDS CONCURRENCY WORKERS REQUESTS LOADAVG SOLO_MS
                 SECTION_US SAMPLES

AB_TXT is ab's report, AB_TSV its -g file (one row per request), FPM_LOG the
FPM log (the first PHP fatal error, if any, goes into the row), COUNTER the
counter after the run, COMMANDS Redis's commands processed during it,
SECTION_US the sum of the critical sections' durations (bench/http/common.php),
SAMPLES lines of "unix-time counter" taken every 0.1 s during the run.
"""
import json
import math
import os
import sys
import time

(impl, rnd, ab_txt, ab_tsv, fpm_log, counter, commands, concurrency, workers, requests, load,
 solo, section_us, samples) = sys.argv[1:15]
text = open(ab_txt).read()


def field(label):
    for line in text.splitlines():
        if line.startswith(label):
            return float(line.split(":", 1)[1].split()[0])
    return 0.0


def model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def first_error():
    try:
        for line in open(fpm_log, errors="replace"):
            if "PHP Fatal error" in line:
                return line.split("PHP Fatal error:", 1)[1].strip().strip('"')[:300]
    except OSError:
        pass
    return None


complete = int(field("Complete requests"))
failed = int(field("Failed requests"))
non2xx = int(field("Non-2xx responses"))
took = field("Time taken for tests")
# ab -g: one row per request; ttime is connect to last byte, in whole ms.
times = []
try:
    header, *lines = open(ab_tsv).read().splitlines()
    column = header.split("\t").index("ttime")
    times = sorted(int(line.split("\t")[column]) for line in lines if line.strip())
except (OSError, ValueError):
    pass


def pct(p):
    # Nearest rank: the smallest time that at least a share p of the requests did not exceed.
    return float(times[max(0, math.ceil(p * len(times)) - 1)]) if times else None


counter = int(counter or 0)


def steady_rate():
    """Counter growth per second between 10% and 90% of the requests: all clients busy, no tail."""
    points = []
    try:
        for line in open(samples):
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                points.append((float(parts[0]), int(parts[1])))
    except OSError:
        return None
    lo = next((p for p in points if p[1] >= 0.1 * int(requests)), None)
    hi = next((p for p in points if p[1] >= 0.9 * int(requests)), None)
    if not lo or not hi or hi[0] <= lo[0]:
        return None
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


print(json.dumps({
    "mode": "http", "impl": impl, "round": int(rnd), "concurrency": int(concurrency),
    "fpm_workers": int(workers), "requests": int(requests), "complete": complete, "seconds": took,
    "requests_per_s": complete / took if took else 0.0, "steady_requests_per_s": steady_rate(),
    "latency_mean_ms": sum(times) / len(times) if times else None,
    "latency_p50_ms": pct(0.50), "latency_p99_ms": pct(0.99), "latency_max_ms": float(times[-1]) if times else None,
    "solo_ms": float(solo or 0),
    # Mean time from lock held to the SET done: no lock lets one key serve more than 1 / this.
    "section_ms": int(section_us or 0) / 1000 / counter if counter else None,
    # The GET and SET of the increment and the INCRBY of the section's time are not the lock's.
    "commands_per_request": (int(commands) - 3 * counter) / complete if complete else None,
    "non2xx": non2xx, "failed": failed, "counter": counter,
    # No lost update: every request that answered 2xx incremented the counter once.
    "counter_exact": counter == complete - non2xx,
    "error": first_error(),
    "machine": f"{os.cpu_count()} cores ({model()})", "loadavg_1m_before": float(load),
    "at": time.strftime("%Y-%m-%d %H:%M %Z"),
}))
