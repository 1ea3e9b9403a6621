#!/usr/bin/env bash
# The PECL/PIE way of installing, end to end, on a Debian system with PHP's
# -dev package, cargo and a redis-server (or valkey-server). Run as root: it
# really installs into PHP's extension directory and /etc/php, and takes all
# of it out again when it ends, also when it fails.
#
#   scripts/phpize-test.sh
#
# In a copy of this checkout's files (tracked and untracked, not ignored):
#   1. ./configure with no cargo on PATH must fail and say that cargo is needed;
#   2. phpize && ./configure && make && make install must put redis_lock.so,
#      and nothing else, into `php-config --extension-dir` (make install
#      INSTALL_ROOT=... first, into a staging directory);
#   3. redis_lock.ini in /etc/php/<ver>/mods-available + phpenmod must make
#      plain `php` (no -d flag) list the module, answer --ri and run a lock
#      cycle against a server started on a free loopback port;
#   4. phpdismod, and everything installed, the server and the copy are removed.
#
# Environment: PHP_CONFIG (default php-config) picks the PHP; PHPIZE (default
# phpize<ver>, else phpize); REDIS_LOCK_TEST_SERVER (default redis-server);
# CARGO_TARGET_DIR (default target/phpize-<ver>-<os> in this checkout, kept
# between runs so that rebuilds are incremental).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

say() { echo "phpize-test: $*"; }
die() { echo "phpize-test: FAIL: $*" >&2; exit 1; }

# Runs "$@" with its output in $work/NAME.log; shows the end of it on failure.
run() {
    local name=$1; shift
    if ! "$@" >"$work/$name.log" 2>&1; then
        tail -n 40 "$work/$name.log" >&2
        die "$name failed: $* (output above)"
    fi
}

[ "$(id -u)" -eq 0 ] || die "run this as root: make install writes into PHP's extension directory and phpenmod into /etc/php"
php_config=$(command -v "${PHP_CONFIG:-php-config}") \
    || die "${PHP_CONFIG:-php-config} not found: install PHP's -dev package (e.g. php8.4-dev) or set PHP_CONFIG"
php_config=$(readlink -f "$php_config")
ver=$("$php_config" --version | cut -d. -f1,2)
php=$("$php_config" --php-binary)
extdir=$("$php_config" --extension-dir)
phpize=${PHPIZE:-$(command -v "phpize$ver" || command -v phpize || true)}
[ -n "$phpize" ] || die "phpize not found: install PHP's -dev package (e.g. php$ver-dev) or set PHPIZE"
server=${REDIS_LOCK_TEST_SERVER:-redis-server}
command -v "$server" >/dev/null || die "$server not found: install redis-server or set REDIS_LOCK_TEST_SERVER (e.g. valkey-server)"
command -v cargo >/dev/null || die "cargo is not on PATH (the build needs it)"
command -v phpenmod >/dev/null || die "phpenmod not found: Debian's PHP packaging (php-common) is needed"
mods=/etc/php/$ver/mods-available
[ -d "$mods" ] || die "$mods does not exist"
[ ! -e "$extdir/redis_lock.so" ] || die "$extdir/redis_lock.so already exists; this test installs and removes its own, so remove that one first"
[ ! -e "$mods/redis_lock.ini" ] || die "$mods/redis_lock.ini already exists; remove it first"
if grep -qx redis_lock <<<"$("$php" -m)"; then die "$php already loads redis_lock (from $("$php" --ini | tr '\n' ' '))"; fi
os=$(. /etc/os-release && echo "${ID:-linux}${VERSION_ID:-${VERSION_CODENAME:-}}")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target/phpize-$ver-$os}

work=$(mktemp -d /tmp/phpize-test.XXXXXX)
server_pid="" installed_so="" installed_ini="" enabled=""
# What /etc/php/<ver> and phpenmod's state look like now, to leave them so.
state_paths=("/etc/php/$ver" "/var/lib/php/modules/$ver")
snapshot() { find "${state_paths[@]}" 2>/dev/null | sort; }
snapshot >"$work/state.before"
ls -A "$extdir" | sort >"$work/extdir.before"

