#!/usr/bin/env python3
"""Client instructions per many-keys cycle, counted by valgrind (callgrind).

Runs `bench.php loop IMPL PORT N` (one worker of the many-keys loop) under
callgrind for 1,000 and for 3,000 cycles; the difference over 2,000 cycles is
what one cycle costs, without start-up. Prints one JSON row: the total, the
part in libc's memset (valgrind runs it as a loop of AVX2 stores, where the
CPU runs `rep stosb`: far more instructions than time), and for the extension
the part in redis-rs's reply reading (`redis::connection::Connection::read`,
inclusive). User space only: system calls are not counted.

Usage: callgrind.py IMPL PORT PHP-ARGS...
"""
import json
import os
import re
import subprocess
import sys
import tempfile

impl, port, php = sys.argv[1], sys.argv[2], sys.argv[3:]
bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.php")
SHORT, LONG = 1000, 3000


def count(cycles):
    """{function: inclusive instructions} and the program total, for one run."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
                        *php, bench, "loop", impl, port, str(cycles)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out.name],
                              check=True, capture_output=True, text=True).stdout
    by = {}
    total = 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[.*\])?$", line)
        if not m:
            continue
        n, where = int(m.group(1).replace(",", "")), m.group(2)
        if where == "PROGRAM TOTALS":
            total = n
            continue
        function = where.split(":", 1)[1] if ":" in where else where
        by[function] = by.get(function, 0) + n
    return by, total


def part(by, pattern):
    return sum(n for f, n in by.items() if re.search(pattern, f))


(short, short_total), (long, long_total) = count(SHORT), count(LONG)
per = lambda long_n, short_n: round((long_n - short_n) / (LONG - SHORT))
row = {
    "mode": "instructions", "impl": impl, "cycles": LONG - SHORT,
    "instructions_per_cycle": per(long_total, short_total),
    "memset_per_cycle": per(part(long, r"^__memset"), part(short, r"^__memset")),
}
if impl == "ext":
    row["redis_rs_read_per_cycle"] = per(part(long, r"^redis::connection::Connection::read$"),
                                         part(short, r"^redis::connection::Connection::read$"))
print(json.dumps(row))
