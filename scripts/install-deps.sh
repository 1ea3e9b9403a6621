#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine that
# has Rust but no PHP and no Redis. Idempotent: installs only what is missing.
set -euo pipefail

packages=(php8.2-cli php8.2-dev php8.2-xml php8.2-mbstring php8.2-fpm php-redis libclang-dev libssl-dev pkg-config openssl
          nginx-light apache2-utils valgrind linux-perf bc curl procps
          redis-server phpunit php-laravel-framework php-symfony-lock php-symfony-semaphore php-symfony-framework-bundle php-predis debootstrap redis-sentinel
          wordpress mariadb-server php8.2-mysql composer zip dpkg-dev binutils prometheus)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts redis-server, mariadb, apache2 (pulled in by wordpress) and prometheus as
# services when they are installed; the project uses none of them: every
# script starts its own servers on free loopback ports. Stop the ones that
# would only take memory.
if ((${#missing[@]})); then
    for service in apache2 mariadb prometheus; do
        $sudo service "$service" stop >/dev/null 2>&1 || true
    done
fi

# The stub generator for ext-php-rs 0.16 extensions.
if ! cargo php --version >/dev/null 2>&1; then
    cargo install cargo-php --version 0.2.2 --locked
fi

# Symfony Lock's own store tests, which Debian's binary packages leave out
# (php-tests/SymfonyOwnStoreTest.php).
"$(dirname "$0")/symfony-store-tests.sh"
