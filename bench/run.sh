#!/usr/bin/env bash
# The benchmark suite: this extension and what PHP users use today, in one run,
# against one local redis-server. Writes bench/results.jsonl, BENCHMARKS.md
# and bench/p99-wait.png. Not part of the tests: nothing here asserts on time.
#
#   make bench                 (BENCH_QUICK=1 for a short smoke run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so="$root/target/release/libredis_lock.so"
php=(php -d extension="$so")
state=$(mktemp -d /tmp/redis-lock-bench.XXXXXX)
port=$("$root/scripts/redis.sh" start "$state/redis")
trap '"$root/scripts/redis.sh" stop "$state/redis"; rm -rf "$state"' EXIT
out="$root/bench/results.jsonl"
: >"$out"
if [ -n "${BENCH_QUICK:-}" ]; then
    reps=3 cycles=500 seconds=1 rss_cycles=20000 ks="1 4 16" cost_cycles=2000
else
    reps=9 cycles=5000 seconds=5 rss_cycles=1000000 ks="1 4 16 64" cost_cycles=20000
fi
b() { "${php[@]}" "$root/bench/bench.php" "$@" | tee -a "$out"; }

echo "== uncontended: $reps rounds of $cycles acquire+release cycles each, in blocks of 100 taking turns"
for _ in $(seq "$reps"); do b uncontended all "$port" "$cycles"; done
echo "== server time per cycle (INFO commandstats): $reps rounds of $cost_cycles cycles, here and in the matrix roots"
for _ in $(seq "$reps"); do b servercost all "$port" "$cost_cycles" "redis-server (this machine)"; done
# Redis 8.0 and Valkey 8.1 (Debian 13), Valkey 9.1 with DELIFEQ and Redis 8.0
# (unstable): the roots of the version matrix (scripts/root.sh; made on first
# use, ~7 min each). Without root or debootstrap the table says which are missing.
for matrix_root in trixie sid; do
    if "$root/scripts/root.sh" ensure "$matrix_root" >&2; then
        "$root/scripts/root.sh" run "$matrix_root" /src/bench/server-cost.sh "$matrix_root" "$cost_cycles" "$reps" | tee -a "$out"
    else
        echo "server time: the $matrix_root root could not be made: its servers are not measured" >&2
    fi
done
echo "== contended: K workers on one key, GET-then-SET inside, ${seconds}s each"
for k in $ks; do
    for impl in ext phpredis laravel symfony; do b contended "$impl" "$port" "$k" "$seconds"; done
done
echo "== many keys: 16 workers, each on its own key, $reps rounds taking turns"
for _ in $(seq "$reps"); do
    for impl in ext phpredis; do b manykeys "$impl" "$port" 16 "$seconds"; done
done
echo "== memory and connections"
b rss ext "$port" "$rss_cycles"
b rss phpredis "$port" "$rss_cycles"

python3 "$root/bench/report.py" "$out" "$root/BENCHMARKS.md" "$root/bench/p99-wait.png" \
    "make bench" "$(php -r 'echo PHP_VERSION;')" "$(redis-server --version | awk '{print $3}')"
