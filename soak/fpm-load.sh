#!/usr/bin/env bash
# PHP-FPM (8 static workers) + nginx from Debian on loopback, an endpoint doing
# a locked read-modify-write of one counter, driven by ab with 64 concurrent
# connections. Checks: counter == 2xx responses, no 5xx, FPM worker RSS flat,
# one extension connection per FPM worker; and Debian's Prometheus, scraping
# the workers' host-wide lock metrics at /metrics every second, counts as
# many acquires over the run as requests were served (its HTTP API's
# `increase()` over the span from the last scrape before the run to the last
# after it, where it extrapolates nothing).
# Usage: soak/fpm-load.sh SO REQUESTS   (KEEP=1 leaves the servers and files for a look)
set -euo pipefail
so=$1 requests=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/redis-lock-fpm.XXXXXX)
cleanup() {
    [ -f "$dir/prometheus.pid" ] && kill "$(cat "$dir/prometheus.pid")" 2>/dev/null || true
    "$here/../scripts/php-web.sh" stop "$dir"
    "$here/../scripts/redis.sh" stop "$dir/redis"
    sleep 0.2
    rm -rf "$dir"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
redis_port=$("$here/../scripts/redis.sh" start "$dir/redis")
# The workers count in a metrics segment of this run's own.
shm="/redis_lock.fpm-load.$$"
http_port=$(PHP_DEFINES="redis_lock.metrics_shm=$shm" \
    "$here/../scripts/php-web.sh" start "$dir" "$so" "$here/fpm/counter.php" "REDIS_PORT=$redis_port")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/" >/dev/null 2>&1 && break; sleep 0.05; done

prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$dir/prometheus.yml" <<CONF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: php
    static_configs: [ { targets: ["127.0.0.1:$http_port"] } ]
CONF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
echo $! >"$dir/prometheus.pid"
acquired='redis_lock_acquires_total{kind="lock",result="acquired"}'
# The value of PromQL $1 at unix time $2 (now if none), or "none".
promql() {
    curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
        ${2:+--data-urlencode "time=$2"} |
        php -r '$r = json_decode(stream_get_contents(STDIN), true)["data"]["result"] ?? []; echo $r ? $r[0]["value"][1] : "none";' ||
        echo none
}
# Waits until Prometheus's last scrape shows what /metrics shows now.
scraped() {
    local now
    now=$(curl -sf "http://127.0.0.1:$http_port/metrics" | awk -v m="$acquired" '$1 == m {print $2}')
    for _ in $(seq 200); do
        [ "$(promql "$acquired")" = "$now" ] && return 0
        sleep 0.1
    done
    echo "FAIL: Prometheus did not scrape $acquired = $now (see $dir/prometheus.log)"; return 1
}

# Each worker's private memory (RssAnon): its RSS also counts the pages of
# the shared metrics table it has read, which are the host's, not a leak.
rss() {
    for pid in $(ps -o pid= --ppid "$(cat "$dir/fpm.pid")"); do
        awk '/^RssAnon:/ {print $2}' "/proc/$pid/status"
    done | awk '{s+=$1; if ($1>m) m=$1} END {printf "%d %d\n", s/NR, m}'
}
redis-cli -p "$redis_port" set counter 0 >/dev/null
ab -q -c 64 -n 2000 "http://127.0.0.1:$http_port/" >/dev/null        # warm-up: every worker serves
read -r rss_avg_before rss_max_before < <(rss)
redis-cli -p "$redis_port" set counter 0 >/dev/null
prom_ok=1
scraped || prom_ok=0
before=$(date +%s.%N)
start=$(date +%s.%N)
ab -c 64 -n "$requests" "http://127.0.0.1:$http_port/" >"$dir/ab.txt" 2>&1 || true
took=$(echo "$(date +%s.%N) - $start" | bc)
scraped || prom_ok=0
# increase() over exactly the samples' span, from the last scrape before the
# run to the last one after it: it then extrapolates nothing and is exact.
prom_rise=$(python3 - "$prom_port" "$acquired" "$before" <<'PY'
import json, sys, urllib.parse, urllib.request
port, series, before = sys.argv[1], sys.argv[2], float(sys.argv[3])
def query(expr, at=None):
    args = {"query": expr, **({"time": at} if at else {})}
    r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(args)))
    return r["data"]["result"]
samples = query(f"{series}[10m]")[0]["values"]
first = [ts for ts, _ in samples if ts <= before][-1]
last = samples[-1][0]
span_ms = round((last - first) * 1000)
rise = query(f"increase({series}[{span_ms}ms])", f"{last:.3f}")[0]["value"][1]
print(rise)
PY
) || prom_rise=none
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
printf 'fpm-load: %d FPM workers, %d extension connections; worker RssAnon max %d kB -> %d kB (%+d kB), mean %d -> %d kB\n' \
    "$workers" "$ext_conns" "$rss_max_before" "$rss_max_after" "$rss_growth" "$rss_avg_before" "$rss_avg_after"
status=0
[ "$complete" -eq "$requests" ] || { echo "FAIL: not every request completed"; status=1; }
[ "$non2xx" -eq 0 ] && [ "$failed" -eq 0 ] || { echo "FAIL: errors"; grep -i -m5 "error\|warning" "$dir/fpm.log" || true; status=1; }
[ "$counter" -eq "$ok" ] || { echo "FAIL: counter $counter != 2xx $ok"; status=1; }
[ "$ext_conns" -eq "$workers" ] || { echo "FAIL: $ext_conns extension connections for $workers workers"; status=1; }
[ "$rss_growth" -le 1024 ] || { echo "FAIL: FPM worker RssAnon grew by $rss_growth kB"; status=1; }
# Every query of the Grafana dashboard (docs/grafana), run by this Prometheus:
# each must parse and, but for the lost-locks panel, find series.
dashboard_check=$(python3 - "$here/../docs/grafana/redis-lock-dashboard.json" "$prom_port" <<'PY'
import json, sys, urllib.parse, urllib.request
dash = json.load(open(sys.argv[1]))
bad = []
for panel in dash["panels"]:
    for t in panel["targets"]:
        expr = t["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m").replace("$__range", "1m")
        url = f"http://127.0.0.1:{sys.argv[2]}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            r = json.load(urllib.request.urlopen(url))
        except Exception as e:
            bad.append(f"{panel['title']}: {expr}: {e}")
            continue
        if r.get("status") != "success" or (not r["data"]["result"] and "Lost" not in panel["title"]):
            bad.append(f"{panel['title']}: {expr}: {r.get('error') or 'no series'}")
print("; ".join(bad) if bad else "ok")
PY
)
"$here/../scripts/php-web.sh" stop "$dir"
rm -f "/dev/shm$shm"
printf 'fpm-load: Prometheus (scraping /metrics every 1 s) saw %s acquires over the run, for %d requests served; Grafana dashboard queries: %s\n' "$prom_rise" "$ok" "$dashboard_check"
[ "$dashboard_check" = ok ] || { echo "FAIL: the dashboard's queries: $dashboard_check"; status=1; }
[ "$prom_ok" -eq 1 ] && [ "$prom_rise" = "$ok" ] || { echo "FAIL: Prometheus counted $prom_rise acquires, not $ok"; status=1; }
exit $status
