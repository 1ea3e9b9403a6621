#!/usr/bin/env bash
# Redis server time per lock cycle (INFO commandstats) on the servers of the
# version matrix: run inside a Debian root by bench/run.sh,
#
#   scripts/root.sh run trixie|sid /src/bench/server-cost.sh NAME CYCLES ROUNDS
#
# builds the extension against the root's PHP (the same build as
# scripts/matrix.sh, so the two share it), starts each server of the root on
# a free loopback port and prints bench.php's servercost rows (JSON lines) on
# stdout; everything else goes to stderr.
set -euo pipefail
name=${1:?usage: $0 NAME CYCLES ROUNDS} cycles=${2:?} rounds=${3:?}
so=/src/target/root-$name/release/libredis_lock.so
cargo build --quiet --release --features panic-injection --manifest-path /src/Cargo.toml >&2

state=$(mktemp -d /tmp/redis-lock-server-cost.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$state"
}
trap cleanup EXIT

for server in redis-server valkey-server; do
    command -v "$server" >/dev/null || continue
    port=$(php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
    mkdir -p "$state/$server"
    "$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$state/$server" \
        >"$state/$server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        php -r '$r = new Redis(); try { exit($r->connect("127.0.0.1", (int) $argv[1]) && $r->ping() ? 0 : 1); } catch (Throwable) { exit(1); }' "$port" && break
        sleep 0.05
    done
    label="$server ($name root)"
    for _ in $(seq "$rounds"); do
        php -d extension="$so" /src/bench/bench.php servercost all "$port" "$cycles" "$label"
    done
    kill "${pids[-1]}" 2>/dev/null || true
done
