#!/usr/bin/env python3
"""Where the many-keys workers' CPU goes, in microseconds per cycle, by library.

Runs `bench.php manykeys IMPL PORT 16 SECONDS` (16 workers, each on its own
key) under `perf record -e cpu-clock` (a software clock: no hardware counters
are needed, so it works in a VM), following the workers, and splits the
samples' time by shared object (kernel, PHP, libc, phpredis, the extension),
and the extension's own time by what its functions belong to (redis-rs's
reply parser, the rest of redis-rs, the lock code, the PHP glue, ...). Divided
by the cycles the run made, this is time, with the sampling's noise, where
`callgrind.py` counts instructions. Prints one JSON row.

Usage: cpu-split.py IMPL PORT SECONDS PHP-ARGS...
"""
import json
import os
import re
import subprocess
import sys
import tempfile

impl, port, seconds, php = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.php")

# The extension's functions, by what they belong to (first match wins).
GROUPS = [
    ("redis-rs reply parser", r"combine|redis::parser"),
    ("redis-rs, the rest", r"(^|<)redis::"),
    ("hash maps", r"hashbrown|hash::|Hasher"),
    ("ext-php-rs (PHP glue)", r"ext_php_rs"),
    ("lock code (core)", r"redis_lock_core"),
    ("PHP classes (src)", r"redis_lock::"),
]
LIBRARIES = {
    "[kernel.kallsyms]": "kernel", "php8.2": "PHP engine", "php8.4": "PHP engine",
    "libc.so.6": "libc", "redis.so": "phpredis", "libredis_lock.so": "extension",
}


def report(data, sort):
    """[(ns, library, symbol)] from `perf report`."""
    text = subprocess.run(["perf", "report", "-q", "-i", data, "--no-children", "--sort", sort,
                           "-F", "period," + sort, "-g", "none"],
                          check=True, capture_output=True, text=True).stdout
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)(?:\s+\[[.k]\]\s+(.*?))?\s*$", line)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3) or ""))
    return out


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "perf.data")
    run = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", data, "--",
                          *php, bench, "manykeys", impl, port, "16", seconds],
                         check=True, capture_output=True, text=True)
    cycles = json.loads(run.stdout.strip().splitlines()[-1])["cycles"]
    by_library = {}
    for ns, library, _ in report(data, "dso"):
        name = LIBRARIES.get(library, "other")
        by_library[name] = by_library.get(name, 0) + ns
    ext_groups = {}
    if impl == "ext":
        for ns, library, symbol in report(data, "dso,sym"):
            if library != "libredis_lock.so":
                continue
            group = next((g for g, pattern in GROUPS if re.search(pattern, symbol)), "other")
            ext_groups[group] = ext_groups.get(group, 0) + ns

per_cycle = lambda d: {k: round(v / 1e3 / cycles, 2) for k, v in sorted(d.items(), key=lambda kv: -kv[1])}
row = {"mode": "cpusplit", "impl": impl, "cycles": cycles, "us_per_cycle": per_cycle(by_library)}
if ext_groups:
    row["extension_us_per_cycle"] = per_cycle(ext_groups)
print(json.dumps(row))
