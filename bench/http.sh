#!/usr/bin/env bash
# The end-to-end HTTP benchmark: PHP-FPM (16 static workers) + nginx + ab on
# loopback, 32 concurrent clients on one hot key, each request a 2 ms critical
# section (GET, 2 ms sleep, SET of a counter) under a lock. One endpoint per
# implementation (bench/http/*.php), each served by fresh FPM workers, warmed
# up, then driven by `ab -c 32 -n REQUESTS`. Prints one JSON line per
# implementation: requests/s, latency p50/p99/max (from ab's per-request
# times), Redis commands per request, and whether the counter equals the 2xx
# count with no non-2xx and no failed requests.
#
#   bench/http.sh SO REDIS_PORT REQUESTS [IMPL ...]   (IMPL: ext laravel symfony retry)
set -euo pipefail
so=$1 redis_port=$2 requests=$3
shift 3
impls=("$@")
[ ${#impls[@]} -gt 0 ] || impls=(ext laravel symfony retry)
here=$(cd "$(dirname "$0")" && pwd)
web="$here/../scripts/php-web.sh"
concurrency=32 workers=16
warmup=$((requests / 10 > 64 ? requests / 10 : 64))
dir=$(mktemp -d /tmp/redis-lock-http.XXXXXX)
trap '"$web" stop "$dir"; sleep 0.2; rm -rf "$dir"' EXIT
rcli() { redis-cli -p "$redis_port" "$@"; }
commands() { rcli info stats | awk -F: '/^total_commands_processed:/ {print $2+0}'; }

for impl in "${impls[@]}"; do
    [ -f "$here/http/$impl.php" ] || { echo "no endpoint bench/http/$impl.php" >&2; exit 2; }
    rm -rf "${dir:?}"/*
    port=$(FPM_WORKERS=$workers "$web" start "$dir" "$so" "$here/http/$impl.php" "REDIS_PORT=$redis_port")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
    running=$(ps -o pid= --ppid "$(cat "$dir/fpm.pid")" | wc -l)
    [ "$running" -eq "$workers" ] || { echo "$running FPM workers running, not $workers" >&2; exit 1; }
    # Warm-up: every worker has served, opened its connections and filled opcache.
    ab -q -s 60 -c "$concurrency" -n "$warmup" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    load=$(cut -d' ' -f1 /proc/loadavg)   # how busy the machine was before this run
    rcli del bench:http:hot lock:bench:http:hot >/dev/null
    rcli set bench:http:counter 0 >/dev/null
    commands0=$(commands)
    ab -s 60 -c "$concurrency" -n "$requests" -g "$dir/ab.tsv" "http://127.0.0.1:$port/" >"$dir/ab.txt" 2>&1 || true
    commands1=$(commands)
    counter=$(rcli get bench:http:counter)
    python3 - "$impl" "$dir/ab.txt" "$dir/ab.tsv" "$counter" "$((commands1 - commands0 - 1))" \
        "$concurrency" "$workers" "$requests" "$load" <<'PY'
import json, math, sys, time

impl, ab_txt, ab_tsv, counter, commands, concurrency, workers, requests, load = sys.argv[1:10]
text = open(ab_txt).read()


def field(label, default=0.0):
    for line in text.splitlines():
        if line.startswith(label):
            return float(line.split(":", 1)[1].split()[0])
    return default


complete = int(field("Complete requests"))
failed = int(field("Failed requests"))
non2xx = int(field("Non-2xx responses"))
took = field("Time taken for tests")
# ab -g: one row per request; ttime is connect + processing + waiting, in ms.
times = []
try:
    header, *lines = open(ab_tsv).read().splitlines()
    column = header.split("\t").index("ttime")
    times = sorted(int(line.split("\t")[column]) for line in lines if line.strip())
except OSError:
    pass


def pct(p):
    # Nearest rank: the smallest time that at least p of the requests did not exceed.
    return float(times[max(0, math.ceil(p * len(times)) - 1)]) if times else None


ok = complete - non2xx
counter = int(counter or 0)
print(json.dumps({
    "mode": "http", "impl": impl, "concurrency": int(concurrency), "fpm_workers": int(workers),
    "requests": int(requests), "complete": complete, "seconds": took,
    "requests_per_s": complete / took if took else 0.0,
    "latency_mean_ms": sum(times) / len(times) if times else None,
    "latency_p50_ms": pct(0.50), "latency_p99_ms": pct(0.99), "latency_max_ms": float(times[-1]) if times else None,
    "commands_per_request": (int(commands) - 2 * counter) / complete if complete else None,
    "non2xx": non2xx, "failed": failed, "counter": counter,
    "loadavg_1m_before": float(load), "at": time.strftime("%Y-%m-%d %H:%M %Z"),
    "exact": complete == int(requests) and non2xx == 0 and failed == 0 and counter == ok,
}))
PY
    grep -i -m3 "fatal\|uncaught" "$dir/fpm.log" >&2 || true
    "$web" stop "$dir"
    sleep 0.3
done
