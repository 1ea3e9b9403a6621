#!/usr/bin/env bash
# Fetches Symfony Lock's own store tests (AbstractStoreTestCase and
# SharedLockStoreTestTrait) from Debian 12's source package of Symfony (5.4)
# into .build/symfony-lock-tests/, where php-tests/SymfonyOwnStoreTest.php
# runs them against our store, here and in the matrix roots (whose own
# Symfony sources, 6.4 and 7.x, are not served to these machines: 404).
# Debian's binary packages leave the tests out; its source packages keep
# them. Idempotent: fetched once.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/symfony-lock-tests
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for suite in bookworm; do
    if [ -f "$out/SharedLockStoreTestTrait.php" ] && [ -f "$out/AbstractStoreTestCase.php" ]; then
        continue
    fi
    apt_dir="$work/apt-$suite"
    mkdir -p "$apt_dir/lists/partial"
    echo "deb-src http://deb.debian.org/debian $suite main" > "$apt_dir/sources.list"
    apt=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$apt_dir/lists" -o Debug::NoLocking=1 -q)
    apt-get "${apt[@]}" update >/dev/null
    (cd "$apt_dir" && apt-get "${apt[@]}" --download-only source symfony >/dev/null 2>&1)
    orig=$(ls "$apt_dir"/symfony_*.orig.tar.* | head -1)
    # symfony_5.4.53+dfsg.orig.tar.xz -> 5.4.53
    version=$(basename "$orig" | sed -E 's/^symfony_([0-9.]+).*/\1/')
    tar -xf "$orig" -C "$apt_dir" --wildcards \
        '*/Component/Lock/Tests/Store/AbstractStoreTestCase.php' \
        '*/Component/Lock/Tests/Store/SharedLockStoreTestTrait.php'
    find "$apt_dir" -path '*/Lock/Tests/Store/*.php' -exec cp {} "$out/" \;
    echo "$version" > "$out/VERSION"
    echo "Symfony $version ($suite): Lock's store tests in $out"
done
