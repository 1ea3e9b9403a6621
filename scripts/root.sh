#!/usr/bin/env bash
# The Debian roots of the test matrix (README, "Development", "Versions").
#
#   scripts/root.sh ensure NAME        make .roots/NAME if it is missing or stale
#   scripts/root.sh run NAME CMD...    run CMD inside it, as root, in /src (this checkout)
#
# NAME is trixie (Debian 13) or sid (Debian unstable). A root is made with
# debootstrap from Debian's packages, from the mirror this machine's apt uses
# (MIRROR overrides it), and kept between runs. It is made again when it is
# missing, when its recipe (the package list below) changed, or when it is older than
# ROOT_MAX_AGE_DAYS (default 7: sid moves every day). A root that cannot be
# made fails the run.
#
# Inside, the checkout is bind-mounted at /src and this machine's Rust
# toolchain (~/.cargo, ~/.rustup) at the same paths, so the extension is built
# with the root's PHP and the machine's cargo. All mounts live in a private
# mount namespace (unshare -m): they vanish with the command, also when it is
# killed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
roots="$top/.roots"

# What each root holds: PHP 8.4 with the headers to build against, the
# framework packages the suites load, and the servers of its matrix row.
common=(ca-certificates procps psmisc bc curl gcc libc6-dev make pkg-config libssl-dev libclang-dev
        php8.4-cli php8.4-dev php8.4-xml php8.4-mbstring php8.4-sqlite3 php-redis php-predis phpunit
        php-laravel-framework php-symfony-lock php-symfony-semaphore php-symfony-framework-bundle
        php-symfony-cache composer redis-server redis-tools redis-sentinel valkey-server valkey-tools valkey-sentinel)
# Bump when the way a root is made changes (the package list counts by itself).
recipe_version=1

die() { echo "root.sh: $*" >&2; exit 1; }

mirror() {
    [ -n "${MIRROR:-}" ] && { echo "$MIRROR"; return; }
    local uri
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || die "no Debian mirror found in this machine's apt sources; set MIRROR"
    echo "$uri"
}

recipe() { echo "$recipe_version ${common[*]}" | sha256sum | cut -c1-16; }

is_fresh() {
    local dir="$roots/$1" max="${ROOT_MAX_AGE_DAYS:-7}"
    [ -f "$dir/.recipe" ] && [ "$(cat "$dir/.recipe")" = "$(recipe)" ] \
        && [ -z "$(find "$dir/.recipe" -mtime +"$max" 2>/dev/null)" ]
}

# Runs "$@" in a private mount namespace with the root's mounts in place.
in_root() {
    local name=$1; shift
    local dir="$roots/$name"
    unshare -m -- bash -euo pipefail -c '
        dir=$1; top=$2; shift 2
        mount --make-rprivate /
        mount -t proc proc "$dir/proc"
        mount --rbind /dev "$dir/dev"
        mount --rbind /sys "$dir/sys"
        mkdir -p "$dir/src" "$dir/root/.cargo" "$dir/root/.rustup"
        mount --bind "$top" "$dir/src"
        mount --bind "${CARGO_HOME:-$HOME/.cargo}" "$dir/root/.cargo"
        mount --bind "${RUSTUP_HOME:-$HOME/.rustup}" "$dir/root/.rustup"
        cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
        # debootstrap writes no /etc/hosts; the TLS tests connect to "localhost".
        grep -qs localhost "$dir/etc/hosts" || printf "127.0.0.1 localhost\n::1 localhost ip6-localhost\n" >> "$dir/etc/hosts"
        exec chroot "$dir" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
            PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            CARGO_TARGET_DIR="/src/target/root-'"$name"'" CARGO_TERM_COLOR=never \
            ${CI:+CI=$CI} "$@"
    ' in_root "$dir" "$top" "$@"
}

make_root() {
    local name=$1 dir="$roots/$1" tmp="$roots/.$1.new"
    echo "root.sh: making the $name root (debootstrap from $(mirror)) ..."
    rm -rf "$tmp"
    mkdir -p "$roots"
    debootstrap --variant=minbase "$name" "$tmp" "$(mirror)" > "$roots/.$name.log" 2>&1 \
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
    in_root "$name" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${common[*]}" \
        >> "$roots/.$name.log" 2>&1 \
        || { tail -20 "$roots/.$name.log" >&2; rm -rf "$dir"; die "installing the $name packages failed (log: $roots/.$name.log)"; }
    recipe > "$dir/.recipe"
    in_root "$name" sh -c 'echo "$(php -r "echo PHP_VERSION;") / $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/") / $(valkey-server --version | sed "s/.*v=\([^ ]*\).*/\1/")"' \
        | sed "s/^/root.sh: $name ready: PHP \/ redis-server \/ valkey-server = /"
}

cmd=${1:-}; name=${2:-}
case "$name" in trixie|sid) ;; *) die "usage: $0 ensure|run trixie|sid [CMD...]";; esac
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
    *) die "usage: $0 ensure|run trixie|sid [CMD...]";;
esac
