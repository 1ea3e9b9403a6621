#!/usr/bin/env bash
# The WordPress proof: Debian's wordpress package, a private MariaDB, PHP-FPM
# and nginx on loopback, the plugin activated, and a REST route that credits a
# user with get_user_meta + update_user_meta, under concurrent load:
#   1. with the lock: balance == 2xx responses, every other response a 429 with Retry-After
#   2. without the lock: the lost updates, counted
#   3. Redis stopped mid-run and started again: only 2xx/429/503, no 5xx other
#      than the plugin's 503, balance == 2xx, and 2xx again once Redis is back
#   4. a lock held elsewhere under the site's own default prefix: 429s
#   5. without the extension: a 503 and Site Health critical
#   6. as a must-use plugin (the loader in mu-plugins/): loaded, working
#   7. Site Health shows the host's lock metrics: the FPM workers' acquires of run 1, summed
# Usage: wordpress/tests/run.sh [REQUESTS] [CLIENTS]
set -euo pipefail
requests=${1:-2000} clients=${2:-16}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
so="$root/target/release/libredis_lock.so"
dir=$(mktemp -d /tmp/redis-lock-wp.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
    "$root/scripts/php-web.sh" stop "$dir"
    [ -f "$dir/mysql.pid" ] && kill "$(cat "$dir/mysql.pid")" 2>/dev/null || true
    "$root/scripts/redis.sh" stop "$dir/redis"
    sleep 0.5
    rm -rf "$dir"
}
trap cleanup EXIT

# MariaDB, private to this run.
mariadb-install-db --no-defaults --datadir="$dir/db" --auth-root-authentication-method=normal \
    --skip-test-db --user=root >"$dir/mysql-install.log" 2>&1
mariadbd --no-defaults --datadir="$dir/db" --socket="$dir/mysql.sock" --skip-networking --user=root \
    --pid-file="$dir/mysql.pid" --log-error="$dir/mysql.err" &
# Ready when it answers (the socket file can appear before it serves).
for _ in $(seq 400); do mariadb-admin --no-defaults -S "$dir/mysql.sock" -u root ping >/dev/null 2>&1 && break; sleep 0.05; done
mariadb --no-defaults -S "$dir/mysql.sock" -u root \
    -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'wp'; GRANT ALL ON wp.* TO wp@localhost;"

# WordPress from Debian's package, copied so that this run owns its config.
cp -rL /usr/share/wordpress "$dir/wp"
rm -f "$dir/wp/wp-config.php"
mkdir -p "$dir/wp/wp-content/plugins" "$dir/wp/wp-content/mu-plugins"
cp -r "$root/wordpress/redis-lock" "$dir/wp/wp-content/plugins/redis-lock"
cp "$here/credit-endpoint.php" "$dir/wp/wp-content/mu-plugins/"

redis_port=$("$root/scripts/redis.sh" start "$dir/redis")
http_port=$(free_port)
host="127.0.0.1:$http_port"
cat >"$dir/wp/wp-config.php" <<CONF
<?php
define('DB_NAME', 'wp'); define('DB_USER', 'wp'); define('DB_PASSWORD', 'wp');
define('DB_HOST', 'localhost:$dir/mysql.sock');
define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', '');
\$table_prefix = 'wp_';
define('WP_HOME', 'http://$host'); define('WP_SITEURL', 'http://$host');
define('WP_CONTENT_DIR', __DIR__ . '/wp-content');
define('WP_DEBUG', false);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('REDIS_LOCK_DSN', 'redis://127.0.0.1:$redis_port');
define('REDIS_LOCK_WAIT', 0.05);   // short, so that busy answers (429) show up under load
define('REDIS_LOCK_TTL', 5);
if (!defined('ABSPATH')) { define('ABSPATH', __DIR__ . '/'); }
require_once ABSPATH . 'wp-settings.php';
CONF
user=$(php -d extension="$so" "$here/install.php" "$dir/wp" "$host" | tail -1)

# The workers count their locks in a metrics segment of this run's own.
shm="/redis_lock.wp-test.$$"
HTTP_PORT=$http_port PHP_DEFINES="redis_lock.metrics_shm=$shm" \
    "$root/scripts/php-web.sh" start "$dir" "$so" "$dir/wp/index.php" >/dev/null
url="http://$host/index.php?rest_route=/redis-lock-test/v1/credit&user_id=$user"
for _ in $(seq 100); do curl -sf -X POST "$url&nolock=1" >/dev/null 2>&1 && break; sleep 0.1; done
balance() { php -r '$m = new mysqli("localhost", "wp", "wp", "wp", 0, $argv[1]); echo (int) $m->query("SELECT meta_value FROM wp_usermeta WHERE user_id = " . (int) $argv[2] . " AND meta_key = \"credit\"")->fetch_row()[0];' "$dir/mysql.sock" "$user"; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["counts"].get(sys.argv[2], 0))' "$@"; }

status=0
fail() { echo "FAIL: $*"; status=1; }

