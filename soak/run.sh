#!/usr/bin/env bash
# Faults, leaks and load beyond the unit tests. Prints the figures TESTING.md quotes.
#   soak/run.sh          the long run (make soak): 1 M lock cycles, ~30 s of FPM load,
#                        fault runs 10x as long as in the test suite
#   soak/run.sh --short  the shortened form that `make test` runs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so="$root/target/release/libredis_lock.so"
if [ "${1:-}" = "--short" ]; then
    cycles=100000 requests=5000 scale=1
else
    cycles=1000000 requests=66000 scale=10
fi
state=$(mktemp -d /tmp/redis-lock-soak.XXXXXX)
port=$("$root/scripts/redis.sh" start "$state/redis")
trap '"$root/scripts/redis.sh" stop "$state/redis"; rm -rf "$state"' EXIT
dsn="redis://127.0.0.1:$port"
report="$root/.build/soak-report.txt"
mkdir -p "$root/.build"
: >"$report"

status=0
run() { "$@" | tee -a "$report" || status=1; }
run php -d extension="$so" "$root/soak/rss.php" "$dsn" "$cycles"
run "$root/soak/valgrind.sh" "$so" "$dsn" "$state/valgrind.log"
run "$root/soak/fpm-load.sh" "$so" "$requests"
REDIS_LOCK_SO="$so" REDIS_LOCK_FAULT_SCALE=$scale REDIS_LOCK_REPORT="$report" \
    php -d extension="$so" /usr/bin/phpunit -c "$root/php-tests/phpunit.xml" --filter FaultsTest || status=1
echo "---- figures ($report)"
cat "$report"
exit $status
