#!/usr/bin/env bash
# PHP-FPM (8 static workers) + nginx from Debian on loopback, an endpoint doing
# a locked read-modify-write of one counter, driven by ab with 64 concurrent
# connections. Checks: counter == 2xx responses, no 5xx, FPM worker RSS flat,
# one extension connection per FPM worker.
# Usage: soak/fpm-load.sh SO REQUESTS
set -euo pipefail
so=$1 requests=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/redis-lock-fpm.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$("$here/../scripts/redis.sh" start "$dir/redis")
fpm_port=$(free_port) http_port=$(free_port)
cleanup() {
    [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
    [ -f "$dir/fpm.pid" ] && kill "$(cat "$dir/fpm.pid")" 2>/dev/null || true
    "$here/../scripts/redis.sh" stop "$dir/redis"
    sleep 0.2
    rm -rf "$dir"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT

cat >"$dir/fpm.conf" <<CONF
[global]
pid = $dir/fpm.pid
error_log = $dir/fpm.log
daemonize = yes
[load]
listen = 127.0.0.1:$fpm_port
pm = static
pm.max_children = 8
clear_env = no
catch_workers_output = yes
CONF
mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
daemon on;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp; proxy_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$http_port;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $here/fpm/counter.php;
            fastcgi_param REDIS_PORT $redis_port;
            fastcgi_pass 127.0.0.1:$fpm_port;
        }
    }
}
CONF
php-fpm8.2 -R -d extension="$so" -d display_errors=0 -d "redis_lock.dsn=redis://127.0.0.1:$redis_port" \
    -d opcache.enable=0 -y "$dir/fpm.conf"
nginx -c "$dir/nginx.conf" -p "$dir"
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