cleanup() {
    local rc=$?
    set +e
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    if [ -n "$enabled" ]; then
        # One SAPI at a time: phpdismod -p forgets the state of the last one only.
        for conf in /etc/php/"$ver"/*/conf.d; do
            sapi=${conf%/conf.d}; sapi=${sapi##*/}
            phpdismod -p -v "$ver" -s "$sapi" redis_lock >/dev/null 2>&1
        done
    fi
    [ -n "$installed_ini" ] && rm -f "$mods/redis_lock.ini"
    [ -n "$installed_so" ] && rm -f "$extdir/redis_lock.so"
    # phpenmod's state directories that did not exist before, if empty now.
    snapshot | comm -13 "$work/state.before" - | sort -r | while IFS= read -r p; do
        [ -d "$p" ] && rmdir "$p" 2>/dev/null
    done
    local left
    left=$(snapshot | diff "$work/state.before" - | grep '^[<>]')
    if [ -n "$left" ]; then
        echo "phpize-test: FAIL: /etc/php/$ver or /var/lib/php/modules/$ver differ from before the test:" >&2
        echo "$left" >&2
        rc=1
    fi
    if ! ls -A "$extdir" | sort | cmp -s "$work/extdir.before" -; then
        echo "phpize-test: FAIL: $extdir differs from before the test" >&2
        rc=1
    fi
    rm -rf "$work"
    if [ "$rc" -eq 0 ]; then say "ok ($summary; all of it removed again)"; fi
    exit "$rc"
}
summary=""
trap cleanup EXIT
trap 'exit 130' INT TERM

# The checkout's files as a commit would have them, without build output.
src=$work/src
mkdir -p "$src"
if files=$(git -c safe.directory="$top" -C "$top" ls-files -z -co --exclude-standard 2>/dev/null | tr '\0' '\n') \
        && [ -n "$files" ]; then
    while IFS= read -r f; do
        if [ -e "$top/$f" ] || [ -L "$top/$f" ]; then printf '%s\0' "$f"; fi
    done <<<"$files" | tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
    how="git ls-files"
else
    tar -C "$top" --exclude=./.git --exclude=./target --exclude=./.roots --exclude=./.build \
        --exclude=./modules --exclude=./vendor -cf - . | tar -C "$src" -xf -
    how="copy of the tree (no git)"
fi
[ -f "$src/config.m4" ] || die "config.m4 missing from the copy of $top"
cd "$src"
"$phpize" --clean >/dev/null 2>&1 || true
say "PHP $("$php" -r 'echo PHP_VERSION;') ($php, $php_config), sources: $how, CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

# 1. No cargo on PATH: ./configure must stop and say so.
run phpize "$phpize"
# PATH without cargo: a directory that holds cargo is replaced by a copy made
# of links to everything else in it (it may be /usr/bin).
nocargo="" n=0
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    if [ -e "$d/cargo" ]; then
        n=$((n + 1))
        mkdir -p "$work/nocargo/$n"
        for f in "$d"/* "$d"/.[!.]*; do
            [ -e "$f" ] || [ -L "$f" ] || continue
            [ "${f##*/}" = cargo ] || ln -s "$f" "$work/nocargo/$n/"
        done
        d=$work/nocargo/$n
    fi
    nocargo="$nocargo${nocargo:+:}$d"
done
env -u CARGO PATH="$nocargo" sh -c 'command -v cargo' >/dev/null && die "could not take cargo off PATH"
if env -u CARGO PATH="$nocargo" ./configure --with-php-config="$php_config" >"$work/configure-nocargo.log" 2>&1; then
    die "./configure succeeded with no cargo on PATH ($nocargo)"
