#!/usr/bin/env bash
# The flake check (make flake N=5): runs the cargo suites and the PHPUnit
# suite N times in a row on this machine, then prints, for every test that
# failed at least once, in how many of the N runs it failed. Exits 1 if any
# test failed in any run. The logs of every run stay in .build/flake/.
#
#   scripts/flake.sh N SO DEBUG_SO
set -uo pipefail
n=${1:?usage: $0 N SO DEBUG_SO}
so=${2:?} debug_so=${3:?}
cd "$(dirname "$0")/.."
out=.build/flake
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
for i in $(seq "$n"); do
    echo "flake: run $i of $n: cargo tests"
    cargo test --release --no-fail-fast --workspace --exclude redis_lock >"$out/cargo-$i.log" 2>&1
    echo "flake: run $i of $n: cargo exit $?"
    echo "flake: run $i of $n: PHPUnit"
    REDIS_LOCK_SO="$so" REDIS_LOCK_DEBUG_SO="$debug_so" php -d extension="$so" /usr/bin/phpunit \
        -c php-tests/phpunit.xml --log-junit "$out/phpunit-$i.xml" >"$out/phpunit-$i.log" 2>&1
    echo "flake: run $i of $n: PHPUnit exit $?"
done
python3 - "$out" "$n" "$(( $(date +%s) - start ))" <<'PY'
import collections, glob, os, re, sys
import xml.etree.ElementTree as ET
out, n, took = sys.argv[1], int(sys.argv[2]), sys.argv[3]
failed = collections.Counter()   # test -> runs it failed
ran = collections.Counter()      # test -> runs it ran
broken = []                      # runs whose report is missing or cut short
for i in range(1, n + 1):
    # cargo: "Running tests/locks.rs (...)" names the binary of the lines after it.
    binary, seen = "?", set()
    log = open(os.path.join(out, f"cargo-{i}.log"), errors="replace").read()
    for line in log.splitlines():
        m = re.match(r"\s*Running (.+?) \(", line)
        if m:
            binary = m.group(1)
            continue
        m = re.match(r"test (\S+) \.\.\. (ok|FAILED|ignored)", line)
        if m and m.group(2) != "ignored":
            name = f"cargo {binary} {m.group(1)}"
            ran[name] += 1
            if m.group(2) == "FAILED":
                failed[name] += 1
            seen.add(name)
    if not seen or "error: could not compile" in log:
        broken.append(f"cargo run {i}: no test results (see {out}/cargo-{i}.log)")
    report = os.path.join(out, f"phpunit-{i}.xml")
    try:
        cases = ET.parse(report).getroot().iter("testcase")
    except (OSError, ET.ParseError) as e:
        broken.append(f"PHPUnit run {i}: no report ({e}; see {out}/phpunit-{i}.log)")
        continue
    for case in cases:
        name = f"phpunit {case.get('class')}::{case.get('name')}"
        ran[name] += 1
        if any(case.find(t) is not None for t in ("failure", "error", "warning", "skipped")):
            failed[name] += 1
print(f"flake: {n} runs in {took} s; {len(ran)} tests seen")
for line in broken:
    print(f"flake: {line}")
if failed:
    for name, runs in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"flake: failed {runs} of {ran[name]} runs: {name}")
else:
    print("flake: no test failed in any run")
sys.exit(1 if failed or broken else 0)
PY