# 1. With the lock.
before=$(balance)
python3 "$here/load.py" "$url" "$requests" "$clients" >"$dir/locked.json"
after=$(balance)
ok=$(field "$dir/locked.json" 200) busy=$(field "$dir/locked.json" 429)
retry=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["retry_after_on_429"])' "$dir/locked.json")
echo "wordpress with the lock:    $(cat "$dir/locked.json")"
echo "wordpress with the lock:    balance +$((after - before)) for $ok 2xx; $busy 429 ($retry with Retry-After); lost updates $((ok - (after - before)))"
[ $((after - before)) -eq "$ok" ] || fail "balance $((after - before)) != 2xx $ok"
[ $((ok + busy)) -eq "$requests" ] || fail "responses other than 2xx and 429"
[ "$retry" -eq "$busy" ] || fail "a 429 without Retry-After"
# 7. Site Health, read by another process: every worker's acquires and timeouts of run 1, summed.
health=$(php -d extension="$so" -d "redis_lock.metrics_shm=$shm" "$here/metrics-health.php" "$dir/wp" "$host")
echo "wordpress, Site Health's lock metrics: $health"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); want="lock: acquired / busy / timed out / failed: %s / 0 / %s / 0" % (sys.argv[2], sys.argv[3]); sys.exit(0 if d["status"] == "good" and d["acquired"] == int(sys.argv[2]) and want in d["text"] else 1)' "$health" "$ok" "$busy" \
    || fail "Site Health: expected 'good', and run 1's $ok acquires and $busy timeouts"

# 2. Without the lock.
before=$(balance)
python3 "$here/load.py" "$url" "$requests" "$clients" nolock >"$dir/unlocked.json"
after=$(balance)
ok=$(field "$dir/unlocked.json" 200)
echo "wordpress without the lock: balance +$((after - before)) for $ok 2xx: lost updates $((ok - (after - before)))"

# 3. Redis stopped during the run, then back.
before=$(balance)
python3 "$here/load.py" "$url" "$requests" "$clients" >"$dir/outage.json" &
load=$!
sleep 1
"$root/scripts/redis.sh" stop "$dir/redis"
sleep 1.5
"$root/scripts/redis.sh" start "$dir/redis" "$redis_port" >/dev/null
wait $load
after=$(balance)
echo "wordpress, Redis stopped for 1.5 s mid-run: $(cat "$dir/outage.json")"
ok=$(field "$dir/outage.json" 200) busy=$(field "$dir/outage.json" 429) down=$(field "$dir/outage.json" 503)
[ $((ok + busy + down)) -eq "$requests" ] || fail "responses other than 2xx, 429 and 503 during the outage"
[ "$down" -gt 0 ] || fail "the outage was not seen"
[ $((after - before)) -eq "$ok" ] || fail "balance $((after - before)) != 2xx $ok across the outage"
after_outage=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")
[ "$after_outage" = 200 ] || fail "no recovery after Redis came back ($after_outage)"
# 4. A lock held elsewhere (another server's cron, say): every request is a 429 with Retry-After.
# The site's own prefix (no REDIS_LOCK_PREFIX here): wp:<DB_NAME>:<table prefix>lock:.
prefix="wp:wp:wp_lock:"
php -d extension="$so" -r '$m = new RedisLock\RedisMutex($argv[1], ["prefix" => $argv[4]]); $m->acquire("credit:" . $argv[2], 30) or exit(1); touch($argv[3]); sleep(4);' \
    "redis://127.0.0.1:$redis_port" "$user" "$dir/held" "$prefix" &
holder=$!
for _ in $(seq 100); do [ -f "$dir/held" ] && break; sleep 0.05; done
before=$(balance)
python3 "$here/load.py" "$url" 40 4 >"$dir/held.json"
wait $holder || true
echo "wordpress, lock held elsewhere: $(cat "$dir/held.json")"
busy=$(field "$dir/held.json" 429)
retry=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["retry_after_on_429"])' "$dir/held.json")
[ "$busy" -eq 40 ] && [ "$retry" -eq 40 ] || fail "expected 40 answers 429 with Retry-After, got $busy ($retry)"
[ "$(balance)" -eq "$before" ] || fail "credited while the lock was held elsewhere"

# 5. The extension not loaded: the plugin says so and the site keeps working.
without=$(php "$here/without-extension.php" "$dir/wp" "$host")
echo "wordpress without the extension: $without"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["is_wp_error"] and d["status"] == 503 and d["health"] == "critical" and "not loaded" in d["health_text"] else 1)' "$without" \
    || fail "without the extension: expected a 503 WP_Error and a critical Site Health result"

# 6. As a must-use plugin: the loader and the folder in mu-plugins/, the plugin gone from plugins/.
rm -rf "$dir/wp/wp-content/plugins/redis-lock"
cp -r "$root/wordpress/redis-lock" "$dir/wp/wp-content/mu-plugins/redis-lock"
cp "$root/wordpress/redis-lock-loader.php" "$dir/wp/wp-content/mu-plugins/"
mu=$(php -d extension="$so" "$here/mu-plugin.php" "$dir/wp" "$host")
echo "wordpress, as a must-use plugin: $mu"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["loaded"] and d["result"] == "ran" and d["prefix"] == sys.argv[2] and "redis-lock-loader.php" in d["mu_plugins"] else 1)' "$mu" "$prefix" \
    || fail "as a must-use plugin: expected it loaded by the loader, its lock working, the site's prefix $prefix"

grep -i "fatal" "$dir/fpm.log" && fail "PHP fatal errors in the FPM log"
rm -f "/dev/shm$shm"
[ $status -eq 0 ] && echo "wordpress proof: all checks passed"
exit $status
