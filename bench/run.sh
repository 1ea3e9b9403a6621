#!/usr/bin/env bash
# The benchmark suite: this extension and what PHP users use today, in one run,
# against one local redis-server. Writes bench/results.jsonl, BENCHMARKS.md
# and bench/p99-wait.png. Not part of the tests: nothing here asserts on time.
#
#   make bench                 (BENCH_QUICK=1 for a short smoke run)
#   BENCH_ONLY=http bench/run.sh
#       runs one part only (uncontended, servercost, contended, manykeys,
#       instructions, cpusplit, deployments, readheavy, semaphore, rss, http
#       or metricscost),
#       keeps the other parts' rows of bench/results.jsonl and rewrites the report
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so="$root/target/release/libredis_lock.so"
php=(php -d extension="$so")
state=$(mktemp -d /tmp/redis-lock-bench.XXXXXX)
port=$("$root/scripts/redis.sh" start "$state/redis")
trap '"$root/scripts/redis.sh" stop "$state/redis"; rm -rf "$state"' EXIT
out="$root/bench/results.jsonl"
only=${BENCH_ONLY:-}
case "$only" in
"") : >"$out" ;;
uncontended | servercost | contended | manykeys | instructions | cpusplit | deployments | readheavy | semaphore | rss | http | metricscost)
    # Drop that part's old rows only; the others stay as the last run left them.
    python3 -c 'import json, sys
modes = {"deployments": ("deployment", "deployment-contended"), "metricscost": ("metricscost", "metricsload")}.get(sys.argv[2], (sys.argv[2],))
rows = [l for l in open(sys.argv[1]) if l.strip() and json.loads(l)["mode"] not in modes]
open(sys.argv[1], "w").writelines(rows)' "$out" "$only" ;;
*) echo "BENCH_ONLY: one of uncontended, servercost, contended, manykeys, instructions, cpusplit, deployments, readheavy, semaphore, rss, http, metricscost" >&2; exit 2 ;;
esac
part() { [ -z "$only" ] || [ "$only" = "$1" ]; }
if [ -n "${BENCH_QUICK:-}" ]; then
    reps=3 cycles=500 seconds=1 rss_cycles=20000 ks="1 4 16" http_requests=400 http_rounds=1 cost_cycles=2000
else
    reps=9 cycles=5000 seconds=5 rss_cycles=1000000 ks="1 4 16 64" http_requests=3000 http_rounds=3 cost_cycles=20000
fi
b() { "${php[@]}" "$root/bench/bench.php" "$@" | tee -a "$out"; }

if part uncontended; then
    echo "== uncontended: $reps rounds of $cycles acquire+release cycles each, in blocks of 100 taking turns"
    for _ in $(seq "$reps"); do b uncontended all "$port" "$cycles"; done
fi
if part servercost; then
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
fi
if part contended; then
    echo "== contended: K workers on one key, GET-then-SET inside, ${seconds}s each"
    for k in $ks; do
        for impl in ext phpredis laravel symfony; do b contended "$impl" "$port" "$k" "$seconds"; done
    done
fi
if part manykeys; then
    echo "== many keys: 16 workers, each on its own key, $reps rounds taking turns"
    for _ in $(seq "$reps"); do
        for impl in ext phpredis; do b manykeys "$impl" "$port" 16 "$seconds"; done
    done
fi
if part instructions; then
    # The clients' CPU per cycle without the noise of time: instructions the
    # PHP process executes per many-keys cycle (valgrind callgrind, user space
    # only), from two runs of different lengths, so start-up cancels out.
    echo "== client instructions per many-keys cycle (valgrind callgrind, one worker)"
    for impl in ext phpredis; do
        python3 "$root/bench/callgrind.py" "$impl" "$port" "${php[@]}" | tee -a "$out"
    done