fi
grep -q "cargo was not found on PATH" "$work/configure-nocargo.log" \
    && grep -q "rustup" "$work/configure-nocargo.log" \
    || { tail -n 20 "$work/configure-nocargo.log" >&2; die "./configure without cargo failed without saying that cargo is needed"; }
say "1. ./configure without cargo fails: $(grep -m1 'error:' "$work/configure-nocargo.log")"

# 2. phpize && ./configure && make && make install.
run configure ./configure --with-php-config="$php_config"
say "2. building with cargo (a few minutes the first time)"
run make make
[ -f modules/redis_lock.so ] || die "make did not produce modules/redis_lock.so"
[ "$(ls -A modules)" = "redis_lock.so" ] || die "modules/ holds more than redis_lock.so: $(ls -A modules | tr '\n' ' ')"
run make-install-root make install INSTALL_ROOT="$work/root"
staged=$(cd "$work/root" && find . -type f -o -type l | sed 's#^\.##')
[ "$staged" = "$extdir/redis_lock.so" ] \
    || die "make install INSTALL_ROOT=... installed [$staged], expected exactly $extdir/redis_lock.so"
installed_so=1
run make-install make install
cmp -s modules/redis_lock.so "$extdir/redis_lock.so" || die "$extdir/redis_lock.so is not the built module"
added=$(ls -A "$extdir" | sort | comm -13 "$work/extdir.before" -)
[ "$added" = "redis_lock.so" ] || die "make install added [$added] to $extdir, expected redis_lock.so only"
say "2. make install -> $extdir/redis_lock.so (INSTALL_ROOT honoured)"

# 3. phpenmod, then plain php loads it.
installed_ini=1
install -m 644 redis_lock.ini "$mods/redis_lock.ini"
enabled=1
run phpenmod phpenmod -v "$ver" redis_lock
[ -L "/etc/php/$ver/cli/conf.d/20-redis_lock.ini" ] || die "phpenmod did not link /etc/php/$ver/cli/conf.d/20-redis_lock.ini"
modules=$("$php" -m) || die "$php -m failed"
grep -qx redis_lock <<<"$modules" || die "$php -m does not list redis_lock after phpenmod"
ri=$("$php" --ri redis_lock) || die "$php --ri redis_lock failed"
grep -q "redis_lock support => enabled" <<<"$ri" || die "php --ri redis_lock says: $ri"
grep -q "redis_lock.dsn => redis://127.0.0.1:6379" <<<"$ri" || die "php --ri redis_lock does not show the default redis_lock.dsn: $ri"

port=$("$php" -n -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);')
mkdir -p "$work/server"
"$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/server" \
    >"$work/server.log" 2>&1 &
server_pid=$!
ping='$f = @fsockopen("127.0.0.1", (int) $argv[1], $e, $m, 0.2); if (!$f) exit(1); fwrite($f, "PING\r\n"); exit(trim((string) fgets($f)) === "+PONG" ? 0 : 1);'
for _ in $(seq 100); do
    "$php" -n -r "$ping" "$port" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "$server exited"; }
    sleep 0.1
done
"$php" -n -r "$ping" "$port" || die "$server does not answer on 127.0.0.1:$port"
cycle='$m = new RedisLock\RedisMutex("redis://127.0.0.1:" . $argv[1]);
var_dump($m->acquire("phpize-test", 5), $m->isLocked("phpize-test"), $m->release("phpize-test"), $m->isLocked("phpize-test"));'
got=$("$php" -r "$cycle" "$port" 2>&1) || die "the lock cycle failed: $got"
want=$'bool(true)\nbool(true)\nbool(true)\nbool(false)'
[ "$got" = "$want" ] || die "the lock cycle printed [$got], expected [$want]"
say "3. phpenmod redis_lock: php -m, php --ri and a lock cycle against $server on port $port work with no -d flag"

summary="PHP $("$php" -r 'echo PHP_VERSION;'), $extdir/redis_lock.so, $server on port $port"
