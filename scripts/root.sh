#!/usr/bin/env bash
# The Debian roots of the test matrix (README, "Development", "Versions").
#
#   scripts/root.sh ensure NAME        make .roots/NAME if it is missing or stale
#   scripts/root.sh run NAME CMD...    run CMD inside it, as root, in /src (this checkout)
#
# NAME is trixie (Debian 13) or sid (Debian unstable), the build roots of the
# matrix, or bookworm-bare or trixie-bare (Debian 12, 13): user machines for the
# install test of `make dist`'s artifacts (scripts/dist.sh), with PHP, PHPUnit
# and the servers but no compiler, and no Rust mounted inside. A root is made with
# debootstrap from Debian's packages, from the mirror this machine's apt uses
# (MIRROR overrides it), and kept between runs. It is made again when it is
# missing, when its recipe (the package list below) changed, or when it is older than
# ROOT_MAX_AGE_DAYS (default 7: sid moves every day). A root that cannot be
# made fails the run.
#
# Inside, the checkout is bind-mounted at /src and, in the build roots, this
# machine's Rust toolchain (~/.cargo, ~/.rustup) at the same paths, so the
# extension is built with the root's PHP and the machine's cargo. All mounts live in a private
# mount namespace (unshare -m): they vanish with the command, also when it is
# killed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
roots="$top/.roots"

# What a build root holds: PHP 8.4 with the headers to build against, the
# framework packages the suites load, the servers of its matrix row,
# prometheus (promtool checks the metrics' exposition), and dpkg-dev and zip
# to pack `make dist`'s artifacts.
build=(ca-certificates procps psmisc bc curl gcc libc6-dev make pkg-config libssl-dev libclang-dev
       php8.4-cli php8.4-dev php8.4-xml php8.4-mbstring php8.4-sqlite3 php-redis php-predis phpunit
       php-laravel-framework php-symfony-lock php-symfony-semaphore php-symfony-framework-bundle
       php-symfony-cache composer redis-server redis-tools redis-sentinel valkey-server valkey-tools valkey-sentinel
       prometheus dpkg-dev zip)
# What a bare root holds: what a user's server has to run PHP and the core
# PHPUnit suite (phpredis and Symfony Lock are what some of its tests read
# Redis with); no compiler, no headers, no promtool (the install test leaves
# out the tests of group promtool).
bare=(ca-certificates procps psmisc openssl unzip php-cli php-xml php-mbstring php-redis
      php-symfony-lock phpunit redis-server redis-tools)
# Bump when the way a root is made changes (the package list counts by itself).
recipe_version=1

# The Debian release a root is made from, and its packages.
suite() { case "$1" in *-bare) echo "${1%-bare}";; *) echo "$1";; esac; }
packages() { case "$1" in *-bare) echo "${bare[*]}";; *) echo "${build[*]}";; esac; }

die() { echo "root.sh: $*" >&2; exit 1; }

mirror() {
    [ -n "${MIRROR:-}" ] && { echo "$MIRROR"; return; }
    local uri
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || die "no Debian mirror found in this machine's apt sources; set MIRROR"
    echo "$uri"
}

recipe() { echo "$recipe_version $(packages "$1")" | sha256sum | cut -c1-16; }

is_fresh() {
    local dir="$roots/$1" max="${ROOT_MAX_AGE_DAYS:-7}"
    [ -f "$dir/.recipe" ] && [ "$(cat "$dir/.recipe")" = "$(recipe "$1")" ] \
        && [ -z "$(find "$dir/.recipe" -mtime +"$max" 2>/dev/null)" ]
}

# Runs "$@" in a private mount namespace with the root's mounts in place.
# A bare root gets no Rust toolchain, and no cargo on PATH.
in_root() {
    local name=$1; shift
    local dir="$roots/$name" rust=1
    case "$name" in *-bare) rust=0;; esac
    unshare -m -- bash -euo pipefail -c '
        dir=$1; top=$2; name=$3; rust=$4; shift 4
        mount --make-rprivate /
        mount -t proc proc "$dir/proc"
        mount --rbind /dev "$dir/dev"
        mount --rbind /sys "$dir/sys"
        mkdir -p "$dir/src"
        mount --bind "$top" "$dir/src"
        path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        cargo_env=()
        if [ "$rust" = 1 ]; then
            mkdir -p "$dir/root/.cargo" "$dir/root/.rustup"
            mount --bind "${CARGO_HOME:-$HOME/.cargo}" "$dir/root/.cargo"
            mount --bind "${RUSTUP_HOME:-$HOME/.rustup}" "$dir/root/.rustup"
            path=/root/.cargo/bin:$path
            cargo_env=(CARGO_TARGET_DIR="/src/target/root-$name" CARGO_TERM_COLOR=never)
        fi
        cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
        # debootstrap writes no /etc/hosts; the TLS tests connect to "localhost".
        grep -qs localhost "$dir/etc/hosts" || printf "127.0.0.1 localhost\n::1 localhost ip6-localhost\n" >> "$dir/etc/hosts"
        exec chroot "$dir" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 PATH="$path" \
            "${cargo_env[@]}" ${CI:+CI=$CI} "$@"
    ' in_root "$dir" "$top" "$name" "$rust" "$@"
}

make_root() {
    local name=$1 dir="$roots/$1" tmp="$roots/.$1.new"
    echo "root.sh: making the $name root (debootstrap $(suite "$name") from $(mirror)) ..."
    rm -rf "$tmp"
    mkdir -p "$roots"
    debootstrap --variant=minbase "$(suite "$name")" "$tmp" "$(mirror)" > "$roots/.$name.log" 2>&1 \
        || { tail -20 "$roots/.$name.log" >&2; die "debootstrap $name failed (log: $roots/.$name.log)"; }
    # No services are started inside (every test starts its own servers).
    printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
    chmod +x "$tmp/usr/sbin/policy-rc.d"
    # The mirror may serve a frozen snapshot whose Release file has passed
    # its Valid-Until date (seen for sid here); its signature is still checked.
    echo 'Acquire::Check-Valid-Until "false";' > "$tmp/etc/apt/apt.conf.d/99snapshot"
    mv "$tmp" "$dir.building"
    rm -rf "$dir"
    mv "$dir.building" "$dir"
    in_root "$name" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(packages "$name")" \
        >> "$roots/.$name.log" 2>&1 \
        || { tail -20 "$roots/.$name.log" >&2; rm -rf "$dir"; die "installing the $name packages failed (log: $roots/.$name.log)"; }
    recipe "$name" > "$dir/.recipe"
    in_root "$name" sh -c 'echo "PHP $(php -r "echo PHP_VERSION;"), $(redis-server --version | cut -d" " -f1-3)$(command -v valkey-server >/dev/null && echo ", $(valkey-server --version | cut -d" " -f1-3)")"' \
        | sed "s/^/root.sh: $name ready: /"
}

cmd=${1:-}; name=${2:-}
usage="usage: $0 ensure|run trixie|sid|bookworm-bare|trixie-bare [CMD...]"
case "$name" in trixie|sid|bookworm-bare|trixie-bare) ;; *) die "$usage";; esac
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mount, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps installs it)"
# One maker per root at a time: a second run waits, then finds it fresh.
mkdir -p "$roots"
ensure() {
    is_fresh "$name" && return
    exec 9>"$roots/.$name.lock"
    flock 9
    is_fresh "$name" || make_root "$name"
    exec 9>&-
}
case "$cmd" in
    ensure) ensure;;
    run) shift 2; ensure; in_root "$name" "$@";;
    *) die "$usage";;
esac