fi
if part cpusplit; then
    # The same in time: the many-keys workers' CPU per cycle by library, from
    # perf's software clock (bench/cpu-split.py). Needs perf; skipped without.
    if command -v perf >/dev/null && perf record -q -e cpu-clock -o /dev/null -- true 2>/dev/null; then
        echo "== where the many-keys workers' CPU goes (perf, cpu-clock), ${seconds}s each"
        for impl in ext phpredis; do
            python3 "$root/bench/cpu-split.py" "$impl" "$port" "$seconds" "${php[@]}" | tee -a "$out"
        done
    else
        echo "cpusplit: perf is missing or not permitted here: skipped" >&2
    fi
fi
if part metricscost; then
    # The host metrics' cost (issue 24): the same extension with
    # redis_lock.metrics=off and =host (the default) in separate processes
    # taking turns, on the uncontended cycle and the many-keys throughput,
    # then the client's instructions per cycle of each (callgrind). And what
    # the metrics show under load, for README's plot.
    echo "== metrics cost: off against host, $reps rounds taking turns; instructions per cycle; metrics under load"
    shm="/redis_lock.bench.$$"
    for _ in $(seq "$reps"); do
        for m in off host; do
            mphp=("${php[@]}" -d "redis_lock.metrics=$m" -d "redis_lock.metrics_shm=$shm")
            BENCH_METRICS=$m "${mphp[@]}" "$root/bench/bench.php" uncontended ext "$port" "$cycles" | grep '"part":"uncontended","metrics":"[a-z]*","impl":"ext"' | tee -a "$out"
            BENCH_METRICS=$m "${mphp[@]}" "$root/bench/bench.php" manykeys ext "$port" 16 "$seconds" | tee -a "$out"
        done
    done
    for m in off host; do
        python3 "$root/bench/callgrind.py" ext "$port" "${php[@]}" -d "redis_lock.metrics=$m" -d "redis_lock.metrics_shm=$shm" |
            python3 -c 'import json, sys; r = json.loads(sys.stdin.read()); print(json.dumps({"mode": "metricscost", "part": "instructions", "metrics": sys.argv[1], **{k: v for k, v in r.items() if k != "mode"}}))' "$m" |
            tee -a "$out"
    done
    rm -f "/dev/shm$shm"
    "${php[@]}" -d "redis_lock.metrics_shm=$shm" "$root/bench/bench.php" metricsload ext "$port" "$((seconds * 2))" >>"$out"
    rm -f "/dev/shm$shm"
fi
if part deployments; then
    echo "== deployments: one node, cluster, Redlock"
    "$root/bench/deployments.sh" "$so" "$out" "$reps" "$((cycles / 5))"
fi
if part readheavy; then
    echo "== read-heavy: 9 readers and 1 writer on one name, ${seconds}s each (bench/readheavy.php)"
    for impl in ext symfony; do
        "${php[@]}" "$root/bench/readheavy.php" "$impl" "$port" "$seconds" | tee -a "$out"
    done
fi
if part semaphore; then
    echo "== semaphore: 8 workers, limit 3, permits/s (bench/semaphore.php)"
    for _ in $(seq "$(( (reps + 2) / 3 ))"); do
        for impl in ext symfony symfony-ext polling; do
            "${php[@]}" "$root/bench/semaphore.php" "$impl" "$port" 8 3 "$seconds" | tee -a "$out"
        done
    done
fi
if part rss; then
    echo "== memory and connections"
    b rss ext "$port" "$rss_cycles"
    b rss phpredis "$port" "$rss_cycles"
fi
if part http; then
    echo "== HTTP: PHP-FPM (16 workers) + nginx, $http_rounds rounds of ab -c 32 -n $http_requests per lock, one hot key, 2 ms critical section"
    "$root/bench/http.sh" "$so" "$port" "$http_requests" "$http_rounds" | tee -a "$out"
fi

command="make bench"
# With BENCH_ONLY, the other parts' rows (and the machine they ran on) are the last full run's.
[ -z "$only" ] || command="make bench\` with the $only part re-run alone later by \`BENCH_ONLY=$only bench/run.sh"
python3 "$root/bench/report.py" "$out" "$root/BENCHMARKS.md" "$root/bench/p99-wait.png" \
    "$command" "$(php -r 'echo PHP_VERSION;')" "$(redis-server --version | awk '{print $3}')"
