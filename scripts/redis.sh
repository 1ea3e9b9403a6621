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
    # Ready when it answers PING with PONG (not -LOADING); 10 s at most.
    ready=
    for _ in $(seq 200); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && { ready=1; break; }
        sleep 0.05
    done
    [ -n "$ready" ] || { echo "redis.sh: redis-server on $port does not answer PING (log: $dir/redis.log)" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "$port"
    ;;
stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
esac
