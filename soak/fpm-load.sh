#!/usr/bin/env bash
# PHP-FPM (8 static workers) + nginx from Debian on loopback, an endpoint doing
# a locked read-modify-write of one counter, driven by ab with 64 concurrent
# connections. Checks: counter == 2xx responses, no 5xx, FPM worker RSS flat,
# one extension connection per FPM worker.
# Usage: soak/fpm-load.sh SO REQUESTS   (KEEP=1 leaves the servers and files for a look)
set -euo pipefail
so=$1 requests=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/redis-lock-fpm.XXXXXX)
cleanup() {
    "$here/../scripts/php-web.sh" stop "$dir"
    "$here/../scripts/redis.sh" stop "$dir/redis"
    sleep 0.2
    rm -rf "$dir"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
redis_port=$("$here/../scripts/redis.sh" start "$dir/redis")
http_port=$("$here/../scripts/php-web.sh" start "$dir" "$so" "$here/fpm/counter.php" "REDIS_PORT=$redis_port")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/" >/dev/null 2>&1 && break; sleep 0.05; done

rss() { ps -o rss= --ppid "$(cat "$dir/fpm.pid")" | awk '{s+=$1; if ($1>m) m=$1} END {printf "%d %d\n", s/NR, m}'; }
redis-cli -p "$redis_port" set counter 0 >/dev/null
ab -q -c 64 -n 2000 "http://127.0.0.1:$http_port/" >/dev/null        # warm-up: every worker serves
read -r rss_avg_before rss_max_before < <(rss)
redis-cli -p "$redis_port" set counter 0 >/dev/null
start=$(date +%s.%N)
ab -c 64 -n "$requests" "http://127.0.0.1:$http_port/" >"$dir/ab.txt" 2>&1 || true
took=$(echo "$(date +%s.%N) - $start" | bc)
read -r rss_avg_after rss_max_after < <(rss)

complete=$(awk '/^Complete requests:/ {print $3}' "$dir/ab.txt")
failed=$(awk '/^Failed requests:/ {print $3}' "$dir/ab.txt")
non2xx=$(awk '/^Non-2xx responses:/ {print $3}' "$dir/ab.txt"); non2xx=${non2xx:-0}
counter=$(redis-cli -p "$redis_port" get counter)
ok=$((complete - non2xx))
workers=$(ps -o pid= --ppid "$(cat "$dir/fpm.pid")" | wc -l)
# The extension's connections are the ones whose last command was a lock script.
ext_conns=$(redis-cli -p "$redis_port" client list | grep -c 'cmd=evalsha' || true)
rss_growth=$((rss_max_after - rss_max_before))

printf 'fpm-load: %d requests, 64 concurrent, %.1f s (%.0f req/s): 2xx %d, non-2xx %d, failed %d; counter %s (lost updates %d)\n' \
    "$complete" "$took" "$(echo "$complete / $took" | bc -l)" "$ok" "$non2xx" "$failed" "$counter" "$((ok - counter))"
printf 'fpm-load: %d FPM workers, %d extension connections; worker RSS max %d kB -> %d kB (%+d kB), mean %d -> %d kB\n' \
    "$workers" "$ext_conns" "$rss_max_before" "$rss_max_after" "$rss_growth" "$rss_avg_before" "$rss_avg_after"
status=0
[ "$complete" -eq "$requests" ] || { echo "FAIL: not every request completed"; status=1; }
[ "$non2xx" -eq 0 ] && [ "$failed" -eq 0 ] || { echo "FAIL: errors"; grep -i -m5 "error\|warning" "$dir/fpm.log" || true; status=1; }
[ "$counter" -eq "$ok" ] || { echo "FAIL: counter $counter != 2xx $ok"; status=1; }
[ "$ext_conns" -eq "$workers" ] || { echo "FAIL: $ext_conns extension connections for $workers workers"; status=1; }
[ "$rss_growth" -le 1024 ] || { echo "FAIL: FPM worker RSS grew by $rss_growth kB"; status=1; }
exit $status
