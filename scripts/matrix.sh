#!/usr/bin/env bash
# One column of the version matrix (README, "Development", "Versions"):
#
#   scripts/matrix.sh trixie|sid
#
# Makes or reuses the Debian root (scripts/root.sh), builds the extension
# inside it against the root's PHP, and runs there, against each server of
# its row: the cargo tests of the lock logic and the whole PHPUnit suite;
# then the phpize build and install (scripts/phpize-test.sh). Every step runs
# even when an earlier one failed (but for the root and the build, which the
# others need), so one run shows every failure; the run fails at the end,
# naming the root and each failed step.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: $0 trixie|sid}

# The servers of each row: redis-server 8.0 and valkey-server 8.1 in Debian 13,
# valkey-server 9 and redis-server 8.0 in unstable.
declare -A servers=([trixie]="redis-server valkey-server" [sid]="valkey-server redis-server")
[ -n "${servers[$name]:-}" ] || { echo "matrix: unknown root '$name' (trixie or sid)" >&2; exit 2; }

start=$(date +%s)
scripts/root.sh ensure "$name" || { echo "matrix: $name: the root could not be made" >&2; exit 1; }

failed=()
step() {
    local what=$1; shift
    echo "matrix: $name: $what"
    if ! scripts/root.sh run "$name" "$@"; then
        echo "matrix: $name: FAILED: $what" >&2
        failed+=("$what")
        return 1
    fi
}

# The roots' PHPUnit (11, 13) prints a warning, deprecation or notice that
# fails a test (failOnWarning …) only with --display-all-issues; PHPUnit 9 on
# the host prints them by default.
# One build serves both roles the machine's suite gives two builds: the
# panic-injection feature only acts when REDIS_LOCK_INJECT_PANIC is set.
so=/src/target/root-$name/release/libredis_lock.so
step "versions" sh -c 'php -r "echo \"PHP \", PHP_VERSION, PHP_EOL;"; phpunit --version | head -1;
    for s in '"${servers[$name]}"'; do $s --version; done'
step "build (cargo, against the root's PHP)" \
    cargo build --release --features panic-injection --manifest-path /src/Cargo.toml \
    || { echo "matrix: $name: FAILED (nothing else can run without the build)" >&2; exit 1; }
for server in ${servers[$name]}; do
    step "cargo tests against $server" env REDIS_LOCK_TEST_SERVER="$server" \
        cargo test --release --no-fail-fast --manifest-path /src/Cargo.toml --workspace --exclude redis_lock || true
    step "PHPUnit against $server" env REDIS_LOCK_TEST_SERVER="$server" \
        REDIS_LOCK_SO="$so" REDIS_LOCK_DEBUG_SO="$so" \
        php -d extension="$so" /usr/bin/phpunit -c /src/php-tests/phpunit.xml --display-all-issues || true
done
step "phpize build and install" /src/scripts/phpize-test.sh || true
took=$(( $(date +%s) - start ))
if ((${#failed[@]})); then
    echo "matrix: $name: FAILED in $took s:" >&2
    printf 'matrix: %s:   %s\n' "$name" "${failed[@]}" >&2
    exit 1
fi
echo "matrix: $name: ok in $took s"
