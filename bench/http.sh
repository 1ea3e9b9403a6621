#!/usr/bin/env bash
# The end-to-end HTTP benchmark: PHP-FPM (16 static workers) + nginx + ab on
# loopback, 32 concurrent clients on one hot key, each request a 2 ms critical
# section (GET, 2 ms sleep, SET of a counter) under a lock. One endpoint per
# implementation (bench/http/*.php). Each round runs every implementation once,
# in an order that rotates from round to round, each on fresh FPM workers,
# warmed up, then driven by `ab -c 32 -n REQUESTS`. Prints one JSON row per
# implementation and round (bench/ab_row.py): requests/s (ab's, and at full
# load from the counter's growth), latency
# mean/p50/p99/max, the time of one request with one client alone, the mean
# critical section (from lock held to SET done, summed by the endpoints), Redis
# commands per request, non-2xx and failed requests, and whether the counter
# equals the 2xx count.
#
#   bench/http.sh SO REDIS_PORT REQUESTS ROUNDS [IMPL ...]   (IMPL: ext laravel symfony retry)
set -euo pipefail
so=$1 redis_port=$2 requests=$3 rounds=$4
shift 4
impls=("$@")
[ ${#impls[@]} -gt 0 ] || impls=(ext laravel symfony retry)
here=$(cd "$(dirname "$0")" && pwd)
web="$here/../scripts/php-web.sh"
concurrency=32 workers=16
warmup=$((requests / 10 > 64 ? requests / 10 : 64)) solo_requests=200
for impl in "${impls[@]}"; do
    [ -f "$here/http/$impl.php" ] || { echo "no endpoint bench/http/$impl.php" >&2; exit 2; }
done
dir=$(mktemp -d /tmp/redis-lock-http.XXXXXX)
trap '"$web" stop "$dir"; sleep 0.2; rm -rf "$dir"' EXIT
rcli() { redis-cli -p "$redis_port" "$@"; }
commands() { rcli info stats | awk -F: '/^total_commands_processed:/ {print $2+0}'; }

# run IMPL ROUND: one implementation's measurement, printed as a JSON row.
run() {
    local impl=$1 round=$2 port running solo load commands0 commands1 counter section_us ab_pid
    rm -rf "${dir:?}"/*
    port=$(FPM_WORKERS=$workers "$web" start "$dir" "$so" "$here/http/$impl.php" "REDIS_PORT=$redis_port")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
    for _ in $(seq 100); do   # the master forks its static workers one after the other
        running=$(ps -o pid= --ppid "$(cat "$dir/fpm.pid")" | wc -l)
        [ "$running" -eq "$workers" ] && break
        sleep 0.05
    done
    [ "$running" -eq "$workers" ] || { echo "$running FPM workers running, not $workers" >&2; exit 1; }
    # Warm-up: every worker has served, opened its connections and filled opcache.
    ab -q -s 60 -c "$concurrency" -n "$warmup" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    # One client alone: what a request costs this endpoint with no one to wait for.
    solo=$(ab -s 60 -c 1 -n "$solo_requests" "http://127.0.0.1:$port/" 2>/dev/null | awk '/^Time per request:/ {print $4; exit}')
    : >"$dir/fpm.log"   # errors of the measured run only
    load=$(cut -d' ' -f1 /proc/loadavg)   # how busy the machine was before this run
    rcli del bench:http:hot lock:bench:http:hot >/dev/null
    rcli set bench:http:counter 0 >/dev/null
    rcli set bench:http:section_us 0 >/dev/null
    commands0=$(commands)
    ab -s 60 -c "$concurrency" -n "$requests" -g "$dir/ab.tsv" "http://127.0.0.1:$port/" >"$dir/ab.txt" 2>&1 &
    ab_pid=$!
    # The counter every 0.1 s: the rate at full load, without the ramp-up and the tail of stragglers.
    while kill -0 "$ab_pid" 2>/dev/null; do
        echo "$(date +%s.%N) $(rcli get bench:http:counter)"
        sleep 0.1
    done >"$dir/samples.txt"
    wait "$ab_pid" || true
    commands1=$(commands)
    counter=$(rcli get bench:http:counter)
    section_us=$(rcli get bench:http:section_us)
    # Less the INFO that read commands0 and the sampling GETs.
    python3 "$here/ab_row.py" "$impl" "$round" "$dir/ab.txt" "$dir/ab.tsv" "$dir/fpm.log" "$counter" \
        "$((commands1 - commands0 - 1 - $(wc -l <"$dir/samples.txt")))" "$concurrency" "$workers" "$requests" "$load" "${solo:-0}" "$section_us" "$dir/samples.txt"
    "$web" stop "$dir"
    sleep 0.3
}

for round in $(seq "$rounds"); do
    for i in "${!impls[@]}"; do
        run "${impls[$(( (i + round - 1) % ${#impls[@]} ))]}" "$round"
    done
done
