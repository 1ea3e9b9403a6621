#!/usr/bin/env bash
# Starts one server, five independent masters and a three-master cluster on
# free loopback ports, runs bench/deployments.php against them, appends its
# lines to the results file given, and stops everything. (A LAN-like round
# trip could not be emulated here: this kernel has no netem qdisc.)
#
#   bench/deployments.sh SO RESULTS ROUNDS CYCLES
set -euo pipefail
so=$1 out=$2 rounds=$3 cycles=$4
root=$(cd "$(dirname "$0")/.." && pwd)
server=${REDIS_LOCK_TEST_SERVER:-redis-server}
cli=$([ "${server##*/}" = valkey-server ] && echo valkey-cli || echo redis-cli)
state=$(mktemp -d /tmp/redis-lock-bench-deploy.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$state"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A cluster node also listens on its port + 10000, so its port must be at most 55535.
cluster_port() { local p; while p=$(free_port); [ "$p" -gt 55535 ]; do :; done; echo "$p"; }
start() {  # PORT [ARGS...]
    local port=$1; shift
    mkdir -p "$state/$port"
    "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$state/$port" \
        --logfile "$state/$port/log" "$@" &
    pids+=($!)
    for _ in $(seq 200); do "$cli" -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "server on $port did not start:" >&2; cat "$state/$port/log" >&2; exit 1
}
one=$(free_port); start "$one"
masters=()
for _ in 1 2 3 4 5; do p=$(free_port); start "$p"; masters+=("$p"); done
nodes=()
for _ in 1 2 3; do
    p=$(cluster_port); start "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000
    nodes+=("127.0.0.1:$p")
done
"$cli" --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for n in "${nodes[@]}"; do
    until "$cli" -p "${n##*:}" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
done
php -d extension="$so" "$root/bench/deployments.php" loopback 127.0.0.1 "$one" "$(IFS=,; echo "${nodes[*]}")" \
    "$(IFS=,; echo "${masters[*]}")" "$rounds" "$cycles" | tee -a "$out"
