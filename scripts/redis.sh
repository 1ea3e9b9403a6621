#!/usr/bin/env bash
# scripts/redis.sh start DIR [PORT] -> starts redis-server on PORT (default: a
#                                 free loopback port), writes DIR/port and DIR/pid,
#                                 prints the port
# scripts/redis.sh stop DIR   -> stops it
set -euo pipefail
cmd=$1 dir=$2
case "$cmd" in
start)
    mkdir -p "$dir"
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/pid" --logfile "$dir/redis.log" --dir "$dir"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    echo "$port" >"$dir/port"
    echo "$port"
    ;;
stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
esac
