#!/usr/bin/env bash
# Pre-built binaries (README, "Installing it"): `make dist` and its install test.
#
#   scripts/dist.sh build      build the extension for each PHP the project proves
#                              and pack it into dist/: PIE's pre-packaged-binary
#                              zips, Debian packages, SHA256SUMS
#   scripts/dist.sh test       build (as above), then install each artifact on a
#                              Debian root with no cargo and no compiler, and run
#                              the core PHPUnit suite against the installed extension
#
# Two inner commands, run by those two inside a build or bare root:
#   scripts/dist.sh pack SO    pack SO, built for the PHP on PATH, into dist/
#   scripts/dist.sh install V  the install test for PHP V, in a bare root
#
# Each PHP is built where the matrix proves it: PHP 8.2 on this Debian 12
# machine, PHP 8.4 in the Debian 13 root (scripts/root.sh). A binary needs
# the glibc and OpenSSL 3 of the system it was built on or newer; the
# Debian packages say so in their Depends (dpkg-shlibdeps).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dist="$top/dist"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -1)
die() { echo "dist: $*" >&2; exit 1; }

# Packs one built .so for the PHP on PATH: PIE's zip
# php_redis_lock-{tag}_php{maj.min}-{arch}-linux-{libc}[-zts].zip with
# redis_lock.so at its root, and the Debian package php{maj.min}-redis-lock
# laid out as Debian's own php extension packages are (the .so in the PHP
# API's directory, the ini file in mods-available, phpenmod on install).
pack() {
    local so=$1
    [ -f "$so" ] || die "no build at $so"
    local php_ver api zts arch libc debarch
    php_ver=$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')
    api=$(php -i | sed -n 's/^PHP Extension => //p')
    zts=$(php -r 'echo PHP_ZTS ? "-zts" : "";')
    # PIE's names for the machine: x86_64, arm64; glibc or musl.
    arch=$(uname -m); [ "$arch" = aarch64 ] && arch=arm64
    libc=glibc; ldd --version 2>&1 | grep -qi musl && libc=musl
    debarch=$(dpkg --print-architecture)
    php -n -d extension="$so" -r 'exit(extension_loaded("redis_lock") ? 0 : 1);' \
        || die "$so does not load into PHP $php_ver"
    [ -z "$zts" ] || die "PHP $php_ver here is ZTS, which the extension does not support yet"

    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"; trap - RETURN' RETURN
    mkdir -p "$dist"
    # Stripped, as Debian's packages are (dh_strip): the symbols are for a debugger.
    strip --strip-unneeded -o "$work/redis_lock.so" "$so"
    chmod 0644 "$work/redis_lock.so"

    local zip="php_redis_lock-${version}_php${php_ver}-${arch}-linux-${libc}${zts}.zip"
    (cd "$work" && rm -f "$dist/$zip" && zip -q -X "$dist/$zip" redis_lock.so)

    local pkg="php${php_ver}-redis-lock" root="$work/deb"
    mkdir -p "$root/DEBIAN" "$root/usr/lib/php/$api" "$root/etc/php/$php_ver/mods-available" \
        "$root/usr/share/doc/$pkg"
    cp "$work/redis_lock.so" "$root/usr/lib/php/$api/redis_lock.so"
    install -m 0644 "$top/redis_lock.ini" "$root/etc/php/$php_ver/mods-available/redis_lock.ini"
    install -m 0644 "$top/README.md" "$root/usr/share/doc/$pkg/README.md"
    # The libraries the .so links, as Debian names them (libc6, libssl3 or
    # libssl3t64, ...), with the lowest versions its symbols need.
    mkdir -p "$work/debian"
    printf 'Source: redis-lock\n\nPackage: %s\nArchitecture: any\n' "$pkg" > "$work/debian/control"
    local shlibs
    shlibs=$(cd "$work" && dpkg-shlibdeps -O "$root/usr/lib/php/$api/redis_lock.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
    [ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies for the .so"
    cat > "$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $version-1
Architecture: $debarch
Maintainer: redis_lock developers <redis-lock@invalid>
Section: php
Priority: optional
Depends: php${php_ver}-common, phpapi-${api}, $shlibs
Provides: php-redis-lock
Installed-Size: $(du -k -s "$root/usr" | cut -f1)
Description: Distributed locks on Redis for PHP $php_ver (redis_lock extension)
 Atomic, ownership-safe distributed locks, read locks, multi-locks and
 semaphores on Redis, Valkey, Sentinel, Redis Cluster and Redlock, as a
 native PHP extension written in Rust. Waiters are handed the lock by its
 release, in arrival order; locks are freed at request end.
 .
 This package provides the redis_lock module for PHP $php_ver, enabled for
 every SAPI (phpenmod); settings in /etc/php/$php_ver/mods-available/redis_lock.ini.
EOF
    echo "/etc/php/$php_ver/mods-available/redis_lock.ini" > "$root/DEBIAN/conffiles"
    maintscripts "$php_ver" "$root/DEBIAN"
    local deb="${pkg}_${version}-1_${debarch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$dist/$deb" >/dev/null
    echo "dist: PHP $php_ver (API $api): $zip, $deb (Depends: $shlibs)"
}

# The maintainer scripts of Debian's php extension packages (what dh_php
# writes): enable the module for every SAPI of that PHP on install, disable it
# on removal (and around an upgrade), drop stale links on purge.
maintscripts() {
    local v=$1 out=$2
    cat > "$out/postinst" <<EOF
#!/bin/sh
set -e
if [ -e /usr/lib/php/php-maintscript-helper ]; then
    . /usr/lib/php/php-maintscript-helper
    php_invoke enmod $v ALL redis_lock || exit 1
else
    phpenmod -v $v redis_lock
fi
EOF
    cat > "$out/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = upgrade ] && [ -e /usr/lib/php/php-maintscript-helper ]; then
    . /usr/lib/php/php-maintscript-helper
    php_invoke dismod $v ALL redis_lock || exit 1
fi
EOF
    cat > "$out/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -e /usr/lib/php/php-maintscript-helper ]; then
    . /usr/lib/php/php-maintscript-helper
    php_invoke dismod $v ALL redis_lock || exit 1
fi
if [ "\$1" = purge ]; then
    find /etc/php/$v -xtype l 2>/dev/null | while read -r link; do
        [ "\$(basename "\$(readlink -m "\$link")")" != redis_lock.ini ] || rm -f "\$link"
    done
fi
EOF
    chmod 0755 "$out/postinst" "$out/prerm" "$out/postrm"
}

build() {
    rm -rf "$dist"
    mkdir -p "$dist"
    echo "dist: PHP 8.2, on this machine (Debian 12)"
    php -r 'exit(PHP_VERSION_ID >= 80200 && PHP_VERSION_ID < 80300 ? 0 : 1);' \
        || die "this machine's php is not PHP 8.2 (Debian 12's); the 8.2 build is made here"
    (cd "$top" && cargo build --release --quiet)
    pack "$top/target/release/libredis_lock.so"
    echo "dist: PHP 8.4, in the Debian 13 root"
    "$top/scripts/root.sh" run trixie cargo build --release --quiet --manifest-path /src/Cargo.toml
    "$top/scripts/root.sh" run trixie /src/scripts/dist.sh pack /src/target/root-trixie/release/libredis_lock.so
    (cd "$dist" && sha256sum -- *.zip *.deb > SHA256SUMS)
    echo "dist: in $dist:"
    (cd "$dist" && ls -l)
}

# The install test for PHP $1, inside a bare root: first the zip (unpacked
# into extension_dir, enabled with an ini file, as PIE does), then the
# Debian package (apt install ./….deb, then purge). Each time: php --ri
# redis_lock, and PHPUnit with the extension loaded by php.ini alone
# (REDIS_LOCK_SO unset): the whole core suite for the zip; for the package,
# whose module is checked to be the zip's very bytes, the suites that load
# it through php.ini and run a request end (IniTest, LockManagerTest,
# RequestEndTest), which is what its installation can change.
install_test() {
    local v=$1
    for tool in cargo rustc cc gcc clang; do
        ! command -v "$tool" >/dev/null || die "this root has $tool; the install test needs a machine without a compiler"
    done
    # Group promtool needs Prometheus's promtool, which a user's server (this
    # root) has not; the host and the build roots run it.
    local ext_dir conf="/etc/php/$v/cli/conf.d" phpunit=(php /usr/bin/phpunit -c /src/php-tests/phpunit.xml --testsuite core --exclude-group promtool)
    ext_dir=$(php -r 'echo ini_get("extension_dir");')
    # PHPUnit 10 and later fail a test on a warning or deprecation only when shown.
    [[ $(phpunit --version) =~ PHPUnit\ [1-9][0-9]\. ]] && phpunit+=(--display-all-issues)
    local pkg="php$v-redis-lock"
    clean() {
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$pkg" >/dev/null 2>&1 || true
        rm -f "$ext_dir/redis_lock.so" "$conf/20-redis_lock.ini"
    }
    check() {
        php -r 'exit(extension_loaded("redis_lock") ? 0 : 1);' || die "$1: php does not load redis_lock"
        local ri
        ri=$(php --ri redis_lock) || die "$1: php --ri redis_lock failed"
        grep -q '^redis_lock support => enabled' <<<"$ri" || die "$1: php --ri redis_lock: $ri"
        sed -n '3,4p' <<<"$ri"
        local suite=("${phpunit[@]}") what="the core PHPUnit suite"
        if [ -n "${2:-}" ]; then
            suite+=(--filter "$2")
            what="PHPUnit's $2"
        fi
        echo "dist: $1: $what against the installed extension"
        env -u REDIS_LOCK_SO "${suite[@]}" || die "$1: $what failed"
    }
    cd /src/dist
    grep -E "(_| )php$v-" SHA256SUMS | sha256sum --quiet -c - || die "a checksum in SHA256SUMS does not match"
    clean

    # The zip PIE looks for on this machine: composer.json's extension name
    # and download methods, the release's version, this PHP and platform.
    local zip
    zip=$(php -r '
        $ext = json_decode(file_get_contents("/src/composer.json"), true)["php-ext"];
        if (($ext["download-url-method"] ?? null) !== ["pre-packaged-binary", "composer-default"]) {
            fwrite(STDERR, "composer.json: php-ext.download-url-method must be [pre-packaged-binary, composer-default]\n");
            exit(1);
        }
        $arch = php_uname("m") === "aarch64" ? "arm64" : php_uname("m");
        $libc = glob("/lib/ld-musl-*") ? "musl" : "glibc";
        printf("php_%s-%s_php%d.%d-%s-%s-%s%s.zip", $ext["extension-name"], $argv[1], PHP_MAJOR_VERSION,
            PHP_MINOR_VERSION, $arch, strtolower(PHP_OS_FAMILY), $libc, PHP_ZTS ? "-zts" : "");' "$version")
    [ -f "$zip" ] || die "PIE would look for $zip, which make dist did not make: $(ls)"
    echo "dist: PHP $v: $zip into $ext_dir"
    unzip -q -o "$zip" redis_lock.so -d "$ext_dir"
    echo "extension=redis_lock" > "$conf/20-redis_lock.ini"
    check "$zip"
    clean
    php -r 'exit(extension_loaded("redis_lock") ? 1 : 0);' || die "the zip's extension is still loaded after its removal"

    local deb
    deb=$(ls "${pkg}"_*.deb)
    echo "dist: PHP $v: apt install ./$deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb" >/dev/null
    [ -L "$conf/20-redis_lock.ini" ] || die "$deb: phpenmod made no link in $conf"
    cmp -s "$ext_dir/redis_lock.so" <(unzip -p "$zip" redis_lock.so) \
        || die "$deb and $zip hold different builds"
    check "$deb" 'IniTest|LockManagerTest|RequestEndTest'
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$pkg" >/dev/null
    [ ! -e "$conf/20-redis_lock.ini" ] && [ ! -e "$ext_dir/redis_lock.so" ] \
        || die "$deb: apt purge left the module or its link behind"
    php -r 'exit(extension_loaded("redis_lock") ? 1 : 0);' || die "$deb: the extension is still loaded after purge"
    echo "dist: PHP $v: both artifacts installed, tested and removed"
}

# Builds the artifacts while the bare roots are made (debootstrap waits on
# the mirror, the build on the CPU), then runs the install test of each PHP
# in its bare root, one after the other: the core suite's timing bounds (a
# call under a stalled server ends within its timeout + 10 %) are not for
# two suites sharing the machine's cores.
test_all() {
    local logs="$top/.build/dist" failed=() row pids=() name
    local rows=("bookworm-bare 8.2" "trixie-bare 8.4")
    mkdir -p "$logs"
    for row in "${rows[@]}"; do
        name=${row% *}
        "$top/scripts/root.sh" ensure "$name" > "$logs/root-$name.log" 2>&1 &
        pids+=($!)
    done
    build
    for i in "${!rows[@]}"; do
        name=${rows[$i]% *}
        wait "${pids[$i]}" || failed+=("the $name root could not be made")
        cat "$logs/root-$name.log"
    done
    ((${#failed[@]} == 0)) || die "${failed[*]}"
    for row in "${rows[@]}"; do
        set -- $row
        echo "dist: --- the install test of PHP $2 in the $1 root ---"
        "$top/scripts/root.sh" run "$1" /src/scripts/dist.sh install "$2" || failed+=("PHP $2 ($1)")
    done
    if ((${#failed[@]})); then
        printf 'dist: FAILED: the install test of %s\n' "${failed[@]}" >&2
        exit 1
    fi
    echo "dist: every artifact installed on a machine without a compiler: the zips passed the core suite, the packages (the same modules) its php.ini, manager and request-end tests"
}

case "${1:-}" in
    build) build;;
    test) test_all;;
    pack) pack "${2:?usage: $0 pack SO}";;
    install) install_test "${2:?usage: $0 install PHP_VERSION}";;
    *) die "usage: $0 build|test (inner: pack SO, install PHP_VERSION)";;
esac
