#!/usr/bin/env bash
# Redlock under a network cut: a PHP worker in its own network namespace
# reaches five masters over two veth links (three masters behind one, two
# behind the other). The link to two masters is cut mid-run (their packets
# vanish, as in a partition), later the link to the other three too.
# Must hold: with two cut, every acquire+release still succeeds and no call
# takes longer than connect_timeout + timeout (0.3 s each) + 0.2 s; with all
# five cut, calls fail with ConnectionException within the same bound; after
# the links come back, locks work again (the SETs that were on the wire when
# the link went down are delivered then, and the worker releases them). Needs root (ip netns); stays on
# this machine (10.201.x.x on veth pairs that lead nowhere else).
#
#   php-tests/netns/run.sh SO
set -euo pipefail
so=$1
here=$(cd "$(dirname "$0")" && pwd)
server=${REDIS_LOCK_TEST_SERVER:-redis-server}
if [ "$(id -u)" != 0 ]; then
    echo "netns: needs root for ip netns" >&2
    exit 1
fi
ns=rl-cut-$$
state=$(mktemp -d /tmp/redis-lock-netns.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ip link del "rlA$$" 2>/dev/null || true
    ip link del "rlB$$" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
for side in A B; do
    net=$([ $side = A ] && echo 1 || echo 2)
    ip link add "rl$side$$" type veth peer name "rl${side}n$$"
    ip link set "rl${side}n$$" netns "$ns"
    ip addr add "10.201.$net.1/24" dev "rl$side$$"
    ip link set "rl$side$$" up
    ip -n "$ns" addr add "10.201.$net.2/24" dev "rl${side}n$$"
    ip -n "$ns" link set "rl${side}n$$" up
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
dsns=()
for i in 1 2 3 4 5; do
    net=$([ $i -le 3 ] && echo 1 || echo 2)
    port=$(free_port)
    "$server" --port "$port" --bind "10.201.$net.1" --save "" --appendonly no --dir "$state" \
        --logfile "$state/$i.log" --protected-mode no &
    pids+=($!)
    dsns+=("redis://10.201.$net.1:$port")
done
list=$(IFS=,; echo "${dsns[*]}")
# Every master answers PING before the worker starts (10 s at most each).
for dsn in "${dsns[@]}"; do
    hostport=${dsn#redis://}
    for _ in $(seq 200); do
        [ "$(redis-cli -h "${hostport%:*}" -p "${hostport##*:}" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    [ "$(redis-cli -h "${hostport%:*}" -p "${hostport##*:}" ping 2>/dev/null)" = PONG ] \
        || { echo "netns: the master at $hostport does not answer" >&2; exit 1; }
done

out="$state/worker.jsonl"
events="$state/events"
ip netns exec "$ns" php -d extension="$so" "$here/worker.php" "$list" 14 >"$out" &
worker=$!
# Each change is stamped before and after (X_from, X): on a busy machine the
# commands between can take a while, and no second of calls that overlaps
# them may count as wholly in one phase.
sleep 2
echo "two_cut_from $(date +%s.%N)" >>"$events"
ip link set "rlB$$" down          # two masters cut off
echo "two_cut $(date +%s.%N)" >>"$events"
sleep 4
echo "all_cut_from $(date +%s.%N)" >>"$events"
ip link set "rlA$$" down          # all five cut off
echo "all_cut $(date +%s.%N)" >>"$events"
sleep 3
echo "back_from $(date +%s.%N)" >>"$events"
ip link set "rlA$$" up
ip link set "rlB$$" up
echo "back $(date +%s.%N)" >>"$events"
wait "$worker"

python3 - "$out" "$events" <<'PY'
import json, sys
seconds = [json.loads(l) for l in open(sys.argv[1])]
events = {k: float(v) for k, v in (l.split() for l in open(sys.argv[2]))}
for s in seconds:
    s["t"] -= events["two_cut"]
    s["end"] -= events["two_cut"]
    print(f"netns: {s}")
# connect_timeout + timeout: new connections are made in parallel, and each
# master is written to once per request (a failed acquire's undo goes only to
# the masters its SET went to), plus 0.2 s for this shared machine.
bound = 0.3 + 0.3 + 0.2
fail = []
# Each second of calls (from its start to the end of its last call, which
# may run past the second) lies wholly inside one phase; those that straddle
# a change (or the second after the links return, while ARP settles) are
# checked only for the time bound.
def within(a, b):
    return [s for s in seconds if s["t"] >= a and s["end"] <= b]
at = {k: v - events["two_cut"] for k, v in events.items()}
phases = {"before": within(-99, at["two_cut_from"]), "two cut": within(0, at["all_cut_from"]),
          "all cut": within(at["all_cut"], at["back_from"]), "back": within(at["back"] + 1.0, 99)}
for name, secs in phases.items():
    if not secs:
        fail.append(f"no whole second of calls in phase {name}")
for s in seconds:
    if s["other"]:
        fail.append(f"an error other than ConnectionException: {s['error']}")
    if s["slowest"] > bound:
        fail.append(f"a call took {s['slowest']:.3f} s (bound {bound} s)")
for name, secs in phases.items():
    for s in secs:
        if s["other"]:
            fail.append(f"{name}: an error other than ConnectionException: {s['error']}")
        if s["slowest"] > bound:
            fail.append(f"{name}: a call took {s['slowest']:.3f} s (bound {bound} s)")
for s in phases["before"] + phases["two cut"] + phases["back"]:
    if s["ok"] != s["calls"]:
        fail.append(f"with a majority reachable every cycle must succeed: {s}")
for s in phases["all cut"]:
    if s["ok"] or not s["unavailable"]:
        fail.append(f"with no master reachable, calls must fail with ConnectionException: {s}")
if fail:
    print("netns: FAILED\n  " + "\n  ".join(fail))
    sys.exit(1)
two = phases["two cut"]
print(f"netns: ok; with two masters cut {sum(s['ok'] for s in two)} cycles in {len(two)} s, slowest {max(s['slowest'] for s in two):.3f} s")
PY
