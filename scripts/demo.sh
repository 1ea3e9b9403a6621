#!/usr/bin/env bash
# Starts a local redis-server on a free port, runs the balance demo against
# it with the built extension, and stops Redis again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.build/demo-redis"
so="$root/target/release/libredis_lock.so"
port=$("$root/scripts/redis.sh" start "$state")
trap '"$root/scripts/redis.sh" stop "$state"' EXIT
echo "redis-server on 127.0.0.1:$port"
php -d extension="$so" "$root/examples/balance.php" "$port" "${WORKERS:-8}" "${CREDITS:-200}"
